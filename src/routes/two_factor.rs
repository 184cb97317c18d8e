//! TOTP two-factor: enrolment on /account/2fa and the second sign-in step /login/2fa.
//! The rules are in `domain::two_factor` and `auth::totp`; these handlers extract, check
//! the throttle, run one transaction and render.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self, Event, Origin};
use crate::auth::current_user::{CurrentUser, MaybeUser, sign_in};
use crate::auth::device::{self, DeviceKey};
use crate::auth::throttle::{self, Decision, Reservation};
use crate::auth::{keys, totp};
use crate::db::{self, two_factor as store, users};
use crate::domain::FieldErrors;
use crate::domain::redirect::safe_next;
use crate::domain::timefmt::iso_time;
use crate::domain::two_factor::{self as rules, Answer, Outcome};
use crate::error::{AppError, AppResult};
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render_status, see_other};

/// How long a half-signed-in session waits for its code.
const SECOND_STEP_SECS: i64 = 5 * 60;
const DEFAULT_LANDING: &str = "/orgs";
const EXPIRED: &str = "/login?second_step=expired";
const THROTTLED: &str = "Too many wrong codes. Wait a few minutes, then try again.";

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

fn insert<T: serde::Serialize>(session: &Session, key: &str, value: T) -> AppResult<()> {
    session
        .insert(key, value)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))
}

// ---- the second sign-in step ---------------------------------------------------------

/// Called by `POST /login` once the password is right: for an account with two-factor,
/// the attempt's counters are given back, the session becomes half signed in (the
/// account and a 5-minute expiry, no `uid`, so no page that needs a signed-in person
/// opens) and the browser is sent to /login/2fa. `None` for an account without it.
pub async fn begin_second_step(
    state: &AppState,
    session: &Session,
    user: &users::User,
    reservation: &Reservation,
    next: Option<&str>,
) -> AppResult<Option<HttpResponse>> {
    let (user_id, reservation) = (user.id.clone(), reservation.clone());
    let enrolled = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                if !rules::is_enrolled(conn, &user_id)? {
                    return Ok::<_, AppError>(false);
                }
                // The password was right; the code step keeps its own budget.
                throttle::succeeded(conn, &reservation)?;
                Ok(true)
            })
        })
        .await?;
    if !enrolled {
        return Ok(None);
    }
    session.renew();
    insert(session, keys::PENDING_2FA_USER, &user.id)?;
    insert(
        session,
        keys::PENDING_2FA_UNTIL,
        chrono::Utc::now().timestamp() + SECOND_STEP_SECS,
    )?;
    insert(
        session,
        keys::PENDING_2FA_NEXT,
        safe_next(next, DEFAULT_LANDING),
    )?;
    Ok(Some(see_other("/login/2fa")))
}

/// The account awaiting its code, unless the half-signed-in state has expired.
fn pending_user(session: &Session) -> Option<String> {
    let until = session.get::<i64>(keys::PENDING_2FA_UNTIL).ok().flatten()?;
    if chrono::Utc::now().timestamp() >= until {
        clear_pending(session);
        return None;
    }
    session.get::<String>(keys::PENDING_2FA_USER).ok().flatten()
}

fn clear_pending(session: &Session) {
    session.remove(keys::PENDING_2FA_USER);
    session.remove(keys::PENDING_2FA_UNTIL);
    session.remove(keys::PENDING_2FA_NEXT);
}

#[derive(Template)]
#[template(path = "auth/login_2fa.html")]
struct SecondStepPage {
    layout: Layout,
    error: Option<&'static str>,
}

fn second_step_page(
    session: &Session,
    status: StatusCode,
    error: Option<&'static str>,
) -> HttpResponse {
    render_status(
        status,
        &SecondStepPage {
            layout: Layout::public(session, "Two-factor authentication"),
            error,
        },
    )
}

pub async fn login_2fa_form(session: Session, current: MaybeUser) -> AppResult<HttpResponse> {
    if current.0.is_some() {
        return Ok(see_other(DEFAULT_LANDING));
    }
    if pending_user(&session).is_none() {
        return Ok(see_other(EXPIRED));
    }
    Ok(second_step_page(&session, StatusCode::OK, None))
}

