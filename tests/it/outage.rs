//! The database goes away: every request answers a 503 page with a request id, quickly,
//! is logged and counted; `/healthz` stays up, `/readyz` says why; pages recover by
//! themselves. On SQLite, a database that cannot be written answers 503 naming the cause.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use portcullis::startup::Application;
use reqwest::redirect::Policy;

use crate::helpers::*;

/// No timing assertion beyond "answered": a request that hangs (as the session lookup
/// did, for 10 s, before the pool's timeout was shortened) fails with this client timeout
/// instead of passing late. The design target is an answer within 3 s.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(8);

struct Answer {
    status: u16,
    request_id: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
    took: Duration,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("http client")
}

async fn send(request: reqwest::RequestBuilder, what: &str) -> Answer {
    let started = Instant::now();
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: no answer within {CLIENT_TIMEOUT:?}: {e}"));
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    let took = started.elapsed();
    println!("{what}: {status} in {took:?}");
    Answer {
        status,
        request_id,
        headers,
        body,
        took,
    }
}

async fn get(url: &str, cookie: Option<&str>, what: &str) -> Answer {
    let mut request = client().get(url);
    if let Some(cookie) = cookie {
        request = request.header(reqwest::header::COOKIE, cookie);
    }
    send(request, what).await
}

async fn post(url: &str, cookie: &str, form: &[(&str, &str)], what: &str) -> Answer {
    let request = client()
        .post(url)
        .header(reqwest::header::COOKIE, cookie)
        .form(form);
    send(request, what).await
}

fn assert_unavailable_page(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 503, "{what}: {}", answer.body);
    assert!(
        answer
            .request_id
            .as_deref()
            .is_some_and(|id| !id.is_empty()),
        "{what}: the 503 carries an X-Request-Id"
    );
    // Never framed, cached or sniffed, whichever layer answered it.
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(
            answer.headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name}"
        );
    }
    assert!(
        answer.headers.contains_key("content-security-policy"),
        "{what}"
    );
    assert!(
        answer.body.contains("The database is unavailable"),
        "{what}: the page says the database is unavailable: {}",
        answer.body
    );
}

/// The number `/metrics` reports for `route` answering `status`.
fn counted(metrics: &str, method: &str, route: &str, status: u16) -> u64 {
    let series = format!(
        "http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Cuts the test's own database off: no new connections, and every open one ended.
fn set_allow_connections(db_url: &str, allow: bool) {
    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let name = db_url.rsplit_once('/').expect("database name").1;
    assert!(
        name.starts_with("pc_test_"),
        "only a database the test owns"
    );
    let mut conn = PgConnection::establish(&server).expect("connect to the test server");
    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}"))
        .execute(&mut conn)
        .expect("alter database");
    if !allow {
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&mut conn)
        .expect("terminate backends");
    }
}

/// Ends the connections the portal holds to the test's own database, from a connection
/// of its own opened beforehand so that ending them takes milliseconds.
struct ConnectionCutter {
    server: PgConnection,
    name: String,
}

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

impl ConnectionCutter {
    fn new(db_url: &str) -> Self {
        let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
        let name = db_url
            .rsplit_once('/')
            .expect("database name")
            .1
            .to_string();
        assert!(
            name.starts_with("pc_test_"),
            "only a database the test owns"
        );
        let server = PgConnection::establish(&server).expect("connect to the test server");
        Self { server, name }
    }

