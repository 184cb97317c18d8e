DROP TRIGGER group_members_counted_in;
DROP TRIGGER group_members_counted_out;

CREATE TRIGGER group_members_counted_in AFTER INSERT ON group_members
BEGIN
    UPDATE groups SET member_count = member_count + 1 WHERE id = NEW.group_id;
END;

CREATE TRIGGER group_members_counted_out AFTER DELETE ON group_members
BEGIN
    UPDATE groups SET member_count = member_count - 1 WHERE id = OLD.group_id;
END;

ALTER TABLE groups DROP COLUMN members_version;
