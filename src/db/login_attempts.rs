use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::login_attempts;
use super::{DbConnection, new_id, now};

pub fn record_failure(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::id.eq(new_id()),
            login_attempts::key.eq(key),
            login_attempts::created_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn failures_since(
    conn: &mut DbConnection,
    key: &str,
    since: NaiveDateTime,
) -> QueryResult<i64> {
    login_attempts::table
        .filter(login_attempts::key.eq(key))
        .filter(login_attempts::created_at.gt(since))
        .count()
        .get_result(conn)
}

pub fn clear(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::delete(login_attempts::table.filter(login_attempts::key.eq(key)))
        .execute(conn)
        .map(|_| ())
}

pub fn delete_older_than(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(login_attempts::table.filter(login_attempts::created_at.lt(before)))
        .execute(conn)
}
