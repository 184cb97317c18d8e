//! Journeys 1 and 2: the first administrator from the printed setup link; signing out
//! and in again.

use anyhow::Result;

use super::{Journey, Js, journey};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app};

/// Journey 1, as a person does it: open the printed link, fill the form, land on Users.
pub async fn create_first_admin(j: &Journey, app: &TestApp, js: Js) -> Result<super::Chrome> {
    let chrome = j.browser_with(app, js).await?;
    let link = app
        .setup_url
        .clone()
        .expect("a fresh database prints a setup link");
    chrome.open(&link).await?;
    chrome.expect_text("Create the first administrator").await?;
    chrome.fill("Email", ADMIN_EMAIL).await?;
    chrome.fill("First name", "Ada").await?;
    chrome.fill("Last name", "Admin").await?;
    chrome.fill("Organization name", "Acme").await?;
    chrome.fill("Password", ADMIN_PASSWORD).await?;
    chrome.fill("Confirm password", ADMIN_PASSWORD).await?;
    chrome.press("Create administrator").await?;
    chrome.expect_path("/orgs/acme/users").await?;
    chrome.expect_text("Users").await?;
    chrome.expect_text(ADMIN_EMAIL).await?;
    Ok(chrome)
}

async fn first_admin_journey(name: &'static str, js: Js) {
    let app = spawn_app().await;
    journey(name, |j| async move {
        let chrome = create_first_admin(&j, &app, js).await?;
        assert_eq!(chrome.rows("email").await?, vec![ADMIN_EMAIL.to_string()]);
        assert_eq!(chrome.row_attr(ADMIN_EMAIL, "role").await?, "admin");
        // The link was for one use: opening it again shows nothing to take over.
        chrome.open(app.setup_url.as_deref().unwrap()).await?;
        chrome
            .expect_no_text("Create the first administrator")
            .await?;
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_01_first_admin_from_the_printed_setup_link() {
    first_admin_journey("journey_01_first_admin", Js::On).await;
}

#[actix_web::test]
async fn journey_01_first_admin_without_javascript() {
    first_admin_journey("journey_01_first_admin_nojs", Js::Off).await;
}

#[actix_web::test]
async fn journey_02_sign_out_wrong_password_and_next_is_kept() {
    let app = spawn_app().await;
    journey("journey_02_sign_in", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;
        chrome.sign_out().await?;
        chrome.expect_path("/login").await?;

        // A bookmarked page asks for a sign-in first, then opens.
        chrome.open("/orgs/acme/audit").await?;
        chrome.expect_path("/login").await?;
        chrome.sign_in(ADMIN_EMAIL, "not the password").await?;
        chrome.expect_text("do not match an active account").await?;
        chrome.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        chrome.expect_path("/orgs/acme/audit").await?;
        chrome.expect_text("Audit").await?;
        Ok(())
    })
    .await;
}
