ALTER TABLE email_outbox DROP COLUMN send_before;
