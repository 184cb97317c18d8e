//! Users: create, read, list (filter, paging, projection, .search), replace, delete.

use serde_json::json;

use super::*;

#[actix_web::test]
async fn creating_a_user_makes_an_active_member_with_the_tokens_role() {
    let (app, admin, scim) = scim_app(&["scim"], "engineer").await;
    let made = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "Ada@Example.com",
                "externalId": "00u-ada",
                "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
                "active": true,
            }),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.headers["content-type"], "application/scim+json");
    let id = made.id();
    assert_eq!(
        made.headers["location"].to_str().unwrap(),
        made.body["meta"]["location"].as_str().unwrap()
    );
    assert!(
        made.body["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/Users/{id}"))
    );
    assert_eq!(
        made.headers["etag"].to_str().unwrap(),
        made.body["meta"]["version"].as_str().unwrap()
    );
    assert_eq!(made.body["userName"], "Ada@Example.com", "as sent");
    assert_eq!(made.body["externalId"], "00u-ada");
    assert_eq!(made.body["active"], true);
    assert_eq!(made.body["name"]["familyName"], "Lovelace");
    assert_eq!(made.body["emails"][0]["value"], "ada@example.com");
    assert_eq!(
        app.membership_status("my-org", &id).as_deref(),
        Some("active")
    );
    assert_eq!(app.member_role("my-org", &id).as_deref(), Some("engineer"));
    let events = app.audit_actions("my-org");
    assert!(
        events.contains(&(
            "member.provisioned".into(),
            Some("token:Okta".into()),
            Some("ada@example.com".into())
        )),
        "{events:?}"
    );
    // An investigator lists what the identity provider did by the name the trail shows.
    let by_token = admin.get("/orgs/my-org/audit?actor=token%3AOkta").await;
    assert_eq!(by_token.status, 200, "{}", by_token.body);
    assert!(
        by_token.body.contains("ada@example.com"),
        "{}",
        by_token.body
    );
    let by_admin = admin
        .get(&format!(
            "/orgs/my-org/audit?actor={}",
            ADMIN_EMAIL.replace('@', "%40")
        ))
        .await;
    assert!(!by_admin.body.contains("ada@example.com"));

    let read = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, made.body);
}

#[actix_web::test]
async fn a_duplicate_user_name_is_a_409_uniqueness() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    scim.create_user("dup@example.com").await;
    let again = scim
        .post("/Users", &json!({"userName": "DUP@example.com"}))
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.scim_type(), Some("uniqueness"));
    assert_eq!(
        again.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    // The Admin's own account is a member too.
    let admin = scim.post("/Users", &json!({"userName": ADMIN_EMAIL})).await;
    assert_eq!(admin.status, 409);
    assert_eq!(app.count("memberships"), 2);
}

#[actix_web::test]
async fn a_filter_naming_nobody_answers_200_with_zero_results() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let found = scim
        .get("/Users?filter=userName%20eq%20%22nobody%40example.com%22")
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.total(), 0);
    assert_eq!(found.body["Resources"], json!([]));
    assert_eq!(
        found.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
}