    /// Ends every connection open now, waits until the server has let them go, and
    /// answers how many there were. New connections stay allowed.
    fn cut(&mut self) -> usize {
        let open: Vec<Backend> = diesel::sql_query(format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        ))
        .load(&mut self.server)
        .expect("list backends");
        let pids: Vec<String> = open.iter().map(|b| b.pid.to_string()).collect();
        if !pids.is_empty() {
            diesel::sql_query(format!(
                "SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[{}]) AS pid",
                pids.join(", ")
            ))
            .execute(&mut self.server)
            .expect("terminate backends");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids.is_empty() {
            let left: Vec<Backend> = diesel::sql_query(format!(
                "SELECT pid FROM pg_stat_activity WHERE pid IN ({})",
                pids.join(", ")
            ))
            .load(&mut self.server)
            .expect("list backends");
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "backends did not end: {}",
                left.len()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        pids.len()
    }
}

/// A start while the database refuses connections (still coming up beside the portal,
/// or restarting) waits for it, where it gave up after the two seconds a request waits.
#[actix_web::test]
async fn a_start_waits_for_a_database_that_comes_up_late() {
    let db = Arc::new(TestDb::new());
    if !db.is_postgres() {
        println!("skipped: needs PostgreSQL (TEST_DATABASE_URL); a SQLite file is there or not");
        return;
    }
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    set_allow_connections(&db.url, false);
    let url = db.url.clone();
    let comes_up = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(4));
        set_allow_connections(&url, true);
    });
    let settings =
        portcullis::config::Settings::for_tests(db.url.clone(), data_dir.path().to_path_buf());
    let app = Application::build(settings).await;
    comes_up.join().unwrap();
    let app = app.expect("the start waited for the database");
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    let ready = get(
        &format!("{address}/readyz"),
        None,
        "readyz after a late start",
    )
    .await;
    assert_eq!(ready.status, 200, "{}", ready.body);
}

/// A pooled connection that proved alive within the last half second is lent to a read
/// without a `SELECT 1` (HikariCP's "alive bypass window"), so one the server dropped in
/// that time reaches a read: the read runs again on a checked connection. Everything
/// else (here an anonymous sign-in: no session read before it, and its work may write) gets
/// only checked connections, as before.
#[actix_web::test]
async fn postgres_connections_dropped_in_the_pool_cost_no_request() {
    let app = spawn_app().await;
    if !app.db.is_postgres() {
        println!("skipped: needs PostgreSQL (TEST_DATABASE_URL); SQLite has no server to lose");
        return;
    }
    let admin = app.setup_admin().await;
    let visitor = app.client();
    let csrf = visitor.get("/login").await.csrf();
    let mut cutter = ConnectionCutter::new(&app.db.url);

    cut_right_after_a_page(&admin, &mut cutter).await;
    let users = admin.get("/orgs/my-org/users").await;
    assert_eq!(
        users.status, 200,
        "the Users tab right after: {}",
        users.body
    );
    assert!(users.body.contains(ADMIN_EMAIL), "{}", users.body);

    cut_right_after_a_page(&admin, &mut cutter).await;
    let form = [
        ("csrf_token", csrf),
        ("email", ADMIN_EMAIL.to_string()),
        ("password", ADMIN_PASSWORD.to_string()),
    ];
    let signed_in = visitor.post("/login", &form).await;
    assert_eq!(
        signed_in.status, 303,
        "a sign-in right after: {}",
        signed_in.body
    );
}

/// A page, which proves the pool's connections alive, then every connection cut well
/// within the half-second window that follows (tried again if the machine was too slow).
async fn cut_right_after_a_page(admin: &Browser, cutter: &mut ConnectionCutter) {
    for _ in 0..5 {
        assert_eq!(admin.get("/orgs/my-org/users").await.status, 200);
        let proven = Instant::now();
        assert!(cutter.cut() > 0, "the portal held connections");
        if proven.elapsed() < Duration::from_millis(400) {
            return;
        }
    }
    panic!("never cut the pool within the window");
}

