//! What the benchmarks that run the real `portcullis` binary share: starting it on a
//! fresh data directory, an account to sign in with, and knowing when it is ready.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The binary under test: this build's, or `BENCH_BINARY` (another build, to compare two
/// builds back to back on the same machine).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("BENCH_BINARY")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_portcullis").into())
}

/// The binary on `data_dir`, logging only warnings, on the database `BENCH_DATABASE_URL`
/// names (which must exist and be empty) or else its embedded SQLite.
pub fn portcullis(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(binary());
    command
        .env("PORTCULLIS_DATA_DIR", data_dir)
        .env("PORTCULLIS_LOG", "warn");
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => command.env("PORTCULLIS_DATABASE_URL", url),
        Err(_) => command.env_remove("PORTCULLIS_DATABASE_URL"),
    };
    command
}

/// A platform administrator with this password, as an operator creates one.
pub fn create_admin(data_dir: &std::path::Path, email: &str, password: &str) -> anyhow::Result<()> {
    let mut admin = portcullis(data_dir)
        .args(["create-admin", "--email", email])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    admin
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())?;
    anyhow::ensure!(admin.wait()?.success(), "create-admin failed");
    Ok(())
}

/// A port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The running server, stopped when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "server not ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (current, peak) resident set of a process, in MiB.
// Only the benchmarks that report memory read it; the others compile this module too.
#[allow(dead_code)]
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