pub async fn login_2fa(
    state: web::Data<AppState>,
    device_key: web::Data<DeviceKey>,
    session: Session,
    req: HttpRequest,
    origin: Origin,
    current: MaybeUser,
    form: web::Form<CodeForm>,
) -> AppResult<HttpResponse> {
    if current.0.is_some() {
        return Ok(see_other(DEFAULT_LANDING));
    }
    let Some(user_id) = pending_user(&session) else {
        return Ok(see_other(EXPIRED));
    };
    if rules::read_answer(&form.code) == Answer::Blank {
        let error = Some("Enter the code from your authenticator app, or a recovery code.");
        return Ok(second_step_page(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            error,
        ));
    }
    let (limits, ip) = (state.throttle, origin.ip.clone().unwrap_or_default());
    let code = form.into_inner().code;
    let origin2 = origin.clone();
    // The "new sign-in" email, as after a password-only sign-in (routes/auth.rs).
    let device_owner = device::read(&req, &device_key).map(|d| d.user_id);
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(300).collect::<String>());
    let account_url = format!("{}/account", state.settings.public_url());
    let (user, outcome) = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let Some(user) = users::find(conn, &user_id)?.filter(|u| u.is_active()) else {
                    return Ok::<_, AppError>((None, None));
                };
                let reservation =
                    match throttle::reserve_second_factor(conn, &limits, &user.id, &ip)? {
                        Decision::Allowed(r) => r,
                        Decision::Refused(refusal) => {
                            if refusal.first_in_window {
                                record_throttled(conn, &user, &origin2, refusal.window_ends_at)?;
                            }
                            return Ok((Some(user), None));
                        }
                    };
                let outcome = totp::check(conn, &user.id, &code, totp::now())?;
                if outcome.accepted() {
                    throttle::succeeded(conn, &reservation)?;
                    users::touch(conn, &user.id)?;
                    crate::domain::sessions::alert_if_new_browser(
                        conn,
                        &crate::domain::sessions::SignIn {
                            user_id: &user.id,
                            email: &user.email,
                            known_browser: device_owner.as_deref() == Some(user.id.as_str()),
                            user_agent: user_agent.as_deref(),
                            ip: origin2.ip.as_deref().unwrap_or_default(),
                            at: db::now(),
                            account_url,
                        },
                    )?;
                }
                rules::record_outcome(conn, &user, &outcome, "sign_in", &origin2)?;
                Ok((Some(user), Some(outcome)))
            })
        })
        .await?;
    let Some(user) = user else {
        clear_pending(&session);
        return Ok(see_other(EXPIRED));
    };
    let Some(outcome) = outcome else {
        return Err(AppError::TooManyRequests(THROTTLED.into()));
    };
    if !outcome.accepted() {
        let error = Some(match outcome {
            Outcome::Replayed => "That code has been used already. Wait for the next one.",
            _ => "That code is not right. Check your authenticator app and try again.",
        });
        return Ok(second_step_page(&session, StatusCode::UNAUTHORIZED, error));
    }
    let next = session
        .get::<String>(keys::PENDING_2FA_NEXT)
        .ok()
        .flatten()
        .unwrap_or_else(|| DEFAULT_LANDING.into());
    clear_pending(&session);
    state.mail.wake();
    sign_in(&session, &req, &user, &state.settings)?;
    if let Outcome::RecoveryCode { left } = outcome {
        flash(
            &session,
            "info",
            format!("Signed in with a recovery code. {left} unused recovery codes left."),
        );
    }
    let mut response = see_other(safe_next(Some(&next), DEFAULT_LANDING));
    response
        .add_cookie(&device::issue(
            &device_key,
            &user.id,
            state.settings.secure_cookies(),
        ))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("device cookie: {e}")))?;
    Ok(response)
}

