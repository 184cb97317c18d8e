//! The audit trail: one event per state change (`trail`), insert-only storage and
//! retention (`storage`), the audit pages (`pages`, `filters`, `access`, `platform`), the
//! CSV export (`export`), and the query plans and demo seeding behind them (`scale`).

mod access;
mod catalogue;
mod export;
mod filters;
mod pages;
mod platform;
mod scale;
mod storage;
mod trail;
mod trail_cases;

use chrono::{NaiveDate, NaiveDateTime};
use portcullis::db;
use portcullis::db::audit_events::{self, AuditRow, Filter, NewAuditRow, Scope};

use crate::helpers::*;

/// Every event, oldest first.
fn all_events(app: &TestApp) -> Vec<AuditRow> {
    let mut rows = scope_events(app, Scope::All, Filter::default());
    rows.reverse();
    rows
}

/// The events of `scope` that match `filter`, newest first, as the pages order them.
fn scope_events(app: &TestApp, scope: Scope, filter: Filter) -> Vec<AuditRow> {
    audit_events::page(&mut app.conn(), &scope, &filter, None, 1_000_000).unwrap()
}

/// A recorded event, as a change elsewhere in the application would write it.
#[derive(Clone)]
struct Ev {
    org_id: String,
    actor: Option<String>,
    action: &'static str,
    target_id: Option<String>,
    target_label: Option<String>,
    details: String,
    at: NaiveDateTime,
}

impl Ev {
    /// An event of `action` at `at`, in the organization with this id.
    fn new(org_id: &str, action: &'static str, at: NaiveDateTime) -> Self {
        Ev {
            org_id: org_id.to_string(),
            actor: None,
            action,
            target_id: None,
            target_label: None,
            details: "{}".into(),
            at,
        }
    }
    fn actor(mut self, email: &str) -> Self {
        self.actor = Some(email.into());
        self
    }
    fn target(mut self, id: &str, label: &str) -> Self {
        self.target_id = Some(id.into());
        self.target_label = Some(label.into());
        self
    }
    fn details(mut self, details: &str) -> Self {
        self.details = details.into();
        self
    }
}

/// Inserts the events and answers their ids, in order.
fn insert_events(app: &TestApp, events: &[Ev]) -> Vec<String> {
    let ids: Vec<String> = events.iter().map(|_| db::new_id()).collect();
    let rows: Vec<NewAuditRow> = events
        .iter()
        .zip(&ids)
        .map(|(e, id)| NewAuditRow {
            id,
            org_id: Some(&e.org_id),
            actor_id: e.actor.as_deref().map(|_| "actor-id"),
            actor_email: e.actor.as_deref(),
            action: e.action,
            target_type: e.target_id.as_deref().map(|_| "user"),
            target_id: e.target_id.as_deref(),
            target_label: e.target_label.as_deref(),
            details: &e.details,
            ip: Some("192.0.2.1"),
            request_id: None,
            created_at: e.at,
        })
        .collect();
    let mut conn = app.conn();
    for chunk in rows.chunks(500) {
        audit_events::insert_many(&mut conn, chunk).unwrap();
    }
    ids
}

fn day(y: i32, m: u32, d: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// The `data-id`s of the audit table's rows, top to bottom.
fn row_ids(html: &str) -> Vec<String> {
    html.match_indices("<tr data-id=\"")
        .map(|(i, m)| {
            let start = i + m.len();
            let end = html[start..].find('"').unwrap() + start;
            html[start..end].to_string()
        })
        .collect()
}

fn csv_rows(body: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}
