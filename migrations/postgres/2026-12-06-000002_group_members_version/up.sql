-- A group's SCIM version (its ETag) was a digest of its member ids, so every read of a
-- group read all of them, even one without its members (`excludedAttributes=members`,
-- as Entra always reads): a million ids for a group of a million. The trigger that
-- counts a group's members now also counts each statement that changed them, and the
-- version digests that number instead.
ALTER TABLE groups ADD COLUMN members_version BIGINT NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION group_members_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sign bigint := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    -- Locked in one order, so two statements counting into the same groups cannot
    -- deadlock on each other; and only as an update of a column that is no key locks,
    -- which the foreign-key checks of concurrent inserts (KEY SHARE) do not wait on.
    PERFORM 1 FROM groups WHERE id IN (SELECT group_id FROM changed) ORDER BY id FOR NO KEY UPDATE;
    UPDATE groups SET member_count = groups.member_count + sign * c.n,
        members_version = groups.members_version + 1
    FROM (SELECT group_id, COUNT(*) AS n FROM changed GROUP BY group_id) c
    WHERE groups.id = c.group_id;
    RETURN NULL;
END;
$$;