#[actix_web::test]
async fn lists_page_in_a_stable_order_with_an_integer_total() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(scim.create_user(&format!("p{i}@example.com")).await);
    }
    let filter = "filter=userName%20sw%20%22p%22";
    let mut seen = Vec::new();
    for start in [1, 3, 5] {
        let page = scim
            .get(&format!("/Users?{filter}&startIndex={start}&count=2"))
            .await;
        assert_eq!(page.status, 200);
        assert_eq!(page.total(), 5);
        assert_eq!(page.body["startIndex"], start);
        for r in page.body["Resources"].as_array().unwrap() {
            seen.push(r["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, made, "every member once, in creation order");
    let all = scim.get("/Users?count=100").await;
    assert_eq!(all.total(), 6, "the Admin and the five");
    let none = scim.get("/Users?count=0").await;
    assert_eq!(none.total(), 6);
    assert_eq!(none.body["Resources"], json!([]));
}

/// The ids of a list answer's resources, in its order.
fn ids(answer: &Answer) -> Vec<String> {
    answer.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// `n` members of my-org, m000@… onwards, in the order they were made.
fn add_members(app: &TestApp, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let email = format!("m{i:03}@example.com");
            app.add_member("my-org", &email, "M", "N", "member", false)
        })
        .collect()
}

/// An import pages through every member while some of the first are removed: each
/// member still there is listed once (an OFFSET would skip as many as were removed),
/// and a page asked for out of turn starts where the order stands at its position.
#[actix_web::test]
async fn an_import_paging_while_members_are_removed_misses_none() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let made = add_members(&app, 250);
    let mut everyone = ids(&scim.get("/Users?count=200").await);
    everyone.extend(ids(&scim.get("/Users?startIndex=201&count=200").await));
    assert_eq!(everyone.len(), 251, "the Admin and the 250");
    let out_of_turn = scim.get("/Users?startIndex=151&count=10").await;
    assert_eq!(ids(&out_of_turn), everyone[150..160]);

    let first = scim.get("/Users?startIndex=1&count=100").await;
    assert_eq!(first.total(), 251);
    let mut seen = ids(&first);
    for gone in &made[10..15] {
        assert_eq!(scim.delete(&format!("/Users/{gone}")).await.status, 204);
    }
    for start in [101, 201] {
        let page = scim
            .get(&format!("/Users?startIndex={start}&count=100"))
            .await;
        assert_eq!(page.status, 200);
        assert_eq!(page.total(), 246);
        seen.extend(ids(&page));
    }
    let still_there: Vec<String> = everyone
        .iter()
        .filter(|id| !made[10..15].contains(id))
        .cloned()
        .collect();
    let listed_after_removal: Vec<String> = seen
        .iter()
        .filter(|id| !made[10..15].contains(id))
        .cloned()
        .collect();
    assert_eq!(
        listed_after_removal, still_there,
        "every member still there, once, in order"
    );
}

/// Behind a load balancer the next page may reach another instance: it continues from
/// where the first one's page ended (that place was kept in the first process's memory,
/// and the other instance skipped one member for each removed since the import began).
#[actix_web::test]
async fn an_import_paged_across_two_instances_misses_none() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let made = add_members(&app, 250);
    let other = app.other_instance().await;
    let elsewhere = Scim::at(&other.address, scim.token());

    let mut seen = ids(&scim.get("/Users?startIndex=1&count=100").await);
    for gone in &made[10..15] {
        assert_eq!(scim.delete(&format!("/Users/{gone}")).await.status, 204);
    }
    for start in [101, 201] {
        let page = elsewhere
            .get(&format!("/Users?startIndex={start}&count=100"))
            .await;
        assert_eq!(page.status, 200);
        assert_eq!(page.total(), 246);
        seen.extend(ids(&page));
    }
    seen.retain(|id| !made[10..15].contains(id));
    let mut everyone = ids(&scim.get("/Users?count=200").await);
    everyone.extend(ids(&scim.get("/Users?startIndex=201&count=200").await));
    assert_eq!(everyone.len(), 246);
    assert_eq!(seen, everyone, "every member still there, once, in order");
}

/// The `kind` resources changed after `since`, as a sync asks for them.
fn changed_since(kind: &str, since: &str) -> String {
    let filter = percent(&format!("meta.lastModified gt \"{since}\""));
    format!("/{kind}?filter={filter}")
}

