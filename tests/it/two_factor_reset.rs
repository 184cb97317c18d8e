//! An administrator resets a member's two-factor authentication (issue 14): an org admin
//! for an account that belongs to their organization alone, a platform admin for any,
//! and the attacks: an org admin reaching a shared account, a Manager, another
//! organization's admin, a request without its CSRF token.

use diesel::prelude::*;
use portcullis::db::DbConnection;
use portcullis::db::schema::{audit_events, totp_credentials, totp_recovery_codes};

use crate::browser::all_mail_to;
use crate::helpers::*;
use crate::two_factor::enrol;

const BOB: &str = "bob@example.com";
const SUBJECT: &str = "Two-factor authentication was turned off on your Portcullis account";

/// Bob, a member of my-org who signs in with a password and a code. Answers his id.
async fn bob_with_two_factor(app: &TestApp) -> String {
    let bob = app.add_member("my-org", BOB, "Bob", "Builder", "member", true);
    let browser = app.member_browser(BOB).await;
    enrol(&browser).await;
    bob
}

/// (TOTP secrets, recovery codes) stored for the account.
fn second_factor_rows(app: &TestApp, user_id: &str) -> (i64, i64) {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    let secrets = totp_credentials::table
        .filter(totp_credentials::user_id.eq(user_id))
        .count()
        .get_result(conn)
        .unwrap();
    let codes = totp_recovery_codes::table
        .filter(totp_recovery_codes::user_id.eq(user_id))
        .count()
        .get_result(conn)
        .unwrap();
    (secrets, codes)
}

/// (org id, actor email, target label, details) of a reset event.
type ResetEvent = (Option<String>, Option<String>, Option<String>, String);

fn reset_events(app: &TestApp) -> Vec<ResetEvent> {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    audit_events::table
        .filter(audit_events::action.eq("user.two_factor_reset"))
        .select((
            audit_events::org_id,
            audit_events::actor_email,
            audit_events::target_label,
            audit_events::details,
        ))
        .load(conn)
        .unwrap()
}

/// Signs the password step in: where it sends the browser (`/login/2fa` while enrolled).
async fn password_step_goes_to(app: &TestApp, email: &str) -> Option<String> {
    let page = app.client().login(email, MEMBER_PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    page.location
}

async fn reset_mail_arrives(app: &TestApp, to: &str) -> crate::smtp::Received {
    for _ in 0..100 {
        if let Some(mail) = all_mail_to(app, to)
            .into_iter()
            .find(|m| m.header("Subject").as_deref() == Some(SUBJECT))
        {
            return mail;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no two-factor reset email to {to}");
}

#[actix_web::test]
async fn an_admin_resets_a_single_org_members_two_factor_and_the_password_alone_signs_in() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = bob_with_two_factor(&app).await;
    assert_eq!(
        password_step_goes_to(&app, BOB).await.as_deref(),
        Some("/login/2fa")
    );
    let profile = format!("/orgs/my-org/users/{bob}");
    let reset = format!("{profile}/2fa/reset");

    // The profile offers the action; it leads to a page that asks first.
    let page = admin.get(&profile).await;
    assert!(page.body.contains("Password + TOTP"), "{}", page.body);
    assert!(
        page.body.contains(&format!("href=\"{reset}\"")),
        "{}",
        page.body
    );
    let confirm = admin.get(&reset).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm
            .body
            .contains("Reset two-factor authentication of bob@example.com?")
    );
    assert_eq!(
        second_factor_rows(&app, &bob),
        (1, 10),
        "asking changed nothing"
    );

    let done = admin.post(&reset, &[("csrf_token", confirm.csrf())]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(profile.as_str()));
    assert_eq!(second_factor_rows(&app, &bob), (0, 0));

    // The password alone signs Bob in now.
    assert_eq!(
        password_step_goes_to(&app, BOB).await.as_deref(),
        Some("/orgs")
    );
    // The admin's pages say so, and offer no reset any more.
    let page = admin.get(&profile).await;
    assert!(page.body.contains("was reset"), "{}", page.body);
    assert!(!page.body.contains(&format!("href=\"{reset}\"")));
    let users = admin.get("/orgs/my-org/users?auth=password").await;
    assert!(row_emails(&users.body).contains(&BOB.to_string()));

    // In the trail, with who did it, in this organization; Bob is told by email.
    let events = reset_events(&app);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, Some(app.org_id("my-org")));
    assert_eq!(events[0].1.as_deref(), Some(ADMIN_EMAIL));
    assert_eq!(events[0].2.as_deref(), Some(BOB));
    let activity = admin.get(&format!("{profile}/activity")).await;
    assert!(
        activity.body.contains(&format!(
            "{ADMIN_EMAIL} reset the two-factor authentication of {BOB}"
        )),
        "{}",
        activity.body
    );
    let mail = reset_mail_arrives(&app, BOB).await;
    assert!(
        mail.decoded().contains("an administrator of"),
        "{}",
        mail.decoded()
    );

    // Done twice: nothing left to reset, nothing recorded.
    let again = admin.submit(&profile, &reset, &[]).await;
    assert_eq!(again.status, 303);
    assert_eq!(reset_events(&app).len(), 1);
}

