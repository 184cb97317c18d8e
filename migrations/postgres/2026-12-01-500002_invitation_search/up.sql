-- The Invited tab's search by address prefix (compared byte-wise, so a prefix's
-- addresses sit together in the index).
CREATE INDEX invitations_org_email_idx ON invitations (org_id, email COLLATE "C");
