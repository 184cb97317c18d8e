//! Forgotten passwords: `/forgot-password` asks for a link, `/reset/{token}` uses it.
//! The rules are in `domain::password_reset`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::auth::throttle::{self, Decision, Limits};
use crate::db::{self, DbConnection, users};
use crate::domain::FieldErrors;
use crate::domain::email::Email;
use crate::domain::password_reset::{self, Env, ResetError, ResetForm, THROTTLE_PREFIX};
use crate::error::{AppError, AppResult};
use crate::web::device::{self, Device, DeviceKey};
use crate::web::form::Form;
use crate::web::layout::Layout;
use crate::web::private;
use crate::web::{AppState, flash, render_status, see_other};

const TOO_MANY: &str = "Too many password reset requests. Check your inbox for the email already sent, or wait a few minutes and try again.";

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    layout: Layout,
    email: String,
    sent: bool,
    ttl: String,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    layout: Layout,
    /// None: the link is dead.
    account_email: Option<String>,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

fn env(state: &AppState, origin: Origin) -> AppResult<Env> {
    Ok(Env {
        ttl: chrono::Duration::from_std(state.settings.password_reset_ttl)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("password reset TTL: {e}")))?,
        // From `--public-url`, never from the request's Host header.
        public_url: state.settings.public_url(),
        origin,
    })
}

/// "30 minutes", "2 hours": how long a link works, for the page.
fn ttl_text(ttl: std::time::Duration) -> String {
    let minutes = ttl.as_secs() / 60;
    match minutes {
        0 => format!("{} seconds", ttl.as_secs()),
        1 => "1 minute".into(),
        m if m % 60 != 0 => format!("{m} minutes"),
        60 => "1 hour".into(),
        m => format!("{} hours", m / 60),
    }
}

fn forgot_page(state: &AppState, session: &Session, email: String, sent: bool) -> ForgotPage {
    ForgotPage {
        layout: Layout::public(session, "Forgot your password?"),
        email,
        sent,
        ttl: ttl_text(state.settings.password_reset_ttl),
        errors: FieldErrors::default(),
    }
}

/// A dead link (unknown, used, expired) is `None`, for the page that says so.
fn unless_dead<T>(result: Result<T, ResetError>) -> AppResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(ResetError::InvalidLink) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub async fn forgot_form(state: web::Data<AppState>, session: Session) -> HttpResponse {
    let view = forgot_page(&state, &session, String::new(), false);
    render_status(StatusCode::OK, &view)
}

/// The same page, with the same status, whether or not the address has an account.
pub async fn request_reset(
    state: web::Data<AppState>,
    (session, req, device_key): (Session, HttpRequest, web::Data<DeviceKey>),
    origin: Origin,
    form: Form<ForgotForm>,
) -> AppResult<HttpResponse> {
    let typed: String = form.email.trim().chars().take(254).collect();
    if let Err(e) = Email::parse(&typed) {
        let mut view = forgot_page(&state, &session, typed, false);
        view.errors.add("email", e);
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &view));
    }
    let (limits, email) = (state.throttle, typed.clone());
    let device = device::read(&req, &device_key);
    if !state
        .db(move |conn| queue_request(conn, &limits, (&origin, device), &email))
        .await?
    {
        return Err(AppError::TooManyRequests(TOO_MANY.into()));
    }
    state.mail.wake_reset_worker();
    let view = forgot_page(&state, &session, typed, true);
    Ok(render_status(StatusCode::OK, &view))
}

/// Counts the request per address and per client, then queues it for the worker, in one
/// write transaction; false when a limit turned it away.
fn queue_request(
    conn: &mut DbConnection,
    limits: &Limits,
    (origin, device): (&Origin, Option<Device>),
    typed: &str,
) -> AppResult<bool> {
    let ip = origin.ip.clone().unwrap_or_default();
    db::write_tx(conn, |conn| {
        // The owner's own browser, for the worker's daily cap: read now, as sign-in reads
        // it (one indexed lookup, whether or not the address has an account).
        let owner = match Email::parse(typed) {
            Ok(email) => users::find_by_email(conn, email.as_str())?,
            Err(_) => None,
        }
        .and_then(|user| device.filter(|d| d.is_for(&user)));
        let nonce = owner.as_ref().map(|d| d.nonce.as_str());
        match throttle::reserve_prefixed(conn, THROTTLE_PREFIX, limits, (typed, nonce), &ip)? {
            Decision::Refused(refusal) => {
                if refusal.first_in_window {
                    let (limit, ends) = (refusal.scope.as_str(), refusal.window_ends_at);
                    password_reset::record_throttled(conn, typed, limit, ends, origin)?;
                }
                Ok(false)
            }
            Decision::Allowed(_) => {
                let owner = owner.as_ref().map(|d| d.user_id.as_str());
                password_reset::queue_request(conn, typed, origin, owner)?;
                Ok(true)
            }
        }
    })
}

/// The account a live link resets; `None` for a dead link.
async fn live_account(state: &AppState, token: String) -> AppResult<Option<String>> {
    state
        .db(move |conn| unless_dead(password_reset::check_link(conn, &token).map(|u| u.email)))
        .await
}

fn reset_page(
    session: &Session,
    account_email: Option<String>,
    errors: FieldErrors,
) -> HttpResponse {
    let status = match (&account_email, errors.is_empty()) {
        (None, _) => StatusCode::NOT_FOUND,
        (Some(_), true) => StatusCode::OK,
        (Some(_), false) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let view = ResetPage {
        layout: Layout::public(session, "Choose a new password"),
        account_email,
        errors,
    };
    private(render_status(status, &view))
}

pub async fn reset_form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let account = live_account(&state, token.into_inner()).await?;
    Ok(reset_page(&session, account, FieldErrors::default()))
}

pub async fn reset(
    state: web::Data<AppState>,
    device_key: web::Data<DeviceKey>,
    session: Session,
    origin: Origin,
    token: web::Path<String>,
    form: Form<ResetForm>,
) -> AppResult<HttpResponse> {
    let (token, form) = (token.into_inner(), form.into_inner());
    // A dead link costs no hash.
    let Some(email) = live_account(&state, token.clone()).await? else {
        return Ok(reset_page(&session, None, FieldErrors::default()));
    };
    if let Err(errors) = password_reset::validate(&form) {
        return Ok(reset_page(&session, Some(email), errors));
    }
    let hash = state.hasher.hash(form.password).await?;
    let env = env(&state, origin)?;
    let done = state
        .db(move |conn| unless_dead(password_reset::reset(conn, &env, &token, &hash)))
        .await?;
    let Some(account) = done else {
        // Used or expired while the password was being hashed.
        return Ok(reset_page(&session, None, FieldErrors::default()));
    };
    state.mail.wake();
    reset_done(&state, &device_key, &session, &account)
}

/// Not signed in by the reset: whatever this browser held is dropped.
fn reset_done(
    state: &AppState,
    device_key: &DeviceKey,
    session: &Session,
    account: &crate::db::users::User,
) -> AppResult<HttpResponse> {
    session.clear();
    session.renew();
    flash(
        session,
        "success",
        "Your password has been changed, and every browser signed in to your account has been signed out. Sign in with your new password.",
    );
    // The mail proved this browser its owner's: its sign-in is spared the guesses others
    // make at the account, as the old password's browsers were until now.
    let mut response = private(see_other("/login"));
    device::remember(
        &mut response,
        device_key,
        account,
        state.settings.secure_cookies(),
    )?;
    Ok(response)
}
