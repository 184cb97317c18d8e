//! Journeys 7, 8 and 9: the Users tab, one member's actions, and bulk actions.

use anyhow::{Result, ensure};

use super::entry::create_first_admin;
use super::{Chrome, Js, journey};
use crate::helpers::{ADMIN_EMAIL, MEMBER_PASSWORD, TestApp, spawn_app};

const ORG: &str = "acme";

/// `n` members named `person-NN@example.com` who cannot sign in, for lists to page through.
fn add_people(app: &TestApp, n: usize) {
    for i in 0..n {
        app.add_member(
            ORG,
            &format!("person-{i:02}@example.com"),
            "Person",
            &format!("{i:02}"),
            "member",
            false,
        );
    }
}

#[actix_web::test]
async fn journey_07_users_tab_search_filters_sort_pages_and_profile_tabs() {
    let app = spawn_app().await;
    journey("journey_07_users_tab", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        add_people(&app, 55);
        let grace = app.add_member(
            ORG,
            "grace.hopper@example.com",
            "Grace",
            "Hopper",
            "manager",
            false,
        );
        portcullis::db::two_factor::set_auth_method(&mut app.conn(), &grace, "password+totp")?;
        let idle = app.add_member(ORG, "idle@example.com", "Ivy", "Idle", "member", false);
        app.deactivate_for_setup(ORG, &idle);
        // Auth method is a secondary column: it shows from 1700 px on.
        admin.client.set_window_size(1920, 1080).await?;
        admin.open("/orgs/acme/users").await?;

        admin.fill("Search", "hopper").await?;
        admin.press("Apply").await?;
        ensure!(admin.rows("email").await? == ["grace.hopper@example.com"]);
        admin.fill("Search", "").await?;

        admin.select("Status", "Inactive").await?;
        admin.press("Apply").await?;
        ensure!(admin.rows("email").await? == ["idle@example.com"]);
        admin.select("Status", "All").await?;
        admin.select("Role", "Manager").await?;
        admin.press("Apply").await?;
        ensure!(admin.rows("email").await? == ["grace.hopper@example.com"]);

        // The Auth method filter, alone and kept when the page is sorted.
        admin.select("Role", "All roles").await?;
        admin.select("Auth method", "Password + TOTP").await?;
        admin.press("Apply").await?;
        ensure!(admin.rows("email").await? == ["grace.hopper@example.com"]);
        let row = admin.row_text("grace.hopper@example.com").await?;
        ensure!(row.contains("Password + TOTP"), "{row}");
        admin.follow("Name").await?;
        ensure!(admin.rows("email").await? == ["grace.hopper@example.com"]);
        // A prefix search among the few on two-factor tests it on them alone.
        admin.fill("Search", "gr").await?;
        admin.press("Apply").await?;
        ensure!(admin.rows("email").await? == ["grace.hopper@example.com"]);
        admin.fill("Search", "pe").await?;
        admin.press("Apply").await?;
        ensure!(admin.rows("email").await?.is_empty());
        admin.fill("Search", "").await?;
        admin.select("Auth method", "Password").await?;
        admin.press("Apply").await?;
        let with_password = admin.rows("email").await?;
        ensure!(with_password.len() == 50, "{with_password:?}");
        ensure!(!with_password.contains(&"grace.hopper@example.com".to_string()));
        admin.select("Auth method", "All").await?;

        admin.select("Role", "All roles").await?;
        admin.select("Sort by", "Email (Z–A)").await?;
        admin.press("Apply").await?;
        let first_page = admin.rows("email").await?;
        ensure!(first_page.len() == 50, "a page holds 50: {first_page:?}");
        ensure!(first_page[0] == "person-54@example.com", "{first_page:?}");
        let mut sorted = first_page.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        ensure!(first_page == sorted, "Z–A order: {first_page:?}");

        admin.expect_text("1–50 of 58").await?;
        admin.follow("Next page →").await?;
        let second_page = admin.rows("email").await?;
        ensure!(second_page.len() == 8, "58 members in all: {second_page:?}");
        ensure!(second_page.last().map(String::as_str) == Some("admin@example.com"));
        ensure!(second_page.iter().all(|e| !first_page.contains(e)));
        admin.expect_text("51–58 of 58").await?;
        admin.follow("← Previous page").await?;
        ensure!(admin.rows("email").await? == first_page);
        admin.expect_text("1–50 of 58").await?;

        admin.fill("Search", "grace").await?;
        admin.press("Apply").await?;
        admin.follow("grace.hopper@example.com").await?;
        admin.expect_text("Grace Hopper").await?;
        admin.expect_text("Manager").await?;
        for (tab, says) in [
            ("Groups Associated", "Not a member of any group."),
            ("Pools", "Not a member of any pool."),
            ("Activity", "Activity"),
            ("Details", "Auth method"),
        ] {
            admin.follow_within("Member", tab).await?;
            admin.expect_text(says).await?;
        }
        Ok(())
    })
    .await;
}