/// One `auth.2fa_throttled` event per window, at its first refusal (as for passwords).
fn record_throttled(
    conn: &mut db::DbConnection,
    user: &users::User,
    origin: &Origin,
    window_ends_at: chrono::NaiveDateTime,
) -> diesel::QueryResult<()> {
    audit::record(
        conn,
        &Event::new("auth.2fa_throttled", origin)
            .target("user", &user.id, &user.email)
            .details(serde_json::json!({
                "window_ends_at": iso_time(window_ends_at),
                "aggregated": "first refusal of this window; further refusals are counted in the throttle table",
            })),
    )
}

// ---- enrolment and management on /account/2fa ---------------------------------------

#[derive(Template)]
#[template(path = "account/two_factor.html")]
struct TwoFactorPage {
    layout: Layout,
    enrolled: bool,
    secret: String,
    qr: String,
    recovery_codes: Vec<String>,
    codes_left: i64,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    recovery_codes: Vec<String>,
    errors: FieldErrors,
) -> AppResult<TwoFactorPage> {
    let user_id = current.user.id.clone();
    let codes_left = state
        .db(move |conn| {
            Ok(match store::find(conn, &user_id)? {
                Some(_) => Some(store::unused_recovery_codes(conn, &user_id)?),
                None => None,
            })
        })
        .await?;
    let (enrolled, secret) = match codes_left {
        Some(_) => (true, String::new()),
        None => (false, enrolment_secret(session)?),
    };
    let qr = if enrolled {
        String::new()
    } else {
        totp::qr_data_url(&totp::otpauth_url(&secret, &current.user.email))
    };
    Ok(TwoFactorPage {
        layout: Layout::signed_in(session, current, "Two-factor authentication"),
        enrolled,
        secret,
        qr,
        recovery_codes,
        codes_left: codes_left.unwrap_or(0),
        errors,
    })
}

/// The secret of the enrolment in progress, kept in the (server-side) session so that
/// reloading the page shows the same QR code; made on first sight.
fn enrolment_secret(session: &Session) -> AppResult<String> {
    if let Ok(Some(secret)) = session.get::<String>(keys::ENROL_SECRET) {
        return Ok(secret);
    }
    let secret = totp::new_secret();
    insert(session, keys::ENROL_SECRET, &secret)?;
    Ok(secret)
}

pub async fn two_factor_page(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    let view = page(
        &state,
        &session,
        &current,
        Vec::new(),
        FieldErrors::default(),
    )
    .await?;
    Ok(render_status(StatusCode::OK, &view))
}

async fn invalid(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    field: &'static str,
    message: &str,
) -> AppResult<HttpResponse> {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    let view = page(state, session, current, Vec::new(), errors).await?;
    Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &view))
}

/// Confirms the enrolment with one current code; shows the recovery codes once.
pub async fn enable(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    form: web::Form<CodeForm>,
) -> AppResult<HttpResponse> {
    let secret = session.get::<String>(keys::ENROL_SECRET).ok().flatten();
    let Answer::Code(code) = rules::read_answer(&form.code) else {
        let message = "Enter the six-digit code your authenticator app shows.";
        return invalid(&state, &session, &current, "code", message).await;
    };
    let Some(step) = secret
        .as_deref()
        .and_then(|s| totp::matched_step(s, &code, totp::now()))
    else {
        let message = "That code does not match. Check the app's clock, then try the current code.";
        return invalid(&state, &session, &current, "code", message).await;
    };
    let (user, secret) = (current.user.clone(), secret.unwrap_or_default());
    let codes = state
        .db(move |conn| Ok(rules::enable(conn, &user, &secret, step, &origin)?))
        .await?;
    session.remove(keys::ENROL_SECRET);
    let Some(codes) = codes else {
        flash(&session, "info", "Two-factor authentication is already on.");
        return Ok(see_other("/account/2fa"));
    };
    flash(&session, "success", "Two-factor authentication is on.");
    let view = page(&state, &session, &current, codes, FieldErrors::default()).await?;
    Ok(render_status(StatusCode::OK, &view))
}

