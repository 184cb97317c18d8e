//! Who may read an organization's audit trail: its own members with `audit.read`,
//! never another organization's, and every refusal is itself recorded.

use portcullis::db;
use portcullis::db::audit_events::{AuditRow, Filter, Scope};

use super::{Ev, all_events, insert_events, row_ids, scope_events};
use crate::helpers::*;

#[actix_web::test]
async fn a_member_of_one_org_never_sees_another_orgs_events() {
    let app = spawn_app().await;
    let admin_a = app.setup_admin().await;
    let org_a = app.org_id("my-org");
    let org_b = app.create_org("other", "Other Org");
    app.add_member(
        "other",
        "admin.b@example.com",
        "Test",
        "Person",
        "admin",
        true,
    );
    let secret_target = db::new_id();
    let b_ids = insert_events(
        &app,
        &[Ev::new(&org_b, "member.deactivated", db::now())
            .actor("admin.b@example.com")
            .target(&secret_target, "secret@other.example")],
    );
    let a_ids = insert_events(
        &app,
        &[Ev::new(&org_a, "member.deactivated", db::now()).actor(ADMIN_EMAIL)],
    );

    for query in [
        "",
        "?actor=admin.b%40example.com",
        "?target=secret%40other.example",
        "?action=member.deactivated",
    ] {
        let page = admin_a.get(&format!("/orgs/my-org/audit{query}")).await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains(&b_ids[0]), "{query}");
        assert!(!page.body.contains("Other Org"), "{query}");
        let rows = row_ids(&page.body);
        let own = scope_events(&app, Scope::Org(org_a.clone()), Filter::default());
        assert!(
            rows.iter().all(|id| own.iter().any(|e| &e.id == id)),
            "{query}: only my-org's events"
        );
        if !query.contains("secret") {
            assert!(!page.body.contains("secret@other.example"), "{query}");
        }
    }
    let by_id = admin_a
        .get(&format!("/orgs/my-org/audit?target={secret_target}"))
        .await;
    assert!(row_ids(&by_id.body).is_empty());
    let csv = admin_a.get("/orgs/my-org/audit.csv").await;
    assert!(!csv.body.contains(&b_ids[0]));
    assert!(!csv.body.contains("secret@other.example"));
    assert!(csv.body.contains(&a_ids[0]));
    // The other organization's page is not there at all for them.
    assert_eq!(admin_a.get("/orgs/other/audit").await.status, 404);
    assert_eq!(admin_a.get("/orgs/other/audit.csv").await.status, 404);

    // And the other way round.
    let admin_b = app.member_browser("admin.b@example.com").await;
    let page = admin_b.get("/orgs/other/audit").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&b_ids[0]));
    assert!(!page.body.contains(&a_ids[0]));
    assert!(!page.body.contains("data-action=\"setup.completed\""));
    assert_eq!(admin_b.get("/orgs/my-org/audit").await.status, 404);
}

