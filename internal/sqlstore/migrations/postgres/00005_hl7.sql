-- +goose Up
-- HL7 v2 results in: which sending facilities (MSH-4) each lab accepts, the
-- messages already stored (never processed twice), and each lab's own
-- critical limits per analyte.
CREATE TABLE lab_hl7_facilities (
    facility TEXT    NOT NULL PRIMARY KEY,
    lab_id   BIGINT  NOT NULL REFERENCES labs (id)
);
CREATE INDEX lab_hl7_facilities_lab ON lab_hl7_facilities (lab_id);

-- 'placer' (ORC-2, else OBR-2) or 'filler' (ORC-3, else OBR-3) is the Order ID.
ALTER TABLE labs ADD COLUMN hl7_order_number TEXT NOT NULL DEFAULT 'placer';

CREATE TABLE hl7_messages (
    facility    TEXT    NOT NULL,
    control_id  TEXT    NOT NULL,
    lab_id      BIGINT  NOT NULL REFERENCES labs (id),
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (facility, control_id)
);

CREATE TABLE lab_critical_limits (
    lab_id        BIGINT  NOT NULL REFERENCES labs (id),
    name          TEXT    NOT NULL,
    unit          TEXT    NOT NULL DEFAULT '',
    critical_low  DOUBLE PRECISION,
    critical_high DOUBLE PRECISION,
    PRIMARY KEY (lab_id, name, unit)
);

-- +goose Down
DROP TABLE lab_critical_limits;
DROP TABLE hl7_messages;
ALTER TABLE labs DROP COLUMN hl7_order_number;
DROP TABLE lab_hl7_facilities;
