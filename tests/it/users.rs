use crate::helpers::*;

const ORG: &str = "my-org";

fn users_path(rest: &str) -> String {
    format!("/orgs/{ORG}/users{rest}")
}

#[actix_web::test]
async fn users_tab_lists_members_with_every_column() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
    let page = admin.get(&users_path("")).await;
    assert_eq!(page.status, 200);
    for header in [
        "Email",
        "Name",
        "Status",
        "Role",
        "Groups",
        "Created at",
        "Last active",
        "Auth method",
        "Actions",
    ] {
        assert!(page.body.contains(header), "column {header}");
    }
    assert!(
        page.body
            .contains("data-email=\"bob@example.com\" data-status=\"active\" data-role=\"member\"")
    );
    assert!(page.body.contains("Bob Builder"));
    assert!(page.body.contains("Active <strong>2</strong>"));
    assert!(page.body.contains("Inactive <strong>0</strong>"));
    assert!(page.body.contains("data-select-all=\"user_ids\""));
    assert_eq!(row_emails(&page.body), vec![ADMIN_EMAIL, "bob@example.com"]);
}

#[actix_web::test]
async fn search_finds_substrings_of_email_and_name_in_any_case() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(
        ORG,
        "carol.smith@example.com",
        "Carol",
        "Smith",
        "member",
        false,
    );
    app.add_member(ORG, "dave@corp.test", "Dave", "Blacksmith", "member", false);
    app.add_member(ORG, "erin@example.com", "Erin", "Jones", "member", false);

    let smith = admin.get(&users_path("?q=SMITH")).await;
    assert_eq!(
        row_emails(&smith.body),
        vec!["carol.smith@example.com", "dave@corp.test"]
    );
    let corp = admin.get(&users_path("?q=orp.te")).await;
    assert_eq!(row_emails(&corp.body), vec!["dave@corp.test"]);
    let short = admin.get(&users_path("?q=er")).await;
    assert_eq!(row_emails(&short.body), vec!["erin@example.com"]);
    let by_last_name = admin.get(&users_path("?q=jo")).await;
    assert_eq!(row_emails(&by_last_name.body), vec!["erin@example.com"]);
    let none = admin.get(&users_path("?q=zzzz")).await;
    assert!(row_emails(&none.body).is_empty());
    assert!(none.body.contains("No members match"));
    let wildcard = admin.get(&users_path("?q=%25%25%25")).await;
    assert!(
        row_emails(&wildcard.body).is_empty(),
        "% is searched literally"
    );
}

#[actix_web::test]
async fn status_and_role_filters() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "manager", false);
    app.add_member(ORG, "carol@example.com", "Carol", "C", "member", false);
    let form = admin.get(&users_path("")).await;
    admin
        .post(
            &users_path(&format!("/{bob}/deactivate")),
            &[("csrf_token", form.csrf())],
        )
        .await;
    let inactive = admin.get(&users_path("?status=inactive")).await;
    assert_eq!(row_emails(&inactive.body), vec!["bob@example.com"]);
    let active = admin.get(&users_path("?status=active")).await;
    assert_eq!(
        row_emails(&active.body),
        vec![ADMIN_EMAIL, "carol@example.com"]
    );
    let managers = admin.get(&users_path("?role=manager")).await;
    assert_eq!(row_emails(&managers.body), vec!["bob@example.com"]);
    let unknown = admin.get(&users_path("?role=wizard")).await;
    assert_eq!(unknown.status, 200);
    assert!(unknown.body.contains("There is no such role"));
}

#[actix_web::test]
async fn sorting_by_each_column_in_both_directions() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(ORG, "zed@example.com", "Aaron", "Zed", "member", false);
    app.add_member(ORG, "bea@example.com", "Zoe", "Bea", "member", false);
    let emails = |sort: &str| {
        let admin = admin.clone();
        let path = users_path(&format!("?sort={sort}"));
        async move { row_emails(&admin.get(&path).await.body) }
    };
    assert_eq!(
        emails("email").await,
        vec![ADMIN_EMAIL, "bea@example.com", "zed@example.com"]
    );
    assert_eq!(
        emails("-email").await,
        vec!["zed@example.com", "bea@example.com", ADMIN_EMAIL]
    );
    assert_eq!(
        emails("name").await,
        vec!["zed@example.com", ADMIN_EMAIL, "bea@example.com"]
    );
    assert_eq!(
        emails("-name").await,
        vec!["bea@example.com", ADMIN_EMAIL, "zed@example.com"]
    );
    assert_eq!(
        emails("created").await,
        vec![ADMIN_EMAIL, "zed@example.com", "bea@example.com"]
    );
    assert_eq!(
        emails("-created").await,
        vec!["bea@example.com", "zed@example.com", ADMIN_EMAIL]
    );
    // Only the admin has been active; "never" sorts first.
    assert_eq!(emails("-last_active").await[0], ADMIN_EMAIL);
}

#[actix_web::test]
async fn keyset_pages_cover_every_member_exactly_once() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    for i in 0..120 {
        app.add_member(
            ORG,
            &format!("user{i:03}@example.com"),
            "User",
            &format!("{i:03}"),
            "member",
            false,
        );
    }
    for sort in ["email", "-created", "name"] {
        let mut seen = Vec::new();
        let mut path = users_path(&format!("?sort={sort}"));
        let mut pages = 0;
        loop {
            let page = admin.get(&path).await;
            assert_eq!(page.status, 200);
            let emails = row_emails(&page.body);
            assert!(emails.len() <= 50);
            seen.extend(emails);
            pages += 1;
            assert!(pages <= 3, "sort {sort}: too many pages");
            match next_link(&page.body) {
                Some(next) => {
                    assert!(next.contains("cursor="), "{next}");
                    assert!(!next.contains("offset"));
                    path = next;
                }
                None => break,
            }
        }
        assert_eq!(pages, 3, "sort {sort}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 121, "sort {sort}");
        assert_eq!(seen.len(), 121, "sort {sort}");
    }
}

#[actix_web::test]
async fn a_tampered_cursor_shows_the_first_page_with_a_message() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let page = admin
        .get(&users_path("?cursor=garbage!!&sort=created"))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("That page link is no longer valid"));
    assert_eq!(row_emails(&page.body), vec![ADMIN_EMAIL]);
    // ["-5000-01-01 00:00:00.000000","x"]: a year PostgreSQL refuses outright.
    for param in ["cursor", "before"] {
        let ancient = admin
            .get(&users_path(&format!(
                "?{param}=WyItNTAwMC0wMS0wMSAwMDowMDowMC4wMDAwMDAiLCJ4Il0&sort=created"
            )))
            .await;
        assert_eq!(ancient.status, 200, "{param}: {}", ancient.body);
        assert!(ancient.body.contains("That page link is no longer valid"));
    }
}

#[actix_web::test]
async fn profile_tabs_show_details_groups_pools_and_activity() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", true);
    app.member_browser("bob@example.com").await;
    let details = admin.get(&users_path(&format!("/{bob}"))).await;
    assert_eq!(details.status, 200);
    for text in [
        "Bob Builder",
        "bob@example.com",
        "Member",
        "Active sessions",
        "data-sessions=\"1\"",
        "Auth method",
    ] {
        assert!(details.body.contains(text), "{text}");
    }
    for tab in ["groups", "pools", "activity"] {
        let page = admin.get(&users_path(&format!("/{bob}/{tab}"))).await;
        assert_eq!(page.status, 200, "{tab}");
        assert!(page.body.contains("aria-current=\"page\""));
    }
    let form = admin.get(&users_path("")).await;
    admin
        .post(
            &users_path(&format!("/{bob}/deactivate")),
            &[("csrf_token", form.csrf())],
        )
        .await;
    let activity = admin.get(&users_path(&format!("/{bob}/activity"))).await;
    assert!(activity.body.contains("member.deactivated"));
    // Each tab, and the organization, named in the browser's tab.
    assert!(
        activity
            .body
            .contains("<title>Activity · bob@example.com · My organization · Portcullis</title>"),
        "{}",
        activity.body
    );
}

