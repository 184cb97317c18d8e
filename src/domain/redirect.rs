/// Accepts `next` only as a path on this site; anything that a browser could read as
/// another origin (`//evil`, `/\evil`, `https://evil`) falls back to `default`.
pub fn safe_next<'a>(next: Option<&'a str>, default: &'a str) -> &'a str {
    match next {
        Some(n) if is_local_path(n) => n,
        _ => default,
    }
}

fn is_local_path(candidate: &str) -> bool {
    candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.starts_with("/\\")
        && !candidate.chars().any(|c| c.is_control() || c == '\\')
        && candidate.len() <= 2048
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_kept() {
        assert_eq!(
            safe_next(Some("/orgs/acme/users?q=a"), "/"),
            "/orgs/acme/users?q=a"
        );
    }

    #[test]
    fn other_origins_fall_back() {
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "evil.example",
            "/x\r\nLocation: //evil",
            "",
        ] {
            assert_eq!(safe_next(Some(bad), "/orgs"), "/orgs", "{bad:?}");
        }
        assert_eq!(safe_next(None, "/orgs"), "/orgs");
    }
}
