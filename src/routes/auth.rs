//! Signing in and out: the password step on /login, the hand-over to the code step on
//! /login/2fa (routes/two_factor.rs) and the end of a sign-in both steps share.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::USER_AGENT;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self, Event, Origin};
use crate::auth::keys;
use crate::auth::password::{Admission, stamp_of};
use crate::auth::throttle::{self, Attempt, Decision, Limits, Reservation};
use crate::db::users::{self, User};
use crate::db::{self, DbConnection};
use crate::domain::redirect::safe_next;
use crate::domain::sessions::{self, Browser};
use crate::domain::two_factor;
use crate::error::{AppError, AppResult};
use crate::web::device::{self, Device, DeviceKey};
use crate::web::extract::{MaybeUser, sign_in};
use crate::web::form::{Form, Query, Return};
use crate::web::layout::Layout;
use crate::web::{AppState, render, render_status, see_other};

pub(super) const DEFAULT_LANDING: &str = "/orgs";
const WRONG_CREDENTIALS: &str = "That email and password do not match an active account.";
const TOO_MANY: &str = "Too many failed sign-in attempts. Wait a few minutes, then try again.";
/// How long a half-signed-in session waits for its code.
const SECOND_STEP_SECS: i64 = 5 * 60;

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
    error: Option<&'static str>,
    notice: Option<&'static str>,
}