/// A member's Activity tab is a slice of the audit trail: a Member, who may read the
/// Users tab but not the trail, reads their own and not the Admin's, where the Admin's
/// deeds would be (here, the organization's new API token).
#[actix_web::test]
async fn only_those_who_read_the_audit_trail_read_another_members_activity() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let admin_id = app.user_id(ADMIN_EMAIL);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", true);
    let member_role = app.role_id(ORG, "member");
    let (made, _) =
        crate::api_tokens::create(&admin, ORG, "Payroll sync", &["scim"], &member_role, "30").await;
    assert_eq!(made.status, 200, "{}", made.body);
    let own = admin
        .get(&users_path(&format!("/{admin_id}/activity")))
        .await;
    assert!(
        own.body.contains("Payroll sync"),
        "the Admin reads it: {}",
        own.body
    );

    let member = app.member_browser("bob@example.com").await;
    let profile = member.get(&users_path(&format!("/{admin_id}"))).await;
    assert_eq!(profile.status, 200, "{}", profile.body);
    assert!(
        !profile.body.contains("/activity\""),
        "no Activity tab offered: {}",
        profile.body
    );
    let refused = member
        .get(&users_path(&format!("/{admin_id}/activity")))
        .await;
    assert_eq!(refused.status, 403);
    assert!(!refused.body.contains("Payroll sync"));
    let theirs = member.get(&users_path(&format!("/{bob}/activity"))).await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert!(theirs.body.contains("aria-current=\"page\""));
}

/// A role without `users.read` (an auditor, a recruiter) enters the organization on the
/// first tab it may open, from the list of organizations as from the Users tab's own
/// address, and is not shown the tabs it may not open.
#[actix_web::test]
async fn a_role_without_users_read_lands_where_it_may_go() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    for (role, email, lands) in [
        ("Auditor", "audrey@example.com", "audit"),
        ("Recruiter", "rick@example.com", "invitations"),
        ("Bystander", "bea@example.com", "pools"),
    ] {
        let permission = match role {
            "Auditor" => vec!["audit.read"],
            "Recruiter" => vec!["users.invite"],
            _ => vec![],
        };
        let (_, person) =
            crate::authz::custom_role_holder(&app, &admin, role, &permission, email).await;
        let entry = person.get("/orgs").await;
        assert_eq!(
            entry.location.as_deref(),
            Some(users_path("").as_str()),
            "{role}"
        );
        let users = person.get(&users_path("")).await;
        let tab = format!("/orgs/{ORG}/{lands}");
        assert_eq!(users.status, 303, "{role}");
        assert_eq!(users.location.as_deref(), Some(tab.as_str()), "{role}");
        let landed = person.get(&tab).await;
        assert_eq!(landed.status, 200, "{role}: {}", landed.body);
        let tabs = landed
            .body
            .split("aria-label=\"Organization\"")
            .nth(1)
            .unwrap();
        let tabs = tabs.split("</nav>").next().unwrap();
        assert!(
            !tabs.contains(">Users</a>") && !tabs.contains(">Groups</a>"),
            "{role}: {tabs}"
        );
    }
}

#[actix_web::test]
async fn edit_changes_name_and_role_and_is_audited() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
    let engineer = app.role_id(ORG, "engineer");
    let response = admin
        .submit(
            &users_path(&format!("/{bob}")),
            &users_path(&format!("/{bob}")),
            &[
                ("first_name", "Robert"),
                ("last_name", "Builder"),
                ("role_id", &engineer),
            ],
        )
        .await;
    assert_eq!(response.status, 303);
    assert_eq!(app.member_role(ORG, &bob).as_deref(), Some("engineer"));
    let list = admin.get(&users_path("?q=robert")).await;
    assert_eq!(row_emails(&list.body), vec!["bob@example.com"]);
    assert!(list.body.contains("Changes saved."));
    let events = app.audit_actions(ORG);
    assert!(events.iter().any(|(a, actor, target)| a == "member.updated"
        && actor.as_deref() == Some(ADMIN_EMAIL)
        && target.as_deref() == Some("bob@example.com")));
    // The role change reads as one, as it does when made from the list.
    let events =
        portcullis::db::audit_events::latest_for_org(&mut app.conn(), Some(&app.org_id(ORG)), 5)
            .unwrap();
    let changed = events
        .iter()
        .find(|e| e.action == "member.role_changed")
        .expect("the role change is recorded as one");
    let details: serde_json::Value = serde_json::from_str(&changed.details).unwrap();
    assert_eq!(details["old_role"], "Member");
    assert_eq!(details["new_role"], "Engineer");
}

/// An investigator who filters the trail for promotions to Admin finds one made on the
/// profile's form, not only those made with the list's "Make admin".
#[actix_web::test]
async fn a_promotion_on_the_profile_is_found_among_those_made_admin() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
    let admin_role = app.role_id(ORG, "admin");
    let profile = users_path(&format!("/{bob}"));
    let fields = [
        ("first_name", "Bob"),
        ("last_name", "Builder"),
        ("role_id", admin_role.as_str()),
    ];
    let saved = admin.submit(&profile, &profile, &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let found = admin
        .get("/orgs/my-org/audit?action=member.made_admin")
        .await;
    assert_eq!(found.status, 200);
    assert!(found.body.contains("bob@example.com"), "{}", found.body);
    assert_eq!(
        app.audit_count(ORG, "member.updated"),
        0,
        "only the role changed"
    );
}

#[actix_web::test]
async fn edit_with_bad_input_explains_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
    let member = app.role_id(ORG, "member");
    let response = admin
        .submit(
            &users_path(&format!("/{bob}")),
            &users_path(&format!("/{bob}")),
            &[
                ("first_name", "   "),
                ("last_name", "Builder"),
                ("role_id", &member),
            ],
        )
        .await;
    assert_eq!(response.status, 422);
    assert!(response.body.contains("Enter a name."));
    let unknown_role = admin
        .submit(
            &users_path(&format!("/{bob}")),
            &users_path(&format!("/{bob}")),
            &[
                ("first_name", "Bob"),
                ("last_name", "Builder"),
                ("role_id", "nope"),
            ],
        )
        .await;
    assert_eq!(unknown_role.status, 422);
    assert!(unknown_role.body.contains("Choose one of the organization"));
    assert!(
        !app.audit_actions(ORG)
            .iter()
            .any(|(a, _, _)| a == "member.updated")
    );
}

