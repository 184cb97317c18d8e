//! Issue 16, items 3, 5, 6 and 7, as an admin meets them: inviting with mistakes and
//! refreshing the results, a bulk action confirmed without JavaScript and one refused
//! without losing the selection, the audit trail reading as sentences, and the Roles page
//! with an Engineer acting on their pool.

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;

use super::entry::create_first_admin;
use super::{Chrome, Js, journey};
use crate::helpers::{ADMIN_EMAIL, MEMBER_PASSWORD, TestApp, spawn_app};

const ORG: &str = "/orgs/acme";

/// The Invited tab's badge, as the organization's tabs show it.
async fn pending_badge(chrome: &Chrome) -> Result<Option<String>> {
    match chrome
        .client
        .find(Locator::Css("[data-pending-count]"))
        .await
    {
        Ok(badge) => Ok(badge.attr("data-pending-count").await?),
        Err(_) => Ok(None),
    }
}

/// Whether the checkbox labelled `label` is ticked.
async fn ticked(chrome: &Chrome, label: &str) -> Result<bool> {
    Ok(chrome.field(label).await?.is_selected().await?)
}

async fn field_value(chrome: &Chrome, label: &str) -> Result<String> {
    Ok(chrome
        .field(label)
        .await?
        .prop("value")
        .await?
        .unwrap_or_default())
}

#[actix_web::test]
async fn journey_16_3_invite_with_mistakes_fix_them_and_refresh() {
    let app = spawn_app().await;
    journey("journey_16_3_invite_mistakes", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        admin.follow_within("Organization", "Invited").await?;
        ensure!(
            pending_badge(&admin).await?.is_none(),
            "a badge with nobody invited"
        );
        admin.follow("Invite people").await?;
        admin
            .fill(
                "Email addresses",
                "grace@example.com, grace@, linus@@example.com",
            )
            .await?;
        admin.select("Role", "Engineer").await?;
        admin.press("Send invitations").await?;

        // One invited, two not: a warning, not a success, and the two come back to fix.
        admin
            .expect_path(&format!("{ORG}/invitations/sent"))
            .await?;
        admin.expect_text("1 person invited").await?;
        admin.expect_text("2 invalid addresses").await?;
        let summary = admin.client.find(Locator::Css(".invite-summary")).await?;
        ensure!(
            summary.attr("data-tone").await?.as_deref() == Some("warning"),
            "the summary of a partly failed invite is not a warning"
        );
        let retry = field_value(&admin, "Email addresses").await?;
        ensure!(
            retry.contains("grace@") && !retry.contains("grace@example.com"),
            "the textarea holds {retry:?}"
        );
        admin.expect_text("“grace@”").await?;
        ensure!(
            admin
                .row_text("grace@example.com")
                .await?
                .contains("/invite/"),
            "the invited address shows its link"
        );
        admin.check_accessibility().await?;

        // Fixed, and sent again with the same role.
        admin
            .fill("Email addresses", "grace.h@example.com\nlinus@example.com")
            .await?;
        admin.press("Send invitations").await?;
        admin.expect_text("2 people invited").await?;
        admin.expect_text("Invitations as Engineer").await?;
        let summary = admin.client.find(Locator::Css(".invite-summary")).await?;
        ensure!(summary.attr("data-tone").await?.as_deref() == Some("success"));

        // A refresh posts nothing and shows no link again.
        admin.client.refresh().await?;
        admin.expect_path(&format!("{ORG}/invitations")).await?;
        admin.expect_text("shown only once").await?;
        admin.expect_no_text("Already invited").await?;
        admin.expect_no_text("/invite/").await?;
        ensure!(admin.rows("email").await?.len() == 3);
        ensure!(pending_badge(&admin).await?.as_deref() == Some("3"));

        // Search by the start of an address.
        admin.fill("Search by email", "LIN").await?;
        admin.press("Search").await?;
        ensure!(
            admin.rows("email").await? == vec!["linus@example.com".to_string()],
            "searching LIN finds {:?}",
            admin.rows("email").await?
        );
        // Resending at once says why on the tab itself.
        admin.press_in_row("linus@example.com", "Resend").await?;
        admin.expect_path(&format!("{ORG}/invitations")).await?;
        admin.expect_text("less than a minute ago").await?;
        admin.check_accessibility().await?;
        Ok(())
    })
    .await;
}

/// Members to act on in bulk, and the one a search finds apart.
fn seed_members(app: &TestApp) {
    for (email, first) in [
        ("dev1@example.com", "Dev"),
        ("dev2@example.com", "Dev"),
        ("dev3@example.com", "Dev"),
        ("sales@example.com", "Sal"),
    ] {
        app.add_member("acme", email, first, "Person", "member", false);
    }
}

