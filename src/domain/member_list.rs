//! The Users tab: its query string read into a validated filter, and the page loaded.

use std::collections::HashMap;

use diesel::QueryResult;

use super::members::Actor;
use super::roles::Permission;
use super::timefmt;
use super::two_factor::{AUTH_METHOD_PASSWORD, AUTH_METHOD_TOTP};
use crate::db::groups::{self, Group};
use crate::db::member_counts;
use crate::db::memberships::{self, Cursor, ListFilter, MemberRow, Search, SortKey};
use crate::db::roles::{self, Role};
use crate::db::{self, DbConnection};

pub const MAX_SEARCH_CHARS: usize = 100;

/// Shown under the search box when a term is too short for the trigram index.
pub const SHORT_SEARCH_HINT: &str = "Fewer than 3 characters match only the start of an email or name; type 3 or more to match anywhere.";

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListParams {
    pub q: Option<String>,
    pub status: Option<String>,
    pub role: Option<String>,
    /// `password` or `totp`: how members sign in.
    pub auth: Option<String>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("That page link is no longer valid; showing the first page.")]
    BadCursor,
}

/// `sort` is a column name, with a leading `-` for descending order.
pub fn parse_sort(raw: Option<&str>) -> (SortKey, bool) {
    let raw = raw.unwrap_or("email").trim();
    let (descending, name) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let key = match name {
        "name" => SortKey::Name,
        "created" => SortKey::Created,
        "last_active" => SortKey::LastActive,
        _ => SortKey::Email,
    };
    (key, descending)
}

pub fn sort_param(key: SortKey, descending: bool) -> String {
    let name = match key {
        SortKey::Email => "email",
        SortKey::Name => "name",
        SortKey::Created => "created",
        SortKey::LastActive => "last_active",
    };
    if descending {
        format!("-{name}")
    } else {
        name.to_string()
    }
}

pub fn parse_search(raw: Option<&str>) -> Option<Search> {
    let term: String = raw?
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SEARCH_CHARS)
        .collect();
    match term.chars().count() {
        0 => None,
        1 | 2 => Some(Search::Prefix(term)),
        _ => Some(Search::Substring(term)),
    }
}

/// The Auth method filter: `password` or `totp`, as the `auth` parameter spells it.
/// `Err` for any other value, which the page ignores and says so.
pub fn parse_auth(raw: Option<&str>) -> Result<Option<&'static str>, &'static str> {
    match raw.map(str::trim).unwrap_or("") {
        "" => Ok(None),
        "password" => Ok(Some(AUTH_METHOD_PASSWORD)),
        "totp" => Ok(Some(AUTH_METHOD_TOTP)),
        _ => Err("There is no such auth method; showing every auth method."),
    }
}

/// Where the page starts: `Err` for a cursor parameter that could not be read.
pub type After = Result<Option<Cursor>, ListError>;

/// Builds the filter; a cursor that cannot be read (or does not fit the sort) is dropped
/// with a message rather than failing the page.
pub fn to_filter(
    params: &ListParams,
    role_id: Option<String>,
    after: After,
    page_size: i64,
) -> (ListFilter, Option<ListError>) {
    let (sort, descending) = parse_sort(params.sort.as_deref());
    let status = match params.status.as_deref() {
        Some("active") => Some("active".to_string()),
        Some("inactive") => Some("inactive".to_string()),
        _ => None,
    };
    let mut problem = None;
    let after = match after {
        Ok(None) => None,
        Ok(Some(cursor)) if cursor_fits(&cursor, sort) => Some(cursor),
        _ => {
            problem = Some(ListError::BadCursor);
            None
        }
    };
    (
        ListFilter {
            search: parse_search(params.q.as_deref()),
            status,
            role_id,
            auth_method: parse_auth(params.auth.as_deref())
                .ok()
                .flatten()
                .map(str::to_string),
            sort,
            descending,
            after,
            limit: page_size + 1,
        },
        problem,
    )
}

/// Longest sort key and user id a cursor may carry: an email or name, and an id.
const MAX_CURSOR_KEY: usize = 400;
const MAX_CURSOR_ID: usize = 64;

