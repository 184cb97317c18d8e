use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::org_two_factor::PolicyRow;
use super::organizations::Organization;
use super::roles::Role;
use super::schema::{
    group_members, groups, memberships, org_two_factor_policies, organizations, roles,
};
use super::{DbConnection, never, now};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = memberships)]
pub struct Membership {
    pub org_id: String,
    pub user_id: String,
    pub role_id: String,
    pub status: String,
    pub email: String,
    pub sort_name: String,
    #[diesel(deserialize_as = super::stamp::Stamp)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = super::stamp::Stamp)]
    pub last_active_at: NaiveDateTime,
    /// When access ends, if it does: the expiry job deactivates the membership then.
    #[diesel(deserialize_as = super::stamp::MaybeStamp)]
    pub access_until: Option<NaiveDateTime>,
}

impl Membership {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// Whether the member's last day is over by `now`.
    pub fn access_ended_by(&self, now: NaiveDateTime) -> bool {
        self.access_until.is_some_and(|until| until <= now)
    }

    pub fn last_active(&self) -> Option<NaiveDateTime> {
        (self.last_active_at != never()).then_some(self.last_active_at)
    }
}

#[derive(Insertable)]
#[diesel(table_name = memberships)]
pub struct NewMembership<'a> {
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub role_id: &'a str,
    pub status: &'a str,
    pub email: &'a str,
    pub sort_name: &'a str,
    pub created_at: NaiveDateTime,
    pub last_active_at: NaiveDateTime,
    /// The account's `auth_method`, for the Users tab's filter (migration
    /// `membership_auth_method`: on PostgreSQL the database reads it again itself).
    pub auth_method: &'a str,
}

/// Adds an active member; `email` and the name are copied so the Users tab can sort by
/// them with an index that starts with the organization. Counts the member in the
/// organization's `member_counts`, in the caller's transaction.
pub fn insert(
    conn: &mut DbConnection,
    org_id: &str,
    user: &super::users::User,
    role_id: &str,
) -> QueryResult<()> {
    let sort_name = super::users::sort_key(&user.first_name, &user.last_name);
    insert_many(
        conn,
        &[NewMembership {
            org_id,
            user_id: &user.id,
            role_id,
            status: ACTIVE,
            email: &user.email,
            sort_name: &sort_name,
            created_at: now(),
            last_active_at: never(),
            auth_method: &user.auth_method,
        }],
    )
}

/// Adds these memberships in one statement (seeding) and counts them in their
/// organizations' `member_counts`, in the caller's transaction.
pub fn insert_many(conn: &mut DbConnection, rows: &[NewMembership<'_>]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // Multi-row inserts only compile against a concrete backend.
    match conn {
        DbConnection::Sqlite(c) => diesel::insert_into(memberships::table)
            .values(rows)
            .execute(c)?,
        DbConnection::Postgresql(c) => diesel::insert_into(memberships::table)
            .values(rows)
            .execute(c)?,
    };
    let mut added: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
    for row in rows {
        *added.entry((row.org_id, row.status)).or_default() += 1;
    }
    for ((org_id, status), n) in added {
        super::member_counts::adjust(conn, org_id, &[(status, n)])?;
    }
    Ok(())
}

/// An organization page's starting point for a member: the organization, their active
/// membership and role there, and the organization's two-factor policy if it has ever set
/// one. One query, since every page of the organization asks for all of them.
pub type Standing = (Organization, Membership, Role, Option<PolicyRow>);

macro_rules! standing_query {
    () => {
        organizations::table
            .inner_join(memberships::table.inner_join(roles::table))
            .left_join(
                org_two_factor_policies::table
                    .on(org_two_factor_policies::org_id.eq(organizations::id)),
            )
            .filter(memberships::status.eq("active"))
            .select((
                Organization::as_select(),
                Membership::as_select(),
                Role::as_select(),
                org_two_factor_policies::all_columns.nullable(),
            ))
    };
}

/// The member's standing in the organization named by `slug`. Answers `None` alike for an
/// unknown organization and for one the user is not an active member of.
pub fn find_active_by_slug(
    conn: &mut DbConnection,
    slug: &str,
    user_id: &str,
) -> QueryResult<Option<Standing>> {
    standing_query!()
        .filter(organizations::slug.eq(slug))
        .filter(memberships::user_id.eq(user_id))
        .first(conn)
        .optional()
}

/// The member's standing in every organization they are an active member of, by name:
/// the switcher's list and the page's own organization in one query.
pub fn active_standings(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<Standing>> {
    super::on_backend!(conn, |c| standing_query!()
        .filter(memberships::user_id.eq(user_id))
        .order(organizations::name.asc())
        .load(c))
}

/// The organizations the user is an active member of, for the switcher.
pub fn orgs_of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<Organization>> {
    organizations::table
        .inner_join(memberships::table)
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::status.eq("active"))
        .order(organizations::name.asc())
        .select(Organization::as_select())
        .load(conn)
}

/// The roles the member's groups grant in this organization.
pub fn group_roles(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<Vec<Role>> {
    super::on_backend!(conn, |c| group_members::table
        .inner_join(groups::table.inner_join(roles::table))
        .filter(group_members::org_id.eq(org_id))
        .filter(group_members::user_id.eq(user_id))
        .select(Role::as_select())
        .load(c))
}

/// How often a member's last-active time is rewritten at most.
const TOUCH_INTERVAL: chrono::Duration = chrono::Duration::seconds(60);

impl Membership {
    /// Whether [`touch`] would change anything: checked before issuing the UPDATE, since
    /// even an UPDATE that matches no row takes SQLite's one write lock, and every page
    /// view would queue behind every other for it.
    pub fn touch_due(&self) -> bool {
        now() - self.last_active_at >= TOUCH_INTERVAL
    }
}

/// Bumps the member's last-active time, at most once a minute so reads stay reads.
pub fn touch(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<()> {
    let now = now();
    diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id))
            .filter(memberships::last_active_at.lt(now - TOUCH_INTERVAL)),
    )
    .set(memberships::last_active_at.eq(now))
    .execute(conn)
    .map(|_| ())
}

/// One row of the Users tab.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub membership: Membership,
    pub user: super::users::User,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Email,
    Name,
    Created,
    LastActive,
}

/// Where a page starts: the sort value and user id of the last row of the page before.
/// A cursor carries it as the pair `[key, user_id]`, so links written before still read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "(String, String)", into = "(String, String)")]
pub struct Cursor {
    pub key: String,
    pub user_id: String,
}

impl From<(String, String)> for Cursor {
    fn from((key, user_id): (String, String)) -> Self {
        Cursor { key, user_id }
    }
}

impl From<Cursor> for (String, String) {
    fn from(c: Cursor) -> Self {
        (c.key, c.user_id)
    }
}

#[derive(Debug, Clone)]
pub enum Search {
    /// Three characters or more: any substring of email or name, through the trigram index.
    Substring(String),
    /// Shorter: the start of the email, first name or last name.
    Prefix(String),
}

#[derive(Debug, Clone)]
pub struct ListFilter {
    pub search: Option<Search>,
    pub status: Option<String>,
    pub role_id: Option<String>,
    /// The account's `auth_method` as stored (`password`, `password+totp`), read from the
    /// membership's copy.
    pub auth_method: Option<String>,
    /// Only active members whose access ends by then (the "expiring" filter).
    pub access_ends_by: Option<NaiveDateTime>,
    pub sort: SortKey,
    pub descending: bool,
    pub after: Option<Cursor>,
    pub limit: i64,
}