impl LoginPage {
    fn new(session: &Session, email: String, next: Option<&str>) -> Self {
        LoginPage {
            layout: Layout::public(session, "Sign in"),
            email,
            next: safe_next(next, DEFAULT_LANDING).to_string(),
            error: None,
            notice: None,
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
    /// `expired`: the two-factor step of an earlier sign-in timed out.
    second_step: Option<String>,
}

pub async fn login_form(
    session: Session,
    query: Query<LoginQuery>,
    current: MaybeUser,
) -> AppResult<HttpResponse> {
    let mut page = LoginPage::new(&session, String::new(), query.next.as_deref());
    if current.0.is_some() {
        return Ok(see_other(&page.next));
    }
    page.notice = match (&query.signed_out, &query.second_step) {
        (Some(_), _) => Some("You have been signed out."),
        (None, Some(_)) => Some("Sign in again: the code step timed out."),
        _ => None,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn login(
    state: web::Data<AppState>,
    device_key: web::Data<DeviceKey>,
    session: Session,
    req: HttpRequest,
    origin: Origin,
    form: Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let email = form.email.trim().to_lowercase();
    let device = device::read(&req, &device_key);
    state.hasher.refuse_if_full()?;
    let (reservation, user) = reserve_attempt(&state, &origin, &email, device.clone()).await?;
    let owner = device.filter(|d| user.as_ref().is_some_and(|u| d.is_owners(u)));
    let browser = browser(&req, &state, &origin, owner.map(|d| d.user_id));
    // Hashed for unknown accounts too, so the answer takes as long either way.
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let admission = admit(&state, &reservation).await?;
    let password_ok = admission.verify(form.password, stored).await?;
    let next = form.next.as_deref();
    let Some(user) = user.filter(|u| password_ok && u.is_active()) else {
        // The attempt stays counted: it was a failure.
        let origin = origin.clone();
        state
            .db(move |conn| Ok(sessions::record_login_failed(conn, &email, &origin)?))
            .await?;
        return Ok(wrong_credentials(&session, &form.email, next));
    };
    if begin_second_step(&state, &session, &user, &reservation, next).await? {
        return Ok(see_other("/login/2fa"));
    }
    let signed_in = user.clone();
    let alerted = state
        .db(move |conn| password_sign_in(conn, &reservation, &signed_in, &browser, &origin))
        .await?;
    if alerted {
        state.mail.wake();
    }
    finish_sign_in(&state, &device_key, &session, &req, &user, next)
}

/// Counts the attempt before any hashing, so parallel guesses cannot all slip under the
/// limit. Answers the counters to give back on success and the account the email names.
async fn reserve_attempt(
    state: &AppState,
    origin: &Origin,
    email: &str,
    device: Option<Device>,
) -> AppResult<(Reservation, Option<User>)> {
    let (limits, email, origin) = (state.throttle, email.to_string(), origin.clone());
    let (decision, user) = state
        .db(move |conn| count_attempt(conn, &limits, &email, device, &origin))
        .await?;
    match decision {
        Decision::Allowed(reservation) => Ok((reservation, user)),
        Decision::Refused(_) => Err(AppError::TooManyRequests(TOO_MANY.into())),
    }
}

/// A place in the hashing queue; when it is full, the attempt is given back (its password
/// was never checked) and the answer is 503 at once.
///
/// Callers first ask [`Hasher::refuse_if_full`](crate::auth::password::Hasher::refuse_if_full)
/// before counting the attempt, so that while a flood keeps the queue full its sign-ins are
/// turned away without the two write transactions (count, give back) each cost here: on
/// PostgreSQL at 200 a second those writes were what the pages waited behind. The place
/// itself is taken only after the count, so requests about to be refused for a limit
/// never hold one: taken first, a throttled burst filled the queue for everyone.
pub(crate) async fn admit(state: &AppState, reservation: &Reservation) -> AppResult<Admission> {
    match state.hasher.admit() {
        Ok(admission) => Ok(admission),
        Err(busy) => {
            let reservation = reservation.clone();
            state
                .db(move |conn| Ok(throttle::unchecked(conn, &reservation)?))
                .await?;
            Err(busy.into())
        }
    }
}

/// [`reserve_attempt`]'s one write transaction; the first refusal of a window is audited.
fn count_attempt(
    conn: &mut DbConnection,
    limits: &Limits,
    email: &str,
    device: Option<Device>,
    origin: &Origin,
) -> AppResult<(Decision, Option<User>)> {
    db::write_tx(conn, |conn| {
        let user = users::find_by_email(conn, email)?;
        // A device cookie counts only for the account, and the password, it was issued to.
        let nonce = device
            .as_ref()
            .filter(|d| user.as_ref().is_some_and(|u| d.is_for(u)))
            .map(|d| d.nonce.as_str());
        let ip = origin.ip.clone().unwrap_or_default();
        let attempt = Attempt {
            email,
            ip: &ip,
            device: nonce,
        };
        let decision = throttle::reserve(conn, limits, attempt)?;
        if let Decision::Refused(r) = &decision
            && r.first_in_window
        {
            let limit = r.scope.as_str();
            sessions::record_login_throttled(conn, email, limit, r.window_ends_at, origin)?;
        }
        Ok((decision, user))
    })
}

fn wrong_credentials(session: &Session, typed: &str, next: Option<&str>) -> HttpResponse {
    let mut page = LoginPage::new(session, truncate(typed, 254), next);
    page.error = Some(WRONG_CREDENTIALS);
    render_status(StatusCode::UNAUTHORIZED, &page)
}

/// The right password of an account without two-factor: the attempt is given back and
/// the sign-in recorded. Answers whether a "new sign-in" email was queued.
fn password_sign_in(
    conn: &mut DbConnection,
    reservation: &Reservation,
    user: &User,
    browser: &Browser,
    origin: &Origin,
) -> AppResult<bool> {
    db::write_tx(conn, |conn| {
        throttle::succeeded(conn, reservation)?;
        let alerted = sessions::signed_in(conn, user, browser)?;
        sessions::record_login_succeeded(conn, user, alerted, origin)?;
        Ok(alerted)
    })
}

/// The browser signing in, read from the request for the "new sign-in" email.
pub(super) fn browser(
    req: &HttpRequest,
    state: &AppState,
    origin: &Origin,
    device_owner: Option<String>,
) -> Browser {
    Browser {
        device_owner,
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(300).collect()),
        ip: origin.ip.clone().unwrap_or_default(),
        account_url: format!("{}/account", state.settings.public_url()),
    }
}

/// The end of every sign-in, with or without a code: the session is signed in, the
/// browser goes on to `next` and gets a fresh device cookie, so it may sign in to this
/// account past strangers' failures.
pub(super) fn finish_sign_in(
    state: &AppState,
    device_key: &DeviceKey,
    session: &Session,
    req: &HttpRequest,
    user: &User,
    next: Option<&str>,
) -> AppResult<HttpResponse> {
    sign_in(session, req, user, &state.settings)?;
    let mut response = see_other(safe_next(next, DEFAULT_LANDING));
    device::remember(
        &mut response,
        device_key,
        user,
        state.settings.secure_cookies(),
    )?;
    Ok(response)
}

// ---- the hand-over to the code step ----------------------------------------------------

/// Once the password is right, for an account with two-factor: the attempt's counters are
/// given back (the code step keeps its own budget) and the session becomes half signed in
/// (the account and a 5-minute expiry, no `uid`, so no page that needs a signed-in person
/// opens). Answers false, changing nothing, for an account without two-factor.
async fn begin_second_step(
    state: &AppState,
    session: &Session,
    user: &User,
    reservation: &Reservation,
    next: Option<&str>,
) -> AppResult<bool> {
    let (user_id, reservation) = (user.id.clone(), reservation.clone());
    let enrolled = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                if !two_factor::is_enrolled(conn, &user_id)? {
                    return Ok::<_, AppError>(false);
                }
                throttle::succeeded(conn, &reservation)?;
                Ok(true)
            })
        })
        .await?;
    if enrolled {
        session.renew();
        let until = chrono::Utc::now().timestamp() + SECOND_STEP_SECS;
        insert(session, keys::PENDING_2FA_USER, &user.id)?;
        insert(session, keys::PENDING_2FA_CREDENTIAL, stamp_of(user))?;
        insert(session, keys::PENDING_2FA_UNTIL, until)?;
        insert(
            session,
            keys::PENDING_2FA_NEXT,
            safe_next(next, DEFAULT_LANDING),
        )?;
    }
    Ok(enrolled)
}

