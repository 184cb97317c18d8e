//! TOTP two-factor through real HTTP, on whichever database TEST_DATABASE_URL names:
//! enrolment, the second sign-in step (wrong, replayed, drifting codes), recovery codes,
//! throttling, disabling, and what a half-signed-in session may reach.

use diesel::prelude::*;
use portcullis::auth::totp;
use portcullis::db::DbConnection;

use crate::helpers::*;

fn now() -> u64 {
    totp::now()
}

/// Values of `data-...` elements: `<code data-totp-secret>X</code>` or
/// `<li data-recovery-code><code>X</code></li>`.
fn marked_texts(html: &str, marker: &str) -> Vec<String> {
    html.split(marker)
        .skip(1)
        .filter_map(|rest| {
            let rest = &rest[rest.find('>')? + 1..];
            let rest = rest.strip_prefix("<code>").unwrap_or(rest);
            Some(rest[..rest.find('<')?].trim().to_string())
        })
        .collect()
}

/// The key shown in `<code data-totp-secret>`.
pub(crate) fn secret_on(html: &str) -> String {
    marked_texts(html, "data-totp-secret").remove(0)
}

/// A six-digit code that matches none of the steps around now.
pub(crate) fn wrong_code(secret: &str) -> String {
    let t = now();
    let near: Vec<String> = (0..5)
        .map(|i| totp::code_at(secret, t - 60 + i * 30))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// Turns two-factor on for the signed-in browser with the previous step's code (so the
/// current step's code is still fresh for a sign-in). Answers the secret and the codes.
pub(crate) async fn enrol(browser: &Browser) -> (String, Vec<String>) {
    enrol_giving(browser, None).await
}

/// [`enrol`] for a browser signed in more than ten minutes ago (by the app's clock),
/// which is asked for the account's `password` too.
pub(crate) async fn enrol_signed_in_long_ago(
    browser: &Browser,
    password: &str,
) -> (String, Vec<String>) {
    enrol_giving(browser, Some(password)).await
}

async fn enrol_giving(browser: &Browser, password: Option<&str>) -> (String, Vec<String>) {
    let page = browser.get("/account/2fa").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let secret = secret_on(&page.body);
    assert!(page.body.contains("src=\"data:image/svg+xml;base64,"));
    let code = previous_step_code(&secret, 3).await;
    let mut form = vec![("csrf_token", page.csrf()), ("code", code)];
    form.extend(password.map(|p| ("password", p.to_string())));
    let done = browser.post("/account/2fa", &form).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let codes = marked_texts(&done.body, "data-recovery-code");
    assert_eq!(codes.len(), 10, "{}", done.body);
    (secret, codes)
}

/// The previous step's code, as enrolment takes it (so the current step's code stays
/// fresh for a sign-in), computed at least `margin` seconds before the step ends: had the
/// step ended before the server checked it, the code would be two steps old, beyond the
/// one step of skew the server allows. That failed now and then on a loaded machine, for
/// the browser journeys (which type the code, so ask a wider margin) and once for a
/// plain HTTP enrolment.
pub(crate) async fn previous_step_code(secret: &str, margin: u64) -> String {
    let left = 30 - now() % 30;
    if left < margin {
        tokio::time::sleep(std::time::Duration::from_secs(left)).await;
    }
    totp::code_at(secret, now() - 30)
}

async fn sign_out(browser: &Browser) {
    let token = browser.get("/account").await.csrf();
    let out = browser.post("/logout", &[("csrf_token", token)]).await;
    assert_eq!(out.status, 303);
}

/// Password step: answers the browser, now half signed in.
async fn password_step(app: &TestApp) -> Browser {
    let browser = app.client();
    let page = browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/login/2fa"));
    browser
}

async fn code_step(browser: &Browser, code: &str) -> Page {
    browser
        .submit("/login/2fa", "/login/2fa", &[("code", code)])
        .await
}

fn last_used_step(app: &TestApp, value: Option<i64>) {
    use portcullis::db::schema::totp_credentials as t;
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    diesel::update(t::table)
        .set(t::last_used_step.eq(value))
        .execute(conn)
        .unwrap();
}

fn platform_events(app: &TestApp, action: &str) -> usize {
    use portcullis::db::schema::audit_events as ae;
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    ae::table
        .filter(ae::action.eq(action))
        .count()
        .get_result::<i64>(conn)
        .unwrap() as usize
}

#[actix_web::test]
async fn enrol_then_sign_in_with_a_code_keeping_next() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let account = browser.get("/account").await;
    assert!(account.body.contains("href=\"/account/2fa\""));
    let (secret, _) = enrol(&browser).await;
    assert_eq!(platform_events(&app, "auth.2fa_enabled"), 1);
    let users = browser.get("/orgs/my-org/users").await;
    assert!(
        users
            .body
            .contains(r#"data-label="Auth method">Password + TOTP</td>"#),
        "{}",
        users.body
    );
    // Reloading the page shows the enrolled state, not the secret again.
    let page = browser.get("/account/2fa").await;
    assert!(!page.body.contains(&secret));
    sign_out(&browser).await;

    let browser = app.client();
    let login = browser
        .submit(
            "/login",
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "/orgs/my-org/groups"),
            ],
        )
        .await;
    assert_eq!(login.location.as_deref(), Some("/login/2fa"));
    let done = code_step(&browser, &totp::code_at(&secret, now())).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/orgs/my-org/groups"));
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
}

