DROP INDEX memberships_org_expiry_idx;
DROP INDEX memberships_expiry_idx;
ALTER TABLE invitations DROP COLUMN access_until;
ALTER TABLE memberships DROP COLUMN access_until;
