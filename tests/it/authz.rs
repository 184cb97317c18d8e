//! Attacks on authorization, each performed as an outsider would, each refused.

use diesel::prelude::*;
use portcullis::db::DbConnection;
use portcullis::db::schema::invitations;

use crate::helpers::*;

const ORG: &str = "my-org";

/// A Resend or Cancel refused for what the invitation grants: said on the Invited tab
/// the button was on (not on an error page that loses it). Answers that tab.
async fn refused_on_the_tab(by: &Browser, answer: Page, reason: &str) -> Page {
    assert_eq!(answer.status, 303, "{}", answer.body);
    let tab = answer.location.expect("a way back");
    assert!(tab.starts_with("/orgs/my-org/invitations"), "{tab}");
    let page = by.get(&tab).await;
    assert!(page.body.contains(reason), "{}", page.body);
    page
}

fn inviter_of(app: &TestApp, email: &str) -> Option<String> {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    invitations::table
        .filter(invitations::email.eq(email))
        .select(invitations::invited_by)
        .first(conn)
        .unwrap()
}

fn account(app: &TestApp, user_id: &str) -> portcullis::db::users::User {
    portcullis::db::users::find(&mut app.conn(), user_id)
        .unwrap()
        .unwrap()
}

/// `by` renames the member to Mallory M from their profile, keeping their role
/// (`role_key`): refused with 422, and the account's name unchanged.
async fn renaming_is_refused(app: &TestApp, by: &Browser, user_id: &str, role_key: &str) {
    let before = account(app, user_id);
    let profile = format!("/orgs/{ORG}/users/{user_id}");
    let renamed = by
        .submit(
            &profile,
            &profile,
            &[
                ("first_name", "Mallory"),
                ("last_name", "M"),
                ("role_id", &app.role_id(ORG, role_key)),
            ],
        )
        .await;
    assert_eq!(renamed.status, 422, "{}", renamed.body);
    let after = account(app, user_id);
    assert_eq!(
        (after.first_name, after.last_name),
        (before.first_name, before.last_name)
    );
}

fn invitation_id(app: &TestApp, email: &str) -> String {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    invitations::table
        .filter(invitations::email.eq(email))
        .select(invitations::id)
        .first(conn)
        .unwrap()
}

/// An Admin invites `victim@` as a Member into a group that grants Admin.
async fn invitation_into_an_admin_group(app: &TestApp, admin: &Browser) {
    let admin_role = app.role_id(ORG, "admin");
    let path = "/orgs/my-org/groups";
    let created = admin
        .submit(path, path, &[("name", "Owners"), ("role_id", &admin_role)])
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let group = location_id(&created);
    let invited = admin
        .submit(
            "/orgs/my-org/invitations/new",
            "/orgs/my-org/invitations",
            &[
                ("emails", "victim@example.com"),
                ("role_id", &app.role_id(ORG, "member")),
                ("group_ids", &group),
            ],
        )
        .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    app.a_minute_passes("victim@example.com");
}

#[actix_web::test]
async fn a_manager_cannot_resend_an_invitation_whose_group_grants_admin() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    invitation_into_an_admin_group(&app, &admin).await;
    app.add_member(ORG, "mallory@example.com", "Mal", "Lory", "manager", true);
    let mallory = app.member_browser("mallory@example.com").await;
    let id = invitation_id(&app, "victim@example.com");
    let before = app.count("audit_events");

    let resent = mallory
        .submit(
            "/orgs/my-org/invitations",
            &format!("/orgs/my-org/invitations/{id}/resend"),
            &[],
        )
        .await;
    let resent = refused_on_the_tab(&mallory, resent, "You cannot renew this invitation").await;
    assert!(
        !resent.body.contains("/invite/"),
        "no fresh link for the attacker"
    );

    // Re-submitting the invite form for the same address renews nothing either.
    let again = mallory
        .invite("my-org", "victim@example.com", &app.role_id(ORG, "member"))
        .await;
    let again = mallory.follow_results(again).await;
    assert!(!again.body.contains("/invite/"), "{}", again.body);
    assert!(
        again.body.contains("it grants what you may not"),
        "{}",
        again.body
    );

    assert_eq!(
        inviter_of(&app, "victim@example.com"),
        Some(app.user_id(ADMIN_EMAIL))
    );
    assert_eq!(
        app.count("email_outbox WHERE to_addr = 'victim@example.com'"),
        1,
        "only the admin's invitation email was ever queued"
    );
    // The refused resend wrote only its access.denied record, no invitation event.
    let events: Vec<String> = app
        .audit_actions(ORG)
        .into_iter()
        .map(|(a, _, _)| a)
        .collect();
    assert!(
        !events.iter().any(|a| a == "invitation.resent"),
        "{events:?}"
    );
    let _ = before;
}

#[actix_web::test]
async fn whoever_renews_an_invitation_becomes_its_inviter() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let invited = admin
        .invite("my-org", "plain@example.com", &app.role_id(ORG, "member"))
        .await;
    assert_eq!(invited.status, 303);
    app.a_minute_passes("plain@example.com");
    let manager = app.add_member(ORG, "mia@example.com", "Mia", "M", "manager", true);
    let mia = app.member_browser("mia@example.com").await;
    let id = invitation_id(&app, "plain@example.com");
    let resent = mia
        .submit(
            "/orgs/my-org/invitations",
            &format!("/orgs/my-org/invitations/{id}/resend"),
            &[],
        )
        .await;
    let resent = mia.follow_results(resent).await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    assert!(
        resent.body.contains("Sent by email"),
        "the renewer, a Manager, is told the new link went by email: {}",
        resent.body
    );
    // Acceptance now checks Mia's rank: if she is demoted, her link no longer grants.
    assert_eq!(inviter_of(&app, "plain@example.com"), Some(manager));
}

/// Bob belongs to two organizations; `my-org`'s admin acts on him there.
async fn member_of_two_orgs(app: &TestApp) -> (Browser, String, Browser) {
    let admin = app.setup_admin().await;
    app.create_org("other", "Other");
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", true);
    app.add_member("other", "bob@example.com", "Bob", "Builder", "admin", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    (admin, bob, bob_browser)
}

#[actix_web::test]
async fn deactivating_in_one_organization_leaves_the_other_alone() {
    let app = spawn_app().await;
    let (admin, bob, bob_browser) = member_of_two_orgs(&app).await;
    assert_eq!(bob_browser.get("/orgs/other/users").await.status, 200);
    let done = admin
        .submit(
            "/orgs/my-org/users",
            &format!("/orgs/my-org/users/{bob}/deactivate"),
            &[],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(bob_browser.get("/orgs/my-org/users").await.status, 404);
    assert_eq!(bob_browser.get("/orgs/other/users").await.status, 200);

    let removed = admin
        .submit(
            &format!("/orgs/my-org/users/{bob}/delete"),
            &format!("/orgs/my-org/users/{bob}/delete"),
            &[("confirm_email", "bob@example.com")],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert_eq!(bob_browser.get("/orgs/my-org/users").await.status, 404);
    assert_eq!(bob_browser.get("/orgs/other/users").await.status, 200);
}

#[actix_web::test]
async fn an_admin_cannot_rename_an_account_that_belongs_to_another_organization() {
    let app = spawn_app().await;
    let (admin, bob, _) = member_of_two_orgs(&app).await;
    let profile = format!("/orgs/my-org/users/{bob}");
    let page = admin.get(&profile).await;
    assert!(page.body.contains("only its owner can change its name"));
    assert!(page.body.contains("readonly"));
    renaming_is_refused(&app, &admin, &bob, "member").await;
    let user = account(&app, &bob);
    assert_eq!(
        (user.first_name.as_str(), user.last_name.as_str()),
        ("Bob", "Builder")
    );

    // The role, which is this organization's, still changes.
    let promoted = admin
        .submit(
            &profile,
            &profile,
            &[
                ("first_name", "Bob"),
                ("last_name", "Builder"),
                ("role_id", &app.role_id(ORG, "engineer")),
            ],
        )
        .await;
    assert_eq!(promoted.status, 303, "{}", promoted.body);
    assert_eq!(app.member_role(ORG, &bob).as_deref(), Some("engineer"));
}

#[actix_web::test]
async fn an_account_of_one_organization_only_can_be_renamed_there() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
    let profile = format!("/orgs/my-org/users/{bob}");
    let renamed = admin
        .submit(
            &profile,
            &profile,
            &[
                ("first_name", "Robert"),
                ("last_name", "Builder"),
                ("role_id", &app.role_id(ORG, "member")),
            ],
        )
        .await;
    assert_eq!(renamed.status, 303, "{}", renamed.body);
}

/// An organization holding most of the members searches the text index without its key
/// (SQLite's tag, PostgreSQL's `org_id` in the GIN: reading the key's posting list cost
/// more than it saved): another organization's matches still never reach its page, on
/// any plan or page.
#[actix_web::test]
async fn a_majority_organization_searching_past_its_tag_sees_only_its_own_members() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("small", "Small");
    for i in 0..3 {
        let email = format!("hopper{i}@small.test");
        app.add_member("small", &email, "Grace", "Hopper", "member", false);
    }
    let mut mine = Vec::new();
    for i in 0..8 {
        let email = format!("hopper{i}@mine.test");
        app.add_member(ORG, &email, "Grace", "Hopper", "member", false);
        mine.push(email);
    }
    let org = app.org_id(ORG);
    assert_eq!(
        portcullis::db::memberships::search_scope(&mut app.conn(), &org).unwrap(),
        portcullis::db::memberships::IndexScope::Everyone,
        "the organization holds most members, so its search skips the key"
    );
    let small = app.org_id("small");
    assert_eq!(
        portcullis::db::memberships::search_scope(&mut app.conn(), &small).unwrap(),
        portcullis::db::memberships::IndexScope::Organization,
    );
    for query in [
        "q=hopper",
        "q=small.test",
        "q=hopper&sort=-email",
        "q=opper1",
    ] {
        let page = admin.get(&format!("/orgs/my-org/users?{query}")).await;
        assert_eq!(page.status, 200, "{query}");
        let shown = row_emails(&page.body);
        assert!(
            shown.iter().all(|e| e.ends_with("@mine.test")),
            "{query}: {shown:?}"
        );
        if query == "q=hopper" {
            let mut shown = shown;
            shown.sort();
            assert_eq!(shown, mine);
        }
    }
    if app.db.is_postgres() {
        // The GIN's organization key: only the small organization's lookup asks for its
        // members by it (the large one's checks each match it finds). A table of a dozen
        // is cheapest to read whole by any index: more members (whose names match the
        // terms above, so only now), and ask what serves a large one.
        portcullis::seed_members::seed_members(&mut app.conn(), ORG, 600, |_| {}).unwrap();
        use diesel::connection::SimpleConnection;
        let mut conn = app.conn();
        conn.batch_execute("SET enable_seqscan = off").unwrap();
        let plan_of = |conn: &mut DbConnection, org: &str| {
            portcullis::db::memberships::explain_search(conn, org, "opper1")
                .unwrap()
                .to_lowercase()
        };
        let large = plan_of(&mut conn, &org);
        assert!(large.contains("memberships_search_idx"), "{large}");
        assert!(!large.contains("index cond: ((org_id ="), "{large}");
        assert!(large.contains("filter: ((org_id || ''::text) ="), "{large}");
        let small = plan_of(&mut conn, &small);
        assert!(!small.contains("(org_id || ''::text)"), "{small}");
        assert!(
            small.contains("index cond: ((org_id =") || small.contains("index cond: (org_id ="),
            "{small}"
        );
        conn.batch_execute("RESET enable_seqscan").unwrap();
    }
}

/// Every member's address in the organization, from its memberships.
fn member_emails(app: &TestApp, org_id: &str) -> Vec<String> {
    use portcullis::db::schema::memberships as m;
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    m::table
        .filter(m::org_id.eq(org_id))
        .select(m::email)
        .load(conn)
        .unwrap()
}

/// The lookup of an organization holding most members, which reads the text index past
/// its key, counts only its own matches towards the cap on PostgreSQL (the organization is
/// checked on each match before the cap counts it): a term another organization's members
/// all match, and none of ours, is no common term here. SQLite's lookup counts theirs too,
/// the price `memberships::lookup_scope` states, and walks; both show none of them.
#[actix_web::test]
async fn a_majority_organizations_lookup_counts_only_its_own_matches_on_postgres() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("small", "Small");
    portcullis::seed_members::seed_members(&mut app.conn(), ORG, 600, |_| {}).unwrap();
    portcullis::seed_members::seed_members(&mut app.conn(), "small", 300, |_| {}).unwrap();
    // Each seeding marks its addresses with its own run: `first.lastNNNNNNN.RUN@…`.
    let small = app.org_id("small");
    let theirs = member_emails(&app, &small);
    let run = theirs[0].split(['.', '@']).nth(2).unwrap().to_string();
    assert!(theirs.iter().all(|e| e.contains(&run)));
    let org = app.org_id(ORG);
    let members = 601;
    assert!(theirs.len() as i64 > portcullis::db::memberships::text_index_cap(members));
    assert_eq!(
        portcullis::db::memberships::search_scope(&mut app.conn(), &org).unwrap(),
        portcullis::db::memberships::IndexScope::Everyone
    );
    use portcullis::db::memberships::SearchPlan;
    assert_eq!(
        portcullis::db::memberships::search_plan(&mut app.conn(), &org, &run).unwrap(),
        if app.db.is_postgres() {
            SearchPlan::TextIndex
        } else {
            SearchPlan::SortIndex
        }
    );
    let page = admin.get(&format!("/orgs/my-org/users?q={run}")).await;
    assert_eq!(page.status, 200);
    assert!(
        row_emails(&page.body).is_empty(),
        "{:?}",
        row_emails(&page.body)
    );
}

