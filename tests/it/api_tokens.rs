//! API tokens through real HTTP (issue 15, item 1): an Admin creates one and sees it
//! once, the list, revocation, who may, tenant isolation, the token's life on the SCIM
//! server (revoked or expired: 401), "last used", and that the secret is stored nowhere.

use chrono::Duration;
use diesel::prelude::*;
use portcullis::db::DbConnection;

use crate::helpers::*;

const PAGE: &str = "/orgs/my-org/api-tokens";

/// The ids of the organization's tokens, oldest first.
pub fn token_ids(app: &TestApp, slug: &str) -> Vec<String> {
    use portcullis::db::schema::api_tokens;
    let org = app.org_id(slug);
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    api_tokens::table
        .filter(api_tokens::org_id.eq(org))
        .order((api_tokens::created_at.asc(), api_tokens::id.asc()))
        .select(api_tokens::id)
        .load(conn)
        .unwrap()
}

/// The secret in `<code data-token>`, if the page shows one.
pub fn shown_token(html: &str) -> Option<String> {
    let start = html.find("<code data-token>")? + "<code data-token>".len();
    let end = html[start..].find("</code>")? + start;
    Some(html[start..end].to_string())
}

/// Creates a token through the page; answers the page and the secret it shows.
pub async fn create(
    browser: &Browser,
    slug: &str,
    name: &str,
    scopes: &[&str],
    role_id: &str,
    expires_days: &str,
) -> (Page, Option<String>) {
    let page = format!("/orgs/{slug}/api-tokens");
    let mut fields = vec![
        ("name", name),
        ("expires_days", expires_days),
        ("role_id", role_id),
    ];
    fields.extend(scopes.iter().map(|s| ("scopes", *s)));
    let answer = browser.submit(&page, &page, &fields).await;
    let token = shown_token(&answer.body);
    (answer, token)
}

/// A token of my-org made by its Admin through the page, giving new members `role_key`:
/// "Okta", then "Okta 2" and so on (two working tokens never share a name).
pub async fn admin_token(
    app: &TestApp,
    admin: &Browser,
    scopes: &[&str],
    role_key: &str,
) -> String {
    let role = app.role_id("my-org", role_key);
    let name = match token_ids(app, "my-org").len() {
        0 => "Okta".to_string(),
        n => format!("Okta {}", n + 1),
    };
    let (page, token) = create(admin, "my-org", &name, scopes, &role, "365").await;
    assert_eq!(page.status, 200, "{}", page.body);
    token.expect("the new token is shown")
}