/// Reserves a second-factor attempt, then checks the password when `password` is given
/// and the code when `code` is given; every wrong code is audited.
async fn prove(
    state: &AppState,
    current: &CurrentUser,
    origin: &Origin,
    form: &CodeForm,
    purpose: &'static str,
) -> AppResult<Result<(), (&'static str, &'static str)>> {
    let (limits, ip) = (state.throttle, origin.ip.clone().unwrap_or_default());
    let (user, o) = (current.user.clone(), origin.clone());
    let decision = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let decision = throttle::reserve_second_factor(conn, &limits, &user.id, &ip)?;
                if let Decision::Refused(r) = &decision
                    && r.first_in_window
                {
                    record_throttled(conn, &user, &o, r.window_ends_at)?;
                }
                Ok::<_, AppError>(decision)
            })
        })
        .await?;
    let Decision::Allowed(reservation) = decision else {
        return Err(AppError::TooManyRequests(THROTTLED.into()));
    };
    if !form.password.is_empty() {
        let stored = current.user.password_hash.clone();
        if !state.hasher.verify(form.password.clone(), stored).await? {
            return Ok(Err(("password", "That is not your password.")));
        }
    }
    if rules::read_answer(&form.code) != Answer::Blank {
        let (user, o, code) = (current.user.clone(), origin.clone(), form.code.clone());
        let outcome = state
            .db(move |conn| {
                db::write_tx(conn, |conn| {
                    let outcome = totp::check(conn, &user.id, &code, totp::now())?;
                    rules::record_outcome(conn, &user, &outcome, purpose, &o)?;
                    Ok::<_, AppError>(outcome)
                })
            })
            .await?;
        if !outcome.accepted() {
            return Ok(Err((
                "code",
                "That code is not right, or has been used already.",
            )));
        }
    }
    state
        .db(move |conn| Ok(throttle::succeeded(conn, &reservation)?))
        .await?;
    Ok(Ok(()))
}

/// Turns two-factor off: needs the password and a current code.
pub async fn disable(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    form: web::Form<CodeForm>,
) -> AppResult<HttpResponse> {
    if form.password.is_empty() {
        return invalid(
            &state,
            &session,
            &current,
            "password",
            "Enter your password.",
        )
        .await;
    }
    if rules::read_answer(&form.code) == Answer::Blank {
        let message = "Enter the code from your authenticator app.";
        return invalid(&state, &session, &current, "code", message).await;
    }
    if !is_enrolled(&state, &current).await? {
        return Ok(see_other("/account/2fa"));
    }
    if let Err((field, message)) = prove(&state, &current, &origin, &form, "disable").await? {
        return invalid(&state, &session, &current, field, message).await;
    }
    let user = current.user.clone();
    state
        .db(move |conn| Ok(rules::disable(conn, &user, &origin)?))
        .await?;
    flash(&session, "success", "Two-factor authentication is off.");
    Ok(see_other("/account/2fa"))
}

/// New recovery codes (the old ones stop working): needs a current code or the password.
pub async fn regenerate_recovery_codes(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    form: web::Form<CodeForm>,
) -> AppResult<HttpResponse> {
    if form.password.is_empty() && rules::read_answer(&form.code) == Answer::Blank {
        let message = "Enter a code from your authenticator app, or your password.";
        return invalid(&state, &session, &current, "regenerate_code", message).await;
    }
    if !is_enrolled(&state, &current).await? {
        return Ok(see_other("/account/2fa"));
    }
    if let Err((_, message)) = prove(&state, &current, &origin, &form, "recovery_codes").await? {
        return invalid(&state, &session, &current, "regenerate_code", message).await;
    }
    let user = current.user.clone();
    let codes = state
        .db(move |conn| Ok(rules::regenerate_recovery_codes(conn, &user, &origin)?))
        .await?;
    flash(
        &session,
        "success",
        "New recovery codes made. The old ones no longer work.",
    );
    let view = page(&state, &session, &current, codes, FieldErrors::default()).await?;
    Ok(render_status(StatusCode::OK, &view))
}

async fn is_enrolled(state: &AppState, current: &CurrentUser) -> AppResult<bool> {
    let user_id = current.user.id.clone();
    state
        .db(move |conn| Ok(rules::is_enrolled(conn, &user_id)?))
        .await
}
