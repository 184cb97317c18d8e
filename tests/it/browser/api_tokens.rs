//! An Admin makes an API token for their identity provider, sees it once, and revokes it;
//! long after signing in, making another asks for their password.

use anyhow::{Context, ensure};
use fantoccini::Locator;

use super::entry::create_first_admin;
use super::{Js, journey};
use crate::helpers::{ADMIN_PASSWORD, spawn_app};

async fn scim_status(app: &crate::helpers::TestApp, token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/scim/v2/Users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn journey_api_token_created_shown_once_and_revoked() {
    let app = spawn_app().await;
    journey(
        "journey_api_token_created_shown_once_and_revoked",
        |j| async move {
            let chrome = create_first_admin(&j, &app, Js::Off).await?;
            chrome.follow("API tokens").await?;
            chrome.expect_path("/orgs/acme/api-tokens").await?;
            chrome.expect_text("No tokens yet.").await?;
            chrome.fill("Name", "Okta").await?;
            chrome.tick("SCIM provisioning (read and write)").await?;
            chrome
                .select("Role given to members it creates", "Member")
                .await?;
            chrome.select("Expires after", "90 days").await?;
            chrome.press("Create token").await?;
            chrome.expect_text("Token Okta created").await?;
            chrome.expect_text("it is shown only this once").await?;
            let token = chrome
                .client
                .find(Locator::Css("code[data-token]"))
                .await
                .context("the token is shown")?
                .text()
                .await?;
            ensure!(token.starts_with("pcs_"), "{token}");
            ensure!(scim_status(&app, &token).await == 200);

            // A refresh of the answer sends the form again; it makes no second token.
            chrome.client.refresh().await?;
            chrome.expect_text("no second token was made").await?;
            chrome.expect_no_text(&token).await?;

            // Shown once: the tab, opened again, lists it without the secret.
            chrome.follow("API tokens").await?;
            chrome.expect_no_text(&token).await?;
            ensure!(chrome.rows("name").await? == vec!["Okta".to_string()]);
            chrome.expect_text("Never").await?;

            chrome.press("Revoke").await?;
            chrome.expect_text("Token Okta revoked").await?;
            ensure!(chrome.rows("status").await? == vec!["revoked".to_string()]);
            ensure!(scim_status(&app, &token).await == 401);

            // Long after signing in, a new token (its name free again) asks the password.
            app.advance_clock(chrono::Duration::minutes(11));
            chrome.follow("API tokens").await?;
            chrome.fill("Name", "Okta").await?;
            chrome.tick("SCIM provisioning (read and write)").await?;
            chrome.fill("Your password", "not the password").await?;
            chrome.press("Create token").await?;
            chrome.expect_text("That is not your password.").await?;
            ensure!(chrome.rows("status").await? == vec!["revoked".to_string()]);
            // A wrong password and a blank name are both said in one round (the field
            // is required, so the browser itself stops an empty one).
            chrome.fill("Name", "   ").await?;
            chrome.fill("Your password", "not the password").await?;
            chrome.press("Create token").await?;
            chrome.expect_text("That is not your password.").await?;
            chrome
                .expect_text("Enter a name that says where the token is used.")
                .await?;
            chrome.fill("Name", "Okta").await?;
            chrome.fill("Your password", ADMIN_PASSWORD).await?;
            chrome.press("Create token").await?;
            chrome.expect_text("Token Okta created").await?;
            Ok(())
        },
    )
    .await;
}
