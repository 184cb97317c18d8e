//! TOTP two-factor: enrolment on /account/2fa and the second sign-in step /login/2fa.
//! The rules are in `domain::two_factor` and `auth::totp`; these handlers extract, check
//! the throttle, run one transaction and render.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::account::{NOT_YOUR_PASSWORD, PASSWORD_NEEDED, signed_in_recently};
use super::auth::{
    DEFAULT_LANDING, PendingSignIn, browser, clear_pending, finish_sign_in, insert, pending_user,
    take_pending_next,
};
use crate::audit::Origin;
use crate::auth::password::stamp_of;
use crate::auth::throttle::{self, Decision, Limits, Reservation};
use crate::auth::{keys, totp};
use crate::db::users::{self, User};
use crate::db::{self, DbConnection};
use crate::domain::FieldErrors;
use crate::domain::account::PasswordPurpose;
use crate::domain::sessions::{self, Browser};
use crate::domain::two_factor::{self as rules, Answer, Outcome};
use crate::error::{AppError, AppResult};
use crate::web::device::{self, DeviceKey};
use crate::web::extract::{CurrentUser, MaybeUser, current_session_id, rekey};
use crate::web::form::Form;
use crate::web::layout::Layout;
use crate::web::once;
use crate::web::{AppState, flash, render_status, see_other};

const EXPIRED: &str = "/login?second_step=expired";
const ENTER_CODE: &str = "Enter the code from your authenticator app, or a recovery code.";
const THROTTLED: &str = "Too many wrong codes. Wait a few minutes, then try again.";

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    /// One rendering of a form whose answer shows codes once (see `web::once`).
    #[serde(default)]
    form_id: String,
}

fn throttled() -> AppError {
    AppError::TooManyRequests(THROTTLED.into())
}

/// Counts a code attempt, inside the caller's write transaction, before the code is
/// checked; `None` when the account's code budget is used up (its first refusal in a
/// window is audited).
fn reserve_code_attempt(
    conn: &mut DbConnection,
    limits: &Limits,
    user: &User,
    origin: &Origin,
    with_password: bool,
) -> AppResult<Option<Reservation>> {
    let ip = origin.ip.clone().unwrap_or_default();
    match throttle::reserve_second_factor(conn, limits, &user.id, &ip, with_password)? {
        Decision::Allowed(reservation) => Ok(Some(reservation)),
        Decision::Refused(refusal) => {
            if refusal.first_in_window {
                rules::record_throttled(conn, user, refusal.window_ends_at, origin)?;
            }
            Ok(None)
        }
    }
}

// ---- the second sign-in step (the password step is in routes/auth.rs) -----------------

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

/// The account awaiting its code, or where to send a browser that has none to give.
fn awaiting_code(session: &Session, current: &MaybeUser) -> Result<PendingSignIn, &'static str> {
    if current.0.is_some() {
        return Err(DEFAULT_LANDING);
    }
    pending_user(session).ok_or(EXPIRED)
}

