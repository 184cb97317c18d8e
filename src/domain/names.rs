// Defined with the user row in `db`, below this layer, because the row prints names too.
pub use crate::db::users::{full_name, sort_key};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("Enter a name.")]
    Empty,
    #[error("A name is at most 100 characters.")]
    TooLong,
    #[error(
        "A name cannot contain control characters or invisible ones, such as a zero-width space or a mark that reverses text."
    )]
    Control,
}

/// A person's first or last name as typed, trimmed; required.
pub fn parse_name(raw: &str) -> Result<String, NameError> {
    parse_name_over(raw, None)
}

/// As [`parse_name`], for a name that replaces `stored`: the same name, sent back
/// unchanged by a form that edits something else, keeps the invisible characters it was
/// stored with before they were refused, so the rest of the form can still be saved.
pub fn parse_name_over(raw: &str, stored: Option<&str>) -> Result<String, NameError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    if value.chars().count() > 100 {
        return Err(NameError::TooLong);
    }
    if value.chars().any(char::is_control) || newly_hides_text(value, stored) {
        return Err(NameError::Control);
    }
    Ok(value.to_string())
}

/// [`hides_text`] for a name being given in place of `stored`: one already stored is not
/// checked again, so a thing named before a character joined the rule can still be
/// edited (its description, its role) without renaming it.
pub fn newly_hides_text(name: &str, stored: Option<&str>) -> bool {
    stored != Some(name) && hides_text(name)
}

/// What a form says at a name that [`newly_hides_text`].
pub const HIDES_TEXT: &str = "A name cannot contain control characters or invisible ones, such as a zero-width space or a mark that reverses text.";

/// Whether a name holds a control character or an invisible one that turns text: group,
/// pool, role, organization and token names are shown in lists, mails and the trail as
/// a person's name is, and "Admins\u{200B}" must not pass for "Admins".
pub fn hides_text(name: &str) -> bool {
    name.chars().any(|c| c.is_control() || turns_text(c))
}

/// Invisible characters that reorder or hide text (bidirectional marks, overrides and
/// isolates, the zero-width space, the word joiner and invisible operators, the soft
/// hyphen, the Hangul fillers): in a name shown in a mail or a list,
/// "Ada\u{202E}nimda" would read as someone else's. The zero-width joiners (U+200C,
/// U+200D) stay: Persian and Indic names are written with them.
pub(crate) fn turns_text(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_name_keeps_what_it_was_stored_with_and_a_new_one_does_not() {
        let stored = "Ops\u{200B}";
        assert!(!newly_hides_text(stored, Some(stored)));
        assert!(newly_hides_text(stored, None));
        assert!(newly_hides_text("Ops\u{2060}", Some(stored)));
        assert_eq!(
            parse_name_over(" Bo\u{00AD}b ", Some("Bo\u{00AD}b")).as_deref(),
            Ok("Bo\u{00AD}b")
        );
        assert_eq!(
            parse_name_over("Bo\u{00AD}b", Some("Bob")),
            Err(NameError::Control)
        );
        assert_eq!(
            parse_name_over("Bo\u{0007}b", Some("Bo\u{0007}b")),
            Err(NameError::Control),
            "control characters are refused whatever was stored"
        );
    }

    #[test]
    fn names_of_things_hide_no_text() {
        for hidden in [
            "Admins\u{200B}",
            "Ops\u{202E}spO",
            "\u{2066}Prod",
            "a\u{0007}b",
        ] {
            assert!(hides_text(hidden), "{hidden:?}");
        }
        for shown in ["Admins", "Prod EU", "گروه\u{200C}ها", "Équipe"] {
            assert!(!hides_text(shown), "{shown:?}");
        }
    }

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
        assert_eq!(parse_name("Ada\u{202E}nimda"), Err(NameError::Control));
        assert_eq!(parse_name("Ada\u{200B}"), Err(NameError::Control));
        assert_eq!(parse_name("Zoë Ōta-李"), Ok("Zoë Ōta-李".into()));
        assert_eq!(parse_name("مهر\u{200C}داد"), Ok("مهر\u{200C}داد".into()));
    }
}