/// A term common enough that the Users tab walks the sort index and then reads the page's
/// rows by id (issue 12): another organization's members, matching the same term and
/// seeded alongside, never reach the page, in any order, status or page followed.
#[actix_web::test]
async fn a_common_term_walked_through_the_sort_index_shows_only_this_organizations_members() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    // Every seeded address ends in `demo.example`: 300 matches in each organization, past
    // the text-index cap of 200, so the search walks.
    portcullis::seed_members::seed_members(&mut app.conn(), ORG, 300, |_| {}).unwrap();
    portcullis::seed_members::seed_members(&mut app.conn(), "other", 300, |_| {}).unwrap();
    let other = app.org_id("other");
    let theirs = member_emails(&app, &other);
    assert_eq!(theirs.len(), 300);
    let org = app.org_id(ORG);
    assert_eq!(
        portcullis::db::memberships::search_plan(&mut app.conn(), &org, "demo.example").unwrap(),
        portcullis::db::memberships::SearchPlan::SortIndex
    );
    for query in [
        "q=demo.example",
        "q=demo.example&sort=-email",
        "q=demo.example&sort=name",
        "q=demo.example&sort=-created",
        "q=demo.example&status=inactive",
    ] {
        let mut url = format!("/orgs/my-org/users?{query}");
        let mut seen = 0;
        for _ in 0..7 {
            let page = admin.get(&url).await;
            assert_eq!(page.status, 200, "{url}");
            let shown = row_emails(&page.body);
            assert!(
                shown.iter().all(|e| !theirs.contains(e)),
                "{url}: {shown:?}"
            );
            seen += shown.len();
            match next_link(&page.body) {
                Some(next) => url = next,
                None => break,
            }
        }
        let expected = if query.contains("inactive") { 30 } else { 300 };
        assert_eq!(
            seen, expected,
            "{query}: every match of this organization, once"
        );
    }
}

/// One organization's search must not pay for another's matches: the organization is a
/// key of the search index itself, and no other organization's member ever matches.
#[actix_web::test]
async fn member_search_is_scoped_to_the_organization_inside_the_index() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("big", "Big");
    for i in 0..30 {
        app.add_member(
            "big",
            &format!("hopper{i}@big.test"),
            "Grace",
            "Hopper",
            "member",
            false,
        );
    }
    app.add_member(ORG, "hopper@mine.test", "Grace", "Hopper", "member", false);
    let page = admin.get("/orgs/my-org/users?q=hopper").await;
    assert_eq!(row_emails(&page.body), vec!["hopper@mine.test".to_string()]);

    let org = app.org_id(ORG);
    let mut conn = app.conn();
    if app.db.is_postgres() {
        conn.batch_execute("SET enable_seqscan = off").unwrap();
    }
    let plan = portcullis::db::memberships::explain_search(&mut conn, &org, "hopper")
        .unwrap()
        .to_lowercase();
    if app.db.is_postgres() {
        // The organization leads the trigram index itself (btree_gin), so the planner can
        // answer org + term from it alone. Tiny test tables hide that choice in plans, so
        // the index's definition is checked.
        #[derive(diesel::QueryableByName)]
        struct Def {
            #[diesel(sql_type = diesel::sql_types::Text)]
            indexdef: String,
        }
        let pg: &mut portcullis::db::DbConnection = &mut conn;
        let def = diesel::sql_query(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'memberships_search_idx'",
        )
        .get_result::<Def>(pg)
        .unwrap()
        .indexdef;
        assert!(def.contains("gin (org_id, "), "{def}");
        assert!(def.contains("gin_trgm_ops"), "{def}");
        let _ = plan;
    } else {
        assert!(plan.contains("member_search"), "{plan}");
        let mut conn = app.conn();
        let sqlite: &mut portcullis::db::DbConnection = &mut conn;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let tag = portcullis::db::memberships::search_tag(&org);
        let query = format!("org_tag : \"{tag}\" AND text : \"hopper\"");
        let found = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM member_search WHERE member_search MATCH ?",
        )
        .bind::<diesel::sql_types::Text, _>(query)
        .get_result::<Count>(sqlite)
        .unwrap();
        assert_eq!(
            found.n, 1,
            "the index itself answers only this organization's rows"
        );
    }
}

/// The installation's platform admin is an Admin of one organization, like its other
/// admins. A co-admin there must not take the account over: a new email address by SCIM
/// (then a password reset sent there), its second factor reset, or its name changed.
#[actix_web::test]
async fn a_co_admin_cannot_take_over_the_platform_admins_account() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let platform_admin = app.user_id(ADMIN_EMAIL);
    app.add_member(ORG, "alice@example.com", "Alice", "A", "admin", true);
    let alice = app.member_browser("alice@example.com").await;
    let token = crate::api_tokens::admin_token(&app, &alice, &["scim"], "admin").await;
    let scim = crate::scim::Scim::new(&app, &token);
    let user_path = format!("/Users/{platform_admin}");

    let put = scim
        .put(
            &user_path,
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "mallory@example.com",
                "emails": [{"value": "mallory@example.com", "primary": true}],
                "name": {"givenName": "Mallory", "familyName": "M"},
                "active": true,
            }),
        )
        .await;
    assert_eq!(put.status, 400, "{}", put.body);
    assert_eq!(put.scim_type(), Some("mutability"));
    let patched = scim
        .patch(
            &user_path,
            &crate::scim::patch_body(serde_json::json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "mallory@example.com"}
            ])),
        )
        .await;
    assert_eq!(patched.status, 400, "{}", patched.body);
    assert_eq!(account(&app, &platform_admin).email, ADMIN_EMAIL);

    let profile = format!("/orgs/{ORG}/users/{platform_admin}");
    let reset = format!("{profile}/2fa/reset");
    assert_eq!(alice.get(&reset).await.status, 403);
    let page = alice.get(&profile).await;
    assert!(page.body.contains("only its owner can change its name"));
    let refused = alice.post(&reset, &[("csrf_token", page.csrf())]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("only a platform admin can"));

    renaming_is_refused(&app, &alice, &platform_admin, "admin").await;
}

