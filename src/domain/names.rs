// Defined with the user row in `db`, below this layer, because the row prints names too.
pub use crate::db::users::{full_name, sort_key};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("Enter a name.")]
    Empty,
    #[error("A name is at most 100 characters.")]
    TooLong,
    #[error("A name cannot contain control characters.")]
    Control,
}

/// A person's first or last name as typed, trimmed; required.
pub fn parse_name(raw: &str) -> Result<String, NameError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    if value.chars().count() > 100 {
        return Err(NameError::TooLong);
    }
    if value.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_name_skips_missing_parts() {
        assert_eq!(full_name("Ada", "Lovelace"), "Ada Lovelace");
        assert_eq!(full_name(" Ada ", ""), "Ada");
        assert_eq!(full_name("", ""), "");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Ada "), Ok("Ada".into()));
        assert_eq!(parse_name("   "), Err(NameError::Empty));
        assert_eq!(parse_name(&"x".repeat(101)), Err(NameError::TooLong));
        assert_eq!(parse_name("Ada\r\nBcc"), Err(NameError::Control));
    }
}
