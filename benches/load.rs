//! Load benchmark of the real release server: every Users-tab page of issue 12 at one
//! connection (its first request, then median and p99) and at 32 (requests per second,
//! and that against the same server's `/healthz` at 32), the server's resident memory,
//! the Users tab's p99 while a flood of wrong-password sign-ins runs, cold start and
//! binary size. Prints figures and a markdown table (the README's performance table is
//! this output); fails on nothing.
//!
//!     cargo bench --bench load                                   # SQLite, 100,000 members
//!     BENCH_MEMBERS=1000000 cargo bench --bench load
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/bench cargo bench --bench load
//!
//! With `BENCH_DATABASE_URL` the database must exist and be empty. Other knobs:
//! `BENCH_SAMPLES` (requests per page at c=1, 500), `BENCH_SECONDS` (per run at c=32, 10),
//! `BENCH_FLOOD` (wrong-password sign-ins per second, 200), `BENCH_BINARY` (another
//! build of `portcullis`, to compare builds back to back), `BENCH_DATA_DIR` (a data
//! directory to keep: a second run on it, or on a `BENCH_DATABASE_URL` this benchmark
//! already filled, skips the seeding, which takes minutes at a million members), and
//! `PORTCULLIS_*` variables, which reach the server (e.g. `PORTCULLIS_DB_POOL_SIZE`).
//!
//! The c=32 load comes from `wrk` (Debian package `wrk`; installed with apt-get when
//! missing), which is lighter than any client written here and leaves the server most of
//! the machine; latencies at c=1 go into an `hdrhistogram`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

mod support;
use support::{Server, binary, create_admin, env_or, free_port, portcullis, rss_mib, wait_ready};

/// The organization a fresh installation starts with.
const ORG: &str = "my-org";
const ADMIN: &str = "bench-admin@example.com";
const PASSWORD: &str = "bench password 123";

/// Issue 12's pages; `{cursor}` is the cursor of the row at 99 % of the email order.
const PAGES: [(&str, &str); 6] = [
    ("Users tab page 1", ""),
    ("page at 99 % via cursor", "?sort=email&cursor={cursor}"),
    ("prefix search `q=ada.hop`", "?q=ada.hop"),
    ("selective substring `q=0123456`", "?q=0123456"),
    ("10 %-match substring `q=hopper`", "?q=hopper"),
    (
        "`status=inactive&sort=-created`",
        "?status=inactive&sort=-created",
    ),
];

