//! Issue 10, bounded growth and start-up hardening: each test performs the attack (or the
//! careless set-up) and checks the server does not grow, leak or accept it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use portcullis::startup::Application;
use reqwest::Method;
use reqwest::redirect::Policy;

use crate::helpers::*;

const ORG: &str = "my-org";

/// A client that keeps no cookies: every request is a new visitor.
fn cookieless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

#[actix_web::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let client = cookieless();
    client.get(app.url("/login")).send().await.unwrap();
    let before = client.get(app.url("/metrics")).send().await.unwrap();
    let before = before.text().await.unwrap();

    for i in 0..200 {
        let method = Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            "/login".to_string()
        } else {
            format!("/no-such-page-{i}")
        };
        let response = client.request(method, app.url(&path)).send().await.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    for i in 0..50 {
        client
            .get(app.url(&format!("/unmatched-{i}/x")))
            .send()
            .await
            .unwrap();
    }

    let after = client.get(app.url("/metrics")).send().await.unwrap();
    let after = after.text().await.unwrap();
    assert!(!after.contains("MADEUP"), "{after}");
    assert!(!after.contains("no-such-page") && !after.contains("unmatched-"));
    assert!(after.contains("method=\"OTHER\""), "{after}");
    // A handful of new series (OTHER on /login, OTHER and GET unmatched), not hundreds.
    assert!(
        after.len() < before.len() + 10_000,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
}

#[actix_web::test]
async fn anonymous_visitors_store_no_session_rows() {
    let app = spawn_app().await;
    let setup = app.setup_url.clone().unwrap();
    let client = cookieless();
    let before = app.count("sessions");
    for i in 0..100 {
        for path in [
            "/login".to_string(),
            "/login?next=%2Forgs".to_string(),
            format!("/setup/made-up-{i}"),
            format!("/invite/made-up-{i}"),
        ] {
            let response = client.get(app.url(&path)).send().await.unwrap();
            assert!(response.status().as_u16() < 500, "{path}");
            if path.starts_with("/login") {
                assert!(
                    response.headers().contains_key("set-cookie"),
                    "{path}: the form's token travels in a cookie"
                );
            }
        }
    }
    // The real first-administrator page, and a failed sign-in that re-renders the form.
    for i in 0..10 {
        let page = client.get(&setup).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let browser = app.client();
        let nobody = format!("nobody{i}@example.com");
        let failed = browser.login(&nobody, "wrong password!").await;
        assert_eq!(failed.status, 401);
        assert!(failed.body.contains("name=\"csrf_token\""));
    }
    assert_eq!(
        app.count("sessions"),
        before,
        "anonymous requests stored sessions"
    );
}

