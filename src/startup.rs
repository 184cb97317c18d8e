use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::Mailbox;
use tokio::sync::Notify;

use crate::auth::password::Hasher;
use crate::auth::session_store::DbSessionStore;
use crate::auth::throttle::{self, Limits};
use crate::config::Settings;
use crate::db::{self, DbPool, DbTarget, PoolOptions};
use crate::domain::{orgs, setup};
use crate::mail::{MailHandle, Mailer, outbox};
use crate::routes;
use crate::web::AppState;
use crate::web::audit_denials::audit_denials;
use crate::web::csrf::csrf_guard;
use crate::web::middleware::{request_log, security_headers};

pub const SESSION_COOKIE: &str = "portcullis_session";

/// A server bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    outbox: outbox::WorkerHandle,
    pool: DbPool,
    /// The first-administrator link, when the database has no user yet.
    pub setup_url: Option<String>,
}

impl Application {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        let target = DbTarget::parse(&settings.database_url())?;
        let pool_settings = PoolOptions {
            max_size: settings.db_pool_size.unwrap_or(match target {
                // SQLite's readers run in this process, on its own cores: past a few,
                // another connection only holds another search's memory (at a million
                // members, ten concurrent text-index searches peaked at 119 MiB, four
                // at 84, for the same requests per second). PostgreSQL's run in its
                // server.
                DbTarget::Sqlite(_) => 4,
                DbTarget::Postgres(_) => 10,
            }),
            ..PoolOptions::default()
        };
        // Every setting that can stop the start is checked, and the address taken, before
        // the database is touched: a start that fails (a typo, a port in use by the
        // running instance) neither migrates it nor replaces the first-admin link the
        // running instance printed.
        let mailer = Mailer::from_settings(&settings)?;
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        if settings.public_url.is_none() {
            // With port 0 the real port is only known now, and links must carry it.
            let local = format!("http://{}", listener.local_addr()?);
            if settings.smtp_url.is_some() {
                tracing::warn!(
                    links = %local,
                    "mail goes to real inboxes but no --public-url is set: its links point at this machine's own address, and its sender is noreply@localhost unless --mail-from says otherwise"
                );
            }
            settings.public_url = Some(local);
        }
        let key = session_key(&settings)?;
        if matches!(target, DbTarget::Postgres(_)) && settings.session_key.is_none() {
            // PostgreSQL is where several instances share one database: each would make
            // its own key, and a cookie or form from one would fail on the next.
            tracing::warn!(
                "no PORTCULLIS_SESSION_KEY: this instance keeps its own in DATA_DIR/session.key; give every instance on this database the same key, or sign-ins and forms fail when a request reaches another one"
            );
        }
        let pool = {
            let target = target.clone();
            db::off_thread::run(move || db::build_pool(&target, pool_settings)).await??
        };
        let setup_token = {
            let pool = pool.clone();
            db::off_thread::run(move || -> anyhow::Result<Option<String>> {
                let mut conn = pool.get()?;
                db::migrate(&mut conn)?;
                orgs::ensure_first(&mut conn)?;
                Ok(setup::issue_first_admin_link(&mut conn)?)
            })
            .await??
        };
        let setup_url = setup_token.map(|t| format!("{}/setup/{t}", settings.public_url()));
        let reads = db::inline_reads::InlineReads::for_target(&target);
        let (server, outbox) = run(listener, pool.clone(), reads, settings, key, mailer)?;
        Ok(Self {
            port,
            server,
            outbox,
            pool,
            setup_url,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> DbPool {
        self.pool.clone()
    }

    /// Serves until SIGTERM or Ctrl-C (or another stop of the server), then waits for the
    /// outbox worker to finish or release the emails it holds before answering.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.outbox.stop_on_signals();
        let served = self.server.await;
        self.outbox.shutdown().await;
        served
    }
}

fn run(
    listener: TcpListener,
    pool: DbPool,
    reads: db::inline_reads::InlineReads,
    settings: Settings,
    key: Key,
    mailer: Mailer,
) -> anyhow::Result<(Server, outbox::WorkerHandle)> {
    let limits = Limits {
        per_account: settings.login_max_failures_per_account,
        per_address: settings.login_max_failures_per_address,
        window: chrono::Duration::from_std(settings.login_throttle_window)?,
    };
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let workers = settings.workers.unwrap_or(cpus);
    let store = DbSessionStore::new(
        pool.clone(),
        reads.clone(),
        settings.session_idle_timeout,
        settings.session_absolute_timeout,
    );
    let secure = settings.secure_cookies();
    let from: Mailbox = settings.mail_from().parse().map_err(|e| {
        anyhow::anyhow!(
            "--mail-from {:?} is not a valid sender: {e}",
            settings.mail_from()
        )
    })?;
    let wake = Arc::new(Notify::new());
    let reset_requests = Arc::new(Notify::new());
    let mail = MailHandle::new(wake.clone(), reset_requests.clone(), mailer.logs_links());
    let outbox = outbox::Worker {
        pool: pool.clone(),
        mailer: Arc::new(mailer),
        from,
        poll_interval: settings.mail_poll_interval,
        retry_delay: settings.mail_retry_delay,
        wake: wake.clone(),
    }
    .spawn();
    let state = web::Data::new(AppState {
        pool: pool.clone(),
        reads,
        hasher: Hasher::new(
            settings.hash_slots.unwrap_or(cpus / 2),
            settings.hash_queue,
            settings.hash_hold.clone(),
        )
        .map_err(|e| anyhow::anyhow!("could not start the password hashing threads: {e}"))?,
        throttle: limits,
        clock: settings.clock.clone(),
        settings,
        mail,
    });
    let metrics = web::Data::new(crate::web::metrics::Metrics::default());
    let device_key = web::Data::new(crate::web::device::DeviceKey::derive(&key));
    spawn_reset_worker(ResetWorker {
        pool: pool.clone(),
        requests: reset_requests,
        mail_wake: wake,
        ttl: state.settings.password_reset_ttl,
        public_url: state.settings.public_url(),
        poll_interval: state.settings.mail_poll_interval,
    });
    spawn_membership_expiry(
        pool.clone(),
        state.clock.clone(),
        state.settings.membership_expiry_interval,
    );
    spawn_housekeeping(pool, limits);
    spawn_memory_return();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(metrics.clone())
            .app_data(device_key.clone())
            .wrap(from_fn(crate::web::middleware::head_as_get))
            .wrap(from_fn(audit_denials))
            .wrap(from_fn(csrf_guard))
            // Inside the session layer: a session the database could not load is a 503.
            .wrap(from_fn(crate::web::error_page::session_unavailable))
            .wrap(
                SessionMiddleware::builder(store.clone(), key.clone())
                    .cookie_name(SESSION_COOKIE.into())
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_secure(secure)
                    .cookie_content_security(CookieContentSecurity::Private)
                    .session_lifecycle(BrowserSession::default())
                    .build(),
            )
            // Outside the session layer: probes never wait for a session lookup.
            .wrap(from_fn(routes::health::without_session))
            .wrap(from_fn(crate::web::input_guard::input_guard))
            .wrap(security_headers(secure))
            .wrap(from_fn(request_log))
            .configure(crate::scim::configure)
            .configure(routes::configure)
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok((server, outbox))
}

/// Deletes expired sessions, forgotten sign-in failures and dead password reset links
/// now and then.
/// Hands memory that glibc's allocator holds free back to the system, now and then every
/// half minute: without it, the resident set stays at its busiest moment (a burst of
/// sign-ins, a page of a million members) long after it passed. Trimming costs well under
/// a millisecond when little is free.
fn spawn_memory_return() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    actix_web::rt::spawn(async {
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim only releases free pages; it is thread-safe.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}

struct ResetWorker {
    pool: DbPool,
    requests: Arc<Notify>,
    mail_wake: Arc<Notify>,
    ttl: Duration,
    public_url: String,
    poll_interval: Duration,
}

/// Turns queued "forgot password" requests into links, emails and audit events, after the
/// request page has answered (`domain::password_reset::handle_next`). The poll picks up
/// what another instance queued, or what a crash left.
fn spawn_reset_worker(worker: ResetWorker) {
    actix_web::rt::spawn(async move {
        let ttl = match chrono::Duration::from_std(worker.ttl) {
            Ok(ttl) => ttl,
            Err(e) => return tracing::error!(error = %e, "password reset TTL out of range"),
        };
        loop {
            let (pool, public_url) = (worker.pool.clone(), worker.public_url.clone());
            let handled = db::off_thread::run(move || -> anyhow::Result<usize> {
                let mut conn = pool.get()?;
                let mut handled = 0;
                while crate::domain::password_reset::handle_next(&mut conn, ttl, &public_url)?
                    .is_some()
                {
                    handled += 1;
                }
                Ok(handled)
            })
            .await;
            match handled {
                Ok(Ok(0)) => {}
                Ok(Ok(_)) => worker.mail_wake.notify_one(),
                Ok(Err(e)) => tracing::warn!(error = %e, "password reset requests failed"),
                Err(e) => tracing::warn!(error = %e, "password reset requests failed"),
            }
            tokio::select! {
                _ = actix_web::rt::time::sleep(worker.poll_interval) => {}
                _ = worker.requests.notified() => {}
            }
        }
    });
}

fn spawn_housekeeping(pool: DbPool, limits: Limits) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let pool = pool.clone();
            let result = db::off_thread::run(move || -> anyhow::Result<(usize, usize, usize)> {
                let mut conn = pool.get()?;
                if db::superseded(&mut conn)? {
                    return Ok((0, 0, 0));
                }
                let sessions = db::sessions::delete_expired(&mut conn, db::now())?;
                let attempts = throttle::prune(&mut conn, &limits)?;
                let reset_links = crate::domain::password_reset::prune(&mut conn)?;
                db::scim_cursors::prune(&mut conn)?;
                Ok((sessions, attempts, reset_links))
            })
            .await;
            match result {
                Ok(Ok((sessions, attempts, reset_links))) => {
                    tracing::debug!(sessions, attempts, reset_links, "housekeeping done")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
        }
    });
}

