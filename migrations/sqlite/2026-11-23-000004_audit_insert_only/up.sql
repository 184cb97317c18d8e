-- The audit trail is insert-only: the database refuses UPDATE and DELETE on it, so no
-- code path (and no slip in one) can rewrite history.
--
-- The one exception is retention (`portcullis prune-audit`): inside its transaction it
-- writes a permit row naming a cutoff, deletes rows older than the cutoff, records that
-- it ran and removes the permit before committing. Rows at or after the cutoff stay
-- protected even then, and SQLite's single writer means no other connection ever sees a
-- permit.
CREATE TABLE audit_prune_permit (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    cutoff TIMESTAMP NOT NULL
);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is insert-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (
    SELECT 1 FROM audit_prune_permit WHERE OLD.created_at < audit_prune_permit.cutoff
)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is insert-only');
END;

-- Filters the audit pages offer that the first migration's indexes do not serve in
-- order: target by label within an organization, and every filter across organizations
-- (the platform audit page). Each ends in (created_at, id), the keyset order.
CREATE INDEX audit_org_label_idx ON audit_events (org_id, target_label, created_at, id);
CREATE INDEX audit_actor_idx ON audit_events (actor_email, created_at, id);
CREATE INDEX audit_action_idx ON audit_events (action, created_at, id);
CREATE INDEX audit_target_idx ON audit_events (target_id, created_at, id);
CREATE INDEX audit_label_idx ON audit_events (target_label, created_at, id);
-- Events outside any organization, in order: PostgreSQL does not treat `org_id IS NULL`
-- as fixing the column, so audit_org_time_idx cannot give it this order.
CREATE INDEX audit_platform_time_idx ON audit_events (created_at, id) WHERE org_id IS NULL;