#[actix_web::test]
async fn nobody_grants_a_role_above_their_own() {
    let app = spawn_app().await;
    app.setup_admin().await;
    app.add_member(
        ORG,
        "manager@example.com",
        "Mia",
        "Manager",
        "manager",
        true,
    );
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let manager = app.member_browser("manager@example.com").await;
    let admin_role = app.role_id(ORG, "admin");
    let refused = manager
        .submit(
            &users_path(&format!("/{bob}")),
            &users_path(&format!("/{bob}")),
            &[
                ("first_name", "Bob"),
                ("last_name", "B"),
                ("role_id", &admin_role),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    let make_admin = manager
        .submit(
            &users_path(""),
            &users_path(&format!("/{bob}/make-admin")),
            &[],
        )
        .await;
    assert_eq!(make_admin.status, 403);
    assert_eq!(app.member_role(ORG, &bob).as_deref(), Some("member"));
    // Nor act on someone ranked above them.
    let admin_id = app.user_id(ADMIN_EMAIL);
    let above = manager
        .submit(
            &users_path(""),
            &users_path(&format!("/{admin_id}/deactivate")),
            &[],
        )
        .await;
    assert_eq!(above.status, 403);
    assert_eq!(
        app.membership_status(ORG, &admin_id).as_deref(),
        Some("active")
    );
}

#[actix_web::test]
async fn deactivation_refuses_the_members_very_next_request() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    assert_eq!(bob_browser.get(&users_path("")).await.status, 200);
    let old_cookie = bob_browser.session_cookie().unwrap();

    let response = admin
        .submit(
            &users_path(""),
            &users_path(&format!("/{bob}/deactivate")),
            &[],
        )
        .await;
    assert_eq!(response.status, 303);
    assert_eq!(
        app.membership_status(ORG, &bob).as_deref(),
        Some("inactive")
    );
    // His very next request finds him outside the organization.
    let refused = bob_browser.get(&users_path("")).await;
    assert_eq!(refused.status, 404);

    let response = admin
        .submit(
            &users_path(""),
            &users_path(&format!("/{bob}/activate")),
            &[],
        )
        .await;
    assert_eq!(response.status, 303);
    assert_eq!(app.membership_status(ORG, &bob).as_deref(), Some("active"));
    assert_eq!(
        get_with_cookie(&app.url(&users_path("")), &old_cookie)
            .await
            .status,
        200
    );
    let actions: Vec<String> = app.audit_actions(ORG).into_iter().map(|e| e.0).collect();
    assert!(actions.contains(&"member.deactivated".to_string()));
    assert!(actions.contains(&"member.activated".to_string()));
}

#[actix_web::test]
async fn an_inactive_member_cannot_reach_the_organization() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    admin
        .submit(
            &users_path(""),
            &users_path(&format!("/{bob}/deactivate")),
            &[],
        )
        .await;
    let bob_browser = app.member_browser("bob@example.com").await;
    assert_eq!(bob_browser.get(&users_path("")).await.status, 404);
}

#[actix_web::test]
async fn make_admin_promotes_and_is_audited() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let response = admin
        .submit(
            &users_path(""),
            &users_path(&format!("/{bob}/make-admin")),
            &[],
        )
        .await;
    assert_eq!(response.status, 303);
    assert_eq!(app.member_role(ORG, &bob).as_deref(), Some("admin"));
    assert!(
        app.audit_actions(ORG)
            .iter()
            .any(|(a, _, t)| a == "member.made_admin" && t.as_deref() == Some("bob@example.com"))
    );
}

#[actix_web::test]
async fn the_last_admin_cannot_leave_by_any_route() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let me = app.user_id(ADMIN_EMAIL);
    let member_role = app.role_id(ORG, "member");

    let deactivate = admin
        .submit(
            &users_path(""),
            &users_path(&format!("/{me}/deactivate")),
            &[],
        )
        .await;
    assert_eq!(deactivate.status, 409);
    assert!(deactivate.body.contains("You cannot deactivate yourself"));
    let demote = admin
        .submit(
            &users_path(&format!("/{me}")),
            &users_path(&format!("/{me}")),
            &[
                ("first_name", "Ada"),
                ("last_name", "Admin"),
                ("role_id", &member_role),
                ("confirm_own_role", "yes"),
            ],
        )
        .await;
    assert_eq!(demote.status, 409);
    assert!(demote.body.contains("at least one active admin"));
    let remove = admin
        .submit(
            &users_path(&format!("/{me}/delete")),
            &users_path(&format!("/{me}/delete")),
            &[("confirm_email", ADMIN_EMAIL)],
        )
        .await;
    assert_eq!(remove.status, 409);
    let bulk = admin
        .submit(
            &users_path(""),
            &users_path("/bulk"),
            &[
                ("action", "set-role"),
                ("user_ids", &me),
                ("role_id", &member_role),
            ],
        )
        .await;
    assert_eq!(bulk.status, 200);
    assert!(bulk.body.contains("data-result=\"skipped\""));
    assert!(
        bulk.body
            .contains("bulk actions never change your own membership")
    );

    assert_eq!(app.member_role(ORG, &me).as_deref(), Some("admin"));
    assert_eq!(app.membership_status(ORG, &me).as_deref(), Some("active"));
    assert!(
        !app.audit_actions(ORG)
            .iter()
            .any(|(a, _, _)| a.starts_with("member."))
    );
}

#[actix_web::test]
async fn an_admin_may_step_down_while_another_admin_remains() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member(ORG, "second@example.com", "Sam", "Second", "admin", false);
    let me = app.user_id(ADMIN_EMAIL);
    let own = users_path(&format!("/{me}"));
    let member_role = app.role_id(ORG, "member");
    let fields = [
        ("first_name", "Ada"),
        ("last_name", "Admin"),
        ("role_id", member_role.as_str()),
    ];
    // Stepping down asks first, on a page of its own, and changes nothing until confirmed.
    let asked = admin.submit(&own, &own, &fields).await;
    assert_eq!(asked.status, 409, "{}", asked.body);
    assert!(asked.body.contains("Change your own role to Member?"));
    assert!(
        asked
            .body
            .contains("name=\"confirm_own_role\" value=\"yes\"")
    );
    assert_eq!(app.member_role(ORG, &me).as_deref(), Some("admin"));
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm_own_role", "yes"));
    let response = admin.submit(&own, &own, &confirmed).await;
    assert_eq!(response.status, 303);
    assert_eq!(app.member_role(ORG, &me).as_deref(), Some("member"));
}

#[actix_web::test]
async fn two_admins_deactivating_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    app.setup_admin().await;
    for round in 0..4 {
        let a_email = format!("a{round}@example.com");
        let b_email = format!("b{round}@example.com");
        let a = app.add_member(ORG, &a_email, "A", "A", "admin", true);
        let b = app.add_member(ORG, &b_email, "B", "B", "admin", true);
        // The setup admin steps aside so that A and B are the only admins.
        let ada = app.user_id(ADMIN_EMAIL);
        if round == 0 {
            let member = app.role_id(ORG, "member");
            portcullis::db::memberships::set_role(&mut app.conn(), &app.org_id(ORG), &ada, &member)
                .unwrap();
        }
        let a_browser = app.member_browser(&a_email).await;
        let b_browser = app.member_browser(&b_email).await;
        let a_token = a_browser.get(&users_path("")).await.csrf();
        let b_token = b_browser.get(&users_path("")).await.csrf();
        let (a_path, b_path) = (
            users_path(&format!("/{b}/deactivate")),
            users_path(&format!("/{a}/deactivate")),
        );
        let (a_form, b_form) = ([("csrf_token", a_token)], [("csrf_token", b_token)]);
        let (ra, rb) = tokio::join!(
            a_browser.post(&a_path, &a_form),
            b_browser.post(&b_path, &b_form),
        );
        // The winner is redirected to the profile; the loser is refused (409), finds
        // itself gone from the organization (404) or signed out (303 to /login).
        let winners = [&ra, &rb]
            .iter()
            .filter(|r| {
                r.status == 303 && !r.location.as_deref().unwrap_or("").starts_with("/login")
            })
            .count();
        assert_eq!(winners, 1, "round {round}: {} {}", ra.status, rb.status);
        let still_active = [&a, &b]
            .iter()
            .filter(|id| app.membership_status(ORG, id).as_deref() == Some("active"))
            .count();
        assert_eq!(still_active, 1, "round {round}");
        // Retire the survivor for the next round so only the new pair are admins.
        let survivor = if app.membership_status(ORG, &a).as_deref() == Some("active") {
            &a
        } else {
            &b
        };
        portcullis::db::memberships::set_status(
            &mut app.conn(),
            &app.org_id(ORG),
            survivor,
            "inactive",
        )
        .unwrap();
    }
}