/// Cancelling withdraws what someone of the invitation's rank sent: a Manager must not
/// quietly void an Admin's invitation that grants Admin (through its group here).
#[actix_web::test]
async fn a_manager_cannot_cancel_an_invitation_that_grants_admin() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    invitation_into_an_admin_group(&app, &admin).await;
    app.add_member(ORG, "mallory@example.com", "Mal", "Lory", "manager", true);
    let mallory = app.member_browser("mallory@example.com").await;
    let id = invitation_id(&app, "victim@example.com");
    let cancel = format!("/orgs/my-org/invitations/{id}/cancel");

    let asked = mallory.get(&cancel).await;
    refused_on_the_tab(&mallory, asked, "You cannot cancel this invitation").await;
    let refused = mallory
        .submit("/orgs/my-org/invitations", &cancel, &[])
        .await;
    refused_on_the_tab(&mallory, refused, "You cannot cancel this invitation").await;
    assert_eq!(
        app.count("invitations WHERE email = 'victim@example.com' AND status = 'pending'"),
        1
    );
    assert_eq!(
        app.count("audit_events WHERE action = 'invitation.cancelled'"),
        0
    );

    // The Admin who could have sent it still cancels it.
    let done = admin.submit("/orgs/my-org/invitations", &cancel, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        app.count("invitations WHERE email = 'victim@example.com' AND status = 'cancelled'"),
        1
    );
}

/// An Admin defines the custom role `name` holding `permissions`, and `email` joins with
/// it. Answers the member's id and their signed-in browser.
pub(crate) async fn custom_role_holder(
    app: &TestApp,
    admin: &Browser,
    name: &str,
    permissions: &[&str],
    email: &str,
) -> (String, Browser) {
    let path = format!("/orgs/{ORG}/roles");
    let mut fields = vec![("name", name)];
    fields.extend(permissions.iter().map(|p| ("permissions", *p)));
    let created = admin.submit(&path, &path, &fields).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let org = app.org_id(ORG);
    let role = portcullis::db::roles::list(&mut app.conn(), &org)
        .unwrap()
        .into_iter()
        .find(|r| r.name == name)
        .expect("the role was made");
    let id = app.add_member(ORG, email, "Mal", "Lory", &role.key, true);
    (id, app.member_browser(email).await)
}

/// `by` sends the invite form with `fields`; answers the page it gets.
async fn send_invite(by: &Browser, fields: &[(&str, &str)]) -> Page {
    by.submit(
        &format!("/orgs/{ORG}/invitations/new"),
        &format!("/orgs/{ORG}/invitations"),
        fields,
    )
    .await
}

/// `by` sends the invite form with `fields`: refused with 422 and `reason` on the page,
/// and nobody is invited.
async fn inviting_is_refused(app: &TestApp, by: &Browser, fields: &[(&str, &str)], reason: &str) {
    let invited = send_invite(by, fields).await;
    assert_eq!(invited.status, 422, "{}", invited.body);
    assert!(invited.body.contains(reason), "{}", invited.body);
    assert_eq!(app.count("invitations"), 0);
}

/// An Admin gives `user_id` the pool role `role_key` in `pool`.
async fn add_to_pool(app: &TestApp, admin: &Browser, pool: &str, user_id: &str, role_key: &str) {
    let pools = format!("/orgs/{ORG}/pools");
    let added = admin
        .submit(
            &pools,
            &format!("{pools}/{pool}/members"),
            &[
                ("user_id", user_id),
                ("role_id", &app.role_id(ORG, role_key)),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
}

fn role_key_of(app: &TestApp, user_id: &str) -> String {
    let org = app.org_id(ORG);
    portcullis::db::memberships::find(&mut app.conn(), &org, user_id)
        .unwrap()
        .expect("a member")
        .role
        .key
}

/// A custom role ranks with the smallest built-in role covering it: "Helpdesk" (read and
/// manage members) ranks with Manager. Its holder must still not make themselves one.
#[actix_web::test]
async fn a_custom_role_cannot_promote_its_holder_to_manager() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (me, mallory) = helpdesk(&app, &admin).await;
    let helpdesk = role_key_of(&app, &me);
    let profile = format!("/orgs/{ORG}/users/{me}");
    let promoted = mallory
        .submit(
            &profile,
            &profile,
            &[
                ("first_name", "Mal"),
                ("last_name", "Lory"),
                ("role_id", &app.role_id(ORG, "manager")),
                ("confirm_own_role", "yes"),
            ],
        )
        .await;
    assert_eq!(promoted.status, 403, "{}", promoted.body);
    assert!(promoted.body.contains("a permission you do not hold"));
    assert_eq!(role_key_of(&app, &me), helpdesk);
    assert_eq!(app.audit_count(ORG, "member.role_changed"), 0);
    // The profile offers no role beyond Helpdesk's own.
    let form = mallory.get(&profile).await;
    assert!(
        !form.body.contains(&app.role_id(ORG, "manager")),
        "Manager is not offered"
    );
}

/// Someone who may remove members without managing pools reads no pool's name on the
/// removal page (a pool's name reaches only those who may open it), only how many pools
/// the member owns.
#[actix_web::test]
async fn the_removal_page_names_no_pool_its_reader_cannot_open() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (_, mallory) = helpdesk(&app, &admin).await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let hidden = pool(&admin, "Project X").await;
    app.set_pool_owner(&hidden, &bob);

    let removal = format!("/orgs/{ORG}/users/{bob}/delete");
    let page = mallory.get(&removal).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("1 pool (its name is shown to those who manage pools)"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Project X"), "{}", page.body);
    assert!(admin.get(&removal).await.body.contains("Project X"));

    // Nor how many invitations Bob sent, to a reader who may not see the Invited tab.
    let sent = admin
        .invite(ORG, "pat@example.com", &app.role_id(ORG, "member"))
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    {
        use diesel::prelude::*;
        use portcullis::db::schema::invitations;
        diesel::update(invitations::table)
            .set(invitations::invited_by.eq(&bob))
            .execute(&mut *app.conn() as &mut portcullis::db::DbConnection)
            .unwrap();
    }
    let count = "data-open-invitations=\"1\"";
    assert!(admin.get(&removal).await.body.contains(count));
    let page = mallory.get(&removal).await;
    assert!(
        !page.body.contains("data-open-invitations"),
        "{}",
        page.body
    );
}

/// Leaving takes no permission, and owning something must not keep anyone in: a member
/// whose role does not read the members list cannot pick a successor (the picker lists
/// nobody to them), so what they own, a label that grants nothing, is left to nobody.
#[actix_web::test]
async fn a_member_who_cannot_pick_a_successor_still_leaves() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (me, mallory) = custom_role_holder(
        &app,
        &admin,
        "Auditor",
        &["audit.read"],
        "mallory@example.com",
    )
    .await;
    let owned = pool(&admin, "Project X").await;
    app.set_pool_owner(&owned, &me);

    let leave = format!("/orgs/{ORG}/users/{me}/delete");
    // Nor does naming someone's id show them who it is.
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let page = mallory
        .get(&format!("{leave}?pick=successor_id&q=bob"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("bob@example.com"), "{}", page.body);
    let wrong = mallory
        .submit(
            &leave,
            &leave,
            &[
                ("confirm_email", "nobody@example.com"),
                ("successor_id", &bob),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(!wrong.body.contains("bob@example.com"), "{}", wrong.body);

    let left = mallory
        .submit(&leave, &leave, &[("confirm_email", "mallory@example.com")])
        .await;
    assert_eq!(left.status, 303, "{}", left.body);
    assert_eq!(app.membership_status(ORG, &me), None);
    assert_eq!(app.pool_owner(&owned), None);
}

/// Nor may it act on a member holding what it does not: a Manager is out of its reach.
#[actix_web::test]
async fn a_custom_role_cannot_deactivate_a_manager() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (_, mallory) = helpdesk(&app, &admin).await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "manager", true);
    let users = format!("/orgs/{ORG}/users");
    let refused = mallory
        .submit(&users, &format!("{users}/{bob}/deactivate"), &[])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let org = app.org_id(ORG);
    let row = portcullis::db::memberships::find(&mut app.conn(), &org, &bob)
        .unwrap()
        .unwrap();
    assert!(row.membership.is_active());
    // A Member is within its reach: the rule refuses only what lies beyond it.
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "member", true);
    let done = mallory
        .submit(&users, &format!("{users}/{carol}/deactivate"), &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
}

/// A "Group keeper" (read members, manage groups) ranks with Manager too: a group of its
/// own that grants Manager, or joining an Admin's Manager group, would make it one.
#[actix_web::test]
async fn a_custom_role_cannot_hand_itself_manager_through_a_group() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let groups = format!("/orgs/{ORG}/groups");
    let managers = admin
        .submit(
            &groups,
            &groups,
            &[
                ("name", "Managers"),
                ("role_id", &app.role_id(ORG, "manager")),
            ],
        )
        .await;
    assert_eq!(managers.status, 303, "{}", managers.body);
    let managers = location_id(&managers);
    let (me, mallory) = custom_role_holder(
        &app,
        &admin,
        "Group keeper",
        &["users.read", "groups.manage"],
        "mallory@example.com",
    )
    .await;

    let own = mallory
        .submit(
            &groups,
            &groups,
            &[
                ("name", "Back door"),
                ("role_id", &app.role_id(ORG, "manager")),
            ],
        )
        .await;
    assert_eq!(own.status, 422, "{}", own.body);
    assert!(own.body.contains("a permission you do not hold"));
    let joined = mallory
        .submit(
            &groups,
            &format!("{groups}/{managers}/members"),
            &[("user_id", &me)],
        )
        .await;
    assert_eq!(joined.status, 403, "{}", joined.body);

    let org = app.org_id(ORG);
    let granted = portcullis::db::memberships::group_roles(&mut app.conn(), &org, &me).unwrap();
    assert!(granted.is_empty(), "no group grants Mallory a role");
    assert_eq!(app.count("groups"), 1, "no group of Mallory's");
}

