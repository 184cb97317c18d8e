//! SCIM provisioning at the scale an identity provider's first sync reaches: provisions
//! BENCH_SCIM_USERS users (10,000) through `POST /Users`, patches 1,000 of them (a new
//! given name), deactivates 1,000 (Okta's pathless `{"active": false}`), then lists
//! `filter=active eq false` by pages of 100. Prints requests per second and the median
//! and p99 of each phase. Prints figures; fails on nothing.
//!
//!     cargo bench --bench scim                       # SQLite
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/bench cargo bench --bench scim
//!
//! It runs the `portcullis` binary as an operator would, with a token from
//! `portcullis create-api-token`. With BENCH_DATABASE_URL the database must exist and be
//! empty. BENCH_SCIM_CONCURRENCY (8) requests are in flight at a time, as IdPs send them.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

mod support;
use support::{Server, create_admin, env_or, free_port, portcullis, wait_ready};

const ADMIN: &str = "bench-admin@example.com";
const PASSWORD: &str = "bench password 123";
const SCIM: &str = "application/scim+json";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

struct Phase {
    name: String,
    requests: usize,
    elapsed: Duration,
    latencies: Histogram<u64>,
}

impl Phase {
    fn row(&self) -> String {
        let ms = |q: f64| self.latencies.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "| {} | {} | {:.0} | {:.2} ms | {:.2} ms |",
            self.name,
            self.requests,
            self.requests as f64 / self.elapsed.as_secs_f64(),
            ms(0.5),
            ms(0.99)
        )
    }
}

#[derive(Clone)]
struct Scim {
    client: reqwest::Client,
    base: String,
    token: Arc<str>,
}

impl Scim {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(Duration, Value)> {
        let mut request = self
            .client
            .request(method, format!("{}/scim/v2{path}", self.base))
            .bearer_auth(&*self.token)
            .header("accept", SCIM);
        if let Some(body) = body {
            request = request
                .header("content-type", SCIM)
                .body(serde_json::to_vec(body)?);
        }
        let started = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let took = started.elapsed();
        anyhow::ensure!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok((took, value))
    }
}

/// Runs `requests` calls of `call(i)`, `concurrency` at a time, and times each.
async fn phase<F, Fut>(
    name: &str,
    requests: usize,
    concurrency: usize,
    call: F,
) -> anyhow::Result<(Phase, Vec<Value>)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Duration, Value)>>,
{
    use futures_util::stream::{self, StreamExt};
    let mut latencies = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    let results: Vec<anyhow::Result<(Duration, Value)>> = stream::iter(0..requests)
        .map(&call)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut bodies = Vec::with_capacity(requests);
    for result in results {
        let (took, body) = result?;
        latencies.record(took.as_micros() as u64)?;
        bodies.push(body);
    }
    let phase = Phase {
        name: name.to_string(),
        requests,
        elapsed,
        latencies,
    };
    Ok((phase, bodies))
}

fn main() -> anyhow::Result<()> {
    let users: usize = env_or("BENCH_SCIM_USERS", 10_000);
    let concurrency: usize = env_or("BENCH_SCIM_CONCURRENCY", 8);
    let changed = (users / 10).max(1);
    let dir = tempfile::tempdir()?;
    create_admin(dir.path(), ADMIN, PASSWORD)?;
    let minted = portcullis(dir.path())
        .args(["create-api-token", "--org", "my-org", "--name", "bench"])
        .args(["--scopes", "scim"])
        .stderr(Stdio::inherit())
        .output()?;
    anyhow::ensure!(minted.status.success(), "create-api-token failed");
    let token: Arc<str> = String::from_utf8(minted.stdout)?.trim().into();

    let port = free_port()?;
    let _server = Server(
        portcullis(dir.path())
            .arg("serve")
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let backend = if std::env::var("BENCH_DATABASE_URL").is_ok() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async move {
            wait_ready(&base).await?;
            let scim = Scim {
                client: reqwest::Client::new(),
                base,
                token,
            };
            let (created, bodies) = phase("POST /Users", users, concurrency, |i| {
                let scim = scim.clone();
                async move {
                    let user = json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": format!("scim-{i:06}@example.com"),
                        "externalId": format!("ext-{i:06}"),
                        "name": {"givenName": "Ada", "familyName": format!("Number {i}")},
                        "emails": [{"value": format!("scim-{i:06}@example.com"), "type": "work", "primary": true}],
                        "active": true
                    });
                    scim.send(reqwest::Method::POST, "/Users", Some(&user)).await
                }
            })
            .await?;
            let ids: Arc<Vec<String>> = Arc::new(
                bodies
                    .iter()
                    .filter_map(|b| b["id"].as_str().map(str::to_string))
                    .collect(),
            );
            anyhow::ensure!(ids.len() == users, "{} ids for {users} users", ids.len());

            let (patched, _) = phase("PATCH name.givenName", changed, concurrency, |i| {
                let (scim, ids) = (scim.clone(), ids.clone());
                async move {
                    let body = json!({
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "Replace", "path": "name.givenName", "value": "Grace"}]
                    });
                    scim.send(reqwest::Method::PATCH, &format!("/Users/{}", ids[i]), Some(&body))
                        .await
                }
            })
            .await?;

            let (deactivated, _) = phase("PATCH active=false", changed, concurrency, |i| {
                let (scim, ids) = (scim.clone(), ids.clone());
                async move {
                    let body = json!({
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "replace", "value": {"active": false}}]
                    });
                    let id = &ids[ids.len() - 1 - i];
                    scim.send(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(&body))
                        .await
                }
            })
            .await?;

            // Pages one after another, as an IdP's reconciliation reads them.
            let pages = changed.div_ceil(100);
            let (listed, bodies) = phase("GET /Users?filter=active eq false", pages, 1, |page| {
                let scim = scim.clone();
                async move {
                    let path = format!(
                        "/Users?filter=active%20eq%20false&startIndex={}&count=100",
                        page * 100 + 1
                    );
                    scim.send(reqwest::Method::GET, &path, None).await
                }
            })
            .await?;
            let seen: usize = bodies
                .iter()
                .map(|b| b["Resources"].as_array().map_or(0, Vec::len))
                .sum();
            let total = bodies.first().map(|b| b["totalResults"].clone());

            println!(
                "SCIM on {backend}: {users} users, {concurrency} requests in flight (release build)"
            );
            println!("| phase | requests | req/s | median | p99 |");
            println!("|---|---|---|---|---|");
            for phase in [&created, &patched, &deactivated, &listed] {
                println!("{}", phase.row());
            }
            println!(
                "the filtered list read {seen} inactive users in {pages} pages of 100 (totalResults {})",
                total.unwrap_or(Value::Null)
            );
            Ok(())
        })
}
