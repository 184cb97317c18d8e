use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel::{Connection, PgConnection};
use portcullis::config::Settings;
use portcullis::db::{DbConnection, DbPool};
use portcullis::startup::{Application, SESSION_COOKIE};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderValue;
use reqwest::redirect::Policy;

/// Shorter than the server's keep-alive, so no request rides a connection being closed.
const IDLE_CONNECTION: Duration = Duration::from_secs(2);

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A fresh database: a temp SQLite file, or a new PostgreSQL database when
/// TEST_DATABASE_URL names a server.
pub struct TestDb {
    pub url: String,
    pg_admin: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match std::env::var("TEST_DATABASE_URL") {
            Ok(server) if server.starts_with("postgres") => {
                let name = format!("pc_test_{}", uuid::Uuid::now_v7().simple());
                // Before this process's first PostgreSQL connection (see `init_tls`).
                portcullis::db::init_tls();
                let mut conn =
                    PgConnection::establish(&server).expect("connect to TEST_DATABASE_URL");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
                TestDb {
                    url: format!("{base}/{name}"),
                    pg_admin: Some((server.clone(), name)),
                    _dir: dir,
                }
            }
            _ => {
                let url = dir.path().join("test.db").to_string_lossy().into_owned();
                TestDb {
                    url,
                    pg_admin: None,
                    _dir: dir,
                }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg_admin.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.pg_admin
            && let Ok(mut conn) = PgConnection::establish(server)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub setup_url: Option<String>,
    pub pool: DbPool,
    pub settings: Settings,
    pub db: Arc<TestDb>,
    data_dir: Arc<tempfile::TempDir>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = Arc::new(TestDb::new());
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut settings = Settings::for_tests(db.url.clone(), data_dir.path().to_path_buf());
    settings.workers = Some(1);
    settings.db_pool_size = Some(4);
    // Starts at the system time; `TestApp::advance_clock` moves it for date rules.
    settings.clock = portcullis::config::Clock::adjustable();
    configure(&mut settings);
    start(settings, db, data_dir).await
}

async fn start(settings: Settings, db: Arc<TestDb>, data_dir: Arc<tempfile::TempDir>) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let setup_url = app
        .setup_url
        .as_ref()
        .map(|u| format!("{address}{}", &u[u.find("/setup/").unwrap()..]));
    let pool = app.pool();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        setup_url,
        pool,
        settings,
        db,
        data_dir,
    }
}

/// `portcullis serve` as a process of its own on a test app's database and data
/// directory: another instance behind the same load balancer, sharing nothing in memory
/// with the test's. Killed when dropped.
pub struct OtherInstance {
    child: std::process::Child,
    pub address: String,
}

