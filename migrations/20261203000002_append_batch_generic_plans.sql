-- The batch function's statements take arrays as parameters, and PostgreSQL planned them
-- again for every call (a custom plan per set of values): under the initiate bench, planning
-- inside the function (`pg_plan_query` under `SPI_execute_plan_with_paramlist`, perf) was 6 %
-- of PostgreSQL's time. Their plans do not depend on the arrays' contents: each statement
-- unnests its arrays and probes the log by stream. So each connection now plans them once.
--
-- A plan made once lasts as long as the connection, and the first may be made while the log
-- is nearly empty, where a sequential scan is the cheapest probe; with sequential scans
-- ruled out the probes use the (stream, version) key whatever the log's size then.
ALTER FUNCTION ledger.append_batch(int[], int[], bigint[], bigint[], int[], int[], text[], text[],
                                   text[], int[], bigint[], text[], int[], uuid[], text[],
                                   smallint[], jsonb[], jsonb[], timestamptz[], bytea[])
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off;
