-- The outbox claims the emails carrying a link (send_before set: an invitation, a reset,
-- a set-up link) before the others, up to three quarters of a batch: this index walks
-- the due ones alone, in order, however many notices are due beside them.
CREATE INDEX email_outbox_due_link_idx ON email_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL AND send_before IS NOT NULL;
