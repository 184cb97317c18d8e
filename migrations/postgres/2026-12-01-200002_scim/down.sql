ALTER TABLE groups DROP COLUMN external_id;
ALTER TABLE memberships DROP COLUMN updated_at;
ALTER TABLE memberships DROP COLUMN user_name;
ALTER TABLE memberships DROP COLUMN scim_profile;
ALTER TABLE memberships DROP COLUMN external_id;
