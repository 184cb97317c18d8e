//! Membership expiry (issue 16, item 4): an "access until" day on memberships and
//! invitations; a background job deactivates memberships once that day is over, audited
//! and counted like a deactivation by hand; members whose access ends soon are flagged.

use std::time::{Duration, Instant};

use portcullis::db::{member_counts, memberships};

use crate::helpers::*;

const ORG: &str = "my-org";
const USERS: &str = "/orgs/my-org/users";

fn day_in(days: i64) -> String {
    (portcullis::db::now() + chrono::Duration::days(days))
        .date()
        .format("%Y-%m-%d")
        .to_string()
}

async fn set_access_until(admin: &Browser, app: &TestApp, user: &str, day: &str) -> Page {
    let profile = format!("{USERS}/{user}");
    let role = app.role_id(ORG, "member");
    admin
        .submit(
            &profile,
            &profile,
            &[
                ("first_name", "Bob"),
                ("last_name", "B"),
                ("role_id", &role),
                ("access_until", day),
            ],
        )
        .await
}

/// Waits (a bounded while) for the expiry job, which runs every 200 ms in tests.
async fn until_inactive(app: &TestApp, user: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if app.membership_status(ORG, user).as_deref() == Some("inactive") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[actix_web::test]
async fn access_ends_after_the_chosen_day_and_is_flagged_before() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    app.add_member(ORG, "carol@example.com", "Carol", "C", "member", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let last_day = day_in(2);

    assert_eq!(
        set_access_until(&admin, &app, &bob, &last_day).await.status,
        303
    );
    let profile = admin.get(&format!("{USERS}/{bob}")).await;
    assert!(profile.body.contains(&format!("value=\"{last_day}\"")));

    // Flagged, and found by the filter; Carol, without an end, is not.
    let expiring = admin.get(&format!("{USERS}?expiring=1")).await;
    assert_eq!(row_emails(&expiring.body), ["bob@example.com"]);
    assert!(expiring.body.contains(&format!("Access ends {last_day}")));

    // Through the last day, access stays.
    app.advance_clock(chrono::Duration::days(2) + chrono::Duration::hours(1));
    let still = app.settings.clock.now();
    if still.date().format("%Y-%m-%d").to_string() == last_day {
        let ended = portcullis::domain::expiry::expire_due(&mut app.conn(), still).unwrap();
        assert_eq!(ended, 0);
        assert_eq!(app.membership_status(ORG, &bob).as_deref(), Some("active"));
    }

    app.advance_clock(chrono::Duration::days(1));
    assert!(
        until_inactive(&app, &bob).await,
        "the job ended the membership"
    );
    assert_eq!(app.audit_count(ORG, "member.access_expired"), 1);
    let counts = member_counts::by_status(&mut app.conn(), &app.org_id(ORG)).unwrap();
    assert_eq!((counts.active, counts.inactive), (2, 1));
    // Bob's next request no longer reaches the organization.
    assert_ne!(bob_browser.get(USERS).await.status, 200);
    assert!(row_emails(&admin.get(&format!("{USERS}?expiring=1")).await.body).is_empty());
}

#[actix_web::test]
async fn a_past_or_garbled_day_is_refused_by_the_field() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let past = set_access_until(&admin, &app, &bob, &day_in(-1)).await;
    assert_eq!(past.status, 422);
    assert!(past.body.contains("that day has passed"));
    let garbled = set_access_until(&admin, &app, &bob, "next week").await;
    assert_eq!(garbled.status, 422);
    assert!(garbled.body.contains("Enter a date such as"));

    let invite = admin
        .submit(
            "/orgs/my-org/invitations/new",
            "/orgs/my-org/invitations",
            &[
                ("emails", "eve@example.com"),
                ("role_id", &app.role_id(ORG, "member")),
                ("access_until", &day_in(-3)),
            ],
        )
        .await;
    assert_eq!(invite.status, 422);
    assert!(invite.body.contains("that day has passed"));
    assert!(
        invite.body.contains("eve@example.com"),
        "the addresses stay"
    );
    assert_eq!(app.count("invitations"), 0);
}

