//! What a signed-in person does to their own account.

use super::FieldErrors;
use super::password::validate_new;
use super::sessions::describe;
use super::timefmt;
use crate::audit::{self, Event, Origin};
use crate::db::{self, DbConnection, sessions, users};

/// One of the person's live sessions, as /account lists it.
pub struct SessionView {
    /// The stored id (a hash of the cookie's key, never the key itself).
    pub id: String,
    pub signed_in: String,
    pub last_seen: String,
    pub last_seen_exact: String,
    pub ip: String,
    pub browser: String,
    pub os: String,
    /// "Chrome on Linux", for the End button's accessible name.
    pub label: String,
    /// The session this page was requested with.
    pub current: bool,
}

/// What /account shows besides the password form.
pub struct Overview {
    pub sessions: Vec<SessionView>,
    pub signin_alerts: bool,
}

/// The account's live sessions (`current_id` marks the one asking) and its "new sign-in"
/// email setting.
pub fn overview(
    conn: &mut DbConnection,
    user_id: &str,
    current_id: Option<&str>,
) -> diesel::QueryResult<Overview> {
    let now = db::now();
    let rows = sessions::list_for_user(conn, user_id, now)?;
    let signin_alerts = users::signin_alerts(conn, user_id)?;
    let sessions = rows
        .into_iter()
        .map(|s| {
            let client = describe(s.user_agent.as_deref());
            SessionView {
                current: current_id == Some(s.id.as_str()),
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
        .collect();
    Ok(Overview {
        sessions,
        signin_alerts,
    })
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_confirm: String,
}

/// Checks the new password's shape before any hashing happens.
pub fn validate(form: &PasswordForm) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::default();
    if form.current_password.is_empty() {
        errors.add("current_password", "Enter your current password.");
    }
    errors.check(
        "password",
        validate_new(&form.password, &form.password_confirm),
    );
    if errors.is_empty() && form.password == form.current_password {
        errors.add(
            "password",
            "Choose a password different from the current one.",
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Replaces the password the caller just checked, ending every session of the account,
/// in one transaction with its audit event and a notice to the account's address (the
/// owner hears of it if it was someone who learnt the password). The caller signs the
/// current browser in again afterwards. Answers `None`, changing nothing, when the stored
/// password is no longer the one that was checked: a reset (or another change) came in
/// between, and must not be undone.
pub fn change_password(
    conn: &mut DbConnection,
    user: &users::User,
    new_hash: &str,
    public_url: &str,
    origin: &Origin,
) -> diesel::QueryResult<Option<usize>> {
    let Some(checked) = user.password_hash.as_deref() else {
        return Ok(None);
    };
    db::write_tx(conn, |conn| {
        if !users::replace_password(conn, &user.id, checked, new_hash)? {
            return Ok(None);
        }
        let ended = sessions::delete_for_user(conn, &user.id)?;
        let now = db::now();
        let notice = crate::mail::templates::PasswordChangedEmail {
            name: user.first_name.clone(),
            changed_at: now,
            reset_url: format!("{}/forgot-password", public_url.trim_end_matches('/')),
            by_reset_link: false,
        }
        .render()
        .map_err(|e| diesel::result::Error::SerializationError(e.into()))?;
        crate::mail::outbox::queue(conn, &user.email, &notice, None, now)?;
        audit::record(
            conn,
            &Event::new("account.password_changed", origin)
                .actor(&user.id, &user.email)
                .target("user", &user.id, &user.email)
                .details(serde_json::json!({ "sessions_ended": ended })),
        )?;
        Ok(Some(ended))
    })
}

/// What a signed-in person was doing when they gave a wrong current password.
#[derive(Debug, Clone, Copy)]
pub enum PasswordPurpose {
    ChangePassword,
    TurnOnTwoFactor,
    TurnOffTwoFactor,
    MakeRecoveryCodes,
    MakeApiToken,
}

/// A wrong current password from a signed-in session: someone holding a stolen session
/// guessing it, so it is traced as a wrong code is. The throttle that counts these
/// attempts bounds how many such events one session can write.
pub fn record_wrong_password(
    conn: &mut DbConnection,
    user: &users::User,
    purpose: PasswordPurpose,
    origin: &Origin,
) -> diesel::QueryResult<()> {
    let purpose = match purpose {
        PasswordPurpose::ChangePassword => "to change it",
        PasswordPurpose::TurnOnTwoFactor => "to turn on two-factor authentication",
        PasswordPurpose::TurnOffTwoFactor => "to turn off two-factor authentication",
        PasswordPurpose::MakeRecoveryCodes => "to make new recovery codes",
        PasswordPurpose::MakeApiToken => "to make an API token",
    };
    audit::record(
        conn,
        &Event::new("account.wrong_password", origin)
            .actor(&user.id, &user.email)
            .target("user", &user.id, &user.email)
            .details(serde_json::json!({ "purpose": purpose })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(current: &str, new: &str, confirm: &str) -> PasswordForm {
        PasswordForm {
            current_password: current.into(),
            password: new.into(),
            password_confirm: confirm.into(),
        }
    }

    #[test]
    fn new_passwords_are_checked_before_hashing() {
        assert!(validate(&form("old password", "new password 1", "new password 1")).is_ok());
        let errors = validate(&form("", "short", "short")).unwrap_err();
        assert_eq!(
            errors.get("current_password"),
            Some("Enter your current password.")
        );
        assert_eq!(errors.get("password"), Some("Use at least 8 characters."));
        let same = validate(&form("same password", "same password", "same password")).unwrap_err();
        assert!(same.get("password").unwrap().contains("different"));
        let mismatch =
            validate(&form("old password", "new password 1", "new password 2")).unwrap_err();
        assert_eq!(
            mismatch.get("password"),
            Some("The two passwords do not match.")
        );
    }
}
