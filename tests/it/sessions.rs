//! Sessions people can see and end (issue 14, item 3): the list on /account, ending one,
//! "sign out everywhere else", and the "new sign-in" email.

use std::time::Duration;

use actix_session::storage::{SessionKey, SessionStore};
use diesel::prelude::*;
use portcullis::auth::session_store::DbSessionStore;
use portcullis::db::inline_reads::InlineReads;
use portcullis::db::schema::sessions;
use portcullis::db::{DbConnection, DbTarget};
use portcullis::startup::SESSION_COOKIE;

use crate::helpers::*;

const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
const ALERTS: &str =
    "email_outbox WHERE to_addr = 'admin@example.com' AND subject LIKE 'New sign-in%'";

fn browser_as(app: &TestApp, user_agent: &str) -> Browser {
    Browser::with_user_agent(&app.address, user_agent)
}

async fn signed_in_as_admin(app: &TestApp, user_agent: &str) -> Browser {
    let browser = browser_as(app, user_agent);
    let response = browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(response.status, 303, "{}", response.body);
    browser
}

/// The `<tr data-session ...>` rows of /account: (id, is this browser, the row's HTML).
fn session_rows(html: &str) -> Vec<(String, bool, String)> {
    html.split("<tr data-session")
        .skip(1)
        .map(|rest| {
            let row = &rest[..rest.find("</tr>").expect("row ends")];
            let id = attr(row, "data-id").expect("row id");
            let current = attr(row, "data-current").as_deref() == Some("true");
            (id, current, row.to_string())
        })
        .collect()
}

fn attr(html: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// The id of the session listed with `needle` (a browser name) in its row.
fn id_of(html: &str, needle: &str) -> String {
    session_rows(html)
        .into_iter()
        .find(|(_, _, row)| row.contains(needle))
        .unwrap_or_else(|| panic!("a session in {needle}: {html}"))
        .0
}

async fn end(browser: &Browser, id: &str) -> Page {
    let token = browser.get("/account").await.csrf();
    browser
        .post(
            &format!("/account/sessions/{id}/end"),
            &[("csrf_token", token)],
        )
        .await
}

fn session_ids(app: &TestApp) -> Vec<String> {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    let mut ids: Vec<String> = sessions::table
        .select(sessions::id)
        .load(conn)
        .expect("sessions");
    ids.sort();
    ids
}

#[actix_web::test]
async fn the_list_shows_each_session_with_browser_system_address_and_this_browser() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let chrome = signed_in_as_admin(&app, CHROME_LINUX).await;
    let _firefox = signed_in_as_admin(&app, FIREFOX_WINDOWS).await;

    let page = chrome.get("/account").await;
    assert_eq!(page.status, 200);
    let rows = session_rows(&page.body);
    assert_eq!(rows.len(), 3, "setup's browser, Chrome and Firefox");
    let current: Vec<_> = rows.iter().filter(|(_, current, _)| *current).collect();
    assert_eq!(current.len(), 1, "exactly one is this browser");
    let this = &current[0].2;
    assert!(this.contains("Chrome") && this.contains("Linux"), "{this}");
    assert!(this.contains("This browser"), "{this}");
    let firefox = rows
        .iter()
        .find(|(_, _, row)| row.contains("Firefox"))
        .expect("Firefox listed");
    assert!(firefox.2.contains("Windows"), "{}", firefox.2);
    assert!(firefox.2.contains("127.0.0.1"));
    assert!(!firefox.2.contains("This browser"));
    assert!(
        page.body
            .contains("aria-label=\"End the session of Chrome on Linux, 127.0.0.1"),
        "End buttons say which session"
    );
    assert!(page.body.contains("Sign out everywhere else"));
    assert!(
        page.body
            .contains("<label class=\"check\" for=\"signin_alerts\">")
    );
    // The raw user agent is not what is shown: it is parsed.
    assert!(!page.body.contains("AppleWebKit"));

    // The ids shown are the stored ones, never a cookie's key.
    let shown: Vec<String> = {
        let mut ids: Vec<String> = rows.into_iter().map(|(id, _, _)| id).collect();
        ids.sort();
        ids
    };
    assert_eq!(shown, session_ids(&app));
    let cookie = chrome.session_cookie().expect("a session cookie");
    let value = cookie.split_once('=').unwrap().1;
    assert!(!shown.iter().any(|id| value.contains(id.as_str())));
}

