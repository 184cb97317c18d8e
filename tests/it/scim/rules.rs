//! The portal's rules hold through SCIM: the last admin, rank limits, read-only tokens,
//! and tenant isolation.

use serde_json::json;

use super::*;

#[actix_web::test]
async fn deactivating_or_deleting_the_last_admin_is_a_409_that_says_why() {
    let (app, _admin, scim) = scim_app(&["scim"], "admin").await;
    let admin = app.user_id(ADMIN_EMAIL);
    let before = app.audit_actions("my-org").len();
    let refused = scim
        .patch(
            &format!("/Users/{admin}"),
            &patch_body(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.detail().contains("at least one active admin"),
        "{}",
        refused.body
    );
    let deleted = scim.delete(&format!("/Users/{admin}")).await;
    assert_eq!(deleted.status, 409);
    assert!(deleted.detail().contains("at least one active admin"));
    assert_eq!(
        app.membership_status("my-org", &admin).as_deref(),
        Some("active")
    );
    assert_eq!(
        app.audit_actions("my-org").len(),
        before,
        "nothing recorded"
    );
}

#[actix_web::test]
async fn a_token_acts_no_higher_than_its_role() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let admin = app.user_id(ADMIN_EMAIL);
    let manager = app.add_member("my-org", "mo@example.com", "Mo", "M", "manager", false);
    for id in [&admin, &manager] {
        let refused = scim
            .patch(
                &format!("/Users/{id}"),
                &patch_body(json!([{"op": "replace", "path": "active", "value": false}])),
            )
            .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 403);
    }
    assert_eq!(
        app.membership_status("my-org", &manager).as_deref(),
        Some("active")
    );
    // New members get the token's role, never more.
    let made = scim.create_user("new@example.com").await;
    assert_eq!(app.member_role("my-org", &made).as_deref(), Some("member"));
}

#[actix_web::test]
async fn a_read_token_reads_and_changes_nothing() {
    let (app, admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("r@example.com").await;
    let reader = Scim::new(
        &app,
        &crate::api_tokens::admin_token(&app, &admin, &["read"], "member").await,
    );
    assert_eq!(reader.get(&format!("/Users/{id}")).await.status, 200);
    assert_eq!(reader.get("/Users").await.status, 200);
    let refused = reader
        .post("/Users", &json!({"userName": "x@example.com"}))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let patch = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(
        reader.patch(&format!("/Users/{id}"), &patch).await.status,
        403
    );
    assert_eq!(reader.delete(&format!("/Users/{id}")).await.status, 403);
    assert_eq!(
        app.membership_status("my-org", &id).as_deref(),
        Some("active")
    );
}

#[actix_web::test]
async fn a_token_of_one_organization_never_reads_or_changes_another() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let mine = scim.create_user("mine@example.com").await;
    app.create_org("other-org", "Other Org");
    let theirs = app.add_member("other-org", "theirs@example.com", "T", "O", "member", false);
    app.add_member("other-org", "boss@example.com", "B", "O", "admin", false);
    let shared = app.add_member("other-org", "mine@example.com", "M", "E", "member", false);
    assert_eq!(shared, mine, "one account in both organizations");

    let other_token = portcullis::domain::api_tokens::create_from_cli(
        &mut app.conn(),
        "other-org",
        "Other IdP",
        &["scim".into()],
        Some("admin"),
        None,
    )
    .unwrap()
    .secret;
    let other = Scim::new(&app, &other_token);

    for (client, foreign) in [(&scim, &theirs), (&other, &app.user_id(ADMIN_EMAIL))] {
        let path = format!("/Users/{foreign}");
        assert_eq!(client.get(&path).await.status, 404);
        let patch = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
        assert_eq!(client.patch(&path, &patch).await.status, 404);
        assert_eq!(
            client
                .put(&path, &json!({"userName": "x@example.com"}))
                .await
                .status,
            404
        );
        assert_eq!(client.delete(&path).await.status, 404);
    }
    let listed = scim.get("/Users").await;
    let emails: Vec<&str> = listed.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert!(!emails.contains(&"theirs@example.com"), "{emails:?}");
    // The shared account: deactivated in other-org, still active here.
    let patch = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(
        other.patch(&format!("/Users/{mine}"), &patch).await.status,
        200
    );
    assert_eq!(
        app.membership_status("other-org", &mine).as_deref(),
        Some("inactive")
    );
    assert_eq!(
        app.membership_status("my-org", &mine).as_deref(),
        Some("active")
    );
    // Its email belongs to two organizations: neither IdP may change it.
    let moved = other
        .patch(
            &format!("/Users/{mine}"),
            &patch_body(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "moved@example.com"}])),
        )
        .await;
    assert_eq!(moved.status, 400, "{}", moved.body);
    assert_eq!(moved.scim_type(), Some("mutability"));
}

