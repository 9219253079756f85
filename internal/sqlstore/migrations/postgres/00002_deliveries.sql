-- +goose Up
-- Email and fax copies of done callouts, one row per recipient and channel.
-- The address is fixed when the callout is made; the message is rendered once,
-- on the first attempt, and kept, so every retry sends the same message with
-- the same Message-ID.
CREATE TABLE deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lab_id          BIGINT  NOT NULL REFERENCES labs (id),
    bill_id         BIGINT  NOT NULL REFERENCES bills (id),
    callout_ids     JSONB   NOT NULL,
    channel         TEXT    NOT NULL CHECK (channel IN ('email', 'fax')),
    recipient       TEXT    NOT NULL,
    recipient_name  TEXT    NOT NULL DEFAULT '',
    address         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ,
    message_id      TEXT    NOT NULL DEFAULT '',
    subject         TEXT    NOT NULL DEFAULT '',
    body_html       TEXT    NOT NULL DEFAULT '',
    body_text       TEXT    NOT NULL DEFAULT '',
    attachment_name TEXT    NOT NULL DEFAULT '',
    attachment      BYTEA
);
CREATE INDEX deliveries_bill ON deliveries (bill_id, id);
CREATE INDEX deliveries_status ON deliveries (lab_id, status, id);

-- A lab's own email template (Jinja); NULL means the built-in one.
ALTER TABLE labs ADD COLUMN email_template TEXT;

-- +goose Down
ALTER TABLE labs DROP COLUMN email_template;
DROP TABLE deliveries;
