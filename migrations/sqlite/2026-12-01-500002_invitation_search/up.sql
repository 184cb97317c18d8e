-- The Invited tab's search by address prefix.
CREATE INDEX invitations_org_email_idx ON invitations (org_id, email);
