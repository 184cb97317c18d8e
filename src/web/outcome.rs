//! How a form post ends once the rules have run: done, the same form again with the
//! fields to correct, or the refusal's error page.

use std::future::Future;

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::{flash, render_status, see_other};
use crate::domain::{FieldErrors, RuleError};
use crate::error::AppResult;

/// `succeeded` answers a success; input the rules found invalid renders the page `form_again`
/// builds with those errors (422); every other refusal becomes its error page.
pub async fn done_or_form_again<T, P, F>(
    result: Result<T, RuleError>,
    succeeded: impl FnOnce(T) -> HttpResponse,
    form_again: impl FnOnce(FieldErrors) -> F,
) -> AppResult<HttpResponse>
where
    P: askama::Template,
    F: Future<Output = AppResult<P>>,
{
    match result {
        Ok(value) => Ok(succeeded(value)),
        Err(RuleError::Invalid(errors)) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &form_again(errors).await?,
        )),
        Err(e) => Err(e.into()),
    }
}

/// A one-click form on a list (the Users tab's inline role select): a refusal the person
/// can act on (a role that is not offered, the last admin, a conflict) goes back to
/// `back` with its reason, so the filtered page is not lost; anything else, such as a
/// forbidden rank, stays its error page.
pub fn done_or_back<T>(
    session: &Session,
    result: Result<T, RuleError>,
    succeeded: impl FnOnce(T) -> HttpResponse,
    back: &str,
) -> AppResult<HttpResponse> {
    let why = match result {
        Ok(value) => return Ok(succeeded(value)),
        Err(RuleError::Invalid(errors)) => errors.first().unwrap_or_default().to_string(),
        Err(e @ (RuleError::LastAdmin | RuleError::Conflict(_))) => e.to_string(),
        Err(e) => return Err(e.into()),
    };
    flash(session, "error", why);
    Ok(see_other(back))
}

/// A change that worked: the next page says so, and is `location`.
pub fn done(session: &Session, message: impl Into<String>, location: &str) -> HttpResponse {
    flash(session, "success", message);
    see_other(location)
}

/// A change that had nothing to do (it was so already): said plainly, not as a success.
pub fn unchanged(session: &Session, message: impl Into<String>, location: &str) -> HttpResponse {
    flash(session, "info", message);
    see_other(location)
}
