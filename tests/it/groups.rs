use crate::helpers::*;

const ORG: &str = "my-org";

async fn create_group(browser: &Browser, org: &str, fields: &[(&str, &str)]) -> Page {
    let path = format!("/orgs/{org}/groups");
    browser.submit(&path, &path, fields).await
}

#[actix_web::test]
async fn admins_create_groups_and_manage_their_members() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let manager_role = app.role_id(ORG, "manager");
    let created = create_group(
        &admin,
        ORG,
        &[
            ("name", "Ops"),
            ("description", "Night <shift>"),
            ("role_id", &manager_role),
        ],
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let group = location_id(&created);
    let taken = create_group(&admin, ORG, &[("name", "ops")]).await;
    assert_eq!(taken.status, 422);
    assert!(taken.body.contains("already exists"));

    let list = admin.get("/orgs/my-org/groups").await;
    assert!(list.body.contains(&format!("data-id=\"{group}\"")));
    assert!(list.body.contains("Night &#60;shift&#62;"));

    let base = format!("/orgs/my-org/groups/{group}");
    let added = admin
        .submit(&base, &format!("{base}/members"), &[("user_id", &bob)])
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let again = admin
        .submit(&base, &format!("{base}/members"), &[("user_id", &bob)])
        .await;
    // Said on the group's page, at its picker, not on an error page of its own.
    assert_eq!(again.status, 303);
    assert_eq!(again.location.as_deref(), Some(base.as_str()));
    let page = admin.get(&base).await;
    assert!(page.body.contains("bob@example.com is already in Ops."));
    assert!(page.body.contains("data-email=\"bob@example.com\""));
    // Add pressed before anyone was picked (without JavaScript the matches appear only
    // after a search): a 404 page before, now the reason at the picker.
    let unpicked = admin
        .submit(&base, &format!("{base}/members"), &[("user_id", "")])
        .await;
    assert_eq!(unpicked.status, 303);
    let page = admin.get(&base).await;
    assert!(page.body.contains("Choose a member first"), "{}", page.body);

    // The group's role adds to Bob's own.
    let org = app.org_id(ORG);
    let granted = portcullis::db::memberships::group_roles(&mut app.conn(), &org, &bob).unwrap();
    assert_eq!(granted[0].key, "manager");

    let edited = admin
        .submit(
            &base,
            &base,
            &[("name", "Operations"), ("description", ""), ("role_id", "")],
        )
        .await;
    assert_eq!(edited.status, 303);
    // What it was, by name: the role the group lent may be deleted later.
    let (action, details) = app.latest_event(ORG);
    assert_eq!(action, "group.updated");
    assert_eq!(details["old_role"], "Manager");
    assert_eq!(details["role"], serde_json::Value::Null);
    assert!(details.get("old_description").is_some() && details.get("old_owner_id").is_some());

    // The profile's Groups Associated tab lists it with a remove action.
    let tab = admin.get(&format!("/orgs/my-org/users/{bob}/groups")).await;
    assert!(tab.body.contains("Operations"));
    let remove_action = format!("{base}/members/{bob}/remove");
    assert!(tab.body.contains(&remove_action));
    let removed = admin
        .submit(
            &format!("/orgs/my-org/users/{bob}/groups"),
            &remove_action,
            &[("next", &format!("/orgs/my-org/users/{bob}/groups"))],
        )
        .await;
    assert_eq!(removed.status, 303);
    assert_eq!(
        removed.location.as_deref(),
        Some(format!("/orgs/my-org/users/{bob}/groups").as_str())
    );
    let deleted = admin.submit(&base, &format!("{base}/delete"), &[]).await;
    assert_eq!(deleted.status, 303);
    for action in [
        "group.created",
        "group.updated",
        "group.member_added",
        "group.member_removed",
        "group.deleted",
    ] {
        assert_eq!(app.audit_count(ORG, action), 1, "{action}");
    }
}