#[actix_web::test]
async fn removing_a_member_needs_the_typed_email() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    let confirm = admin.get(&users_path(&format!("/{bob}/delete"))).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm
            .body
            .contains("Type <strong>bob@example.com</strong> to confirm")
    );
    let wrong = admin
        .post(
            &users_path(&format!("/{bob}/delete")),
            &[
                ("csrf_token", confirm.csrf()),
                ("confirm_email", "bob@example.org".into()),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("email address exactly to confirm"));
    assert_eq!(app.membership_status(ORG, &bob).as_deref(), Some("active"));
    let done = admin
        .post(
            &users_path(&format!("/{bob}/delete")),
            &[
                ("csrf_token", confirm.csrf()),
                ("confirm_email", " BOB@example.com ".into()),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/orgs/my-org/users"));
    assert_eq!(app.membership_status(ORG, &bob), None);
    assert!(
        portcullis::db::users::find(&mut app.conn(), &bob)
            .unwrap()
            .is_some(),
        "the account survives"
    );
    assert!(
        app.audit_actions(ORG)
            .iter()
            .any(|(a, _, t)| a == "member.removed" && t.as_deref() == Some("bob@example.com"))
    );
}

fn insert_group_and_pool(app: &TestApp, owner: &str, member: &str) -> (String, String) {
    use diesel::prelude::*;
    use portcullis::db::schema::{group_members, groups, pool_members, pools};
    let org = app.org_id(ORG);
    let role = app.role_id(ORG, "engineer");
    let (group_id, pool_id) = (portcullis::db::new_id(), portcullis::db::new_id());
    let now = portcullis::db::now();
    let mut conn = app.conn();
    let conn: &mut portcullis::db::DbConnection = &mut conn;
    diesel::insert_into(groups::table)
        .values((
            groups::id.eq(&group_id),
            groups::org_id.eq(&org),
            groups::name.eq("Platform team"),
            groups::description.eq(""),
            groups::owner_id.eq(owner),
            groups::created_at.eq(now),
        ))
        .execute(conn)
        .unwrap();
    diesel::insert_into(group_members::table)
        .values((
            group_members::group_id.eq(&group_id),
            group_members::user_id.eq(member),
            group_members::org_id.eq(&org),
            group_members::created_at.eq(now),
        ))
        .execute(conn)
        .unwrap();
    diesel::insert_into(pools::table)
        .values((
            pools::id.eq(&pool_id),
            pools::org_id.eq(&org),
            pools::name.eq("eu-west"),
            pools::owner_id.eq(owner),
            pools::created_at.eq(now),
        ))
        .execute(conn)
        .unwrap();
    diesel::insert_into(pool_members::table)
        .values((
            pool_members::pool_id.eq(&pool_id),
            pool_members::user_id.eq(member),
            pool_members::org_id.eq(&org),
            pool_members::role_id.eq(&role),
            pool_members::created_at.eq(now),
        ))
        .execute(conn)
        .unwrap();
    (group_id, pool_id)
}

#[actix_web::test]
async fn a_successor_takes_over_what_a_removed_member_owned() {
    use diesel::prelude::*;
    use portcullis::db::schema::{group_members, groups, pool_members, pools};
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "member", false);
    let (group_id, pool_id) = insert_group_and_pool(&app, &bob, &bob);
    let bob_browser = app.member_browser("bob@example.com").await;

    let groups_tab = admin.get(&users_path(&format!("/{bob}/groups"))).await;
    assert!(groups_tab.body.contains("Platform team"));
    let pools_tab = admin.get(&users_path(&format!("/{bob}/pools"))).await;
    assert!(pools_tab.body.contains("eu-west"));

    let confirm = admin.get(&users_path(&format!("/{bob}/delete"))).await;
    assert!(confirm.body.contains("Platform team") && confirm.body.contains("eu-west"));
    let no_successor = admin
        .post(
            &users_path(&format!("/{bob}/delete")),
            &[
                ("csrf_token", confirm.csrf()),
                ("confirm_email", "bob@example.com".into()),
            ],
        )
        .await;
    assert_eq!(no_successor.status, 422);
    assert!(no_successor.body.contains("choose who takes them over"));
    assert!(
        no_successor.body.contains("value=\"bob@example.com\""),
        "typed email kept"
    );
    // A disabled account would hold them where nobody can reach them: not a successor.
    let dave = app.add_member(ORG, "dave@example.com", "Dave", "D", "member", true);
    diesel::update(portcullis::db::schema::users::table.find(&dave))
        .set(portcullis::db::schema::users::status.eq("disabled"))
        .execute(&mut *app.conn() as &mut portcullis::db::DbConnection)
        .unwrap();
    let to_dave = admin
        .post(
            &users_path(&format!("/{bob}/delete")),
            &[
                ("csrf_token", confirm.csrf()),
                ("confirm_email", "bob@example.com".into()),
                ("successor_id", dave),
            ],
        )
        .await;
    assert_eq!(to_dave.status, 422, "{}", to_dave.body);
    assert!(to_dave.body.contains("Choose another active member"));
    let done = admin
        .post(
            &users_path(&format!("/{bob}/delete")),
            &[
                ("csrf_token", confirm.csrf()),
                ("confirm_email", "bob@example.com".into()),
                ("successor_id", carol.clone()),
            ],
        )
        .await;
    assert_eq!(done.status, 303);

    let mut conn = app.conn();
    let conn: &mut portcullis::db::DbConnection = &mut conn;
    let group_owner: Option<String> = groups::table
        .find(&group_id)
        .select(groups::owner_id)
        .first(conn)
        .unwrap();
    let pool_owner: Option<String> = pools::table
        .find(&pool_id)
        .select(pools::owner_id)
        .first(conn)
        .unwrap();
    assert_eq!(group_owner.as_deref(), Some(carol.as_str()));
    assert_eq!(pool_owner.as_deref(), Some(carol.as_str()));
    let left_in_groups: i64 = group_members::table
        .filter(group_members::user_id.eq(&bob))
        .count()
        .get_result(conn)
        .unwrap();
    let left_in_pools: i64 = pool_members::table
        .filter(pool_members::user_id.eq(&bob))
        .count()
        .get_result(conn)
        .unwrap();
    assert_eq!((left_in_groups, left_in_pools), (0, 0));
    assert_eq!(
        bob_browser.get(&users_path("")).await.status,
        404,
        "no longer a member"
    );
}

/// The result of a bulk action is the answer to a POST: refreshing it, or Back then
/// Forward, sends the confirmation again. It must not deactivate a member someone
/// re-activated meanwhile.
#[actix_web::test]
async fn a_bulk_action_sent_again_from_its_confirmation_does_nothing() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let b = app.add_member(ORG, "b@example.com", "B", "B", "member", false);
    let confirm = admin
        .get(&users_path(&format!(
            "/bulk?action=deactivate&user_ids={b}"
        )))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let form_id = hidden_value(&confirm.body, "form_id").expect("the confirmation has an id");
    let sent = [
        ("csrf_token", confirm.csrf()),
        ("action", "deactivate".to_string()),
        ("back", "/orgs/my-org/users".to_string()),
        ("form_id", form_id),
        ("user_ids", b.clone()),
    ];
    let done = admin.post(&users_path("/bulk"), &sent).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(app.membership_status(ORG, &b).as_deref(), Some("inactive"));
    let activated = admin
        .submit(&users_path(""), &users_path(&format!("/{b}/activate")), &[])
        .await;
    assert_eq!(activated.status, 303, "{}", activated.body);

    let again = admin.post(&users_path("/bulk"), &sent).await;
    assert_eq!(again.status, 303);
    assert_eq!(
        again.location.as_deref(),
        Some("/orgs/my-org/users?sort=email")
    );
    assert_eq!(app.membership_status(ORG, &b).as_deref(), Some("active"));
    let list = admin.get("/orgs/my-org/users").await;
    assert!(list.body.contains("already done"), "{}", list.body);
    assert_eq!(app.audit_count(ORG, "member.deactivated"), 1);
}