impl ListFilter {
    /// Every member in this order, a page of `limit`: the start that narrower filters
    /// change.
    pub fn everyone(sort: SortKey, descending: bool, limit: i64) -> Self {
        ListFilter {
            search: None,
            status: None,
            role_id: None,
            auth_method: None,
            access_ends_by: None,
            sort,
            descending,
            after: None,
            limit,
        }
    }
}

pub const TIMESTAMP_CURSOR_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

impl MemberRow {
    /// The value this row is sorted by, as the next page's cursor carries it.
    pub fn cursor(&self, sort: SortKey) -> Cursor {
        let m = &self.membership;
        let key = match sort {
            SortKey::Email => m.email.clone(),
            SortKey::Name => m.sort_name.clone(),
            SortKey::Created => m.created_at.format(TIMESTAMP_CURSOR_FORMAT).to_string(),
            SortKey::LastActive => m.last_active_at.format(TIMESTAMP_CURSOR_FORMAT).to_string(),
        };
        Cursor {
            key,
            user_id: m.user_id.clone(),
        }
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A page of the Users tab: keyset pagination over an index that starts with the
/// organization and ends with the sort key and user id, so any page costs the same.
pub fn list_page(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &ListFilter,
) -> QueryResult<Vec<MemberRow>> {
    list_page_with(conn, org_id, filter, None)
}

/// The same page with a substring search's plan chosen by the caller instead of by the
/// term (`None`): tests compare both plans' answers.
pub fn list_page_with(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &ListFilter,
    plan: Option<SearchPlan>,
) -> QueryResult<Vec<MemberRow>> {
    let roles = super::roles::list(conn, org_id)?;
    list_page_among(conn, org_id, filter, plan, &roles)
}

/// The same page for a caller that has already read the organization's `roles`.
pub fn list_page_among(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &ListFilter,
    plan: Option<SearchPlan>,
    roles: &[Role],
) -> QueryResult<Vec<MemberRow>> {
    match run_list_page(conn, org_id, filter, false, plan, roles)? {
        PageOutput::Rows(rows) => Ok(rows),
        PageOutput::Plan { .. } => unreachable!("asked for rows"),
    }
}

/// How a substring search finds its page; the term decides (issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPlan {
    /// Few members match: the text index hands over every match and only those are sorted.
    TextIndex,
    /// Many match: the organization's sort index is walked in page order and each row is
    /// checked, so the walk stops after a page of matches.
    SortIndex,
}

/// What the organization's text index answered for a term.
enum Matches {
    /// Every match, on SQLite: `memberships.rid`, the index's rowid.
    Rids(Vec<i64>),
    /// Every match, on PostgreSQL: the members' ids. The page query looks them up by id
    /// instead of asking the trigram GIN a second time (17 of the 53 ms of `q=ada.hop`
    /// at a million members).
    Ids(Vec<String>),
    /// More than the text-index plan sorts: about `estimate` (at least one past the cap).
    Many { estimate: i64 },
}

impl Matches {
    fn is_empty(&self) -> bool {
        match self {
            Matches::Rids(v) => v.is_empty(),
            Matches::Ids(v) => v.is_empty(),
            Matches::Many { .. } => false,
        }
    }
}

/// The page "plan" when the text index found nothing, or nobody holds the page's role or
/// sign-in method: no page query runs.
pub const NO_MATCH_PLAN: &str = "no match in the text index or no holder: no page query";

/// What testing a sort-index entry costs against reading and sorting a text-index match.
const WALK_OVER_SORT: f64 = 0.15;

/// Most matches the text-index plan fetches and sorts. A walk of the sort index reads
/// about `page × members / matches` entries, so the two plans cost the same at
/// √(page × members × walk / sort) matches, where `walk` is the cost of testing an index
/// entry and `sort` that of reading and sorting a match: 0.34 and 2.3 µs on SQLite, 0.42
/// and 2.9 µs on PostgreSQL, at a million members. About 870 at 100,000 members, 2,700
/// at a million.
pub fn text_index_cap(members: i64) -> i64 {
    ((50.0 * WALK_OVER_SORT * members.max(0) as f64).sqrt() as i64).clamp(200, 5_000)
}

/// Most entries of the sort index a walk reads for a page of matches before it gives up
/// on a term with about `matches` of them. Matches that sit together far down the order
/// would otherwise have the walk read most of the organization: at a million members
/// `q=ada` sorted by email, descending (every `ada.` address sorts last), walked 937,500
/// entries, 0.16–0.21 s on SQLite and 2.3 s on PostgreSQL. The budget is twice what a
/// walk reads, `page × members / cap`, for a term just past the cap whose matches are
/// spread evenly through the order, and at least twice the matches: sorting them costs
/// more than walking as many entries.
pub fn walk_budget(members: i64, matches: i64) -> i64 {
    (2 * 50 * members.max(0) / text_index_cap(members)).max(2 * matches)
}

/// Most matches the text index sorts for a page once a walk gave up: sorting them costs
/// about what walking the whole organization does (a match costs about seven entries,
/// `text_index_cap`); past this many the walk goes on to the end of the order instead.
pub fn fallback_cap(members: i64) -> i64 {
    ((WALK_OVER_SORT * members.max(0) as f64) as i64).max(text_index_cap(members))
}

/// The plan the text index's answer chooses for the term in this organization, as
/// `list_page` first chooses it (a walk may still hand over to the text index).
pub fn search_plan(conn: &mut DbConnection, org_id: &str, term: &str) -> QueryResult<SearchPlan> {
    Ok(match search_matches(conn, org_id, term, None, false)?.0 {
        Matches::Many { .. } => SearchPlan::SortIndex,
        _ => SearchPlan::TextIndex,
    })
}

/// PostgreSQL's lookup, `$org` being the organization's side of its test: one row, the
/// matches' ids, or NULL when `$3` of them match (their ids would cross the wire for
/// nothing).
macro_rules! pg_match_sql {
    ($org:literal) => {
        concat!(
            "SELECT CASE WHEN count(*) < $3 THEN coalesce(array_agg(user_id), '{}') END AS ids \
             FROM (SELECT user_id FROM memberships WHERE ",
            $org,
            " = $1 AND (email || ' ' || sort_name) LIKE $2 LIMIT $3) AS hits"
        )
    };
}

/// The lookup for the scope: the organization a key of the GIN's scan, or (for
/// [`IndexScope::Everyone`]) checked on each match the GIN hands over, since
/// `org_id || ''` is no key of it.
fn pg_match_sql(scope: IndexScope) -> &'static str {
    match scope {
        IndexScope::Organization => pg_match_sql!("org_id"),
        IndexScope::Everyone => pg_match_sql!("(org_id || '')"),
    }
}

/// Binds the values of [`pg_match_sql`]'s statement to `$query`, a plain statement to
/// load on the backend's own connection (the multi-backend has no array type) or a boxed
/// one to explain.
macro_rules! pg_match_query {
    ($query:expr, $org_id:expr, $term:expr, $limit:expr) => {
        $query
            .bind::<diesel::sql_types::Text, _>($org_id.to_string())
            .bind::<diesel::sql_types::Text, _>(format!("%{}%", like_escape($term)))
            .bind::<diesel::sql_types::BigInt, _>($limit)
    };
}

