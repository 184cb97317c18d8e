//! Every state-changing route writes exactly one audit event, and a failed or refused
//! change writes none.

use super::all_events;
use super::trail_cases::*;
use crate::helpers::*;
use portcullis::db::audit_events::AuditRow;

/// Every way a state-changing route is exercised here. Each must write exactly one
/// event; add a case for every new POST route (the next test fails until you do).
#[derive(Debug, Clone, Copy)]
pub(super) enum Case {
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
    MemberRoleChangedInline,
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
    GroupMemberAddedFromProfile,
    PoolCreated,
    PoolRenamed,
    PoolMoved,
    PoolDeleted,
    PoolMemberAdded,
    PoolMemberRemoved,
    PoolMemberAddedFromProfile,
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
    TwoFactorPolicyChanged,
    TwoFactorResetByOrgAdmin,
    TwoFactorResetByPlatformAdmin,
    ApiTokenCreated,
    ApiTokenRevoked,
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
        "/orgs/{org}/users/{id}/role",
        &[Case::MemberRoleChangedInline],
    ),
    (
        "POST",
        "/orgs/{org}/users/{id}/groups",
        &[Case::GroupMemberAddedFromProfile],
    ),
    (
        "POST",
        "/orgs/{org}/users/{id}/pools",
        &[Case::PoolMemberAddedFromProfile],
    ),
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
        "/orgs/{org}/settings/2fa",
        &[Case::TwoFactorPolicyChanged],
    ),
    ("POST", "/orgs/{org}/api-tokens", &[Case::ApiTokenCreated]),
    (
        "POST",
        "/orgs/{org}/api-tokens/{id}/revoke",
        &[Case::ApiTokenRevoked],
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

pub(super) struct Expected {
    pub(super) action: &'static str,
    pub(super) actor: Option<String>,
    pub(super) target_label: Option<String>,
    pub(super) target_id: Option<String>,
    pub(super) org: Option<String>,
}

impl Expected {
    /// `actor` (an email) did `action` to the target (id, label), in `org` (`None`: a
    /// platform event).
    pub(super) fn new(
        action: &'static str,
        actor: &str,
        target: (&str, &str),
        org: Option<&str>,
    ) -> Self {
        Expected {
            action,
            actor: Some(actor.to_string()),
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
        | Case::BulkDeactivateOne
        | Case::MemberRoleChangedInline => exercise_members(&app, case).await,
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
        | Case::GroupMemberRemoved
        | Case::GroupMemberAddedFromProfile => exercise_groups(&app, case).await,
        Case::PoolCreated
        | Case::PoolRenamed
        | Case::PoolMoved
        | Case::PoolDeleted
        | Case::PoolMemberAdded
        | Case::PoolMemberRemoved
        | Case::PoolMemberAddedFromProfile => exercise_pools(&app, case).await,
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
        Case::TwoFactorPolicyChanged => exercise_two_factor_policy(&app).await,
        Case::ApiTokenCreated | Case::ApiTokenRevoked => exercise_api_tokens(&app, case).await,
        Case::TwoFactorResetByOrgAdmin | Case::TwoFactorResetByPlatformAdmin => {
            exercise_two_factor_reset(&app, case).await
        }
    };
    (app, before, expected)
}

#[test]
fn every_state_changing_route_writes_exactly_one_event() {
    for (method, route, cases) in AUDITED_ROUTES {
        assert!(!cases.is_empty(), "{method} {route} has no case");
        for case in *cases {
            let (added, expected) = events_of_case(*case);
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

/// The events one case added, and what they should say. Each case runs on its own actix
/// system, ended with the case: an app's background jobs (outbox, expiry, resets) live as
/// long as the runtime they were spawned on, and a hundred cases' jobs polling every
/// 200 ms, their databases dropped, had PostgreSQL refuse 70,000 connections a run and
/// starved the later cases into 408s.
fn events_of_case(case: Case) -> (Vec<AuditRow>, Expected) {
    std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        let outcome = system.block_on(async move {
            let (app, before, expected) = exercise(case).await;
            let events = all_events(&app);
            // The server's workers are the system's arbiters: stopping it stops them too.
            actix_web::rt::System::current().stop();
            (events[before..].to_vec(), expected)
        });
        system.run().expect("the case's system stops");
        outcome
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Reads how routes are registered in the source and checks that every POST route has
/// an entry in `AUDITED_ROUTES`, so a new state-changing route cannot skip the audit
/// test by being forgotten.
#[test]
fn every_post_route_is_in_the_audit_table() {
    let found: Vec<String> = registered_routes()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert!(
        !found.is_empty(),
        "no POST route found: is the scanner still right?"
    );
    for route in found {
        assert!(
            AUDITED_ROUTES
                .iter()
                .any(|(m, r, _)| *m == "POST" && r.ends_with(&route)),
            "POST {route} is not in AUDITED_ROUTES (tests/it/audit/trail.rs): add a case that \
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
