//! The one error type of a request, and the one place domain errors become it.
//!
//! Which error is used where:
//! - `diesel::QueryResult` in `src/db/`: queries only.
//! - A domain module's own error enum (`InvitationError`, …) in `src/domain/`, naming
//!   each rule a request can break; `anyhow` for what no person can act on.
//! - [`AppError`] from the web layer up: extractors, middleware and handlers return it,
//!   and every domain error converts into it here with `From`, so `?` is the mapping.
//! - The page a person sees for an `AppError` (its HTML, headers and log line) is
//!   `crate::web::error_page`; this file holds no HTML.

use actix_web::http::StatusCode;

/// Every way a request can fail, each with the page the person sees.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Unknown things and things the caller may not know exist look the same.
    #[error("Page not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("Please sign in")]
    LoginRequired { next: String },
    #[error("{0}")]
    Conflict(String),
    /// The organization's two-factor deadline has passed and the member has not enrolled:
    /// its pages show only this, with the way to enrol.
    #[error(
        "{org} requires two-factor authentication, and its deadline ({deadline}) has passed. Set it up for your account to use {org} again; your other organizations are not affected."
    )]
    TwoFactorRequired { org: String, deadline: String },
    #[error("{0}")]
    TooManyRequests(String),
    /// The server turns work away for now (every password-hashing slot busy and its
    /// queue full): 503 at once with `Retry-After`, instead of a wait without end.
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    BadRequest(String),
    /// A body over the limit; the message says the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The database cannot be reached, or cannot store changes (server down, every pooled
    /// connection busy past the pool's timeout, disk full, read-only file): 503, and the
    /// log line names the real cause.
    #[error("database unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else. An `Internal` error whose cause is one of the above still answers
    /// 503 (see [`outage`]), so a database error wrapped on its way up is not a 500.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

/// Why the database could not serve a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// No connection: the server is down, refuses connections or dropped ours, or the pool
    /// found none within its timeout.
    Unreachable,
    /// Connected, but writes fail: disk full, read-only file or database, I/O error.
    CannotWrite,
}

/// The outage behind `e`, if its cause is one: by error type where the type survived
/// (r2d2's timeout, diesel's error kinds), otherwise by the databases' own messages.
pub fn outage(e: &anyhow::Error) -> Option<Outage> {
    for cause in e.chain() {
        if cause.downcast_ref::<r2d2::Error>().is_some()
            || cause.downcast_ref::<diesel::ConnectionError>().is_some()
        {
            return Some(Outage::Unreachable);
        }
        if let Some(e) = cause.downcast_ref::<diesel::result::Error>()
            && let Some(o) = diesel_outage(e)
        {
            return Some(o);
        }
    }
    outage_in_text(&format!("{e:#}"))
}

fn diesel_outage(e: &diesel::result::Error) -> Option<Outage> {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => Some(Outage::Unreachable),
        Error::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => {
            Some(Outage::CannotWrite)
        }
        Error::DatabaseError(_, info) => outage_in_text(info.message()),
        Error::RollbackErrorOnCommit { commit_error, .. } => diesel_outage(commit_error),
        _ => None,
    }
}

/// SQLite's and PostgreSQL's messages for the outages their error codes do not tell apart.
fn outage_in_text(text: &str) -> Option<Outage> {
    const CANNOT_WRITE: [&str; 7] = [
        "database or disk is full",
        "attempt to write a readonly database",
        "disk i/o error",
        "unable to open database file",
        "no space left on device",
        "could not extend file",
        "read-only transaction",
    ];
    const UNREACHABLE: [&str; 7] = [
        "timed out waiting for connection",
        "terminating connection",
        "server closed the connection",
        "no connection to the server",
        "could not connect to server",
        "connection refused",
        "is not currently accepting connections",
    ];
    let text = text.to_lowercase();
    if CANNOT_WRITE.iter().any(|m| text.contains(m)) {
        Some(Outage::CannotWrite)
    } else if UNREACHABLE.iter().any(|m| text.contains(m)) {
        Some(Outage::Unreachable)
    } else {
        None
    }
}

impl AppError {
    pub fn forbidden() -> Self {
        AppError::Forbidden("You do not have permission to do this.".into())
    }

