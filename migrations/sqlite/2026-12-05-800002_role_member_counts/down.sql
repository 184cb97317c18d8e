DROP TRIGGER memberships_role_counted_moved;
DROP TRIGGER memberships_role_counted_out;
DROP TRIGGER memberships_role_counted_in;
ALTER TABLE roles DROP COLUMN member_count;