#[actix_web::test]
async fn the_last_admin_keeps_access_past_their_day() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = app.org_id(ORG);
    let admin = app.user_id(ADMIN_EMAIL);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let yesterday = portcullis::db::now() - chrono::Duration::days(1);
    let mut conn = app.conn();
    memberships::set_access_until(&mut conn, &org, &admin, Some(yesterday)).unwrap();
    memberships::set_access_until(&mut conn, &org, &bob, Some(yesterday)).unwrap();
    let ended = portcullis::domain::expiry::expire_due(&mut conn, portcullis::db::now()).unwrap();
    assert_eq!(ended, 1);
    drop(conn);
    assert_eq!(
        app.membership_status(ORG, &admin).as_deref(),
        Some("active")
    );
    assert_eq!(
        app.membership_status(ORG, &bob).as_deref(),
        Some("inactive")
    );
    // The kept admin's date goes with it: bound to a day already past, they could give
    // nobody any access (an invitation, a token, a date), and nobody could lift it.
    let row = memberships::find(&mut app.conn(), &org, &admin)
        .unwrap()
        .unwrap();
    assert_eq!(row.membership.access_until, None);
    assert_eq!(app.audit_count(ORG, "member.access_kept"), 1);
    let invited = browser
        .submit(
            "/orgs/my-org/invitations/new",
            "/orgs/my-org/invitations",
            &[
                ("emails", "next.admin@example.com"),
                ("role_id", &app.role_id(ORG, "admin")),
            ],
        )
        .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
}

#[actix_web::test]
async fn many_expiries_end_in_batches_each_audited_once() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id(ORG);
    let ids: Vec<String> = (0..230)
        .map(|i| {
            app.add_member(
                ORG,
                &format!("m{i:03}@example.com"),
                "M",
                "N",
                "member",
                false,
            )
        })
        .collect();
    let ended_at = portcullis::db::now() - chrono::Duration::hours(1);
    let mut conn = app.conn();
    for id in &ids {
        memberships::set_access_until(&mut conn, &org, id, Some(ended_at)).unwrap();
    }
    // Runs at once (these two and the app's own job) end each membership once.
    let pool = app.pool.clone();
    let other = std::thread::spawn(move || {
        portcullis::domain::expiry::expire_due(&mut pool.get().unwrap(), portcullis::db::now())
            .unwrap()
    });
    let here = portcullis::domain::expiry::expire_due(&mut conn, portcullis::db::now()).unwrap();
    let there = other.join().unwrap();
    drop(conn);
    assert!(here + there <= 230, "{here} + {there}");
    assert_eq!(app.audit_count(ORG, "member.access_expired"), 230);
    let counts = member_counts::by_status(&mut app.conn(), &org).unwrap();
    assert_eq!((counts.active, counts.inactive), (1, 230));
}

/// An app whose expiry job does not come by again during the test (it runs once, at
/// start): whatever a member past their day meets is their own request's doing.
async fn spawn_app_without_the_job() -> TestApp {
    spawn_app_with(|s| s.membership_expiry_interval = Duration::from_secs(3600)).await
}

/// The start of the day `days` after today's (UTC): an end that is a whole day.
fn whole_days_on(days: i64) -> chrono::NaiveDateTime {
    (portcullis::db::now().date() + chrono::Duration::days(days)).and_time(chrono::NaiveTime::MIN)
}

fn ends_tomorrow(app: &TestApp, user: &str) {
    let org = app.org_id(ORG);
    let tomorrow = app.settings.clock.now() + chrono::Duration::days(1);
    memberships::set_access_until(&mut app.conn(), &org, user, Some(tomorrow)).unwrap();
}

