use crate::helpers::*;

fn setup_link(body: &str) -> String {
    let start = body.find("data-setup-link>").expect("setup link shown") + "data-setup-link>".len();
    let end = body[start..].find('<').unwrap() + start;
    unescape(&body[start..end])
}

#[actix_web::test]
async fn platform_admins_create_organizations_with_a_first_admin() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let page = admin.get("/admin/orgs").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-slug=\"my-org\""));

    let created = admin
        .submit(
            "/admin/orgs",
            "/admin/orgs",
            &[
                ("name", "Acme"),
                ("slug", "acme"),
                ("admin_email", "Boss@Acme.test"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let link = setup_link(&created.body);
    assert!(link.contains("/setup/"));
    let path = &link[link.find("/setup/").unwrap()..];
    assert_eq!(
        admin
            .client
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let boss = app.user_id("boss@acme.test");
    assert_eq!(app.member_role("acme", &boss).as_deref(), Some("admin"));
    assert_eq!(app.audit_count("acme", "org.created"), 1);

    // An existing account nobody has opened yet (no password) is simply added as Admin,
    // with no link; so is the platform admin's own. Other accounts are invited by email
    // (`an_organization_goes_to_whoever_reads_the_mail_not_whoever_chose_the_password`).
    app.add_member("my-org", "bob@example.com", "Bob", "B", "member", false);
    let existing = admin
        .submit(
            "/admin/orgs",
            "/admin/orgs",
            &[
                ("name", "Bobco"),
                ("slug", "bobco"),
                ("admin_email", "bob@example.com"),
            ],
        )
        .await;
    assert_eq!(existing.status, 201);
    assert!(!existing.body.contains("data-setup-link"));
    let bob = app.user_id("bob@example.com");
    assert_eq!(app.member_role("bobco", &bob).as_deref(), Some("admin"));
    let own = admin
        .submit(
            "/admin/orgs",
            "/admin/orgs",
            &[("name", "Selfco"), ("admin_email", ADMIN_EMAIL)],
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.body);
    assert!(!own.body.contains("data-first-admin-invited"));
    let me = app.user_id(ADMIN_EMAIL);
    assert_eq!(app.member_role("selfco", &me).as_deref(), Some("admin"));

    let taken = admin
        .submit(
            "/admin/orgs",
            "/admin/orgs",
            &[
                ("name", "Acme 2"),
                ("slug", "acme"),
                ("admin_email", "x@acme.test"),
            ],
        )
        .await;
    assert_eq!(taken.status, 422);
    let bad = admin
        .submit(
            "/admin/orgs",
            "/admin/orgs",
            &[("name", ""), ("admin_email", "nope")],
        )
        .await;
    assert_eq!(bad.status, 422);
}

#[actix_web::test]
async fn platform_admins_create_accounts_and_add_them_to_organizations() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other", "Other");
    let org = app.org_id("my-org");
    let group = {
        let mut conn = app.conn();
        portcullis::db::groups::insert(&mut conn, &org, "Ops", "", None, None).unwrap()
    };
    let created = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("email", "new@example.com"),
                ("first_name", "New"),
                ("last_name", "Person"),
                ("org", "my-org"),
                ("role_id", "engineer"),
                ("group_ids", &group),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(setup_link(&created.body).contains("/setup/"));
    let new = app.user_id("new@example.com");
    assert_eq!(app.member_role("my-org", &new).as_deref(), Some("engineer"));
    assert!(portcullis::db::groups::is_member(&mut app.conn(), &group, &new).unwrap());
    assert_eq!(app.audit_count("my-org", "admin.user_created"), 1);

    let list = admin.get("/admin/users").await;
    assert!(list.body.contains("data-email=\"new@example.com\""));
    assert!(list.body.contains("My organization (Engineer)"));

    let joined = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{new}/memberships"),
            &[("org", "other"), ("role_id", "manager")],
        )
        .await;
    assert_eq!(joined.status, 303);
    assert_eq!(app.member_role("other", &new).as_deref(), Some("manager"));
    assert_eq!(app.audit_count("other", "admin.membership_added"), 1);
    let twice = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{new}/memberships"),
            &[("org", "other"), ("role_id", "manager")],
        )
        .await;
    // Said back on the account list, not on an error page of its own.
    assert_eq!(twice.status, 303);
    assert_eq!(twice.location.as_deref(), Some("/admin/users"));
    let list = admin.get("/admin/users").await;
    assert!(list.body.contains("already"), "{}", list.body);
    assert_eq!(app.audit_count("other", "admin.membership_added"), 1);
    let dup = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("email", "new@example.com"),
                ("first_name", "A"),
                ("last_name", "B"),
                ("org", "my-org"),
                ("role_id", "member"),
            ],
        )
        .await;
    assert_eq!(dup.status, 422);
}

