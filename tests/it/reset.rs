//! Forgotten passwords (issue 14, item 1): `/forgot-password` and `/reset/{token}`.
//! Enumeration, replay, expiry, sessions ended, not signed in afterwards, the notification
//! email, the audit events, throttling, and links built from the public URL.

use chrono::Duration;
use diesel::prelude::*;
use portcullis::db::schema::{audit_events, password_resets};
use portcullis::db::{self, DbConnection};

use crate::browser::{all_mail_to, mailed_to};
use crate::helpers::*;
use portcullis::domain::password_reset::Asker;

const RESET_SUBJECT: &str = "Reset your Portcullis password";
const CHANGED_SUBJECT: &str = "Your Portcullis password was changed";
const NEW_PASSWORD: &str = "a brand new long password";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

/// Asks for a reset link for `email` from a fresh anonymous browser.
async fn ask(app: &TestApp, email: &str) -> Page {
    ask_from(&app.client(), email).await
}

async fn ask_from(browser: &Browser, email: &str) -> Page {
    browser
        .submit("/forgot-password", "/forgot-password", &[("email", email)])
        .await
}

/// A browser the admin signed in on, then out of: it keeps the device cookie the sign-in
/// left, as the owner's own computer would.
async fn owners_browser(app: &TestApp) -> Browser {
    let owners = app.client();
    assert_eq!(owners.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
    let page = owners.get("/account").await;
    let out = owners.post("/logout", &[("csrf_token", page.csrf())]).await;
    assert_eq!(out.status, 303);
    owners
}

/// The emails to `to` with this subject, oldest first (the .eml files the portal wrote).
fn mails(app: &TestApp, to: &str, subject: &str) -> Vec<crate::smtp::Received> {
    all_mail_to(app, to)
        .into_iter()
        .filter(|m| m.header("Subject").as_deref() == Some(subject))
        .collect()
}

/// The path of the newest reset link mailed to `to`.
async fn reset_path(app: &TestApp, to: &str) -> String {
    let mail = mailed_to(app, to).await.expect("a reset email");
    assert_eq!(mail.header("Subject").as_deref(), Some(RESET_SUBJECT));
    mail.link_path("/reset/").expect("the email has a link")
}

/// Waits until the outbox has sent everything (the worker polls every 200 ms in tests).
async fn outbox_drained(app: &TestApp) {
    app.reset_requests_handled().await;
    for _ in 0..100 {
        if app.count("email_outbox WHERE sent_at IS NULL") == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the outbox did not drain");
}

fn disable(app: &TestApp, email: &str) {
    let id = app.user_id(email);
    portcullis::db::users::set_status(&mut app.conn(), &id, "disabled").unwrap();
}

fn actions(app: &TestApp) -> Vec<(String, Option<String>, Option<String>, String)> {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    audit_events::table
        .order(audit_events::created_at.asc())
        .select((
            audit_events::action,
            audit_events::actor_email,
            audit_events::target_label,
            audit_events::details,
        ))
        .load(conn)
        .unwrap()
}

/// The sent page, with the address the person typed taken out.
fn normalized(page: &Page, typed: &str) -> String {
    page.body.replace(typed, "ADDRESS")
}

#[actix_web::test]
async fn the_same_page_answers_for_known_unknown_and_disabled_addresses() {
    let app = spawn_app().await;
    app.setup_admin().await;
    app.add_member("my-org", BOB, "Bob", "Builder", "member", true);
    app.add_member("my-org", CAROL, "Carol", "Closed", "member", true);
    disable(&app, CAROL);

    // The sign-in page leads here.
    let login = app.client().get("/login").await;
    assert!(login.body.contains("href=\"/forgot-password\""));
    assert!(login.body.contains("Forgot your password?"));

    let known = ask(&app, BOB).await;
    let unknown = ask(&app, "nobody@example.com").await;
    let disabled = ask(&app, CAROL).await;
    for page in [&known, &unknown, &disabled] {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("Check your email"), "{}", page.body);
    }
    assert_eq!(
        normalized(&known, BOB),
        normalized(&unknown, "nobody@example.com")
    );
    assert_eq!(normalized(&known, BOB), normalized(&disabled, CAROL));

    // Only the real, active account got an email; an event says so, with no token.
    let path = reset_path(&app, BOB).await;
    outbox_drained(&app).await;
    assert_eq!(mails(&app, BOB, RESET_SUBJECT).len(), 1);
    assert!(all_mail_to(&app, "nobody@example.com").is_empty());
    assert!(all_mail_to(&app, CAROL).is_empty());
    let token = path.trim_start_matches("/reset/");
    let requested: Vec<_> = actions(&app)
        .into_iter()
        .filter(|(a, ..)| a == "auth.password_reset_requested")
        .collect();
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(requested[0].2.as_deref(), Some(BOB));
    assert!(!requested[0].3.contains(token));

    // Not an address at all: the field says so (this reveals nothing about accounts).
    let junk = ask(&app, "not an address").await;
    assert_eq!(junk.status, 422);
}

#[actix_web::test]
async fn a_reset_ends_every_session_signs_nobody_in_and_works_once() {
    let app = spawn_app().await;
    let signed_in_elsewhere = app.setup_admin().await;
    assert_eq!(signed_in_elsewhere.get("/orgs").await.status, 303); // -> the one org

    let asked = ask(&app, ADMIN_EMAIL).await;
    assert_eq!(asked.status, 200);
    let path = reset_path(&app, ADMIN_EMAIL).await;
    let token = path.trim_start_matches("/reset/").to_string();
    assert_eq!(token.len(), 43, "32 bytes, base64url");
    // Only the hash is stored.
    let stored: Vec<String> = {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        password_resets::table
            .select(password_resets::token_hash)
            .load(conn)
            .unwrap()
    };
    assert_eq!(stored, vec![portcullis::domain::tokens::hash(&token)]);

    let browser = app.client();
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(form.headers["referrer-policy"], "strict-origin");
    assert_eq!(form.headers["cache-control"], "no-store");
    assert!(form.body.contains(ADMIN_EMAIL));

    // A mismatch re-renders the form; the link still works.
    let csrf = form.csrf();
    let mismatch = browser
        .post(
            &path,
            &[
                ("csrf_token", csrf.clone()),
                ("password", NEW_PASSWORD.into()),
                ("password_confirm", "something else entirely".into()),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 422);
    assert_eq!(mismatch.headers["cache-control"], "no-store");

    let done = browser
        .post(
            &path,
            &[
                ("csrf_token", csrf.clone()),
                ("password", NEW_PASSWORD.into()),
                ("password_confirm", NEW_PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/login"));
    let login = browser.get("/login").await;
    assert_eq!(login.status, 200, "not signed in: the sign-in page shows");
    assert!(login.body.contains("Sign in with your new password"));
    let orgs = browser.get("/orgs").await;
    assert_eq!(orgs.status, 303);
    assert!(orgs.location.unwrap().starts_with("/login"));

    // The other browser was signed out.
    let elsewhere = signed_in_elsewhere.get("/orgs").await;
    assert_eq!(elsewhere.status, 303);
    assert!(elsewhere.location.unwrap().starts_with("/login"));
    assert_eq!(
        app.count(&format!(
            "sessions WHERE user_id = '{}'",
            app.user_id(ADMIN_EMAIL)
        )),
        0
    );

    // Replay: the used link is dead, by GET and by POST.
    let replay = browser.get(&path).await;
    assert_eq!(replay.status, 404);
    assert_eq!(replay.headers["cache-control"], "no-store");
    let csrf = browser.get("/login").await.csrf();
    let replay = browser
        .post(
            &path,
            &[
                ("csrf_token", csrf),
                ("password", "yet another password".into()),
                ("password_confirm", "yet another password".into()),
            ],
        )
        .await;
    assert_eq!(replay.status, 404);

    // The old password fails, the new one works.
    assert_eq!(
        app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        401
    );
    assert_eq!(
        app.client().login(ADMIN_EMAIL, NEW_PASSWORD).await.status,
        303
    );

    // The owner is told, and the trail has the event, without the token.
    outbox_drained(&app).await;
    let changed = mails(&app, ADMIN_EMAIL, CHANGED_SUBJECT);
    assert_eq!(changed.len(), 1);
    assert!(changed[0].decoded().contains("/forgot-password"));
    assert!(!changed[0].decoded().contains(&token));
    let trail = actions(&app);
    let reset: Vec<_> = trail
        .iter()
        .filter(|(a, ..)| a == "auth.password_reset")
        .collect();
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0].1.as_deref(), Some(ADMIN_EMAIL));
    assert!(
        reset[0].3.contains("\"sessions_ended\":1"),
        "{}",
        reset[0].3
    );
    for (_, _, label, details) in &trail {
        let all = format!("{details} {}", label.clone().unwrap_or_default());
        assert!(!all.contains(&token), "{all}");
        assert!(!all.contains(NEW_PASSWORD), "{all}");
    }
}

#[actix_web::test]
async fn an_expired_link_is_dead_and_only_the_newest_link_works() {
    let app = spawn_app().await;
    app.setup_admin().await;
    ask(&app, ADMIN_EMAIL).await;
    let first = reset_path(&app, ADMIN_EMAIL).await;
    // Age the link past its 30 minutes.
    {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        diesel::update(password_resets::table)
            .set((
                password_resets::created_at.eq(db::now() - Duration::minutes(31)),
                password_resets::expires_at.eq(db::now() - Duration::minutes(1)),
            ))
            .execute(conn)
            .unwrap();
    }
    let browser = app.client();
    let expired = browser.get(&first).await;
    assert_eq!(expired.status, 404);
    assert!(expired.body.contains("not valid any more"));

    // A new request gives a new link, and a link lasts 30 minutes by default.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    ask(&app, ADMIN_EMAIL).await;
    outbox_drained(&app).await;
    let mails = mails(&app, ADMIN_EMAIL, RESET_SUBJECT);
    assert_eq!(mails.len(), 2);
    let second = mails[1].link_path("/reset/").unwrap();
    assert_ne!(first, second);
    assert_eq!(browser.get(&second).await.status, 200);
    let (created, expires): (chrono::NaiveDateTime, chrono::NaiveDateTime) = {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        password_resets::table
            .filter(password_resets::used_at.is_null())
            .select((password_resets::created_at, password_resets::expires_at))
            .first(conn)
            .unwrap()
    };
    assert_eq!(expires - created, Duration::minutes(30));
}

/// Strangers who use up an account's reset requests must not block its owner: a browser
/// the owner signed in on counts under its own key, as it does for signing in.
#[actix_web::test]
async fn the_owners_browser_asks_past_strangers_using_up_the_accounts_requests() {
    let app = spawn_app_with(|s| {
        s.login_max_failures_per_account = 2;
        s.login_max_failures_per_address = 10;
    })
    .await;
    app.setup_admin().await;
    let owners = owners_browser(&app).await;
    for _ in 0..2 {
        assert_eq!(ask(&app, ADMIN_EMAIL).await.status, 200);
    }
    assert_eq!(ask(&app, ADMIN_EMAIL).await.status, 429);
    let asked = ask_from(&owners, ADMIN_EMAIL).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    // The owner's cookie speaks for their own account only.
    assert_eq!(ask_from(&owners, "ghost@example.com").await.status, 200);
    outbox_drained(&app).await;
    assert_eq!(mails(&app, ADMIN_EMAIL, RESET_SUBJECT).len(), 3);
}

#[actix_web::test]
async fn requests_are_throttled_per_account_and_per_address() {
    let app = spawn_app_with(|s| {
        s.login_max_failures_per_account = 2;
        s.login_max_failures_per_address = 5;
    })
    .await;
    app.setup_admin().await;
    for _ in 0..2 {
        assert_eq!(ask(&app, ADMIN_EMAIL).await.status, 200);
    }
    let refused = ask(&app, ADMIN_EMAIL).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.body.contains("Too many password reset requests"));
    // The same for an address without an account: the limit says nothing about accounts.
    for _ in 0..2 {
        assert_eq!(ask(&app, "ghost@example.com").await.status, 200);
    }
    assert_eq!(ask(&app, "ghost@example.com").await.status, 429);
    // Four counted from this client address (refusals give theirs back): one more, then
    // the next is refused whatever it names.
    assert_eq!(ask(&app, "someone.else@example.com").await.status, 200);
    let by_address = ask(&app, "third@example.com").await;
    assert_eq!(by_address.status, 429);
    outbox_drained(&app).await;
    assert_eq!(mails(&app, ADMIN_EMAIL, RESET_SUBJECT).len(), 2);
    // Sign-in has counters of its own.
    assert_eq!(
        app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        303
    );
}

#[actix_web::test]
async fn the_link_is_built_from_the_public_url_not_the_host_header() {
    let app =
        spawn_app_with(|s| s.public_url = Some("http://portal.example.test:8443/".into())).await;
    app.setup_admin().await;
    let browser = app.client();
    let form = browser.get("/forgot-password").await;
    let response = browser
        .client
        .post(app.url("/forgot-password"))
        .header(reqwest::header::HOST, "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .form(&[("csrf_token", form.csrf()), ("email", ADMIN_EMAIL.into())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mail = mailed_to(&app, ADMIN_EMAIL).await.unwrap();
    let text = mail.decoded();
    assert!(
        text.contains("http://portal.example.test:8443/reset/"),
        "{text}"
    );
    assert!(!text.contains("evil.example"), "{text}");
}

#[actix_web::test]
async fn throttled_requests_are_aggregated_in_the_audit_trail() {
    let app = spawn_app_with(|s| {
        s.login_max_failures_per_account = 2;
        s.login_max_failures_per_address = 50;
    })
    .await;
    app.setup_admin().await;
    for _ in 0..2 {
        assert_eq!(ask(&app, ADMIN_EMAIL).await.status, 200);
    }
    for _ in 0..20 {
        assert_eq!(ask(&app, ADMIN_EMAIL).await.status, 429);
    }
    // Twenty refusals, one event: the first of the window, naming the limit.
    let throttled: Vec<_> = actions(&app)
        .into_iter()
        .filter(|(a, ..)| a == "auth.password_reset_throttled")
        .collect();
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0].1, None, "nobody is signed in");
    assert_eq!(throttled[0].2.as_deref(), Some(ADMIN_EMAIL));
    assert!(
        throttled[0].3.contains("\"limit\":\"account\""),
        "{}",
        throttled[0].3
    );
    assert!(throttled[0].3.contains("window_ends_at"));
    // The rest are counted in the throttle table.
    assert_eq!(
        app.count("login_attempts WHERE key = 'reset:account:admin@example.com' AND refused = 20"),
        1
    );
    // An address without an account is throttled and recorded alike: the trail, like
    // the page, does not tell the two apart.
    for _ in 0..2 {
        assert_eq!(ask(&app, "ghost@example.com").await.status, 200);
    }
    for _ in 0..3 {
        assert_eq!(ask(&app, "ghost@example.com").await.status, 429);
    }
    let labels: Vec<_> = actions(&app)
        .into_iter()
        .filter(|(a, ..)| a == "auth.password_reset_throttled")
        .filter_map(|(_, _, label, _)| label)
        .collect();
    assert_eq!(labels, vec![ADMIN_EMAIL, "ghost@example.com"]);
}

#[actix_web::test]
async fn housekeeping_deletes_expired_and_used_reset_links() {
    use portcullis::db::password_resets::{self as links, NewPasswordReset};
    let app = spawn_app().await;
    app.setup_admin().await;
    let user_id = app.user_id(ADMIN_EMAIL);
    let now = db::now();
    {
        let mut conn = app.conn();
        for (hash, expires) in [
            ("live", now + Duration::minutes(20)),
            ("expired", now - Duration::minutes(1)),
            ("used", now + Duration::minutes(20)),
        ] {
            let row = NewPasswordReset {
                token_hash: hash,
                user_id: &user_id,
                created_at: now - Duration::minutes(10),
                expires_at: expires,
            };
            links::insert(&mut conn, &row).unwrap();
        }
        assert!(links::consume(&mut conn, "used", now).unwrap());
    }
    assert_eq!(app.count("password_resets"), 3);
    // Housekeeping runs when an instance starts, then every ten minutes.
    let _restarted = app.restart().await;
    for _ in 0..100 {
        if app.count("password_resets") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.count("password_resets WHERE token_hash = 'live'"), 1);
    assert_eq!(app.count("password_resets"), 1);
}

/// Someone with the password and a session changes it again and again while the owner
/// resets it from the emailed link. A change that checked the old password before the
/// reset must not overwrite the password the reset set, nor keep its browser signed in.
#[actix_web::test]
async fn a_password_change_racing_a_reset_does_not_undo_it() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let app = spawn_app_with(|s| {
        s.workers = Some(4);
        s.db_pool_size = Some(8);
    })
    .await;
    let thief = app.setup_admin().await;
    assert_eq!(ask(&app, ADMIN_EMAIL).await.status, 200);
    let path = reset_path(&app, ADMIN_EMAIL).await;
    let owner = app.client();
    let csrf = owner.get(&path).await.csrf();
    let stop = AtomicBool::new(false);
    let changes = AtomicUsize::new(0);
    let thief_loop = async {
        let mut current = ADMIN_PASSWORD.to_string();
        let mut next = "the thief's first password".to_string();
        while !stop.load(Ordering::SeqCst) {
            let account = thief.get("/account").await;
            if account.status != 200 {
                break;
            }
            let form = [
                ("csrf_token", account.csrf()),
                ("current_password", current.clone()),
                ("password", next.clone()),
                ("password_confirm", next.clone()),
            ];
            let done = thief.post("/account/password", &form).await;
            if done.location.as_deref() != Some("/account") {
                break;
            }
            changes.fetch_add(1, Ordering::SeqCst);
            std::mem::swap(&mut current, &mut next);
        }
    };
    let owner_resets = async {
        while changes.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let form = [
            ("csrf_token", csrf.clone()),
            ("password", NEW_PASSWORD.to_string()),
            ("password_confirm", NEW_PASSWORD.to_string()),
        ];
        let done = owner.post(&path, &form).await;
        assert_eq!(done.status, 303, "{}", done.body);
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(thief_loop, owner_resets);

    assert_eq!(
        app.client().login(ADMIN_EMAIL, NEW_PASSWORD).await.status,
        303,
        "the reset's password stands"
    );
    assert_eq!(thief.get("/orgs/my-org/users").await.status, 303);
}

#[actix_web::test]
async fn the_browser_that_resets_signs_in_past_a_thiefs_guesses() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let thief = app.client();
    for _ in 0..5 {
        assert_eq!(thief.login(ADMIN_EMAIL, "a wrong guess!").await.status, 401);
    }
    assert_eq!(
        app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        429,
        "the guesses used up the account's allowance"
    );

    ask(&app, ADMIN_EMAIL).await;
    let path = reset_path(&app, ADMIN_EMAIL).await;
    let owner = app.client();
    let done = owner
        .submit(
            &path,
            &path,
            &[
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(owner.login(ADMIN_EMAIL, NEW_PASSWORD).await.status, 303);
    // Only that browser: the thief's allowance stays used up.
    assert_eq!(thief.login(ADMIN_EMAIL, NEW_PASSWORD).await.status, 429);
}

/// A platform admin disables Bob's account (it may have been taken over), then enables
/// it again: a link asked for before does not work after. (A password change keeps the
/// links: whoever changes it knows the password, and the owner's link is how the owner
/// takes the account back, `a_password_change_racing_a_reset_does_not_undo_it`.)
#[actix_web::test]
async fn disabling_an_account_kills_its_reset_links() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member("my-org", BOB, "Bob", "B", "member", true);
    ask(&app, BOB).await;
    let link = reset_path(&app, BOB).await;
    for action in ["disable", "enable"] {
        let done = admin
            .submit("/admin/users", &format!("/admin/users/{bob}/{action}"), &[])
            .await;
        assert_eq!(done.status, 303, "{action}: {}", done.body);
    }

    let stale = app.client().get(&link).await;
    assert_eq!(stale.status, 404, "{}", stale.body);
    assert!(stale.body.contains("not valid any more"));
}

/// Two instances may each take a request for the same account from the queue at once
/// (`SKIP LOCKED` hands them one each). They take turns on the account, so the newer
/// request's clean-up sees the older link and one link lives, as "a newer request kills
/// older links" says; at once, neither saw the other's, and both lived. Rounds of two
/// real transactions on two connections, raced.
#[actix_web::test]
async fn two_requests_handled_at_once_leave_one_live_link() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let user_id = app.user_id(ADMIN_EMAIL);
    for round in 0..10 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (pool, barrier) = (app.pool.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut conn = pool.get().unwrap();
                    let env = portcullis::domain::password_reset::Env {
                        ttl: Duration::minutes(30),
                        public_url: "http://localhost".into(),
                        origin: Default::default(),
                    };
                    barrier.wait();
                    db::write_tx(&mut conn, |conn| {
                        portcullis::domain::password_reset::request(
                            conn,
                            &env,
                            ADMIN_EMAIL,
                            Asker::Anyone,
                        )
                    })
                    .unwrap();
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let live: i64 = password_resets::table
            .filter(password_resets::user_id.eq(&user_id))
            .filter(password_resets::used_at.is_null())
            .count()
            .get_result(&mut *app.conn() as &mut DbConnection)
            .unwrap();
        assert_eq!(live, 1, "round {round}: {live} live links");
    }
}

