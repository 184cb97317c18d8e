//! Destructive actions ask on a page of their own, so they ask without JavaScript too.
//! Opening such a page changes nothing; its button posts the action.

use crate::helpers::*;

/// The `action` of the form on a confirmation page.
fn form_action(html: &str) -> String {
    let start = html.find("data-confirm-page").expect("a confirmation page");
    let rest = &html[start..];
    let at = rest
        .find("<form method=\"post\" action=\"")
        .expect("a POST form")
        + 28;
    unescape(&rest[at..at + rest[at..].find('"').unwrap()])
}

#[actix_web::test]
async fn every_destructive_button_leads_to_a_page_that_asks_first() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", false);
    let created = admin
        .submit(
            "/orgs/my-org/roles",
            "/orgs/my-org/roles",
            &[("name", "Auditor"), ("permissions", "audit.read")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let auditor = portcullis::db::roles::list(&mut app.conn(), &app.org_id("my-org"))
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Auditor")
        .unwrap()
        .id;
    let invited = admin
        .submit(
            "/orgs/my-org/invitations/new",
            "/orgs/my-org/invitations",
            &[
                ("emails", "new@example.com"),
                ("role_id", &app.role_id("my-org", "member")),
            ],
        )
        .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    let invitation = {
        let list = admin.get("/orgs/my-org/invitations").await;
        let at = list.body.find("data-id=\"").unwrap() + 9;
        list.body[at..at + list.body[at..].find('"').unwrap()].to_string()
    };

    let cases = [
        (
            format!(
                "/orgs/my-org/users/{bob}/deactivate?next=/orgs/my-org/users%3Fstatus%3Dactive"
            ),
            format!("/orgs/my-org/users/{bob}/deactivate"),
            "Deactivate bob@example.com?",
        ),
        (
            format!("/orgs/my-org/users/{bob}/make-admin"),
            format!("/orgs/my-org/users/{bob}/make-admin"),
            "Make bob@example.com an admin of My organization?",
        ),
        (
            format!("/orgs/my-org/users/bulk?action=remove&user_ids={bob}"),
            "/orgs/my-org/users/bulk".to_string(),
            "Remove 1 member from the organization?",
        ),
        (
            format!("/orgs/my-org/invitations/{invitation}/cancel"),
            format!("/orgs/my-org/invitations/{invitation}/cancel"),
            "Cancel the invitation to new@example.com?",
        ),
        (
            format!("/orgs/my-org/roles/{auditor}/delete"),
            format!("/orgs/my-org/roles/{auditor}/delete"),
            "Delete the role Auditor?",
        ),
        (
            format!("/admin/users/{bob}/disable"),
            format!("/admin/users/{bob}/disable"),
            "Disable bob@example.com everywhere?",
        ),
    ];
    let events = app.count("audit_events");
    for (page, action, question) in cases {
        let asked = admin.get(&page).await;
        assert_eq!(asked.status, 200, "{page}: {}", asked.body);
        assert!(asked.body.contains(question), "{page}: {}", asked.body);
        assert_eq!(form_action(&asked.body), action, "{page}");
        // The page itself offers the way back, and the list does not post directly.
        assert!(asked.body.contains(">Cancel</a>"), "{page}");
    }
    assert_eq!(app.count("audit_events"), events, "asking changed nothing");
    assert_eq!(
        app.membership_status("my-org", &bob).as_deref(),
        Some("active")
    );

    let list = admin.get("/orgs/my-org/users").await;
    assert!(
        !list.body.contains("data-confirm="),
        "no JavaScript-only confirmation"
    );
    assert!(
        list.body
            .contains("form method=\"get\" action=\"/orgs/my-org/users/bulk\"")
    );
}

#[actix_web::test]
async fn a_confirmation_page_keeps_only_local_return_paths() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", false);
    let page = admin
        .get(&format!(
            "/orgs/my-org/users/{bob}/deactivate?next=https://evil.example/phish"
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("evil.example"), "{}", page.body);
}

#[actix_web::test]
async fn a_member_without_the_permission_gets_no_confirmation_page() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);
    let admin_id = app.user_id(ADMIN_EMAIL);
    let member = app.member_browser("bob@example.com").await;
    for page in [
        format!("/orgs/my-org/users/{admin_id}/deactivate"),
        format!("/orgs/my-org/users/{admin_id}/make-admin"),
        format!("/orgs/my-org/users/bulk?action=deactivate&user_ids={admin_id}"),
        format!("/admin/users/{admin_id}/disable"),
    ] {
        assert_eq!(member.get(&page).await.status, 403, "{page}");
    }
    let _ = bob;
}

#[actix_web::test]
async fn deleting_a_group_asks_first() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let created = admin
        .submit(
            "/orgs/my-org/groups",
            "/orgs/my-org/groups",
            &[("name", "Ops")],
        )
        .await;
    let group = location_id(&created);
    let page = admin
        .get(&format!("/orgs/my-org/groups/{group}/delete"))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Delete the group Ops?"));
    assert_eq!(
        form_action(&page.body),
        format!("/orgs/my-org/groups/{group}/delete")
    );
    assert_eq!(app.audit_count("my-org", "group.deleted"), 0);
    let show = admin.get(&format!("/orgs/my-org/groups/{group}")).await;
    assert!(
        show.body
            .contains(&format!("href=\"/orgs/my-org/groups/{group}/delete\""))
    );
}

#[test]
fn no_template_relies_on_a_script_to_confirm() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(!text.contains("data-confirm="), "{}", path.display());
            }
        }
    }
}
