use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::users;
use super::{DbConnection, MultiBackend, now};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: Option<String>,
    pub platform_role: String,
    pub status: String,
    pub auth_method: String,
    #[diesel(deserialize_as = super::stamp::Stamp)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = super::stamp::MaybeStamp)]
    pub last_active_at: Option<NaiveDateTime>,
}

impl User {
    pub fn display_name(&self) -> String {
        full_name(&self.first_name, &self.last_name)
    }

    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// "First Last", or whichever part exists.
pub fn full_name(first: &str, last: &str) -> String {
    match (first.trim(), last.trim()) {
        ("", "") => String::new(),
        (f, "") => f.to_string(),
        ("", l) => l.to_string(),
        (f, l) => [f, l].join(" "),
    }
}

/// Case-folded full name, what the Users tab sorts and searches by.
pub fn sort_key(first: &str, last: &str) -> String {
    full_name(first, last).to_lowercase()
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub platform_role: &'a str,
    pub status: &'a str,
    pub auth_method: &'a str,
    pub created_at: NaiveDateTime,
    pub last_active_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, user: &NewUser) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    super::on_backend!(conn, |c| users::table
        .find(id)
        .select(User::as_select())
        .first(c)
        .optional())
}

/// Holds the account's row until the transaction ends. A change that only an
/// organization owning the account alone may make (its address, its name, its second
/// factor) and the account joining another organization take turns on it, so neither
/// acts on what the other changed meanwhile: on PostgreSQL this is the row's lock; inside
/// a `write_tx` on SQLite the database's write lock is already held.
pub fn lock(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    match conn {
        // An UPDATE of the key there would check every table that refers to accounts.
        DbConnection::Sqlite(_) => Ok(()),
        // The key keeps its value: a `FOR NO KEY UPDATE` lock, no foreign-key checks.
        DbConnection::Postgresql(_) => diesel::update(users::table.find(id))
            .set(users::id.eq(users::id))
            .execute(conn)
            .map(|_| ()),
    }
}

/// The account holding `email`, held ([`lock`]) and read again under the hold: `None` if
/// it gave up the address while this waited.
pub fn find_by_email_held(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    let Some(found) = find_by_email(conn, email)? else {
        return Ok(None);
    };
    lock(conn, &found.id)?;
    Ok(find(conn, &found.id)?.filter(|user| user.email == found.email))
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn any_exists(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.select(users::id))).get_result(conn)
}

pub fn set_password(conn: &mut DbConnection, id: &str, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(Some(hash)))
        .execute(conn)
        .map(|_| ())
}

/// Sets the password only while the stored hash is still `expected`: answers false, and
/// changes nothing, when it changed since `expected` was read.
pub fn replace_password(
    conn: &mut DbConnection,
    id: &str,
    expected: &str,
    hash: &str,
) -> QueryResult<bool> {
    diesel::update(
        users::table
            .find(id)
            .filter(users::password_hash.eq(Some(expected))),
    )
    .set(users::password_hash.eq(Some(hash)))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn set_name(conn: &mut DbConnection, id: &str, first: &str, last: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::first_name.eq(first), users::last_name.eq(last)))
        .execute(conn)
        .map(|_| ())
}

pub fn touch(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_active_at.eq(Some(now())))
        .execute(conn)
        .map(|_| ())
}

/// A page of all accounts in email order, starting after `after` (keyset).
/// Up to `limit` accounts by email after `after`, only those whose email starts with
/// `prefix` when one is given. Emails are stored lower-cased and compared byte by byte on
/// both backends, so the prefix is a range of the unique email index: no scan.
pub fn list_page(
    conn: &mut DbConnection,
    prefix: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<User>> {
    page_query(prefix, after, limit).load(conn)
}

/// The database's plan for [`list_page`], for the test that proves it uses the index.
pub fn list_page_plan(
    conn: &mut DbConnection,
    prefix: Option<&str>,
    after: Option<&str>,
) -> QueryResult<Vec<String>> {
    super::explain(conn, page_query(prefix, after, 50))
}

fn page_query<'a>(
    prefix: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> users::BoxedQuery<
    'a,
    MultiBackend,
    diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<User, MultiBackend>>,
> {
    let mut query = users::table
        .order(users::email.asc())
        .limit(limit)
        .select(User::as_select())
        .into_boxed();
    if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
        query = query.filter(users::email.ge(prefix.to_string()));
        if let Some(end) = prefix_end(prefix) {
            query = query.filter(users::email.lt(end));
        }
    }
    if let Some(after) = after {
        query = query.filter(users::email.gt(after.to_string()));
    }
    query
}

/// The first string after every string that starts with `prefix`: its last character
/// stepped up by one (`"ad"` → `"ae"`). `None` when no character can step up.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

pub fn set_status(conn: &mut DbConnection, id: &str, status: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::status.eq(status))
        .execute(conn)
}

/// Whether a sign-in from a browser new to the account sends a "new sign-in" email.
pub fn signin_alerts(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    users::table
        .find(id)
        .select(users::signin_alerts)
        .first(conn)
        .optional()
        .map(|on| on.unwrap_or(false))
}

pub fn set_signin_alerts(conn: &mut DbConnection, id: &str, on: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::signin_alerts.eq(on))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_where_its_last_character_steps_up() {
        assert_eq!(prefix_end("ad").as_deref(), Some("ae"));
        assert_eq!(prefix_end("a@").as_deref(), Some("aA"));
        assert_eq!(prefix_end("z\u{D7FF}").as_deref(), Some("z\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }
}