#[actix_web::test]
async fn bulk_actions_report_each_member() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let b = app.add_member(ORG, "b@example.com", "B", "B", "member", false);
    let c = app.add_member(ORG, "c@example.com", "C", "C", "member", false);
    let other_org = app.create_org("other", "Other");
    let _ = other_org;
    let stranger = app.add_member("other", "stranger@example.com", "S", "S", "member", false);

    let page = admin.get(&users_path("")).await;
    let body = [
        ("csrf_token", page.csrf()),
        ("action", "deactivate".into()),
        ("user_ids", b.clone()),
        ("user_ids", c.clone()),
        ("user_ids", stranger.clone()),
    ];
    let result = admin.post(&users_path("/bulk"), &body).await;
    assert_eq!(result.status, 200);
    assert!(result.body.contains("2 done, 1 skipped"));
    assert!(
        result
            .body
            .contains("data-email=\"b@example.com\" data-result=\"done\"")
    );
    assert!(result.body.contains("Not found."));
    // Another organization's member stays unnamed: the id reads only "not found".
    assert!(
        !result.body.contains("stranger@example.com"),
        "{}",
        result.body
    );
    assert_eq!(app.membership_status(ORG, &b).as_deref(), Some("inactive"));
    assert_eq!(
        app.membership_status("other", &stranger).as_deref(),
        Some("active")
    );

    let engineer = app.role_id(ORG, "engineer");
    let set_role = admin
        .submit(
            &users_path(""),
            &users_path("/bulk"),
            &[
                ("action", "set-role"),
                ("user_ids", &b),
                ("user_ids", &c),
                ("role_id", &engineer),
            ],
        )
        .await;
    assert!(set_role.body.contains("2 done"));
    assert_eq!(app.member_role(ORG, &c).as_deref(), Some("engineer"));

    let activate = admin
        .submit(
            &users_path(""),
            &users_path("/bulk"),
            &[("action", "activate"), ("user_ids", &b), ("user_ids", &c)],
        )
        .await;
    assert!(activate.body.contains("2 done"));
    let again = admin
        .submit(
            &users_path(""),
            &users_path("/bulk"),
            &[("action", "activate"), ("user_ids", &b)],
        )
        .await;
    assert!(again.body.contains("0 done, 1 skipped"));
    assert!(again.body.contains("is already active"));

    let remove = admin
        .submit(
            &users_path(""),
            &users_path("/bulk"),
            &[("action", "remove"), ("user_ids", &c)],
        )
        .await;
    assert!(remove.body.contains("1 done"));
    assert_eq!(app.membership_status(ORG, &c), None);

    let nothing = admin
        .submit(
            &users_path(""),
            &users_path("/bulk"),
            &[("action", "deactivate")],
        )
        .await;
    assert_eq!(nothing.status, 422);
    assert!(nothing.body.contains("Select at least one member."));
    let no_action = admin
        .submit(&users_path(""), &users_path("/bulk"), &[("user_ids", &b)])
        .await;
    assert_eq!(no_action.status, 422);
}

#[actix_web::test]
async fn bulk_add_to_group() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let me = app.user_id(ADMIN_EMAIL);
    let b = app.add_member(ORG, "b@example.com", "B", "B", "member", false);
    let (group_id, _) = insert_group_and_pool(&app, &me, &me);
    let result = admin
        .submit(
            &users_path(""),
            &users_path("/bulk"),
            &[
                ("action", "add-to-group"),
                ("user_ids", &b),
                ("user_ids", &me),
                ("group_id", &group_id),
            ],
        )
        .await;
    assert_eq!(result.status, 200);
    assert!(result.body.contains("1 done, 1 skipped"));
    assert!(result.body.contains("Already in Platform team."));
    let list = admin.get(&users_path("?q=b%40example")).await;
    assert!(list.body.contains("Platform team"));
}

#[actix_web::test]
async fn members_without_users_manage_see_no_actions_and_get_403() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let target = app.add_member(ORG, "target@example.com", "T", "T", "member", false);
    app.add_member(ORG, "reader@example.com", "R", "R", "member", true);
    let reader = app.member_browser("reader@example.com").await;
    let list = reader.get(&users_path("")).await;
    assert_eq!(list.status, 200);
    assert!(!list.body.contains("/deactivate\""));
    assert!(!list.body.contains("action=\"/orgs/my-org/users/bulk\""));
    let profile = reader.get(&users_path(&format!("/{target}"))).await;
    assert!(!profile.body.contains("Make admin"));
    let token = list.csrf();
    for path in ["/deactivate", "/activate", "/make-admin", "/delete", ""] {
        let response = reader
            .post(
                &users_path(&format!("/{target}{path}")),
                &[
                    ("csrf_token", token.clone()),
                    ("confirm_email", "target@example.com".into()),
                    ("first_name", "X".into()),
                    ("last_name", "Y".into()),
                ],
            )
            .await;
        assert_eq!(response.status, 403, "POST {path}");
    }
    let bulk = reader
        .post(
            &users_path("/bulk"),
            &[
                ("csrf_token", token.clone()),
                ("action", "deactivate".into()),
                ("user_ids", target.clone()),
            ],
        )
        .await;
    assert_eq!(bulk.status, 403);
    assert_eq!(
        reader
            .get(&users_path(&format!("/{target}/delete")))
            .await
            .status,
        403
    );
    assert_eq!(
        app.membership_status(ORG, &target).as_deref(),
        Some("active")
    );
}

#[actix_web::test]
async fn other_organizations_stay_invisible() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other", "Other Org");
    let stranger = app.add_member("other", "stranger@example.com", "S", "S", "admin", false);
    assert_eq!(admin.get("/orgs/other/users").await.status, 404);
    assert_eq!(
        admin
            .get(&format!("/orgs/other/users/{stranger}"))
            .await
            .status,
        404
    );
    assert_eq!(
        admin.get(&users_path(&format!("/{stranger}"))).await.status,
        404
    );
    let token = admin.get(&users_path("")).await.csrf();
    for path in ["/deactivate", "/make-admin"] {
        let own_org = admin
            .post(
                &users_path(&format!("/{stranger}{path}")),
                &[("csrf_token", token.clone())],
            )
            .await;
        assert_eq!(own_org.status, 404, "{path} through my org");
        let their_org = admin
            .post(
                &format!("/orgs/other/users/{stranger}{path}"),
                &[("csrf_token", token.clone())],
            )
            .await;
        assert_eq!(their_org.status, 404, "{path} through theirs");
    }
    assert_eq!(
        app.membership_status("other", &stranger).as_deref(),
        Some("active")
    );
    assert_eq!(
        app.member_role("other", &stranger).as_deref(),
        Some("admin")
    );
}

#[actix_web::test]
async fn names_are_escaped() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let evil = app.add_member(
        ORG,
        "evil@example.com",
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "member",
        false,
    );
    for path in [users_path(""), users_path(&format!("/{evil}"))] {
        let page = admin.get(&path).await;
        assert!(!page.body.contains("<script>alert(1)</script>"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path}"
        );
    }
}

#[actix_web::test]
async fn last_active_is_recorded_at_most_once_a_minute() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let me = app.user_id(ADMIN_EMAIL);
    let org = app.org_id(ORG);
    let read = || {
        portcullis::db::memberships::find(&mut app.conn(), &org, &me)
            .unwrap()
            .unwrap()
            .membership
            .last_active()
    };
    admin.get(&users_path("")).await;
    let first = read().expect("recorded on the first request");
    admin.get(&users_path("")).await;
    assert_eq!(read(), Some(first), "not rewritten within a minute");
}

