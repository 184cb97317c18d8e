//! The real binary is killed, or stopped with SIGTERM, while it sends a batch to a slow
//! SMTP server, then started again; the SMTP server counts what each recipient got.
//! kill -9 may send the one email in flight twice; SIGTERM sends nothing twice.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use portcullis::db::schema::email_outbox;
use portcullis::db::{self, DbConnection, DbPool, DbTarget, PoolOptions};
use portcullis::mail::outbox;
use portcullis::mail::templates::Rendered;

use crate::helpers::TestDb;
use crate::smtp::SmtpServer;

const EMAILS: usize = 20;
/// How long the SMTP server takes to accept each message: the batch takes seconds.
const SMTP_DELAY: Duration = Duration::from_millis(300);
/// Delivered before the first process is stopped: well into the batch.
const BEFORE_STOP: usize = 5;
/// Generous waits, never asserted as timings. A crashed claimer's emails come back after
/// the lease (30 s).
const PATIENCE: Duration = Duration::from_secs(180);

/// `portcullis serve` as a child process; killed (SIGKILL) if still running when dropped.
pub(crate) struct Portal {
    child: Child,
    log: PathBuf,
}

impl Portal {
    fn start(db: &TestDb, data_dir: &Path, smtp: &SmtpServer, name: &str) -> Self {
        Self::start_with(db, data_dir, &smtp.url(), &[], name)
    }

