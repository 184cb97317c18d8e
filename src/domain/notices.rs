//! Emails that tell an account's owner how its protection changed, queued in the
//! transaction that changes it (so a change that rolls back tells nobody).

use chrono::Duration;
use diesel::QueryResult;

use crate::db::{self, DbConnection, login_attempts};
use crate::mail::templates::{AddressChangedEmail, Rendered, SecurityChange, SecurityChangeEmail};

/// Emails of one kind about an account's own protection (one kind of change to it, or
/// sign-ins from new browsers) sent to it in a quarter of an hour, at most. Past it the
/// change is still made and audited, but mailed no more: a member switching a setting on
/// and off, or signing in again and again from fresh browsers, would otherwise fill the
/// outbox (links go first, up to three quarters of each batch; notices share the rest). Each
/// kind has its own share, so switching sign-in emails on and off (a stolen session can)
/// never keeps the owner from hearing of a new sign-in or of two-factor turned on.
pub const NOTICES_PER_QUARTER_HOUR: i64 = 5;

/// The kind of notice a budget is kept for.
pub const NEW_SIGN_IN: &str = "new-sign-in";

fn kind(change: &SecurityChange) -> &'static str {
    match change {
        SecurityChange::TwoFactorOn => "two-factor-on",
        SecurityChange::TwoFactorOff => "two-factor-off",
        SecurityChange::RecoveryCodesMade => "recovery-codes",
        SecurityChange::SignInAlertsOff => "sign-in-alerts-off",
    }
}

/// Counts one notice of `kind` to the account at `email`, or answers false when its
/// quarter hour has had its share. Call it inside the write transaction that queues it.
pub fn take_share(conn: &mut DbConnection, kind: &str, email: &str) -> QueryResult<bool> {
    let now = db::now();
    let key = format!("notice:{kind}:{}", email.to_lowercase());
    let counter = login_attempts::open_window(conn, &key, now, now - Duration::minutes(15))?;
    if counter.attempts >= NOTICES_PER_QUARTER_HOUR {
        return Ok(false);
    }
    login_attempts::add_attempt(conn, &key)?;
    Ok(true)
}

/// Queues the notice `render` writes (given the time it says) to `email`, within the
/// share of `kind` ([`take_share`]).
fn queue_within_share(
    conn: &mut DbConnection,
    kind: &str,
    email: &str,
    render: impl FnOnce(chrono::NaiveDateTime) -> Result<Rendered, askama::Error>,
) -> QueryResult<()> {
    if !take_share(conn, kind, email)? {
        return Ok(());
    }
    let now = db::now();
    let notice = render(now).map_err(|e| diesel::result::Error::SerializationError(e.into()))?;
    crate::mail::outbox::queue(conn, email, &notice, None, now)?;
    Ok(())
}

/// Queues the notice of `change` to the account at `email`, within its share
/// ([`take_share`]); `public_url` is where its links point.
pub fn tell_owner(
    conn: &mut DbConnection,
    email: &str,
    name: &str,
    change: SecurityChange,
    public_url: &str,
) -> QueryResult<()> {
    let base = public_url.trim_end_matches('/');
    queue_within_share(conn, kind(&change), email, |at| {
        SecurityChangeEmail {
            name: name.to_string(),
            change,
            at,
            account_url: format!("{base}/account"),
            reset_url: format!("{base}/forgot-password"),
        }
        .render()
    })
}

/// Tells the address an account was moved away from, within its share ([`take_share`]:
/// a token moving an account back and forth would otherwise fill the outbox).
pub fn tell_old_address(
    conn: &mut DbConnection,
    name: &str,
    (old_address, new_address): (&str, &str),
    org_name: &str,
) -> QueryResult<()> {
    queue_within_share(conn, ADDRESS_CHANGED, old_address, |at| {
        AddressChangedEmail {
            name: name.to_string(),
            old_address: old_address.to_string(),
            new_address: new_address.to_string(),
            org_name: org_name.to_string(),
            at,
        }
        .render()
    })
}

const ADDRESS_CHANGED: &str = "address-changed";
