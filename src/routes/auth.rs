use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self, Event, Origin};
use crate::auth::current_user::{MaybeUser, sign_in};
use crate::auth::device::{self, DeviceKey};
use crate::auth::throttle::{self, Attempt, Decision, Refusal};
use crate::db::{self, users};
use crate::domain::redirect::safe_next;
use crate::domain::sessions;
use crate::domain::timefmt::iso_time;
use crate::error::{AppError, AppResult};
use crate::web::layout::Layout;
use crate::web::{AppState, render, render_status, see_other};

const DEFAULT_LANDING: &str = "/orgs";
const WRONG_CREDENTIALS: &str = "That email and password do not match an active account.";

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
    error: Option<&'static str>,
    notice: Option<&'static str>,
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
    query: web::Query<LoginQuery>,
    current: MaybeUser,
) -> AppResult<HttpResponse> {
    let next = safe_next(query.next.as_deref(), DEFAULT_LANDING).to_string();
    if current.0.is_some() {
        return Ok(see_other(&next));
    }
    Ok(render(&LoginPage {
        layout: Layout::public(&session, "Sign in"),
        email: String::new(),
        next,
        error: None,
        notice: match (&query.signed_out, &query.second_step) {
            (Some(_), _) => Some("You have been signed out."),
            (None, Some(_)) => Some("Sign in again: the code step timed out."),
            _ => None,
        },
    }))
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
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let email = form.email.trim().to_lowercase();
    let ip = origin.ip.clone().unwrap_or_default();
    let limits = state.throttle;
    let device = device::read(&req, &device_key);
    // Whose browser this is: a valid device cookie names the account it signed in to.
    let device_owner = device.as_ref().map(|d| d.user_id.clone());

    // Counted before any hashing, in one write transaction: parallel guesses cannot all
    // slip under the limit.
    let (decision, user) = {
        let (email, origin) = (email.clone(), origin.clone());
        state
            .db(move |conn| {
                db::write_tx(conn, |conn| {
                    let user = users::find_by_email(conn, &email)?;
                    // A device cookie counts only for the account it was issued to.
                    let nonce = device
                        .as_ref()
                        .filter(|d| user.as_ref().is_some_and(|u| u.id == d.user_id))
                        .map(|d| d.nonce.as_str());
                    let attempt = Attempt {
                        email: &email,
                        ip: &ip,
                        device: nonce,
                    };
                    let decision = throttle::reserve(conn, &limits, attempt)?;
                    if let Decision::Refused(refusal) = &decision
                        && refusal.first_in_window
                    {
                        record_throttled(conn, &origin, &email, refusal)?;
                    }
                    Ok::<_, AppError>((decision, user))
                })
            })
            .await?
    };
    let reservation = match decision {
        Decision::Allowed(reservation) => reservation,
        Decision::Refused(_) => {
            return Err(AppError::TooManyRequests(
                "Too many failed sign-in attempts. Wait a few minutes, then try again.".into(),
            ));
        }
    };

    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let password_ok = state.hasher.verify(form.password, stored).await?;
    let user = user.filter(|u| password_ok && u.is_active());

    let Some(user) = user else {
        // The attempt stays counted: it was a failure.
        let (email, origin) = (email.clone(), origin.clone());
        state
            .db(move |conn| {
                audit::record(
                    conn,
                    &Event::new("auth.login_failed", &origin).target(
                        "account",
                        "",
                        &attempted_account(&email),
                    ),
                )?;
                Ok(())
            })
            .await?;
        let page = LoginPage {
            layout: Layout::public(&session, "Sign in"),
            email: truncate(&form.email, 254),
            next: safe_next(form.next.as_deref(), DEFAULT_LANDING).to_string(),
            error: Some(WRONG_CREDENTIALS),
            notice: None,
        };
        return Ok(render_status(StatusCode::UNAUTHORIZED, &page));
    };
    // Two-factor accounts finish signing in on /login/2fa (routes/two_factor.rs).
    if let Some(second_step) = super::two_factor::begin_second_step(
        &state,
        &session,
        &user,
        &reservation,
        form.next.as_deref(),
    )
    .await?
    {
        return Ok(second_step);
    }

    let alerted = {
        let (user, origin) = (user.clone(), origin.clone());
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(300).collect::<String>());
        let account_url = format!("{}/account", state.settings.public_url());
        state
            .db(move |conn| {
                db::write_tx(conn, |conn| {
                    throttle::succeeded(conn, &reservation)?;
                    users::touch(conn, &user.id)?;
                    // A browser without this account's device cookie has not signed in
                    // to it before: the person hears of it (unless they turned it off).
                    let alerted = sessions::alert_if_new_browser(
                        conn,
                        &sessions::SignIn {
                            user_id: &user.id,
                            email: &user.email,
                            known_browser: device_owner.as_deref() == Some(user.id.as_str()),
                            user_agent: user_agent.as_deref(),
                            ip: origin.ip.as_deref().unwrap_or_default(),
                            at: db::now(),
                            account_url,
                        },
                    )?;
                    audit::record(
                        conn,
                        &Event::new("auth.login_succeeded", &origin)
                            .actor(&user.id, &user.email)
                            .target("user", &user.id, &user.email)
                            .details(serde_json::json!({ "new_browser_email": alerted })),
                    )?;
                    Ok::<_, AppError>(alerted)
                })
            })
            .await?
    };
    if alerted {
        state.mail.wake();
    }
    sign_in(&session, &req, &user, &state.settings)?;
    let mut response = see_other(safe_next(form.next.as_deref(), DEFAULT_LANDING));
    // This browser may now sign in to this account past strangers' failures.
    response
        .add_cookie(&device::issue(
            &device_key,
            &user.id,
            state.settings.secure_cookies(),
        ))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("device cookie: {e}")))?;
    Ok(response)
}

/// The audit trail gets one `auth.login_throttled` event per throttle key and window, at
/// its first refusal, not one per refused request (an anonymous client could otherwise
/// grow the insert-only table without bound). Later refusals in the same window are
/// counted in `login_attempts.refused` for that key.
fn record_throttled(
    conn: &mut db::DbConnection,
    origin: &Origin,
    email: &str,
    refusal: &Refusal,
) -> diesel::QueryResult<()> {
    audit::record(
        conn,
        &Event::new("auth.login_throttled", origin)
            .target("account", "", &attempted_account(email))
            .details(serde_json::json!({
                "limit": refusal.scope.as_str(),
                "window_ends_at": iso_time(refusal.window_ends_at),
                "refused_so_far": 1,
                "aggregated": "first refusal of this window; further refusals until window_ends_at are counted in the throttle table, not recorded one by one",
            })),
    )
}

pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    current: MaybeUser,
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
    Ok(see_other("/login?signed_out=1"))
}

/// The account a failed or throttled sign-in named, for the audit trail. People type
/// their password into the email field now and then: anything that is not an address
/// is not recorded.
fn attempted_account(typed: &str) -> String {
    crate::domain::email::Email::parse(typed)
        .map(|e| e.as_str().to_string())
        .unwrap_or_else(|_| "(not an email address)".into())
}

fn truncate(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}
