-- cano-postgres schema, version 4: a durable log of fleet commands.
-- Every published command is a row; `seq` is the cursor a node reads after
-- (`commands_after`), so a command published while a node was disconnected reaches it when
-- it reads again. NOTIFY only wakes the readers. The log keeps the last commands (see
-- COMMANDS_KEPT in conn.rs) and `retain` drops those older than its cutoff.

CREATE TABLE cano_fleet_commands (
    seq bigserial PRIMARY KEY,
    flow text NOT NULL,
    kind smallint NOT NULL,
    origin text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX cano_fleet_commands_created ON cano_fleet_commands (created_at);

-- Publishes one command: appends it, drops what is older than the last p_keep, and wakes
-- the listeners (the payload is the new seq, a hint only). Publishers take the table's
-- lock in turn, so the rows become visible in seq order: a reader that has seen seq n
-- never sees a smaller seq appear later.
CREATE FUNCTION cano_publish(p_flow text, p_kind smallint, p_origin text, p_channel text,
                             p_keep bigint)
RETURNS TABLE (o_seq bigint)
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE cano_fleet_commands IN SHARE ROW EXCLUSIVE MODE;
    INSERT INTO cano_fleet_commands (flow, kind, origin) VALUES (p_flow, p_kind, p_origin)
    RETURNING seq INTO o_seq;
    DELETE FROM cano_fleet_commands f WHERE f.seq <= o_seq - p_keep;
    PERFORM pg_notify(p_channel, o_seq::text);
    RETURN NEXT;
END $$;
