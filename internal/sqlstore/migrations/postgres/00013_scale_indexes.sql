-- +goose Up
-- Every foreign key has an index whose first column is the key (issue 14):
-- deleting or checking a parent row, and the reads that go from a report
-- to its parameters and records, then walk only that report's rows.
CREATE INDEX report_parameters_report ON report_parameters (lab_report_id, position);
CREATE INDEX critical_callouts_report ON critical_callouts (lab_report_id);
CREATE INDEX activity_log_order ON activity_log (bill_id);
CREATE INDEX api_tokens_lab ON api_tokens (lab_id);
CREATE INDEX users_lab ON users (lab_id);
CREATE INDEX hl7_messages_lab ON hl7_messages (lab_id);
CREATE INDEX signin_failures_lab ON signin_failures (lab_id);
CREATE INDEX callout_attempts_lab ON callout_attempts (lab_id, id);
-- An order's records: both equality columns lead, so that without
-- statistics (or with any) a planner prefers this index to walking the
-- lab's records through critical_callouts_lab (lab_id, id), which would
-- only spare it a sort of the order's few rows.
CREATE INDEX critical_callouts_order ON critical_callouts (bill_id, lab_id, id);
DROP INDEX critical_callouts_bill;
-- The web's Done tab: a lab's done reports, most recently updated first.
CREATE INDEX lab_reports_recent ON lab_reports (lab_id, critical_values, last_updated, id);
-- The web tabs' counts: the visible reports of a lab's states with the
-- columns the count reads (department for its filter, the order to count),
-- so that it is an index-only range of the tab's states, not a heap read of
-- every report it counts. The predicate is the one worklistWhere writes.
CREATE INDEX lab_reports_visible ON lab_reports (lab_id, critical_values, department, bill_id)
    WHERE dismissed = false AND sample_collected = true;

-- +goose Down
DROP INDEX lab_reports_visible;
DROP INDEX lab_reports_recent;
CREATE INDEX critical_callouts_bill ON critical_callouts (bill_id, id);
DROP INDEX critical_callouts_order;
DROP INDEX callout_attempts_lab;
DROP INDEX signin_failures_lab;
DROP INDEX hl7_messages_lab;
DROP INDEX users_lab;
DROP INDEX api_tokens_lab;
DROP INDEX activity_log_order;
DROP INDEX critical_callouts_report;
DROP INDEX report_parameters_report;
