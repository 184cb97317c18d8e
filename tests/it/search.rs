//! Member search on the Users tab (issue 12, item 2): the term chooses between the text
//! index and the sort index, both give the same answer, and odd characters are literal.

use diesel::prelude::*;
use portcullis::db::DbConnection;
use portcullis::db::memberships::{
    self, Cursor, IndexScope, ListFilter, MemberRow, Search, SearchPlan, SortKey,
};

use crate::helpers::*;

const ORG: &str = "my-org";
/// Enough members that a common term has more matches than the text-index plan
/// fetches (`memberships::text_index_cap`, 200 here).
const SEEDED: u64 = 3_000;

/// `SEEDED` demo members (every tenth inactive, roles varied) on top of the admin.
fn seed(app: &TestApp) {
    portcullis::seed_members::seed_members(&mut app.conn(), ORG, SEEDED, |_| {}).unwrap();
}

fn filter(term: &str, sort: SortKey, descending: bool) -> ListFilter {
    ListFilter {
        search: portcullis::domain::member_list::parse_search(Some(term)),
        ..ListFilter::everyone(sort, descending, 51)
    }
}

const SORTS: [(SortKey, bool); 5] = [
    (SortKey::Email, false),
    (SortKey::Email, true),
    (SortKey::Name, false),
    (SortKey::Created, true),
    (SortKey::LastActive, false),
];

/// Seeded emails are `first.lastNNNNNNN.run@demo.example`: `0001234` is one member,
/// `example` every one of them.
const RARE: &str = "0001234";
const COMMON: &str = "example";

/// Every line of a plan, lower-cased, for the assertions below.
fn lower(plan: &str) -> String {
    plan.to_lowercase()
}

fn assert_no_full_scan(plan: &str, what: &str) {
    let plan = lower(plan);
    assert!(!plan.contains("scan memberships"), "{what}: {plan}");
    assert!(!plan.contains("seq scan"), "{what}: {plan}");
}

fn has_sort(plan: &str) -> bool {
    lower(plan).lines().any(|l| {
        let l = l.trim_start().trim_start_matches("->").trim_start();
        l.starts_with("sort ") || l.contains("temp b-tree for order by")
    })
}

/// The page walks an organization index in page order: no sort, no scan.
fn assert_walks_sort_index(plan: &str, what: &str) {
    assert_no_full_scan(plan, what);
    assert!(lower(plan).contains("memberships_org_"), "{what}: {plan}");
    assert!(!has_sort(plan), "{what}: {plan}");
}

/// The holders of the page's role or sign-in method were read by their ids (and on
/// PostgreSQL through their index) and sorted: no order's index was walked for them.
fn assert_reads_holders_by_index(plan: &memberships::PagePlan, what: &str) {
    assert_no_full_scan(&plan.page, what);
    let page = lower(&plan.page);
    for walked in [
        "_org_email_idx",
        "_org_name_idx",
        "_org_created_idx",
        "_org_active_idx",
        "_org_status_",
    ] {
        assert!(!page.contains(walked), "{what}: {page}");
    }
    assert!(has_sort(&plan.page), "{what}: {page}");
    assert_eq!(plan.holders_by_index, Some(true), "{what}");
}

/// A walk of the order's index found the page of the holders of its role or sign-in
/// method, and the page's rows were then read by their ids.
fn assert_walks_for_holders(plan: &memberships::PagePlan, what: &str) {
    let walk = plan.walk.as_deref().expect("a walk for the holders");
    assert_walks_sort_index(walk, what);
    assert_reads_page_by_id(&plan.page, what);
    assert_eq!(plan.holders_by_index, Some(false), "{what}");
}

/// The page's rows, once a walk found them, are read by their ids: no organization index
/// is walked a second time.
fn assert_reads_page_by_id(plan: &str, what: &str) {
    assert_no_full_scan(plan, what);
    let plan = lower(plan);
    assert!(!plan.contains("memberships_org_"), "{what}: {plan}");
    assert!(
        plan.contains("memberships_user_idx") || plan.contains("memberships_pkey"),
        "{what}: {plan}"
    );
}

/// The page reads only the text index's matches and sorts just those.
fn assert_reads_matches_only(plan: &str, postgres: bool, what: &str) {
    if plan == memberships::NO_MATCH_PLAN {
        return;
    }
    assert_no_full_scan(plan, what);
    let plan = lower(plan);
    if postgres {
        // The text index's matches, by their ids: the GIN is not asked twice.
        assert!(plan.contains("user_id = any"), "{what}: {plan}");
        assert!(!plan.contains("memberships_search_idx"), "{what}: {plan}");
    } else {
        assert!(plan.contains("using integer primary key"), "{what}: {plan}");
    }
    assert!(!plan.contains("memberships_org_"), "{what}: {plan}");
    // The matches are sorted and cut to a page before any account is read, then the
    // page's rows sorted again: two sorts at least (PostgreSQL may add one to join the
    // page's ids). Joining first read an account per match, with one sort.
    let sorts = plan
        .lines()
        .filter(|l| {
            let l = l.trim_start().trim_start_matches("->").trim_start();
            // PostgreSQL's node, not its "Sort Key:" line.
            l.starts_with("sort  (") || l.contains("temp b-tree for order by")
        })
        .count();
    assert!(
        sorts >= 2,
        "a page of matches, then their accounts: {what}: {plan}"
    );
}

