-- Snapshots of the states of long streams (a gateway's bookings, a wallet's commissions), so
-- loading one cold costs the events since its last snapshot, not its whole history.
-- Derived and disposable: outside the log, never read by the audit, and trusted only while the
-- log still holds the event the snapshot was taken after (else ignored and taken again).
CREATE TABLE ledger.snapshots (
    stream_id       text PRIMARY KEY,
    -- The decider's state shape; a snapshot of another shape is ignored.
    state_version   integer NOT NULL,
    -- How many of the stream's events the state folds, and the id of the last of them.
    stream_version  bigint NOT NULL CHECK (stream_version >= 1),
    event_id        uuid NOT NULL,
    state           jsonb NOT NULL,
    taken_at        timestamptz NOT NULL DEFAULT now()
);
