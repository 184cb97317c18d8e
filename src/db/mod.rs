//! Database access: one connection type for both backends, a pool that picks the backend
//! from the URL scheme, migrations and transaction helpers.

pub mod api_tokens;
pub mod audit_events;
pub mod common_terms;
pub mod email_outbox;
pub mod groups;
pub mod inline_reads;
pub mod invitations;
pub mod kept;
pub mod login_attempts;
pub mod member_counts;
pub mod memberships;
pub mod off_thread;
pub mod org_two_factor;
pub mod organizations;
pub mod password_reset_requests;
pub mod password_resets;
pub mod pools;
pub mod roles;
pub mod schema;
pub mod scim;
pub mod scim_cursors;
pub mod sessions;
pub mod setup_tokens;
mod single_use;
pub mod stamp;
pub mod two_factor;
pub mod users;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Text, Untyped};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

diesel::define_sql_function! {
    /// SQL's `lower()`: on both sides of a comparison that ignores case, so an index on
    /// the same expression serves it (SQLite's folds ASCII only, PostgreSQL's all of
    /// Unicode; each database agrees with itself).
    fn lower(text: diesel::sql_types::Nullable<Text>) -> diesel::sql_types::Nullable<Text>;
}

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = r2d2::Pool<ConnectionManager>;

/// Runs a statement on the backend's own connection rather than through the derived
/// `MultiConnection`. Through it, diesel writes the statement's SQL afresh at every run,
/// two or three times over (to ask whether it may be cached, to collect its binds, and
/// as the cache key); on the backend's own connection a statement of fixed shape is
/// cached by its Rust type and its SQL written once per connection. For the statements
/// every page runs; `$body` is compiled once for each backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Postgresql($c) => $body,
        }
    };
}
pub(crate) use on_backend;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Arbitrary constant shared by every instance so only one of them migrates at a time.
const MIGRATION_LOCK_KEY: i64 = 0x706f_7274_6375_6c6c;
/// `platform_lock`'s key: "portcplt", apart from the migrations' and anyone else's.
const PLATFORM_LOCK_KEY: i64 = 0x706f_7274_6370_6c74;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbUrlError {
    #[error(
        "unsupported database URL scheme `{0}`: use postgres://..., postgresql://..., sqlite://PATH or a plain file path"
    )]
    UnsupportedScheme(String),
    #[error("the database URL is empty")]
    Empty,
}

/// Where a database URL points, decided once so that a typo never silently becomes a new
/// SQLite file named after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    Postgres(String),
    Sqlite(String),
}

