//! How each `Case` of the trail test is exercised: the setup a route needs, then the
//! one request under test, and the event it must write.

use chrono::Duration;
use diesel::prelude::*;
use portcullis::db::{self, DbConnection, roles};

use super::all_events;
use super::trail::{Case, Expected};
use crate::helpers::*;

/// The first admin did `action` to their own account, outside any organization.
fn admin_did(app: &TestApp, action: &'static str) -> Expected {
    let admin = app.user_id(ADMIN_EMAIL);
    Expected::new(action, ADMIN_EMAIL, (&admin, ADMIN_EMAIL), None)
}

pub(super) async fn exercise_auth(app: &TestApp, case: Case) -> (usize, Expected) {
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
            let expected = Expected::new(
                "setup.completed",
                ADMIN_EMAIL,
                (&app.user_id(ADMIN_EMAIL), ADMIN_EMAIL),
                Some(&app.org_id("my-org")),
            );
            (before, expected)
        }
        Case::SetupAccountLink => {
            app.setup_admin().await;
            let out = app.run_cli(&["create-admin", "--email", "ops@example.com"]);
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
            let ops = "ops@example.com";
            let expected = Expected::new(
                "account.setup_completed",
                ops,
                (&app.user_id(ops), ops),
                None,
            );
            (before, expected)
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
            let (status, expected) = match case {
                Case::LoginSucceeded => (303, admin_did(app, "auth.login_succeeded")),
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
            (before, admin_did(app, "auth.logout"))
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
            (before, admin_did(app, "account.password_changed"))
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
            (before, admin_did(app, action))
        }
        other => unreachable!("{other:?} is not an auth case"),
    }
}

/// A signed-in first admin, the first organization's id and one plain member, Bob
/// (his user id).
struct InOrg {
    browser: Browser,
    org: String,
    bob: String,
}

const BOB: &str = "bob@example.com";

async fn in_org(app: &TestApp) -> InOrg {
    let browser = app.setup_admin().await;
    InOrg {
        browser,
        org: app.org_id("my-org"),
        bob: app.add_member("my-org", BOB, "Bob", "Builder", "member", true),
    }
}

/// A forgotten password: the request (no actor: nobody is signed in) and the reset.
pub(super) async fn exercise_reset(app: &TestApp, case: Case) -> (usize, Expected) {
    app.setup_admin().await;
    let admin = app.user_id(ADMIN_EMAIL);
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
        app.reset_requests_handled().await;
        let expected = Expected {
            action: "auth.password_reset_requested",
            actor: None,
            target_label: Some(ADMIN_EMAIL.into()),
            target_id: Some(admin.clone()),
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
        ADMIN_EMAIL,
        (&admin, ADMIN_EMAIL),
        None,
    );
    (before, expected)
}

/// Posts `fields` to `action` with the session's CSRF token, and answers how many events
/// existed just before the post, with the answer. Only the post itself is counted.
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

pub(super) async fn exercise_members(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg { browser, org, bob } = in_org(app).await;
    let profile = format!("/orgs/my-org/users/{bob}");
    let member_role = app.role_id("my-org", "member");
    let engineer = app.role_id("my-org", "engineer");
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
            vec![("action", "deactivate"), ("user_ids", bob.as_str())],
            200,
        ),
        Case::MemberRoleChangedInline => (
            "member.role_changed",
            format!("{profile}/role"),
            vec![
                ("role_id", engineer.as_str()),
                ("next", "/orgs/my-org/users"),
            ],
            303,
        ),
        other => unreachable!("{other:?} is not a member case"),
    };
    let (before, page) = post_counted(app, &browser, &path, &fields).await;
    assert_eq!(page.status, status, "{case:?}: {}", page.body);
    (
        before,
        Expected::new(action, ADMIN_EMAIL, (&bob, BOB), Some(&org)),
    )
}

const INVITEE: &str = "pat@example.com";