/// The lookup that chose the plan came from the text index: on PostgreSQL with the
/// organization as a key of its scan, or (an organization holding most members, `scope`
/// Everyone) checked on each match instead. For a common term PostgreSQL may instead walk
/// the organization's primary key until the cap is passed, which reads no more rows than
/// that and none of another organization.
fn assert_lookup_uses_text_index(
    lookup: &str,
    postgres: bool,
    scope: IndexScope,
    common: bool,
    what: &str,
) {
    let lookup = lower(lookup);
    if postgres && common && lookup.contains("index scan using memberships_pkey") {
        assert!(lookup.contains("limit"), "{what}: {lookup}");
        assert!(lookup.contains("index cond: (org_id ="), "{what}: {lookup}");
    } else if postgres {
        assert!(
            lookup.contains("memberships_search_idx"),
            "{what}: {lookup}"
        );
        match scope {
            IndexScope::Organization => assert!(
                lookup.contains("index cond: ((org_id ="),
                "the organization is a key of the index: {what}: {lookup}"
            ),
            IndexScope::Everyone => {
                assert!(
                    !lookup.contains("index cond: ((org_id ="),
                    "the organization is no key of the index: {what}: {lookup}"
                );
                assert!(
                    lookup.contains("filter: ((org_id || ''::text) ="),
                    "the organization is checked on each match: {what}: {lookup}"
                );
            }
        }
    } else {
        assert!(
            lookup.contains("member_search virtual table"),
            "{what}: {lookup}"
        );
    }
    assert!(!lookup.contains("seq scan"), "{what}: {lookup}");
}

#[actix_web::test]
async fn every_search_shape_is_served_by_the_index_meant_for_it() {
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    let org = app.org_id(ORG);
    let postgres = app.db.is_postgres();
    let mut conn = app.conn();
    if postgres {
        // A one-organization table of 3,000 rows, every one matching `example`, makes
        // reading the heap until the cap the cheapest lookup; ask what serves it when
        // the table also holds other organizations, as the existing plan tests do.
        diesel::connection::SimpleConnection::batch_execute(&mut *conn, "SET enable_seqscan = off")
            .unwrap();
    }
    let engineer = app.role_id(ORG, "engineer");
    let scope = memberships::search_scope(&mut conn, &org).unwrap();
    assert_eq!(
        scope,
        IndexScope::Everyone,
        "the organization holds most members"
    );
    let cursor_of = |conn: &mut DbConnection, f: &ListFilter| -> Option<Cursor> {
        let rows = memberships::list_page(conn, &org, f).unwrap();
        rows.get(9).map(|r| r.cursor(f.sort))
    };

    assert_eq!(
        memberships::search_plan(&mut conn, &org, RARE).unwrap(),
        SearchPlan::TextIndex
    );
    assert_eq!(
        memberships::search_plan(&mut conn, &org, "hopper0001").unwrap(),
        SearchPlan::TextIndex
    );
    assert_eq!(
        memberships::search_plan(&mut conn, &org, COMMON).unwrap(),
        SearchPlan::SortIndex
    );

    for (sort, descending) in SORTS {
        for (status, role) in [
            (None, None),
            (Some("inactive".to_string()), None),
            (None, Some(engineer.clone())),
        ] {
            // Role filters only have an index in email order.
            if role.is_some() && sort != SortKey::Email {
                continue;
            }
            // `hopper0001` matches about sixty members: a page sorted from many matches.
            for term in ["ad", RARE, "hopper0001", "r%c", COMMON] {
                let mut f = filter(term, sort, descending);
                f.status = status.clone();
                f.role_id = role.clone();
                for with_cursor in [false, true] {
                    if with_cursor {
                        // A position in the unsearched list: any cursor must keep the plan.
                        let mut all = f.clone();
                        all.search = None;
                        f.after = cursor_of(&mut conn, &all);
                        if f.after.is_none() {
                            continue;
                        }
                    }
                    let what = format!(
                        "q={term} sort={sort:?} desc={descending} status={status:?} \
                         role={} cursor={with_cursor}",
                        role.is_some()
                    );
                    if postgres {
                        // As in the list plan test: on small tables ask whether an index
                        // can serve the page in order. A prefix search is one query; a
                        // common term's walk is asked as it stands, since the page after
                        // it sorts the rows it found.
                        let walks = term.chars().count() < 3;
                        let set = if walks {
                            "SET enable_sort = off"
                        } else {
                            "RESET enable_sort"
                        };
                        diesel::connection::SimpleConnection::batch_execute(&mut *conn, set)
                            .unwrap();
                    }
                    let plan = memberships::explain_page(&mut conn, &org, &f).unwrap();
                    match (&f.search, &plan.search) {
                        (Some(Search::Prefix(_)), None) => {
                            assert_walks_sort_index(&plan.page, &what)
                        }
                        (Some(Search::Substring(_)), Some((SearchPlan::SortIndex, lookup))) => {
                            assert_eq!(term, COMMON, "{what}");
                            assert_lookup_uses_text_index(lookup, postgres, scope, true, &what);
                            let walk = plan.walk.as_deref().expect("a walk");
                            assert_walks_sort_index(walk, &what);
                            assert_reads_page_by_id(&plan.page, &what);
                        }
                        (Some(Search::Substring(_)), Some((SearchPlan::TextIndex, lookup))) => {
                            assert_ne!(term, COMMON, "{what}");
                            assert_lookup_uses_text_index(lookup, postgres, scope, false, &what);
                            assert_reads_matches_only(&plan.page, postgres, &what);
                        }
                        other => panic!("{what}: unexpected {other:?}"),
                    }
                }
            }
        }
    }
}

