//! Two-factor in a real browser: enrol from the account page by reading the key shown
//! there (as a person types it into their authenticator app), keep a recovery code,
//! then sign in again with a code from the app, and once with the recovery code.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use fantoccini::Locator;

use super::entry::create_first_admin;
use super::{Js, journey};
use crate::helpers::MEMBER_PASSWORD;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, spawn_app};
use crate::two_factor::previous_step_code;
use portcullis::auth::totp;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[actix_web::test]
async fn journey_two_factor_enrol_then_sign_in_with_a_code_and_a_recovery_code() {
    let app = spawn_app().await;
    journey("journey_two_factor", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;
        chrome.open_menu("Account menu").await?;
        chrome.follow("Your account").await?;
        chrome.follow("Two-factor authentication settings").await?;
        let secret = shown_secret(&chrome).await?;
        // The enrolment code is for the previous step, so the sign-in code below (current
        // step) is a later one, as the replay rule requires.
        let code = previous_step_code(&secret, 10).await;
        chrome.fill("Code from the app", &code).await?;
        chrome.press("Turn on two-factor authentication").await?;
        let recovery = chrome
            .client
            .find(Locator::Css("li[data-recovery-code]"))
            .await
            .context("recovery codes are shown once")?
            .text()
            .await?;
        ensure!(!recovery.trim().is_empty());
        // The owner hears of it by email: someone holding a stolen session could turn it
        // on and keep them out.
        let said = "Your Portcullis account: two-factor authentication turned on";
        let mut told = false;
        for _ in 0..100 {
            let mails = super::all_mail_to(&app, ADMIN_EMAIL);
            if mails
                .iter()
                .any(|m| m.header("Subject").as_deref() == Some(said))
            {
                told = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        ensure!(told, "no email told the owner two-factor was turned on");

        chrome.sign_out().await?;
        chrome.open("/login").await?;
        chrome.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        chrome.expect_path("/login/2fa").await?;
        chrome.fill("Authentication code", "000000").await?;
        chrome.press("Verify").await?;
        chrome.expect_path("/login/2fa").await?;
        chrome
            .fill("Authentication code", &totp::code_at(&secret, now()))
            .await?;
        chrome.press("Verify").await?;
        chrome.expect_path("/orgs/acme/users").await?;
        ensure!(chrome.row_attr(ADMIN_EMAIL, "email").await? == ADMIN_EMAIL);
        // In the admin's own row: the Auth method filter's choices also name it. Auth
        // method is a secondary column: it shows from 1700 px on.
        chrome.client.set_window_size(1920, 1080).await?;
        let row = chrome.row_text(ADMIN_EMAIL).await?;
        ensure!(row.contains("Password + TOTP"), "{row}");

        // A lost phone: the recovery code stands in for a code, once.
        chrome.sign_out().await?;
        chrome.open("/login").await?;
        chrome.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        chrome.fill("Authentication code", recovery.trim()).await?;
        chrome.press("Verify").await?;
        chrome.expect_path("/orgs/acme/users").await?;
        Ok(())
    })
    .await;
}

/// The key the enrolment page shows as text, as a person types it into their app.
async fn shown_secret(chrome: &super::Chrome) -> anyhow::Result<String> {
    Ok(chrome
        .client
        .find(Locator::Css("code[data-totp-secret]"))
        .await
        .context("the key is shown as text")?
        .text()
        .await?
        .split_whitespace()
        .collect())
}

/// Turns two-factor on from the enrolment page the browser is on, typing the code for
/// the key shown there (the previous step's, so the current one stays fresh).
async fn turn_on_here(chrome: &super::Chrome) -> anyhow::Result<()> {
    let secret = shown_secret(chrome).await?;
    let code = previous_step_code(&secret, 10).await;
    chrome.fill("Code from the app", &code).await?;
    chrome.press("Turn on two-factor authentication").await?;
    chrome.expect_text("Two-factor authentication is on.").await
}

/// The organization's policy: the Admin requires two-factor of everyone with no grace
/// period from the Settings tab; a member who signs in is held to enrolment (without
/// JavaScript), enrols, and reaches the Users tab.
#[actix_web::test]
async fn journey_two_factor_org_policy_sends_a_member_to_enrolment() {
    let app = spawn_app().await;
    journey("journey_two_factor_org_policy", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        app.add_member("acme", "mia@example.com", "Mia", "Member", "member", true);
        admin.open("/account/2fa").await?;
        turn_on_here(&admin).await?;
        admin.open("/orgs/acme/users").await?;
        admin.follow_within("Organization", "Settings").await?;
        admin.expect_path("/orgs/acme/settings").await?;
        admin.tick("Required for all members").await?;
        admin.fill("Grace period (days)", "0").await?;
        admin.press("Save two-factor policy").await?;
        admin.expect_text("Two-factor policy saved.").await?;
        admin.expect_text("1 member").await?;

        let member = j.browser_with(&app, Js::Off).await?;
        member.open("/login").await?;
        member.sign_in("mia@example.com", MEMBER_PASSWORD).await?;
        member.expect_path("/orgs/acme/users").await?;
        member
            .expect_text("Acme requires two-factor authentication")
            .await?;
        member.expect_no_text("mia@example.com").await?;
        member.follow("Set up two-factor authentication").await?;
        member.expect_path("/account/2fa").await?;
        turn_on_here(&member).await?;
        member.open("/orgs/acme/users").await?;
        ensure!(member.row_attr("mia@example.com", "email").await? == "mia@example.com");
        member.expect_no_text("requires two-factor").await?;
        Ok(())
    })
    .await;
}

