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

-- Appends the events of a batch of independent requests in one transaction (group commit):
-- one round trip and one commit for many writers. Each request appends to one or more streams
-- atomically; a request whose expected versions do not hold is left out (answered with the
-- stream at fault and its actual version) while the others are stored.
--
-- Per stream part: the request it belongs to (parts of a request are consecutive), the stream,
-- and the expected version: the number of events the stream must hold; -1 for "any", which
-- queues on a per-stream advisory lock instead of failing; or -2 for "unchanged since": like
-- "any", but refused if events other than the tolerated types (comma-separated) were appended
-- after since_versions[i]. Requests of one batch that touch the same stream see each other in
-- order. A concurrent writer outside the batch that wins a race
-- makes the whole batch fail on events_stream_version_key; callers then append one by one.
CREATE FUNCTION ledger.append_batch(
    part_requests     int[],
    stream_ids        text[],
    categories        text[],
    expected_versions bigint[],
    since_versions    bigint[],
    tolerated         text[],
    event_parts       int[],
    event_ids         uuid[],
    event_types       text[],
    schema_versions   smallint[],
    payloads          jsonb[],
    metadatas         jsonb[],
    recorded_ats      timestamptz[],
    row_hashes        bytea[]
) RETURNS TABLE (failed_request int, failed_stream text, actual_version bigint,
                 appended_event_id uuid, appended_position bigint, appended_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    parts int := coalesce(array_length(stream_ids, 1), 0);
    bases bigint[] := array_fill(NULL::bigint, ARRAY[parts]);
    event_counts int[] := array_fill(0, ARRAY[parts]);
    part_types text[] := array_fill(''::text, ARRAY[parts]);
    -- Versions of the streams this batch touched, and the event types it added to each, as of
    -- the requests accepted so far.
    seen_streams text[] := '{}';
    seen_versions bigint[] := '{}';
    seen_types text[] := '{}';
    tentative_streams text[];
    tentative_versions bigint[];
    tentative_types text[];
    allowed text[];
    current_version bigint;
    first_part int := 1;
    last_part int;
    failed boolean;
    at int;
BEGIN
    FOR e IN 1 .. coalesce(array_length(event_parts, 1), 0) LOOP
        event_counts[event_parts[e]] := event_counts[event_parts[e]] + 1;
        part_types[event_parts[e]] := part_types[event_parts[e]] || ',' || event_types[e];
    END LOOP;
    WHILE first_part <= parts LOOP
        last_part := first_part;
        WHILE last_part < parts AND part_requests[last_part + 1] = part_requests[first_part] LOOP
            last_part := last_part + 1;
        END LOOP;
        failed := false;
        tentative_streams := seen_streams;
        tentative_versions := seen_versions;
        tentative_types := seen_types;
        FOR i IN first_part .. last_part LOOP
            at := array_position(tentative_streams, stream_ids[i]);
            IF at IS NOT NULL THEN
                current_version := tentative_versions[at];
            ELSE
                IF expected_versions[i] < 0 THEN
                    PERFORM pg_advisory_xact_lock(hashtextextended(stream_ids[i], 0));
                END IF;
                SELECT ev.stream_version INTO current_version
                  FROM ledger.events ev
                 WHERE ev.stream_id = stream_ids[i]
                 ORDER BY ev.stream_version DESC
                 LIMIT 1;
                current_version := coalesce(current_version, 0);
            END IF;
            IF expected_versions[i] = -2 THEN
                allowed := string_to_array(tolerated[i], ',');
                IF EXISTS (SELECT 1 FROM ledger.events ev
                            WHERE ev.stream_id = stream_ids[i]
                              AND ev.stream_version > since_versions[i]
                              AND NOT (ev.event_type = ANY (allowed)))
                   OR (at IS NOT NULL AND EXISTS (
                           SELECT 1 FROM unnest(string_to_array(tentative_types[at], ',')) AS t
                            WHERE t <> '' AND NOT (t = ANY (allowed)))) THEN
                    failed := true;
                    failed_request := part_requests[i];
                    failed_stream := stream_ids[i];
                    actual_version := current_version;
                    RETURN NEXT;
                    EXIT;
                END IF;
            ELSIF expected_versions[i] >= 0 AND current_version <> expected_versions[i] THEN
                failed := true;
                failed_request := part_requests[i];
                failed_stream := stream_ids[i];
                actual_version := current_version;
                RETURN NEXT;
                EXIT;
            END IF;
            bases[i] := current_version;
            IF at IS NOT NULL THEN
                tentative_versions[at] := current_version + event_counts[i];
                tentative_types[at] := tentative_types[at] || part_types[i];
            ELSE
                tentative_streams := tentative_streams || stream_ids[i];
                tentative_versions := tentative_versions || (current_version + event_counts[i]);
                tentative_types := tentative_types || part_types[i];
            END IF;
        END LOOP;
        IF failed THEN
            FOR i IN first_part .. last_part LOOP
                bases[i] := NULL;
            END LOOP;
        ELSE
            seen_streams := tentative_streams;
            seen_versions := tentative_versions;
            seen_types := tentative_types;
        END IF;
        first_part := last_part + 1;
    END LOOP;
    failed_request := NULL;
    failed_stream := NULL;
    actual_version := NULL;
    RETURN QUERY
        INSERT INTO ledger.events AS ev (event_id, stream_id, category, stream_version, event_type,
                                         schema_version, payload, metadata, recorded_at, row_hash)
        SELECT n.event_id, stream_ids[n.part], categories[n.part],
               bases[n.part] + row_number() OVER (PARTITION BY n.part ORDER BY n.ord),
               n.event_type, n.schema_version, n.payload, n.metadata, n.recorded_at, n.row_hash
          FROM unnest(event_parts, event_ids, event_types, schema_versions, payloads, metadatas,
                      recorded_ats, row_hashes)
               WITH ORDINALITY AS n(part, event_id, event_type, schema_version, payload,
                                    metadata, recorded_at, row_hash, ord)
         WHERE bases[n.part] IS NOT NULL
         ORDER BY n.ord
        RETURNING NULL::int, NULL::text, NULL::bigint, ev.event_id, ev.position, ev.stream_version;
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