/// Every member of the organization matching `term`, filtered and ordered as the page
/// query would, by reading them all.
fn brute_force(conn: &mut DbConnection, org: &str, f: &ListFilter, term: &str) -> Vec<String> {
    use portcullis::db::schema::{memberships as m, users};
    // The sign-in method as the account holds it, not the membership's copy of it.
    let mut all: Vec<memberships::Membership> = m::table
        .inner_join(users::table)
        .filter(m::org_id.eq(org))
        .select((memberships::Membership::as_select(), users::auth_method))
        .load::<(memberships::Membership, String)>(conn)
        .unwrap()
        .into_iter()
        .filter(|(r, method)| {
            let found = match &f.search {
                // From the start of the email, of the name, or of a word of the name.
                Some(Search::Prefix(p)) => {
                    r.email.starts_with(p.as_str())
                        || r.sort_name.starts_with(p.as_str())
                        || r.sort_name.contains(&format!(" {p}"))
                }
                _ => format!("{} {}", r.email, r.sort_name).contains(term),
            };
            found
                && f.status.as_ref().is_none_or(|s| &r.status == s)
                && f.role_id.as_ref().is_none_or(|id| &r.role_id == id)
                && f.auth_method.as_ref().is_none_or(|a| a == method)
                && f.access_ends_by.is_none_or(|by| {
                    r.status == "active" && r.access_until.is_some_and(|until| until <= by)
                })
        })
        .map(|(r, _)| r)
        .collect();
    let key = |r: &memberships::Membership| -> (String, String) {
        let fmt = memberships::TIMESTAMP_CURSOR_FORMAT;
        let k = match f.sort {
            SortKey::Email => r.email.clone(),
            SortKey::Name => r.sort_name.clone(),
            SortKey::Created => r.created_at.format(fmt).to_string(),
            SortKey::LastActive => r.last_active_at.format(fmt).to_string(),
        };
        (k, r.user_id.clone())
    };
    all.sort_by_key(key);
    if f.descending {
        all.reverse();
    }
    all.into_iter().map(|r| r.user_id).collect()
}

/// Up to `pages` pages of 50, following each page's cursor, with the plan forced or
/// (`None`) chosen by the term.
fn paged(
    conn: &mut DbConnection,
    org: &str,
    f: &ListFilter,
    plan: Option<SearchPlan>,
    pages: usize,
) -> Vec<String> {
    let mut f = f.clone();
    let mut seen = Vec::new();
    for _ in 0..pages {
        let mut rows: Vec<MemberRow> = memberships::list_page_with(conn, org, &f, plan).unwrap();
        let more = rows.len() > 50;
        rows.truncate(50);
        seen.extend(rows.iter().map(|r| r.user.id.clone()));
        match (more, rows.last()) {
            (true, Some(last)) => f.after = Some(last.cursor(f.sort)),
            _ => break,
        }
    }
    seen
}

#[actix_web::test]
async fn both_plans_give_what_reading_every_member_gives() {
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    let org = app.org_id(ORG);
    let engineer = app.role_id(ORG, "engineer");
    let mut conn = app.conn();
    for term in [RARE, "ada.hop", "hopper", "zzzz", COMMON] {
        for (sort, descending) in SORTS {
            for (status, role) in [
                (None, None),
                (Some("inactive".to_string()), None),
                (None, Some(engineer.clone())),
            ] {
                let mut f = filter(term, sort, descending);
                f.status = status;
                f.role_id = role;
                let mut expected = brute_force(&mut conn, &org, &f, term);
                expected.truncate(150);
                // Forced either way, and as the term chooses (a walk within its budget).
                for plan in [
                    Some(SearchPlan::TextIndex),
                    Some(SearchPlan::SortIndex),
                    None,
                ] {
                    assert_eq!(
                        paged(&mut conn, &org, &f, plan, 3),
                        expected,
                        "q={term} {plan:?} sort={sort:?} desc={descending} status={:?} role={:?}",
                        f.status,
                        f.role_id
                    );
                }
            }
        }
    }
}

/// The text index holds a member's email and name joined by a space, so a term with a
/// space may match across the two: `example a` is the `…@demo.example` of every member
/// whose first name starts with an a (Ada, Alan), then the name. A walk tests an entry's
/// email and name apart for a term without a space, and must not for this one, in its
/// own query or in the page query's (a filter on the account).
#[actix_web::test]
async fn a_term_spanning_the_email_and_the_name_matches_in_every_plan() {
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    let term = "example a";
    let f = filter(term, SortKey::Email, false);
    let mut expected = brute_force(&mut conn, &org, &f, term);
    assert!(
        expected.len() as i64 > memberships::text_index_cap(SEEDED as i64 + 1),
        "{} matches",
        expected.len()
    );
    expected.truncate(150);
    let mut by_account = f.clone();
    // Every seeded member signs in with a password.
    by_account.auth_method = Some("password".to_string());
    for f in [&f, &by_account] {
        for plan in [
            Some(SearchPlan::TextIndex),
            Some(SearchPlan::SortIndex),
            None,
        ] {
            assert_eq!(
                paged(&mut conn, &org, f, plan, 3),
                expected,
                "{plan:?} auth={:?}",
                f.auth_method
            );
        }
    }
}