#[actix_web::test]
async fn disabled_accounts_cannot_sign_in_and_their_sessions_end() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    assert_eq!(bob_browser.get("/orgs/my-org/users").await.status, 200);
    let disabled = admin
        .submit("/admin/users", &format!("/admin/users/{bob}/disable"), &[])
        .await;
    assert_eq!(disabled.status, 303);
    let after = bob_browser.get("/orgs/my-org/users").await;
    assert_eq!(after.status, 303);
    assert!(after.location.unwrap().starts_with("/login"));
    assert_eq!(
        app.client()
            .login("bob@example.com", MEMBER_PASSWORD)
            .await
            .status,
        401
    );
    let me = app.user_id(ADMIN_EMAIL);
    let myself = admin
        .submit("/admin/users", &format!("/admin/users/{me}/disable"), &[])
        .await;
    assert_eq!(myself.status, 303, "{}", myself.body);
    let said = admin.get("/admin/users").await;
    assert!(said.body.contains("flash flash-error"), "{}", said.body);
    assert_eq!(
        app.count("users WHERE email = 'admin@example.com' AND status = 'active'"),
        1,
        "not disabled"
    );
    let enabled = admin
        .submit("/admin/users", &format!("/admin/users/{bob}/enable"), &[])
        .await;
    assert_eq!(enabled.status, 303);
    assert_eq!(
        app.client()
            .login("bob@example.com", MEMBER_PASSWORD)
            .await
            .status,
        303
    );
    let mut conn = app.conn();
    let platform = portcullis::db::audit_events::latest_for_org(&mut conn, None, 100).unwrap();
    let actions: Vec<&str> = platform.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"admin.user_disabled"));
    assert!(actions.contains(&"admin.user_enabled"));
}

#[actix_web::test]
async fn operators_read_and_change_nothing_others_are_refused() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);
    app.add_member("my-org", "op@example.com", "Op", "Erator", "member", true);
    app.set_platform_role("op@example.com", "operator");
    let op = app.member_browser("op@example.com").await;
    let orgs = op.get("/admin/orgs").await;
    assert_eq!(orgs.status, 200);
    assert!(!orgs.body.contains("New organization"));
    assert!(orgs.body.contains("Platform administration"));
    let users = op.get("/admin/users").await;
    assert_eq!(users.status, 200);
    assert!(!users.body.contains("/disable"));
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/admin/orgs".into(),
            vec![("name", "X"), ("slug", "x"), ("admin_email", "x@x.test")],
        ),
        (
            "/admin/users".into(),
            vec![
                ("email", "y@x.test"),
                ("first_name", "Y"),
                ("last_name", "Y"),
                ("org", "my-org"),
                ("role_id", "member"),
            ],
        ),
        (format!("/admin/users/{bob}/disable"), vec![]),
        (format!("/admin/users/{bob}/enable"), vec![]),
        (
            format!("/admin/users/{bob}/memberships"),
            vec![("org", "my-org"), ("role_id", "admin")],
        ),
    ];
    for (path, fields) in &posts {
        let r = op.submit("/admin/users", path, fields).await;
        assert_eq!(r.status, 403, "operator POST {path}");
    }
    assert_eq!(app.count("organizations"), 1);

    let member = app.member_browser("bob@example.com").await;
    assert_eq!(member.get("/admin/orgs").await.status, 403);
    assert_eq!(member.get("/admin/users").await.status, 403);
    for (path, fields) in &posts {
        assert_eq!(
            member
                .submit("/orgs/my-org/users", path, fields)
                .await
                .status,
            403
        );
    }
    let anonymous = app.client().get("/admin/users").await;
    assert_eq!(anonymous.status, 303);
    assert!(anonymous.location.unwrap().starts_with("/login"));
}

