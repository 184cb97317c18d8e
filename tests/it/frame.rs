use crate::helpers::*;

#[actix_web::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    for path in ["/login", "/orgs/my-org/users", "/no-such-page", "/healthz"] {
        let page = browser.get(path).await;
        let h = &page.headers;
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}");
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(h.contains_key("x-request-id"), "{path}");
    }
}

#[actix_web::test]
async fn pages_have_no_inline_script() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    for path in ["/login", "/orgs/my-org/users", "/no-such-page"] {
        let body = browser.get(path).await.body;
        assert!(!body.contains("<script>"), "{path}");
        assert!(!body.contains(" onclick="), "{path}");
    }
}

#[actix_web::test]
async fn static_assets_are_embedded_and_cached() {
    let app = spawn_app().await;
    let browser = app.client();
    let login = browser.get("/login").await;
    let start = login.body.find("/static/app.css?v=").unwrap();
    let end = login.body[start..].find('"').unwrap() + start;
    let css = browser.get(&login.body[start..end]).await;
    assert_eq!(css.status, 200);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        css.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert!(css.body.contains(".topbar"));
    assert_eq!(browser.get("/static/app.js").await.status, 200);
    assert_eq!(browser.get("/static/missing.js").await.status, 404);
    // Asked for another build's version (a page from a newer instance reaching an older
    // one mid-upgrade), or none, it answers its own bytes but lets nobody keep them.
    for url in ["/static/app.css?v=0123456789ab", "/static/app.css"] {
        let other = browser.get(url).await;
        assert_eq!(other.status, 200);
        assert_eq!(other.headers["cache-control"], "no-store", "{url}");
    }
}

#[actix_web::test]
async fn unknown_pages_show_a_404_in_the_frame() {
    let app = spawn_app().await;
    let page = app.client().get("/definitely/not/here").await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("Page not found"));
    assert!(page.body.contains("class=\"topbar\""));
}

#[actix_web::test]
async fn an_org_the_user_is_not_in_looks_like_one_that_does_not_exist() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    {
        let mut conn = app.conn();
        diesel::Connection::transaction(&mut *conn, |conn| {
            portcullis::domain::orgs::create(conn, "other", "Other", None, &Default::default())
                .map(|_| ())
        })
        .unwrap();
    }
    let other = browser.get("/orgs/other/users").await;
    let missing = browser.get("/orgs/nope/users").await;
    assert_eq!(other.status, 404);
    assert_eq!(missing.status, 404);
    assert_eq!(
        other.body.replace("other", ""),
        missing.body.replace("nope", "")
    );
}

#[actix_web::test]
async fn navigation_shows_the_org_tabs_and_account_menu() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let page = browser.get("/orgs/my-org/users").await;
    for needle in [
        "href=\"/orgs/my-org/users\" aria-current=\"page\"",
        "href=\"/orgs/my-org/invitations\"",
        "href=\"/orgs/my-org/groups\"",
        "href=\"/orgs/my-org/pools\"",
        "href=\"/orgs/my-org/audit\"",
        "action=\"/logout\"",
        "My organization",
    ] {
        assert!(page.body.contains(needle), "missing {needle}");
    }
}

#[actix_web::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let browser = app.client();
    let health = browser.get("/healthz").await;
    assert_eq!((health.status, health.body.trim()), (200, "ok"));
    let ready = browser.get("/readyz").await;
    assert_eq!((ready.status, ready.body.trim()), (200, "ready"));
}

/// Mid-upgrade, once a newer version has migrated the database, an instance of this one
/// is no longer ready: the load balancer drains it instead of letting it write rows the
/// newer version keeps otherwise (it changes memberships without counting them).
#[actix_web::test]
async fn readiness_fails_once_a_newer_version_migrated_the_database() {
    let app = spawn_app().await;
    app.setup_admin().await;
    assert_eq!(app.client().get("/readyz").await.status, 200);
    let mut conn = app.conn();
    let conn: &mut portcullis::db::DbConnection = &mut conn;
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000001')",
        ),
        conn,
    )
    .unwrap();
    let ready = app.client().get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.body.lines().next(),
        Some("database upgraded by a newer version")
    );

    // Draining stops the traffic, not the instance's own work: that stops too, or it
    // would go on ending memberships (and sending mail) by the older rules. Its expiry
    // job, every 200 ms here, leaves Bob alone as this call does.
    use diesel::prelude::*;
    use portcullis::db::schema::memberships;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);
    let yesterday = portcullis::db::now() - chrono::Duration::days(1);
    diesel::update(memberships::table.filter(memberships::user_id.eq(&bob)))
        .set(memberships::access_until.eq(Some(yesterday)))
        .execute(conn)
        .unwrap();
    let expire = |conn: &mut portcullis::db::DbConnection| {
        portcullis::domain::expiry::expire_due(conn, portcullis::db::now()).unwrap()
    };
    assert_eq!(expire(conn), 0);
    assert_eq!(
        app.membership_status("my-org", &bob).as_deref(),
        Some("active")
    );
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "DELETE FROM __diesel_schema_migrations WHERE version = '29990101000001'",
        ),
        conn,
    )
    .unwrap();
    // The portal's own expiry job (every 200 ms here) may now end it first.
    expire(conn);
    assert_eq!(
        app.membership_status("my-org", &bob).as_deref(),
        Some("inactive")
    );
}