#[actix_web::test]
async fn group_granted_admin_counts_for_the_last_admin_rule() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let me = app.user_id(ADMIN_EMAIL);
    let admin_role = app.role_id(ORG, "admin");
    let created = create_group(&admin, ORG, &[("name", "Admins"), ("role_id", &admin_role)]).await;
    let group = location_id(&created);
    let base = format!("/orgs/my-org/groups/{group}");
    let added = admin
        .submit(&base, &format!("{base}/members"), &[("user_id", &me)])
        .await;
    assert_eq!(added.status, 303);
    // Now the only admin is one through the group alone.
    app.set_member_role(ORG, &me, "member");
    let removed = admin
        .submit(&base, &format!("{base}/members/{me}/remove"), &[])
        .await;
    assert_eq!(removed.status, 409, "{}", removed.body);
    assert!(removed.body.contains("at least one active admin"));
    let deleted = admin.submit(&base, &format!("{base}/delete"), &[]).await;
    assert_eq!(deleted.status, 409);
    let ungranted = admin
        .submit(&base, &base, &[("name", "Admins"), ("role_id", "")])
        .await;
    assert_eq!(ungranted.status, 409);
    assert_eq!(app.audit_count(ORG, "group.member_removed"), 0);
}

#[actix_web::test]
async fn groups_hold_only_their_own_organizations_members() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other", "Other");
    let outsider = app.add_member("other", "out@example.com", "Out", "Sider", "admin", true);
    let created = create_group(&admin, ORG, &[("name", "Mine")]).await;
    let group = location_id(&created);
    let base = format!("/orgs/my-org/groups/{group}");
    let cross = admin
        .submit(&base, &format!("{base}/members"), &[("user_id", &outsider)])
        .await;
    assert_eq!(cross.status, 404);
    let owner = create_group(&admin, ORG, &[("name", "Theirs"), ("owner_id", &outsider)]).await;
    assert_eq!(owner.status, 422);

    // Another organization's group is not found through this one, nor this one's there.
    let other = app.member_browser("out@example.com").await;
    let theirs = create_group(&other, "other", &[("name", "Elsewhere")]).await;
    let their_group = location_id(&theirs);
    assert_eq!(
        admin
            .get(&format!("/orgs/my-org/groups/{their_group}"))
            .await
            .status,
        404
    );
    let post = admin
        .submit(
            &base,
            &format!("/orgs/my-org/groups/{their_group}/delete"),
            &[],
        )
        .await;
    assert_eq!(post.status, 404);
    assert_eq!(
        other
            .get(&format!("/orgs/other/groups/{group}"))
            .await
            .status,
        404
    );
    assert_eq!(
        other
            .get(&format!("/orgs/my-org/groups/{group}"))
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn members_without_groups_manage_only_read() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let created = create_group(&admin, ORG, &[("name", "Readers")]).await;
    let group = location_id(&created);
    let eve = app.add_member(ORG, "eve@example.com", "Eve", "E", "engineer", true);
    let eve_browser = app.member_browser("eve@example.com").await;
    let page = eve_browser
        .get(&format!("/orgs/my-org/groups/{group}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("/delete"));
    assert_eq!(
        create_group(&eve_browser, ORG, &[("name", "Mine")])
            .await
            .status,
        403
    );
    let base = format!("/orgs/my-org/groups/{group}");
    let add = eve_browser
        .submit(&base, &format!("{base}/members"), &[("user_id", &eve)])
        .await;
    assert_eq!(add.status, 403);
    // A manager cannot make a group grant Admin.
    app.add_member(ORG, "mia@example.com", "Mia", "M", "manager", true);
    let mia = app.member_browser("mia@example.com").await;
    let admin_role = app.role_id(ORG, "admin");
    let above = create_group(&mia, ORG, &[("name", "Sneaky"), ("role_id", &admin_role)]).await;
    assert_eq!(above.status, 422);
}

/// A Manager reads a group that grants Admin but is offered nothing to change in it (each
/// would be refused): not on its page, not on a member's Groups tab, not in the bulk
/// "Add to group…". A group within their reach keeps every control.
#[actix_web::test]
async fn a_manager_is_offered_no_change_to_a_group_granting_a_role_above_theirs() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let admin_role = app.role_id(ORG, "admin");
    let board = location_id(
        &create_group(&admin, ORG, &[("name", "Board"), ("role_id", &admin_role)]).await,
    );
    let crew = location_id(&create_group(&admin, ORG, &[("name", "Crew")]).await);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    for group in [&board, &crew] {
        let base = format!("/orgs/{ORG}/groups/{group}");
        let added = admin
            .submit(&base, &format!("{base}/members"), &[("user_id", &bob)])
            .await;
        assert_eq!(added.status, 303, "{}", added.body);
    }
    app.add_member(ORG, "mia@example.com", "Mia", "M", "manager", true);
    let mia = app.member_browser("mia@example.com").await;

    let page = mia.get(&format!("/orgs/{ORG}/groups/{board}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("grants a role above yours"),
        "{}",
        page.body
    );
    for control in [
        "/delete\"",
        "/remove\"",
        "name=\"user_id\"",
        "name=\"name\"",
    ] {
        assert!(!page.body.contains(control), "{control}: {}", page.body);
    }
    let page = mia.get(&format!("/orgs/{ORG}/groups/{crew}")).await;
    assert!(!page.body.contains("grants a role above yours"));
    for control in ["/delete\"", "/remove\"", "name=\"name\""] {
        assert!(page.body.contains(control), "{control}");
    }

    let tab = mia.get(&format!("/orgs/{ORG}/users/{bob}/groups")).await;
    assert!(
        !tab.body
            .contains(&format!("/groups/{board}/members/{bob}/remove"))
    );
    assert!(
        tab.body
            .contains(&format!("/groups/{crew}/members/{bob}/remove"))
    );
    let users = mia.get(&format!("/orgs/{ORG}/users")).await;
    let bulk_groups = users.body.split("id=\"bulk-group\"").nth(1).unwrap_or("");
    assert!(
        !bulk_groups.contains(&board) && bulk_groups.contains(&crew),
        "{bulk_groups}"
    );
}

/// Someone who manages members but not groups is not offered the bulk "Add to group…",
/// which would be refused.
#[actix_web::test]
async fn bulk_add_to_group_is_offered_only_to_those_who_manage_groups() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    create_group(&admin, ORG, &[("name", "Crew")]).await;
    let (_, keeper) = crate::authz::custom_role_holder(
        &app,
        &admin,
        "Keeper",
        &["users.read", "users.manage"],
        "keeper@example.com",
    )
    .await;
    let users = keeper.get(&format!("/orgs/{ORG}/users")).await;
    assert_eq!(users.status, 200);
    assert!(
        users.body.contains("id=\"bulk-action\""),
        "the bulk form is there"
    );
    assert!(
        !users.body.contains("value=\"add-to-group\""),
        "{}",
        users.body
    );
    let users = admin.get(&format!("/orgs/{ORG}/users")).await;
    assert!(users.body.contains("value=\"add-to-group\""));
}

/// Joining a group that lends a role is taking that role: the trail says which, so a
/// search for how someone came to manage finds it.
#[actix_web::test]
async fn joining_and_leaving_a_group_names_the_role_it_lends() {
    let (app, admin, bob, base) = bob_in_a_group_lending_manager().await;
    let (action, details) = app.latest_event(ORG);
    assert_eq!(action, "group.member_added");
    assert_eq!(details["role"], "Manager");
    let removed = admin
        .submit(&base, &format!("{base}/members/{bob}/remove"), &[])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let (action, details) = app.latest_event(ORG);
    assert_eq!(action, "group.member_removed");
    assert_eq!(details["role"], "Manager");

    let plain = create_group(&admin, ORG, &[("name", "Readers")]).await;
    let plain = format!("/orgs/my-org/groups/{}", location_id(&plain));
    admin
        .submit(&plain, &format!("{plain}/members"), &[("user_id", &bob)])
        .await;
    let (_, details) = app.latest_event(ORG);
    assert_eq!(details["role"], serde_json::Value::Null);
}

#[actix_web::test]
async fn deleting_a_group_records_the_role_it_took_away_and_from_how_many() {
    let (app, admin, _bob, base) = bob_in_a_group_lending_manager().await;
    assert_eq!(
        admin
            .submit(&base, &format!("{base}/delete"), &[])
            .await
            .status,
        303
    );
    let (action, details) = app.latest_event(ORG);
    assert_eq!(action, "group.deleted");
    assert_eq!(details["role"], "Manager");
    assert_eq!(details["role_id"], app.role_id(ORG, "manager").as_str());
    assert_eq!(details["members"], 1);
}

/// An Admin's app in which Bob, a Member, was added to "Ops", a group lending Manager.
/// Answers the app, the Admin, Bob's id and the group's page.
async fn bob_in_a_group_lending_manager() -> (TestApp, Browser, String, String) {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let manager_role = app.role_id(ORG, "manager");
    let created = create_group(&admin, ORG, &[("name", "Ops"), ("role_id", &manager_role)]).await;
    let base = format!("/orgs/my-org/groups/{}", location_id(&created));
    let added = admin
        .submit(&base, &format!("{base}/members"), &[("user_id", &bob)])
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    (app, admin, bob, base)
}

/// The emails of the member rows (`<tr data-id=… data-email=…>`) on a group's or a pool's
/// page, in order.
fn member_rows(html: &str) -> Vec<String> {
    html.split("<tr data-id=\"")
        .skip(1)
        .filter_map(|row| row.split("data-email=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The first `n` emails of the set's members, as the database sorts them.
fn first_emails(app: &TestApp, rows: &str, key: &str, id: &str, n: usize) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Email {
        #[diesel(sql_type = diesel::sql_types::Text)]
        email: String,
    }
    let mut conn = app.conn();
    let conn: &mut portcullis::db::DbConnection = &mut conn;
    use diesel::RunQueryDsl;
    diesel::sql_query(format!(
        "SELECT u.email AS email FROM {rows} r JOIN users u ON u.id = r.user_id \
         WHERE r.{key} = '{id}' ORDER BY u.email LIMIT {n}"
    ))
    .load::<Email>(conn)
    .unwrap()
    .into_iter()
    .map(|e| e.email)
    .collect()
}

/// A group's or pool's page shows its first 500 members by email. A large set is read by
/// walking the organization's email index, checking each member for the set by key, so a
/// group of a million is not sorted to show 500 of it (0.14 s at 200,000 on SQLite); a
/// small set is read by its own key and sorted. Either way the page lists the same
/// members, on both databases.
#[actix_web::test]
async fn a_large_sets_page_walks_the_organization_and_a_small_ones_sorts_the_set() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let out = app.run_cli(&["seed-demo", "--org", ORG, "--members", "2000"]);
    assert!(out.status.success(), "{out:?}");
    let org = app.org_id(ORG);
    let big = location_id(&create_group(&admin, ORG, &[("name", "Everyone")]).await);
    let small = location_id(&create_group(&admin, ORG, &[("name", "Few")]).await);
    let pools = "/orgs/my-org/pools";
    let pond = admin
        .submit(pools, pools, &[("name", "Pond"), ("parent_id", "")])
        .await;
    let pond = location_id(&pond);
    let puddle = admin
        .submit(pools, pools, &[("name", "Puddle"), ("parent_id", "")])
        .await;
    let puddle = location_id(&puddle);
    let engineer = app.role_id(ORG, "engineer");
    // Seeded addresses carry their number before a dot: `%00.%` is every hundredth.
    let fill = |rows: &str, key: &str, id: &str, pattern: &str, extra: &str| {
        format!(
            "INSERT INTO {rows} ({key}, user_id, org_id, created_at{extra}) \
             SELECT '{id}', m.user_id, m.org_id, m.created_at{role} FROM memberships m \
             WHERE m.org_id = '{org}' AND m.email LIKE '{pattern}@demo.example'",
            role = if extra.is_empty() {
                String::new()
            } else {
                format!(", '{engineer}'")
            },
        )
    };
    {
        let mut conn = app.conn();
        let sql = [
            fill("group_members", "group_id", &big, "%", ""),
            fill("group_members", "group_id", &small, "%00.%", ""),
            fill("pool_members", "pool_id", &pond, "%", ", role_id"),
            fill("pool_members", "pool_id", &puddle, "%00.%", ", role_id"),
        ]
        .join(";\n");
        conn.batch_execute(&sql).unwrap();
        if app.db.is_postgres() {
            conn.batch_execute("ANALYZE").unwrap();
        }
    }

    for (set, rows, key, page_of, large) in [
        (&big, "group_members", "group_id", "groups", true),
        (&small, "group_members", "group_id", "groups", false),
        (&pond, "pool_members", "pool_id", "pools", true),
        (&puddle, "pool_members", "pool_id", "pools", false),
    ] {
        let mut conn = app.conn();
        if app.db.is_postgres() {
            conn.batch_execute("SET enable_seqscan = off").unwrap();
        }
        let (walks, sorted, walked) = if page_of == "groups" {
            portcullis::db::groups::explain_members(&mut conn, &org, set, 500)
        } else {
            portcullis::db::pools::explain_members(&mut conn, &org, set, 500)
        }
        .unwrap();
        assert_eq!(walks, large, "{page_of} {set}");
        // The plan each takes (PostgreSQL plans for the set at hand, so only that one).
        if large {
            let walked = walked.join("\n").to_lowercase();
            assert!(walked.contains("memberships_org_email_idx"), "{walked}");
            assert!(
                !walked.contains("temp b-tree") && !walked.contains("sort"),
                "{walked}"
            );
        } else {
            let sorted = sorted.join("\n").to_lowercase();
            assert!(
                !sorted.contains("_user_idx"),
                "read by the set's key: {sorted}"
            );
            assert!(
                sorted.contains("_pkey") || sorted.contains("autoindex"),
                "{sorted}"
            );
        }

        let page = admin.get(&format!("/orgs/{ORG}/{page_of}/{set}")).await;
        assert_eq!(page.status, 200);
        let shown = member_rows(&page.body);
        assert_eq!(shown.len() == 500, large, "{page_of} {set}");
        assert!(!shown.is_empty());
        assert_eq!(
            shown,
            first_emails(&app, rows, key, set, 500),
            "{page_of} {set}"
        );
    }

    // A set whose members all sort late is walked for (a page of ten among 2,001 members
    // from a set of 200), and not met within the walk's budget: its page is sorted instead,
    // and is whole.
    let late = location_id(&create_group(&admin, ORG, &[("name", "Late")]).await);
    let lagoon = admin
        .submit(pools, pools, &[("name", "Lagoon"), ("parent_id", "")])
        .await;
    let lagoon = location_id(&lagoon);
    let last_200 = |rows: &str, key: &str, id: &str, extra: &str, role: &str| {
        format!(
            "INSERT INTO {rows} ({key}, user_id, org_id, created_at{extra}) \
             SELECT '{id}', m.user_id, m.org_id, m.created_at{role} FROM memberships m \
             WHERE m.org_id = '{org}' ORDER BY m.email DESC LIMIT 200"
        )
    };
    app.conn()
        .batch_execute(&format!(
            "{};\n{}",
            last_200("group_members", "group_id", &late, "", ""),
            last_200(
                "pool_members",
                "pool_id",
                &lagoon,
                ", role_id",
                &format!(", '{engineer}'")
            ),
        ))
        .unwrap();
    let mut conn = app.conn();
    let (walks, _, _) =
        portcullis::db::groups::explain_members(&mut conn, &org, &late, 10).unwrap();
    assert!(
        walks,
        "a set of 200 among 2,001 is walked for, for a page of ten"
    );
    let emails = |users: Vec<portcullis::db::users::User>| -> Vec<String> {
        users.into_iter().map(|u| u.email).collect()
    };
    let group_page = portcullis::db::groups::members(&mut conn, &org, &late, 10).unwrap();
    assert_eq!(
        emails(group_page),
        first_emails(&app, "group_members", "group_id", &late, 10)
    );
    let pool_page = portcullis::db::pools::members(&mut conn, &org, &lagoon, 10).unwrap();
    assert_eq!(
        emails(pool_page.into_iter().map(|(u, _)| u).collect()),
        first_emails(&app, "pool_members", "pool_id", &lagoon, 10)
    );
}
