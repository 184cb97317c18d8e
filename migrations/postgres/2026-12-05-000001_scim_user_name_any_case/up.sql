-- SCIM's userName is not case-exact (RFC 7643): Okta asks `userName eq "ada"` for a
-- member it created as "Ada". The lookup compares both sides lower-cased, by the
-- database's own lower() on each side, so the index is on the same expression.
DROP INDEX memberships_org_user_name_idx;
CREATE INDEX memberships_org_user_name_idx ON memberships (org_id, lower(user_name));