impl Drop for OtherInstance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    /// Starts an [`OtherInstance`] and waits until it answers `/readyz`. A free port is
    /// chosen, then given to it: another test may take it in between, so a start that
    /// exits is tried again on another.
    pub async fn other_instance(&self) -> OtherInstance {
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .arg("serve")
                .args(["--bind", &format!("127.0.0.1:{port}")])
                .env("PORTCULLIS_DATABASE_URL", &self.db.url)
                .env("PORTCULLIS_DATA_DIR", self.data_dir.path())
                .env_remove("PORTCULLIS_SMTP_URL")
                .env("PORTCULLIS_LOG", "warn")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start portcullis");
            let mut other = OtherInstance {
                child,
                address: format!("http://127.0.0.1:{port}"),
            };
            let ready = format!("{}/readyz", other.address);
            for _ in 0..600 {
                if let Ok(Some(_)) = other.child.try_wait() {
                    break;
                }
                if let Ok(answer) = reqwest::get(&ready).await
                    && answer.status() == 200
                {
                    return other;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = other.child.kill();
        }
        panic!("another instance did not start");
    }

    /// Another instance on the same database and data directory, as after a restart.
    pub async fn restart(&self) -> TestApp {
        start(
            self.settings.clone(),
            self.db.clone(),
            self.data_dir.clone(),
        )
        .await
    }

    /// Moves the app's clock (what its date rules, such as the two-factor deadline, take
    /// as now) forward; a restarted instance shares the move.
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.settings.clock.advance(by);
    }

    /// Test set-up, not a step: a minute passes for the invitation to `email`. Resending
    /// is throttled to once a minute (`RESEND_INTERVAL`, a constant with no setting), so
    /// instead of sleeping its last sending is moved two minutes back; nothing else
    /// changes, and the person still resends through the page.
    pub fn a_minute_passes(&self, email: &str) {
        use portcullis::db::schema::invitations;
        let mut conn = self.conn();
        let conn: &mut portcullis::db::DbConnection = &mut conn;
        diesel::update(invitations::table.filter(invitations::email.eq(email)))
            .set(invitations::last_sent_at.eq(portcullis::db::now() - chrono::Duration::minutes(2)))
            .execute(conn)
            .expect("moving the last sending back");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn conn(&self) -> TestConn {
        TestConn(self.pool.get().expect("database connection"))
    }

    pub fn client(&self) -> Browser {
        Browser::new(&self.address)
    }

    /// Completes the first-admin setup and answers a browser signed in as that admin.
    pub async fn setup_admin(&self) -> Browser {
        let browser = self.client();
        let setup = self
            .setup_url
            .clone()
            .expect("fresh installation has a setup link");
        let page = browser.get_abs(&setup).await;
        assert_eq!(page.status, 200);
        let response = browser
            .post_abs(&setup, &first_admin_form(page.csrf()))
            .await;
        assert_eq!(response.status, 303, "{}", response.body);
        browser
    }

    /// Waits until the background worker has handled every queued "forgot password"
    /// request: the request page answers before the link, email and event exist.
    pub async fn reset_requests_handled(&self) {
        for _ in 0..200 {
            if self.count("password_reset_requests") == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the password reset worker did not handle its queue");
    }

    pub fn count(&self, sql_table: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn();
        let conn: &mut DbConnection = &mut conn;
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {sql_table}"))
            .get_result::<Count>(conn)
            .expect("count")
            .n
    }
}

/// A pooled connection to the test's database, as the `DbConnection` queries take.
pub struct TestConn(r2d2::PooledConnection<portcullis::db::ConnectionManager>);

impl std::ops::Deref for TestConn {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.0
    }
}

impl std::ops::DerefMut for TestConn {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.0
    }
}

/// A cookie-keeping HTTP client that does not follow redirects, so tests see each 303.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    base: String,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        hidden_value(&self.body, "csrf_token").expect("page has a CSRF token")
    }

    /// The path (`/invite/...`) of each copyable link on an invitation results page.
    pub fn invite_links(&self) -> Vec<String> {
        self.body
            .match_indices("data-copy=\"")
            .map(|(i, m)| {
                let start = i + m.len();
                let link = &self.body[start..start + self.body[start..].find('"').unwrap()];
                link[link.find("/invite/").expect("an invite link")..].to_string()
            })
            .collect()
    }

    /// The path of the one copyable link on an invitation results page.
    pub fn invite_link(&self) -> String {
        let all = self.invite_links();
        assert_eq!(all.len(), 1, "{}", self.body);
        all[0].clone()
    }
}

pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            // The server closes a connection idle for 5 s (actix's keep-alive); reusing
            // one at that moment loses the request, so let idle ones go sooner.
            .pool_idle_timeout(IDLE_CONNECTION)
            .build()
            .expect("http client");
        Browser {
            client,
            jar,
            base: base.to_string(),
        }
    }

    /// A browser that sends this User-Agent header with every request.
    pub fn with_user_agent(base: &str, user_agent: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            // The server closes a connection idle for 5 s (actix's keep-alive); reusing
            // one at that moment loses the request, so let idle ones go sooner.
            .pool_idle_timeout(IDLE_CONNECTION)
            .user_agent(user_agent)
            .build()
            .expect("http client");
        Browser {
            client,
            jar,
            base: base.to_string(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_abs(&format!("{}{path}", self.base)).await
    }

    /// A GET asking for JSON (`Accept: application/json`).
    pub async fn get_json(&self, path: &str) -> Page {
        let url = format!("{}{path}", self.base);
        let request = self.client.get(url).header("Accept", "application/json");
        to_page(request.send().await.expect("GET")).await
    }

    /// A GET as a browser makes it when another site sends it here (a link, a redirect).
    pub async fn get_from_another_site(&self, path: &str) -> Page {
        self.get_sent_by(path, "cross-site").await
    }

    /// A GET whose `Sec-Fetch-Site` says where the browser was sent from.
    pub async fn get_sent_by(&self, path: &str, site: &str) -> Page {
        let url = format!("{}{path}", self.base);
        let request = self.client.get(url).header("Sec-Fetch-Site", site);
        to_page(request.send().await.expect("GET")).await
    }

    pub async fn get_abs(&self, url: &str) -> Page {
        to_page(self.client.get(url).send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, String)]) -> Page {
        self.post_abs(&format!("{}{path}", self.base), form).await
    }

    pub async fn post_abs(&self, url: &str, form: &[(&str, String)]) -> Page {
        to_page(self.client.post(url).form(form).send().await.expect("POST")).await
    }

    /// Changes the signed-in account's password on /account, as its owner does.
    pub async fn change_password(&self, from: &str, to: &str) -> Page {
        self.submit(
            "/account",
            "/account/password",
            &[
                ("current_password", from),
                ("password", to),
                ("password_confirm", to),
            ],
        )
        .await
    }

    /// Invites `email` into organization `slug` with the role whose id is `role_id`, from
    /// the invite form: the answer to its submit.
    pub async fn invite(&self, slug: &str, email: &str, role_id: &str) -> Page {
        self.submit(
            &format!("/orgs/{slug}/invitations/new"),
            &format!("/orgs/{slug}/invitations"),
            &[("emails", email), ("role_id", role_id)],
        )
        .await
    }

    /// Posts a form with this session's CSRF token, taken from `form_page`.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(form_page).await;
        let mut form: Vec<(&str, String)> = vec![("csrf_token", page.csrf())];
        form.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
        self.post(action, &form).await
    }

    /// Inviting and resending answer with a redirect to the results page (POST/redirect/
    /// GET): this follows it, as a browser does, and answers anything else as it came.
    pub async fn follow_results(&self, page: Page) -> Page {
        match page.location.as_deref() {
            Some(to) if page.status == 303 && to.ends_with("/invitations/sent") => {
                self.get(to).await
            }
            _ => page,
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// The raw session cookie, to replay it from elsewhere.
    pub fn session_cookie(&self) -> Option<String> {
        let url = self.base.parse().expect("base url");
        let header: HeaderValue = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
            .map(str::to_string)
    }
}

/// A request carrying exactly this cookie, from a client that keeps none.
pub async fn get_with_cookie(url: &str, cookie: &str) -> Page {
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    to_page(
        client
            .get(url)
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await
            .expect("GET"),
    )
    .await
}

async fn to_page(response: reqwest::Response) -> Page {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    Page {
        status,
        location,
        headers,
        body,
    }
}

pub const MEMBER_PASSWORD: &str = "member password 123";

impl TestApp {
    /// The organization created for a fresh installation.
    pub fn org_id(&self, slug: &str) -> String {
        portcullis::db::organizations::find_by_slug(&mut self.conn(), slug)
            .unwrap()
            .expect("organization exists")
            .id
    }

    pub fn role_id(&self, org_slug: &str, key: &str) -> String {
        let org = self.org_id(org_slug);
        portcullis::db::roles::find_by_key(&mut self.conn(), &org, key)
            .unwrap()
            .expect("role exists")
            .id
    }

    /// Adds an account (with `MEMBER_PASSWORD` when `can_sign_in`) and makes it a member
    /// of the organization with the role `role_key`. Answers the user id.
    pub fn add_member(
        &self,
        org_slug: &str,
        email: &str,
        first: &str,
        last: &str,
        role_key: &str,
        can_sign_in: bool,
    ) -> String {
        let role_id = self.role_id(org_slug, role_key);
        let org_id = self.org_id(org_slug);
        let existing = portcullis::db::users::find_by_email(&mut self.conn(), email).unwrap();
        let user = match existing {
            Some(user) => user,
            None => self.insert_account(email, first, last, "none", can_sign_in),
        };
        self.write_retrying_a_locked_database("add_member", |conn| {
            portcullis::db::memberships::insert(conn, &org_id, &user, &role_id)
        });
        user.id
    }

    /// A helper's write, in one transaction as the portal's own writes (`BEGIN IMMEDIATE`
    /// on SQLite: the write lock is waited for up front), and once more if SQLite still
    /// answers "database is locked". `add_member`'s bare insert failed so twice in about
    /// ten full runs (stops 47 and 48), each time in a different test, with nothing found
    /// that held the write lock for the ten-second busy timeout; the portal's own writes
    /// are not retried, and no test of a rule goes through this.
    fn write_retrying_a_locked_database<T>(
        &self,
        what: &str,
        write: impl Fn(&mut DbConnection) -> QueryResult<T>,
    ) -> T {
        let mut attempt = 1;
        loop {
            match portcullis::db::write_tx(&mut self.conn(), &write) {
                Ok(value) => return value,
                Err(diesel::result::Error::DatabaseError(_, info))
                    if attempt < 3 && info.message().contains("database is locked") =>
                {
                    eprintln!("{what}: database is locked (attempt {attempt}), trying again");
                    attempt += 1;
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
    }

    /// An active account in no organization, signing in with `MEMBER_PASSWORD`, with
    /// this platform role (`none`, `operator`, `admin`). Answers the user id.
    pub fn add_account(&self, email: &str, platform_role: &str) -> String {
        self.insert_account(email, "Test", "Person", platform_role, true)
            .id
    }

    fn insert_account(
        &self,
        email: &str,
        first: &str,
        last: &str,
        platform_role: &str,
        can_sign_in: bool,
    ) -> portcullis::db::users::User {
        use portcullis::db::{self, users};
        let hash = can_sign_in
            .then(|| portcullis::auth::password::hash_blocking(MEMBER_PASSWORD).unwrap());
        let id = db::new_id();
        let mut conn = self.conn();
        users::insert(
            &mut conn,
            &users::NewUser {
                id: &id,
                email,
                first_name: first,
                last_name: last,
                password_hash: hash.as_deref(),
                platform_role,
                status: "active",
                auth_method: "password",
                created_at: db::now(),
                last_active_at: None,
            },
        )
        .unwrap();
        users::find(&mut conn, &id).unwrap().unwrap()
    }

    /// A second organization, as ops would create it.
    pub fn create_org(&self, slug: &str, name: &str) -> String {
        let mut conn = self.conn();
        diesel::Connection::transaction(&mut *conn, |conn| {
            portcullis::domain::orgs::create(conn, slug, name, None, &Default::default())
        })
        .unwrap()
        .id
    }

    pub fn membership_status(&self, org_slug: &str, user_id: &str) -> Option<String> {
        let org = self.org_id(org_slug);
        portcullis::db::memberships::find(&mut self.conn(), &org, user_id)
            .unwrap()
            .map(|r| r.membership.status)
    }

    /// Marks a membership inactive directly, to set up a test's starting point.
    pub fn deactivate_for_setup(&self, org_slug: &str, user_id: &str) {
        let org = self.org_id(org_slug);
        portcullis::db::memberships::set_status(&mut self.conn(), &org, user_id, "inactive")
            .unwrap();
    }

    pub fn member_role(&self, org_slug: &str, user_id: &str) -> Option<String> {
        let org = self.org_id(org_slug);
        portcullis::db::memberships::find(&mut self.conn(), &org, user_id)
            .unwrap()
            .map(|r| r.role.key)
    }

    pub fn user_id(&self, email: &str) -> String {
        portcullis::db::users::find_by_email(&mut self.conn(), email)
            .unwrap()
            .expect("user exists")
            .id
    }

    pub fn audit_actions(&self, org_slug: &str) -> Vec<(String, Option<String>, Option<String>)> {
        let org = self.org_id(org_slug);
        portcullis::db::audit_events::latest_for_org(&mut self.conn(), Some(&org), 1000)
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.actor_email, e.target_label))
            .collect()
    }

    /// The id of the (one) invitation sent to `email`.
    pub fn invitation_id(&self, email: &str) -> String {
        use portcullis::db::schema::invitations;
        let mut conn = self.conn();
        let conn: &mut DbConnection = &mut conn;
        invitations::table
            .filter(invitations::email.eq(email))
            .select(invitations::id)
            .first(conn)
            .unwrap()
    }

    /// Runs the `portcullis` binary with `args` on this application's database.
    pub fn run_cli(&self, args: &[&str]) -> std::process::Output {
        let dir = tempfile::tempdir().unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .env("PORTCULLIS_DATABASE_URL", &self.db.url)
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .output()
            .unwrap()
    }

    /// Signs in a member added with `can_sign_in`.
    pub async fn member_browser(&self, email: &str) -> Browser {
        let browser = self.client();
        let response = browser.login(email, MEMBER_PASSWORD).await;
        assert_eq!(response.status, 303, "{email} signs in");
        browser
    }
}

/// Every `data-email` on a page, in order.
pub fn row_emails(html: &str) -> Vec<String> {
    html.split("data-email=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The `href` of the link with `rel="next"`, unescaped.
pub fn next_link(html: &str) -> Option<String> {
    let end = html.find("rel=\"next\"")?;
    let start = html[..end].rfind("href=\"")? + 6;
    let href = &html[start..end];
    Some(unescape(&href[..href.find('"')?]))
}

/// Reverses askama's HTML escaping (numeric entities) so a link can be followed.
pub fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("&#") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find(';') else {
            break;
        };
        let code = &rest[start + 2..start + end];
        let value = match code.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => code.parse().ok(),
        };
        out.extend(value.and_then(char::from_u32));
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out.replace("&amp;", "&").replace("&quot;", "\"")
}

/// The last path segment of a redirect, e.g. the id in `/orgs/x/groups/{id}`.
pub fn location_id(page: &Page) -> String {
    page.location
        .as_deref()
        .expect("redirect")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

impl TestApp {
    pub fn set_platform_role(&self, email: &str, role: &str) {
        use portcullis::db::schema::users;
        let mut conn = self.conn();
        let conn: &mut DbConnection = &mut conn;
        diesel::update(users::table.filter(users::email.eq(email)))
            .set(users::platform_role.eq(role))
            .execute(conn)
            .unwrap();
    }

    pub fn set_member_role(&self, org_slug: &str, user_id: &str, role_key: &str) {
        let org = self.org_id(org_slug);
        let role = self.role_id(org_slug, role_key);
        portcullis::db::memberships::set_role(&mut self.conn(), &org, user_id, &role).unwrap();
    }

    /// Makes `owner` the owner of the pool, as creating it would have (whoever makes a
    /// pool owns it).
    pub fn set_pool_owner(&self, pool_id: &str, owner: &str) {
        use portcullis::db::schema::pools;
        diesel::update(pools::table.find(pool_id))
            .set(pools::owner_id.eq(owner))
            .execute(&mut *self.conn() as &mut DbConnection)
            .expect("setting the pool's owner");
    }

    /// Who owns the pool, if anyone.
    pub fn pool_owner(&self, pool_id: &str) -> Option<String> {
        use portcullis::db::schema::pools;
        pools::table
            .find(pool_id)
            .select(pools::owner_id)
            .first(&mut *self.conn() as &mut DbConnection)
            .expect("reading the pool's owner")
    }

    /// The organization's newest audit event: its action and its details.
    pub fn latest_event(&self, org_slug: &str) -> (String, serde_json::Value) {
        let org = self.org_id(org_slug);
        let event = portcullis::db::audit_events::latest_for_org(&mut self.conn(), Some(&org), 1)
            .unwrap()
            .remove(0);
        let details = serde_json::from_str(&event.details).unwrap();
        (event.action, details)
    }

    /// How many audit events of this action the organization has.
    pub fn audit_count(&self, org_slug: &str, action: &str) -> usize {
        self.audit_actions(org_slug)
            .into_iter()
            .filter(|(a, _, _)| a == action)
            .count()
    }
}

/// The first-administrator setup form, filled in as `TestApp::setup_admin` does.
pub fn first_admin_form(csrf: String) -> Vec<(&'static str, String)> {
    vec![
        ("csrf_token", csrf),
        ("email", ADMIN_EMAIL.into()),
        ("first_name", "Ada".into()),
        ("last_name", "Admin".into()),
        ("password", ADMIN_PASSWORD.into()),
        ("password_confirm", ADMIN_PASSWORD.into()),
    ]
}

/// A new account's name and password, as the setup and invitation forms take them.
pub fn account_form(
    csrf: String,
    first: &str,
    last: &str,
    password: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("csrf_token", csrf),
        ("first_name", first.into()),
        ("last_name", last.into()),
        ("password", password.into()),
        ("password_confirm", password.into()),
    ]
}

/// A route as registered in the source: its method and path pattern.
#[derive(Clone, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: String,
}

/// Every `.route("...", web::get()/post()...)` and `web::resource("...")...route(...)` in
/// src/startup.rs and src/routes/, read from the source so a new route cannot escape the
/// tests that walk them all.
pub fn registered_routes() -> Vec<Route> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = vec![dir.join("startup.rs")];
    for entry in std::fs::read_dir(dir.join("routes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push(path);
        }
    }
    sources.sort();
    let mut found = Vec::new();
    for path in sources {
        let source = std::fs::read_to_string(&path).unwrap();
        for (method, needle) in [("GET", "web::get()"), ("POST", "web::post()")] {
            for (at, _) in source.match_indices(needle) {
                // The path is the first string literal of the `.route("...", web::post()`
                // or `web::resource("...")...route(web::post()` this belongs to.
                let head = &source[..at];
                let mut calls: Vec<usize> = [head.rfind(".route("), head.rfind("resource(")]
                    .into_iter()
                    .flatten()
                    .collect();
                calls.sort_unstable_by(|a, b| b.cmp(a));
                let literal = calls
                    .into_iter()
                    .map(|call| &source[call..at])
                    .find(|text| text.contains('"'))
                    .unwrap_or_else(|| panic!("cannot read a route in {}", path.display()));
                let start = literal.find('"').unwrap() + 1;
                let end = literal[start..].find('"').unwrap() + start;
                found.push(Route {
                    method,
                    path: literal[start..end].to_string(),
                });
            }
        }
    }
    assert!(
        found.len() > 20,
        "few routes found: is the scanner still right?"
    );
    found
}

