//! What a request may carry in its address and its form, checked once before any handler
//! reads it (`web::input_guard`): text is UTF-8 without control characters, and a form
//! is no larger than `MAX_FORM_BYTES`. A NUL byte would otherwise reach PostgreSQL, which
//! refuses it in text ("invalid byte sequence") with an error that surfaced as a 500, and
//! malformed UTF-8 would be decoded to U+FFFD and stored.

/// The largest form accepted: the largest is the invitation form with up to 500 addresses.
pub const MAX_FORM_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Bytes that are not UTF-8, raw or percent-encoded.
    NotUtf8,
    /// NUL or another control character (tab and line breaks are allowed in forms).
    ControlCharacter,
}

impl Refusal {
    /// The message the person sees, naming where the bad text was.
    pub fn message(self, place: &str) -> String {
        match self {
            Refusal::NotUtf8 => format!("The {place} is not valid UTF-8 text, so it was refused."),
            Refusal::ControlCharacter => format!(
                "The {place} contains a control character (such as a NUL byte), so it was refused."
            ),
        }
    }
}

/// Where the text comes from: a form allows tabs and line breaks (a textarea of
/// addresses), an address allows no control character at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Address,
    Form,
}

/// One decoded name or value.
pub fn check_text(bytes: &[u8], place: Place) -> Result<&str, Refusal> {
    let text = std::str::from_utf8(bytes).map_err(|_| Refusal::NotUtf8)?;
    let allowed = |c: char| place == Place::Form && matches!(c, '\t' | '\r' | '\n');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(Refusal::ControlCharacter);
    }
    Ok(text)
}

/// A URL path as sent (percent-encoded): every segment, decoded.
pub fn check_path(raw: &str) -> Result<(), Refusal> {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    check_text(&decoded, Place::Address).map(|_| ())
}

/// `application/x-www-form-urlencoded` text, a query string or a form body: every name
/// and value, decoded as the form parsers decode them (`+` is a space; a `%` that starts
/// no escape stays as it is).
pub fn check_urlencoded(input: &[u8], place: Place) -> Result<(), Refusal> {
    for pair in input.split(|&b| b == b'&') {
        for part in pair.splitn(2, |&b| b == b'=') {
            let spaced: Vec<u8> = part
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
            check_text(&decoded, place)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_forms_and_addresses_pass() {
        assert_eq!(
            check_urlencoded(
                b"emails=a%40b.c%0D%0Ad%40e.f&name=Caf%C3%A9+%F0%9F%98%80",
                Place::Form
            ),
            Ok(())
        );
        assert_eq!(
            check_urlencoded(b"q=100%&x=%zz&=&&", Place::Address),
            Ok(())
        );
        assert_eq!(check_path("/orgs/acme/users/0192%2Dab"), Ok(()));
        assert_eq!(
            check_text("\u{202E}é\u{FEFF}".as_bytes(), Place::Address),
            Ok("\u{202E}é\u{FEFF}")
        );
    }

    #[test]
    fn nul_and_control_characters_are_refused() {
        assert_eq!(
            check_path("/orgs/acme/users/%00"),
            Err(Refusal::ControlCharacter)
        );
        assert_eq!(
            check_urlencoded(b"org=%00", Place::Address),
            Err(Refusal::ControlCharacter)
        );
        assert_eq!(
            check_urlencoded(b"email=a%00b", Place::Form),
            Err(Refusal::ControlCharacter)
        );
        assert_eq!(
            check_urlencoded(b"a%1Bb=1", Place::Form),
            Err(Refusal::ControlCharacter)
        );
        assert_eq!(
            check_urlencoded(b"x=%C2%85", Place::Form),
            Err(Refusal::ControlCharacter)
        );
        // Line breaks are text in a form, not in an address.
        assert_eq!(
            check_urlencoded(b"next=%0D%0A", Place::Address),
            Err(Refusal::ControlCharacter)
        );
    }

    #[test]
    fn malformed_utf8_is_refused_raw_or_encoded() {
        assert_eq!(
            check_urlencoded(b"name=%FF%FE", Place::Form),
            Err(Refusal::NotUtf8)
        );
        assert_eq!(
            check_urlencoded(b"name=caf\xE9", Place::Form),
            Err(Refusal::NotUtf8)
        );
        assert_eq!(check_path("/orgs/%C3(/users"), Err(Refusal::NotUtf8));
    }
}
