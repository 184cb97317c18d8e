//! The audit trail: one event per state change, insert-only storage, retention, the
//! audit pages (filters, keyset pagination, tenant isolation, permissions), the CSV
//! export and the query plans behind them.

use std::process::Command;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use portcullis::db::audit_events::{self, AuditRow, Cursor, Filter, NewAuditRow, Scope};
use portcullis::db::organizations::Organization;
use portcullis::db::schema::audit_events as ae;
use portcullis::db::users::{self, NewUser, User};
use portcullis::db::{self, DbConnection, memberships, roles};
use portcullis::domain::audit_view::{self, AuditQuery, CSV_HEADER};

use crate::helpers::*;

// ---- helpers ------------------------------------------------------------------------

/// Every event, oldest first.
fn all_events(app: &TestApp) -> Vec<AuditRow> {
    let mut rows = audit_events::page(
        &mut app.conn(),
        &Scope::All,
        &Filter::default(),
        None,
        1_000_000,
    )
    .unwrap();
    rows.reverse();
    rows
}

fn create_org(app: &TestApp, slug: &str, name: &str) -> Organization {
    let mut conn = app.conn();
    diesel::Connection::transaction(&mut *conn, |conn| {
        portcullis::domain::orgs::create(conn, slug, name, None, &Default::default())
    })
    .unwrap()
}

fn org_by_slug(app: &TestApp, slug: &str) -> Organization {
    portcullis::db::organizations::find_by_slug(&mut app.conn(), slug)
        .unwrap()
        .unwrap()
}

const MEMBER_PASSWORD: &str = "a member's long password";

/// An active account that signs in with `MEMBER_PASSWORD`.
fn add_user(app: &TestApp, email: &str, platform_role: &str) -> User {
    let hash = portcullis::auth::password::hash_blocking(MEMBER_PASSWORD).unwrap();
    let id = db::new_id();
    let mut conn = app.conn();
    users::insert(
        &mut conn,
        &NewUser {
            id: &id,
            email,
            first_name: "Test",
            last_name: "Person",
            password_hash: Some(&hash),
            platform_role,
            status: "active",
            auth_method: "password",
            created_at: db::now(),
            last_active_at: None,
        },
    )
    .unwrap();
    users::find(&mut conn, &id).unwrap().unwrap()
}

fn add_member(app: &TestApp, org: &Organization, user: &User, role_key: &str) {
    let mut conn = app.conn();
    let role = roles::find_by_key(&mut conn, &org.id, role_key)
        .unwrap()
        .unwrap();
    memberships::insert(&mut conn, &org.id, user, &role.id).unwrap();
}

fn admin(app: &TestApp) -> User {
    users::find_by_email(&mut app.conn(), ADMIN_EMAIL)
        .unwrap()
        .unwrap()
}

/// A recorded event, as a change elsewhere in the application would write it.
#[derive(Clone)]
struct Ev {
    org_id: Option<String>,
    actor: Option<String>,
    action: &'static str,
    target_id: Option<String>,
    target_label: Option<String>,
    details: String,
    at: NaiveDateTime,
}

impl Ev {
    fn new(org: Option<&Organization>, action: &'static str, at: NaiveDateTime) -> Self {
        Ev {
            org_id: org.map(|o| o.id.clone()),
            actor: None,
            action,
            target_id: None,
            target_label: None,
            details: "{}".into(),
            at,
        }
    }
    fn actor(mut self, email: &str) -> Self {
        self.actor = Some(email.into());
        self
    }
    fn target(mut self, id: &str, label: &str) -> Self {
        self.target_id = Some(id.into());
        self.target_label = Some(label.into());
        self
    }
    fn details(mut self, details: &str) -> Self {
        self.details = details.into();
        self
    }
}

/// Inserts the events and answers their ids, in order.
fn insert_events(app: &TestApp, events: &[Ev]) -> Vec<String> {
    let ids: Vec<String> = events.iter().map(|_| db::new_id()).collect();
    let rows: Vec<NewAuditRow> = events
        .iter()
        .zip(&ids)
        .map(|(e, id)| NewAuditRow {
            id,
            org_id: e.org_id.as_deref(),
            actor_id: e.actor.as_deref().map(|_| "actor-id"),
            actor_email: e.actor.as_deref(),
            action: e.action,
            target_type: e.target_id.as_deref().map(|_| "user"),
            target_id: e.target_id.as_deref(),
            target_label: e.target_label.as_deref(),
            details: &e.details,
            ip: Some("192.0.2.1"),
            request_id: None,
            created_at: e.at,
        })
        .collect();
    let mut conn = app.conn();
    for chunk in rows.chunks(500) {
        audit_events::insert_many(&mut conn, chunk).unwrap();
    }
    ids
}

