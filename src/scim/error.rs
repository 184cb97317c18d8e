//! The SCIM server's one error: every refusal answers a SCIM Error body (RFC 7644
//! §3.12) as `application/scim+json`, never the portal's HTML error page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::provisioning::ScimError;
use crate::error::AppError;

pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const CONTENT_TYPE: &str = "application/scim+json";

#[derive(Debug, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "Send a valid API token as \"Authorization: Bearer <token>\"; the token given is missing, unknown, revoked or expired.",
        )
    }

    pub fn read_only() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            None,
            "This token has the read scope only; changes need a token with the scim scope.",
        )
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, None, "Resource not found.")
    }

    pub fn syntax(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        let mut response = HttpResponse::build(self.status);
        response.content_type(CONTENT_TYPE);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scim\""));
        }
        response.body(body.to_string())
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        let status = match &e {
            ScimError::NotFound => StatusCode::NOT_FOUND,
            ScimError::Uniqueness(_) | ScimError::Conflict(_) => StatusCode::CONFLICT,
            ScimError::Forbidden(_) => StatusCode::FORBIDDEN,
            ScimError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ScimError::Db(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                // Two requests creating the same thing at once: the second lost the race.
                return ApiError::new(
                    StatusCode::CONFLICT,
                    Some("uniqueness"),
                    "It already exists (created by a request running at the same time).",
                );
            }
            ScimError::Db(_) => {
                let ScimError::Db(db) = e else { unreachable!() };
                return AppError::from(db).into();
            }
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.scim_type(), e.to_string())
    }
}

/// The portal's errors on the way (the database down, a blocking task lost): the same
/// status, in a SCIM body, with nothing internal in it.
impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = e.status_code();
        if status.is_server_error() {
            tracing::error!(error = %e, "SCIM request failed");
        }
        let detail = if status.is_server_error() {
            "The server could not complete the request; try again later.".to_string()
        } else {
            e.to_string()
        };
        ApiError::new(status, None, detail)
    }
}
