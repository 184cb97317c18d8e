//! What a signed-in person does to their own account.

use super::FieldErrors;
use super::password::validate_new;
use crate::audit::{self, Event, Origin};
use crate::db::{self, DbConnection, sessions, users};

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

/// Stores the new hash and ends every session of the account, in one transaction with
/// its audit event. The caller signs the current browser in again afterwards.
pub fn change_password(
    conn: &mut DbConnection,
    user: &users::User,
    new_hash: &str,
    origin: &Origin,
) -> diesel::QueryResult<usize> {
    db::write_tx(conn, |conn| {
        users::set_password(conn, &user.id, new_hash)?;
        let ended = sessions::delete_for_user(conn, &user.id)?;
        audit::record(
            conn,
            &Event::new("account.password_changed", origin)
                .actor(&user.id, &user.email)
                .target("user", &user.id, &user.email)
                .details(serde_json::json!({ "sessions_ended": ended })),
        )?;
        Ok(ended)
    })
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
