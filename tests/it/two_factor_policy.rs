//! The organization's two-factor policy through real HTTP, on whichever database
//! TEST_DATABASE_URL names: the banner during the grace period, the hold after the
//! deadline (reached by moving the app's clock, not by editing rows), enrolment lifting
//! it, the `admins` scope, who may set it, its audit event and its form's validation.

use chrono::Duration;

use crate::helpers::*;
use crate::two_factor::{enrol, enrol_signed_in_long_ago};

const MEMBER: &str = "mia@example.com";
const BANNER: &str = "requires two-factor authentication by";
const HELD: &str = "requires two-factor authentication, and its deadline";

async fn set_policy(browser: &Browser, org: &str, require: &str, grace_days: &str) -> Page {
    let settings = format!("/orgs/{org}/settings");
    browser
        .submit(
            &settings,
            &format!("{settings}/2fa"),
            &[("require", require), ("grace_days", grace_days)],
        )
        .await
}

/// A CSRF token of the member's session, from a page they can still reach.
async fn token(browser: &Browser) -> String {
    browser.get("/account").await.csrf()
}

#[actix_web::test]
async fn during_the_grace_period_a_member_sees_a_banner_linking_to_enrolment() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member("my-org", MEMBER, "Mia", "Member", "member", true);
    let set = set_policy(&admin, "my-org", "all", "14").await;
    assert_eq!(set.status, 303, "{}", set.body);

    let member = app.member_browser(MEMBER).await;
    let page = member.get("/orgs/my-org/users").await;
    assert_eq!(page.status, 200);
    // To the minute the policy was saved, fourteen days on: it holds from then, and a
    // date alone read as "through that day".
    let saved = portcullis::db::org_two_factor::find(&mut app.conn(), &app.org_id("my-org"))
        .unwrap()
        .unwrap()
        .effective_at;
    let deadline = (saved + Duration::days(14))
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    assert!(
        page.body.contains(&format!("{BANNER} {deadline}")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<a href=\"/account/2fa\">Set it up now.</a>")
    );
    // The page is the organization's, not a hold.
    assert!(page.body.contains(&format!("data-email=\"{MEMBER}\"")));
}

#[actix_web::test]
async fn after_the_deadline_only_enrolment_is_served_until_the_member_enrols() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    enrol(&admin).await;
    app.add_member("my-org", MEMBER, "Mia", "Member", "member", true);
    app.create_org("other-org", "Other Org");
    app.add_member("other-org", MEMBER, "Mia", "Member", "manager", true);
    assert_eq!(set_policy(&admin, "my-org", "all", "7").await.status, 303);
    let member = app.member_browser(MEMBER).await;
    assert_eq!(member.get("/orgs/my-org/users").await.status, 200);

    app.advance_clock(Duration::days(7) + Duration::minutes(1));
    for path in [
        "/orgs/my-org/users",
        "/orgs/my-org/groups",
        "/orgs/my-org/invitations",
    ] {
        let held = member.get(path).await;
        assert_eq!(held.status, 403, "{path}");
        assert!(held.body.contains(HELD), "{path}: {}", held.body);
        assert!(held.body.contains("href=\"/account/2fa\""), "{path}");
        assert!(!held.body.contains("data-email="), "{path}");
    }
    // A form is held the same way, and changes nothing.
    let groups_before = app.count("groups");
    let post = member
        .post(
            "/orgs/my-org/groups",
            &[
                ("csrf_token", token(&member).await),
                ("name", "Sneaky".into()),
            ],
        )
        .await;
    assert_eq!(post.status, 403);
    assert!(post.body.contains(HELD));
    assert_eq!(app.count("groups"), groups_before);
    // Their account, enrolment and other organizations stay theirs.
    assert_eq!(member.get("/account").await.status, 200);
    assert_eq!(member.get("/account/2fa").await.status, 200);
    let other = member.get("/orgs/other-org/users").await;
    assert_eq!(other.status, 200);
    assert!(!other.body.contains(BANNER));

    enrol_signed_in_long_ago(&member, MEMBER_PASSWORD).await;
    let back = member.get("/orgs/my-org/users").await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(!back.body.contains(BANNER));
}

