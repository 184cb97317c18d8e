DROP TRIGGER memberships_take_auth_method;
DROP TRIGGER users_auth_method_reaches_memberships;
DROP INDEX memberships_org_auth_idx;
ALTER TABLE memberships DROP COLUMN auth_method;