#[actix_web::test]
async fn ending_another_session_signs_that_browser_out_on_its_next_request() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let chrome = signed_in_as_admin(&app, CHROME_LINUX).await;
    let firefox = signed_in_as_admin(&app, FIREFOX_WINDOWS).await;
    assert_eq!(firefox.get("/account").await.status, 200);

    let id = id_of(&chrome.get("/account").await.body, "Firefox");
    let done = end(&chrome, &id).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account"));
    let page = chrome.get("/account").await;
    assert_eq!(page.status, 200, "this browser stays signed in");
    assert!(
        page.body
            .contains("Ended the session of Firefox on Windows")
    );
    assert!(!page.body.contains(&id), "no longer listed");

    let next = firefox.get("/account").await;
    assert_eq!(next.status, 303, "the ended browser is signed out");
    assert!(
        next.location.as_deref().unwrap_or("").starts_with("/login"),
        "{:?}",
        next.location
    );
    assert_eq!(
        app.count("audit_events WHERE action = 'account.session_ended'"),
        1
    );
}

#[actix_web::test]
async fn ending_this_browsers_own_session_signs_it_out() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let chrome = signed_in_as_admin(&app, CHROME_LINUX).await;
    let id = id_of(&chrome.get("/account").await.body, "This browser");
    let done = end(&chrome, &id).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/login?signed_out=1"));
    assert_eq!(chrome.get("/account").await.status, 303);
}

#[actix_web::test]
async fn sign_out_everywhere_else_keeps_this_browser() {
    let app = spawn_app().await;
    let setup = app.setup_admin().await;
    let chrome = signed_in_as_admin(&app, CHROME_LINUX).await;
    let firefox = signed_in_as_admin(&app, FIREFOX_WINDOWS).await;

    let done = chrome
        .submit("/account", "/account/sessions/end-others", &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = chrome.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Signed out of 2 other browsers."));
    let rows = session_rows(&page.body);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].1, "the one left is this browser");
    assert!(
        !page.body.contains("Sign out everywhere else"),
        "nothing else"
    );

    assert_eq!(firefox.get("/account").await.status, 303);
    assert_eq!(setup.get("/account").await.status, 303);
    assert_eq!(
        app.count("audit_events WHERE action = 'account.other_sessions_ended'"),
        1
    );
}

#[actix_web::test]
async fn another_accounts_session_answers_404_and_nothing_changes() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);
    let bob = app.member_browser("bob@example.com").await;
    let admins_session = id_of(&admin.get("/account").await.body, "This browser");
    let before = session_ids(&app);
    let events = app.count("audit_events");

    let refused = end(&bob, &admins_session).await;
    assert_eq!(refused.status, 404);
    let unknown = end(&bob, "not-a-session").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(session_ids(&app), before, "nothing ended");
    assert_eq!(app.count("audit_events"), events, "nothing recorded");
    assert_eq!(admin.get("/account").await.status, 200, "still signed in");
    // Not listed either: Bob sees only his own.
    let bobs = bob.get("/account").await;
    assert_eq!(session_rows(&bobs.body).len(), 1);
    assert!(!bobs.body.contains(&admins_session));

    // A POST without the CSRF token is refused before anything happens.
    let forged = bob
        .post(&format!("/account/sessions/{admins_session}/end"), &[])
        .await;
    assert!(forged.status >= 400, "{}", forged.status);
    assert_eq!(session_ids(&app), before);
}

/// The id on the page is the SHA-256 of the cookie's key: a cookie carrying it signs
/// nobody in, and the store does not take it for a key.
#[actix_web::test]
async fn a_shown_session_id_cannot_stand_in_for_the_cookie() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let id = id_of(&admin.get("/account").await.body, "This browser");

    let replayed = get_with_cookie(&app.url("/account"), &format!("{SESSION_COOKIE}={id}")).await;
    assert_eq!(replayed.status, 303, "not signed in");

    let target = DbTarget::parse(&app.db.url).expect("the test database's URL");
    let store = DbSessionStore::new(
        app.pool.clone(),
        InlineReads::for_target(&target),
        Duration::from_secs(3600),
        Duration::from_secs(86_400),
    );
    let key = SessionKey::try_from(id.clone()).expect("a key-shaped value");
    assert!(store.load(&key).await.expect("loads").is_none());
    assert_eq!(admin.get("/account").await.status, 200, "untouched");
}

