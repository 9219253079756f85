-- +goose Up
-- The core schema: labs, tokens, orders with their reports and parameters,
-- callout records and the activity log. Kept equal, column by column, to
-- ../sqlite/00001_core.sql; only the types differ.
CREATE TABLE labs (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                   TEXT    NOT NULL,
    share_comment BOOLEAN NOT NULL DEFAULT false,
    mandatory_comments BOOLEAN NOT NULL DEFAULT false,
    hide_patient_name BOOLEAN NOT NULL DEFAULT false,
    additional_instruction TEXT    NOT NULL DEFAULT '',
    target_minutes         INTEGER NOT NULL DEFAULT 30,
    created_at             TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lab_id     BIGINT NOT NULL REFERENCES labs (id),
    user_name  TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('staff', 'admin')),
    token_hash TEXT    NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE bills (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lab_id             BIGINT NOT NULL REFERENCES labs (id),
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
    created_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (lab_id, lab_bill_id)
);

CREATE TABLE lab_reports (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lab_id           BIGINT NOT NULL REFERENCES labs (id),
    bill_id          BIGINT NOT NULL REFERENCES bills (id),
    test_id          TEXT    NOT NULL,
    test_name        TEXT    NOT NULL,
    department       TEXT    NOT NULL DEFAULT '',
    dismissed BOOLEAN NOT NULL DEFAULT false,
    sample_collected BOOLEAN NOT NULL DEFAULT true,
    critical_values  INTEGER NOT NULL CHECK (critical_values IN (0, 1, 2, 3, 4)),
    resulted_at      TIMESTAMPTZ NOT NULL,
    last_updated     TIMESTAMPTZ NOT NULL,
    UNIQUE (bill_id, test_id)
);
-- The worklist: a lab's reports in some states, oldest result first.
CREATE INDEX lab_reports_worklist ON lab_reports (lab_id, critical_values, resulted_at, id);

CREATE TABLE report_parameters (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lab_report_id BIGINT NOT NULL REFERENCES lab_reports (id),
    bill_id       BIGINT NOT NULL REFERENCES bills (id),
    position      INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    value         TEXT    NOT NULL DEFAULT '',
    unit          TEXT    NOT NULL DEFAULT '',
    normal_low    DOUBLE PRECISION,
    normal_high   DOUBLE PRECISION,
    critical_low  DOUBLE PRECISION,
    critical_high DOUBLE PRECISION,
    flag          TEXT    NOT NULL DEFAULT ''
);
-- Parameters are read per order: one query serves every report of it.
CREATE INDEX report_parameters_bill ON report_parameters (bill_id, lab_report_id, position);

CREATE TABLE critical_callouts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lab_id           BIGINT NOT NULL REFERENCES labs (id),
    bill_id          BIGINT NOT NULL REFERENCES bills (id),
    lab_report_id    BIGINT REFERENCES lab_reports (id),
    status           TEXT    NOT NULL CHECK (status IN ('done', 'attempted')),
    methods          JSONB   NOT NULL,
    recipients       JSONB   NOT NULL,
    comment          TEXT    NOT NULL DEFAULT '',
    notified_person  TEXT    NOT NULL DEFAULT '',
    read_back BOOLEAN NOT NULL DEFAULT false,
    notify_to_others JSONB,
    created_by       TEXT    NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    meta             JSONB,
    snapshot         JSONB   NOT NULL
);
CREATE INDEX critical_callouts_bill ON critical_callouts (bill_id, id);
-- An order has at most one draft (the order-level attempt record).
CREATE UNIQUE INDEX critical_callouts_one_draft ON critical_callouts (bill_id) WHERE lab_report_id IS NULL;

CREATE TABLE activity_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lab_id      BIGINT NOT NULL REFERENCES labs (id),
    bill_id     BIGINT REFERENCES bills (id),
    category_id INTEGER NOT NULL,
    user_name   TEXT    NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    message     TEXT    NOT NULL,
    data        JSONB   NOT NULL
);
CREATE INDEX activity_log_bill ON activity_log (lab_id, bill_id, id);

CREATE TABLE idempotency_keys (
    lab_id       BIGINT NOT NULL REFERENCES labs (id),
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT    NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
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
