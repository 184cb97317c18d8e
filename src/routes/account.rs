use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::auth::session_store::current_session_id;
use crate::auth::throttle::{self, Attempt, Decision};
use crate::db::{self, sessions, users};
use crate::domain::FieldErrors;
use crate::domain::account::{self, PasswordForm};
use crate::domain::sessions::{self as own_sessions, Owner, SessionError};
use crate::domain::timefmt;
use crate::error::{AppError, AppResult};
use crate::web::device::{self, DeviceKey};
use crate::web::extract::{CurrentUser, sign_in};
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render_status, see_other};

struct SessionView {
    /// The stored id (a hash of the cookie's key, never the key itself).
    id: String,
    signed_in: String,
    last_seen: String,
    last_seen_exact: String,
    ip: String,
    browser: String,
    os: String,
    /// "Chrome on Linux", for the End button's accessible name.
    label: String,
    /// The session this page was requested with.
    current: bool,
}

#[derive(Template)]
#[template(path = "account/page.html")]
struct AccountPage {
    layout: Layout,
    name: String,
    email: String,
    sessions: Vec<SessionView>,
    signin_alerts: bool,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    errors: FieldErrors,
) -> AppResult<AccountPage> {
    let user_id = current.user.id.clone();
    let (rows, signin_alerts) = state
        .db(move |conn| {
            Ok((
                sessions::list_for_user(conn, &user_id, db::now())?,
                users::signin_alerts(conn, &user_id)?,
            ))
        })
        .await?;
    let now = db::now();
    let current_id = current_session_id(session);
    Ok(AccountPage {
        layout: Layout::signed_in(session, current, "Your account"),
        name: current.user.display_name(),
        email: current.user.email.clone(),
        sessions: rows
            .into_iter()
            .map(|s| {
                let client = own_sessions::describe(s.user_agent.as_deref());
                SessionView {
                    current: current_id.as_deref() == Some(s.id.as_str()),
                    id: s.id,
                    signed_in: timefmt::exact(s.created_at),
                    last_seen: timefmt::relative(now, s.last_seen_at),
                    last_seen_exact: timefmt::exact(s.last_seen_at),
                    ip: s.ip.unwrap_or_default(),
                    label: client.label(),
                    browser: client.browser,
                    os: client.os,
                }
            })
            .collect(),
        signin_alerts,
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

fn owner(current: &CurrentUser) -> Owner {
    Owner {
        user_id: current.user.id.clone(),
        email: current.user.email.clone(),
    }
}

/// Ends one of the person's own sessions. Any other id, another person's above all,
/// answers 404 and changes nothing. Ending this browser's own session signs it out.
pub async fn end_session(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let owner = owner(&current);
    let current_id = current_session_id(&session);
    let ended = state
        .db(move |conn| {
            own_sessions::end_one(conn, &owner, &id, current_id.as_deref(), &origin).map_err(|e| {
                match e {
                    SessionError::NotFound => AppError::NotFound,
                    SessionError::Db(e) => e.into(),
                }
            })
        })
        .await?;
    if ended.was_current {
        session.purge();
        return Ok(see_other("/login?signed_out=1"));
    }
    flash(
        &session,
        "success",
        format!(
            "Ended the session of {}, {}. That browser is signed out.",
            ended.client.label(),
            ended.ip
        ),
    );
    Ok(see_other("/account"))
}

/// "Sign out everywhere else": every session of the person but this one ends.
pub async fn end_other_sessions(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
) -> AppResult<HttpResponse> {
    // A signed-in request always comes with a stored session; without its id there is
    // no way to keep it, so nothing is ended.
    let current_id = current_session_id(&session).ok_or(AppError::NotFound)?;
    let owner = owner(&current);
    let ended = state
        .db(move |conn| {
            Ok(own_sessions::end_others(
                conn,
                &owner,
                &current_id,
                &origin,
            )?)
        })
        .await?;
    flash(
        &session,
        "success",
        match ended {
            1 => "Signed out of 1 other browser.".to_string(),
            n => format!("Signed out of {n} other browsers."),
        },
    );
    Ok(see_other("/account"))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct SigninAlertsForm {
    /// The checkbox: present ("on") when ticked, absent otherwise.
    #[serde(default)]
    signin_alerts: Option<String>,
}

/// Turns the "new sign-in" email on or off for this account.
pub async fn set_signin_alerts(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    form: web::Form<SigninAlertsForm>,
) -> AppResult<HttpResponse> {
    let on = form.into_inner().signin_alerts.is_some();
    let owner = owner(&current);
    state
        .db(move |conn| Ok(own_sessions::set_signin_alerts(conn, &owner, on, &origin)?))
        .await?;
    flash(
        &session,
        "success",
        if on {
            "New sign-in emails are on."
        } else {
            "New sign-in emails are off."
        },
    );
    Ok(see_other("/account"))
}
