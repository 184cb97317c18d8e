//! Creating an account: active, signing in with a password that is given now or set
//! later through a setup link.

use diesel::Connection;
use diesel::result::{DatabaseErrorKind, Error::DatabaseError};

use crate::db::users::{self, NewUser, User};
use crate::db::{self, DbConnection};

/// A new account with this address; `None` when an account already has it.
pub fn create(
    conn: &mut DbConnection,
    email: &str,
    (first_name, last_name): (&str, &str),
    password_hash: Option<&str>,
    platform_role: &str,
) -> diesel::QueryResult<Option<User>> {
    if users::find_by_email(conn, email)?.is_some() {
        return Ok(None);
    }
    let id = db::new_id();
    // On PostgreSQL another transaction may insert the address between the check above
    // and this insert (two organizations' invitations accepted at once): the unique
    // index refuses the second, which then answers "already has an account" too. The
    // savepoint keeps the caller's transaction usable after that refusal.
    let inserted = conn.transaction(|conn| {
        users::insert(
            conn,
            &NewUser {
                id: &id,
                email,
                first_name,
                last_name,
                password_hash,
                platform_role,
                status: "active",
                auth_method: "password",
                created_at: db::now(),
                last_active_at: None,
            },
        )
    });
    match inserted {
        Err(DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => return Ok(None),
        other => other?,
    }
    Ok(Some(users::find(conn, &id)?.expect("user just inserted")))
}