#[actix_web::test]
async fn the_admins_scope_holds_admins_and_leaves_plain_members_alone() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    enrol(&admin).await;
    app.add_member("my-org", MEMBER, "Mia", "Member", "member", true);
    app.add_member("my-org", "ann@example.com", "Ann", "Admin", "admin", true);
    assert_eq!(
        set_policy(&admin, "my-org", "admins", "1").await.status,
        303
    );
    let settings = admin.get("/orgs/my-org/settings").await;
    assert!(
        settings.body.contains("data-unenrolled=\"1\""),
        "{}",
        settings.body
    );

    app.advance_clock(Duration::days(2));
    let member = app.member_browser(MEMBER).await;
    let page = member.get("/orgs/my-org/users").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(BANNER));
    let other_admin = app.member_browser("ann@example.com").await;
    let held = other_admin.get("/orgs/my-org/users").await;
    assert_eq!(held.status, 403);
    assert!(held.body.contains(HELD));
    // The enrolled admin who set it is not held.
    assert_eq!(admin.get("/orgs/my-org/users").await.status, 200);
}

#[actix_web::test]
async fn only_the_organizations_admins_set_the_policy() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member("my-org", "mo@example.com", "Mo", "Manager", "manager", true);
    app.add_member("my-org", MEMBER, "Mia", "Member", "member", true);
    app.create_org("other-org", "Other Org");
    app.add_member(
        "other-org",
        "olga@example.com",
        "Olga",
        "Other",
        "admin",
        true,
    );
    let tab = admin.get("/orgs/my-org/users").await;
    assert!(tab.body.contains("href=\"/orgs/my-org/settings\""));

    for (email, status) in [
        ("mo@example.com", 403),
        (MEMBER, 403),
        ("olga@example.com", 404),
    ] {
        let browser = app.member_browser(email).await;
        assert_eq!(
            browser.get("/orgs/my-org/settings").await.status,
            status,
            "{email}"
        );
        let post = browser
            .post(
                "/orgs/my-org/settings/2fa",
                &[
                    ("csrf_token", token(&browser).await),
                    ("require", "all".into()),
                    ("grace_days", "0".into()),
                ],
            )
            .await;
        assert_eq!(post.status, status, "{email}: {}", post.body);
        if status == 403 {
            let users = browser.get("/orgs/my-org/users").await;
            assert!(
                !users.body.contains("href=\"/orgs/my-org/settings\""),
                "{email}"
            );
        }
    }
    assert_eq!(app.count("org_two_factor_policies"), 0);
    assert_eq!(
        app.audit_count("my-org", "org.two_factor_policy_changed"),
        0
    );
    // Nobody was held: the policy never changed.
    let member = app.member_browser(MEMBER).await;
    assert_eq!(member.get("/orgs/my-org/users").await.status, 200);
}

#[actix_web::test]
async fn each_change_is_audited_with_the_old_and_new_policy() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    assert_eq!(
        set_policy(&admin, "my-org", "admins", "30").await.status,
        303
    );
    assert_eq!(set_policy(&admin, "my-org", "all", "10").await.status, 303);
    // Saving the same again is no change, and no event.
    assert_eq!(set_policy(&admin, "my-org", "all", "10").await.status, 303);

    let org = app.org_id("my-org");
    let events: Vec<_> =
        portcullis::db::audit_events::latest_for_org(&mut app.conn(), Some(&org), 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "org.two_factor_policy_changed")
            .collect();
    assert_eq!(events.len(), 2);
    let latest: serde_json::Value = serde_json::from_str(&events[0].details).unwrap();
    assert_eq!(latest["old"]["require"], "admins");
    assert_eq!(latest["old"]["grace_days"], 30);
    assert_eq!(latest["new"]["require"], "all");
    assert_eq!(latest["new"]["grace_days"], 10);
    assert_eq!(events[0].actor_email.as_deref(), Some(ADMIN_EMAIL));
    assert_eq!(events[0].target_id.as_deref(), Some(org.as_str()));
    let first: serde_json::Value = serde_json::from_str(&events[1].details).unwrap();
    assert_eq!(first["old"]["require"], "none");
    // The audit page reads it as a sentence.
    let audit = admin.get("/orgs/my-org/audit").await;
    assert!(
        audit.body.contains("changed the two-factor policy of"),
        "{}",
        audit.body
    );
}