#[actix_web::test]
async fn a_member_past_their_last_day_is_refused_before_the_job_comes_by() {
    let app = spawn_app_without_the_job().await;
    let admin = app.setup_admin().await;
    let admin_id = app.user_id(ADMIN_EMAIL);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "admin", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let carol_browser = app.member_browser("carol@example.com").await;
    let token = crate::api_tokens::admin_token(&app, &carol_browser, &["scim"], "member").await;
    let scim = crate::scim::Scim::new(&app, &token);
    for user in [&bob, &carol] {
        ends_tomorrow(&app, user);
    }
    assert_eq!(bob_browser.get(USERS).await.status, 200);
    assert_eq!(scim.get("/Users").await.status, 200);
    // A member the token makes takes its maker's last day; the trail says so, so that
    // the day their access ends has an event to explain it.
    scim.create_user("dana@example.com").await;
    let (action, details) = app.latest_event(ORG);
    assert_eq!(action, "member.provisioned");
    let last_day = app.settings.clock.now().date();
    assert_eq!(details["access_until"], last_day.to_string());

    app.advance_clock(chrono::Duration::days(2));
    access_ended_is_said(&bob_browser).await;
    assert_eq!(
        app.membership_status(ORG, &bob).as_deref(),
        Some("inactive")
    );
    // A token acts for its maker no longer than the maker's own pages would.
    assert_eq!(scim.get("/Users").await.status, 401);
    assert_eq!(
        app.membership_status(ORG, &carol).as_deref(),
        Some("inactive")
    );
    assert_eq!(app.audit_count(ORG, "member.access_expired"), 2);
    assert_eq!(bob_browser.get(USERS).await.status, 404);
    assert_eq!(
        app.audit_count(ORG, "member.access_expired"),
        2,
        "ended once"
    );

    assert_eq!(admin.get(USERS).await.status, 200);
    assert_eq!(
        app.membership_status(ORG, &admin_id).as_deref(),
        Some("active")
    );
    let counts = member_counts::by_status(&mut app.conn(), &app.org_id(ORG)).unwrap();
    // Dana, past her day too, has made no request and no job has come by: still active.
    assert_eq!((counts.active, counts.inactive), (2, 2));
}

/// A member whose last day has passed is still edited (a name corrected, here) without
/// moving the day their access ended: the form sends that day back as it was, and was
/// refused for it ("that day has passed"). Another day in the past is still refused.
#[actix_web::test]
async fn a_member_whose_day_passed_is_edited_keeping_that_day() {
    let app = spawn_app_without_the_job().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    // Set-up: his last day was three days ago, and his membership ended with it.
    let org = app.org_id(ORG);
    let three_days_ago = (portcullis::db::now() - chrono::Duration::days(3)).date();
    let ended = three_days_ago
        .succ_opt()
        .map(|d| d.and_time(chrono::NaiveTime::MIN));
    memberships::set_access_until(&mut app.conn(), &org, &bob, ended).unwrap();
    app.deactivate_for_setup(ORG, &bob);
    let day = portcullis::domain::access_until::field_value(ended);

    let profile = format!("{USERS}/{bob}");
    let role = app.role_id(ORG, "member");
    let edit = |last: &'static str, day: String| {
        let (admin, profile, role) = (&admin, profile.clone(), role.clone());
        async move {
            let fields = [
                ("first_name", "Bob"),
                ("last_name", last),
                ("role_id", role.as_str()),
                ("access_until", day.as_str()),
            ];
            admin.submit(&profile, &profile, &fields).await
        }
    };
    let saved = edit("Builder", day.clone()).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let row = memberships::find(&mut app.conn(), &org, &bob)
        .unwrap()
        .unwrap();
    assert_eq!(row.user.last_name, "Builder");
    assert_eq!(row.membership.access_until, ended, "the day it ended stays");

    let a_day_before = (ended.unwrap() - chrono::Duration::days(2)).format("%Y-%m-%d");
    let refused = edit("Brown", a_day_before.to_string()).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("that day has passed"));
    let row = memberships::find(&mut app.conn(), &org, &bob)
        .unwrap()
        .unwrap();
    assert_eq!(row.user.last_name, "Builder");
}

