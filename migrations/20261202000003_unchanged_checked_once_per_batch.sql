-- Many requests of one batch book the same busy gateway, each "unchanged since" the version
-- its decision saw, and each checked the log's events of that stream since then: the same rows
-- read again for every request (a third of a batch's time in `pg_stat_statements` under the
-- initiate bench). A check that passed covers every later request of the batch decided since
-- the same version or a later one, for the same tolerated types: the batch holds the stream's
-- lock, and an event appended meanwhile by a writer that does not take it makes the batch's
-- own insert of that version fail, so the batch is retried request by request.
--
-- Same arguments and answer as before (see the event-log migration); only the check changed.
CREATE OR REPLACE FUNCTION ledger.append_batch_holding_locks(
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
    -- "Unchanged since" checks this batch already made against the log: per stream and
    -- tolerated types, the lowest version since which the stream held only tolerated events.
    checked_keys text[] := '{}';
    checked_since bigint[] := '{}';
    check_key text;
    checked_at int;
    changed boolean;
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
                check_key := stream_ids[i] || '|' || tolerated[i];
                checked_at := array_position(checked_keys, check_key);
                changed := false;
                IF checked_at IS NULL OR since_versions[i] < checked_since[checked_at] THEN
                    changed := EXISTS (SELECT 1 FROM ledger.events ev
                                        WHERE ev.stream_id = stream_ids[i]
                                          AND ev.stream_version > since_versions[i]
                                          AND NOT (ev.event_type = ANY (allowed)));
                    IF NOT changed AND checked_at IS NULL THEN
                        checked_keys := checked_keys || check_key;
                        checked_since := checked_since || since_versions[i];
                    ELSIF NOT changed THEN
                        checked_since[checked_at] := since_versions[i];
                    END IF;
                END IF;
                IF changed
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
