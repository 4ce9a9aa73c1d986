-- `ledger.append_batch` in one function and one pass. Under the initiate bench (batches of
-- about 17 requests, 51 stream parts) three fifths of PostgreSQL's time in the append was not
-- the insert: a statement per part to read its stream's version, another per "unchanged since"
-- part to check the types the batch added, the arrays of touched streams copied for every
-- request, and a second function holding the locks. The caller now numbers the batch's
-- streams and "unchanged since" checks and gives each part's event count and types; one
-- statement reads every stream's version, one makes every check against the log, and the loop
-- over the requests only compares and adds (a refused request undoes its own parts).
--
-- Arguments, per part (a request's share of one stream; a request's parts are consecutive):
-- the request's number; the number of its stream in stream_ids; the expected version: the
-- number of events the stream must hold, -1 for "any" (queues on the stream's advisory lock
-- instead of failing), -2 for "unchanged since" (like "any", but refused if events other than
-- the check's tolerated types came after since_versions[i], in the log or earlier in the
-- batch); the number of its check (-2 only); its event count; its event types as ",A,B".
-- Per stream: its id and category. Per check: the stream's number, the oldest version a part
-- decided on, the tolerated types (comma-separated). Per event: its part's number and the
-- row's columns. Answers as before: a row per refused request (the request, the stream at
-- fault, its version then), then a row per stored event.
--
-- A new overload: the previous `ledger.append_batch` (14 arguments) and the function it calls
-- stay, because processes built before this migration keep running against a migrated database
-- (they check only that their own migrations are applied) until they are replaced. Both take
-- the same stream locks, so old and new writers can run side by side. A later migration drops
-- them once no such process can be left.

CREATE FUNCTION ledger.append_batch(
    part_requests     int[],
    part_streams      int[],
    expected_versions bigint[],
    since_versions    bigint[],
    part_checks       int[],
    part_counts       int[],
    part_types        text[],
    stream_ids        text[],
    categories        text[],
    check_streams     int[],
    check_since       bigint[],
    check_tolerated   text[],
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
    parts int := coalesce(array_length(part_requests, 1), 0);
    -- Per stream: the version as of the requests accepted so far, and the event types they
    -- added (",A,B", each part's types added once).
    slot_versions bigint[];
    slot_types text[] := array_fill(''::text, ARRAY[coalesce(array_length(stream_ids, 1), 0)]);
    -- Per check: the stream's latest event not tolerated since the check's oldest version.
    last_intolerable bigint[];
    -- Per part of an accepted request: the version it follows; a refused one's stay NULL.
    bases bigint[] := array_fill(NULL::bigint, ARRAY[parts]);
    -- Per part: its stream's types before it, to undo a refused request.
    types_before text[] := array_fill(NULL::text, ARRAY[parts]);
    lock_key bigint;
    slot int;
    check_at int;
    current_version bigint;
    first_part int := 1;
    last_part int;
    refused_at int;
BEGIN
    -- Every lock the batch needs, in one global order, so two batches never wait on each other
    -- in a cycle.
    FOR lock_key IN
        SELECT DISTINCT hashtextextended(stream_ids[part.stream], 0)
          FROM unnest(part_streams, expected_versions) AS part(stream, expected_version)
         WHERE part.expected_version < 0
         ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(lock_key);
    END LOOP;

    SELECT array_agg(coalesce((SELECT ev.stream_version FROM ledger.events ev
                                WHERE ev.stream_id = s.stream_id
                                ORDER BY ev.stream_version DESC
                                LIMIT 1), 0) ORDER BY s.slot)
      INTO slot_versions
      FROM unnest(stream_ids) WITH ORDINALITY AS s(stream_id, slot);
    IF coalesce(array_length(check_streams, 1), 0) > 0 THEN
        SELECT array_agg((SELECT max(ev.stream_version) FROM ledger.events ev
                           WHERE ev.stream_id = stream_ids[c.stream]
                             AND ev.stream_version > c.since
                             AND NOT (ev.event_type = ANY (string_to_array(c.tolerated, ','))))
                         ORDER BY c.ord)
          INTO last_intolerable
          FROM unnest(check_streams, check_since, check_tolerated)
               WITH ORDINALITY AS c(stream, since, tolerated, ord);
    END IF;

    WHILE first_part <= parts LOOP
        last_part := first_part;
        WHILE last_part < parts AND part_requests[last_part + 1] = part_requests[first_part] LOOP
            last_part := last_part + 1;
        END LOOP;
        refused_at := NULL;
        FOR i IN first_part .. last_part LOOP
            slot := part_streams[i];
            current_version := slot_versions[slot];
            IF expected_versions[i] = -2 THEN
                -- Refused if the log changed since the decision, or an earlier part of the
                -- batch added a type this part does not tolerate ('' is the list's empty head).
                check_at := part_checks[i];
                IF coalesce(last_intolerable[check_at] > since_versions[i], false)
                   OR NOT (string_to_array(slot_types[slot], ',')
                           <@ (string_to_array(check_tolerated[check_at], ',') || ''::text)) THEN
                    refused_at := i;
                    EXIT;
                END IF;
            ELSIF expected_versions[i] >= 0 AND current_version <> expected_versions[i] THEN
                refused_at := i;
                EXIT;
            END IF;
            bases[i] := current_version;
            types_before[i] := slot_types[slot];
            slot_versions[slot] := current_version + part_counts[i];
            IF strpos(slot_types[slot] || ',', part_types[i] || ',') = 0 THEN
                slot_types[slot] := slot_types[slot] || part_types[i];
            END IF;
        END LOOP;
        IF refused_at IS NOT NULL THEN
            failed_request := part_requests[refused_at];
            failed_stream := stream_ids[part_streams[refused_at]];
            actual_version := slot_versions[part_streams[refused_at]];
            RETURN NEXT;
            -- Undo the parts accepted before, the last first (a stream named twice returns to
            -- what it was before the first).
            FOR i IN REVERSE refused_at - 1 .. first_part LOOP
                slot_versions[part_streams[i]] := bases[i];
                slot_types[part_streams[i]] := types_before[i];
                bases[i] := NULL;
            END LOOP;
        END IF;
        first_part := last_part + 1;
    END LOOP;

    failed_request := NULL;
    failed_stream := NULL;
    actual_version := NULL;
    RETURN QUERY
        INSERT INTO ledger.events AS ev (event_id, stream_id, category, stream_version, event_type,
                                         schema_version, payload, metadata, recorded_at, row_hash)
        SELECT n.event_id, stream_ids[part_streams[n.part]], categories[part_streams[n.part]],
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