#[actix_web::test]
async fn a_walk_that_finds_its_matches_far_down_the_order_hands_over_to_the_text_index() {
    let app = spawn_app().await;
    app.setup_admin().await;
    // `ada` matches every sixteenth member, more than the text-index plan fetches, and
    // every `ada.` address sorts before all others: first in email order, last in its
    // reverse, where a walk would read nearly the whole organization.
    const MEMBERS: u64 = 6_000;
    portcullis::seed_members::seed_members(&mut app.conn(), ORG, MEMBERS, |_| {}).unwrap();
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    let members = MEMBERS as i64 + 1;
    let matching = MEMBERS as i64 / 16;
    assert!(matching > memberships::text_index_cap(members));
    assert!(members - matching > memberships::walk_budget(members, matching));

    let near = filter("ada", SortKey::Email, false);
    let plan = memberships::explain_page(&mut conn, &org, &near).unwrap();
    assert_eq!(plan.search.map(|(p, _)| p), Some(SearchPlan::SortIndex));
    assert!(plan.walk.is_some());

    let far = filter("ada", SortKey::Email, true);
    let plan = memberships::explain_page(&mut conn, &org, &far).unwrap();
    assert_eq!(
        plan.search.map(|(p, _)| p),
        Some(SearchPlan::TextIndex),
        "the walk gave up after its budget"
    );
    assert!(plan.walk.is_some(), "the walk was tried first");

    // The last page of managers matching `ada` (75 of them, 300 managers): the walk of
    // the managers comes back short because their order ends, well within its budget,
    // and the text index is not asked again.
    let mut managers = filter("ada", SortKey::Email, false);
    managers.role_id = Some(app.role_id(ORG, "manager"));
    let first = memberships::list_page(&mut conn, &org, &managers).unwrap();
    let mut last = managers.clone();
    last.after = Some(first[49].cursor(SortKey::Email));
    let plan = memberships::explain_page(&mut conn, &org, &last).unwrap();
    assert_eq!(plan.search.map(|(p, _)| p), Some(SearchPlan::SortIndex));
    assert_eq!(
        memberships::list_page(&mut conn, &org, &last)
            .unwrap()
            .len(),
        25
    );

    // All still give what reading every member gives, page after page.
    for f in [near, far, managers] {
        let mut expected = brute_force(&mut conn, &org, &f, "ada");
        expected.truncate(150);
        let seen = paged(&mut conn, &org, &f, None, 3);
        assert_eq!(seen, expected, "descending: {}", f.descending);
    }
}

/// A term the text index found common is walked for at once the next time it is
/// searched (its next page, the same search again), without asking the text index how
/// many match. A verdict that stopped holding costs a walk, never a row: once most of the
/// term's members are gone the walk comes back short, the text index shows exactly those
/// left, and the verdict is dropped.
#[actix_web::test]
async fn a_term_found_common_is_walked_for_at_once_and_shows_exactly_its_matches_once_rare() {
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    // More than the text-index plan sorts, all sorting before every seeded member: a
    // walk in email order fills its page at once.
    let quills: Vec<String> = (0..250)
        .map(|n| {
            let email = format!("aa.quill{n:03}@quill.test");
            app.add_member(ORG, &email, "Zelda", "Quill", "member", false)
        })
        .collect();
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    let f = filter("quill", SortKey::Email, false);
    let members = SEEDED as i64 + 251;
    assert!(quills.len() as i64 > memberships::text_index_cap(members));

    let first = memberships::explain_page(&mut conn, &org, &f).unwrap();
    assert!(!first.recalled, "asked the text index first");
    assert_eq!(first.search.map(|(p, _)| p), Some(SearchPlan::SortIndex));
    let again = memberships::explain_page(&mut conn, &org, &f).unwrap();
    assert!(again.recalled, "walked at once");
    assert_eq!(again.search.map(|(p, _)| p), Some(SearchPlan::SortIndex));
    // A filter on the sign-in method, on the membership as the role is, acts on it too.
    let mut by_method = f.clone();
    by_method.auth_method = Some("password".to_string());
    let plan = memberships::explain_page(&mut conn, &org, &by_method).unwrap();
    assert!(plan.recalled);
    let mut expected = brute_force(&mut conn, &org, &f, "quill");
    assert_eq!(expected.len(), 250);
    expected.truncate(150);
    assert_eq!(paged(&mut conn, &org, &f, None, 3), expected);
    assert_eq!(paged(&mut conn, &org, &by_method, None, 3), expected);

    for user_id in &quills[3..] {
        memberships::delete(&mut conn, &org, user_id).unwrap();
    }
    let left = brute_force(&mut conn, &org, &f, "quill");
    assert_eq!(left, paged(&mut conn, &org, &f, None, 1));
    assert_eq!(left.len(), 3);
    let after = memberships::explain_page(&mut conn, &org, &f).unwrap();
    assert!(!after.recalled, "the verdict was dropped");
    assert!(after.walk.is_none(), "the text index chose the plan");
    assert_eq!(after.search.map(|(p, _)| p), Some(SearchPlan::TextIndex));
}

#[actix_web::test]
async fn percent_underscore_backslash_and_quotes_are_matched_literally() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    for (email, first, last) in [
        ("per%cent@x.test", "Pat", "Percent"),
        ("perxcent@x.test", "Pia", "Plain"),
        ("under_score@x.test", "Uma", "Under"),
        ("underxscore@x.test", "Uri", "Plain"),
        ("back\\slash@x.test", "Bo", "Back"),
        ("backxslash@x.test", "Bea", "Plain"),
        ("rock@x.test", "Dwayne \"The", "Rock\" Johnson"),
        ("rocky@x.test", "Dwayne The", "Rocky Johnson"),
    ] {
        app.add_member(ORG, email, first, last, "member", false);
    }
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    for (term, only) in [
        ("r%c", "per%cent@x.test"),
        ("r_s", "under_score@x.test"),
        ("k\\s", "back\\slash@x.test"),
        ("e \"the", "rock@x.test"),
    ] {
        for plan in [SearchPlan::TextIndex, SearchPlan::SortIndex] {
            let rows = memberships::list_page_with(
                &mut conn,
                &org,
                &filter(term, SortKey::Email, false),
                Some(plan),
            )
            .unwrap();
            let emails: Vec<&str> = rows.iter().map(|r| r.user.email.as_str()).collect();
            assert_eq!(emails, vec![only], "q={term} {plan:?}");
        }
    }
    let page = admin.get("/orgs/my-org/users?q=r%25c").await;
    assert_eq!(row_emails(&page.body), vec!["per%cent@x.test"]);
    let page = admin.get("/orgs/my-org/users?q=r_s").await;
    assert_eq!(row_emails(&page.body), vec!["under_score@x.test"]);
}

