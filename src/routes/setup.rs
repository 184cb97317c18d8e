use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::domain::FieldErrors;
use crate::domain::setup::{self, SetupError, SetupForm, SetupLink};
use crate::error::{AppError, AppResult};
use crate::web::extract::sign_in;
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render_status, see_other};

#[derive(Template)]
#[template(path = "auth/setup.html")]
struct SetupPage {
    layout: Layout,
    first_admin: bool,
    org_name: String,
    account_email: String,
    form: SetupForm,
    errors: FieldErrors,
}

/// Secret links must not leak through the Referer header or a shared cache. `strict-origin`
/// sends only the origin as Referer, so the token never leaves; unlike `no-referrer`, under
/// which Chromium posts the page's forms with `Origin: null` and the CSRF guard refuses them.
pub(crate) fn private(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("strict-origin"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn page(session: &Session, link: &SetupLink, form: SetupForm, errors: FieldErrors) -> SetupPage {
    let (first_admin, org_name, account_email) = match link {
        SetupLink::FirstAdmin { org } => (true, org.name.clone(), String::new()),
        SetupLink::Account { user } => (false, String::new(), user.email.clone()),
    };
    SetupPage {
        layout: Layout::public(session, "Set up your account"),
        first_admin,
        org_name,
        account_email,
        form,
        errors,
    }
}

fn invalid_link() -> AppError {
    AppError::NotFound
}

pub async fn setup_form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let link = state
        .db(move |conn| match setup::check_link(conn, &token) {
            Ok(link) => Ok(Some(link)),
            Err(SetupError::Db(e)) => Err(e.into()),
            Err(_) => Ok(None),
        })
        .await?
        .ok_or_else(invalid_link)?;
    let mut form = SetupForm::default();
    if let SetupLink::Account { user } = &link {
        form.first_name = user.first_name.clone();
        form.last_name = user.last_name.clone();
    }
    let view = page(&session, &link, form, FieldErrors::default());
    Ok(private(render_status(StatusCode::OK, &view)))
}

pub async fn complete(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    origin: Origin,
    token: web::Path<String>,
    form: web::Form<SetupForm>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let form = form.into_inner();
    let link = {
        let token = token.clone();
        state
            .db(move |conn| match setup::check_link(conn, &token) {
                Ok(link) => Ok(Some(link)),
                Err(SetupError::Db(e)) => Err(e.into()),
                Err(_) => Ok(None),
            })
            .await?
            .ok_or_else(invalid_link)?
    };
    let first_admin = matches!(link, SetupLink::FirstAdmin { .. });
    let valid = match setup::validate(&form, first_admin) {
        Ok(valid) => valid,
        Err(errors) => {
            let view = page(&session, &link, without_passwords(form), errors);
            return Ok(private(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &view,
            )));
        }
    };
    let hash = state.hasher.hash(form.password.clone()).await?;
    let result = {
        let valid = valid.clone();
        state
            .db(
                move |conn| match setup::complete(conn, &token, &valid, &hash, &origin) {
                    Ok(done) => Ok(Ok(done)),
                    Err(SetupError::Db(e)) => Err(e.into()),
                    Err(other) => Ok(Err(other)),
                },
            )
            .await?
    };
    match result {
        Ok((user, org)) => {
            sign_in(&session, &req, &user, &state.settings)?;
            flash(
                &session,
                "success",
                format!("Welcome, {}. Your account is ready.", user.first_name),
            );
            Ok(see_other(&format!("/orgs/{}/users", org.slug)))
        }
        Err(SetupError::EmailTaken) => {
            let mut errors = FieldErrors::default();
            errors.add("email", SetupError::EmailTaken);
            let view = page(&session, &link, without_passwords(form), errors);
            Ok(private(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &view,
            )))
        }
        Err(SetupError::Invalid(errors)) => {
            let view = page(&session, &link, without_passwords(form), errors);
            Ok(private(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &view,
            )))
        }
        Err(_) => Err(invalid_link()),
    }
}

/// Re-rendered forms keep what was typed, except passwords.
fn without_passwords(form: SetupForm) -> SetupForm {
    SetupForm {
        password: String::new(),
        password_confirm: String::new(),
        ..form
    }
}
