//! Journeys 10 to 12 and a keyboard-only journey: groups and pools, the audit trail and
//! its export, changing one's password, and a bulk action done with the keyboard alone.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::Value;

use super::entry::create_first_admin;
use super::{Chrome, Js, journey};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, get_with_cookie, spawn_app};

const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

/// The visible text of every element matching `css`, in page order.
async fn texts(chrome: &Chrome, css: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for element in chrome.client.find_all(Locator::Css(css)).await? {
        out.push(element.text().await?.trim().to_string());
    }
    Ok(out)
}

/// The text of the option shown in the select labelled `label`.
async fn chosen(chrome: &Chrome, label: &str) -> Result<String> {
    let select = chrome.field(label).await?;
    let value = chrome
        .client
        .execute(
            "return arguments[0].selectedOptions[0].textContent.trim();",
            vec![serde_json::to_value(&select)?],
        )
        .await?;
    Ok(value.as_str().unwrap_or_default().to_string())
}

/// Follows one of a member profile's tabs (Details, Groups Associated, Pools, Activity).
async fn profile_tab(chrome: &Chrome, text: &str) -> Result<()> {
    let link = chrome
        .client
        .find(Locator::XPath(&format!(
            "//nav[@aria-label='Member']//a[normalize-space(.)='{text}']"
        )))
        .await
        .with_context(|| format!("no profile tab {text:?}"))?;
    chrome.click(link, text).await
}

