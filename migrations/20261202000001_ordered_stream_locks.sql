-- `ledger.append_batch` took the per-stream advisory locks of "any" and "unchanged since" parts
-- in the order of its batch. Two committers whose batches named the same streams in opposite
-- orders (payments booked on a merchant's gateways, arriving in any order) then deadlocked:
-- PostgreSQL aborted one after deadlock_timeout (1 s) and its requests were appended one by
-- one, all queueing on the same locks. Taking every lock a batch needs up front, in one global
-- order, leaves no cycle; the original function's own lock calls then find them already held.
ALTER FUNCTION ledger.append_batch(int[], text[], text[], bigint[], bigint[], text[], int[],
                                   uuid[], text[], smallint[], jsonb[], jsonb[], timestamptz[],
                                   bytea[])
    RENAME TO append_batch_holding_locks;

-- Same arguments and answer as before (see the event-log migration).
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
    lock_key bigint;
BEGIN
    FOR lock_key IN
        SELECT DISTINCT hashtextextended(part.stream_id, 0)
          FROM unnest(stream_ids, expected_versions) AS part(stream_id, expected_version)
         WHERE part.expected_version < 0
         ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(lock_key);
    END LOOP;
    RETURN QUERY SELECT * FROM ledger.append_batch_holding_locks(
        part_requests, stream_ids, categories, expected_versions, since_versions, tolerated,
        event_parts, event_ids, event_types, schema_versions, payloads, metadatas, recorded_ats,
        row_hashes);
END
$$;
