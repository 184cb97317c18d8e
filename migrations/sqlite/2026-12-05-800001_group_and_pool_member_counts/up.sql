-- How many members each group and each pool has, for the Groups and Pools tabs (the
-- Pools tab is every member's): read from the row instead of counting the memberships
-- on every view, which at a million members took 0.1 s and scanned every
-- organization's. Kept by the database, so every path that adds or removes a row
-- counts, cascades included (SQLite fires triggers for a foreign key's ON DELETE).
ALTER TABLE groups ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
UPDATE groups SET member_count =
    (SELECT COUNT(*) FROM group_members WHERE group_members.group_id = groups.id);

CREATE TRIGGER group_members_counted_in AFTER INSERT ON group_members
BEGIN
    UPDATE groups SET member_count = member_count + 1 WHERE id = NEW.group_id;
END;

CREATE TRIGGER group_members_counted_out AFTER DELETE ON group_members
BEGIN
    UPDATE groups SET member_count = member_count - 1 WHERE id = OLD.group_id;
END;

ALTER TABLE pools ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
UPDATE pools SET member_count =
    (SELECT COUNT(*) FROM pool_members WHERE pool_members.pool_id = pools.id);

CREATE TRIGGER pool_members_counted_in AFTER INSERT ON pool_members
BEGIN
    UPDATE pools SET member_count = member_count + 1 WHERE id = NEW.pool_id;
END;

CREATE TRIGGER pool_members_counted_out AFTER DELETE ON pool_members
BEGIN
    UPDATE pools SET member_count = member_count - 1 WHERE id = OLD.pool_id;
END;