/// A "Recruiter" (read and invite) ranks with Manager: inviting a second address of its
/// own as Manager would make it one.
#[actix_web::test]
async fn a_custom_role_cannot_invite_a_manager() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (_, mallory) = recruiter(&app, &admin).await;
    let form = mallory.get(&format!("/orgs/{ORG}/invitations/new")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        !form.body.contains(&app.role_id(ORG, "manager")),
        "Manager is not offered"
    );
    inviting_is_refused(
        &app,
        &mallory,
        &[
            ("emails", "mallory.too@example.com"),
            ("role_id", &app.role_id(ORG, "manager")),
        ],
        "a permission you do not hold",
    )
    .await;
}

/// An Admin makes the pool `name` at the top of the tree; answers its id.
pub(crate) async fn pool(admin: &Browser, name: &str) -> String {
    pool_in(admin, name, "").await
}

/// An Admin makes the pool `name` under `parent` (empty: at the top); answers its id.
async fn pool_in(admin: &Browser, name: &str, parent: &str) -> String {
    let pools = format!("/orgs/{ORG}/pools");
    let made = admin
        .submit(&pools, &pools, &[("name", name), ("parent_id", parent)])
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    location_id(&made)
}

/// Mallory, holding the custom "Helpdesk" role (read and manage members), which ranks
/// with Manager.
async fn helpdesk(app: &TestApp, admin: &Browser) -> (String, Browser) {
    custom_role_holder(
        app,
        admin,
        "Helpdesk",
        &["users.read", "users.manage"],
        "mallory@example.com",
    )
    .await
}

/// Mallory, holding the custom "Recruiter" role (read and invite).
async fn recruiter(app: &TestApp, admin: &Browser) -> (String, Browser) {
    custom_role_holder(
        app,
        admin,
        "Recruiter",
        &["users.read", "users.invite"],
        "mallory@example.com",
    )
    .await
}

/// A pool Manager without `users.invite` may not cancel an Admin's invitation into their
/// pool with its Cancel button; inviting the address again with another offer (a last
/// day, say) must not cancel and replace it either.
#[actix_web::test]
async fn a_pool_manager_cannot_replace_an_invitation_they_could_not_cancel() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let prod = pool(&admin, "Prod").await;
    let member = app.role_id(ORG, "member");
    let sent = send_invite(
        &admin,
        &[
            ("emails", "x@example.com"),
            ("role_id", &member),
            ("pool_ids", &prod),
        ],
    )
    .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    add_to_pool(&app, &admin, &prod, &bob, "manager").await;
    let bob = app.member_browser("bob@example.com").await;

    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    let again = send_invite(
        &bob,
        &[
            ("emails", "x@example.com"),
            ("role_id", &member),
            ("pool_ids", &prod),
            ("access_until", &tomorrow),
        ],
    )
    .await;
    let page = bob.follow_results(again).await;
    // Nor does the page tell them what the invitation they may not open offers, or its id.
    assert!(
        page.body.contains("Not invited: ask someone who manages"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Already invited"), "{}", page.body);
    let id = app.invitation_id("x@example.com");
    assert!(!page.body.contains(&id), "{}", page.body);
    assert_eq!(app.count("invitations WHERE status = 'cancelled'"), 0);
    assert_eq!(
        app.count("invitations WHERE status = 'pending' AND access_until IS NULL"),
        1
    );
}

/// Holding `users.invite` places nobody in a pool: a Recruiter inviting a second address
/// of its own into Prod would reach, through it, a pool it cannot manage.
#[actix_web::test]
async fn a_custom_role_cannot_invite_into_a_pool_it_does_not_manage() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let prod = pool(&admin, "Prod").await;
    let (_, mallory) = recruiter(&app, &admin).await;
    inviting_is_refused(
        &app,
        &mallory,
        &[
            ("emails", "mallory.too@example.com"),
            ("role_id", &app.role_id(ORG, "member")),
            ("pool_ids", &prod),
        ],
        "You can only invite people into pools you manage.",
    )
    .await;
}

/// The invite form offers a Recruiter only the pools it may place people in: a pool it
/// manages, and not the name of one it cannot open (not even as its pool's parent), on
/// the blank form or after a refusal.
#[actix_web::test]
async fn a_custom_role_that_invites_is_offered_only_the_pools_it_manages() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    // Hers hangs under one she may not open: its name is not shown as her pool's parent.
    let secret = pool(&admin, "Secret Merger").await;
    let mine = pool_in(&admin, "Recruiting Desk", &secret).await;
    let (mallory_id, mallory) = recruiter(&app, &admin).await;
    add_to_pool(&app, &admin, &mine, &mallory_id, "manager").await;
    let form = mallory.get(&format!("/orgs/{ORG}/invitations/new")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Recruiting Desk"), "{}", form.body);
    assert!(!form.body.contains("Secret Merger"), "{}", form.body);
    let refused = send_invite(
        &mallory,
        &[
            ("emails", "not an address"),
            ("role_id", &app.role_id(ORG, "member")),
        ],
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("Recruiting Desk"), "{}", refused.body);
    assert!(!refused.body.contains("Secret Merger"), "{}", refused.body);
}

/// An Engineer runs the pools they belong to, up to their own standing: removing a pool
/// Manager from one is acting above it.
#[actix_web::test]
async fn an_engineer_cannot_remove_a_pool_manager_from_their_pool() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let prod = pool(&admin, "Prod").await;
    let eve = app.add_member(ORG, "eve@example.com", "Eve", "E", "engineer", true);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let mo = app.add_member(ORG, "mo@example.com", "Mo", "M", "member", true);
    for (who, role) in [(&eve, "engineer"), (&bob, "manager"), (&mo, "engineer")] {
        add_to_pool(&app, &admin, &prod, who, role).await;
    }
    let pools = format!("/orgs/{ORG}/pools");
    let members = format!("{pools}/{prod}/members");
    let e = app.member_browser("eve@example.com").await;
    let refused = e
        .submit(&pools, &format!("{members}/{bob}/remove"), &[])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let org = app.org_id(ORG);
    let held = portcullis::db::pools::roles_of_user(&mut app.conn(), &org, &bob).unwrap();
    assert_eq!(held.len(), 1, "Bob is still Prod's Manager");
    // A fellow Engineer is within Eve's reach.
    let removed = e
        .submit(&pools, &format!("{members}/{mo}/remove"), &[])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
}

/// A SCIM token manages members and groups. A member holding `org.manage` without
/// `users.manage` (a custom "Owner") would, through a token of their own, deactivate and
/// re-address members they cannot touch themselves.
#[actix_web::test]
async fn a_token_holds_no_more_than_the_member_who_makes_it() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (_, mallory) = custom_role_holder(
        &app,
        &admin,
        "Owner",
        &["users.read", "org.manage"],
        "mallory@example.com",
    )
    .await;
    let (page, secret) = crate::api_tokens::create(
        &mallory,
        ORG,
        "Side door",
        &["scim"],
        &app.role_id(ORG, "member"),
        "30",
    )
    .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(secret.is_none(), "no token shown");
    assert!(page.body.contains("only a member who holds users.manage"));
    assert_eq!(app.count("api_tokens"), 0);
    // A read token holds nothing the Owner lacks.
    let (read, secret) = crate::api_tokens::create(
        &mallory,
        ORG,
        "Reader",
        &["read"],
        &app.role_id(ORG, "member"),
        "30",
    )
    .await;
    assert!(secret.is_some(), "{}", read.body);
}

/// Deleting a pool takes every pool role in it away: an Engineer running Prod deletes no
/// sub-pool in which someone is a Manager.
#[actix_web::test]
async fn an_engineer_cannot_delete_a_sub_pool_a_manager_holds() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let prod = pool(&admin, "Prod").await;
    let pools = format!("/orgs/{ORG}/pools");
    let eu = pool_in(&admin, "Prod EU", &prod).await;
    let eve = app.add_member(ORG, "eve@example.com", "Eve", "E", "engineer", true);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    add_to_pool(&app, &admin, &prod, &eve, "engineer").await;
    add_to_pool(&app, &admin, &eu, &bob, "manager").await;
    let e = app.member_browser("eve@example.com").await;
    let page = e.get(&format!("{pools}/{eu}")).await;
    assert!(
        !page.body.contains(&format!("{pools}/{eu}/delete")),
        "not offered"
    );
    assert_eq!(e.get(&format!("{pools}/{eu}/delete")).await.status, 403);
    let refused = e.submit(&pools, &format!("{pools}/{eu}/delete"), &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(app.count("pools"), 2);
    assert_eq!(app.audit_count(ORG, "pool.deleted"), 0);
    // Once Bob has left it, the sub-pool is Eve's to delete.
    let left = admin
        .submit(&pools, &format!("{pools}/{eu}/members/{bob}/remove"), &[])
        .await;
    assert_eq!(left.status, 303, "{}", left.body);
    let deleted = e.submit(&pools, &format!("{pools}/{eu}/delete"), &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
}

/// Moving a pool is acting on the pool roles in it, as deleting is: an Engineer running
/// Prod, and Manager of her own Lab, may not move a sub-pool where Bob is Manager from
/// under Prod into her Lab, where she would outrank him.
#[actix_web::test]
async fn an_engineer_cannot_move_a_managers_sub_pool_into_her_own_reach() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let prod = pool(&admin, "Prod").await;
    let lab = pool(&admin, "Lab").await;
    let pools = format!("/orgs/{ORG}/pools");
    let eu = pool_in(&admin, "Prod EU", &prod).await;
    let eve = app.add_member(ORG, "eve@example.com", "Eve", "E", "engineer", true);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    add_to_pool(&app, &admin, &prod, &eve, "engineer").await;
    add_to_pool(&app, &admin, &lab, &eve, "manager").await;
    add_to_pool(&app, &admin, &eu, &bob, "manager").await;
    let e = app.member_browser("eve@example.com").await;
    let move_to_lab = [("name", "Prod EU"), ("parent_id", lab.as_str())];
    let refused = e
        .submit(&pools, &format!("{pools}/{eu}"), &move_to_lab)
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("You cannot move this pool"));
    let org = app.org_id(ORG);
    let still = portcullis::db::pools::list(&mut app.conn(), &org).unwrap();
    let eu_now = still.iter().find(|p| p.id == eu).unwrap();
    assert_eq!(eu_now.parent_id.as_deref(), Some(prod.as_str()));
    // Once Bob has left it, Eve may move it.
    let left = admin
        .submit(&pools, &format!("{pools}/{eu}/members/{bob}/remove"), &[])
        .await;
    assert_eq!(left.status, 303, "{}", left.body);
    let moved = e
        .submit(&pools, &format!("{pools}/{eu}"), &move_to_lab)
        .await;
    assert_eq!(moved.status, 303, "{}", moved.body);
}

