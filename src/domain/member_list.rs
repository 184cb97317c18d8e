//! The Users tab: its query string read into a validated filter, and the page loaded.

use std::collections::HashMap;

use diesel::QueryResult;

use super::members::Actor;
use super::policy::Standing;
use super::roles::Permission;
use super::timefmt;
use super::two_factor::{AUTH_METHOD_PASSWORD, AUTH_METHOD_TOTP};
use crate::db::groups::{self, GrantedRole, Group};
use crate::db::member_counts;
use crate::db::memberships::{self, Cursor, ListFilter, MemberRow, Search, SortKey};
use crate::db::roles::{self, Role};
use crate::db::{self, DbConnection};

pub use super::member_search::{MAX_SEARCH_CHARS, parse_search};

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
    /// The page starts after this row (the "Next page" link).
    pub cursor: Option<String>,
    /// The page ends before this row (the "Previous page" link).
    pub before: Option<String>,
    /// The position of the page's first row, 1-based, as the paging links carry it: only
    /// to print "51–100 of N", never to find rows (keyset paging needs no offset).
    pub start: Option<String>,
    /// `1`: only active members whose access ends within [`super::access_until::SOON_DAYS`].
    pub expiring: Option<String>,
}

impl ListParams {
    /// Whether the page searches for a term: then it may read much of the organization,
    /// where every other page reads at most a page of an index.
    pub fn searches(&self) -> bool {
        self.q.as_deref().is_some_and(|q| !q.trim().is_empty())
    }

    /// Whether the page may read more than a page of an index: a search, or a filter that
    /// no index serves in the page's order, so the walk tests row after row (how members
    /// sign in, whose access ends soon, a role in any order but by email or together with
    /// a status). Such a page is read off the worker's own thread.
    pub fn may_scan(&self) -> bool {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
        let by_email = parse_sort(self.sort.as_deref()).0 == SortKey::Email;
        self.searches()
            || set(&self.auth)
            || self.expiring.as_deref() == Some("1")
            || (set(&self.role) && (set(&self.status) || !by_email))
    }
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
            access_ends_by: (params.expiring.as_deref() == Some("1"))
                .then(|| db::now() + chrono::Duration::days(super::access_until::SOON_DAYS)),
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
        // No time the tab writes falls outside these years (`db::never()` is the epoch),
        // and PostgreSQL refuses one before 4713 BC as an error, not as no rows.
        SortKey::Created | SortKey::LastActive => chrono::NaiveDateTime::parse_from_str(
            &cursor.key,
            crate::db::memberships::TIMESTAMP_CURSOR_FORMAT,
        )
        .is_ok_and(|t| (1970..=9999).contains(&chrono::Datelike::year(&t))),
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
    pub role_id: String,
    /// The strongest role the member holds, directly or through a group or pool.
    pub effective: EffectiveRole,
    /// The actor may change this member's role in place (not themselves, nobody above).
    pub can_change_role: bool,
    /// The actor may deactivate, activate or remove this member (not themselves, nobody
    /// above): the row offers only what the rules would allow.
    pub can_act_on: bool,
    /// The actor may make this member an admin.
    pub can_make_admin: bool,
    /// The last day of access, when it is within [`super::access_until::SOON_DAYS`].
    pub access_ends: Option<String>,
}

/// The strongest of a member's roles and every place a role comes from, strongest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveRole {
    pub name: String,
    /// "Direct: Member", "Group Ops: Manager", "Pool prod: Engineer".
    pub sources: Vec<String>,
    /// The strongest role is not the direct one.
    pub raised: bool,
}

/// The effective role from the direct role and the roles granted by groups and pools:
/// the highest rank wins, the direct role on a tie, since it is the one people change.
pub fn effective_role(direct: (&str, i64), granted: &[&GrantedRole]) -> EffectiveRole {
    let mut sources: Vec<(i64, u8, String)> = vec![(direct.1, 0, format!("Direct: {}", direct.0))];
    let (mut best_name, mut best_rank) = (direct.0.to_string(), direct.1);
    for g in granted {
        let (order, kind) = if g.kind == "group" {
            (1, "Group")
        } else {
            (2, "Pool")
        };
        sources.push((
            g.role_rank,
            order,
            format!("{kind} {}: {}", g.source, g.role_name),
        ));
        if g.role_rank > best_rank {
            best_rank = g.role_rank;
            best_name = g.role_name.clone();
        }
    }
    sources.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    EffectiveRole {
        raised: best_rank > direct.1,
        name: best_name,
        sources: sources.into_iter().map(|(_, _, s)| s).collect(),
    }
}

