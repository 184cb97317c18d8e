//! Does `/forgot-password` answer an address with an account as fast as one without?
//! Posts the form N times for each, interleaved, against the real server, and prints
//! the median and p90 of each and their ratio. Prints figures; fails on nothing.
//!
//!     cargo bench --bench reset_timing                  # 200 requests each, SQLite
//!     BENCH_REQUESTS=1000 cargo bench --bench reset_timing
//!
//! It runs the `portcullis` binary itself (as `benches/memory.rs` does), with the
//! throttle lifted so that every request does the full work, and the outbox writing
//! `.eml` files, as a fresh installation does.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;
use support::{Server, create_admin, env_or, free_port, portcullis, wait_ready};

const KNOWN: &str = "bench-admin@example.com";
const PASSWORD: &str = "bench password 123";
const UNKNOWN: &str = "nobody-here@example.com";

/// The value at quantile `q` of sorted durations, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let requests: usize = env_or("BENCH_REQUESTS", 200);
    let dir = tempfile::tempdir()?;

    create_admin(dir.path(), KNOWN, PASSWORD)?;

    let port = free_port()?;
    let server = Server(
        portcullis(dir.path())
            .arg("serve")
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            // Every request comes from 127.0.0.1 and names one of two addresses: without
            // this the throttle would answer most of them, and time that instead.
            .env("PORTCULLIS_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000000")
            .env("PORTCULLIS_LOGIN_MAX_FAILURES_PER_ACCOUNT", "1000000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async move {
            wait_ready(&base).await?;
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()?;
            let token = csrf_token(&client, &base).await?;
            // Warm-up: connections, statement caches, the first email.
            for email in [KNOWN, UNKNOWN, KNOWN, UNKNOWN] {
                post(&client, &base, &token, email).await?;
            }
            let (mut known, mut unknown) = (Vec::new(), Vec::new());
            for i in 0..requests * 2 {
                // Interleaved, so drift (the outbox, the disk cache) hits both alike.
                let (email, into) = if i % 2 == 0 {
                    (KNOWN, &mut known)
                } else {
                    (UNKNOWN, &mut unknown)
                };
                into.push(post(&client, &base, &token, email).await?);
            }
            known.sort();
            unknown.sort();
            let (km, k90) = (quantile_ms(&known, 0.5), quantile_ms(&known, 0.9));
            let (um, u90) = (quantile_ms(&unknown, 0.5), quantile_ms(&unknown, 0.9));
            println!("POST /forgot-password, {requests} requests each, interleaved (SQLite)");
            println!("existing account: median {km:7.2} ms   p90 {k90:7.2} ms");
            println!("unknown address:  median {um:7.2} ms   p90 {u90:7.2} ms");
            println!(
                "ratio existing/unknown: median {:.2}   p90 {:.2}",
                km / um,
                k90 / u90
            );
            anyhow::Ok(())
        })?;
    drop(server);
    Ok(())
}

/// The anonymous visitor's CSRF token, which travels in its session cookie.
async fn csrf_token(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let page = client
        .get(format!("{base}/forgot-password"))
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = page
        .find(marker)
        .map(|i| i + marker.len())
        .ok_or_else(|| anyhow::anyhow!("no CSRF token on /forgot-password"))?;
    let end = start + page[start..].find('"').unwrap_or(0);
    Ok(page[start..end].to_string())
}

/// One request, timed from sending to the end of the body.
async fn post(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    email: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/forgot-password"))
        .form(&[("csrf_token", token), ("email", email)])
        .send()
        .await?;
    let status = response.status();
    response.bytes().await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        status == 200,
        "/forgot-password answered {status} for {email}"
    );
    Ok(elapsed)
}
