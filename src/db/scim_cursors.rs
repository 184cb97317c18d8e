//! Where an identity provider paging through an organization's Users left off, so that
//! its next page starts from there instead of skipping every member before it again.
//!
//! SCIM pages by position (`startIndex`), which an index can only reach by stepping over
//! everything before it: at a million members, `startIndex=900001` read 900,000 joined
//! rows (1.2–1.8 s), and an import of every member at 100 a page (Okta's) would read
//! about 5 × 10⁹ rows. A page served remembers the member it ended on, under its token and
//! the position the next page starts at; that token's request for that position continues
//! after that member. Each token pages on its own: one identity provider's import does
//! not move another's place. A token belongs to one organization, whose members alone
//! the page reads.
//!
//! Places are kept in the database, not in the process: behind a load balancer the next
//! page may reach another instance (a bearer token carries no cookie to stick it to one),
//! which must continue from the same place. A place is one primary-key read and one
//! upsert a page (none after the last page), and the upsert is best effort: a listing
//! must not fail, nor wait long, because a place could not be kept.
//!
//! What is kept is a place in the order, never a member's data. A place kept while
//! members before it were removed is the member after the last one served, not the one
//! now at that position: the next page then holds what an OFFSET would have skipped, and
//! RFC 7644 §3.4.2.4 leaves consistency across pages to the server. New members sort last
//! (by creation time), so they move no place kept.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::scim_cursors;
use super::{DbConnection, on_backend};

/// How long a place is kept: an import pages on within seconds.
fn kept_for() -> Duration {
    Duration::minutes(10)
}

/// A member's place in SCIM's stable order: creation time, then user id.
pub type Place = (NaiveDateTime, String);

/// The member a page starting `skip` members in continues after, when a page this token
/// asked for ended there within the last ten minutes.
pub fn recall(conn: &mut DbConnection, token_id: &str, skip: i64) -> QueryResult<Option<Place>> {
    let since = super::now() - kept_for();
    on_backend!(conn, |c| scim_cursors::table
        .filter(scim_cursors::token_id.eq(token_id))
        .filter(scim_cursors::position.eq(skip))
        .filter(scim_cursors::kept_at.ge(since))
        .select((scim_cursors::after_created_at, scim_cursors::after_user_id))
        .first(c)
        .optional())
}

/// Notes that the token's page ending `skip` members in ended on the member at `after`.
/// Best effort: a database that cannot write now (full, read-only, or its write lock
/// held long on SQLite) costs the next page the slower OFFSET, never this answer.
pub fn remember(conn: &mut DbConnection, token_id: &str, skip: i64, after: Place) {
    if let Err(e) = upsert(conn, token_id, skip, after) {
        tracing::warn!(error = %e, "SCIM: where this page ended was not kept; the next page starts by position");
    }
}

fn upsert(conn: &mut DbConnection, token_id: &str, skip: i64, after: Place) -> QueryResult<()> {
    let now = super::now();
    let (created_at, user_id) = after;
    on_backend!(conn, |c| diesel::insert_into(scim_cursors::table)
        .values((
            scim_cursors::token_id.eq(token_id),
            scim_cursors::position.eq(skip),
            scim_cursors::after_created_at.eq(created_at),
            scim_cursors::after_user_id.eq(&user_id),
            scim_cursors::kept_at.eq(now),
        ))
        .on_conflict((scim_cursors::token_id, scim_cursors::position))
        .do_update()
        .set((
            scim_cursors::after_created_at.eq(created_at),
            scim_cursors::after_user_id.eq(&user_id),
            scim_cursors::kept_at.eq(now),
        ))
        .execute(c))?;
    Ok(())
}

/// Forgets every token's places older than ten minutes (housekeeping, for tokens that
/// stopped paging).
pub fn prune(conn: &mut DbConnection) -> QueryResult<usize> {
    let before = super::now() - kept_for();
    on_backend!(conn, |c| diesel::delete(
        scim_cursors::table.filter(scim_cursors::kept_at.lt(before))
    )
    .execute(c))
}
