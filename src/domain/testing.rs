//! What the rules' unit tests share: a fresh SQLite database holding one administrator,
//! `boss@example.com`, Admin of the first organization.

use super::email::Email;
use super::setup::{CreatedAdmin, create_admin};
use crate::db::{self, DbPool, DbTarget, PoolOptions, build_pool};

pub struct TestDb {
    /// Holds the database file; it goes when the test ends.
    _dir: tempfile::TempDir,
    pub pool: DbPool,
    pub admin: CreatedAdmin,
}

pub fn with_admin(password_hash: &str) -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let target = DbTarget::Sqlite(dir.path().join("t.db").to_string_lossy().into_owned());
    let pool = build_pool(&target, PoolOptions::default()).unwrap();
    let mut conn = pool.get().unwrap();
    db::migrate(&mut conn).unwrap();
    let admin = create_admin(
        &mut conn,
        &Email::parse("boss@example.com").unwrap(),
        None,
        Some(password_hash),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    TestDb {
        _dir: dir,
        pool,
        admin,
    }
}
