use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_events;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: String,
    pub org_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub details: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditRow<'a> {
    pub id: &'a str,
    pub org_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub actor_email: Option<&'a str>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub target_label: Option<&'a str>,
    pub details: &'a str,
    pub ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, row: &NewAuditRow) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Newest first; used by tests and, later, by the audit page.
pub fn latest_for_org(
    conn: &mut DbConnection,
    org_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let query = audit_events::table
        .select(AuditRow::as_select())
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .limit(limit);
    match org_id {
        Some(org) => query.filter(audit_events::org_id.eq(org)).load(conn),
        None => query.filter(audit_events::org_id.is_null()).load(conn),
    }
}

/// Events about one target in one organization, newest first (a member's Activity tab).
pub fn for_target(
    conn: &mut DbConnection,
    org_id: &str,
    target_id: &str,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    audit_events::table
        .filter(audit_events::org_id.eq(org_id))
        .filter(audit_events::target_id.eq(target_id))
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}
