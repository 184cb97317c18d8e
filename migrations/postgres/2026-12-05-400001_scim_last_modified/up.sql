-- SCIM's meta.lastModified of a Group: when its name or its members last changed, by
-- any path (it stayed at its creation for ever). A member's is memberships.updated_at,
-- which every change of what their User resource shows now moves, not only SCIM's own.
ALTER TABLE groups ADD COLUMN updated_at TIMESTAMP;