/// Whoever invites an address sees its accept link, and may open it and choose the
/// account's password. If another organization's identity provider then provisioned that
/// address, the inviter would sign in as its new member. Provisioning attaches only an
/// existing account without a password, which only the address's owner can enter.
#[actix_web::test]
async fn an_idp_never_attaches_an_account_whose_password_someone_else_chose() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    claim_address_through_an_invitation(&app, "ceo@bigco.example", MEMBER_PASSWORD).await;
    let account = app.user_id("ceo@bigco.example");

    let provisioned = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ceo@bigco.example",
                "active": true,
            }),
        )
        .await;
    assert_eq!(provisioned.status, 409, "{}", provisioned.body);
    assert_eq!(provisioned.scim_type(), Some("uniqueness"));
    assert!(
        !provisioned.body.to_string().contains("Theceo"),
        "no name leaks"
    );
    assert_eq!(app.membership_status("my-org", &account), None);

    // An account without a password (made by another organization's provisioning, say)
    // is still attached: only a link mailed to its address opens it.
    let unopened = app.add_member("other-org", "cfo@bigco.example", "C", "F", "member", false);
    assert_eq!(scim.create_user("cfo@bigco.example").await, unopened);
    assert_eq!(
        app.membership_status("my-org", &unopened).as_deref(),
        Some("active")
    );
}

/// A link mailed to an account's old address must not open it once SCIM gives it a new
/// one: its holder would set the password of an account that now stands for someone
/// else's address (and that another organization's provisioning would take for theirs).
#[actix_web::test]
async fn a_link_mailed_to_the_old_address_dies_with_it() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("me@attacker.example").await;
    let asked = app
        .client()
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", "me@attacker.example")],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let mail = crate::browser::mailed_to(&app, "me@attacker.example")
        .await
        .expect("a reset email");
    let link = mail.link_path("/reset/").expect("a reset link");
    let moved = scim
        .put(
            &format!("/Users/{id}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ceo@bigco.example",
                "active": true,
            }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(app.user_id("ceo@bigco.example"), id);
    let dead = app.client().get(&link).await;
    assert_eq!(dead.status, 404, "{}", dead.body);
}

/// A new address is the account itself: a password reset to it signs in. A token whose
/// maker's access ends tomorrow may not re-address a member whose access lasts (its maker
/// would sign in as them past their own last day), only one whose access ends as soon.
#[actix_web::test]
async fn a_token_cannot_re_address_a_member_whose_access_outlasts_its_makers() {
    let (app, _admin, scim) = scim_app(&["scim"], "admin").await;
    let org = app.org_id("my-org");
    let lasting = app.add_member("my-org", "vic@example.com", "Vic", "V", "member", true);
    let brief = app.add_member("my-org", "bea@example.com", "Bea", "B", "member", true);
    let tomorrow = portcullis::db::now() + chrono::Duration::days(1);
    for id in [app.user_id(ADMIN_EMAIL), brief.clone()] {
        portcullis::db::memberships::set_access_until(&mut app.conn(), &org, &id, Some(tomorrow))
            .unwrap();
    }
    let re_address = |id: String, to: &'static str| {
        let scim = &scim;
        async move {
            scim.patch(
                &format!("/Users/{id}"),
                &patch_body(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": to}])),
            )
            .await
        }
    };
    let before = app.audit_actions("my-org").len();
    let refused = re_address(lasting.clone(), "me@attacker.example").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.detail().contains("lasts longer"),
        "{}",
        refused.body
    );
    assert_eq!(app.user_id("vic@example.com"), lasting);
    assert_eq!(
        app.audit_actions("my-org").len(),
        before,
        "nothing recorded"
    );

    let moved = re_address(brief.clone(), "bea@new.example").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(app.user_id("bea@new.example"), brief);
}