/// Asks the text index for the term's matches in the organization, at most one more
/// than the cap (on PostgreSQL, none past it): their number decides the plan, and when it
/// is small the page is sorted from the matches alone. With `memory`, a term the text
/// index recently found common here is not asked again (see `common_terms`), and one it
/// finds common is remembered; the third value says whether the verdict was recalled.
fn search_matches(
    conn: &mut DbConnection,
    org_id: &str,
    term: &str,
    forced: Option<SearchPlan>,
    memory: bool,
) -> QueryResult<(Matches, i64, bool)> {
    let members = super::member_counts::by_status(conn, org_id)?;
    let members = members.members();
    let cap = match forced {
        Some(SearchPlan::SortIndex) => return Ok((Matches::Many { estimate: 0 }, members, false)),
        Some(SearchPlan::TextIndex) => i64::MAX - 1,
        None => {
            if let Some(estimate) = memory
                .then(|| super::common_terms::recall(org_id, term))
                .flatten()
            {
                return Ok((Matches::Many { estimate }, members, true));
            }
            text_index_cap(members)
        }
    };
    let matches = lookup(conn, org_id, term, members, cap)?;
    if let (Matches::Many { estimate }, None, true) = (&matches, forced, memory) {
        super::common_terms::remember(org_id, term, *estimate);
    }
    Ok((matches, members, false))
}

/// The text index's answer for `term` in an organization of `members`: every match, or
/// `Many` past `cap` of them.
fn lookup(
    conn: &mut DbConnection,
    org_id: &str,
    term: &str,
    members: i64,
    cap: i64,
) -> QueryResult<Matches> {
    let scope = lookup_scope(conn, members)?;
    Ok(match conn {
        DbConnection::Sqlite(_) => {
            let rids: Vec<i64> = text_match_query(conn, org_id, term, cap + 1, scope)
                .load::<Rid>(conn)?
                .into_iter()
                .map(|r| r.rid)
                .collect();
            if rids.len() as i64 <= cap {
                Matches::Rids(rids)
            } else if scope == IndexScope::Organization {
                // The organization's rows may sit anywhere among the table's rowids (an
                // early tenant, a bulk import): how far the lookup got says nothing.
                Matches::Many { estimate: cap + 1 }
            } else {
                // FTS5 hands over matches in rowid order, so the cap was reached this far
                // into the table, which this organization holds most of: a term found in
                // the first tenth of it matches about ten times the cap.
                let reached = rids.iter().copied().max().unwrap_or(1).max(1);
                let last =
                    diesel::sql_query("SELECT coalesce(max(rid), 1) AS rid FROM memberships")
                        .get_result::<Rid>(conn)?
                        .rid;
                Matches::Many {
                    estimate: (rids.len() as f64 * last as f64 / reached as f64) as i64,
                }
            }
        }
        // NULL when there are more than the cap: their ids would cross the wire for nothing.
        // The GIN's bitmap tells nothing of how many more.
        DbConnection::Postgresql(c) => pg_match_query!(
            diesel::sql_query(pg_match_sql(scope)),
            org_id,
            term,
            cap + 1
        )
        .get_result::<MatchIds>(c)?
        .ids
        .map_or(Matches::Many { estimate: cap + 1 }, Matches::Ids),
    })
}

#[derive(QueryableByName)]
struct Rid {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rid: i64,
}

#[derive(QueryableByName)]
struct MatchIds {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Array<diesel::sql_types::Text>>)]
    ids: Option<Vec<String>>,
}

/// Which entries of the text index a lookup reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexScope {
    /// The organization's own: on SQLite through its tag, an AND with the tag's posting
    /// list; on PostgreSQL with the organization as a key of the GIN scan.
    Organization,
    /// Everyone's: on SQLite left to the page query's organization filter; on PostgreSQL
    /// the organization is checked on each match the GIN hands over.
    Everyone,
}

/// The entries of the text index a search of this organization reads.
pub fn search_scope(conn: &mut DbConnection, org_id: &str) -> QueryResult<IndexScope> {
    let members = super::member_counts::by_status(conn, org_id)?;
    lookup_scope(conn, members.members())
}

/// The organization's key narrows a lookup to its rows, but the index reads the key's
/// posting list (one entry per member) in step with the term's. When the organization
/// holds half the index or more, the key can at most halve the matches while reading its
/// whole posting list. At a million members:
/// - SQLite (the organization's tag): `q=ada.hop` (3,907 matches) took 30 ms with it and
///   12 ms without. The page query filters by organization either way. The price: the
///   cap counts other organizations' matches too, so a term that matches thousands of
///   theirs and few of ours is sent to the sort-index walk, which then reads most of ours.
/// - PostgreSQL (the GIN's `org_id` key): `q=0123456` (one match) took 6.8 ms with it and
///   1.0 ms without, `q=ada.hop` 33 and 23 ms. The organization is checked on every row
///   before the cap counts it, so the count stays exact. The price: the GIN's bitmap then
///   holds the other organizations' matches too, each read from the table and turned
///   away, so a term common among theirs and rare among ours costs up to their matches
///   (at most half the table; not measured).
fn lookup_scope(conn: &mut DbConnection, members: i64) -> QueryResult<IndexScope> {
    let everyone = super::member_counts::all_organizations(conn)?;
    Ok(if members * 2 >= everyone {
        IndexScope::Everyone
    } else {
        IndexScope::Organization
    })
}

type TextMatchQuery = diesel::query_builder::BoxedSqlQuery<
    'static,
    super::MultiBackend,
    diesel::query_builder::SqlQuery,
>;

/// The term's matches in the organization, from the text index alone. On SQLite one
/// quoted MATCH phrase per column: FTS5 reads `%`, `_` and `\\` inside it as themselves
/// (where `LIKE ... ESCAPE` would turn its trigram acceleration off) and intersects the
/// organization's posting list with the term's (in [`IndexScope::Organization`]). On
/// PostgreSQL an escaped LIKE, which the trigram GIN serves (with the organization as a
/// key in [`IndexScope::Organization`]); one row, the matches' ids, or NULL when `limit`
/// of them match.
fn text_match_query(
    conn: &DbConnection,
    org_id: &str,
    term: &str,
    limit: i64,
    scope: IndexScope,
) -> TextMatchQuery {
    use diesel::sql_types::{BigInt, Text};
    match conn {
        DbConnection::Sqlite(_) => {
            let quoted = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
            let phrase = match scope {
                IndexScope::Organization => format!(
                    "org_tag : {} AND text : {}",
                    quoted(&search_tag(org_id)),
                    quoted(term)
                ),
                IndexScope::Everyone => format!("text : {}", quoted(term)),
            };
            diesel::sql_query(
                "SELECT rowid AS rid FROM member_search WHERE member_search MATCH ? LIMIT ?",
            )
            .into_boxed()
            .bind::<Text, _>(phrase)
            .bind::<BigInt, _>(limit)
        }
        DbConnection::Postgresql(_) => {
            pg_match_query!(
                diesel::sql_query(pg_match_sql(scope)).into_boxed(),
                org_id,
                term,
                limit
            )
        }
    }
}

/// The organization's key in the SQLite text index: one trigram, three CJK ideographs
/// spelling the last nine hex digits of its id (a phrase of the whole id was 34 trigrams,
/// each a posting list as long as the organization). The migration
/// `2026-12-01-100001_member_search_org_tag` computes the same in SQL.
pub fn search_tag(org_id: &str) -> String {
    const HEX: &str = "0123456789abcdef";
    let chars: Vec<char> = org_id.chars().collect();
    // SQL's `instr(HEX, lower(substr(id, -k, 1)))`: 1–16 for a hex digit, 1 for a
    // position before the start (an empty string), 0 for anything else.
    let digit = |from_end: usize| -> u32 {
        match chars.len().checked_sub(from_end).map(|i| chars[i]) {
            None => 1,
            Some(c) => HEX.find(c.to_ascii_lowercase()).map_or(0, |i| i as u32 + 1),
        }
    };
    [9, 6, 3]
        .iter()
        .map(|&k| {
            let code = 0x4E00 + 289 * digit(k) + 17 * digit(k - 1) + digit(k - 2);
            char::from_u32(code).expect("a CJK ideograph")
        })
        .collect()
}