/// GET /scim/v2/Users with the token: the status.
async fn scim_status(app: &TestApp, token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/scim/v2/Users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn an_admin_creates_a_token_sees_it_once_and_finds_it_in_the_list() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let member = app.role_id("my-org", "member");
    let (page, token) = create(&admin, "my-org", "Okta", &["scim"], &member, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = token.expect("shown once");
    assert!(token.starts_with("pcs_") && token.len() == 47, "{token}");
    assert_eq!(
        page.headers.get("cache-control").unwrap(),
        "no-store",
        "the page with the secret is not cached"
    );

    let list = admin.get(PAGE).await;
    assert_eq!(list.status, 200);
    assert!(
        !list.body.contains(&token),
        "the list never shows the secret"
    );
    let id = token_ids(&app, "my-org").pop().unwrap();
    let row_start = list.body.find(&format!("data-id=\"{id}\"")).unwrap();
    let row = &list.body[row_start..row_start + list.body[row_start..].find("</tr>").unwrap()];
    let year = (app.settings.clock.now() + Duration::days(365))
        .format("%Y-%m-%d")
        .to_string();
    for shown in [
        "Okta",
        "scim",
        "Member",
        ADMIN_EMAIL,
        "Never",
        year.as_str(),
    ] {
        assert!(row.contains(shown), "{shown} in {row}");
    }
    assert!(row.contains("data-status=\"active\""));

    // Only the SHA-256 is stored.
    use portcullis::db::schema::api_tokens;
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    let hash: String = api_tokens::table
        .select(api_tokens::token_hash)
        .first(conn)
        .unwrap();
    assert_eq!(hash, portcullis::domain::tokens::hash(&token));
    assert_eq!(scim_status(&app, &token).await, 200);
}

#[actix_web::test]
async fn sending_the_form_again_makes_no_second_token() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let member = app.role_id("my-org", "member");
    let form = admin.get(PAGE).await;
    let form_id = hidden_value(&form.body, "form_id").expect("the form has an id");
    let fields = vec![
        ("csrf_token", form.csrf()),
        ("form_id", form_id),
        ("name", "Okta".to_string()),
        ("scopes", "scim".to_string()),
        ("role_id", member),
        ("expires_days", "90".to_string()),
    ];
    let first = admin.post(PAGE, &fields).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let secret = shown_token(&first.body).expect("shown once");

    // A refresh of the answer, or Back then Forward, sends the same form again.
    let again = admin.post(PAGE, &fields).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("data-sent-again"), "{}", again.body);
    assert_eq!(shown_token(&again.body), None, "no new secret");
    assert_eq!(token_ids(&app, "my-org").len(), 1, "one token, not two");
    assert_eq!(scim_status(&app, &secret).await, 200);

    // The answer's own form is a new one: it makes the next token.
    let next_id = hidden_value(&again.body, "form_id").unwrap();
    let mut next = fields.clone();
    next[1].1 = next_id;
    next[2].1 = "Entra".to_string();
    let made = admin.post(PAGE, &next).await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(token_ids(&app, "my-org").len(), 2);
}

#[actix_web::test]
async fn a_token_that_never_expires_is_allowed_with_a_warning() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let member = app.role_id("my-org", "member");
    let (page, token) = create(&admin, "my-org", "Entra", &["read"], &member, "never").await;
    assert_eq!(page.status, 200);
    assert!(token.is_some());
    assert!(page.body.contains("data-never-expires"), "{}", page.body);
    let list = admin.get(PAGE).await;
    assert!(list.body.contains("Never expires"));
}

#[actix_web::test]
async fn bad_input_is_shown_by_its_field_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let member = app.role_id("my-org", "member");
    let (page, token) = create(&admin, "my-org", "   ", &[], &member, "").await;
    assert_eq!(page.status, 422);
    assert!(token.is_none());
    assert!(page.body.contains("id=\"name-error\""), "{}", page.body);
    assert!(page.body.contains("id=\"scopes-error\""));
    let (page, _) = create(&admin, "my-org", "Okta", &["admin"], &member, "5000").await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("value=\"Okta\""), "the name is kept");
    assert!(page.body.contains("id=\"scopes-error\""));
    assert!(page.body.contains("id=\"expires_days-error\""));
    assert!(token_ids(&app, "my-org").is_empty());
}

#[actix_web::test]
async fn a_manager_may_neither_see_nor_create_tokens() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    admin_token(&app, &admin, &["scim"], "member").await;
    app.add_member("my-org", "mo@example.com", "Mo", "Manager", "manager", true);
    let manager = app.member_browser("mo@example.com").await;
    assert_eq!(manager.get(PAGE).await.status, 403);
    let token = manager.get("/orgs/my-org/users").await.csrf();
    let member = app.role_id("my-org", "member");
    let made = manager
        .post(
            PAGE,
            &[
                ("csrf_token", token.clone()),
                ("name", "Mine".into()),
                ("scopes", "scim".into()),
                ("role_id", member),
            ],
        )
        .await;
    assert_eq!(made.status, 403);
    let id = token_ids(&app, "my-org").pop().unwrap();
    let revoke = manager
        .post(&format!("{PAGE}/{id}/revoke"), &[("csrf_token", token)])
        .await;
    assert_eq!(revoke.status, 403);
    assert_eq!(token_ids(&app, "my-org").len(), 1);
    let tab = manager.get("/orgs/my-org/users").await;
    assert!(!tab.body.contains("API tokens"), "no tab for a Manager");
    assert!(
        admin
            .get("/orgs/my-org/users")
            .await
            .body
            .contains(">API tokens</a>")
    );
}

