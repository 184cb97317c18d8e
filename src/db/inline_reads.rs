//! Reads that SQLite answers on the request's own thread.
//!
//! A query through the pool is a hop to the blocking thread pool and back, and a
//! connection taken from r2d2 and given back: `strace` counted about forty `futex` calls
//! per Users-tab page for its three such trips (session, membership, page). SQLite in WAL
//! mode never makes a reader wait for a writer, and a page's reads come from the page
//! cache in a millisecond or two, so on SQLite each HTTP worker thread keeps a read-only
//! connection of its own and runs reads on it directly. On PostgreSQL a read waits on
//! the network and on the server's CPU, which would stall every other request of the
//! worker, so reads there keep the pool.
//!
//! The connection is `query_only`: a write slipped into a read fails at once instead of
//! waiting on SQLite's write lock with the worker's event loop stopped behind it.

use std::cell::RefCell;
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use r2d2::ManageConnection;

use super::{ConnectionManager, DbConnection, DbTarget};

/// More files than one worker thread ever reads in production (one); tests run many
/// apps in one process, each with its own file, and a thread may outlive its app.
const MAX_FILES_PER_THREAD: usize = 4;

thread_local! {
    /// This thread's read connections, by database file.
    static READERS: RefCell<Vec<(Arc<str>, DbConnection)>> = const { RefCell::new(Vec::new()) };
}

/// Whether reads run inline, and on which SQLite file.
#[derive(Debug, Clone)]
pub struct InlineReads {
    sqlite_path: Option<Arc<str>>,
}

impl InlineReads {
    /// Inline on SQLite, through the pool on PostgreSQL.
    pub fn for_target(target: &DbTarget) -> Self {
        Self {
            sqlite_path: match target {
                DbTarget::Sqlite(path) => Some(path.as_str().into()),
                DbTarget::Postgres(_) => None,
            },
        }
    }

    pub fn is_inline(&self) -> bool {
        self.sqlite_path.is_some()
    }

    /// Runs `f` with this thread's read-only connection to the SQLite file, opened on
    /// first use. Only for reads, and only where `is_inline` said so.
    pub fn run<R>(&self, f: impl FnOnce(&mut DbConnection) -> R) -> Result<R, diesel::r2d2::Error> {
        let path = self
            .sqlite_path
            .as_ref()
            .expect("inline reads are only run on SQLite");
        READERS.with(|readers| {
            let Ok(mut readers) = readers.try_borrow_mut() else {
                // A read inside a read (none does this today): a connection of its own.
                return Ok(f(&mut open(path)?));
            };
            let at = match readers.iter().position(|(p, _)| p == path) {
                Some(at) => at,
                None => {
                    if readers.len() >= MAX_FILES_PER_THREAD {
                        readers.remove(0);
                    }
                    readers.push((path.clone(), open(path)?));
                    readers.len() - 1
                }
            };
            Ok(f(&mut readers[at].1))
        })
    }
}

/// A reader in WAL mode waits only in rare moments (another connection recovering the
/// log after a crash); the pool's ten seconds would stop the worker's event loop for
/// that long, so this one gives up sooner and the request answers 503.
const READER_BUSY_TIMEOUT_MS: u32 = 250;

fn open(path: &str) -> Result<DbConnection, diesel::r2d2::Error> {
    let mut conn = ConnectionManager::new(DbTarget::Sqlite(path.to_string()))
        .connect()?
        .into_inner();
    conn.batch_execute(&format!(
        "PRAGMA query_only = ON; PRAGMA busy_timeout = {READER_BUSY_TIMEOUT_MS};"
    ))
    .map_err(diesel::r2d2::Error::QueryError)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    use super::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut DbConnection) -> QueryResult<i64> {
        diesel::sql_query("SELECT COUNT(*) AS n FROM t")
            .get_result::<Count>(conn)
            .map(|c| c.n)
    }

    #[test]
    fn reads_see_committed_writes_and_refuse_to_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reads.db").to_string_lossy().into_owned();
        let target = DbTarget::Sqlite(path);
        let mut writer = ConnectionManager::new(target.clone())
            .connect()
            .unwrap()
            .into_inner();
        writer
            .batch_execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .unwrap();
        let reads = InlineReads::for_target(&target);
        assert_eq!(reads.run(count).unwrap().unwrap(), 1);
        writer.batch_execute("INSERT INTO t VALUES (2)").unwrap();
        assert_eq!(
            reads.run(count).unwrap().unwrap(),
            2,
            "the same connection again"
        );
        let write = reads.run(|conn| conn.batch_execute("INSERT INTO t VALUES (3)"));
        assert!(write.unwrap().is_err(), "a write through a read connection");
        assert_eq!(reads.run(count).unwrap().unwrap(), 2);
    }

    #[test]
    fn postgres_reads_are_not_inline() {
        let reads = InlineReads::for_target(&DbTarget::Postgres("postgres://x/y".into()));
        assert!(!reads.is_inline());
    }
}
