-- +goose Up
-- The core schema: labs, tokens, orders with their reports and parameters,
-- callout records and the activity log. Kept equal, column by column, to
-- ../postgres/00001_core.sql; only the types differ.
CREATE TABLE labs (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    name                   TEXT    NOT NULL,
    share_comment          INTEGER NOT NULL DEFAULT 0,
    mandatory_comments     INTEGER NOT NULL DEFAULT 0,
    hide_patient_name      INTEGER NOT NULL DEFAULT 0,
    additional_instruction TEXT    NOT NULL DEFAULT '',
    target_minutes         INTEGER NOT NULL DEFAULT 30,
    created_at             TIMESTAMP NOT NULL
);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    lab_id     INTEGER NOT NULL REFERENCES labs (id),
    user_name  TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('staff', 'admin')),
    token_hash TEXT    NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE bills (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    lab_id             INTEGER NOT NULL REFERENCES labs (id),
    lab_bill_id        TEXT    NOT NULL,
    accession_number   TEXT    NOT NULL DEFAULT '',
    patient_name       TEXT    NOT NULL DEFAULT '',
    patient_email      TEXT    NOT NULL DEFAULT '',
    patient_fax        TEXT    NOT NULL DEFAULT '',
    patient_phone      TEXT    NOT NULL DEFAULT '',
    referral_name      TEXT    NOT NULL DEFAULT '',
    referral_email     TEXT    NOT NULL DEFAULT '',
    referral_fax       TEXT    NOT NULL DEFAULT '',
    referral_phone     TEXT    NOT NULL DEFAULT '',
    organization_name  TEXT    NOT NULL DEFAULT '',
    organization_email TEXT    NOT NULL DEFAULT '',
    organization_fax   TEXT    NOT NULL DEFAULT '',
    organization_phone TEXT    NOT NULL DEFAULT '',
    created_at         TIMESTAMP NOT NULL,
    UNIQUE (lab_id, lab_bill_id)
);

CREATE TABLE lab_reports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    lab_id           INTEGER NOT NULL REFERENCES labs (id),
    bill_id          INTEGER NOT NULL REFERENCES bills (id),
    test_id          TEXT    NOT NULL,
    test_name        TEXT    NOT NULL,
    department       TEXT    NOT NULL DEFAULT '',
    dismissed        INTEGER NOT NULL DEFAULT 0,
    sample_collected INTEGER NOT NULL DEFAULT 1,
    critical_values  INTEGER NOT NULL CHECK (critical_values IN (0, 1, 2, 3, 4)),
    resulted_at      TIMESTAMP NOT NULL,
    last_updated     TIMESTAMP NOT NULL,
    UNIQUE (bill_id, test_id)
);
-- The worklist: a lab's reports in some states, oldest result first.
CREATE INDEX lab_reports_worklist ON lab_reports (lab_id, critical_values, resulted_at, id);

CREATE TABLE report_parameters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    lab_report_id INTEGER NOT NULL REFERENCES lab_reports (id),
    bill_id       INTEGER NOT NULL REFERENCES bills (id),
    position      INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    value         TEXT    NOT NULL DEFAULT '',
    unit          TEXT    NOT NULL DEFAULT '',
    normal_low    REAL,
    normal_high   REAL,
    critical_low  REAL,
    critical_high REAL,
    flag          TEXT    NOT NULL DEFAULT ''
);
-- Parameters are read per order: one query serves every report of it.
CREATE INDEX report_parameters_bill ON report_parameters (bill_id, lab_report_id, position);

CREATE TABLE critical_callouts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    lab_id           INTEGER NOT NULL REFERENCES labs (id),
    bill_id          INTEGER NOT NULL REFERENCES bills (id),
    lab_report_id    INTEGER REFERENCES lab_reports (id),
    status           TEXT    NOT NULL CHECK (status IN ('done', 'attempted')),
    methods          TEXT    NOT NULL,
    recipients       TEXT    NOT NULL,
    comment          TEXT    NOT NULL DEFAULT '',
    notified_person  TEXT    NOT NULL DEFAULT '',
    read_back        INTEGER NOT NULL DEFAULT 0,
    notify_to_others TEXT,
    created_by       TEXT    NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    meta             TEXT,
    snapshot         TEXT    NOT NULL
);
CREATE INDEX critical_callouts_bill ON critical_callouts (bill_id, id);
-- An order has at most one draft (the order-level attempt record).
CREATE UNIQUE INDEX critical_callouts_one_draft ON critical_callouts (bill_id) WHERE lab_report_id IS NULL;

CREATE TABLE activity_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    lab_id      INTEGER NOT NULL REFERENCES labs (id),
    bill_id     INTEGER REFERENCES bills (id),
    category_id INTEGER NOT NULL,
    user_name   TEXT    NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    message     TEXT    NOT NULL,
    data        TEXT    NOT NULL
);
CREATE INDEX activity_log_bill ON activity_log (lab_id, bill_id, id);

CREATE TABLE idempotency_keys (
    lab_id       INTEGER NOT NULL REFERENCES labs (id),
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT    NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (lab_id, key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE activity_log;
DROP TABLE critical_callouts;
DROP TABLE report_parameters;
DROP TABLE lab_reports;
DROP TABLE bills;
DROP TABLE api_tokens;
DROP TABLE labs;