/// Mallory, signed in, Admin of her own organization `other-org`.
pub async fn admin_of_another_org(app: &TestApp) -> Browser {
    app.create_org("other-org", "Other Org");
    app.add_member(
        "other-org",
        "mallory@example.com",
        "Mal",
        "Lory",
        "admin",
        true,
    );
    app.member_browser("mallory@example.com").await
}

/// The path of the newest accept link mailed to `address`: what an inviter who may not
/// grant every role relies on, since the results page shows them none.
pub async fn mailed_invite_link(app: &TestApp, address: &str) -> String {
    crate::browser::mailed_to(app, address)
        .await
        .expect("an invitation email")
        .invite_path()
}

/// The attack both the platform and SCIM must withstand: Mallory, an Admin of her own
/// organization `other-org`, invites `address`, opens the accept link the results page
/// shows her, and chooses the new account's password (`password`, as "Not Theceo").
/// Answers the accept link she used.
pub async fn claim_address_through_an_invitation(
    app: &TestApp,
    address: &str,
    password: &str,
) -> String {
    let mallory = admin_of_another_org(app).await;
    let sent = mallory
        .invite("other-org", address, &app.role_id("other-org", "member"))
        .await;
    let link = mallory.follow_results(sent).await.invite_link();
    let claimed = app.client();
    let form = claimed.get(&link).await;
    let accepted = claimed
        .post(&link, &account_form(form.csrf(), "Not", "Theceo", password))
        .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    link
}

/// Until a transaction of the test database waits for a lock another holds (on SQLite,
/// which cannot tell, three quarters of a second, the time a writer takes to come to wait
/// for the database's write lock).
pub async fn until_someone_waits_for_a_lock(app: &TestApp) {
    if !app.db.is_postgres() {
        tokio::time::sleep(std::time::Duration::from_millis(750)).await;
        return;
    }
    for _ in 0..300 {
        let waiting = app.count(
            "pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nobody came to wait for a lock");
}