#[actix_web::test]
async fn members_without_audit_read_are_refused_and_the_refusal_is_recorded() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    let (member, browser) = signed_in_member(&app).await;
    let users_page = browser.get("/orgs/my-org/users").await;
    assert_eq!(users_page.status, 200);
    assert!(
        !users_page.body.contains("href=\"/orgs/my-org/audit\""),
        "no Audit tab without audit.read"
    );

    let before = all_events(&app).len();
    let page = browser
        .get("/orgs/my-org/audit?actor=x%40example.com")
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(browser.get("/orgs/my-org/audit.csv").await.status, 403);
    let events = all_events(&app);
    let denied: Vec<&AuditRow> = events[before..].iter().collect();
    assert_eq!(denied.len(), 2, "one event per refusal");
    for (event, route) in denied
        .iter()
        .zip(["/orgs/{org}/audit", "/orgs/{org}/audit.csv"])
    {
        assert_eq!(event.action, "access.denied");
        assert_eq!(event.actor_email.as_deref(), Some("member@example.com"));
        assert_eq!(event.actor_id.as_deref(), Some(member.as_str()));
        assert_eq!(event.org_id.as_deref(), Some(org.as_str()));
        let details: serde_json::Value = serde_json::from_str(&event.details).unwrap();
        assert_eq!(details["method"], "GET");
        assert_eq!(details["route"], route);
        assert!(!event.details.contains("x@example.com"), "no raw query");
        assert!(event.request_id.is_some());
    }
    // Sent there by another site, the refusal may be the site's doing: it says so, and
    // any number of such visits write one event an hour per route in the member's name.
    for _ in 0..5 {
        let sent = browser.get_from_another_site("/orgs/my-org/audit").await;
        assert_eq!(sent.status, 403);
    }
    let events = all_events(&app);
    assert_eq!(events.len(), before + 3);
    let marked = &events[before + 2];
    assert_eq!(marked.action, "access.denied");
    let details: serde_json::Value = serde_json::from_str(&marked.details).unwrap();
    assert_eq!(details["sent_by_another_site"], true);
    // The same page asked for with an encoded letter (routes match the decoded path)
    // leaves its trace too.
    assert_eq!(browser.get("/%6Frgs/my-org/audit").await.status, 403);
    let events = all_events(&app);
    assert_eq!(events.len(), before + 4);
    assert_eq!(events[before + 3].org_id.as_deref(), Some(org.as_str()));
    // A Manager holds audit.read.
    app.add_member(
        "my-org",
        "manager@example.com",
        "Test",
        "Person",
        "manager",
        true,
    );
    let browser = app.client();
    browser.login("manager@example.com", MEMBER_PASSWORD).await;
    let page = browser.get("/orgs/my-org/audit").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("member@example.com was refused GET /orgs/{org}/audit")
    );
}

/// A signed-in member asking for a page they may not see, over and over, leaves a trace
/// of it, not a row per request: the insert-only trail grew at their request rate. The
/// last refusal recorded in the hour says later ones are not; another page's refusal is
/// still recorded.
#[actix_web::test]
async fn repeated_refusals_of_one_page_are_recorded_up_to_a_limit_an_hour() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let (_, browser) = signed_in_member(&app).await;
    let limit = portcullis::web::audit_denials::PER_ROUTE_AN_HOUR as usize;
    for _ in 0..limit + 5 {
        assert_eq!(browser.get("/orgs/my-org/audit").await.status, 403);
    }
    assert_eq!(browser.get("/orgs/my-org/audit.csv").await.status, 403);
    let denied: Vec<AuditRow> = all_events(&app)
        .into_iter()
        .filter(|e| e.action == "access.denied")
        .collect();
    let of_audit: Vec<&AuditRow> = denied
        .iter()
        .filter(|e| e.details.contains("\"/orgs/{org}/audit\""))
        .collect();
    assert_eq!(of_audit.len(), limit);
    assert!(
        of_audit[..limit - 1]
            .iter()
            .all(|e| !e.details.contains("later_refusals_this_hour"))
    );
    assert!(
        of_audit[limit - 1]
            .details
            .contains("\"later_refusals_this_hour\":\"not recorded\"")
    );
    assert_eq!(denied.len(), limit + 1, "the CSV's refusal is its own");

    // A page on a sibling subdomain sending the browser here is another site's doing
    // too: recorded once an hour, marked so, not spent from the member's own count.
    for _ in 0..3 {
        let sent = browser
            .get_sent_by("/orgs/my-org/settings", "same-site")
            .await;
        assert_eq!(sent.status, 403);
    }
    let marked: Vec<AuditRow> = all_events(&app)
        .into_iter()
        .filter(|e| e.details.contains("sent_by_another_site"))
        .collect();
    assert_eq!(marked.len(), 1);
}

/// member@example.com, a plain Member of my-org, signed in: its id and browser.
async fn signed_in_member(app: &TestApp) -> (String, Browser) {
    let id = app.add_member(
        "my-org",
        "member@example.com",
        "Test",
        "Person",
        "member",
        true,
    );
    (id, app.member_browser("member@example.com").await)
}