/// The organization filter of the page query when the text index already gave the rows
/// (SQLite rowids): a unary `+` keeps SQLite from walking an organization index instead.
/// Without statistics it guesses ten rows per organization and would check every member
/// against the list, the plan that made selective searches scan the organization. The
/// same in the query that joins the sorted page's accounts steers it to
/// `memberships_user_idx`; the condition is still checked on every row it reads.
const ROWID_PAGE_ORG_SCOPE: &str = "+memberships.org_id = ";

/// Whether the member's email or name holds a term, tested on each entry a walk reads.
/// The text index holds the two joined by a space; a term without a space cannot span
/// the join, so it is looked for in each apart. That makes no joined string for each
/// entry: a third off the test's time on SQLite, a fifth on PostgreSQL. A plain
/// substring position reads `%`, `_`, `\` and `"` as themselves.
#[derive(Debug, Clone)]
struct HoldsTerm {
    /// The backend's substring position, from 1, 0 when absent: `instr` or `strpos`.
    position: &'static str,
    term: String,
}

impl HoldsTerm {
    fn new(backend: super::Backend, term: &str) -> Self {
        let position = match backend {
            super::Backend::Sqlite => "instr",
            super::Backend::Postgres => "strpos",
        };
        HoldsTerm {
            position,
            term: term.to_string(),
        }
    }
}

impl diesel::expression::Expression for HoldsTerm {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> diesel::expression::AppearsOnTable<QS> for HoldsTerm {}

impl<QS> diesel::expression::SelectableExpression<QS> for HoldsTerm {}

impl<GB> diesel::expression::ValidGrouping<GB> for HoldsTerm {
    type IsAggregate = diesel::expression::is_aggregate::No;
}

impl diesel::query_builder::QueryId for HoldsTerm {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> diesel::query_builder::QueryFragment<DB> for HoldsTerm
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<diesel::sql_types::Text>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        if self.term.contains(' ') {
            self.push_found_in(
                &mut out,
                "memberships.email || ' ' || memberships.sort_name",
            )
        } else {
            out.push_sql("(");
            self.push_found_in(&mut out, "memberships.email")?;
            out.push_sql(" OR ");
            self.push_found_in(&mut out, "memberships.sort_name")?;
            out.push_sql(")");
            Ok(())
        }
    }
}

impl HoldsTerm {
    /// `position(haystack, term) > 0`, the term bound.
    fn push_found_in<'b, DB>(
        &'b self,
        out: &mut diesel::query_builder::AstPass<'_, 'b, DB>,
        haystack: &'static str,
    ) -> QueryResult<()>
    where
        DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<diesel::sql_types::Text>,
        String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    {
        out.push_sql(self.position);
        out.push_sql("(");
        out.push_sql(haystack);
        out.push_sql(", ");
        out.push_bind_param::<diesel::sql_types::Text, _>(&self.term)?;
        out.push_sql(") > 0");
        Ok(())
    }
}

enum PageOutput {
    Rows(Vec<MemberRow>),
    Plan {
        search: Option<SearchPlan>,
        recalled: bool,
        walk: Option<Vec<String>>,
        holders_by_index: Option<bool>,
        page: Vec<String>,
    },
}

/// `WITH walk (user_id, hit) AS (…) SELECT user_id FROM walk WHERE hit LIMIT …`: the
/// first matches of a walk that reads at most as many entries as its inner query's
/// `LIMIT`. The inner query yields each entry it reads with whether it matches, so the
/// budget counts entries read, not matches; the outer one keeps the matches, and both
/// databases run the inner one as a stream in index order that stops once the outer
/// `LIMIT` is met (PostgreSQL inlines a CTE read once; SQLite runs it as a co-routine).
/// Diesel has no subquery in `FROM`.
pub(crate) struct WalkMatches<Q> {
    walk: Q,
    limit: i64,
}

impl<Q> WalkMatches<Q> {
    /// The first `limit` matches of `walk`, a query of (id, whether it matches) that
    /// reads at most its own `LIMIT` of entries.
    pub(crate) fn new(walk: Q, limit: i64) -> Self {
        WalkMatches { walk, limit }
    }
}

impl<Q> diesel::query_builder::QueryId for WalkMatches<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> diesel::query_builder::Query for WalkMatches<Q> {
    type SqlType = diesel::sql_types::Text;
}

impl<Q, C> RunQueryDsl<C> for WalkMatches<Q> {}

impl<DB, Q> diesel::query_builder::QueryFragment<DB> for WalkMatches<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    DB: diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("WITH walk (user_id, hit) AS (");
        self.walk.walk_ast(out.reborrow())?;
        out.push_sql(") SELECT user_id FROM walk WHERE hit LIMIT ");
        out.push_bind_param::<diesel::sql_types::BigInt, _>(&self.limit)
    }
}

/// The members the page is filtered to by a role or a sign-in method, when few have it
/// and the page is in an order their index does not keep (both indexes keep email order):
/// they are then found by that index and sorted, as a text-index search's matches are,
/// instead of the order's index being walked for them, which read the whole organization
/// for a role one member holds (1.0–2.5 s at 200,000 members sorted by name, a debug
/// build), and for a method nobody there uses (2.3–5 s). Whether they are few is decided
/// as for a set's page (`super::set_walk_budget`): by the role's kept count, and for a
/// method by reading its index up to where a walk would pay.
///
/// A search is asked too where the text index cannot hand over its matches (a prefix
/// search, a common term): few holders are then read and each tested for the term, where
/// the walk for the term tested them all and read the whole organization for a method
/// nobody there uses. Many holders give no walk of their own there: the page query, or
/// the common term's walk, tests the term and the holding together. So with the
/// "expiring" filter: few holders are tested for it as they are sorted.
fn few_holders<'f>(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &'f ListFilter,
) -> QueryResult<Held<'f>> {
    if filter.sort == SortKey::Email {
        return Ok(Held::NotAsked);
    }
    let mut walk = None;
    if let Some(role_id) = &filter.role_id {
        let holders = super::roles::member_count(conn, org_id, role_id)?;
        match super::SetWalk::plan(conn, org_id, holders, filter.limit)? {
            None => {
                let few = holding(conn, org_id, Holding::Role(role_id))?;
                return Ok(Held::Few(few));
            }
            Some(plan) => walk = Some((plan.budget, Holding::Role(role_id))),
        }
    }
    if let Some(method) = &filter.auth_method {
        // No count is kept by method: they are few if the method's index ends before the
        // first number a walk is taken for (a step through the index to there, reading
        // no rows).
        let counts = super::member_counts::by_status(conn, org_id)?;
        let in_org = counts.members();
        let walked_from = super::set_walk_threshold(in_org, filter.limit);
        let at_threshold = memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::auth_method.eq(method))
            .select(memberships::user_id)
            .offset(walked_from - 1)
            .limit(1)
            .first::<String>(conn)
            .optional()?;
        if at_threshold.is_none() {
            let few = holding(conn, org_id, Holding::AuthMethod(method))?;
            return Ok(Held::Few(few));
        }
        if walk.is_some() {
            // A role and a method, both held by many: those holding both may be far fewer
            // than either, so neither's count gives the walk a budget, and a short walk
            // would fall back on sorting one of two large sets. The page query walks the
            // order's index with both, as before budgets.
            return Ok(Held::NotAsked);
        }
        walk = super::set_walk_budget(walked_from, in_org, filter.limit)
            .map(|budget| (budget, Holding::AuthMethod(method)));
    }
    // A walk's budget counts the entries its index range holds; the expiry filter is on
    // no sort index, so its rows would be read without being counted.
    if filter.search.is_some() || filter.access_ends_by.is_some() {
        return Ok(Held::NotAsked);
    }
    Ok(walk.map_or(Held::NotAsked, |(budget, holders)| Held::Many {
        budget,
        holders,
    }))
}