fn day(y: i32, m: u32, d: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// The `data-id`s of the audit table's rows, top to bottom.
fn row_ids(html: &str) -> Vec<String> {
    html.match_indices("<tr data-id=\"")
        .map(|(i, m)| {
            let start = i + m.len();
            let end = html[start..].find('"').unwrap() + start;
            html[start..end].to_string()
        })
        .collect()
}

/// The "Older events" link, unescaped.
fn next_link(html: &str) -> Option<String> {
    let end = html.find("\" rel=\"next\"")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

fn csv_rows(body: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn run_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", &app.db.url)
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .output()
        .unwrap()
}

// ---- one event per state change -----------------------------------------------------

/// Every way a state-changing route is exercised here. Each must write exactly one
/// event; add a case for every new POST route (the next test fails until you do).
#[derive(Debug, Clone, Copy)]
enum Case {
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    Logout,
    TwoFactorEnabled,
    TwoFactorDisabled,
    RecoveryCodesRegenerated,
    SecondStepSucceeded,
    SecondStepFailed,
    RecoveryCodeUsed,
    PasswordChanged,
    SessionEnded,
    OtherSessionsEnded,
    SigninAlertsChanged,
    SetupFirstAdmin,
    SetupAccountLink,
    MemberEdited,
    MemberDeactivated,
    MemberActivated,
    MemberMadeAdmin,
    MemberRemoved,
    BulkDeactivateOne,
    InvitationCreated,
    InvitationResent,
    InvitationCancelled,
    InvitationAccepted,
    RoleCreated,
    RoleUpdated,
    RoleDeleted,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    GroupMemberAdded,
    GroupMemberRemoved,
    PoolCreated,
    PoolRenamed,
    PoolMoved,
    PoolDeleted,
    PoolMemberAdded,
    PoolMemberRemoved,
    OrgCreatedWithNewAccount,
    OrgCreatedWithExistingAccount,
    AdminUserCreated,
    AdminUserDisabled,
    AdminUserEnabled,
    AdminMembershipAdded,
    AdminMembershipActivated,
    AdminMembershipRoleChanged,
    AdminSessionsEnded,
    PasswordResetRequested,
    PasswordReset,
    TwoFactorResetByOrgAdmin,
    TwoFactorResetByPlatformAdmin,
}

/// (method, route as registered, the cases that exercise it)
const AUDITED_ROUTES: &[(&str, &str, &[Case])] = &[
    (
        "POST",
        "/login",
        &[
            Case::LoginSucceeded,
            Case::LoginFailed,
            Case::LoginThrottled,
        ],
    ),
    ("POST", "/logout", &[Case::Logout]),
    (
        "POST",
        "/login/2fa",
        &[
            Case::SecondStepSucceeded,
            Case::SecondStepFailed,
            Case::RecoveryCodeUsed,
        ],
    ),
    ("POST", "/account/2fa", &[Case::TwoFactorEnabled]),
    ("POST", "/account/2fa/disable", &[Case::TwoFactorDisabled]),
    (
        "POST",
        "/account/2fa/recovery-codes",
        &[Case::RecoveryCodesRegenerated],
    ),
    ("POST", "/account/password", &[Case::PasswordChanged]),
    ("POST", "/account/sessions/{id}/end", &[Case::SessionEnded]),
    (
        "POST",
        "/account/sessions/end-others",
        &[Case::OtherSessionsEnded],
    ),
    (
        "POST",
        "/account/signin-alerts",
        &[Case::SigninAlertsChanged],
    ),
    (
        "POST",
        "/setup/{token}",
        &[Case::SetupFirstAdmin, Case::SetupAccountLink],
    ),
    ("POST", "/orgs/{org}/users/{id}", &[Case::MemberEdited]),
    (
        "POST",
        "/orgs/{org}/users/{id}/deactivate",
        &[Case::MemberDeactivated],
    ),
    (
        "POST",
        "/orgs/{org}/users/{id}/activate",
        &[Case::MemberActivated],
    ),
    (
        "POST",
        "/orgs/{org}/users/{id}/make-admin",
        &[Case::MemberMadeAdmin],
    ),
    (
        "POST",
        "/orgs/{org}/users/{id}/delete",
        &[Case::MemberRemoved],
    ),
    ("POST", "/orgs/{org}/users/bulk", &[Case::BulkDeactivateOne]),
    (
        "POST",
        "/orgs/{org}/invitations",
        &[Case::InvitationCreated],
    ),
    (
        "POST",
        "/orgs/{org}/invitations/{id}/resend",
        &[Case::InvitationResent],
    ),
    (
        "POST",
        "/orgs/{org}/invitations/{id}/cancel",
        &[Case::InvitationCancelled],
    ),
    ("POST", "/invite/{token}", &[Case::InvitationAccepted]),
    ("POST", "/forgot-password", &[Case::PasswordResetRequested]),
    ("POST", "/reset/{token}", &[Case::PasswordReset]),
    ("POST", "/orgs/{org}/roles", &[Case::RoleCreated]),
    ("POST", "/orgs/{org}/roles/{id}", &[Case::RoleUpdated]),
    (
        "POST",
        "/orgs/{org}/roles/{id}/delete",
        &[Case::RoleDeleted],
    ),
    ("POST", "/orgs/{org}/groups", &[Case::GroupCreated]),
    ("POST", "/orgs/{org}/groups/{id}", &[Case::GroupUpdated]),
    (
        "POST",
        "/orgs/{org}/groups/{id}/delete",
        &[Case::GroupDeleted],
    ),
    (
        "POST",
        "/orgs/{org}/groups/{id}/members",
        &[Case::GroupMemberAdded],
    ),
    (
        "POST",
        "/orgs/{org}/groups/{id}/members/{user_id}/remove",
        &[Case::GroupMemberRemoved],
    ),
    ("POST", "/orgs/{org}/pools", &[Case::PoolCreated]),
    (
        "POST",
        "/orgs/{org}/pools/{id}",
        &[Case::PoolRenamed, Case::PoolMoved],
    ),
    (
        "POST",
        "/orgs/{org}/pools/{id}/delete",
        &[Case::PoolDeleted],
    ),
    (
        "POST",
        "/orgs/{org}/pools/{id}/members",
        &[Case::PoolMemberAdded],
    ),
    (
        "POST",
        "/orgs/{org}/pools/{id}/members/{user_id}/remove",
        &[Case::PoolMemberRemoved],
    ),
    (
        "POST",
        "/admin/orgs",
        &[
            Case::OrgCreatedWithNewAccount,
            Case::OrgCreatedWithExistingAccount,
        ],
    ),
    ("POST", "/admin/users", &[Case::AdminUserCreated]),
    (
        "POST",
        "/admin/users/{id}/disable",
        &[Case::AdminUserDisabled],
    ),
    (
        "POST",
        "/admin/users/{id}/enable",
        &[Case::AdminUserEnabled],
    ),
    (
        "POST",
        "/admin/users/{id}/memberships",
        &[Case::AdminMembershipAdded],
    ),
    (
        "POST",
        "/admin/users/{id}/memberships/{org}/activate",
        &[Case::AdminMembershipActivated],
    ),
    (
        "POST",
        "/admin/users/{id}/memberships/{org}/role",
        &[Case::AdminMembershipRoleChanged],
    ),
    (
        "POST",
        "/admin/users/{id}/sessions/end",
        &[Case::AdminSessionsEnded],
    ),
    (
        "POST",
        "/orgs/{org}/users/{id}/2fa/reset",
        &[Case::TwoFactorResetByOrgAdmin],
    ),
    (
        "POST",
        "/admin/users/{id}/2fa/reset",
        &[Case::TwoFactorResetByPlatformAdmin],
    ),
];

struct Expected {
    action: &'static str,
    actor: Option<String>,
    target_label: Option<String>,
    target_id: Option<String>,
    org: Option<String>,
}

impl Expected {
    /// `actor` did `action` to the target (id, label), in `org` (`None`: a platform event).
    fn new(action: &'static str, actor: &User, target: (&str, &str), org: Option<&str>) -> Self {
        Expected {
            action,
            actor: Some(actor.email.clone()),
            target_label: Some(target.1.to_string()),
            target_id: Some(target.0.to_string()),
            org: org.map(str::to_string),
        }
    }
}

/// Prepares a fresh application for `case`, then performs the one request under test.
/// Answers the application, how many events existed just before the request, and the
/// one event the request must have added.
async fn exercise(case: Case) -> (TestApp, usize, Expected) {
    let app = spawn_app_with(|s| s.login_max_failures_per_account = 2).await;
    let (before, expected) = match case {
        Case::TwoFactorEnabled
        | Case::TwoFactorDisabled
        | Case::RecoveryCodesRegenerated
        | Case::SecondStepSucceeded
        | Case::SecondStepFailed
        | Case::RecoveryCodeUsed => exercise_two_factor(&app, case).await,
        Case::LoginSucceeded
        | Case::LoginFailed
        | Case::LoginThrottled
        | Case::Logout
        | Case::PasswordChanged
        | Case::SessionEnded
        | Case::OtherSessionsEnded
        | Case::SigninAlertsChanged
        | Case::SetupFirstAdmin
        | Case::SetupAccountLink => exercise_auth(&app, case).await,
        Case::MemberEdited
        | Case::MemberDeactivated
        | Case::MemberActivated
        | Case::MemberMadeAdmin
        | Case::MemberRemoved
        | Case::BulkDeactivateOne => exercise_members(&app, case).await,
        Case::InvitationCreated
        | Case::InvitationResent
        | Case::InvitationCancelled
        | Case::InvitationAccepted => exercise_invitations(&app, case).await,
        Case::RoleCreated | Case::RoleUpdated | Case::RoleDeleted => {
            exercise_roles(&app, case).await
        }
        Case::GroupCreated
        | Case::GroupUpdated
        | Case::GroupDeleted
        | Case::GroupMemberAdded
        | Case::GroupMemberRemoved => exercise_groups(&app, case).await,
        Case::PoolCreated
        | Case::PoolRenamed
        | Case::PoolMoved
        | Case::PoolDeleted
        | Case::PoolMemberAdded
        | Case::PoolMemberRemoved => exercise_pools(&app, case).await,
        Case::OrgCreatedWithNewAccount
        | Case::OrgCreatedWithExistingAccount
        | Case::AdminUserCreated
        | Case::AdminUserDisabled
        | Case::AdminUserEnabled
        | Case::AdminMembershipAdded
        | Case::AdminMembershipActivated
        | Case::AdminMembershipRoleChanged
        | Case::AdminSessionsEnded => exercise_platform(&app, case).await,
        Case::PasswordResetRequested | Case::PasswordReset => exercise_reset(&app, case).await,
        Case::TwoFactorResetByOrgAdmin | Case::TwoFactorResetByPlatformAdmin => {
            exercise_two_factor_reset(&app, case).await
        }
    };
    (app, before, expected)
}

async fn exercise_auth(app: &TestApp, case: Case) -> (usize, Expected) {
    match case {
        Case::SetupFirstAdmin => {
            let browser = app.client();
            let setup = app.setup_url.clone().unwrap();
            let form = browser.get_abs(&setup).await;
            let before = all_events(app).len();
            let done = browser
                .post_abs(&setup, &first_admin_form(form.csrf()))
                .await;
            assert_eq!(done.status, 303, "{case:?}: {}", done.body);
            let admin = admin(app);
            let org = org_by_slug(app, "my-org");
            (
                before,
                Expected {
                    action: "setup.completed",
                    actor: Some(ADMIN_EMAIL.into()),
                    target_label: Some(ADMIN_EMAIL.into()),
                    target_id: Some(admin.id),
                    org: Some(org.id),
                },
            )
        }
        Case::SetupAccountLink => {
            app.setup_admin().await;
            let out = run_cli(app, &["create-admin", "--email", "ops@example.com"]);
            assert!(out.status.success());
            let stdout = String::from_utf8_lossy(&out.stdout);
            let start = stdout.find("/setup/").unwrap();
            let path = stdout[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            let browser = app.client();
            let form = browser.get(&path).await;
            let before = all_events(app).len();
            let done = browser
                .post(
                    &path,
                    &account_form(form.csrf(), "Olive", "Ops", "another good password"),
                )
                .await;
            assert_eq!(done.status, 303, "{case:?}: {}", done.body);
            let ops = users::find_by_email(&mut app.conn(), "ops@example.com")
                .unwrap()
                .unwrap();
            (
                before,
                Expected {
                    action: "account.setup_completed",
                    actor: Some(ops.email.clone()),
                    target_label: Some(ops.email),
                    target_id: Some(ops.id),
                    org: None,
                },
            )
        }
        Case::LoginSucceeded | Case::LoginFailed | Case::LoginThrottled => {
            app.setup_admin().await;
            let browser = app.client();
            if let Case::LoginThrottled = case {
                for _ in 0..2 {
                    browser.login(ADMIN_EMAIL, "wrong password!").await;
                }
            }
            let form = browser.get("/login").await;
            let before = all_events(app).len();
            let password = match case {
                Case::LoginFailed => "wrong password!",
                _ => ADMIN_PASSWORD,
            };
            let response = browser
                .post(
                    "/login",
                    &[
                        ("csrf_token", form.csrf()),
                        ("email", ADMIN_EMAIL.into()),
                        ("password", password.into()),
                    ],
                )
                .await;
            let admin = admin(app);
            let (status, expected) = match case {
                Case::LoginSucceeded => (
                    303,
                    Expected {
                        action: "auth.login_succeeded",
                        actor: Some(ADMIN_EMAIL.into()),
                        target_label: Some(ADMIN_EMAIL.into()),
                        target_id: Some(admin.id),
                        org: None,
                    },
                ),
                Case::LoginFailed => (
                    401,
                    Expected {
                        action: "auth.login_failed",
                        actor: None,
                        target_label: Some(ADMIN_EMAIL.into()),
                        target_id: Some(String::new()),
                        org: None,
                    },
                ),
                _ => (
                    429,
                    Expected {
                        action: "auth.login_throttled",
                        actor: None,
                        target_label: Some(ADMIN_EMAIL.into()),
                        target_id: Some(String::new()),
                        org: None,
                    },
                ),
            };
            assert_eq!(response.status, status, "{case:?}");
            (before, expected)
        }
        Case::Logout => {
            let browser = app.setup_admin().await;
            let token = browser.get("/orgs/my-org/users").await.csrf();
            let before = all_events(app).len();
            let out = browser.post("/logout", &[("csrf_token", token)]).await;
            assert_eq!(out.status, 303, "{case:?}");
            let admin = admin(app);
            (
                before,
                Expected {
                    action: "auth.logout",
                    actor: Some(ADMIN_EMAIL.into()),
                    target_label: Some(ADMIN_EMAIL.into()),
                    target_id: Some(admin.id),
                    org: None,
                },
            )
        }
        Case::PasswordChanged => {
            let browser = app.setup_admin().await;
            let token = browser.get("/account").await.csrf();
            let before = all_events(app).len();
            let out = browser
                .post(
                    "/account/password",
                    &[
                        ("csrf_token", token),
                        ("current_password", ADMIN_PASSWORD.into()),
                        ("password", "a changed password".into()),
                        ("password_confirm", "a changed password".into()),
                    ],
                )
                .await;
            assert_eq!(out.status, 303, "{case:?}: {}", out.body);
            let admin = admin(app);
            (
                before,
                Expected {
                    action: "account.password_changed",
                    actor: Some(ADMIN_EMAIL.into()),
                    target_label: Some(ADMIN_EMAIL.into()),
                    target_id: Some(admin.id),
                    org: None,
                },
            )
        }
        Case::SessionEnded | Case::OtherSessionsEnded | Case::SigninAlertsChanged => {
            let browser = app.setup_admin().await;
            let elsewhere = app.client();
            assert_eq!(
                elsewhere.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
                303
            );
            let page = browser.get("/account").await;
            let token = page.csrf();
            let before = all_events(app).len();
            let (out, action) = match case {
                Case::SessionEnded => {
                    let marker = "data-current=\"false\"";
                    let at = page.body.find(marker).expect("the other session is listed");
                    let row = &page.body[..at];
                    let id_at = row.rfind("data-id=\"").expect("the row has an id") + 9;
                    let id = &row[id_at..id_at + row[id_at..].find('"').unwrap()];
                    let path = format!("/account/sessions/{id}/end");
                    (
                        browser.post(&path, &[("csrf_token", token)]).await,
                        "account.session_ended",
                    )
                }
                Case::OtherSessionsEnded => (
                    browser
                        .post("/account/sessions/end-others", &[("csrf_token", token)])
                        .await,
                    "account.other_sessions_ended",
                ),
                _ => (
                    browser
                        .post("/account/signin-alerts", &[("csrf_token", token)])
                        .await,
                    "account.signin_alerts_changed",
                ),
            };
            assert_eq!(out.status, 303, "{case:?}: {}", out.body);
            let admin = admin(app);
            (
                before,
                Expected {
                    action,
                    actor: Some(ADMIN_EMAIL.into()),
                    target_label: Some(ADMIN_EMAIL.into()),
                    target_id: Some(admin.id),
                    org: None,
                },
            )
        }
        other => unreachable!("{other:?} is not an auth case"),
    }
}

/// A signed-in first admin, the first organization and one plain member, Bob.
struct InOrg {
    browser: Browser,
    admin: User,
    org: Organization,
    bob: User,
}

const BOB: &str = "bob@example.com";

async fn in_org(app: &TestApp) -> InOrg {
    let browser = app.setup_admin().await;
    let bob_id = app.add_member("my-org", BOB, "Bob", "Builder", "member", true);
    InOrg {
        browser,
        admin: admin(app),
        org: org_by_slug(app, "my-org"),
        bob: users::find(&mut app.conn(), &bob_id).unwrap().unwrap(),
    }
}

/// An admin resets Bob's two-factor: in the organization (an organization event), or
/// from the platform page (a platform event).
async fn exercise_two_factor_reset(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg {
        browser,
        admin,
        org,
        bob,
    } = in_org(app).await;
    crate::two_factor::enrol(&app.member_browser(BOB).await).await;
    let (path, org) = match case {
        Case::TwoFactorResetByOrgAdmin => (
            format!("/orgs/my-org/users/{}/2fa/reset", bob.id),
            Some(org.id.as_str()),
        ),
        _ => (format!("/admin/users/{}/2fa/reset", bob.id), None),
    };
    let (before, page) = post_counted(app, &browser, &path, &[]).await;
    assert_eq!(page.status, 303, "{case:?}: {}", page.body);
    let expected = Expected::new("user.two_factor_reset", &admin, (&bob.id, BOB), org);
    (before, expected)
}

/// Posts `fields` to `action` with the session's CSRF token, and answers how many events
/// existed just before the post, with the answer. Only the post itself is counted.
/// A forgotten password: the request (no actor: nobody is signed in) and the reset.
async fn exercise_reset(app: &TestApp, case: Case) -> (usize, Expected) {
    app.setup_admin().await;
    let admin = admin(app);
    let browser = app.client();
    let ask = [("email", ADMIN_EMAIL)];
    if let Case::PasswordResetRequested = case {
        let token = browser.get("/forgot-password").await.csrf();
        let before = all_events(app).len();
        let page = browser
            .post(
                "/forgot-password",
                &[("csrf_token", token), ("email", ADMIN_EMAIL.into())],
            )
            .await;
        assert_eq!(page.status, 200, "{case:?}: {}", page.body);
        let expected = Expected {
            action: "auth.password_reset_requested",
            actor: None,
            target_label: Some(ADMIN_EMAIL.into()),
            target_id: Some(admin.id.clone()),
            org: None,
        };
        return (before, expected);
    }
    let asked = browser
        .submit("/forgot-password", "/forgot-password", &ask)
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let path = crate::browser::mailed_to(app, ADMIN_EMAIL)
        .await
        .unwrap()
        .link_path("/reset/")
        .unwrap();
    let token = browser.get(&path).await.csrf();
    let before = all_events(app).len();
    let password = "another good password";
    let fields = [
        ("csrf_token", token),
        ("password", password.into()),
        ("password_confirm", password.into()),
    ];
    let page = browser.post(&path, &fields).await;
    assert_eq!(page.status, 303, "{case:?}: {}", page.body);
    let expected = Expected::new(
        "auth.password_reset",
        &admin,
        (&admin.id, ADMIN_EMAIL),
        None,
    );
    (before, expected)
}

async fn post_counted(
    app: &TestApp,
    browser: &Browser,
    action: &str,
    fields: &[(&str, &str)],
) -> (usize, Page) {
    let token = browser.get("/orgs/my-org/users").await.csrf();
    let mut form: Vec<(&str, String)> = vec![("csrf_token", token)];
    form.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
    let before = all_events(app).len();
    let page = browser.post(action, &form).await;
    (before, page)
}

/// Posts a change that is setup for the request under test, and checks it went through.
async fn prepare(browser: &Browser, action: &str, fields: &[(&str, &str)], status: u16) -> Page {
    let page = browser.submit("/orgs/my-org/users", action, fields).await;
    assert_eq!(page.status, status, "setup POST {action}: {}", page.body);
    page
}

async fn exercise_members(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg {
        browser,
        admin,
        org,
        bob,
    } = in_org(app).await;
    let profile = format!("/orgs/my-org/users/{}", bob.id);
    let member_role = app.role_id("my-org", "member");
    if let Case::MemberActivated = case {
        prepare(&browser, &format!("{profile}/deactivate"), &[], 303).await;
    }
    let (action, path, fields, status): (_, _, Vec<(&str, &str)>, _) = match case {
        Case::MemberEdited => (
            "member.updated",
            profile.clone(),
            vec![
                ("first_name", "Robert"),
                ("last_name", "Builder"),
                ("role_id", member_role.as_str()),
            ],
            303,
        ),
        Case::MemberDeactivated => (
            "member.deactivated",
            format!("{profile}/deactivate"),
            vec![],
            303,
        ),
        Case::MemberActivated => (
            "member.activated",
            format!("{profile}/activate"),
            vec![],
            303,
        ),
        Case::MemberMadeAdmin => (
            "member.made_admin",
            format!("{profile}/make-admin"),
            vec![],
            303,
        ),
        Case::MemberRemoved => (
            "member.removed",
            format!("{profile}/delete"),
            vec![("confirm_email", BOB)],
            303,
        ),
        Case::BulkDeactivateOne => (
            "member.deactivated",
            "/orgs/my-org/users/bulk".to_string(),
            vec![("action", "deactivate"), ("user_ids", bob.id.as_str())],
            200,
        ),
        other => unreachable!("{other:?} is not a member case"),
    };
    let (before, page) = post_counted(app, &browser, &path, &fields).await;
    assert_eq!(page.status, status, "{case:?}: {}", page.body);
    (
        before,
        Expected::new(action, &admin, (&bob.id, BOB), Some(&org.id)),
    )
}

const INVITEE: &str = "pat@example.com";

fn invitation_id(app: &TestApp, email: &str) -> String {
    use portcullis::db::schema::invitations as inv;
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    inv::table
        .filter(inv::email.eq(email))
        .select(inv::id)
        .first(conn)
        .unwrap()
}

/// The path (`/invite/...`) of the one copyable link on an invitation results page.
fn invite_link(page: &Page) -> String {
    let marker = "data-copy=\"";
    let start = page.body.find(marker).expect("an invite link") + marker.len();
    let link = &page.body[start..start + page.body[start..].find('"').unwrap()];
    link[link.find("/invite/").expect("an invite link")..].to_string()
}

async fn exercise_invitations(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg {
        browser,
        admin,
        org,
        ..
    } = in_org(app).await;
    let member_role = app.role_id("my-org", "member");
    let invite = [("emails", INVITEE), ("role_id", member_role.as_str())];
    if let Case::InvitationCreated = case {
        let (before, page) = post_counted(app, &browser, "/orgs/my-org/invitations", &invite).await;
        assert_eq!(page.status, 200, "{case:?}: {}", page.body);
        let id = invitation_id(app, INVITEE);
        let expected = Expected::new("invitation.created", &admin, (&id, INVITEE), Some(&org.id));
        return (before, expected);
    }
    let invited = prepare(&browser, "/orgs/my-org/invitations", &invite, 200).await;
    let id = invitation_id(app, INVITEE);
    let base = format!("/orgs/my-org/invitations/{id}");
    match case {
        Case::InvitationResent => {
            // Past the once-a-minute limit on resending.
            {
                use portcullis::db::schema::invitations as inv;
                let mut conn = app.conn();
                let conn: &mut DbConnection = &mut conn;
                diesel::update(inv::table.filter(inv::id.eq(&id)))
                    .set(inv::last_sent_at.eq(db::now() - Duration::minutes(2)))
                    .execute(conn)
                    .unwrap();
            }
            let (before, page) = post_counted(app, &browser, &format!("{base}/resend"), &[]).await;
            assert_eq!(page.status, 200, "{case:?}: {}", page.body);
            let expected =
                Expected::new("invitation.resent", &admin, (&id, INVITEE), Some(&org.id));
            (before, expected)
        }
        Case::InvitationCancelled => {
            let (before, page) = post_counted(app, &browser, &format!("{base}/cancel"), &[]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected = Expected::new(
                "invitation.cancelled",
                &admin,
                (&id, INVITEE),
                Some(&org.id),
            );
            (before, expected)
        }
        Case::InvitationAccepted => {
            let link = invite_link(&invited);
            let newcomer = app.client();
            let form = newcomer.get(&link).await;
            assert_eq!(form.status, 200, "{}", form.body);
            let before = all_events(app).len();
            let done = newcomer
                .post(
                    &link,
                    &account_form(form.csrf(), "Pat", "Newcomer", "another good password"),
                )
                .await;
            assert_eq!(done.status, 303, "{case:?}: {}", done.body);
            let pat = users::find_by_email(&mut app.conn(), INVITEE)
                .unwrap()
                .unwrap();
            let expected =
                Expected::new("invitation.accepted", &pat, (&id, INVITEE), Some(&org.id));
            (before, expected)
        }
        other => unreachable!("{other:?} is not an invitation case"),
    }
}

fn custom_role_id(app: &TestApp, org: &Organization, name: &str) -> String {
    roles::list(&mut app.conn(), &org.id)
        .unwrap()
        .into_iter()
        .find(|r| r.name == name)
        .expect("role exists")
        .id
}

async fn exercise_roles(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg {
        browser,
        admin,
        org,
        ..
    } = in_org(app).await;
    let auditor = [("name", "Auditor"), ("permissions", "audit.read")];
    let (action, path, fields, label) = match case {
        Case::RoleCreated => (
            "role.created",
            "/orgs/my-org/roles".to_string(),
            auditor.to_vec(),
            "Auditor",
        ),
        Case::RoleUpdated | Case::RoleDeleted => {
            prepare(&browser, "/orgs/my-org/roles", &auditor, 303).await;
            let id = custom_role_id(app, &org, "Auditor");
            if let Case::RoleUpdated = case {
                (
                    "role.updated",
                    format!("/orgs/my-org/roles/{id}"),
                    vec![
                        ("name", "Auditors"),
                        ("permissions", "audit.read"),
                        ("permissions", "users.read"),
                    ],
                    "Auditors",
                )
            } else {
                (
                    "role.deleted",
                    format!("/orgs/my-org/roles/{id}/delete"),
                    vec![],
                    "Auditor",
                )
            }
        }
        other => unreachable!("{other:?} is not a role case"),
    };
    let (before, page) = post_counted(app, &browser, &path, &fields).await;
    assert_eq!(page.status, 303, "{case:?}: {}", page.body);
    // A deleted role is gone: its id is the one it had.
    let id = match case {
        Case::RoleDeleted => path
            .trim_end_matches("/delete")
            .rsplit('/')
            .next()
            .unwrap()
            .to_string(),
        _ => custom_role_id(app, &org, label),
    };
    (
        before,
        Expected::new(action, &admin, (&id, label), Some(&org.id)),
    )
}

async fn exercise_groups(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg {
        browser,
        admin,
        org,
        bob,
    } = in_org(app).await;
    let groups = "/orgs/my-org/groups";
    if let Case::GroupCreated = case {
        let (before, page) = post_counted(app, &browser, groups, &[("name", "Ops")]).await;
        assert_eq!(page.status, 303, "{case:?}: {}", page.body);
        let id = location_id(&page);
        let expected = Expected::new("group.created", &admin, (&id, "Ops"), Some(&org.id));
        return (before, expected);
    }
    let id = location_id(&prepare(&browser, groups, &[("name", "Ops")], 303).await);
    let base = format!("{groups}/{id}");
    if let Case::GroupMemberRemoved = case {
        prepare(
            &browser,
            &format!("{base}/members"),
            &[("user_id", bob.id.as_str())],
            303,
        )
        .await;
    }
    let (action, path, fields, target): (_, _, Vec<(&str, &str)>, (&str, &str)) = match case {
        Case::GroupUpdated => (
            "group.updated",
            base.clone(),
            vec![
                ("name", "Operations"),
                ("description", "Night shift"),
                ("role_id", ""),
            ],
            (id.as_str(), "Operations"),
        ),
        Case::GroupDeleted => (
            "group.deleted",
            format!("{base}/delete"),
            vec![],
            (id.as_str(), "Ops"),
        ),
        Case::GroupMemberAdded => (
            "group.member_added",
            format!("{base}/members"),
            vec![("user_id", bob.id.as_str())],
            (bob.id.as_str(), BOB),
        ),
        Case::GroupMemberRemoved => (
            "group.member_removed",
            format!("{base}/members/{}/remove", bob.id),
            vec![],
            (bob.id.as_str(), BOB),
        ),
        other => unreachable!("{other:?} is not a group case"),
    };
    let (before, page) = post_counted(app, &browser, &path, &fields).await;
    assert_eq!(page.status, 303, "{case:?}: {}", page.body);
    (before, Expected::new(action, &admin, target, Some(&org.id)))
}

async fn exercise_pools(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg {
        browser,
        admin,
        org,
        bob,
    } = in_org(app).await;
    let pools = "/orgs/my-org/pools";
    let alpha = [("name", "Alpha"), ("parent_id", "")];
    if let Case::PoolCreated = case {
        let (before, page) = post_counted(app, &browser, pools, &alpha).await;
        assert_eq!(page.status, 303, "{case:?}: {}", page.body);
        let id = location_id(&page);
        let expected = Expected::new("pool.created", &admin, (&id, "Alpha"), Some(&org.id));
        return (before, expected);
    }
    let id = location_id(&prepare(&browser, pools, &alpha, 303).await);
    let base = format!("{pools}/{id}");
    let engineer = app.role_id("my-org", "engineer");
    if let Case::PoolMemberRemoved = case {
        let fields = [("user_id", bob.id.as_str()), ("role_id", engineer.as_str())];
        prepare(&browser, &format!("{base}/members"), &fields, 303).await;
    }
    let beta = match case {
        Case::PoolMoved => {
            let fields = [("name", "Beta"), ("parent_id", "")];
            location_id(&prepare(&browser, pools, &fields, 303).await)
        }
        _ => String::new(),
    };
    let (action, path, fields, target): (_, _, Vec<(&str, &str)>, (&str, &str)) = match case {
        Case::PoolRenamed => (
            "pool.updated",
            base.clone(),
            vec![("name", "Alef"), ("parent_id", "")],
            (id.as_str(), "Alef"),
        ),
        Case::PoolMoved => (
            "pool.moved",
            format!("{pools}/{beta}"),
            vec![("name", "Beta"), ("parent_id", id.as_str())],
            (beta.as_str(), "Beta"),
        ),
        Case::PoolDeleted => (
            "pool.deleted",
            format!("{base}/delete"),
            vec![],
            (id.as_str(), "Alpha"),
        ),
        Case::PoolMemberAdded => (
            "pool.member_added",
            format!("{base}/members"),
            vec![("user_id", bob.id.as_str()), ("role_id", engineer.as_str())],
            (bob.id.as_str(), BOB),
        ),
        Case::PoolMemberRemoved => (
            "pool.member_removed",
            format!("{base}/members/{}/remove", bob.id),
            vec![],
            (bob.id.as_str(), BOB),
        ),
        other => unreachable!("{other:?} is not a pool case"),
    };
    let (before, page) = post_counted(app, &browser, &path, &fields).await;
    assert_eq!(page.status, 303, "{case:?}: {}", page.body);
    (before, Expected::new(action, &admin, target, Some(&org.id)))
}

async fn exercise_platform(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg {
        browser,
        admin,
        org,
        bob,
    } = in_org(app).await;
    match case {
        Case::OrgCreatedWithNewAccount | Case::OrgCreatedWithExistingAccount => {
            let first_admin = match case {
                Case::OrgCreatedWithNewAccount => "boss@acme.test",
                _ => BOB,
            };
            let fields = [
                ("name", "Acme"),
                ("slug", "acme"),
                ("admin_email", first_admin),
            ];
            let (before, page) = post_counted(app, &browser, "/admin/orgs", &fields).await;
            assert_eq!(page.status, 201, "{case:?}: {}", page.body);
            let acme = org_by_slug(app, "acme");
            // The first admin joined, and the one event says who it is.
            let boss = users::find_by_email(&mut app.conn(), first_admin)
                .unwrap()
                .unwrap();
            let events = all_events(app);
            let created = events.last().unwrap();
            assert!(created.details.contains(&boss.id), "{}", created.details);
            assert!(created.details.contains(first_admin), "{}", created.details);
            let expected = Expected::new("org.created", &admin, (&acme.id, "Acme"), Some(&acme.id));
            (before, expected)
        }
        Case::AdminUserCreated => {
            let fields = [
                ("email", "new@example.com"),
                ("first_name", "New"),
                ("last_name", "Person"),
                ("org", "my-org"),
                ("role_id", "engineer"),
            ];
            let (before, page) = post_counted(app, &browser, "/admin/users", &fields).await;
            assert_eq!(page.status, 201, "{case:?}: {}", page.body);
            let new = users::find_by_email(&mut app.conn(), "new@example.com")
                .unwrap()
                .unwrap();
            let expected = Expected::new(
                "admin.user_created",
                &admin,
                (&new.id, "new@example.com"),
                Some(&org.id),
            );
            (before, expected)
        }
        Case::AdminUserDisabled | Case::AdminUserEnabled => {
            let base = format!("/admin/users/{}", bob.id);
            let (action, path) = if let Case::AdminUserEnabled = case {
                prepare(&browser, &format!("{base}/disable"), &[], 303).await;
                ("admin.user_enabled", format!("{base}/enable"))
            } else {
                ("admin.user_disabled", format!("{base}/disable"))
            };
            let (before, page) = post_counted(app, &browser, &path, &[]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            // Accounts are the platform's: no organization.
            (before, Expected::new(action, &admin, (&bob.id, BOB), None))
        }
        Case::AdminMembershipAdded => {
            let other = create_org(app, "other", "Other");
            let path = format!("/admin/users/{}/memberships", bob.id);
            let fields = [("org", "other"), ("role_id", "manager")];
            let (before, page) = post_counted(app, &browser, &path, &fields).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected = Expected::new(
                "admin.membership_added",
                &admin,
                (&bob.id, BOB),
                Some(&other.id),
            );
            (before, expected)
        }
        Case::AdminMembershipActivated => {
            let slug = org_by_slug(app, "my-org").slug;
            prepare(
                &browser,
                &format!("/orgs/{slug}/users/{}/deactivate", bob.id),
                &[],
                303,
            )
            .await;
            let path = format!("/admin/users/{}/memberships/{slug}/activate", bob.id);
            let (before, page) = post_counted(app, &browser, &path, &[]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected = Expected::new(
                "admin.membership_activated",
                &admin,
                (&bob.id, BOB),
                Some(&org.id),
            );
            (before, expected)
        }
        Case::AdminMembershipRoleChanged => {
            let path = format!("/admin/users/{}/memberships/my-org/role", bob.id);
            let (before, page) =
                post_counted(app, &browser, &path, &[("role_id", "manager")]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected = Expected::new(
                "admin.membership_role_changed",
                &admin,
                (&bob.id, BOB),
                Some(&org.id),
            );
            (before, expected)
        }
        Case::AdminSessionsEnded => {
            let path = format!("/admin/users/{}/sessions/end", bob.id);
            let (before, page) = post_counted(app, &browser, &path, &[]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            (
                before,
                Expected::new("admin.sessions_ended", &admin, (&bob.id, BOB), None),
            )
        }
        other => unreachable!("{other:?} is not a platform case"),
    }
}

#[actix_web::test]
async fn every_state_changing_route_writes_exactly_one_event() {
    for (method, route, cases) in AUDITED_ROUTES {
        assert!(!cases.is_empty(), "{method} {route} has no case");
        for case in *cases {
            let (app, before, expected) = exercise(*case).await;
            let events = all_events(&app);
            let added = &events[before..];
            assert_eq!(
                added.len(),
                1,
                "{method} {route} ({case:?}) wrote {:?}",
                added.iter().map(|e| &e.action).collect::<Vec<_>>()
            );
            let event = &added[0];
            let what = format!("{method} {route} ({case:?})");
            assert_eq!(event.action, expected.action, "{what}");
            assert_eq!(event.actor_email, expected.actor, "{what}: actor");
            if expected.actor.is_some() {
                assert!(event.actor_id.is_some(), "{what}: actor id");
            }
            assert_eq!(event.target_label, expected.target_label, "{what}: target");
            assert_eq!(event.target_id, expected.target_id, "{what}: target id");
            assert_eq!(event.org_id, expected.org, "{what}: organization");
            assert!(event.ip.is_some(), "{what}: client address");
            assert!(event.request_id.is_some(), "{what}: request id");
            for secret in [ADMIN_PASSWORD, "wrong password!", "another good password"] {
                assert!(!event.details.contains(secret), "{what}: {}", event.details);
            }
        }
    }
}

/// Reads how routes are registered in the source and checks that every POST route has
/// an entry in `AUDITED_ROUTES`, so a new state-changing route cannot skip the audit
/// test by being forgotten.
#[test]
fn every_post_route_is_in_the_audit_table() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = vec![dir.join("startup.rs")];
    for entry in std::fs::read_dir(dir.join("routes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push(path);
        }
    }
    let mut found = Vec::new();
    let mut registrations = 0;
    for path in sources {
        let source = std::fs::read_to_string(&path).unwrap();
        for (at, _) in source.match_indices("web::post()") {
            registrations += 1;
            // The path is the first string literal of the `.route("...", web::post()`
            // or `web::resource("...")...route(web::post()` this belongs to.
            let head = &source[..at];
            let mut calls: Vec<usize> = [head.rfind(".route("), head.rfind("resource(")]
                .into_iter()
                .flatten()
                .collect();
            calls.sort_unstable_by(|a, b| b.cmp(a));
            let literal = calls
                .into_iter()
                .map(|call| &source[call..at])
                .find(|text| text.contains('"'))
                .unwrap_or_else(|| panic!("cannot read a POST route in {}", path.display()));
            let start = literal.find('"').unwrap() + 1;
            let end = literal[start..].find('"').unwrap() + start;
            found.push(literal[start..end].to_string());
        }
    }
    assert_eq!(found.len(), registrations);
    assert!(
        !found.is_empty(),
        "no POST route found: is the scanner still right?"
    );
    for route in found {
        assert!(
            AUDITED_ROUTES
                .iter()
                .any(|(m, r, _)| *m == "POST" && r.ends_with(&route)),
            "POST {route} is not in AUDITED_ROUTES (tests/it/audit.rs): add a case that \
             checks it writes exactly one audit event"
        );
    }
}

#[actix_web::test]
async fn a_password_typed_as_the_email_never_reaches_the_audit_trail() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let response = app
        .client()
        .login("Tr0ub4dor&3 horse", "Tr0ub4dor&3 horse")
        .await;
    assert_eq!(response.status, 401);
    let events = all_events(&app);
    let failed = events.last().unwrap();
    assert_eq!(failed.action, "auth.login_failed");
    assert_eq!(
        failed.target_label.as_deref(),
        Some("(not an email address)")
    );
    for event in &events {
        let text = format!("{event:?}");
        assert!(!text.contains("Tr0ub4dor"), "{text}");
    }
}

#[actix_web::test]
async fn failed_changes_write_no_event() {
    let app = spawn_app().await;
    let browser = app.client();
    let setup = app.setup_url.clone().unwrap();
    let form = browser.get_abs(&setup).await;
    let before = all_events(&app).len();

    // Invalid input: re-rendered with 422, nothing changed.
    let invalid = browser
        .post_abs(
            &setup,
            &[
                ("csrf_token", form.csrf()),
                ("email", "not-an-address".into()),
                ("first_name", "Ada".into()),
                ("last_name", "Admin".into()),
                ("password", "short".into()),
                ("password_confirm", "short".into()),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422);
    // No CSRF token: refused before any handler runs.
    let forged = browser
        .post_abs(
            &setup,
            &[
                ("email", ADMIN_EMAIL.into()),
                ("first_name", "Ada".into()),
                ("last_name", "Admin".into()),
                ("password", ADMIN_PASSWORD.into()),
                ("password_confirm", ADMIN_PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    let logout = browser.post("/logout", &[]).await;
    assert_eq!(logout.status, 403);
    // A spent or unknown link.
    let unknown = browser
        .post("/setup/not-a-token", &first_admin_form(form.csrf()))
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(all_events(&app).len(), before);
    assert_eq!(app.count("users"), 0);
}

#[actix_web::test]
async fn reading_the_audit_page_records_nothing() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let before = all_events(&app).len();
    assert_eq!(browser.get("/orgs/my-org/audit").await.status, 200);
    assert_eq!(browser.get("/orgs/my-org/audit.csv").await.status, 200);
    assert_eq!(all_events(&app).len(), before);
}

// ---- insert-only ----------------------------------------------------------------------

#[actix_web::test]
async fn the_database_refuses_to_update_or_delete_audit_events() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let before = all_events(&app);
    assert!(!before.is_empty());
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;

    let update = diesel::update(ae::table)
        .set(ae::action.eq("tampered"))
        .execute(conn)
        .unwrap_err();
    assert!(update.to_string().contains("insert-only"), "{update}");
    let one = diesel::update(ae::table.find(&before[0].id))
        .set(ae::details.eq("{}"))
        .execute(conn)
        .unwrap_err();
    assert!(one.to_string().contains("insert-only"), "{one}");
    let delete = diesel::delete(ae::table).execute(conn).unwrap_err();
    assert!(delete.to_string().contains("insert-only"), "{delete}");
    let old = diesel::delete(ae::table.filter(ae::created_at.lt(db::now())))
        .execute(conn)
        .unwrap_err();
    assert!(old.to_string().contains("insert-only"), "{old}");
    if app.db.is_postgres() {
        let truncate = diesel::sql_query("TRUNCATE audit_events")
            .execute(conn)
            .unwrap_err();
        assert!(truncate.to_string().contains("insert-only"), "{truncate}");
    }
    let after = all_events(&app);
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|e| e.action != "tampered"));
}

#[actix_web::test]
async fn prune_audit_deletes_old_events_and_records_that_it_ran() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = org_by_slug(&app, "my-org");
    let now = db::now();
    let old: Vec<Ev> = (0..7)
        .map(|i| {
            Ev::new(Some(&org), "member.updated", now - Duration::days(100 + i))
                .actor("old@example.com")
        })
        .collect();
    let old_ids = insert_events(&app, &old);
    let recent = insert_events(
        &app,
        &[Ev::new(
            Some(&org),
            "member.updated",
            now - Duration::days(29),
        )],
    );
    let before = all_events(&app).len();

    let refused = run_cli(&app, &["prune-audit", "--older-than", "0"]);
    assert!(!refused.status.success(), "at least one day is kept");

    let out = run_cli(&app, &["prune-audit", "--older-than", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Deleted 7 audit events"));

    let after = all_events(&app);
    assert_eq!(after.len(), before - 7 + 1);
    assert!(after.iter().all(|e| !old_ids.contains(&e.id)));
    assert!(after.iter().any(|e| e.id == recent[0]));
    let pruned: Vec<&AuditRow> = after
        .iter()
        .filter(|e| e.action == "audit.pruned")
        .collect();
    assert_eq!(pruned.len(), 1);
    let details: serde_json::Value = serde_json::from_str(&pruned[0].details).unwrap();
    assert_eq!(details["deleted"], 7);
    assert_eq!(details["older_than_days"], 30);
    assert!(details["cutoff"].as_str().unwrap().ends_with('Z'));
    assert_eq!(pruned[0].org_id, None);

    // Once it is done, the table is insert-only again.
    let mut conn = app.conn();
    let err = diesel::delete(ae::table).execute(&mut *conn).unwrap_err();
    assert!(err.to_string().contains("insert-only"));
}

#[actix_web::test]
async fn pruning_cannot_reach_events_newer_than_its_cutoff() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let before = all_events(&app).len();
    let mut conn = app.conn();
    // Inside the prune transaction, try to delete everything: the trigger still
    // protects rows at or after the cutoff, and the whole run rolls back.
    let cutoff = db::now() - Duration::days(1);
    let result = audit_events::prune(&mut conn, cutoff, |conn, _| {
        diesel::delete(ae::table).execute(conn).map(|_| ())
    });
    let err = result.unwrap_err();
    assert!(err.to_string().contains("insert-only"), "{err}");
    drop(conn);
    assert_eq!(all_events(&app).len(), before);
}

// ---- the audit page ---------------------------------------------------------------------

#[actix_web::test]
async fn the_audit_page_reads_as_sentences_with_expandable_details() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = org_by_slug(&app, "my-org");
    let ids = insert_events(
        &app,
        &[Ev::new(Some(&org), "member.deactivated", db::now())
            .actor("alice@example.com")
            .target(&db::new_id(), "bob@example.com")
            .details(r#"{"reason":"<left the company>"}"#)],
    );
    let page = browser.get("/orgs/my-org/audit").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("alice@example.com deactivated bob@example.com"));
    assert!(body.contains(&format!(
        "<tr data-id=\"{}\" data-action=\"member.deactivated\">",
        ids[0]
    )));
    assert!(body.contains("<details"));
    assert!(
        body.contains("&#60;left the company&#62;"),
        "details are escaped"
    );
    assert!(!body.contains("<left the company>"));
    // The first admin's setup is there too, newest first.
    let rows = row_ids(body);
    assert_eq!(rows[0], ids[0]);
    assert!(body.contains("data-action=\"setup.completed\""));
    // Every filter has a label.
    for field in ["actor", "action", "target", "from", "to"] {
        assert!(body.contains(&format!("<label for=\"{field}\"")), "{field}");
        assert!(body.contains(&format!("id=\"{field}\"")), "{field}");
    }
    assert!(body.contains("href=\"/orgs/my-org/audit\" aria-current=\"page\""));
}

#[actix_web::test]
async fn keyset_pages_cover_every_event_once_newest_first() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = create_org(&app, "paged", "Paged");
    add_member(&app, &org, &admin(&app), "admin");
    // Three events share each timestamp, so page boundaries fall inside ties.
    let base = day(2026, 1, 1);
    let events: Vec<Ev> = (0..120)
        .map(|i| Ev::new(Some(&org), "member.updated", base + Duration::hours(i / 3)))
        .collect();
    insert_events(&app, &events);
    let expected: Vec<String> = {
        let mut rows = audit_events::page(
            &mut app.conn(),
            &Scope::Org(org.id.clone()),
            &Filter::default(),
            None,
            1000,
        )
        .unwrap();
        rows.retain(|r| r.action == "member.updated");
        rows.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(expected.len(), 120);

    let mut seen = Vec::new();
    let mut url = "/orgs/paged/audit?action=member.updated".to_string();
    let mut pages = 0;
    loop {
        let page = browser.get(&url).await;
        assert_eq!(page.status, 200, "{url}");
        let ids = row_ids(&page.body);
        assert!(ids.len() <= 50);
        seen.extend(ids);
        pages += 1;
        match next_link(&page.body) {
            Some(next) => {
                assert!(
                    next.contains("action=member.updated"),
                    "filters kept: {next}"
                );
                assert!(!next.contains("offset"));
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);
}

#[actix_web::test]
async fn filters_narrow_the_events() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = org_by_slug(&app, "my-org");
    let bob = db::new_id();
    let base = day(2026, 3, 1);
    let mut events = Vec::new();
    for i in 0..60 {
        let actor = if i % 2 == 0 {
            "alice@example.com"
        } else {
            "carol@example.com"
        };
        let (action, target, label) = if i % 3 == 0 {
            ("member.deactivated", bob.as_str(), "bob@example.com")
        } else {
            ("invitation.created", "inv", "dave@example.com")
        };
        events.push(
            Ev::new(Some(&org), action, base + Duration::hours(i))
                .actor(actor)
                .target(target, label),
        );
    }
    let ids = insert_events(&app, &events);
    let ids_where = |pred: &dyn Fn(usize) -> bool| -> Vec<String> {
        let mut v: Vec<String> = (0..60)
            .filter(|i| pred(*i))
            .map(|i| ids[i].clone())
            .collect();
        v.reverse();
        v
    };
    let check = |query: &'static str, expected: Vec<String>| {
        let browser = browser.clone();
        async move {
            let page = browser.get(&format!("/orgs/my-org/audit?{query}")).await;
            assert_eq!(page.status, 200, "{query}: {}", page.body);
            assert_eq!(row_ids(&page.body), expected, "{query}");
        }
    };
    check("actor=Alice%40Example.com", ids_where(&|i| i % 2 == 0)).await;
    check("action=member.deactivated", ids_where(&|i| i % 3 == 0)).await;
    check("target=bob%40example.com", ids_where(&|i| i % 3 == 0)).await;
    let by_id = format!("/orgs/my-org/audit?target={bob}");
    assert_eq!(
        row_ids(&browser.get(&by_id).await.body),
        ids_where(&|i| i % 3 == 0)
    );
    check(
        "actor=carol%40example.com&action=member.deactivated",
        ids_where(&|i| i % 2 == 1 && i % 3 == 0),
    )
    .await;
    // 2026-03-02 is hours 24..47; both days are included.
    check(
        "from=2026-03-02&to=2026-03-02",
        ids_where(&|i| (24..48).contains(&i)),
    )
    .await;
    check("from=2026-03-03&to=2026-03-31", ids_where(&|i| i >= 48)).await;
    check(
        "to=2026-03-01&action=invitation.created",
        ids_where(&|i| i < 24 && i % 3 != 0),
    )
    .await;
    check("actor=nobody%40example.com", vec![]).await;

    // The action filter offers the known actions and keeps the choice.
    let page = browser
        .get("/orgs/my-org/audit?action=member.deactivated")
        .await;
    assert!(
        page.body
            .contains("<option value=\"member.deactivated\" selected>")
    );
    assert!(page.body.contains("<option value=\"auth.login_failed\">"));
    assert!(page.body.contains("No events match") || !row_ids(&page.body).is_empty());
}

#[actix_web::test]
async fn bad_filter_input_is_explained_not_an_error() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    for (query, message) in [
        ("from=2026-02-30", "Enter a date as YYYY-MM-DD"),
        ("to=tomorrow", "Enter a date as YYYY-MM-DD"),
        (
            "from=2026-03-02&to=2026-03-01",
            "The end date is before the start date.",
        ),
        ("actor=alice", "Enter the full email address"),
        ("action=%3Cscript%3E", "Choose an action from the list."),
        (
            "cursor=not-a-cursor",
            "This page link is damaged or out of date.",
        ),
        (
            "cursor=99999999999999999999_x",
            "This page link is damaged or out of date.",
        ),
    ] {
        let page = browser.get(&format!("/orgs/my-org/audit?{query}")).await;
        assert_eq!(page.status, 422, "{query}");
        assert!(page.body.contains(message), "{query}");
        assert!(!page.body.contains("<script>"), "{query}");
        let csv = browser
            .get(&format!("/orgs/my-org/audit.csv?{query}"))
            .await;
        assert_eq!(csv.status, 422, "{query}");
    }
    // A repeated or unknown parameter is no error.
    let page = browser
        .get("/orgs/my-org/audit?action=auth.logout&action=&utm=1")
        .await;
    assert_eq!(page.status, 200);
}

#[actix_web::test]
async fn a_member_of_one_org_never_sees_another_orgs_events() {
    let app = spawn_app().await;
    let admin_a = app.setup_admin().await;
    let org_a = org_by_slug(&app, "my-org");
    let org_b = create_org(&app, "other", "Other Org");
    let admin_b_user = add_user(&app, "admin.b@example.com", "none");
    add_member(&app, &org_b, &admin_b_user, "admin");
    let secret_target = db::new_id();
    let b_ids = insert_events(
        &app,
        &[Ev::new(Some(&org_b), "member.deactivated", db::now())
            .actor("admin.b@example.com")
            .target(&secret_target, "secret@other.example")],
    );
    let a_ids = insert_events(
        &app,
        &[Ev::new(Some(&org_a), "member.deactivated", db::now()).actor(ADMIN_EMAIL)],
    );

    for query in [
        "",
        "?actor=admin.b%40example.com",
        "?target=secret%40other.example",
        "?action=member.deactivated",
    ] {
        let page = admin_a.get(&format!("/orgs/my-org/audit{query}")).await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains(&b_ids[0]), "{query}");
        assert!(!page.body.contains("Other Org"), "{query}");
        let rows = row_ids(&page.body);
        let own = audit_events::page(
            &mut app.conn(),
            &Scope::Org(org_a.id.clone()),
            &Filter::default(),
            None,
            1000,
        )
        .unwrap();
        assert!(
            rows.iter().all(|id| own.iter().any(|e| &e.id == id)),
            "{query}: only my-org's events"
        );
        if !query.contains("secret") {
            assert!(!page.body.contains("secret@other.example"), "{query}");
        }
    }
    let by_id = admin_a
        .get(&format!("/orgs/my-org/audit?target={secret_target}"))
        .await;
    assert!(row_ids(&by_id.body).is_empty());
    let csv = admin_a.get("/orgs/my-org/audit.csv").await;
    assert!(!csv.body.contains(&b_ids[0]));
    assert!(!csv.body.contains("secret@other.example"));
    assert!(csv.body.contains(&a_ids[0]));
    // The other organization's page is not there at all for them.
    assert_eq!(admin_a.get("/orgs/other/audit").await.status, 404);
    assert_eq!(admin_a.get("/orgs/other/audit.csv").await.status, 404);

    // And the other way round.
    let admin_b = app.client();
    assert_eq!(
        admin_b
            .login("admin.b@example.com", MEMBER_PASSWORD)
            .await
            .status,
        303
    );
    let page = admin_b.get("/orgs/other/audit").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&b_ids[0]));
    assert!(!page.body.contains(&a_ids[0]));
    assert!(!page.body.contains("data-action=\"setup.completed\""));
    assert_eq!(admin_b.get("/orgs/my-org/audit").await.status, 404);
}

#[actix_web::test]
async fn members_without_audit_read_are_refused_and_the_refusal_is_recorded() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = org_by_slug(&app, "my-org");
    let member = add_user(&app, "member@example.com", "none");
    add_member(&app, &org, &member, "member");
    let browser = app.client();
    assert_eq!(
        browser
            .login("member@example.com", MEMBER_PASSWORD)
            .await
            .status,
        303
    );
    let users_page = browser.get("/orgs/my-org/users").await;
    assert_eq!(users_page.status, 200);
    assert!(
        !users_page.body.contains("href=\"/orgs/my-org/audit\""),
        "no Audit tab without audit.read"
    );

    let before = all_events(&app).len();
    let page = browser
        .get("/orgs/my-org/audit?actor=x%40example.com")
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(browser.get("/orgs/my-org/audit.csv").await.status, 403);
    let events = all_events(&app);
    let denied: Vec<&AuditRow> = events[before..].iter().collect();
    assert_eq!(denied.len(), 2, "one event per refusal");
    for (event, route) in denied
        .iter()
        .zip(["/orgs/{org}/audit", "/orgs/{org}/audit.csv"])
    {
        assert_eq!(event.action, "access.denied");
        assert_eq!(event.actor_email.as_deref(), Some("member@example.com"));
        assert_eq!(event.actor_id.as_deref(), Some(member.id.as_str()));
        assert_eq!(event.org_id.as_deref(), Some(org.id.as_str()));
        let details: serde_json::Value = serde_json::from_str(&event.details).unwrap();
        assert_eq!(details["method"], "GET");
        assert_eq!(details["route"], route);
        assert!(!event.details.contains("x@example.com"), "no raw query");
        assert!(event.request_id.is_some());
    }
    // A Manager holds audit.read.
    let manager = add_user(&app, "manager@example.com", "none");
    add_member(&app, &org, &manager, "manager");
    let browser = app.client();
    browser.login("manager@example.com", MEMBER_PASSWORD).await;
    let page = browser.get("/orgs/my-org/audit").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("member@example.com was refused GET /orgs/{org}/audit")
    );
}