/// Where a page sits in the list: "1–50 of 300", or "of many" when a filter makes the
/// total unknown without counting (the counters hold totals by status only).
pub fn range_text(start: Option<u64>, shown: usize, total: Option<i64>, more: bool) -> String {
    let Some(start) = start.filter(|_| shown > 0) else {
        return String::new();
    };
    let end = start + shown as u64 - 1;
    let of = match total {
        Some(n) => timefmt::count(n.max(end as i64)),
        None if !more => timefmt::count(end as i64),
        None => "many".to_string(),
    };
    format!("{start}–{end} of {of}")
}

/// One page of the Users tab, with the filter it was asked for.
pub struct UsersList {
    pub rows: Vec<UserRow>,
    pub q: String,
    pub status: String,
    pub role: String,
    /// The Auth method filter as asked for (`password`, `totp`), empty for all.
    pub auth: String,
    /// Only members whose access ends soon.
    pub expiring: bool,
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
    /// The bulk "Add to group…" is theirs to use (`groups.manage` with `users.manage`).
    pub can_manage_groups: bool,
    pub notice: Option<String>,
    /// Why a short search only matched the start of emails and names.
    pub search_hint: Option<&'static str>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
    /// Where the previous page ends, when there is one; `Some(None)` means the first page.
    pub previous: Option<Option<Cursor>>,
    /// The position of this page's first row, when known.
    pub start: Option<u64>,
    /// "1–50 of 300".
    pub range: String,
    /// The roles the actor may give, for the inline role change.
    pub grantable: Vec<Role>,
    /// The actor may invite people somewhere: organization-wide, or into a pool whose
    /// role lets them (a pool Manager), so the page offers "Invite people".
    pub may_invite: bool,
}

/// Loads the page `params` ask for, starting `after` a cursor (or, `backwards`, ending
/// before it), `page_size` rows.
pub fn load_page(
    conn: &mut DbConnection,
    actor: &Actor,
    params: &ListParams,
    (after, backwards): (After, bool),
    page_size: i64,
) -> QueryResult<UsersList> {
    let org_id = actor.org_id.as_str();
    let roles = roles::list(conn, org_id)?;
    let (role_id, unknown_role) = chosen_role(&roles, params.role.as_deref());
    let had_cursor = matches!(after, Ok(Some(_)));
    let (mut filter, problem) = to_filter(params, role_id, after, page_size);
    let backwards = backwards && filter.after.is_some();
    // Backwards is the same index walked the other way, then the rows put back in order.
    filter.descending ^= backwards;
    let mut rows = memberships::list_page_among(conn, org_id, &filter, None, &roles)?;
    filter.descending ^= backwards;
    let has_more = rows.len() as i64 > page_size;
    rows.truncate(page_size as usize);
    let (has_next, has_previous) = if backwards {
        rows.reverse();
        (true, has_more)
    } else {
        (has_more, had_cursor && filter.after.is_some())
    };
    let next = has_next
        .then(|| rows.last().map(|r| r.cursor(filter.sort)))
        .flatten();
    let previous = has_previous.then(|| {
        // The page just after the first one goes back to the first page itself.
        let start = parse_start(params.start.as_deref());
        match (backwards, start) {
            (false, Some(s)) if s <= page_size as u64 + 1 => None,
            _ => rows.first().map(|r| r.cursor(filter.sort)),
        }
    });
    let start = if filter.after.is_none() || (backwards && !has_more) {
        Some(1)
    } else {
        parse_start(params.start.as_deref())
    };
    let can_manage = actor.standing().may(Permission::UsersManage);
    let counts = member_counts::by_status(conn, org_id)?;
    let only_status =
        filter.search.is_none() && filter.role_id.is_none() && filter.auth_method.is_none();
    let total = only_status.then_some(match filter.status.as_deref() {
        Some("active") => counts.active,
        Some("inactive") => counts.inactive,
        _ => counts.members(),
    });
    Ok(UsersList {
        range: range_text(start, rows.len(), total, has_next),
        rows: user_rows(conn, actor, rows, may_grant_admin(actor, &roles))?,
        q: params.q.clone().unwrap_or_default(),
        status: params.status.clone().unwrap_or_default(),
        role: params.role.clone().unwrap_or_default(),
        auth: params.auth.clone().unwrap_or_default(),
        expiring: filter.access_ends_by.is_some(),
        sort: sort_param(filter.sort, filter.descending),
        sort_key: filter.sort,
        descending: filter.descending,
        grantable: super::policy::grantable(&actor.standing(), roles.clone()),
        may_invite: actor.standing().may(Permission::UsersInvite)
            || !super::pools::invitable_pools(conn, org_id, &actor.user_id)?.is_empty(),
        // The bulk "Add to group…" offers only the groups the actor may add people to.
        groups: if can_manage && actor.standing().may(Permission::GroupsManage) {
            let all = groups::list(conn, org_id)?;
            let reach = super::groups::manageable_among(actor, &roles, &all);
            all.into_iter().filter(|g| reach.contains(&g.id)).collect()
        } else {
            Vec::new()
        },
        roles,
        active_count: timefmt::count(counts.active),
        inactive_count: timefmt::count(counts.inactive),
        can_manage,
        can_manage_groups: can_manage && actor.standing().may(Permission::GroupsManage),
        notice: problem
            .map(|p| p.to_string())
            .or(unknown_role)
            .or(parse_auth(params.auth.as_deref()).err().map(str::to_string)),
        search_hint: matches!(filter.search, Some(Search::Prefix(_))).then_some(SHORT_SEARCH_HINT),
        next,
        previous,
        start,
    })
}

