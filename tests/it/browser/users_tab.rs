//! Issue 16, items 1 and 2: the Users tab that fits (row menu, inline role change, the
//! effective role and where it comes from, paging with "1–50 of N", actions that come
//! back to the same filtered page), the member picker that scales, and the screenshots
//! the README shows.

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use serde_json::Value;

use super::entry::create_first_admin;
use super::{Chrome, Js, journey, target_dir};
use crate::helpers::{TestApp, spawn_app};

const ORG: &str = "acme";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

/// `n` members named `member-NNN@example.com`, for lists to page through.
fn add_people(app: &TestApp, n: usize) {
    for i in 0..n {
        app.add_member(
            ORG,
            &format!("member-{i:03}@example.com"),
            "Member",
            &format!("{i:03}"),
            "member",
            false,
        );
    }
}

/// Whether the page scrolls sideways at the window's width (it must not).
async fn scrolls_sideways(chrome: &Chrome) -> Result<bool> {
    let wide = chrome
        .client
        .execute(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
            vec![],
        )
        .await?;
    Ok(wide == Value::Bool(true))
}

async fn resize(chrome: &Chrome, width: u32, height: u32) -> Result<()> {
    chrome.client.set_window_size(width, height).await?;
    Ok(())
}

/// A group granting `role`, made through the Groups tab, with `member` picked into it.
async fn group_granting(chrome: &Chrome, name: &str, role: &str, member: &str) -> Result<()> {
    chrome.open("/orgs/acme/groups").await?;
    chrome.fill("Name", name).await?;
    chrome.select("Role granted to members", role).await?;
    chrome.press("Create group").await?;
    chrome
        .expect_text(&format!("Group {name} created."))
        .await?;
    chrome.pick_member("Add a member", member).await?;
    chrome.press(&format!("Add to {name}")).await?;
    chrome
        .expect_text(&format!("{member} added to the group."))
        .await
}

/// Item 1 without JavaScript: the tab fits from 1280 to 1920 px and turns into cards
/// on a phone; pages say where they are; the role changes in place; the effective role
/// names its sources; row actions come back to the same filtered page.
#[actix_web::test]
async fn journey_users_tab_fits_changes_roles_in_place_and_keeps_the_page_without_javascript() {
    let app = spawn_app().await;
    journey("journey_users_tab_item_1_nojs", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        add_people(&app, 60);
        app.add_member(ORG, BOB, "Bob", "Builder", "member", false);
        app.add_member(ORG, CAROL, "Carol", "Coder", "member", false);
        group_granting(&admin, "Ops", "Manager", BOB).await?;

        admin.open("/orgs/acme/users").await?;
        admin.expect_text("1–50 of 63").await?;
        for width in [1280, 1440, 1920] {
            resize(&admin, width, 900).await?;
            ensure!(
                !scrolls_sideways(&admin).await?,
                "the Users tab scrolls sideways at {width} px"
            );
        }
        admin.follow("Next page →").await?;
        admin.expect_text("51–63 of 63").await?;
        admin.follow("← Previous page").await?;
        admin.expect_text("1–50 of 63").await?;

        // Bob's own role is Member, but the group Ops makes him a Manager: the column
        // says so, and its disclosure names both sources.
        admin.fill("Search", "bob").await?;
        admin.press("Apply").await?;
        let filtered = "/orgs/acme/users?q=bob&sort=email";
        ensure!(admin.row_attr(BOB, "effective-role").await? == "Manager");
        admin
            .client
            .find(Locator::XPath(
                "//tr[@data-email='bob@example.com']//details[contains(@class,'role-sources')]/summary",
            ))
            .await?
            .click()
            .await?;
        let row = admin.row_text(BOB).await?;
        ensure!(row.contains("Group Ops: Manager"), "{row}");
        ensure!(row.contains("Direct: Member"), "{row}");

        // The role changes in the row, and the page stays the filtered one.
        admin.select("Role of bob@example.com", "Engineer").await?;
        admin.press_in_row(BOB, "Save").await?;
        admin
            .expect_text("bob@example.com now has the Engineer role.")
            .await?;
        admin.expect_path(filtered).await?;
        ensure!(admin.row_attr(BOB, "role").await? == "engineer");
        ensure!(app.member_role(ORG, &app.user_id(BOB)).as_deref() == Some("engineer"));

        // Deactivating from the row menu comes back to the same filtered page too.
        admin.fill("Search", "carol").await?;
        admin.select("Status", "Active").await?;
        admin.press("Apply").await?;
        admin.press_in_row_and_confirm(CAROL, "Deactivate").await?;
        admin.expect_text("carol@example.com was deactivated").await?;
        admin
            .expect_path("/orgs/acme/users?q=carol&status=active&sort=email")
            .await?;
        ensure!(admin.rows("email").await?.is_empty());

        // So does removing someone, after the typed confirmation; Cancel goes back too.
        admin.fill("Search", "example.com").await?;
        admin.select("Status", "Inactive").await?;
        admin.press("Apply").await?;
        let inactive = "/orgs/acme/users?q=example.com&status=inactive&sort=email";
        admin.follow_in_row(CAROL, "Remove…").await?;
        admin.follow("Cancel").await?;
        admin.expect_path(inactive).await?;
        admin.follow_in_row(CAROL, "Remove…").await?;
        admin.fill("Type carol@example.com to confirm", CAROL).await?;
        admin.press("Remove from Acme").await?;
        admin
            .expect_text("carol@example.com was removed from Acme.")
            .await?;
        admin.expect_path(inactive).await?;
        ensure!(app.member_role(ORG, &app.user_id(CAROL)).is_none());

        // Repeated buttons say whose row they act on.
        admin.open("/orgs/acme/users?q=bob").await?;
        for name in [
            "View bob@example.com",
            "Deactivate bob@example.com",
            "Save role of bob@example.com",
        ] {
            admin
                .client
                .find(Locator::XPath(&format!(
                    "//tr[@data-email='bob@example.com']//*[@aria-label='{name}']"
                )))
                .await
                .with_context(|| format!("no control named {name:?}"))?;
        }

        // On a phone every row is a card: nothing scrolls sideways.
        resize(&admin, 390, 844).await?;
        admin.open("/orgs/acme/users").await?;
        ensure!(!scrolls_sideways(&admin).await?, "the card list scrolls sideways");
        let display = admin
            .client
            .execute(
                "return getComputedStyle(document.querySelector('tbody tr[data-id]')).display;",
                vec![],
            )
            .await?;
        ensure!(display == "block", "rows are cards: {display}");
        Ok(())
    })
    .await;
}