#[actix_web::test]
async fn the_platform_audit_page_is_for_operators_and_admins_only() {
    let app = spawn_app().await;
    let admin_browser = app.setup_admin().await;
    let other = create_org(&app, "other", "Other Org");
    let b_ids = insert_events(
        &app,
        &[Ev::new(Some(&other), "member.removed", db::now()).actor("x@other.example")],
    );

    // Anonymous: sent to sign in, like every other page.
    let anonymous = app.client().get("/admin/audit").await;
    assert_eq!(anonymous.status, 303);
    assert!(anonymous.location.unwrap().starts_with("/login?next="));

    // The platform admin sees every organization and the platform's own events.
    let menu = admin_browser.get("/orgs/my-org/users").await;
    assert!(menu.body.contains("href=\"/admin/audit\""));
    let page = admin_browser.get("/admin/audit").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&b_ids[0]));
    assert!(page.body.contains("data-action=\"setup.completed\""));
    assert!(page.body.contains("data-action=\"org.created\""));
    assert!(page.body.contains("<label for=\"org\""));
    let only_other = admin_browser.get("/admin/audit?org=other").await;
    assert_eq!(row_ids(&only_other.body)[0], b_ids[0]);
    assert!(!only_other.body.contains("data-action=\"setup.completed\""));
    let platform_only = admin_browser.get("/admin/audit?org=-").await;
    assert!(!platform_only.body.contains(&b_ids[0]));
    assert!(!platform_only.body.contains("data-action=\"org.created\""));
    let unknown = admin_browser.get("/admin/audit?org=no-such-org").await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("No organization has this slug."));
    let bad = admin_browser.get("/admin/audit.csv?from=last-week").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Enter a date as YYYY-MM-DD"));
    let csv = admin_browser.get("/admin/audit.csv?org=other").await;
    assert_eq!(csv.status, 200);
    let rows = csv_rows(&csv.body);
    assert!(rows[1..].iter().all(|r| r[1] == "other"));
    assert!(rows.iter().any(|r| r[12] == b_ids[0]));

    // An operator who belongs to no organization.
    add_user(&app, "ops@example.com", "operator");
    let ops = app.client();
    assert_eq!(
        ops.login("ops@example.com", MEMBER_PASSWORD).await.status,
        303
    );
    let page = ops.get("/admin/audit?action=member.removed").await;
    assert_eq!(page.status, 200);
    assert_eq!(row_ids(&page.body), b_ids);

    // Everyone else: 403, recorded.
    let plain = add_user(&app, "plain@example.com", "none");
    add_member(&app, &org_by_slug(&app, "my-org"), &plain, "admin");
    let browser = app.client();
    browser.login("plain@example.com", MEMBER_PASSWORD).await;
    let menu = browser.get("/orgs/my-org/users").await;
    assert!(!menu.body.contains("href=\"/admin/audit\""));
    let before = all_events(&app).len();
    assert_eq!(browser.get("/admin/audit").await.status, 403);
    assert_eq!(browser.get("/admin/audit.csv").await.status, 403);
    let events = all_events(&app);
    assert_eq!(events.len(), before + 2);
    assert!(events[before..].iter().all(|e| e.action == "access.denied"
        && e.actor_email.as_deref() == Some("plain@example.com")
        && e.org_id.is_none()));
}

