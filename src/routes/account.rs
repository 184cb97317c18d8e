//! The signed-in person's own account on /account: password, sessions, sign-in emails.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::auth::keys;
use crate::auth::throttle::{self, Attempt, Decision, Reservation};
use crate::db;
use crate::db::users::User;
use crate::domain::FieldErrors;
use crate::domain::account::{self, PasswordForm, PasswordPurpose, SessionView};
use crate::domain::sessions::{self as own_sessions, Owner};
use crate::error::{AppError, AppResult};
use crate::web::device::{self, Device, DeviceKey};
use crate::web::extract::current_session_id;
use crate::web::extract::{CurrentUser, rekey, sign_in};
use crate::web::form::Form;
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render_status, see_other};

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

/// The account page: 200 without errors, 422 with the password form's errors.
async fn page(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    errors: FieldErrors,
) -> AppResult<HttpResponse> {
    let user_id = current.user.id.clone();
    let current_id = current_session_id(session);
    let overview = state
        .db(move |conn| Ok(account::overview(conn, &user_id, current_id.as_deref())?))
        .await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let view = AccountPage {
        layout: Layout::signed_in(session, current, "Your account"),
        name: current.user.display_name(),
        email: current.user.email.clone(),
        sessions: overview.sessions,
        signin_alerts: overview.signin_alerts,
        errors,
    };
    Ok(render_status(status, &view))
}

pub async fn account_page(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    page(&state, &session, &current, FieldErrors::default()).await
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
    form: Form<PasswordForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    if let Err(errors) = account::validate(&form) {
        return page(&state, &session, &current, errors).await;
    }
    let device = device::read(&req, &device_key).filter(|d| d.is_for(&current.user));
    state.hasher.refuse_if_full()?;
    let reservation = reserve_attempt(&state, &current, &origin, device).await?;
    let stored = current.user.password_hash.clone();
    let admission = super::auth::admit(&state, &reservation).await?;
    let checked = admission.verify_then_hash(form.current_password, stored, form.password);
    let Some(new_hash) = checked.await? else {
        // The attempt stays counted: it was a failure.
        wrong_password(&state, &current, PasswordPurpose::ChangePassword, &origin).await;
        let mut errors = FieldErrors::default();
        errors.add("current_password", "That is not your current password.");
        return page(&state, &session, &current, errors).await;
    };
    let Some(changed) = store_new_password(&state, &current, new_hash, reservation, origin).await?
    else {
        session.purge();
        return Ok(see_other("/login"));
    };
    signed_in_again(&state, &device_key, &session, &req, &changed)
}

/// How long after signing in a change that outlives the session (a key of one's own on
/// the account, an API token) needs no password. Later, whoever holds the session (a
/// browser left signed in, a copied cookie) must know the password too: a second factor
/// of theirs would lock the owner out, and a token of theirs would keep working after
/// the owner reset their password, past every session's end.
const RECENT_SIGN_IN: i64 = 10 * 60;

/// Why the password asked again was refused: none given, or not the account's.
pub(crate) const PASSWORD_NEEDED: &str =
    "Enter your password: you signed in more than ten minutes ago.";
pub(crate) const NOT_YOUR_PASSWORD: &str = "That is not your password.";

pub(crate) fn signed_in_recently(state: &AppState, session: &Session) -> bool {
    let now = state.settings.clock.now().and_utc().timestamp();
    let at = session.get::<i64>(keys::SIGNED_IN_AT).ok().flatten();
    at.is_some_and(|at| now - at < RECENT_SIGN_IN)
}

/// The password, asked again past a recent sign-in: counted as a sign-in attempt (so a
/// stolen session cannot guess it faster than a sign-in could), a wrong one audited.
/// Answers why it was refused, for the form's `password` field.
pub(crate) async fn password_again(
    state: &AppState,
    current: &CurrentUser,
    origin: &Origin,
    password: &str,
    purpose: PasswordPurpose,
) -> AppResult<Result<(), &'static str>> {
    if password.is_empty() {
        return Ok(Err(PASSWORD_NEEDED));
    }
    state.hasher.refuse_if_full()?;
    let reservation = reserve_attempt(state, current, origin, None).await?;
    let stored = current.user.password_hash.clone();
    let admission = super::auth::admit(state, &reservation).await?;
    if !admission.verify(password.to_string(), stored).await? {
        wrong_password(state, current, purpose, origin).await;
        return Ok(Err(NOT_YOUR_PASSWORD));
    }
    state
        .db(move |conn| Ok(throttle::succeeded(conn, &reservation)?))
        .await?;
    Ok(Ok(()))
}

