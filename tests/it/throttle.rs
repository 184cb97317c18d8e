//! Sign-in throttling under attack (issue 10, findings 2, 6 and 7): parallel guesses are
//! counted before any hash, the owner's browser is not locked out by strangers, and
//! throttled requests do not flood the audit trail.

use futures_util::future::join_all;

use crate::helpers::*;

const WRONG: &str = "wrong password!";

/// `n` separate browsers, each with its own session and the CSRF token of its own
/// sign-in form, ready to post at once.
async fn browsers_with_tokens(app: &TestApp, n: usize) -> Vec<(Browser, String)> {
    let mut ready = Vec::with_capacity(n);
    for _ in 0..n {
        let browser = app.client();
        let token = browser.get("/login").await.csrf();
        ready.push((browser, token));
    }
    ready
}

async fn post_login(browser: &Browser, token: &str, email: &str, password: &str) -> u16 {
    browser
        .post(
            "/login",
            &[
                ("csrf_token", token.to_string()),
                ("email", email.to_string()),
                ("password", password.to_string()),
            ],
        )
        .await
        .status
}

fn tally(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Several HTTP workers, so the requests are handled in parallel on the server too.
async fn parallel_app(per_account: i64, per_address: i64) -> TestApp {
    spawn_app_with(|s| {
        s.workers = Some(4);
        s.db_pool_size = Some(8);
        s.login_max_failures_per_account = per_account;
        s.login_max_failures_per_address = per_address;
    })
    .await
}

#[actix_web::test]
async fn parallel_wrong_passwords_for_one_account_check_at_most_its_limit() {
    let app = parallel_app(5, 20).await;
    app.setup_admin().await;
    let attackers = browsers_with_tokens(&app, 40).await;

    let statuses: Vec<u16> = join_all(
        attackers
            .iter()
            .map(|(browser, token)| post_login(browser, token, ADMIN_EMAIL, WRONG)),
    )
    .await;

    let checked = tally(&statuses, 401);
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    assert_eq!(checked + tally(&statuses, 429), 40, "{statuses:?}");
    assert!(
        app.count("audit_events WHERE action = 'auth.login_failed'") <= 5,
        "no more failures were checked than the limit"
    );
    // The right password is not even checked now.
    let owner = app.client();
    assert_eq!(owner.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 429);
}

#[actix_web::test]
async fn parallel_wrong_passwords_from_one_address_check_at_most_its_limit() {
    let app = parallel_app(5, 20).await;
    app.setup_admin().await;
    let attackers = browsers_with_tokens(&app, 48).await;

    let statuses: Vec<u16> = join_all(attackers.iter().enumerate().map(|(i, (browser, token))| {
        let email = format!("guess{i}@example.com");
        async move { post_login(browser, token, &email, WRONG).await }
    }))
    .await;

    let checked = tally(&statuses, 401);
    assert!(checked <= 20, "{checked} passwords checked: {statuses:?}");
    assert_eq!(checked + tally(&statuses, 429), 48, "{statuses:?}");
    assert_eq!(
        app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        429
    );
}

#[actix_web::test]
async fn parallel_guesses_of_the_current_password_check_at_most_the_limit() {
    let app = parallel_app(5, 20).await;
    let me = app.setup_admin().await;
    let token = me.get("/account").await.csrf();
    let change = |current: &'static str| {
        let (me, token) = (me.clone(), token.clone());
        async move {
            me.post(
                "/account/password",
                &[
                    ("csrf_token", token),
                    ("current_password", current.to_string()),
                    ("password", "a brand new password".to_string()),
                    ("password_confirm", "a brand new password".to_string()),
                ],
            )
            .await
        }
    };

    let pages = join_all((0..32).map(|_| change("a wrong guess"))).await;
    let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
    let checked = tally(&statuses, 422);
    assert!(checked <= 5, "{checked} guesses checked: {statuses:?}");
    assert_eq!(checked + tally(&statuses, 429), 32, "{statuses:?}");
    assert!(
        pages
            .iter()
            .filter(|p| p.status == 422)
            .all(|p| p.body.contains("That is not your current password."))
    );

    assert_eq!(change(ADMIN_PASSWORD).await.status, 429);
    assert_eq!(
        app.count("audit_events WHERE action = 'account.password_changed'"),
        0
    );
}

