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
        "An email address cannot contain spaces, quotes, angle brackets or control characters."
    )]
    Characters,
    #[error("An email address cannot contain invisible characters.")]
    Invisible,
    #[error(
        "An email address cannot mix alphabets within a word (a Cyrillic letter among Latin ones) or use full-width letters: type it in plain letters."
    )]
    Lookalike,
}

impl Email {
    /// An address entering the portal (invited, given to a new account, or sent by an
    /// identity provider as a new one): `parse`, and no invisible character that turns or
    /// hides text, so "admin\u{200B}@corp.io" cannot pass for "admin@corp.io". Addresses
    /// already stored are read with `parse` alone: an account made before this rule still
    /// signs in, resets its password and is found.
    pub fn parse_new(raw: &str) -> Result<Self, EmailError> {
        let email = Self::parse(raw)?;
        if email.0.chars().any(super::names::turns_text) {
            return Err(EmailError::Invisible);
        }
        if !email.0.is_ascii() && passes_for_another(&email.0) {
            return Err(EmailError::Lookalike);
        }
        Ok(email)
    }

    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let value = raw.trim().to_lowercase();
        if value.is_empty() {
            return Err(EmailError::Empty);
        }
        if value.len() > 254 {
            return Err(EmailError::TooLong);
        }
        if value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"<>(),;:[]\\".contains(c))
        {
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

/// Whether an address could pass for another in a member list or the audit trail: a
/// full-width or other compatibility form (`ｅxample`, which NFKC folds to `example`), or
/// a word mixing alphabets beyond what UTS #39 calls highly restrictive (a Cyrillic `а`
/// among Latin letters; Japanese kana with kanji, or Latin with either, stay allowed).
/// Words are the runs of letters and digits between `.`, `-`, `+`, `@` and the like.
fn passes_for_another(address: &str) -> bool {
    use unicode_security::{RestrictionLevel, RestrictionLevelDetection};
    !unicode_normalization::is_nfkc(address)
        || address
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .any(|word| !word.check_restriction_level(RestrictionLevel::HighlyRestrictive))
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
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_new_address_hides_no_text_and_a_stored_one_still_reads() {
        for hidden in [
            "admin\u{200B}@example.com",
            "ali\u{202E}ce@example.com",
            "ad\u{FEFF}min@example.com",
            "ad\u{2060}min@example.com",
        ] {
            assert_eq!(
                Email::parse_new(hidden),
                Err(EmailError::Invisible),
                "{hidden:?}"
            );
            assert!(Email::parse(hidden).is_ok(), "{hidden:?} as stored");
        }
        assert!(Email::parse_new("Ada@Example.com").is_ok());
    }

    #[test]
    fn a_new_address_cannot_pass_for_another_but_real_alphabets_pass() {
        for lookalike in [
            "\u{430}da@example.com",    // Cyrillic а in a Latin word
            "ada@ex\u{430}mple.com",    // … in the domain
            "ada@\u{ff45}xample.com",   // full-width ｅ
            "\u{ff41}da@example.com",   // full-width ａ
            "pay\u{3c1}al@example.com", // Greek ρ
        ] {
            assert_eq!(
                Email::parse_new(lookalike),
                Err(EmailError::Lookalike),
                "{lookalike:?}"
            );
            assert!(Email::parse(lookalike).is_ok(), "{lookalike:?} as stored");
        }
        for real in [
            "m\u{fc}ller@example.de",                              // müller
            "\u{438}\u{432}\u{430}\u{43d}@example.com",            // иван
            "\u{5c71}\u{7530}\u{305f}\u{308d}\u{3046}@example.jp", // 山田たろう
            "ada.lovelace+portal@example.com",
            "x-1_y@sub.example.co.uk",
        ] {
            assert!(Email::parse_new(real).is_ok(), "{real:?}");
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
