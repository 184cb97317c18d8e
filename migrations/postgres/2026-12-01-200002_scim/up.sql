-- SCIM provisioning (issue 15, item 2). The identity provider's own id for a member
-- (`externalId`) belongs to the membership: the same account provisioned by two
-- organizations' IdPs has two. `updated_at` is SCIM's meta.lastModified: when the
-- membership was last changed through SCIM (null: never since it was created).
-- `user_name` is SCIM's userName when the IdP's is not the account's email address
-- (null: the email is the userName). `scim_profile` is what the IdP last sent of the
-- attributes it owns (userName, name, displayName, emails, externalId, active), as JSON,
-- answered back as sent: the portal's own columns are derived from it.
ALTER TABLE memberships ADD COLUMN external_id TEXT;
ALTER TABLE memberships ADD COLUMN scim_profile TEXT;
ALTER TABLE memberships ADD COLUMN user_name TEXT;
ALTER TABLE memberships ADD COLUMN updated_at TIMESTAMP;
ALTER TABLE groups ADD COLUMN external_id TEXT;