/// Traces a wrong current password in the account's trail, or, failing that, the log:
/// the person is still told their password was wrong, not shown an error of the trail's.
pub(crate) async fn wrong_password(
    state: &AppState,
    current: &CurrentUser,
    purpose: PasswordPurpose,
    origin: &Origin,
) {
    let (user, origin) = (current.user.clone(), origin.clone());
    let recorded = state
        .db(move |conn| {
            Ok(account::record_wrong_password(
                conn, &user, purpose, &origin,
            )?)
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not record a wrong current password in the audit trail");
    }
}

/// This browser, signed in again with the new password, and a device cookie naming it
/// (the one it had named the old password).
fn signed_in_again(
    state: &AppState,
    device_key: &DeviceKey,
    session: &Session,
    req: &HttpRequest,
    changed: &User,
) -> AppResult<HttpResponse> {
    sign_in(session, req, changed, &state.settings)?;
    flash(
        session,
        "success",
        "Password changed. Every other browser signed in to your account has been signed out.",
    );
    let mut response = see_other("/account");
    device::remember(
        &mut response,
        device_key,
        changed,
        state.settings.secure_cookies(),
    )?;
    Ok(response)
}

/// Stores the new password's hash, which ends every session of the account. Answers
/// the account as it is now, to sign this browser in again with, or `None` when its
/// password changed since this request checked it (a reset came in between).
async fn store_new_password(
    state: &AppState,
    current: &CurrentUser,
    hash: String,
    reservation: Reservation,
    origin: Origin,
) -> AppResult<Option<User>> {
    let mut changed = current.user.clone();
    changed.password_hash = Some(hash.clone());
    let (user, public_url) = (current.user.clone(), state.settings.public_url());
    let stored = state
        .db(move |conn| {
            let stored = account::change_password(conn, &user, &hash, &public_url, &origin)?;
            throttle::succeeded(conn, &reservation)?;
            Ok(stored)
        })
        .await?;
    if stored.is_some() {
        state.mail.wake();
    }
    Ok(stored.map(|_| changed))
}

/// Counts the check of the current password before the hash, atomically, exactly like a
/// sign-in (see `throttle`).
async fn reserve_attempt(
    state: &AppState,
    current: &CurrentUser,
    origin: &Origin,
    device: Option<Device>,
) -> AppResult<Reservation> {
    let limits = state.throttle;
    let ip = origin.ip.clone().unwrap_or_default();
    let email = current.user.email.clone();
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
    match decision {
        Decision::Allowed(reservation) => Ok(reservation),
        Decision::Refused(_) => Err(AppError::TooManyRequests(
            "Too many wrong passwords. Wait a few minutes, then try again.".into(),
        )),
    }
}

fn owner(current: &CurrentUser) -> Owner {
    Owner {
        user_id: current.user.id.clone(),
        email: current.user.email.clone(),
        first_name: current.user.first_name.clone(),
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
            Ok(own_sessions::end_one(
                conn,
                &owner,
                &id,
                current_id.as_deref(),
                &origin,
            )?)
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
    let end = move |conn: &mut _| own_sessions::end_others(conn, &owner, &current_id, &origin);
    let (ended, born) = state.db(move |conn| Ok(end(conn)?)).await?;
    if let Some(born) = born {
        rekey(&session, born)?;
    }
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
    form: Form<SigninAlertsForm>,
) -> AppResult<HttpResponse> {
    let on = form.into_inner().signin_alerts.is_some();
    let (owner, url) = (owner(&current), state.settings.public_url());
    state
        .db(move |conn| {
            Ok(own_sessions::set_signin_alerts(
                conn, &owner, on, &url, &origin,
            )?)
        })
        .await?;
    state.mail.wake();
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
