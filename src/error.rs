use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
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
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
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
            AppError::Internal(_) => "Something went wrong",
        }
    }

    fn message(&self) -> String {
        match self {
            AppError::NotFound => {
                "There is nothing here, or you do not have access to it.".into()
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
        AppError::Internal(e.into())
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> Self {
        AppError::Internal(e.into())
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
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
        if let AppError::Internal(e) = self {
            tracing::error!(error = %e, "request failed");
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
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;