impl DbTarget {
    pub fn parse(url: &str) -> Result<Self, DbUrlError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(DbUrlError::Empty);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbTarget::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(DbTarget::Sqlite(path.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Ok(DbTarget::Sqlite(path.to_string()));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(DbUrlError::UnsupportedScheme(scheme.to_string()));
        }
        if let Some((scheme, _)) = url.split_once(':') {
            // A Windows drive letter is a path, anything else with a colon is a scheme.
            if scheme.len() > 1
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(DbUrlError::UnsupportedScheme(scheme.to_string()));
            }
        }
        Ok(DbTarget::Sqlite(url.to_string()))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbTarget::Postgres(_) => Backend::Postgres,
            DbTarget::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Initialises OpenSSL, which libpq speaks TLS through, without its exit handler. Left
/// to libpq, the first connection registers `OPENSSL_cleanup` to run at exit, and it frees
/// OpenSSL's locks while a pool's worker thread may still be opening a connection: a
/// `create-admin` on PostgreSQL died in `r2d2-worker` on a NULL lock as it exited. The
/// first initialisation in a process decides, so this runs before any connection opens;
/// later calls cost nothing.
pub fn init_tls() {
    openssl_sys::init();
}

/// Connects by URL scheme; the derived `establish` would try every backend in turn and
/// hide the real error.
#[derive(Debug)]
pub struct ConnectionManager {
    target: DbTarget,
}

impl ConnectionManager {
    pub fn new(target: DbTarget) -> Self {
        Self { target }
    }
}

const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// How recently a pooled connection must have proven alive to be lent to a read
/// without a `SELECT 1` first: HikariCP's "alive bypass window", and its default. A page
/// takes a connection three times (the session, the member, the page), so under load the
/// check was three of the twelve or so statements a page sent to PostgreSQL.
const ALIVE_BYPASS: Duration = Duration::from_millis(500);

thread_local! {
    /// Set while `read_pooled` checks a connection out on this thread (r2d2 checks a
    /// connection on the thread that asks for it): only a read, which runs again when its
    /// connection turns out dropped, may skip the check. Every other checkout (writes,
    /// the mail outbox, `/readyz`) is checked as before.
    static READ_CHECKOUT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `READ_CHECKOUT` for as long as this lives, and cleared when it drops, a panic in the
/// checkout included: the blocking pool's thread outlives a panic (`off_thread` catches
/// it) and serves writes next, which must not be lent unchecked connections.
struct ReadCheckout;

impl ReadCheckout {
    fn begin() -> Self {
        READ_CHECKOUT.set(true);
        ReadCheckout
    }
}

impl Drop for ReadCheckout {
    fn drop(&mut self) {
        READ_CHECKOUT.set(false);
    }
}

/// A connection as the pool keeps it: with when it last proved alive, and whether work
/// on it found the server gone (then the pool discards it when it is given back).
pub struct Pooled {
    conn: DbConnection,
    alive_at: Instant,
    lost: bool,
}

impl Pooled {
    pub fn into_inner(self) -> DbConnection {
        self.conn
    }

    /// Records how work that started at `started` went, and says whether the connection
    /// is still alive. Work that succeeded proves it alive; the window counts from the
    /// work's start, so long work does not stretch it. After a failure on PostgreSQL, a
    /// `SELECT 1` tells a dropped connection from a query that failed on its own; a
    /// SQLite file cannot drop its connection.
    fn settle(&mut self, succeeded: bool, started: Instant) -> bool {
        if succeeded {
            self.alive_at = started;
            true
        } else if matches!(self.conn, DbConnection::Sqlite(_))
            || self.conn.batch_execute("SELECT 1").is_ok()
        {
            self.alive_at = Instant::now();
            true
        } else {
            self.lost = true;
            false
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let conn = match &self.target {
            DbTarget::Postgres(url) => {
                init_tls();
                PgConnection::establish(url)
                    .map(DbConnection::Postgresql)
                    .map_err(diesel::r2d2::Error::ConnectionError)?
            }
            DbTarget::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(diesel::r2d2::Error::QueryError)?;
                DbConnection::Sqlite(conn)
            }
        };
        Ok(Pooled {
            conn,
            alive_at: Instant::now(),
            lost: false,
        })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), Self::Error> {
        if READ_CHECKOUT.get() && conn.alive_at.elapsed() < ALIVE_BYPASS {
            return Ok(());
        }
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)?;
        conn.alive_at = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.lost
            || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                &mut conn.conn,
            )
    }
}

/// Runs `f` on a pooled connection, checked before it is lent (on PostgreSQL).
pub fn run_pooled<T, E>(
    pool: &DbPool,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<r2d2::Error>,
{
    let mut conn = pool.get()?;
    let started = Instant::now();
    let result = f(&mut conn);
    conn.settle(result.is_ok(), started);
    result
}

/// Runs a read on a pooled connection that may be lent unchecked (`ALIVE_BYPASS`), and
/// once more on a checked one if the server had dropped the first while it sat in the
/// pool. Only for work that writes nothing: a write may have committed before its
/// connection went, so running it again could do it twice.
pub fn read_pooled<T, E>(
    pool: &DbPool,
    f: impl Fn(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<r2d2::Error>,
{
    let checkout = {
        let _read = ReadCheckout::begin();
        pool.get()
    };
    let mut conn = checkout?;
    let started = Instant::now();
    let first = f(&mut conn);
    if conn.settle(first.is_ok(), started) {
        return first;
    }
    drop(conn);
    run_pooled(pool, f)
}

/// Creates a directory the portal keeps to itself (the data directory, its mail folder):
/// `0700`, with any missing parents. An existing directory is left as it is, since it may
/// be shared with others (`/tmp`, a home directory); a warning says when others can read it.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create the directory {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                dir = %dir.display(),
                "other users of this machine can open this directory; the portal's own files \
                 in it are private, but `chmod 700` the directory unless it is shared on purpose"
            );
        }
    }
    Ok(())
}

