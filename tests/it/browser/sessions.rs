//! Sessions journey (issue 14, item 3): the same person in two browsers; the first ends
//! the second's session from /account, and the second is signed out when it reloads.

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;

use super::entry::create_first_admin;
use super::{Chrome, Js, journey};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, spawn_app};

async fn session_rows(chrome: &Chrome) -> Result<usize> {
    Ok(chrome
        .client
        .find_all(Locator::Css("tr[data-session]"))
        .await?
        .len())
}

#[actix_web::test]
async fn journey_sessions_end_another_browser_from_the_account_page() {
    let app = spawn_app().await;
    journey("journey_sessions_end_another", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;

        // The same person, signed in on another computer.
        let other = j.browser(&app).await?;
        other.open("/login").await?;
        other.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        other.expect_path("/orgs/acme/users").await?;

        chrome.open_menu("Account menu").await?;
        chrome.follow("Your account").await?;
        chrome.expect_path("/account").await?;
        chrome.expect_text("Signed-in sessions").await?;
        chrome.expect_text("This browser").await?;
        chrome.expect_text("Chrome").await?;
        chrome.expect_text("Linux").await?;
        ensure!(
            session_rows(&chrome).await? == 2,
            "both browsers are listed"
        );

        // The other browser's End button says which session it ends.
        let end = chrome
            .client
            .find(Locator::Css("tr[data-current='false'] button"))
            .await
            .context("an End button on the other browser's row")?;
        let name = end.attr("aria-label").await?.unwrap_or_default();
        ensure!(
            name.starts_with("End the session of Chrome on Linux, 127.0.0.1"),
            "accessible name: {name:?}"
        );
        ensure!(end.text().await?.trim() == "End", "visible text");
        chrome.click(end, "End").await?;
        chrome.expect_path("/account").await?;
        chrome
            .expect_text("Ended the session of Chrome on Linux")
            .await?;
        ensure!(
            session_rows(&chrome).await? == 1,
            "only this browser is left"
        );

        // The other browser is signed out on its next page load.
        other.client.refresh().await?;
        other.arrived().await?;
        other.expect_path("/login").await?;

        // This one stays signed in.
        chrome.follow("Portcullis").await?;
        chrome.expect_path("/orgs/acme/users").await?;
        chrome.expect_text(ADMIN_EMAIL).await?;
        Ok(())
    })
    .await;
}