#[actix_web::test]
async fn list_queries_use_an_index_for_filter_and_order() {
    let app = spawn_app().await;
    app.setup_admin().await;
    use diesel::connection::SimpleConnection;
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    if app.db.is_postgres() {
        // Tiny test tables make a full scan look cheapest; ask whether an index *can*
        // serve each sort in page order.
        conn.batch_execute("SET enable_seqscan = off; SET enable_sort = off")
            .unwrap();
    }
    let plans = portcullis::db::memberships::explain_list(&mut conn, &org).unwrap();
    if app.db.is_postgres() {
        conn.batch_execute("RESET enable_seqscan; RESET enable_sort")
            .unwrap();
    }
    for (sort, plan) in plans {
        let lower = plan.to_lowercase();
        assert!(
            lower.contains("memberships_org_"),
            "sort {sort:?} plan: {plan}"
        );
        assert!(
            !lower.contains("temp b-tree for order by"),
            "sort {sort:?} plan: {plan}"
        );
        assert!(
            !lower.contains("seq scan on memberships"),
            "sort {sort:?} plan: {plan}"
        );
        assert!(
            !lower.lines().any(|l| l
                .trim_start()
                .trim_start_matches("->")
                .trim_start()
                .starts_with("sort")),
            "sort {sort:?} plan: {plan}"
        );
    }
}

/// The last-admin check runs under the organization's lock, several times per change: it
/// reads who holds an admin role from the role index and checks them by key, never
/// walking the organization's members (1.4 s at a million, when the one admin sorted last).
#[actix_web::test]
async fn the_last_admin_check_reads_the_admins_not_the_organization() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    app.setup_admin().await;
    let out = app.run_cli(&["seed-demo", "--org", ORG, "--members", "2000"]);
    assert!(out.status.success(), "{out:?}");
    let org = app.org_id(ORG);
    let admins = vec![app.role_id(ORG, "admin")];
    let me = vec![app.user_id(ADMIN_EMAIL)];
    let mut conn = app.conn();
    if app.db.is_postgres() {
        conn.batch_execute("ANALYZE memberships; SET enable_seqscan = off")
            .unwrap();
    }
    let plan = portcullis::db::memberships::explain_admin_check(&mut conn, &org, &admins, &me)
        .unwrap()
        .join("\n");
    let lower = plan.to_lowercase();
    assert!(lower.contains("memberships_org_role_idx"), "{plan}");
    assert!(
        [
            "sqlite_autoindex_memberships_1",
            "memberships_org_id_user_id_key",
            "memberships_user_idx"
        ]
        .iter()
        .any(|by_user| lower.contains(by_user)),
        "{plan}"
    );
    assert!(!lower.contains("org_status"), "{plan}");
    assert!(!lower.contains("scan memberships"), "{plan}");
    assert!(!lower.contains("seq scan"), "{plan}");
}

/// Whether an active admin remains is answered alike however many hold admin: a few
/// hundred checked a chunk at a time (the active one last), or thousands, inactive but one.
#[actix_web::test]
async fn an_active_admin_is_found_among_any_number_of_inactive_ones() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    app.setup_admin().await;
    let out = app.run_cli(&["seed-demo", "--org", ORG, "--members", "5200"]);
    assert!(out.status.success(), "{out:?}");
    let org = app.org_id(ORG);
    let admin = app.role_id(ORG, "admin");
    let member = app.role_id(ORG, "member");
    let me = app.user_id(ADMIN_EMAIL);
    let mut conn = app.conn();
    let mut run = |sql: String| conn.batch_execute(&sql).unwrap();
    let set_me = |status: &str| {
        format!(
            "UPDATE memberships SET status = '{status}' WHERE org_id = '{org}' AND user_id = '{me}'"
        )
    };
    let admins = vec![admin.clone()];
    let any = |app: &TestApp| {
        portcullis::db::memberships::any_active_admin(&mut app.conn(), &org, &admins, None).unwrap()
    };
    run(format!(
        "UPDATE memberships SET role_id = '{admin}', status = 'inactive' \
         WHERE org_id = '{org}' AND user_id <> '{me}'"
    ));
    run(set_me("inactive"));
    assert!(!any(&app), "thousands hold admin, none active");
    let last_by = |key: &str, status: &str| {
        format!(
            "UPDATE memberships SET status = '{status}' WHERE org_id = '{org}' AND user_id = \
             (SELECT user_id FROM memberships WHERE org_id = '{org}' AND role_id = '{admin}' \
              AND user_id <> '{me}' ORDER BY {key} DESC LIMIT 1)"
        )
    };
    run(last_by("email", "active"));
    assert!(any(&app), "thousands hold admin, the last by email active");
    run(last_by("email", "inactive"));
    // Keep 1,200 holders, the one active among them the last by id.
    run(format!(
        "UPDATE memberships SET role_id = '{member}' WHERE org_id = '{org}' AND user_id IN \
         (SELECT user_id FROM memberships WHERE org_id = '{org}' ORDER BY user_id LIMIT 4000)"
    ));
    assert!(!any(&app), "1,200 hold admin, none active");
    run(last_by("user_id", "active"));
    assert!(any(&app), "1,200 hold admin, the last by id active");
}

/// One prepared statement of the page query as PostgreSQL's view lists it.
#[derive(diesel::QueryableByName)]
struct PreparedPage {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generic_plans: i64,
}

/// PostgreSQL plans the Users tab's page query once per connection and then reuses the
/// plan: with the page size bound as a parameter, its generic plan (made for "a tenth of
/// the rows") was a parallel scan and sort, so it planned the statement afresh on every
/// page view, 0.4 ms of each. The plan it keeps must still walk the organization's email
/// index in page order, and on both databases the page is its first 51 members.
#[actix_web::test]
async fn the_page_query_keeps_one_plan_that_walks_the_index() {
    use diesel::prelude::*;
    use portcullis::db::memberships::{self, ListFilter, SortKey};
    let app = spawn_app().await;
    app.setup_admin().await;
    portcullis::seed_members::seed_members(&mut app.conn(), ORG, 3_000, |_| {}).unwrap();
    let org = app.org_id(ORG);
    let mut conn = app.conn();
    let mut emails: Vec<String> = portcullis::db::schema::memberships::table
        .filter(portcullis::db::schema::memberships::org_id.eq(&org))
        .select(portcullis::db::schema::memberships::email)
        .load(&mut *conn)
        .unwrap();
    emails.sort();
    emails.truncate(51);
    let filter = ListFilter::everyone(SortKey::Email, false, 51);
    // PostgreSQL weighs a generic plan after five executions of a statement.
    for _ in 0..8 {
        let page = memberships::list_page(&mut conn, &org, &filter).unwrap();
        let shown: Vec<&str> = page.iter().map(|r| r.membership.email.as_str()).collect();
        assert_eq!(shown, emails);
    }
    let portcullis::db::DbConnection::Postgresql(pg) = &mut *conn else {
        return;
    };
    let prepared: Vec<PreparedPage> = diesel::sql_query(
        "SELECT name, generic_plans FROM pg_prepared_statements \
         WHERE statement LIKE '%INNER JOIN \"users\"%ORDER BY \"memberships\".\"email\" ASC%LIMIT%'",
    )
    .load(pg)
    .unwrap();
    assert_eq!(prepared.len(), 1, "one page statement");
    assert!(
        prepared[0].generic_plans >= 2,
        "planned on every execution: {} generic plans",
        prepared[0].generic_plans
    );
    // The cached plan, as the page views run it.
    let plan: Vec<String> =
        diesel::sql_query(format!("EXPLAIN EXECUTE {}('{}')", prepared[0].name, org))
            .load::<PlanText>(pg)
            .unwrap()
            .into_iter()
            .map(|l| l.0)
            .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("$1"), "not the generic plan: {plan}");
    assert!(plan.contains("memberships_org_email_idx"), "{plan}");
    assert!(!plan.contains("Sort") && !plan.contains("Gather"), "{plan}");
}