/// Makes `path` readable and writable by the owner only, creating it empty if missing.
/// Files the portal alone uses: the SQLite database and its -wal and -shm files, the
/// session key, outgoing mail. Existing files are narrowed too (older versions created
/// them world-readable).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    drop(file);
    Ok(())
}

/// The SQLite file exists, `0600`, before SQLite opens it: SQLite would create it `0644`,
/// and gives its -wal and -shm files the database file's mode.
fn prepare_sqlite_file(path: &Path) -> anyhow::Result<()> {
    let name = path.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        private_dir(parent)?;
    }
    private_file(path)
        .map_err(|e| anyhow::anyhow!("cannot open the database file {}: {e}", path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            private_file(&side).map_err(|e| {
                anyhow::anyhow!("cannot restrict {} to its owner: {e}", side.display())
            })?;
        }
    }
    Ok(())
}

pub struct PoolOptions {
    pub max_size: u32,
    pub connection_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            // Also how long a request waits when the database is down before its 503:
            // short enough to answer within 3 s, long enough for a busy pool to free one.
            connection_timeout: Duration::from_secs(2),
        }
    }
}

/// How long a start waits for its first connection. A request waits two seconds
/// (`PoolOptions::connection_timeout`) so that it answers quickly; a start that gave up as
/// soon died with a database still coming up beside it (a host booting, a restart of
/// both), or on a host busy enough to keep the connecting thread waiting, where waiting
/// longer costs nothing. A wrong address still fails the start, after this long.
const FIRST_CONNECTION_WAIT: Duration = Duration::from_secs(30);

/// Builds the pool and opens one connection straight away so a wrong URL fails at start-up.
pub fn build_pool(target: &DbTarget, options: PoolOptions) -> anyhow::Result<DbPool> {
    if let DbTarget::Sqlite(path) = target {
        prepare_sqlite_file(Path::new(path))?;
    }
    let manager = ConnectionManager::new(target.clone());
    let pool = r2d2::Pool::builder()
        .max_size(options.max_size)
        // Connections open as load needs them and close after idling, instead of all
        // `max_size` at start-up: an idle portal holds one, and memory taken under load
        // (each SQLite connection's page cache) is given back once it passes.
        .min_idle(Some(1))
        .idle_timeout(Some(Duration::from_secs(60)))
        .connection_timeout(options.connection_timeout)
        // A SQLite file cannot go away under an open connection, so checking each one
        // out with a `SELECT 1` was a statement per page for nothing; a PostgreSQL
        // connection can die with its server, and the check (skipped for a connection
        // that proved alive within `ALIVE_BYPASS`) keeps that from a request.
        .test_on_check_out(matches!(target, DbTarget::Postgres(_)))
        .build_unchecked(manager);
    pool.get_timeout(FIRST_CONNECTION_WAIT)
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
    Ok(pool)
}

