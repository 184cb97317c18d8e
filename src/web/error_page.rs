//! The page a person sees when a request fails: `AppError` as an HTTP response (status,
//! HTML, headers, log line), and the 503 for a session the store could not load.

use actix_session::SessionExt;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use super::form::to_query;
use super::layout::Layout;
use super::render_status;
use crate::auth::session_store::SESSION_UNAVAILABLE;
use crate::error::AppError;

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    heading: &'static str,
    message: String,
    /// The way out the error page offers: (href, label).
    action: (&'static str, &'static str),
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::LoginRequired { next } = self {
            let location = format!("/login?{}", to_query(&[("next", next.as_str())]));
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
            action: match self {
                AppError::TwoFactorRequired { .. } => {
                    ("/account/2fa", "Set up two-factor authentication")
                }
                _ => ("/orgs", "Go to your organizations"),
            },
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