/// An identity provider syncing "what changed since its last run" reads
/// `meta.lastModified`. A member deactivated on the portal, and one added to a group
/// there, have changed since, and so has the group: both kept their creation time, so
/// the provider never learnt of either.
#[actix_web::test]
async fn changes_made_on_the_portal_move_last_modified() {
    let (app, admin, scim) = scim_app(&["scim"], "member").await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);
    let carol = app.add_member("my-org", "carol@example.com", "Carol", "C", "member", true);
    let group = scim
        .post("/Groups", &json!({"displayName": "Ops"}))
        .await
        .id();
    let since = portcullis::domain::timefmt::iso_time(portcullis::db::now());
    let changed = |kind: &str| changed_since(kind, &since);
    assert_eq!(scim.get(&changed("Users")).await.total(), 0);

    let users = "/orgs/my-org/users";
    let deactivate = format!("{users}/{bob}/deactivate");
    assert_eq!(admin.submit(users, &deactivate, &[]).await.status, 303);
    let base = format!("/orgs/my-org/groups/{group}");
    let joined = admin
        .submit(&base, &format!("{base}/members"), &[("user_id", &carol)])
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);

    let mut users_changed = ids(&scim.get(&changed("Users")).await);
    users_changed.sort();
    let mut expected = vec![bob, carol.clone()];
    expected.sort();
    assert_eq!(users_changed, expected);
    assert_eq!(
        ids(&scim.get(&changed("Groups")).await),
        vec![group.clone()]
    );

    // Renamed, the group changes what its members' User resources show.
    let since = portcullis::domain::timefmt::iso_time(portcullis::db::now());
    let changed = |kind: &str| changed_since(kind, &since);
    let fields = [("name", "Operations"), ("description", ""), ("role_id", "")];
    assert_eq!(admin.submit(&base, &base, &fields).await.status, 303);
    assert_eq!(ids(&scim.get(&changed("Users")).await), vec![carol.clone()]);

    // Each later change moves it again (on PostgreSQL a group is marked once a
    // transaction).
    let since = portcullis::domain::timefmt::iso_time(portcullis::db::now());
    let changed = |kind: &str| changed_since(kind, &since);
    let remove = format!("{base}/members/{carol}/remove");
    assert_eq!(admin.submit(&base, &remove, &[]).await.status, 303);
    assert_eq!(ids(&scim.get(&changed("Groups")).await), vec![group]);
    assert_eq!(ids(&scim.get(&changed("Users")).await), vec![carol]);
}

#[actix_web::test]
async fn filters_cover_the_attributes_idps_use() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let ada = scim.create_user("ada@example.com").await;
    let bob = scim
        .post(
            "/Users",
            &json!({"userName": "bob", "emails": [{"value": "bob@corp.example", "type": "work"}]}),
        )
        .await
        .id();
    scim.patch(
        &format!("/Users/{bob}"),
        &patch_body(json!([{"op": "replace", "path": "externalId", "value": "ext-bob"}])),
    )
    .await;
    let q = |f: &str| format!("/Users?filter={}", percent(f));
    assert_eq!(
        ids(&scim.get(&q("externalId eq \"ext-bob\"")).await),
        std::slice::from_ref(&bob)
    );
    assert_eq!(
        ids(&scim.get(&q("emails.value co \"corp\"")).await),
        std::slice::from_ref(&bob)
    );
    assert_eq!(
        ids(&scim
            .get(&q(
                "userName ew \"@example.com\" and not (userName eq \"admin@example.com\")"
            ))
            .await),
        std::slice::from_ref(&ada)
    );
    assert_eq!(
        ids(&scim.get(&q("externalId pr")).await),
        std::slice::from_ref(&bob)
    );
    assert_eq!(
        ids(&scim
            .get(&q(
                "userName eq \"ADA@example.com\" or externalId eq \"ext-bob\""
            ))
            .await),
        [ada.clone(), bob.clone()]
    );
    assert_eq!(scim.get(&q("active eq false")).await.total(), 0);
    assert_eq!(
        scim.get(&q("meta.lastModified gt \"2000-01-01T00:00:00Z\""))
            .await
            .total(),
        3
    );
    assert_eq!(scim.get(&q("displayName ne \"nobody\"")).await.total(), 3);
}

pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn attributes_and_search_choose_what_comes_back() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("ada@example.com").await;
    let slim = scim.get(&format!("/Users/{id}?attributes=userName")).await;
    assert_eq!(slim.status, 200);
    assert_eq!(slim.body["userName"], "ada@example.com");
    assert!(slim.body.get("name").is_none(), "{}", slim.body);
    assert_eq!(slim.body["id"], id.as_str());
    let without = scim
        .get(&format!("/Users/{id}?excludedAttributes=groups,name"))
        .await;
    assert!(without.body.get("name").is_none());
    assert!(without.body.get("userName").is_some());
    let searched = scim
        .post(
            "/Users/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "userName eq \"ada@example.com\"",
                "attributes": ["userName"],
                "startIndex": 1,
                "count": 10,
            }),
        )
        .await;
    assert_eq!(searched.status, 200, "{}", searched.body);
    assert_eq!(searched.total(), 1);
    assert!(searched.body["Resources"][0].get("name").is_none());
}

#[actix_web::test]
async fn deleting_a_user_removes_the_membership_and_keeps_the_account() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("gone@example.com").await;
    let deleted = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(app.membership_status("my-org", &id), None);
    assert_eq!(app.user_id("gone@example.com"), id, "the account survives");
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 404);
    assert!(app.audit_actions("my-org").contains(&(
        "member.removed".into(),
        Some("token:Okta".into()),
        Some("gone@example.com".into())
    )));
}

/// A leaver who made so much as a sub-pool owns it, and an identity provider has nobody
/// to name as its new owner: the `409` it got on every retry left them an active member.
/// What they own passes to the token's maker, and the removal says so.
#[actix_web::test]
async fn deleting_a_user_who_owns_a_pool_hands_it_to_the_tokens_maker() {
    let (app, admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("leaver@example.com").await;
    let pool = crate::authz::pool(&admin, "Project X").await;
    app.set_pool_owner(&pool, &id);

    let deleted = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(app.membership_status("my-org", &id), None);
    assert_eq!(app.pool_owner(&pool), Some(app.user_id(ADMIN_EMAIL)));
    let (action, details) = app.latest_event("my-org");
    assert_eq!(action, "member.removed");
    assert_eq!(details["successor"], ADMIN_EMAIL);
    assert_eq!(details["pools_transferred"], 1);
}

/// A token made on the command line has no maker to take over: what the leaver owned is
/// left without an owner, and the removal says so.
#[actix_web::test]
async fn deleting_through_a_command_line_token_leaves_what_they_owned_to_nobody() {
    let (app, admin, _) = scim_app(&["scim"], "member").await;
    let out = app.run_cli(&[
        "create-api-token",
        "--org",
        "my-org",
        "--name",
        "ops",
        "--scopes",
        "scim",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scim = Scim::new(&app, String::from_utf8(out.stdout).unwrap().trim());
    let id = scim.create_user("leaver@example.com").await;
    let pool = crate::authz::pool(&admin, "Project X").await;
    app.set_pool_owner(&pool, &id);

    let deleted = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(app.pool_owner(&pool), None);
    let (action, details) = app.latest_event("my-org");
    assert_eq!(action, "member.removed");
    assert_eq!(details["successor"], "nobody");
}

/// A user whose representation changed after it was read: its id, the version read
/// first, the version now, and the body that changed it.
async fn changed_since_read(scim: &Scim) -> (String, String, String, Value) {
    let id = scim.create_user("v@example.com").await;
    let first = scim.get(&format!("/Users/{id}")).await;
    let version = first.headers["etag"].to_str().unwrap().to_string();
    let body = json!({"userName": "v@example.com", "name": {"givenName": "New"}});
    let changed = scim
        .send(reqwest::Method::PUT, &format!("/Users/{id}"), Some(&body))
        .await;
    assert_eq!(changed.status, 200);
    let current = changed.headers["etag"].to_str().unwrap().to_string();
    assert_ne!(current, version);
    (id, version, current, body)
}

#[actix_web::test]
async fn a_stale_if_match_is_refused_with_412() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let (id, version, _, body) = changed_since_read(&scim).await;
    let stale = reqwest::Client::new()
        .put(format!("{}/Users/{id}", scim.base))
        .bearer_auth(&scim.token)
        .header("if-match", &version)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
}

/// A DELETE carrying the version the client last read removes nothing that changed since:
/// a member provisioned again meanwhile stays (412); the current version removes it.
#[actix_web::test]
async fn a_delete_with_a_stale_if_match_is_refused_with_412() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let (id, version, current, _) = changed_since_read(&scim).await;
    let delete = |version: String| {
        reqwest::Client::new()
            .delete(format!("{}/Users/{id}", scim.base))
            .bearer_auth(&scim.token)
            .header("if-match", version)
            .send()
    };
    assert_eq!(delete(version).await.unwrap().status(), 412);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 200);
    assert_eq!(delete(current).await.unwrap().status(), 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 404);
}

