ALTER TABLE password_reset_requests DROP COLUMN owners_browser;