#[actix_web::test]
async fn a_term_under_three_characters_matches_starts_and_says_so() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(ORG, "sam@x.test", "Sam", "Smith", "member", false);
    app.add_member(ORG, "rosa@x.test", "Rosa", "Perlman", "member", false);

    let short = admin.get("/orgs/my-org/users?q=sa").await;
    assert_eq!(short.status, 200);
    assert_eq!(row_emails(&short.body), vec!["sam@x.test"]);
    assert!(short.body.contains("data-search-hint"), "{}", short.body);
    assert!(
        short
            .body
            .contains(portcullis::domain::member_list::SHORT_SEARCH_HINT)
    );
    assert!(
        short.body.contains("value=\"sa\""),
        "the term stays in the box"
    );

    let long = admin.get("/orgs/my-org/users?q=osa").await;
    assert_eq!(row_emails(&long.body), vec!["rosa@x.test"]);
    assert!(!long.body.contains("data-search-hint"));
}

#[test]
fn the_search_tag_is_what_the_migration_computes() {
    // The SQL of migrations/sqlite/2026-12-01-100001_member_search_org_tag, on ids of
    // every shape the Rust side must agree with.
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("t.db").to_string_lossy().into_owned();
    let mut conn = diesel::SqliteConnection::establish(&url).unwrap();
    #[derive(QueryableByName)]
    struct Tag {
        #[diesel(sql_type = diesel::sql_types::Text)]
        tag: String,
    }
    let up = include_str!("../../migrations/sqlite/2026-12-01-100001_member_search_org_tag/up.sql");
    let start = up.rfind("SELECT rid, email || ' ' || sort_name, ").unwrap()
        + "SELECT rid, email || ' ' || sort_name, ".len();
    let expr = &up[start..up.rfind(" FROM memberships").unwrap()];
    for id in [
        "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
        "0193B2C4-5D6E-7F80-9A1B-2C3D4E5F6A7B",
        "ffffffff-ffff-7fff-bfff-ffffffffffff",
        "org",
        "",
        "org-with-non-hex!",
    ] {
        let sql = format!("SELECT {} AS tag", expr.replace("org_id", "?"));
        let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
        for _ in 0..9 {
            query = query.bind::<diesel::sql_types::Text, _>(id);
        }
        let tag: Tag = query.get_result(&mut conn).unwrap();
        assert_eq!(tag.tag, memberships::search_tag(id), "id {id:?}");
        assert_eq!(tag.tag.chars().count(), 3);
    }
}

/// A person in two organizations who matches the term in both: a search of one shows
/// them once, with that organization's status and role, whichever plan serves it. The
/// page is sorted from the matches' memberships and then joined to their accounts, so a
/// join through the account must not bring the other organization's membership along.
#[actix_web::test]
async fn a_member_of_two_organizations_is_shown_with_this_ones_standing() {
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    app.create_org("other", "Other");
    let shared = app.add_member(
        ORG,
        "zelda.quill@both.test",
        "Zelda",
        "Quill",
        "manager",
        false,
    );
    app.add_member(
        "other",
        "zelda.quill@both.test",
        "Zelda",
        "Quill",
        "engineer",
        false,
    );
    app.add_member(
        "other",
        "zelda.quill2@other.test",
        "Zelda",
        "Quill",
        "member",
        false,
    );
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    memberships::set_status(&mut conn, &org, &shared, memberships::INACTIVE).unwrap();
    let manager = app.role_id(ORG, "manager");
    for plan in [
        None,
        Some(SearchPlan::TextIndex),
        Some(SearchPlan::SortIndex),
    ] {
        for sort in [SortKey::Email, SortKey::Name] {
            let f = filter("zelda.quill", sort, false);
            let rows = memberships::list_page_with(&mut conn, &org, &f, plan).unwrap();
            let shown: Vec<(&str, &str, &str)> = rows
                .iter()
                .map(|r| {
                    (
                        r.membership.org_id.as_str(),
                        r.membership.status.as_str(),
                        r.role.id.as_str(),
                    )
                })
                .collect();
            assert_eq!(
                shown,
                [(org.as_str(), "inactive", manager.as_str())],
                "{plan:?} {sort:?}"
            );
        }
    }
    assert_eq!(
        memberships::search_plan(&mut conn, &org, "zelda.quill").unwrap(),
        SearchPlan::TextIndex
    );
}

