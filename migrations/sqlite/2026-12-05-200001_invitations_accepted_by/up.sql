-- A member's Activity tab reads the events of the invitations they accepted, newest
-- first: found here in that order, whatever the organization's other invitations.
CREATE INDEX invitations_accepted_user_idx
ON invitations (org_id, accepted_user_id, created_at, id)
WHERE accepted_user_id IS NOT NULL;