/// What [`few_holders`] found of a role's or a sign-in method's holders.
enum Held<'f> {
    /// No role or method filters the page, or an index keeps it in the page's order.
    NotAsked,
    /// All of them, fewer than a walk would be taken for.
    Few(Matches),
    /// Enough that the order's index is walked for them, reading at most `budget` entries
    /// (four times what an evenly spread set needs, see `super::set_walk_budget`); if they
    /// sort later than that, `holders` are read by their index and sorted after all.
    Many { budget: i64, holders: Holding<'f> },
}

/// What a member of the organization has, with an index of its own per organization.
enum Holding<'a> {
    Role(&'a str),
    AuthMethod(&'a str),
}

/// The organization's members that hold this, by its index.
fn holding(conn: &mut DbConnection, org_id: &str, holding: Holding<'_>) -> QueryResult<Matches> {
    let (column, value) = match holding {
        Holding::Role(id) => ("role_id", id),
        Holding::AuthMethod(method) => ("auth_method", method),
    };
    Ok(match conn {
        DbConnection::Sqlite(c) => Matches::Rids(
            diesel::sql_query(format!(
                "SELECT rid FROM memberships WHERE org_id = ? AND {column} = ?"
            ))
            .bind::<diesel::sql_types::Text, _>(org_id)
            .bind::<diesel::sql_types::Text, _>(value)
            .load::<Rid>(c)?
            .into_iter()
            .map(|r| r.rid)
            .collect(),
        ),
        DbConnection::Postgresql(c) => {
            let mut query = memberships::table
                .filter(memberships::org_id.eq(org_id))
                .select(memberships::user_id)
                .into_boxed();
            query = match holding {
                Holding::Role(id) => query.filter(memberships::role_id.eq(id)),
                Holding::AuthMethod(method) => query.filter(memberships::auth_method.eq(method)),
            };
            Matches::Ids(query.load(c)?)
        }
    })
}

/// Builds the page query once, for loading or for explaining.
fn run_list_page(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &ListFilter,
    explain: bool,
    forced: Option<SearchPlan>,
    roles: &[Role],
) -> QueryResult<PageOutput> {
    use super::schema::users;
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Text};

    let backend = super::backend(conn);
    let term = match &filter.search {
        Some(Search::Substring(term)) => Some(term.as_str()),
        _ => None,
    };
    // A walk for the holders of the page's role or sign-in method, reading at most this
    // many entries (see `few_holders`).
    let mut held_walk = None;
    let mut holders_by_index = None;
    // Whether `matches` are the term's, or the holders of the page's role or method, on
    // which the term is still to be tested.
    let mut matches_hold_the_term = true;
    let (mut matches, members, recalled) = match term {
        Some(term) => {
            let (matches, members, recalled) = search_matches(conn, org_id, term, forced, true)?;
            let holders = match (&matches, forced) {
                (Matches::Many { .. }, None) => few_holders(conn, org_id, filter)?,
                _ => Held::NotAsked,
            };
            match holders {
                Held::Few(holders) => {
                    holders_by_index = Some(true);
                    matches_hold_the_term = false;
                    (Some(holders), members, recalled)
                }
                _ => (Some(matches), members, recalled),
            }
        }
        None => match few_holders(conn, org_id, filter)? {
            Held::Few(holders) => {
                holders_by_index = Some(true);
                matches_hold_the_term = false;
                (Some(holders), 0, false)
            }
            Held::Many { budget, holders } => {
                holders_by_index = Some(false);
                held_walk = Some((budget, holders));
                (None, 0, false)
            }
            Held::NotAsked => (None, 0, false),
        },
    };
    // The organization filter; by row (see `ROWID_PAGE_ORG_SCOPE`) where the page's rows
    // are already known by their ids, so SQLite looks them up instead of walking an
    // organization index and testing each entry against them.
    macro_rules! in_organization {
        ($query:expr, $by_row:expr) => {
            if $by_row && backend == super::Backend::Sqlite {
                $query.filter(sql::<Bool>(ROWID_PAGE_ORG_SCOPE).bind::<Text, _>(org_id.to_string()))
            } else {
                $query.filter(memberships::org_id.eq(org_id.to_string()))
            }
        };
    }
    // The key, then the id to settle ties on it, both in the asked direction.
    macro_rules! ordered {
        ($query:expr) => {{
            let query = $query;
            macro_rules! by {
                ($column:expr) => {
                    if filter.descending {
                        query.order(($column.desc(), memberships::user_id.desc()))
                    } else {
                        query.order(($column.asc(), memberships::user_id.asc()))
                    }
                };
            }
            match filter.sort {
                SortKey::Email => by!(memberships::email),
                SortKey::Name => by!(memberships::sort_name),
                SortKey::Created => by!(memberships::created_at),
                SortKey::LastActive => by!(memberships::last_active_at),
            }
        }};
    }
    // The filters, the cursor and the order, on the page query or on an inner query of it;
    // the term is tested on each row only where `$test_term`, and the role and sign-in
    // method only where `$test_holding` (a walk that yields whether its rows match
    // instead leaves out what it yields).
    macro_rules! narrowed {
        ($query:expr, $test_term:expr, $test_holding:expr) => {{
            let mut query = $query;
            // Typed wherever it can be: diesel keeps a prepared statement only for a query
            // without raw SQL, and the plain pages (no search, any cursor) are most of the
            // traffic. SQLite compiled the page query on every request, and PostgreSQL planned it.
            query = in_organization!(query, matches!(matches, Some(Matches::Rids(_))));
            if let Some(status) = &filter.status {
                query = query.filter(memberships::status.eq(status.clone()));
            }
            if let Some(by) = filter.access_ends_by {
                query = query
                    .filter(memberships::access_until.le(by))
                    .filter(memberships::status.eq(ACTIVE));
            }
            if let (Some(role_id), true) = (&filter.role_id, $test_holding) {
                query = query.filter(memberships::role_id.eq(role_id.clone()));
            }
            if let (Some(method), true) = (&filter.auth_method, $test_holding) {
                query = query.filter(memberships::auth_method.eq(method.clone()));
            }
            match &matches {
                Some(Matches::Rids(rids)) => {
                    // One JSON array instead of a placeholder per match: up to 5,000 of them made
                    // a statement text SQLite parsed and bound anew on every search.
                    let rids = serde_json::to_string(rids).expect("integers serialize");
                    query = query.filter(
                        sql::<Bool>("memberships.rid IN (SELECT value FROM json_each(")
                            .bind::<Text, _>(rids)
                            .sql("))"),
                    );
                }
                Some(Matches::Ids(ids)) => {
                    query = query.filter(memberships::user_id.eq_any(ids.clone()));
                }
                Some(Matches::Many { .. }) | None => {}
            }
            let term_matched = matches_hold_the_term
                && matches!(matches, Some(Matches::Rids(_) | Matches::Ids(_)));
            match &filter.search {
                Some(Search::Substring(term)) if $test_term && !term_matched => {
                    // Checked on each row the sort index yields, so the walk stops at a full
                    // page; or on each holder of the page's role or method.
                    query = query.filter(HoldsTerm::new(backend, term));
                }
                Some(Search::Prefix(term)) => {
                    let start = format!("{}%", like_escape(term));
                    let word = format!("% {}%", like_escape(term));
                    query = query.filter(
                        memberships::email
                            .like(start.clone())
                            .escape('\\')
                            .or(memberships::sort_name.like(start).escape('\\'))
                            .or(memberships::sort_name.like(word).escape('\\')),
                    );
                }
                _ => {}
            }
            if let Some(after) = &filter.after {
                // `(key, id) > (k, i)` spelled out: the range on the key alone walks the index,
                // and the tie on the key is settled by the id.
                let id = after.user_id.clone();
                macro_rules! after {
                    ($column:expr, $key:expr) => {{
                        let key = $key;
                        if filter.descending {
                            query.filter(
                                $column
                                    .le(key.clone())
                                    .and($column.lt(key).or(memberships::user_id.lt(id))),
                            )
                        } else {
                            query.filter(
                                $column
                                    .ge(key.clone())
                                    .and($column.gt(key).or(memberships::user_id.gt(id))),
                            )
                        }
                    }};
                }
                let at = || {
                    chrono::NaiveDateTime::parse_from_str(&after.key, TIMESTAMP_CURSOR_FORMAT)
                        .map_err(|e| diesel::result::Error::DeserializationError(e.into()))
                };
                query = match filter.sort {
                    SortKey::Email => after!(memberships::email, after.key.clone()),
                    SortKey::Name => after!(memberships::sort_name, after.key.clone()),
                    SortKey::Created => after!(memberships::created_at, at()?),
                    SortKey::LastActive => after!(memberships::last_active_at, at()?),
                };
            }
            ordered!(query)
        }};
    }
    // The page's members from the matches, sorted on their memberships alone.
    macro_rules! sorted_matches {
        ($backend:ty) => {
            narrowed!(
                memberships::table
                    .select(memberships::user_id)
                    .into_boxed::<$backend>(),
                true,
                true
            )
            .limit(filter.limit)
        };
    }
    // Whether a row holds the page's role and sign-in method, for a walk for them.
    macro_rules! holds {
        ($backend:ty) => {{
            let role = filter.role_id.clone().map(|id| memberships::role_id.eq(id));
            let method = filter
                .auth_method
                .clone()
                .map(|m| memberships::auth_method.eq(m));
            let holds: Box<
                dyn diesel::BoxableExpression<memberships::table, $backend, SqlType = Bool>,
            > = match (role, method) {
                (Some(role), Some(method)) => Box::new(role.and(method)),
                (Some(role), None) => Box::new(role),
                (None, Some(method)) => Box::new(method),
                (None, None) => Box::new(sql::<Bool>("1 = 1")),
            };
            holds
        }};
    }
    // A walk of the sort index in page order for the first page of matches, reading at
    // most `$budget` entries: each entry the index yields, with whether it matches (tested
    // on the entry itself in email and name order, whose indexes carry the searched
    // columns; in the other orders on its table row). Without a term, whether it holds
    // the page's role and sign-in method.
    macro_rules! walk_query {
        ($backend:ty, $budget:expr) => {{
            let walk = match term {
                Some(term) => narrowed!(
                    memberships::table
                        .select((memberships::user_id, HoldsTerm::new(backend, term)))
                        .into_boxed::<$backend>(),
                    false,
                    true
                ),
                None => narrowed!(
                    memberships::table
                        .select((memberships::user_id, holds!($backend)))
                        .into_boxed::<$backend>(),
                    true,
                    false
                ),
            };
            WalkMatches {
                walk: walk.limit($budget),
                limit: filter.limit,
            }
        }};
    }
    let mut walk_plan = None;
    // The walk on the backend's own connection `$c`, explained first when asked.
    macro_rules! walk_on {
        ($c:expr, $backend:ty, $budget:expr, $prefix:expr) => {{
            if explain {
                walk_plan = Some(super::explain_on(
                    $c,
                    $prefix,
                    walk_query!($backend, $budget),
                )?);
            }
            walk_query!($backend, $budget).load::<String>($c)?
        }};
    }
    // The entry a walk of `$budget` entries would read last, if the order has that many.
    macro_rules! budget_end {
        ($backend:ty, $budget:expr) => {
            narrowed!(
                memberships::table
                    .select(memberships::user_id)
                    .into_boxed::<$backend>(),
                false,
                term.is_some()
            )
            .limit(1)
            .offset($budget - 1)
        };
    }
    // Whether a walk of `$budget` entries that found `$found` found the page: a full one,
    // or fewer because the order ended before the budget did. Asked apart from the walk:
    // a row count in the walk itself (`row_number()`) slowed every walk by 3–5 ms at a
    // million members, while this reads the index alone, and only after a short walk.
    macro_rules! walk_found_the_page {
        ($found:expr, $budget:expr) => {
            $found.len() as i64 >= filter.limit
                || $budget == i64::MAX
                || match conn {
                    DbConnection::Sqlite(c) => budget_end!(diesel::sqlite::Sqlite, $budget)
                        .load::<String>(c)?
                        .is_empty(),
                    DbConnection::Postgresql(c) => budget_end!(diesel::pg::Pg, $budget)
                        .load::<String>(c)?
                        .is_empty(),
                }
        };
    }
    macro_rules! walk {
        ($budget:expr) => {{
            let prefix = super::explain_prefix(conn);
            match conn {
                DbConnection::Sqlite(c) => {
                    walk_on!(c, diesel::sqlite::Sqlite, $budget, prefix)
                }
                DbConnection::Postgresql(c) => {
                    walk_on!(c, diesel::pg::Pg, $budget, prefix)
                }
            }
        }};
    }
    // The page's members, when a walk (or on PostgreSQL the matches' sort) found them
    // first: the page's rows are then looked up by id.
    let mut page_ids: Option<Vec<String>> = None;
    if let Some(Matches::Many { estimate }) = &matches {
        let budget = match forced {
            Some(SearchPlan::SortIndex) => i64::MAX,
            _ => walk_budget(members, *estimate),
        };
        let found = walk!(budget);
        if (found.len() as i64) < filter.limit {
            // The term may have stopped being common (a walk ending the order reads no
            // further, whatever its budget): a verdict stays only while its walks fill a
            // page, and the next search asks the text index again.
            super::common_terms::forget(org_id, term.unwrap_or_default());
        }
        // Fewer than a page: the walk reached the end of the order (the last page of a
        // common term, or a narrow filter), or its budget. Only the second hands over to
        // the text index, unless the term matches so many that sorting them all would
        // cost more than walking on.
        if walk_found_the_page!(found, budget) {
            page_ids = Some(found);
        } else {
            match lookup(
                conn,
                org_id,
                term.unwrap_or_default(),
                members,
                fallback_cap(members),
            )? {
                Matches::Many { .. } => page_ids = Some(walk!(i64::MAX)),
                fewer => matches = Some(fewer),
            }
        }
    }
    if let Some((budget, holders)) = held_walk {
        let found = walk!(budget);
        if walk_found_the_page!(found, budget) {
            page_ids = Some(found);
        } else {
            // They sort later than an even spread would put them (a role given to the
            // newest members, sorted oldest first): read by their index and sorted.
            holders_by_index = Some(true);
            matches_hold_the_term = false;
            matches = Some(holding(conn, org_id, holders)?);
        }
    }
    let search = match &matches {
        None => None,
        Some(Matches::Many { .. }) => Some(SearchPlan::SortIndex),
        Some(_) if matches_hold_the_term => Some(SearchPlan::TextIndex),
        Some(_) => None,
    };
    if matches.as_ref().is_some_and(Matches::is_empty) {
        return Ok(if explain {
            PageOutput::Plan {
                search,
                recalled,
                walk: walk_plan,
                holders_by_index,
                page: vec![NO_MATCH_PLAN.to_string()],
            }
        } else {
            PageOutput::Rows(Vec::new())
        });
    }
    // A text-index plan sorts every match: joining each one's account row before the sort
    // read thousands of accounts for a page of 50 (`q=ada.hop`, 3,907 matches at a million
    // members). The matches are then sorted on their memberships alone, and only the page's
    // accounts are read.
    let sort_before_join = matches!(matches, Some(Matches::Rids(_) | Matches::Ids(_)));
    // On PostgreSQL they are read first and the page's rows then looked up by id: inside
    // one statement, as `IN (subquery)`, the planner may instead read the organization's
    // rows and hash them against the page (as it did on a table of 3,000).
    let mut page_plan = Vec::new();
    if let DbConnection::Postgresql(c) = conn
        && sort_before_join
    {
        if explain {
            page_plan = super::explain_on(c, "EXPLAIN ", sorted_matches!(diesel::pg::Pg))?;
        }
        page_ids = Some(sorted_matches!(diesel::pg::Pg).load::<String>(c)?);
    }
    // The page query is built for the backend it runs on, on the backend's own
    // connection (see `db::on_backend`), and explained there too.
    macro_rules! page_query {
        ($backend:ty) => {{
            // The organization's few roles are read once and matched in memory: joining them
            // decoded the same role row (and its timestamp) for every member on the page.
            let joined = memberships::table
                .inner_join(users::table)
                .select((Membership::as_select(), super::users::User::as_select()))
                .into_boxed::<$backend>();
            let page = match &page_ids {
                Some(ids) => {
                    let query = in_organization!(joined, true);
                    ordered!(query.filter(memberships::user_id.eq_any(ids.clone())))
                }
                // On SQLite the page's members are found by account (the rowid scope of
                // `in_organization`), since an organization index would be walked in page
                // order instead, testing each entry against the page.
                None if sort_before_join => {
                    let page = sorted_matches!($backend);
                    let query = in_organization!(joined, true);
                    ordered!(query.filter(memberships::user_id.eq_any(page)))
                }
                None => narrowed!(joined, true, true),
            };
            // A page size is one of a few constants (see `LiteralLimit`).
            super::LiteralLimit::new(page, filter.limit)
        }};
    }
    if explain {
        let prefix = super::explain_prefix(conn);
        let page = match conn {
            DbConnection::Sqlite(c) => {
                super::explain_on(c, prefix, page_query!(diesel::sqlite::Sqlite))
            }
            DbConnection::Postgresql(c) => {
                super::explain_on(c, prefix, page_query!(diesel::pg::Pg))
            }
        }?;
        page_plan.extend(page);
        return Ok(PageOutput::Plan {
            search,
            recalled,
            walk: walk_plan,
            holders_by_index,
            page: page_plan,
        });
    }
    let rows: Vec<(Membership, super::users::User)> = match conn {
        DbConnection::Sqlite(c) => page_query!(diesel::sqlite::Sqlite).load(c)?,
        DbConnection::Postgresql(c) => page_query!(diesel::pg::Pg).load(c)?,
    };
    let role_of = |id: &str| {
        roles
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or(diesel::result::Error::NotFound)
    };
    let rows = rows
        .into_iter()
        .map(|(membership, user)| {
            let role = role_of(&membership.role_id)?;
            Ok(MemberRow {
                membership,
                user,
                role,
            })
        })
        .collect::<QueryResult<_>>()?;
    Ok(PageOutput::Rows(rows))
}

