-- How many members hold each role directly, for the Roles page: read from the row
-- instead of counting the organization's memberships on every view. Kept by the
-- database, as groups' and pools' counts are (migration group_and_pool_member_counts):
-- memberships come and go once per statement, from its transition table; a change of
-- role is counted per row, and only when the role changed (a trigger on `role_id`
-- alone is not even queued for the other updates of a membership, such as its last
-- activity). One transaction changes at most the bulk action's 1,000 roles.
-- No membership comes, goes or changes role between the count below and the triggers
-- that keep it (an older instance still running while this one migrates).
LOCK TABLE memberships IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE roles ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
UPDATE roles SET member_count = c.n
FROM (SELECT role_id, COUNT(*) AS n FROM memberships GROUP BY role_id) c
WHERE roles.id = c.role_id;

CREATE FUNCTION memberships_role_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sign bigint := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    -- Locked in one order, so two statements counting into the same roles cannot
    -- deadlock on each other; and only as an update of a column that is no key locks,
    -- which the foreign-key checks of concurrent inserts (KEY SHARE) do not wait on.
    PERFORM 1 FROM roles WHERE id IN (SELECT role_id FROM changed) ORDER BY id FOR NO KEY UPDATE;
    UPDATE roles SET member_count = roles.member_count + sign * c.n
    FROM (SELECT role_id, COUNT(*) AS n FROM changed GROUP BY role_id) c
    WHERE roles.id = c.role_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER memberships_role_counted_in AFTER INSERT ON memberships
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION memberships_role_count();
CREATE TRIGGER memberships_role_counted_out AFTER DELETE ON memberships
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION memberships_role_count();

CREATE FUNCTION memberships_role_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM roles WHERE id IN (OLD.role_id, NEW.role_id) ORDER BY id FOR NO KEY UPDATE;
    UPDATE roles SET member_count = member_count - 1 WHERE id = OLD.role_id;
    UPDATE roles SET member_count = member_count + 1 WHERE id = NEW.role_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER memberships_role_counted_moved AFTER UPDATE OF role_id ON memberships
    FOR EACH ROW WHEN (OLD.role_id IS DISTINCT FROM NEW.role_id)
    EXECUTE FUNCTION memberships_role_moved();
