use std::time::Duration;

use crate::helpers::*;

#[actix_web::test]
async fn sign_in_with_the_right_password_lands_on_the_users_tab() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let browser = app.client();
    let response = browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(response.status, 303);
    assert_eq!(response.location.as_deref(), Some("/orgs"));
    let orgs = browser.get("/orgs").await;
    assert_eq!(orgs.location.as_deref(), Some("/orgs/my-org/users"));
    let users = browser.get("/orgs/my-org/users").await;
    assert_eq!(users.status, 200);
    assert!(users.body.contains(ADMIN_EMAIL));
}

#[actix_web::test]
async fn email_is_matched_without_regard_to_case() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let response = app
        .client()
        .login(" ADMIN@example.COM ", ADMIN_PASSWORD)
        .await;
    assert_eq!(response.status, 303);
}

#[actix_web::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let browser = app.client();
    let wrong = browser.login(ADMIN_EMAIL, "wrong password!").await;
    let unknown = browser.login("nobody@example.com", ADMIN_PASSWORD).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    let message = "That email and password do not match an active account.";
    assert!(wrong.body.contains(message));
    assert!(unknown.body.contains(message));
    assert_eq!(browser.get("/orgs").await.status, 303, "still signed out");
    assert!(
        browser
            .get("/orgs")
            .await
            .location
            .unwrap()
            .starts_with("/login")
    );
}

#[actix_web::test]
async fn repeated_failures_on_one_account_are_throttled() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let browser = app.client();
    for _ in 0..5 {
        assert_eq!(
            browser.login(ADMIN_EMAIL, "wrong password!").await.status,
            401
        );
    }
    // Even the right password is not checked while throttled.
    let throttled = browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(throttled.status, 429);
    assert!(throttled.body.contains("Too many failed sign-in attempts"));
    assert!(throttled.headers.contains_key("retry-after"));
}

#[actix_web::test]
async fn throttling_wears_off_after_the_window() {
    let app = spawn_app_with(|s| {
        s.login_throttle_window = Duration::from_secs(3);
        s.login_max_failures_per_account = 2;
    })
    .await;
    app.setup_admin().await;
    let browser = app.client();
    for _ in 0..2 {
        browser.login(ADMIN_EMAIL, "wrong password!").await;
    }
    assert_eq!(browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 429);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
}

#[actix_web::test]
async fn many_failures_from_one_address_are_throttled_across_accounts() {
    let app = spawn_app_with(|s| s.login_max_failures_per_address = 4).await;
    app.setup_admin().await;
    let browser = app.client();
    for i in 0..4 {
        let email = format!("guess{i}@example.com");
        assert_eq!(browser.login(&email, "wrong password!").await.status, 401);
    }
    assert_eq!(browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 429);
}

#[actix_web::test]
async fn a_cookie_planted_before_sign_in_is_dead_after_it() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let browser = app.client();
    browser.get("/login").await;
    let planted = browser.session_cookie().expect("anonymous session cookie");
    assert_eq!(browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
    let signed_in = browser.session_cookie().unwrap();
    assert_ne!(planted, signed_in, "the session id changes at sign-in");

    let attacker = get_with_cookie(&app.url("/orgs/my-org/users"), &planted).await;
    assert_eq!(attacker.status, 303);
    assert!(attacker.location.unwrap().starts_with("/login"));
    let victim = get_with_cookie(&app.url("/orgs/my-org/users"), &signed_in).await;
    assert_eq!(victim.status, 200);
}

#[actix_web::test]
async fn sign_out_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let cookie = browser.session_cookie().unwrap();
    assert_eq!(
        get_with_cookie(&app.url("/orgs/my-org/users"), &cookie)
            .await
            .status,
        200
    );

    let page = browser.get("/orgs/my-org/users").await;
    let out = browser
        .post("/logout", &[("csrf_token", page.csrf())])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login?signed_out=1"));

    let replay = get_with_cookie(&app.url("/orgs/my-org/users"), &cookie).await;
    assert_eq!(replay.status, 303);
    assert!(replay.location.unwrap().starts_with("/login"));
    assert_eq!(app.count("sessions WHERE user_id IS NOT NULL"), 0);
}

