-- Projections: the bookkeeping of read-model versions, and the schema readers read through.
--
-- Each version of a projection lives in its own schema `proj_<name>_v<version>`, created by the
-- projector runtime (not here), so a schema change is built beside the version that serves.
-- Readers never read those schemas: they read the views in `read`, which point at the active
-- version and are replaced in the same transaction that activates another one.
CREATE SCHEMA IF NOT EXISTS projections;
CREATE SCHEMA IF NOT EXISTS read;

CREATE TABLE projections.versions (
    projection              text NOT NULL CHECK (projection ~ '^[a-z][a-z0-9_]{0,39}$'),
    version                 integer NOT NULL CHECK (version >= 1),
    -- The table layout the code that builds this version writes (bumped by a schema change).
    layout                  integer NOT NULL CHECK (layout >= 1),
    schema_name             text NOT NULL UNIQUE,
    -- building: being built beside the active one; active: what readers see; retired: replaced,
    -- kept until dropped on request; dropped: its schema is gone.
    state                   text NOT NULL CHECK (state IN ('building', 'active', 'retired', 'dropped')),
    -- The checkpoint: the last log position applied, moved in the same transaction as the rows.
    transaction_id          xid8 NOT NULL DEFAULT '0',
    position                bigint NOT NULL DEFAULT 0,
    events_applied          bigint NOT NULL DEFAULT 0,
    last_event_recorded_at  timestamptz,
    checkpoint_at           timestamptz,
    -- Lag behind the log head as last measured by the projector (events capped, milliseconds).
    lag_events              bigint NOT NULL DEFAULT 0,
    lag_ms                  bigint NOT NULL DEFAULT 0,
    lag_measured_at         timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    activated_at            timestamptz,
    retired_at              timestamptz,
    PRIMARY KEY (projection, version)
);

-- The registry: at most one active version per projection.
CREATE UNIQUE INDEX versions_one_active ON projections.versions (projection) WHERE state = 'active';