/// Someone who learnt the password signed in with it alone. Turning two-factor on signs
/// that browser out (it lived on past the second factor meant to shut it out, and passed
/// the organization's two-factor policy, which asks only whether the account enrolled);
/// the browser that enrolled stays signed in and is told.
#[actix_web::test]
async fn turning_two_factor_on_signs_out_every_other_browser() {
    let app = spawn_app().await;
    let owner = app.setup_admin().await;
    let intruder = app.client();
    intruder.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(intruder.get("/orgs/my-org/users").await.status, 200);
    // A copy of the owner's own cookie is signed out too: the owner's browser gets a new key.
    let copied = owner.session_cookie().expect("a session cookie");

    let page = owner.get("/account/2fa").await;
    let secret = secret_on(&page.body);
    let code = previous_step_code(&secret, 3).await;
    let done = owner
        .post(
            "/account/2fa",
            &[("csrf_token", page.csrf()), ("code", code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("1 other browser was signed out."));

    let out = intruder.get("/orgs/my-org/users").await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(out.location.as_deref().unwrap_or("").starts_with("/login"));
    assert_eq!(owner.get("/orgs/my-org/users").await.status, 200);
    let copy = get_with_cookie(&app.url("/orgs/my-org/users"), &copied).await;
    assert_eq!(copy.status, 303, "{}", copy.body);
    let event = portcullis::db::audit_events::latest_for_org(&mut app.conn(), None, 1)
        .unwrap()
        .remove(0);
    assert_eq!(event.action, "auth.2fa_enabled");
    assert!(
        event.details.contains("\"other_sessions_ended\":1"),
        "{}",
        event.details
    );
}

#[actix_web::test]
async fn a_half_signed_in_session_reaches_no_org_page() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    enrol(&browser).await;
    sign_out(&browser).await;
    let browser = password_step(&app).await;
    for path in [
        "/orgs",
        "/orgs/my-org/users",
        "/orgs/my-org/audit",
        "/account",
        "/account/2fa",
        "/admin/users",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(
            page.location.as_deref().unwrap().starts_with("/login"),
            "{path}: {:?}",
            page.location
        );
    }
    // The code page itself is there.
    assert_eq!(browser.get("/login/2fa").await.status, 200);
    // Without a password step there is no code step.
    let stranger = app.client();
    let page = stranger.get("/login/2fa").await;
    assert_eq!(page.location.as_deref(), Some("/login?second_step=expired"));
}

#[actix_web::test]
async fn a_wrong_code_is_refused_and_audited() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let (secret, _) = enrol(&browser).await;
    sign_out(&browser).await;
    let browser = password_step(&app).await;
    let page = code_step(&browser, &wrong_code(&secret)).await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("not right"));
    assert_eq!(platform_events(&app, "auth.2fa_failed"), 1);
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 303);
    let blank = code_step(&browser, "").await;
    assert_eq!(blank.status, 422);
}

