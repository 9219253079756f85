-- +goose Up
-- Patient identity: the MRN (PID-3, or patient.mrn over the API) names a
-- patient within a lab, so every order of one MRN in one lab shares one
-- patient id. An order without an MRN has no patient row (patient_id NULL):
-- nothing says which other orders are the same person's.
CREATE TABLE patients (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    lab_id              INTEGER NOT NULL REFERENCES labs (id),
    mrn                 TEXT   NOT NULL,
    -- The assigning authority (CX.4) of the MRN the latest order carried.
    assigning_authority TEXT   NOT NULL DEFAULT '',
    -- The birth date (YYYY-MM-DD) the latest order that gave one gave.
    birth_date          TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMP NOT NULL,
    UNIQUE (lab_id, mrn)
);
ALTER TABLE bills ADD COLUMN patient_id INTEGER REFERENCES patients (id);
ALTER TABLE bills ADD COLUMN patient_mrn TEXT NOT NULL DEFAULT '';
-- The birth date as YYYY-MM-DD, '' when unknown.
ALTER TABLE bills ADD COLUMN patient_birth_date TEXT NOT NULL DEFAULT '';
CREATE INDEX bills_patient ON bills (patient_id, id);

-- +goose Down
DROP INDEX bills_patient;
ALTER TABLE bills DROP COLUMN patient_birth_date;
ALTER TABLE bills DROP COLUMN patient_mrn;
ALTER TABLE bills DROP COLUMN patient_id;
DROP TABLE patients;