/// Adding someone to a group needs `groups.manage`; an invitation must not be a way
/// round it.
#[actix_web::test]
async fn a_custom_role_cannot_put_an_invitee_in_a_group() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let groups = format!("/orgs/{ORG}/groups");
    let staff = admin.submit(&groups, &groups, &[("name", "Staff")]).await;
    assert_eq!(staff.status, 303, "{}", staff.body);
    let staff = location_id(&staff);
    let (_, mallory) = recruiter(&app, &admin).await;
    let form = mallory.get(&format!("/orgs/{ORG}/invitations/new")).await;
    assert!(!form.body.contains(&staff), "Staff is not offered");
    inviting_is_refused(
        &app,
        &mallory,
        &[
            ("emails", "friend@example.com"),
            ("role_id", &app.role_id(ORG, "member")),
            ("group_ids", &staff),
        ],
        "You can only add people to groups if you may manage groups.",
    )
    .await;
}

/// The removal page names what a member owns, for the successor to take over. It is no
/// window onto a member the reader may not remove.
#[actix_web::test]
async fn the_removal_page_of_a_manager_is_closed_to_a_custom_role() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "manager", true);
    let groups = format!("/orgs/{ORG}/groups");
    let owned = admin
        .submit(
            &groups,
            &groups,
            &[("name", "Merger talks"), ("owner_id", &bob)],
        )
        .await;
    assert_eq!(owned.status, 303, "{}", owned.body);
    let (_, mallory) = helpdesk(&app, &admin).await;
    let page = mallory
        .get(&format!("/orgs/{ORG}/users/{bob}/delete"))
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(!page.body.contains("Merger talks"));
    // The Admin still sees it, with the group to hand over.
    let theirs = admin.get(&format!("/orgs/{ORG}/users/{bob}/delete")).await;
    assert!(theirs.body.contains("Merger talks"), "{}", theirs.body);
}

/// A contractor made Admin until a date must not outlive it: not by lifting the date on
/// their own profile (the expiry job would never end their access), nor by inviting a
/// second address of theirs without one, giving a colleague access beyond it, or making
/// an API token that outlasts it. Within the date, all of that still works.
#[actix_web::test]
async fn a_member_hands_out_no_access_beyond_their_own() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let me = app.add_member(ORG, "mallory@example.com", "Mal", "Lory", "admin", true);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let day = |days: i64| {
        (portcullis::db::now() + chrono::Duration::days(days))
            .date()
            .format("%Y-%m-%d")
            .to_string()
    };
    let edit = |who: &str, first: &str, last: &str, role: &str, until: String| {
        let profile = format!("/orgs/{ORG}/users/{who}");
        let fields = vec![
            ("first_name", first.to_string()),
            ("last_name", last.to_string()),
            ("role_id", app.role_id(ORG, role)),
            ("access_until", until),
        ];
        (profile, fields)
    };
    let post = |by: &Browser, (path, mut fields): (String, Vec<(&'static str, String)>)| {
        let by = by.clone();
        async move {
            let page = by.get(&path).await;
            fields.push(("csrf_token", page.csrf()));
            by.post(&path, &fields).await
        }
    };
    let until = |user: &str| {
        let org = app.org_id(ORG);
        portcullis::db::memberships::find(&mut app.conn(), &org, user)
            .unwrap()
            .unwrap()
            .membership
            .access_until
    };
    let set = post(&admin, edit(&me, "Mal", "Lory", "admin", day(5))).await;
    assert_eq!(set.status, 303, "{}", set.body);
    let granted = until(&me);
    assert!(granted.is_some());
    let set = post(&admin, edit(&bob, "Bob", "B", "member", day(3))).await;
    assert_eq!(set.status, 303, "{}", set.body);
    let bobs = until(&bob);
    let mallory = app.member_browser("mallory@example.com").await;
    let beyond = "Your own access ends after";
    // The forms offer no later day, and say why.
    for form in [
        format!("/orgs/{ORG}/invitations/new"),
        format!("/orgs/{ORG}/users/{bob}"),
    ] {
        let page = mallory.get(&form).await;
        assert!(
            page.body.contains(&format!("max=\"{}\"", day(5))),
            "{}",
            page.body
        );
        assert!(
            page.body.contains(&format!("{beyond} {}", day(5))),
            "{}",
            page.body
        );
    }

    for later in [String::new(), day(30)] {
        let own = post(&mallory, edit(&me, "Mal", "Lory", "admin", later.clone())).await;
        assert_eq!(own.status, 422, "{later:?}: {}", own.body);
        assert!(own.body.contains(beyond), "{}", own.body);
        assert_eq!(until(&me), granted, "{later:?}");
        let colleague = post(&mallory, edit(&bob, "Bob", "B", "member", later.clone())).await;
        assert_eq!(colleague.status, 422, "{later:?}: {}", colleague.body);
        assert_eq!(until(&bob), bobs);
        let invited = send_invite(
            &mallory,
            &[
                ("emails", "mallory.too@example.com"),
                ("role_id", &app.role_id(ORG, "admin")),
                ("access_until", &later),
            ],
        )
        .await;
        assert_eq!(invited.status, 422, "{later:?}: {}", invited.body);
        assert!(invited.body.contains(beyond), "{}", invited.body);
        assert_eq!(app.count("invitations"), 0);
    }
    let admin_role = app.role_id(ORG, "admin");
    let (token, _) =
        crate::api_tokens::create(&mallory, ORG, "Forever", &["scim"], &admin_role, "never").await;
    assert_eq!(token.status, 422, "{}", token.body);
    assert!(token.body.contains(beyond), "{}", token.body);
    assert_eq!(app.count("api_tokens"), 0);

    // Within her own date, she still does all of it.
    let sooner = post(&mallory, edit(&me, "Mal", "Lory", "admin", day(2))).await;
    assert_eq!(sooner.status, 303, "{}", sooner.body);
    assert!(until(&me) < granted);
    let colleague = post(&mallory, edit(&bob, "Bob", "B", "member", day(1))).await;
    assert_eq!(colleague.status, 303, "{}", colleague.body);
    let invited = send_invite(
        &mallory,
        &[
            ("emails", "temp@example.com"),
            ("role_id", &app.role_id(ORG, "member")),
            ("access_until", &day(1)),
        ],
    )
    .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    let (token, secret) =
        crate::api_tokens::create(&mallory, ORG, "Short", &["scim"], &admin_role, "1").await;
    assert_eq!(token.status, 200, "{}", token.body);
    // What that token provisions (a second address of hers, say) ends when she does.
    let scim = crate::scim::Scim::new(&app, &secret.unwrap());
    let alt = scim.create_user("mallory.alt@example.com").await;
    assert_eq!(until(&alt), until(&me));
}

