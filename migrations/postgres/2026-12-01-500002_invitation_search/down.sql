DROP INDEX invitations_org_email_idx;
