DROP INDEX email_outbox_ref_idx;
DROP INDEX email_outbox_due_idx;
ALTER TABLE email_outbox DROP COLUMN failed_at;
ALTER TABLE email_outbox DROP COLUMN ref_id;
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;