#[actix_web::test]
async fn the_activity_query_narrows_to_one_member() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = org_by_slug(&app, "my-org");
    let bob = db::new_id();
    let now = db::now();
    let ids = insert_events(
        &app,
        &[
            Ev::new(Some(&org), "member.deactivated", now).target(&bob, "bob@example.com"),
            Ev::new(Some(&org), "member.updated", now + Duration::seconds(1))
                .target(&db::new_id(), "eve@example.com"),
            Ev::new(Some(&org), "member.activated", now + Duration::seconds(2))
                .target(&bob, "bob@example.com"),
        ],
    );
    let page =
        audit_view::org_page(&mut app.conn(), &org.id, &AuditQuery::default(), Some(&bob)).unwrap();
    let got: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[0].as_str()]);
    assert!(page.next_cursor.is_none());
    assert_eq!(
        page.events[1].sentence,
        "The system deactivated bob@example.com"
    );
    // The same function without a target is the organization's page.
    let all = audit_view::org_page(&mut app.conn(), &org.id, &AuditQuery::default(), None).unwrap();
    assert!(all.events.len() >= 3);
}

// ---- CSV export -------------------------------------------------------------------------

#[actix_web::test]
async fn csv_export_quotes_cells_and_defuses_formulas() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = org_by_slug(&app, "my-org");
    let details = "{\"note\":\"a, \\\"quoted\\\"\\nline\"}";
    let ids = insert_events(
        &app,
        &[
            Ev::new(Some(&org), "member.updated", db::now())
                .actor("alice@example.com")
                .target("t1", "=HYPERLINK(\"http://evil.example\",\"click\")")
                .details(details),
            Ev::new(Some(&org), "member.updated", db::now())
                .actor("alice@example.com")
                .target("t2", "@SUM(A1:A9)"),
            Ev::new(Some(&org), "member.updated", db::now())
                .actor("alice@example.com")
                .target("t3", "+1, -1\r\nnext"),
        ],
    );
    let response = browser.get("/orgs/my-org/audit.csv").await;
    assert_eq!(response.status, 200);
    assert!(
        response.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = response.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"audit-my-org-"),
        "{disposition}"
    );
    assert!(disposition.ends_with(".csv\""));
    // Quotes are doubled inside a quoted cell.
    assert!(
        response
            .body
            .contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\"")
    );

    let rows = csv_rows(&response.body);
    assert_eq!(rows[0], CSV_HEADER.map(str::to_string).to_vec());
    let by_id = |id: &str| rows.iter().find(|r| r[12] == id).unwrap().clone();
    let first = by_id(&ids[0]);
    assert_eq!(first[8], "'=HYPERLINK(\"http://evil.example\",\"click\")");
    assert_eq!(first[9], details, "commas, quotes and newlines survive");
    assert_eq!(first[1], "my-org");
    assert_eq!(first[2], "alice@example.com");
    assert_eq!(first[4], "member.updated");
    assert_eq!(
        first[5], "alice@example.com edited =HYPERLINK(\"http://evil.example\",\"click\")",
        "a formula later in a cell is inert"
    );
    assert_eq!(by_id(&ids[1])[8], "'@SUM(A1:A9)");
    assert_eq!(by_id(&ids[2])[8], "'+1, -1\r\nnext");
    // No cell of the whole export starts a formula.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
    }
}

