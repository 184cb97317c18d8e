//! Issue 16, items 8 and 9: the platform's account search, its selects and organization
//! links; pool names unique among siblings and the pool tree on the invite form; and the
//! page details a person sees (hidden controls stay hidden, pills and checkbox cells
//! keep their size, long emails wrap, repeated buttons say whose row they act on).

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use serde_json::Value;

use super::entry::create_first_admin;
use super::{Chrome, Js, journey, mailed_to};
use crate::helpers::{MEMBER_PASSWORD, spawn_app};

const BOB: &str = "bob@example.com";

/// A number the page computes about the first element matching `css` (e.g. its width).
async fn measure(chrome: &Chrome, css: &str, expression: &str) -> Result<f64> {
    let element = chrome
        .client
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("no element {css}"))?;
    let value = chrome
        .client
        .execute(
            &format!("var e = arguments[0]; return {expression};"),
            vec![serde_json::to_value(&element)?],
        )
        .await?;
    value
        .as_f64()
        .with_context(|| format!("{expression} of {css} is {value}"))
}

#[actix_web::test]
async fn a_platform_admin_searches_accounts_and_creates_one_from_choices() {
    let app = spawn_app().await;
    journey("platform_search_and_choices", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        app.add_member("acme", BOB, "Bob", "Builder", "member", true);
        app.add_member("acme", "bobby@example.com", "Bobby", "B", "member", true);
        app.add_member("acme", "carol@example.com", "Carol", "C", "member", true);
        app.create_org("globex", "Globex");
        let globex = app.org_id("globex");
        portcullis::db::groups::insert(&mut app.conn(), &globex, "Night desk", "", None, None)?;

        admin.open_menu("Account menu").await?;
        admin.follow("Platform administration").await?;
        admin.follow("Accounts").await?;
        admin.fill("Email starts with", "BOB").await?;
        admin.press("Search").await?;
        ensure!(admin.rows("email").await? == vec![BOB.to_string(), "bobby@example.com".into()]);

        // The account's page links its organization.
        admin.follow(BOB).await?;
        admin.expect_text("Memberships").await?;
        let acme = admin
            .client
            .find(Locator::Css("tr[data-org='acme'] a"))
            .await?;
        admin.click(acme, "Acme").await?;
        admin.expect_path("/admin/audit").await?;
        admin.expect_text("Acme").await?;

        // A new account in Globex: its roles and groups are choices, not ids to type.
        admin.open("/admin/users").await?;
        admin
            .select("Organization for the new account", "Globex")
            .await?;
        admin.press("Choose organization").await?;
        admin.fill("Email", "dana@globex.test").await?;
        admin.fill("First name", "Dana").await?;
        admin.fill("Last name", "Scully").await?;
        admin.select("Role in Globex", "Engineer").await?;
        admin.tick("Night desk").await?;
        admin.press("Create account").await?;
        admin
            .expect_text("dana@globex.test was created as a member of Globex")
            .await?;
        let dana = app.user_id("dana@globex.test");
        ensure!(app.member_role("globex", &dana).as_deref() == Some("engineer"));

        // The organizations list links each organization's page.
        admin.follow("Organizations").await?;
        admin.follow("Globex").await?;
        admin.expect_path("/admin/audit").await?;
        admin.expect_text("dana@globex.test").await?;
        Ok(())
    })
    .await;
}

