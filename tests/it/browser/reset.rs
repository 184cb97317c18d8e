//! Journey: a forgotten password, from the sign-in page's link to signing in with the new
//! password, through the emailed link opened in the same browser.

use super::entry::create_first_admin;
use super::{Js, journey, mailed_to};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, spawn_app};

const NEW_PASSWORD: &str = "a freshly chosen passphrase";

#[actix_web::test]
async fn journey_forgotten_password_reset_by_email() {
    let app = spawn_app().await;
    journey("journey_forgotten_password", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;
        chrome.sign_out().await?;
        chrome.expect_path("/login").await?;

        chrome.follow("Forgot your password?").await?;
        chrome.expect_path("/forgot-password").await?;
        chrome.fill("Email", ADMIN_EMAIL).await?;
        chrome.press("Send reset link").await?;
        chrome.expect_text("Check your email").await?;

        let mail = mailed_to(&app, ADMIN_EMAIL).await?;
        let link = mail
            .link_path("/reset/")
            .ok_or_else(|| anyhow::anyhow!("the email has no reset link"))?;
        chrome.open(&link).await?;
        chrome.expect_text("Choose a new password").await?;
        chrome.fill("New password", NEW_PASSWORD).await?;
        chrome.fill("Confirm new password", NEW_PASSWORD).await?;
        chrome.press("Set new password").await?;
        chrome.expect_path("/login").await?;
        chrome.expect_text("Sign in with your new password").await?;

        chrome.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        chrome.expect_text("do not match an active account").await?;
        chrome.sign_in(ADMIN_EMAIL, NEW_PASSWORD).await?;
        chrome.expect_path("/orgs/acme/users").await?;

        // The link was for one use.
        chrome.open(&link).await?;
        chrome.expect_text("not valid any more").await?;
        Ok::<_, anyhow::Error>(())
    })
    .await;
}