#[actix_web::test]
async fn journey_16_5_bulk_actions_without_javascript() {
    let app = spawn_app().await;
    journey("journey_16_5_bulk_nojs", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        seed_members(&app);
        admin.fill("Search", "dev").await?;
        admin.press("Apply").await?;
        ensure!(admin.rows("email").await?.len() == 3);

        // Refused: "Change role" without a role. Same list, same boxes, reason by the form.
        admin.tick("Select dev1@example.com").await?;
        admin.tick("Select dev3@example.com").await?;
        admin
            .select("With selected members", "Change role to…")
            .await?;
        admin.press("Apply to selected").await?;
        admin.expect_text("Choose the role to give.").await?;
        ensure!(
            ticked(&admin, "Select dev1@example.com").await?,
            "dev1 lost its tick"
        );
        ensure!(
            ticked(&admin, "Select dev3@example.com").await?,
            "dev3 lost its tick"
        );
        ensure!(!ticked(&admin, "Select dev2@example.com").await?);
        ensure!(
            field_value(&admin, "Search").await? == "dev",
            "the search was lost"
        );
        ensure!(admin.rows("email").await?.len() == 3, "the filter was lost");
        admin.check_accessibility().await?;

        // Confirmed: the page names the action and the count, and works without script.
        admin.select("With selected members", "Deactivate").await?;
        admin.press("Apply to selected").await?;
        admin.expect_text("Deactivate 2 members?").await?;
        admin.expect_text("dev1@example.com").await?;
        admin.check_accessibility().await?;
        admin.press("Deactivate 2 members").await?;
        admin.expect_text("2 done").await?;

        // Refreshing the result sends the confirmation again; it acts no second time.
        admin.client.refresh().await?;
        admin
            .expect_text("This bulk action was already done")
            .await?;
        ensure!(app.audit_count("acme", "member.deactivated") == 2);
        // It leads back to the list as it was, as "Back to Users" does.
        let path = admin.path().await?;
        ensure!(
            path.contains("q=dev"),
            "back on {path}, not the filtered list"
        );
        for email in ["dev1@example.com", "dev3@example.com"] {
            ensure!(admin.row_attr(email, "status").await? == "inactive");
        }
        ensure!(admin.row_attr("dev2@example.com", "status").await? == "active");
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_16_6_the_audit_trail_reads_as_sentences() {
    let app = spawn_app().await;
    journey("journey_16_6_audit", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        admin.follow_within("Organization", "Groups").await?;
        admin.fill("Name", "Builders").await?;
        admin.press("Create group").await?;
        admin.expect_text("Builders").await?;
        app.add_member("acme", "bo@example.com", "Bo", "Person", "member", false);
        let bo = app.user_id("bo@example.com");
        // Bo joins the group through the Users tab's bulk action.
        admin.follow_within("Organization", "Users").await?;
        admin.tick("Select bo@example.com").await?;
        admin
            .select("With selected members", "Add to group…")
            .await?;
        admin.select("Add to which group", "Builders").await?;
        admin.press("Apply to selected").await?;
        admin.expect_text("Add 1 member to Builders?").await?;
        admin.press("Add 1 member to Builders").await?;
        admin.expect_text("1 done").await?;
        admin.follow_within("Organization", "Audit").await?;
        admin.select("Action", "Added to a group").await?;
        admin.press("Apply").await?;
        admin
            .expect_text(&format!(
                "{ADMIN_EMAIL} added bo@example.com to the group Builders"
            ))
            .await?;
        admin.expect_no_text("did “").await?;
        admin.check_accessibility().await?;
        // Bo's Activity tab tells it too.
        admin.open(&format!("{ORG}/users/{bo}/activity")).await?;
        admin
            .expect_text("added bo@example.com to the group Builders")
            .await?;
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_16_7_roles_explained_and_an_engineer_acts_on_their_pool() {
    let app = spawn_app().await;
    journey("journey_16_7_roles", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        admin.follow_within("Organization", "Pools").await?;
        admin.fill("Name", "Night shift").await?;
        admin.press("Create pool").await?;
        admin.follow_within("Organization", "Pools").await?;
        admin.fill("Name", "Day shift").await?;
        admin.press("Create pool").await?;
        let eve = app.add_member(
            "acme",
            "eve@example.com",
            "Eve",
            "Engineer",
            "engineer",
            true,
        );
        let (org, engineer) = (app.org_id("acme"), app.role_id("acme", "engineer"));
        let pools = portcullis::db::pools::list(&mut app.conn(), &org)?;
        let night = pools
            .iter()
            .find(|p| p.name == "Night shift")
            .context("pool")?;
        let day = pools
            .iter()
            .find(|p| p.name == "Day shift")
            .context("pool")?;
        // Set-up, not a step: Eve belongs to the night shift.
        portcullis::db::pools::add_member(&mut app.conn(), &org, &night.id, &eve, &engineer)?;

        admin.follow_within("Organization", "Roles").await?;
        admin.expect_text("Rank orders the roles").await?;
        admin.expect_text("Act on the pools they belong to").await?;
        admin.expect_text("See the Users tab").await?;
        let engineers = admin
            .client
            .find(Locator::Css("tr[data-role='engineer'] [data-members]"))
            .await?;
        ensure!(engineers.attr("data-members").await?.as_deref() == Some("1"));
        admin.check_accessibility().await?;

        let e = j.browser(&app).await?;
        e.open("/login").await?;
        e.sign_in("eve@example.com", MEMBER_PASSWORD).await?;
        e.open(&format!("{ORG}/pools/{}", night.id)).await?;
        e.fill("Name", "Night owls").await?;
        e.press("Save pool").await?;
        e.expect_text("Night owls").await?;
        e.open(&format!("{ORG}/pools/{}", day.id)).await?;
        e.expect_no_text("Night owls").await?;
        ensure!(
            e.field("Name").await.is_err(),
            "a pool Eve is not in offers her its form"
        );
        Ok(())
    })
    .await;
}
