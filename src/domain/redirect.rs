/// Accepts `next` only as a path on this site; anything that a browser could read as
/// another origin (`//evil`, `/\evil`, `https://evil`) falls back to `default`.
pub fn safe_next<'a>(next: Option<&'a str>, default: &'a str) -> &'a str {
    match next {
        Some(n) if is_local_path(n) => n,
        _ => default,
    }
}

/// `next` when it is `list` itself or `list` with a query (the list as the person left
/// it: its filter, search and page); `list` otherwise, so a return never leads elsewhere.
pub fn back_to(list: &str, next: Option<&str>) -> String {
    let wanted = safe_next(next, "");
    match wanted.strip_prefix(list) {
        Some(rest) if rest.is_empty() || rest.starts_with('?') => wanted.to_string(),
        _ => list.to_string(),
    }
}

fn is_local_path(candidate: &str) -> bool {
    // ASCII only: a Location header holds no other byte (the redirect would be a 500
    // after the change it follows was made); our own links are percent-encoded.
    candidate.is_ascii()
        && candidate.starts_with('/')
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
            "/orgs?q=é",
            "",
        ] {
            assert_eq!(safe_next(Some(bad), "/orgs"), "/orgs", "{bad:?}");
        }
        assert_eq!(safe_next(None, "/orgs"), "/orgs");
    }

    #[test]
    fn a_return_leads_only_to_its_own_list() {
        let list = "/admin/users";
        assert_eq!(
            back_to(list, Some("/admin/users?q=ada")),
            "/admin/users?q=ada"
        );
        assert_eq!(back_to(list, Some("/admin/users")), "/admin/users");
        for elsewhere in [
            "/admin/users/u1/disable",
            "/admin/usersx",
            "/admin/orgs",
            "//evil.example/admin/users",
            "https://evil.example/admin/users",
            "/admin/users?q=\r\nSet-Cookie:x",
        ] {
            assert_eq!(back_to(list, Some(elsewhere)), list, "{elsewhere:?}");
        }
        assert_eq!(back_to(list, None), list);
    }
}
