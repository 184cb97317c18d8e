//! Demo data for trying the portal at scale: `portcullis seed-demo --members N`.

use diesel::prelude::*;

use crate::db::memberships::{self, NewMembership};
use crate::db::schema::users;
use crate::db::{self, DbConnection, organizations, roles};
use crate::domain::names::sort_key;
use crate::domain::roles::{ENGINEER, MANAGER, MEMBER};

const FIRST_NAMES: [&str; 16] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "Dennis",
    "Radia",
    "Linus",
    "Hedy",
    "John",
    "Katherine",
    "Niklaus",
];
const LAST_NAMES: [&str; 16] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Allen",
    "Ritchie", "Perlman", "Torvalds", "Lamarr", "McCarthy", "Johnson", "Wirth",
];
const BATCH: usize = 1000;

#[derive(Insertable)]
#[diesel(table_name = users)]
struct SeedUser {
    id: String,
    email: String,
    first_name: String,
    last_name: String,
    password_hash: Option<String>,
    platform_role: &'static str,
    status: &'static str,
    auth_method: &'static str,
    created_at: chrono::NaiveDateTime,
    last_active_at: Option<chrono::NaiveDateTime>,
}

/// A membership's own values; `memberships::insert_many` takes them borrowed.
struct SeedMembership<'a> {
    user_id: String,
    role_id: &'a str,
    status: &'static str,
    email: String,
    sort_name: String,
    created_at: chrono::NaiveDateTime,
    last_active_at: chrono::NaiveDateTime,
}

/// Adds `count` members (accounts without a password) to the organization `slug`,
/// creating it if needed, in batches of 1,000 per transaction. Every tenth is inactive;
/// roles and activity vary so filters and sorts have something to show. Calls
/// `progress` with the number added so far after each batch.
pub fn seed_members(
    conn: &mut DbConnection,
    slug: &str,
    count: u64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<()> {
    let org = match organizations::find_by_slug(conn, slug)? {
        Some(org) => org,
        None => db::write_tx(conn, |conn| {
            crate::domain::orgs::create(conn, slug, slug, None, &Default::default())
        })?,
    };
    let role = |conn: &mut DbConnection, key: &str| -> anyhow::Result<String> {
        Ok(roles::find_by_key(conn, &org.id, key)?
            .ok_or_else(|| anyhow::anyhow!("role {key} missing"))?
            .id)
    };
    let (member, engineer, manager) = (
        role(conn, MEMBER)?,
        role(conn, ENGINEER)?,
        role(conn, MANAGER)?,
    );
    // A run marker keeps emails unique when seeding the same organization twice.
    let run = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let start = db::now();
    let mut added = 0u64;
    while added < count {
        let size = (count - added).min(BATCH as u64);
        let mut new_users = Vec::with_capacity(size as usize);
        let mut new_members = Vec::with_capacity(size as usize);
        for i in added..added + size {
            let first = FIRST_NAMES[(i % 16) as usize];
            let last = LAST_NAMES[((i / 16) % 16) as usize];
            let email = format!(
                "{}.{}{i:07}.{run}@demo.example",
                first.to_lowercase(),
                last.to_lowercase()
            );
            let id = db::new_id();
            let created_at = start - chrono::Duration::minutes(i as i64);
            let last_active = if i % 3 == 0 {
                db::never()
            } else {
                start - chrono::Duration::seconds((i * 37 % 2_000_000) as i64)
            };
            new_members.push(SeedMembership {
                user_id: id.clone(),
                role_id: match i % 20 {
                    0 => &manager,
                    1..=4 => &engineer,
                    _ => &member,
                },
                status: if i % 10 == 9 { "inactive" } else { "active" },
                email: email.clone(),
                sort_name: sort_key(first, last),
                created_at,
                last_active_at: last_active,
            });
            new_users.push(SeedUser {
                id,
                email,
                first_name: first.to_string(),
                last_name: last.to_string(),
                password_hash: None,
                platform_role: "none",
                status: "active",
                auth_method: "password",
                created_at,
                last_active_at: None,
            });
        }
        let new_members: Vec<NewMembership> = new_members
            .iter()
            .map(|m| NewMembership {
                org_id: &org.id,
                user_id: &m.user_id,
                role_id: m.role_id,
                status: m.status,
                email: &m.email,
                sort_name: &m.sort_name,
                created_at: m.created_at,
                last_active_at: m.last_active_at,
                auth_method: "password",
            })
            .collect();
        db::write_tx(conn, |conn| -> anyhow::Result<()> {
            // Multi-row inserts only compile against a concrete backend.
            match conn {
                DbConnection::Sqlite(c) => diesel::insert_into(users::table)
                    .values(&new_users)
                    .execute(c)?,
                DbConnection::Postgresql(c) => diesel::insert_into(users::table)
                    .values(&new_users)
                    .execute(c)?,
            };
            // Through `memberships`, which counts them in the organization's counters.
            memberships::insert_many(conn, &new_members)?;
            Ok(())
        })?;
        added += size;
        progress(added);
    }
    if let DbConnection::Postgresql(_) = conn {
        diesel::connection::SimpleConnection::batch_execute(
            conn,
            "ANALYZE users; ANALYZE memberships",
        )?;
    }
    Ok(())
}