/// A role few hold, in an order its index does not keep (the role's index is in email
/// order), is read by the role's index: its holders found and sorted, as a text-index
/// search's matches are. Walking the order's index for them read the whole organization
/// for a role one member holds (1.0–2.5 s at 200,000 members). A role many hold is walked
/// for, which meets its holders early. Either way the pages, cursors included, list what
/// reading every holder gives, on both databases.
#[actix_web::test]
async fn a_role_few_hold_is_read_by_its_index_in_any_order() {
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    let org = app.org_id(ORG);
    let postgres = app.db.is_postgres();
    let mut conn = app.conn();
    if postgres {
        diesel::connection::SimpleConnection::batch_execute(
            &mut *conn,
            "ANALYZE memberships; SET enable_seqscan = off",
        )
        .unwrap();
    }
    // Every twentieth seeded member is a Manager (150), every fifth an Engineer (600).
    let (few, many) = (app.role_id(ORG, "manager"), app.role_id(ORG, "engineer"));
    for (sort, descending) in [
        (SortKey::Name, false),
        (SortKey::Name, true),
        (SortKey::Created, true),
        (SortKey::Created, false),
        (SortKey::LastActive, false),
        (SortKey::LastActive, true),
    ] {
        for (role, is_few) in [(&few, true), (&many, false)] {
            let f = ListFilter {
                role_id: Some(role.clone()),
                ..ListFilter::everyone(sort, descending, 51)
            };
            let what = format!("sort={sort:?} desc={descending} few={is_few}");
            let plan = memberships::explain_page(&mut conn, &org, &f).unwrap();
            if is_few {
                assert_reads_holders_by_index(&plan, &what);
            } else {
                assert_walks_for_holders(&plan, &what);
            }

            // What reading every holder and sorting them gives, page after page.
            let mut every: Vec<MemberRow> = Vec::new();
            let all = ListFilter {
                role_id: Some(role.clone()),
                ..ListFilter::everyone(SortKey::Email, false, 10_000)
            };
            every.extend(memberships::list_page(&mut conn, &org, &all).unwrap());
            let key = |r: &MemberRow| r.cursor(sort);
            every.sort_by(|a, b| {
                let (a, b) = (key(a), key(b));
                let order = (a.key, a.user_id).cmp(&(b.key, b.user_id));
                if descending { order.reverse() } else { order }
            });
            let expected: Vec<String> =
                every.iter().map(|r| r.membership.user_id.clone()).collect();
            let mut shown = Vec::new();
            let mut page = f.clone();
            loop {
                let rows = memberships::list_page(&mut conn, &org, &page).unwrap();
                let more = rows.len() as i64 == page.limit;
                let rows = &rows[..rows.len().min(50)];
                shown.extend(rows.iter().map(|r| r.membership.user_id.clone()));
                if !more {
                    break;
                }
                page.after = rows.last().map(|r| r.cursor(sort));
            }
            assert_eq!(shown, expected, "{what}");
        }
    }
}

/// The `auth=` filter reads the sign-in method from each membership's copy of it, which
/// every change of the account's method reaches. A method few members use is read by its
/// index and sorted, as a role few hold is (walking an order's index for it read the
/// whole organization where nobody used it); one most use walks the order's index. Every
/// page, followed by its cursors, lists what the accounts themselves say.
#[actix_web::test]
async fn a_sign_in_method_few_use_is_read_by_its_index_in_any_order() {
    use portcullis::db::two_factor::set_auth_method;
    use portcullis::domain::two_factor::{AUTH_METHOD_PASSWORD, AUTH_METHOD_TOTP};
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    let everyone = ListFilter::everyone(SortKey::Email, false, 10_000);
    let members: Vec<String> = memberships::list_page(&mut conn, &org, &everyone)
        .unwrap()
        .into_iter()
        .map(|r| r.membership.user_id)
        .collect();
    // Every fiftieth member turns two-factor on (61 of 3,001), and one of them off again.
    let enrolled: Vec<&String> = members.iter().step_by(50).collect();
    for id in &enrolled {
        set_auth_method(&mut conn, id, AUTH_METHOD_TOTP).unwrap();
    }
    set_auth_method(&mut conn, enrolled[1], AUTH_METHOD_PASSWORD).unwrap();
    if app.db.is_postgres() {
        diesel::connection::SimpleConnection::batch_execute(
            &mut *conn,
            "ANALYZE memberships; SET enable_seqscan = off",
        )
        .unwrap();
    }
    let few_use = |method: &str| method == AUTH_METHOD_TOTP;
    for (sort, descending) in [
        (SortKey::Email, false),
        (SortKey::Email, true),
        (SortKey::Name, false),
        (SortKey::Name, true),
        (SortKey::Created, true),
        (SortKey::LastActive, false),
    ] {
        for method in [AUTH_METHOD_TOTP, AUTH_METHOD_PASSWORD] {
            let f = ListFilter {
                auth_method: Some(method.to_string()),
                ..ListFilter::everyone(sort, descending, 51)
            };
            let what = format!("sort={sort:?} desc={descending} auth={method}");
            let plan = memberships::explain_page(&mut conn, &org, &f).unwrap();
            if sort != SortKey::Email {
                if few_use(method) {
                    assert_reads_holders_by_index(&plan, &what);
                } else {
                    assert_walks_for_holders(&plan, &what);
                }
            }
            let expected = brute_force(&mut conn, &org, &f, "");
            assert_eq!(expected.len(), if few_use(method) { 60 } else { 2_941 });
            assert_eq!(paged(&mut conn, &org, &f, None, 100), expected, "{what}");
        }
    }
}

