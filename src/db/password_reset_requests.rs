//! "I forgot my password" requests waiting for the background worker. The request page
//! only inserts here, the same insert whether or not the address has an account; the
//! worker takes them oldest first.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamp};

use super::DbConnection;
use super::schema::password_reset_requests;

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = password_reset_requests)]
pub struct ResetRequest {
    #[diesel(sql_type = Text)]
    pub id: String,
    /// As typed (trimmed): the worker decides whether it is an account's address.
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub request_id: Option<String>,
    #[diesel(sql_type = Timestamp)]
    pub requested_at: NaiveDateTime,
    /// The account whose own browser asked (its device cookie, with its current
    /// password), if it was the typed address's account.
    #[diesel(sql_type = Nullable<Text>)]
    pub owners_browser: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &ResetRequest) -> QueryResult<()> {
    diesel::insert_into(password_reset_requests::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Removes and answers the oldest waiting request. Call it inside the write transaction
/// that handles the request, so a crash midway puts it back.
pub fn take_oldest(conn: &mut DbConnection) -> QueryResult<Option<ResetRequest>> {
    match conn {
        // Another instance's worker skips the row this one holds instead of waiting for it.
        DbConnection::Postgresql(pg) => diesel::sql_query(
            "DELETE FROM password_reset_requests WHERE id = (\
                 SELECT id FROM password_reset_requests \
                 ORDER BY requested_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, email, ip, request_id, requested_at, owners_browser",
        )
        .get_result::<ResetRequest>(pg)
        .optional(),
        // SQLite has one writer at a time: inside the write transaction nobody else takes it.
        DbConnection::Sqlite(_) => {
            let oldest = password_reset_requests::table
                .order((
                    password_reset_requests::requested_at.asc(),
                    password_reset_requests::id.asc(),
                ))
                .select(ResetRequest::as_select())
                .first(conn)
                .optional()?;
            if let Some(request) = &oldest {
                delete(conn, &request.id)?;
            }
            Ok(oldest)
        }
    }
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(password_reset_requests::table.find(id)).execute(conn)
}

/// Spares the write lock (SQLite) on the usual, empty poll.
pub fn any_waiting(conn: &mut DbConnection) -> QueryResult<bool> {
    password_reset_requests::table
        .select(password_reset_requests::id)
        .first::<String>(conn)
        .optional()
        .map(|first| first.is_some())
}
