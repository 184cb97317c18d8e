//! RFC 6238 codes (`totp-rs`: SHA-1, 6 digits, 30 s steps, ±1 step of drift), the
//! enrolment QR code (SVG, server-side) and checking an answer against an account.
//! The single-use rules live in `domain::two_factor`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::db::{DbConnection, two_factor};
use crate::domain::two_factor::{Answer, Outcome, is_fresh, read_answer, redeem};

pub const ISSUER: &str = "Portcullis";
/// Steps of clock drift accepted on either side of the current one.
pub const SKEW: u16 = 1;
pub const STEP_SECS: u64 = 30;

/// A new shared secret: 20 bytes (160 bits, RFC 4226's recommendation) from the OS, base32.
pub fn new_secret() -> String {
    let mut bytes = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::from(bytes).to_base32()
}

fn totp(secret: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret).ok()?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(SKEW)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account.replace(':', ""))
        .build()
        .ok()
}

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// The time step a six-digit code matches at `unix_time`, within ±[`SKEW`] steps.
pub fn matched_step(secret: &str, code: &str, unix_time: u64) -> Option<i64> {
    let step = totp(secret, "")?.check(code, unix_time)?;
    i64::try_from(step).ok()
}

/// The code an authenticator shows at `unix_time` (tests and the browser journeys).
pub fn code_at(secret: &str, unix_time: u64) -> String {
    totp(secret, "")
        .map(|t| t.generate(unix_time).to_string())
        .unwrap_or_default()
}

/// `otpauth://totp/Portcullis:email?secret=...&issuer=Portcullis`, what the QR code holds.
pub fn otpauth_url(secret: &str, account: &str) -> String {
    totp(secret, account)
        .and_then(|t| t.to_url().ok())
        .unwrap_or_default()
}

/// The QR code of `text` as an SVG image in a `data:` URL, for `<img src>`: drawn on the
/// server, no script, allowed by the CSP's `img-src 'self' data:`.
pub fn qr_data_url(text: &str) -> String {
    let svg = match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => return String::new(),
    };
    format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg))
}