    /// The response status: unknown and hidden look alike (404), and an outage is a 503
    /// whatever wrapped it.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden(_) | AppError::TwoFactorRequired { .. } => StatusCode::FORBIDDEN,
            AppError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ if self.outage().is_some() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unavailable(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The heading of the error page.
    pub fn title(&self) -> &'static str {
        match self {
            AppError::NotFound => "Page not found",
            AppError::Forbidden(_) => "Not allowed",
            AppError::TwoFactorRequired { .. } => "Two-factor authentication required",
            AppError::LoginRequired { .. } => "Please sign in",
            AppError::Conflict(_) => "That cannot be done",
            AppError::TooManyRequests(_) => "Too many attempts",
            AppError::BadRequest(_) => "Something is wrong with that request",
            AppError::PayloadTooLarge(_) => "That form is too large",
            AppError::Overloaded(_) => "Too busy right now",
            AppError::Unavailable(_) => "Service unavailable",
            AppError::Internal(e) if outage(e).is_some() => "Service unavailable",
            AppError::Internal(_) => "Something went wrong",
        }
    }

    /// The outage behind this error, if it is one.
    pub fn outage(&self) -> Option<Outage> {
        match self {
            AppError::Unavailable(e) => Some(outage(e).unwrap_or(Outage::Unreachable)),
            AppError::Internal(e) => outage(e),
            _ => None,
        }
    }

    /// What the error page tells the person.
    pub fn message(&self) -> String {
        match self {
            AppError::NotFound => {
                "There is nothing here, or you do not have access to it.".into()
            }
            _ if self.outage() == Some(Outage::CannotWrite) => {
                "The database is unavailable for changes: it cannot store anything right now (the server's disk may be full or the database read-only). Nothing was changed; please try again later.".into()
            }
            _ if self.outage().is_some() => {
                "The database is unavailable right now, so this page cannot be shown. Nothing you did caused it; please try again in a moment.".into()
            }
            AppError::Internal(_) => {
                "The server could not finish this request. Nothing you did caused it; please try again in a moment.".into()
            }
            other => other.to_string(),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        if diesel_outage(&e).is_some() {
            AppError::Unavailable(e.into())
        } else {
            AppError::Internal(e.into())
        }
    }
}

/// r2d2 fails only one way: no connection within the pool's timeout.
impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> Self {
        AppError::Unavailable(e.into())
    }
}

const HASHING_BUSY: &str = "Too many sign-ins are being checked right now, so yours was not. Nothing was changed: please try again in a few seconds.";

impl From<crate::auth::password::HashError> for AppError {
    fn from(e: crate::auth::password::HashError) -> Self {
        match e {
            crate::auth::password::HashError::Busy => AppError::Overloaded(HASHING_BUSY.into()),
            crate::auth::password::HashError::Failed(e) => AppError::Internal(e),
        }
    }
}

