//! What every page shares: the frame's context, flash messages, rendering, middleware.

pub mod assets;
pub mod audit_denials;
pub mod confirm;
pub mod csrf;
pub mod device;
pub mod error_page;
pub mod escape;
pub mod extract;
pub mod form;
pub mod input_guard;
pub mod layout;
pub mod metrics;
pub mod middleware;
pub mod once;
pub mod outcome;
pub mod paging;

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;

use crate::auth::keys;
use crate::config::Settings;
use crate::db::{DbConnection, DbPool};
use crate::error::AppError;

/// The SCIM API's paths: bearer tokens and JSON, so the session, CSRF and form-input
/// layers leave them to the API's own checks.
pub const API_PREFIX: &str = "/scim/";
/// The SCIM server's scope: it checks its addresses itself, answering SCIM errors.
pub const API_SCOPE: &str = "/scim/v2";

/// Whether `path` is the SCIM server's (`API_SCOPE` or below it).
pub fn in_api_scope(path: &str) -> bool {
    path.strip_prefix(API_SCOPE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Shared by every handler.
pub struct AppState {
    pub pool: DbPool,
    pub reads: crate::db::inline_reads::InlineReads,
    pub settings: Settings,
    pub hasher: crate::auth::password::Hasher,
    pub throttle: crate::auth::throttle::Limits,
    pub mail: crate::mail::MailHandle,
    /// "Now" for date rules (the two-factor deadline); a test's clock can be moved.
    pub clock: crate::config::Clock,
}

impl AppState {
    /// Runs blocking database work on the thread pool with a pooled connection.
    pub async fn db<T, F>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        crate::db::off_thread::run(move || crate::db::run_pooled(&pool, f)).await?
    }

    /// Runs database work that only reads: on SQLite on this thread, with its own
    /// read-only connection (no hop, no pool: `db::inline_reads`), elsewhere as [`db`]
    /// but run again on another connection if the server had dropped the first
    /// (`db::read_pooled`). A write inside fails on SQLite and must not be put in. Only for reads bounded by an index (a primary key, a page
    /// of 50 in index order): while it runs, this worker's other requests wait, so a
    /// search that may scan goes through [`db`].
    ///
    /// [`db`]: AppState::db
    pub async fn read<T, F>(&self, f: F) -> Result<T, AppError>
    where
        F: Fn(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        if !self.reads.is_inline() {
            let pool = self.pool.clone();
            return crate::db::off_thread::run(move || crate::db::read_pooled(&pool, f)).await?;
        }
        self.reads.run(f).map_err(|e| {
            AppError::Unavailable(anyhow::anyhow!("cannot open a read connection: {e}"))
        })?
    }

    /// [`read`] for a read bounded by an index, [`db`] for one that `may_scan` (a
    /// search): that one holds neither this worker's other requests nor more connections
    /// than the pool has.
    ///
    /// [`read`]: AppState::read
    /// [`db`]: AppState::db
    pub async fn read_unless_scan<T, F>(&self, may_scan: bool, f: F) -> Result<T, AppError>
    where
        F: Fn(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        if may_scan {
            self.db(f).await
        } else {
            self.read(f).await
        }
    }
}

pub fn render_status<T: askama::Template>(status: StatusCode, page: &T) -> HttpResponse {
    render_sized(status, page, T::SIZE_HINT)
}

/// Renders into a buffer of `bytes` from the start. A page much longer than askama's
/// static hint (which counts a loop's body once) otherwise grows its buffer by doubling,
/// copying what it has written at each step: a Users tab is 160 KB.
pub fn render_sized<T: askama::Template>(
    status: StatusCode,
    page: &T,
    bytes: usize,
) -> HttpResponse {
    let mut html = String::with_capacity(bytes.max(T::SIZE_HINT));
    match page.render_into(&mut html).map(|()| html) {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("The page could not be rendered.")
        }
    }
}

pub fn render<T: askama::Template>(page: &T) -> HttpResponse {
    render_status(StatusCode::OK, page)
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Flash {
    pub kind: String,
    pub message: String,
}

/// Queues a message for the next page this session sees. For a visitor who has not
/// signed in, it travels in their cookie and stores nothing.
pub fn flash(session: &Session, kind: &str, message: impl Into<String>) {
    let mut all: Vec<Flash> = session.get(keys::FLASH).ok().flatten().unwrap_or_default();
    all.push(Flash {
        kind: kind.to_string(),
        message: message.into(),
    });
    let _ = session.insert(keys::FLASH, all);
}

pub fn take_flashes(session: &Session) -> Vec<Flash> {
    // Removing marks the session changed, and a changed session is written back to its
    // row: a page view without a message must stay a read.
    if !session.contains_key(keys::FLASH) {
        return Vec::new();
    }
    session
        .remove_as::<Vec<Flash>>(keys::FLASH)
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// Secret links must not leak through the Referer header or a shared cache. `strict-origin`
/// sends only the origin as Referer, so the token never leaves; unlike `no-referrer`, under
/// which Chromium posts the page's forms with `Origin: null` and the CSRF guard refuses them.
pub fn private(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("strict-origin"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
