//! Exact member counts (issue 12, item 1): the `member_counts` rows the Users tab header
//! reads equal `COUNT(*)` of the memberships by organization and status after every kind
//! of membership change, made one after another or all at once, and the header prints
//! them exactly, past 10,000 too; and the `member_count` the database keeps on each group,
//! pool and role equals `COUNT(*)` of its rows after the same changes and the group and
//! pool ones. Runs on whichever database the tests run on.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use portcullis::db::DbConnection;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::*;

const ORG: &str = "my-org";
const NEW_PASSWORD: &str = "a long enough pass phrase";

#[derive(QueryableByName, Debug)]
struct Tally {
    #[diesel(sql_type = Text)]
    slug: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// (organization slug, status) → members, by the given query's three columns.
fn tallies(app: &TestApp, sql: &str) -> BTreeMap<(String, String), i64> {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    diesel::sql_query(sql)
        .load::<Tally>(conn)
        .unwrap()
        .into_iter()
        .filter(|t| t.n != 0)
        .map(|t| ((t.slug, t.status), t.n))
        .collect()
}

/// What the counters say, leaving out rows at zero (a status nobody has any more).
fn counters(app: &TestApp) -> BTreeMap<(String, String), i64> {
    tallies(
        app,
        "SELECT o.slug AS slug, c.status AS status, c.n AS n \
         FROM member_counts c JOIN organizations o ON o.id = c.org_id",
    )
}

/// What the memberships say.
fn counted(app: &TestApp) -> BTreeMap<(String, String), i64> {
    tallies(
        app,
        "SELECT o.slug AS slug, m.status AS status, COUNT(*) AS n \
         FROM memberships m JOIN organizations o ON o.id = m.org_id \
         GROUP BY o.slug, m.status",
    )
}

#[track_caller]
fn assert_counters_match(app: &TestApp, context: &str) {
    let counted = counted(app);
    assert_eq!(counters(app), counted, "after {context}");
    assert_set_counts_match(app, context);
}

/// The header's two numbers, as the page prints them.
fn header(body: &str) -> (String, String) {
    let number = |label: &str| {
        let marker = format!("{label} <strong>");
        let start = body.find(&marker).expect("a count in the header") + marker.len();
        body[start..start + body[start..].find('<').unwrap()].to_string()
    };
    (number("Active"), number("Inactive"))
}

fn org_members(app: &TestApp, slug: &str) -> Vec<(String, String, String)> {
    use portcullis::db::schema::memberships as m;
    let org = app.org_id(slug);
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    m::table
        .filter(m::org_id.eq(org))
        .order(m::user_id.asc())
        .select((m::user_id, m::email, m::status))
        .load(conn)
        .unwrap()
}

/// The `value` of the `<option>` showing `label`.
fn option_value(html: &str, label: &str) -> String {
    let end = html
        .find(&format!(">{label}</option>"))
        .unwrap_or_else(|| panic!("no option {label}"));
    let start = html[..end].rfind("value=\"").unwrap() + 7;
    html[start..html[start..].find('"').unwrap() + start].to_string()
}

/// Invites `emails` (comma-separated) to `slug` as Members; answers the accept links.
async fn invite(admin: &Browser, slug: &str, emails: &str) -> Vec<String> {
    let form = admin.get(&format!("/orgs/{slug}/invitations/new")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let fields = [
        ("csrf_token", form.csrf()),
        ("emails", emails.to_string()),
        ("role_id", option_value(&form.body, "Member")),
    ];
    let page = admin
        .post(&format!("/orgs/{slug}/invitations"), &fields)
        .await;
    let page = admin.follow_results(page).await;
    page.invite_links()
}

/// Opens the link in a fresh browser (a GET, so only the POST is left to race).
async fn open_new_account_form(
    app: &TestApp,
    link: &str,
) -> (Browser, Vec<(&'static str, String)>) {
    let browser = app.client();
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = account_form(page.csrf(), "New", "Member", NEW_PASSWORD);
    (browser, form)
}

/// Accepts with a new account; answers whether it joined.
async fn accept_new(app: &TestApp, link: &str) -> bool {
    let (browser, form) = open_new_account_form(app, link).await;
    browser.post(link, &form).await.status == 303
}

/// Signs in as the existing account `email` and joins with it.
async fn accept_existing(app: &TestApp, link: &str, email: &str) -> bool {
    let browser = app.client();
    assert_eq!(browser.login(email, NEW_PASSWORD).await.status, 303);
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    browser
        .post(link, &[("csrf_token", page.csrf())])
        .await
        .status
        == 303
}

/// A member action through the Users tab's forms; answers whether it was done.
async fn member_post(admin: &Browser, slug: &str, path: &str, fields: &[(&str, &str)]) -> bool {
    let users = format!("/orgs/{slug}/users");
    let page = admin
        .submit(&users, &format!("{users}{path}"), fields)
        .await;
    assert!(
        [303, 409, 422].contains(&page.status),
        "{path}: {} {}",
        page.status,
        page.body
    );
    page.status == 303
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InviteNewAccount,
    InviteExistingAccount,
    Deactivate,
    Activate,
    Remove,
    RoleChange,
    Bulk,
    PlatformAddMembership,
    PlatformActivate,
    PlatformRole,
    PlatformCreateUser,
    PlatformCreateOrg,
}

const KINDS: [Kind; 12] = [
    Kind::InviteNewAccount,
    Kind::InviteExistingAccount,
    Kind::Deactivate,
    Kind::Activate,
    Kind::Remove,
    Kind::RoleChange,
    Kind::Bulk,
    Kind::PlatformAddMembership,
    Kind::PlatformActivate,
    Kind::PlatformRole,
    Kind::PlatformCreateUser,
    Kind::PlatformCreateOrg,
];

/// Every path that adds, removes or changes a membership, in a seeded pseudo-random order
/// over three organizations (the setup admin is Admin of each): after each step the
/// counters equal `COUNT(*)`, and at the end each organization's header shows them.
#[actix_web::test]
async fn counters_equal_count_after_a_random_sequence_of_every_membership_change() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    assert_counters_match(&app, "setup");

    // The setup admin runs a second organization: an existing account as first admin.
    let other = admin
        .submit(
            "/admin/orgs",
            "/admin/orgs",
            &[
                ("name", "Other"),
                ("slug", "other"),
                ("admin_email", ADMIN_EMAIL),
            ],
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.body);
    // The CLI: a platform admin who is Admin of `other` (a new account), and seeding.
    let out = app.run_cli(&[
        "create-admin",
        "--email",
        "ops@example.com",
        "--org",
        "other",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = app.run_cli(&["seed-demo", "--org", "third", "--members", "25"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The admin joins the seeded organization from the platform page, as Admin.
    let me = app.user_id(ADMIN_EMAIL);
    let joined = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{me}/memberships"),
            &[("org", "third"), ("role_id", "admin")],
        )
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    assert_counters_match(&app, "the CLI and the platform page");

    // Organizations made on the way have someone else as first admin: they are counted,
    // and the steps keep acting in these three.
    let orgs = ["my-org", "other", "third"];
    // Accounts that can sign in (they accepted an invitation with a password).
    let mut accounts: Vec<String> = Vec::new();
    let mut done: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(12);
    for step in 0..90 {
        let kind = KINDS[rng.gen_range(0..KINDS.len())];
        let slug = orgs[rng.gen_range(0..orgs.len())].to_string();
        let members: Vec<(String, String, String)> = org_members(&app, &slug)
            .into_iter()
            .filter(|(id, _, _)| *id != me)
            .collect();
        let pick = |rng: &mut StdRng, status: Option<&str>| {
            let candidates: Vec<&(String, String, String)> = members
                .iter()
                .filter(|(_, _, s)| status.is_none_or(|want| s == want))
                .collect();
            (!candidates.is_empty()).then(|| candidates[rng.gen_range(0..candidates.len())].clone())
        };
        let ok = match kind {
            Kind::InviteNewAccount => {
                let email = format!("new{step}@example.com");
                let links = invite(&admin, &slug, &email).await;
                let joined = accept_new(&app, &links[0]).await;
                if joined {
                    accounts.push(email);
                }
                joined
            }
            Kind::InviteExistingAccount => {
                let outside: Vec<&String> = accounts
                    .iter()
                    .filter(|e| !members.iter().any(|(_, m, _)| m == *e))
                    .collect();
                match outside.get(rng.gen_range(0..outside.len().max(1))) {
                    Some(email) => {
                        let links = invite(&admin, &slug, email).await;
                        accept_existing(&app, &links[0], email).await
                    }
                    None => false,
                }
            }
            Kind::Deactivate | Kind::Activate => match pick(&mut rng, None) {
                Some((id, _, _)) => {
                    let verb = if kind == Kind::Deactivate {
                        "deactivate"
                    } else {
                        "activate"
                    };
                    member_post(&admin, &slug, &format!("/{id}/{verb}"), &[]).await
                }
                None => false,
            },
            Kind::Remove => match pick(&mut rng, None) {
                Some((id, email, _)) => {
                    let path = format!("/orgs/{slug}/users/{id}/delete");
                    let page = admin
                        .submit(&path, &path, &[("confirm_email", &email)])
                        .await;
                    assert!([303, 409].contains(&page.status), "{}", page.body);
                    page.status == 303
                }
                None => false,
            },
            Kind::RoleChange => match pick(&mut rng, None) {
                Some((id, _, _)) => {
                    let key = ["member", "engineer", "manager", "admin"][rng.gen_range(0..4)];
                    let role_id = app.role_id(&slug, key);
                    member_post(
                        &admin,
                        &slug,
                        &format!("/{id}"),
                        &[
                            ("first_name", "Some"),
                            ("last_name", "One"),
                            ("role_id", &role_id),
                        ],
                    )
                    .await
                }
                None => false,
            },
            Kind::Bulk => {
                let action = ["deactivate", "activate", "remove", "set-role"][rng.gen_range(0..4)];
                let mut fields = vec![("action", action.to_string())];
                for _ in 0..rng.gen_range(1..=5) {
                    if let Some((id, _, _)) = pick(&mut rng, None) {
                        fields.push(("user_ids", id));
                    }
                }
                if rng.gen_bool(0.2) {
                    fields.push(("user_ids", me.clone()));
                }
                fields.push(("role_id", app.role_id(&slug, "engineer")));
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let users = format!("/orgs/{slug}/users");
                let page = admin
                    .submit(&users, &format!("{users}/bulk"), &fields)
                    .await;
                assert!([200, 422].contains(&page.status), "{}", page.body);
                page.body.contains("data-result=\"done\"")
            }
            Kind::PlatformAddMembership => {
                let outside: Vec<String> = accounts
                    .iter()
                    .filter(|e| !members.iter().any(|(_, m, _)| m == *e))
                    .map(|e| app.user_id(e))
                    .collect();
                match outside.get(rng.gen_range(0..outside.len().max(1))) {
                    Some(id) => {
                        // These accounts have passwords, so the platform invites them by
                        // email; the owner accepts from the new mail.
                        let email = portcullis::db::users::find(&mut app.conn(), id)
                            .unwrap()
                            .unwrap()
                            .email;
                        let mailed = crate::browser::all_mail_to(&app, &email).len();
                        let page = admin
                            .submit(
                                "/admin/users",
                                &format!("/admin/users/{id}/memberships"),
                                &[("org", &slug), ("role_id", "member")],
                            )
                            .await;
                        assert_eq!(page.status, 303, "{}", page.body);
                        let mut link = None;
                        for _ in 0..100 {
                            let all = crate::browser::all_mail_to(&app, &email);
                            if all.len() > mailed {
                                link = all.last().and_then(|m| m.link_path("/invite/"));
                                break;
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        accept_existing(&app, &link.expect("an invitation mailed"), &email).await
                    }
                    None => false,
                }
            }
            Kind::PlatformActivate => match pick(&mut rng, Some("inactive")) {
                Some((id, _, _)) => {
                    let path = format!("/admin/users/{id}/memberships/{slug}/activate");
                    let page = admin
                        .submit(&format!("/admin/users/{id}"), &path, &[])
                        .await;
                    assert_eq!(page.status, 303, "{}", page.body);
                    true
                }
                None => false,
            },
            Kind::PlatformRole => match pick(&mut rng, None) {
                Some((id, _, _)) => {
                    let role_id = app.role_id(&slug, ["member", "manager"][rng.gen_range(0..2)]);
                    let path = format!("/admin/users/{id}/memberships/{slug}/role");
                    let page = admin
                        .submit(
                            &format!("/admin/users/{id}"),
                            &path,
                            &[("role_id", &role_id)],
                        )
                        .await;
                    assert!([303, 409].contains(&page.status), "{}", page.body);
                    page.status == 303
                }
                None => false,
            },
            Kind::PlatformCreateUser => {
                let email = format!("made{step}@example.com");
                let page = admin
                    .submit(
                        "/admin/users",
                        "/admin/users",
                        &[
                            ("email", &email),
                            ("first_name", "Made"),
                            ("last_name", "Here"),
                            ("org", &slug),
                            ("role_id", "member"),
                        ],
                    )
                    .await;
                assert_eq!(page.status, 201, "{}", page.body);
                true
            }
            Kind::PlatformCreateOrg => {
                let new_slug = format!("org{step}");
                let page = admin
                    .submit(
                        "/admin/orgs",
                        "/admin/orgs",
                        &[
                            ("name", &new_slug),
                            ("slug", &new_slug),
                            ("admin_email", &format!("boss{step}@example.com")),
                        ],
                    )
                    .await;
                assert_eq!(page.status, 201, "{}", page.body);
                true
            }
        };
        if ok {
            *done.entry(kind).or_default() += 1;
        }
        assert_counters_match(&app, &format!("step {step}: {kind:?} in {slug}"));
    }
    // Each kind of change really happened, so each was checked.
    for kind in KINDS {
        assert!(
            done.get(&kind).copied().unwrap_or(0) > 0,
            "{kind:?} never happened: {done:?}"
        );
    }
    for slug in ["my-org", "other", "third"] {
        let page = admin.get(&format!("/orgs/{slug}/users")).await;
        assert_eq!(page.status, 200);
        let count = |status: &str| {
            counted(&app)
                .get(&(slug.to_string(), status.to_string()))
                .copied()
                .unwrap_or(0)
                .to_string()
        };
        assert_eq!(
            header(&page.body),
            (count("active"), count("inactive")),
            "{slug}"
        );
    }
}

/// Many membership changes at once, on different members and some on the same one:
/// single deactivations, activations and removals, a bulk action, and invitations
/// accepted (which do not take the organization's lock) all race. No change is lost.
#[actix_web::test]
async fn counters_equal_count_after_concurrent_changes() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let ids: Vec<String> = (0..40)
        .map(|i| {
            app.add_member(
                ORG,
                &format!("m{i:02}@example.com"),
                "M",
                &format!("{i}"),
                "member",
                false,
            )
        })
        .collect();
    for id in &ids[10..20] {
        app.deactivate_for_setup(ORG, id);
    }
    let links = invite(
        &admin,
        ORG,
        &(0..8)
            .map(|i| format!("joiner{i}@example.com"))
            .collect::<Vec<_>>()
            .join(", "),
    )
    .await;
    assert_eq!(links.len(), 8);
    let mut joiners = Vec::new();
    for link in &links {
        joiners.push((open_new_account_form(&app, link).await, link.clone()));
    }
    assert_counters_match(&app, "setup");
    let csrf = admin.get(&format!("/orgs/{ORG}/users")).await.csrf();

    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let admin = admin.clone();
        let mut fields = fields;
        fields.push(("csrf_token", csrf.clone()));
        tokio::spawn(async move { admin.post(&path, &fields).await.status })
    };
    let users = |rest: String| format!("/orgs/{ORG}/users{rest}");
    let email = |i: usize| format!("m{i:02}@example.com");
    let mut tasks = Vec::new();
    // 0..10 active → deactivated; 10..20 inactive → activated; 20..25 removed.
    for id in &ids[0..10] {
        tasks.push((
            "deactivate",
            post(users(format!("/{id}/deactivate")), vec![]),
        ));
    }
    for id in &ids[10..20] {
        tasks.push(("activate", post(users(format!("/{id}/activate")), vec![])));
    }
    for (i, id) in ids.iter().enumerate().take(25).skip(20) {
        tasks.push((
            "remove",
            post(
                users(format!("/{id}/delete")),
                vec![("confirm_email", email(i))],
            ),
        ));
    }
    // 25..30: deactivated and removed at once, in whichever order they land.
    for (i, id) in ids.iter().enumerate().take(30).skip(25) {
        tasks.push((
            "contested",
            post(users(format!("/{id}/deactivate")), vec![]),
        ));
        tasks.push((
            "contested",
            post(
                users(format!("/{id}/delete")),
                vec![("confirm_email", email(i))],
            ),
        ));
    }
    // 30..40: a bulk deactivation, while 35..40 are also deactivated one by one.
    let mut bulk = vec![("action", "deactivate".to_string())];
    bulk.extend(ids[30..40].iter().map(|id| ("user_ids", id.clone())));
    tasks.push(("bulk", post(users("/bulk".into()), bulk)));
    for id in &ids[35..40] {
        tasks.push((
            "contested",
            post(users(format!("/{id}/deactivate")), vec![]),
        ));
    }
    for ((browser, form), link) in joiners {
        tasks.push((
            "accept",
            tokio::spawn(async move { browser.post(&link, &form).await.status }),
        ));
    }
    assert!(tasks.len() >= 20);
    for (what, task) in tasks {
        let status = task.await.unwrap();
        let expected: &[u16] = match what {
            "bulk" => &[200],
            "contested" => &[303, 404, 409],
            _ => &[303],
        };
        assert!(expected.contains(&status), "{what}: {status}");
    }

    assert_counters_match(&app, "the race");
    let status = |i: usize| app.membership_status(ORG, &ids[i]);
    assert!((0..10).all(|i| status(i).as_deref() == Some("inactive")));
    assert!((10..20).all(|i| status(i).as_deref() == Some("active")));
    assert!((20..25).all(|i| status(i).is_none()));
    assert!((25..30).all(|i| status(i).as_deref() != Some("active")));
    assert!((30..40).all(|i| status(i).as_deref() == Some("inactive")));
    // The admin, 10 re-activated, 8 joiners; 0..10, 30..40 and the contested survivors
    // inactive.
    let contested_left = (25..30).filter(|i| status(*i).is_some()).count() as i64;
    let counted = counted(&app);
    assert_eq!(counted[&(ORG.to_string(), "active".to_string())], 19);
    assert_eq!(
        counted[&(ORG.to_string(), "inactive".to_string())],
        20 + contested_left
    );
    let page = admin.get(&format!("/orgs/{ORG}/users")).await;
    assert_eq!(
        header(&page.body),
        ("19".into(), (20 + contested_left).to_string())
    );
}

/// Past 10,000 the header still prints the exact number, grouped by thousands.
#[actix_web::test]
async fn the_header_shows_exact_counts_above_ten_thousand() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    // Every tenth seeded member is inactive: 11,120 seeded → 10,008 active + the admin,
    // 1,112 inactive.
    portcullis::seed_members::seed_members(&mut app.conn(), ORG, 11_120, |_| {}).unwrap();
    assert_counters_match(&app, "seeding");
    let counted = counted(&app);
    assert_eq!(counted[&(ORG.to_string(), "active".to_string())], 10_009);
    assert_eq!(counted[&(ORG.to_string(), "inactive".to_string())], 1_112);

    let page = admin.get(&format!("/orgs/{ORG}/users")).await;
    assert_eq!(page.status, 200);
    assert_eq!(header(&page.body), ("10,009".into(), "1,112".into()));
    assert!(!page.body.contains("10,000+"));

    // One more change moves the exact number.
    let me = app.user_id(ADMIN_EMAIL);
    let (id, _, _) = org_members(&app, ORG)
        .into_iter()
        .find(|(id, _, status)| *id != me && status == "active")
        .unwrap();
    assert!(member_post(&admin, ORG, &format!("/{id}/deactivate"), &[]).await);
    let page = admin.get(&format!("/orgs/{ORG}/users")).await;
    assert_eq!(header(&page.body), ("10,008".into(), "1,113".into()));
}

#[derive(QueryableByName, Debug)]
struct SetTally {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn set_tallies(app: &TestApp, sql: &str) -> BTreeMap<String, i64> {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    diesel::sql_query(sql)
        .load::<SetTally>(conn)
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.n))
        .collect()
}

/// Each group's, pool's and role's kept `member_count` equals `COUNT(*)` of its rows.
#[track_caller]
fn assert_set_counts_match(app: &TestApp, context: &str) {
    for (sets, rows, key) in [
        ("groups", "group_members", "group_id"),
        ("pools", "pool_members", "pool_id"),
        ("roles", "memberships", "role_id"),
    ] {
        let kept = set_tallies(app, &format!("SELECT id, member_count AS n FROM {sets}"));
        let counted = set_tallies(
            app,
            &format!(
                "SELECT s.id AS id, (SELECT COUNT(*) FROM {rows} r WHERE r.{key} = s.id) AS n \
                 FROM {sets} s"
            ),
        );
        assert_eq!(kept, counted, "{sets} after {context}");
    }
}

/// What the Groups or Pools tab prints as the members of the row `id`.
fn members_shown(body: &str, id: &str) -> i64 {
    let row = &body[body.find(&format!("data-id=\"{id}\"")).expect("a row")..];
    let shown = &row[row.find("data-members=\"").unwrap() + "data-members=\"".len()..];
    shown[..shown.find('"').unwrap()].parse().unwrap()
}

const GROUPS: &str = "/orgs/my-org/groups";
const POOLS: &str = "/orgs/my-org/pools";
const USERS: &str = "/orgs/my-org/users";

async fn add_to_group(admin: &Browser, group: &str, user: &str) {
    let base = format!("{GROUPS}/{group}");
    let added = admin
        .submit(&base, &format!("{base}/members"), &[("user_id", user)])
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
}

async fn add_to_pool(admin: &Browser, pool: &str, user: &str, role: &str) {
    let added = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{pool}/members"),
            &[("user_id", user), ("role_id", role)],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
}

/// The Groups and Pools tabs read each set's member count from its row (issue 12: at a
/// million members counting the rows took 0.1 s a view). Every way a row comes or goes
/// keeps it equal to `COUNT(*)`: the group and pool pages, the bulk action, an accepted
/// invitation, a removal from the organization, SCIM's POST, PATCH, PUT and DELETE, and
/// deleting a group or a pool with its sub-pools.
#[actix_web::test]
async fn group_and_pool_counts_equal_count_after_every_kind_of_change() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let token = crate::api_tokens::admin_token(&app, &admin, &["scim"], "member").await;
    let scim = crate::scim::Scim::new(&app, &token);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(scim.create_user(&format!("u{i}@example.com")).await);
    }
    let member = |i: usize| serde_json::json!({"value": ids[i]});
    let crew = scim
        .post(
            "/Groups",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Crew",
                "members": [member(0), member(1), member(2)],
            }),
        )
        .await;
    assert_eq!(crew.status, 201, "{}", crew.body);
    let crew = crew.id();
    assert_set_counts_match(&app, "a SCIM POST with members");

    let ops = admin.submit(GROUPS, GROUPS, &[("name", "Ops")]).await;
    let ops = location_id(&ops);
    add_to_group(&admin, &ops, &ids[3]).await;
    let me = app.user_id(ADMIN_EMAIL);
    let bulk = admin
        .submit(
            USERS,
            &format!("{USERS}/bulk"),
            &[
                ("action", "add-to-group"),
                ("user_ids", &ids[4]),
                ("user_ids", &ids[5]),
                ("user_ids", &me),
                ("group_id", &ops),
            ],
        )
        .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_set_counts_match(&app, "the group page and the bulk action");

    let patched = scim
        .patch(
            &format!("/Groups/{crew}"),
            &crate::scim::patch_body(serde_json::json!([
                {"op": "add", "path": "members", "value": [member(3), member(4)]},
                {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
            ])),
        )
        .await;
    assert!([200, 204].contains(&patched.status), "{}", patched.body);
    assert_set_counts_match(&app, "a SCIM PATCH");
    let put = scim
        .put(
            &format!("/Groups/{crew}"),
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Crew",
                "members": [member(1)],
            }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_set_counts_match(&app, "a SCIM PUT leaving one member");
    let removed = admin
        .submit(
            &format!("{GROUPS}/{ops}"),
            &format!("{GROUPS}/{ops}/members/{}/remove", ids[3]),
            &[],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert_set_counts_match(&app, "a removal on the group page");

    let engineer = app.role_id(ORG, "engineer");
    let top = location_id(
        &admin
            .submit(POOLS, POOLS, &[("name", "Top"), ("parent_id", "")])
            .await,
    );
    let sub = location_id(
        &admin
            .submit(POOLS, POOLS, &[("name", "Sub"), ("parent_id", &top)])
            .await,
    );
    add_to_pool(&admin, &top, &ids[1], &engineer).await;
    add_to_pool(&admin, &sub, &ids[1], &engineer).await;
    add_to_pool(&admin, &sub, &ids[2], &engineer).await;
    assert_set_counts_match(&app, "the pool page");

    let form = admin.get("/orgs/my-org/invitations/new").await;
    let sent = admin
        .post(
            "/orgs/my-org/invitations",
            &[
                ("csrf_token", form.csrf()),
                ("emails", "joiner@example.com".into()),
                ("role_id", option_value(&form.body, "Member")),
                ("group_ids", ops.clone()),
                ("pool_ids", top.clone()),
            ],
        )
        .await;
    let link = admin.follow_results(sent).await.invite_link();
    assert!(accept_new(&app, &link).await);
    assert_set_counts_match(&app, "an accepted invitation with a group and a pool");

    // u1 is in Crew, Top and Sub: leaving the organization takes them out of all three.
    let gone = admin
        .submit(
            USERS,
            &format!("{USERS}/{}/delete", ids[1]),
            &[("confirm_email", "u1@example.com")],
        )
        .await;
    assert_eq!(gone.status, 303, "{}", gone.body);
    assert_set_counts_match(&app, "a removal from the organization");
    let out = admin
        .submit(
            POOLS,
            &format!("{POOLS}/{sub}/members/{}/remove", ids[2]),
            &[],
        )
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    add_to_pool(&admin, &sub, &ids[4], &engineer).await;
    assert_set_counts_match(&app, "a removal on the pool page");

    // What the tabs print is what the rows hold.
    let groups_tab = admin.get(GROUPS).await;
    // Ops: u4 and u5 and the admin in bulk, the joiner; u3 came and went.
    assert_eq!(members_shown(&groups_tab.body, &ops), 4);
    let pools_tab = admin.get(POOLS).await;
    assert_eq!(members_shown(&pools_tab.body, &top), 1);
    assert_eq!(members_shown(&pools_tab.body, &sub), 1);

    let deleted = admin
        .submit(POOLS, &format!("{POOLS}/{top}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    let deleted = admin
        .submit(
            &format!("{GROUPS}/{ops}"),
            &format!("{GROUPS}/{ops}/delete"),
            &[],
        )
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(scim.delete(&format!("/Groups/{crew}")).await.status, 204);
    assert_set_counts_match(&app, "deleting a pool tree, a group, and a group by SCIM");
    assert_eq!(app.count("groups"), 0);
    assert_eq!(app.count("pools"), 0);
}

/// Members added to one group and one pool from many requests at once, while others are
/// taken out of them or out of the organization: the counts stay exact.
#[actix_web::test]
async fn group_and_pool_counts_equal_count_after_concurrent_changes() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let ids: Vec<String> = (0..30)
        .map(|i| {
            app.add_member(
                ORG,
                &format!("m{i:02}@example.com"),
                "M",
                &format!("{i}"),
                "member",
                false,
            )
        })
        .collect();
    let group = location_id(&admin.submit(GROUPS, GROUPS, &[("name", "Crowd")]).await);
    let pool = location_id(
        &admin
            .submit(POOLS, POOLS, &[("name", "Pond"), ("parent_id", "")])
            .await,
    );
    let engineer = app.role_id(ORG, "engineer");
    for id in &ids[0..10] {
        add_to_group(&admin, &group, id).await;
        add_to_pool(&admin, &pool, id, &engineer).await;
    }
    assert_set_counts_match(&app, "setup");
    let csrf = admin.get(USERS).await.csrf();
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let admin = admin.clone();
        let mut fields = fields;
        fields.push(("csrf_token", csrf.clone()));
        tokio::spawn(async move { admin.post(&path, &fields).await.status })
    };
    let mut tasks = Vec::new();
    // 0..5 leave the organization (and so the group and the pool); 5..10 leave the
    // group and the pool; 10..20 join both one by one; 20..30 join the group in bulk and
    // the pool one by one.
    for (i, id) in ids.iter().enumerate().take(5) {
        let email = format!("m{i:02}@example.com");
        tasks.push(post(
            format!("{USERS}/{id}/delete"),
            vec![("confirm_email", email)],
        ));
    }
    for id in &ids[5..10] {
        tasks.push(post(
            format!("{GROUPS}/{group}/members/{id}/remove"),
            vec![],
        ));
        tasks.push(post(format!("{POOLS}/{pool}/members/{id}/remove"), vec![]));
    }
    for id in &ids[10..30] {
        if ids[10..20].contains(id) {
            tasks.push(post(
                format!("{GROUPS}/{group}/members"),
                vec![("user_id", id.clone())],
            ));
        }
        tasks.push(post(
            format!("{POOLS}/{pool}/members"),
            vec![("user_id", id.clone()), ("role_id", engineer.clone())],
        ));
    }
    let mut bulk = vec![
        ("action", "add-to-group".to_string()),
        ("group_id", group.clone()),
    ];
    bulk.extend(ids[20..30].iter().map(|id| ("user_ids", id.clone())));
    tasks.push(post(format!("{USERS}/bulk"), bulk));
    for task in tasks {
        let status = task.await.unwrap();
        assert!([200, 303].contains(&status), "{status}");
    }
    assert_set_counts_match(&app, "the race");
    assert_eq!(members_shown(&admin.get(GROUPS).await.body, &group), 20);
    assert_eq!(members_shown(&admin.get(POOLS).await.body, &pool), 20);
}