#[actix_web::test]
async fn next_is_followed_only_to_local_paths() {
    let app = spawn_app().await;
    app.setup_admin().await;
    for (next, expected) in [
        ("//evil.example", "/orgs"),
        ("https://evil.example/", "/orgs"),
        ("/\\evil.example", "/orgs"),
        ("/orgs/my-org/users?q=a", "/orgs/my-org/users?q=a"),
    ] {
        let browser = app.client();
        let response = browser
            .submit(
                "/login",
                "/login",
                &[
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(response.location.as_deref(), Some(expected), "next={next}");
    }
}

#[actix_web::test]
async fn pages_need_a_session_and_come_back_after_sign_in() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let browser = app.client();
    let page = browser.get("/orgs/my-org/users?q=x").await;
    assert_eq!(page.status, 303);
    let login = page.location.unwrap();
    assert_eq!(login, "/login?next=%2Forgs%2Fmy-org%2Fusers%3Fq%3Dx");
    let form = browser.get(&login).await;
    assert!(form.body.contains("value=\"/orgs/my-org/users?q=x\""));
}

#[actix_web::test]
async fn idle_sessions_expire() {
    let app = spawn_app_with(|s| s.session_idle_timeout = Duration::from_secs(1)).await;
    let browser = app.setup_admin().await;
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let page = browser.get("/orgs/my-org/users").await;
    assert_eq!(page.status, 303);
    assert!(page.location.unwrap().starts_with("/login"));
}

#[actix_web::test]
async fn ending_all_sessions_of_a_user_signs_out_every_browser() {
    let app = spawn_app().await;
    let first = app.setup_admin().await;
    let second = app.client();
    assert_eq!(second.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
    let user = portcullis::db::users::find_by_email(&mut app.conn(), ADMIN_EMAIL)
        .unwrap()
        .unwrap();
    let ended = portcullis::db::sessions::delete_for_user(&mut app.conn(), &user.id).unwrap();
    assert_eq!(ended, 2);
    for browser in [first, second] {
        assert_eq!(browser.get("/orgs/my-org/users").await.status, 303);
    }
}

#[actix_web::test]
async fn session_cookie_is_http_only_and_same_site_lax() {
    let app = spawn_app().await;
    let page = app.client().get("/login").await;
    let cookie = page.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "plain http in tests");
}

#[actix_web::test]
async fn post_without_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let refused = browser.post("/logout", &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        browser.get("/orgs/my-org/users").await.status,
        200,
        "still signed in"
    );

    let anonymous = app.client();
    anonymous.get("/login").await;
    let login = anonymous
        .post(
            "/login",
            &[
                ("email", ADMIN_EMAIL.into()),
                ("password", ADMIN_PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(login.status, 403);
    assert!(anonymous.session_cookie().is_some());
    assert_eq!(anonymous.get("/orgs").await.status, 303);
}

#[actix_web::test]
async fn another_sessions_csrf_token_is_refused() {
    let app = spawn_app().await;
    let victim = app.setup_admin().await;
    let attacker = app.client();
    let attacker_token = attacker.get("/login").await.csrf();
    let refused = victim
        .post("/logout", &[("csrf_token", attacker_token)])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(victim.get("/orgs/my-org/users").await.status, 200);
}

#[actix_web::test]
async fn cross_site_origin_is_refused_even_with_a_token() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let token = browser.get("/orgs/my-org/users").await.csrf();
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("referer", "https://evil.example/page"),
    ] {
        let response = browser
            .client
            .post(app.url("/logout"))
            .header(header, value)
            .form(&[("csrf_token", token.clone())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{header}");
    }
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
    let same_site = browser
        .client
        .post(app.url("/logout"))
        .header("origin", app.address.clone())
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status().as_u16(), 303);
}

#[actix_web::test]
async fn sign_ins_and_failures_are_audited_without_secrets() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let browser = app.client();
    browser.login(ADMIN_EMAIL, "wrong password!").await;
    browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let events = portcullis::db::audit_events::latest_for_org(&mut app.conn(), None, 10).unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"auth.login_failed"));
    assert!(actions.contains(&"auth.login_succeeded"));
    for e in &events {
        assert!(!e.details.contains("wrong password"));
        assert!(!e.details.contains(ADMIN_PASSWORD));
    }
}

#[actix_web::test]
async fn sessions_end_at_the_absolute_timeout_however_active() {
    let app = spawn_app_with(|s| s.session_absolute_timeout = Duration::from_secs(4)).await;
    let browser = app.setup_admin().await;
    let started = std::time::Instant::now();
    for _ in 0..2 {
        assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(
        Duration::from_secs(4).saturating_sub(started.elapsed()) + Duration::from_millis(300),
    )
    .await;
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 303);
}