#[actix_web::test]
async fn journey_10_groups_and_pools() {
    let app = spawn_app().await;
    journey("journey_10_groups_and_pools", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;
        app.add_member("acme", BOB, "Bob", "Builder", "member", true);

        // A group, through the form on the Groups tab.
        chrome.follow("Groups").await?;
        chrome.expect_path("/orgs/acme/groups").await?;
        chrome.expect_text("No groups yet.").await?;
        // A name pasted with a zero-width space in it could pass for another group's: it
        // is refused by its field, and the description typed is kept.
        chrome.fill("Name", "Platform team\u{200B}").await?;
        chrome.fill("Description", "Keeps the lights on").await?;
        chrome.press("Create group").await?;
        chrome
            .expect_text("such as a zero-width space or a mark that reverses text")
            .await?;
        let kept = chrome.field("Description").await?.prop("value").await?;
        ensure!(kept.as_deref() == Some("Keeps the lights on"), "{kept:?}");
        // The focus waits in the field refused, which its message describes.
        let at_name = focus_matches(
            &chrome,
            "#name[aria-invalid=true][aria-describedby~=name-error]",
        );
        ensure!(at_name.await?, "the focus is not on the refused name");
        chrome.check_accessibility().await?;
        chrome.fill("Name", "Platform team").await?;
        chrome.press("Create group").await?;
        chrome.expect_text("Group Platform team created.").await?;
        chrome.expect_text("Nobody is in this group yet.").await?;

        // Bob joins it.
        chrome.pick_member("Add a member", BOB).await?;
        chrome.press("Add to Platform team").await?;
        chrome
            .expect_text("bob@example.com added to the group.")
            .await?;
        assert_eq!(chrome.rows("email").await?, vec![BOB.to_string()]);

        // His profile lists the group under "Groups Associated".
        chrome.follow_in_row(BOB, BOB).await?;
        chrome.expect_text("Bob Builder").await?;
        profile_tab(&chrome, "Groups Associated").await?;
        ensure!(chrome.path().await?.ends_with("/groups"));
        chrome.expect_text("Platform team").await?;
        chrome.expect_text("Keeps the lights on").await?;

        // The Users tab shows the group next to him, and the group list counts him.
        chrome.follow("Groups").await?;
        let row = texts(&chrome, "tbody tr[data-id]").await?;
        ensure!(
            row.len() == 1 && row[0].contains("Platform team") && row[0].ends_with('1'),
            "the group list shows one group with one member: {row:?}"
        );

        // A pool, then a sub-pool inside it.
        chrome.follow("Pools").await?;
        chrome.expect_path("/orgs/acme/pools").await?;
        chrome.expect_text("No pools to show.").await?;
        chrome.fill("Name", "Europe").await?;
        chrome.select("Inside", "Top level").await?;
        chrome.press("Create pool").await?;
        chrome.expect_text("Pool Europe created.").await?;
        chrome.follow("Pools").await?;
        chrome.fill("Name", "Berlin").await?;
        chrome.select("Inside", "Europe").await?;
        chrome.press("Create pool").await?;
        chrome.expect_text("Pool Berlin created.").await?;
        // The breadcrumb places Berlin inside Europe.
        let crumbs = texts(&chrome, ".breadcrumb a").await?;
        ensure!(
            crumbs.iter().any(|c| c == "Europe"),
            "Berlin's breadcrumb names Europe: {crumbs:?}"
        );

        // Add before anyone is picked says what to do, on the pool's page.
        chrome.press("Add to Berlin").await?;
        chrome.expect_text("Choose a member first").await?;
        chrome.expect_text("Add to Berlin").await?;

        // Bob joins the sub-pool with the role the form offers first.
        chrome.pick_member("Add a member", BOB).await?;
        let pool_role = chosen(&chrome, "Pool role").await?;
        chrome.press("Add to Berlin").await?;
        chrome
            .expect_text("bob@example.com added to the pool.")
            .await?;
        assert_eq!(chrome.rows("email").await?, vec![BOB.to_string()]);
        ensure!(chrome.row_text(BOB).await?.contains(&pool_role));

        // The list shows Berlin under Europe, Bob counted in Berlin only.
        chrome.follow("Pools").await?;
        let rows = texts(&chrome, "tbody tr[data-id]").await?;
        ensure!(rows.len() == 2, "two pools listed: {rows:?}");
        ensure!(
            rows[0].starts_with("Europe") && rows[0].ends_with('0'),
            "Europe first, with nobody directly in it: {rows:?}"
        );
        ensure!(
            rows[1].contains("Berlin") && rows[1].ends_with('1'),
            "Berlin below it, with Bob: {rows:?}"
        );
        let depths = chrome.rows("depth").await?;
        assert_eq!(depths, vec!["0".to_string(), "1".to_string()]);

        // Bob's Pools tab lists Berlin with his pool role.
        chrome.follow("Users").await?;
        chrome.follow_in_row(BOB, BOB).await?;
        profile_tab(&chrome, "Pools").await?;
        ensure!(chrome.path().await?.ends_with("/pools"));
        let pools = texts(&chrome, "main tbody tr").await?;
        ensure!(
            pools.len() == 1 && pools[0].contains("Berlin") && pools[0].contains(&pool_role),
            "Bob's Pools tab lists Berlin as {pool_role}: {pools:?}"
        );
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_11_audit_filters_and_csv_export() {
    let app = spawn_app().await;
    journey("journey_11_audit", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;
        app.add_member("acme", CAROL, "Carol", "Chief", "admin", true);

        // Two groups by the first admin, one by Carol from her own browser.
        for name in ["Platform team", "Design"] {
            chrome.follow("Groups").await?;
            chrome.fill("Name", name).await?;
            chrome.press("Create group").await?;
            chrome
                .expect_text(&format!("Group {name} created."))
                .await?;
        }
        let carol = j.browser(&app).await?;
        carol.open("/login").await?;
        carol.sign_in(CAROL, MEMBER_PASSWORD).await?;
        carol.expect_path("/orgs/acme/users").await?;
        carol.follow("Groups").await?;
        carol.fill("Name", "Carol's crew").await?;
        carol.press("Create group").await?;
        carol.expect_text("Group Carol's crew created.").await?;

        // Everything, unfiltered, then by actor: Carol's events are gone.
        chrome.follow("Audit").await?;
        chrome
            .expect_text("carol@example.com created the group Carol's crew")
            .await?;
        chrome.fill("Actor", ADMIN_EMAIL).await?;
        chrome.press("Apply").await?;
        let by_actor = texts(&chrome, "td.audit-sentence").await?;
        ensure!(
            by_actor.iter().all(|s| s.starts_with(ADMIN_EMAIL)),
            "only the admin's events: {by_actor:?}"
        );
        ensure!(
            by_actor
                .iter()
                .any(|s| s == "admin@example.com completed the first-time setup as administrator"),
            "the admin's setup is among them: {by_actor:?}"
        );
        chrome.expect_no_text("Carol's crew").await?;

        // And by action: exactly the admin's two group creations, newest first.
        chrome.select("Action", "Group created").await?;
        chrome.press("Apply").await?;
        let path = chrome.path().await?;
        ensure!(
            path.starts_with("/orgs/acme/audit?") && path.contains("action=group.created"),
            "the filters are in the address: {path}"
        );
        let sentences = texts(&chrome, "td.audit-sentence").await?;
        let mut sorted = sentences.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec![
                "admin@example.com created the group Design".to_string(),
                "admin@example.com created the group Platform team".to_string(),
            ]
        );
        assert_eq!(chosen(&chrome, "Action").await?, "Group created");
        assert_eq!(
            chrome.field("Actor").await?.prop("value").await?.as_deref(),
            Some(ADMIN_EMAIL)
        );

        // The download link carries the same filters, as the address a person would copy.
        let link = chrome
            .client
            .find(Locator::XPath("//a[normalize-space(.)='Download CSV']"))
            .await
            .context("no Download CSV link")?;
        let href = link.attr("href").await?.context("the link has no href")?;
        let csv_url = chrome.client.current_url().await?.join(&href)?;
        ensure!(csv_url.path() == "/orgs/acme/audit.csv", "{csv_url}");
        let query: Vec<(String, String)> = csv_url.query_pairs().into_owned().collect();
        ensure!(
            query.contains(&("actor".into(), ADMIN_EMAIL.into())),
            "{query:?}"
        );
        ensure!(
            query.contains(&("action".into(), "group.created".into())),
            "{query:?}"
        );

        // Chromium saves an attachment instead of showing it, so the file is read here
        // with this browser's own session cookie. This is the only place the cookie is
        // used outside the browser, and only for this read-only GET of the download.
        let cookie = chrome
            .client
            .get_named_cookie(portcullis::startup::SESSION_COOKIE)
            .await?;
        let download = get_with_cookie(
            csv_url.as_str(),
            &format!("{}={}", cookie.name(), cookie.value()),
        )
        .await;
        assert_eq!(download.status, 200, "{}", download.body);
        let content_type = download
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        ensure!(content_type.starts_with("text/csv"), "{content_type}");
        let mut reader = csv::Reader::from_reader(download.body.as_bytes());
        let header = reader.headers()?.clone();
        let column = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (actor, action, event) = (column("actor_email"), column("action"), column("event"));
        let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
        ensure!(
            records
                .iter()
                .all(|r| r[actor] == *ADMIN_EMAIL && &r[action] == "group.created"),
            "every row is the admin's group creation: {records:?}"
        );
        let events: Vec<String> = records.iter().map(|r| r[event].to_string()).collect();
        assert_eq!(
            events, sentences,
            "the file holds exactly the events on the page"
        );
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_12_password_change_signs_out_other_browsers() {
    let app = spawn_app().await;
    const NEW_PASSWORD: &str = "a brand new passphrase";
    journey("journey_12_password_change", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;

        // The same person, signed in on another computer.
        let other = j.browser(&app).await?;
        other.open("/login").await?;
        other.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        other.expect_path("/orgs/acme/users").await?;

        chrome.open_menu("Account menu").await?;
        chrome.follow("Your account").await?;
        chrome.expect_path("/account").await?;
        chrome.expect_text("Your account").await?;
        let sessions = chrome
            .client
            .find_all(Locator::Css("tr[data-session]"))
            .await?;
        assert_eq!(sessions.len(), 2, "both browsers are listed");

        // A wrong current password changes nothing.
        chrome.fill("Current password", "not my password").await?;
        chrome.fill("New password", NEW_PASSWORD).await?;
        chrome.fill("Confirm new password", NEW_PASSWORD).await?;
        chrome.press("Change password").await?;
        chrome
            .expect_text("That is not your current password.")
            .await?;

        chrome.fill("Current password", ADMIN_PASSWORD).await?;
        chrome.fill("New password", NEW_PASSWORD).await?;
        chrome.fill("Confirm new password", NEW_PASSWORD).await?;
        chrome.press("Change password").await?;
        chrome.expect_path("/account").await?;
        chrome.expect_text("Password changed.").await?;
        let sessions = chrome
            .client
            .find_all(Locator::Css("tr[data-session]"))
            .await?;
        assert_eq!(sessions.len(), 1, "only this browser is left");

        // The other browser is signed out on its next page load.
        other.client.refresh().await?;
        other.arrived().await?;
        other.expect_path("/login").await?;

        // This one stays signed in.
        chrome.follow("Portcullis").await?;
        chrome.expect_path("/orgs/acme/users").await?;
        chrome.expect_text(ADMIN_EMAIL).await?;

        // The old password no longer opens the account; the new one does.
        other.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        other.expect_text("do not match an active account").await?;
        other.sign_in(ADMIN_EMAIL, NEW_PASSWORD).await?;
        other.expect_path("/orgs/acme/users").await?;
        other.expect_text(ADMIN_EMAIL).await?;
        Ok(())
    })
    .await;
}

/// What has the keyboard focus, and whether a person can see it: an outline or box
/// shadow whose colour reaches 3:1 against what is behind it and against the page.
const FOCUS_SCRIPT: &str = r##"
const el = document.activeElement;
if (!el || el === document.body || el === document.documentElement) {
  return { what: "nothing", ok: false, why: "nothing has the focus" };
}
const parse = (c) => {
  const m = /rgba?\(([^)]+)\)/.exec(c || "");
  if (!m) return null;
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
};
const over = (fg, bg) => ({
  r: fg.r * fg.a + bg.r * (1 - fg.a),
  g: fg.g * fg.a + bg.g * (1 - fg.a),
  b: fg.b * fg.a + bg.b * (1 - fg.a),
  a: 1,
});
const behind = (node) => {
  const layers = [];
  for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
  }
  let base = { r: 255, g: 255, b: 255, a: 1 };
  for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base);
  return base;
};
const lum = (c) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
};
const contrast = (a, b) => {
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
};
const cs = getComputedStyle(el);
const what = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
  " " + JSON.stringify((el.getAttribute("aria-label") || el.textContent || el.value || "").trim().slice(0, 40));