/// Only PostgreSQL has a server that can go away under a running portal; an open SQLite
/// file keeps working even when unlinked.
#[actix_web::test]
async fn readiness_fails_when_the_database_server_is_gone() {
    let app = spawn_app().await;
    if !app.db.is_postgres() {
        return;
    }
    let server = std::env::var("TEST_DATABASE_URL").unwrap();
    let name = app.db.url.rsplit('/').next().unwrap().to_string();
    let mut conn = <diesel::PgConnection as diesel::Connection>::establish(&server).unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)")),
        &mut conn,
    )
    .unwrap();
    let ready = app.client().get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body.lines().next(), Some("database unavailable"));
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern_without_secrets() {
    let app = spawn_app().await;
    let browser = app.client();
    for _ in 0..3 {
        browser.get("/login").await;
    }
    browser.get("/invite/secret-looking-token-123").await;
    let metrics = browser.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        metrics
            .body
            .contains("http_requests_total{method=\"GET\",route=\"/login\",status=\"200\"} 3"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("route=\"/invite/{token}\""));
    assert!(!metrics.body.contains("secret-looking-token-123"));
    assert!(
        metrics
            .body
            .contains("http_request_duration_seconds_count{method=\"GET\",route=\"/login\"} 3")
    );
}

/// Sends one raw HTTP/1.1 request with this session cookie and answers its status and
/// the bytes after the headers, so a body the server wrongly sends cannot hide in a
/// client that knows HEAD has none.
async fn raw_request(address: &str, method: &str, path: &str, cookie: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header block")
        + 4;
    let head = String::from_utf8_lossy(&answer[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    (status, answer[end..].to_vec())
}

#[actix_web::test]
async fn head_answers_like_get_without_a_body_on_every_page() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let cookie = browser.session_cookie().unwrap();
    let admin_id = app.user_id(ADMIN_EMAIL);
    let mut checked = 0;
    for route in registered_routes()
        .into_iter()
        .filter(|r| r.method == "GET")
    {
        let path = route
            .path
            .replace("{org}", "my-org")
            .replace("{name}", "app.css")
            .replace("{id}", &admin_id)
            .replace("{user_id}", &admin_id);
        // Any other parameter (tokens) gets a value that matches nothing.
        let path = unmatched_params(&path);
        let (get_status, get_body) = raw_request(&app.address, "GET", &path, &cookie).await;
        let (head_status, head_body) = raw_request(&app.address, "HEAD", &path, &cookie).await;
        assert_eq!(head_status, get_status, "HEAD {path}");
        assert!(head_body.is_empty(), "HEAD {path} sent a body");
        if get_status == 200 {
            assert!(!get_body.is_empty(), "GET {path}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} pages answered 200");
}

fn unmatched_params(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str("no-such-thing");
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Two rules that set the same property of the same selector fight, and the later one
/// silently wins (the Invited tab's pills once stretched like inputs that way).
#[actix_web::test]
async fn no_two_css_rules_set_the_same_property_of_the_same_selector() {
    let app = spawn_app().await;
    let css = app.client().get("/static/app.css").await.body;
    let mut seen = std::collections::HashMap::<(String, String), usize>::new();
    let mut rest = strip_comments(&css);
    let mut depth_skip = false;
    while let Some(open) = rest.find('{') {
        let selectors = rest[..open].trim().to_string();
        let close = rest[open..].find('}').unwrap() + open;
        if selectors.starts_with('@') {
            // A media block: its rules deliberately override the ones above.
            depth_skip = true;
            rest = rest[open + 1..].to_string();
            continue;
        }
        let body = rest[open + 1..close].to_string();
        rest = rest[close + 1..].to_string();
        if depth_skip {
            if rest.trim_start().starts_with('}') {
                depth_skip = false;
                rest = rest.trim_start()[1..].to_string();
            }
            continue;
        }
        for selector in selectors.split(',') {
            let selector = selector.split_whitespace().collect::<Vec<_>>().join(" ");
            for declaration in body.split(';') {
                let Some((property, _)) = declaration.split_once(':') else {
                    continue;
                };
                *seen
                    .entry((selector.clone(), property.trim().to_string()))
                    .or_default() += 1;
            }
        }
    }
    let twice: Vec<_> = seen.into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.is_empty(), "set more than once: {twice:?}");
}

fn strip_comments(css: &str) -> String {
    let mut out = String::new();
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").unwrap() + start + 2;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