/// A new organization whose first admin already has an account: the platform admin sees
/// that an invitation went out, and the account's owner joins as Admin from the email.
#[actix_web::test]
async fn an_existing_account_becomes_a_new_organizations_admin_from_the_mailed_invitation() {
    let app = spawn_app().await;
    journey("platform_org_for_existing_account", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        app.add_member("acme", BOB, "Bob", "Builder", "member", true);

        admin.open_menu("Account menu").await?;
        admin.follow("Platform administration").await?;
        admin.follow("Organizations").await?;
        admin.fill("Name", "Globex").await?;
        admin.fill("First admin's email", BOB).await?;
        admin.press("Create organization").await?;
        admin
            .expect_text(&format!(
                "{BOB} already has an account, so it was sent an invitation"
            ))
            .await?;
        let bob = app.user_id(BOB);
        ensure!(
            app.member_role("globex", &bob).is_none(),
            "not before he accepts"
        );

        let link = mailed_to(&app, BOB).await?.invite_path();
        let invitee = j.browser(&app).await?;
        invitee.open(&link).await?;
        invitee.expect_text("Globex").await?;
        invitee.follow("Sign in to accept").await?;
        invitee.sign_in(BOB, MEMBER_PASSWORD).await?;
        invitee.expect_path(&link).await?;
        invitee.press("Join Globex").await?;
        invitee.expect_path("/orgs/globex/users").await?;
        invitee.expect_text("You joined Globex.").await?;
        ensure!(app.member_role("globex", &bob).as_deref() == Some("admin"));
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn sibling_pools_need_distinct_names_and_the_invite_form_shows_the_tree() {
    let app = spawn_app().await;
    journey("pool_names_and_tree", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        admin.follow_within("Organization", "Pools").await?;
        for name in ["Ops", "Ads"] {
            admin.fill("Name", name).await?;
            admin.press("Create pool").await?;
            admin.expect_text(&format!("Pool {name} created.")).await?;
            admin.follow_within("Organization", "Pools").await?;
        }
        admin.fill("Name", "ops").await?;
        admin.press("Create pool").await?;
        admin
            .expect_text("Another pool at this level already has this name")
            .await?;
        // The same name under each parent is fine.
        for parent in ["Ops", "Ads"] {
            admin.follow_within("Organization", "Pools").await?;
            admin.fill("Name", "Berlin").await?;
            admin.select("Inside", parent).await?;
            admin.press("Create pool").await?;
            admin.expect_text("Pool Berlin created.").await?;
        }

        admin.follow_within("Organization", "Invited").await?;
        admin.follow("Invite people").await?;
        let labels = admin
            .client
            .find_all(Locator::Css("input[name=pool_ids] + label"))
            .await?;
        let mut shown = Vec::new();
        for label in labels {
            shown.push(label.text().await?.trim().to_string());
        }
        ensure!(
            shown == ["Ads", "Berlin in Ads", "Ops", "Berlin in Ops"],
            "{shown:?}"
        );
        // A sub-pool sits indented under its parent.
        let top = measure(
            &admin,
            "input[name=pool_ids]",
            "e.getBoundingClientRect().left",
        )
        .await?;
        let sub = measure(
            &admin,
            ".indent-1 input[name=pool_ids]",
            "e.getBoundingClientRect().left",
        )
        .await?;
        ensure!(sub > top + 10.0, "sub-pool at {sub}, parent at {top}");
        admin.fill("Email addresses", "eve@example.com").await?;
        admin.tick("Berlin in Ops").await?;
        admin.press("Send invitations").await?;
        admin.expect_text("1 person invited").await?;
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn page_details_hold_without_javascript() {
    let app = spawn_app().await;
    journey("page_details_without_js", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        let long = "a.very.long.address.that.never.breaks.by.itself.anywhere@subdomain.example-company.test";
        app.add_member("acme", long, "Long", "Address", "member", true);

        // The invite results: the link shows, a "Copy link" button that needs a script
        // does not.
        admin.follow_within("Organization", "Invited").await?;
        admin.follow("Invite people").await?;
        admin.fill("Email addresses", "zoe@example.com").await?;
        admin.press("Send invitations").await?;
        admin.expect_text("/invite/").await?;
        let copy = admin
            .client
            .find(Locator::Css("button[data-copy]"))
            .await?;
        ensure!(!copy.is_displayed().await?, "a dead Copy link button shows");

        // The status pills on the Invited tab keep their own width.
        admin.follow_within("Organization", "Invited").await?;
        let pill = measure(&admin, "nav[aria-label='Filter by status'] a", "e.getBoundingClientRect().width").await?;
        ensure!(pill < 200.0, "a status pill is {pill}px wide");
        ensure!(
            admin
                .field("Resend the invitation to zoe@example.com")
                .await
                .is_ok(),
            "Resend says whose invitation it sends"
        );

        // The Users tab's checkbox column stays narrow.
        admin.follow_within("Organization", "Users").await?;
        let cell = measure(&admin, "td.check", "e.getBoundingClientRect().width").await?;
        ensure!(cell < 80.0, "the checkbox cell is {cell}px wide");
        let display = admin
            .client
            .execute(
                "return getComputedStyle(document.querySelector('td.check')).display;",
                vec![],
            )
            .await?;
        ensure!(display == Value::String("table-cell".into()), "{display}");

        // The removal card wraps a long email instead of running past its edge.
        admin.follow_in_row(long, long).await?;
        admin.follow("Remove…").await?;
        admin.expect_text("Type").await?;
        let overflow = measure(&admin, ".card", "e.scrollWidth - e.clientWidth").await?;
        ensure!(overflow <= 0.0, "the card overflows by {overflow}px");
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn repeated_pool_buttons_name_whose_row_they_act_on() {
    let app = spawn_app().await;
    journey("pool_button_names", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        app.add_member("acme", BOB, "Bob", "Builder", "member", true);
        admin.follow_within("Organization", "Pools").await?;
        admin.fill("Name", "Ops").await?;
        admin.press("Create pool").await?;
        admin.pick_member("Add a member", BOB).await?;
        admin.press("Add to Ops").await?;
        admin.expect_text("bob@example.com").await?;
        let remove = admin.field("Remove bob@example.com from Ops").await?;
        remove.click().await?;
        admin
            .expect_text("bob@example.com removed from the pool.")
            .await?;
        ensure!(admin.rows("email").await?.is_empty());
        Ok(())
    })
    .await;
}

/// A platform admin acting on an account found by a search, on its list's second page,
/// comes back to that page of that search, with or without JavaScript: disabling (through
/// its confirmation), enabling, and adding the account to an organization.
#[actix_web::test]
async fn acting_on_an_account_keeps_the_searched_page_of_the_list() {
    for js in [Js::On, Js::Off] {
        let app = spawn_app().await;
        let name = match js {
            Js::On => "platform_list_kept_js",
            Js::Off => "platform_list_kept_no_js",
        };
        journey(name, |j| async move {
            let admin = create_first_admin(&j, &app, js).await?;
            crate::admin::insert_accounts(&app, (0..55).map(|i| format!("ann{i:02}@example.com")));
            let target = "ann52@example.com";
            admin.open("/admin/users").await?;
            admin.fill("Email starts with", "ann").await?;
            admin.press("Search").await?;
            admin.follow("Next page").await?;
            let second_page = admin.path().await?;
            ensure!(second_page.contains("after="), "on {second_page}");

            admin.press_in_row_and_confirm(target, "Disable").await?;
            admin.expect_text(&format!("{target} is disabled")).await?;
            ensure!(
                admin.path().await? == second_page,
                "back on {}",
                admin.path().await?
            );
            ensure!(admin.row_attr(target, "status").await? == "disabled");

            admin.press_in_row(target, "Enable").await?;
            admin
                .expect_text(&format!("{target} can sign in again"))
                .await?;
            ensure!(
                admin.path().await? == second_page,
                "back on {}",
                admin.path().await?
            );

            let summary = admin
                .client
                .find(Locator::XPath(&format!(
                    "//tr[@data-email='{target}']//summary"
                )))
                .await?;
            summary.click().await?;
            admin.press_in_row(target, "Add").await?;
            admin
                .expect_text(&format!("{target} is now a member of Acme"))
                .await?;
            ensure!(
                admin.path().await? == second_page,
                "back on {}",
                admin.path().await?
            );
            Ok(())
        })
        .await;
    }
}
