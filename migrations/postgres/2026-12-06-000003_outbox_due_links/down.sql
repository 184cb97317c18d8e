DROP INDEX email_outbox_due_link_idx;
