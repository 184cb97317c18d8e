//! Every POST must carry the session's CSRF token (form field `csrf_token` or header
//! `X-CSRF-Token`) and, when the browser says where it comes from, come from this site.
//!
//! A signed-in visitor's token is kept in their stored session and replaced at sign-in. A
//! visitor who has not signed in has no stored session: their token travels in their own
//! encrypted session cookie (see `session_store`), so it is the same check, a token from
//! another visitor's cookie still fails it, and a request without that cookie has no
//! token to match at all.

use actix_session::SessionExt;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, ResponseError};

use super::keys;
use crate::domain::tokens::constant_time_eq;
use crate::error::AppError;

pub const FIELD: &str = "csrf_token";
const HEADER: &str = "x-csrf-token";
/// Forms here are small; the largest is the invitation form with up to 500 addresses.
const MAX_FORM_BYTES: usize = 256 * 1024;

pub async fn csrf_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // The API takes no cookies (a bearer token is never sent by a browser on its own),
    // so there is no session whose authority a forged request could borrow.
    if req.method() != Method::POST || req.path().starts_with(super::API_PREFIX) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let refuse = |req: ServiceRequest, why: &str| {
        let response = AppError::Forbidden(why.to_string()).error_response();
        Ok(req.into_response(response))
    };
    if !same_origin(&req) {
        return refuse(
            req,
            "This form was sent from another site, so it was refused.",
        );
    }
    let expected = req.get_session().get::<String>(keys::CSRF).ok().flatten();
    let from_header = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.extract::<Bytes>().await {
        Ok(body) if body.len() <= MAX_FORM_BYTES => body,
        _ => return refuse(req, "This form could not be read."),
    };
    let sent = from_header.or_else(|| form_field(&body, FIELD));
    let valid = match (expected, sent) {
        (Some(expected), Some(sent)) => constant_time_eq(&expected, &sent),
        _ => false,
    };
    if !valid {
        return refuse(
            req,
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        );
    }
    req.set_payload(Payload::from(body));
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The session's CSRF token, created on first use. Before sign-in it lives only in the
/// visitor's encrypted cookie (no session row is stored for them); sign-in replaces it.
pub fn csrf_token(session: &actix_session::Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(keys::CSRF) {
        return token;
    }
    let token = crate::domain::tokens::generate();
    let _ = session.insert(keys::CSRF, &token);
    token
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    let fields: Vec<(String, String)> = serde_html_form::from_bytes(body).ok()?;
    fields.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `Origin` (or, without it, `Referer`) must name this host; requests with neither are
/// allowed, as old browsers and non-browser clients send none, and the token still holds.
fn same_origin(req: &ServiceRequest) -> bool {
    let claimed = req
        .headers()
        .get(header::ORIGIN)
        .or_else(|| req.headers().get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(claimed) = claimed else {
        return true;
    };
    if claimed == "null" {
        return false;
    }
    let Ok(url) = url::Url::parse(claimed) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let claimed_authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let info = req.connection_info();
    let own = info.host();
    let public = req
        .app_data::<actix_web::web::Data<crate::web::AppState>>()
        .and_then(|s| url::Url::parse(&s.settings.public_url()).ok())
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        });
    claimed_authority.eq_ignore_ascii_case(own)
        || public.is_some_and(|p| claimed_authority.eq_ignore_ascii_case(&p))
}

#[cfg(test)]
mod tests {
    use super::form_field;

    #[test]
    fn the_token_is_read_from_anywhere_in_the_form() {
        let body = b"emails=a%40x.io&group_ids=g1&group_ids=g2&csrf_token=t%2B1";
        assert_eq!(form_field(body, "csrf_token").as_deref(), Some("t+1"));
        assert_eq!(form_field(b"emails=a", "csrf_token"), None);
    }
}
