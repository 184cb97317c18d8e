DROP INDEX audit_label_idx;
DROP INDEX audit_target_idx;
DROP INDEX audit_action_idx;
DROP INDEX audit_actor_idx;
DROP INDEX audit_org_label_idx;
DROP TRIGGER audit_events_no_delete;
DROP TRIGGER audit_events_no_update;
DROP TABLE audit_prune_permit;
