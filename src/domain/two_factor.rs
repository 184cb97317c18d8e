//! Two-factor rules (RFC 6238 TOTP and recovery codes), without HTTP.
//!
//! - A code is accepted once: the account keeps the time step of the last accepted code,
//!   and only a strictly later step passes ([`is_fresh`], enforced by one conditional
//!   UPDATE so two requests carrying the same code cannot both pass).
//! - Recovery codes: [`RECOVERY_CODE_COUNT`] per account, shown once, kept as SHA-256
//!   (80 random bits each, so an unsalted fast hash is enough), each usable once;
//!   regenerating them voids the old ones.
//! - While enrolled, `users.auth_method` is [`AUTH_METHOD_TOTP`].
//!
//! Which step a code matches (±1 step of drift) is computed by `auth::totp`, which calls
//! [`redeem`] with it.

use rand::Rng;
use serde_json::json;

use crate::audit::{self, Event, Origin};
use crate::db::{self, DbConnection, sessions, two_factor, users, users::User};
use crate::domain::{notices, tokens};
use crate::mail::templates::SecurityChange;

pub const RECOVERY_CODE_COUNT: usize = 10;
pub const AUTH_METHOD_TOTP: &str = "password+totp";
pub const AUTH_METHOD_PASSWORD: &str = "password";

/// What was typed in the code field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Blank,
    /// Six digits (spaces removed): an authenticator's code.
    Code(String),
    /// Anything else of a recovery code's shape, normalized (lower case, no separators).
    RecoveryCode(String),
    /// Neither.
    Malformed,
}

const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const RECOVERY_LEN: usize = 16;

pub fn read_answer(input: &str) -> Answer {
    let squeezed: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if squeezed.is_empty() {
        return Answer::Blank;
    }
    if squeezed.len() == 6 && squeezed.chars().all(|c| c.is_ascii_digit()) {
        return Answer::Code(squeezed);
    }
    let lower = squeezed.to_ascii_lowercase();
    if lower.len() == RECOVERY_LEN && lower.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)) {
        return Answer::RecoveryCode(lower);
    }
    Answer::Malformed
}

/// Ten fresh codes, as shown to the person: `abcd-efgh-jkmn-pqrs` (16 characters of a
/// 31-letter alphabet without look-alikes: about 79 bits each), from the OS's generator.
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let raw: Vec<u8> = (0..RECOVERY_LEN)
                .map(|_| RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())])
                .collect();
            raw.chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What is stored for a recovery code (any spelling the person may type hashes alike).
pub fn recovery_code_hash(code: &str) -> Option<String> {
    match read_answer(code) {
        Answer::RecoveryCode(normalized) => Some(tokens::hash(&normalized)),
        _ => None,
    }
}

/// A step is usable only when it is later than the last one the account used.
pub fn is_fresh(last_used: Option<i64>, step: i64) -> bool {
    last_used.is_none_or(|last| step > last)
}

/// What an answer to "your code?" came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A current code, for a step not used before (now recorded as used).
    Code { step: i64 },
    /// An unused recovery code (now used up); `left` unused ones remain.
    RecoveryCode { left: i64 },
    /// A right code for a step already used.
    Replayed,
    /// Wrong, malformed, blank, or the account has no second factor.
    Wrong,
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        matches!(self, Outcome::Code { .. } | Outcome::RecoveryCode { .. })
    }
}

/// Applies the single-use rules to an answer. `matched_step` is the step a six-digit code
/// matched within the allowed drift (None when it matched none). Call it inside the
/// transaction that records the outcome, with the credential held (`totp::check` holds it
/// before reading it).
pub fn redeem(
    conn: &mut DbConnection,
    user_id: &str,
    answer: &Answer,
    matched_step: Option<i64>,
) -> diesel::QueryResult<Outcome> {
    match answer {
        Answer::Code(_) => {
            let Some(step) = matched_step else {
                return Ok(Outcome::Wrong);
            };
            if two_factor::advance_step(conn, user_id, step)? {
                Ok(Outcome::Code { step })
            } else {
                Ok(Outcome::Replayed)
            }
        }
        Answer::RecoveryCode(normalized) => {
            let hash = tokens::hash(normalized);
            if two_factor::use_recovery_code(conn, user_id, &hash, db::now())? {
                let left = two_factor::unused_recovery_codes(conn, user_id)?;
                Ok(Outcome::RecoveryCode { left })
            } else {
                Ok(Outcome::Wrong)
            }
        }
        Answer::Blank | Answer::Malformed => Ok(Outcome::Wrong),
    }
}

