-- +goose Up
-- A sending facility may be bound to the subject of a TLS client certificate
-- (canonical form, see hl7.CanonicalSubject): its messages are then accepted
-- only over an MLLP connection whose verified client certificate has that
-- subject. '' accepts the facility from any connection, as before.
ALTER TABLE lab_hl7_facilities ADD COLUMN cert_subject TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE lab_hl7_facilities DROP COLUMN cert_subject;