let ring = null, how = "";
if (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0) {
  ring = parse(cs.outlineColor); how = "outline " + cs.outlineWidth + " " + cs.outlineStyle + " " + cs.outlineColor;
} else if (cs.boxShadow && cs.boxShadow !== "none") {
  ring = parse(cs.boxShadow); how = "box-shadow " + cs.boxShadow;
}
if (!ring || ring.a === 0) return { what, ok: false, why: "no outline or box-shadow (" + how + ")" };
const around = behind(el.parentElement);
const page = behind(document.body);
const ratio = Math.min(contrast(over(ring, around), around), contrast(over(ring, page), page));
return { what, ok: ratio >= 3, why: how + " reaches " + ratio.toFixed(2) + ":1" };
"##;

/// Fails unless the focused element shows a focus ring a person can see; answers what
/// has the focus.
async fn focus_is_visible(chrome: &Chrome) -> Result<Value> {
    let found = chrome.client.execute(FOCUS_SCRIPT, vec![]).await?;
    ensure!(
        found["ok"] == Value::Bool(true),
        "the focus on {} is not visible: {}",
        found["what"],
        found["why"]
    );
    Ok(found)
}

/// Whether the focused element matches `css`.
async fn focus_matches(chrome: &Chrome, css: &str) -> Result<bool> {
    let found = chrome
        .client
        .execute(
            "return !!document.activeElement && document.activeElement.matches(arguments[0]);",
            vec![Value::String(css.into())],
        )
        .await?;
    Ok(found == Value::Bool(true))
}

