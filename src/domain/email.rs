use std::fmt;

/// An email address, trimmed and lower-cased: the form stored and compared everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Enter an email address.")]
    Empty,
    #[error("An email address is at most 254 characters.")]
    TooLong,
    #[error("An email address needs one @ with a name before it and a domain after it.")]
    Shape,
    #[error("The domain part of the address is not valid.")]
    Domain,
    #[error(
        "An email address cannot contain spaces, quotes, angle brackets, control characters or invisible ones."
    )]
    Characters,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let value = raw.trim().to_lowercase();
        if value.is_empty() {
            return Err(EmailError::Empty);
        }
        if value.len() > 254 {
            return Err(EmailError::TooLong);
        }
        if value.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || super::names::turns_text(c)
                || "\"<>(),;:[]\\".contains(c)
        }) {
            return Err(EmailError::Characters);
        }
        let (local, domain) = value.split_once('@').ok_or(EmailError::Shape)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(EmailError::Shape);
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(EmailError::Shape);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(EmailError::Domain);
        }
        Ok(Email(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_spaces() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "alice@@example.com",
            "alice@exa_mple.com",
            "alice@-example.com",
            "<alice@example.com>",
            "alice@example.com\r\nBcc: x@y.z",
            ".alice@example.com",
            "admin\u{200B}@example.com",
            "\u{202E}moc.elpmaxe@ecila",
            "ad\u{FEFF}min@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn accepts_common_addresses() {
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "o'brien@example.ie",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }
}