#[actix_web::test]
async fn anonymous_forms_work_and_refuse_tokens_from_another_visitor() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let signed_in_before = app.count("sessions");

    let victim = app.client();
    let victim_token = victim.get("/login").await.csrf();
    let attacker = app.client();
    let attacker_token = attacker.get("/login").await.csrf();
    assert_ne!(victim_token, attacker_token);
    let credentials = |token: Option<&str>| {
        let mut form = vec![
            ("email", ADMIN_EMAIL.to_string()),
            ("password", ADMIN_PASSWORD.to_string()),
        ];
        if let Some(token) = token {
            form.push(("csrf_token", token.to_string()));
        }
        form
    };

    // Another visitor's token, no token, a token with no cookie, a tampered cookie.
    let foreign = victim
        .post("/login", &credentials(Some(&attacker_token)))
        .await;
    assert_eq!(foreign.status, 403);
    let missing = victim.post("/login", &credentials(None)).await;
    assert_eq!(missing.status, 403);
    let no_cookie = cookieless()
        .post(app.url("/login"))
        .form(&credentials(Some(&victim_token)))
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status().as_u16(), 403);
    let cookie = victim.session_cookie().expect("the visitor's cookie");
    let (name, value) = cookie.split_once('=').unwrap();
    let flipped = if value.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{name}={}{flipped}", &value[..value.len() - 1]);
    let forged = cookieless()
        .post(app.url("/login"))
        .header("cookie", tampered)
        .form(&credentials(Some(&victim_token)))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    // The Origin check is unchanged for anonymous forms.
    let cross_site = victim
        .client
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .form(&credentials(Some(&victim_token)))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    assert_eq!(victim.get("/orgs").await.status, 303, "still signed out");
    assert_eq!(app.count("sessions"), signed_in_before);

    // The visitor's own token signs in, and sign-in rotates the cookie and the token.
    let anonymous_cookie = victim.session_cookie().unwrap();
    let signed_in = victim
        .post("/login", &credentials(Some(&victim_token)))
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let session_cookie = victim.session_cookie().unwrap();
    assert_ne!(
        anonymous_cookie, session_cookie,
        "the session id changes at sign-in"
    );
    assert_eq!(app.count("sessions"), signed_in_before + 1);
    assert_eq!(victim.get("/orgs/my-org/users").await.status, 200);
    let planted = get_with_cookie(&app.url("/orgs/my-org/users"), &anonymous_cookie).await;
    assert_eq!(planted.status, 303, "the anonymous cookie signs nobody in");
    let token = victim.get("/orgs/my-org/users").await.csrf();
    assert_ne!(token, victim_token, "a new token once signed in");
    let stale = victim
        .post("/logout", &[("csrf_token", victim_token.clone())])
        .await;
    assert_eq!(stale.status, 403, "the anonymous token no longer counts");
    let out = victim.post("/logout", &[("csrf_token", token)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(
        app.count("sessions"),
        signed_in_before,
        "sign-out deletes the row"
    );
    assert_eq!(victim.get("/login?signed_out=1").await.status, 200);
    assert_eq!(app.count("sessions"), signed_in_before);
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[actix_web::test]
async fn the_data_directory_and_its_files_are_private() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let sqlite = std::env::var("TEST_DATABASE_URL").map_or(true, |u| !u.starts_with("postgres"));
    let app = spawn_app_with(|s| {
        s.data_dir = data.clone();
        if sqlite {
            // The default: DATA_DIR/portcullis.db.
            s.database_url = None;
        }
    })
    .await;
    let admin = app.setup_admin().await;
    let form = admin.get("/orgs/my-org/invitations/new").await;
    let invited = admin
        .post(
            "/orgs/my-org/invitations",
            &[
                ("csrf_token", form.csrf()),
                ("emails", "new.person@example.com".into()),
                ("role_id", app.role_id(ORG, "member")),
            ],
        )
        .await;
    assert!(invited.status < 400, "{}", invited.body);
    let mail = data.join("mail");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let emails = loop {
        let emails: Vec<_> = std::fs::read_dir(&mail)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        if !emails.is_empty() {
            break emails;
        }
        assert!(std::time::Instant::now() < deadline, "no email written");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&mail), 0o700, "mail directory");
    assert_eq!(mode(&data.join("session.key")), 0o600, "session.key");
    for email in &emails {
        assert_eq!(mode(email), 0o600, "{}", email.display());
    }
    if sqlite {
        let db = data.join("portcullis.db");
        assert_eq!(mode(&db), 0o600, "database");
        for side in ["portcullis.db-wal", "portcullis.db-shm"] {
            let path = data.join(side);
            assert!(path.exists(), "{side} (WAL mode)");
            assert_eq!(mode(&path), 0o600, "{side}");
        }
    }
    // Nothing else in the directory is readable by others.
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
    }
}

#[cfg(unix)]
#[actix_web::test]
async fn an_existing_world_readable_database_file_is_narrowed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let target = portcullis::db::DbTarget::parse(&path.to_string_lossy()).unwrap();
    let pool = portcullis::db::build_pool(&target, Default::default()).unwrap();
    portcullis::db::migrate(&mut pool.get().unwrap()).unwrap();
    assert_eq!(mode(&path), 0o600);
}

const PLAINTEXT_SMTP: &str = "smtp://mailer:s3cret-pass@127.0.0.1:2525?tls=none";

#[actix_web::test]
async fn smtp_credentials_in_clear_are_refused_at_start_up_unless_allowed() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let mut settings =
        portcullis::config::Settings::for_tests(db.url.clone(), dir.path().to_path_buf());
    settings.smtp_url = Some(PLAINTEXT_SMTP.into());
    let refused = match Application::build(settings.clone()).await {
        Ok(_) => panic!("credentials over tls=none were accepted"),
        Err(e) => e.to_string(),
    };
    assert!(refused.contains("--smtp-allow-plaintext"), "{refused}");
    assert!(!refused.contains("s3cret-pass"), "{refused}");

    let mut opportunistic = settings.clone();
    opportunistic.smtp_url = Some("smtp://mailer:pw@127.0.0.1:2525?tls=opportunistic".into());
    assert!(Application::build(opportunistic).await.is_err());

    settings.smtp_allow_plaintext = true;
    let app = Application::build(settings)
        .await
        .expect("starts with --smtp-allow-plaintext");
    assert!(app.port() > 0);
}

