-- +goose Up
-- FHIR searches read a lab's callout records by id and by time sent.
CREATE INDEX critical_callouts_lab ON critical_callouts (lab_id, id);
CREATE INDEX critical_callouts_lab_time ON critical_callouts (lab_id, created_at);

-- +goose Down
DROP INDEX critical_callouts_lab_time;
DROP INDEX critical_callouts_lab;
