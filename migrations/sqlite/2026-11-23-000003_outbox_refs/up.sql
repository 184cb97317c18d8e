-- ref_id names what an email is about (an invitation), so a resend or a cancel can drop
-- the unsent email that carries a dead link; failed_at marks an email given up on.
ALTER TABLE email_outbox ADD COLUMN ref_id TEXT;
ALTER TABLE email_outbox ADD COLUMN failed_at TIMESTAMP;
DROP INDEX email_outbox_due_idx;
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX email_outbox_ref_idx ON email_outbox (ref_id) WHERE sent_at IS NULL;