    /// Sending to `smtp_url`, with these variables in its environment too.
    pub(crate) fn start_with(
        db: &TestDb,
        data_dir: &Path,
        smtp_url: &str,
        env: &[(&str, &std::ffi::OsStr)],
        name: &str,
    ) -> Self {
        let log = data_dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("serve")
            .args(["--bind", "127.0.0.1:0"])
            .args(["--smtp-url", smtp_url])
            .args(["--mail-from", "Portcullis <noreply@example.com>"])
            .args(["--mail-poll-interval", "200ms"])
            .env_remove("PORTCULLIS_SMTP_URL")
            .env("PORTCULLIS_DATABASE_URL", &db.url)
            .env("PORTCULLIS_DATA_DIR", data_dir)
            .env("PORTCULLIS_LOG", "info,actix_server=warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("start portcullis");
        Portal { child, log }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then waits for the process to exit on its own.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn open(db: &TestDb) -> DbPool {
    let target = DbTarget::parse(&db.url).expect("database URL");
    let pool = db::build_pool(
        &target,
        PoolOptions {
            max_size: 2,
            ..PoolOptions::default()
        },
    )
    .expect("pool");
    db::migrate(&mut pool.get().unwrap()).expect("migrate");
    pool
}

fn recipient(i: usize) -> String {
    format!("crash{i:02}@example.com")
}

/// Queues the emails as the product does: outbox rows, due at once.
fn queue_emails(pool: &DbPool) {
    let mut conn = pool.get().unwrap();
    let conn: &mut DbConnection = &mut conn;
    for i in 0..EMAILS {
        let email = Rendered {
            subject: format!("You are invited ({i})"),
            text: format!("Hello {i}, accept at http://127.0.0.1/invite/t{i}"),
            html: format!("<p>Hello {i}</p>"),
        };
        outbox::queue(conn, &recipient(i), &email, None, db::now()).expect("queue");
    }
}

fn unsent(pool: &DbPool) -> i64 {
    let mut conn = pool.get().unwrap();
    let conn: &mut DbConnection = &mut conn;
    email_outbox::table
        .filter(email_outbox::sent_at.is_null())
        .filter(email_outbox::failed_at.is_null())
        .count()
        .get_result(conn)
        .unwrap()
}

fn still_claimed(pool: &DbPool) -> i64 {
    let mut conn = pool.get().unwrap();
    let conn: &mut DbConnection = &mut conn;
    email_outbox::table
        .filter(email_outbox::sent_at.is_null())
        .filter(email_outbox::claimed_by.is_not_null())
        .count()
        .get_result(conn)
        .unwrap()
}

/// Waits until `done`, or fails at once if the portal has exited.
pub(crate) fn wait_until(what: &str, portal: &mut Portal, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        if let Some(status) = portal.child.try_wait().expect("wait") {
            panic!(
                "the portal exited ({status}) before {what}; log:\n{}",
                portal.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting until {what}; log:\n{}",
            portal.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Messages per recipient; every queued recipient must be there.
fn deliveries(smtp: &SmtpServer) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for mail in smtp.received() {
        for to in mail.to {
            *counts.entry(to).or_insert(0) += 1;
        }
    }
    for i in 0..EMAILS {
        assert!(
            counts.contains_key(&recipient(i)),
            "{} got nothing: {counts:?}",
            recipient(i)
        );
    }
    assert_eq!(counts.len(), EMAILS, "{counts:?}");
    counts
}

/// The outbox's own log lines, shown with `--nocapture`.
fn show_outbox_log(name: &str, portal: &Portal) {
    for line in portal.log().lines().filter(|l| l.contains("outbox")) {
        eprintln!("[{name}] {line}");
    }
}

fn duplicates(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().map(|n| n - 1).sum()
}

#[test]
fn kill_9_mid_batch_sends_at_most_the_email_in_flight_twice() {
    let db = TestDb::new();
    let data_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start_slow(SMTP_DELAY);
    let pool = open(&db);
    queue_emails(&pool);

    let mut first = Portal::start(&db, data_dir.path(), &smtp, "first");
    wait_until("a few emails went out", &mut first, || {
        smtp.received().len() >= BEFORE_STOP
    });
    first.kill9();
    let left = unsent(&pool);
    assert!(left > 0, "the batch was done before the kill");
    assert!(still_claimed(&pool) > 0, "the dead process held its claim");

    let mut second = Portal::start(&db, data_dir.path(), &smtp, "second");
    wait_until("the outbox is empty", &mut second, || unsent(&pool) == 0);
    // Whatever the dead process had on the wire has landed long since.
    let counts = deliveries(&smtp);
    let duplicated = duplicates(&counts);
    eprintln!(
        "kill -9 after {} deliveries, {left} unsent; {duplicated} duplicate(s) after the restart",
        EMAILS - left as usize
    );
    assert!(duplicated <= 1, "more than one duplicate: {counts:?}");
    show_outbox_log("restarted", &second);
    let log = second.log();
    assert!(
        log.contains("lease taken over"),
        "taking over a dead claimer's lease is logged:\n{log}"
    );
    assert!(second.terminate().success(), "{}", second.log());
    assert_eq!(still_claimed(&pool), 0);
}

#[test]
fn sigterm_mid_batch_releases_the_claim_and_sends_nothing_twice() {
    let db = TestDb::new();
    let data_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start_slow(SMTP_DELAY);
    let pool = open(&db);
    queue_emails(&pool);

    let mut first = Portal::start(&db, data_dir.path(), &smtp, "first");
    wait_until("a few emails went out", &mut first, || {
        smtp.received().len() >= BEFORE_STOP
    });
    let status = first.terminate();
    show_outbox_log("stopped", &first);
    let log = first.log();
    assert!(status.success(), "SIGTERM is a clean exit: {status}\n{log}");
    assert!(log.contains("outbox worker stopped"), "{log}");
    let left = unsent(&pool);
    assert!(left > 0, "the batch was done before SIGTERM");
    assert_eq!(still_claimed(&pool), 0, "every unsent email was released");
    // What the stopped process sent, it recorded: nothing it had accepted is unsent.
    assert_eq!(smtp.received().len() + left as usize, EMAILS);

    let mut second = Portal::start(&db, data_dir.path(), &smtp, "second");
    wait_until("the outbox is empty", &mut second, || unsent(&pool) == 0);
    let counts = deliveries(&smtp);
    assert_eq!(duplicates(&counts), 0, "{counts:?}");
    let log = second.log();
    assert!(!log.contains("lease taken over"), "{log}");
    assert!(second.terminate().success(), "{}", second.log());
}
