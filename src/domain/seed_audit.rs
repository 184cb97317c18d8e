//! Demo audit events in bulk (`portcullis seed-demo --audit-events N`), to try the audit
//! page on a realistic trail and to measure it at millions of rows.

use chrono::{Duration, NaiveDateTime};
use diesel::connection::SimpleConnection;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::db::audit_events::{self, NewAuditRow};
use crate::db::organizations::{self, Organization};
use crate::db::{self, DbConnection};

/// Rows per INSERT statement: 12 binds each stays under both backends' bind limits.
const ROWS_PER_INSERT: usize = 1000;
/// Statements per transaction: big enough to amortize the commit, small enough that
/// the portal's own writes never wait long for SQLite's lock.
const INSERTS_PER_TX: usize = 20;
/// Distinct people who act in the demo trail; the benchmark filters by one of them.
pub const DEMO_ACTORS: usize = 200;
const DEMO_TARGETS: usize = 5000;

/// Actions an organization's trail is made of, with how often each occurs.
const DEMO_ACTIONS: [(&str, u32); 10] = [
    ("invitation.created", 30),
    ("invitation.accepted", 20),
    ("invitation.resent", 8),
    ("invitation.cancelled", 4),
    ("member.role_changed", 10),
    ("member.updated", 10),
    ("member.deactivated", 6),
    ("member.activated", 4),
    ("member.removed", 3),
    ("access.denied", 5),
];

/// The email of demo actor `i`; actor 0 acts most, as an organization's main admin does.
pub fn demo_actor_email(i: usize) -> String {
    format!("actor{i}@demo.example")
}

/// What a seeding run did.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub org: Organization,
    pub inserted: u64,
}

/// Inserts `count` demo events into the organization `org_slug` (the first one when
/// `None`), spread over the year before now, in batched multi-row inserts. Calls
/// `progress(done, count)` after each transaction.
pub fn seed_audit_events(
    conn: &mut DbConnection,
    org_slug: Option<&str>,
    count: u64,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<Seeded> {
    let org = match org_slug {
        Some(slug) => organizations::find_by_slug(conn, slug)?,
        None => organizations::first(conn)?,
    }
    .ok_or_else(|| anyhow::anyhow!("no organization has the slug {org_slug:?}"))?;
    // Eleven indexes take random inserts; with SQLite's default 2 MB page cache every
    // batch re-reads their pages and seeding slows to a crawl past a million rows.
    if let DbConnection::Sqlite(c) = conn {
        c.batch_execute("PRAGMA cache_size = -524288")?;
    }
    let result = insert_all(conn, &org.id, count, &mut progress);
    if let DbConnection::Sqlite(c) = conn {
        c.batch_execute("PRAGMA cache_size = -2000")?;
    }
    result?;
    Ok(Seeded {
        org,
        inserted: count,
    })
}

fn insert_all(
    conn: &mut DbConnection,
    org_id: &str,
    count: u64,
    progress: &mut impl FnMut(u64, u64),
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(0x5eed_a0d1 ^ count);
    let actors: Vec<(String, String)> = (0..DEMO_ACTORS)
        .map(|i| (db::new_id(), demo_actor_email(i)))
        .collect();
    let targets: Vec<(String, String)> = (0..DEMO_TARGETS)
        .map(|i| (db::new_id(), format!("member{i}@demo.example")))
        .collect();
    let weight_total: u32 = DEMO_ACTIONS.iter().map(|(_, w)| w).sum();

    let end = db::now();
    let span = Duration::days(365);
    let start = end - span;
    let step_micros = (span.num_microseconds().unwrap_or(i64::MAX) / count.max(1) as i64).max(1);

    let mut done: u64 = 0;
    while done < count {
        let tx_rows = (count - done).min((ROWS_PER_INSERT * INSERTS_PER_TX) as u64);
        db::write_tx(conn, |conn| -> anyhow::Result<()> {
            let mut left = tx_rows;
            while left > 0 {
                let n = left.min(ROWS_PER_INSERT as u64) as usize;
                let batch: Vec<DemoEvent> = (0..n)
                    .map(|k| {
                        let i = done + (tx_rows - left) + k as u64;
                        let at = start + Duration::microseconds(i as i64 * step_micros);
                        demo_event(&mut rng, at, &actors, &targets, weight_total)
                    })
                    .collect();
                let rows: Vec<NewAuditRow> = batch.iter().map(|e| e.row(org_id)).collect();
                audit_events::insert_many(conn, &rows)?;
                left -= n as u64;
            }
            Ok(())
        })?;
        done += tx_rows;
        progress(done, count);
    }
    Ok(())
}

struct DemoEvent {
    id: String,
    actor_id: String,
    actor_email: String,
    action: &'static str,
    target_id: String,
    target_label: String,
    details: String,
    ip: String,
    created_at: NaiveDateTime,
}

impl DemoEvent {
    fn row<'a>(&'a self, org_id: &'a str) -> NewAuditRow<'a> {
        NewAuditRow {
            id: &self.id,
            org_id: Some(org_id),
            actor_id: Some(&self.actor_id),
            actor_email: Some(&self.actor_email),
            action: self.action,
            target_type: Some("user"),
            target_id: Some(&self.target_id),
            target_label: Some(&self.target_label),
            details: &self.details,
            ip: Some(&self.ip),
            request_id: None,
            created_at: self.created_at,
        }
    }
}

fn demo_event(
    rng: &mut StdRng,
    at: NaiveDateTime,
    actors: &[(String, String)],
    targets: &[(String, String)],
    weight_total: u32,
) -> DemoEvent {
    // Skewed: a few admins do most of the work.
    let actor = if rng.gen_bool(0.3) {
        0
    } else {
        rng.gen_range(0..actors.len())
    };
    let target = rng.gen_range(0..targets.len());
    let mut pick = rng.gen_range(0..weight_total);
    let action = DEMO_ACTIONS
        .iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map(|(a, _)| *a)
        .unwrap_or("member.updated");
    let details = match action {
        "member.role_changed" => r#"{"from":"Member","to":"Engineer","demo":true}"#,
        "access.denied" => {
            r#"{"method":"POST","route":"/orgs/{org}/users/{id}/deactivate","demo":true}"#
        }
        _ => r#"{"demo":true}"#,
    };
    let secs = at.and_utc().timestamp().max(0) as u64;
    let nanos = at.and_utc().timestamp_subsec_nanos();
    DemoEvent {
        // Time-ordered like the live ids, so the primary key index stays append-only.
        id: uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos))
            .to_string(),
        actor_id: actors[actor].0.clone(),
        actor_email: actors[actor].1.clone(),
        action,
        target_id: targets[target].0.clone(),
        target_label: targets[target].1.clone(),
        details: details.to_string(),
        ip: format!("203.0.113.{}", rng.gen_range(1..255)),
        created_at: at,
    }
}
