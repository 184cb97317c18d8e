-- An email that carries a link is not sent once the link is dead: retried for up to a
-- week, an invitation or a reset link arrived long after it stopped working.
ALTER TABLE email_outbox ADD COLUMN send_before TIMESTAMP;
