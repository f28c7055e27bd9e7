-- cano-postgres schema, version 6: the claims of a batch decided together.
-- cano_claim_batch answers each (flow, scheduled_us, max_live) of its arrays exactly as
-- cano_claim would, called once per fire in the arrays' order, in one call: it locks the
-- batch's flow rows and existing claim rows at once, in (flow, time) order (so two nodes
-- claiming overlapping batches never deadlock), then decides and writes the fires of every
-- flow that appears once in the batch with one statement, instead of the nine statements
-- per fire of a cano_claim call. A flow with more than one fire in the batch (catch-up
-- after a restart) goes through cano_claim fire by fire, oldest first, because each of its
-- fires sees the one before (the high-water mark, the live count).
-- Each row also carries its place in the arrays (o_n, from 1) and its fire (o_flow, o_at).
-- Its search path is fixed to this schema, like cano_holds_claim's.

CREATE FUNCTION cano_claim_batch(p_flows text[], p_ats bigint[], p_node text, p_lease_us bigint,
                                 p_limits bigint[])
RETURNS TABLE (o_n bigint, o_flow text, o_at bigint, o_status smallint, o_fence bigint,
               o_expires_us bigint, o_takeovers bigint, o_owner text, o_outcome smallint,
               o_high_water_us bigint, o_now_us bigint, o_live bigint)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    t timestamptz;
    v_until timestamptz;
    r record;
BEGIN
    IF cardinality(p_flows) IS DISTINCT FROM cardinality(p_ats)
       OR cardinality(p_flows) IS DISTINCT FROM cardinality(p_limits) THEN
        RAISE EXCEPTION 'cano_claim_batch: % flows, % times and % limits',
            cardinality(p_flows), cardinality(p_ats), cardinality(p_limits);
    END IF;
    INSERT INTO cano_ledger_flows AS l (flow)
    SELECT DISTINCT f.flow FROM unnest(p_flows) f(flow) ORDER BY f.flow
    ON CONFLICT DO NOTHING;
    PERFORM 1 FROM cano_ledger_flows l WHERE l.flow = ANY (p_flows) ORDER BY l.flow FOR UPDATE;
    PERFORM 1 FROM cano_fire_claims k
      JOIN unnest(p_flows, p_ats) q(flow, at) ON k.flow = q.flow AND k.scheduled_us = q.at
     ORDER BY k.flow, k.scheduled_us FOR UPDATE OF k;
    t := clock_timestamp();
    v_until := t + p_lease_us * interval '1 microsecond';

    RETURN QUERY
    WITH q AS (
        SELECT x.n, x.flow, x.at, x.max_live, count(*) OVER (PARTITION BY x.flow) AS times
          FROM unnest(p_flows, p_ats, p_limits) WITH ORDINALITY x(flow, at, max_live, n)
    ),
    -- Each flow's live claims, counted once (by the flow index, not the lease index).
    live AS (
        SELECT k.flow, count(*) FILTER (WHERE t < k.lease_until) AS live
          FROM cano_fire_claims k
         WHERE k.flow = ANY (p_flows) AND k.state = 0
         GROUP BY k.flow
    ),
    -- kind: 1 the flow is owned by another node, 2 our live claim (renewed), 3 another
    -- live or lapsed claim, 4 done, 5 abandoned, 6 at or below the high-water mark,
    -- 7 at the limit of live claims, 8 a new claim.
    d AS (
        SELECT q.n, q.flow, q.at, f.owner AS f_owner, f.owner_until, f.high_water_us,
               c.owner AS c_owner, c.fence AS c_fence, c.lease_until AS c_until,
               c.outcome AS c_outcome, c.takeovers AS c_takeovers,
               coalesce(z.live, 0) AS live,
               CASE
                 WHEN f.owner IS NOT NULL AND f.owner <> p_node AND t < f.owner_until THEN 1
                 WHEN c.flow IS NOT NULL AND c.state = 0 AND c.owner = p_node
                      AND t < c.lease_until THEN 2
                 WHEN c.flow IS NOT NULL AND c.state = 0 THEN 3
                 WHEN c.flow IS NOT NULL AND c.state = 1 THEN 4
                 WHEN c.flow IS NOT NULL THEN 5
                 WHEN f.high_water_us IS NOT NULL AND q.at <= f.high_water_us THEN 6
                 WHEN coalesce(z.live, 0) >= q.max_live THEN 7
                 ELSE 8
               END AS kind
          FROM q
          JOIN cano_ledger_flows f ON f.flow = q.flow AND f.flow = ANY (p_flows)
          LEFT JOIN cano_fire_claims c ON c.flow = q.flow AND c.scheduled_us = q.at
          LEFT JOIN live z ON z.flow = q.flow
         WHERE q.times = 1
    ),
    renewed AS (
        UPDATE cano_fire_claims k SET lease_until = v_until
          FROM d WHERE d.kind = 2 AND k.flow = d.flow AND k.scheduled_us = d.at
        RETURNING k.flow
    ),
    fenced AS (
        UPDATE cano_ledger_flows l SET fence = l.fence + 1, high_water_us = d.at
          FROM d WHERE d.kind = 8 AND l.flow = d.flow
        RETURNING l.flow, l.fence
    ),
    inserted AS (
        INSERT INTO cano_fire_claims (flow, scheduled_us, owner, fence, state, lease_until,
                                      takeovers, claimed_at)
        SELECT d.flow, d.at, p_node, e.fence, 0, v_until, 0, t
          FROM d JOIN fenced e ON e.flow = d.flow
        RETURNING flow
    )
    SELECT d.n, d.flow, d.at,
           (CASE d.kind WHEN 1 THEN 1 WHEN 2 THEN 0 WHEN 3 THEN 1 WHEN 4 THEN 2 WHEN 5 THEN 3
                        WHEN 6 THEN 4 WHEN 7 THEN 6 ELSE 0 END)::smallint,
           CASE d.kind WHEN 2 THEN d.c_fence WHEN 8 THEN e.fence END,
           CASE d.kind WHEN 1 THEN cano_us(d.owner_until) WHEN 2 THEN cano_us(v_until)
                       WHEN 3 THEN cano_us(d.c_until) WHEN 8 THEN cano_us(v_until) END,
           CASE d.kind WHEN 2 THEN d.c_takeovers WHEN 5 THEN d.c_takeovers WHEN 8 THEN 0::bigint END,
           CASE d.kind WHEN 1 THEN d.f_owner WHEN 3 THEN d.c_owner END,
           CASE d.kind WHEN 4 THEN d.c_outcome END,
           CASE d.kind WHEN 6 THEN d.high_water_us END,
           cano_us(t),
           CASE WHEN d.kind IN (7, 8) THEN d.live END
      FROM d LEFT JOIN fenced e ON e.flow = d.flow; -- renewed and inserted run unread


    FOR r IN
        SELECT y.n, y.flow, y.at, y.max_live
          FROM (SELECT x.*, count(*) OVER (PARTITION BY x.flow) AS times
                  FROM unnest(p_flows, p_ats, p_limits) WITH ORDINALITY x(flow, at, max_live, n)) y
         WHERE y.times > 1
         ORDER BY y.n
    LOOP
        RETURN QUERY SELECT r.n, r.flow, r.at, c.* FROM cano_claim(r.flow, r.at, p_node, p_lease_us, r.max_live) c;
    END LOOP;
END $$;
