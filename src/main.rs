use std::io::{IsTerminal, Read};

use clap::Parser;
use portcullis::config::{self, Cli, Command, Settings};
use portcullis::db::{self, DbTarget, PoolOptions};
use portcullis::domain::email::Email;
use portcullis::domain::{password, seed_audit, setup};
use portcullis::startup::Application;
use portcullis::telemetry;

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    let cli = Cli::parse();
    telemetry::init(&cli.settings.log_format);
    // Silently ignoring the old switch would put every client behind the proxy on one
    // address, throttled together: say what replaced it instead.
    if std::env::var_os("PORTCULLIS_TRUST_PROXY").is_some() {
        anyhow::bail!(
            "PORTCULLIS_TRUST_PROXY is no longer read: list your proxies in PORTCULLIS_TRUSTED_PROXIES (CIDRs) instead"
        );
    }
    let unknown = config::unknown_variables(
        std::env::vars_os().map(|(k, _)| k.to_string_lossy().into_owned()),
    );
    if !unknown.is_empty() {
        anyhow::bail!(
            "no option reads {}: check the spelling (`portcullis --help` lists every variable)",
            unknown.join(", ")
        );
    }
    if let Some(url) = &cli.settings.public_url {
        config::check_public_url(url).map_err(anyhow::Error::msg)?;
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings),
        Command::Migrate => {
            let pool = open(&cli.settings)?;
            db::migrate(&mut *pool.get()?)?;
            println!("Database is up to date.");
            Ok(())
        }
        Command::CreateAdmin { email, org } => create_admin(&cli.settings, &email, org.as_deref()),
        Command::PruneAudit { older_than } => prune_audit(&cli.settings, older_than),
        Command::CreateApiToken {
            org,
            name,
            scopes,
            role,
            expires_days,
        } => create_api_token(
            &cli.settings,
            &org,
            &name,
            &scopes,
            role.as_deref(),
            expires_days,
        ),
        Command::SeedDemo {
            org,
            members,
            audit_events,
        } => seed_demo(&cli.settings, org.as_deref(), members, audit_events),
    }
}

fn open(settings: &Settings) -> anyhow::Result<db::DbPool> {
    let target = DbTarget::parse(&settings.database_url())?;
    db::build_pool(
        &target,
        PoolOptions {
            max_size: 2,
            ..PoolOptions::default()
        },
    )
}

#[actix_web::main]
async fn serve(settings: Settings) -> anyhow::Result<()> {
    let public_url = settings.public_url();
    let app = Application::build(settings).await?;
    tracing::info!(
        port = app.port(),
        "Portcullis is listening; open {public_url}"
    );
    if let Some(url) = &app.setup_url {
        // Printed, not only logged: this is how the first administrator gets in.
        println!(
            "\nNo administrator exists yet. Open this one-time link to create one:\n\n    {url}\n"
        );
    }
    app.run_until_stopped().await?;
    Ok(())
}

fn create_admin(settings: &Settings, email: &str, org: Option<&str>) -> anyhow::Result<()> {
    let email = Email::parse_new(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let password = read_password_from_stdin()?;
    let hash = match &password {
        Some(p) => {
            password::validate_new(p, p).map_err(|e| anyhow::anyhow!("password: {e}"))?;
            Some(portcullis::auth::password::hash_blocking(p)?)
        }
        None => None,
    };
    let pool = open(settings)?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    let created =
        setup::create_admin(&mut conn, &email, org, hash.as_deref()).map_err(|e| match e {
            // On a terminal there is no highlighted field: say which one and why.
            setup::SetupError::Invalid(errors) => {
                anyhow::anyhow!("{}", errors.first().unwrap_or("invalid input"))
            }
            other => anyhow::anyhow!("{other}"),
        })?;
    println!(
        "Created {} as Admin of {} ({}).",
        created.user.email, created.org.name, created.org.slug
    );
    if let Some(token) = created.setup_token {
        println!(
            "They set their name and password at this one-time link (valid {} hours):\n\n    {}/setup/{}\n",
            setup::ACCOUNT_LINK_TTL_HOURS,
            settings.public_url(),
            token
        );
    }
    Ok(())
}

fn create_api_token(
    settings: &Settings,
    org: &str,
    name: &str,
    scopes: &[String],
    role: Option<&str>,
    expires_days: Option<i64>,
) -> anyhow::Result<()> {
    use portcullis::domain::RuleError;
    let pool = open(settings)?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    let created = portcullis::domain::api_tokens::create_from_cli(
        &mut conn,
        org,
        name,
        scopes,
        role,
        expires_days,
    )
    .map_err(|e| match e {
        RuleError::NotFound => anyhow::anyhow!("--org: no organization {org:?}"),
        RuleError::Invalid(errors) => {
            anyhow::anyhow!("{}", errors.first().unwrap_or("invalid input"))
        }
        other => anyhow::anyhow!("{other}"),
    })?;
    println!("{}", created.secret);
    Ok(())
}

fn prune_audit(settings: &Settings, older_than_days: u32) -> anyhow::Result<()> {
    let pool = open(settings)?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    let pruned = portcullis::audit::prune(&mut conn, older_than_days)?;
    println!(
        "Deleted {} audit events older than {} UTC; recorded as audit.pruned.",
        pruned.deleted,
        pruned.cutoff.format("%Y-%m-%d %H:%M:%S")
    );
    Ok(())
}

fn seed_demo(
    settings: &Settings,
    org: Option<&str>,
    members: u64,
    audit_events: u64,
) -> anyhow::Result<()> {
    let pool = open(settings)?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    let first = portcullis::domain::orgs::ensure_first(&mut conn)?;
    let slug = org.map(str::to_string).unwrap_or(first.slug);
    if members == 0 && audit_events == 0 {
        println!("Nothing to do: pass --members N and/or --audit-events N.");
    }
    if members > 0 {
        let started = std::time::Instant::now();
        portcullis::seed_members::seed_members(&mut conn, &slug, members, |done| {
            eprint!("\rmembers: {done}/{members}");
        })?;
        eprintln!();
        println!(
            "Added {members} demo members to {slug} in {:.1}s.",
            started.elapsed().as_secs_f64()
        );
    }
    let org = Some(slug.as_str());
    if audit_events > 0 {
        let started = std::time::Instant::now();
        let seeded = seed_audit::seed_audit_events(&mut conn, org, audit_events, |done, total| {
            let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
            eprint!("\rseeding audit events: {done} / {total} ({rate:.0}/s)   ");
        })?;
        eprintln!();
        println!(
            "Added {} demo audit events to {} ({}) in {:.1}s.",
            seeded.inserted,
            seeded.org.name,
            seeded.org.slug,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The first line of standard input when something is piped in; `None` on a terminal or
/// with empty input, which means "print a setup link instead".
fn read_password_from_stdin() -> anyhow::Result<Option<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut input = String::new();
    stdin.lock().read_to_string(&mut input)?;
    let line = input.lines().next().unwrap_or("").to_string();
    Ok((!line.is_empty()).then_some(line))
}

/// glibc gives each thread that allocates its own arena (up to 8 per core) and keeps what
/// was freed in it, so the web::block pool's many threads each held on to the memory of
/// their busiest moment. Two arenas bounded RSS under readers from 134 to 89 MiB in
/// `cargo bench --bench memory` (mimalloc, measured too, did worse: see README).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