#[actix_web::test]
async fn csv_export_streams_every_matching_event_in_batches() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = org_by_slug(&app, "my-org");
    let base = day(2026, 5, 1);
    // More than two export batches, with ties at batch boundaries.
    let events: Vec<Ev> = (0..2_345)
        .map(|i| {
            Ev::new(
                Some(&org),
                "invitation.created",
                base + Duration::seconds(i / 4),
            )
            .actor("bulk@example.com")
        })
        .collect();
    let mut ids = insert_events(&app, &events);
    let response = browser
        .get("/orgs/my-org/audit.csv?actor=bulk%40example.com")
        .await;
    assert_eq!(response.status, 200);
    let rows = csv_rows(&response.body);
    assert_eq!(rows.len(), 1 + 2_345);
    let exported: Vec<String> = rows[1..].iter().map(|r| r[12].clone()).collect();
    let expected: Vec<String> = {
        let mut rows = audit_events::page(
            &mut app.conn(),
            &Scope::Org(org.id.clone()),
            &Filter {
                actor_email: Some("bulk@example.com".into()),
                ..Default::default()
            },
            None,
            10_000,
        )
        .unwrap();
        rows.drain(..).map(|r| r.id).collect()
    };
    assert_eq!(exported, expected, "newest first, each once");
    ids.sort();
    let mut sorted = exported.clone();
    sorted.sort();
    assert_eq!(sorted, ids);
}

