//! Issue 16, item 4: an invitation with an "access until" day gives a membership that is
//! flagged as ending soon and ends after that day; re-activated with a new day, it lasts.

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use chrono::Datelike;

use super::entry::create_first_admin;
use super::{Chrome, Js, journey, mailed_to};
use crate::helpers::{MEMBER_PASSWORD, spawn_app};

const EVE: &str = "eve@example.com";
const CAROL: &str = "carol@example.com";

/// Types a day into a date field as a person does in Chromium's en-US field
/// (month, day, year), and checks the field took it.
async fn type_day(chrome: &Chrome, label: &str, day: chrono::NaiveDate) -> Result<()> {
    let field = chrome.field(label).await?;
    field
        .send_keys(&format!("{:02}{:02}{}", day.month(), day.day(), day.year()))
        .await?;
    let value = field.prop("value").await?.unwrap_or_default();
    ensure!(
        value == day.format("%Y-%m-%d").to_string(),
        "the field holds {value:?}"
    );
    Ok(())
}

#[actix_web::test]
async fn an_invitation_with_an_end_day_gives_access_that_ends_after_it() {
    expiry_journey("membership_expiry", Js::On).await;
}

/// The same with JavaScript off: the refused re-activation is a page of its own, with its
/// reason, not a message set into the row.
#[actix_web::test]
async fn an_invitation_with_an_end_day_gives_access_that_ends_after_it_without_javascript() {
    expiry_journey("membership_expiry_nojs", Js::Off).await;
}

async fn expiry_journey(name: &'static str, js: Js) {
    let app = spawn_app().await;
    journey(name, |j| async move {
        let admin = create_first_admin(&j, &app, js).await?;
        let last_day = (portcullis::db::now() + chrono::Duration::days(3)).date();

        admin.follow_within("Organization", "Invited").await?;
        admin.follow("Invite people").await?;
        admin.fill("Email addresses", EVE).await?;
        type_day(&admin, "Access until (optional)", last_day).await?;
        admin.press("Send invitations").await?;
        admin.expect_text("1 person invited").await?;

        let link = mailed_to(&app, EVE).await?.invite_path();
        let eve = j.browser(&app).await?;
        eve.open(&link).await?;
        // She reads how long the access she is offered lasts before she makes an account.
        eve.expect_text(&format!(
            "Access ends after {} (UTC).",
            last_day.format("%Y-%m-%d")
        ))
        .await?;
        eve.fill("First name", "Eve").await?;
        eve.fill("Last name", "Moneypenny").await?;
        eve.fill("Password", "a long invitee passphrase").await?;
        eve.fill("Confirm password", "a long invitee passphrase")
            .await?;
        eve.press("Create account and join").await?;
        eve.expect_path("/orgs/acme/users").await?;

        // The admin finds her among those whose access ends soon.
        admin.follow_within("Organization", "Users").await?;
        admin.follow("Access ending soon").await?;
        ensure!(admin.rows("email").await? == vec![EVE.to_string()]);
        admin
            .expect_text(&format!("Access ends {}", last_day.format("%Y-%m-%d")))
            .await?;

        // After her last day, the job ends her membership and her next page says so.
        app.advance_clock(chrono::Duration::days(4));
        let eve_id = app.user_id(EVE);
        let started = Instant::now();
        while app.membership_status("acme", &eve_id).as_deref() != Some("inactive") {
            if started.elapsed() > Duration::from_secs(15) {
                bail!("the membership did not end");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eve.open("/orgs/acme/users").await?;
        eve.expect_text("Page not found").await?;

        admin.follow_within("Organization", "Users").await?;
        ensure!(admin.row_attr(EVE, "status").await? == "inactive");
        admin.follow_within("Organization", "Audit").await?;
        admin.expect_text("eve@example.com's access ended").await?;

        // Re-activating her asks for a new last day first (before, she came back with the
        // day that had passed, and her next page ended her once more).
        admin.follow_within("Organization", "Users").await?;
        admin.press_in_row(EVE, "Activate").await?;
        admin
            .expect_text("Give them a new last day, or none, on their profile")
            .await?;
        admin.open(&format!("/orgs/acme/users/{eve_id}")).await?;
        admin.fill("Access until (optional)", "").await?;
        admin.press("Save changes").await?;
        admin.follow_within("Organization", "Users").await?;
        admin.press_in_row(EVE, "Activate").await?;
        admin.expect_text("eve@example.com is active again").await?;
        eve.open("/orgs/acme/users").await?;
        ensure!(
            eve.rows("email").await?.contains(&EVE.to_string()),
            "she sees the Users tab"
        );
        ensure!(app.membership_status("acme", &eve_id).as_deref() == Some("active"));
        Ok(())
    })
    .await;
}

/// An admin whose access ends on a day steps down to Manager from their own profile.
/// The confirmation page once dropped the day from the form it sends again, so the
/// change read as "no end", beyond their own access, and was refused for good.
#[actix_web::test]
async fn an_admin_with_an_end_day_steps_down_through_the_confirmation() {
    let app = spawn_app().await;
    journey("step_down_with_end_day", |j| async move {
        create_first_admin(&j, &app, Js::On).await?;
        let carol = app.add_member("acme", CAROL, "Carol", "Chen", "admin", true);
        let ends = portcullis::db::now() + chrono::Duration::days(3);
        let org = app.org_id("acme");
        portcullis::db::memberships::set_access_until(&mut app.conn(), &org, &carol, Some(ends))?;
        let last_day = portcullis::domain::access_until::field_value(Some(ends));

        let chrome = j.browser(&app).await?;
        chrome.open("/login").await?;
        chrome.sign_in(CAROL, MEMBER_PASSWORD).await?;
        chrome.open(&format!("/orgs/acme/users/{carol}")).await?;
        ensure!(
            chrome
                .field("Access until (optional)")
                .await?
                .prop("value")
                .await?
                == Some(last_day.clone())
        );
        chrome.select("Role", "Manager").await?;
        chrome.press("Save changes").await?;
        chrome
            .expect_text("Change your own role to Manager?")
            .await?;
        chrome.press("Change my role to Manager").await?;
        chrome.expect_text("Changes saved.").await?;
        ensure!(app.member_role("acme", &carol).as_deref() == Some("manager"));
        let row = portcullis::db::memberships::find(&mut app.conn(), &org, &carol)?
            .expect("still a member");
        ensure!(
            portcullis::domain::access_until::field_value(row.membership.access_until) == last_day,
            "her last day stays"
        );
        Ok(())
    })
    .await;
}
