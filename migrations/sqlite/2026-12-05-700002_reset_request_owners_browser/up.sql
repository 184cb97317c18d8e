-- The account whose own browser (a device cookie it was issued at sign-in, with its
-- current password) asked for the reset: a stranger's requests must not use up the
-- owner's day of reset emails.
ALTER TABLE password_reset_requests ADD COLUMN owners_browser TEXT;