#[actix_web::test]
async fn a_new_browser_gets_a_new_signin_email_and_a_known_one_does_not() {
    // Read as delivered: the outbox drops a body once the email is sent.
    let smtp = crate::smtp::SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    app.setup_admin().await;
    assert_eq!(app.count(ALERTS), 0);

    let chrome = signed_in_as_admin(&app, CHROME_LINUX).await;
    assert_eq!(app.count(ALERTS), 1, "a browser new to the account");
    let delivered = async {
        loop {
            let alert = smtp.received().into_iter().find(|m| {
                m.header("Subject")
                    .is_some_and(|s| s.starts_with("New sign-in"))
            });
            match alert {
                Some(alert) => break alert.decoded(),
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    };
    let body = tokio::time::timeout(Duration::from_secs(30), delivered)
        .await
        .expect("the new sign-in email is delivered");
    for part in [
        "Chrome",
        "Linux",
        "127.0.0.1",
        "UTC",
        "change your password",
        "/account",
    ] {
        assert!(body.contains(part), "{part}: {body}");
    }
    assert_eq!(
        app.count(
            "audit_events WHERE action = 'auth.login_succeeded' \
             AND details LIKE '%\"new_browser_email\":true%'"
        ),
        1
    );

    // Signed out and in again: the device cookie says the account knows this browser.
    let token = chrome.get("/account").await.csrf();
    chrome.post("/logout", &[("csrf_token", token)]).await;
    assert_eq!(chrome.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
    assert_eq!(app.count(ALERTS), 1, "no email for a known browser");

    // Another fresh browser: another email.
    signed_in_as_admin(&app, FIREFOX_WINDOWS).await;
    assert_eq!(app.count(ALERTS), 2);
}

/// A thief's browser, known to the account while the stolen password worked, signs in
/// with the new one it learnt later: the owner hears of it, as of any new browser.
#[actix_web::test]
async fn a_browser_known_before_a_password_change_is_new_again_to_the_alert() {
    const NEW_PASSWORD: &str = "a brand new passphrase";
    let app = spawn_app().await;
    let owner = app.setup_admin().await;
    let thief = signed_in_as_admin(&app, FIREFOX_WINDOWS).await;
    assert_eq!(app.count(ALERTS), 1);
    let changed = owner.change_password(ADMIN_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(thief.login(ADMIN_EMAIL, NEW_PASSWORD).await.status, 303);
    assert_eq!(
        app.count(ALERTS),
        2,
        "the thief's browser is new to the new password"
    );
    // The owner's own browser, handed a cookie for the new password, stays known.
    assert_eq!(owner.submit("/account", "/logout", &[]).await.status, 303);
    assert_eq!(owner.login(ADMIN_EMAIL, NEW_PASSWORD).await.status, 303);
    assert_eq!(app.count(ALERTS), 2);
}

#[actix_web::test]
async fn new_signin_emails_can_be_turned_off_and_on_again() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let page = admin.get("/account").await;
    assert!(
        page.body
            .contains("id=\"signin_alerts\" name=\"signin_alerts\" value=\"on\" checked")
    );

    // The form without the box ticked turns them off.
    let off = admin
        .submit("/account", "/account/signin-alerts", &[])
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
    let page = admin.get("/account").await;
    assert!(page.body.contains("New sign-in emails are off."));
    assert!(!page.body.contains("value=\"on\" checked"));
    assert_eq!(
        app.count("audit_events WHERE action = 'account.signin_alerts_changed'"),
        1
    );
    // Posting the same setting again changes and records nothing.
    admin
        .submit("/account", "/account/signin-alerts", &[])
        .await;
    assert_eq!(
        app.count("audit_events WHERE action = 'account.signin_alerts_changed'"),
        1
    );

    signed_in_as_admin(&app, CHROME_LINUX).await;
    assert_eq!(app.count(ALERTS), 0, "turned off: no email");

    let on = admin
        .submit(
            "/account",
            "/account/signin-alerts",
            &[("signin_alerts", "on")],
        )
        .await;
    assert_eq!(on.status, 303);
    assert_eq!(
        app.count("audit_events WHERE action = 'account.signin_alerts_changed'"),
        2
    );
    signed_in_as_admin(&app, FIREFOX_WINDOWS).await;
    assert_eq!(app.count(ALERTS), 1, "on again: email");
}

#[actix_web::test]
async fn the_platform_admin_ends_every_session_of_a_person() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob_id = app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);
    let first = app.member_browser("bob@example.com").await;
    let second = app.member_browser("bob@example.com").await;
    assert_eq!(session_rows(&first.get("/account").await.body).len(), 2);

    let path = format!("/admin/users/{bob_id}");
    let done = admin
        .submit(&path, &format!("{path}/sessions/end"), &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(first.get("/account").await.status, 303);
    assert_eq!(second.get("/account").await.status, 303);
    assert_eq!(
        admin.get("/account").await.status,
        200,
        "the admin's own stay"
    );
}

#[actix_web::test]
async fn a_new_browser_finishing_the_two_factor_step_gets_the_email_too() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let (_secret, codes) = crate::two_factor::enrol(&admin).await;
    let before = app.count(ALERTS);

    let chrome = browser_as(&app, CHROME_LINUX);
    let first = chrome.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(first.status, 303);
    assert_eq!(first.location.as_deref(), Some("/login/2fa"));
    assert_eq!(app.count(ALERTS), before, "not before the second step");
    let done = chrome
        .submit("/login/2fa", "/login/2fa", &[("code", codes[0].as_str())])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(chrome.get("/account").await.status, 200);
    assert_eq!(app.count(ALERTS), before + 1);
}

/// A session signed in before sessions named their password stays signed in after the
/// upgrade, and is given the digest on its next request.
#[actix_web::test]
async fn a_session_from_before_sessions_named_their_password_stays_signed_in() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let rows = || -> Vec<(String, String)> {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        sessions::table
            .filter(sessions::user_id.is_not_null())
            .select((sessions::id, sessions::data))
            .load(conn)
            .unwrap()
    };
    for (id, data) in rows() {
        let mut state: std::collections::HashMap<String, String> =
            serde_json::from_str(&data).unwrap();
        assert!(state.remove("cred").is_some(), "{data}");
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        diesel::update(sessions::table.find(id))
            .set(sessions::data.eq(serde_json::to_string(&state).unwrap()))
            .execute(conn)
            .unwrap();
    }

    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
    assert!(
        rows().iter().all(|(_, data)| data.contains("\"cred\"")),
        "{:?}",
        rows()
    );
}