/// A group lends its role only while one is in it: Alice, a Member in a group granting
/// Admin, must not make Admin her own role and keep it after leaving the group.
#[actix_web::test]
async fn a_role_lent_by_a_group_cannot_be_made_ones_own() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let groups = format!("/orgs/{ORG}/groups");
    let on_call = admin
        .submit(
            &groups,
            &groups,
            &[("name", "On call"), ("role_id", &app.role_id(ORG, "admin"))],
        )
        .await;
    assert_eq!(on_call.status, 303, "{}", on_call.body);
    let on_call = location_id(&on_call);
    let me = app.add_member(ORG, "alice@example.com", "Alice", "A", "member", true);
    let joined = admin
        .submit(
            &groups,
            &format!("{groups}/{on_call}/members"),
            &[("user_id", &me)],
        )
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    let alice = app.member_browser("alice@example.com").await;
    let profile = format!("/orgs/{ORG}/users/{me}");

    let promote = format!("{profile}/make-admin");
    assert_eq!(alice.get(&promote).await.status, 403);
    let refused = alice.submit(&profile, &promote, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("You cannot give yourself a role above")
    );
    let refused = alice
        .submit(
            &profile,
            &profile,
            &[
                ("first_name", "Alice"),
                ("last_name", "A"),
                ("role_id", &app.role_id(ORG, "admin")),
                ("access_until", ""),
                ("confirm_own_role", "yes"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(role_key_of(&app, &me), "member");
    assert_eq!(app.audit_count(ORG, "member.made_admin"), 0);

    // What the group lends still works while she is in it: she promotes someone else.
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let done = alice
        .submit(
            &format!("/orgs/{ORG}/users/{bob}"),
            &format!("/orgs/{ORG}/users/{bob}/make-admin"),
            &[],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(role_key_of(&app, &bob), "admin");
}

/// Someone a group lends Admin makes a second group that grants Admin and joins it, or
/// makes a group they are in grant Admin: once out of the first group, they would still
/// be Admin. Joining a group is taking the role it grants, so each path is refused.
#[actix_web::test]
async fn a_role_lent_by_a_group_cannot_be_kept_through_another_group() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let groups = format!("/orgs/{ORG}/groups");
    let admin_role = app.role_id(ORG, "admin");
    let on_call = admin
        .submit(
            &groups,
            &groups,
            &[("name", "On call"), ("role_id", &admin_role)],
        )
        .await;
    let on_call = location_id(&on_call);
    let plain = admin.submit(&groups, &groups, &[("name", "Plain")]).await;
    let plain = location_id(&plain);
    let me = app.add_member(ORG, "alice@example.com", "Alice", "A", "member", true);
    for group in [&on_call, &plain] {
        let joined = admin
            .submit(
                &groups,
                &format!("{groups}/{group}/members"),
                &[("user_id", &me)],
            )
            .await;
        assert_eq!(joined.status, 303, "{}", joined.body);
    }
    let alice = app.member_browser("alice@example.com").await;
    let keep = alice
        .submit(
            &groups,
            &groups,
            &[("name", "Keep"), ("role_id", &admin_role)],
        )
        .await;
    assert_eq!(
        keep.status, 303,
        "what the group lends still works: {}",
        keep.body
    );
    let keep = location_id(&keep);

    let joined = alice
        .submit(
            &groups,
            &format!("{groups}/{keep}/members"),
            &[("user_id", &me)],
        )
        .await;
    assert_eq!(joined.status, 403, "{}", joined.body);
    assert!(
        joined
            .body
            .contains("You cannot give yourself a role above")
    );
    let users = format!("/orgs/{ORG}/users");
    let bulk = alice
        .submit(
            &users,
            &format!("{users}/bulk"),
            &[
                ("action", "add-to-group"),
                ("user_ids", &me),
                ("group_id", &keep),
            ],
        )
        .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert!(bulk.body.contains("0 done, 1 skipped"), "{}", bulk.body);
    let edited = alice
        .submit(
            &format!("{groups}/{plain}"),
            &format!("{groups}/{plain}"),
            &[
                ("name", "Plain"),
                ("description", ""),
                ("role_id", &admin_role),
                ("owner_id", &app.user_id(ADMIN_EMAIL)),
            ],
        )
        .await;
    assert_eq!(edited.status, 403, "{}", edited.body);

    // A pool role outlives the group too.
    let prod = pool(&admin, "Prod").await;
    let pools = format!("/orgs/{ORG}/pools");
    let pooled = alice
        .submit(
            &pools,
            &format!("{pools}/{prod}/members"),
            &[("user_id", &me), ("role_id", &app.role_id(ORG, "manager"))],
        )
        .await;
    assert_eq!(pooled.status, 403, "{}", pooled.body);

    // A small role of her own making, lent through a group she joins, then widened.
    let roles = format!("/orgs/{ORG}/roles");
    let made = alice
        .submit(
            &roles,
            &roles,
            &[("name", "Small"), ("permissions", "users.read")],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let org = app.org_id(ORG);
    let small = portcullis::db::roles::list(&mut app.conn(), &org)
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Small")
        .unwrap()
        .id;
    let lends_small = alice
        .submit(
            &groups,
            &groups,
            &[("name", "Lends small"), ("role_id", &small)],
        )
        .await;
    let lends_small = location_id(&lends_small);
    let joined = alice
        .submit(
            &groups,
            &format!("{groups}/{lends_small}/members"),
            &[("user_id", &me)],
        )
        .await;
    assert_eq!(joined.status, 303, "within her own role: {}", joined.body);
    let mut everything = vec![("name", "Small")];
    for p in [
        "users.read",
        "users.invite",
        "users.manage",
        "groups.manage",
        "org.manage",
    ] {
        everything.push(("permissions", p));
    }
    let widened = alice
        .submit(&roles, &format!("{roles}/{small}"), &everything)
        .await;
    assert_eq!(widened.status, 403, "{}", widened.body);

    // Nor one she holds in a pool, as an invitation naming the pool gives her its role
    // there: widened, it would give her `pools.manage` over the pool after the group.
    let made = alice
        .submit(
            &roles,
            &roles,
            &[("name", "Pooled"), ("permissions", "users.read")],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let pooled_role = portcullis::db::roles::list(&mut app.conn(), &org)
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Pooled")
        .unwrap()
        .id;
    portcullis::db::pools::add_member(&mut app.conn(), &org, &prod, &me, &pooled_role).unwrap();
    everything[0] = ("name", "Pooled");
    everything.push(("permissions", "pools.manage"));
    let widened = alice
        .submit(&roles, &format!("{roles}/{pooled_role}"), &everything)
        .await;
    assert_eq!(widened.status, 403, "{}", widened.body);

    // Nor through a SCIM token of her own.
    let token = crate::api_tokens::admin_token(&app, &alice, &["scim"], "admin").await;
    let scim = crate::scim::Scim::new(&app, &token);
    let patched = scim
        .patch(
            &format!("/Groups/{keep}"),
            &crate::scim::patch_body(
                serde_json::json!([{"op": "add", "path": "members", "value": [{"value": me}]}]),
            ),
        )
        .await;
    assert_eq!(patched.status, 403, "{}", patched.body);
    assert_eq!(
        app.count(&format!("group_members WHERE user_id = '{me}'")),
        3,
        "On call, Plain and Lends small only"
    );

    let left = admin
        .submit(
            &groups,
            &format!("{groups}/{on_call}/members/{me}/remove"),
            &[],
        )
        .await;
    assert_eq!(left.status, 303, "{}", left.body);
    assert_eq!(
        alice.get(&format!("{groups}/{keep}/delete")).await.status,
        403
    );
    assert_eq!(role_key_of(&app, &me), "member");
}

/// An Admin whose access ends on a day re-activates a member deactivated by hand, who has
/// no end: that gives access past the Manager's own last day, as an edit would. Refused
/// on the page, in bulk and through the Manager's SCIM token.
#[actix_web::test]
async fn reactivating_gives_no_access_beyond_ones_own() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let me = app.add_member(ORG, "mallory@example.com", "Mal", "Lory", "admin", true);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let users = format!("/orgs/{ORG}/users");
    let day = (portcullis::db::now() + chrono::Duration::days(5))
        .date()
        .format("%Y-%m-%d")
        .to_string();
    // Her token, made before her access was given an end, takes her end with it.
    let mallory = app.member_browser("mallory@example.com").await;
    let token = crate::api_tokens::admin_token(&app, &mallory, &["scim"], "member").await;
    let scim = crate::scim::Scim::new(&app, &token);
    let profile = format!("{users}/{me}");
    let dated = admin
        .submit(
            &profile,
            &profile,
            &[
                ("first_name", "Mal"),
                ("last_name", "Lory"),
                ("role_id", &app.role_id(ORG, "admin")),
                ("access_until", &day),
            ],
        )
        .await;
    assert_eq!(dated.status, 303, "{}", dated.body);
    let off = admin
        .submit(&users, &format!("{users}/{bob}/deactivate"), &[])
        .await;
    assert_eq!(off.status, 303, "{}", off.body);

    let one = mallory
        .submit(&users, &format!("{users}/{bob}/activate"), &[])
        .await;
    assert_eq!(one.status, 403, "{}", one.body);
    assert!(
        one.body.contains("Your own access ends after"),
        "{}",
        one.body
    );
    let bulk = mallory
        .submit(
            &users,
            &format!("{users}/bulk"),
            &[("action", "activate"), ("user_ids", &bob)],
        )
        .await;
    assert!(bulk.body.contains("0 done, 1 skipped"), "{}", bulk.body);
    let patched = scim
        .patch(
            &format!("/Users/{bob}"),
            &crate::scim::patch_body(
                serde_json::json!([{"op": "replace", "path": "active", "value": true}]),
            ),
        )
        .await;
    assert_eq!(patched.status, 403, "{}", patched.body);
    assert_eq!(
        app.membership_status(ORG, &bob).as_deref(),
        Some("inactive")
    );
}

/// A pool Manager without `users.invite` sends invitations only into their pools. Naming
/// the address of an Admin's pending Member invitation on the invite form must not renew
/// it in their name: acceptance would then refuse the new link (they could not have sent
/// it), and the old one would be dead.
#[actix_web::test]
async fn a_pool_manager_cannot_take_over_an_invitation_they_could_not_send() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let sent = send_invite(
        &admin,
        &[
            ("emails", "victim@example.com"),
            ("role_id", &app.role_id(ORG, "member")),
        ],
    )
    .await;
    let link = admin.follow_results(sent).await.invite_link();
    let prod = pool(&admin, "Prod").await;
    let me = app.add_member(ORG, "mallory@example.com", "Mal", "Lory", "member", true);
    add_to_pool(&app, &admin, &prod, &me, "manager").await;
    let mallory = app.member_browser("mallory@example.com").await;
    app.a_minute_passes("victim@example.com");

    let tried = send_invite(
        &mallory,
        &[
            ("emails", "victim@example.com"),
            ("role_id", &app.role_id(ORG, "member")),
            ("pool_ids", &prod),
        ],
    )
    .await;
    let results = mallory.follow_results(tried).await;
    // Nor told what it offers: they may not open the Invited tab.
    assert!(
        results.body.contains("data-result=\"withheld\""),
        "{}",
        results.body
    );
    assert_eq!(
        inviter_of(&app, "victim@example.com"),
        Some(app.user_id(ADMIN_EMAIL))
    );
    let victim = app.client();
    let form = victim.get(&link).await;
    assert_eq!(form.status, 200, "the Admin's link still works");
    let accepted = victim
        .post(
            &link,
            &account_form(form.csrf(), "Vic", "Tim", MEMBER_PASSWORD),
        )
        .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
}

/// Removal ends a membership; deactivation keeps it. An Admin removed, then invited back
/// and made Admin again, brought back every token and link the old membership made: a
/// "never expires" token left in a retired identity provider's settings acted again.
/// What the old membership made stays dead.
#[actix_web::test]
async fn a_maker_invited_back_brings_back_no_token_or_link_of_their_old_membership() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let mallory_id = app.add_member(ORG, "mallory@example.com", "Mal", "Lory", "admin", true);
    let mallory = app.member_browser("mallory@example.com").await;
    let token = crate::api_tokens::admin_token(&app, &mallory, &["scim"], "member").await;
    let scim = crate::scim::Scim::new(&app, &token);
    assert_eq!(scim.get("/Users").await.status, 200);
    let sent = mallory
        .invite(ORG, "friend@example.com", &app.role_id(ORG, "member"))
        .await;
    let link = mallory.follow_results(sent).await.invite_link();
    // Made a while before (within a minute, instances' clocks may disagree).
    app.a_minute_passes("friend@example.com");
    {
        use diesel::prelude::*;
        use portcullis::db::schema::api_tokens;
        diesel::update(api_tokens::table)
            .set(api_tokens::created_at.eq(portcullis::db::now() - chrono::Duration::minutes(2)))
            .execute(&mut *app.conn() as &mut portcullis::db::DbConnection)
            .unwrap();
    }

    let removal = format!("/orgs/{ORG}/users/{mallory_id}/delete");
    let removed = admin
        .submit(
            &removal,
            &removal,
            &[("confirm_email", "mallory@example.com")],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    app.add_member(ORG, "mallory@example.com", "Mal", "Lory", "admin", true);

    assert_eq!(scim.get("/Users").await.status, 401);
    let list = admin.get(&format!("/orgs/{ORG}/api-tokens")).await;
    assert!(
        list.body.contains("data-status=\"orphaned\""),
        "{}",
        list.body
    );
    assert!(list.body.contains("left the organization after making it"));
    let opened = app.client().get(&link).await;
    assert_eq!(opened.status, 404, "the link is dead: {}", opened.body);
    // What the new membership makes works.
    let again = app.member_browser("mallory@example.com").await;
    let member = app.role_id(ORG, "member");
    // Another name: the orphaned "Okta" keeps its own until it is revoked.
    let (made, fresh) =
        crate::api_tokens::create(&again, ORG, "Okta 2", &["scim"], &member, "365").await;
    let fresh = fresh.unwrap_or_else(|| panic!("{}", made.body));
    assert_eq!(
        crate::scim::Scim::new(&app, &fresh)
            .get("/Users")
            .await
            .status,
        200
    );
}

/// An organization's token acts only while the member who made it still could: an Admin
/// who is deactivated, demoted or removed must not go on provisioning, deactivating and
/// re-addressing members through the token they made before.
#[actix_web::test]
async fn a_token_stops_acting_once_its_maker_no_longer_holds_it() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let mallory_id = app.add_member(ORG, "mallory@example.com", "Mal", "Lory", "admin", true);
    let mallory = app.member_browser("mallory@example.com").await;
    let token = crate::api_tokens::admin_token(&app, &mallory, &["scim"], "member").await;
    let scim = crate::scim::Scim::new(&app, &token);
    assert_eq!(scim.get("/Users").await.status, 200);
    let users = format!("/orgs/{ORG}/users");

    let gone = admin
        .submit(&users, &format!("{users}/{mallory_id}/deactivate"), &[])
        .await;
    assert_eq!(gone.status, 303, "{}", gone.body);
    assert_eq!(scim.get("/Users").await.status, 401);
    let list = admin.get(&format!("/orgs/{ORG}/api-tokens")).await;
    assert!(
        list.body.contains("data-status=\"suspended\""),
        "{}",
        list.body
    );
    assert!(list.body.contains("mallory@example.com no longer holds it"));
    let made = scim
        .post(
            "/Users",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "friend@example.com",
                "active": true,
            }),
        )
        .await;
    assert_eq!(made.status, 401, "{}", made.body);
    assert_eq!(
        app.count("users WHERE email = 'friend@example.com'"),
        0,
        "nothing provisioned"
    );

    let back = admin
        .submit(&users, &format!("{users}/{mallory_id}/activate"), &[])
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(
        scim.get("/Users").await.status,
        200,
        "active again, it acts again"
    );

    // A Manager holds a Member token's role and scope, but not `org.manage`, which
    // making one takes: a token re-addresses accounts, which no Manager may do.
    app.set_member_role(ORG, &mallory_id, "manager");
    assert_eq!(
        scim.get("/Users").await.status,
        401,
        "a Manager holds no scim token"
    );

    app.set_member_role(ORG, &mallory_id, "member");
    assert_eq!(
        scim.get("/Users").await.status,
        401,
        "a Member holds no scim token"
    );
}

