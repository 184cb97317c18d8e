DROP TRIGGER memberships_role_counted_moved ON memberships;
DROP FUNCTION memberships_role_moved();
DROP TRIGGER memberships_role_counted_out ON memberships;
DROP TRIGGER memberships_role_counted_in ON memberships;
DROP FUNCTION memberships_role_count();
ALTER TABLE roles DROP COLUMN member_count;