/// Checks what was typed against the account's second factor at `unix_time`, and uses
/// it up when right (the step, or the recovery code). Call inside a write transaction.
pub fn check(
    conn: &mut DbConnection,
    user_id: &str,
    input: &str,
    unix_time: u64,
) -> diesel::QueryResult<Outcome> {
    // Held before it is read (`two_factor::hold`): a reset or a turning off that commits
    // meanwhile is waited out, not checked against.
    if !two_factor::hold(conn, user_id)? {
        return Ok(Outcome::Wrong);
    }
    let Some(credential) = two_factor::find(conn, user_id)? else {
        return Ok(Outcome::Wrong);
    };
    let answer = read_answer(input);
    let step = match &answer {
        Answer::Code(code) => matched_step(&credential.secret, code, unix_time),
        _ => None,
    };
    if let Some(step) = step
        && !is_fresh(credential.last_used_step, step)
    {
        return Ok(Outcome::Replayed);
    }
    redeem(conn, user_id, &answer, step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{self, two_factor, users};
    use crate::domain::two_factor::{self as rules, Outcome};
    use diesel::Connection;

    const T: u64 = 1_800_000_015; // inside step 60_000_000

    fn conn_with_user() -> (DbConnection, users::User) {
        let mut conn =
            DbConnection::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
        db::migrate(&mut conn).unwrap();
        let id = db::new_id();
        users::insert(
            &mut conn,
            &users::NewUser {
                id: &id,
                email: "t@example.com",
                first_name: "T",
                last_name: "F",
                password_hash: None,
                platform_role: "none",
                status: "active",
                auth_method: "password",
                created_at: db::now(),
                last_active_at: None,
            },
        )
        .unwrap();
        let user = users::find(&mut conn, &id).unwrap().unwrap();
        (conn, user)
    }

    fn enrolled() -> (DbConnection, users::User, String, Vec<String>) {
        let (mut conn, user) = conn_with_user();
        let secret = new_secret();
        // Enrolled with the code of an earlier step.
        let step = matched_step(&secret, &code_at(&secret, T - 300), T - 300).unwrap();
        let codes = rules::enable(&mut conn, &user, &secret, step, "", "", &Default::default())
            .unwrap()
            .unwrap()
            .codes;
        let user = users::find(&mut conn, &user.id).unwrap().unwrap();
        (conn, user, secret, codes)
    }

    #[test]
    fn codes_match_their_step_with_one_step_of_drift() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let step = (T / STEP_SECS) as i64;
        assert_eq!(matched_step(&secret, &code_at(&secret, T), T), Some(step));
        assert_eq!(
            matched_step(&secret, &code_at(&secret, T - 30), T),
            Some(step - 1)
        );
        assert_eq!(
            matched_step(&secret, &code_at(&secret, T + 30), T),
            Some(step + 1)
        );
        assert_eq!(matched_step(&secret, &code_at(&secret, T - 60), T), None);
        assert_eq!(matched_step(&secret, &code_at(&secret, T + 60), T), None);
        assert!(otpauth_url(&secret, "a@b.c").starts_with("otpauth://totp/Portcullis:a%40b.c?"));
        assert!(qr_data_url("otpauth://totp/x").starts_with("data:image/svg+xml;base64,"));
    }

    #[test]
    fn enrolment_sets_the_auth_method() {
        let (_, user, _, codes) = enrolled();
        assert_eq!(user.auth_method, rules::AUTH_METHOD_TOTP);
        assert_eq!(codes.len(), rules::RECOVERY_CODE_COUNT);
    }

    #[test]
    fn a_wrong_code_is_refused() {
        let (mut conn, user, secret, _) = enrolled();
        let right = code_at(&secret, T);
        let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert_eq!(
            check(&mut conn, &user.id, &wrong, T).unwrap(),
            Outcome::Wrong
        );
        assert_eq!(check(&mut conn, &user.id, "", T).unwrap(), Outcome::Wrong);
        assert_eq!(
            check(&mut conn, &user.id, "abc", T).unwrap(),
            Outcome::Wrong
        );
    }

    #[test]
    fn a_code_works_once_and_an_earlier_step_is_then_refused() {
        let (mut conn, user, secret, _) = enrolled();
        let code = code_at(&secret, T);
        let step = (T / STEP_SECS) as i64;
        assert_eq!(
            check(&mut conn, &user.id, &code, T).unwrap(),
            Outcome::Code { step }
        );
        assert_eq!(
            check(&mut conn, &user.id, &code, T).unwrap(),
            Outcome::Replayed
        );
        // The previous step's code is still within drift, but older than the one used.
        let older = code_at(&secret, T - 30);
        assert_eq!(
            check(&mut conn, &user.id, &older, T).unwrap(),
            Outcome::Replayed
        );
        // The next step's code is fine.
        let next = code_at(&secret, T + 30);
        assert_eq!(
            check(&mut conn, &user.id, &next, T + 30).unwrap(),
            Outcome::Code { step: step + 1 }
        );
    }

    #[test]
    fn drift_of_one_step_either_way_is_accepted() {
        let (mut conn, user, secret, _) = enrolled();
        let step = (T / STEP_SECS) as i64;
        let behind = code_at(&secret, T - 30);
        assert_eq!(
            check(&mut conn, &user.id, &behind, T).unwrap(),
            Outcome::Code { step: step - 1 }
        );
        let ahead = code_at(&secret, T + 30);
        assert_eq!(
            check(&mut conn, &user.id, &ahead, T).unwrap(),
            Outcome::Code { step: step + 1 }
        );
        let far = code_at(&secret, T + 90);
        assert_eq!(check(&mut conn, &user.id, &far, T).unwrap(), Outcome::Wrong);
    }

    #[test]
    fn a_recovery_code_works_once_and_regenerating_voids_the_old_ones() {
        let (mut conn, user, _, codes) = enrolled();
        assert_eq!(
            check(&mut conn, &user.id, &codes[0], T).unwrap(),
            Outcome::RecoveryCode { left: 9 }
        );
        assert_eq!(
            check(&mut conn, &user.id, &codes[0], T).unwrap(),
            Outcome::Wrong
        );
        let fresh = rules::regenerate_recovery_codes(&mut conn, &user, "", &Default::default())
            .unwrap()
            .expect("two-factor is on");
        assert_eq!(
            check(&mut conn, &user.id, &codes[1], T).unwrap(),
            Outcome::Wrong
        );
        assert_eq!(
            check(&mut conn, &user.id, &fresh[1].to_uppercase(), T).unwrap(),
            Outcome::RecoveryCode { left: 9 }
        );
    }

    #[test]
    fn without_enrolment_nothing_passes_and_disabling_forgets_the_secret() {
        let (mut conn, user, secret, codes) = enrolled();
        assert!(rules::disable(&mut conn, &user, "", &Default::default()).unwrap());
        // A second turning off (a reset came first, say) finds nothing to turn off.
        assert!(!rules::disable(&mut conn, &user, "", &Default::default()).unwrap());
        assert_eq!(
            check(&mut conn, &user.id, &code_at(&secret, T), T).unwrap(),
            Outcome::Wrong
        );
        assert_eq!(
            check(&mut conn, &user.id, &codes[2], T).unwrap(),
            Outcome::Wrong
        );
        let user = users::find(&mut conn, &user.id).unwrap().unwrap();
        assert_eq!(user.auth_method, rules::AUTH_METHOD_PASSWORD);
        // New recovery codes asked for by a request that proved itself before the second
        // factor went: none are made, for an account that has none.
        let codes = rules::regenerate_recovery_codes(&mut conn, &user, "", &Default::default());
        assert_eq!(codes.unwrap(), None);
        assert_eq!(
            two_factor::unused_recovery_codes(&mut conn, &user.id).unwrap(),
            0
        );
    }
}