/// A search the text index cannot answer with its matches (a term common here, a prefix
/// of under three characters), or the "expiring" filter, among the holders of a sign-in
/// method or role few hold: those few are read by their index and the term and the
/// expiry tested on each. A walk for the term tested every member on the way, and read
/// the whole organization for a method nobody there uses.
#[actix_web::test]
async fn a_search_among_few_holders_tests_the_term_on_them_alone() {
    use portcullis::db::two_factor::set_auth_method;
    use portcullis::domain::two_factor::{AUTH_METHOD_PASSWORD, AUTH_METHOD_TOTP};
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    let on_two_factor = |q: &str| ListFilter {
        search: portcullis::domain::member_list::parse_search(Some(q)),
        auth_method: Some(AUTH_METHOD_TOTP.to_string()),
        ..ListFilter::everyone(SortKey::Name, false, 51)
    };
    // Nobody on two-factor yet: no member is read.
    for q in ["mar", "li"] {
        let plan = memberships::explain_page(&mut conn, &org, &on_two_factor(q)).unwrap();
        assert_eq!(plan.page, memberships::NO_MATCH_PLAN, "q={q}");
        assert_eq!(plan.search, None, "q={q}");
        assert_eq!(plan.holders_by_index, Some(true), "q={q}");
        assert!(paged(&mut conn, &org, &on_two_factor(q), None, 2).is_empty());
    }
    let everyone = ListFilter::everyone(SortKey::Email, false, 10_000);
    let members = memberships::list_page(&mut conn, &org, &everyone).unwrap();
    // Every fiftieth member turns two-factor on (61 of 3,001); a third of the members'
    // access ends in a week, another third's in a year.
    for row in members.iter().step_by(50) {
        set_auth_method(&mut conn, &row.membership.user_id, AUTH_METHOD_TOTP).unwrap();
    }
    let now = chrono::Utc::now().naive_utc();
    for (i, row) in members.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
        let ends = now + chrono::Duration::days(if i % 3 == 1 { 7 } else { 365 });
        memberships::set_access_until(&mut conn, &org, &row.membership.user_id, Some(ends))
            .unwrap();
    }
    let expiring = Some(now + chrono::Duration::days(30));
    if app.db.is_postgres() {
        diesel::connection::SimpleConnection::batch_execute(
            &mut *conn,
            "ANALYZE memberships; SET enable_seqscan = off",
        )
        .unwrap();
    }
    // `mar` (Margaret, Lamarr) matches 353 members, more than the text index hands over
    // at this size; `li` is a prefix (Linus, Liskov). Every twentieth seeded member is a
    // Manager (150), every fifth an Engineer (600).
    assert_eq!(
        memberships::search_plan(&mut conn, &org, "mar").unwrap(),
        SearchPlan::SortIndex
    );
    let (manager, engineer) = (app.role_id(ORG, "manager"), app.role_id(ORG, "engineer"));
    let held = |method: Option<&str>, role: Option<&String>| ListFilter {
        auth_method: method.map(str::to_string),
        role_id: role.cloned(),
        ..ListFilter::everyone(SortKey::Name, false, 51)
    };
    let mut tested_on_few = 0;
    for (sort, descending) in [
        (SortKey::Name, false),
        (SortKey::Name, true),
        (SortKey::Created, true),
        (SortKey::LastActive, false),
    ] {
        for (holders, few) in [
            (held(Some(AUTH_METHOD_TOTP), None), true),
            (held(None, Some(&manager)), true),
            (held(Some(AUTH_METHOD_PASSWORD), None), false),
            (held(None, Some(&engineer)), false),
        ] {
            // `example` matches every member: a few holders' pages follow their cursors.
            for (term, ends_by) in [
                ("mar", None),
                ("li", None),
                (COMMON, None),
                ("", expiring),
                ("mar", expiring),
            ] {
                let f = ListFilter {
                    search: portcullis::domain::member_list::parse_search(Some(term)),
                    access_ends_by: ends_by,
                    sort,
                    descending,
                    ..holders.clone()
                };
                let what = format!(
                    "q={term} sort={sort:?} desc={descending} auth={:?} role={} expiring={}",
                    f.auth_method,
                    f.role_id.is_some(),
                    ends_by.is_some()
                );
                let plan = memberships::explain_page(&mut conn, &org, &f).unwrap();
                if few {
                    assert_reads_holders_by_index(&plan, &what);
                    assert!(plan.walk.is_none(), "{what}");
                    assert_eq!(plan.search, None, "{what}");
                } else {
                    assert_ne!(plan.holders_by_index, Some(true), "{what}");
                }
                let expected = brute_force(&mut conn, &org, &f, term);
                assert!(!expected.is_empty(), "{what}");
                if few {
                    let in_order = ListFilter {
                        sort,
                        descending,
                        ..holders.clone()
                    };
                    let holders = brute_force(&mut conn, &org, &in_order, "");
                    if term == COMMON {
                        assert!(expected.len() > 50, "{what}");
                        assert_eq!(expected, holders, "{what}");
                    } else {
                        assert!(expected.len() < holders.len(), "{what}");
                    }
                    tested_on_few += 1;
                }
                assert_eq!(paged(&mut conn, &org, &f, None, 100), expected, "{what}");
            }
        }
    }
    assert_eq!(tested_on_few, 40);
}

