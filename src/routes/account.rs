use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::auth::current_user::{CurrentUser, sign_in};
use crate::auth::device::{self, DeviceKey};
use crate::auth::throttle::{self, Attempt, Decision};
use crate::db::{self, sessions};
use crate::domain::FieldErrors;
use crate::domain::account::{self, PasswordForm};
use crate::domain::timefmt;
use crate::error::{AppError, AppResult};
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render_status, see_other};

struct SessionView {
    signed_in: String,
    last_seen: String,
    last_seen_exact: String,
    ip: String,
    browser: String,
}

#[derive(Template)]
#[template(path = "account/page.html")]
struct AccountPage {
    layout: Layout,
    name: String,
    email: String,
    sessions: Vec<SessionView>,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    errors: FieldErrors,
) -> AppResult<AccountPage> {
    let user_id = current.user.id.clone();
    let rows = state
        .db(move |conn| Ok(sessions::list_for_user(conn, &user_id, db::now())?))
        .await?;
    let now = db::now();
    Ok(AccountPage {
        layout: Layout::signed_in(session, current, "Your account"),
        name: current.user.display_name(),
        email: current.user.email.clone(),
        sessions: rows
            .into_iter()
            .map(|s| SessionView {
                signed_in: timefmt::exact(s.created_at),
                last_seen: timefmt::relative(now, s.last_seen_at),
                last_seen_exact: timefmt::exact(s.last_seen_at),
                ip: s.ip.unwrap_or_default(),
                browser: s.user_agent.unwrap_or_default(),
            })
            .collect(),
        errors,
    })
}

pub async fn account_page(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    let view = page(&state, &session, &current, FieldErrors::default()).await?;
    Ok(render_status(StatusCode::OK, &view))
}

/// Changes the password after checking the current one (throttled like sign-in), ends
/// every session of the account, and keeps this browser signed in with a new session.
pub async fn change_password(
    state: web::Data<AppState>,
    device_key: web::Data<DeviceKey>,
    session: Session,
    req: HttpRequest,
    current: CurrentUser,
    origin: Origin,
    form: web::Form<PasswordForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    if let Err(errors) = account::validate(&form) {
        let view = page(&state, &session, &current, errors).await?;
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &view));
    }
    // Counted before the hash, atomically, exactly like a sign-in (see `throttle`).
    let limits = state.throttle;
    let ip = origin.ip.clone().unwrap_or_default();
    let email = current.user.email.clone();
    let device = device::read(&req, &device_key).filter(|d| d.user_id == current.user.id);
    let decision = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let attempt = Attempt {
                    email: &email,
                    ip: &ip,
                    device: device.as_ref().map(|d| d.nonce.as_str()),
                };
                Ok(throttle::reserve(conn, &limits, attempt)?)
            })
        })
        .await?;
    let Decision::Allowed(reservation) = decision else {
        return Err(AppError::TooManyRequests(
            "Too many wrong passwords. Wait a few minutes, then try again.".into(),
        ));
    };
    let stored = current.user.password_hash.clone();
    if !state
        .hasher
        .verify(form.current_password.clone(), stored)
        .await?
    {
        // The attempt stays counted: it was a failure.
        let mut errors = FieldErrors::default();
        errors.add("current_password", "That is not your current password.");
        let view = page(&state, &session, &current, errors).await?;
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &view));
    }
    let hash = state.hasher.hash(form.password).await?;
    let user = current.user.clone();
    state
        .db(move |conn| {
            account::change_password(conn, &user, &hash, &origin)?;
            Ok(throttle::succeeded(conn, &reservation)?)
        })
        .await?;
    sign_in(&session, &req, &current.user, &state.settings)?;
    flash(
        &session,
        "success",
        "Password changed. Every other browser signed in to your account has been signed out.",
    );
    Ok(see_other("/account"))
}