fn serve(db: &TestDb, data_dir: &std::path::Path, allow: Option<&str>) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .arg("serve")
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_DATA_DIR", data_dir)
        .env("PORTCULLIS_BIND", "127.0.0.1:0")
        .env("PORTCULLIS_SMTP_URL", PLAINTEXT_SMTP)
        .env_remove("PORTCULLIS_SMTP_ALLOW_PLAINTEXT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(value) = allow {
        command.env("PORTCULLIS_SMTP_ALLOW_PLAINTEXT", value);
    }
    command.spawn().expect("run portcullis")
}

/// Whether the server came up (it prints the setup link once built and listening), and
/// what it wrote to stderr. A server that came up is stopped; one that refused has exited.
async fn started(mut child: std::process::Child) -> (bool, String) {
    let stdout = child.stdout.take().unwrap();
    let up = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("/setup/"))
    })
    .await
    .unwrap_or(false);
    if up {
        child.kill().unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (up, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[actix_web::test]
async fn the_cli_refuses_plaintext_smtp_credentials_and_the_env_var_allows_them() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let (up, stderr) = started(serve(&db, dir.path(), None)).await;
    assert!(!up, "started with credentials over tls=none");
    assert!(stderr.contains("--smtp-allow-plaintext"), "{stderr}");
    assert!(!stderr.contains("s3cret-pass"), "{stderr}");

    let (up, stderr) = started(serve(&db, dir.path(), Some("true"))).await;
    assert!(up, "did not start: {stderr}");
    // Mailing real inboxes without a public address sends links to this machine: said.
    assert!(stderr.contains("no --public-url is set"), "{stderr}");
}

/// On PostgreSQL, where several instances share one database, a start without a session
/// key says that each instance keeps its own, and what fails unless they share one.
#[actix_web::test]
async fn a_start_on_postgres_without_a_session_key_says_instances_must_share_one() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let (up, stderr) = started(serve(&db, dir.path(), Some("true"))).await;
    assert!(up, "did not start: {stderr}");
    let warned = stderr.contains("give every instance on this database the same key");
    assert_eq!(warned, db.is_postgres(), "{stderr}");
}

#[actix_web::test]
async fn a_disabled_admin_does_not_count_as_the_remaining_admin() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let me = app.user_id(ADMIN_EMAIL);
    let other = app.add_member(ORG, "second@example.com", "Sam", "Second", "admin", false);
    let disabled = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{other}/disable"),
            &[],
        )
        .await;
    assert_eq!(disabled.status, 303, "{}", disabled.body);

    let own = format!("/orgs/{ORG}/users/{me}");
    let member_role = app.role_id(ORG, "member");
    let step_down = [
        ("first_name", "Ada"),
        ("last_name", "Admin"),
        ("role_id", member_role.as_str()),
        ("confirm_own_role", "yes"),
    ];
    let refused = admin.submit(&own, &own, &step_down).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("at least one active admin"));
    let leave = format!("{own}/delete");
    let left = admin
        .submit(&leave, &leave, &[("confirm_email", ADMIN_EMAIL)])
        .await;
    assert_eq!(left.status, 409, "{}", left.body);
    assert_eq!(app.member_role(ORG, &me).as_deref(), Some("admin"));
    assert_eq!(app.membership_status(ORG, &me).as_deref(), Some("active"));

    // Once the other admin's account works again, stepping down is allowed.
    let enabled = admin
        .submit("/admin/users", &format!("/admin/users/{other}/enable"), &[])
        .await;
    assert_eq!(enabled.status, 303);
    let allowed = admin.submit(&own, &own, &step_down).await;
    assert_eq!(allowed.status, 303, "{}", allowed.body);
    assert_eq!(app.member_role(ORG, &me).as_deref(), Some("member"));
}

