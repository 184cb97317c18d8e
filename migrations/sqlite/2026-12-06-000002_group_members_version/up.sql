-- A group's SCIM version (its ETag) was a digest of its member ids, so every read of a
-- group read all of them, even one without its members (`excludedAttributes=members`,
-- as Entra always reads): a million ids for a group of a million. The triggers that
-- count a group's members now also count each change of them, and the version digests
-- that number instead.
ALTER TABLE groups ADD COLUMN members_version BIGINT NOT NULL DEFAULT 0;

DROP TRIGGER group_members_counted_in;
DROP TRIGGER group_members_counted_out;

CREATE TRIGGER group_members_counted_in AFTER INSERT ON group_members
BEGIN
    UPDATE groups SET member_count = member_count + 1, members_version = members_version + 1
    WHERE id = NEW.group_id;
END;

CREATE TRIGGER group_members_counted_out AFTER DELETE ON group_members
BEGIN
    UPDATE groups SET member_count = member_count - 1, members_version = members_version + 1
    WHERE id = OLD.group_id;
END;
