-- Invitation emails queued before `send_before` existed carry a link that dies when the
-- invitation expires: give them that deadline, so that a mail server back after the link
-- died is not handed a dead link (emails of other kinds keep none, as before).
UPDATE email_outbox
SET send_before = (SELECT expires_at FROM invitations WHERE invitations.id = email_outbox.ref_id)
WHERE sent_at IS NULL AND failed_at IS NULL AND send_before IS NULL AND ref_id IS NOT NULL;