/// Refuses a database a newer version of Portcullis has migrated: this version would
/// run on a schema it does not know, and write rows the newer one keeps otherwise (an
/// older instance changes memberships without counting them, for one).
fn refuse_a_newer_database<C, B>(conn: &mut C, known: &EmbeddedMigrations) -> anyhow::Result<()>
where
    B: diesel::backend::Backend,
    C: MigrationHarness<B>,
    EmbeddedMigrations: diesel::migration::MigrationSource<B>,
{
    use diesel::migration::MigrationSource;
    let known: std::collections::HashSet<String> = known
        .migrations()
        .map_err(|e| anyhow::anyhow!("cannot read the built-in migrations: {e}"))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let applied = conn
        .applied_migrations()
        .map_err(|e| anyhow::anyhow!("cannot read the database's migrations: {e}"))?;
    if let Some(unknown) = applied
        .iter()
        .map(ToString::to_string)
        .filter(|v| !known.contains(v))
        .max()
    {
        anyhow::bail!(
            "this database was upgraded by a newer version of Portcullis (its migration {unknown} is unknown to this one): run that version or a later one, or restore the backup taken before the upgrade"
        );
    }
    Ok(())
}

/// Runs the embedded migrations of the connection's dialect; on PostgreSQL under an
/// advisory lock so instances starting together take turns. A database a newer version
/// migrated is refused, untouched.
pub fn migrate(conn: &mut DbConnection) -> anyhow::Result<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            refuse_a_newer_database(c, &SQLITE_MIGRATIONS)?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        }
        DbConnection::Postgresql(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = refuse_a_newer_database(c, &POSTGRES_MIGRATIONS).and_then(|()| {
                c.run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))
            });
            c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result?;
        }
    }
    Ok(())
}

/// Reverts the SQLite migrations down to and including `version` (digits only, as
/// `20261201000002`), then runs them again: how a migration's tests see it meet the rows
/// an older version left.
#[cfg(test)]
pub(crate) fn migrate_again_from(conn: &mut DbConnection, version: &str) {
    use diesel_migrations::MigrationHarness;
    let DbConnection::Sqlite(lite) = conn else {
        unreachable!("unit tests run on SQLite")
    };
    loop {
        let reverted = lite
            .revert_last_migration(SQLITE_MIGRATIONS)
            .unwrap()
            .to_string();
        if reverted.replace('-', "").starts_with(version) {
            break;
        }
    }
    lite.run_pending_migrations(SQLITE_MIGRATIONS).unwrap();
}

/// Whether a newer version has migrated the database ([`unknown_migration`]). `/readyz`
/// drains only an older instance's traffic: its background work (the outbox, membership
/// expiry, reset requests, housekeeping) asks this before each round and stops there,
/// since it would otherwise go on writing by the older rules until the instance is
/// replaced. Said in the log once a process.
pub fn superseded(conn: &mut DbConnection) -> QueryResult<bool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static SAID: AtomicBool = AtomicBool::new(false);
    let newer = unknown_migration(conn)?;
    if let Some(version) = &newer
        && !SAID.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(migration = %version, "a newer version has migrated the database: this instance's background work (mail, expiry, password resets, housekeeping) stops; replace it with the newer version");
    }
    Ok(newer.is_some())
}

/// The newest migration the database holds that this binary does not know: a newer
/// version has migrated it since this one started. `/readyz` asks on every probe, so that
/// a load balancer drains the older instances of a rolling upgrade instead of letting
/// them write rows the newer version keeps otherwise: a plain read of the versions
/// (diesel's own listing creates its table if missing), against the binary's, read once.
pub fn unknown_migration(conn: &mut DbConnection) -> QueryResult<Option<String>> {
    use diesel::migration::MigrationSource;
    use std::collections::HashSet;
    use std::sync::OnceLock;
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    fn versions<B: diesel::backend::Backend>(source: &impl MigrationSource<B>) -> HashSet<String> {
        source
            .migrations()
            .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default()
    }
    static SQLITE: OnceLock<HashSet<String>> = OnceLock::new();
    static POSTGRES: OnceLock<HashSet<String>> = OnceLock::new();
    let known = match conn {
        DbConnection::Sqlite(_) => {
            SQLITE.get_or_init(|| versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS))
        }
        DbConnection::Postgresql(_) => {
            POSTGRES.get_or_init(|| versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS))
        }
    };
    let applied: Vec<Applied> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(conn)?;
    Ok(applied
        .into_iter()
        .map(|a| a.version)
        .filter(|v| !known.contains(v))
        .max())
}