/// A line of PostgreSQL's `EXPLAIN`.
struct PlanText(String);

impl diesel::QueryableByName<diesel::pg::Pg> for PlanText {
    fn build<'a>(
        row: &impl diesel::row::NamedRow<'a, diesel::pg::Pg>,
    ) -> diesel::deserialize::Result<Self> {
        Ok(PlanText(diesel::row::NamedRow::get::<
            diesel::sql_types::Text,
            String,
        >(row, "QUERY PLAN")?))
    }
}

/// Marks an account as signing in with a second factor (the column and filter read it).
fn uses_totp(app: &TestApp, user_id: &str) {
    portcullis::db::two_factor::set_auth_method(&mut app.conn(), user_id, "password+totp").unwrap();
}

/// Every email of a filtered list, following its "next page" links.
async fn all_pages(browser: &Browser, first: &str, keep: &str) -> Vec<String> {
    let (mut seen, mut path) = (Vec::new(), first.to_string());
    for _ in 0..10 {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        seen.extend(row_emails(&page.body));
        match next_link(&page.body) {
            Some(next) => {
                assert!(next.contains(keep), "{next} keeps {keep}");
                path = next;
            }
            None => return seen,
        }
    }
    panic!("too many pages from {first}");
}

#[actix_web::test]
async fn the_auth_method_filter_keeps_to_its_members_with_other_filters_and_across_pages() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let mut totp = Vec::new();
    for i in 0..60 {
        let email = format!("totp{i:02}@example.com");
        uses_totp(
            &app,
            &app.add_member(ORG, &email, "T", "Otp", "member", false),
        );
        totp.push(email);
    }
    for i in 0..5 {
        let email = format!("boss{i}@example.com");
        uses_totp(
            &app,
            &app.add_member(ORG, &email, "B", "Oss", "manager", false),
        );
        totp.push(email);
    }
    let mut password = vec![ADMIN_EMAIL.to_string()];
    for i in 0..30 {
        let email = format!("plain{i:02}@example.com");
        app.add_member(ORG, &email, "P", "Lain", "member", false);
        password.push(email);
    }
    // Another organization's member with a second factor never shows here.
    app.create_org("other-org", "Other");
    let outsider = app.add_member(
        "other-org",
        "outsider@example.com",
        "O",
        "S",
        "member",
        false,
    );
    uses_totp(&app, &outsider);

    // The column names the method; the select is labelled and keeps the choice.
    let first = admin.get(&users_path("?auth=totp")).await;
    assert!(
        first
            .body
            .contains("<label for=\"auth\">Auth method</label>")
    );
    assert!(first.body.contains("<option value=\"totp\" selected>"));
    let cell = |method: &str| format!("data-label=\"Auth method\">{method}</td>");
    assert_eq!(first.body.matches(&cell("Password + TOTP")).count(), 50);
    assert!(!first.body.contains(&cell("Password")));
    // Sorting keeps the filter too.
    assert!(
        first
            .body
            .contains("href=\"/orgs/my-org/users?auth=totp&#38;sort=name\"")
    );

    let mut seen = all_pages(&admin, &users_path("?auth=totp"), "auth=totp").await;
    seen.sort();
    totp.sort();
    assert_eq!(seen, totp);
    let mut seen = all_pages(
        &admin,
        &users_path("?auth=password&sort=-created"),
        "auth=password",
    )
    .await;
    seen.sort();
    password.sort();
    assert_eq!(seen, password);

    // With another filter: both hold.
    let managers = admin.get(&users_path("?auth=totp&role=manager")).await;
    let mut emails = row_emails(&managers.body);
    emails.sort();
    assert_eq!(
        emails,
        (0..5)
            .map(|i| format!("boss{i}@example.com"))
            .collect::<Vec<_>>()
    );
    let searched = admin.get(&users_path("?auth=password&q=plain0")).await;
    assert_eq!(row_emails(&searched.body).len(), 10);
    let none = admin.get(&users_path("?auth=password&role=manager")).await;
    assert!(row_emails(&none.body).is_empty());
}

#[actix_web::test]
async fn an_unknown_auth_method_is_ignored_with_a_message() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    uses_totp(&app, &bob);
    let page = admin.get(&users_path("?auth=sms")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("There is no such auth method"),
        "{}",
        page.body
    );
    assert_eq!(row_emails(&page.body), vec![ADMIN_EMAIL, "bob@example.com"]);
    for hostile in [
        "?auth=password%2Btotp",
        "?auth=%27%20OR%201%3D1%20--",
        "?auth=totp&auth=password",
        "?auth=",
        &format!("?auth={}", "x".repeat(5000)),
    ] {
        let page = admin.get(&users_path(hostile)).await;
        assert!(page.status < 500, "{hostile}: {}", page.status);
        if page.status == 200 {
            assert!(
                row_emails(&page.body).contains(&"bob@example.com".to_string()),
                "{hostile}"
            );
        }
    }
}

#[actix_web::test]
async fn a_refused_bulk_action_keeps_the_selection_and_the_filters() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let b = app.add_member(ORG, "b@team.example", "B", "B", "member", false);
    let c = app.add_member(ORG, "c@team.example", "C", "C", "member", false);
    // "Add to group…" is offered once there is a group to add to.
    let groups = format!("/orgs/{ORG}/groups");
    let crew = admin.submit(&groups, &groups, &[("name", "Crew")]).await;
    assert_eq!(crew.status, 303, "{}", crew.body);
    let list = admin.get(&users_path("?q=team&sort=-email")).await;
    let back = hidden_value(&list.body, "back")
        .expect("the bulk form says where it was sent from")
        .replace("&#38;", "&");
    assert!(
        back.contains("q=team") && back.contains("sort=-email"),
        "{back}"
    );

    // "Change role" with no role chosen: the same list again, both still ticked, the
    // choice kept, the reason by the form.
    let query = serde_urlencoded::to_string([
        ("back", back.as_str()),
        ("action", "set-role"),
        ("user_ids", b.as_str()),
        ("user_ids", c.as_str()),
    ])
    .unwrap();
    let refused = admin.get(&users_path(&format!("/bulk?{query}"))).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("id=\"bulk-error\""));
    assert!(refused.body.contains("Choose the role to give."));
    for id in [&b, &c] {
        assert!(
            refused.body.contains(&format!(
                "value=\"{id}\" form=\"bulk\" id=\"select-{id}\" aria-label=\"Select"
            )),
            "{}",
            refused.body
        );
        let boxed = refused
            .body
            .split(&format!("id=\"select-{id}\""))
            .nth(1)
            .unwrap();
        assert!(
            boxed[..boxed.find('>').unwrap()].contains("checked"),
            "{id} ticked"
        );
    }
    assert!(refused.body.contains("value=\"set-role\" selected"));
    assert!(
        refused
            .body
            .contains("id=\"q\" name=\"q\" type=\"search\" value=\"team\"")
    );
    assert!(refused.body.contains("value=\"-email\" selected"));
    assert!(
        !refused.body.contains("data-email=\"admin@example.com\""),
        "still filtered"
    );

    // Confirmed, then refused on the way in: the same again from the POST.
    let csrf = refused.csrf();
    let posted = admin
        .post(
            &users_path("/bulk"),
            &[
                ("csrf_token", csrf),
                ("back", back.clone()),
                ("action", "add-to-group".into()),
                ("user_ids", b.clone()),
            ],
        )
        .await;
    assert_eq!(posted.status, 422);
    assert!(posted.body.contains("Choose the group."));
    assert!(posted.body.contains("value=\"add-to-group\" selected"));

    // The confirmation's Cancel and the results' way back lead to the filtered list.
    let query = serde_urlencoded::to_string([
        ("back", back.as_str()),
        ("action", "deactivate"),
        ("user_ids", b.as_str()),
    ])
    .unwrap();
    let confirm = admin.get(&users_path(&format!("/bulk?{query}"))).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Deactivate 1 member?"));
    assert!(
        confirm
            .body
            .contains("href=\"/orgs/my-org/users?q=team&#38;sort=-email\""),
        "{}",
        confirm.body
    );
    // A `back` pointing elsewhere still leads to this organization's Users tab.
    let evil = serde_urlencoded::to_string([
        ("back", "https://evil.example/x?q=a"),
        ("action", "deactivate"),
        ("user_ids", b.as_str()),
    ])
    .unwrap();
    let confirm = admin.get(&users_path(&format!("/bulk?{evil}"))).await;
    assert!(!confirm.body.contains("evil.example"));
}

