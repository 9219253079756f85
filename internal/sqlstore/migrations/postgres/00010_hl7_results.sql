-- +goose Up
-- What real HL7 results carry beyond the value (issue 10):
-- the collection time of a report's specimen (OBR-7), NULL when unknown;
ALTER TABLE lab_reports ADD COLUMN collected_at TIMESTAMPTZ;
-- the reference range exactly as sent (OBX-7), beside the numeric bounds
-- read from it;
ALTER TABLE report_parameters ADD COLUMN reference_range_text TEXT NOT NULL DEFAULT '';
-- the patient class of the order's visit (PV1-2, HL7 table 0004: E, I, O, ...).
ALTER TABLE bills ADD COLUMN patient_class TEXT NOT NULL DEFAULT '';
-- New labs number orders 'auto' (placer, else filler); CreateLab writes it,
-- so the existing labs' hl7_order_number is left exactly as it was.

-- +goose Down
ALTER TABLE bills DROP COLUMN patient_class;
ALTER TABLE report_parameters DROP COLUMN reference_range_text;
ALTER TABLE lab_reports DROP COLUMN collected_at;