pub fn find(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Option<MemberRow>> {
    use super::schema::users;
    let row: Option<(Membership, super::users::User, Role)> = memberships::table
        .inner_join(users::table)
        .inner_join(roles::table)
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq(user_id))
        .select((
            Membership::as_select(),
            super::users::User::as_select(),
            Role::as_select(),
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(membership, user, role)| MemberRow {
        membership,
        user,
        role,
    }))
}

pub const ACTIVE: &str = "active";
pub const INACTIVE: &str = "inactive";

/// Active memberships whose access ended by `now`, the longest-ended first: (org, user).
/// Served by `memberships_expiry_idx`, which holds only memberships with an end.
pub fn due_for_expiry(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(String, String)>> {
    memberships::table
        .filter(memberships::access_until.is_not_null())
        .filter(memberships::status.eq(ACTIVE))
        .filter(memberships::access_until.le(now))
        .order((
            memberships::access_until.asc(),
            memberships::org_id.asc(),
            memberships::user_id.asc(),
        ))
        .select((memberships::org_id, memberships::user_id))
        .limit(limit)
        .load(conn)
}

/// Sets or clears (`None`) when the membership's access ends.
pub fn set_access_until(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    until: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .set((
        memberships::access_until.eq(until),
        memberships::updated_at.eq(Some(super::now())),
    ))
    .execute(conn)
}

/// Sets the membership's status and moves it between the organization's counts, in the
/// caller's transaction. The update only matches a row holding the other status, so the
/// count moves exactly when the row did, even when two transactions race on it (the
/// second, after waiting for the first's row lock, matches nothing). Answers the number
/// of rows changed: 0 when the member is not there or already has that status.
pub fn set_status(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    status: &str,
) -> QueryResult<usize> {
    let from = match status {
        ACTIVE => INACTIVE,
        INACTIVE => ACTIVE,
        other => {
            return Err(diesel::result::Error::QueryBuilderError(
                format!("no membership status {other:?}").into(),
            ));
        }
    };
    let changed = diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id))
            .filter(memberships::status.eq(from)),
    )
    .set((
        memberships::status.eq(status),
        memberships::updated_at.eq(Some(super::now())),
    ))
    .execute(conn)?;
    let n = changed as i64;
    super::member_counts::adjust(conn, org_id, &[(from, -n), (status, n)])?;
    Ok(changed)
}

