//! Groups: the organization's groups, unique names, members added, removed, replaced.

use serde_json::json;

use super::*;

fn member_ids(group: &Answer) -> Vec<String> {
    let mut ids: Vec<String> = group.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[actix_web::test]
async fn groups_are_created_listed_renamed_and_deleted() {
    let (app, admin, scim) = scim_app(&["scim"], "member").await;
    let a = scim.create_user("a@example.com").await;
    let made = scim
        .post(
            "/Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Engineering",
                "externalId": "grp-1",
                "members": [{"value": a}],
            }),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let gid = made.id();
    assert_eq!(made.body["externalId"], "grp-1");
    assert_eq!(member_ids(&made), std::slice::from_ref(&a));
    let page = admin.get(&format!("/orgs/my-org/groups/{gid}")).await;
    assert!(page.body.contains("Engineering") && page.body.contains("a@example.com"));
    let user = scim.get(&format!("/Users/{a}")).await;
    assert_eq!(user.body["groups"][0]["value"], gid.as_str());
    assert_eq!(user.body["groups"][0]["display"], "Engineering");

    let dup = scim
        .post("/Groups", &json!({"displayName": "Engineering"}))
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.scim_type(), Some("uniqueness"));

    // displayName is not case-exact: the spelling the identity provider asks with may differ.
    for asked in ["Engineering", "engineering"] {
        let found = scim
            .get(&format!(
                "/Groups?filter=displayName%20eq%20%22{asked}%22&excludedAttributes=members"
            ))
            .await;
        assert_eq!(found.total(), 1, "{asked}");
        assert!(found.body["Resources"][0].get("members").is_none());
    }

    let renamed = scim
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(json!([{"op": "replace", "path": "displayName", "value": "Platform"}])),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["displayName"], "Platform");
    assert_eq!(
        member_ids(&renamed),
        std::slice::from_ref(&a),
        "members untouched"
    );

    assert_eq!(scim.delete(&format!("/Groups/{gid}")).await.status, 204);
    assert_eq!(scim.get(&format!("/Groups/{gid}")).await.status, 404);
    let actions: Vec<String> = app
        .audit_actions("my-org")
        .into_iter()
        .filter(|(_, actor, _)| actor.as_deref() == Some("token:Okta"))
        .map(|(a, _, _)| a)
        .collect();
    for action in [
        "group.created",
        "group.member_added",
        "group.updated",
        "group.deleted",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[actix_web::test]
async fn members_are_added_removed_and_replaced() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let a = scim.create_user("a@example.com").await;
    let b = scim.create_user("b@example.com").await;
    let c = scim.create_user("c@example.com").await;
    let gid = scim
        .post("/Groups", &json!({"displayName": "Ops"}))
        .await
        .id();
    let path = format!("/Groups/{gid}");
    let added = scim
        .patch(
            &path,
            &patch_body(
                json!([{"op": "Add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
            ),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(member_ids(&added), want);
    let replaced = scim
        .patch(
            &path,
            &patch_body(json!([{"op": "replace", "path": "members", "value": [{"value": c}]}])),
        )
        .await;
    assert_eq!(member_ids(&replaced), std::slice::from_ref(&c));
    let put = scim
        .put(
            &path,
            &json!({"displayName": "Ops", "members": [{"value": a}, {"value": c}]}),
        )
        .await;
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(member_ids(&put), want);
    let emptied = scim
        .patch(
            &path,
            &patch_body(json!([{"op": "remove", "path": "members"}])),
        )
        .await;
    assert_eq!(emptied.status, 200, "{}", emptied.body);
    assert!(member_ids(&emptied).is_empty());
}

/// A group's version counts the changes of its members, by whatever path they come (the
/// group's page, a removal from the organization, SCIM), so a read that leaves the members
/// out costs none of them: a member taken out and added back still tells a client holding
/// the version from before that the group changed.
#[actix_web::test]
async fn a_groups_version_tells_every_change_of_its_members_from_any_path() {
    use portcullis::db::groups;
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let a = scim.create_user("a@example.com").await;
    let b = scim.create_user("b@example.com").await;
    let gid = scim
        .post(
            "/Groups",
            &json!({"displayName": "Ops", "members": [{"value": a}]}),
        )
        .await
        .id();
    let org = app.org_id("my-org");
    let lean = format!("/Groups/{gid}?excludedAttributes=members");
    let mut seen = vec![scim.get(&lean).await.body["meta"]["version"].to_string()];
    type Change<'a> = &'a dyn Fn(&mut portcullis::db::DbConnection) -> diesel::QueryResult<()>;
    let changes: [Change; 4] = [
        &|c| groups::add_member(c, &org, &gid, &b),
        &|c| groups::remove_member(c, &org, &gid, &b).map(|_| ()),
        &|c| groups::add_member(c, &org, &gid, &b),
        &|c| groups::remove_member_everywhere(c, &org, &a).map(|_| ()),
    ];
    for (n, change) in changes.iter().enumerate() {
        portcullis::db::write_tx(&mut app.conn(), |c| change(c)).unwrap();
        let read = scim.get(&lean).await;
        let version = read.body["meta"]["version"].to_string();
        assert!(
            !seen.contains(&version),
            "change {n}: {version} seen before"
        );
        let full = scim.get(&format!("/Groups/{gid}")).await;
        assert_eq!(full.body["meta"]["version"].to_string(), version);
        assert_eq!(full.headers["etag"], read.headers["etag"]);
        seen.push(version);
    }
    assert_eq!(member_ids(&scim.get(&format!("/Groups/{gid}")).await), [b]);
}

/// Entra and Okta read groups with `excludedAttributes=members`, which the server answers
/// without building a member object, and then write with the version that read gave: it is
/// the version a full read gives, and it still tells a change of members.
#[actix_web::test]
async fn a_group_read_without_its_members_gives_the_version_a_full_read_gives() {
    let (_app, _admin, scim) = scim_app(&["scim"], "member").await;
    let a = scim.create_user("a@example.com").await;
    let b = scim.create_user("b@example.com").await;
    let gid = scim
        .post(
            "/Groups",
            &json!({"displayName": "Ops", "members": [{"value": a}]}),
        )
        .await
        .id();
    let path = format!("/Groups/{gid}");
    let full = scim.get(&path).await;
    let lean = scim
        .get(&format!("{path}?excludedAttributes=members"))
        .await;
    assert_eq!(lean.status, 200, "{}", lean.body);
    assert!(lean.body.get("members").is_none(), "{}", lean.body);
    assert_eq!(lean.body["displayName"], "Ops");
    let version = full.body["meta"]["version"].as_str().unwrap().to_string();
    assert_eq!(lean.body["meta"]["version"], version.as_str());
    assert_eq!(lean.headers["etag"], full.headers["etag"]);
    let listed = scim.get("/Groups?excludedAttributes=members").await;
    assert_eq!(
        listed.body["Resources"][0]["meta"]["version"],
        version.as_str()
    );
    assert!(listed.body["Resources"][0].get("members").is_none());
    // A filter on the members reads them, though the answer leaves them out.
    let found = scim
        .get(&format!(
            "/Groups?filter=members%5Bvalue%20eq%20%22{a}%22%5D&excludedAttributes=members"
        ))
        .await;
    assert_eq!(found.total(), 1, "{}", found.body);
    assert!(found.body["Resources"][0].get("members").is_none());
    let only_name = scim.get(&format!("{path}?attributes=displayName")).await;
    assert!(
        only_name.body.get("members").is_none(),
        "{}",
        only_name.body
    );

    let add_b = patch_body(json!([{"op": "add", "path": "members", "value": [{"value": b}]}]));
    let patch_at = |version: String| {
        reqwest::Client::new()
            .patch(format!("{}{path}", scim.base))
            .bearer_auth(&scim.token)
            .header("if-match", version)
            .header("content-type", "application/scim+json")
            .body(add_b.to_string())
            .send()
    };
    assert_eq!(patch_at(version.clone()).await.unwrap().status(), 200);
    let after = scim
        .get(&format!("{path}?excludedAttributes=members"))
        .await;
    assert_ne!(
        after.body["meta"]["version"],
        version.as_str(),
        "a member joined"
    );
    assert_eq!(patch_at(version).await.unwrap().status(), 412);
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(member_ids(&scim.get(&path).await), want);
}

/// A PATCH of members alone (Entra's and Okta's) is applied without reading the group as
/// JSON; the same PATCH with one more operation goes the whole way. Both must leave the
/// same members, write the same audit events in the same order, and refuse alike.
#[actix_web::test]
async fn a_member_patch_does_what_the_whole_representation_would() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(scim.create_user(&format!("u{n}@example.com")).await);
    }
    let as_members = |list: &[usize]| -> Value {
        list.iter()
            .map(|&i| json!({"value": ids[i], "display": format!("u{i}")}))
            .collect()
    };
    let start = as_members(&[0, 1, 2]);
    let group = |name: &str| {
        let body = json!({"displayName": name, "members": start.clone()});
        let scim = &scim;
        async move { scim.post("/Groups", &body).await.id() }
    };
    let (fast, whole) = (group("Fast").await, group("Whole").await);
    let remove =
        |i: usize| json!({"op": "remove", "path": format!("members[value eq \"{}\"]", ids[i])});
    let patches = [
        json!([{"op": "add", "path": "members", "value": as_members(&[4, 3, 4])}]),
        json!([remove(0), {"op": "add", "path": "members", "value": as_members(&[5, 0])}, remove(9 % 6)]),
        json!([{"op": "remove", "path": "members", "value": as_members(&[1, 2, 4])},
               {"op": "add", "path": "members", "value": as_members(&[2])}]),
        json!([{"op": "add", "path": "members", "value": [{"value": "not-a-member"}]}]),
        json!([{"op": "add", "path": "members", "value": [{"value": ids[3], "primary": "maybe"}]}]),
        json!([{"op": "add", "path": "members", "value": as_members(&[1])}, remove(1), remove(5)]),
    ];
    let events = |app: &TestApp, since: usize| -> Vec<(String, Option<String>)> {
        let all = app.audit_actions("my-org");
        let mut new: Vec<_> = all[..all.len() - since]
            .iter()
            .map(|(action, _, target)| (action.clone(), target.clone()))
            .collect();
        new.reverse();
        new
    };
    for ops in patches {
        let before = app.audit_actions("my-org").len();
        let by_fast = scim
            .patch(&format!("/Groups/{fast}"), &patch_body(ops.clone()))
            .await;
        let mid = app.audit_actions("my-org").len();
        let fast_events = events(&app, before);
        let mut longer = ops.as_array().unwrap().clone();
        longer.push(json!({"op": "replace", "path": "displayName", "value": "Whole"}));
        let by_whole = scim
            .patch(
                &format!("/Groups/{whole}"),
                &patch_body(Value::Array(longer)),
            )
            .await;
        let whole_events = events(&app, mid);
        assert_eq!(by_fast.status, by_whole.status, "{ops}: {}", by_fast.body);
        assert_eq!(by_fast.scim_type(), by_whole.scim_type(), "{ops}");
        assert_eq!(fast_events, whole_events, "{ops}");
        let members = |id: &str| {
            let scim = &scim;
            let path = format!("/Groups/{id}");
            async move { member_ids(&scim.get(&path).await) }
        };
        assert_eq!(members(&fast).await, members(&whole).await, "{ops}");
    }
    let mut left = vec![ids[0].clone(), ids[2].clone()];
    left.sort();
    assert_eq!(
        member_ids(&scim.get(&format!("/Groups/{fast}")).await),
        left
    );
}

#[actix_web::test]
async fn a_member_of_another_organization_cannot_be_put_in_a_group() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    app.create_org("other-org", "Other Org");
    let stranger = app.add_member("other-org", "s@example.com", "S", "T", "member", false);
    let refused = scim
        .post(
            "/Groups",
            &json!({"displayName": "Ops", "members": [{"value": stranger}]}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.scim_type(), Some("invalidValue"));
    assert_eq!(app.count("groups"), 0, "nothing made");
}

/// Okta and Entra push a large group's members a batch at a time; the cap on one
/// request's changes must not become a cap on the group.
#[actix_web::test]
async fn a_group_grows_past_a_thousand_members_a_thousand_at_a_time() {
    let (app, _admin, scim) = scim_app(&["scim"], "member").await;
    let out = app.run_cli(&["seed-demo", "--org", "my-org", "--members", "3100"]);
    assert!(out.status.success(), "{out:?}");
    let ids = member_user_ids(&app, 3002);
    let as_members =
        |ids: &[String]| -> Vec<Value> { ids.iter().map(|id| json!({"value": id})).collect() };

    let made = scim
        .post(
            "/Groups",
            &json!({"displayName": "Everyone", "members": as_members(&ids[..1000])}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let path = format!("/Groups/{}", made.id());
    let grown = scim
        .patch(
            &path,
            &patch_body(
                json!([{"op": "add", "path": "members", "value": as_members(&ids[1000..2000])}]),
            ),
        )
        .await;
    // Past a thousand members, a change of members is answered 204 No Content: the whole
    // group is what a 200 would carry.
    assert_eq!(grown.status, 204, "{}", grown.body);
    assert_eq!(member_ids(&scim.get(&path).await).len(), 2000);

    let one_left = scim
        .patch(
            &path,
            &patch_body(
                json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]),
            ),
        )
        .await;
    assert_eq!(one_left.status, 204, "{}", one_left.body);
    assert_eq!(app.count("group_members"), 1999);
    let listed = scim.get(&path).await;
    assert!(!member_ids(&listed).contains(&ids[0]));
    // Each 204 carries the group's new version, the one a read gives.
    assert_eq!(one_left.headers["etag"], listed.headers["etag"]);
    assert_ne!(grown.headers["etag"], one_left.headers["etag"]);

    let mut everyone_but_one = ids[1..2000].to_vec();
    everyone_but_one.push(ids[2000].clone());
    let replaced = scim
        .put(
            &path,
            &json!({"displayName": "Everyone", "members": as_members(&everyone_but_one)}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let mut want = everyone_but_one.clone();
    want.sort();
    assert_eq!(member_ids(&replaced), want);

    // Adding 1,001 at once is refused, and nothing is done.
    let too_many = scim
        .patch(
            &path,
            &patch_body(
                json!([{"op": "add", "path": "members", "value": as_members(&ids[2001..3002])}]),
            ),
        )
        .await;
    assert_eq!(too_many.status, 400, "{}", too_many.body);
    assert_eq!(too_many.scim_type(), Some("invalidValue"));
    assert!(
        too_many.detail().contains("at most 1000"),
        "{}",
        too_many.detail()
    );
    assert_eq!(app.count("group_members"), 2000);

    // Removals are not held to the cap: 1,500 listed members go in one request.
    let removed = scim
        .patch(
            &path,
            &patch_body(json!([{"op": "remove", "path": "members", "value": as_members(&everyone_but_one[..1500])}])),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.detail());
    assert_eq!(
        member_ids(&removed).len(),
        500,
        "a thousand or fewer: answered whole"
    );
    assert_eq!(app.count("group_members"), 500);

    // An identity provider empties a group in one request, whatever its size.
    let emptied = scim
        .patch(
            &path,
            &patch_body(json!([{"op": "remove", "path": "members"}])),
        )
        .await;
    assert_eq!(emptied.status, 200, "{}", emptied.body);
    assert_eq!(app.count("group_members"), 0);
}

fn member_user_ids(app: &TestApp, n: i64) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        user_id: String,
    }
    let mut conn = app.conn();
    let conn: &mut portcullis::db::DbConnection = &mut conn;
    diesel::sql_query(format!(
        "SELECT user_id FROM memberships ORDER BY user_id LIMIT {n}"
    ))
    .load::<Row>(conn)
    .unwrap()
    .into_iter()
    .map(|r| r.user_id)
    .collect()
}

/// An identity provider's group change acts for the token's maker: a maker whose access
/// ends cannot, through it, take the lasting admin out of the group that makes them one.
#[actix_web::test]
async fn a_token_of_an_admin_whose_access_ends_cannot_take_the_lasting_admin_out_of_their_group() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    let ada = app.user_id(ADMIN_EMAIL);
    let carol = app.add_member("my-org", "carol@example.com", "Carol", "C", "admin", true);
    let carol_browser = app.member_browser("carol@example.com").await;
    let admin_role = app.role_id("my-org", "admin");
    let (page, token) = crate::api_tokens::create(
        &carol_browser,
        "my-org",
        "Okta",
        &["scim"],
        &admin_role,
        "1",
    )
    .await;
    let token = token.unwrap_or_else(|| panic!("{}", page.body));
    let scim = Scim::new(&app, &token);
    let gid = scim
        .post(
            "/Groups",
            &json!({"displayName": "Admins", "members": [{"value": ada}]}),
        )
        .await
        .id();
    {
        use diesel::prelude::*;
        use portcullis::db::schema::groups;
        let mut conn = app.conn();
        let conn: &mut portcullis::db::DbConnection = &mut conn;
        diesel::update(groups::table.filter(groups::id.eq(&gid)))
            .set(groups::role_id.eq(Some(&admin_role)))
            .execute(conn)
            .unwrap();
    }
    let member = app.role_id("my-org", "member");
    portcullis::db::memberships::set_role(&mut app.conn(), &org, &ada, &member).unwrap();
    let tomorrow = portcullis::db::now() + chrono::Duration::days(1);
    portcullis::db::memberships::set_access_until(&mut app.conn(), &org, &carol, Some(tomorrow))
        .unwrap();

    let removed = scim
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(json!([{"op": "remove", "path": "members"}])),
        )
        .await;
    assert_eq!(removed.status, 409, "{}", removed.body);
    let still = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(member_ids(&still), vec![ada]);
}