#[actix_web::test]
async fn postgres_cut_off_answers_503_pages_fast_and_recovers() {
    let app = spawn_app().await;
    if !app.db.is_postgres() {
        println!("skipped: needs PostgreSQL (TEST_DATABASE_URL); SQLite has no server to lose");
        return;
    }
    let admin = app.setup_admin().await;
    let cookie = admin.session_cookie().expect("signed in");
    let orgs = app.url("/orgs/my-org/groups");
    assert_eq!(
        get(&orgs, Some(&cookie), "signed in, before").await.status,
        200
    );
    // An anonymous visitor with a sign-in form in front of them; its CSRF token lives in
    // their own cookie, so it needs no database.
    let visitor = app.client();
    let login_page = visitor.get("/login").await;
    let csrf = login_page.csrf();
    let visitor_cookie = visitor.session_cookie().expect("anonymous cookie");
    let sign_in = [
        ("csrf_token", csrf.as_str()),
        ("email", ADMIN_EMAIL),
        ("password", ADMIN_PASSWORD),
    ];

    set_allow_connections(&app.db.url, false);

    let signed_in = get(&orgs, Some(&cookie), "signed in, database cut off").await;
    assert_unavailable_page(&signed_in, "signed-in GET /orgs/my-org/groups");
    let anonymous = post(
        &app.url("/login"),
        &visitor_cookie,
        &sign_in,
        "anonymous sign-in, database cut off",
    )
    .await;
    assert_unavailable_page(&anonymous, "anonymous POST /login");
    let no_cookie = get(
        &app.url("/invite/no-such-token"),
        None,
        "anonymous invitation link, database cut off",
    )
    .await;
    assert_unavailable_page(&no_cookie, "anonymous GET /invite/{token}");

    // /healthz never touches the database, even with a session cookie.
    let health = get(&app.url("/healthz"), Some(&cookie), "healthz, cut off").await;
    assert_eq!((health.status, health.body.trim()), (200, "ok"));
    let ready = get(&app.url("/readyz"), Some(&cookie), "readyz, cut off").await;
    assert_eq!(ready.status, 503);
    let mut lines = ready.body.lines();
    assert_eq!(lines.next(), Some("database unavailable"));
    let reason = lines.next().unwrap_or_default();
    assert!(
        [
            "timed out waiting for connection",
            "the database refused the check",
        ]
        .contains(&reason),
        "/readyz says why: {reason:?}"
    );
    assert!(
        !reason.contains("5432") && !reason.contains("127.0.0.1"),
        "/readyz answers anyone: the database's address stays in the log ({reason:?})"
    );
    println!("/readyz reason: {reason}");

    let metrics = get(&app.url("/metrics"), Some(&cookie), "metrics, cut off").await;
    assert_eq!(metrics.status, 200);
    assert!(
        counted(&metrics.body, "GET", "/orgs/{org}/groups", 503) >= 1,
        "{}",
        metrics.body
    );
    assert!(
        counted(&metrics.body, "POST", "/login", 503) >= 1,
        "{}",
        metrics.body
    );
    assert!(counted(&metrics.body, "GET", "/invite/{token}", 503) >= 1);
    assert!(counted(&metrics.body, "GET", "/readyz", 503) >= 1);
    let slowest = [&signed_in, &anonymous, &no_cookie, &ready]
        .iter()
        .map(|a| a.took)
        .max();
    println!("slowest answer during the outage: {slowest:?} (target: under 3 s)");

    set_allow_connections(&app.db.url, true);

    // Recovery needs no restart: the pool reconnects on the next request.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = get(&orgs, Some(&cookie), "signed in, database back").await;
        if again.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", again.status);
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
    let signed_in_again = post(
        &app.url("/login"),
        &visitor_cookie,
        &sign_in,
        "anonymous sign-in, database back",
    )
    .await;
    assert_eq!(signed_in_again.status, 303, "{}", signed_in_again.body);
    let ready = get(&app.url("/readyz"), None, "readyz, back").await;
    assert_eq!((ready.status, ready.body.trim()), (200, "ready"));
    let metrics = get(&app.url("/metrics"), None, "metrics, back").await;
    assert!(counted(&metrics.body, "GET", "/orgs/{org}/groups", 200) >= 2);
}

/// Log lines about unavailable databases, from every test in this binary (the subscriber
/// is global); bounded because only those lines are kept.
fn captured_logs() -> Option<Arc<Mutex<Vec<u8>>>> {
    static LOGS: OnceLock<Option<Arc<Mutex<Vec<u8>>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        use tracing_subscriber::filter::{LevelFilter, Targets};
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let installed = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .finish()
            .with(Targets::new().with_target("portcullis", LevelFilter::INFO))
            .try_init()
            .is_ok();
        installed.then_some(logs)
    })
    .clone()
}

