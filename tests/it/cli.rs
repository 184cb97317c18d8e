use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::*;

fn portcullis(
    db: &TestDb,
    data_dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_DATA_DIR", data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run portcullis");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[actix_web::test]
async fn create_admin_with_a_piped_password_can_sign_in() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let out = portcullis(
        &app.db,
        dir.path(),
        &["create-admin", "--email", "Ops@Example.com"],
        "a very good password\n",
    );
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created ops@example.com as Admin"));
    let browser = app.client();
    assert_eq!(
        browser
            .login("ops@example.com", "a very good password")
            .await
            .status,
        303
    );
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
    // With an account in the database, the first-admin link is dead.
    let setup = app.setup_url.clone().unwrap();
    assert_eq!(app.client().get_abs(&setup).await.status, 404);
}

#[actix_web::test]
async fn create_admin_without_a_password_prints_a_one_time_link() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let out = portcullis(
        &app.db,
        dir.path(),
        &["create-admin", "--email", "ops@example.com"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let start = stdout.find("/setup/").expect("a setup link");
    let path = stdout[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    let browser = app.client();
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("ops@example.com"));
    let done = browser
        .post(
            &path,
            &account_form(form.csrf(), "Olive", "Ops", "another good password"),
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
    assert_eq!(app.client().get(&path).await.status, 404, "used once");
    assert_eq!(
        app.client()
            .login("ops@example.com", "another good password")
            .await
            .status,
        303
    );
}

#[test]
fn an_unknown_database_scheme_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "migrate",
            "--database-url",
            "mysql://root@localhost/portcullis",
        ])
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unsupported database URL scheme `mysql`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file was created"
    );
}

#[actix_web::test]
async fn the_server_refuses_to_start_on_an_unknown_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let settings = portcullis::config::Settings::for_tests(
        "redis://localhost/0".into(),
        dir.path().to_path_buf(),
    );
    let err = portcullis::startup::Application::build(settings)
        .await
        .err()
        .expect("start-up fails");
    assert!(
        err.to_string()
            .contains("unsupported database URL scheme `redis`")
    );
}

#[test]
fn migrate_subcommand_prepares_an_empty_database() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let out = portcullis(&db, dir.path(), &["migrate"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
}

#[actix_web::test]
async fn seed_demo_fills_an_organization_in_batches() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let dir = tempfile::tempdir().unwrap();
    let out = portcullis(
        &app.db,
        dir.path(),
        &["seed-demo", "--org", "my-org", "--members", "1234"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("members: 1234/1234"));
    assert_eq!(app.count("memberships"), 1235);
    let page = admin
        .get("/orgs/my-org/users?status=inactive&sort=-created")
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(row_emails(&page.body).len(), 50);
    assert!(next_link(&page.body).is_some());
    assert!(page.body.contains("Active <strong>1,112</strong>"));
    let search = admin.get("/orgs/my-org/users?q=lovelace").await;
    assert!(!row_emails(&search.body).is_empty());
    assert!(
        row_emails(&search.body)
            .iter()
            .all(|e| e.contains("lovelace"))
    );
}

/// The version diesel records for this build's newest migration (its directory's date and
/// number, dashes taken out).
fn newest_migration() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(|c: char| c.is_ascii_digit()))
        .max()
        .unwrap();
    newest.split('_').next().unwrap().replace('-', "")
}

/// An older binary started on a database a newer one migrated (a roll-back after an
/// upgrade) refuses to start, and changes nothing, instead of writing rows the newer one
/// keeps otherwise.
#[test]
fn an_older_version_refuses_a_database_a_newer_one_migrated() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let first = portcullis(&db, dir.path(), &["migrate"], "");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    use diesel::RunQueryDsl;
    let target = portcullis::db::DbTarget::parse(&db.url).unwrap();
    let pool = portcullis::db::build_pool(&target, Default::default()).unwrap();
    let mut pooled = pool.get().unwrap();
    let conn: &mut portcullis::db::DbConnection = &mut pooled;
    let newest = newest_migration();
    diesel::sql_query("INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000001')")
        .execute(conn)
        .unwrap();
    // As if this version's last migration were still to run: it must not run.
    diesel::sql_query(format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = '{newest}'"
    ))
    .execute(conn)
    .unwrap();
    let again = portcullis(&db, dir.path(), &["migrate"], "");
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("upgraded by a newer version of Portcullis")
            && stderr.contains("29990101000001"),
        "{stderr}"
    );
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let pending = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM __diesel_schema_migrations WHERE version = '{newest}'"
    ))
    .get_result::<Count>(conn)
    .unwrap()
    .n;
    assert_eq!(pending, 0, "nothing was migrated");
}

/// `--help` prints each option's environment value: the database's password must not be
/// among them. Counts that cannot be zero are refused by name, not by a panic.
#[test]
fn help_hides_the_database_password_and_zero_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let help = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--help"])
        .env(
            "PORTCULLIS_DATABASE_URL",
            "postgres://app:hunter2@db.example/x",
        )
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&help.stdout);
    assert!(shown.contains("PORTCULLIS_DATABASE_URL"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    for (option, value) in [
        ("--workers", "0"),
        ("--db-pool-size", "0"),
        ("--hash-slots", "0"),
        ("--login-max-failures-per-account", "0"),
        ("--invitations-per-hour", "0"),
        ("--scim-scan-limit", "0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["migrate", option, value])
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{option}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(option) && !stderr.contains("panicked"),
            "{option}: {stderr}"
        );
    }
}

/// A misspelled variable would otherwise be ignored with nothing said: without a mail
/// server, invitation links go to files and the log. A public address without a scheme
/// makes every emailed link broken. Both stop the start with the reason.
#[test]
fn a_misspelled_variable_or_a_public_url_without_scheme_stops_the_start() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, value: &str| {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("migrate")
            .env("PORTCULLIS_DATABASE_URL", &db.url)
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .env(name, value)
            .output()
            .unwrap()
    };
    let misspelled = run("PORTCULLIS_SMPT_URL", "smtp://mail.example.com");
    assert!(!misspelled.status.success());
    let said = String::from_utf8_lossy(&misspelled.stderr);
    assert!(said.contains("PORTCULLIS_SMPT_URL"), "{said}");
    let schemeless = run("PORTCULLIS_PUBLIC_URL", "portal.example.com");
    assert!(!schemeless.status.success());
    let said = String::from_utf8_lossy(&schemeless.stderr);
    assert!(said.contains("https://portal.example.com"), "{said}");
    // Every option's own variable, and the log filter, are known.
    let known = run("PORTCULLIS_LOG", "info");
    assert!(
        known.status.success(),
        "{}",
        String::from_utf8_lossy(&known.stderr)
    );
    let public = run("PORTCULLIS_PUBLIC_URL", "https://portal.example.com");
    assert!(
        public.status.success(),
        "{}",
        String::from_utf8_lossy(&public.stderr)
    );
}