/// Presses Tab (or Shift+Tab, `backwards`) until the focus is on an element matching
/// `css`, checking at every stop that the focus can be seen.
async fn tab_to(chrome: &Chrome, backwards: bool, css: &str) -> Result<()> {
    let shift_tab = format!(
        "{}{}{}",
        char::from(Key::Shift),
        char::from(Key::Tab),
        char::from(Key::Null)
    );
    for _ in 0..80 {
        if backwards {
            chrome.keys(&shift_tab).await?;
        } else {
            chrome.tab().await?;
        }
        focus_is_visible(chrome).await?;
        if focus_matches(chrome, css).await? {
            return Ok(());
        }
    }
    bail!("the keyboard never reached {css}");
}

/// Presses Enter on the focused button, then waits for the page it leads to. A browser
/// confirmation dialog, if one opens, is accepted: a person presses Enter on its focused
/// OK button, and WebDriver cannot send keys to the browser's own dialogs.
async fn enter_and_wait(chrome: &Chrome) -> Result<()> {
    chrome
        .client
        .execute("window.journeyLeaving = true; return true;", vec![])
        .await?;
    chrome.keys(&char::from(Key::Enter).to_string()).await?;
    let started = Instant::now();
    loop {
        if let Ok(message) = chrome.client.get_alert_text().await {
            ensure!(!message.is_empty(), "the dialog asks something");
            chrome.client.accept_alert().await?;
        }
        let marked = chrome
            .client
            .execute("return window.journeyLeaving === true;", vec![])
            .await;
        if matches!(marked, Ok(Value::Bool(false))) {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("pressing Enter did not lead to another page");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    chrome.arrived().await
}

#[actix_web::test]
async fn keyboard_only_select_and_deactivate_a_member() {
    let app = spawn_app().await;
    journey("keyboard_only_deactivate", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;
        let bob_id = app.add_member("acme", BOB, "Bob", "Builder", "member", true);
        // Load the Users tab afresh, so Bob is listed and the focus starts at the top.
        chrome.open("/orgs/acme/users").await?;
        ensure!(chrome.row_text(BOB).await?.contains("Active"));

        // Tab down to Bob's checkbox and tick it with Space.
        let bob_box = format!("#select-{bob_id}");
        tab_to(&chrome, false, &bob_box).await?;
        chrome.keys(" ").await?;
        focus_is_visible(&chrome).await?;
        ensure!(
            chrome
                .client
                .find(Locator::Css(&bob_box))
                .await?
                .is_selected()
                .await?,
            "Space ticks Bob's checkbox"
        );

        // Back up to the bulk action and type the action's name.
        tab_to(&chrome, true, "#bulk-action").await?;
        chrome.keys("Deac").await?;
        focus_is_visible(&chrome).await?;
        assert_eq!(
            chosen(&chrome, "With selected members").await?,
            "Deactivate"
        );

        // On to the submit button, and Enter.
        tab_to(&chrome, false, "button[type=submit], input[type=submit]").await?;
        let button = chrome.client.active_element().await?.text().await?;
        ensure!(button == "Apply to selected", "the focus is on {button:?}");
        enter_and_wait(&chrome).await?;

        // A confirmation page, if there is one, is confirmed with Tab and Enter too.
        let confirm_page = !chrome
            .client
            .find_all(Locator::Css("[data-confirm-page]"))
            .await?
            .is_empty();
        if confirm_page {
            chrome.expect_text("Deactivate").await?;
            chrome.expect_text("1").await?;
            tab_to(
                &chrome,
                false,
                "main button[type=submit], main input[type=submit]",
            )
            .await?;
            enter_and_wait(&chrome).await?;
        }
        chrome.expect_text("1 done").await?;

        // Bob is now listed as inactive.
        chrome.follow("Users").await?;
        let row = chrome.row_text(BOB).await?;
        ensure!(row.contains("Inactive"), "Bob's row: {row}");
        assert_eq!(
            app.membership_status("acme", &bob_id).as_deref(),
            Some("inactive")
        );
        Ok(())
    })
    .await;
}

/// A new group's name and description are typed first, then its owner is found with the
/// picker's Search button. With JavaScript on, that button reloaded the page and emptied
/// the name and description; it now searches in place, as Enter already did.
#[actix_web::test]
async fn searching_for_a_groups_owner_keeps_what_was_typed() {
    let app = spawn_app().await;
    journey("group_owner_search_keeps_fields", |j| async move {
        let chrome = create_first_admin(&j, &app, Js::On).await?;
        app.add_member("acme", BOB, "Bob", "Builder", "member", true);
        chrome.follow("Groups").await?;
        chrome.fill("Name", "Night shift").await?;
        chrome.fill("Description", "Keeps watch").await?;
        chrome.search_members("Owner", "bob").await?;
        chrome.tick_match("Owner", BOB).await?;
        let name = chrome.field("Name").await?.prop("value").await?;
        ensure!(
            name.as_deref() == Some("Night shift"),
            "the name is {name:?}"
        );
        chrome.press("Create group").await?;
        chrome.expect_text("Group Night shift created.").await?;
        chrome.expect_text("Keeps watch").await?;
        let org = app.org_id("acme");
        let groups = portcullis::db::groups::list(&mut app.conn(), &org)?;
        ensure!(
            groups.len() == 1 && groups[0].owner_id.as_deref() == Some(app.user_id(BOB).as_str())
        );
        Ok(())
    })
    .await;
}