/// The `start` parameter: a position, or nothing for anything else.
pub fn parse_start(raw: Option<&str>) -> Option<u64> {
    raw?.trim().parse().ok().filter(|n| *n >= 1 && *n < 1 << 53)
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

/// Whether a page offers the actor to deactivate, activate or remove this member: not
/// themselves, and nobody above them (`members::check_target_rank`). The Users tab and
/// a profile ask the same.
pub(crate) fn may_act_on(actor: &Actor, is_self: bool, target: Standing) -> bool {
    actor.standing().may(Permission::UsersManage) && !is_self && actor.standing().may_act_on(target)
}

/// Whether the actor may give the Admin role (`members::promotable` asks the same).
pub(crate) fn may_grant_admin(actor: &Actor, roles: &[Role]) -> bool {
    roles
        .iter()
        .find(|r| r.key == super::roles::ADMIN)
        .is_some_and(|admin| actor.standing().may_grant(Standing::of_role(admin)))
}

fn user_rows(
    conn: &mut DbConnection,
    actor: &Actor,
    rows: Vec<MemberRow>,
    may_grant_admin: bool,
) -> QueryResult<Vec<UserRow>> {
    let ids: Vec<String> = rows.iter().map(|r| r.user.id.clone()).collect();
    let mut ties = groups::ties_of_members(conn, &actor.org_id, &ids)?;
    if ties.iter().any(|t| !t.is_group())
        && let Some(readable) = super::pools::readable_by(conn, actor)?
    {
        ties.retain(|t| t.is_group() || readable.contains(&t.source_id));
    }
    let mut groups_by_user: HashMap<&str, Vec<&str>> = HashMap::new();
    for tie in ties.iter().filter(|t| t.is_group()) {
        groups_by_user
            .entry(&tie.user_id)
            .or_default()
            .push(&tie.source);
    }
    for names in groups_by_user.values_mut() {
        names.sort_unstable();
    }
    let granted: Vec<GrantedRole> = ties.iter().filter_map(|t| t.granted()).collect();
    let standing = actor.standing();
    let now = db::now();
    Ok(rows
        .into_iter()
        .map(|r| {
            let last = r.membership.last_active();
            let theirs: Vec<&GrantedRole> =
                granted.iter().filter(|g| g.user_id == r.user.id).collect();
            // The rank rules weigh the direct role and group roles (pool roles act in
            // their subtree only), as `members::check_target_rank` does.
            let by_groups: Vec<(&str, i64)> = theirs
                .iter()
                .filter(|g| g.kind == "group")
                .map(|g| (g.role_permissions.as_str(), g.role_rank))
                .collect();
            let target = Standing::of((&r.role.permissions, r.role.rank), &by_groups, &[]);
            let is_self = r.user.id == actor.user_id;
            let until = r.membership.access_until;
            let can_act_on = may_act_on(actor, is_self, target);
            UserRow {
                access_ends: (r.membership.is_active()
                    && super::access_until::ends_soon(until, now))
                .then(|| until.map(|u| super::access_until::last_day(u).to_string()))
                .flatten(),
                groups: groups_by_user
                    .get(r.user.id.as_str())
                    .map(|g| g.join(", "))
                    .unwrap_or_default(),
                effective: effective_role((&r.role.name, r.role.rank), &theirs),
                can_change_role: can_act_on && standing.may_grant(Standing::of_role(&r.role)),
                can_act_on,
                can_make_admin: can_act_on && may_grant_admin && r.role.key != super::roles::ADMIN,
                is_self,
                id: r.user.id.clone(),
                name: r.user.display_name(),
                email: r.user.email,
                active: r.membership.is_active(),
                status: r.membership.status,
                role_id: r.role.id,
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
    fn only_a_term_makes_a_search() {
        let with = |q: Option<&str>| ListParams {
            q: q.map(str::to_string),
            status: Some("inactive".into()),
            ..ListParams::default()
        };
        assert!(with(Some("ada")).searches());
        assert!(with(Some(" a ")).searches());
        assert!(!with(Some("  ")).searches());
        assert!(!with(None).searches());
    }

    #[test]
    fn a_filter_no_index_serves_in_order_may_scan() {
        let with = |fill: &dyn Fn(&mut ListParams)| {
            let mut params = ListParams::default();
            fill(&mut params);
            params.may_scan()
        };
        assert!(!with(&|_| {}));
        assert!(!with(&|p| p.status = Some("inactive".into())));
        assert!(!with(&|p| p.sort = Some("-created".into())));
        assert!(!with(&|p| p.role = Some("r1".into())));
        assert!(!with(&|p| {
            p.role = Some("r1".into());
            p.sort = Some("-email".into());
        }));
        assert!(!with(&|p| p.auth = Some(String::new())));
        assert!(with(&|p| p.q = Some("ada".into())));
        assert!(with(&|p| p.auth = Some("totp".into())));
        assert!(with(&|p| p.expiring = Some("1".into())));
        assert!(with(&|p| {
            p.role = Some("r1".into());
            p.sort = Some("name".into());
        }));
        assert!(with(&|p| {
            p.role = Some("r1".into());
            p.status = Some("inactive".into());
        }));
    }

    fn granted(kind: &str, source: &str, role: &str, rank: i64) -> GrantedRole {
        GrantedRole {
            user_id: "u".into(),
            kind: kind.into(),
            source: source.into(),
            role_name: role.into(),
            role_rank: rank,
            role_permissions: String::new(),
        }
    }

    #[test]
    fn the_effective_role_is_the_strongest_and_names_every_source() {
        let ops = granted("group", "Ops", "Manager", 50);
        let prod = granted("pool", "prod", "Engineer", 30);
        let role = effective_role(("Member", 10), &[&prod, &ops]);
        assert_eq!(role.name, "Manager");
        assert!(role.raised);
        assert_eq!(
            role.sources,
            [
                "Group Ops: Manager",
                "Pool prod: Engineer",
                "Direct: Member"
            ]
        );
        let alone = effective_role(("Admin", 100), &[&ops]);
        assert_eq!(alone.name, "Admin");
        assert!(!alone.raised);
        assert_eq!(alone.sources[0], "Direct: Admin");
        let tie = effective_role(("Manager", 50), &[&ops]);
        assert_eq!((tie.name.as_str(), tie.raised), ("Manager", false));
        assert_eq!(tie.sources, ["Direct: Manager", "Group Ops: Manager"]);
    }

    #[test]
    fn the_range_says_where_the_page_sits() {
        assert_eq!(range_text(Some(1), 50, Some(300), true), "1–50 of 300");
        assert_eq!(
            range_text(Some(251), 50, Some(300), false),
            "251–300 of 300"
        );
        assert_eq!(range_text(Some(51), 50, None, true), "51–100 of many");
        assert_eq!(range_text(Some(51), 7, None, false), "51–57 of 57");
        assert_eq!(range_text(Some(1), 3, Some(1234), false), "1–3 of 1,234");
        assert_eq!(range_text(None, 50, Some(300), true), "");
        assert_eq!(range_text(Some(1), 0, Some(0), false), "");
        assert_eq!(parse_start(Some("51")), Some(51));
        for bad in ["0", "-1", "x", "99999999999999999999"] {
            assert_eq!(parse_start(Some(bad)), None, "{bad}");
        }
    }

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
        // A year PostgreSQL refuses outright is no time the tab wrote either.
        for key in ["not a time", "-5000-01-01 00:00:00.000000"] {
            let cursor = Cursor {
                key: key.into(),
                user_id: "x".into(),
            };
            let (filter, problem) = to_filter(&params, None, Ok(Some(cursor)), 50);
            assert!(filter.after.is_none(), "{key}");
            assert_eq!(problem, Some(ListError::BadCursor), "{key}");
        }
    }
}