// ---- indexes -------------------------------------------------------------------------------

/// (what, scope, filters, cursor, indexes any of which may serve it)
type PlanCase<'a> = (&'a str, Scope, Filter, Option<Cursor>, &'a [&'a str]);

/// Every query the audit pages run must be served by an index in the page order: no
/// full scan, no sort. Plans, not timings: they hold on any machine.
#[actix_web::test]
async fn every_audit_query_is_served_by_an_index_in_order() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = org_by_slug(&app, "my-org");
    create_org(&app, "other", "Other");
    {
        let mut conn = app.conn();
        portcullis::domain::seed_audit::seed_audit_events(
            &mut conn,
            Some("my-org"),
            3000,
            |_, _| {},
        )
        .unwrap();
        portcullis::domain::seed_audit::seed_audit_events(
            &mut conn,
            Some("other"),
            1000,
            |_, _| {},
        )
        .unwrap();
        diesel::sql_query("ANALYZE").execute(&mut *conn).unwrap();
    }
    let sample = audit_events::page(
        &mut app.conn(),
        &Scope::Org(org.id.clone()),
        &Filter::default(),
        None,
        60,
    )
    .unwrap();
    let target = sample[0].target_id.clone().unwrap();
    let label = sample[0].target_label.clone().unwrap();
    let cursor = Cursor::after(&sample[50]);
    let actor = Some(portcullis::domain::seed_audit::demo_actor_email(7));
    let in_org = Scope::Org(org.id.clone());
    let f = Filter::default;
    let cases: Vec<PlanCase> = vec![
        (
            "org, first page",
            in_org.clone(),
            f(),
            None,
            &["audit_org_time_idx"],
        ),
        (
            "org, next page",
            in_org.clone(),
            f(),
            Some(cursor.clone()),
            &["audit_org_time_idx"],
        ),
        (
            "org, actor",
            in_org.clone(),
            Filter {
                actor_email: actor.clone(),
                ..f()
            },
            None,
            &["audit_org_actor_idx"],
        ),
        (
            "org, actor, next page",
            in_org.clone(),
            Filter {
                actor_email: actor.clone(),
                ..f()
            },
            Some(cursor.clone()),
            &["audit_org_actor_idx"],
        ),
        (
            "org, action",
            in_org.clone(),
            Filter {
                action: Some("member.removed".into()),
                ..f()
            },
            None,
            &["audit_org_action_idx"],
        ),
        (
            "org, target id",
            in_org.clone(),
            Filter {
                target_id: Some(target.clone()),
                ..f()
            },
            None,
            &["audit_org_target_idx", "audit_target_idx"],
        ),
        (
            "org, target label",
            in_org.clone(),
            Filter {
                target_label: Some(label.clone()),
                ..f()
            },
            None,
            &["audit_org_label_idx", "audit_label_idx"],
        ),
        (
            "org, dates",
            in_org.clone(),
            Filter {
                from: Some(db::now() - Duration::days(30)),
                until: Some(db::now() - Duration::days(20)),
                ..f()
            },
            None,
            &["audit_org_time_idx"],
        ),
        (
            "org, actor and action",
            in_org.clone(),
            Filter {
                actor_email: actor.clone(),
                action: Some("member.removed".into()),
                ..f()
            },
            None,
            &["audit_org_actor_idx", "audit_org_action_idx"],
        ),
        (
            "platform events, actor",
            Scope::Platform,
            Filter {
                actor_email: actor.clone(),
                ..f()
            },
            None,
            &[
                "audit_actor_idx",
                "audit_org_actor_idx",
                "audit_platform_time_idx",
            ],
        ),
        (
            "platform events",
            Scope::Platform,
            f(),
            None,
            &["audit_platform_time_idx", "audit_org_time_idx"],
        ),
        (
            "all, first page",
            Scope::All,
            f(),
            None,
            &["audit_time_idx"],
        ),
        (
            "all, next page",
            Scope::All,
            f(),
            Some(cursor.clone()),
            &["audit_time_idx"],
        ),
        (
            "all, actor",
            Scope::All,
            Filter {
                actor_email: actor.clone(),
                ..f()
            },
            None,
            &["audit_actor_idx"],
        ),
        (
            "all, action",
            Scope::All,
            Filter {
                action: Some("member.removed".into()),
                ..f()
            },
            None,
            &["audit_action_idx"],
        ),
        (
            "all, target id",
            Scope::All,
            Filter {
                target_id: Some(target.clone()),
                ..f()
            },
            None,
            &["audit_target_idx"],
        ),
        (
            "all, target label",
            Scope::All,
            Filter {
                target_label: Some(label.clone()),
                ..f()
            },
            None,
            &["audit_label_idx"],
        ),
    ];
    let postgres = app.db.is_postgres();
    for (name, scope, filter, cursor, indexes) in cases {
        let mut conn = app.conn();
        let plan = diesel::Connection::transaction(&mut *conn, |conn| {
            if postgres {
                // Make the planner show whether an ordered index path exists at all:
                // with these off, a missing index shows up as a Sort or a Seq Scan.
                diesel::sql_query("SET LOCAL enable_seqscan = off").execute(conn)?;
                diesel::sql_query("SET LOCAL enable_sort = off").execute(conn)?;
            }
            audit_events::explain_page(conn, &scope, &filter, cursor.as_ref(), 51)
        })
        .unwrap();
        let text = plan.join("\n");
        assert!(!text.contains("TEMP B-TREE"), "{name} sorts:\n{text}");
        assert!(!text.contains("Sort"), "{name} sorts:\n{text}");
        assert!(
            !text.contains("Seq Scan"),
            "{name} scans the table:\n{text}"
        );
        assert!(
            !text.contains("SCAN audit_events\n") && !text.ends_with("SCAN audit_events"),
            "{name} scans the table:\n{text}"
        );
        // Either index is fine where both serve the filter and the order: the
        // planner may rightly prefer the global one for a very selective value.
        assert!(
            indexes.iter().any(|i| text.contains(&format!("{i} "))
                || text.ends_with(i)
                || text.contains(&format!("{i}\n"))),
            "{name} should use one of {indexes:?}:\n{text}"
        );
    }
}