/// A member who lost their phone: the Admin resets their two-factor from the profile,
/// through the confirmation page (without JavaScript), and the member signs in with the
/// password alone.
#[actix_web::test]
async fn journey_two_factor_admin_resets_a_members_two_factor() {
    let app = spawn_app().await;
    journey("journey_two_factor_reset", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        app.add_member("acme", "mia@example.com", "Mia", "Member", "member", true);
        let member = j.browser_with(&app, Js::On).await?;
        member.open("/login").await?;
        member.sign_in("mia@example.com", MEMBER_PASSWORD).await?;
        member.open("/account/2fa").await?;
        turn_on_here(&member).await?;
        member.sign_out().await?;

        admin.open("/orgs/acme/users").await?;
        admin
            .follow_in_row("mia@example.com", "mia@example.com")
            .await?;
        admin.follow("Reset two-factor").await?;
        admin
            .expect_text("Reset two-factor authentication of mia@example.com?")
            .await?;
        admin.press("Reset two-factor of mia@example.com").await?;
        admin
            .expect_text("Two-factor authentication of mia@example.com was reset")
            .await?;
        let row_after = {
            admin.open("/orgs/acme/users").await?;
            admin.row_text("mia@example.com").await?
        };
        ensure!(!row_after.contains("TOTP"), "{row_after}");

        member.open("/login").await?;
        member.sign_in("mia@example.com", MEMBER_PASSWORD).await?;
        member.expect_path("/orgs/acme/users").await?;
        Ok(())
    })
    .await;
}

/// Turning two-factor on long after signing in asks for the password as well: a wrong one
/// is refused with the key left as it was (the app already holds it), and the right one
/// turns it on. Without JavaScript.
#[actix_web::test]
async fn journey_two_factor_long_after_signing_in_asks_for_the_password() {
    let app = spawn_app().await;
    journey("journey_two_factor_late", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::Off).await?;
        app.advance_clock(chrono::Duration::minutes(11));
        chrome.open("/account").await?;
        chrome.follow("Two-factor authentication settings").await?;
        chrome
            .expect_text("You signed in more than ten minutes ago")
            .await?;
        let secret = shown_secret(&chrome).await?;
        chrome.fill("Your password", "not the password").await?;
        let code = previous_step_code(&secret, 10).await;
        chrome.fill("Code from the app", &code).await?;
        chrome.press("Turn on two-factor authentication").await?;
        chrome.expect_text("That is not your password.").await?;
        ensure!(
            shown_secret(&chrome).await? == secret,
            "a refused attempt showed another key, which the app does not hold"
        );

        chrome.fill("Your password", ADMIN_PASSWORD).await?;
        let code = previous_step_code(&secret, 10).await;
        chrome.fill("Code from the app", &code).await?;
        chrome.press("Turn on two-factor authentication").await?;
        chrome
            .expect_text("Two-factor authentication is on.")
            .await?;
        Ok(())
    })
    .await;
}