pub async fn login_2fa_form(session: Session, current: MaybeUser) -> AppResult<HttpResponse> {
    if let Err(elsewhere) = awaiting_code(&session, &current) {
        return Ok(see_other(elsewhere));
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
    form: Form<CodeForm>,
) -> AppResult<HttpResponse> {
    let pending = match awaiting_code(&session, &current) {
        Ok(pending) => pending,
        Err(elsewhere) => return Ok(see_other(elsewhere)),
    };
    if rules::read_answer(&form.code) == Answer::Blank {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(second_step_page(&session, status, Some(ENTER_CODE)));
    }
    let owner = device_owner(&req, &device_key, &pending);
    let browser = browser(&req, &state, &origin, owner);
    let (limits, code) = (state.throttle, form.into_inner().code);
    let step = state
        .db(move |conn| second_step(conn, &limits, &pending, &code, &browser, &origin))
        .await?;
    let (user, outcome) = match step {
        SecondStep::Expired => {
            clear_pending(&session);
            return Ok(see_other(EXPIRED));
        }
        SecondStep::Throttled => return Err(throttled()),
        SecondStep::Checked(user, outcome) => (user, outcome),
    };
    if !outcome.accepted() {
        let error = Some(refusal_message(&outcome));
        return Ok(second_step_page(&session, StatusCode::UNAUTHORIZED, error));
    }
    code_accepted_sign_in(&state, &device_key, &session, &req, &user, &outcome)
}

/// The end of a sign-in whose code was accepted: the half-signed-in state gives way to a
/// signed-in session, and a recovery code's use is told with how many are left.
fn code_accepted_sign_in(
    state: &AppState,
    device_key: &DeviceKey,
    session: &Session,
    req: &HttpRequest,
    user: &User,
    outcome: &Outcome,
) -> AppResult<HttpResponse> {
    let next = take_pending_next(session);
    state.mail.wake();
    let response = finish_sign_in(state, device_key, session, req, user, Some(&next))?;
    if let Outcome::RecoveryCode { left } = outcome {
        let message = format!("Signed in with a recovery code. {left} unused recovery codes left.");
        flash(session, "info", message);
    }
    Ok(response)
}

/// What the code step came to.
enum SecondStep {
    /// The account is gone or disabled, or its password changed, since its password was
    /// checked.
    Expired,
    Throttled,
    Checked(Box<User>, Outcome),
}

/// The code step's one transaction: the attempt is counted before the code is checked;
/// an accepted code gives it back and records the sign-in (and any "new sign-in" email).
fn second_step(
    conn: &mut DbConnection,
    limits: &Limits,
    pending: &PendingSignIn,
    code: &str,
    browser: &Browser,
    origin: &Origin,
) -> AppResult<SecondStep> {
    db::write_tx(conn, |conn| {
        let Some(user) = users::find(conn, &pending.user_id)?
            .filter(|u| u.is_active() && stamp_of(u) == pending.credential)
        else {
            return Ok(SecondStep::Expired);
        };
        let Some(reservation) = reserve_code_attempt(conn, limits, &user, origin, false)? else {
            return Ok(SecondStep::Throttled);
        };
        let outcome = totp::check(conn, &user.id, code, totp::now())?;
        if outcome.accepted() {
            throttle::succeeded(conn, &reservation)?;
            sessions::signed_in(conn, &user, browser)?;
        }
        rules::record_outcome(conn, &user, &outcome, "sign_in", origin)?;
        Ok(SecondStep::Checked(Box::new(user), outcome))
    })
}

fn refusal_message(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Replayed => "That code has been used already. Wait for the next one.",
        _ => "That code is not right. Check your authenticator app and try again.",
    }
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
    form_id: String,
    /// Turning it on asks for the password too: the sign-in is not recent.
    ask_password: bool,
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
        .db(move |conn| Ok(rules::recovery_codes_left(conn, &user_id)?))
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
        form_id: once::new_form_id(),
        ask_password: !signed_in_recently(state, session),
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
    form: Form<CodeForm>,
) -> AppResult<HttpResponse> {
    if let Some(back) = sent_again(&session, &form.form_id, ON_ALREADY) {
        return Ok(back);
    }
    let checked = checked_enrolment(&state, &session, &current, &origin, &form).await?;
    let (secret, step) = match checked {
        Ok(found) => found,
        Err((field, message)) => return invalid(&state, &session, &current, field, message).await,
    };
    // A signed-in request always comes with a stored session.
    let current_id = current_session_id(&session).ok_or(AppError::NotFound)?;
    let (user, public_url) = (current.user.clone(), state.settings.public_url());
    let turn_on = move |conn: &mut _| {
        rules::enable(
            conn,
            &user,
            &secret,
            step,
            &current_id,
            &public_url,
            &origin,
        )
    };
    let enabled = state.db(move |conn| Ok(turn_on(conn)?)).await?;
    session.remove(keys::ENROL_SECRET);
    let Some(enabled) = enabled else {
        flash(&session, "info", "Two-factor authentication is already on.");
        return Ok(see_other("/account/2fa"));
    };
    turned_on(&state, &session, &current, &form.form_id, enabled).await
}

/// Once it is on: this browser takes a new key (a copy of its cookie dies with the other
/// sessions), and the recovery codes are shown once.
async fn turned_on(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    form_id: &str,
    enabled: rules::Enabled,
) -> AppResult<HttpResponse> {
    if let Some(born) = enabled.kept_session_born {
        rekey(session, born)?;
    }
    let (said, codes) = (enabled.said(), enabled.codes);
    show_codes(state, session, current, form_id, said, codes).await
}

