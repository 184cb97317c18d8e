//! Journey 13 and the platform admin's rescue of a locked-out organization.

use anyhow::{Context, ensure};

use super::entry::create_first_admin;
use super::{Js, journey, mailed_to};
use crate::helpers::{MEMBER_PASSWORD, spawn_app};

#[actix_web::test]
async fn journey_13_platform_admin_creates_an_org_whose_admin_sets_up_from_the_email() {
    let app = spawn_app().await;
    journey("journey_13_new_org", |j| async move {
        let operator = create_first_admin(&j, &app, Js::On).await?;
        operator.open_menu("Account menu").await?;
        operator.follow("Platform administration").await?;
        operator.expect_text("Organizations").await?;
        operator.fill("Name", "Globex").await?;
        operator.fill("Slug", "globex").await?;
        operator
            .fill("First admin's email", "hank@globex.test")
            .await?;
        operator.press("Create organization").await?;
        operator
            .expect_text("Globex was created with hank@globex.test")
            .await?;

        let mail = mailed_to(&app, "hank@globex.test").await?;
        let link = mail
            .link_path("/setup/")
            .context("the email has a setup link")?;
        let hank = j.browser(&app).await?;
        hank.open(&link).await?;
        hank.expect_text("hank@globex.test").await?;
        hank.fill("First name", "Hank").await?;
        hank.fill("Last name", "Scorpio").await?;
        hank.fill("Password", "volcano lair 2026").await?;
        hank.fill("Confirm password", "volcano lair 2026").await?;
        hank.press("Save and sign in").await?;
        hank.open("/orgs/globex/users").await?;
        ensure!(hank.row_attr("hank@globex.test", "role").await? == "admin");
        // The link worked once.
        let again = j.browser(&app).await?;
        again.open(&link).await?;
        again.expect_no_text("Save and sign in").await?;
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn a_platform_admin_reactivates_a_membership_from_the_account_page() {
    let app = spawn_app().await;
    journey("platform_reactivates_membership", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        let bob = app.add_member("acme", "bob@example.com", "Bob", "B", "member", true);
        app.deactivate_for_setup("acme", &bob);

        let bob_browser = j.browser(&app).await?;
        bob_browser.open("/login").await?;
        bob_browser
            .sign_in("bob@example.com", MEMBER_PASSWORD)
            .await?;
        bob_browser.open("/orgs/acme/users").await?;
        bob_browser.expect_no_text("bob@example.com").await?;

        admin.open("/admin/users").await?;
        admin.follow("bob@example.com").await?;
        admin.expect_text("Memberships").await?;
        admin.press("Re-activate").await?;
        admin
            .expect_text("bob@example.com is active in Acme again")
            .await?;
        admin.select("Role in Acme", "Engineer").await?;
        admin.press("Save role").await?;
        admin.expect_text("bob@example.com is now Engineer").await?;

        bob_browser.open("/orgs/acme/users").await?;
        bob_browser.expect_text("bob@example.com").await?;
        admin.press("End all sessions (1)").await?;
        admin
            .expect_text("1 session(s) of bob@example.com ended")
            .await?;
        bob_browser.open("/orgs/acme/users").await?;
        bob_browser.expect_path("/login").await?;
        Ok(())
    })
    .await;
}