/// The same through a custom role: a member whose own role is the custom "Helper", lent
/// Admin by a group, must not widen Helper to Admin's permissions and keep them.
#[actix_web::test]
async fn a_role_lent_by_a_group_cannot_widen_ones_own_custom_role() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (me, alice) =
        custom_role_holder(&app, &admin, "Helper", &["users.read"], "alice@example.com").await;
    let groups = format!("/orgs/{ORG}/groups");
    let on_call = admin
        .submit(
            &groups,
            &groups,
            &[("name", "On call"), ("role_id", &app.role_id(ORG, "admin"))],
        )
        .await;
    let on_call = location_id(&on_call);
    let joined = admin
        .submit(
            &groups,
            &format!("{groups}/{on_call}/members"),
            &[("user_id", &me)],
        )
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    let helper = app.role_id(ORG, &role_key_of(&app, &me));
    let roles = format!("/orgs/{ORG}/roles");
    let mut fields = vec![("name", "Helper")];
    for p in [
        "users.read",
        "users.invite",
        "users.manage",
        "groups.manage",
        "pools.manage",
        "org.manage",
    ] {
        fields.push(("permissions", p));
    }
    let widened = alice
        .submit(&roles, &format!("{roles}/{helper}"), &fields)
        .await;
    assert_eq!(widened.status, 403, "{}", widened.body);
    assert!(
        widened
            .body
            .contains("You cannot widen the role you hold yourself")
    );
    let org = app.org_id(ORG);
    let role = portcullis::db::roles::find(&mut app.conn(), &org, &helper)
        .unwrap()
        .unwrap();
    assert_eq!(role.permissions, "users.read");
    // Another admin still can.
    let done = admin
        .submit(&roles, &format!("{roles}/{helper}"), &fields)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
}

/// Sends `request` while another change holds the organization's lock, and makes that
/// change (`meanwhile`) once the request waits for the lock: the request read what it
/// acts on before the change, and gets the lock only after the change committed.
async fn while_a_change_holds_the_lock<T, R>(
    app: &TestApp,
    request: impl std::future::Future<Output = T>,
    meanwhile: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<R> + Send + 'static,
) -> T {
    let org = app.org_id(ORG);
    while_a_change_holds(
        app,
        move |conn| portcullis::db::organizations::lock(conn, &org),
        request,
        meanwhile,
    )
    .await
}

/// [`while_a_change_holds_the_lock`] for another lock the change takes first (`hold`).
async fn while_a_change_holds<T, R>(
    app: &TestApp,
    hold: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<()> + Send + 'static,
    request: impl std::future::Future<Output = T>,
    meanwhile: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<R> + Send + 'static,
) -> T {
    let (locked, go) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let pool = app.pool.clone();
    let change = std::thread::spawn(move || {
        let mut conn = pool.get().unwrap();
        portcullis::db::write_tx(&mut conn, |conn| {
            hold(conn)?;
            locked.0.send(()).unwrap();
            go.1.recv().unwrap();
            meanwhile(conn).map(|_| ())
        })
        .unwrap();
    });
    locked.1.recv().unwrap();
    let (answer, ()) = tokio::join!(request, async {
        until_someone_waits_for_a_lock(app).await;
        go.0.send(()).unwrap();
    });
    change.join().unwrap();
    answer
}

/// A platform admin disables an account at the moment another platform admin disables
/// them (two admins disabling each other at once would leave the platform without
/// one). Their request waited for the platform's lock, and must find them disabled.
#[actix_web::test]
async fn a_platform_change_that_waited_out_its_actors_disabling_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let csrf = admin.get("/admin/users").await.csrf();
    let me = app.user_id(ADMIN_EMAIL);
    let disable = format!("/admin/users/{bob}/disable");
    let answer = while_a_change_holds(
        &app,
        portcullis::db::platform_lock,
        admin.post(&disable, &[("csrf_token", csrf)]),
        move |conn| portcullis::db::users::set_status(conn, &me, "disabled"),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("Your own access here changed"));
    assert_eq!(account(&app, &bob).status, "active");
}

/// A platform admin adds Bob's account to an organization while the organization that
/// owns it alone re-addresses it. The invitation the platform mails must go to the
/// address the account has once the change committed, not to the one it gave up.
#[actix_web::test]
async fn a_platform_invitation_waits_for_a_re_address_and_mails_the_new_address() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other-org", "Other Org");
    let bob = app.add_member("other-org", "bob@example.com", "Bob", "B", "member", true);
    let csrf = admin.get("/admin/users").await.csrf();
    let add = format!("/admin/users/{bob}/memberships");
    let fields = [
        ("csrf_token", csrf),
        ("org", "my-org".to_string()),
        ("role_id", "member".to_string()),
    ];
    let (held, re_addressed) = (bob.clone(), bob.clone());
    let added = while_a_change_holds(
        &app,
        move |conn| portcullis::db::users::lock(conn, &held),
        admin.post(&add, &fields),
        move |conn| portcullis::db::scim::set_email(conn, &re_addressed, "bob@new.example.com"),
    )
    .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(
        app.count("invitations WHERE email = 'bob@new.example.com' AND status = 'pending'"),
        1
    );
    assert_eq!(app.count("invitations WHERE email = 'bob@example.com'"), 0);
}

/// Alice's account belongs to Mallory's organization alone, which may therefore
/// re-address it. While Alice accepts our invitation, Mallory's identity provider
/// re-addresses the account to a mailbox Mallory reads: the acceptance must not join it,
/// or a password reset at the new address would let Mallory into our organization as
/// Alice.
#[actix_web::test]
async fn an_account_re_addressed_while_it_accepts_an_invitation_joins_nothing() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other-org", "Other Org");
    let alice = app.add_member(
        "other-org",
        "alice@example.com",
        "Alice",
        "A",
        "member",
        true,
    );
    let sent = admin
        .invite("my-org", "alice@example.com", &app.role_id(ORG, "member"))
        .await;
    let link = admin.follow_results(sent).await.invite_link();
    let alice_browser = app.member_browser("alice@example.com").await;
    let csrf = alice_browser.get(&link).await.csrf();

    let (held, re_addressed) = (alice.clone(), alice.clone());
    let accepted = while_a_change_holds(
        &app,
        move |conn| portcullis::db::users::lock(conn, &held),
        alice_browser.post(&link, &[("csrf_token", csrf)]),
        move |conn| portcullis::db::scim::set_email(conn, &re_addressed, "alice@mallory.test"),
    )
    .await;
    assert_eq!(accepted.status, 403, "{}", accepted.body);
    assert_eq!(app.membership_status(ORG, &alice), None);
    assert_eq!(app.count("invitations WHERE status = 'pending'"), 1);
}