/// The page showing codes made just now, once: the form that made them (`form_id`)
/// acts no second time.
async fn show_codes(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    form_id: &str,
    said: String,
    codes: Vec<String>,
) -> AppResult<HttpResponse> {
    once::mark_sent(session, form_id);
    state.mail.wake();
    flash(session, "success", said);
    let view = page(state, session, current, codes, FieldErrors::default()).await?;
    Ok(render_status(StatusCode::OK, &view))
}

const ON_ALREADY: &str = "Two-factor authentication is on: that form was sent again, and changed nothing the second time.";
const CODES_ALREADY: &str = "That form was sent again, so no other codes were made: the recovery codes made the first time are the ones that work.";

/// A form whose answer showed codes once, sent again (a refresh of that answer, or Back
/// then Forward): it acts no second time, where it made codes that voided the ones just
/// saved, or said the enrolment code did not match.
fn sent_again(session: &Session, form_id: &str, said: &str) -> Option<HttpResponse> {
    once::already_sent(session, form_id).then(|| {
        flash(session, "info", said);
        see_other("/account/2fa")
    })
}

const NO_MATCH: &str =
    "That code does not match. Check the app's clock, then try the current code.";

/// The secret being enrolled and the step of the code typed for it, or what to say.
fn enrolment_step(session: &Session, typed: &str) -> Result<(String, i64), &'static str> {
    let Answer::Code(code) = rules::read_answer(typed) else {
        return Err("Enter the six-digit code your authenticator app shows.");
    };
    let secret = session.get::<String>(keys::ENROL_SECRET).ok().flatten();
    let Some(secret) = secret else {
        return Err(NO_MATCH);
    };
    match totp::matched_step(&secret, &code, totp::now()) {
        Some(step) => Ok((secret, step)),
        None => Err(NO_MATCH),
    }
}

/// The enrolment's secret and the step its code matched, once the code (and, past a
/// recent sign-in, the password) is right; else the field to fix and why.
async fn checked_enrolment(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    origin: &Origin,
    form: &CodeForm,
) -> AppResult<Result<(String, i64), (&'static str, &'static str)>> {
    let found = match enrolment_step(session, &form.code) {
        Ok(found) => found,
        Err(message) => return Ok(Err(("code", message))),
    };
    if !signed_in_recently(state, session)
        && let Err(refused) = reconfirm(state, current, origin, form).await?
    {
        return Ok(Err(refused));
    }
    Ok(Ok(found))
}

/// The password again, for turning two-factor on past a recent sign-in.
async fn reconfirm(
    state: &AppState,
    current: &CurrentUser,
    origin: &Origin,
    form: &CodeForm,
) -> AppResult<Result<(), (&'static str, &'static str)>> {
    if form.password.is_empty() {
        return Ok(Err(("password", PASSWORD_NEEDED)));
    }
    let password_only = CodeForm {
        code: String::new(),
        password: form.password.clone(),
        form_id: String::new(),
    };
    prove(state, current, origin, &password_only, "enable").await
}

/// Reserves a second-factor attempt, then checks the password when `password` is given
/// and the code when `code` is given; every wrong code is audited. The attempt is given
/// back only when all that was given was right.
async fn prove(
    state: &AppState,
    current: &CurrentUser,
    origin: &Origin,
    form: &CodeForm,
    purpose: &'static str,
) -> AppResult<Result<(), (&'static str, &'static str)>> {
    let (limits, user, o) = (state.throttle, current.user.clone(), origin.clone());
    let hashes = !form.password.is_empty();
    let reserve = move |conn: &mut DbConnection| {
        db::write_tx(conn, |conn| {
            reserve_code_attempt(conn, &limits, &user, &o, hashes)
        })
    };
    if hashes {
        state.hasher.refuse_if_full()?;
    }
    let reservation = state.db(reserve).await?.ok_or_else(throttled)?;
    if hashes {
        let stored = current.user.password_hash.clone();
        let admission = super::auth::admit(state, &reservation).await?;
        if !admission.verify(form.password.clone(), stored).await? {
            let purpose = password_purpose(purpose);
            super::account::wrong_password(state, current, purpose, origin).await;
            return Ok(Err(("password", NOT_YOUR_PASSWORD)));
        }
    }
    if rules::read_answer(&form.code) != Answer::Blank
        && !check_code(state, current, origin, &form.code, purpose).await?
    {
        let message = "That code is not right, or has been used already.";
        return Ok(Err(("code", message)));
    }
    state
        .db(move |conn| Ok(throttle::succeeded(conn, &reservation)?))
        .await?;
    Ok(Ok(()))
}