pub fn backend(conn: &DbConnection) -> Backend {
    match conn {
        DbConnection::Postgresql(_) => Backend::Postgres,
        DbConnection::Sqlite(_) => Backend::Sqlite,
    }
}

/// Serializes the platform admins' changes (they span organizations, so no
/// organization's lock covers them): an advisory lock on PostgreSQL, held until the
/// transaction ends; inside a `write_tx` on SQLite the database's write lock is held.
pub fn platform_lock(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(_) => Ok(()),
        DbConnection::Postgresql(_) => {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({PLATFORM_LOCK_KEY})"))
                .execute(conn)
                .map(|_| ())
        }
    }
}

/// Makes the transactions that issue an account's password-reset links take turns, on
/// PostgreSQL (SQLite's write transactions already do), without holding the account's row
/// or its links: a reset in flight takes its link, then the account, and a disable the
/// links, then the account; a lock on either here would make a cycle with them. The
/// two-key form, in a key space apart from the one-key locks above.
pub fn reset_links_lock(conn: &mut DbConnection, user_id: &str) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(_) => Ok(()),
        DbConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT pg_advisory_xact_lock(1919251316, hashtext($1))")
                .bind::<diesel::sql_types::Text, _>(user_id)
                .execute(pg)
                .map(|_| ())
        }
    }
}

/// A transaction that reads and then writes. On SQLite it starts with `BEGIN IMMEDIATE`
/// so it waits for the write lock up front instead of failing with SQLITE_BUSY when it
/// upgrades; on PostgreSQL callers lock the rows they depend on (see `organizations::lock`).
pub fn write_tx<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(_) => {
            <DbConnection as Connection>::TransactionManager::begin_transaction(conn)?
        }
    }
    match f(conn) {
        Ok(value) => {
            match <DbConnection as Connection>::TransactionManager::commit_transaction(conn) {
                Ok(()) => Ok(value),
                // The same on COMMIT: the commit's error is the one that names the cause.
                Err(diesel::result::Error::RollbackErrorOnCommit {
                    rollback_error,
                    commit_error,
                }) => {
                    tracing::warn!(error = %rollback_error, "rollback after a failed commit failed");
                    Err((*commit_error).into())
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => {
            // SQLite rolls back by itself on some errors (disk full, I/O error), so the
            // ROLLBACK can fail with "no transaction is active": the caller needs the
            // original error, which names the cause. A failed rollback marks the
            // connection broken, and the pool discards it.
            if let Err(rollback) =
                <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::warn!(error = %rollback, "rollback after a failed transaction failed");
            }
            Err(e)
        }
    }
}

/// Current UTC time at microsecond precision, the finest both backends keep, so a value
/// read back compares equal to the one written.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Placeholder for "never" in NOT NULL time columns that lists sort by.
pub fn never() -> NaiveDateTime {
    chrono::DateTime::UNIX_EPOCH.naive_utc()
}

/// `column IN (SELECT value FROM json_each(?))` on SQLite: the ids of a page bound as one
/// JSON array. `eq_any` there is one placeholder per id, a new statement text for every
/// page, compiled afresh each time; and a raw `sql_query` is never kept prepared. This is
/// typed, so diesel keeps it prepared like any other query. (PostgreSQL's `eq_any` is
/// already one array parameter.)
#[derive(Debug, Clone, diesel::query_builder::QueryId)]
pub struct InJsonIds<C> {
    column: C,
    ids: String,
}

impl<C> InJsonIds<C> {
    pub fn new(column: C, ids: &[String]) -> Self {
        Self {
            column,
            ids: serde_json::to_string(ids).expect("strings serialize"),
        }
    }
}

impl<C: Expression> Expression for InJsonIds<C> {
    type SqlType = diesel::sql_types::Bool;
}

impl<C: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for InJsonIds<C> {}

impl<C: diesel::expression::ValidGrouping<GB>, GB> diesel::expression::ValidGrouping<GB>
    for InJsonIds<C>
{
    type IsAggregate = C::IsAggregate;
}

impl<C: QueryFragment<diesel::sqlite::Sqlite>> QueryFragment<diesel::sqlite::Sqlite>
    for InJsonIds<C>
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.ids)?;
        out.push_sql("))");
        Ok(())
    }
}

