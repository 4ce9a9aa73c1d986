-- The console's sessions as the console reads them fast: who, since when, last seen. Whether a
-- session is valid is decided by its stream in the log (`console_session-<id>`: started, ended);
-- this table only adds what changes on every request (idle expiry) and lists sessions for
-- admins. Losing it signs people out; it holds no secret.
CREATE SCHEMA IF NOT EXISTS console;

CREATE TABLE console.session_activity (
    session_id   uuid PRIMARY KEY,
    email        text NOT NULL CHECK (length(email) <= 254),
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    ended_at     timestamptz
);

CREATE INDEX session_activity_open ON console.session_activity (last_seen_at) WHERE ended_at IS NULL;