#[actix_web::test]
async fn a_replayed_code_is_refused() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let (secret, _) = enrol(&browser).await;
    sign_out(&browser).await;
    let code = totp::code_at(&secret, now());
    let browser = password_step(&app).await;
    assert_eq!(code_step(&browser, &code).await.status, 303);
    sign_out(&browser).await;

    let browser = password_step(&app).await;
    let again = code_step(&browser, &code).await;
    assert_eq!(again.status, 401);
    assert!(again.body.contains("used already"), "{}", again.body);
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 303);
}

#[actix_web::test]
async fn codes_one_step_early_or_late_are_accepted_two_are_not() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let (secret, _) = enrol(&browser).await;
    sign_out(&browser).await;
    // As if enrolled long ago.
    last_used_step(&app, Some(0));

    let browser = password_step(&app).await;
    let late = code_step(&browser, &totp::code_at(&secret, now() - 30)).await;
    assert_eq!(late.status, 303, "a phone 30 s behind: {}", late.body);
    sign_out(&browser).await;

    let browser = password_step(&app).await;
    let early = code_step(&browser, &totp::code_at(&secret, now() + 30)).await;
    assert_eq!(early.status, 303, "a phone 30 s ahead: {}", early.body);
    sign_out(&browser).await;

    last_used_step(&app, Some(0));
    let browser = password_step(&app).await;
    let far = code_step(&browser, &totp::code_at(&secret, now() + 90)).await;
    assert_eq!(far.status, 401, "90 s ahead is too far");
}

#[actix_web::test]
async fn a_recovery_code_works_once() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let (_, codes) = enrol(&browser).await;
    sign_out(&browser).await;

    let browser = password_step(&app).await;
    let page = code_step(&browser, &codes[3].to_uppercase()).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(browser.get("/orgs/my-org/users").await.status, 200);
    assert_eq!(platform_events(&app, "auth.recovery_code_used"), 1);
    sign_out(&browser).await;

    let browser = password_step(&app).await;
    assert_eq!(code_step(&browser, &codes[3]).await.status, 401);
    assert_eq!(code_step(&browser, &codes[4]).await.status, 303);
}

