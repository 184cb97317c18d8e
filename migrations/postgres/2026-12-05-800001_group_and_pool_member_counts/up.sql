-- How many members each group and each pool has, for the Groups and Pools tabs (the
-- Pools tab is every member's): read from the row instead of counting the memberships
-- on every view. Kept by the database, so every path that adds or removes a row counts,
-- cascades included.
--
-- Once per statement, from its transition table, not once per row: updating one row
-- many times in a transaction leaves a version each later update walks (20,000 updates
-- of one row took 2.3 s here, 40,000 took 8.7 s). Writers that change many members of
-- one group do so in few statements (`groups::remove_members`).
-- No row comes or goes between the count below and the triggers that keep it (an older
-- instance still running while this one migrates).
LOCK TABLE group_members, pool_members IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE groups ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
UPDATE groups SET member_count = c.n
FROM (SELECT group_id, COUNT(*) AS n FROM group_members GROUP BY group_id) c
WHERE groups.id = c.group_id;

CREATE FUNCTION group_members_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sign bigint := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    -- Locked in one order, so two statements counting into the same groups cannot
    -- deadlock on each other; and only as an update of a column that is no key locks,
    -- which the foreign-key checks of concurrent inserts (KEY SHARE) do not wait on.
    PERFORM 1 FROM groups WHERE id IN (SELECT group_id FROM changed) ORDER BY id FOR NO KEY UPDATE;
    UPDATE groups SET member_count = groups.member_count + sign * c.n
    FROM (SELECT group_id, COUNT(*) AS n FROM changed GROUP BY group_id) c
    WHERE groups.id = c.group_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER group_members_counted_in AFTER INSERT ON group_members
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION group_members_count();
CREATE TRIGGER group_members_counted_out AFTER DELETE ON group_members
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION group_members_count();

ALTER TABLE pools ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
UPDATE pools SET member_count = c.n
FROM (SELECT pool_id, COUNT(*) AS n FROM pool_members GROUP BY pool_id) c
WHERE pools.id = c.pool_id;

CREATE FUNCTION pool_members_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sign bigint := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    PERFORM 1 FROM pools WHERE id IN (SELECT pool_id FROM changed) ORDER BY id FOR NO KEY UPDATE;
    UPDATE pools SET member_count = pools.member_count + sign * c.n
    FROM (SELECT pool_id, COUNT(*) AS n FROM changed GROUP BY pool_id) c
    WHERE pools.id = c.pool_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER pool_members_counted_in AFTER INSERT ON pool_members
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION pool_members_count();
CREATE TRIGGER pool_members_counted_out AFTER DELETE ON pool_members
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION pool_members_count();
