//! Emails waiting to be sent. A row is written in the same transaction as the change it
//! announces and sent later by the outbox worker (`crate::mail::outbox`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};

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
}

pub fn insert(conn: &mut DbConnection, row: &NewOutboxRow) -> QueryResult<()> {
    diesel::insert_into(email_outbox::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Takes up to `limit` due emails for this instance: each gets one more attempt and is
/// hidden from every other instance until `lease_until`, when it is due again unless it
/// was marked sent or rescheduled first (so a crash mid-send delays an email, never
/// loses it).
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    // A plain read first spares the write lock (SQLite) on the usual, empty poll.
    if !any_due(conn, now)? {
        return Ok(Vec::new());
    }
    match conn {
        // Row locks skipped by concurrent claimers: two instances never take the same row.
        DbConnection::Postgresql(pg) => diesel::sql_query(
            "UPDATE email_outbox SET attempts = attempts + 1, next_attempt_at = $1 \
             WHERE id IN (SELECT id FROM email_outbox \
                 WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
                 ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING *",
        )
        .bind::<Timestamp, _>(lease_until)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .load::<OutboxRow>(pg),
        // SQLite has one writer at a time: inside `write_tx` nobody else can claim.
        DbConnection::Sqlite(_) => super::write_tx(conn, |conn| {
            let due: Vec<OutboxRow> = email_outbox::table
                .filter(email_outbox::sent_at.is_null())
                .filter(email_outbox::failed_at.is_null())
                .filter(email_outbox::next_attempt_at.le(now))
                .order((email_outbox::next_attempt_at.asc(), email_outbox::id.asc()))
                .limit(limit)
                .select(OutboxRow::as_select())
                .load(conn)?;
            let ids: Vec<&str> = due.iter().map(|r| r.id.as_str()).collect();
            diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(&ids)))
                .set((
                    email_outbox::attempts.eq(email_outbox::attempts + 1),
                    email_outbox::next_attempt_at.eq(lease_until),
                ))
                .execute(conn)?;
            Ok(due
                .into_iter()
                .map(|r| OutboxRow {
                    attempts: r.attempts + 1,
                    next_attempt_at: lease_until,
                    ..r
                })
                .collect())
        }),
    }
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

/// Records delivery and drops the bodies: they may hold a live link, which the database
/// should keep no longer than needed.
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
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn reschedule(
    conn: &mut DbConnection,
    id: &str,
    next_attempt_at: NaiveDateTime,
    error: &str,
) -> QueryResult<()> {
    diesel::update(
        email_outbox::table
            .find(id)
            .filter(email_outbox::sent_at.is_null()),
    )
    .set((
        email_outbox::next_attempt_at.eq(next_attempt_at),
        email_outbox::last_error.eq(Some(error)),
    ))
    .execute(conn)
    .map(|_| ())
}

/// Gives up on an email; its bodies go too, for the same reason as in [`mark_sent`].
pub fn mark_failed(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
    error: &str,
) -> QueryResult<()> {
    diesel::update(
        email_outbox::table
            .find(id)
            .filter(email_outbox::sent_at.is_null()),
    )
    .set((
        email_outbox::failed_at.eq(Some(now)),
        email_outbox::last_error.eq(Some(error)),
        email_outbox::text_body.eq(""),
        email_outbox::html_body.eq(""),
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

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<OutboxRow>> {
    email_outbox::table
        .find(id)
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}
