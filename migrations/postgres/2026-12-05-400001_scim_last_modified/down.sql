ALTER TABLE groups DROP COLUMN updated_at;