#[actix_web::test]
async fn an_account_created_by_an_admin_gets_its_setup_link_by_email() {
    let smtp = crate::smtp::SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    let admin = app.setup_admin().await;
    let created = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("email", "emailed@example.com"),
                ("first_name", "Emma"),
                ("last_name", "Iled"),
                ("org", "my-org"),
                ("role_id", "member"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["emailed@example.com".to_string()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("admin@example.com created your Portcullis account")
    );
    let text = mail.decoded();
    let start = text.find("/setup/").expect("a setup link");
    let path: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/-_".contains(*c))
        .collect();
    let browser = app.client();
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200);
    let done = browser
        .post(
            &path,
            &account_form(form.csrf(), "Aaron", "Aardvark", "emailed password 1"),
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
    // The name chosen at set-up, not the one the account was made with, is the one the
    // Users tab sorts by.
    let sorted = admin.get("/orgs/my-org/users?sort=name").await;
    assert_eq!(
        row_emails(&sorted.body),
        vec!["emailed@example.com", ADMIN_EMAIL]
    );
}

#[actix_web::test]
async fn the_first_admin_of_a_new_organization_is_emailed_a_setup_link() {
    let smtp = crate::smtp::SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    let admin = app.setup_admin().await;
    let created = admin
        .submit(
            "/admin/orgs",
            "/admin/orgs",
            &[
                ("name", "Acme & Sons"),
                ("slug", "acme"),
                ("admin_email", "boss@acme.test"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["boss@acme.test".to_string()]);
    let text = mail.decoded();
    assert!(text.contains("in Acme & Sons"), "{text}");
    let shown = setup_link(&created.body);
    let shown_path = &shown[shown.find("/setup/").unwrap()..];
    assert!(
        text.contains(shown_path),
        "the email carries the link shown once on the page"
    );
    let boss = app.user_id("boss@acme.test");
    assert_eq!(app.member_role("acme", &boss).as_deref(), Some("admin"));
}

/// Accounts straight into the table, without a password (no hashing: many are cheap).
pub(crate) fn insert_accounts(app: &TestApp, emails: impl IntoIterator<Item = String>) {
    use portcullis::db::{self, users};
    let mut conn = app.conn();
    for email in emails {
        users::insert(
            &mut conn,
            &users::NewUser {
                id: &db::new_id(),
                email: &email,
                first_name: "Some",
                last_name: "One",
                password_hash: None,
                platform_role: "none",
                status: "active",
                auth_method: "password",
                created_at: db::now(),
                last_active_at: None,
            },
        )
        .unwrap();
    }
}

#[actix_web::test]
async fn platform_account_search_finds_emails_by_their_start_and_pages_within_it() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    insert_accounts(&app, (0..55).map(|i| format!("ann{i:02}@example.com")));
    insert_accounts(
        &app,
        ["annex@b.test", "bob@example.com", "joann@example.com"].map(String::from),
    );

    let first = admin.get("/admin/users?q=+ANN0").await;
    assert_eq!(first.status, 200);
    let shown = row_emails(&first.body);
    assert_eq!(shown.len(), 10, "{shown:?}");
    assert!(shown.iter().all(|e| e.starts_with("ann0")), "{shown:?}");
    assert!(
        first.body.contains("value=\" ANN0\""),
        "the search box keeps what was typed"
    );

    let ann = admin.get("/admin/users?q=ann").await;
    let page_one = row_emails(&ann.body);
    assert_eq!(page_one.len(), 50);
    assert!(!page_one.contains(&"joann@example.com".to_string()));
    let next = next_link(&ann.body).expect("a next page");
    assert!(next.contains("q=ann"), "{next}");
    let page_two = row_emails(&admin.get(&next).await.body);
    assert_eq!(
        page_two.first().map(String::as_str),
        Some("ann50@example.com")
    );
    assert_eq!(page_two.last().map(String::as_str), Some("annex@b.test"));
    assert_eq!(page_two.len(), 6);

    let none = admin.get("/admin/users?q=zed").await;
    assert_eq!(none.status, 200);
    assert!(row_emails(&none.body).is_empty());
    assert!(none.body.contains("No account"));
}

#[actix_web::test]
async fn the_account_search_reads_a_range_of_the_email_index() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let mut conn = app.conn();
    if matches!(*conn, portcullis::db::DbConnection::Postgresql(_)) {
        // On a tiny table the planner would rightly scan: ask whether it can use the index.
        diesel::connection::SimpleConnection::batch_execute(
            &mut *conn,
            "SET enable_seqscan = off; SET enable_sort = off",
        )
        .unwrap();
    }
    let plan = portcullis::db::users::list_page_plan(&mut conn, Some("ann"), Some("ann05@x"))
        .unwrap()
        .join("\n");
    let indexed = plan.contains("USING INDEX sqlite_autoindex_users")
        || plan.contains("USING COVERING INDEX sqlite_autoindex_users")
        || plan.contains("Index Scan using users_email_key");
    assert!(indexed, "{plan}");
    assert!(
        !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
        "{plan}"
    );
}

/// An inviter of any organization sees each accept link, so they may have opened one for
/// `ceo@bigco.test` and chosen that account's password. A platform admin who then creates
/// Bigco for that address must not hand Bigco to them: the account is invited by a link
/// mailed to the address, and joins only when someone who can sign in to it accepts.
#[actix_web::test]
async fn an_organization_goes_to_whoever_reads_the_mail_not_whoever_chose_the_password() {
    let app = spawn_app().await;
    let platform = app.setup_admin().await;
    let link =
        claim_address_through_an_invitation(&app, "ceo@bigco.test", "mallory chose this").await;
    let ceo = app.user_id("ceo@bigco.test");

    let created = platform
        .submit(
            "/admin/orgs",
            "/admin/orgs",
            &[
                ("name", "Bigco"),
                ("slug", "bigco"),
                ("admin_email", "ceo@bigco.test"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(
        created.body.contains("data-first-admin-invited"),
        "{}",
        created.body
    );
    assert_eq!(app.member_role("bigco", &ceo), None);
    let mallory_as_ceo = app.client();
    assert_eq!(
        mallory_as_ceo
            .login("ceo@bigco.test", "mallory chose this")
            .await
            .status,
        303
    );
    assert_ne!(mallory_as_ceo.get("/orgs/bigco/users").await.status, 200);
    // Nor does the platform's "add to organization" hand it over when the invitation
    // lapses: it sends another invitation instead.
    let added = platform
        .submit(
            &format!("/admin/users/{ceo}"),
            &format!("/admin/users/{ceo}/memberships"),
            &[("org", "bigco"), ("role_id", "admin")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(app.member_role("bigco", &ceo), None);
    let flashed = platform.get("/admin/users").await;
    assert!(
        flashed.body.contains("was sent an invitation to Bigco"),
        "{}",
        flashed.body
    );

    // The owner of the address: resets the password by mail (ending Mallory's hold on
    // the account), signs in, and accepts the invitation mailed to them.
    let owner = app.client();
    let asked = owner
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", "ceo@bigco.test")],
        )
        .await;
    assert_eq!(asked.status, 200);
    app.reset_requests_handled().await;
    let reset = crate::browser::newest_link_mailed(&app, "ceo@bigco.test", "/reset/", "").await;
    let form = owner.get(&reset).await;
    let owners_password = "the owner's own long password";
    let done = owner
        .post(
            &reset,
            &[
                ("csrf_token", form.csrf()),
                ("password", owners_password.into()),
                ("password_confirm", owners_password.into()),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        owner.login("ceo@bigco.test", owners_password).await.status,
        303
    );
    let invite =
        crate::browser::newest_link_mailed(&app, "ceo@bigco.test", "/invite/", "Bigco").await;
    assert_ne!(invite, link, "a new link, never shown to anyone");
    let page = owner.get(&invite).await;
    assert!(page.body.contains("Bigco"), "{}", page.body);
    let joined = owner.post(&invite, &[("csrf_token", page.csrf())]).await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    assert_eq!(app.member_role("bigco", &ceo).as_deref(), Some("admin"));
    assert_eq!(app.audit_count("bigco", "invitation.accepted"), 1);
}

/// A platform admin who is a plain Member of an organization adds an existing account to
/// it as Admin from the platform's pages. The invitation mailed carries the platform's
/// authority, not their Member role there, so its acceptance is honoured.
#[actix_web::test]
async fn a_platform_admins_invitation_is_honoured_whatever_their_own_role_there() {
    let app = spawn_app().await;
    let platform = app.setup_admin().await;
    app.create_org("bigco", "Bigco");
    app.add_member("bigco", ADMIN_EMAIL, "Pat", "Form", "member", true);
    let ann = app.add_account("ann@example.com", "none");
    let added = platform
        .submit(
            &format!("/admin/users/{ann}"),
            &format!("/admin/users/{ann}/memberships"),
            &[("org", "bigco"), ("role_id", "admin")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(app.member_role("bigco", &ann), None);
    // Their leaving the organization leaves the platform's invitation standing: it never
    // rested on their membership there.
    app.add_member("bigco", "boss@example.com", "Boss", "B", "admin", false);
    let me = app.user_id(ADMIN_EMAIL);
    let leave = platform
        .get(&format!("/orgs/bigco/users/{me}/delete"))
        .await;
    assert!(
        !leave.body.contains("data-open-invitations"),
        "{}",
        leave.body
    );
    let left = platform
        .post(
            &format!("/orgs/bigco/users/{me}/delete"),
            &[
                ("csrf_token", leave.csrf()),
                ("confirm_email", ADMIN_EMAIL.into()),
            ],
        )
        .await;
    assert_eq!(left.status, 303, "{}", left.body);
    assert_eq!(app.member_role("bigco", &me), None);

    let owner = app.member_browser("ann@example.com").await;
    let invite =
        crate::browser::newest_link_mailed(&app, "ann@example.com", "/invite/", "Bigco").await;
    let page = owner.get(&invite).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let joined = owner.post(&invite, &[("csrf_token", page.csrf())]).await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    assert_eq!(app.member_role("bigco", &ann).as_deref(), Some("admin"));
}

/// An organization invited an address; a platform admin then creates its account in
/// that organization. The invitation is withdrawn: left open, its link would let the
/// person back in with its role after their removal.
#[actix_web::test]
async fn creating_an_invited_account_withdraws_its_invitation() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let invited = admin
        .invite("my-org", "new@example.com", &app.role_id("my-org", "admin"))
        .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    let created = admin
        .submit(
            "/admin/users",
            "/admin/users",
            &[
                ("email", "new@example.com"),
                ("first_name", "New"),
                ("last_name", "Person"),
                ("org", "my-org"),
                ("role_id", "member"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(app.count("invitations WHERE status = 'pending'"), 0);
    assert_eq!(app.audit_count("my-org", "invitation.cancelled"), 1);
}

/// An organization invited an existing account; a platform admin then adds the account
/// there, which mails it a new invitation. The organization's own gives way, and its
/// admins see by whom (before, it turned Cancelled with nothing in their trail).
#[actix_web::test]
async fn a_platform_invitation_records_the_one_it_replaces() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other-org", "Other Org");
    let bob = app.add_member("other-org", "bob@example.com", "Bob", "B", "member", true);
    let invited = admin
        .invite(
            "my-org",
            "bob@example.com",
            &app.role_id("my-org", "member"),
        )
        .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    let added = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{bob}/memberships"),
            &[("org", "my-org"), ("role_id", "manager")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(app.count("invitations WHERE status = 'pending'"), 1);
    assert_eq!(app.count("invitations WHERE status = 'cancelled'"), 1);
    assert_eq!(app.audit_count("my-org", "invitation.cancelled"), 1);
}

/// A refresh of the page that answered "create" (or Back then Forward) sent the form
/// again: it answered that the slug or address was taken, and the set-up link was gone,
/// as if the creation had failed. Sent again, a form makes nothing and says what happened.
#[actix_web::test]
async fn a_create_form_sent_again_makes_nothing_twice_and_says_so() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let orgs = [
        ("name", "Acme"),
        ("slug", "acme"),
        ("admin_email", "boss@acme.test"),
    ];
    let users = [
        ("email", "new@example.com"),
        ("first_name", "New"),
        ("last_name", "Person"),
        ("org", "my-org"),
        ("role_id", "member"),
    ];
    for (page, action, fields) in [
        ("/admin/orgs", "/admin/orgs", &orgs[..]),
        ("/admin/users?org=my-org", "/admin/users", &users[..]),
    ] {
        let form = admin.get(page).await;
        let form_id = hidden_value(&form.body, "form_id").expect("the form has its id");
        let mut sent = vec![("csrf_token", form.csrf()), ("form_id", form_id)];
        sent.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
        let first = admin.post(action, &sent).await;
        assert_eq!(first.status, 201, "{}", first.body);
        assert!(setup_link(&first.body).contains("/setup/"));
        let again = admin.post(action, &sent).await;
        assert_eq!(again.status, 409, "{}", again.body);
        assert!(again.body.contains("data-sent-again"), "{}", again.body);
        assert!(!again.body.contains("already uses"), "{}", again.body);
    }
    assert_eq!(app.count("organizations WHERE slug = 'acme'"), 1);
    assert_eq!(app.count("users WHERE email = 'new@example.com'"), 1);
    assert_eq!(app.audit_count("acme", "org.created"), 1);
}