/// The database's plan for `query`, one line per step (`EXPLAIN QUERY PLAN` on SQLite,
/// `EXPLAIN` on PostgreSQL), with the query's own binds: tests use it to prove list
/// queries are served by an index in page order.
pub fn explain<Q: QueryFragment<MultiBackend>>(
    conn: &mut DbConnection,
    query: Q,
) -> QueryResult<Vec<String>> {
    let prefix = explain_prefix(conn);
    let lines: Vec<PlanLine> = Explain { prefix, query }.load(conn)?;
    Ok(lines.into_iter().map(|l| l.0).collect())
}

/// The plan of a query built for one backend, on that backend's own connection (see
/// [`on_backend`]); `prefix` is [`explain_prefix`] of the connection it came from.
pub fn explain_on<C, Q>(conn: &mut C, prefix: &'static str, query: Q) -> QueryResult<Vec<String>>
where
    C: Connection,
    Q: QueryFragment<C::Backend>,
    Explain<Q>: diesel::query_dsl::LoadQuery<'static, C, PlanLine>,
{
    let lines: Vec<PlanLine> = Explain { prefix, query }.load(conn)?;
    Ok(lines.into_iter().map(|l| l.0).collect())
}

pub fn explain_prefix(conn: &DbConnection) -> &'static str {
    match conn {
        DbConnection::Sqlite(_) => "EXPLAIN QUERY PLAN ",
        DbConnection::Postgresql(_) => "EXPLAIN ",
    }
}

pub struct Explain<Q> {
    prefix: &'static str,
    query: Q,
}

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = Untyped;
}

impl<DB: diesel::backend::Backend, Q: QueryFragment<DB>> QueryFragment<DB> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql(self.prefix);
        self.query.walk_ast(out)
    }
}

impl<Q, C> RunQueryDsl<C> for Explain<Q> {}

/// How many entries of the organization's email index to walk for the first `page`
/// members of a set (a group, a pool, a role's holders) holding `in_set` of the
/// organization's `in_org`, checking each entry for the set by key; `None` where reading
/// the whole set and sorting it reads fewer. A walk meets an evenly spread set's members
/// at the rate the set holds them, about `page × in_org / in_set` entries for a page,
/// and is taken only where that is no more than the `in_set` a sort reads (so a page
/// reads at most about `√(page × in_org)` entries that way: 22,000 at a million members;
/// sorting a group of 200,000 took 0.14 s on SQLite, the walk 2 ms). A set whose members
/// sort late (addresses all starting `zz-`) would be met far later: the walk stops after
/// four times the entries an even spread needs, and the caller sorts instead.
pub fn set_walk_budget(in_set: i64, in_org: i64, page: i64) -> Option<i64> {
    let walks = in_set > page && in_set.saturating_mul(in_set) >= page.saturating_mul(in_org);
    walks.then(|| {
        let even = page.saturating_mul(in_org) / in_set.max(1) + 1;
        even.saturating_mul(4).saturating_add(page)
    })
}

/// The fewest members a set of an organization of `in_org` holds for its first `page` to
/// be walked for (see [`set_walk_budget`]).
pub fn set_walk_threshold(in_org: i64, page: i64) -> i64 {
    let spread = page.saturating_mul(in_org);
    let mut n = (spread as f64).sqrt() as i64;
    while n.saturating_mul(n) < spread {
        n += 1;
    }
    while n > 0 && (n - 1).saturating_mul(n - 1) >= spread {
        n -= 1;
    }
    n.max(page.saturating_add(1))
}

/// A walk for a set's first page (see [`set_walk_budget`]): how far it reads, and whether
/// what it found is the page.
pub struct SetWalk {
    pub budget: i64,
}