struct Config {
    members: u64,
    samples: usize,
    seconds: u64,
    flood: u64,
    database_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let config = Config {
        members: env_or("BENCH_MEMBERS", 100_000),
        samples: env_or("BENCH_SAMPLES", 500),
        seconds: env_or("BENCH_SECONDS", 10),
        flood: env_or("BENCH_FLOOD", 200),
        database_url: std::env::var("BENCH_DATABASE_URL").ok(),
    };
    ensure_wrk()?;
    let temporary = tempfile::tempdir()?;
    let dir = std::env::var_os("BENCH_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let marker = dir.join("bench-seeded");
    if std::fs::read_to_string(&marker).ok() == Some(seed_label(&config)) {
        println!(
            "reusing the {} members seeded in {}",
            config.members,
            dir.display()
        );
    } else {
        seed(&config, &dir)?;
        std::fs::write(&marker, seed_label(&config))?;
    }
    let dir = dir.as_path();
    let cursor = cursor_at_99_percent(&config, dir)?;

    let port = free_port()?;
    let started = Instant::now();
    let server = Server(
        portcullis(dir)
            .arg("serve")
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            // The flood comes from many addresses through a "proxy" on loopback.
            .env("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async move {
            let cold_start = first_200(&format!("{base}/healthz"), started).await?;
            wait_ready(&base).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let idle_rss = rss_mib(pid).0;
            let cookie = sign_in(&base).await?;
            let users = format!("{base}/orgs/{ORG}/users");
            let mut healthz = vec![wrk(&format!("{base}/healthz"), None, config.seconds)?];
            let mut rows = Vec::new();
            for (i, (label, query)) in PAGES.iter().enumerate() {
                let url = format!("{users}{}", query.replace("{cursor}", &cursor));
                let (first, one) = first_and_latencies(&url, &cookie, config.samples).await?;
                let rps = wrk(&url, Some(&cookie), config.seconds)?;
                let first = first.as_secs_f64() * 1000.0;
                println!(
                    "{label:<36} first {first:>6.2} ms  c=1 p50 {:>6.2} ms  p99 {:>6.2} ms   c=32 {rps:>8.0} req/s",
                    ms(one.value_at_quantile(0.5)),
                    ms(one.value_at_quantile(0.99)),
                );
                rows.push((*label, first, one, rps));
                if i == PAGES.len() / 2 - 1 {
                    healthz.push(wrk(&format!("{base}/healthz"), None, config.seconds)?);
                }
            }
            healthz.push(wrk(&format!("{base}/healthz"), None, config.seconds)?);
            let (load_rss, peak_rss) = rss_mib(pid);
            let health = median(&mut healthz);
            println!("/healthz at c=32: {healthz:.0?} req/s, median {health:.0}");

            let quiet = latencies(&users, &cookie, config.samples).await?;
            let (flooded, answers) = under_flood(&base, &users, &cookie, &config).await?;

            println!();
            println!(
                "{} members, {}, release build, {}; c=32 runs of {} s by wrk, c=1 runs of {} requests:",
                thousands(config.members),
                if config.database_url.is_some() { "PostgreSQL" } else { "SQLite" },
                std::env::var("BENCH_CONDITIONS")
                    .unwrap_or_else(|_| "2-core machine shared with other builds".into()),
                config.seconds,
                config.samples
            );
            println!();
            println!(
                "| page | first request | c=1 p50 / p99 | c=32 req/s | ÷ `/healthz` at c=32 |"
            );
            println!("|---|---|---|---|---|");
            for (label, first, one, rps) in &rows {
                println!(
                    "| {label} | {first:.2} ms | {:.2} / {:.2} ms | {rps:.0} | {:.3} |",
                    ms(one.value_at_quantile(0.5)),
                    ms(one.value_at_quantile(0.99)),
                    rps / health
                );
            }
            println!("| `/healthz` | | | {health:.0} | 1 |");
            println!();
            println!(
                "| figure | value |\n|---|---|\n\
                 | RSS idle / after the c=32 runs / peak | {idle_rss:.1} / {load_rss:.1} / {peak_rss:.1} MiB |\n\
                 | Users tab p99, quiet / under {} wrong-password sign-ins per second | {:.2} / {:.2} ms ({:.1}×) |\n\
                 | flood answers | {answers} |\n\
                 | cold start to first 200 | {:.1} ms |\n\
                 | binary size | {:.1} MB |",
                config.flood,
                ms(quiet.value_at_quantile(0.99)),
                ms(flooded.value_at_quantile(0.99)),
                flooded.value_at_quantile(0.99) as f64 / quiet.value_at_quantile(0.99) as f64,
                cold_start.as_secs_f64() * 1000.0,
                std::fs::metadata(binary())?.len() as f64 / 1e6,
            );
            drop(server);
            anyhow::Ok(())
        })
}

/// What a kept data directory was seeded with: the size and the database.
fn seed_label(config: &Config) -> String {
    format!(
        "{} members on {}",
        config.members,
        config.database_url.as_deref().unwrap_or("SQLite")
    )
}

/// The admin who signs in, and `config.members` members of one organization.
fn seed(config: &Config, dir: &std::path::Path) -> anyhow::Result<()> {
    create_admin(dir, ADMIN, PASSWORD)?;
    let seeding = Instant::now();
    let seeded = portcullis(dir)
        .args([
            "seed-demo",
            "--org",
            ORG,
            "--members",
            &config.members.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(seeded.success(), "seed-demo failed");
    println!(
        "seeded {} members in {:.1} s ({})",
        config.members,
        seeding.elapsed().as_secs_f64(),
        if config.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    Ok(())
}

/// Installs Debian's `wrk` when it is missing (the benchmark machine is the dev machine).
fn ensure_wrk() -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("installing wrk with apt-get");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "wrk"])
        .status()?
        .success();
    anyhow::ensure!(ok, "wrk is needed: apt-get install wrk");
    Ok(())
}

/// The Users-tab cursor (sorted by email) of the member at 99 % of the organization.
fn cursor_at_99_percent(config: &Config, data_dir: &std::path::Path) -> anyhow::Result<String> {
    use diesel::prelude::*;
    use portcullis::db::memberships::Cursor;
    use portcullis::db::schema::{memberships, organizations};
    let url = config.database_url.clone().unwrap_or_else(|| {
        data_dir
            .join("portcullis.db")
            .to_string_lossy()
            .into_owned()
    });
    let target = portcullis::db::DbTarget::parse(&url)?;
    let pool = portcullis::db::build_pool(&target, Default::default())?;
    let mut conn = pool.get()?;
    let (key, user_id): (String, String) = memberships::table
        .inner_join(organizations::table)
        .filter(organizations::slug.eq(ORG))
        .order((memberships::email.asc(), memberships::user_id.asc()))
        .select((memberships::email, memberships::user_id))
        .offset((config.members * 99 / 100) as i64)
        .first(&mut **conn)?;
    Ok(portcullis::web::paging::Cursor(Cursor { key, user_id }).encode())
}

/// Time from spawning the server to its first 200 on `url`.
async fn first_200(url: &str, started: Instant) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status() == 200
        {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "no 200 from {url}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Signs the admin in; answers the session cookie as a `Cookie` header value.
async fn sign_in(base: &str) -> anyhow::Result<String> {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = hidden(&page, "csrf_token").ok_or_else(|| anyhow::anyhow!("no csrf token"))?;
    let signed_in = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", ADMIN),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        signed_in.status() == 303,
        "sign-in failed: {}",
        signed_in.status()
    );
    use reqwest::cookie::CookieStore;
    let cookie = jar
        .cookies(&base.parse()?)
        .ok_or_else(|| anyhow::anyhow!("no session cookie"))?;
    Ok(cookie.to_str()?.to_string())
}

/// `samples` sequential GETs after a warm-up, in microseconds.
async fn latencies(url: &str, cookie: &str, samples: usize) -> anyhow::Result<Histogram<u64>> {
    Ok(first_and_latencies(url, cookie, samples).await?.1)
}

/// The page's first request, then `samples` more after 20 to warm up. The first is one
/// sample on caches the earlier pages left (the database's own and the operating
/// system's), and for a search the term's first, before the portal remembers it as
/// common (`db::common_terms`).
async fn first_and_latencies(
    url: &str,
    cookie: &str,
    samples: usize,
) -> anyhow::Result<(Duration, Histogram<u64>)> {
    let client = reqwest::Client::new();
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut first = Duration::ZERO;
    for i in 0..samples + 21 {
        let started = Instant::now();
        let response = client.get(url).header("cookie", cookie).send().await?;
        anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
        response.bytes().await?;
        if i == 0 {
            first = started.elapsed();
        } else if i > 20 {
            histogram.record(started.elapsed().as_micros() as u64)?;
        }
    }
    Ok((first, histogram))
}

/// Requests per second at 32 connections for `seconds`, from wrk.
fn wrk(url: &str, cookie: Option<&str>, seconds: u64) -> anyhow::Result<f64> {
    let mut command = Command::new("wrk");
    command.args(["-t2", "-c32", &format!("-d{seconds}s")]);
    if let Some(cookie) = cookie {
        command.args(["-H", &format!("Cookie: {cookie}")]);
    }
    let out = command.arg(url).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx")) {
        eprintln!("wrk {url}: {}", line.trim());
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no throughput from wrk for {url}: {text}"))
}

/// The Users tab's c=1 latencies while `config.flood` wrong-password sign-ins a second
/// arrive, each from another address (through the trusted-proxy header) and for another
/// unknown email, so no throttle stops them before the hash. Answers the histogram and
/// what the sign-ins got back.
async fn under_flood(
    base: &str,
    users: &str,
    cookie: &str,
    config: &Config,
) -> anyhow::Result<(Histogram<u64>, String)> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = client.get(format!("{base}/login")).send().await?;
    let anonymous = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no anonymous cookie"))?
        .to_string();
    let csrf = hidden(&page.text().await?, "csrf_token")
        .ok_or_else(|| anyhow::anyhow!("no csrf token"))?;
    // Answers counted by status: 401 (hashed), 503 (refused by the queue), 429, other.
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let stop = Arc::new(tokio::sync::Notify::new());
    let flood = {
        let (base, counts, stop) = (base.to_string(), counts.clone(), stop.clone());
        let period = Duration::from_secs_f64(1.0 / config.flood.max(1) as f64);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut in_flight = tokio::task::JoinSet::new();
            for n in 0u64.. {
                tokio::select! {
                    _ = stop.notified() => break,
                    _ = tick.tick() => {}
                }
                let (client, counts) = (client.clone(), counts.clone());
                let email = format!("flood{n}@example.com");
                let request = client
                    .post(format!("{base}/login"))
                    .header("cookie", &anonymous)
                    .header(
                        "x-forwarded-for",
                        format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255),
                    )
                    .form(&[
                        ("csrf_token", csrf.as_str()),
                        ("email", email.as_str()),
                        ("password", "not the password"),
                    ]);
                in_flight.spawn(async move {
                    let slot = match request.send().await.map(|r| r.status().as_u16()) {
                        Ok(401) => 0,
                        Ok(503) => 1,
                        Ok(429) => 2,
                        _ => 3,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                });
                while in_flight.try_join_next().is_some() {}
            }
            // Dropping the set aborts sign-ins still waiting.
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flooded = latencies(users, cookie, config.samples).await;
    stop.notify_one();
    flood.await?;
    let c: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let answers = format!(
        "{} hashed and refused (401), {} turned away at once (503), {} throttled (429), {} other",
        c[0], c[1], c[2], c[3]
    );
    Ok((flooded?, answers))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..start + html[start..].find('"')?].to_string())
}
