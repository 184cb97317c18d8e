-- SCIM looks members up by userName (Okta's "GET /Users?filter=userName eq", before each
-- push) and by externalId (Entra's): without these, each lookup read the whole
-- organization.
CREATE INDEX memberships_org_user_name_idx ON memberships (org_id, user_name);
CREATE INDEX memberships_org_external_id_idx ON memberships (org_id, external_id);
