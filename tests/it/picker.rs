//! The member picker's search and the Users tab's inline role change, as an attacker
//! would try them: another organization's members, more than 20 matches, roles above
//! one's own, a `next` that leads off the site.

use serde_json::Value;

use crate::helpers::*;

const ORG: &str = "my-org";

fn add_many(app: &TestApp, org: &str, prefix: &str, n: usize) {
    for i in 0..n {
        app.add_member(
            org,
            &format!("{prefix}-{i:02}@example.com"),
            "Pick",
            &format!("{i:02}"),
            "member",
            false,
        );
    }
}

#[actix_web::test]
async fn the_member_search_answers_at_most_twenty_matches_as_html_or_json() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    add_many(&app, ORG, "pick", 25);
    let page = admin
        .get("/orgs/my-org/members/search?q=pick&field=owner_id")
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        page.body
            .matches("type=\"radio\" name=\"owner_id\"")
            .count(),
        20
    );
    assert!(!page.body.contains("<html"), "a fragment, not a page");

    let json = admin.get_json("/orgs/my-org/members/search?q=pick-2").await;
    assert_eq!(json.status, 200);
    let found: Vec<Value> = serde_json::from_str(&json.body).unwrap();
    let emails: Vec<&str> = found.iter().map(|m| m["email"].as_str().unwrap()).collect();
    assert_eq!(
        emails,
        [
            "pick-20@example.com",
            "pick-21@example.com",
            "pick-22@example.com",
            "pick-23@example.com",
            "pick-24@example.com"
        ]
    );
    assert!(found[0]["id"].is_string() && found[0]["name"] == "Pick 20");

    // A field name that is not one of the picker's cannot reach the page.
    let odd = admin
        .get("/orgs/my-org/members/search?q=pick-00&field=%22%3E%3Cscript%3E")
        .await;
    assert!(odd.body.contains("name=\"user_id\""));
    assert!(!odd.body.contains("<script>"));
}

#[actix_web::test]
async fn the_member_search_never_returns_another_organizations_members() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(ORG, "ours@example.com", "Our", "Member", "member", false);
    app.create_org("rival", "Rival");
    app.add_member(
        "rival",
        "theirs@rival.example",
        "Their",
        "Member",
        "member",
        false,
    );
    app.add_member("rival", "spy@rival.example", "Spy", "Admin", "admin", true);

    // Our admin searches for the rival's member in our organization: nothing.
    for q in ["theirs", "rival", "th"] {
        let page = admin
            .get_json(&format!("/orgs/my-org/members/search?q={q}"))
            .await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("rival.example"), "{q}: {}", page.body);
    }
    // The rival's admin asks about our organization: not found, as for any outsider.
    let spy = app.member_browser("spy@rival.example").await;
    let page = spy.get_json("/orgs/my-org/members/search?q=ours").await;
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("ours@example.com"));
    // In their own organization, our member does not exist.
    let page = spy.get_json("/orgs/rival/members/search?q=ours").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body, "[]");
    // Signed out: to the sign-in page.
    let anonymous = app.client().get("/orgs/my-org/members/search?q=ours").await;
    assert_eq!(anonymous.status, 303);
}