#[actix_web::test]
async fn a_browser_that_signed_in_before_is_not_locked_out_by_strangers() {
    let app = spawn_app().await;
    app.setup_admin().await;
    app.add_member("my-org", "bob@example.com", "Bob", "B", "member", true);

    // The owner signs in from their browser, which keeps a device cookie, and leaves.
    let owner = app.client();
    let signed_in = owner.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(signed_in.status, 303);
    let set_cookie: Vec<&str> = signed_in
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("portcullis_device="))
        .collect();
    assert_eq!(set_cookie.len(), 1, "{set_cookie:?}");
    assert!(set_cookie[0].contains("HttpOnly"), "{}", set_cookie[0]);
    let out = owner.submit("/account", "/logout", &[]).await;
    assert_eq!(out.status, 303);

    // Bob's browser holds a device cookie too, for his own account.
    let bob = app.member_browser("bob@example.com").await;
    assert_eq!(bob.submit("/account", "/logout", &[]).await.status, 303);

    // A stranger uses up the account's allowance.
    let stranger = app.client();
    for _ in 0..5 {
        assert_eq!(stranger.login(ADMIN_EMAIL, WRONG).await.status, 401);
    }
    assert_eq!(
        stranger.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        429
    );

    // The owner's browser still signs in; a fresh one does not, nor Bob's, nor one whose
    // device cookie was tampered with.
    assert_eq!(owner.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
    assert_eq!(
        app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        429
    );
    assert_eq!(bob.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 429);
    // Bob's genuine cookie, rewritten to name the admin: the signature no longer holds.
    let url: reqwest::Url = app.address.parse().unwrap();
    let bobs = reqwest::cookie::CookieStore::cookies(&*bob.jar, &url).unwrap();
    let bobs = bobs
        .to_str()
        .unwrap()
        .split("; ")
        .find(|c| c.starts_with("portcullis_device="))
        .expect("Bob's browser keeps a device cookie")
        .to_string();
    let bob_id = app.user_id("bob@example.com");
    assert!(bobs.contains(&bob_id), "{bobs}");
    let forger = app.client();
    let admin_id = app.user_id(ADMIN_EMAIL);
    forger.jar.add_cookie_str(
        &format!("{}; Path=/", bobs.replace(&bob_id, &admin_id)),
        &url,
    );
    let forged = forger.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(forged.status, 429);

    // The owner's browser has a limit of its own: guessing from it is throttled too.
    assert_eq!(owner.submit("/account", "/logout", &[]).await.status, 303);
    for _ in 0..5 {
        assert_eq!(owner.login(ADMIN_EMAIL, WRONG).await.status, 401);
    }
    assert_eq!(owner.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 429);
}