/// Deactivates memberships whose "access until" day is over, on the app's clock (which
/// a test moves). Several instances may run it at once: each change is conditional and
/// made under the organization's lock, so a membership ends once.
fn spawn_membership_expiry(pool: DbPool, clock: crate::config::Clock, every: Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        loop {
            tick.tick().await;
            let pool = pool.clone();
            let now = clock.now();
            let result = db::off_thread::run(move || -> anyhow::Result<usize> {
                let mut conn = pool.get()?;
                Ok(crate::domain::expiry::expire_due(&mut conn, now)?)
            })
            .await;
            match result {
                Ok(Ok(0)) => {}
                Ok(Ok(ended)) => tracing::info!(ended, "memberships expired"),
                Ok(Err(e)) => tracing::warn!(error = %e, "membership expiry failed"),
                Err(e) => tracing::warn!(error = %e, "membership expiry failed"),
            }
        }
    });
}

/// The key that signs and encrypts session cookies: from the settings, or generated once
/// and kept in the data directory so a restart signs nobody out.
fn session_key(settings: &Settings) -> anyhow::Result<Key> {
    if let Some(configured) = &settings.session_key {
        let bytes = STANDARD
            .decode(configured.trim())
            .unwrap_or_else(|_| configured.as_bytes().to_vec());
        anyhow::ensure!(
            bytes.len() >= 64,
            "PORTCULLIS_SESSION_KEY must be at least 64 bytes (or base64 of them)"
        );
        return Ok(Key::from(&bytes));
    }
    let path = settings.data_dir.join("session.key");
    if let Some(stored) = stored_session_key(&path) {
        return stored;
    }
    let key = Key::generate();
    // Written whole under a name of its own, then linked into place (which fails if a key
    // is there by then): a second process starting at the same moment on the same data
    // directory finds no key or a whole one, never half of one, and both use the first.
    let own = settings
        .data_dir
        .join(format!("session.key.{}", uuid::Uuid::now_v7().simple()));
    let cannot = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!("cannot write the session key to {}: {e}", path.display())
    };
    let encoded = STANDARD.encode(key.master());
    write_private(&own, &encoded).map_err(|e| cannot(&e))?;
    let linked = std::fs::hard_link(&own, &path);
    let _ = std::fs::remove_file(&own);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            stored_session_key(&path).unwrap_or_else(|| Err(cannot(&e)))
        }
        // A volume without hard links (SMB, some FUSE mounts): written in place, as
        // before, and only the start that made the file uses its key.
        Err(_) => match write_private(&path, &encoded) {
            Ok(()) => Ok(key),
            Err(e) => stored_session_key(&path).unwrap_or_else(|| Err(cannot(&e))),
        },
    }
}