impl From<crate::db::off_thread::Interrupted> for AppError {
    fn from(e: crate::db::off_thread::Interrupted) -> Self {
        AppError::Internal(anyhow::anyhow!("{e}"))
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// Refusals of the organization's rules (members, groups, pools, roles, platform).
impl From<crate::domain::RuleError> for AppError {
    fn from(e: crate::domain::RuleError) -> Self {
        use crate::domain::RuleError;
        match e {
            RuleError::NotFound => AppError::NotFound,
            RuleError::Forbidden(m) => AppError::Forbidden(m),
            RuleError::Conflict(m) => AppError::Conflict(m),
            e @ (RuleError::LastAdmin | RuleError::ConfirmOwnRole { .. }) => {
                AppError::Conflict(e.to_string())
            }
            RuleError::Invalid(errors) => AppError::BadRequest(
                errors
                    .first()
                    .unwrap_or("Please correct the form.")
                    .to_string(),
            ),
            RuleError::Db(e) => e.into(),
        }
    }
}

/// Ending one of one's own sessions: an id that is not a live session of the account, another
/// account's above all, looks like any unknown page.
impl From<crate::domain::sessions::SessionError> for AppError {
    fn from(e: crate::domain::sessions::SessionError) -> Self {
        use crate::domain::sessions::SessionError;
        match e {
            SessionError::NotFound => AppError::NotFound,
            SessionError::Db(e) => e.into(),
        }
    }
}

// ----- Invitations and setup links -----

impl From<crate::domain::invitations::InvitationError> for AppError {
    fn from(e: crate::domain::invitations::InvitationError) -> Self {
        use crate::domain::invitations::InvitationError;
        match e {
            InvitationError::NotFound => AppError::NotFound,
            InvitationError::NotAllowed => AppError::forbidden(),
            InvitationError::TooSoon | InvitationError::HourlyLimit(_) => {
                AppError::TooManyRequests(e.to_string())
            }
            InvitationError::Forbidden(why) | InvitationError::BeyondGrants(why) => {
                AppError::Forbidden(why.into())
            }
            InvitationError::Closed(why) => AppError::Conflict(why.into()),
            InvitationError::Invalid(_) => AppError::BadRequest(e.to_string()),
            InvitationError::Db(e) => AppError::Internal(e.into()),
            InvitationError::Render(e) => AppError::Internal(e.into()),
        }
    }
}

/// A dead link is a page that is not there; the accept page answers those itself, with
/// its own page, before anything reaches this.
impl From<crate::domain::invitations::AcceptError> for AppError {
    fn from(e: crate::domain::invitations::AcceptError) -> Self {
        use crate::domain::invitations::AcceptError;
        match e {
            AcceptError::Db(e) => AppError::Internal(e.into()),
            AcceptError::WrongAccount => AppError::forbidden(),
            AcceptError::InvalidLink
            | AcceptError::NoLongerGrantable
            | AcceptError::AccountExists => AppError::NotFound,
        }
    }
}

/// Every dead setup link looks the same: not found.
impl From<crate::domain::setup::SetupError> for AppError {
    fn from(e: crate::domain::setup::SetupError) -> Self {
        use crate::domain::setup::SetupError;
        match e {
            SetupError::Db(e) => e.into(),
            SetupError::InvalidLink => AppError::NotFound,
            SetupError::EmailTaken => AppError::Conflict(e.to_string()),
            SetupError::Invalid(_) => AppError::BadRequest(e.to_string()),
        }
    }
}

/// Password resets: a dead link is a 404 (the pages that can say so more kindly match
/// `InvalidLink` before it gets here).
impl From<crate::domain::password_reset::ResetError> for AppError {
    fn from(e: crate::domain::password_reset::ResetError) -> Self {
        use crate::domain::password_reset::ResetError;
        match e {
            ResetError::Db(e) => e.into(),
            ResetError::Render(e) => AppError::Internal(anyhow::anyhow!("email template: {e}")),
            ResetError::InvalidLink | ResetError::Invalid(_) => AppError::NotFound,
        }
    }
}

/// The platform audit export's filters were typed, not offered by a page: 400 with the
/// first field's message.
impl From<crate::domain::audit_query::BadFilters> for AppError {
    fn from(e: crate::domain::audit_query::BadFilters) -> Self {
        AppError::BadRequest(e.message().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_connection_losses_are_503() {
        let e: AppError = anyhow::anyhow!("timed out waiting for connection: refused").into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let closed = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ClosedConnection,
            Box::new("terminating connection due to administrator command".to_string()),
        );
        assert_eq!(AppError::from(closed).outage(), Some(Outage::Unreachable));
    }

    #[test]
    fn full_or_read_only_databases_are_503_with_their_cause() {
        for message in [
            "database or disk is full",
            "attempt to write a readonly database",
        ] {
            let e = diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(message.to_string()),
            );
            let e = AppError::from(e);
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.outage(), Some(Outage::CannotWrite));
            assert!(e.to_string().contains(message), "{e}");
        }
        // Wrapped on the way up, the cause is still found.
        let wrapped = anyhow::Error::from(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("database or disk is full".to_string()),
        ))
        .context("inviting");
        assert_eq!(
            AppError::Internal(wrapped).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn other_errors_stay_500() {
        let e: AppError = anyhow::anyhow!("template exploded").into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            AppError::from(diesel::result::Error::NotFound).outage(),
            None
        );
    }
}
