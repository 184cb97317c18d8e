//! The audit trail: every state change calls [`record`] inside its own transaction, so a
//! rolled-back change leaves no event and a committed one always has exactly one.

use diesel::QueryResult;
use serde_json::Value;

use crate::db::{self, DbConnection, audit_events};

/// Where a request came from, carried into each event it causes.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub kind: &'static str,
    pub id: String,
    pub label: String,
}

/// One audit event. Never put a password, token, hash or session id in `details`.
#[derive(Debug, Clone)]
pub struct Event {
    pub action: &'static str,
    pub org_id: Option<String>,
    pub actor: Option<Actor>,
    pub target: Option<Target>,
    pub details: Value,
    pub origin: Origin,
}

impl Event {
    pub fn new(action: &'static str, origin: &Origin) -> Self {
        Self {
            action,
            org_id: None,
            actor: None,
            target: None,
            details: Value::Object(Default::default()),
            origin: origin.clone(),
        }
    }

    pub fn org(mut self, org_id: &str) -> Self {
        self.org_id = Some(org_id.to_string());
        self
    }

    pub fn actor(mut self, id: &str, email: &str) -> Self {
        self.actor = Some(Actor {
            id: id.to_string(),
            email: email.to_string(),
        });
        self
    }

    pub fn target(mut self, kind: &'static str, id: &str, label: &str) -> Self {
        self.target = Some(Target {
            kind,
            id: id.to_string(),
            label: label.to_string(),
        });
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

pub fn record(conn: &mut DbConnection, event: &Event) -> QueryResult<()> {
    let id = db::new_id();
    let details = event.details.to_string();
    audit_events::insert(
        conn,
        &audit_events::NewAuditRow {
            id: &id,
            org_id: event.org_id.as_deref(),
            actor_id: event.actor.as_ref().map(|a| a.id.as_str()),
            actor_email: event.actor.as_ref().map(|a| a.email.as_str()),
            action: event.action,
            target_type: event.target.as_ref().map(|t| t.kind),
            target_id: event.target.as_ref().map(|t| t.id.as_str()),
            target_label: event.target.as_ref().map(|t| t.label.as_str()),
            details: &details,
            ip: event.origin.ip.as_deref(),
            request_id: event.origin.request_id.as_deref(),
            created_at: db::now(),
        },
    )
}

/// What a retention run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: usize,
    pub cutoff: chrono::NaiveDateTime,
}

/// Retention (`portcullis prune-audit --older-than DAYS`): deletes events older than
/// the cutoff and records an `audit.pruned` event with the count, in one transaction.
/// The only code path that removes audit rows.
pub fn prune(conn: &mut DbConnection, older_than_days: u32) -> QueryResult<Pruned> {
    let cutoff = db::now() - chrono::Duration::days(i64::from(older_than_days));
    let deleted = audit_events::prune(conn, cutoff, |conn, deleted| {
        record(
            conn,
            &Event::new("audit.pruned", &Origin::default()).details(serde_json::json!({
                "deleted": deleted,
                "cutoff": crate::domain::timefmt::iso_time(cutoff),
                "older_than_days": older_than_days,
                "via": "cli",
            })),
        )
    })?;
    Ok(Pruned { deleted, cutoff })
}