#[actix_web::test]
async fn re_activating_a_member_whose_day_passed_asks_for_a_new_day_first() {
    let app = spawn_app_without_the_job().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "member", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let carol_browser = app.member_browser("carol@example.com").await;
    ends_tomorrow(&app, &bob);
    ends_tomorrow(&app, &carol);
    // Made while the admin's sign-in is recent (later it would ask their password).
    let token = crate::api_tokens::admin_token(&app, &admin, &["scim"], "member").await;
    app.advance_clock(chrono::Duration::days(2));
    access_ended_is_said(&bob_browser).await;
    access_ended_is_said(&carol_browser).await;

    // Before, the member came back with the day that had passed, and their next page
    // ended them again.
    let activate = format!("{USERS}/{bob}/activate");
    let refused = admin.submit(USERS, &activate, &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Give them a new last day, or none, on their profile")
    );
    assert_eq!(
        app.membership_status(ORG, &bob).as_deref(),
        Some("inactive")
    );
    // Nor does an identity provider's sync lift it.
    let scim = crate::scim::Scim::new(&app, &token);
    let patched = scim
        .patch(
            &format!("/Users/{bob}"),
            &crate::scim::patch_body(serde_json::json!([
                {"op": "replace", "path": "active", "value": true}
            ])),
        )
        .await;
    assert_eq!(patched.status, 409, "{}", patched.body);
    assert_eq!(
        app.membership_status(ORG, &bob).as_deref(),
        Some("inactive")
    );

    // A new day (none here) on the profile, then the re-activation gives access back.
    assert_eq!(set_access_until(&admin, &app, &bob, "").await.status, 303);
    assert_eq!(admin.submit(USERS, &activate, &[]).await.status, 303);
    assert_eq!(bob_browser.get(USERS).await.status, 200);

    // The platform's rescue, which has no day to set, drops the day that passed.
    let profile = format!("/admin/users/{carol}");
    let rescue = format!("{profile}/memberships/my-org/activate");
    assert_eq!(admin.submit(&profile, &rescue, &[]).await.status, 303);
    assert_eq!(carol_browser.get(USERS).await.status, 200);
    let rescued =
        portcullis::db::audit_events::latest_for_org(&mut app.conn(), Some(&app.org_id(ORG)), 1)
            .unwrap()
            .remove(0);
    assert_eq!(rescued.action, "admin.membership_activated");
    assert!(
        rescued.details.contains("old_access_until"),
        "{}",
        rescued.details
    );
}

/// Two admins past their day: the one who arrives keeps the organization (and loses the
/// day, as the last admin does with the job), not the one who is gone (who counted as its
/// admin before, so the one arriving was ended).
#[actix_web::test]
async fn of_two_admins_past_their_day_the_one_who_arrives_is_kept() {
    let app = spawn_app_without_the_job().await;
    let admin = app.setup_admin().await;
    let admin_id = app.user_id(ADMIN_EMAIL);
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "admin", true);
    let carol_browser = app.member_browser("carol@example.com").await;
    ends_tomorrow(&app, &admin_id);
    ends_tomorrow(&app, &carol);
    app.advance_clock(chrono::Duration::days(2));

    assert_eq!(carol_browser.get(USERS).await.status, 200);
    assert_eq!(app.audit_count(ORG, "member.access_kept"), 1);
    access_ended_is_said(&admin).await;
    assert_eq!(
        app.membership_status(ORG, &admin_id).as_deref(),
        Some("inactive")
    );
    assert_eq!(
        app.membership_status(ORG, &carol).as_deref(),
        Some("active")
    );
}

