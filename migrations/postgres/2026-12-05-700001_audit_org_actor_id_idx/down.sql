DROP INDEX audit_org_actor_id_idx;