/// A shared browser: whoever signs in next must not inherit what the session held for the
/// one before, such as the two-factor key they were shown (which would let the first
/// person read the second's codes), or the first one's forms and links.
#[actix_web::test]
async fn signing_in_as_another_account_keeps_nothing_of_the_one_before() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);
    let admins = browser.get("/account/2fa").await;
    assert_eq!(admins.status, 200, "{}", admins.body);
    let admins_key = crate::two_factor::secret_on(&admins.body);

    let signed_in = browser
        .post(
            "/login",
            &[
                ("csrf_token", admins.csrf()),
                ("email", "bob@example.com".into()),
                ("password", MEMBER_PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let bobs = browser.get("/account/2fa").await;
    assert_eq!(bobs.status, 200, "{}", bobs.body);
    assert!(bobs.body.contains("bob@example.com"), "{}", bobs.body);
    assert_ne!(crate::two_factor::secret_on(&bobs.body), admins_key);
}

/// "Sign out everywhere else" could not reach a copy of this very browser's cookie (taken
/// from it, say): this browser now gets a new key, so the copy dies, while the browser
/// stays signed in and keeps its sign-in time, and with it its absolute limit.
#[actix_web::test]
async fn sign_out_everywhere_else_ends_a_copy_of_this_browsers_cookie() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let chrome = signed_in_as_admin(&app, CHROME_LINUX).await;
    let copied = chrome.session_cookie().expect("a session cookie");
    let page = chrome.get("/account").await;
    let (id, _, _) = session_rows(&page.body)
        .into_iter()
        .find(|(_, current, _)| *current)
        .expect("this browser's row");
    let born = |id: &str| -> Option<chrono::NaiveDateTime> {
        sessions::table
            .find(id)
            .select(sessions::created_at)
            .first(&mut *app.conn() as &mut DbConnection)
            .optional()
            .unwrap()
    };
    let signed_in_at = born(&id).expect("this browser's session");
    assert_eq!(
        get_with_cookie(&app.url("/account"), &copied).await.status,
        200
    );

    let done = chrome
        .submit("/account", "/account/sessions/end-others", &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let copy = get_with_cookie(&app.url("/account"), &copied).await;
    assert_eq!(copy.status, 303, "the copy still works: {}", copy.body);
    let page = chrome.get("/account").await;
    assert_eq!(page.status, 200);
    let rows = session_rows(&page.body);
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].0, id, "a new key, so a new row");
    assert_eq!(
        born(&rows[0].0),
        Some(signed_in_at),
        "the sign-in time is kept"
    );
    assert_eq!(born(&id), None);
}

/// Switching sign-in emails off and on, again and again, mails a quarter hour's share of
/// notices, not one each time: the outbox that everyone's invitations and resets wait in
/// stays clear. Every change is still audited, and other kinds of notice keep their share.
#[actix_web::test]
async fn switching_sign_in_emails_off_and_on_mails_a_bounded_number_of_notices() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let mailed = format!("email_outbox WHERE to_addr = '{ADMIN_EMAIL}'");
    let before = app.count(&mailed);
    for _ in 0..8 {
        let off = admin
            .submit("/account", "/account/signin-alerts", &[])
            .await;
        assert_eq!(off.status, 303, "{}", off.body);
        let on = admin
            .submit(
                "/account",
                "/account/signin-alerts",
                &[("signin_alerts", "on")],
            )
            .await;
        assert_eq!(on.status, 303, "{}", on.body);
    }
    assert_eq!(
        app.count("audit_events WHERE action = 'account.signin_alerts_changed'"),
        16
    );
    assert_eq!(
        app.count(&mailed) - before,
        portcullis::domain::notices::NOTICES_PER_QUARTER_HOUR
    );
    // The switches spent their own kind's share only: a sign-in from a new browser that
    // follows is still told.
    signed_in_as_admin(&app, CHROME_LINUX).await;
    assert_eq!(app.count(ALERTS), 1);
}
