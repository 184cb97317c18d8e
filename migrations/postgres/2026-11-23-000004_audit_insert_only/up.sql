-- The audit trail is insert-only: the database refuses UPDATE, DELETE and TRUNCATE on
-- it, so no code path (and no slip in one) can rewrite history.
--
-- The one exception is retention (`portcullis prune-audit`): inside its transaction it
-- sets `portcullis.audit_prune_before` with SET LOCAL semantics (set_config(..., true)),
-- which ends with the transaction and is invisible to every other session. Only rows
-- older than that cutoff may then be deleted; UPDATE is never allowed.
CREATE FUNCTION audit_events_insert_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cutoff text := current_setting('portcullis.audit_prune_before', true);
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(cutoff, '') <> '' THEN
        IF OLD.created_at < cutoff::timestamp THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_events is insert-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE FUNCTION audit_events_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is insert-only (TRUNCATE refused)'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_insert_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_insert_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_no_truncate();

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
