//! Resident memory of the real server process: idle, after a burst of sign-ins, and after
//! a minute of readers. Prints figures; fails on nothing.
//!
//!     cargo bench --bench memory                                   # 10,000 members, SQLite
//!     BENCH_MEMBERS=100000 BENCH_SIGNINS=200 BENCH_READ_SECONDS=60 cargo bench --bench memory
//!
//! It runs the `portcullis` binary itself (as an operator would), seeds it through the
//! CLI, and reads VmRSS / VmHWM from /proc for that process only.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;
use support::{Server, create_admin, env_or, free_port, portcullis, rss_mib, wait_ready};

/// The organization a fresh installation starts with.
const ORG: &str = "my-org";
const ADMIN: &str = "bench-admin@example.com";
const PASSWORD: &str = "bench password 123";

fn main() -> anyhow::Result<()> {
    let members: u64 = env_or("BENCH_MEMBERS", 10_000);
    let signins: usize = env_or("BENCH_SIGNINS", 200);
    let read_seconds: u64 = env_or("BENCH_READ_SECONDS", 60);
    let dir = tempfile::tempdir()?;

    create_admin(dir.path(), ADMIN, PASSWORD)?;
    let seeded = portcullis(dir.path())
        .args(["seed-demo", "--org", ORG, "--members", &members.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(seeded.success(), "seed-demo failed");

    let port = free_port()?;
    let server = Server(
        portcullis(dir.path())
            .arg("serve")
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            // Every sign-in comes from 127.0.0.1: lift the per-address limit for the burst.
            .env("PORTCULLIS_LOGIN_MAX_FAILURES_PER_ADDRESS", "100000")
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
            wait_ready(&base).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let idle = rss_mib(pid);
            println!("members: {members}");
            println!("idle:                         RSS {:6.1} MiB", idle.0);

            let started = Instant::now();
            let mut readers = Vec::new();
            for i in 0..signins {
                let client = sign_in(&base).await?;
                if i < 8 {
                    readers.push(client);
                }
            }
            let after_signins = rss_mib(pid);
            println!(
                "after {signins} sign-ins ({:.1}s):   RSS {:6.1} MiB   peak {:6.1} MiB",
                started.elapsed().as_secs_f64(),
                after_signins.0,
                after_signins.1
            );

            let until = Instant::now() + Duration::from_secs(read_seconds);
            let mut tasks = Vec::new();
            for client in readers {
                let url = format!("{base}/orgs/{ORG}/users");
                tasks.push(tokio::spawn(async move {
                    let mut pages = 0u64;
                    while Instant::now() < until {
                        if client.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
                            pages += 1;
                        }
                    }
                    pages
                }));
            }
            let mut pages = 0;
            for task in tasks {
                pages += task.await?;
            }
            let after_reading = rss_mib(pid);
            println!(
                "after {read_seconds}s of 8 readers ({pages} pages): RSS {:6.1} MiB   peak {:6.1} MiB",
                after_reading.0, after_reading.1
            );
            anyhow::Ok(())
        })
}

async fn sign_in(base: &str) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).map(|i| i + marker.len()).unwrap_or(0);
    let token = &page[start..start + page[start..].find('"').unwrap_or(0)];
    let response = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", token),
            ("email", ADMIN),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 303,
        "sign-in answered {}",
        response.status()
    );
    Ok(client)
}
