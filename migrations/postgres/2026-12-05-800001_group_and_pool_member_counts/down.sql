DROP TRIGGER pool_members_counted_out ON pool_members;
DROP TRIGGER pool_members_counted_in ON pool_members;
DROP FUNCTION pool_members_count();
ALTER TABLE pools DROP COLUMN member_count;
DROP TRIGGER group_members_counted_out ON group_members;
DROP TRIGGER group_members_counted_in ON group_members;
DROP FUNCTION group_members_count();
ALTER TABLE groups DROP COLUMN member_count;
