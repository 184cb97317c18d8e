//! The audit trail's rows. Inserting is the only write here: the table is insert-only
//! (database triggers refuse UPDATE and DELETE), except for retention in [`prune`].

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::dsl::{AsSelect, IntoBoxed, Select};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use super::schema::audit_events;
use super::{DbConnection, MultiBackend};

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
// NULL, not DEFAULT, for absent values: SQLite's multi-row insert cannot say DEFAULT.
#[diesel(treat_none_as_default_value = false)]
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

/// Whether the organization's trail already holds an `action` event about `target_id`
/// recorded at `since` or later (read through the organization's target index).
pub fn recorded_for(
    conn: &mut DbConnection,
    org_id: &str,
    target_id: &str,
    action: &str,
    since: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        audit_events::table
            .filter(audit_events::org_id.eq(org_id))
            .filter(audit_events::target_id.eq(target_id))
            .filter(audit_events::created_at.ge(since))
            .filter(audit_events::action.eq(action)),
    ))
    .get_result(conn)
}

/// Whether `actor_email` already has an `action` event with exactly these `details` in
/// the organization's trail (outside any organization for `None`), recorded at `since` or
/// later (read through the actor index).
pub fn recorded_by(
    conn: &mut DbConnection,
    org_id: Option<&str>,
    actor_email: &str,
    action: &str,
    details: &str,
    since: NaiveDateTime,
) -> QueryResult<bool> {
    let events = audit_events::table
        .filter(audit_events::actor_email.eq(actor_email))
        .filter(audit_events::created_at.ge(since))
        .filter(audit_events::action.eq(action))
        .filter(audit_events::details.eq(details));
    match org_id {
        Some(org_id) => diesel::select(diesel::dsl::exists(
            events.filter(audit_events::org_id.eq(org_id)),
        ))
        .get_result(conn),
        None => diesel::select(diesel::dsl::exists(
            events.filter(audit_events::org_id.is_null()),
        ))
        .get_result(conn),
    }
}

/// How many `action` events `actor_email` has with one of these `details` in the
/// organization's trail (outside any organization for `None`), at `since` or later, read
/// through the actor index and counted no further than `cap`.
pub fn count_recorded_by(
    conn: &mut DbConnection,
    org_id: Option<&str>,
    actor_email: &str,
    action: &str,
    details: &[&str],
    since: NaiveDateTime,
    cap: i64,
) -> QueryResult<i64> {
    let events = audit_events::table
        .filter(audit_events::actor_email.eq(actor_email))
        .filter(audit_events::created_at.ge(since))
        .filter(audit_events::action.eq(action))
        .filter(audit_events::details.eq_any(details))
        .select(audit_events::id)
        .limit(cap);
    let found: Vec<String> = match org_id {
        Some(org_id) => events.filter(audit_events::org_id.eq(org_id)).load(conn)?,
        None => events.filter(audit_events::org_id.is_null()).load(conn)?,
    };
    Ok(found.len() as i64)
}

/// How many events of `actions` this actor recorded in the organization since `since`
/// (served by `audit_org_actor_idx`).
pub fn count_by_actor_since(
    conn: &mut DbConnection,
    org_id: &str,
    actor_email: &str,
    actions: &[&str],
    since: NaiveDateTime,
) -> QueryResult<i64> {
    audit_events::table
        .filter(audit_events::org_id.eq(org_id))
        .filter(audit_events::actor_email.eq(actor_email))
        .filter(audit_events::created_at.ge(since))
        .filter(audit_events::action.eq_any(actions))
        .count()
        .get_result(conn)
}

/// Whether `action` was recorded about this target in the organization since `since`.
/// How many platform-wide (no organization) `action` events name `target_id` since
/// `since`, counted no further than `cap` (read through the target index).
pub fn count_platform_about(
    conn: &mut DbConnection,
    action: &str,
    target_id: &str,
    since: NaiveDateTime,
    cap: i64,
) -> QueryResult<i64> {
    let found: Vec<String> = audit_events::table
        .filter(audit_events::org_id.is_null())
        .filter(audit_events::target_id.eq(target_id))
        .filter(audit_events::created_at.ge(since))
        .filter(audit_events::action.eq(action))
        .select(audit_events::id)
        .limit(cap)
        .load(conn)?;
    Ok(found.len() as i64)
}

pub fn recorded_about(
    conn: &mut DbConnection,
    org_id: &str,
    action: &str,
    target_id: &str,
    since: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        audit_events::table
            .filter(audit_events::org_id.eq(org_id))
            .filter(audit_events::action.eq(action))
            .filter(audit_events::target_id.eq(target_id))
            .filter(audit_events::created_at.ge(since)),
    ))
    .get_result(conn)
}

/// Many rows in one statement (seeding). Keep `rows` under ~2,500 so the bind count
/// stays below SQLite's and PostgreSQL's limits.
pub fn insert_many(conn: &mut DbConnection, rows: &[NewAuditRow]) -> QueryResult<usize> {
    // Multi-row VALUES does not compile on the multi connection; each backend's does.
    let insert = diesel::insert_into(audit_events::table).values(rows);
    match conn {
        DbConnection::Sqlite(c) => insert.execute(c),
        DbConnection::Postgresql(c) => insert.execute(c),
    }
}