/// While a stolen password worked, its thief signed in from many browsers and kept each
/// one's device cookie. Once the owner changes the password, those cookies give the thief
/// no guesses of their own: guessing counts against the account, as a stranger's would,
/// while the owner's browser, which changed it, keeps its allowance.
#[actix_web::test]
async fn device_cookies_from_before_a_password_change_spare_no_guesses() {
    const NEW_PASSWORD: &str = "a brand new passphrase";
    let app = spawn_app().await;
    let owner = app.setup_admin().await;
    let thief = app.client();
    assert_eq!(thief.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
    let changed = owner.change_password(ADMIN_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, 303, "{}", changed.body);

    for _ in 0..5 {
        assert_eq!(thief.login(ADMIN_EMAIL, WRONG).await.status, 401);
    }
    assert_eq!(
        app.client().login(ADMIN_EMAIL, NEW_PASSWORD).await.status,
        429,
        "the thief's guesses used up the account's allowance"
    );
    assert_eq!(owner.submit("/account", "/logout", &[]).await.status, 303);
    assert_eq!(owner.login(ADMIN_EMAIL, NEW_PASSWORD).await.status, 303);
}

#[actix_web::test]
async fn throttled_sign_ins_are_aggregated_in_the_audit_trail() {
    let app = spawn_app_with(|s| {
        s.login_max_failures_per_account = 2;
        s.login_max_failures_per_address = 1000;
    })
    .await;
    app.setup_admin().await;
    let browser = app.client();
    let token = browser.get("/login").await.csrf();
    for _ in 0..2 {
        assert_eq!(post_login(&browser, &token, ADMIN_EMAIL, WRONG).await, 401);
    }

    for _ in 0..10 {
        let statuses =
            join_all((0..20).map(|_| post_login(&browser, &token, ADMIN_EMAIL, WRONG))).await;
        assert!(statuses.iter().all(|s| *s == 429), "{statuses:?}");
    }

    let events = app.count("audit_events WHERE action = 'auth.login_throttled'");
    assert!(
        (1..=2).contains(&events),
        "{events} events for 200 refusals"
    );
    assert_eq!(
        app.count(
            "audit_events WHERE action = 'auth.login_throttled' \
             AND details LIKE '%\"limit\":\"account\"%' AND details LIKE '%window_ends_at%'"
        ),
        1
    );
    // The running count is kept in the throttle table.
    let (account_refusals, _) =
        portcullis::auth::throttle::refused_so_far(&mut app.conn(), ADMIN_EMAIL, "127.0.0.1")
            .unwrap();
    assert_eq!(account_refusals, 200);
}

#[actix_web::test]
async fn throttling_by_address_is_aggregated_too() {
    let app = spawn_app_with(|s| s.login_max_failures_per_address = 3).await;
    app.setup_admin().await;
    let browser = app.client();
    let token = browser.get("/login").await.csrf();
    for i in 0..3 {
        let email = format!("guess{i}@example.com");
        assert_eq!(post_login(&browser, &token, &email, WRONG).await, 401);
    }
    let statuses = join_all((0..100).map(|i| {
        let (browser, token) = (browser.clone(), token.clone());
        async move {
            let email = format!("rotated{i}@example.com");
            post_login(&browser, &token, &email, WRONG).await
        }
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == 429), "{statuses:?}");
    assert!(app.count("audit_events WHERE action = 'auth.login_throttled'") <= 2);
    assert_eq!(
        app.count("audit_events WHERE action = 'auth.login_failed'"),
        3
    );
}

/// A flood of sign-ins (issue 12, item 5): with every hashing slot busy and no room left
/// in the queue, the next sign-in is turned away at once, 503 with `Retry-After` and a
/// page that says why, instead of waiting behind the flood; once a slot frees up, the
/// same form signs in.
#[actix_web::test]
async fn a_sign_in_beyond_the_hashing_queue_is_turned_away_at_once() {
    let OneSlotHeld {
        app: _app,
        hold,
        owner,
        owner_token,
        held,
    } = one_slot_held(|_| {}).await;
    let refused = owner
        .post(
            "/login",
            &[
                ("csrf_token", owner_token.clone()),
                ("email", ADMIN_EMAIL.to_string()),
                ("password", ADMIN_PASSWORD.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(
        refused
            .body
            .contains("Too many sign-ins are being checked right now"),
        "{}",
        refused.body
    );

    hold.release();
    assert_eq!(held.await.expect("the held sign-in ends"), 401);
    assert_eq!(
        post_login(&owner, &owner_token, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        303
    );
}

/// An app with one hashing slot and no queue, the slot held (`HashHold`) by a stranger's
/// wrong sign-in: every other password check finds the queue full until `hold` releases.
struct OneSlotHeld {
    app: TestApp,
    hold: portcullis::config::HashHold,
    owner: Browser,
    owner_token: String,
    /// The stranger's sign-in; answers its status once released.
    held: tokio::task::JoinHandle<u16>,
}

async fn one_slot_held(configure: impl FnOnce(&mut portcullis::config::Settings)) -> OneSlotHeld {
    let hold = portcullis::config::HashHold::adjustable();
    let app = spawn_app_with(|s| {
        s.hash_slots = Some(1);
        s.hash_queue = 0;
        s.hash_hold = hold.clone();
        configure(s);
    })
    .await;
    app.setup_admin().await;
    let mut browsers = browsers_with_tokens(&app, 2).await;
    let (owner, owner_token) = browsers.pop().expect("two browsers");
    let (stranger, stranger_token) = browsers.pop().expect("two browsers");
    hold.engage();
    let held = actix_web::rt::spawn(async move {
        post_login(&stranger, &stranger_token, "guess@example.com", WRONG).await
    });
    hold.until_held(1).await;
    OneSlotHeld {
        app,
        hold,
        owner,
        owner_token,
        held,
    }
}

/// Sign-ins turned away because every hashing place is taken had no password checked, so
/// they count against no limit: a flood that fills the queue cannot also use its
/// refusals to lock the owner out. They are turned away before any count is written, so
/// each costs the database nothing while a flood keeps the queue full.
#[actix_web::test]
async fn sign_ins_turned_away_by_a_full_hashing_queue_count_against_no_limit() {
    let OneSlotHeld {
        app,
        hold,
        owner,
        owner_token,
        held,
    } = one_slot_held(|s| {
        s.login_max_failures_per_account = 2;
        s.login_max_failures_per_address = 3;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            post_login(&owner, &owner_token, ADMIN_EMAIL, WRONG).await,
            503
        );
    }
    let account = format!("login_attempts WHERE key = 'account:{ADMIN_EMAIL}'");
    assert_eq!(
        app.count(&account),
        0,
        "turned away before the attempt was counted, the database was not written"
    );
    hold.release();
    assert_eq!(held.await.expect("the held sign-in ends"), 401);

    // Counted so far: the held guess, once against the address. Had the five refusals
    // counted, both the account's limit and the address's would be spent.
    assert_eq!(
        post_login(&owner, &owner_token, ADMIN_EMAIL, WRONG).await,
        401
    );
    assert_eq!(
        post_login(&owner, &owner_token, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        303
    );
}

/// A member signing in again and again with their own, right, password spends a hash
/// each time, as a guess does, and would keep the hashing queue full for everyone: past
/// the window's number of right passwords from browsers without the account's device
/// cookie, such sign-ins are turned away before any hash, a right password as a wrong
/// one. The owner's own browser, holding its device cookie, has a share of its own:
/// someone who phished the password cannot spend it.
#[actix_web::test]
async fn right_passwords_are_bounded_per_account_too() {
    use portcullis::auth::throttle::RIGHT_PASSWORDS_PER_WINDOW;
    let app = spawn_app().await;
    app.setup_admin().await;
    let owner = app.client();
    assert_eq!(owner.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
    assert_eq!(owner.submit("/account", "/logout", &[]).await.status, 303);
    let succeeded = "audit_events WHERE action = 'auth.login_succeeded'";
    let before = app.count(succeeded);
    for _ in before..RIGHT_PASSWORDS_PER_WINDOW {
        let page = app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(page.status, 303, "{}", page.body);
    }
    for password in [ADMIN_PASSWORD, WRONG] {
        let turned_away = app.client().login(ADMIN_EMAIL, password).await;
        assert_eq!(turned_away.status, 429, "{}", turned_away.body);
    }
    assert_eq!(app.count(succeeded), RIGHT_PASSWORDS_PER_WINDOW);
    assert_eq!(
        app.count("audit_events WHERE action = 'auth.login_throttled' AND details LIKE '%right_passwords%'"),
        1
    );
    assert_eq!(owner.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 303);
}