/// An admin whose access ends on a day could once demote, deactivate, remove or shorten
/// the admins without an end, and, kept as the last admin when the day came, hold the
/// organization for good. Each of those changes is now refused, and changes that leave
/// a lasting admin in place still go through.
#[actix_web::test]
async fn an_admin_whose_access_ends_cannot_take_the_lasting_admins_away() {
    let app = spawn_app_without_the_job().await;
    app.setup_admin().await;
    let ada = app.user_id(ADMIN_EMAIL);
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "admin", true);
    // Her last day is tomorrow, a whole day: the end Ada is offered below (today, or
    // tomorrow if midnight passes meanwhile) is never later than hers.
    let org = app.org_id(ORG);
    memberships::set_access_until(&mut app.conn(), &org, &carol, Some(whole_days_on(2))).unwrap();
    let carol_browser = app.member_browser("carol@example.com").await;
    let member = app.role_id(ORG, "member");
    let lasts_past_yours = "must keep an admin whose access lasts past yours";

    let profile = format!("{USERS}/{ada}");
    let attempts = [
        (
            format!("{USERS}/{ada}/role"),
            vec![("role_id", member.clone())],
        ),
        (format!("{USERS}/{ada}/deactivate"), vec![]),
        (
            format!("{USERS}/{ada}/delete"),
            vec![("confirm_email", ADMIN_EMAIL.to_string())],
        ),
        (
            profile.clone(),
            vec![
                ("first_name", "Ada".to_string()),
                ("last_name", "Admin".to_string()),
                ("role_id", app.role_id(ORG, "admin")),
                ("access_until", day_in(0)),
            ],
        ),
    ];
    for (action, fields) in attempts {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut refused = carol_browser.submit(USERS, &action, &fields).await;
        if refused.status == 303 {
            // The inline role select goes back to the list with its reason.
            refused = carol_browser.get(USERS).await;
        } else {
            assert_eq!(refused.status, 409, "{action}: {}", refused.body);
        }
        assert!(
            refused.body.contains(lasts_past_yours),
            "{action}: {}",
            refused.body
        );
    }
    let ada_row = memberships::find(&mut app.conn(), &org, &ada)
        .unwrap()
        .unwrap();
    assert_eq!(ada_row.role.key, "admin");
    assert!(ada_row.membership.is_active());
    assert_eq!(ada_row.membership.access_until, None);

    // What leaves Ada in charge still works.
    let done = carol_browser
        .submit(USERS, &format!("{USERS}/{bob}/deactivate"), &[])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        app.membership_status(ORG, &bob).as_deref(),
        Some("inactive")
    );
}

/// An admin whose day is over but whom nothing has ended yet (the job had not come by)
/// counted as the admin who remains, so the last lasting admin could step down, and the
/// one past their day was then kept, for good, on their next request.
#[actix_web::test]
async fn an_admin_past_their_day_is_no_admin_to_step_down_for() {
    let app = spawn_app_without_the_job().await;
    let admin = app.setup_admin().await;
    let ada = app.user_id(ADMIN_EMAIL);
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "admin", true);
    ends_tomorrow(&app, &carol);
    app.advance_clock(chrono::Duration::days(2));

    let own = format!("{USERS}/{ada}");
    let member = app.role_id(ORG, "member");
    let step_down = [
        ("first_name", "Ada"),
        ("last_name", "Admin"),
        ("role_id", member.as_str()),
        ("confirm_own_role", "yes"),
    ];
    let refused = admin.submit(&own, &own, &step_down).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("must keep at least one active admin"),
        "{}",
        refused.body
    );
    assert_eq!(app.member_role(ORG, &ada).as_deref(), Some("admin"));
    assert_eq!(
        app.membership_status(ORG, &carol).as_deref(),
        Some("active"),
        "nothing has ended Carol's access yet"
    );
}

/// Stored as text on SQLite, a five-digit year sorted before every four-digit one: the
/// job read such a day as long over (and stopped at a batch of them), and the last-admin
/// rule counted its admin out.
#[actix_web::test]
async fn a_day_past_the_year_9998_is_refused_by_the_field() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member(ORG, "bob@example.com", "Bob", "B", "member", true);
    for day in ["+10000-01-01", "9999-06-01"] {
        let refused = set_access_until(&admin, &app, &bob, day).await;
        assert_eq!(refused.status, 422, "{day}: {}", refused.body);
        assert!(
            refused.body.contains("before the year 9999"),
            "{}",
            refused.body
        );
    }
    let org = app.org_id(ORG);
    let bob_row = memberships::find(&mut app.conn(), &org, &bob)
        .unwrap()
        .unwrap();
    assert_eq!(bob_row.membership.access_until, None);
    let invite = admin
        .submit(
            "/orgs/my-org/invitations/new",
            "/orgs/my-org/invitations",
            &[
                ("emails", "eve@example.com"),
                ("role_id", &app.role_id(ORG, "member")),
                ("access_until", "+10000-01-01"),
            ],
        )
        .await;
    assert_eq!(invite.status, 422, "{}", invite.body);
    assert!(invite.body.contains("before the year 9999"));
    assert_eq!(app.count("invitations"), 0);
    assert_eq!(
        set_access_until(&admin, &app, &bob, "9998-12-31")
            .await
            .status,
        303
    );
}