/// A filter no index narrows reads the organization chunk by chunk: each chunk a range of
/// an index after the last member read (no OFFSET re-reading what came before), every
/// member once, and no more than the scan limit, past which the answer is `tooMany`
/// rather than a connection held for minutes. The lookups IdPs send (`userName eq`,
/// `externalId eq`) are answered past the limit, from an index.
#[actix_web::test]
async fn a_filter_reads_each_member_once_and_no_more_than_the_limit() {
    let app = spawn_app_with(|s| s.scim_scan_limit = 5_000).await;
    let admin = app.setup_admin().await;
    let token = admin_token(&app, &admin, &["scim"], "member").await;
    let scim = Scim::new(&app, &token);
    let out = app.run_cli(&["seed-demo", "--org", "my-org", "--members", "6000"]);
    assert!(out.status.success(), "{out:?}");
    let made = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada@example.com",
                "externalId": "00u-ada",
                "active": true,
            }),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);

    let everyone = scim.get("/Users?filter=name.givenName%20pr").await;
    assert_eq!(everyone.status, 400, "{}", everyone.body);
    assert_eq!(everyone.scim_type(), Some("tooMany"));

    // The inactive ones span two chunks of 500: each is counted once.
    let inactive = app.count("memberships WHERE status = 'inactive'");
    assert!(inactive > 500, "{inactive}");
    let found = scim
        .get("/Users?filter=active%20eq%20false%20and%20name.givenName%20pr&count=1")
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.total(), inactive);

    for filter in [
        "userName%20eq%20%22ada%40example.com%22",
        "externalId%20eq%20%2200u-ada%22",
    ] {
        let one = scim.get(&format!("/Users?filter={filter}")).await;
        assert_eq!(one.status, 200, "{filter}: {}", one.body);
        assert_eq!(one.total(), 1, "{filter}");
        assert_eq!(one.body["Resources"][0]["id"], made.body["id"]);
    }

    let org = app.org_id("my-org");
    let mut conn = app.conn();
    if app.db.is_postgres() {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("SET enable_seqscan = off").unwrap();
    }
    let plans = portcullis::db::scim::explain_member_lookups(&mut conn, &org).unwrap();
    let indexes = [
        "memberships_org_user_name_idx",
        "memberships_org_email_idx",
        "memberships_org_external_id_idx",
    ];
    for (plan, index) in plans.iter().zip(indexes) {
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{index}: {plan}");
    }
}

/// An invitation is for someone not yet a member. When the identity provider makes the
/// invited address a member first, the invitation is withdrawn: left open, its link would
/// let its holder back in, with its role and groups, after the provider removed them.
#[actix_web::test]
async fn provisioning_an_invited_address_withdraws_its_invitation() {
    let (app, admin, scim) = scim_app(&["scim"], "member").await;
    let sent = admin
        .invite(
            "my-org",
            "victim@example.com",
            &app.role_id("my-org", "admin"),
        )
        .await;
    let link = admin.follow_results(sent).await.invite_link();
    let id = scim.create_user("victim@example.com").await;
    assert_eq!(app.count("invitations WHERE status = 'cancelled'"), 1);
    assert_eq!(app.audit_count("my-org", "invitation.cancelled"), 1);

    let removed = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let opened = app.client().get(&link).await;
    assert_eq!(opened.status, 404, "the link is dead: {}", opened.body);
    assert_eq!(app.membership_status("my-org", &id), None);
}

