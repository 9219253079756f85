-- +goose Up
-- The result status of a report's latest results (HL7 OBR-25 / OBX-11:
-- P preliminary, F final, C corrected; '' when entered over the API), so
-- that a late preliminary never overwrites a final result.
ALTER TABLE lab_reports ADD COLUMN result_status TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE lab_reports DROP COLUMN result_status;