/// Item 2: the member picker, searching as one types with JavaScript, by a Search
/// button without it; and the profile's "Add to group" and "Add to pool".
async fn picker_journey(name: &'static str, js: Js) {
    let app = spawn_app().await;
    journey(name, |j| async move {
        let admin = create_first_admin(&j, &app, js).await?;
        add_people(&app, 30);
        app.add_member(ORG, BOB, "Bob", "Builder", "member", false);
        app.create_org("globex", "Globex");
        app.add_member(
            "globex",
            "bobby@globex.example",
            "Bobby",
            "Other",
            "member",
            false,
        );

        admin.open("/orgs/acme/groups").await?;
        admin.fill("Name", "Ops").await?;
        admin.press("Create group").await?;
        admin.expect_text("Group Ops created.").await?;
        if js == Js::On {
            // Typing alone brings the matches: no Search press, no page load.
            admin.fill("Find a member by email or name", "bob").await?;
            admin.tick_match("Add a member", BOB).await?;
        } else {
            admin.pick_member("Add a member", BOB).await?;
        }
        // Another organization's Bobby is never offered; a search lists at most 20.
        let offered = admin.text().await?;
        ensure!(!offered.contains("bobby@globex.example"), "{offered}");
        admin.press("Add to Ops").await?;
        admin
            .expect_text("bob@example.com added to the group.")
            .await?;
        ensure!(admin.rows("email").await? == [BOB]);
        admin.search_members("Add a member", "member").await?;
        let offered = admin
            .client
            .find_all(Locator::Css("fieldset#user_id-picker li[data-email]"))
            .await?
            .len();
        ensure!(offered == 20, "at most 20 matches, got {offered}");

        // The owner is chosen the same way, and the current one stays ticked.
        admin.pick_member("Owner", "member-007@example.com").await?;
        admin.press("Save group").await?;
        admin.expect_text("Group saved.").await?;
        admin.open("/orgs/acme/groups").await?;
        ensure!(admin.text().await?.contains("member-007@example.com"));

        // A pool, and Bob added to it and to a second group from his profile.
        admin.open("/orgs/acme/pools").await?;
        admin.fill("Name", "Render farm").await?;
        admin.press("Create pool").await?;
        admin.expect_text("Pool Render farm created.").await?;
        admin.open("/orgs/acme/groups").await?;
        admin.fill("Name", "Night shift").await?;
        admin.press("Create group").await?;
        admin.open("/orgs/acme/users?q=bob").await?;
        admin.follow_in_row(BOB, "View").await?;
        admin.follow_within("Member", "Groups Associated").await?;
        admin.select("Group", "Night shift").await?;
        admin.press("Add bob@example.com to the group").await?;
        admin
            .expect_text("bob@example.com added to the group.")
            .await?;
        admin.expect_text("Night shift").await?;
        admin.follow_within("Member", "Pools").await?;
        admin.select("Pool", "Render farm").await?;
        admin.select("Pool role", "Engineer").await?;
        admin.press("Add bob@example.com to the pool").await?;
        admin
            .expect_text("bob@example.com added to the pool.")
            .await?;
        let pools = admin.text().await?;
        ensure!(
            pools.contains("Render farm") && pools.contains("Engineer"),
            "{pools}"
        );
        Ok(())
    })
    .await;
}