/// userName is not case-exact (RFC 7643): an identity provider finds "Ada" asking for
/// "aDA", and cannot create "ADA" beside her.
#[actix_web::test]
async fn a_user_name_matches_in_any_case() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let made = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "Ada",
                "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
                "active": true,
            }),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let found = scim.get("/Users?filter=userName%20eq%20%22aDA%22").await;
    assert_eq!(found.total(), 1, "{}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], made.body["id"]);
    assert_eq!(found.body["Resources"][0]["userName"], "Ada");

    let twin = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ADA",
                "emails": [{"value": "other@example.com", "type": "work", "primary": true}],
            }),
        )
        .await;
    assert_eq!(twin.status, 409, "{}", twin.body);
    assert_eq!(twin.scim_type(), Some("uniqueness"));
}

/// Before userNames matched in any case, "Ada" and "ADA" could be two members. A lookup
/// of either found whichever the database returned last, so the provider read, changed
/// or deactivated the other person, and a PUT keeping Ada's own userName was refused as
/// taken. The one spelt as asked is found.
#[actix_web::test]
async fn of_two_user_names_from_before_any_case_the_one_spelt_as_asked_is_found() {
    use diesel::prelude::*;
    use portcullis::db::schema::memberships;
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let user = |name: &str, email: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "emails": [{"value": email, "type": "work", "primary": true}],
        })
    };
    let ada = scim
        .post("/Users", &user("Ada", "ada@example.com"))
        .await
        .id();
    let other = scim
        .post("/Users", &user("Other", "other@example.com"))
        .await
        .id();
    let mut conn = app.conn();
    let conn: &mut portcullis::db::DbConnection = &mut conn;
    diesel::update(memberships::table.filter(memberships::user_id.eq(&other)))
        .set((
            memberships::user_name.eq("ADA"),
            memberships::scim_profile.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Text>,
            >(
                "replace(scim_profile, '\"Other\"', '\"ADA\"')"
            )),
        ))
        .execute(conn)
        .unwrap();

    for (asked, meant) in [("Ada", &ada), ("ADA", &other)] {
        let found = scim
            .get(&format!("/Users?filter=userName%20eq%20%22{asked}%22"))
            .await;
        assert_eq!(
            found.body["Resources"][0]["id"],
            meant.as_str(),
            "{}",
            found.body
        );
    }
    let kept = scim
        .put(&format!("/Users/{ada}"), &user("Ada", "ada@example.com"))
        .await;
    assert_eq!(kept.status, 200, "{}", kept.body);
}

