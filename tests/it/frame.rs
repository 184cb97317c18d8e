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
