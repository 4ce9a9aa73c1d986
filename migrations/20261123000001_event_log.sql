-- The event log: one append-only table, read in (transaction_id, position) order.
CREATE SCHEMA IF NOT EXISTS ledger;

CREATE TABLE ledger.events (
    position        bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing transaction; readers stay below the oldest one still running (gap safety).
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL,
    stream_id       text NOT NULL,
    category        text NOT NULL,
    stream_version  bigint NOT NULL,
    event_type      text NOT NULL,
    schema_version  smallint NOT NULL,
    payload         jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL,
    row_hash        bytea NOT NULL,
    -- The read order; also what the gap-safe reader, the relay and the sealer scan.
    CONSTRAINT events_pkey PRIMARY KEY (transaction_id, position),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_stream_version_positive CHECK (stream_version >= 1),
    CONSTRAINT events_row_hash_length CHECK (octet_length(row_hash) = 32),
    CONSTRAINT events_category_prefix CHECK (starts_with(stream_id, category || '-'))
);

-- Three indexes only (read order, event id, stream version): each one costs every append.
-- Category reads walk the read order and filter.

-- Seals chain contiguous ranges of the log (in read order) for tamper evidence.
CREATE TABLE ledger.seals (
    seal_number           bigint PRIMARY KEY CHECK (seal_number >= 1),
    first_transaction_id  xid8 NOT NULL,
    first_position        bigint NOT NULL,
    last_transaction_id   xid8 NOT NULL,
    last_position         bigint NOT NULL,
    event_count           bigint NOT NULL CHECK (event_count >= 1),
    previous_hash         bytea NOT NULL CHECK (octet_length(previous_hash) = 32),
    seal_hash             bytea NOT NULL CHECK (octet_length(seal_hash) = 32),
    -- Per event: position (8 bytes) and the first 8 bytes of its row hash, so a verifier can
    -- name the exact event that was changed, removed, inserted or moved.
    entries               bytea NOT NULL CHECK (octet_length(entries) = 16 * event_count),
    sealed_at             timestamptz NOT NULL DEFAULT now()
);

-- Nothing in the log is ever changed or removed, whoever asks.
CREATE FUNCTION ledger.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON ledger.events
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON ledger.events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER seals_append_only BEFORE UPDATE OR DELETE ON ledger.seals
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER seals_no_truncate BEFORE TRUNCATE ON ledger.seals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- Appends events to one or more streams atomically, in one round trip, and answers each
-- event's position and stream version.
-- expected_versions[i] is the number of events stream i must hold, or -1 for "any": such
-- appends queue on a per-stream advisory lock instead of failing against each other. A
-- concurrent exact writer that wins the race makes this insert fail on
-- events_stream_version_key instead.
CREATE FUNCTION ledger.append_events(
    stream_ids        text[],
    categories        text[],
    expected_versions bigint[],
    event_streams     int[],
    event_ids         uuid[],
    event_types       text[],
    schema_versions   smallint[],
    payloads          jsonb[],
    metadatas         jsonb[],
    recorded_ats      timestamptz[],
    row_hashes        bytea[]
) RETURNS TABLE (appended_event_id uuid, appended_position bigint, appended_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    current_version bigint;
    bases bigint[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(stream_ids, 1), 0) LOOP
        IF expected_versions[i] < 0 THEN
            PERFORM pg_advisory_xact_lock(hashtextextended(stream_ids[i], 0));
        END IF;
        SELECT e.stream_version INTO current_version
          FROM ledger.events e
         WHERE e.stream_id = stream_ids[i]
         ORDER BY e.stream_version DESC
         LIMIT 1;
        current_version := coalesce(current_version, 0);
        IF expected_versions[i] >= 0 AND current_version <> expected_versions[i] THEN
            RAISE EXCEPTION 'wrong expected version'
                USING ERRCODE = 'LS409',
                      DETAIL = stream_ids[i],
                      HINT = current_version::text;
        END IF;
        bases := bases || current_version;
    END LOOP;
    RETURN QUERY
        INSERT INTO ledger.events AS e (event_id, stream_id, category, stream_version, event_type,
                                        schema_version, payload, metadata, recorded_at, row_hash)
        SELECT n.event_id, stream_ids[n.stream], categories[n.stream],
               bases[n.stream] + row_number() OVER (PARTITION BY n.stream ORDER BY n.ord),
               n.event_type, n.schema_version, n.payload, n.metadata, n.recorded_at, n.row_hash
          FROM unnest(event_streams, event_ids, event_types, schema_versions, payloads, metadatas,
                      recorded_ats, row_hashes)
               WITH ORDINALITY AS n(stream, event_id, event_type, schema_version, payload,
                                    metadata, recorded_at, row_hash, ord)
         ORDER BY n.ord
        RETURNING e.event_id, e.position, e.stream_version;
END
$$;

-- Where the relay stands: the last event JetStream acknowledged, and its stream sequence.
CREATE TABLE ledger.relay_state (
    jetstream_stream  text PRIMARY KEY,
    transaction_id    xid8 NOT NULL,
    position          bigint NOT NULL,
    event_id          uuid,
    jetstream_seq     bigint NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