/// The inline role select, forged or refused: the person is sent back to the same
/// filtered list with the reason, nothing changes, and nothing is audited.
#[actix_web::test]
async fn an_inline_role_change_to_a_role_not_offered_goes_back_to_the_list_with_why() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", false);
    app.create_org("other-org", "Other");
    let foreign_admin_role = app.role_id("other-org", "admin");
    let filtered = users_path("?q=bob&sort=email");
    let events_before = app.audit_actions(ORG).len();

    for role_id in [foreign_admin_role.as_str(), "", "no-such-role"] {
        let response = admin
            .submit(
                &filtered,
                &users_path(&format!("/{bob}/role")),
                &[("role_id", role_id), ("next", &filtered)],
            )
            .await;
        assert_eq!(response.status, 303, "role {role_id:?}");
        assert_eq!(response.location.as_deref(), Some(filtered.as_str()));
        let list = admin.get(&filtered).await;
        let flash = list
            .body
            .split("flash-error\">")
            .nth(1)
            .unwrap_or_else(|| panic!("no error flash for {role_id:?}"));
        assert!(
            flash.starts_with("Choose one of the organization&#39;s roles.</p>"),
            "the reason is shown on the list for {role_id:?}: {}",
            &flash[..flash.len().min(200)]
        );
    }
    assert_eq!(app.member_role(ORG, &bob).as_deref(), Some("member"));
    assert_eq!(app.audit_actions(ORG).len(), events_before);

    // A real change still lands on the same page, with its own message.
    let engineer = app.role_id(ORG, "engineer");
    let response = admin
        .submit(
            &filtered,
            &users_path(&format!("/{bob}/role")),
            &[("role_id", &engineer), ("next", &filtered)],
        )
        .await;
    assert_eq!(response.location.as_deref(), Some(filtered.as_str()));
    assert_eq!(app.member_role(ORG, &bob).as_deref(), Some("engineer"));
}

/// Saving a profile as it stands said "Changes saved."; it says nothing changed (not in
/// a success's colours), and records nothing.
#[actix_web::test]
async fn saving_a_profile_unchanged_says_nothing_changed() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let profile = users_path(&format!("/{bob}"));
    let member = app.role_id(ORG, "member");
    let same = [
        ("first_name", "Bob"),
        ("last_name", "B"),
        ("role_id", member.as_str()),
        ("access_until", ""),
    ];
    let saved = admin.submit(&profile, &profile, &same).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = admin.get(&profile).await;
    assert!(
        page.body
            .contains("<p class=\"flash flash-info\">Nothing changed.</p>"),
        "said plainly, not as a success: {}",
        page.body
    );
    assert!(!page.body.contains("Changes saved."));
    assert_eq!(app.audit_count(ORG, "member.updated"), 0);

    let renamed = [
        ("first_name", "Robert"),
        ("last_name", "B"),
        ("role_id", member.as_str()),
    ];
    admin.submit(&profile, &profile, &renamed).await;
    assert!(admin.get(&profile).await.body.contains("Changes saved."));
    assert_eq!(app.audit_count(ORG, "member.updated"), 1);
}

/// A Manager was offered Deactivate, Make admin and Remove on every other row and
/// profile, and Admin in the bulk role list; each answered 403 and lost the filtered
/// list. Only what the rules allow is offered now.
#[actix_web::test]
async fn a_manager_is_offered_only_the_actions_the_rules_allow() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let ada = app.user_id(ADMIN_EMAIL);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    app.add_member(ORG, "mia@example.com", "Mia", "M", "manager", true);
    let mia = app.member_browser("mia@example.com").await;
    let list = mia.get(&users_path("")).await;
    assert_eq!(list.status, 200);
    for (user, may) in [(&ada, false), (&bob, true)] {
        for action in ["deactivate", "delete"] {
            let link = format!("/orgs/my-org/users/{user}/{action}");
            assert_eq!(list.body.contains(&link), may, "{link}");
        }
        assert!(
            !list
                .body
                .contains(&format!("/orgs/my-org/users/{user}/make-admin"))
        );
    }
    let admin_role = app.role_id(ORG, "admin");
    let bulk_roles = list.body.split("id=\"bulk-role\"").nth(1).unwrap();
    let bulk_roles = bulk_roles.split("</select>").next().unwrap();
    assert!(!bulk_roles.contains(&admin_role), "{bulk_roles}");
    assert!(bulk_roles.contains(&app.role_id(ORG, "member")));

    let profile = mia.get(&users_path(&format!("/{ada}"))).await;
    assert_eq!(profile.status, 200);
    // Saving an Admin's details is refused to a Manager: no form to lose the typing in.
    assert!(
        !profile.body.contains("name=\"first_name\""),
        "{}",
        profile.body
    );
    for action in ["deactivate", "make-admin", "delete"] {
        assert!(
            !profile
                .body
                .contains(&format!("/orgs/my-org/users/{ada}/{action}"))
        );
    }
    let profile = mia.get(&users_path(&format!("/{bob}"))).await;
    assert!(profile.body.contains("name=\"first_name\""));
    assert!(
        profile
            .body
            .contains(&format!("/orgs/my-org/users/{bob}/deactivate"))
    );
    assert!(
        !profile
            .body
            .contains(&format!("/orgs/my-org/users/{bob}/make-admin"))
    );
}

/// How many browsers are signed in is the account's, in every organization: a sign of
/// presence elsewhere. The member sees theirs, and so does whoever manages members while
/// the account is this organization's alone; a fellow member does not.
#[actix_web::test]
async fn a_members_sessions_are_shown_to_them_and_to_those_who_manage_members() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let own = bob_browser.get(&users_path(&format!("/{bob}"))).await;
    assert!(own.body.contains("data-sessions=\"1\""), "{}", own.body);
    let managed = admin.get(&users_path(&format!("/{bob}"))).await;
    assert!(
        managed.body.contains("data-sessions=\"1\""),
        "{}",
        managed.body
    );

    let ada = app.user_id(ADMIN_EMAIL);
    let fellow = bob_browser.get(&users_path(&format!("/{ada}"))).await;
    assert_eq!(fellow.status, 200, "{}", fellow.body);
    assert!(fellow.body.contains(ADMIN_EMAIL));
    assert!(!fellow.body.contains("Active sessions"), "{}", fellow.body);

    // Bob in a second organization: his sessions are no longer this one's to read.
    app.create_org("elsewhere", "Elsewhere");
    app.add_member(
        "elsewhere",
        "bob@example.com",
        "Bob",
        "Builder",
        "member",
        true,
    );
    let shared = admin.get(&users_path(&format!("/{bob}"))).await;
    assert_eq!(shared.status, 200, "{}", shared.body);
    assert!(!shared.body.contains("Active sessions"), "{}", shared.body);
}