pub fn set_role(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    role_id: &str,
) -> QueryResult<usize> {
    diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .set((
        memberships::role_id.eq(role_id),
        memberships::updated_at.eq(Some(super::now())),
    ))
    .execute(conn)
}

/// Keeps the copied name in step with the account, in every organization.
pub fn set_sort_name(
    conn: &mut DbConnection,
    user_id: &str,
    sort_name: &str,
) -> QueryResult<usize> {
    diesel::update(memberships::table.filter(memberships::user_id.eq(user_id)))
        .set((
            memberships::sort_name.eq(sort_name),
            memberships::updated_at.eq(Some(super::now())),
        ))
        .execute(conn)
}

/// Deletes the membership and takes it off the organization's count of its status, in
/// the caller's transaction (the status comes back from the DELETE itself, so it is the
/// one the row had when it went).
pub fn delete(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<usize> {
    let statuses: Vec<String> = diesel::delete(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .returning(memberships::status)
    .get_results(conn)?;
    for status in &statuses {
        super::member_counts::adjust(conn, org_id, &[(status.as_str(), -1)])?;
    }
    Ok(statuses.len())
}

/// Whether at least one active member with an active account holds a role with
/// `org.manage`, directly or through a group. `admin_role_ids` are the organization's
/// roles that grant it.
/// `on_at`: count only admins whose last day is not over by then.
pub fn any_active_admin(
    conn: &mut DbConnection,
    org_id: &str,
    admin_role_ids: &[String],
    on_at: Option<NaiveDateTime>,
) -> QueryResult<bool> {
    let admin_groups = super::groups::granting(conn, org_id, admin_role_ids)?;
    // Every day set is later than this: without `on_at`, no admin is left out.
    let ends_after = on_at.unwrap_or(chrono::DateTime::UNIX_EPOCH.naive_utc());
    // Who holds admin is read from the role index and the admin groups' keys, then checked
    // by user id. One query for "an active member holding admin" walked the organization's
    // active members in some index's order, with every active account on the platform read
    // into a list, before it met one: 1.4 s at a million members, run up to six times per
    // change under the organization's lock. Both reads see the same holders because every
    // change of who holds admin takes that lock first.
    let mut holders: Vec<String> = role_holders_query!(org_id, admin_role_ids)
        .limit(HOLDERS_READ + 1)
        .load(conn)?;
    holders.extend(
        group_members::table
            .filter(group_members::org_id.eq(org_id))
            .filter(group_members::group_id.eq_any(&admin_groups))
            .select(group_members::user_id)
            .limit(HOLDERS_READ + 1)
            .load::<String>(conn)?,
    );
    if holders.len() as i64 > HOLDERS_READ {
        // Admin held that widely is met early in any order: one query walks for it.
        return diesel::select(diesel::dsl::exists(
            active_members_query!(org_id, ends_after).filter(
                memberships::role_id
                    .eq_any(admin_role_ids)
                    .or(memberships::user_id.eq_any(
                        group_members::table
                            .filter(group_members::group_id.eq_any(&admin_groups))
                            .select(group_members::user_id),
                    )),
            ),
        ))
        .get_result(conn);
    }
    holders.sort_unstable();
    holders.dedup();
    for chunk in holders.chunks(500) {
        if diesel::select(diesel::dsl::exists(
            active_members_query!(org_id, ends_after).filter(memberships::user_id.eq_any(chunk)),
        ))
        .get_result(conn)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The most holders of admin [`any_active_admin`] reads to check them one by one.
const HOLDERS_READ: i64 = 5000;

/// The members holding these roles, from the role index alone.
macro_rules! role_holders_query {
    ($org_id:expr, $role_ids:expr) => {
        memberships::table
            .filter(memberships::org_id.eq($org_id))
            .filter(memberships::role_id.eq_any($role_ids))
            .select(memberships::user_id)
    };
}
use role_holders_query;

/// The organization's active members whose day is not over by `ends_after`, with an active
/// account: an account a platform admin disabled cannot sign in, so it administers nothing.
macro_rules! active_members_query {
    ($org_id:expr, $ends_after:expr) => {
        memberships::table
            .inner_join(super::schema::users::table)
            .filter(memberships::org_id.eq($org_id))
            .filter(memberships::status.eq("active"))
            .filter(
                memberships::access_until
                    .is_null()
                    .or(memberships::access_until.gt($ends_after)),
            )
            .filter(super::schema::users::status.eq("active"))
            .select(memberships::user_id)
    };
}
use active_members_query;

/// The plans of [`any_active_admin`]'s two reads: tests check that neither walks the
/// organization.
pub fn explain_admin_check(
    conn: &mut DbConnection,
    org_id: &str,
    admin_role_ids: &[String],
    user_ids: &[String],
) -> QueryResult<Vec<String>> {
    let mut plan = super::explain(conn, role_holders_query!(org_id, admin_role_ids))?;
    let now = super::now();
    plan.extend(super::explain(
        conn,
        active_members_query!(org_id, now).filter(memberships::user_id.eq_any(user_ids)),
    )?);
    Ok(plan)
}

/// (user id, email) of these members of the organization, in one query.
pub fn emails_of(
    conn: &mut DbConnection,
    org_id: &str,
    user_ids: &[String],
) -> QueryResult<Vec<(String, String)>> {
    memberships::table
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq_any(user_ids))
        .select((memberships::user_id, memberships::email))
        .load(conn)
}

/// The database's plan for the first page of the Users tab in each sort: tests use it
/// to prove every sort is served by an index rather than a sort of the organization.
pub fn explain_list(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<(SortKey, String)>> {
    let mut plans = Vec::new();
    for sort in [
        SortKey::Email,
        SortKey::Name,
        SortKey::Created,
        SortKey::LastActive,
    ] {
        let filter = ListFilter::everyone(sort, true, 51);
        let PageOutput::Plan { page, .. } = run_list_page(conn, org_id, &filter, true, None, &[])?
        else {
            unreachable!("asked for a plan")
        };
        plans.push((sort, page.join("\n")));
    }
    Ok(plans)
}

/// The database's plans for a substring search of the Users tab sorted by email: the
/// text-index lookup, then the page query.
pub fn explain_search(conn: &mut DbConnection, org_id: &str, term: &str) -> QueryResult<String> {
    let filter = ListFilter {
        search: Some(Search::Substring(term.to_string())),
        ..ListFilter::everyone(SortKey::Email, false, 51)
    };
    let plan = explain_page(conn, org_id, &filter)?;
    let lookup = plan.search.map(|(_, lines)| lines).unwrap_or_default();
    let walk = plan.walk.map(|w| format!("{w}\n")).unwrap_or_default();
    Ok(format!("{lookup}\n{walk}{}", plan.page))
}

/// What the database plans for one page of the Users tab.
#[derive(Debug)]
pub struct PagePlan {
    /// For a substring search: the plan that found the page (the text index when a walk
    /// gave up), and the text-index lookup that chose the first one (explained even when the
    /// term was `recalled` and it did not run). None where the term was tested on the
    /// holders of the page's role or sign-in method instead (`holders_by_index`).
    pub search: Option<(SearchPlan, String)>,
    /// Whether the term was recalled as common here (`common_terms`), so that no
    /// text-index lookup chose the first plan.
    pub recalled: bool,
    /// The walk of the sort index, when the term was common enough for one, or the holders
    /// of the page's role or sign-in method many enough.
    pub walk: Option<String>,
    /// For a page filtered by role or sign-in method in an order their index does not
    /// keep: whether the holders were read by their index and sorted (few of them, or a
    /// walk that stopped at its budget; with a search the text index cannot answer, few
    /// of them), or a walk of the order's index found the page.
    pub holders_by_index: Option<bool>,
    /// The page query.
    pub page: String,
}

/// The database's plans for the page `filter` asks for, as `list_page` would run it:
/// tests use it to prove each search shape is served by the index meant for it.
pub fn explain_page(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &ListFilter,
) -> QueryResult<PagePlan> {
    let lookup = match &filter.search {
        Some(Search::Substring(term)) => {
            let counts = super::member_counts::by_status(conn, org_id)?;
            let members = counts.members();
            let cap = text_index_cap(members);
            let scope = lookup_scope(conn, members)?;
            let lookup = text_match_query(conn, org_id, term, cap + 1, scope);
            Some(super::explain(conn, lookup)?.join("\n"))
        }
        _ => None,
    };
    let PageOutput::Plan {
        search,
        recalled,
        walk,
        holders_by_index,
        page,
    } = run_list_page(conn, org_id, filter, true, None, &[])?
    else {
        unreachable!("asked for a plan")
    };
    Ok(PagePlan {
        search: search.zip(lookup),
        recalled,
        walk: walk.map(|lines| lines.join("\n")),
        holders_by_index,
        page: page.join("\n"),
    })
}

/// (user id, organization name, role name, status) for a page of accounts.
/// Every organization the account belongs to, active or not, by name.
pub fn all_orgs_of_user(
    conn: &mut DbConnection,
    user_id: &str,
) -> QueryResult<Vec<super::organizations::Organization>> {
    memberships::table
        .inner_join(organizations::table)
        .filter(memberships::user_id.eq(user_id))
        .order(organizations::name.asc())
        .select(super::organizations::Organization::as_select())
        .load(conn)
}

pub fn orgs_of_users(
    conn: &mut DbConnection,
    user_ids: &[String],
) -> QueryResult<Vec<(String, String, String, String)>> {
    memberships::table
        .inner_join(organizations::table)
        .inner_join(roles::table)
        .filter(memberships::user_id.eq_any(user_ids))
        .order(organizations::name.asc())
        .select((
            memberships::user_id,
            organizations::name,
            roles::name,
            memberships::status,
        ))
        .load(conn)
}
