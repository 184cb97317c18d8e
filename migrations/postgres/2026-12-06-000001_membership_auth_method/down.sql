DROP TRIGGER users_auth_method_reaches_memberships ON users;
DROP FUNCTION users_auth_method_reaches_memberships();
DROP TRIGGER memberships_take_auth_method ON memberships;
DROP FUNCTION memberships_take_auth_method();
DROP INDEX memberships_org_auth_idx;
ALTER TABLE memberships DROP COLUMN auth_method;