/// What a wrong password on this form was typed for, as the audit trail names it.
fn password_purpose(purpose: &str) -> PasswordPurpose {
    match purpose {
        "enable" => PasswordPurpose::TurnOnTwoFactor,
        "disable" => PasswordPurpose::TurnOffTwoFactor,
        _ => PasswordPurpose::MakeRecoveryCodes,
    }
}

/// Checks a code and audits its outcome, in one transaction.
async fn check_code(
    state: &AppState,
    current: &CurrentUser,
    origin: &Origin,
    code: &str,
    purpose: &'static str,
) -> AppResult<bool> {
    let (user, origin, code) = (current.user.clone(), origin.clone(), code.to_string());
    let outcome = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let outcome = totp::check(conn, &user.id, &code, totp::now())?;
                rules::record_outcome(conn, &user, &outcome, purpose, &origin)?;
                Ok::<_, AppError>(outcome)
            })
        })
        .await?;
    Ok(outcome.accepted())
}

/// Turns two-factor off: needs the password and a current code.
pub async fn disable(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    form: Form<CodeForm>,
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
    let (user, public_url) = (current.user.clone(), state.settings.public_url());
    let was_on = state
        .db(move |conn| Ok(rules::disable(conn, &user, &public_url, &origin)?))
        .await?;
    state.mail.wake();
    let (kind, said) = match was_on {
        true => ("success", "Two-factor authentication is off."),
        false => ("info", "Two-factor authentication was already off."),
    };
    flash(&session, kind, said);
    Ok(see_other("/account/2fa"))
}

/// New recovery codes (the old ones stop working): needs a current code or the password.
pub async fn regenerate_recovery_codes(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    form: Form<CodeForm>,
) -> AppResult<HttpResponse> {
    if let Some(back) = sent_again(&session, &form.form_id, CODES_ALREADY) {
        return Ok(back);
    }
    if form.password.is_empty() && rules::read_answer(&form.code) == Answer::Blank {
        let message = "Enter a code from your authenticator app, or your password.";
        return invalid(&state, &session, &current, "regenerate_code", message).await;
    }
    if !is_enrolled(&state, &current).await? {
        return Ok(see_other("/account/2fa"));
    }
    if let Err((field, message)) = prove(&state, &current, &origin, &form, "recovery_codes").await?
    {
        let field = regenerate_field(field);
        return invalid(&state, &session, &current, field, message).await;
    }
    let (user, url) = (current.user.clone(), state.settings.public_url());
    let made =
        move |conn: &mut DbConnection| rules::regenerate_recovery_codes(conn, &user, &url, &origin);
    let Some(codes) = state.db(move |conn| Ok(made(conn)?)).await? else {
        flash(&session, "info", "Two-factor authentication is off.");
        return Ok(see_other("/account/2fa"));
    };
    let said = "New recovery codes made. The old ones no longer work.".to_string();
    show_codes(&state, &session, &current, &form.form_id, said, codes).await
}

/// This form's fields have ids of their own on the page, which holds two forms.
fn regenerate_field(field: &'static str) -> &'static str {
    match field {
        "password" => "regenerate_password",
        _ => "regenerate_code",
    }
}

async fn is_enrolled(state: &AppState, current: &CurrentUser) -> AppResult<bool> {
    let user_id = current.user.id.clone();
    state
        .db(move |conn| Ok(rules::is_enrolled(conn, &user_id)?))
        .await
}

/// The account whose browser this is, for the "new sign-in" email: its device cookie
/// names the account and the password this sign-in checked (or is of the form from
/// before cookies named the password).
fn device_owner(req: &HttpRequest, key: &DeviceKey, pending: &PendingSignIn) -> Option<String> {
    device::read(req, key)
        .filter(|d| {
            d.user_id == pending.user_id
                && (d.credential.is_empty() || d.credential == pending.credential)
        })
        .map(|d| d.user_id)
}
