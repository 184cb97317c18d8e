use std::collections::HashMap;

use actix_session::SessionExt;
use actix_session::storage::{LoadError, SaveError, UpdateError};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use crate::web::layout::Layout;
use crate::web::render_status;

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
    #[error("{0}")]
    TooManyRequests(String),
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

    fn title(&self) -> &'static str {
        match self {
            AppError::NotFound => "Page not found",
            AppError::Forbidden(_) => "Not allowed",
            AppError::LoginRequired { .. } => "Please sign in",
            AppError::Conflict(_) => "That cannot be done",
            AppError::TooManyRequests(_) => "Too many attempts",
            AppError::BadRequest(_) => "Something is wrong with that request",
            AppError::PayloadTooLarge(_) => "That form is too large",
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

    fn message(&self) -> String {
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

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("{e}"))
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    heading: &'static str,
    message: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ if self.outage().is_some() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unavailable(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::LoginRequired { next } = self {
            let location = format!(
                "/login?{}",
                serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
            );
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        match (self, self.outage()) {
            (AppError::Unavailable(e) | AppError::Internal(e), Some(outage)) => {
                // `{:#}` keeps the whole chain: the log names the real cause.
                tracing::error!(error = %format!("{e:#}"), ?outage, "database unavailable");
            }
            (AppError::Internal(e), None) => {
                tracing::error!(error = %format!("{e:#}"), "request failed")
            }
            _ => {}
        }
        let status = self.status_code();
        let page = ErrorPage {
            layout: Layout::bare(self.title()),
            status: status.as_u16(),
            heading: self.title(),
            message: self.message(),
        };
        let mut response = render_status(status, &page);
        if let AppError::TooManyRequests(_) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// The session-state key the session store sets, instead of failing, when it cannot load
/// a session because the database is out of reach (see [`session_unavailable`]).
pub const SESSION_UNAVAILABLE: &str = "_database_unavailable";

/// The state the session store answers with when loading a session failed: only the
/// marker, with the cause. actix-session would turn the store's error into a bare 500
/// that skips the request log; letting the request through as anonymous would send a
/// signed-in visitor to the sign-in page (and run handlers against a dead database).
pub fn session_unavailable_state(cause: &anyhow::Error) -> HashMap<String, String> {
    let cause = serde_json::to_string(&format!("{cause:#}")).unwrap_or_default();
    HashMap::from([(SESSION_UNAVAILABLE.to_string(), cause)])
}

/// Just inside actix-session's `SessionMiddleware`: a session the store could not load
/// answers the 503 page at once, without running the handler; the session is left
/// unchanged, so nothing is written back and the visitor is still signed in once the
/// database returns. The request log outside gives it its id, log line and count.
pub async fn session_unavailable(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let cause = req
        .get_session()
        .get::<String>(SESSION_UNAVAILABLE)
        .ok()
        .flatten();
    match cause {
        Some(cause) => {
            let error = AppError::Unavailable(anyhow::anyhow!("loading the session: {cause}"));
            Ok(req.into_response(error.error_response()))
        }
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

/// An error that escaped every layer below the request log, answered with its page and
/// the request id. Failures of the session store after the handler ran (saving a new
/// sign-in, ending a session) come out of actix-session as opaque 500s; they become
/// [`AppError::Unavailable`], with the store's error, chain and all, as the cause.
#[derive(Debug)]
pub struct Escaped {
    cause: actix_web::Error,
    request_id: String,
}

impl std::fmt::Display for Escaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.cause.fmt(f)
    }
}

impl ResponseError for Escaped {
    fn status_code(&self) -> StatusCode {
        self.cause.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.cause.error_response();
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response
                .headers_mut()
                .insert(header::HeaderName::from_static("x-request-id"), value);
        }
        response
    }
}

/// See [`Escaped`]; called by the request log, inside the request's span.
pub fn escaped(e: actix_web::Error, request_id: &str) -> actix_web::Error {
    let cause = if is_session_store_error(&e) {
        // actix-session keeps the store's error as the cause; its Debug form carries the
        // whole chain (e.g. r2d2's "timed out waiting for connection: ...").
        let chain = format!("{:?}", e.as_response_error()).replace('\n', " ");
        let error = AppError::Unavailable(anyhow::anyhow!("session store: {chain}"));
        tracing::error!(error = %format!("{error}"), "database unavailable");
        actix_web::Error::from(error)
    } else {
        tracing::error!(error = %e, "request failed");
        e
    };
    Escaped {
        cause,
        request_id: request_id.to_string(),
    }
    .into()
}

fn is_session_store_error(e: &actix_web::Error) -> bool {
    e.as_error::<InternalError<LoadError>>().is_some()
        || e.as_error::<InternalError<SaveError>>().is_some()
        || e.as_error::<InternalError<UpdateError>>().is_some()
        || e.as_error::<InternalError<anyhow::Error>>().is_some()
}

pub type AppResult<T> = Result<T, AppError>;

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
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
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
            assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
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
            AppError::Internal(wrapped).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn other_errors_stay_500() {
        let e: AppError = anyhow::anyhow!("template exploded").into();
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            AppError::from(diesel::result::Error::NotFound).outage(),
            None
        );
    }
}