pub(super) async fn exercise_invitations(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg { browser, org, .. } = in_org(app).await;
    let member_role = app.role_id("my-org", "member");
    let invite = [("emails", INVITEE), ("role_id", member_role.as_str())];
    if let Case::InvitationCreated = case {
        let (before, page) = post_counted(app, &browser, "/orgs/my-org/invitations", &invite).await;
        assert_eq!(page.status, 303, "{case:?}: {}", page.body);
        let id = app.invitation_id(INVITEE);
        let expected = Expected::new(
            "invitation.created",
            ADMIN_EMAIL,
            (&id, INVITEE),
            Some(&org),
        );
        return (before, expected);
    }
    let invited = prepare(&browser, "/orgs/my-org/invitations", &invite, 303).await;
    let invited = browser.follow_results(invited).await;
    let id = app.invitation_id(INVITEE);
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
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected =
                Expected::new("invitation.resent", ADMIN_EMAIL, (&id, INVITEE), Some(&org));
            (before, expected)
        }
        Case::InvitationCancelled => {
            let (before, page) = post_counted(app, &browser, &format!("{base}/cancel"), &[]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected = Expected::new(
                "invitation.cancelled",
                ADMIN_EMAIL,
                (&id, INVITEE),
                Some(&org),
            );
            (before, expected)
        }
        Case::InvitationAccepted => {
            let link = invited.invite_link();
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
            let expected =
                Expected::new("invitation.accepted", INVITEE, (&id, INVITEE), Some(&org));
            (before, expected)
        }
        other => unreachable!("{other:?} is not an invitation case"),
    }
}

fn custom_role_id(app: &TestApp, org_id: &str, name: &str) -> String {
    roles::list(&mut app.conn(), org_id)
        .unwrap()
        .into_iter()
        .find(|r| r.name == name)
        .expect("role exists")
        .id
}

pub(super) async fn exercise_roles(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg { browser, org, .. } = in_org(app).await;
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
        Expected::new(action, ADMIN_EMAIL, (&id, label), Some(&org)),
    )
}

pub(super) async fn exercise_groups(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg { browser, org, bob } = in_org(app).await;
    let groups = "/orgs/my-org/groups";
    if let Case::GroupCreated = case {
        let (before, page) = post_counted(app, &browser, groups, &[("name", "Ops")]).await;
        assert_eq!(page.status, 303, "{case:?}: {}", page.body);
        let id = location_id(&page);
        let expected = Expected::new("group.created", ADMIN_EMAIL, (&id, "Ops"), Some(&org));
        return (before, expected);
    }
    let id = location_id(&prepare(&browser, groups, &[("name", "Ops")], 303).await);
    let base = format!("{groups}/{id}");
    if let Case::GroupMemberRemoved = case {
        prepare(
            &browser,
            &format!("{base}/members"),
            &[("user_id", bob.as_str())],
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
            vec![("user_id", bob.as_str())],
            (bob.as_str(), BOB),
        ),
        Case::GroupMemberRemoved => (
            "group.member_removed",
            format!("{base}/members/{bob}/remove"),
            vec![],
            (bob.as_str(), BOB),
        ),
        Case::GroupMemberAddedFromProfile => (
            "group.member_added",
            format!("/orgs/my-org/users/{bob}/groups"),
            vec![("group_id", id.as_str())],
            (bob.as_str(), BOB),
        ),
        other => unreachable!("{other:?} is not a group case"),
    };
    let (before, page) = post_counted(app, &browser, &path, &fields).await;
    assert_eq!(page.status, 303, "{case:?}: {}", page.body);
    (
        before,
        Expected::new(action, ADMIN_EMAIL, target, Some(&org)),
    )
}