/// A membership added while its account turns two-factor on elsewhere (an invitation
/// accepted in one tab, the enrolment finished in another) is filed under the method the
/// account ends with. On PostgreSQL each would otherwise commit without seeing the other:
/// the change of method waits for the new membership instead.
#[actix_web::test]
async fn a_membership_added_while_its_account_turns_two_factor_on_is_filed_under_it() {
    use portcullis::domain::two_factor::AUTH_METHOD_TOTP;
    let app = spawn_app().await;
    app.setup_admin().await;
    let id = app.add_member(ORG, "ada@example.com", "Ada", "L", "member", true);
    app.create_org("other-org", "Other");
    let (other, role) = (app.org_id("other-org"), app.role_id("other-org", "member"));
    // Read before the change, as an acceptance reads the account it adds.
    let account = portcullis::db::users::find(&mut app.conn(), &id)
        .unwrap()
        .unwrap();
    let (added, go) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let pool = app.pool.clone();
    let org = other.clone();
    let joining = std::thread::spawn(move || {
        let mut conn = pool.get().unwrap();
        portcullis::db::write_tx(&mut conn, |conn| {
            memberships::insert(conn, &org, &account, &role)?;
            added.0.send(()).unwrap();
            go.1.recv().unwrap();
            diesel::QueryResult::Ok(())
        })
        .unwrap();
    });
    added.1.recv().unwrap();
    let pool = app.pool.clone();
    let enrolling = std::thread::spawn(move || {
        let mut conn = pool.get().unwrap();
        portcullis::db::two_factor::set_auth_method(&mut conn, &id, AUTH_METHOD_TOTP).unwrap();
    });
    until_someone_waits_for_a_lock(&app).await;
    go.0.send(()).unwrap();
    joining.join().unwrap();
    enrolling.join().unwrap();
    // One already on two-factor joins another organization later, and is filed under it,
    // even when what adds them read the account before it turned two-factor on.
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let (member, org) = (app.role_id("other-org", "member"), app.org_id("other-org"));
    let stale = portcullis::db::users::find(&mut app.conn(), &bob)
        .unwrap()
        .unwrap();
    portcullis::db::two_factor::set_auth_method(&mut app.conn(), &bob, AUTH_METHOD_TOTP).unwrap();
    portcullis::db::write_tx(&mut app.conn(), |conn| {
        memberships::insert(conn, &org, &stale, &member)
    })
    .unwrap();

    let mut conn = app.conn();
    let on_two_factor = ListFilter {
        auth_method: Some(AUTH_METHOD_TOTP.to_string()),
        ..ListFilter::everyone(SortKey::Email, false, 51)
    };
    for org in [app.org_id(ORG), other] {
        let rows = memberships::list_page(&mut conn, &org, &on_two_factor).unwrap();
        let emails: Vec<&str> = rows.iter().map(|r| r.user.email.as_str()).collect();
        assert_eq!(emails, ["ada@example.com", "bob@example.com"], "{org}");
    }
}

/// A role or a sign-in method many hold is walked for in the page's order, but the walk
/// stops after four times the entries an evenly spread set needs: where they all sort late
/// (a role given to the newest members, sorted oldest first), walking on would read the
/// organization, and they are read by their index and sorted instead. Where they come
/// first, the walk finds the page.
#[actix_web::test]
async fn holders_who_all_sort_late_are_sorted_instead_of_walked_for() {
    use portcullis::db::schema::memberships as m;
    use portcullis::domain::two_factor::AUTH_METHOD_TOTP;
    let app = spawn_app().await;
    app.setup_admin().await;
    seed(&app);
    let org = app.org_id(ORG);
    let (member, engineer) = (app.role_id(ORG, "member"), app.role_id(ORG, "engineer"));
    let mut conn = app.conn();
    // The 450 newest members become the Engineers, and turn two-factor on.
    diesel::update(
        m::table
            .filter(m::org_id.eq(&org))
            .filter(m::role_id.eq(&engineer)),
    )
    .set(m::role_id.eq(&member))
    .execute(&mut *conn)
    .unwrap();
    let newest: Vec<String> = m::table
        .filter(m::org_id.eq(&org))
        .order((m::created_at.desc(), m::user_id.desc()))
        .select(m::user_id)
        .limit(450)
        .load(&mut *conn)
        .unwrap();
    diesel::update(
        m::table
            .filter(m::org_id.eq(&org))
            .filter(m::user_id.eq_any(&newest)),
    )
    .set(m::role_id.eq(&engineer))
    .execute(&mut *conn)
    .unwrap();
    for id in &newest {
        portcullis::db::two_factor::set_auth_method(&mut conn, id, AUTH_METHOD_TOTP).unwrap();
    }
    let members = SEEDED as i64 + 1;
    let budget = portcullis::db::set_walk_budget(450, members, 51).expect("walked for");
    assert!(
        budget < members - 450,
        "the oldest-first walk ends before the holders"
    );
    if app.db.is_postgres() {
        diesel::connection::SimpleConnection::batch_execute(
            &mut *conn,
            "ANALYZE memberships; SET enable_seqscan = off",
        )
        .unwrap();
    }
    let by_role = |descending| ListFilter {
        role_id: Some(engineer.clone()),
        ..ListFilter::everyone(SortKey::Created, descending, 51)
    };
    let by_method = |descending| ListFilter {
        auth_method: Some(AUTH_METHOD_TOTP.to_string()),
        ..ListFilter::everyone(SortKey::Created, descending, 51)
    };
    for f in [
        by_role(false),
        by_role(true),
        by_method(false),
        by_method(true),
    ] {
        let what = format!("desc={} {:?} {:?}", f.descending, f.role_id, f.auth_method);
        let plan = memberships::explain_page(&mut conn, &org, &f).unwrap();
        let walk = plan.walk.as_deref().expect("walked for first");
        assert_walks_sort_index(walk, &what);
        assert_no_full_scan(&plan.page, &what);
        // Newest first, the walk's first entries are theirs; oldest first, it stopped at
        // its budget and they were sorted.
        assert_eq!(plan.holders_by_index, Some(!f.descending), "{what}");
        let expected = brute_force(&mut conn, &org, &f, "");
        assert_eq!(expected.len(), 450);
        assert_eq!(paged(&mut conn, &org, &f, None, 100), expected, "{what}");
    }
    // Both at once: those holding both may be far fewer than either, so neither's count
    // gives a budget, and a short walk would sort one whole set; the page query walks.
    let both = ListFilter {
        role_id: Some(engineer.clone()),
        ..by_method(false)
    };
    let plan = memberships::explain_page(&mut conn, &org, &both).unwrap();
    assert_eq!(plan.holders_by_index, None);
    assert!(plan.walk.is_none());
    let expected = brute_force(&mut conn, &org, &both, "");
    assert_eq!(expected.len(), 450);
    assert_eq!(paged(&mut conn, &org, &both, None, 100), expected);
}
