use std::time::Instant;

use actix_session::storage::{LoadError, SaveError, UpdateError};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
use tracing::Instrument;

use crate::error::AppError;

/// Correlates a request's log lines and the audit events it causes.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Gives every request an id and logs one line when it ends. The line names the route
/// pattern (`/invite/{token}`), never the raw path, so tokens stay out of the logs.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // Clients may send any token as a method; logs and metrics see a bounded label.
    let method = super::metrics::method_label(req.method().as_str());
    let span = tracing::info_span!("request", request_id = %request_id, method = %method);
    let started = Instant::now();
    // Kept for an error that escapes the layers below (the session store's, when it cannot
    // save a session): the request is gone by then, and the error is still logged and
    // counted, and answered with a page and the request id (`escaped`).
    let metrics = req
        .app_data::<actix_web::web::Data<super::metrics::Metrics>>()
        .cloned();
    let pattern = req.match_pattern();
    let record = |route: &str, status: u16| {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        span.in_scope(|| {
            tracing::info!(route = %route, status, elapsed_ms = format!("{elapsed_ms:.1}"), "request");
        });
        if let Some(metrics) = &metrics {
            metrics.observe(method, route, status, elapsed_ms / 1000.0);
        }
    };
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res,
        Err(e) => {
            let e = span.in_scope(|| escaped(e, &request_id));
            let route = super::metrics::route_label(pattern);
            record(&route, e.as_response_error().status_code().as_u16());
            return Err(e);
        }
    };
    // A route pattern from the table, never the raw path: bounded, and free of tokens.
    let route = super::metrics::route_label(res.request().match_pattern());
    record(&route, res.status().as_u16());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// Answers a HEAD request as its GET would be answered: the same handler, status and
/// headers. The body never leaves: actix-http's codec saw HEAD while reading the request,
/// before this runs, and drops it (keeping Content-Length). Innermost, so the log, the
/// metrics and the CSRF guard still see the method the client sent.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// Headers every response carries; handlers that need another value (static assets'
/// cache policy, the invitation page's referrer policy) set their own, which wins.
pub fn security_headers(secure: bool) -> DefaultHeaders {
    let headers = PAGE_HEADERS
        .iter()
        .fold(DefaultHeaders::new(), |headers, &(name, value)| {
            headers.add((HeaderName::from_static(name), value))
        });
    if secure {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// Every page's headers, save HSTS (only behind `https://`).
const PAGE_HEADERS: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
];

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
        // Answered by actix above every layer, the default headers' among them: its page
        // is still never framed, cached or sniffed. (HSTS, which depends on the settings,
        // came with every page before.)
        for (name, value) in PAGE_HEADERS {
            response.headers_mut().insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A session the store could not save fails after its handler, outside the layer
    /// that gives every page its headers: its answer must carry them all the same.
    #[test]
    fn an_error_that_escaped_every_layer_still_carries_the_page_headers() {
        let cause = actix_web::error::ErrorInternalServerError("the store failed");
        let response = escaped(cause, "req-1").error_response();
        for (name, value) in PAGE_HEADERS {
            assert_eq!(
                response.headers().get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{name}"
            );
        }
        assert_eq!(response.headers().get("x-request-id").unwrap(), "req-1");
    }
}
