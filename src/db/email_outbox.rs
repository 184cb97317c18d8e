//! Emails waiting to be sent. A row is written in the same transaction as the change it
//! announces and sent later by the outbox worker (`crate::mail::outbox`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use super::DbConnection;
use super::schema::email_outbox;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = email_outbox)]
pub struct OutboxRow {
    pub id: String,
    pub to_addr: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: NaiveDateTime,
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub ref_id: Option<String>,
    pub failed_at: Option<NaiveDateTime>,
    /// The worker holding the lease, while one does.
    pub claimed_by: Option<String>,
    /// When the link it carries dies: it is not sent from then on.
    pub send_before: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = email_outbox)]
pub struct NewOutboxRow<'a> {
    pub id: &'a str,
    pub to_addr: &'a str,
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: &'a str,
    pub created_at: NaiveDateTime,
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub ref_id: Option<&'a str>,
    pub send_before: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, row: &NewOutboxRow) -> QueryResult<()> {
    diesel::insert_into(email_outbox::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// An email this instance just claimed.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(embed)]
    pub email: OutboxRow,
    /// Who held the lease before, when it ran out without being released: a worker that
    /// died (kill -9, power loss) or stalled. The email may have gone out already.
    #[diesel(sql_type = Nullable<Text>)]
    pub taken_over_from: Option<String>,
}

/// Takes up to `limit` due emails for `claimer`: each gets one more attempt and is hidden
/// from every other instance until `lease_until`, which the claimer keeps pushing back
/// ([`renew`], [`hold`]) while it works through them. An email is due again when its lease
/// runs out without being marked sent, rescheduled or released (so a crash mid-send
/// delays an email by one lease, never loses it).
///
/// Emails carrying a link that dies (`send_before`: an invitation, a password reset, an
/// organization's set-up link) go first, up to [`link_places`] of a batch: someone is
/// waiting for each. A notice (an address changed, a new sign-in) can come by the
/// thousand, when an identity provider moves an organization to a new domain, and queued
/// oldest-first ahead of the links it held back every invitation and reset sent after it
/// for as long as it took to send. The rest of the batch is the oldest due of either
/// kind, so notices (a new sign-in, two-factor turned off) still go while links keep
/// coming.
pub fn claim_due(
    conn: &mut DbConnection,
    claimer: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Claimed>> {
    // A plain read first spares the write lock (SQLite) on the usual, empty poll.
    if !any_due(conn, now)? {
        return Ok(Vec::new());
    }
    let links = link_places(limit);
    let mut claimed = match conn {
        // Row locks skipped by concurrent claimers: two instances never take the same row.
        // Each part walks its own index (`email_outbox_due_link_idx`, `email_outbox_due_idx`)
        // in order and stops at its limit.
        DbConnection::Postgresql(pg) => diesel::sql_query(
            "WITH links AS (SELECT id, claimed_by FROM email_outbox \
                 WHERE sent_at IS NULL AND failed_at IS NULL AND send_before IS NOT NULL \
                 AND next_attempt_at <= $2 \
                 ORDER BY next_attempt_at, id LIMIT $5 FOR UPDATE SKIP LOCKED), \
             rest AS (SELECT id, claimed_by FROM email_outbox \
                 WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
                 AND id NOT IN (SELECT id FROM links) \
                 ORDER BY next_attempt_at, id LIMIT $3 - (SELECT count(*) FROM links) \
                 FOR UPDATE SKIP LOCKED), \
             due AS (SELECT id, claimed_by FROM links \
                 UNION ALL SELECT id, claimed_by FROM rest) \
             UPDATE email_outbox o SET attempts = o.attempts + 1, next_attempt_at = $1, \
                 claimed_by = $4 \
             FROM due WHERE o.id = due.id \
             RETURNING o.*, due.claimed_by AS taken_over_from",
        )
        .bind::<Timestamp, _>(lease_until)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(claimer)
        .bind::<BigInt, _>(links)
        .load::<Claimed>(pg)?,
        // SQLite has one writer at a time: inside `write_tx` nobody else can claim.
        DbConnection::Sqlite(_) => super::write_tx(conn, |conn| {
            let due = || {
                email_outbox::table
                    .filter(email_outbox::sent_at.is_null())
                    .filter(email_outbox::failed_at.is_null())
                    .filter(email_outbox::next_attempt_at.le(now))
                    .order((email_outbox::next_attempt_at.asc(), email_outbox::id.asc()))
                    .select(OutboxRow::as_select())
            };
            let mut taken: Vec<OutboxRow> = due()
                .filter(email_outbox::send_before.is_not_null())
                .limit(links)
                .load(conn)?;
            let ids: Vec<String> = taken.iter().map(|r| r.id.clone()).collect();
            taken.extend(
                due()
                    .filter(email_outbox::id.ne_all(&ids))
                    .limit(limit - taken.len() as i64)
                    .load::<OutboxRow>(conn)?,
            );
            let ids: Vec<&str> = taken.iter().map(|r| r.id.as_str()).collect();
            diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(&ids)))
                .set((
                    email_outbox::attempts.eq(email_outbox::attempts + 1),
                    email_outbox::next_attempt_at.eq(lease_until),
                    email_outbox::claimed_by.eq(Some(claimer)),
                ))
                .execute(conn)?;
            Ok::<_, diesel::result::Error>(
                taken
                    .into_iter()
                    .map(|r| Claimed {
                        taken_over_from: r.claimed_by.clone(),
                        email: OutboxRow {
                            attempts: r.attempts + 1,
                            next_attempt_at: lease_until,
                            claimed_by: Some(claimer.to_string()),
                            ..r
                        },
                    })
                    .collect(),
            )
        })?,
    };
    // Links first, then oldest first, as they were queued.
    fn order(c: &Claimed) -> (bool, NaiveDateTime, &str) {
        let email = &c.email;
        (email.send_before.is_none(), email.created_at, &email.id)
    }
    claimed.sort_by(|a, b| order(a).cmp(&order(b)));
    Ok(claimed)
}