/// The key kept in `path`, if there is a file there.
fn stored_session_key(path: &Path) -> Option<anyhow::Result<Key>> {
    let stored = std::fs::read_to_string(path).ok()?;
    if let Ok(bytes) = STANDARD.decode(stored.trim())
        && bytes.len() >= 64
    {
        return Some(Ok(Key::from(&bytes)));
    }
    Some(Err(anyhow::anyhow!(
        "{} is not a valid session key; delete it to make a new one",
        path.display()
    )))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        db::private_dir(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two processes started at the same moment on one data directory: each made and
    /// wrote a key, and the second either failed on "File exists" or read the first's
    /// half written, and told the operator to delete the running instance's key.
    #[test]
    fn processes_starting_together_share_one_session_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let settings = Settings::for_tests("unused".into(), dir.path().to_path_buf());
            let barrier = std::sync::Barrier::new(2);
            let keys: Vec<Vec<u8>> = std::thread::scope(|scope| {
                let starts: Vec<_> = (0..2)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            session_key(&settings).map(|k| k.master().to_vec())
                        })
                    })
                    .collect();
                starts
                    .into_iter()
                    .map(|s| s.join().unwrap().expect("a key"))
                    .collect()
            });
            assert_eq!(keys[0], keys[1]);
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "only session.key is left");
        }
    }
}
