-- A member's Activity tab reads what they did by account, not by address: an identity
-- provider may re-address them, and what they did before stays theirs.
CREATE INDEX audit_org_actor_id_idx ON audit_events (org_id, actor_id, created_at, id);
