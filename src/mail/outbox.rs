//! The outbox: emails are rows written with the change they announce, and one worker per
//! instance sends them, retrying with exponential back-off until they go through.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::QueryResult;
use lettre::message::Mailbox;
use tokio::sync::Notify;

use super::templates::{Rendered, header_safe};
use super::Mailer;
use crate::db::email_outbox::{self, NewOutboxRow, OutboxRow};
use crate::db::{self, DbConnection, DbPool};

/// Emails claimed per round.
const BATCH: i64 = 20;
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

    /// Claims due emails and tries each once. Answers how many were claimed.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = db::now();
        let rows = self
            .db(move |conn| email_outbox::claim_due(conn, now, now + LEASE, BATCH))
            .await?;
        let claimed = rows.len();
        let mut rows = rows.into_iter();
        while let Some(row) = rows.next() {
            match self.mailer.send(&self.from, &row).await {
                Ok(()) => {
                    let id = row.id.clone();
                    self.db(move |conn| email_outbox::mark_sent(conn, &id, db::now()))
                        .await?;
                    tracing::info!(email_id = %row.id, attempts = row.attempts, "email sent");
                }
                Err(e) => {
                    self.failed(&row, &e.message, e.permanent).await?;
                    if !e.message_specific {
                        // The server itself is unreachable: the rest of the batch would
                        // fail the same way, so they wait their turn instead.
                        for rest in rows.by_ref() {
                            self.failed(&rest, "not tried: the mail server was unreachable", false)
                                .await?;
                        }
                    }
                }
            }
        }
        Ok(claimed)
    }

    async fn failed(&self, row: &OutboxRow, error: &str, permanent: bool) -> anyhow::Result<()> {
        let now = db::now();
        let give_up = permanent || now - row.created_at > GIVE_UP_AFTER;
        let id = row.id.clone();
        let error: String = error.chars().take(1000).collect();
        if give_up {
            tracing::error!(email_id = %id, attempts = row.attempts, error = %error, "email given up");
            self.db(move |conn| email_outbox::mark_failed(conn, &id, now, &error))
                .await?;
        } else {
            let wait = retry_delay(self.retry_delay, row.attempts);
            tracing::warn!(email_id = %id, attempts = row.attempts, retry_in_ms = wait.as_millis() as u64, error = %error, "email not sent; will retry");
            let next = now + chrono::Duration::from_std(wait)?;
            self.db(move |conn| email_outbox::reschedule(conn, &id, next, &error))
                .await?;
        }
        Ok(())
    }

    async fn db<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        Ok(actix_web::web::block(move || -> anyhow::Result<T> {
            let mut conn = pool.get()?;
            Ok(f(&mut conn)?)
        })
        .await??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
