DROP INDEX memberships_org_user_name_idx;
CREATE INDEX memberships_org_user_name_idx ON memberships (org_id, user_name);
