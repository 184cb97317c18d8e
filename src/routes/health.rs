use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::web::AppState;

/// How long `/readyz` waits for a connection before it says the database does not answer;
/// short, so a load balancer's probe gets its answer well inside its own timeout.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs outside the session layer: `/healthz`, `/readyz` and `/metrics` lose their cookies
/// before it sees them, so a probe from a signed-in browser never waits for the database
/// to look a session up. So does the SCIM API: it authenticates by bearer token only, so
/// a browser's session cookie can never act there (nor a session cookie be set).
pub async fn without_session(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics")
        || path.starts_with(crate::web::API_PREFIX)
    {
        req.headers_mut().remove(header::COOKIE);
    }
    next.call(req).await
}

/// The process is up and serving. It never touches the database, nor the session store
/// (see [`without_session`]), so it answers at once during a database outage.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok\n")
}

/// The database answers, and no newer version has migrated it; a load balancer stops
/// sending traffic here when either fails.
/// A 503 says what kind of failure on its second line, e.g. `timed out waiting for
/// connection`; the whole reason goes to the log.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let ready = crate::db::off_thread::run(move || -> anyhow::Result<Option<String>> {
        let mut conn = pool.get_timeout(READY_TIMEOUT)?;
        Ok(crate::db::unknown_migration(&mut conn)?)
    })
    .await;
    let reason = match ready {
        Ok(Ok(None)) => {
            return HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body("ready\n");
        }
        Ok(Ok(Some(newer))) => {
            tracing::error!(migration = %newer, "not ready: a newer version migrated the database");
            return HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("database upgraded by a newer version\nrun that version or a later one\n");
        }
        Ok(Err(e)) => format!("{e:#}"),
        Err(e) => format!("the readiness check did not finish: {e}"),
    };
    tracing::warn!(reason = %reason, "not ready: database unavailable");
    // Only the kind of failure, from a fixed list: its detail (a connection error names
    // the database's host, port and user) is for the log, and anyone may ask /readyz.
    let kind = if reason.contains("timed out waiting for connection") {
        "timed out waiting for connection"
    } else if reason.contains("did not finish") {
        "the readiness check did not finish"
    } else {
        "the database refused the check"
    };
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain; charset=utf-8")
        .body(format!("database unavailable\n{kind}\n"))
}
