-- A member's Activity tab reads the events of the invitations they accepted, found here;
-- deleting an account (ON DELETE SET NULL) finds its invitations the same way.
CREATE INDEX invitations_accepted_user_idx ON invitations (org_id, accepted_user_id)
WHERE accepted_user_id IS NOT NULL;