fn logged(logs: &Option<Arc<Mutex<Vec<u8>>>>) -> String {
    logs.as_ref()
        .map(|l| String::from_utf8_lossy(&l.lock().unwrap()).into_owned())
        .unwrap_or_else(|| "(logs not captured)".into())
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.windows(20).any(|w| w == b"database unavailable")
            && let Ok(mut logs) = self.0.lock()
        {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fresh app with a signed-in admin and the admin's cookie, on SQLite only: the tests
/// that open its database file read-only have no PostgreSQL counterpart.
async fn sqlite_app_with_admin() -> Option<(TestApp, Browser, String)> {
    let app = spawn_app().await;
    if app.db.is_postgres() {
        println!("skipped: SQLite only (a read-only database file)");
        return None;
    }
    let admin = app.setup_admin().await;
    let cookie = admin.session_cookie().expect("signed in");
    Some((app, admin, cookie))
}

/// A second instance on `app`'s SQLite file opened read-only (`mode=ro`), as after a
/// remount read-only: this works as root too, where `chmod 0444` would not stop writes.
/// Its base URL.
async fn read_only_instance(app: &TestApp) -> String {
    let mut settings = app.settings.clone();
    settings.database_url = Some(format!("sqlite:file:{}?mode=ro", app.db.url));
    let read_only = Application::build(settings)
        .await
        .expect("an instance starts on a read-only database it need not migrate");
    let base = format!("http://127.0.0.1:{}", read_only.port());
    actix_web::rt::spawn(read_only.run_until_stopped());
    base
}

/// A session that ran out while the database cannot be written still ends: its browser
/// is sent to sign in, though the expired row cannot be deleted. Failing on that delete
/// answered 503 to every request of that browser, the sign-in page included.
#[actix_web::test]
async fn an_expired_session_on_a_read_only_database_signs_its_visitor_out() {
    let Some((app, _admin, cookie)) = sqlite_app_with_admin().await else {
        return;
    };
    {
        let mut conn = app.conn();
        diesel::sql_query("UPDATE sessions SET expires_at = '2000-01-01 00:00:00'")
            .execute(&mut *conn)
            .expect("sessions expired");
    }
    let sessions = app.count("sessions");

    let base = read_only_instance(&app).await;

    let page = get(
        &format!("{base}/orgs/my-org/groups"),
        Some(&cookie),
        "read-only: an expired session's GET",
    )
    .await;
    assert_eq!(page.status, 303, "sent to sign in: {}", page.body);
    let login = get(
        &format!("{base}/login"),
        Some(&cookie),
        "read-only: sign-in page",
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(
        app.count("sessions"),
        sessions,
        "the expired row could not go"
    );
}

/// The SQLite file opened read-only by a second instance (`read_only_instance`).
#[actix_web::test]
async fn sqlite_read_only_database_answers_503_naming_the_cause() {
    let logs = captured_logs();
    let Some((app, admin, cookie)) = sqlite_app_with_admin().await else {
        return;
    };

    let base = read_only_instance(&app).await;

    // Existing sessions keep reading.
    let groups = format!("{base}/orgs/my-org/groups");
    let page = get(&groups, Some(&cookie), "read-only: signed-in GET").await;
    assert_eq!(page.status, 200, "{}", logged(&logs));
    let csrf = hidden_value(&page.body, "csrf_token").expect("form token");

    // A change cannot be stored: a clear 503, not a 500.
    let created = post(
        &groups,
        &cookie,
        &[("csrf_token", &csrf), ("name", "Ops")],
        "read-only: create a group",
    )
    .await;
    assert_eq!(created.status, 503, "{}", created.body);
    assert!(created.request_id.is_some());
    assert!(
        created
            .body
            .contains("The database is unavailable for changes"),
        "{}",
        created.body
    );
    assert_eq!(app.count("groups"), 0);

    // The log line names the real cause, under the request's id.
    match logs {
        None => println!("log check skipped: another tracing subscriber was installed first"),
        Some(logs) => {
            let id = created.request_id.unwrap();
            let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
            let line = text
                .lines()
                .find(|l| l.contains(&id))
                .unwrap_or_else(|| panic!("no log line for request {id}: {text}"));
            assert!(
                line.contains("attempt to write a readonly database"),
                "{line}"
            );
        }
    }

    // The writable instance is unaffected.
    let created = admin
        .submit(
            "/orgs/my-org/groups",
            "/orgs/my-org/groups",
            &[("name", "Ops")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
}
