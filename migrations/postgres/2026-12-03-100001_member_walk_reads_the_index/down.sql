DROP INDEX memberships_org_email_idx;
CREATE INDEX memberships_org_email_idx ON memberships (org_id, email, user_id);
DROP INDEX memberships_org_name_idx;
CREATE INDEX memberships_org_name_idx ON memberships (org_id, sort_name, user_id);
DROP INDEX memberships_org_status_email_idx;
CREATE INDEX memberships_org_status_email_idx ON memberships (org_id, status, email, user_id);
DROP INDEX memberships_org_status_name_idx;
CREATE INDEX memberships_org_status_name_idx ON memberships (org_id, status, sort_name, user_id);
