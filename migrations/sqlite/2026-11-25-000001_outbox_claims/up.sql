-- claimed_by names the outbox worker that holds an email's lease (next_attempt_at is the
-- lease's end while it is set): a worker that finds it set on an expired row knows it is
-- taking over from a claimer that died, and a worker shutting down releases only its own.
ALTER TABLE email_outbox ADD COLUMN claimed_by TEXT;