/// Journey 8: deactivate and re-activate, make admin, delete with the typed email, and
/// delete someone who owns a pool, choosing who takes it over.
async fn member_actions(name: &'static str, js: Js) {
    let app = spawn_app().await;
    journey(name, |j| async move {
        let admin = create_first_admin(&j, &app, js).await?;
        app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", false);
        app.add_member(ORG, "mia@example.com", "Mia", "Manager", "manager", true);
        admin
            .open("/orgs/acme/users?status=active&sort=email")
            .await?;

        // One's own row offers no way to lock oneself out.
        ensure!(!admin.row_text(ADMIN_EMAIL).await?.contains("Deactivate"));

        admin.press_in_row("bob@example.com", "Deactivate").await?;
        admin.expect_text("Deactivate bob@example.com?").await?;
        admin.press("Deactivate bob@example.com").await?;
        admin.expect_text("bob@example.com was deactivated").await?;
        // Back on the same filtered page, where Bob no longer shows.
        admin
            .expect_path("/orgs/acme/users?status=active&sort=email")
            .await?;
        ensure!(
            !admin
                .rows("email")
                .await?
                .contains(&"bob@example.com".into())
        );
        admin.select("Status", "Inactive").await?;
        admin.press("Apply").await?;
        ensure!(admin.row_attr("bob@example.com", "status").await? == "inactive");
        admin.press_in_row("bob@example.com", "Activate").await?;
        admin.expect_text("bob@example.com is active again").await?;

        admin.open("/orgs/acme/users").await?;
        admin.follow("bob@example.com").await?;
        admin.press("Make admin").await?;
        admin
            .expect_text("Make bob@example.com an admin of Acme?")
            .await?;
        admin.press("Make bob@example.com an admin").await?;
        admin.expect_text("bob@example.com is now an admin").await?;
        admin.open("/orgs/acme/users").await?;
        ensure!(admin.row_attr("bob@example.com", "role").await? == "admin");

        admin.follow("bob@example.com").await?;
        admin.press("Remove…").await?;
        admin
            .fill("Type bob@example.com to confirm", "rob@example.com")
            .await?;
        admin.press("Remove from Acme").await?;
        admin
            .expect_text("Type the member's email address exactly to confirm.")
            .await?;
        admin
            .fill("Type bob@example.com to confirm", "bob@example.com")
            .await?;
        admin.press("Remove from Acme").await?;
        admin
            .expect_text("bob@example.com was removed from Acme")
            .await?;
        ensure!(
            !admin
                .rows("email")
                .await?
                .contains(&"bob@example.com".into())
        );

        // Mia creates a pool of her own, then is removed: someone must take it over.
        let mia = j.browser_with(&app, js).await?;
        mia.open("/login").await?;
        mia.sign_in("mia@example.com", MEMBER_PASSWORD).await?;
        mia.open("/orgs/acme/pools").await?;
        mia.fill("Name", "Render farm").await?;
        mia.press("Create pool").await?;
        mia.expect_text("Render farm").await?;

        admin.open("/orgs/acme/users").await?;
        admin.follow("mia@example.com").await?;
        admin.press("Remove…").await?;
        admin.expect_text("Pool Render farm").await?;
        admin.pick_member("New owner", ADMIN_EMAIL).await?;
        admin
            .fill("Type mia@example.com to confirm", "mia@example.com")
            .await?;
        admin.press("Remove from Acme").await?;
        admin
            .expect_text("mia@example.com was removed from Acme")
            .await?;
        admin.open("/orgs/acme/audit").await?;
        admin.expect_text("removed mia@example.com").await?;

        // Mia's next request finds her outside the organization.
        mia.open("/orgs/acme/pools").await?;
        mia.expect_no_text("Render farm").await?;
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_08_deactivate_activate_make_admin_and_delete() {
    member_actions("journey_08_member_actions", Js::On).await;
}

#[actix_web::test]
async fn journey_08_member_actions_without_javascript() {
    member_actions("journey_08_member_actions_nojs", Js::Off).await;
}

async fn tick_rows(chrome: &Chrome, emails: &[&str]) -> Result<()> {
    for email in emails {
        chrome.tick(&format!("Select {email}")).await?;
    }
    Ok(())
}

/// Journey 9: bulk deactivate and bulk role change, each confirmed on a page that names
/// the action and the count, ending on a result per member.
async fn bulk_actions(name: &'static str, js: Js) {
    let app = spawn_app().await;
    journey(name, |j| async move {
        let admin = create_first_admin(&j, &app, js).await?;
        for who in ["ann", "ben", "cat", "dan"] {
            app.add_member(
                ORG,
                &format!("{who}@example.com"),
                who,
                "Example",
                "member",
                false,
            );
        }
        admin.open("/orgs/acme/users").await?;

        tick_rows(&admin, &["ann@example.com", "ben@example.com", ADMIN_EMAIL]).await?;
        admin.select("With selected members", "Deactivate").await?;
        admin.press("Apply to selected").await?;
        admin.expect_text("Deactivate 2 members?").await?;
        admin.expect_text("you: skipped").await?;
        admin.press("Deactivate 2 members").await?;
        for email in ["ann@example.com", "ben@example.com"] {
            ensure!(admin.row_attr(email, "result").await? == "done", "{email}");
        }
        ensure!(admin.row_attr(ADMIN_EMAIL, "result").await? == "skipped");
        admin
            .expect_text("bulk actions never change your own membership")
            .await?;

        admin.follow("Back to Users").await?;
        ensure!(admin.row_attr("ann@example.com", "status").await? == "inactive");
        ensure!(admin.row_attr("cat@example.com", "status").await? == "active");

        tick_rows(&admin, &["cat@example.com", "dan@example.com"]).await?;
        admin
            .select("With selected members", "Change role to…")
            .await?;
        admin.select("New role", "Manager").await?;
        admin.press("Apply to selected").await?;
        admin
            .expect_text("Change the role of 2 members to Manager?")
            .await?;
        admin
            .press("Change the role of 2 members to Manager")
            .await?;
        admin.expect_text("2 done").await?;
        admin.follow("Back to Users").await?;
        for email in ["cat@example.com", "dan@example.com"] {
            ensure!(admin.row_attr(email, "role").await? == "manager", "{email}");
        }
        ensure!(admin.row_attr("ann@example.com", "role").await? == "member");
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_09_bulk_deactivate_and_set_role() {
    bulk_actions("journey_09_bulk", Js::On).await;
}

#[actix_web::test]
async fn journey_09_bulk_without_javascript() {
    bulk_actions("journey_09_bulk_nojs", Js::Off).await;
}

/// A Member leaves the organization from their own profile, mistyping their address
/// first. The mistake's page still cancels back to the profile, and leaving lands on the
/// list of organizations with a word that it worked (it landed on this organization's
/// Users tab, a 404 now that they are not in it, and the word was lost).
#[actix_web::test]
async fn a_member_leaves_the_organization_from_their_profile() {
    let app = spawn_app().await;
    journey("member_leaves", |j| async move {
        create_first_admin(&j, &app, Js::On).await?;
        // A plain Member, who manages nobody: leaving takes no permission.
        let bob = app.add_member(ORG, "bob@example.com", "Bob", "Builder", "member", true);
        let chrome = j.browser(&app).await?;
        chrome.open("/login").await?;
        chrome.sign_in("bob@example.com", MEMBER_PASSWORD).await?;
        let profile = format!("/orgs/{ORG}/users/{bob}");
        chrome.open(&profile).await?;
        chrome.follow("Leave organization…").await?;
        chrome
            .fill("Type bob@example.com to confirm", "bob@example.org")
            .await?;
        chrome.press("Leave Acme").await?;
        chrome
            .expect_text("email address exactly to confirm")
            .await?;
        chrome.follow("Cancel").await?;
        chrome.expect_path(&profile).await?;

        chrome.follow("Leave organization…").await?;
        chrome
            .fill("Type bob@example.com to confirm", "bob@example.com")
            .await?;
        chrome.press("Leave Acme").await?;
        chrome.expect_path("/orgs").await?;
        chrome.expect_text("You left Acme.").await?;
        ensure!(
            app.membership_status(ORG, &bob).is_none(),
            "no longer a member"
        );
        Ok(())
    })
    .await;
}

/// An auditor (a custom role with `audit.read` only) signs in without JavaScript and
/// lands on the audit trail, with no Users or Groups tab to lead them to a refusal, and
/// signs out. Before, signing in led to the Users tab's
/// 403, whose only way out led back to it.
#[actix_web::test]
async fn an_auditor_lands_on_the_audit_trail() {
    let app = spawn_app().await;
    journey("auditor_lands_on_audit", |j| async move {
        create_first_admin(&j, &app, Js::Off).await?;
        let org = app.org_id(ORG);
        let role = portcullis::db::roles::insert_custom(
            &mut app.conn(),
            &org,
            "Auditor",
            "audit.read",
            10,
        )?;
        app.add_member(
            ORG,
            "audrey@example.com",
            "Audrey",
            "A",
            &format!("custom-{role}"),
            true,
        );

        let auditor = j.browser_with(&app, Js::Off).await?;
        auditor.open("/login").await?;
        auditor
            .sign_in("audrey@example.com", MEMBER_PASSWORD)
            .await?;
        auditor.expect_path(&format!("/orgs/{ORG}/audit")).await?;
        let tabs = auditor
            .client
            .find(fantoccini::Locator::Css("nav[aria-label='Organization']"))
            .await?
            .text()
            .await?;
        ensure!(
            tabs.contains("Audit") && !tabs.contains("Users") && !tabs.contains("Groups"),
            "{tabs}"
        );
        auditor.sign_out().await?;
        auditor.expect_path("/login").await?;
        Ok(())
    })
    .await;
}