/// Newest first; used by tests.
pub fn latest_for_org(
    conn: &mut DbConnection,
    org_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let scope = match org_id {
        Some(org) => Scope::Org(org.to_string()),
        None => Scope::Platform,
    };
    page(conn, &scope, &Filter::default(), None, limit)
}

/// Which events a query may see. Organization pages always pass `Org` with the
/// organization taken from the path, so tenant isolation is part of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Org(String),
    /// Events outside any organization: sign-ins, sign-outs, retention.
    Platform,
    /// Every event (the platform audit page without an organization filter).
    All,
}

/// Exact-match filters; each combination is served in order by one index (see the
/// audit migrations), so a page costs the same at 10 rows or 10 million.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub actor_email: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    /// Narrows a filter above to one account (an address may have been someone else's);
    /// read from the rows that filter's index finds, in its order.
    pub actor_id: Option<String>,
    /// Narrows a filter above to one kind of target, as `actor_id` does.
    pub target_type: Option<String>,
    /// Inclusive.
    pub from: Option<NaiveDateTime>,
    /// Exclusive.
    pub until: Option<NaiveDateTime>,
}

/// Position after the last row of a page, in the (created_at, id) descending order; the
/// key a page's cursor carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventKey {
    pub created_at: NaiveDateTime,
    pub id: String,
}

impl EventKey {
    pub fn after(row: &AuditRow) -> Self {
        EventKey {
            created_at: row.created_at,
            id: row.id.clone(),
        }
    }
}

type AuditQuery =
    IntoBoxed<'static, Select<audit_events::table, AsSelect<AuditRow, MultiBackend>>, MultiBackend>;

fn build(scope: &Scope, filter: &Filter, after: Option<&EventKey>, limit: i64) -> AuditQuery {
    use audit_events::dsl as a;
    let mut query = a::audit_events
        .select(AuditRow::as_select())
        .into_boxed::<MultiBackend>();
    query = match scope {
        Scope::Org(org) => query.filter(a::org_id.eq(org.clone())),
        Scope::Platform => query.filter(a::org_id.is_null()),
        Scope::All => query,
    };
    if let Some(actor) = &filter.actor_email {
        query = query.filter(a::actor_email.eq(actor.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(a::action.eq(action.clone()));
    }
    if let Some(target) = &filter.target_id {
        query = query.filter(a::target_id.eq(target.clone()));
    }
    if let Some(label) = &filter.target_label {
        query = query.filter(a::target_label.eq(label.clone()));
    }
    if let Some(actor_id) = &filter.actor_id {
        query = query.filter(a::actor_id.eq(actor_id.clone()));
    }
    if let Some(target_type) = &filter.target_type {
        query = query.filter(a::target_type.eq(target_type.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(a::created_at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(a::created_at.lt(until));
    }
    if let Some(cursor) = after {
        // `created_at <= t` bounds the index range; the OR only sorts out ties at t.
        // A plain `(created_at < t OR (created_at = t AND id < i))` would make the
        // planner walk every newer row first.
        query = query.filter(a::created_at.le(cursor.created_at)).filter(
            a::created_at
                .lt(cursor.created_at)
                .or(a::id.lt(cursor.id.clone())),
        );
    }
    query
        .order((a::created_at.desc(), a::id.desc()))
        .limit(limit)
}

/// Up to `limit` events, newest first, after `after`: keyset pagination, no OFFSET.
pub fn page(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    after: Option<&EventKey>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    build(scope, filter, after, limit).load(conn)
}

/// The database's plan for [`page`], one line per step: tests check that every filter
/// is served by an index in order, without a sort.
pub fn explain_page(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    after: Option<&EventKey>,
    limit: i64,
) -> QueryResult<Vec<String>> {
    super::explain(conn, build(scope, filter, after, limit))
}

/// Retention, the one way audit rows leave the table: deletes events older than
/// `cutoff` and records that it did, in one transaction. The triggers that make the
/// table insert-only let these deletes through only inside this transaction and only
/// for rows older than `cutoff` (see the `audit_insert_only` migrations).
pub fn prune(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    record: impl FnOnce(&mut DbConnection, usize) -> QueryResult<()>,
) -> QueryResult<usize> {
    super::write_tx(conn, |conn| {
        match conn {
            DbConnection::Sqlite(c) => {
                diesel::sql_query("INSERT INTO audit_prune_permit (id, cutoff) VALUES (1, ?)")
                    .bind::<Timestamp, _>(cutoff)
                    .execute(c)?;
            }
            DbConnection::Postgresql(c) => {
                // `true`: local to this transaction, gone at COMMIT or ROLLBACK.
                diesel::sql_query("SELECT set_config('portcullis.audit_prune_before', $1, true)")
                    .bind::<Text, _>(cutoff.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
                    .execute(c)?;
            }
        }
        let deleted =
            diesel::delete(audit_events::table.filter(audit_events::created_at.lt(cutoff)))
                .execute(conn)?;
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute("DELETE FROM audit_prune_permit")?;
        }
        record(conn, deleted)?;
        Ok(deleted)
    })
}