impl SetWalk {
    /// The walk for the first `page` of a set holding `in_set` of the organization's
    /// members; `None` where the set is read by its own key and sorted instead.
    pub fn plan(
        conn: &mut DbConnection,
        org_id: &str,
        in_set: i64,
        page: i64,
    ) -> QueryResult<Option<SetWalk>> {
        let counts = member_counts::by_status(conn, org_id)?;
        let in_org = counts.members();
        Ok(set_walk_budget(in_set, in_org, page).map(|budget| SetWalk { budget }))
    }

    /// Whether the `found` members are the page: a full one. A walk is only taken for a
    /// set larger than a page, so one that read the whole organization found a full page
    /// too; fewer means its members sort later than an even spread would put them (or the
    /// set shrank since it was counted), and sorting them is cheaper. Not judged by the
    /// organization's size, read in a statement of its own: a member added between the two
    /// would have a walk that stopped at its budget pass for one that read everyone.
    pub fn settled(&self, found: usize, page: i64) -> bool {
        found as i64 >= page
    }
}

/// The accounts with these ids, in the order of `ids`.
pub fn users_in_order(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<users::User>> {
    let mut found: std::collections::HashMap<String, users::User> = schema::users::table
        .filter(schema::users::id.eq_any(ids))
        .select(users::User::as_select())
        .load::<users::User>(conn)?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// `query LIMIT n` with `n` written into the statement instead of bound. PostgreSQL plans
/// a prepared statement for a bound limit as if it kept a tenth of the rows, so its
/// generic plan of the Users tab's page was a parallel scan: it planned the statement
/// afresh at every execution instead (0.4 ms of a page). With the limit in the text it
/// settles on the generic plan after five executions. Only for a limit from a handful of
/// constants: each value is a statement of its own in every connection's cache.
pub struct LiteralLimit<Q> {
    query: Q,
    limit: i64,
}

impl<Q> LiteralLimit<Q> {
    pub fn new(query: Q, limit: i64) -> Self {
        LiteralLimit { query, limit }
    }
}

impl<Q> QueryId for LiteralLimit<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for LiteralLimit<Q> {
    type SqlType = Q::SqlType;
}

impl<DB: diesel::backend::Backend, Q: QueryFragment<DB>> QueryFragment<DB> for LiteralLimit<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT ");
        out.push_sql(&self.limit.to_string());
        Ok(())
    }
}

impl<Q, C> RunQueryDsl<C> for LiteralLimit<Q> {}

/// SQLite names the column `detail`, PostgreSQL `QUERY PLAN`.
pub struct PlanLine(String);