/// A role's permissions are read again after the change: an admin whose access ends once
/// moved the lasting admin to a custom role holding `org.manage`, then took
/// `org.manage` from the role, and the check still counted the role as an admin's.
#[actix_web::test]
async fn an_admin_whose_access_ends_cannot_empty_the_lasting_admins_role() {
    let app = spawn_app_without_the_job().await;
    let admin = app.setup_admin().await;
    let ada = app.user_id(ADMIN_EMAIL);
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "admin", true);
    ends_tomorrow(&app, &carol);
    let roles = "/orgs/my-org/roles";
    let owner = [
        ("name", "Owner"),
        ("permissions", "org.manage"),
        ("permissions", "users.read"),
        ("permissions", "users.manage"),
    ];
    assert_eq!(admin.submit(roles, roles, &owner).await.status, 303);
    let org = app.org_id(ORG);
    let owner_id = portcullis::db::roles::list(&mut app.conn(), &org)
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Owner")
        .unwrap()
        .id;
    memberships::set_role(&mut app.conn(), &org, &ada, &owner_id).unwrap();

    let carol_browser = app.member_browser("carol@example.com").await;
    let emptied = carol_browser
        .submit(
            roles,
            &format!("{roles}/{owner_id}"),
            &[("name", "Owner"), ("permissions", "users.read")],
        )
        .await;
    assert_eq!(emptied.status, 409, "{}", emptied.body);
    assert!(
        emptied
            .body
            .contains("must keep an admin whose access lasts past yours"),
        "{}",
        emptied.body
    );
    let role = portcullis::db::roles::find(&mut app.conn(), &org, &owner_id)
        .unwrap()
        .unwrap();
    assert!(role.permissions.contains("org.manage"));
}

/// An admin whose access ends steps down while the only other admin's day is over (the
/// job has not come by): that admin counted as the one who remains, and the job then
/// kept them, for good.
#[actix_web::test]
async fn an_admin_whose_access_ends_cannot_leave_the_organization_to_one_past_their_day() {
    let app = spawn_app_without_the_job().await;
    app.setup_admin().await;
    let org = app.org_id(ORG);
    let ada = app.user_id(ADMIN_EMAIL);
    let member = app.role_id(ORG, "member");
    memberships::set_role(&mut app.conn(), &org, &ada, &member).unwrap();
    let carol = app.add_member(ORG, "carol@example.com", "Carol", "C", "admin", true);
    let xavier = app.add_member(ORG, "xavier@example.com", "Xavier", "X", "admin", true);
    memberships::set_access_until(&mut app.conn(), &org, &carol, Some(whole_days_on(4))).unwrap();
    let yesterday = app.settings.clock.now() - chrono::Duration::days(1);
    memberships::set_access_until(&mut app.conn(), &org, &xavier, Some(yesterday)).unwrap();

    let carol_browser = app.member_browser("carol@example.com").await;
    let own = format!("{USERS}/{carol}");
    let last_day = portcullis::domain::access_until::field_value(Some(whole_days_on(4)));
    let step_down = [
        ("first_name", "Carol"),
        ("last_name", "C"),
        ("role_id", member.as_str()),
        ("access_until", last_day.as_str()),
        ("confirm_own_role", "yes"),
    ];
    let refused = carol_browser.submit(&own, &own, &step_down).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("an admin past their last day does not count"),
        "{}",
        refused.body
    );
    assert_eq!(app.member_role(ORG, &carol).as_deref(), Some("admin"));
}

/// The first page after a member's last day ends their access, and says so (not "nothing
/// here"); the pages after it find no organization of theirs.
async fn access_ended_is_said(member: &Browser) {
    let ended = member.get(USERS).await;
    assert_eq!(ended.status, 403, "{}", ended.body);
    assert!(
        ended
            .body
            .contains("Your access to this organization has ended")
    );
    assert_eq!(member.get(USERS).await.status, 404);
}
