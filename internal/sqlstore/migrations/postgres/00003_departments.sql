-- +goose Up
-- API tokens (and, later, users) may be limited to departments: a
-- comma-separated list; empty means every department.
ALTER TABLE api_tokens ADD COLUMN departments TEXT NOT NULL DEFAULT '';
CREATE INDEX lab_reports_department ON lab_reports (lab_id, department);

-- +goose Down
DROP INDEX lab_reports_department;
ALTER TABLE api_tokens DROP COLUMN departments;