/// Issue 12: a term nearly every member matches has the server walk the sort index for a
/// page of matches instead of sorting them all. In the browser the search still pages
/// through every match exactly once, in the order asked, whichever way it runs.
async fn common_term_journey(name: &'static str, js: Js) {
    let app = spawn_app().await;
    journey(name, |j| async move {
        let admin = create_first_admin(&j, &app, js).await?;
        // 300 addresses ending in `demo.example`, more than the text-index plan sorts.
        portcullis::seed_members::seed_members(&mut app.conn(), ORG, 300, |_| {})?;
        app.add_member(ORG, BOB, "Bob", "Builder", "member", false);
        admin.open("/orgs/acme/users").await?;
        for (order, descending) in [
            ("Email (A–Z)", Some(false)),
            ("Email (Z–A)", Some(true)),
            ("Name (Z–A)", None),
        ] {
            admin.fill("Search", "demo.example").await?;
            admin.select("Sort by", order).await?;
            admin.press("Apply").await?;
            let mut seen = Vec::new();
            loop {
                let page = admin.rows("email").await?;
                ensure!(!page.is_empty(), "{order}: an empty page");
                seen.extend(page);
                let next = admin
                    .client
                    .find(Locator::LinkText("Next page →"))
                    .await
                    .is_ok();
                if !next {
                    break;
                }
                admin.follow("Next page →").await?;
            }
            ensure!(
                seen.iter().all(|e| e.ends_with("@demo.example")),
                "{order}: a row that does not match"
            );
            let mut once = seen.clone();
            once.sort();
            once.dedup();
            ensure!(
                seen.len() == 300 && once.len() == 300,
                "{order}: {} rows, {} distinct",
                seen.len(),
                once.len()
            );
            if let Some(descending) = descending {
                let mut ordered = once;
                if descending {
                    ordered.reverse();
                }
                ensure!(seen == ordered, "{order}: rows out of order");
            }
        }
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_users_tab_pages_through_a_common_term() {
    common_term_journey("journey_users_tab_common_term_js", Js::On).await;
}

#[actix_web::test]
async fn journey_users_tab_pages_through_a_common_term_without_javascript() {
    common_term_journey("journey_users_tab_common_term_nojs", Js::Off).await;
}

#[actix_web::test]
async fn journey_member_picker_searches_as_one_types() {
    picker_journey("journey_member_picker_js", Js::On).await;
}

#[actix_web::test]
async fn journey_member_picker_without_javascript() {
    picker_journey("journey_member_picker_nojs", Js::Off).await;
}

async fn shoot(chrome: &Chrome, name: &str) -> Result<()> {
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir)?;
    let png = chrome.client.screenshot().await?;
    std::fs::write(dir.join(format!("{name}.png")), png)?;
    Ok(())
}

/// The screenshots of issue 16 (item 10): the Users tab with 300 members, a profile,
/// the Invited tab and the invitation results, at 1440×900 and 390×844, saved to
/// `target/screenshots/` (the README shows the Users tab ones, copied to `docs/`).
#[actix_web::test]
async fn screenshots_of_the_users_tab_profile_invited_tab_and_invite_results() {
    let app = spawn_app().await;
    journey("screenshots_issue_16", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        for i in 0..297 {
            let (first, last) = (
                ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken"][i % 6],
                format!("Person {i:03}"),
            );
            app.add_member(
                ORG,
                &format!("{}.{i:03}@example.com", first.to_lowercase()),
                first,
                &last,
                ["member", "engineer", "member", "manager"][i % 4],
                false,
            );
        }
        app.add_member(ORG, BOB, "Bob", "Builder", "member", false);
        app.add_member(
            ORG,
            "maximilian.von-long-address@engineering.example.com",
            "Maximilian",
            "von Long-Address",
            "engineer",
            false,
        );
        group_granting(&admin, "Platform team", "Manager", BOB).await?;

        for (suffix, width, height) in [("desktop", 1440, 900), ("mobile", 390, 844)] {
            resize(&admin, width, height).await?;
            admin.open("/orgs/acme/users").await?;
            admin.expect_text("of 300").await?;
            ensure!(!scrolls_sideways(&admin).await?, "Users tab at {width} px");
            if suffix == "mobile" {
                // The filters fill a phone's first screen: show the cards below them.
                admin
                    .client
                    .execute(
                        "document.querySelector('.users-wrap').scrollIntoView(); window.scrollBy(0, -130); return true;",
                        vec![],
                    )
                    .await?;
            }
            shoot(&admin, &format!("users-{suffix}")).await?;
            admin.open("/orgs/acme/users?q=bob").await?;
            admin.follow_in_row(BOB, "View").await?;
            shoot(&admin, &format!("profile-{suffix}")).await?;
            admin.open("/orgs/acme/invitations/new").await?;
            admin
                .fill(
                    "Email addresses",
                    &format!("pat.{suffix}@example.com, sam.{suffix}@example.com, not-an-address"),
                )
                .await?;
            admin.press("Send invitations").await?;
            shoot(&admin, &format!("invite-results-{suffix}")).await?;
            admin.open("/orgs/acme/invitations").await?;
            shoot(&admin, &format!("invited-{suffix}")).await?;
        }
        Ok(())
    })
    .await;
}

/// The links of the open row menu of `email` that are shown, by their text.
async fn menu_offers(chrome: &Chrome, email: &str) -> Result<Vec<String>> {
    chrome.open_row_menu(email).await?;
    let xpath = format!(
        "//tr[@data-email='{email}']//ul[contains(@class, 'menu-list')]//*[self::a or self::button]"
    );
    let mut offers = Vec::new();
    for item in chrome.client.find_all(Locator::XPath(&xpath)).await? {
        if item.is_displayed().await? {
            offers.push(item.text().await?.trim().to_string());
        }
    }
    // Closed again, as a person does, so it covers no other row.
    chrome.open_row_menu(email).await?;
    Ok(offers)
}

/// A Manager opening the row menus: an Admin's row offers only View, a Member's offers
/// what a Manager may do to them, and the bulk role list holds no Admin.
#[actix_web::test]
async fn a_manager_is_offered_only_what_they_may_do() {
    let app = spawn_app().await;
    journey("manager_offers", |j| async move {
        create_first_admin(&j, &app, Js::On).await?;
        app.add_member(ORG, "manny@example.com", "Manny", "M", "manager", true);
        app.add_member(ORG, BOB, "Bob", "Builder", "member", true);
        let manager = j.browser(&app).await?;
        manager.open("/login").await?;
        manager
            .sign_in("manny@example.com", crate::helpers::MEMBER_PASSWORD)
            .await?;
        manager.open(&format!("/orgs/{ORG}/users")).await?;
        let on_admin = menu_offers(&manager, crate::helpers::ADMIN_EMAIL).await?;
        ensure!(on_admin == vec!["View".to_string()], "{on_admin:?}");
        let on_bob = menu_offers(&manager, BOB).await?;
        ensure!(
            on_bob == vec!["View".to_string(), "Deactivate".into(), "Remove…".into()],
            "{on_bob:?}"
        );
        let roles = manager
            .client
            .find(Locator::Css("#bulk-role"))
            .await?
            .prop("textContent")
            .await?
            .unwrap_or_default();
        ensure!(
            !roles.contains("Admin") && roles.contains("Manager"),
            "{roles}"
        );
        Ok(())
    })
    .await;
}

/// The open row menu's state, as the page has it: whether it is open, and whether the
/// focus is on its button.
async fn row_menu_state(chrome: &Chrome, email: &str) -> Result<(bool, bool)> {
    let state = chrome
        .client
        .execute(
            "var menu = document.querySelector('tr[data-email=\"' + arguments[0] + '\"] details.row-menu');
             return [menu.open, document.activeElement === menu.querySelector('summary')];",
            vec![Value::String(email.into())],
        )
        .await?;
    Ok((
        state[0].as_bool().unwrap_or(false),
        state[1].as_bool().unwrap_or(false),
    ))
}

/// With the keyboard alone: Escape closes a row menu and gives the focus back to its
/// button (it fell to the page's start), and tabbing out of a menu closes it (its panel
/// stayed open over the next row, hiding the control the focus went to).
#[actix_web::test]
async fn a_row_menu_closes_as_the_keyboard_leaves_it() {
    let app = spawn_app().await;
    journey("row_menu_keyboard", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        app.add_member(ORG, BOB, "Bob", "Builder", "member", true);
        app.add_member(ORG, CAROL, "Carol", "C", "member", true);
        admin.open(&format!("/orgs/{ORG}/users")).await?;

        admin.open_row_menu(BOB).await?;
        admin.tab().await?;
        ensure!(
            row_menu_state(&admin, BOB).await? == (true, false),
            "open, focus inside"
        );
        admin
            .keys(&char::from(fantoccini::key::Key::Escape).to_string())
            .await?;
        let state = row_menu_state(&admin, BOB).await?;
        ensure!(
            state == (false, true),
            "closed, focus on its button: {state:?}"
        );

        admin.open_row_menu(BOB).await?;
        for _ in 0..6 {
            admin.tab().await?;
        }
        let state = row_menu_state(&admin, BOB).await?;
        ensure!(!state.0, "tabbed out of, it closed: {state:?}");
        Ok(())
    })
    .await;
}