#[actix_web::test]
async fn an_org_admin_cannot_reset_a_member_of_another_org_too_but_a_platform_admin_can() {
    let app = spawn_app().await;
    let platform_admin = app.setup_admin().await;
    app.create_org("other-org", "Other Org");
    let bob = bob_with_two_factor(&app).await;
    app.add_member("other-org", BOB, "Bob", "Builder", "member", true);
    // An admin of my-org only, without any platform role.
    app.add_member("my-org", "alice@example.com", "Alice", "A", "admin", true);
    let alice = app.member_browser("alice@example.com").await;

    let reset = format!("/orgs/my-org/users/{bob}/2fa/reset");
    let asked = alice.get(&reset).await;
    assert_eq!(asked.status, 403, "{}", asked.body);
    assert!(
        asked.body.contains("only a platform admin can"),
        "{}",
        asked.body
    );
    let profile = alice.get(&format!("/orgs/my-org/users/{bob}")).await;
    let refused = alice.post(&reset, &[("csrf_token", profile.csrf())]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("only a platform admin can"));
    assert_eq!(second_factor_rows(&app, &bob), (1, 10));
    assert!(reset_events(&app).is_empty());

    // The platform admin can, from the platform page.
    let page = platform_admin.get(&format!("/admin/users/{bob}")).await;
    let platform_reset = format!("/admin/users/{bob}/2fa/reset");
    assert!(
        page.body.contains(&format!("href=\"{platform_reset}\"")),
        "{}",
        page.body
    );
    let confirm = platform_admin.get(&platform_reset).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let done = platform_admin
        .post(&platform_reset, &[("csrf_token", confirm.csrf())])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(second_factor_rows(&app, &bob), (0, 0));
    assert_eq!(
        password_step_goes_to(&app, BOB).await.as_deref(),
        Some("/orgs")
    );
    let events = reset_events(&app);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, None, "a platform event");
    assert_eq!(events[0].1.as_deref(), Some(ADMIN_EMAIL));
    let mail = reset_mail_arrives(&app, BOB).await;
    assert!(mail.decoded().contains("a platform administrator"));
}

#[actix_web::test]
async fn managers_other_organizations_admins_and_oneself_are_refused() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other-org", "Other Org");
    let bob = bob_with_two_factor(&app).await;
    app.add_member("my-org", "manny@example.com", "Manny", "M", "manager", true);
    app.add_member("other-org", "otto@example.com", "Otto", "O", "admin", true);
    let reset = format!("/orgs/my-org/users/{bob}/2fa/reset");

    let manager = app.member_browser("manny@example.com").await;
    assert_eq!(manager.get(&reset).await.status, 403);
    let csrf = manager.get("/orgs/my-org/users").await.csrf();
    let refused = manager.post(&reset, &[("csrf_token", csrf)]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let profile = manager.get(&format!("/orgs/my-org/users/{bob}")).await;
    assert!(!profile.body.contains(&format!("href=\"{reset}\"")));

    // Another organization's admin: Bob is not found, through either organization.
    let otto = app.member_browser("otto@example.com").await;
    let csrf = otto.get("/orgs/other-org/users").await.csrf();
    for path in [
        reset.clone(),
        format!("/orgs/other-org/users/{bob}/2fa/reset"),
    ] {
        let page = otto.post(&path, &[("csrf_token", csrf.clone())]).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }

    // One's own second factor is turned off on the account page, with password and code.
    crate::two_factor::enrol(&admin).await;
    let own = format!("/orgs/my-org/users/{}/2fa/reset", app.user_id(ADMIN_EMAIL));
    let csrf = admin.get("/orgs/my-org/users").await.csrf();
    assert_eq!(admin.post(&own, &[("csrf_token", csrf)]).await.status, 409);

    assert_eq!(second_factor_rows(&app, &bob), (1, 10));
    assert_eq!(second_factor_rows(&app, &app.user_id(ADMIN_EMAIL)), (1, 10));
    assert!(reset_events(&app).is_empty());
}

#[actix_web::test]
async fn a_reset_without_its_csrf_token_is_refused() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = bob_with_two_factor(&app).await;
    for path in [
        format!("/orgs/my-org/users/{bob}/2fa/reset"),
        format!("/admin/users/{bob}/2fa/reset"),
    ] {
        let page = admin.post(&path, &[]).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        let forged = admin
            .post(&path, &[("csrf_token", "forged".to_string())])
            .await;
        assert_eq!(forged.status, 403, "{path}");
    }
    assert_eq!(second_factor_rows(&app, &bob), (1, 10));
    assert!(reset_events(&app).is_empty());
}
