DROP TRIGGER pool_members_counted_out;
DROP TRIGGER pool_members_counted_in;
ALTER TABLE pools DROP COLUMN member_count;
DROP TRIGGER group_members_counted_out;
DROP TRIGGER group_members_counted_in;
ALTER TABLE groups DROP COLUMN member_count;
