use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn change(browser: &Browser, current: &str, new: &str, confirm: &str) -> Page {
    browser
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", current),
                ("password", new),
                ("password_confirm", confirm),
            ],
        )
        .await
}

#[actix_web::test]
async fn the_account_page_lists_the_signed_in_sessions() {
    let app = spawn_app().await;
    let first = app.setup_admin().await;
    let second = app.client();
    second.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = first.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(ADMIN_EMAIL));
    assert_eq!(page.body.matches("<tr data-session ").count(), 2);
    assert!(
        page.body.contains("href=\"/account\""),
        "linked from the account menu"
    );
    assert_eq!(
        app.client().get("/account").await.status,
        303,
        "signed out → sign in"
    );
}

#[actix_web::test]
async fn changing_the_password_signs_out_every_other_browser() {
    let app = spawn_app().await;
    let me = app.setup_admin().await;
    let elsewhere = app.client();
    assert_eq!(
        elsewhere.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        303
    );

    let done = change(&me, ADMIN_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/account"));
    let page = me.get("/account").await;
    assert_eq!(page.status, 200, "this browser stays signed in");
    assert!(page.body.contains("Password changed."));
    assert_eq!(
        elsewhere.get("/orgs/my-org/users").await.status,
        303,
        "signed out"
    );
    assert_eq!(
        app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        401
    );
    assert_eq!(
        app.client().login(ADMIN_EMAIL, NEW_PASSWORD).await.status,
        303
    );
    assert_eq!(
        app.count("audit_events WHERE action = 'account.password_changed'"),
        1
    );
}

/// Someone who learnt the password changes it on the account page: the owner is told by
/// email, with the way to take the account back, as after a reset by link.
#[actix_web::test]
async fn a_password_changed_on_the_account_page_is_told_to_the_owner() {
    let smtp = crate::smtp::SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    let me = app.setup_admin().await;
    let done = change(&me, ADMIN_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec![ADMIN_EMAIL.to_string()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your Portcullis password was changed")
    );
    let body = mail.decoded();
    assert_eq!(body.matches("on its account page").count(), 2, "{body}");
    assert!(body.contains("/forgot-password"), "{body}");
    assert!(!body.contains("reset link"), "{body}");
}

#[actix_web::test]
async fn a_wrong_current_password_or_bad_new_one_changes_nothing() {
    let app = spawn_app().await;
    let me = app.setup_admin().await;
    let wrong = change(&me, "not my password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("That is not your current password."));
    // Whoever holds a stolen session and guesses the password leaves a trace.
    assert_eq!(
        app.count("audit_events WHERE action = 'account.wrong_password'"),
        1
    );
    let mismatch = change(&me, ADMIN_PASSWORD, NEW_PASSWORD, "something else").await;
    assert_eq!(mismatch.status, 422);
    assert!(mismatch.body.contains("The two passwords do not match."));
    let short = change(&me, ADMIN_PASSWORD, "short", "short").await;
    assert_eq!(short.status, 422);
    assert_eq!(
        app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        303
    );
    assert_eq!(
        app.count("audit_events WHERE action = 'account.password_changed'"),
        0
    );
}

#[actix_web::test]
async fn guessing_the_current_password_is_throttled() {
    let app = spawn_app_with(|s| s.login_max_failures_per_account = 3).await;
    let me = app.setup_admin().await;
    for _ in 0..3 {
        assert_eq!(
            change(&me, "guess", NEW_PASSWORD, NEW_PASSWORD)
                .await
                .status,
            422
        );
    }
    assert_eq!(
        change(&me, ADMIN_PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .status,
        429
    );
}

/// Someone who knows the old password signs in again and again while the owner changes
/// it. A sign-in that checked the old password before the change, and stored its session
/// after the change had ended every session, must not leave a session that works.
#[actix_web::test]
async fn a_sign_in_racing_a_password_change_does_not_outlive_it() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = spawn_app_with(|s| {
        s.workers = Some(4);
        s.db_pool_size = Some(8);
    })
    .await;
    let me = app.setup_admin().await;
    let stop = AtomicBool::new(false);
    let intruders: Mutex<Vec<Browser>> = Mutex::new(Vec::new());
    let intruder = || async {
        while !stop.load(Ordering::SeqCst) {
            let browser = app.client();
            if browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status == 303 {
                intruders.lock().unwrap().push(browser);
            }
        }
    };
    let owner = async {
        while intruders.lock().unwrap().len() < 4 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let done = change(&me, ADMIN_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(done.status, 303, "{}", done.body);
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(owner, intruder(), intruder(), intruder(), intruder());

    let intruders = intruders.into_inner().unwrap();
    for (i, browser) in intruders.iter().enumerate() {
        let page = browser.get("/orgs/my-org/users").await;
        assert_eq!(
            page.status,
            303,
            "intruder session {i} of {}",
            intruders.len()
        );
    }
    assert_eq!(me.get("/orgs/my-org/users").await.status, 200);
}