/// Anyone may ask for anyone's reset, within the throttle (about 480 a day): each mailed
/// the owner and killed the link they had. Past a day's emails, a request changes
/// nothing: no email, and the last link mailed still works.
#[actix_web::test]
async fn a_flood_of_requests_sends_a_days_emails_and_keeps_the_last_link() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let user_id = app.user_id(ADMIN_EMAIL);
    let env = portcullis::domain::password_reset::Env {
        ttl: Duration::minutes(30),
        public_url: "http://localhost".into(),
        origin: Default::default(),
    };
    let cap = portcullis::domain::password_reset::EMAILS_A_DAY;
    let live = |app: &TestApp| -> Vec<String> {
        password_resets::table
            .filter(password_resets::user_id.eq(&user_id))
            .filter(password_resets::used_at.is_null())
            .select(password_resets::token_hash)
            .load(&mut *app.conn() as &mut DbConnection)
            .unwrap()
    };
    let mut last_link = Vec::new();
    for i in 0..cap + 3 {
        let mut conn = app.conn();
        let outcome = db::write_tx(&mut conn, |conn| {
            portcullis::domain::password_reset::request(conn, &env, ADMIN_EMAIL, Asker::Anyone)
        })
        .unwrap();
        drop(conn);
        let sent = matches!(
            outcome,
            portcullis::domain::password_reset::Requested::Sent { .. }
        );
        assert_eq!(sent, i < cap, "request {i}: {outcome:?}");
        if sent {
            last_link = live(&app);
        }
    }
    assert_eq!(live(&app), last_link, "the last link mailed still works");
    assert_eq!(last_link.len(), 1);
    let mailed = || {
        app.count(&format!(
            "email_outbox WHERE to_addr = 'admin@example.com' AND subject = '{RESET_SUBJECT}'"
        ))
    };
    assert_eq!(mailed(), cap);
    // Said once in the trail, however many were turned away.
    assert_eq!(
        app.count("audit_events WHERE action = 'auth.password_reset_capped'"),
        1
    );

    // A stranger's request from the page is still turned away...
    ask(&app, ADMIN_EMAIL).await;
    app.reset_requests_handled().await;
    assert_eq!(mailed(), cap);
    // ...but not the owner's, from a browser they signed in on: the strangers' requests
    // must not keep them from resetting.
    let asked = ask_from(&owners_browser(&app).await, ADMIN_EMAIL).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    app.reset_requests_handled().await;
    assert_eq!(mailed(), cap + 1);
    assert_ne!(live(&app), last_link, "the new link replaces the last one");
}