pub(super) async fn exercise_pools(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg { browser, org, bob } = in_org(app).await;
    let pools = "/orgs/my-org/pools";
    let alpha = [("name", "Alpha"), ("parent_id", "")];
    if let Case::PoolCreated = case {
        let (before, page) = post_counted(app, &browser, pools, &alpha).await;
        assert_eq!(page.status, 303, "{case:?}: {}", page.body);
        let id = location_id(&page);
        let expected = Expected::new("pool.created", ADMIN_EMAIL, (&id, "Alpha"), Some(&org));
        return (before, expected);
    }
    let id = location_id(&prepare(&browser, pools, &alpha, 303).await);
    let base = format!("{pools}/{id}");
    let engineer = app.role_id("my-org", "engineer");
    if let Case::PoolMemberRemoved = case {
        let fields = [("user_id", bob.as_str()), ("role_id", engineer.as_str())];
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
            vec![("user_id", bob.as_str()), ("role_id", engineer.as_str())],
            (bob.as_str(), BOB),
        ),
        Case::PoolMemberRemoved => (
            "pool.member_removed",
            format!("{base}/members/{bob}/remove"),
            vec![],
            (bob.as_str(), BOB),
        ),
        Case::PoolMemberAddedFromProfile => (
            "pool.member_added",
            format!("/orgs/my-org/users/{bob}/pools"),
            vec![("pool_id", id.as_str()), ("role_id", engineer.as_str())],
            (bob.as_str(), BOB),
        ),
        other => unreachable!("{other:?} is not a pool case"),
    };
    let (before, page) = post_counted(app, &browser, &path, &fields).await;
    assert_eq!(page.status, 303, "{case:?}: {}", page.body);
    (
        before,
        Expected::new(action, ADMIN_EMAIL, target, Some(&org)),
    )
}