#[actix_web::test]
async fn regenerating_recovery_codes_voids_the_old_ones() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let (secret, old) = enrol(&browser).await;
    // Neither a code nor the password: refused.
    let refused = browser
        .submit("/account/2fa", "/account/2fa/recovery-codes", &[])
        .await;
    assert_eq!(refused.status, 422);
    let wrong = browser
        .submit(
            "/account/2fa",
            "/account/2fa/recovery-codes",
            &[("code", &wrong_code(&secret))],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("id=\"regenerate_code-error\""));
    // A wrong password is said at the password, not at the code.
    let wrong_password = browser
        .submit(
            "/account/2fa",
            "/account/2fa/recovery-codes",
            &[("password", "not the password")],
        )
        .await;
    assert_eq!(wrong_password.status, 422);
    assert!(
        wrong_password
            .body
            .contains("id=\"regenerate_password-error\""),
        "{}",
        wrong_password.body
    );
    assert!(!wrong_password.body.contains("id=\"regenerate_code-error\""));
    assert_eq!(
        app.count(
            "audit_events WHERE action = 'account.wrong_password' AND details LIKE '%recovery codes%'"
        ),
        1
    );
    let page = browser
        .submit(
            "/account/2fa",
            "/account/2fa/recovery-codes",
            &[("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let new = marked_texts(&page.body, "data-recovery-code");
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    assert_eq!(
        platform_events(&app, "auth.2fa_recovery_codes_regenerated"),
        1
    );
    // With a current code instead of the password.
    let by_code = browser
        .submit(
            "/account/2fa",
            "/account/2fa/recovery-codes",
            &[("code", &totp::code_at(&secret, now()))],
        )
        .await;
    assert_eq!(by_code.status, 200, "{}", by_code.body);
    let newest = marked_texts(&by_code.body, "data-recovery-code");
    sign_out(&browser).await;

    let browser = password_step(&app).await;
    assert_eq!(code_step(&browser, &old[0]).await.status, 401);
    assert_eq!(code_step(&browser, &new[0]).await.status, 401);
    assert_eq!(code_step(&browser, &newest[0]).await.status, 303);
}

#[actix_web::test]
async fn the_second_step_is_throttled_per_account() {
    let app = spawn_app_with(|s| s.login_max_failures_per_account = 2).await;
    let browser = app.setup_admin().await;
    let (secret, _) = enrol(&browser).await;
    sign_out(&browser).await;

    let browser = password_step(&app).await;
    for _ in 0..2 {
        assert_eq!(code_step(&browser, &wrong_code(&secret)).await.status, 401);
    }
    // Even the right code is turned away now, and so is a new password step's.
    let right = code_step(&browser, &totp::code_at(&secret, now())).await;
    assert_eq!(right.status, 429, "{}", right.body);
    let other = password_step(&app).await;
    let again = code_step(&other, &totp::code_at(&secret, now())).await;
    assert_eq!(again.status, 429);
    assert_eq!(platform_events(&app, "auth.2fa_throttled"), 1);
    assert_eq!(other.get("/orgs/my-org/users").await.status, 303);
}

#[actix_web::test]
async fn disabling_needs_the_password_and_a_current_code() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let (secret, _) = enrol(&browser).await;
    let code = || totp::code_at(&secret, now());
    let attempt = |password: String, code: String| {
        let browser = browser.clone();
        async move {
            browser
                .submit(
                    "/account/2fa",
                    "/account/2fa/disable",
                    &[("password", &password), ("code", &code)],
                )
                .await
        }
    };
    assert_eq!(
        attempt(ADMIN_PASSWORD.into(), String::new()).await.status,
        422
    );
    assert_eq!(attempt(String::new(), code()).await.status, 422);
    assert_eq!(
        attempt("wrong password!".into(), code()).await.status,
        422,
        "a wrong password"
    );
    assert_eq!(
        attempt(ADMIN_PASSWORD.into(), wrong_code(&secret))
            .await
            .status,
        422,
        "a wrong code"
    );
    assert_eq!(platform_events(&app, "auth.2fa_disabled"), 0);
    let done = attempt(ADMIN_PASSWORD.into(), code()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(platform_events(&app, "auth.2fa_disabled"), 1);
    let users = browser.get("/orgs/my-org/users").await;
    assert!(
        !users
            .body
            .contains(r#"data-label="Auth method">Password + TOTP</td>"#)
    );
    sign_out(&browser).await;
    // The password alone signs in again.
    let page = app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(page.location.as_deref(), Some("/orgs"));
}

/// Someone who has the password (not the code) waits half signed in while the owner
/// changes the password: the code step then opens nothing, even with a right code.
#[actix_web::test]
async fn a_password_change_ends_a_half_signed_in_session() {
    let app = spawn_app().await;
    let owner = app.setup_admin().await;
    let (secret, _) = enrol(&owner).await;
    let intruder = password_step(&app).await;
    let changed = owner
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", ADMIN_PASSWORD),
                ("password", "a brand new passphrase"),
                ("password_confirm", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);

    let step = code_step(&intruder, &totp::code_at(&secret, now())).await;
    assert_eq!(step.status, 303);
    assert_eq!(step.location.as_deref(), Some("/login?second_step=expired"));
    assert_eq!(intruder.get("/orgs/my-org/users").await.status, 303);
    assert_eq!(owner.get("/orgs/my-org/users").await.status, 200);
}

/// Two enrolments with the same code at once (a double click, two tabs): on PostgreSQL
/// both found no credential and the second insert failed, a 500 whose browser never saw
/// the recovery codes. Now they take turns on the account: one turns two-factor on, the
/// other is told it is already on. The test holds the credentials table against inserts
/// until both requests wait (on SQLite, the write lock).
#[actix_web::test]
async fn two_enrolments_at_once_turn_two_factor_on_once() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let page = browser.get("/account/2fa").await;
    let secret = secret_on(&page.body);
    let code = previous_step_code(&secret, 5).await;
    let form = [("csrf_token", page.csrf()), ("code", code)];

    let (locked, go) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let (pool, postgres) = (app.pool.clone(), app.db.is_postgres());
    let holder = std::thread::spawn(move || {
        let mut conn = pool.get().unwrap();
        portcullis::db::write_tx(&mut conn, |conn| {
            if postgres {
                diesel::sql_query("LOCK TABLE totp_credentials IN SHARE MODE").execute(conn)?;
            }
            locked.0.send(()).unwrap();
            go.1.recv().unwrap();
            diesel::QueryResult::Ok(())
        })
        .unwrap();
    });
    locked.1.recv().unwrap();
    let (first, second, ()) = tokio::join!(
        browser.post("/account/2fa", &form),
        browser.post("/account/2fa", &form),
        async {
            if postgres {
                let waiting = "pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
                for _ in 0..300 {
                    if app.count(waiting) >= 2 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                assert!(app.count(waiting) >= 2, "both enrolments wait");
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(750)).await;
            }
            go.0.send(()).unwrap();
        }
    );
    holder.join().unwrap();

    let mut statuses = [first.status, second.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 303], "{}\n{}", first.body, second.body);
    let shown = [&first, &second]
        .iter()
        .map(|p| marked_texts(&p.body, "data-recovery-code").len())
        .sum::<usize>();
    assert_eq!(shown, 10, "one set of recovery codes, shown once");
    assert_eq!(app.count("totp_credentials"), 1);
    assert_eq!(platform_events(&app, "auth.2fa_enabled"), 1);
}

/// Whoever holds a stolen session could turn the sign-in alerts off, make recovery codes
/// of their own, or turn two-factor on and keep the owner out, and the owner heard of
/// none of it. Each change now mails the owner what happened and what to do if it was
/// not them; turning the alerts back on mails nothing.
#[actix_web::test]
async fn each_change_to_the_accounts_protection_is_told_to_its_owner() {
    let smtp = crate::smtp::SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    let owner = app.setup_admin().await;
    let subject = |n: usize| {
        let smtp = &smtp;
        async move {
            let mut mails = smtp.wait_for(n).await;
            let mail = mails.remove(n - 1);
            assert_eq!(mail.to, vec![ADMIN_EMAIL.to_string()]);
            (mail.header("Subject").unwrap_or_default(), mail.decoded())
        }
    };

    let (secret, _) = enrol(&owner).await;
    let (said, body) = subject(1).await;
    assert_eq!(
        said,
        "Your Portcullis account: two-factor authentication turned on"
    );
    assert!(
        body.contains("ask your administrator to reset your two-factor authentication"),
        "{body}"
    );
    assert!(body.contains("/forgot-password"), "{body}");

    let made = owner
        .submit(
            "/account/2fa",
            "/account/2fa/recovery-codes",
            &[("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let (said, body) = subject(2).await;
    assert_eq!(said, "Your Portcullis account: new recovery codes made");
    assert!(body.contains("the old ones no longer work"), "{body}");

    let code = totp::code_at(&secret, now());
    let off = owner
        .submit(
            "/account/2fa",
            "/account/2fa/disable",
            &[("password", ADMIN_PASSWORD), ("code", &code)],
        )
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
    let (said, body) = subject(3).await;
    assert_eq!(
        said,
        "Your Portcullis account: two-factor authentication turned off"
    );
    assert!(body.contains("needs only your password"), "{body}");

    let alerts_off = owner
        .submit("/account", "/account/signin-alerts", &[])
        .await;
    assert_eq!(alerts_off.status, 303);
    let (said, body) = subject(4).await;
    assert_eq!(
        said,
        "Your Portcullis account: new sign-in alerts turned off"
    );
    assert!(body.contains("turn the alerts on again"), "{body}");
    assert!(body.contains("/account"), "{body}");

    owner
        .submit(
            "/account",
            "/account/signin-alerts",
            &[("signin_alerts", "on")],
        )
        .await;
    assert_eq!(
        app.count("email_outbox"),
        4,
        "turning the alerts on mails nothing"
    );
}

/// The answers that show recovery codes are answers to a POST: a refresh sent the form
/// again. Turning on said "That code does not match" at the other form's field, and
/// making codes made others, voiding the ones just saved. Sent again, each acts no
/// second time and says so.
#[actix_web::test]
async fn a_form_that_showed_codes_acts_once_when_sent_again() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let page = browser.get("/account/2fa").await;
    let secret = secret_on(&page.body);
    let code = previous_step_code(&secret, 3).await;
    let form_id = hidden_value(&page.body, "form_id").expect("the form has its id");
    let sent = [
        ("csrf_token", page.csrf()),
        ("code", code),
        ("form_id", form_id),
    ];
    assert_eq!(browser.post("/account/2fa", &sent).await.status, 200);
    let again = browser.post("/account/2fa", &sent).await;
    assert_eq!(again.status, 303, "{}", again.body);
    let shown = browser.get("/account/2fa").await;
    assert!(
        shown.body.contains("sent again, and changed nothing"),
        "{}",
        shown.body
    );
    assert!(!shown.body.contains("does not match"), "{}", shown.body);

    let page = browser.get("/account/2fa").await;
    let sent = [
        ("csrf_token", page.csrf()),
        ("password", ADMIN_PASSWORD.to_string()),
        ("form_id", hidden_value(&page.body, "form_id").unwrap()),
    ];
    let made = browser.post("/account/2fa/recovery-codes", &sent).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let again = browser.post("/account/2fa/recovery-codes", &sent).await;
    assert_eq!(again.status, 303, "{}", again.body);
    let shown = browser.get("/account/2fa").await;
    assert!(
        shown.body.contains("no other codes were made"),
        "{}",
        shown.body
    );
    assert_eq!(
        platform_events(&app, "auth.2fa_recovery_codes_regenerated"),
        1
    );
}

/// Someone holding a session signed in long ago (a browser left open, a copied cookie)
/// must not turn two-factor on with a key of their own on the password alone they lack:
/// it would lock the owner out, past a password reset. Soon after signing in, the code
/// alone does.
#[actix_web::test]
async fn turning_two_factor_on_long_after_signing_in_asks_for_the_password() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    app.advance_clock(chrono::Duration::minutes(11));
    let page = browser.get("/account/2fa").await;
    assert!(page.body.contains("id=\"password\""), "{}", page.body);
    let secret = secret_on(&page.body);
    let enrol_with = |extra: Vec<(&'static str, String)>| {
        let (browser, csrf, secret) = (&browser, page.csrf(), secret.clone());
        async move {
            let code = previous_step_code(&secret, 3).await;
            let mut form = vec![("csrf_token", csrf), ("code", code)];
            form.extend(extra);
            browser.post("/account/2fa", &form).await
        }
    };
    let bare = enrol_with(vec![]).await;
    assert_eq!(bare.status, 422, "{}", bare.body);
    assert!(bare.body.contains("Enter your password"), "{}", bare.body);
    let wrong = enrol_with(vec![("password", "not the password".into())]).await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.body.contains("That is not your password."));
    assert_eq!(
        app.count("audit_events WHERE action = 'account.wrong_password'"),
        1
    );
    let right = enrol_with(vec![("password", ADMIN_PASSWORD.into())]).await;
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(marked_texts(&right.body, "data-recovery-code").len(), 10);
}

/// New recovery codes with the password spend a hash each: past the window's number of
/// right passwords they are refused before it, as sign-ins are.
#[actix_web::test]
async fn recovery_codes_by_password_are_bounded_like_sign_ins() {
    use portcullis::auth::throttle::RIGHT_PASSWORDS_PER_WINDOW;
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    enrol(&browser).await;
    let regenerate = || {
        browser.submit(
            "/account/2fa",
            "/account/2fa/recovery-codes",
            &[("password", ADMIN_PASSWORD)],
        )
    };
    for _ in 0..RIGHT_PASSWORDS_PER_WINDOW {
        let page = regenerate().await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let refused = regenerate().await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(
        platform_events(&app, "auth.2fa_recovery_codes_regenerated"),
        RIGHT_PASSWORDS_PER_WINDOW as usize
    );
}