/// Bob, an Admin, promotes an accomplice at the moment another admin demotes him. His
/// request read his standing as it came in, then waited for the organization's lock,
/// which the demotion held: it must act with what he holds once it has the lock.
#[actix_web::test]
async fn a_change_that_waited_out_its_actors_demotion_acts_with_nothing_more() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id(ORG);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "admin", true);
    let mule = app.add_member(ORG, "mule@example.com", "Mule", "M", "member", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let promote = format!("/orgs/my-org/users/{mule}/make-admin");
    let csrf = bob_browser.get(&promote).await.csrf();

    let member_role = app.role_id(ORG, "member");
    let fields = [("csrf_token", csrf)];
    let promoted =
        while_a_change_holds_the_lock(&app, bob_browser.post(&promote, &fields), move |conn| {
            portcullis::db::memberships::set_role(conn, &org, &bob, &member_role)
        })
        .await;
    assert_eq!(promoted.status, 403, "{}", promoted.body);
    assert!(promoted.body.contains("Your own access here changed"));
    assert_eq!(role_key_of(&app, &mule), "member");
    assert_eq!(app.audit_count(ORG, "member.made_admin"), 0);
}

/// Bob, an Admin, sends, resends and cancels Admin invitations while another admin demotes
/// him: each request waited for the organization's lock behind the demotion, and must
/// act with what he holds once it has it. Nobody gets an Admin link from him.
#[actix_web::test]
async fn invitations_that_waited_out_their_inviters_demotion_change_nothing() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let org = app.org_id(ORG);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "admin", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let admin_role = app.role_id(ORG, "admin");
    let member_role = app.role_id(ORG, "member");
    for email in ["resent@example.com", "kept@example.com"] {
        let sent = admin.invite("my-org", email, &admin_role).await;
        assert_eq!(sent.status, 303, "{}", sent.body);
        app.a_minute_passes(email);
    }
    let mails_before = app.count("email_outbox");
    let csrf = bob_browser.get("/orgs/my-org/invitations/new").await.csrf();
    let resend = format!(
        "/orgs/my-org/invitations/{}/resend",
        app.invitation_id("resent@example.com")
    );
    let cancel = format!(
        "/orgs/my-org/invitations/{}/cancel",
        app.invitation_id("kept@example.com")
    );
    let requests: [(&str, Vec<(&str, String)>); 3] = [
        (
            "/orgs/my-org/invitations",
            vec![
                ("csrf_token", csrf.clone()),
                ("emails", "mule@example.com".into()),
                ("role_id", admin_role.clone()),
            ],
        ),
        (&resend, vec![("csrf_token", csrf.clone())]),
        (&cancel, vec![("csrf_token", csrf.clone())]),
    ];
    for (path, fields) in requests {
        let demotion = (org.clone(), bob.clone(), member_role.clone());
        let answer =
            while_a_change_holds_the_lock(&app, bob_browser.post(path, &fields), move |conn| {
                portcullis::db::memberships::set_role(conn, &demotion.0, &demotion.1, &demotion.2)
            })
            .await;
        // Said on a page of its own: the tab the button was on may be closed to them now.
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        assert!(
            answer.body.contains("Your own access here changed"),
            "{path}"
        );
        portcullis::db::memberships::set_role(&mut app.conn(), &org, &bob, &admin_role).unwrap();
    }
    assert_eq!(app.count("invitations WHERE email = 'mule@example.com'"), 0);
    assert_eq!(app.count("email_outbox"), mails_before);
    assert_eq!(
        app.count("invitations WHERE status = 'pending' AND send_count = 1"),
        2
    );
}

/// The same through a SCIM token: its request was authenticated as it came in, then
/// waited for the lock behind its maker's demotion.
#[actix_web::test]
async fn a_token_whose_maker_was_demoted_while_it_waited_changes_nothing() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id(ORG);
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "admin", true);
    let carol_browser = app.member_browser("carol@example.com").await;
    let token = crate::api_tokens::admin_token(&app, &carol_browser, &["scim"], "member").await;
    let scim = crate::scim::Scim::new(&app, &token);

    let member_role = app.role_id(ORG, "member");
    let body = serde_json::json!({"userName": "mule@example.com", "active": true});
    let created = while_a_change_holds_the_lock(&app, scim.post("/Users", &body), move |conn| {
        portcullis::db::memberships::set_role(conn, &org, &carol, &member_role)
    })
    .await;
    assert_eq!(created.status, 403, "{}", created.body);
    assert_eq!(app.count("users WHERE email = 'mule@example.com'"), 0);
}

/// A token's custom role narrowed while its request waited for the lock: the request acts
/// with what the role holds now.
#[actix_web::test]
async fn a_token_whose_role_was_narrowed_while_it_waited_changes_nothing() {
    use portcullis::domain::roles::{Permission, PermissionSet};
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let org = app.org_id(ORG);
    let roles = format!("/orgs/{ORG}/roles");
    let made = admin
        .submit(
            &roles,
            &roles,
            &[
                ("name", "Ops"),
                ("permissions", "users.read"),
                ("permissions", "pools.manage"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let ops = portcullis::db::roles::list(&mut app.conn(), &org)
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Ops")
        .unwrap();
    let token = crate::api_tokens::admin_token(&app, &admin, &["scim"], &ops.key).await;
    let scim = crate::scim::Scim::new(&app, &token);
    let member_rank = portcullis::db::roles::find_by_key(&mut app.conn(), &org, "member")
        .unwrap()
        .unwrap()
        .rank;

    let body = serde_json::json!({"userName": "mule@example.com", "active": true});
    let created = while_a_change_holds_the_lock(&app, scim.post("/Users", &body), move |conn| {
        let read_only = PermissionSet::of(&[Permission::UsersRead]).to_string();
        portcullis::db::roles::update_custom(conn, &org, &ops.id, "Ops", &read_only, member_rank)
    })
    .await;
    assert_eq!(created.status, 403, "{}", created.body);
    assert_eq!(app.count("users WHERE email = 'mule@example.com'"), 0);
}

/// An acceptance that waited out its inviter's demotion grants nothing: it reads what
/// the inviter may still grant only once it holds the organization's lock, after the
/// demotion committed (before, it read the inviter as Manager and made a Manager).
#[actix_web::test]
async fn an_acceptance_that_waited_out_its_inviters_demotion_grants_nothing() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id(ORG);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "manager", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let (manager_role, member_role) = (app.role_id(ORG, "manager"), app.role_id(ORG, "member"));
    let sent = bob_browser
        .invite(ORG, "junior@example.com", &manager_role)
        .await;
    assert_eq!(bob_browser.follow_results(sent).await.status, 200);
    let link = mailed_invite_link(&app, "junior@example.com").await;
    let invitee = app.client();
    let page = invitee.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = account_form(page.csrf(), "Jun", "Ior", "junior pass phrase 1");
    let answer = while_a_change_holds_the_lock(&app, invitee.post(&link, &form), move |conn| {
        portcullis::db::memberships::set_role(conn, &org, &bob, &member_role)
    })
    .await;
    assert!(answer.status < 500, "{}", answer.body);
    assert_eq!(
        app.count("memberships WHERE email = 'junior@example.com'"),
        0,
        "no Manager made by a Member"
    );
}

/// Bea, a "Bystander" (a role with no permissions) who manages `pool`, invites `emails`
/// into it as a Bystander (a pool Manager invites at most at their own rank). Answers her
/// browser and the form's answer.
async fn bystander_invites(
    app: &TestApp,
    admin: &Browser,
    pool: &str,
    emails: &str,
) -> (Browser, Page) {
    let (bea, bea_browser) =
        custom_role_holder(app, admin, "Bystander", &[], "bea@example.com").await;
    add_to_pool(app, admin, pool, &bea, "manager").await;
    let bystander = app.role_id(ORG, &role_key_of(app, &bea));
    let fields = [
        ("emails", emails),
        ("role_id", &bystander),
        ("pool_ids", pool),
    ];
    let sent = send_invite(&bea_browser, &fields).await;
    (bea_browser, sent)
}

/// A pool Manager whose own role reads no members (a "Bystander") invites into their
/// pool: the results page must not answer, for any address they type, whether it is a
/// member, nor, for one invited beyond them, that it is.
#[actix_web::test]
async fn a_pool_managers_invite_results_tell_nothing_the_users_tab_would_hide() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let prod = pool(&admin, "Prod").await;
    let admin_role = app.role_id(ORG, "admin");
    let sent = send_invite(
        &admin,
        &[("emails", "boss@example.com"), ("role_id", &admin_role)],
    )
    .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    app.add_member(ORG, "quiet@example.com", "Quiet", "Q", "member", true);
    let (bea_browser, again) =
        bystander_invites(&app, &admin, &prod, "quiet@example.com boss@example.com").await;
    let page = bea_browser.follow_results(again).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body.matches("data-result=\"withheld\"").count(),
        2,
        "{}",
        page.body
    );
    for told in ["Already a member", "Already invited", "already a member"] {
        assert!(!page.body.contains(told), "{told}: {}", page.body);
    }
    assert!(page.body.contains("2 not invited"), "{}", page.body);
    assert_eq!(app.count("invitations WHERE status = 'pending'"), 1);
}

/// The hourly limit must not tell a pool Manager who reads no members which addresses are
/// members: their addresses count against it as any other's (for a reader of members,
/// who is mailed nothing about them, they do not).
#[actix_web::test]
async fn the_hourly_limit_tells_a_pool_manager_nothing_of_who_is_a_member() {
    let app = spawn_app_with(|s| s.invitations_per_hour = 1).await;
    let admin = app.setup_admin().await;
    let prod = pool(&admin, "Prod").await;
    app.add_member(ORG, "quiet@example.com", "Quiet", "Q", "member", true);
    let (_, sent) =
        bystander_invites(&app, &admin, &prod, "quiet@example.com new@example.com").await;
    assert_eq!(sent.status, 422, "{}", sent.body);
    assert!(sent.body.contains("and this asks for 2"), "{}", sent.body);
    assert_eq!(app.count("invitations"), 0);
}