#[actix_web::test]
async fn bad_input_is_shown_next_to_its_field_with_422() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    for (require, grace, field, message) in [
        ("all", "91", "grace_days", "from 0 to 90"),
        ("all", "ten", "grace_days", "from 0 to 90"),
        ("all", "", "grace_days", "Enter the grace period"),
        ("everyone", "3", "require", "Choose who must use"),
    ] {
        let page = set_policy(&admin, "my-org", require, grace).await;
        assert_eq!(page.status, 422, "{require} {grace}");
        let error = format!("<p class=\"field-error\" id=\"{field}-error\">");
        let at = page.body.find(&error).expect("error next to the field");
        assert!(page.body[at..].contains(message), "{}", page.body);
    }
    assert_eq!(app.count("org_two_factor_policies"), 0);
    assert_eq!(
        app.audit_count("my-org", "org.two_factor_policy_changed"),
        0
    );
}

#[actix_web::test]
async fn a_member_made_admin_by_a_group_is_held_by_the_admins_scope() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    enrol(&admin).await;
    let mia = app.add_member("my-org", MEMBER, "Mia", "Member", "member", true);
    let admin_role = app.role_id("my-org", "admin");
    let made = admin
        .submit(
            "/orgs/my-org/groups",
            "/orgs/my-org/groups",
            &[("name", "Operators"), ("role_id", &admin_role)],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let group = location_id(&made);
    let added = admin
        .submit(
            "/orgs/my-org/groups",
            &format!("/orgs/my-org/groups/{group}/members"),
            &[("user_id", &mia)],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(
        set_policy(&admin, "my-org", "admins", "0").await.status,
        303
    );
    let settings = admin.get("/orgs/my-org/settings").await;
    assert!(
        settings.body.contains("data-unenrolled=\"1\""),
        "{}",
        settings.body
    );

    let member = app.member_browser(MEMBER).await;
    let held = member.get("/orgs/my-org/users").await;
    assert_eq!(held.status, 403, "{}", held.body);
    assert!(held.body.contains(HELD));
}

/// An admin who never enrols made a SCIM token during the grace period. Past the deadline
/// the organization serves them nothing, and so their token acts for them no more, until
/// they enrol.
#[actix_web::test]
async fn past_the_deadline_an_unenrolled_makers_token_acts_no_more() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    enrol(&admin).await;
    app.add_member("my-org", "ann@example.com", "Ann", "Admin", "admin", true);
    let ann = app.member_browser("ann@example.com").await;
    assert_eq!(
        set_policy(&admin, "my-org", "admins", "7").await.status,
        303
    );
    let token = crate::api_tokens::admin_token(&app, &ann, &["scim"], "member").await;
    let scim = crate::scim::Scim::new(&app, &token);
    assert_eq!(scim.get("/Users").await.status, 200);

    app.advance_clock(Duration::days(7) + Duration::minutes(1));
    assert_eq!(ann.get("/orgs/my-org/users").await.status, 403);
    assert_eq!(scim.get("/Users").await.status, 401);
    let list = admin.get("/orgs/my-org/api-tokens").await;
    assert!(
        list.body.contains("data-status=\"suspended\""),
        "{}",
        list.body
    );

    enrol_signed_in_long_ago(&ann, MEMBER_PASSWORD).await;
    assert_eq!(scim.get("/Users").await.status, 200);
}

/// An admin who never enrols invited someone during the grace period. Past the deadline
/// the organization serves that admin nothing, and so their link grants nothing either
/// (it made a member, in the groups and pools it named, on their lapsed authority), until
/// they enrol.
#[actix_web::test]
async fn past_the_deadline_an_unenrolled_inviters_link_grants_nothing() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    enrol(&admin).await;
    app.add_member("my-org", "ann@example.com", "Ann", "Admin", "admin", true);
    let ann = app.member_browser("ann@example.com").await;
    let member = app.role_id("my-org", "member");
    let sent = ann.invite("my-org", "zoe@example.com", &member).await;
    let link = ann.follow_results(sent).await.invite_link();
    let invitee = app.client();
    assert_eq!(invitee.get(&link).await.status, 200);

    assert_eq!(
        set_policy(&admin, "my-org", "admins", "0").await.status,
        303
    );
    let dead = invitee.get(&link).await;
    assert_eq!(dead.status, 404, "{}", dead.body);
    assert!(dead.body.contains("This invitation link does not work"));

    enrol(&ann).await;
    assert_eq!(invitee.get(&link).await.status, 200);
}