#[actix_web::test]
async fn the_inline_role_change_keeps_the_rank_rules_and_the_page() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
    let mia = app.add_member(ORG, "mia@example.com", "Mia", "Manager", "manager", true);
    let boss = app.user_id(ADMIN_EMAIL);
    let engineer = app.role_id(ORG, "engineer");
    let admin_role = app.role_id(ORG, "admin");

    // Back to the filtered page it came from, audited as a role change.
    let back = "/orgs/my-org/users?q=bob&status=active";
    let done = admin
        .submit(
            "/orgs/my-org/users",
            &format!("/orgs/my-org/users/{bob}/role"),
            &[("role_id", &engineer), ("next", back)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(back));
    assert_eq!(app.member_role(ORG, &bob).as_deref(), Some("engineer"));
    assert_eq!(app.audit_count(ORG, "member.role_changed"), 1);

    // A `next` off the site falls back to the Users tab.
    let offsite = admin
        .submit(
            "/orgs/my-org/users",
            &format!("/orgs/my-org/users/{bob}/role"),
            &[
                ("role_id", &app.role_id(ORG, "member")),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(offsite.location.as_deref(), Some("/orgs/my-org/users"));

    // A Manager cannot hand out Admin, nor change the Admin's role.
    let manager = app.member_browser("mia@example.com").await;
    let above = manager
        .submit(
            "/orgs/my-org/users",
            &format!("/orgs/my-org/users/{bob}/role"),
            &[("role_id", &admin_role)],
        )
        .await;
    assert_eq!(above.status, 403);
    let on_admin = manager
        .submit(
            "/orgs/my-org/users",
            &format!("/orgs/my-org/users/{boss}/role"),
            &[("role_id", &engineer)],
        )
        .await;
    assert_eq!(on_admin.status, 403);
    assert_eq!(app.member_role(ORG, &boss).as_deref(), Some("admin"));
    // Nobody changes their own role from the list: that asks first, on the profile, and
    // the list says so instead of leaving for an error page.
    let own = manager
        .submit(
            "/orgs/my-org/users",
            &format!("/orgs/my-org/users/{mia}/role"),
            &[("role_id", &engineer)],
        )
        .await;
    assert_eq!(own.status, 303);
    assert_eq!(own.location.as_deref(), Some("/orgs/my-org/users"));
    assert_eq!(app.member_role(ORG, &mia).as_deref(), Some("manager"));
    let told = manager.get("/orgs/my-org/users").await;
    assert!(
        told.body
            .contains("Change your own role from your profile, where you confirm it.")
    );
    // The Manager's list offers no select on the Admin's row, one on Bob's.
    let list = manager.get("/orgs/my-org/users").await;
    assert!(!list.body.contains(&format!("id=\"role-{boss}\"")));
    assert!(list.body.contains(&format!("id=\"role-{bob}\"")));
    assert_eq!(app.audit_count(ORG, "member.role_changed"), 2);
}

#[actix_web::test]
async fn the_effective_role_is_the_strongest_of_direct_group_and_pool_roles() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
    let manager = app.role_id(ORG, "manager");
    let made = admin
        .submit(
            "/orgs/my-org/groups",
            "/orgs/my-org/groups",
            &[("name", "Ops"), ("role_id", &manager)],
        )
        .await;
    let group = location_id(&made);
    admin
        .submit(
            "/orgs/my-org/groups",
            &format!("/orgs/my-org/groups/{group}/members"),
            &[("user_id", &bob)],
        )
        .await;
    let list = admin.get("/orgs/my-org/users?q=bob").await;
    assert!(
        list.body.contains("data-effective-role=\"Manager\""),
        "{}",
        list.body
    );
    assert!(list.body.contains("Group Ops: Manager"));
    assert!(list.body.contains("Direct: Member"));
    assert!(list.body.contains("1–1 of 1"));
}

/// The Groups column lists every group of the member here, by name, including a group that
/// grants no role (it comes from the same query as the roles groups grant), and none of
/// another organization's, though that one grants the stronger role.
#[actix_web::test]
async fn the_groups_column_names_every_group_here_and_none_elsewhere() {
    use portcullis::db::groups;
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
    let here = app.org_id(ORG);
    app.create_org("other-org", "Other");
    app.add_member(
        "other-org",
        "bob@example.com",
        "Bob",
        "Builder",
        "member",
        false,
    );
    let elsewhere = app.org_id("other-org");
    let other_admin = app.role_id("other-org", "admin");
    let manager = app.role_id(ORG, "manager");
    {
        let mut conn = app.conn();
        // Made in reverse order of their names, so the column's order is the sort's.
        let support = groups::insert(&mut conn, &here, "Support", "", None, None).unwrap();
        let ops = groups::insert(&mut conn, &here, "Ops", "", Some(&manager), None).unwrap();
        let theirs = groups::insert(
            &mut conn,
            &elsewhere,
            "Admins",
            "",
            Some(&other_admin),
            None,
        )
        .unwrap();
        groups::add_member(&mut conn, &here, &support, &bob).unwrap();
        groups::add_member(&mut conn, &here, &ops, &bob).unwrap();
        groups::add_member(&mut conn, &elsewhere, &theirs, &bob).unwrap();
    }

    let list = admin.get("/orgs/my-org/users?q=bob").await;
    assert_eq!(list.status, 200);
    assert!(
        list.body
            .contains("<td class=\"groups col-p3\" data-label=\"Groups\">Ops, Support</td>"),
        "{}",
        list.body
    );
    assert!(list.body.contains("data-effective-role=\"Manager\""));
    assert!(!list.body.contains("Admins"), "{}", list.body);
}
