#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("Use 2 to 63 characters: lower-case letters, digits and single dashes.")]
    Invalid,
}

/// An organization's URL name.
pub fn parse(raw: &str) -> Result<String, SlugError> {
    let value = raw.trim();
    let ok = (2..=63).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if ok {
        Ok(value.to_string())
    } else {
        Err(SlugError::Invalid)
    }
}

/// A slug suggested from a display name ("Acme Corp." -> "acme-corp").
pub fn from_name(name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(63).collect();
    let slug = slug.trim_end_matches('-').to_string();
    if slug.len() < 2 {
        "org".to_string()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        assert_eq!(from_name("Acme Corp."), "acme-corp");
        assert_eq!(from_name("  Été & co "), "t-co");
        assert_eq!(from_name("!"), "org");
    }

    #[test]
    fn slug_rules() {
        assert!(parse("acme-corp").is_ok());
        assert!(parse("Acme").is_err());
        assert!(parse("-acme").is_err());
        assert!(parse("a").is_err());
        assert!(parse("a--b").is_err());
    }
}
