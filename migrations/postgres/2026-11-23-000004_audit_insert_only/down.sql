DROP INDEX audit_label_idx;
DROP INDEX audit_target_idx;
DROP INDEX audit_action_idx;
DROP INDEX audit_actor_idx;
DROP INDEX audit_org_label_idx;
DROP TRIGGER audit_events_no_truncate ON audit_events;
DROP TRIGGER audit_events_insert_only ON audit_events;
DROP FUNCTION audit_events_no_truncate();
DROP FUNCTION audit_events_insert_only();
