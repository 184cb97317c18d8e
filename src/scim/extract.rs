//! What every SCIM handler starts from: the caller's bearer token (the organization it
//! belongs to is the tenant) and a JSON body of bounded size.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use crate::audit::Origin;
use crate::domain::api_tokens::{self, TokenError};
use crate::domain::provisioning::Call;
use crate::web::AppState;
use crate::web::extract::client_ip;
use crate::web::middleware::RequestId;

/// A body larger than this is refused (413) unread: the largest real request, a group's
/// full member list, stays far below it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A request with a live token: who calls, from where, and the base URL of resources.
pub struct Caller(pub Call);

impl Caller {
    /// Refuses a token without the `scim` scope: `read` tokens only read.
    pub fn writer(self) -> ApiResult<Call> {
        if self.0.token.may_write() {
            Ok(self.0)
        } else {
            Err(ApiError::read_only())
        }
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// `https://host/scim/v2`: under the configured public URL, else the address asked for.
fn base_url(req: &HttpRequest, state: Option<&AppState>) -> String {
    let root = match state.and_then(|s| s.settings.public_url.clone()) {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    format!("{root}/scim/v2")
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let presented = bearer(req);
        let base = base_url(req, state.as_ref().map(|s| s.get_ref()));
        let origin = Origin {
            ip: state.as_ref().map(|s| client_ip(req, &s.settings)),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        };
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "not configured")
            })?;
            let presented = presented.ok_or_else(ApiError::unauthorized)?;
            let now = state.clock.now();
            let token = state
                .db(move |conn| Ok(api_tokens::authenticate(conn, &presented, now)))
                .await?
                .map_err(|e| match e {
                    TokenError::Invalid => ApiError::unauthorized(),
                    TokenError::Db(e) => crate::error::AppError::from(e).into(),
                })?;
            Ok(Caller(Call {
                token,
                origin,
                now,
                base,
                scan_limit: state.settings.scim_scan_limit,
            }))
        })
    }
}

/// The request body as JSON: at most `MAX_BODY_BYTES` (413), sent as JSON (415
/// otherwise), and well-formed (400 `invalidSyntax`).
pub struct JsonBody(pub Value);

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| {
                let ct = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                ct == "application/scim+json" || ct == "application/json"
            });
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    None,
                    "Send the body as application/scim+json.",
                ));
            }
            let too_large = || {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    format!(
                        "The body is larger than the {MAX_BODY_BYTES} bytes this server accepts."
                    ),
                )
            };
            if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
                return Err(too_large());
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| ApiError::syntax("The body could not be read."))?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            serde_json::from_slice(&body)
                .map(JsonBody)
                .map_err(|e| ApiError::syntax(format!("The body is not valid JSON: {e}")))
        })
    }
}
