//! Refuses hostile bytes before any handler, extractor or the database sees them
//! (the rules are `domain::input`):
//! - a path or query string with a control character or malformed UTF-8: 400;
//! - a POST body over `MAX_FORM_BYTES`: 413, with a page that says the limit;
//! - a form field (name or value) with a control character other than tab and line
//!   breaks, or malformed UTF-8: 400.
//!
//! It runs outside the session and CSRF layers, so a refused request costs no session
//! lookup, and inside the request log, so it is logged and counted like any other.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage, ResponseError};
use futures_util::StreamExt;

use crate::domain::input::{self, MAX_FORM_BYTES, Place};
use crate::error::AppError;

/// A body over the limit is still read (and thrown away) up to this much, so the client
/// gets its 413 instead of a connection reset in the middle of sending.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// Why the request's path or query string is refused (a control character, malformed
/// UTF-8), if it is: `place` names the address in the reason.
pub fn address_refusal(req: &ServiceRequest, place: &str) -> Option<String> {
    let path = input::check_path(req.uri().path());
    let query = req.uri().query().map_or(Ok(()), |q| {
        input::check_urlencoded(q.as_bytes(), Place::Address)
    });
    path.and(query).err().map(|why| why.message(place))
}

pub async fn input_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let refuse =
        |req: ServiceRequest, error: AppError| Ok(req.into_response(error.error_response()));
    // The API checks the address the same way and answers in its own format; its JSON
    // bodies are not forms: it bounds and reads them itself (a 413 and a 400 as SCIM
    // errors).
    let api = req.path().starts_with(super::API_PREFIX);
    if !super::in_api_scope(req.path())
        && let Some(why) = address_refusal(&req, "address of this page")
    {
        return refuse(req, AppError::BadRequest(why));
    }
    if api || req.method() != Method::POST {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    let mut seen = 0usize;
    if declared.is_none_or(|n| n <= DRAIN_BYTES) {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk?;
            seen += chunk.len();
            if seen <= MAX_FORM_BYTES {
                body.extend_from_slice(&chunk);
            } else if seen > DRAIN_BYTES {
                break;
            }
        }
    } else {
        seen = declared.unwrap_or(usize::MAX);
    }
    if seen > MAX_FORM_BYTES {
        return refuse(
            req,
            AppError::PayloadTooLarge(format!(
                "This form is larger than the {} KB this site accepts, so it was not read. \
                 Send less at a time (for example fewer addresses per invitation).",
                MAX_FORM_BYTES / 1024
            )),
        );
    }
    let body: Bytes = body.freeze();
    if let Err(why) = input::check_urlencoded(&body, Place::Form) {
        return refuse(req, AppError::BadRequest(why.message("form")));
    }
    req.set_payload(Payload::from(body));
    Ok(next.call(req).await?.map_into_boxed_body())
}