/// An Admin with a SCIM token could move a co-member's account to a mailbox of theirs,
/// reset its password there and sign in as them, and the owner heard nothing. The old
/// address is now told, in the transaction of the change: a refused change tells nobody.
#[actix_web::test]
async fn the_old_address_is_told_when_an_identity_provider_moves_an_account() {
    let smtp = crate::smtp::SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    let admin = app.setup_admin().await;
    let token = admin_token(&app, &admin, &["scim"], "member").await;
    let scim = Scim::new(&app, &token);
    let vic = app.add_member("my-org", "vic@example.com", "Vic", "V", "member", true);
    app.add_member("my-org", "taken@example.com", "Tak", "T", "member", true);
    let re_address = |to: &'static str| {
        let (scim, vic) = (&scim, &vic);
        async move {
            scim.patch(
                &format!("/Users/{vic}"),
                &patch_body(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": to}])),
            )
            .await
        }
    };
    let refused = re_address("taken@example.com").await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    // Refused after the address was changed and the notice queued: a name that hides text.
    let renamed = scim
        .patch(
            &format!("/Users/{vic}"),
            &patch_body(json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "vic@other.example"},
                {"op": "replace", "path": "name.givenName", "value": "Vi\u{200b}c"},
            ])),
        )
        .await;
    assert_eq!(renamed.status, 400, "{}", renamed.body);
    assert!(
        renamed
            .detail()
            .contains("givenName cannot contain invisible"),
        "{}",
        renamed.body
    );
    assert_eq!(app.user_id("vic@example.com"), vic);
    let moved = re_address("vic@elsewhere.example").await;
    assert_eq!(moved.status, 200, "{}", moved.body);

    let mails = smtp.wait_for(1).await;
    let told = &mails[0];
    assert_eq!(told.to, vec!["vic@example.com".to_string()]);
    assert_eq!(
        told.header("Subject").unwrap_or_default(),
        "Your Portcullis account: sign-in address changed"
    );
    let body = told.decoded();
    for said in [
        "vic@elsewhere.example",
        "My organization",
        "tell the administrators",
    ] {
        assert!(body.contains(said), "{said}: {body}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), 1, "the refused change told nobody");
}

/// Someone whose custom role lets them make tokens (`org.manage`) but not grant every
/// role could accept an invitation of their own address, then with a SCIM token of theirs
/// name that account `ceo@` (its email, its userName, or its externalId, before or after
/// it has a password): the organization's identity provider would find it by that name
/// and push the CEO's admin group to an account whose password is theirs. Only a member
/// who may grant every role makes a SCIM token, and one whose maker no longer may stops
/// acting.
#[actix_web::test]
async fn only_a_maker_who_may_grant_every_role_connects_an_identity_provider() {
    let (app, admin, _scim) = scim_app(&["scim"], "member").await;
    let perms = [
        "users.read",
        "users.invite",
        "users.manage",
        "groups.manage",
        "org.manage",
    ];
    let (_, keeper) =
        crate::authz::custom_role_holder(&app, &admin, "Keeper", &perms, "keeper@example.com")
            .await;
    let member = app.role_id("my-org", "member");
    let (page, token) =
        crate::api_tokens::create(&keeper, "my-org", "Mine", &["scim"], &member, "30").await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(token.is_none());
    assert!(page.body.contains("may grant every role"), "{}", page.body);
    // A reading token is still theirs to make.
    let (page, token) =
        crate::api_tokens::create(&keeper, "my-org", "Reader", &["read"], &member, "30").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(token.is_some());

    // A second Admin's token acts while they may grant every role, and not once they hold
    // the Keeper role instead.
    let second = app.add_member("my-org", "second@example.com", "Sec", "Ond", "admin", true);
    let second_browser = app.member_browser("second@example.com").await;
    let theirs = Scim::new(
        &app,
        &crate::api_tokens::admin_token(&app, &second_browser, &["scim"], "member").await,
    );
    let own = app.add_member("my-org", "mal@attacker.example", "Mal", "L", "member", true);
    let rename = |to: &'static str| {
        let (theirs, own) = (&theirs, &own);
        async move {
            theirs
                .patch(
                    &format!("/Users/{own}"),
                    &patch_body(json!([{"op": "replace", "path": "userName", "value": to}])),
                )
                .await
        }
    };
    assert_eq!(rename("mal.l@attacker.example").await.status, 200);
    let keeper_key = portcullis::db::roles::list(&mut app.conn(), &app.org_id("my-org"))
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Keeper")
        .unwrap()
        .key;
    app.set_member_role("my-org", &second, &keeper_key);
    let refused = rename("ceo@bigco.example").await;
    assert!([401, 403].contains(&refused.status), "{}", refused.body);
    let found = Scim::new(
        &app,
        &crate::api_tokens::admin_token(&app, &admin, &["scim"], "member").await,
    )
    .get("/Users?filter=userName%20eq%20%22ceo%40bigco.example%22")
    .await;
    assert_eq!(found.total(), 0, "{}", found.body);
}