#[actix_web::test]
async fn seed_demo_adds_audit_events_in_batches() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let before = app.count("audit_events");
    let out = run_cli(
        &app,
        &["seed-demo", "--org", "my-org", "--audit-events", "2500"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Added 2500 demo audit events"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2500 / 2500"));
    assert_eq!(app.count("audit_events"), before + 2500);
    let page = browser
        .get("/orgs/my-org/audit?actor=actor0%40demo.example")
        .await;
    assert_eq!(row_ids(&page.body).len(), 50);
    assert!(next_link(&page.body).is_some());

    let missing = run_cli(&app, &["seed-demo", "--org", "nope", "--audit-events", "5"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no organization has the slug"));
}

/// Two-factor: enrolment, disabling, new recovery codes and the second sign-in step.
async fn exercise_two_factor(app: &TestApp, case: Case) -> (usize, Expected) {
    use portcullis::auth::totp;
    let browser = app.setup_admin().await;
    let admin = admin(app);
    let expected = |action| Expected::new(action, &admin, (&admin.id, ADMIN_EMAIL), None);
    if let Case::TwoFactorEnabled = case {
        let page = browser.get("/account/2fa").await;
        let secret = crate::two_factor::secret_on(&page.body);
        let before = all_events(app).len();
        let code = totp::code_at(&secret, totp::now());
        let done = browser
            .post(
                "/account/2fa",
                &[("csrf_token", page.csrf()), ("code", code)],
            )
            .await;
        assert_eq!(done.status, 200, "{case:?}: {}", done.body);
        return (before, expected("auth.2fa_enabled"));
    }
    let (secret, codes) = crate::two_factor::enrol(&browser).await;
    let current = totp::code_at(&secret, totp::now());
    let (path, fields, status, action) = match case {
        Case::TwoFactorDisabled => (
            "/account/2fa/disable",
            vec![("password", ADMIN_PASSWORD.to_string()), ("code", current)],
            303,
            "auth.2fa_disabled",
        ),
        Case::RecoveryCodesRegenerated => (
            "/account/2fa/recovery-codes",
            vec![("password", ADMIN_PASSWORD.to_string())],
            200,
            "auth.2fa_recovery_codes_regenerated",
        ),
        Case::SecondStepSucceeded => (
            "/login/2fa",
            vec![("code", current)],
            303,
            "auth.login_succeeded",
        ),
        Case::SecondStepFailed => (
            "/login/2fa",
            vec![("code", crate::two_factor::wrong_code(&secret))],
            401,
            "auth.2fa_failed",
        ),
        _ => (
            "/login/2fa",
            vec![("code", codes[0].clone())],
            303,
            "auth.recovery_code_used",
        ),
    };
    let browser = if path == "/login/2fa" {
        let token = browser.get("/account").await.csrf();
        browser.post("/logout", &[("csrf_token", token)]).await;
        let fresh = app.client();
        let step = fresh.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(step.location.as_deref(), Some("/login/2fa"));
        fresh
    } else {
        browser
    };
    let form_page = if path == "/login/2fa" {
        "/login/2fa"
    } else {
        "/account/2fa"
    };
    let token = browser.get(form_page).await.csrf();
    let mut form = vec![("csrf_token", token)];
    form.extend(fields);
    let before = all_events(app).len();
    let out = browser.post(path, &form).await;
    assert_eq!(out.status, status, "{case:?}: {}", out.body);
    (before, expected(action))
}
