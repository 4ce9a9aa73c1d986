-- Operations data that is not a business fact: sampled queue depths for the admin API's time
-- series. Queue pauses, drains and retries are facts and live in the log (`queue-<name>`
-- streams); a depth sampled every 5 seconds is a measurement, kept for a day and then deleted.
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE ops.queue_depth_samples (
    queue       text NOT NULL CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    -- Truncated to the sampling interval, so replicas sampling the same instant write one row.
    sampled_at  timestamptz NOT NULL,
    waiting     bigint NOT NULL CHECK (waiting >= 0),
    active      bigint NOT NULL CHECK (active >= 0),
    failed      bigint NOT NULL CHECK (failed >= 0),
    paused      boolean NOT NULL,
    PRIMARY KEY (queue, sampled_at)
);

CREATE INDEX queue_depth_samples_age ON ops.queue_depth_samples (sampled_at);