fn event(action: &'static str, user: &User, origin: &Origin) -> Event {
    Event::new(action, origin)
        .actor(&user.id, &user.email)
        .target("user", &user.id, &user.email)
}

/// What turning two-factor on gives back: the recovery codes to show once, and how many
/// other sessions of the account it ended.
pub struct Enabled {
    pub codes: Vec<String>,
    pub other_sessions_ended: usize,
    /// When the session kept was made: its new key keeps it (`web::extract::rekey`).
    pub kept_session_born: Option<chrono::NaiveDateTime>,
}

impl Enabled {
    /// What the page says once it is on.
    pub fn said(&self) -> String {
        match self.other_sessions_ended {
            0 => "Two-factor authentication is on.".into(),
            1 => "Two-factor authentication is on. 1 other browser was signed out.".into(),
            n => format!("Two-factor authentication is on. {n} other browsers were signed out."),
        }
    }
}

/// Turns two-factor on with `secret`, whose code for `step` the person just typed:
/// stores the secret (that step counts as used), new recovery codes and the auth method,
/// and ends every other session of the account (`current_session_id` is kept), with its
/// audit event, in one transaction. A session signed in with the password alone, perhaps
/// by whoever learnt it, would otherwise live on past the second factor meant to shut it
/// out, and pass the organization's two-factor policy, which asks only whether the
/// account is enrolled.
pub fn enable(
    conn: &mut DbConnection,
    user: &User,
    secret: &str,
    step: i64,
    current_session_id: &str,
    public_url: &str,
    origin: &Origin,
) -> diesel::QueryResult<Option<Enabled>> {
    let codes = new_recovery_codes();
    let hashes: Vec<String> = codes.iter().filter_map(|c| recovery_code_hash(c)).collect();
    db::write_tx(conn, |conn| {
        // Two enrolments take turns on the account (as a reset of the second factor
        // does): at once on PostgreSQL both found no credential and the second insert
        // failed, a 500. No credential exists yet, so no sign-in's code check holds one.
        users::lock(conn, &user.id)?;
        if two_factor::find(conn, &user.id)?.is_some() {
            return Ok(None);
        }
        let now = db::now();
        two_factor::insert(conn, &user.id, secret, now, step)?;
        two_factor::replace_recovery_codes(conn, &user.id, &hashes, now)?;
        two_factor::set_auth_method(conn, &user.id, AUTH_METHOD_TOTP)?;
        let ended = sessions::delete_for_user_except(conn, &user.id, current_session_id)?;
        let on = SecurityChange::TwoFactorOn;
        notices::tell_owner(conn, &user.email, &user.first_name, on, public_url)?;
        let details = json!({ "other_sessions_ended": ended });
        audit::record(
            conn,
            &event("auth.2fa_enabled", user, origin).details(details),
        )?;
        let kept_session_born =
            sessions::find(conn, current_session_id)?.map(|kept| kept.created_at);
        Ok(Some(Enabled {
            codes,
            other_sessions_ended: ended,
            kept_session_born,
        }))
    })
}

/// Turns two-factor off (the caller has checked the password and a current code).
/// Answers whether it was on: a reset may have turned it off meanwhile.
pub fn disable(
    conn: &mut DbConnection,
    user: &User,
    public_url: &str,
    origin: &Origin,
) -> diesel::QueryResult<bool> {
    db::write_tx(conn, |conn| {
        if !two_factor::hold(conn, &user.id)? {
            return Ok(false);
        }
        two_factor::delete(conn, &user.id)?;
        two_factor::set_auth_method(conn, &user.id, AUTH_METHOD_PASSWORD)?;
        let off = SecurityChange::TwoFactorOff;
        notices::tell_owner(conn, &user.email, &user.first_name, off, public_url)?;
        audit::record(conn, &event("auth.2fa_disabled", user, origin))?;
        Ok(true)
    })
}

