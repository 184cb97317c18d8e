//! The requests Okta and Microsoft Entra ID actually send (their published SCIM docs).

use serde_json::json;

use super::*;

/// A member provisioned over SCIM who can also sign in (for the access checks).
async fn member_with_browser(app: &TestApp, scim: &Scim, email: &str) -> (String, Browser) {
    let id = app.add_member("my-org", email, "Sam", "Signin", "member", true);
    let found = scim
        .get(&format!(
            "/Users?filter=userName%20eq%20%22{}%22",
            email.replace('@', "%40")
        ))
        .await;
    assert_eq!(found.total(), 1);
    (id, app.member_browser(email).await)
}

#[actix_web::test]
async fn okta_pathless_replace_of_active_false_deactivates_and_ends_access_at_once() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let (id, browser) = member_with_browser(&app, &scim, "sam@example.com").await;
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
    let done = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["active"], false);
    assert_eq!(
        app.membership_status("my-org", &id).as_deref(),
        Some("inactive")
    );
    assert_eq!(
        browser.get("/orgs/my-org/users").await.status,
        404,
        "access ends at once"
    );
    assert!(app.audit_actions("my-org").contains(&(
        "member.deactivated".into(),
        Some("token:Okta".into()),
        Some("sam@example.com".into())
    )));
    // And back.
    let back = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "replace", "value": {"active": true}}])),
        )
        .await;
    assert_eq!(back.status, 200);
    assert_eq!(
        app.membership_status("my-org", &id).as_deref(),
        Some("active")
    );
    assert_eq!(app.audit_count("my-org", "member.activated"), 1);
}

#[actix_web::test]
async fn entra_capitalised_replace_with_a_string_false_deactivates() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("eve@example.com").await;
    let done = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["active"], false);
    assert_eq!(
        app.membership_status("my-org", &id).as_deref(),
        Some("inactive")
    );
}

#[actix_web::test]
async fn entra_work_email_path_changes_the_address() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("old@example.com").await;
    let done = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"},
                {"op": "Replace", "path": "name.givenName", "value": "Nina"},
            ])),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["emails"][0]["value"], "new@example.com");
    assert_eq!(done.body["name"]["givenName"], "Nina");
    assert_eq!(app.user_id("new@example.com"), id);
    assert_eq!(
        scim.get("/Users?filter=emails.value%20eq%20%22new%40example.com%22")
            .await
            .total(),
        1
    );
}

#[actix_web::test]
async fn entra_removes_a_group_member_by_value_path() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let a = scim.create_user("a@example.com").await;
    let b = scim.create_user("b@example.com").await;
    let group = scim
        .post(
            "/Groups",
            &json!({"displayName": "Ops", "members": [{"value": a}, {"value": b}]}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let gid = group.id();
    let done = scim
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(json!([
                {"op": "Remove", "path": format!("members[value eq \"{a}\"]")}
            ])),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let members: Vec<&str> = done.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [b.as_str()]);
    assert_eq!(app.audit_count("my-org", "group.member_removed"), 1);
}

#[actix_web::test]
async fn okta_custom_apps_update_with_put() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("pat@example.com").await;
    let put = scim
        .put(
            &format!("/Users/{id}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": id,
                "userName": "pat@example.com",
                "name": {"givenName": "Pat", "familyName": "Putnam"},
                "emails": [{"primary": true, "value": "pat@example.com", "type": "work"}],
                "active": false,
                "groups": [],
            }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["name"]["familyName"], "Putnam");
    assert_eq!(put.body["active"], false);
    assert_eq!(
        app.membership_status("my-org", &id).as_deref(),
        Some("inactive")
    );
    let events = app.audit_actions("my-org");
    assert!(
        events
            .iter()
            .any(|(a, actor, _)| a == "member.updated" && actor.as_deref() == Some("token:Okta"))
    );
    assert!(events.iter().any(|(a, _, _)| a == "member.deactivated"));
}
