//! The outbox: emails are rows written with the change they announce, and one worker per
//! instance sends them, retrying with exponential back-off until they go through.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::QueryResult;
use lettre::message::Mailbox;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::templates::{Rendered, header_safe};
use super::{Mailer, SendError};
use crate::db::email_outbox::{self, NewOutboxRow, OutboxRow};
use crate::db::{self, DbConnection, DbPool};

/// Emails claimed per round.
const BATCH: i64 = 20;
/// How long claimed emails stay hidden from other instances unless renewed. The claimer
/// renews every [`RENEW_EVERY`] while it works through them, so a live worker keeps them
/// however slow the mail server is, and a dead one's are picked up again within this.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often a worker pushes back the lease on what it holds.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// On shutdown, how long the email being sent may still take to get its answer before it
/// is abandoned and released.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// On shutdown, how long to wait for the worker as a whole (it finishes one email and
/// writes a few rows) before exiting anyway.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);
/// Tries at writing down that an email went out, with a wait doubling from half a second:
/// until it is written, a crash would send the email again.
const MARK_SENT_TRIES: u32 = 6;
/// Longest wait between two retries of one email.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// An email still failing after this long is given up on; by then its link has long
/// expired.
const GIVE_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Queues an email inside the caller's transaction: if the change rolls back, so does the
/// email. `ref_id` names what the email is about, so a later change can drop it unsent.
pub fn queue(
    conn: &mut DbConnection,
    to: &str,
    email: &Rendered,
    ref_id: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<String> {
    queue_link(conn, to, email, ref_id, now, None)
}

/// [`queue`] for an email carrying a link that dies at `link_dies_at`: from then on it is
/// given up on instead of sent (retried for up to a week, it arrived long after its link
/// stopped working).
pub fn queue_link(
    conn: &mut DbConnection,
    to: &str,
    email: &Rendered,
    ref_id: Option<&str>,
    now: NaiveDateTime,
    link_dies_at: Option<NaiveDateTime>,
) -> QueryResult<String> {
    let id = db::new_id();
    email_outbox::insert(
        conn,
        &NewOutboxRow {
            id: &id,
            to_addr: to,
            subject: &header_safe(&email.subject),
            text_body: &email.text,
            html_body: &email.html,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            ref_id,
            send_before: link_dies_at,
        },
    )?;
    Ok(id)
}

/// Wait before the next attempt after `attempts` failed ones: `first`, doubling, capped.
pub fn retry_delay(first: Duration, attempts: i64) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    first
        .checked_mul(1u32 << doublings)
        .unwrap_or(MAX_RETRY_DELAY)
        .min(MAX_RETRY_DELAY)
}

/// Stops a running [`Worker`] and waits for it to put down what it holds.
pub struct WorkerHandle {
    stop: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Asks the worker to stop: it claims nothing more, lets the email being sent get its
    /// answer (for at most [`SHUTDOWN_GRACE`]) and releases the rest of its claim.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the worker on SIGTERM or Ctrl-C (SIGINT), the signals on which actix-web
    /// stops the HTTP server, so mail stops being claimed at once rather than after the
    /// server's graceful shutdown.
    pub fn stop_on_signals(&self) {
        let stop = self.stop.clone();
        actix_web::rt::spawn(async move {
            #[cfg(unix)]
            {
                use actix_web::rt::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    tracing::warn!("cannot listen for SIGTERM; the outbox stops with the server");
                    return;
                };
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                    _ = stop.closed() => return,
                };
                tracing::info!(signal = name, "stopping the outbox worker");
            }
            #[cfg(not(unix))]
            tokio::select! {
                _ = actix_web::rt::signal::ctrl_c() => {}
                _ = stop.closed() => return,
            }
            stop.send_replace(true);
        });
    }

    /// Stops the worker and waits until it has finished or released every email it held.
    pub async fn shutdown(self) {
        self.stop();
        match tokio::time::timeout(SHUTDOWN_WAIT, self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "outbox worker failed"),
            Err(_) => tracing::warn!(
                "outbox worker still busy after {SHUTDOWN_WAIT:?}; exiting anyway, its claims \
                 run out within {LEASE:?}"
            ),
        }
    }
}

