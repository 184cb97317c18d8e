//! An admin cannot lock themselves out, and a platform admin can undo a lockout.

use crate::helpers::*;

const ORG: &str = "my-org";

#[actix_web::test]
async fn ones_own_row_and_profile_offer_no_deactivate_and_the_server_refuses_it() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(ORG, "second@example.com", "Sam", "Second", "admin", false);
    let me = app.user_id(ADMIN_EMAIL);

    let list = admin.get("/orgs/my-org/users").await;
    assert!(
        !list.body.contains(&format!("/users/{me}/deactivate")),
        "{}",
        list.body
    );
    let profile = admin.get(&format!("/orgs/my-org/users/{me}")).await;
    assert!(!profile.body.contains(&format!("/users/{me}/deactivate")));
    assert!(profile.body.contains("Leave organization…"));

    // Even with another admin present, which the last-admin rule would allow.
    let page = admin
        .get(&format!("/orgs/my-org/users/{me}/deactivate"))
        .await;
    assert_eq!(page.status, 409);
    let posted = admin
        .submit(
            "/orgs/my-org/users",
            &format!("/orgs/my-org/users/{me}/deactivate"),
            &[],
        )
        .await;
    assert_eq!(posted.status, 409);
    assert!(posted.body.contains("You cannot deactivate yourself"));
    assert_eq!(app.membership_status(ORG, &me).as_deref(), Some("active"));
}

#[actix_web::test]
async fn bulk_actions_skip_the_actor_and_say_why() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(ORG, "second@example.com", "Sam", "Second", "admin", false);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let me = app.user_id(ADMIN_EMAIL);

    let confirm = admin
        .get(&format!(
            "/orgs/my-org/users/bulk?action=deactivate&user_ids={me}&user_ids={bob}"
        ))
        .await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("Deactivate 1 member?"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("(you: skipped"));

    let done = admin
        .submit(
            "/orgs/my-org/users",
            "/orgs/my-org/users/bulk",
            &[
                ("action", "deactivate"),
                ("user_ids", &me),
                ("user_ids", &bob),
            ],
        )
        .await;
    assert_eq!(done.status, 200);
    assert!(
        done.body
            .contains("bulk actions never change your own membership")
    );
    assert_eq!(app.membership_status(ORG, &me).as_deref(), Some("active"));
    assert_eq!(
        app.membership_status(ORG, &bob).as_deref(),
        Some("inactive")
    );
}

#[actix_web::test]
async fn leaving_the_organization_is_its_own_explicit_page() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let me = app.user_id(ADMIN_EMAIL);
    let page = admin.get(&format!("/orgs/my-org/users/{me}/delete")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("You are removing yourself"));
    assert!(page.body.contains("Leave My organization"));
}

#[actix_web::test]
async fn a_bulk_confirmation_names_no_outsider() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other", "Other");
    let stranger = app.add_member("other", "stranger@example.com", "S", "S", "member", false);
    let page = admin
        .get(&format!(
            "/orgs/my-org/users/bulk?action=deactivate&user_ids={stranger}"
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("stranger@example.com"));
    assert!(page.body.contains("not members of this organization"));
}

#[actix_web::test]
async fn a_platform_admin_restores_a_membership_changes_its_role_and_ends_sessions() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let deactivated = admin
        .submit(
            "/orgs/my-org/users",
            &format!("/orgs/my-org/users/{bob}/deactivate"),
            &[],
        )
        .await;
    assert_eq!(deactivated.status, 303);
    let bob_browser = {
        // Deactivation ended Bob's session; he signs in again to have one to end later.
        let _ = bob_browser;
        app.member_browser("bob@example.com").await
    };

    let page = admin.get(&format!("/admin/users/{bob}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("data-org=\"my-org\" data-status=\"inactive\"")
    );

    let activate = format!("/admin/users/{bob}/memberships/my-org/activate");
    let done = admin
        .submit(&format!("/admin/users/{bob}"), &activate, &[])
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(app.membership_status(ORG, &bob).as_deref(), Some("active"));

    let manager = app.role_id(ORG, "manager");
    let role = format!("/admin/users/{bob}/memberships/my-org/role");
    let done = admin
        .submit(
            &format!("/admin/users/{bob}"),
            &role,
            &[("role_id", &manager)],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(app.member_role(ORG, &bob).as_deref(), Some("manager"));

    assert_eq!(bob_browser.get("/orgs/my-org/users").await.status, 200);
    let end = format!("/admin/users/{bob}/sessions/end");
    let done = admin
        .submit(&format!("/admin/users/{bob}"), &end, &[])
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(bob_browser.get("/orgs/my-org/users").await.status, 303);

    for action in [
        "admin.membership_activated",
        "admin.membership_role_changed",
    ] {
        assert_eq!(app.audit_count(ORG, action), 1, "{action}");
    }
}

#[actix_web::test]
async fn only_platform_admins_change_memberships_from_the_platform_page() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "admin", true);
    let eve = app.add_member(ORG, "eve@example.com", "Eve", "E", "member", true);
    app.set_platform_role("bob@example.com", "operator");
    let operator = app.member_browser("bob@example.com").await;
    assert_eq!(
        operator.get(&format!("/admin/users/{eve}")).await.status,
        200
    );
    let manager = app.role_id(ORG, "manager");
    let refused = operator
        .submit(
            &format!("/admin/users/{eve}"),
            &format!("/admin/users/{eve}/memberships/my-org/role"),
            &[("role_id", &manager)],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.member_role(ORG, &eve).as_deref(), Some("member"));
    let member = app.member_browser("eve@example.com").await;
    assert_eq!(member.get(&format!("/admin/users/{bob}")).await.status, 403);
    let _ = admin;
}

#[actix_web::test]
async fn a_platform_admin_cannot_disable_an_organizations_last_active_admin() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other", "Other");
    let boss = app.add_member("other", "boss@other.test", "Bo", "Ss", "admin", false);
    let refused = admin
        .submit("/admin/users", &format!("/admin/users/{boss}/disable"), &[])
        .await;
    // Said back on the account list, with the reason.
    assert_eq!(refused.status, 303, "{}", refused.body);
    let list = admin.get("/admin/users").await;
    assert!(
        list.body.contains("last active admin of Other"),
        "{}",
        list.body
    );
    let user = portcullis::db::users::find(&mut app.conn(), &boss)
        .unwrap()
        .unwrap();
    assert_eq!(user.status, "active");

    // With a second admin there, the same disable goes through.
    app.add_member("other", "deputy@other.test", "De", "Puty", "admin", false);
    let done = admin
        .submit("/admin/users", &format!("/admin/users/{boss}/disable"), &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
}