fn cursor_fits(cursor: &Cursor, sort: SortKey) -> bool {
    if cursor.key.len() > MAX_CURSOR_KEY || cursor.user_id.len() > MAX_CURSOR_ID {
        return false;
    }
    match sort {
        SortKey::Created | SortKey::LastActive => chrono::NaiveDateTime::parse_from_str(
            &cursor.key,
            crate::db::memberships::TIMESTAMP_CURSOR_FORMAT,
        )
        .is_ok(),
        SortKey::Email | SortKey::Name => true,
    }
}

/// A row of the Users tab, ready to print.
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub active: bool,
    pub role_key: String,
    pub role_name: String,
    pub groups: String,
    pub created: String,
    pub created_exact: String,
    pub last_active: String,
    pub last_active_exact: String,
    pub auth_method: String,
    pub is_self: bool,
}

/// One page of the Users tab, with the filter it was asked for.
pub struct UsersList {
    pub rows: Vec<UserRow>,
    pub q: String,
    pub status: String,
    pub role: String,
    /// The Auth method filter as asked for (`password`, `totp`), empty for all.
    pub auth: String,
    /// The sort as the `sort` parameter spells it.
    pub sort: String,
    pub sort_key: SortKey,
    pub descending: bool,
    pub roles: Vec<Role>,
    /// Groups to offer the bulk "add to group", for those who may manage members.
    pub groups: Vec<Group>,
    pub active_count: String,
    pub inactive_count: String,
    pub can_manage: bool,
    pub notice: Option<String>,
    /// Why a short search only matched the start of emails and names.
    pub search_hint: Option<&'static str>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

/// Loads the page `params` ask for, starting `after` a cursor, `page_size` rows.
pub fn load_page(
    conn: &mut DbConnection,
    actor: &Actor,
    params: &ListParams,
    after: After,
    page_size: i64,
) -> QueryResult<UsersList> {
    let org_id = actor.org_id.as_str();
    let roles = roles::list(conn, org_id)?;
    let (role_id, unknown_role) = chosen_role(&roles, params.role.as_deref());
    let (filter, problem) = to_filter(params, role_id, after, page_size);
    let mut rows = memberships::list_page(conn, org_id, &filter)?;
    let has_next = rows.len() as i64 > page_size;
    rows.truncate(page_size as usize);
    let next = has_next
        .then(|| rows.last().map(|r| r.cursor(filter.sort)))
        .flatten();
    let can_manage = actor.standing().may(Permission::UsersManage);
    let counts = member_counts::by_status(conn, org_id)?;
    Ok(UsersList {
        rows: user_rows(conn, actor, rows)?,
        q: params.q.clone().unwrap_or_default(),
        status: params.status.clone().unwrap_or_default(),
        role: params.role.clone().unwrap_or_default(),
        auth: params.auth.clone().unwrap_or_default(),
        sort: sort_param(filter.sort, filter.descending),
        sort_key: filter.sort,
        descending: filter.descending,
        roles,
        groups: if can_manage {
            groups::list(conn, org_id)?
        } else {
            Vec::new()
        },
        active_count: timefmt::count(counts.active),
        inactive_count: timefmt::count(counts.inactive),
        can_manage,
        notice: problem
            .map(|p| p.to_string())
            .or(unknown_role)
            .or(parse_auth(params.auth.as_deref()).err().map(str::to_string)),
        search_hint: matches!(filter.search, Some(Search::Prefix(_))).then_some(SHORT_SEARCH_HINT),
        next,
    })
}

/// The role filter by id or key; an unknown one shows all roles and says so.
fn chosen_role(roles: &[Role], wanted: Option<&str>) -> (Option<String>, Option<String>) {
    match wanted.filter(|r| !r.is_empty()) {
        None => (None, None),
        Some(wanted) => match roles.iter().find(|r| r.id == wanted || r.key == wanted) {
            Some(role) => (Some(role.id.clone()), None),
            None => (
                None,
                Some("There is no such role; showing all roles.".to_string()),
            ),
        },
    }
}

fn user_rows(
    conn: &mut DbConnection,
    actor: &Actor,
    rows: Vec<MemberRow>,
) -> QueryResult<Vec<UserRow>> {
    let ids: Vec<String> = rows.iter().map(|r| r.user.id.clone()).collect();
    let mut groups_by_user: HashMap<String, Vec<String>> = HashMap::new();
    for (user_id, name) in groups::names_for_members(conn, &actor.org_id, &ids)? {
        groups_by_user.entry(user_id).or_default().push(name);
    }
    let now = db::now();
    Ok(rows
        .into_iter()
        .map(|r| {
            let last = r.membership.last_active();
            UserRow {
                groups: groups_by_user
                    .get(&r.user.id)
                    .map(|g| g.join(", "))
                    .unwrap_or_default(),
                is_self: r.user.id == actor.user_id,
                id: r.user.id.clone(),
                name: r.user.display_name(),
                email: r.user.email,
                active: r.membership.is_active(),
                status: r.membership.status,
                role_key: r.role.key,
                role_name: r.role.name,
                created: timefmt::date(r.membership.created_at),
                created_exact: timefmt::exact(r.membership.created_at),
                last_active: last_active(now, last),
                last_active_exact: last.map(timefmt::exact).unwrap_or_default(),
                auth_method: super::two_factor::auth_method_label(&r.user.auth_method).into(),
            }
        })
        .collect())
}

/// When the member was last active, as people read it.
pub(super) fn last_active(
    now: chrono::NaiveDateTime,
    last: Option<chrono::NaiveDateTime>,
) -> String {
    last.map(|t| timefmt::relative(now, t))
        .unwrap_or_else(|| "Never".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_parameter_round_trips() {
        for (raw, key, desc) in [
            ("email", SortKey::Email, false),
            ("-name", SortKey::Name, true),
            ("created", SortKey::Created, false),
            ("-last_active", SortKey::LastActive, true),
        ] {
            assert_eq!(parse_sort(Some(raw)), (key, desc));
            assert_eq!(sort_param(key, desc), raw);
        }
        assert_eq!(parse_sort(Some("bogus")), (SortKey::Email, false));
        assert_eq!(parse_sort(None), (SortKey::Email, false));
    }

    #[test]
    fn short_searches_are_prefixes_long_ones_substrings() {
        assert!(matches!(parse_search(Some(" Jo ")), Some(Search::Prefix(t)) if t == "jo"));
        assert!(matches!(parse_search(Some("LOVE")), Some(Search::Substring(t)) if t == "love"));
        assert!(parse_search(Some("   ")).is_none());
    }

    #[test]
    fn the_auth_filter_reads_password_or_totp_and_nothing_else() {
        assert_eq!(parse_auth(None), Ok(None));
        assert_eq!(parse_auth(Some(" ")), Ok(None));
        assert_eq!(parse_auth(Some("password")), Ok(Some(AUTH_METHOD_PASSWORD)));
        assert_eq!(parse_auth(Some("totp")), Ok(Some(AUTH_METHOD_TOTP)));
        assert!(parse_auth(Some("password+totp")).is_err());
        assert!(parse_auth(Some("' OR 1=1 --")).is_err());
        let params = ListParams {
            auth: Some("totp".into()),
            ..ListParams::default()
        };
        let (filter, _) = to_filter(&params, None, Ok(None), 50);
        assert_eq!(filter.auth_method.as_deref(), Some(AUTH_METHOD_TOTP));
    }

    #[test]
    fn cursors_keep_the_format_links_were_written_in() {
        let cursor = Cursor {
            key: "ada@example.com".into(),
            user_id: "u-1".into(),
        };
        // `["ada@example.com","u-1"]`, as the Users tab wrote it before web::paging.
        let written = "WyJhZGFAZXhhbXBsZS5jb20iLCJ1LTEiXQ";
        assert_eq!(crate::web::paging::Cursor(cursor.clone()).encode(), written);
        assert_eq!(
            crate::web::paging::Cursor::decode(written),
            Some(crate::web::paging::Cursor(cursor))
        );
    }

    #[test]
    fn a_cursor_that_does_not_fit_the_sort_is_dropped() {
        let params = ListParams {
            sort: Some("created".into()),
            ..ListParams::default()
        };
        let cursor = Cursor {
            key: "not a time".into(),
            user_id: "x".into(),
        };
        let (filter, problem) = to_filter(&params, None, Ok(Some(cursor)), 50);
        assert!(filter.after.is_none());
        assert_eq!(problem, Some(ListError::BadCursor));
    }
}