#[actix_web::test]
async fn a_token_cannot_carry_a_role_above_its_creator() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let org = app.org_id("my-org");
    let keeper = portcullis::db::roles::insert_custom(
        &mut app.conn(),
        &org,
        "Keeper",
        "users.read,users.manage,org.manage",
        30,
    )
    .unwrap();
    let kim = app.add_member("my-org", "kim@example.com", "Kim", "Keeper", "member", true);
    portcullis::db::memberships::set_role(&mut app.conn(), &org, &kim, &keeper).unwrap();
    let kim = app.member_browser("kim@example.com").await;
    let form = kim.get(PAGE).await;
    assert_eq!(form.status, 200);
    let admin_role = app.role_id("my-org", "admin");
    assert!(!form.body.contains(&admin_role), "Admin is not offered");
    let (page, token) = create(&kim, "my-org", "Sneaky", &["scim"], &admin_role, "").await;
    assert_eq!(page.status, 422);
    assert!(token.is_none());
    assert!(page.body.contains("id=\"role_id-error\""));
    drop(admin);
}

#[actix_web::test]
async fn revoking_ends_the_token_at_once_and_another_organization_cannot() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let token = admin_token(&app, &admin, &["scim"], "member").await;
    let id = token_ids(&app, "my-org").pop().unwrap();

    // An Admin of another organization: the token is not found there.
    app.create_org("other-org", "Other Org");
    app.add_member(
        "other-org",
        "olga@example.com",
        "Olga",
        "Other",
        "admin",
        true,
    );
    let olga = app.member_browser("olga@example.com").await;
    let csrf = olga.get("/orgs/other-org/api-tokens").await.csrf();
    let foreign = olga
        .post(
            &format!("/orgs/other-org/api-tokens/{id}/revoke"),
            &[("csrf_token", csrf)],
        )
        .await;
    assert_eq!(foreign.status, 404);
    assert_eq!(scim_status(&app, &token).await, 200);

    let csrf = admin.get(PAGE).await.csrf();
    let done = admin
        .post(
            &format!("{PAGE}/{id}/revoke"),
            &[("csrf_token", csrf.clone())],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(scim_status(&app, &token).await, 401);
    let list = admin.get(PAGE).await;
    assert!(list.body.contains("data-status=\"revoked\""));
    let again = admin
        .post(&format!("{PAGE}/{id}/revoke"), &[("csrf_token", csrf)])
        .await;
    assert_eq!(again.status, 404, "a revoked token is revoked once");
    assert_eq!(app.audit_count("my-org", "api_token.revoked"), 1);
}

#[actix_web::test]
async fn an_expired_token_gets_401() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let member = app.role_id("my-org", "member");
    let (_, token) = create(&admin, "my-org", "Short", &["scim"], &member, "30").await;
    let token = token.unwrap();
    assert_eq!(scim_status(&app, &token).await, 200);
    app.advance_clock(Duration::days(30) + Duration::minutes(1));
    assert_eq!(scim_status(&app, &token).await, 401);
    assert!(
        admin
            .get(PAGE)
            .await
            .body
            .contains("data-status=\"expired\"")
    );
}

#[actix_web::test]
async fn last_used_is_written_at_most_once_a_minute() {
    use portcullis::db::schema::api_tokens;
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let token = admin_token(&app, &admin, &["read"], "member").await;
    let last_used = || -> Option<chrono::NaiveDateTime> {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        api_tokens::table
            .select(api_tokens::last_used_at)
            .first(conn)
            .unwrap()
    };
    assert_eq!(last_used(), None);
    assert_eq!(scim_status(&app, &token).await, 200);
    let first = last_used().expect("recorded");
    assert_eq!(scim_status(&app, &token).await, 200);
    assert_eq!(last_used(), Some(first), "not again within the minute");
    app.advance_clock(Duration::seconds(61));
    assert_eq!(scim_status(&app, &token).await, 200);
    assert!(last_used().unwrap() > first);
}

