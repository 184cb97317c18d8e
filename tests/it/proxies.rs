//! The client address behind reverse proxies (issue 10, finding 3): forwarding headers are
//! believed only from `--trusted-proxies`, and then only their right-most hop that is not
//! a trusted proxy. A client rotating `X-Forwarded-For` or `Forwarded` chooses nothing.

use std::process::Command;

use portcullis::config::ProxyHeader;

use crate::helpers::*;

const WRONG: &str = "wrong password!";

/// A sign-in post carrying `headers`, from a browser with its own CSRF token.
async fn login_with(
    app: &TestApp,
    browser: &Browser,
    email: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> u16 {
    let token = browser.get("/login").await.csrf();
    let mut request = browser.client.post(app.url("/login")).form(&[
        ("csrf_token", token),
        ("email", email.to_string()),
        ("password", password.to_string()),
    ]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("POST").status().as_u16()
}

fn failures_from(app: &TestApp, ip: &str) -> i64 {
    app.count(&format!(
        "audit_events WHERE action = 'auth.login_failed' AND ip = '{ip}'"
    ))
}

#[actix_web::test]
async fn without_trusted_proxies_forwarding_headers_are_ignored() {
    let app = spawn_app_with(|s| s.login_max_failures_per_address = 4).await;
    app.setup_admin().await;
    let browser = app.client();
    for i in 0..4 {
        let spoofed = format!("6.6.6.{i}");
        let forwarded = format!("for={spoofed}");
        let status = login_with(
            &app,
            &browser,
            &format!("guess{i}@example.com"),
            WRONG,
            &[("X-Forwarded-For", &spoofed), ("Forwarded", &forwarded)],
        )
        .await;
        assert_eq!(status, 401);
    }
    // Rotating the headers did not make four addresses out of one: the socket's is used.
    let status = login_with(
        &app,
        &browser,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        &[
            ("X-Forwarded-For", "6.6.6.99"),
            ("Forwarded", "for=6.6.6.99"),
        ],
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(failures_from(&app, "127.0.0.1"), 4);
    assert_eq!(app.count("audit_events WHERE ip LIKE '6.6.6.%'"), 0);
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.login_max_failures_per_address = 4;
    })
    .await;
    app.setup_admin().await;
    let browser = app.client();

    // The proxy appended 10.0.0.9; whatever the client wrote before it is not believed,
    // however often it changes.
    for i in 0..4 {
        let header = format!("6.6.6.{i}, 10.0.0.9");
        let status = login_with(
            &app,
            &browser,
            &format!("guess{i}@example.com"),
            WRONG,
            &[("X-Forwarded-For", &header)],
        )
        .await;
        assert_eq!(status, 401);
    }
    assert_eq!(failures_from(&app, "10.0.0.9"), 4);
    let status = login_with(
        &app,
        &browser,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        &[("X-Forwarded-For", "6.6.6.99, 10.0.0.9")],
    )
    .await;
    assert_eq!(status, 429, "10.0.0.9 is throttled whatever comes first");
    assert_eq!(app.count("audit_events WHERE ip LIKE '6.6.6.%'"), 0);
    assert_eq!(
        app.count("audit_events WHERE action LIKE 'auth.login%' AND ip = '127.0.0.1'"),
        0
    );

    // Another client behind the same proxy is another address, and the session list
    // shows it.
    let other = app.client();
    let status = login_with(
        &app,
        &other,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        &[("X-Forwarded-For", "6.6.6.6, 10.0.0.10")],
    )
    .await;
    assert_eq!(status, 303);
    let account = other.get("/account").await;
    assert!(account.body.contains("10.0.0.10"), "{}", account.body);
    assert!(!account.body.contains("6.6.6.6"));
}

/// A proxy appends the address it saw to the client's own line: one byte the client
/// sent that is not text once spoiled the whole line, so the walk stopped at the proxy
/// and the client borrowed the proxy's address (its throttle, its audit lines).
#[actix_web::test]
async fn an_unreadable_byte_from_the_client_spoils_only_its_own_hop() {
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.setup_admin().await;
    let browser = app.client();
    let token = browser.get("/login").await.csrf();
    let line = reqwest::header::HeaderValue::from_bytes(b"\xff, 10.0.0.9").unwrap();
    let status = browser
        .client
        .post(app.url("/login"))
        .header("X-Forwarded-For", line)
        .form(&[
            ("csrf_token", token),
            ("email", ADMIN_EMAIL.to_string()),
            ("password", WRONG.to_string()),
        ])
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16();
    assert_eq!(status, 401);
    assert_eq!(failures_from(&app, "10.0.0.9"), 1);
    assert_eq!(failures_from(&app, "127.0.0.1"), 0);
}

#[actix_web::test]
async fn every_trusted_hop_is_skipped_and_forwarded_is_read_only_when_configured() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
    })
    .await;
    app.setup_admin().await;
    let browser = app.client();
    let status = login_with(
        &app,
        &browser,
        ADMIN_EMAIL,
        WRONG,
        &[("X-Forwarded-For", "203.0.113.7, 10.0.0.9")],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(failures_from(&app, "203.0.113.7"), 1);

    // X-Forwarded-For is the configured header: a `Forwarded` header is not read.
    let status = login_with(
        &app,
        &browser,
        ADMIN_EMAIL,
        WRONG,
        &[("Forwarded", "for=203.0.113.8")],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(failures_from(&app, "203.0.113.8"), 0);
    assert_eq!(failures_from(&app, "127.0.0.1"), 1);

    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.proxy_header = ProxyHeader::Forwarded;
    })
    .await;
    app.setup_admin().await;
    let browser = app.client();
    let status = login_with(
        &app,
        &browser,
        ADMIN_EMAIL,
        WRONG,
        &[
            (
                "Forwarded",
                "for=6.6.6.6, for=\"10.0.0.9:4711\";proto=https",
            ),
            ("X-Forwarded-For", "6.6.6.7"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(failures_from(&app, "10.0.0.9"), 1);
    assert_eq!(app.count("audit_events WHERE ip LIKE '6.6.6.%'"), 0);
}

#[test]
fn an_invalid_cidr_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command
            .args(args)
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .env_remove("PORTCULLIS_TRUSTED_PROXIES");
        if let Some(value) = env {
            command.env("PORTCULLIS_TRUSTED_PROXIES", value);
        }
        command.output().unwrap()
    };

    let flag = run(
        &["--trusted-proxies", "10.0.0.0/8,10.0.0.0/33", "migrate"],
        None,
    );
    assert!(!flag.status.success());
    let stderr = String::from_utf8_lossy(&flag.stderr);
    assert!(stderr.contains("--trusted-proxies"), "{stderr}");
    assert!(stderr.contains("10.0.0.0/33"), "{stderr}");
    assert!(stderr.contains("not a CIDR"), "{stderr}");

    let env = run(&["migrate"], Some("proxy.example"));
    assert!(!env.status.success());
    assert!(String::from_utf8_lossy(&env.stderr).contains("proxy.example"));

    // The old boolean is gone rather than silently ignored.
    let old = run(&["--trust-proxy", "migrate"], None);
    assert!(!old.status.success());
    assert!(String::from_utf8_lossy(&old.stderr).contains("--trust-proxy"));
    let old_env = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["migrate"])
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .env("PORTCULLIS_TRUST_PROXY", "true")
        .output()
        .unwrap();
    assert!(!old_env.status.success());
    assert!(String::from_utf8_lossy(&old_env.stderr).contains("PORTCULLIS_TRUSTED_PROXIES"));
}

/// One machine holds a whole IPv6 /64: a new source address for every guess is still the
/// one client, while its neighbour in the next /64 is another.
#[actix_web::test]
async fn an_ipv6_client_rotating_addresses_in_its_64_is_throttled_as_one() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.login_max_failures_per_address = 4;
    })
    .await;
    app.setup_admin().await;
    let browser = app.client();
    for i in 0..4 {
        let address = format!("2001:db8:1:2::{:x}", i + 1);
        let status = login_with(
            &app,
            &browser,
            &format!("guess{i}@example.com"),
            WRONG,
            &[("X-Forwarded-For", &address)],
        )
        .await;
        assert_eq!(status, 401, "guess {i}");
    }
    let status = login_with(
        &app,
        &browser,
        "guess9@example.com",
        WRONG,
        &[("X-Forwarded-For", "2001:db8:1:2:ffff:1:2:3")],
    )
    .await;
    assert_eq!(
        status, 429,
        "a fifth address in the same /64 is the same client"
    );
    let neighbour = app.client();
    let status = login_with(
        &app,
        &neighbour,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        &[("X-Forwarded-For", "2001:db8:1:3::1")],
    )
    .await;
    assert_eq!(status, 303, "the next /64 is another client");
}
