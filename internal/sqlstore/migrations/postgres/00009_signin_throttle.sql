-- +goose Up
-- Failed sign-ins to the web pages. Kept equal, column by column, to
-- ../sqlite/00008_signin_throttle.sql.
--
-- signin_throttle counts consecutive failures per user name and per client
-- address (kind 'user' or 'address'); callout.SignIn decides from it how
-- long an attempt must wait. Kept in the database rather than in memory so
-- that every process serving the database sees the same counters.
CREATE TABLE signin_throttle (
    kind            TEXT    NOT NULL CHECK (kind IN ('user', 'address')),
    value           TEXT    NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX signin_throttle_last_failure ON signin_throttle (last_failure_at);

-- signin_failures is the audit of every refused sign-in that was checked
-- (a throttled attempt is refused before any check and only logged):
-- the name as typed, the client's address, and the lab when the name is one
-- of its users (that lab's activity log gets an entry too).
CREATE TABLE signin_failures (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    user_name  TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    lab_id     BIGINT  REFERENCES labs (id),
    reason     TEXT    NOT NULL
);
CREATE INDEX signin_failures_created ON signin_failures (created_at);

-- +goose Down
DROP TABLE signin_failures;
DROP TABLE signin_throttle;
