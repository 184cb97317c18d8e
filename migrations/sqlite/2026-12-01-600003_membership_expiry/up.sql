-- An optional end of access: the moment a membership stops (the start of the day after
-- the "access until" date an admin chose), and the same on an invitation, which passes
-- it on to the membership its acceptance creates.
ALTER TABLE memberships ADD COLUMN access_until TIMESTAMP;
ALTER TABLE invitations ADD COLUMN access_until TIMESTAMP;
-- The expiry job reads the active memberships whose time is up, oldest first; the
-- Users tab's "expiring" filter reads one organization's memberships that have an end.
CREATE INDEX memberships_expiry_idx ON memberships (access_until, org_id, user_id)
    WHERE access_until IS NOT NULL AND status = 'active';
CREATE INDEX memberships_org_expiry_idx ON memberships (org_id, access_until, user_id)
    WHERE access_until IS NOT NULL;
