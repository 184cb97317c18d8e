use crate::web::private;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::domain::FieldErrors;
use crate::domain::setup::{self, SetupForm, SetupLink};
use crate::error::AppResult;
use crate::web::extract::sign_in;
use crate::web::form::Form;
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

/// The setup form for `link`, answered with `status`; passwords never come back.
fn page(
    session: &Session,
    link: &SetupLink,
    status: StatusCode,
    form: SetupForm,
    errors: FieldErrors,
) -> HttpResponse {
    let mut page = SetupPage {
        layout: Layout::public(session, "Set up your account"),
        first_admin: false,
        org_name: String::new(),
        account_email: String::new(),
        form: SetupForm {
            password: String::new(),
            password_confirm: String::new(),
            ..form
        },
        errors,
    };
    match link {
        SetupLink::FirstAdmin { org } => {
            (page.first_admin, page.org_name) = (true, org.name.clone())
        }
        SetupLink::Account { user } => page.account_email = user.email.clone(),
    }
    private(render_status(status, &page))
}

/// The link behind `token`, if it is live.
async fn live_link(state: &AppState, token: &str) -> AppResult<Option<SetupLink>> {
    let token = token.to_string();
    state
        .db(move |conn| match setup::check_link(conn, &token) {
            Err(setup::SetupError::InvalidLink) => Ok(None),
            other => Ok(Some(other?)),
        })
        .await
}

#[derive(Template)]
#[template(path = "auth/setup_dead.html")]
struct DeadLinkPage {
    layout: Layout,
}

/// A used, expired or unknown setup link (404): what to do instead, not "nothing here".
/// Opened again from the email after setting the password, it points to signing in.
fn dead_link(session: &Session) -> HttpResponse {
    let page = DeadLinkPage {
        layout: Layout::public(session, "Setup link not valid"),
    };
    private(render_status(StatusCode::NOT_FOUND, &page))
}

pub async fn setup_form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let Some(link) = live_link(&state, &token).await? else {
        return Ok(dead_link(&session));
    };
    let mut form = SetupForm::default();
    if let SetupLink::Account { user } = &link {
        form.first_name = user.first_name.clone();
        form.last_name = user.last_name.clone();
    }
    Ok(page(
        &session,
        &link,
        StatusCode::OK,
        form,
        FieldErrors::default(),
    ))
}

pub async fn complete(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    origin: Origin,
    token: web::Path<String>,
    Form(form): Form<SetupForm>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let Some(link) = live_link(&state, &token).await? else {
        return Ok(dead_link(&session));
    };
    let refused = |form, errors| {
        page(
            &session,
            &link,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            errors,
        )
    };
    let valid = match setup::validate(&form, matches!(link, SetupLink::FirstAdmin { .. })) {
        Ok(valid) => valid,
        Err(errors) => return Ok(refused(form, errors)),
    };
    let hash = state.hasher.hash(form.password.clone()).await?;
    let done = state
        .db(move |conn| Ok(setup::complete(conn, &token, &valid, &hash, &origin)))
        .await?;
    let (user, org) = match done {
        Ok(done) => done,
        Err(e) => return Ok(refused(form, e.into_field_errors()?)),
    };
    sign_in(&session, &req, &user, &state.settings)?;
    let welcome = format!("Welcome, {}. Your account is ready.", user.first_name);
    flash(&session, "success", welcome);
    Ok(see_other(&format!("/orgs/{}/users", org.slug)))
}