#[actix_web::test]
async fn the_secret_reaches_neither_the_audit_trail_nor_the_sessions() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let token = admin_token(&app, &admin, &["scim"], "member").await;
    let secret = token.trim_start_matches("pcs_");
    crate::scim::Scim::new(&app, &token)
        .create_user("new@example.com")
        .await;
    let events = portcullis::db::audit_events::latest_for_org(
        &mut app.conn(),
        Some(&app.org_id("my-org")),
        1000,
    )
    .unwrap();
    assert!(events.iter().any(|e| e.action == "api_token.created"));
    for event in &events {
        let text = format!("{event:?}");
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains(&portcullis::domain::tokens::hash(&token)));
    }
    #[derive(QueryableByName)]
    struct Data {
        #[diesel(sql_type = diesel::sql_types::Text)]
        data: String,
    }
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    let sessions: Vec<Data> = diesel::sql_query("SELECT data FROM sessions")
        .load(conn)
        .unwrap();
    assert!(sessions.iter().all(|s| !s.data.contains(secret)));
}

#[actix_web::test]
async fn the_command_line_prints_only_a_working_token() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let out = app.run_cli(&[
        "create-api-token",
        "--org",
        "my-org",
        "--name",
        "conformance",
        "--scopes",
        "scim",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let token = printed.trim();
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(token.starts_with("pcs_"));
    assert_eq!(scim_status(&app, token).await, 200);
    // Nobody chose a role: the members it creates get the least, not Admin.
    let made = crate::scim::Scim::new(&app, token)
        .create_user("pushed@example.com")
        .await;
    assert_eq!(app.member_role("my-org", &made).as_deref(), Some("member"));
    let unknown = app.run_cli(&[
        "create-api-token",
        "--org",
        "nope",
        "--name",
        "x",
        "--scopes",
        "scim",
    ]);
    assert!(!unknown.status.success());
}

/// A token outlives the session that made it, and a password reset: long after signing
/// in (a browser left signed in, a copied cookie), making one asks for the password, a
/// wrong one is audited, and only the right one makes the token.
#[actix_web::test]
async fn making_a_token_long_after_signing_in_asks_for_the_password() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.advance_clock(Duration::minutes(11));
    let form = admin.get(PAGE).await;
    assert!(form.body.contains("id=\"password\""), "{}", form.body);
    let member = app.role_id("my-org", "member");
    let make_named = |name: &'static str, password: Option<&'static str>| {
        let (admin, member) = (&admin, member.clone());
        async move {
            let mut fields = vec![
                ("name", name),
                ("expires_days", "30"),
                ("role_id", member.as_str()),
                ("scopes", "scim"),
            ];
            fields.extend(password.map(|p| ("password", p)));
            admin.submit(PAGE, PAGE, &fields).await
        }
    };
    let make = |password| make_named("Okta", password);
    let bare = make(None).await;
    assert_eq!(bare.status, 422, "{}", bare.body);
    assert!(bare.body.contains("Enter your password"), "{}", bare.body);
    let wrong = make(Some("not the password")).await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.body.contains("That is not your password."));
    assert!(shown_token(&wrong.body).is_none());
    assert!(token_ids(&app, "my-org").is_empty());
    assert_eq!(
        app.count("audit_events WHERE action = 'account.wrong_password'"),
        1
    );

    // A wrong password and a missing name are both said in one round.
    let both = make_named(" ", Some("not the password")).await;
    assert_eq!(both.status, 422, "{}", both.body);
    assert!(both.body.contains("That is not your password."));
    assert!(
        both.body
            .contains("Enter a name that says where the token is used.")
    );
    assert!(token_ids(&app, "my-org").is_empty());

    let right = make(Some(ADMIN_PASSWORD)).await;
    assert_eq!(right.status, 200, "{}", right.body);
    assert!(shown_token(&right.body).is_some(), "{}", right.body);
    assert_eq!(token_ids(&app, "my-org").len(), 1);
}
