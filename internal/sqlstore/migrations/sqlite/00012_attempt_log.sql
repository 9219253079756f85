-- +goose Up
-- Issue 11: the immutable attempt log, outcomes, the clock and the
-- compliance report. Kept equal, column by column, to
-- ../postgres/00012_attempt_log.sql; only the types and the trigger syntax
-- differ.
--
-- callout_attempts holds one row per report per submit, attempt or done,
-- beside the seed's records (which keep one draft per order, replaced on
-- every submit). It is append-only: the triggers below refuse UPDATE and
-- DELETE, and no code path issues them.
CREATE TABLE callout_attempts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    lab_id            INTEGER NOT NULL REFERENCES labs (id),
    bill_id           INTEGER NOT NULL REFERENCES bills (id),
    lab_report_id     INTEGER NOT NULL REFERENCES lab_reports (id),
    attempt_number    INTEGER NOT NULL CHECK (attempt_number >= 1),
    kind              TEXT    NOT NULL CHECK (kind IN ('attempt', 'done')),
    outcome           TEXT    NOT NULL,
    called_at         TIMESTAMP NOT NULL,
    recorded_at       TIMESTAMP NOT NULL,
    user_name         TEXT    NOT NULL,
    recipients        TEXT    NOT NULL,
    notified_person   TEXT    NOT NULL DEFAULT '',
    read_back         INTEGER NOT NULL DEFAULT 0,
    comment           TEXT    NOT NULL DEFAULT '',
    back_entry_reason TEXT    NOT NULL DEFAULT '',
    critical_values   TEXT    NOT NULL,
    UNIQUE (lab_report_id, attempt_number)
);
CREATE INDEX callout_attempts_bill ON callout_attempts (bill_id, id);
-- The compliance report finds each report's first done callout.
CREATE INDEX callout_attempts_report_kind ON callout_attempts (lab_report_id, kind, called_at);

-- +goose StatementBegin
CREATE TRIGGER callout_attempts_no_update BEFORE UPDATE ON callout_attempts
BEGIN
    SELECT RAISE(ABORT, 'callout_attempts is append-only: UPDATE refused');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER callout_attempts_no_delete BEFORE DELETE ON callout_attempts
BEGIN
    SELECT RAISE(ABORT, 'callout_attempts is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- Done callouts recorded before the log existed enter it, numbered per
-- report in the order they were made, so the clock and the report count them.
INSERT INTO callout_attempts (lab_id, bill_id, lab_report_id, attempt_number, kind, outcome, called_at,
    recorded_at, user_name, recipients, notified_person, read_back, comment, critical_values)
SELECT lab_id, bill_id, lab_report_id,
       ROW_NUMBER() OVER (PARTITION BY lab_report_id ORDER BY id), 'done',
       CASE WHEN read_back THEN 'read_back_confirmed' ELSE 'reached_no_read_back' END,
       created_at, created_at, created_by,
       (SELECT COALESCE(json_group_array(json_object('recipient', x.value)), '[]') FROM json_each(recipients) x),
       notified_person, read_back, comment, snapshot
FROM critical_callouts WHERE lab_report_id IS NOT NULL ORDER BY id;

-- The seed's records keep the outcome and both times too.
ALTER TABLE critical_callouts ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE critical_callouts ADD COLUMN called_at TIMESTAMP;
ALTER TABLE critical_callouts ADD COLUMN back_entry_reason TEXT NOT NULL DEFAULT '';

-- The clock: an order's patient class picks its target.

ALTER TABLE labs ADD COLUMN require_notified_person INTEGER NOT NULL DEFAULT 1;
ALTER TABLE labs ADD COLUMN targets TEXT NOT NULL DEFAULT '{}';
ALTER TABLE labs ADD COLUMN compliance_target_percent REAL NOT NULL DEFAULT 100;
ALTER TABLE labs ADD COLUMN compliance_action_percent REAL NOT NULL DEFAULT 95;
ALTER TABLE labs ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

-- The compliance report reads a lab's critical reports by release time.
CREATE INDEX lab_reports_compliance ON lab_reports (lab_id, resulted_at) WHERE critical_values IN (1, 2, 4);

-- +goose Down
DROP INDEX lab_reports_compliance;
ALTER TABLE labs DROP COLUMN timezone;
ALTER TABLE labs DROP COLUMN compliance_action_percent;
ALTER TABLE labs DROP COLUMN compliance_target_percent;
ALTER TABLE labs DROP COLUMN targets;
ALTER TABLE labs DROP COLUMN require_notified_person;
ALTER TABLE critical_callouts DROP COLUMN back_entry_reason;
ALTER TABLE critical_callouts DROP COLUMN called_at;
ALTER TABLE critical_callouts DROP COLUMN outcome;
DROP TRIGGER callout_attempts_no_delete;
DROP TRIGGER callout_attempts_no_update;
DROP TABLE callout_attempts;