/// How many of a batch of `limit` the emails carrying a link may take: three quarters, so
/// that a quarter goes to whatever has waited longest.
pub fn link_places(limit: i64) -> i64 {
    (limit - limit / 4).max(1)
}

fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        email_outbox::table
            .filter(email_outbox::sent_at.is_null())
            .filter(email_outbox::failed_at.is_null())
            .filter(email_outbox::next_attempt_at.le(now)),
    ))
    .get_result(conn)
}

/// The unfinished emails `claimer` holds.
macro_rules! held_by {
    ($claimer:expr) => {
        email_outbox::table
            .filter(email_outbox::claimed_by.eq($claimer))
            .filter(email_outbox::sent_at.is_null())
            .filter(email_outbox::failed_at.is_null())
    };
}

/// Pushes back the lease on every email `claimer` still holds. Answers how many.
pub fn renew(
    conn: &mut DbConnection,
    claimer: &str,
    lease_until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(held_by!(claimer))
        .set(email_outbox::next_attempt_at.eq(lease_until))
        .execute(conn)
}

/// Pushes back the lease on one email, just before sending it. `false` when `claimer` no
/// longer holds it (another instance took it over, or a cancel dropped it): don't send.
pub fn hold(
    conn: &mut DbConnection,
    id: &str,
    claimer: &str,
    lease_until: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(held_by!(claimer).filter(email_outbox::id.eq(id)))
        .set(email_outbox::next_attempt_at.eq(lease_until))
        .execute(conn)?;
    Ok(n == 1)
}

/// Gives back, due at once, every email `claimer` holds but has not sent, as a worker
/// shutting down does. The claim's attempt is taken back: these were not tried (or, for
/// one abandoned mid-send, not to an answer). Answers how many.
pub fn release(conn: &mut DbConnection, claimer: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(held_by!(claimer))
        .set((
            email_outbox::next_attempt_at.eq(now),
            email_outbox::attempts.eq(email_outbox::attempts - 1),
            email_outbox::claimed_by.eq(None::<String>),
        ))
        .execute(conn)
}

/// Records delivery and drops the bodies: they may hold a live link, which the database
/// should keep no longer than needed. Whoever holds the lease, the email went out.
pub fn mark_sent(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        email_outbox::table
            .find(id)
            .filter(email_outbox::sent_at.is_null()),
    )
    .set((
        email_outbox::sent_at.eq(Some(now)),
        email_outbox::text_body.eq(""),
        email_outbox::html_body.eq(""),
        email_outbox::last_error.eq(None::<String>),
        email_outbox::claimed_by.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Sets an email `claimer` holds aside until `next_attempt_at`, with the reason.
pub fn reschedule(
    conn: &mut DbConnection,
    id: &str,
    claimer: &str,
    next_attempt_at: NaiveDateTime,
    error: &str,
) -> QueryResult<()> {
    diesel::update(held_by!(claimer).filter(email_outbox::id.eq(id)))
        .set((
            email_outbox::next_attempt_at.eq(next_attempt_at),
            email_outbox::last_error.eq(Some(error)),
            email_outbox::claimed_by.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Gives up on an email `claimer` holds; its bodies go too, for the same reason as in
/// [`mark_sent`].
pub fn mark_failed(
    conn: &mut DbConnection,
    id: &str,
    claimer: &str,
    now: NaiveDateTime,
    error: &str,
) -> QueryResult<()> {
    diesel::update(held_by!(claimer).filter(email_outbox::id.eq(id)))
        .set((
            email_outbox::failed_at.eq(Some(now)),
            email_outbox::last_error.eq(Some(error)),
            email_outbox::text_body.eq(""),
            email_outbox::html_body.eq(""),
            email_outbox::claimed_by.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Drops the unsent emails about `ref_id`, whose links a resend or a cancel just killed.
pub fn delete_unsent_for(conn: &mut DbConnection, ref_id: &str) -> QueryResult<usize> {
    diesel::delete(
        email_outbox::table
            .filter(email_outbox::ref_id.eq(ref_id))
            .filter(email_outbox::sent_at.is_null()),
    )
    .execute(conn)
}

/// Why an email is given up on when its link died first (`email_outbox.last_error`).
pub const LINK_DIED: &str = "the link it carries died before it could be sent";

/// The unsent emails of these references (invitations) that a send attempt has failed
/// for: each reference, the last error, and whether it was given up.
pub fn undelivered_for(
    conn: &mut DbConnection,
    ref_ids: &[&str],
) -> QueryResult<Vec<(String, String, bool)>> {
    let found: Vec<(Option<String>, Option<String>, Option<NaiveDateTime>)> = email_outbox::table
        .filter(email_outbox::ref_id.eq_any(ref_ids))
        .filter(email_outbox::sent_at.is_null())
        .filter(email_outbox::last_error.is_not_null())
        .select((
            email_outbox::ref_id,
            email_outbox::last_error,
            email_outbox::failed_at,
        ))
        .load(conn)?;
    Ok(found
        .into_iter()
        .filter_map(|(id, error, failed)| Some((id?, error?, failed.is_some())))
        .collect())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<OutboxRow>> {
    email_outbox::table
        .find(id)
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}
