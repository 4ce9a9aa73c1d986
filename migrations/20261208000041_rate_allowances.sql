-- Request rates shared by the API replicas, as the generic cell rate algorithm keeps them: per
-- key (e.g. a merchant's initiations), the theoretical arrival time of its next request. A
-- replica claims a few requests at a time and spends them from memory, so the replicas
-- together stay within the rate and its burst. A counter, not a business fact: it lives
-- outside the log.
CREATE TABLE ops.rate_allowances (
    key  text PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 128),
    tat  timestamptz NOT NULL
);

-- Grants up to `p_want` requests at one every `p_interval_us` microseconds with a burst of
-- `p_burst`, as of `p_now`; answers how many it granted and, when none, how many microseconds
-- until the next would be. The row lock orders concurrent claims.
CREATE FUNCTION ops.claim_allowance(
    p_key text, p_now timestamptz, p_want integer, p_interval_us bigint, p_burst integer,
    OUT granted integer, OUT wait_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_interval  interval := make_interval(secs => p_interval_us / 1e6);
    v_tolerance interval := make_interval(secs => p_interval_us * (p_burst - 1) / 1e6);
    v_tat       timestamptz;
BEGIN
    INSERT INTO ops.rate_allowances (key, tat) VALUES (p_key, p_now)
    ON CONFLICT (key) DO NOTHING;
    SELECT GREATEST(tat, p_now) INTO v_tat FROM ops.rate_allowances WHERE key = p_key FOR UPDATE;
    granted := GREATEST(0, LEAST(p_want,
        floor(extract(epoch FROM (p_now + v_tolerance + v_interval - v_tat)) * 1e6
              / p_interval_us)::integer));
    wait_us := CASE WHEN granted = 0
        THEN GREATEST(1, ceil(extract(epoch FROM (v_tat - v_tolerance - p_now)) * 1e6)::bigint)
        ELSE 0 END;
    IF granted > 0 THEN
        UPDATE ops.rate_allowances SET tat = v_tat + v_interval * granted WHERE key = p_key;
    END IF;
END
$$;
