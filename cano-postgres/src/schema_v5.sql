-- cano-postgres schema, version 5: the supported SQL contract for fenced side effects.
-- cano_holds_claim(flow, scheduled_us, fence) is true only while that fire's claim is live
-- (claimed, its lease not run out in the database clock) with that fence, and it takes a
-- FOR SHARE lock on the claim row: a takeover, a completion or a renewal of that claim
-- waits until the caller's transaction ends, so a side effect written in the same
-- transaction cannot be overtaken by another node's run of the same fire.
-- Its search path is fixed to this schema (SET ... FROM CURRENT, the migration's), so it
-- works from any connection as "<schema>".cano_holds_claim(...).
-- The command log (v4) has no CHECK on kind: a newer node's new kinds need no schema
-- version, and older readers skip the kinds they do not know.

CREATE FUNCTION cano_holds_claim(p_flow text, p_scheduled_us bigint, p_fence bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM 1 FROM cano_fire_claims k
     WHERE k.flow = p_flow AND k.scheduled_us = p_scheduled_us AND k.fence = p_fence
       AND k.state = 0 AND k.lease_until > clock_timestamp()
       FOR SHARE;
    RETURN FOUND;
END $$;