impl<DB> diesel::QueryableByName<DB> for PlanLine
where
    DB: diesel::backend::Backend,
    String: diesel::deserialize::FromSql<Text, DB>,
{
    fn build<'a>(row: &impl diesel::row::NamedRow<'a, DB>) -> diesel::deserialize::Result<Self> {
        let line = diesel::row::NamedRow::get::<Text, String>(row, "detail")
            .or_else(|_| diesel::row::NamedRow::get::<Text, String>(row, "QUERY PLAN"))?;
        Ok(PlanLine(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_read_checkout_leaves_later_checkouts_checked() {
        let panicked = std::panic::catch_unwind(|| {
            let _read = ReadCheckout::begin();
            assert!(READ_CHECKOUT.get());
            panic!("a checkout that fails on purpose");
        });
        assert!(panicked.is_err());
        assert!(!READ_CHECKOUT.get());
    }

    #[test]
    fn a_set_is_walked_for_where_the_walk_reads_fewer_entries_than_the_set_holds() {
        let walks = |in_set, in_org| set_walk_budget(in_set, in_org, 500).is_some();
        // A set no larger than a page is read whole.
        assert!(!walks(500, 500));
        assert!(!walks(20, 2_001));
        assert!(walks(1_500, 2_001));
        // At a million: walking for 22,400 reads about 22,300 entries; for 22,300, more.
        assert!(walks(22_400, 1_000_000));
        assert!(!walks(22_300, 1_000_000));
        // Four times what an even spread needs, and a page more.
        assert_eq!(set_walk_budget(1_000_000, 1_000_000, 500), Some(2_504));
        assert_eq!(set_walk_budget(100_000, 1_000_000, 500), Some(20_504));
    }

    #[test]
    fn a_walk_that_found_less_than_a_page_is_never_the_page() {
        // Even one whose budget covered the organization as counted before it ran: a
        // member added since may lie past the budget.
        let walk = SetWalk { budget: 5_000 };
        assert!(!walk.settled(499, 500));
        assert!(walk.settled(500, 500));
    }

    #[test]
    fn the_threshold_is_the_fewest_members_a_set_is_walked_for() {
        for in_org in [
            0, 1, 50, 51, 2_001, 6_000, 200_000, 999_983, 1_000_000, 10_000_000,
        ] {
            for page in [1, 50, 51, 500] {
                let at = set_walk_threshold(in_org, page);
                assert!(
                    set_walk_budget(at, in_org, page).is_some(),
                    "{in_org} {page}"
                );
                assert!(
                    set_walk_budget(at - 1, in_org, page).is_none(),
                    "{in_org} {page}"
                );
            }
        }
        assert_eq!(set_walk_threshold(1_000_000, 51), 7_142);
    }

    #[test]
    fn url_schemes_pick_the_backend() {
        assert_eq!(
            DbTarget::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DbTarget::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DbTarget::parse("sqlite://data/x.db").unwrap(),
            DbTarget::Sqlite("data/x.db".into())
        );
        assert_eq!(
            DbTarget::parse("./data/portcullis.db").unwrap(),
            DbTarget::Sqlite("./data/portcullis.db".into())
        );
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(matches!(
            DbTarget::parse("mysql://root@localhost/db"),
            Err(DbUrlError::UnsupportedScheme(s)) if s == "mysql"
        ));
        assert!(matches!(
            DbTarget::parse("postgress://x"),
            Err(DbUrlError::UnsupportedScheme(_))
        ));
        assert!(matches!(DbTarget::parse("  "), Err(DbUrlError::Empty)));
    }

    fn sqlite_memory() -> DbConnection {
        DbConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap())
    }

    /// SQLite ends a transaction by itself on some errors (disk full, I/O error); the
    /// ROLLBACK that follows fails, and the caller must still see the first error.
    #[test]
    fn write_tx_keeps_the_original_error_when_the_rollback_fails() {
        let mut conn = sqlite_memory();
        let result: Result<(), diesel::result::Error> = write_tx(&mut conn, |conn| {
            conn.batch_execute("ROLLBACK")?;
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new("database or disk is full".to_string()),
            ))
        });
        let message = result.unwrap_err().to_string();
        assert_eq!(message, "database or disk is full");
    }

    /// A real full database (capped with `max_page_count`): the error names it.
    #[test]
    fn write_tx_on_a_full_database_says_it_is_full() {
        let mut conn = sqlite_memory();
        conn.batch_execute("CREATE TABLE t (b BLOB); INSERT INTO t VALUES (zeroblob(10));")
            .unwrap();
        #[derive(QueryableByName)]
        struct Pages {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            page_count: i64,
        }
        let pages = diesel::sql_query("PRAGMA page_count")
            .get_result::<Pages>(&mut conn)
            .unwrap()
            .page_count;
        conn.batch_execute(&format!("PRAGMA max_page_count = {pages}"))
            .unwrap();
        let result: Result<(), diesel::result::Error> = write_tx(&mut conn, |conn| {
            conn.batch_execute("INSERT INTO t VALUES (zeroblob(1000000))")?;
            Ok(())
        });
        let message = result.unwrap_err().to_string();
        assert!(message.contains("full"), "{message}");
        // The connection is usable again (or marked broken for the pool to drop).
        let _ = conn.batch_execute("SELECT 1");
    }
}
