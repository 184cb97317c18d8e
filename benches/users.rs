//! Users tab latency at scale, end to end over HTTP (session lookup included).
//!
//!     cargo bench --bench users                       # SQLite, 100,000 members
//!     BENCH_MEMBERS=1000000 cargo bench --bench users
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/bench cargo bench --bench users
//!
//! With BENCH_DATABASE_URL the database must exist and be empty. Prints the median and
//! p99 of the first page, a deep page reached by cursor, every search shape of issue 12
//! (prefix, selective and common substrings, a short term), a filtered page, and what the
//! search's choice of plan costs on its own.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use portcullis::config::Settings;
use portcullis::db::memberships::Cursor;
use portcullis::db::schema::memberships;
use portcullis::domain::email::Email;
use portcullis::startup::Application;
use portcullis::web::paging::Cursor as PageCursor;

const ORG: &str = "bench";
const ADMIN: &str = "bench-admin@example.com";
const PASSWORD: &str = "bench password 123";
const SAMPLES: usize = 200;

fn main() -> anyhow::Result<()> {
    let members: u64 = std::env::var("BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| dir.path().join("bench.db").to_string_lossy().into_owned());
    actix_web::rt::System::new().block_on(run(url, dir.path().to_path_buf(), members))
}

async fn run(url: String, data_dir: std::path::PathBuf, members: u64) -> anyhow::Result<()> {
    let mut settings = Settings::for_tests(url, data_dir);
    settings.workers = Some(2);
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool();
    actix_web::rt::spawn(app.run_until_stopped());

    let seeding = Instant::now();
    let middle = {
        let pool = pool.clone();
        actix_web::web::block(move || -> anyhow::Result<Cursor> {
            let mut conn = pool.get()?;
            portcullis::seed_members::seed_members(&mut conn, ORG, members, |done| {
                if done % 10_000 == 0 {
                    eprint!("\rseeding {done}/{members}");
                }
            })?;
            eprintln!();
            let hash = portcullis::auth::password::hash_blocking(PASSWORD)?;
            portcullis::domain::setup::create_admin(
                &mut conn,
                &Email::parse(ADMIN)?,
                Some(ORG),
                Some(&hash),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let org = portcullis::db::organizations::find_by_slug(&mut conn, ORG)?.expect("org");
            let (key, user_id): (String, String) = memberships::table
                .filter(memberships::org_id.eq(&org.id))
                .order((memberships::email.asc(), memberships::user_id.asc()))
                .select((memberships::email, memberships::user_id))
                .offset((members / 2) as i64)
                .first(&mut **conn)?;
            Ok(Cursor { key, user_id })
        })
        .await??
    };
    println!(
        "seeded {members} members in {:.1}s",
        seeding.elapsed().as_secs_f64()
    );

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login_page = client
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = hidden(&login_page, "csrf_token").expect("csrf token");
    let signed_in = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", ADMIN),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(signed_in.status().as_u16() == 303, "sign-in failed");

    let users = format!("{base}/orgs/{ORG}/users");
    let deep = format!("{users}?sort=email&cursor={}", PageCursor(middle).encode());
    for (label, url) in [
        ("first page", users.clone()),
        ("deep page (cursor at the middle)", deep),
        ("prefix q=ada.hop", format!("{users}?q=ada.hop")),
        (
            "selective substring q=0123456",
            format!("{users}?q=0123456"),
        ),
        (
            "selective substring q=0012345",
            format!("{users}?q=0012345"),
        ),
        ("10%-match substring q=hopper", format!("{users}?q=hopper")),
        ("q=hopper, by name", format!("{users}?q=hopper&sort=name")),
        (
            "q=hopper, status=inactive",
            format!("{users}?q=hopper&status=inactive"),
        ),
        ("short term q=ad", format!("{users}?q=ad")),
        (
            "filter status=inactive, newest first",
            format!("{users}?status=inactive&sort=-created"),
        ),
    ] {
        let timings = measure(&client, &url).await?;
        println!(
            "{label:<40} median {:>7.2} ms   p99 {:>7.2} ms   ({SAMPLES} requests)",
            ms(timings[timings.len() / 2]),
            ms(timings[timings.len() * 99 / 100]),
        );
    }
    plan_choice(&pool).await
}

/// What deciding a search's plan costs by itself: the text-index lookup, capped.
async fn plan_choice(pool: &portcullis::db::DbPool) -> anyhow::Result<()> {
    let pool = pool.clone();
    actix_web::web::block(move || -> anyhow::Result<()> {
        let mut conn = pool.get()?;
        let org = portcullis::db::organizations::find_by_slug(&mut conn, ORG)?.expect("org");
        for term in ["ada.hop", "0123456", "0012345", "hopper"] {
            let mut plan = None;
            let mut timings = Vec::with_capacity(SAMPLES);
            for _ in 0..SAMPLES {
                let started = Instant::now();
                plan = Some(portcullis::db::memberships::search_plan(
                    &mut conn, &org.id, term,
                )?);
                timings.push(started.elapsed());
            }
            timings.sort();
            println!(
                "plan choice q={term:<10} {:<24} median {:>7.2} ms   p99 {:>7.2} ms",
                format!("{:?}", plan.expect("measured")),
                ms(timings[timings.len() / 2]),
                ms(timings[timings.len() * 99 / 100]),
            );
        }
        Ok(())
    })
    .await?
}

async fn measure(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<Duration>> {
    for _ in 0..10 {
        client.get(url).send().await?.bytes().await?;
    }
    let mut timings = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let response = client.get(url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await?;
        timings.push(started.elapsed());
    }
    timings.sort();
    Ok(timings)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..start + html[start..].find('"')?].to_string())
}