/// New recovery codes; the old ones stop working. Answers the codes to show once, or
/// `None` when two-factor is off by now.
pub fn regenerate_recovery_codes(
    conn: &mut DbConnection,
    user: &User,
    public_url: &str,
    origin: &Origin,
) -> diesel::QueryResult<Option<Vec<String>>> {
    let codes = new_recovery_codes();
    let hashes: Vec<String> = codes.iter().filter_map(|c| recovery_code_hash(c)).collect();
    db::write_tx(conn, |conn| {
        // Turned off (or reset) since the request proved itself: no codes for nothing.
        if !two_factor::hold(conn, &user.id)? {
            return Ok(None);
        }
        two_factor::replace_recovery_codes(conn, &user.id, &hashes, db::now())?;
        let made = SecurityChange::RecoveryCodesMade;
        notices::tell_owner(conn, &user.email, &user.first_name, made, public_url)?;
        audit::record(
            conn,
            &event("auth.2fa_recovery_codes_regenerated", user, origin),
        )?;
        Ok(Some(codes))
    })
}

/// The audit event of a finished second sign-in step, or of a refused code.
/// `purpose` says what the code was for (`sign_in`, `disable`, `recovery_codes`).
pub fn record_outcome(
    conn: &mut DbConnection,
    user: &User,
    outcome: &Outcome,
    purpose: &str,
    origin: &Origin,
) -> diesel::QueryResult<()> {
    let e = match outcome {
        Outcome::Code { .. } if purpose == "sign_in" => event("auth.login_succeeded", user, origin)
            .details(serde_json::json!({ "second_factor": "totp" })),
        Outcome::Code { .. } => return Ok(()),
        Outcome::RecoveryCode { left } => event("auth.recovery_code_used", user, origin)
            .details(serde_json::json!({ "purpose": purpose, "recovery_codes_left": left })),
        Outcome::Replayed => event("auth.2fa_failed", user, origin)
            .details(serde_json::json!({ "purpose": purpose, "reason": "code already used" })),
        Outcome::Wrong => event("auth.2fa_failed", user, origin)
            .details(serde_json::json!({ "purpose": purpose, "reason": "wrong code" })),
    };
    audit::record(conn, &e)
}

/// One `auth.2fa_throttled` event per window, at its first refusal (as for passwords).
pub fn record_throttled(
    conn: &mut DbConnection,
    user: &User,
    window_ends_at: chrono::NaiveDateTime,
    origin: &Origin,
) -> diesel::QueryResult<()> {
    audit::record(
        conn,
        &Event::new("auth.2fa_throttled", origin)
            .target("user", &user.id, &user.email)
            .details(serde_json::json!({
                "window_ends_at": super::timefmt::iso_time(window_ends_at),
                "aggregated": "first refusal of this window; further refusals are counted in the throttle table",
            })),
    )
}

/// How the Users tab and the profile name an account's sign-in method.
pub fn auth_method_label(method: &str) -> &str {
    match method {
        AUTH_METHOD_PASSWORD => "Password",
        AUTH_METHOD_TOTP => "Password + TOTP",
        other => other,
    }
}

/// Whether the account has two-factor turned on.
pub fn is_enrolled(conn: &mut DbConnection, user_id: &str) -> diesel::QueryResult<bool> {
    Ok(two_factor::find(conn, user_id)?.is_some())
}

/// The unused recovery codes of an account with two-factor on; `None` when it is off.
pub fn recovery_codes_left(
    conn: &mut DbConnection,
    user_id: &str,
) -> diesel::QueryResult<Option<i64>> {
    match two_factor::find(conn, user_id)? {
        Some(_) => two_factor::unused_recovery_codes(conn, user_id).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_shape() {
        assert_eq!(read_answer("  "), Answer::Blank);
        assert_eq!(read_answer("123 456"), Answer::Code("123456".into()));
        assert_eq!(read_answer("12345"), Answer::Malformed);
        assert_eq!(read_answer("1234567"), Answer::Malformed);
        let code = &new_recovery_codes()[0];
        assert_eq!(code.len(), 19);
        let Answer::RecoveryCode(n) = read_answer(&code.to_uppercase()) else {
            panic!("{code} reads as a recovery code");
        };
        assert_eq!(n, code.replace('-', ""));
        assert_eq!(read_answer("not a code"), Answer::Malformed);
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_hashed_alike_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODE_COUNT);
        let h = recovery_code_hash(&codes[0]).unwrap();
        assert_eq!(h.len(), 64);
        assert_eq!(
            recovery_code_hash(&codes[0].replace('-', " ").to_uppercase()),
            Some(h)
        );
    }

    #[test]
    fn only_a_later_step_is_fresh() {
        assert!(is_fresh(None, 0));
        assert!(is_fresh(Some(10), 11));
        assert!(!is_fresh(Some(10), 10));
        assert!(!is_fresh(Some(10), 9));
    }
}
