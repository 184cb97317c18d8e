//! Latency of the audit page on a big trail: the first page and an actor-filtered page,
//! as a query and as a full HTTP request (session, membership, query, render).
//!
//! ```sh
//! cargo bench --bench audit_page                                  # SQLite, 1,000,000 events
//! BENCH_AUDIT_EVENTS=10000000 cargo bench --bench audit_page      # the issue's 10 million
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \
//!   BENCH_AUDIT_EVENTS=10000000 cargo bench --bench audit_page    # PostgreSQL (createdb first)
//! ```
//!
//! The database is kept (default `target/bench/audit.db`) and only topped up to
//! BENCH_AUDIT_EVENTS, so the slow seeding happens once. BENCH_ITERATIONS (default 200)
//! sets how many timed requests each line gets. Prints median and p99.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use portcullis::audit::Origin;
use portcullis::config::Settings;
use portcullis::db::audit_events::EventKey;
use portcullis::db::organizations::Organization;
use portcullis::db::{self, DbConnection, DbTarget, PoolOptions, memberships, roles, users};
use portcullis::domain::audit_query::{self, AuditQuery};
use portcullis::domain::seed_audit::{demo_actor_email, seed_audit_events};
use portcullis::startup::Application;
use portcullis::web::paging::{Cursor, PAGE_SIZE};

const ORG: &str = "bench";
const EMAIL: &str = "bench-admin@example.com";
const PASSWORD: &str = "bench password, not secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
        dir.join("audit.db").to_string_lossy().into_owned()
    });
    let events: u64 = env_or("BENCH_AUDIT_EVENTS", 1_000_000);
    let iterations: usize = env_or("BENCH_ITERATIONS", 200);

    let pool = db::build_pool(&DbTarget::parse(&url)?, PoolOptions::default())?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    let org = prepare(&mut conn)?;

    let have = count(&mut conn, &org.id)?;
    if have < events {
        let started = Instant::now();
        seed_audit_events(&mut conn, Some(ORG), events - have, |done, total| {
            let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
            eprint!("\rseeding: {done} / {total} ({rate:.0}/s)   ");
        })?;
        eprintln!();
        if let DbConnection::Postgresql(_) = &mut **conn {
            diesel::sql_query("ANALYZE audit_events").execute(&mut **conn)?;
        }
    }
    let total = count(&mut conn, &org.id)?;
    let backend = match db::backend(&conn) {
        db::Backend::Sqlite => "SQLite",
        db::Backend::Postgres => "PostgreSQL",
    };
    println!("audit page benchmark: {backend}, {total} events in organization `{ORG}`");
    println!(
        "{:<48} {:>10} {:>10}   (n={iterations})",
        "", "median", "p99"
    );

    let actor = demo_actor_email(7);
    let first = AuditQuery::default();
    let mut by_actor = AuditQuery::default();
    by_actor.filter.actor_email = Some(actor.clone());
    // A page far down the list, reached by following cursors like a reader would.
    let mut deep = AuditQuery::default();
    for _ in 0..199 {
        let page = audit_query::org_page(&mut conn, &org.id, &deep, None, PAGE_SIZE)?;
        let Some(next) = page.next_cursor else { break };
        deep.cursor = Some(next);
    }
    let deep_cursor: Option<EventKey> = deep.cursor.clone();

    for (name, query) in [
        ("query: first page", &first),
        ("query: first page, filtered by actor", &by_actor),
        ("query: page 200 (keyset)", &deep),
    ] {
        let times = measure(iterations, || {
            let page =
                audit_query::org_page(&mut conn, &org.id, query, None, PAGE_SIZE).expect("page");
            assert!(!page.events.is_empty());
        });
        report(name, &times);
    }
    drop(conn);

    let data_dir = tempfile::tempdir()?;
    let mut settings = Settings::for_tests(url.clone(), data_dir.path().to_path_buf());
    settings.workers = Some(2);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        let base = format!("http://127.0.0.1:{}", app.port());
        actix_web::rt::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let login = client
            .get(format!("{base}/login"))
            .send()
            .await?
            .text()
            .await?;
        let csrf = hidden_value(&login, "csrf_token").expect("login form has a token");
        let signed_in = client
            .post(format!("{base}/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", EMAIL),
                ("password", PASSWORD),
            ])
            .send()
            .await?;
        anyhow::ensure!(signed_in.status().as_u16() == 303, "sign-in failed");

        let actor_query = format!("?actor={}", actor.replace('@', "%40"));
        let deep_query = format!(
            "?cursor={}",
            deep_cursor
                .as_ref()
                .map(|key| Cursor(key.clone()).encode())
                .unwrap_or_default()
        );
        for (name, query) in [
            ("http: GET /orgs/bench/audit", String::new()),
            ("http: GET /orgs/bench/audit?actor=...", actor_query),
            ("http: GET /orgs/bench/audit?cursor=(page 200)", deep_query),
        ] {
            let url = format!("{base}/orgs/{ORG}/audit{query}");
            let mut times = Vec::with_capacity(iterations);
            for i in 0..iterations + 10 {
                let started = Instant::now();
                let response = client.get(&url).send().await?;
                let status = response.status().as_u16();
                let body = response.bytes().await?;
                let elapsed = started.elapsed();
                anyhow::ensure!(status == 200 && !body.is_empty(), "{url}: {status}");
                if i >= 10 {
                    times.push(elapsed);
                }
            }
            report(name, &times);
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(())
}

/// The benchmark organization and an admin of it who signs in with a password.
fn prepare(conn: &mut DbConnection) -> anyhow::Result<Organization> {
    portcullis::domain::orgs::ensure_first(conn)?;
    let org = match db::organizations::find_by_slug(conn, ORG)? {
        Some(org) => org,
        None => db::write_tx(conn, |conn| {
            portcullis::domain::orgs::create(conn, ORG, "Benchmark", None, &Origin::default())
        })?,
    };
    if users::find_by_email(conn, EMAIL)?.is_none() {
        let hash = portcullis::auth::password::hash_blocking(PASSWORD)?;
        let id = db::new_id();
        users::insert(
            conn,
            &users::NewUser {
                id: &id,
                email: EMAIL,
                first_name: "Bench",
                last_name: "Admin",
                password_hash: Some(&hash),
                platform_role: "none",
                status: "active",
                auth_method: "password",
                created_at: db::now(),
                last_active_at: None,
            },
        )?;
        let user = users::find(conn, &id)?.expect("just inserted");
        let admin = roles::find_by_key(conn, &org.id, "admin")?.expect("built-in role");
        memberships::insert(conn, &org.id, &user, &admin.id)?;
    }
    Ok(org)
}

fn count(conn: &mut DbConnection, org_id: &str) -> QueryResult<u64> {
    use portcullis::db::schema::audit_events::dsl as a;
    a::audit_events
        .filter(a::org_id.eq(org_id))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n as u64)
}

fn measure(iterations: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..10 {
        f();
    }
    (0..iterations)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect()
}

fn report(name: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at =
        |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!("{name:<48} {:>10} {:>10}", ms(at(0.5)), ms(at(0.99)));
}

fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}
