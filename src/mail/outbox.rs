//! The outbox: emails are rows written with the change they announce, and one worker per
//! instance sends them, retrying with exponential back-off until they go through.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::QueryResult;
use futures_util::{StreamExt, stream};
use lettre::message::Mailbox;
use tokio::sync::Notify;

use super::templates::{Rendered, header_safe};
use super::{Mailer, SendError};
use crate::db::email_outbox::{self, NewOutboxRow, OutboxRow};
use crate::db::{self, DbConnection, DbPool};

/// Emails claimed per round.
const BATCH: i64 = 20;
/// Emails of a round in flight at once: enough to hide each one's round trips, few
/// enough not to look like a flood to the mail server.
const SEND_CONCURRENCY: usize = 4;
/// How long claimed emails stay hidden from other instances: far longer than a round
/// takes (a round stops at the first unreachable-server error, each step bounded by
/// `SMTP_TIMEOUT`), so a row is only taken again after its claimer died.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
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

/// What a round decided for one email.
enum Change {
    Sent(String),
    Retry {
        id: String,
        at: NaiveDateTime,
        error: String,
    },
    GiveUp {
        id: String,
        error: String,
    },
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
    /// Runs until the process ends, on the current (actix) runtime.
    pub fn spawn(self) {
        actix_web::rt::spawn(async move {
            loop {
                match self.run_once().await {
                    // A full batch suggests more is due: go again at once.
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox round failed"),
                }
                tokio::select! {
                    _ = actix_web::rt::time::sleep(self.poll_interval) => {}
                    _ = self.wake.notified() => {}
                }
            }
        });
    }

    /// Claims due emails and tries each once, a few at a time. Answers how many were
    /// claimed.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = db::now();
        let rows = self
            .db(move |conn| email_outbox::claim_due(conn, now, now + LEASE, BATCH))
            .await?;
        let claimed = rows.len();
        if claimed == 0 {
            return Ok(0);
        }
        let outcomes: Vec<(OutboxRow, Result<(), SendError>)> = stream::iter(rows)
            .map(|row| async move {
                let result = self.mailer.send(&self.from, &row).await;
                (row, result)
            })
            .buffer_unordered(SEND_CONCURRENCY)
            .collect()
            .await;
        let now = db::now();
        let mut changes = Vec::with_capacity(outcomes.len());
        for (row, result) in outcomes {
            changes.push(match result {
                Ok(()) => {
                    tracing::info!(email_id = %row.id, attempts = row.attempts, "email sent");
                    Change::Sent(row.id)
                }
                Err(e) => self.failed(row, e, now)?,
            });
        }
        self.db(move |conn| {
            for change in changes {
                match change {
                    Change::Sent(id) => {
                        email_outbox::mark_sent(conn, &id, now)?;
                    }
                    Change::Retry { id, at, error } => {
                        email_outbox::reschedule(conn, &id, at, &error)?
                    }
                    Change::GiveUp { id, error } => {
                        email_outbox::mark_failed(conn, &id, now, &error)?
                    }
                }
            }
            Ok(())
        })
        .await?;
        Ok(claimed)
    }

    fn failed(&self, row: OutboxRow, e: SendError, now: NaiveDateTime) -> anyhow::Result<Change> {
        let error: String = e.message.chars().take(1000).collect();
        if e.permanent || now - row.created_at > GIVE_UP_AFTER {
            tracing::error!(email_id = %row.id, attempts = row.attempts, error = %error, "email given up");
            return Ok(Change::GiveUp { id: row.id, error });
        }
        let wait = retry_delay(self.retry_delay, row.attempts);
        tracing::warn!(email_id = %row.id, attempts = row.attempts, retry_in_ms = wait.as_millis() as u64, error = %error, "email not sent; will retry");
        Ok(Change::Retry {
            id: row.id,
            at: now + chrono::Duration::from_std(wait)?,
            error,
        })
    }

    async fn db<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || -> anyhow::Result<T> {
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
        let lease = now + LEASE;
        let first = email_outbox::claim_due(conn, now, lease, 2).unwrap();
        assert_eq!(first.len(), 2);
        assert!(
            first
                .iter()
                .all(|r| r.attempts == 1 && r.next_attempt_at == lease)
        );
        assert_eq!(first[0].subject, "Hi Bcc: x@example.com");
        assert_eq!(
            email_outbox::claim_due(conn, now, lease, 2).unwrap().len(),
            1
        );
        assert!(
            email_outbox::claim_due(conn, now, lease, 2)
                .unwrap()
                .is_empty()
        );

        assert!(email_outbox::mark_sent(conn, &first[0].id, now).unwrap());
        assert!(!email_outbox::mark_sent(conn, &first[0].id, now).unwrap());
        let sent = email_outbox::find(conn, &first[0].id).unwrap().unwrap();
        assert!(sent.text_body.is_empty() && sent.html_body.is_empty());

        // After the lease, what was claimed but never finished is due again.
        let later = lease + chrono::Duration::seconds(1);
        let again = email_outbox::claim_due(conn, later, later + LEASE, 10).unwrap();
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|r| r.attempts == 2));
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