/// Resolves once the worker is asked to stop (or nobody can ask any more).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn is_stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

fn lease_from(now: NaiveDateTime) -> NaiveDateTime {
    now + chrono::Duration::from_std(LEASE).expect("the lease fits a TimeDelta")
}

#[derive(Clone)]
pub struct Worker {
    pub pool: DbPool,
    pub mailer: Arc<Mailer>,
    pub from: Mailbox,
    pub poll_interval: Duration,
    pub retry_delay: Duration,
    pub wake: Arc<Notify>,
}

impl Worker {
    /// Runs on the current (actix) runtime until stopped through the handle.
    pub fn spawn(self) -> WorkerHandle {
        let (stop, mut stopping) = watch::channel(false);
        // Names this process in the rows it claims; seen in the log of whoever takes over.
        let claimer = format!(
            "pid{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        let task = actix_web::rt::spawn(async move {
            tracing::debug!(claimer = %claimer, "outbox worker started");
            while !is_stopped(&stopping) {
                match self.run_once(&claimer, &mut stopping).await {
                    // A full batch suggests more is due: go again at once.
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox round failed"),
                }
                tokio::select! {
                    _ = actix_web::rt::time::sleep(self.poll_interval) => {}
                    _ = self.wake.notified() => {}
                    _ = stopped(&mut stopping) => {}
                }
            }
            // A round releases what it holds when stopped or failing: normally nothing is
            // left here, but whatever is goes back now rather than when its lease runs out.
            match self
                .db({
                    let claimer = claimer.clone();
                    move |conn| email_outbox::release(conn, &claimer, db::now())
                })
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "outbox: unsent emails released"),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: could not release claimed emails; they are due again once their lease runs out")
                }
            }
            tracing::info!("outbox worker stopped");
        });
        WorkerHandle {
            stop: Arc::new(stop),
            task,
        }
    }

    /// Claims due emails and sends them one at a time, each marked sent as soon as the
    /// mail server accepted it, so a crash re-sends at most the one in flight. Answers how
    /// many were claimed. When `stop` turns true it stops between emails (giving the one
    /// in flight [`SHUTDOWN_GRACE`]) and releases the rest.
    pub async fn run_once(
        &self,
        claimer: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<usize> {
        let now = db::now();
        let claimed = {
            let claimer = claimer.to_string();
            self.db(move |conn| {
                if db::superseded(conn)? {
                    return Ok(Vec::new());
                }
                email_outbox::claim_due(conn, &claimer, now, lease_from(now), BATCH)
            })
            .await?
        };
        let count = claimed.len();
        if count == 0 {
            return Ok(0);
        }
        let mut taken_over: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in &claimed {
            if let Some(previous) = &c.taken_over_from {
                taken_over.entry(previous).or_default().push(&c.email.id);
            }
        }
        for (previous, ids) in taken_over {
            tracing::warn!(
                previous_claimer = %previous,
                emails = ids.len(),
                email_ids = %ids.join(","),
                "outbox: lease taken over from a claimer that stopped renewing it (it crashed \
                 or stalled); the one email it was sending, if any, goes out twice"
            );
        }
        let rows = claimed.into_iter().map(|c| c.email);
        let renewing = async {
            loop {
                actix_web::rt::time::sleep(RENEW_EVERY).await;
                let claimer = claimer.to_string();
                let renewed = self
                    .db(move |conn| email_outbox::renew(conn, &claimer, lease_from(db::now())))
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(error = %e, "outbox: could not renew the lease");
                }
            }
        };
        let sending = self.send_each(claimer, rows, stop);
        let result = tokio::select! {
            result = sending => result,
            _ = renewing => unreachable!("renewing runs until sending ends"),
        };
        // Stopping, or a database error midway: what is left goes back at once rather than
        // when the lease runs out.
        if is_stopped(stop) || result.is_err() {
            let claimer = claimer.to_string();
            let released = self
                .db(move |conn| email_outbox::release(conn, &claimer, db::now()))
                .await;
            match released {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "outbox: unsent emails released"),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: could not release claimed emails; they are due again once their lease runs out")
                }
            }
        }
        result.map(|()| count)
    }

    async fn send_each(
        &self,
        claimer: &str,
        rows: impl Iterator<Item = OutboxRow>,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        for row in rows {
            if is_stopped(stop) {
                break;
            }
            let held = {
                let (id, claimer) = (row.id.clone(), claimer.to_string());
                self.db(move |conn| email_outbox::hold(conn, &id, &claimer, lease_from(db::now())))
                    .await?
            };
            if !held {
                tracing::info!(email_id = %row.id, "outbox: email no longer ours to send; skipped");
                continue;
            }
            let now = db::now();
            if row.send_before.is_some_and(|dies| dies <= now) {
                tracing::warn!(email_id = %row.id, attempts = row.attempts, "email given up: the link it carries died before it could be sent");
                let (id, claimer) = (row.id.clone(), claimer.to_string());
                let why = email_outbox::LINK_DIED;
                self.db(move |conn| email_outbox::mark_failed(conn, &id, &claimer, now, why))
                    .await?;
                continue;
            }
            let result = {
                let send = self.mailer.send(&self.from, &row);
                tokio::pin!(send);
                tokio::select! {
                    result = &mut send => Some(result),
                    () = stopped(stop) => tokio::time::timeout(SHUTDOWN_GRACE, &mut send).await.ok(),
                }
            };
            match result {
                Some(Ok(())) => {
                    tracing::info!(email_id = %row.id, attempts = row.attempts, "email sent");
                    self.mark_sent(&row.id).await?;
                }
                Some(Err(e)) => self.failed(claimer, row, e).await?,
                None => {
                    tracing::warn!(email_id = %row.id, "outbox: stopping mid-send without an answer from the mail server; email released (it may go out twice)");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Writes down at once that the mail server took the email, trying again for a while
    /// if the database is away (the lease is being renewed meanwhile).
    async fn mark_sent(&self, id: &str) -> anyhow::Result<()> {
        let mut wait = Duration::from_millis(500);
        for attempt in 1..=MARK_SENT_TRIES {
            let id = id.to_string();
            match self
                .db(move |conn| email_outbox::mark_sent(conn, &id, db::now()))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt == MARK_SENT_TRIES => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: could not record a sent email; trying again");
                    actix_web::rt::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        unreachable!("the last try returns")
    }

    async fn failed(&self, claimer: &str, row: OutboxRow, e: SendError) -> anyhow::Result<()> {
        let error: String = e.message.chars().take(1000).collect();
        let now = db::now();
        let claimer = claimer.to_string();
        if e.permanent || now - row.created_at > GIVE_UP_AFTER {
            tracing::error!(email_id = %row.id, attempts = row.attempts, error = %error, "email given up");
            return self
                .db(move |conn| email_outbox::mark_failed(conn, &row.id, &claimer, now, &error))
                .await;
        }
        let wait = retry_delay(self.retry_delay, row.attempts);
        tracing::warn!(email_id = %row.id, attempts = row.attempts, retry_in_ms = wait.as_millis() as u64, error = %error, "email not sent; will retry");
        let at = now + chrono::Duration::from_std(wait)?;
        self.db(move |conn| email_outbox::reschedule(conn, &row.id, &claimer, at, &error))
            .await
    }

    async fn db<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        crate::db::off_thread::run(move || -> anyhow::Result<T> {
            let mut conn = pool.get()?;
            Ok(f(&mut conn)?)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DbTarget, PoolOptions, build_pool};

    /// Invitation emails queued by a version without `send_before` get their link's
    /// deadline from the migration that follows; other emails keep none.
    #[test]
    fn invitation_emails_queued_before_the_deadline_existed_get_their_links() {
        let db = crate::domain::testing::with_admin("x");
        let conn = &mut db.pool.get().unwrap();
        let org = db.admin.org.id.clone();
        let role = crate::db::roles::find_by_key(conn, &org, "member")
            .unwrap()
            .unwrap()
            .id;
        let now = db::now();
        let expires_at = now + chrono::Duration::days(3);
        crate::db::invitations::insert(
            conn,
            &crate::db::invitations::NewInvitation {
                id: "inv1",
                org_id: &org,
                email: "x@example.com",
                first_name: "",
                last_name: "",
                role_id: &role,
                token_hash: "h",
                status: "pending",
                invited_by: None,
                created_at: now,
                expires_at,
                last_sent_at: now,
                send_count: 1,
                access_until: None,
            },
        )
        .unwrap();
        let email = Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        let invitation = queue(conn, "x@example.com", &email, Some("inv1"), now).unwrap();
        let notice = queue(conn, "y@example.com", &email, None, now).unwrap();
        crate::db::migrate_again_from(conn, "20261205600001");
        let mut deadline = |id: &str| email_outbox::find(conn, id).unwrap().unwrap().send_before;
        assert_eq!(deadline(&invitation), Some(expires_at));
        assert_eq!(deadline(&notice), None);
    }

    #[test]
    fn claimed_emails_stay_hidden_until_their_lease_ends() {
        let dir = tempfile::tempdir().unwrap();
        let target = DbTarget::Sqlite(dir.path().join("t.db").to_string_lossy().into_owned());
        let pool = build_pool(&target, PoolOptions::default()).unwrap();
        let conn = &mut pool.get().unwrap();
        db::migrate(conn).unwrap();
        let now = db::now();
        let email = Rendered {
            subject: "Hi\r\nBcc: x@example.com".into(),
            text: "t".into(),
            html: "h".into(),
        };
        for i in 0..3 {
            queue(conn, &format!("u{i}@example.com"), &email, None, now).unwrap();
        }
        let lease = lease_from(now);
        let first = email_outbox::claim_due(conn, "a", now, lease, 2).unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|c| c.email.attempts == 1
            && c.email.next_attempt_at == lease
            && c.email.claimed_by.as_deref() == Some("a")
            && c.taken_over_from.is_none()));
        assert_eq!(first[0].email.subject, "Hi Bcc: x@example.com");
        assert_eq!(
            email_outbox::claim_due(conn, "b", now, lease, 2)
                .unwrap()
                .len(),
            1
        );
        assert!(
            email_outbox::claim_due(conn, "b", now, lease, 2)
                .unwrap()
                .is_empty()
        );

        let sent = &first[0].email.id;
        assert!(email_outbox::hold(conn, sent, "a", lease).unwrap());
        assert!(!email_outbox::hold(conn, sent, "b", lease).unwrap());
        assert!(email_outbox::mark_sent(conn, sent, now).unwrap());
        assert!(!email_outbox::mark_sent(conn, sent, now).unwrap());
        assert!(!email_outbox::hold(conn, sent, "a", lease).unwrap());
        let row = email_outbox::find(conn, sent).unwrap().unwrap();
        assert!(row.text_body.is_empty() && row.html_body.is_empty() && row.claimed_by.is_none());

        // A renewed lease keeps the email; one left to run out is taken over, and says from
        // whom.
        let later = lease + chrono::Duration::seconds(1);
        assert_eq!(
            email_outbox::renew(conn, "a", lease_from(later)).unwrap(),
            1
        );
        let again = email_outbox::claim_due(conn, "c", later, lease_from(later), 10).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].taken_over_from.as_deref(), Some("b"));
        assert_eq!(again[0].email.attempts, 2);

        // Released emails are due at once, their unused attempt given back, and nobody
        // "takes them over".
        assert_eq!(email_outbox::release(conn, "a", later).unwrap(), 1);
        assert_eq!(email_outbox::release(conn, "a", later).unwrap(), 0);
        let released = email_outbox::claim_due(conn, "d", later, lease_from(later), 10).unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].email.id, first[1].email.id);
        assert!(released[0].taken_over_from.is_none());
        assert_eq!(released[0].email.attempts, 1);
    }

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let first = Duration::from_secs(30);
        assert_eq!(retry_delay(first, 1), Duration::from_secs(30));
        assert_eq!(retry_delay(first, 2), Duration::from_secs(60));
        assert_eq!(retry_delay(first, 4), Duration::from_secs(240));
        assert_eq!(retry_delay(first, 20), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(first, i64::MAX), MAX_RETRY_DELAY);
    }
}
