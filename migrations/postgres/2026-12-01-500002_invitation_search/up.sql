-- The Invited tab's search by address prefix (compared byte-wise, so a prefix's
-- addresses sit together in the index), and its pending-count badge (a range of
-- unexpired pending invitations, counted from the index alone).
CREATE INDEX invitations_org_email_idx ON invitations (org_id, email COLLATE "C");
CREATE INDEX invitations_org_pending_expiry_idx ON invitations (org_id, expires_at) WHERE status = 'pending';