/// A name shown in lists, mails and the trail must not pass for another: "Admins" with a
/// zero-width space after it, or text turned round by a direction override, is refused
/// wherever a name or an address is typed, with the reason by its field and what was
/// typed kept.
#[actix_web::test]
async fn invisible_characters_are_refused_in_every_name() {
    const SAID: &str = "invisible ones, such as a zero-width space or a mark that reverses text";
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let member = app.role_id("my-org", "member");
    let forms: [(&str, Vec<(&str, &str)>); 4] = [
        ("/orgs/my-org/groups", vec![("name", "Admins\u{200B}")]),
        (
            "/orgs/my-org/pools",
            vec![("name", "Prod\u{202E}UE"), ("parent_id", "")],
        ),
        (
            "/orgs/my-org/roles",
            vec![("name", "\u{2066}Auditor"), ("permissions", "users.read")],
        ),
        (
            "/orgs/my-org/api-tokens",
            vec![
                ("name", "Okta\u{FEFF}"),
                ("role_id", member.as_str()),
                ("expires_days", "30"),
            ],
        ),
    ];
    for (path, fields) in &forms {
        let refused = admin.submit(path, path, fields).await;
        assert_eq!(refused.status, 422, "{path}: {}", refused.body);
        assert!(refused.body.contains(SAID), "{path}: {}", refused.body);
        assert!(
            refused.body.contains(&format!("value=\"{}\"", fields[0].1)),
            "{path} keeps what was typed: {}",
            refused.body
        );
    }
    assert_eq!(app.count("groups"), 0);
    assert_eq!(app.count("pools"), 0);
    assert_eq!(app.count("api_tokens"), 0);

    let invited = admin
        .invite("my-org", "admin\u{200B}@example.com", &member)
        .await;
    let invited = admin.follow_results(invited).await;
    assert!(
        invited.body.contains("cannot contain invisible characters"),
        "{}",
        invited.body
    );
    assert_eq!(app.count("invitations"), 0);

    let token = crate::api_tokens::admin_token(&app, &admin, &["scim"], "member").await;
    let group = reqwest::Client::new()
        .post(app.url("/scim/v2/Groups"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(r#"{"displayName": "Admins\u200b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(group.status(), 400);
    assert_eq!(app.count("groups"), 0);
}

/// An inviter (or an identity provider) could make an account for an address that passes
/// for a member's, `аda@` with a Cyrillic а or `ada@ｅxample.com` with a full-width ｅ,
/// and it read as theirs in the Users tab and the audit trail. New addresses are refused
/// where they enter; an address in one real alphabet (иван@…) is invited as before.
#[actix_web::test]
async fn an_address_that_passes_for_another_is_refused_where_addresses_enter() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let member = app.role_id("my-org", "member");
    const SAID: &str = "cannot mix alphabets within a word";
    for lookalike in ["\u{430}da@example.com", "ada@\u{ff45}xample.com"] {
        let invited = admin.invite("my-org", lookalike, &member).await;
        let invited = admin.follow_results(invited).await;
        assert!(invited.body.contains(SAID), "{lookalike}: {}", invited.body);
    }
    assert_eq!(app.count("invitations"), 0);
    let invited = admin
        .invite(
            "my-org",
            "\u{438}\u{432}\u{430}\u{43d}@example.com",
            &member,
        )
        .await;
    admin.follow_results(invited).await;
    assert_eq!(app.count("invitations"), 1, "one real alphabet is invited");

    let token = crate::api_tokens::admin_token(&app, &admin, &["scim"], "member").await;
    let made = reqwest::Client::new()
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(r#"{"userName": "ada@\uff45xample.com", "active": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 400);
    assert!(made.text().await.unwrap().contains(SAID));
    assert_eq!(app.count("memberships"), 1);
}

/// A name stored before a character joined the rule (by an identity provider, or by an
/// earlier version) does not block the rest of its form: the group's description, the
/// member's role, the pool's place and the role's permissions can still be changed. Only
/// a new name is held to the rule.
#[actix_web::test]
async fn a_name_stored_before_the_rule_can_still_be_edited() {
    use diesel::prelude::*;
    use portcullis::db::schema::{groups, pools, roles, users};
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", false);
    let group = location_id(
        &admin
            .submit(
                "/orgs/my-org/groups",
                "/orgs/my-org/groups",
                &[("name", "Ops")],
            )
            .await,
    );
    let pool = location_id(
        &admin
            .submit(
                "/orgs/my-org/pools",
                "/orgs/my-org/pools",
                &[("name", "Prod"), ("parent_id", "")],
            )
            .await,
    );
    let made = admin
        .submit(
            "/orgs/my-org/roles",
            "/orgs/my-org/roles",
            &[("name", "Keeper"), ("permissions", "users.read")],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    {
        let mut conn = app.conn();
        let conn: &mut portcullis::db::DbConnection = &mut conn;
        diesel::update(groups::table.filter(groups::id.eq(&group)))
            .set(groups::name.eq("Ops\u{200B}"))
            .execute(conn)
            .unwrap();
        diesel::update(pools::table.filter(pools::id.eq(&pool)))
            .set(pools::name.eq("Prod\u{2060}"))
            .execute(conn)
            .unwrap();
        diesel::update(roles::table.filter(roles::name.eq("Keeper")))
            .set(roles::name.eq("Keeper\u{00AD}"))
            .execute(conn)
            .unwrap();
        diesel::update(users::table.filter(users::id.eq(&bob)))
            .set(users::first_name.eq("Bo\u{00AD}b"))
            .execute(conn)
            .unwrap();
    }
    let role = app.role_id("my-org", "engineer");
    let keeper: String = {
        let mut conn = app.conn();
        let conn: &mut portcullis::db::DbConnection = &mut conn;
        roles::table
            .filter(roles::name.eq("Keeper\u{00AD}"))
            .select(roles::id)
            .first(conn)
            .unwrap()
    };
    let group_page = format!("/orgs/my-org/groups/{group}");
    let pool_page = format!("/orgs/my-org/pools/{pool}");
    let role_page = format!("/orgs/my-org/roles/{keeper}");
    let profile = format!("/orgs/my-org/users/{bob}");
    let kept: [(&str, Vec<(&str, &str)>); 4] = [
        (
            &group_page,
            vec![
                ("name", "Ops\u{200B}"),
                ("description", "On call"),
                ("role_id", ""),
            ],
        ),
        (
            &pool_page,
            vec![("name", "Prod\u{2060}"), ("parent_id", "")],
        ),
        (
            &role_page,
            vec![("name", "Keeper\u{00AD}"), ("permissions", "audit.read")],
        ),
        (
            &profile,
            vec![
                ("first_name", "Bo\u{00AD}b"),
                ("last_name", "B"),
                ("role_id", role.as_str()),
            ],
        ),
    ];
    for (path, fields) in &kept {
        let form_page = if path.contains("/roles/") {
            "/orgs/my-org/roles"
        } else {
            path
        };
        let saved = admin.submit(form_page, path, fields).await;
        assert_eq!(saved.status, 303, "{path}: {}", saved.body);
    }
    assert_eq!(app.member_role("my-org", &bob).as_deref(), Some("engineer"));
    // A new name is held to the rule, there as anywhere.
    let renamed_bob = admin
        .submit(
            &profile,
            &profile,
            &[
                ("first_name", "Ro\u{200B}b"),
                ("last_name", "B"),
                ("role_id", role.as_str()),
            ],
        )
        .await;
    assert_eq!(renamed_bob.status, 422, "{}", renamed_bob.body);
    let renamed = admin
        .submit(
            &group_page,
            &group_page,
            &[
                ("name", "Ops\u{2060}"),
                ("description", ""),
                ("role_id", ""),
            ],
        )
        .await;
    assert_eq!(renamed.status, 422, "{}", renamed.body);
}

/// The built-in OpenSSL is built without what neither TLS client can reach
/// (`tools/openssl-configure`); it still carries PostgreSQL's TLS. A database URL asking
/// for it gets an encrypted connection through the portal's own pool, the server's
/// certificate checked against itself (self-signed, as Debian's), fetched from the server.
#[test]
fn a_postgres_url_asking_for_tls_gets_an_encrypted_connection() {
    use diesel::prelude::*;
    use diesel::sql_types::{Bool, Text};

    #[derive(QueryableByName)]
    struct Server {
        #[diesel(sql_type = Bool)]
        offers_tls: bool,
        #[diesel(sql_type = Bool)]
        over_tcp: bool,
        #[diesel(sql_type = Text)]
        certificate: String,
    }

    #[derive(QueryableByName)]
    struct Encryption {
        #[diesel(sql_type = Bool)]
        ssl: bool,
        #[diesel(sql_type = Text)]
        version: String,
    }

    let db = TestDb::new();
    if !db.is_postgres() {
        println!("skipped: needs PostgreSQL (TEST_DATABASE_URL); SQLite has no connection");
        return;
    }
    let pool = |url: &str| {
        let target = portcullis::db::DbTarget::parse(url).unwrap();
        portcullis::db::build_pool(&target, Default::default())
    };
    let server: Server = {
        let mut plain = pool(&db.url).unwrap().get().unwrap();
        let plain: &mut portcullis::db::DbConnection = &mut plain;
        diesel::sql_query(
            "SELECT current_setting('ssl') = 'on' AS offers_tls, \
             inet_server_addr() IS NOT NULL AS over_tcp, \
             CASE WHEN current_setting('ssl') = 'on' \
               THEN pg_read_file(current_setting('ssl_cert_file')) ELSE '' END AS certificate",
        )
        .get_result(plain)
        .unwrap()
    };
    if !(server.offers_tls && server.over_tcp) {
        let why = "the test database offers no TLS here (ssl off, or a Unix socket)";
        // CI's machine runs Debian's PostgreSQL, which offers TLS: there, skipping would hide
        // a build that lost it.
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{why}");
        println!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("server.crt");
    std::fs::write(&root, &server.certificate).unwrap();
    let root = percent_encoding::utf8_percent_encode(
        root.to_str().unwrap(),
        percent_encoding::NON_ALPHANUMERIC,
    );
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}sslmode=verify-ca&sslrootcert={root}", db.url);
    let mut conn = pool(&url)
        .expect("a connection checked against the server's own certificate")
        .get()
        .unwrap();
    let conn: &mut portcullis::db::DbConnection = &mut conn;
    let encryption: Encryption = diesel::sql_query(
        "SELECT ssl, COALESCE(version, '') AS version \
         FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .get_result(conn)
    .unwrap();
    assert!(encryption.ssl, "the connection is not encrypted");
    assert!(
        matches!(encryption.version.as_str(), "TLSv1.2" | "TLSv1.3"),
        "{}",
        encryption.version
    );
}

/// The built-in OpenSSL (narrowed by `tools/openssl-configure`) carries mail's TLS too:
/// with `?tls=starttls` an email goes out encrypted to a server that offers STARTTLS, and
/// only once the server's certificate is trusted; before that, the same server gets
/// nothing and the outbox records why. Trust comes from the system's store, which
/// `SSL_CERT_FILE` replaces here as an operator's private CA would.
#[test]
fn mail_goes_out_over_starttls_only_to_a_server_whose_certificate_is_trusted() {
    use std::ffi::OsStr;

    use diesel::prelude::*;
    use portcullis::db::{self, DbConnection, schema::email_outbox};
    use portcullis::mail::{outbox, templates::Rendered};

    use crate::outbox_crash::{Portal, open, wait_until};
    use crate::smtp::SmtpServer;

    let dir = tempfile::tempdir().unwrap();
    let server = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("smtp.pem"), dir.path().join("smtp.key"));
    std::fs::write(&cert, server.cert.pem()).unwrap();
    std::fs::write(&key, server.signing_key.serialize_pem()).unwrap();
    let smtp = SmtpServer::start_with_starttls(&cert, &key);
    let url = format!("smtp://127.0.0.1:{}?tls=starttls", smtp.port);

    let test_db = TestDb::new();
    let pool = open(&test_db);
    let email = Rendered {
        subject: "Sent over TLS".into(),
        text: "Hello".into(),
        html: "<p>Hello</p>".into(),
    };
    let mut conn = pool.get().unwrap();
    let conn: &mut DbConnection = &mut conn;
    outbox::queue(conn, "tls@example.com", &email, None, db::now()).unwrap();
    let mut last_error = || {
        email_outbox::table
            .select(email_outbox::last_error)
            .first::<Option<String>>(conn)
            .unwrap()
    };

    let retry_soon = ("PORTCULLIS_MAIL_RETRY_DELAY", OsStr::new("200ms"));
    let mut untrusted = Portal::start_with(&test_db, dir.path(), &url, &[retry_soon], "untrusted");
    wait_until("a sending attempt failed", &mut untrusted, || {
        last_error().is_some()
    });
    // SIGTERM: the email is released at once, not after a killed claimer's lease.
    assert!(untrusted.terminate().success(), "{}", untrusted.log());
    let error = last_error().unwrap();
    assert!(error.contains("certificate verify failed"), "{error}");
    assert!(smtp.received().is_empty(), "nothing reached the server");

    let trusted_store = ("SSL_CERT_FILE", cert.as_os_str());
    let env = [retry_soon, trusted_store];
    let mut trusted = Portal::start_with(&test_db, dir.path(), &url, &env, "trusted");
    wait_until("the email was delivered", &mut trusted, || {
        !smtp.received().is_empty()
    });
    let delivered = smtp.received();
    assert_eq!(delivered[0].to, ["tls@example.com"]);
    assert!(delivered[0].decoded().contains("Hello"));
}
