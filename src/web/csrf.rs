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
    let public = req
        .app_data::<actix_web::web::Data<crate::web::AppState>>()
        .and_then(|s| url::Url::parse(&s.settings.public_url()).ok());
    names_this_site(claimed, req.connection_info().host(), public.as_ref())
}

/// Whether a claimed origin is this site: the host (and port) the request was sent to,
/// or the public address's. Where the public address is `https`, a plain `http` origin
/// is refused even with the same host: a page on it is whatever a network attacker
/// serves there.
fn names_this_site(claimed: &str, own_authority: &str, public: Option<&url::Url>) -> bool {
    if claimed == "null" {
        return false;
    }
    let Ok(url) = url::Url::parse(claimed) else {
        return false;
    };
    if public.is_some_and(|p| p.scheme() == "https") && url.scheme() != "https" {
        return false;
    }
    let Some(claimed_authority) = authority(&url) else {
        return false;
    };
    claimed_authority.eq_ignore_ascii_case(own_authority)
        || public
            .and_then(authority)
            .is_some_and(|p| claimed_authority.eq_ignore_ascii_case(&p))
}

/// `host` or `host:port`, the port only where it is not the scheme's own.
fn authority(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::{form_field, names_this_site};

    #[test]
    fn an_origin_is_this_site_only_by_its_host_and_the_public_scheme() {
        let public = url::Url::parse("https://portal.example").unwrap();
        let https = Some(&public);
        assert!(names_this_site(
            "https://portal.example",
            "10.0.0.5:8080",
            https
        ));
        assert!(names_this_site("https://PORTAL.example/users", "x", https));
        assert!(names_this_site(
            "http://10.0.0.5:8080",
            "10.0.0.5:8080",
            None
        ));
        // The same host over plain http, where the site is https: another origin.
        assert!(!names_this_site(
            "http://portal.example",
            "portal.example",
            https
        ));
        for foreign in [
            "null",
            "https://evil.example",
            "https://portal.example.evil.example",
            "https://portal.example:8443",
            "not a url",
        ] {
            assert!(
                !names_this_site(foreign, "portal.example", https),
                "{foreign}"
            );
        }
    }

    #[test]
    fn the_token_is_read_from_anywhere_in_the_form() {
        let body = b"emails=a%40x.io&group_ids=g1&group_ids=g2&csrf_token=t%2B1";
        assert_eq!(form_field(body, "csrf_token").as_deref(), Some("t+1"));
        assert_eq!(form_field(b"emails=a", "csrf_token"), None);
    }
}
