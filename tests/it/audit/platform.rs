//! The platform audit page across organizations, for platform operators and admins.

use portcullis::db;

use super::{Ev, all_events, csv_rows, insert_events, row_ids};
use crate::helpers::*;

#[actix_web::test]
async fn the_platform_audit_page_is_for_operators_and_admins_only() {
    let app = spawn_app().await;
    let admin_browser = app.setup_admin().await;
    let other = app.create_org("other", "Other Org");
    let b_ids = insert_events(
        &app,
        &[Ev::new(&other, "member.removed", db::now()).actor("x@other.example")],
    );

    // Anonymous: sent to sign in, like every other page.
    let anonymous = app.client().get("/admin/audit").await;
    assert_eq!(anonymous.status, 303);
    assert!(anonymous.location.unwrap().starts_with("/login?next="));

    // The platform admin sees every organization and the platform's own events.
    let menu = admin_browser.get("/orgs/my-org/users").await;
    assert!(menu.body.contains("href=\"/admin/audit\""));
    let page = admin_browser.get("/admin/audit").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&b_ids[0]));
    assert!(page.body.contains("data-action=\"setup.completed\""));
    assert!(page.body.contains("data-action=\"org.created\""));
    assert!(page.body.contains("<label for=\"org\""));
    let only_other = admin_browser.get("/admin/audit?org=other").await;
    assert_eq!(row_ids(&only_other.body)[0], b_ids[0]);
    assert!(!only_other.body.contains("data-action=\"setup.completed\""));
    let platform_only = admin_browser.get("/admin/audit?org=-").await;
    assert!(!platform_only.body.contains(&b_ids[0]));
    assert!(!platform_only.body.contains("data-action=\"org.created\""));
    let unknown = admin_browser.get("/admin/audit?org=no-such-org").await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("No organization has this slug."));
    let bad = admin_browser.get("/admin/audit.csv?from=last-week").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Enter a date as YYYY-MM-DD"));
    let csv = admin_browser.get("/admin/audit.csv?org=other").await;
    assert_eq!(csv.status, 200);
    let rows = csv_rows(&csv.body);
    assert!(rows[1..].iter().all(|r| r[1] == "other"));
    assert!(rows.iter().any(|r| r[12] == b_ids[0]));

    // An operator who belongs to no organization.
    app.add_account("ops@example.com", "operator");
    let ops = app.member_browser("ops@example.com").await;
    let page = ops.get("/admin/audit?action=member.removed").await;
    assert_eq!(page.status, 200);
    assert_eq!(row_ids(&page.body), b_ids);

    // Everyone else: 403, recorded.
    app.add_member(
        "my-org",
        "plain@example.com",
        "Test",
        "Person",
        "admin",
        true,
    );
    let browser = app.client();
    browser.login("plain@example.com", MEMBER_PASSWORD).await;
    let menu = browser.get("/orgs/my-org/users").await;
    assert!(!menu.body.contains("href=\"/admin/audit\""));
    let before = all_events(&app).len();
    assert_eq!(browser.get("/admin/audit").await.status, 403);
    assert_eq!(browser.get("/admin/audit.csv").await.status, 403);
    let events = all_events(&app);
    assert_eq!(events.len(), before + 2);
    assert!(events[before..].iter().all(|e| e.action == "access.denied"
        && e.actor_email.as_deref() == Some("plain@example.com")
        && e.org_id.is_none()));
}

/// A platform route names an organization too. Someone signed in, refused there, leaves
/// an event on the platform's trail, never in that organization's, which they could
/// otherwise fill with events at will.
#[actix_web::test]
async fn a_refused_platform_action_writes_nothing_into_the_organizations_trail() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let mallory = admin_of_another_org(&app).await;
    let target = app.user_id(ADMIN_EMAIL);
    let refused = mallory
        .submit(
            "/orgs/other-org/users",
            &format!("/admin/users/{target}/memberships/my-org/activate"),
            &[],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(app.audit_count("my-org", "access.denied"), 0);
    let events = all_events(&app);
    assert!(
        events.iter().any(|e| e.action == "access.denied"
            && e.actor_email.as_deref() == Some("mallory@example.com")
            && e.org_id.is_none()),
        "recorded on the platform's trail"
    );
}
