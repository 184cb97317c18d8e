//! Two-factor in a real browser: enrol from the account page by reading the key shown
//! there (as a person types it into their authenticator app), keep a recovery code,
//! then sign in again with a code from the app, and once with the recovery code.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use fantoccini::Locator;

use super::entry::create_first_admin;
use super::{Js, journey};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, spawn_app};
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
        let secret = chrome
            .client
            .find(Locator::Css("code[data-totp-secret]"))
            .await
            .context("the key is shown as text")?
            .text()
            .await?
            .split_whitespace()
            .collect::<String>();
        // The enrolment code is for the previous step, so the sign-in code below (current
        // step) is a later one, as the replay rule requires.
        chrome
            .fill("Code from the app", &totp::code_at(&secret, now() - 30))
            .await?;
        chrome.press("Turn on two-factor authentication").await?;
        let recovery = chrome
            .client
            .find(Locator::Css("li[data-recovery-code]"))
            .await
            .context("recovery codes are shown once")?
            .text()
            .await?;
        ensure!(!recovery.trim().is_empty());

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
        // In the admin's own row: the Auth method filter's choices also name it.
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