pub(super) async fn exercise_platform(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg { browser, org, bob } = in_org(app).await;
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
            let acme = app.org_id("acme");
            // The first admin joined, and the one event says who it is.
            let boss = app.user_id(first_admin);
            let events = all_events(app);
            let created = events.last().unwrap();
            assert!(created.details.contains(&boss), "{}", created.details);
            assert!(created.details.contains(first_admin), "{}", created.details);
            let expected = Expected::new("org.created", ADMIN_EMAIL, (&acme, "Acme"), Some(&acme));
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
            let new = app.user_id("new@example.com");
            let expected = Expected::new(
                "admin.user_created",
                ADMIN_EMAIL,
                (&new, "new@example.com"),
                Some(&org),
            );
            (before, expected)
        }
        Case::AdminUserDisabled | Case::AdminUserEnabled => {
            let base = format!("/admin/users/{bob}");
            let (action, path) = if let Case::AdminUserEnabled = case {
                prepare(&browser, &format!("{base}/disable"), &[], 303).await;
                ("admin.user_enabled", format!("{base}/enable"))
            } else {
                ("admin.user_disabled", format!("{base}/disable"))
            };
            let (before, page) = post_counted(app, &browser, &path, &[]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            // Accounts are the platform's: no organization.
            (
                before,
                Expected::new(action, ADMIN_EMAIL, (&bob, BOB), None),
            )
        }
        Case::AdminMembershipAdded => {
            let other = app.create_org("other", "Other");
            let path = format!("/admin/users/{bob}/memberships");
            let fields = [("org", "other"), ("role_id", "manager")];
            let (before, page) = post_counted(app, &browser, &path, &fields).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected = Expected::new(
                "admin.membership_added",
                ADMIN_EMAIL,
                (&bob, BOB),
                Some(&other),
            );
            (before, expected)
        }
        Case::AdminMembershipActivated => {
            let slug = "my-org";
            prepare(
                &browser,
                &format!("/orgs/{slug}/users/{bob}/deactivate"),
                &[],
                303,
            )
            .await;
            let path = format!("/admin/users/{bob}/memberships/{slug}/activate");
            let (before, page) = post_counted(app, &browser, &path, &[]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected = Expected::new(
                "admin.membership_activated",
                ADMIN_EMAIL,
                (&bob, BOB),
                Some(&org),
            );
            (before, expected)
        }
        Case::AdminMembershipRoleChanged => {
            let path = format!("/admin/users/{bob}/memberships/my-org/role");
            let (before, page) =
                post_counted(app, &browser, &path, &[("role_id", "manager")]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            let expected = Expected::new(
                "admin.membership_role_changed",
                ADMIN_EMAIL,
                (&bob, BOB),
                Some(&org),
            );
            (before, expected)
        }
        Case::AdminSessionsEnded => {
            let path = format!("/admin/users/{bob}/sessions/end");
            let (before, page) = post_counted(app, &browser, &path, &[]).await;
            assert_eq!(page.status, 303, "{case:?}: {}", page.body);
            (
                before,
                Expected::new("admin.sessions_ended", ADMIN_EMAIL, (&bob, BOB), None),
            )
        }
        other => unreachable!("{other:?} is not a platform case"),
    }
}

/// Two-factor: enrolment, disabling, new recovery codes and the second sign-in step.
pub(super) async fn exercise_two_factor(app: &TestApp, case: Case) -> (usize, Expected) {
    use portcullis::auth::totp;
    let browser = app.setup_admin().await;
    let expected = |action| admin_did(app, action);
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

pub(super) async fn exercise_two_factor_policy(app: &TestApp) -> (usize, Expected) {
    let InOrg { browser, org, .. } = in_org(app).await;
    let fields = [("require", "all"), ("grace_days", "14")];
    let (before, page) = post_counted(app, &browser, "/orgs/my-org/settings/2fa", &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    (
        before,
        Expected::new(
            "org.two_factor_policy_changed",
            ADMIN_EMAIL,
            (&org, portcullis::domain::orgs::FIRST_ORG_NAME),
            Some(&org),
        ),
    )
}

/// An admin resets Bob's two-factor: in the organization (an organization event), or
/// from the platform page (a platform event).
pub(super) async fn exercise_two_factor_reset(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg { browser, org, bob } = in_org(app).await;
    crate::two_factor::enrol(&app.member_browser(BOB).await).await;
    let (path, org) = match case {
        Case::TwoFactorResetByOrgAdmin => (
            format!("/orgs/my-org/users/{bob}/2fa/reset"),
            Some(org.as_str()),
        ),
        _ => (format!("/admin/users/{bob}/2fa/reset"), None),
    };
    let (before, page) = post_counted(app, &browser, &path, &[]).await;
    assert_eq!(page.status, 303, "{case:?}: {}", page.body);
    let expected = Expected::new("user.two_factor_reset", ADMIN_EMAIL, (&bob, BOB), org);
    (before, expected)
}

/// An Admin creates an API token, or revokes one made beforehand.
pub(super) async fn exercise_api_tokens(app: &TestApp, case: Case) -> (usize, Expected) {
    let InOrg { browser, org, .. } = in_org(app).await;
    let member_role = app.role_id("my-org", "member");
    let fields = [
        ("name", "Okta"),
        ("scopes", "scim"),
        ("expires_days", "365"),
        ("role_id", member_role.as_str()),
    ];
    if let Case::ApiTokenCreated = case {
        let (before, page) = post_counted(app, &browser, "/orgs/my-org/api-tokens", &fields).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let id = crate::api_tokens::token_ids(app, "my-org").pop().unwrap();
        let expected = Expected::new("api_token.created", ADMIN_EMAIL, (&id, "Okta"), Some(&org));
        return (before, expected);
    }
    prepare(&browser, "/orgs/my-org/api-tokens", &fields, 200).await;
    let id = crate::api_tokens::token_ids(app, "my-org").pop().unwrap();
    let path = format!("/orgs/my-org/api-tokens/{id}/revoke");
    let (before, page) = post_counted(app, &browser, &path, &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    (
        before,
        Expected::new("api_token.revoked", ADMIN_EMAIL, (&id, "Okta"), Some(&org)),
    )
}
