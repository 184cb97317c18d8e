CREATE OR REPLACE FUNCTION group_members_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sign bigint := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    PERFORM 1 FROM groups WHERE id IN (SELECT group_id FROM changed) ORDER BY id FOR NO KEY UPDATE;
    UPDATE groups SET member_count = groups.member_count + sign * c.n
    FROM (SELECT group_id, COUNT(*) AS n FROM changed GROUP BY group_id) c
    WHERE groups.id = c.group_id;
    RETURN NULL;
END;
$$;

ALTER TABLE groups DROP COLUMN members_version;
