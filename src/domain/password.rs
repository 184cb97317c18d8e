#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Use at least 8 characters.")]
    TooShort,
    #[error("Use at most 128 characters.")]
    TooLong,
    #[error("The two passwords do not match.")]
    Mismatch,
}

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// Checks a new password and its confirmation; length counts characters, not bytes.
pub fn validate_new(password: &str, confirmation: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if len > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    if password != confirmation {
        return Err(PasswordError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds() {
        assert_eq!(validate_new("short", "short"), Err(PasswordError::TooShort));
        let long = "x".repeat(129);
        assert_eq!(validate_new(&long, &long), Err(PasswordError::TooLong));
        let max = "é".repeat(128);
        assert_eq!(validate_new(&max, &max), Ok(()));
    }

    #[test]
    fn confirmation_must_match() {
        assert_eq!(
            validate_new("correct horse", "correct house"),
            Err(PasswordError::Mismatch)
        );
    }
}