/// Alice was invited and joined; an identity provider later re-addresses her account,
/// and the address is invited again and accepted by someone new. The new account's
/// Activity tab, which its holder reads without `audit.read`, must not hand them what
/// was done to, or by, the earlier account, nor the earlier account's invitation.
#[actix_web::test]
async fn a_reused_address_does_not_inherit_the_earlier_accounts_activity() {
    let (app, admin, scim) = scim_app(&["scim"], "manager").await;
    let (member, engineer) = (
        app.role_id("my-org", "member"),
        app.role_id("my-org", "engineer"),
    );
    let join = |link: String| {
        let app = &app;
        async move {
            let browser = app.client();
            let form = browser.get(&link).await;
            let joined = browser
                .post(
                    &link,
                    &account_form(form.csrf(), "Alice", "Smith", "a long enough pass phrase"),
                )
                .await;
            assert_eq!(joined.status, 303, "{}", joined.body);
            browser
        }
    };
    let sent = admin.invite("my-org", "alice@example.com", &engineer).await;
    let first = join(admin.follow_results(sent).await.invite_link()).await;
    let alice = app.user_id("alice@example.com");
    // The earlier account acts, and has things done to it.
    assert_eq!(
        first
            .submit("/account", "/account/sessions/end-others", &[])
            .await
            .status,
        303
    );
    let pools = "/orgs/my-org/pools";
    let secret = location_id(
        &admin
            .submit(
                pools,
                pools,
                &[("name", "Secret Merger"), ("parent_id", "")],
            )
            .await,
    );
    let added = admin
        .submit(
            pools,
            &format!("{pools}/{secret}/members"),
            &[("user_id", alice.as_str()), ("role_id", engineer.as_str())],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    // ...and invites someone, in this organization, under the address she has then.
    app.set_member_role("my-org", &alice, "manager");
    let invited = first.invite("my-org", "pat@example.com", &member).await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    let moved = scim
        .patch(
            &format!("/Users/{alice}"),
            &patch_body(json!([
                {"op": "replace", "path": "userName", "value": "alice-old@example.com"},
                {"op": "replace", "path": "emails", "value": [{"value": "alice-old@example.com", "primary": true}]},
            ])),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(app.user_id("alice-old@example.com"), alice);

    let sent = admin.invite("my-org", "alice@example.com", &member).await;
    let newcomer = join(admin.follow_results(sent).await.invite_link()).await;
    let new_id = app.user_id("alice@example.com");
    assert_ne!(new_id, alice);

    let own = newcomer
        .get(&format!("/orgs/my-org/users/{new_id}/activity"))
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    let rows = |action: &str| {
        own.body
            .matches(&format!("data-action=\"{action}\""))
            .count()
    };
    assert_eq!(
        rows("invitation.created"),
        1,
        "their own invitation only: {}",
        own.body
    );
    assert_eq!(rows("invitation.accepted"), 1, "{}", own.body);
    assert!(!own.body.contains("Secret Merger"), "{}", own.body);
    assert_eq!(rows("account.other_sessions_ended"), 0, "{}", own.body);
    assert!(!own.body.contains("pat@example.com"), "{}", own.body);
    // Re-addressed, the earlier account still shows what it did under its old address.
    let earlier = admin
        .get(&format!("/orgs/my-org/users/{alice}/activity"))
        .await;
    assert!(earlier.body.contains("pat@example.com"), "{}", earlier.body);
}

/// The rules on invisible characters came after accounts and groups were made: one named
/// or addressed before them must still take its identity provider's changes (above all
/// being deactivated), while a new address or name is held to them.
#[actix_web::test]
async fn an_account_and_a_group_named_before_the_rule_still_take_their_changes() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let id = scim.create_user("ada@example.com").await;
    let group = scim
        .post(
            "/Groups",
            &json!({"displayName": "Ops", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let group_id = group.id();
    {
        use diesel::prelude::*;
        use portcullis::db::schema::{groups, users};
        let mut conn = app.conn();
        let conn: &mut portcullis::db::DbConnection = &mut conn;
        diesel::update(users::table.filter(users::id.eq(&id)))
            .set((
                users::email.eq("ada\u{200B}@example.com"),
                users::first_name.eq("A\u{00AD}da"),
            ))
            .execute(conn)
            .unwrap();
        diesel::update(groups::table.filter(groups::id.eq(&group_id)))
            .set(groups::name.eq("Ops\u{200B}"))
            .execute(conn)
            .unwrap();
    }
    let off = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(
        app.membership_status("my-org", &id).as_deref(),
        Some("inactive")
    );
    // Renaming one part keeps the other as it was stored.
    let renamed = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_body(json!([{"op": "replace", "path": "name.familyName", "value": "Lovelace"}])),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let emptied = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &patch_body(json!([{"op": "remove", "path": "members"}])),
        )
        .await;
    assert_eq!(emptied.status, 200, "{}", emptied.body);
    assert_eq!(app.count("group_members"), 0);

    // A new address, or a new name, is held to the rule.
    for (path, value) in [
        (
            "emails",
            json!([{"value": "ada\u{2060}@example.com", "primary": true}]),
        ),
        ("name.givenName", json!("Ad\u{200B}a")),
    ] {
        let refused = scim
            .patch(
                &format!("/Users/{id}"),
                &patch_body(json!([{"op": "replace", "path": path, "value": value}])),
            )
            .await;
        assert_eq!(refused.status, 400, "{path}: {}", refused.body);
        assert_eq!(refused.scim_type(), Some("invalidValue"));
    }
    let renamed = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &patch_body(
                json!([{"op": "replace", "path": "displayName", "value": "Admins\u{200B}"}]),
            ),
        )
        .await;
    assert_eq!(renamed.status, 400, "{}", renamed.body);
}