/// The account awaiting its code, and the password its first step checked, unless the
/// half-signed-in state has expired.
pub(super) fn pending_user(session: &Session) -> Option<PendingSignIn> {
    let until = session.get::<i64>(keys::PENDING_2FA_UNTIL).ok().flatten()?;
    if chrono::Utc::now().timestamp() >= until {
        clear_pending(session);
        return None;
    }
    Some(PendingSignIn {
        user_id: session
            .get::<String>(keys::PENDING_2FA_USER)
            .ok()
            .flatten()?,
        credential: session
            .get::<String>(keys::PENDING_2FA_CREDENTIAL)
            .ok()
            .flatten()?,
    })
}

/// A half-signed-in session: its code step goes on only while the account's password is
/// still the one its first step checked.
pub(super) struct PendingSignIn {
    pub user_id: String,
    pub credential: String,
}

/// Where the half-signed-in session was going; the half-signed-in state ends.
pub(super) fn take_pending_next(session: &Session) -> String {
    let next = session
        .get::<String>(keys::PENDING_2FA_NEXT)
        .ok()
        .flatten()
        .unwrap_or_else(|| DEFAULT_LANDING.into());
    clear_pending(session);
    next
}

pub(super) fn clear_pending(session: &Session) {
    session.remove(keys::PENDING_2FA_USER);
    session.remove(keys::PENDING_2FA_UNTIL);
    session.remove(keys::PENDING_2FA_NEXT);
    session.remove(keys::PENDING_2FA_CREDENTIAL);
}

pub(super) fn insert<T: serde::Serialize>(session: &Session, key: &str, value: T) -> AppResult<()> {
    session
        .insert(key, value)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))
}

/// Signing out from an invitation meant for another address comes back to it (`next`, an
/// `/invite/…` path); every other sign-out ends on the sign-in page.
pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    current: MaybeUser,
    Form(back): Form<Return>,
) -> AppResult<HttpResponse> {
    if let Some(current) = current.0 {
        let user = current.user;
        state
            .db(move |conn| {
                audit::record(
                    conn,
                    &Event::new("auth.logout", &origin)
                        .actor(&user.id, &user.email)
                        .target("user", &user.id, &user.email),
                )?;
                Ok(())
            })
            .await?;
    }
    session.purge();
    match safe_next(back.next.as_deref(), "") {
        invitation if invitation.starts_with("/invite/") => Ok(see_other(invitation)),
        _ => Ok(see_other("/login?signed_out=1")),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}
