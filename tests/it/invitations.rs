//! Invitations end to end: the invite form, the Invited tab, resend, cancel, expiry, the
//! accept link for new and existing accounts, and email through a real SMTP server.

use std::time::Duration;

use diesel::prelude::*;
use portcullis::db::DbConnection;
use portcullis::db::schema::{audit_events, email_outbox, invitations, memberships, users};

use crate::helpers::*;
use crate::smtp::{SmtpServer, unused_port, url_for};

const ORG: &str = "/orgs/my-org";
const NEW_PASSWORD: &str = "a long enough pass phrase";

/// The `value` of the `<option>` showing `label`.
fn option_value(html: &str, label: &str) -> String {
    let end = html
        .find(&format!(">{label}</option>"))
        .unwrap_or_else(|| panic!("no option {label}"));
    let start = html[..end].rfind("value=\"").unwrap() + 7;
    html[start..html[start..].find('"').unwrap() + start].to_string()
}

/// Every value of `attr="..."` in the page, in order.
fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let marker = format!("{attr}=\"");
    html.match_indices(&marker)
        .map(|(i, _)| {
            let start = i + marker.len();
            html[start..html[start..].find('"').unwrap() + start].to_string()
        })
        .collect()
}

/// The `<tr>` markup of the row for `email`.
fn row<'a>(html: &'a str, email: &str) -> &'a str {
    let at = html
        .find(&format!("data-email=\"{email}\""))
        .unwrap_or_else(|| panic!("no row for {email}"));
    let start = html[..at].rfind("<tr").unwrap();
    let end = html[at..].find("</tr>").unwrap() + at;
    &html[start..end]
}

async fn invite(browser: &Browser, emails: &str, role: &str) -> Page {
    invite_with(browser, emails, role, &[]).await
}

async fn invite_with(browser: &Browser, emails: &str, role: &str, extra: &[(&str, &str)]) -> Page {
    let form = browser.get(&format!("{ORG}/invitations/new")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let role_id = option_value(&form.body, role);
    let mut fields = vec![
        ("csrf_token", form.csrf()),
        ("emails", emails.to_string()),
        ("role_id", role_id),
    ];
    fields.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let sent = browser.post(&format!("{ORG}/invitations"), &fields).await;
    browser.follow_results(sent).await
}

/// Accepts with a new account from a fresh browser, which ends up signed in.
async fn accept_new(app: &TestApp, link: &str, first: &str) -> (Browser, Page) {
    let browser = app.client();
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = browser
        .post(
            link,
            &account_form(page.csrf(), first, "Tester", NEW_PASSWORD),
        )
        .await;
    (browser, done)
}

/// A member with `role`, made the way a person becomes one: invited, then accepting.
async fn add_member(app: &TestApp, admin: &Browser, email: &str, role: &str) -> Browser {
    let page = invite(admin, email, role).await;
    let (browser, done) = accept_new(app, &page.invite_link(), "Member").await;
    assert_eq!(done.status, 303, "{}", done.body);
    browser
}

async fn post_with_csrf(browser: &Browser, path: &str) -> Page {
    let token = browser.get(&format!("{ORG}/invitations")).await.csrf();
    browser.post(path, &[("csrf_token", token)]).await
}

fn invitation_id(app: &TestApp, email: &str) -> String {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    invitations::table
        .filter(invitations::email.eq(email))
        .order(invitations::created_at.desc())
        .select(invitations::id)
        .first(conn)
        .unwrap()
}

fn audit_count(app: &TestApp, action: &str) -> i64 {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    audit_events::table
        .filter(audit_events::action.eq(action))
        .count()
        .get_result(conn)
        .unwrap()
}

/// Moves the invitation's last sending back, past the resend rate limit.
fn backdate_sent(app: &TestApp, email: &str) {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    diesel::update(invitations::table.filter(invitations::email.eq(email)))
        .set(invitations::last_sent_at.eq(portcullis::db::now() - chrono::Duration::minutes(2)))
        .execute(conn)
        .unwrap();
}

fn member_count(app: &TestApp, email: &str) -> i64 {
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    memberships::table
        .filter(memberships::email.eq(email))
        .count()
        .get_result(conn)
        .unwrap()
}

fn assert_private(page: &Page) {
    assert_eq!(page.headers["referrer-policy"], "strict-origin");
    assert_eq!(page.headers["cache-control"], "no-store");
}

const DEAD_LINK: &str = "Ask an administrator of the organization that invited you";

fn assert_dead(page: &Page) {
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(page.body.contains(DEAD_LINK), "{}", page.body);
    assert_private(page);
}

async fn spawn_with_smtp(smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    spawn_app_with(move |s| s.smtp_url = Some(url)).await
}

#[actix_web::test]
async fn the_emailed_link_creates_an_account_that_lands_signed_in() {
    let smtp = SmtpServer::start();
    let app = spawn_with_smtp(&smtp).await;
    let admin = app.setup_admin().await;

    let results = invite(&admin, "New.Person@Example.com", "Engineer").await;
    assert_eq!(results.status, 200, "{}", results.body);
    assert!(
        row(&results.body, "new.person@example.com").contains("data-result=\"invited\""),
        "{}",
        results.body
    );

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["new.person@example.com".to_string()]);
    let subject = mail.header("Subject").unwrap();
    assert_eq!(
        subject,
        "Ada Admin invited you to join My organization on Portcullis"
    );
    assert!(mail.raw.contains("multipart/alternative"));
    // Named by the sender's own domain (not the host's name) and marked as a notice,
    // which out-of-office robots do not answer.
    let from = mail.header("From").unwrap();
    let domain = from.rsplit('@').next().unwrap().trim_end_matches('>');
    let message_id = mail.header("Message-ID").unwrap();
    assert!(
        message_id.ends_with(&format!("@{domain}>")),
        "{message_id} from {from}"
    );
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(mail.raw.contains("text/html"));
    let link = mail.invite_path();
    assert_eq!(
        link,
        results.invite_link(),
        "the email carries the shown link"
    );

    let visitor = app.client();
    let form = visitor.get(&link).await;
    assert_eq!(form.status, 200);
    assert_private(&form);
    assert!(form.body.contains("new.person@example.com"));
    assert!(form.body.contains("Join My organization"));
    let done = visitor
        .post(
            &link,
            &[
                ("csrf_token", form.csrf()),
                // Ignored: the account always gets the invited address.
                ("email", "attacker@example.com".into()),
                ("first_name", "New".into()),
                ("last_name", "Person".into()),
                ("password", NEW_PASSWORD.into()),
                ("password_confirm", NEW_PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/orgs/my-org/users"));
    assert_private(&done);

    let users_tab = visitor.get("/orgs/my-org/users").await;
    assert_eq!(users_tab.status, 200, "signed in straight away");
    assert!(users_tab.body.contains("Welcome to My organization, New."));
    assert!(row(&users_tab.body, "new.person@example.com").contains("data-role=\"engineer\""));
    {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        let emails: Vec<String> = users::table.select(users::email).load(conn).unwrap();
        assert!(!emails.contains(&"attacker@example.com".to_string()));
    }

    // Used once; then it is dead like any other bad link, to anyone but the account
    // that used it, which it leads back into the organization (the email opened again,
    // or the button pressed twice).
    assert_dead(&app.client().get(&link).await);
    assert_dead(&admin.get(&link).await);
    let again = visitor.get(&link).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(again.location.as_deref(), Some("/orgs/my-org/users"));
    assert_private(&again);
    // Not once their access has ended: the organization would only say so.
    {
        let org = app.org_id("my-org");
        let id = app.user_id("new.person@example.com");
        let past = portcullis::db::now() - chrono::Duration::minutes(1);
        portcullis::db::memberships::set_access_until(&mut app.conn(), &org, &id, Some(past))
            .unwrap();
    }
    assert_dead(&visitor.get(&link).await);
    let accepted = admin
        .get(&format!("{ORG}/invitations?status=accepted"))
        .await;
    assert!(row(&accepted.body, "new.person@example.com").contains("data-status=\"accepted\""));
    assert_eq!(audit_count(&app, "invitation.created"), 1);
    assert_eq!(audit_count(&app, "invitation.accepted"), 1);

    // No token, hash or link anywhere in the audit trail; the sent email's body is gone.
    let token = link.trim_start_matches("/invite/").to_string();
    let hash = portcullis::domain::tokens::hash(&token);
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    let trail: Vec<(String, Option<String>)> = audit_events::table
        .select((audit_events::details, audit_events::target_label))
        .load(conn)
        .unwrap();
    for (details, label) in trail {
        let all = format!("{details} {}", label.unwrap_or_default());
        assert!(!all.contains(&token) && !all.contains(&hash), "{all}");
    }
    let (sent_at, body): (Option<chrono::NaiveDateTime>, String) = email_outbox::table
        .select((email_outbox::sent_at, email_outbox::text_body))
        .first(conn)
        .unwrap();
    assert!(sent_at.is_some());
    assert!(
        body.is_empty(),
        "a sent email's link does not stay in the database"
    );
}

#[actix_web::test]
async fn resend_sends_a_new_link_and_kills_the_old_one_at_most_once_a_minute() {
    let smtp = SmtpServer::start();
    let app = spawn_with_smtp(&smtp).await;
    let admin = app.setup_admin().await;
    let first = invite(&admin, "pat@example.com", "Member")
        .await
        .invite_link();
    smtp.wait_for(1).await;
    let id = invitation_id(&app, "pat@example.com");
    let resend_path = format!("{ORG}/invitations/{id}/resend");

    // Too soon: back on the Invited tab, which says why; no page of its own.
    let too_soon = post_with_csrf(&admin, &resend_path).await;
    assert_eq!(too_soon.status, 303);
    assert_eq!(
        too_soon.location.as_deref(),
        Some("/orgs/my-org/invitations")
    );
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(tab.body.contains("flash-warning"), "{}", tab.body);
    assert!(tab.body.contains("less than a minute ago"), "{}", tab.body);
    assert_eq!(audit_count(&app, "invitation.resent"), 0);

    backdate_sent(&app, "pat@example.com");
    let resent = post_with_csrf(&admin, &resend_path).await;
    let resent = admin.follow_results(resent).await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    let second = resent.invite_link();
    assert_ne!(first, second);
    assert!(resent.body.contains("previous link no longer works"));

    let mails = smtp.wait_for(2).await;
    assert_eq!(mails[1].invite_path(), second);
    assert!(
        mails[1]
            .header("Subject")
            .unwrap()
            .starts_with("Reminder: ")
    );
    assert_dead(&app.client().get(&first).await);
    assert_eq!(app.client().get(&second).await.status, 200);
    assert_eq!(audit_count(&app, "invitation.resent"), 1);
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(row(&tab.body, "pat@example.com").contains("(2 times)"));

    // Another admin resends it and becomes its inviter; the trail keeps who it was.
    app.add_member("my-org", "second@example.com", "Sec", "Ond", "admin", true);
    let second_admin = app.member_browser("second@example.com").await;
    backdate_sent(&app, "pat@example.com");
    let again = post_with_csrf(&second_admin, &resend_path).await;
    assert_eq!(again.status, 303, "{}", again.body);
    let admin_id = app.user_id(ADMIN_EMAIL);
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE action = 'invitation.resent' AND actor_email = 'second@example.com' AND details LIKE '%\"previous_inviter_id\":\"{admin_id}\"%'"
        )),
        1,
        "the inviter it had before the resend"
    );
}

#[actix_web::test]
async fn cancel_kills_the_link() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let link = invite(&admin, "gone@example.com", "Member")
        .await
        .invite_link();
    let id = invitation_id(&app, "gone@example.com");

    let cancelled = post_with_csrf(&admin, &format!("{ORG}/invitations/{id}/cancel")).await;
    assert_eq!(cancelled.status, 303);
    assert_eq!(
        cancelled.location.as_deref(),
        Some("/orgs/my-org/invitations")
    );
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(tab.body.contains("was cancelled"));
    assert!(!tab.body.contains("data-email=\"gone@example.com\""));
    let cancelled_tab = admin
        .get(&format!("{ORG}/invitations?status=cancelled"))
        .await;
    assert!(row(&cancelled_tab.body, "gone@example.com").contains("data-status=\"cancelled\""));

    assert_dead(&app.client().get(&link).await);
    assert_eq!(audit_count(&app, "invitation.cancelled"), 1);
    // From a tab out of date, Cancel and Resend say why on the tab, not on an error page.
    for action in ["cancel", "resend"] {
        let again = post_with_csrf(&admin, &format!("{ORG}/invitations/{id}/{action}")).await;
        assert_eq!(again.status, 303, "{action}: {}", again.body);
        let tab = admin.get(&format!("{ORG}/invitations")).await;
        assert!(
            tab.body.contains("This invitation was cancelled."),
            "{action}: {}",
            tab.body
        );
    }
    assert_eq!(audit_count(&app, "invitation.cancelled"), 1);
}

#[actix_web::test]
async fn an_expired_link_is_dead_shows_as_expired_and_is_audited() {
    let app = spawn_app_with(|s| s.invitation_ttl = Duration::from_secs(1)).await;
    let admin = app.setup_admin().await;
    let link = invite(&admin, "late@example.com", "Member")
        .await
        .invite_link();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let visitor = app.client();
    let page = visitor.get(&link).await;
    assert_dead(&page);
    // Same page as a link that never existed.
    let unknown = visitor.get("/invite/not-a-real-token").await;
    assert_dead(&unknown);
    let last = if link.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &link[..link.len() - 1]);
    assert_dead(&visitor.get(&tampered).await);
    assert_eq!(audit_count(&app, "invitation.expired_link_used"), 1);
    // Whoever holds the link cannot grow the trail at will: the use is recorded once.
    for _ in 0..5 {
        assert_dead(&app.client().get(&link).await);
    }
    assert_eq!(audit_count(&app, "invitation.expired_link_used"), 1);

    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(row(&tab.body, "late@example.com").contains("data-status=\"expired\""));
    let pending = admin
        .get(&format!("{ORG}/invitations?status=pending"))
        .await;
    assert!(!pending.body.contains("data-email=\"late@example.com\""));
    let expired = admin
        .get(&format!("{ORG}/invitations?status=expired"))
        .await;
    assert!(expired.body.contains("data-email=\"late@example.com\""));
}

#[actix_web::test]
async fn an_existing_account_signs_in_then_joins_with_one_click() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    {
        // An account that belongs to no organization yet.
        let hash = portcullis::auth::password::hash_blocking(NEW_PASSWORD).unwrap();
        let mut conn = app.conn();
        portcullis::db::users::insert(
            &mut conn,
            &portcullis::db::users::NewUser {
                id: &portcullis::db::new_id(),
                email: "known@example.com",
                first_name: "Kim",
                last_name: "Known",
                password_hash: Some(&hash),
                platform_role: "none",
                status: "active",
                auth_method: "password",
                created_at: portcullis::db::now(),
                last_active_at: None,
            },
        )
        .unwrap();
    }
    let link = invite(&admin, "known@example.com", "Engineer")
        .await
        .invite_link();

    let kim = app.client();
    let offer = kim.get(&link).await;
    assert_eq!(offer.status, 200);
    assert_private(&offer);
    assert!(offer.body.contains("Sign in to accept"));
    assert!(
        !offer.body.contains("name=\"password\""),
        "no new-account form"
    );
    let login_url = attr_values(&offer.body, "href")
        .into_iter()
        .find(|h| h.starts_with("/login?next="))
        .expect("a sign-in link back to the invitation");
    // An account made for them (no password yet) sets one from an emailed link.
    let set_password = attr_values(&offer.body, "href")
        .into_iter()
        .find(|h| h.contains("forgot"))
        .expect("a way to set a password");
    assert_eq!(kim.get(&set_password).await.status, 200);

    let login_form = kim.get(&login_url).await;
    let next = hidden_value(&login_form.body, "next").unwrap();
    assert_eq!(next, link);
    let signed_in = kim
        .post(
            "/login",
            &[
                ("csrf_token", login_form.csrf()),
                ("email", "known@example.com".into()),
                ("password", NEW_PASSWORD.into()),
                ("next", next),
            ],
        )
        .await;
    assert_eq!(signed_in.location.as_deref(), Some(link.as_str()));

    let join = kim.get(&link).await;
    assert_eq!(join.status, 200);
    assert!(join.body.contains("Join My organization</button>"));
    // Many clicks at once still join once. A click that finds the link used by this very
    // account is led into the organization too; one that lost the race mid-way finds it
    // dead.
    let form = [("csrf_token", join.csrf())];
    let posts = (0..8).map(|_| kim.post(&link, &form));
    let answers = futures_util::future::join_all(posts).await;
    let statuses: Vec<u16> = answers.iter().map(|p| p.status).collect();
    assert!(statuses.contains(&303), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 303 || *s == 404),
        "{statuses:?}"
    );
    assert_eq!(member_count(&app, "known@example.com"), 1);
    assert_eq!(audit_count(&app, "invitation.accepted"), 1);

    let users_tab = kim.get("/orgs/my-org/users").await;
    assert_eq!(users_tab.status, 200);
    assert!(row(&users_tab.body, "known@example.com").contains("data-role=\"engineer\""));
}

/// Access that ends on a day takes the invitation's link with it: accepting after that
/// day would make an account whose membership ends on its first page.
#[actix_web::test]
async fn an_invitation_whose_access_has_ended_is_dead_and_is_not_sent_again() {
    let smtp = SmtpServer::start();
    let app = spawn_with_smtp(&smtp).await;
    let admin = app.setup_admin().await;
    let today = portcullis::db::now().date();
    let last_day = today.format("%Y-%m-%d").to_string();
    let link = invite_with(
        &admin,
        "temp@example.com",
        "Member",
        &[("access_until", last_day.as_str())],
    )
    .await
    .invite_link();
    let ends = today.succ_opt().unwrap().and_time(chrono::NaiveTime::MIN);
    let expires: chrono::NaiveDateTime = {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        invitations::table
            .filter(invitations::email.eq("temp@example.com"))
            .select(invitations::expires_at)
            .first(conn)
            .unwrap()
    };
    assert!(expires <= ends, "the link dies with the access: {expires}");
    let page = app.client().get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&format!("Access ends after {last_day}")),
        "{}",
        page.body
    );
    // The email says so too, in both its parts.
    let mail = smtp.wait_for(1).await.remove(0);
    let said = format!("Your access to My organization ends after {last_day} (UTC).");
    let body = mail.decoded();
    assert_eq!(body.matches(&said).count(), 2, "{body}");

    // The day passes (an invitation sent before links died with their access, too).
    {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        diesel::update(invitations::table.filter(invitations::email.eq("temp@example.com")))
            .set(invitations::access_until.eq(portcullis::db::now() - chrono::Duration::minutes(1)))
            .execute(conn)
            .unwrap();
    }
    let visitor = app.client();
    assert_dead(&visitor.get(&link).await);
    let sent = visitor
        .post(
            &link,
            &account_form(
                visitor.get("/login").await.csrf(),
                "Temp",
                "Worker",
                NEW_PASSWORD,
            ),
        )
        .await;
    assert_dead(&sent);
    assert_eq!(app.count("users WHERE email = 'temp@example.com'"), 0);

    // Resending it would mail a link that cannot work: refused on the tab, with the way on.
    smtp.wait_for(1).await;
    backdate_sent(&app, "temp@example.com");
    let id = invitation_id(&app, "temp@example.com");
    let refused = post_with_csrf(&admin, &format!("{ORG}/invitations/{id}/resend")).await;
    assert_eq!(refused.status, 303);
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(tab.body.contains("its last day has passed"), "{}", tab.body);
    assert_eq!(audit_count(&app, "invitation.resent"), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), 1, "no second email");
}

#[actix_web::test]
async fn a_signed_in_user_cannot_accept_someone_elses_invitation() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let link = invite(&admin, "someone@example.com", "Member")
        .await
        .invite_link();

    let page = admin.get(&link).await;
    assert_eq!(page.status, 403);
    assert_private(&page);
    assert!(page.body.contains("signed in as"));
    let refused = admin
        .post(
            &link,
            &account_form(page.csrf(), "Sneaky", "Admin", NEW_PASSWORD),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(member_count(&app, "someone@example.com"), 0);
    assert_eq!(audit_count(&app, "invitation.accepted"), 0);

    // Signing out from the page comes back to the invitation, for its rightful person.
    let signed_out = admin
        .post(
            "/logout",
            &[("csrf_token", page.csrf()), ("next", link.clone())],
        )
        .await;
    assert_eq!(signed_out.status, 303);
    assert_eq!(signed_out.location.as_deref(), Some(link.as_str()));
    let back = admin.get(&link).await;
    assert_eq!(back.status, 200);
    assert!(
        back.body.contains("Create account and join"),
        "{}",
        back.body
    );

    // The rightful person can still use it.
    let (_, done) = accept_new(&app, &link, "Someone").await;
    assert_eq!(done.status, 303);
}

#[actix_web::test]
async fn concurrent_acceptance_makes_exactly_one_membership() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let link = invite(&admin, "racer@example.com", "Member")
        .await
        .invite_link();

    let mut requests = Vec::new();
    for i in 0..10 {
        let browser = app.client();
        let form = browser.get(&link).await;
        assert_eq!(form.status, 200);
        let fields = vec![
            ("csrf_token", form.csrf()),
            ("first_name", format!("Racer{i}")),
            ("last_name", "Tester".to_string()),
            ("password", NEW_PASSWORD.to_string()),
            ("password_confirm", NEW_PASSWORD.to_string()),
        ];
        requests.push((browser, fields));
    }
    let posts = requests
        .iter()
        .map(|(browser, fields)| browser.post(&link, fields));
    let answers = futures_util::future::join_all(posts).await;
    let statuses: Vec<u16> = answers.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 303 || *s == 404),
        "{statuses:?}"
    );
    for lost in answers.iter().filter(|p| p.status == 404) {
        assert!(lost.body.contains(DEAD_LINK));
    }
    assert_eq!(member_count(&app, "racer@example.com"), 1);
    assert_eq!(app.count("users"), 2);
    assert_eq!(audit_count(&app, "invitation.accepted"), 1);
}

#[actix_web::test]
async fn a_dead_mail_server_delays_the_email_which_then_arrives_exactly_once() {
    let port = unused_port();
    let url = url_for(port);
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    let admin = app.setup_admin().await;
    let results = invite(&admin, "patient@example.com", "Member").await;
    assert_eq!(results.status, 200);

    // The worker tried, failed, and keeps the email with the reason.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (attempts, error, sent): (i64, Option<String>, Option<chrono::NaiveDateTime>) = {
            let mut conn = app.conn();
            let conn: &mut DbConnection = &mut conn;
            email_outbox::table
                .select((
                    email_outbox::attempts,
                    email_outbox::last_error,
                    email_outbox::sent_at,
                ))
                .first(conn)
                .unwrap()
        };
        assert!(sent.is_none());
        if attempts >= 2 {
            assert!(error.is_some());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no retry happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let smtp = SmtpServer::start_on(port);
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.invite_path(), results.invite_link());
    // Later rounds send nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(app.count("email_outbox WHERE sent_at IS NOT NULL"), 1);
}

/// While the mail server was away one invitation's link died (its week ran out, say, or
/// it was resent): once the server is back, that email is given up on, saying why, and
/// the other still goes. Retried for up to a week, a dead link used to arrive anyway.
#[actix_web::test]
async fn an_email_whose_link_died_while_the_mail_server_was_away_is_not_sent() {
    let port = unused_port();
    let url = url_for(port);
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    let admin = app.setup_admin().await;
    let results = invite(&admin, "late@example.com\nontime@example.com", "Member").await;
    assert_eq!(results.status, 200);
    let outbox = |to: &'static str| {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        email_outbox::table
            .filter(email_outbox::to_addr.eq(to))
            .select((
                email_outbox::attempts,
                email_outbox::failed_at,
                email_outbox::last_error,
            ))
            .first::<(i64, Option<chrono::NaiveDateTime>, Option<String>)>(conn)
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while outbox("late@example.com").0 < 1 {
        assert!(std::time::Instant::now() < deadline, "no attempt happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Set-up: the first link's end has come while the server was away.
    {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        diesel::update(email_outbox::table.filter(email_outbox::to_addr.eq("late@example.com")))
            .set(email_outbox::send_before.eq(Some(portcullis::db::now())))
            .execute(conn)
            .unwrap();
    }

    // Given up at the worker's next try, while the server is still away. (Had the server
    // come back before that, the worker could have sent a copy of the row it read
    // before the set-up above moved its deadline: a race of the test's, not the portal's,
    // where the deadline is fixed when the email is queued.)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (_, failed, error) = loop {
        let row = outbox("late@example.com");
        if row.1.is_some() {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dead link's email was not given up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(failed.is_some());
    assert!(
        error
            .unwrap_or_default()
            .contains("died before it could be sent")
    );
    // The Invited tab says which emails have not gone, and why: one given up, one retried.
    while outbox("ontime@example.com").2.is_none() {
        assert!(std::time::Instant::now() < deadline, "no attempt happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    let late = row(&tab.body, "late@example.com");
    assert!(late.contains("data-undelivered=\"given-up\""), "{late}");
    assert!(late.contains("its link died first"), "{late}");
    let ontime = row(&tab.body, "ontime@example.com");
    assert!(ontime.contains("data-undelivered=\"retrying\""), "{ontime}");

    let smtp = SmtpServer::start_on(port);
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["ontime@example.com".to_string()]);
    assert_eq!(smtp.received().len(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.count("email_outbox WHERE sent_at IS NOT NULL") < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the email was not marked sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(!row(&tab.body, "ontime@example.com").contains("data-undelivered"));
}

#[actix_web::test]
async fn two_instances_on_one_database_send_each_email_once() {
    let smtp = SmtpServer::start();
    let app = spawn_with_smtp(&smtp).await;
    let admin = app.setup_admin().await;
    // Both instances run an outbox worker over the same rows.
    let _second = app.restart().await;
    let emails: Vec<String> = (0..40).map(|i| format!("pair{i}@example.com")).collect();
    let results = invite(&admin, &emails.join("\n"), "Member").await;
    assert_eq!(results.status, 200);
    smtp.wait_for(40).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 40);
    let mut recipients: Vec<String> = received.iter().map(|m| m.to[0].clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 40, "no address got two emails");
}

#[actix_web::test]
async fn five_hundred_addresses_in_one_submit() {
    let smtp = SmtpServer::start();
    let app = spawn_with_smtp(&smtp).await;
    let admin = app.setup_admin().await;
    let mut addresses: Vec<String> = (0..497).map(|i| format!("bulk{i}@example.com")).collect();
    addresses.extend([
        "no-at-sign".into(),
        "two@@example.com".into(),
        "x@nodot".into(),
    ]);
    // Mixed separators: commas, spaces and new lines.
    let text = addresses
        .chunks(10)
        .map(|c| c.join(", "))
        .collect::<Vec<_>>()
        .join("\n");
    let results = invite(&admin, &text, "Member").await;
    assert_eq!(results.status, 200);
    let outcomes = attr_values(&results.body, "data-result");
    assert_eq!(outcomes.len(), 500);
    assert_eq!(outcomes.iter().filter(|o| *o == "invited").count(), 497);
    assert_eq!(outcomes.iter().filter(|o| *o == "invalid").count(), 3);
    assert_eq!(app.count("invitations"), 497);
    assert_eq!(audit_count(&app, "invitation.created"), 497);
    assert_eq!(smtp.wait_for(497).await.len(), 497);

    let too_many: Vec<String> = (0..501).map(|i| format!("more{i}@example.com")).collect();
    let refused = invite(&admin, &too_many.join(" "), "Member").await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("at most 500"));
    assert_eq!(app.count("invitations"), 497);
}

#[actix_web::test]
async fn each_address_gets_a_result_and_invalid_ones_never_block_the_rest() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    invite(&admin, "old@example.com recent@example.com", "Member").await;
    backdate_sent(&app, "old@example.com");

    let page = invite(
        &admin,
        "fresh@example.com, admin@example.com\nold@example.com recent@example.com bad@@example.com",
        "Member",
    )
    .await;
    assert_eq!(page.status, 200);
    let result = |email: &str| row(&page.body, email).to_string();
    assert!(result("fresh@example.com").contains("data-result=\"invited\""));
    assert!(result("fresh@example.com").contains(">Invited<"));
    assert!(result("admin@example.com").contains("data-result=\"member\""));
    assert!(result("admin@example.com").contains("Already a member"));
    assert!(result("old@example.com").contains("data-result=\"resent\""));
    assert!(result("old@example.com").contains("link resent"));
    assert!(result("old@example.com").contains("data-copy="));
    assert!(result("recent@example.com").contains("data-result=\"not_resent\""));
    assert!(result("recent@example.com").contains("less than a minute ago"));
    assert!(result("bad@@example.com").contains("data-result=\"invalid\""));
    assert!(result("bad@@example.com").contains("Invalid address: An email address needs one @"));
    assert_eq!(app.count("invitations"), 3);
}

/// An admin who invited someone as Admin, then invites them again as Member with a last
/// day, means the second offer: renewing sent the first again (Admin, no end) under a
/// results page that said "Member". The open invitation is cancelled and the new one sent
/// in its place; the same offer again is still a plain resend.
#[actix_web::test]
async fn inviting_again_with_another_offer_replaces_the_open_invitation() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let first = invite(&admin, "x@example.com", "Admin").await;
    let first_link = first.invite_link();
    backdate_sent(&app, "x@example.com");

    let last_day = (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    let page = invite_with(
        &admin,
        "x@example.com",
        "Member",
        &[("access_until", last_day.as_str())],
    )
    .await;
    let result = row(&page.body, "x@example.com");
    assert!(result.contains("data-result=\"replaced\""), "{result}");
    assert!(result.contains("replaced by this one"), "{result}");
    assert!(page.body.contains("data-tone=\"success\""), "{}", page.body);
    assert!(page.body.contains("1 invitation replaced by this offer"));
    let second_link = page.invite_link();
    // Not again within the minute, as a resend: each replacement mails the address.
    let too_soon = invite(&admin, "x@example.com", "Admin").await;
    let result = row(&too_soon.body, "x@example.com");
    assert!(result.contains("sent less than a minute ago, so it was not replaced"));

    let dead = app.client().get(&first_link).await;
    assert_eq!(dead.status, 404, "{}", dead.body);
    let open = app.client().get(&second_link).await;
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(open.body.contains("Member"), "{}", open.body);
    assert!(open.body.contains("Access ends after"), "{}", open.body);
    assert_eq!(app.count("invitations WHERE status = 'pending'"), 1);
    assert_eq!(app.count("invitations WHERE status = 'cancelled'"), 1);
    assert_eq!(app.audit_count("my-org", "invitation.cancelled"), 1);

    backdate_sent(&app, "x@example.com");
    // The same offer again, now with the invitee's name: sent again, and the accept form
    // offers the name given last.
    let same = invite_with(
        &admin,
        "x@example.com",
        "Member",
        &[("access_until", last_day.as_str()), ("first_name", "Xena")],
    )
    .await;
    assert!(row(&same.body, "x@example.com").contains("data-result=\"resent\""));
    assert_eq!(app.count("invitations"), 2);
    let accept = app.client().get(&same.invite_link()).await;
    assert!(accept.body.contains("value=\"Xena\""), "{}", accept.body);
    let (action, details) = app.latest_event("my-org");
    assert_eq!(action, "invitation.resent");
    assert_eq!(details["renamed"]["first_name"], "Xena");
}

/// Acceptance refuses an invitation whose inviter was removed; it must not then sit in
/// the Invited tab as Pending, counted in its badge: it is cancelled with the membership
/// that sent it, in that organization only, and the trail says why.
#[actix_web::test]
async fn an_invitation_ends_with_the_membership_that_sent_it() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "manager", true);
    app.create_org("other-org", "Other Org");
    app.add_member("other-org", "bob@example.com", "Bob", "B", "admin", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    assert_eq!(
        invite(&bob_browser, "pat@example.com", "Member")
            .await
            .status,
        200
    );
    let here = mailed_invite_link(&app, "pat@example.com").await;
    let there = bob_browser
        .invite(
            "other-org",
            "kim@example.com",
            &app.role_id("other-org", "member"),
        )
        .await;
    assert_eq!(there.status, 303, "{}", there.body);

    let confirm = admin.get(&format!("{ORG}/users/{bob}/delete")).await;
    assert!(
        confirm.body.contains("data-open-invitations=\"1\""),
        "{}",
        confirm.body
    );
    let removed = admin
        .post(
            &format!("{ORG}/users/{bob}/delete"),
            &[
                ("csrf_token", confirm.csrf()),
                ("confirm_email", "bob@example.com".into()),
            ],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);

    let open = admin.get(&format!("{ORG}/invitations")).await;
    assert!(
        !open.body.contains("data-email=\"pat@example.com\""),
        "{}",
        open.body
    );
    let cancelled = admin
        .get(&format!("{ORG}/invitations?status=cancelled"))
        .await;
    assert!(row(&cancelled.body, "pat@example.com").contains("data-status=\"cancelled\""));
    let (action, details) = app.latest_event("my-org");
    assert_eq!(action, "member.removed");
    assert_eq!(details["invitations_cancelled"], 1);
    assert_eq!(app.audit_count("my-org", "invitation.cancelled"), 1);
    assert_dead(&app.client().get(&here).await);
    // Bob is still an admin of the other organization: what he sent there stays open.
    let status: String = invitations::table
        .filter(invitations::email.eq("kim@example.com"))
        .select(invitations::status)
        .first(&mut *app.conn() as &mut DbConnection)
        .unwrap();
    assert_eq!(status, "pending");
}

/// An invitation from someone deactivated does not work until they are re-activated
/// (acceptance asks the inviter's standing): the Invited tab says so, rather than show it
/// plainly Pending while the invitee meets a dead link.
#[actix_web::test]
async fn an_invitation_from_a_deactivated_inviter_is_shown_on_hold() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let bob = app.add_member("my-org", "bob@example.com", "Bob", "B", "admin", true);
    let bob_browser = app.member_browser("bob@example.com").await;
    let link = invite(&bob_browser, "pat@example.com", "Member")
        .await
        .invite_link();
    let users = format!("{ORG}/users");
    let off = admin
        .submit(&users, &format!("{users}/{bob}/deactivate"), &[])
        .await;
    assert_eq!(off.status, 303, "{}", off.body);

    let tab = admin.get(&format!("{ORG}/invitations")).await;
    let held = row(&tab.body, "pat@example.com");
    assert!(held.contains("data-on-hold"), "{held}");
    assert!(held.contains("Resend sends it in your name"), "{held}");
    assert_dead(&app.client().get(&link).await);

    let on = admin
        .submit(&users, &format!("{users}/{bob}/activate"), &[])
        .await;
    assert_eq!(on.status, 303, "{}", on.body);
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(!row(&tab.body, "pat@example.com").contains("data-on-hold"));
    assert_eq!(app.client().get(&link).await.status, 200);

    // An account a platform admin disabled is held the same way, its membership active.
    let disabled = admin
        .submit(
            &format!("/admin/users/{bob}"),
            &format!("/admin/users/{bob}/disable"),
            &[],
        )
        .await;
    assert_eq!(disabled.status, 303, "{}", disabled.body);
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(row(&tab.body, "pat@example.com").contains("data-on-hold"));
    assert_dead(&app.client().get(&link).await);

    // One whose sender has no membership here (removed before removals ended what they
    // sent) is held too.
    let quinn = invite(&admin, "quinn@example.com", "Member")
        .await
        .invite_link();
    let gone = app.add_account("gone@example.com", "none");
    diesel::update(invitations::table.filter(invitations::email.eq("quinn@example.com")))
        .set(invitations::invited_by.eq(&gone))
        .execute(&mut *app.conn() as &mut DbConnection)
        .unwrap();
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(row(&tab.body, "quinn@example.com").contains("data-on-hold"));
    assert_dead(&app.client().get(&quinn).await);
}

#[actix_web::test]
async fn the_invite_form_explains_bad_input() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let form = admin.get(&format!("{ORG}/invitations/new")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("no groups yet"));
    let page = admin
        .post(
            &format!("{ORG}/invitations"),
            &[
                ("csrf_token", form.csrf()),
                ("emails", "a@example.com b@example.com".into()),
                ("role_id", "no-such-role".into()),
                ("group_ids", "no-such-group".into()),
                ("first_name", "Ada".into()),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Choose a role."));
    assert!(page.body.contains("A chosen group does not exist."));
    assert!(page.body.contains("only be given when inviting one person"));
    assert!(page.body.contains("a@example.com b@example.com</textarea>"));
    assert_eq!(app.count("invitations"), 0);
}

#[actix_web::test]
async fn inviting_needs_the_users_invite_permission() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let member = add_member(&app, &admin, "plain@example.com", "Member").await;
    invite(&admin, "target@example.com", "Member").await;
    let id = invitation_id(&app, "target@example.com");

    assert_eq!(member.get(&format!("{ORG}/invitations")).await.status, 403);
    assert_eq!(
        member.get(&format!("{ORG}/invitations/new")).await.status,
        403
    );
    let csrf = member.get("/orgs/my-org/users").await.csrf();
    for path in [
        format!("{ORG}/invitations"),
        format!("{ORG}/invitations/{id}/resend"),
        format!("{ORG}/invitations/{id}/cancel"),
    ] {
        let page = member
            .post(
                &path,
                &[
                    ("csrf_token", csrf.clone()),
                    ("emails", "x@example.com".into()),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert_eq!(app.count("invitations"), 2);
    // Another organization's invitations do not exist for outsiders.
    assert_eq!(admin.get("/orgs/elsewhere/invitations").await.status, 404);
}

#[actix_web::test]
async fn nobody_invites_into_a_role_above_their_own() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let admin_role = option_value(
        &admin.get(&format!("{ORG}/invitations/new")).await.body,
        "Admin",
    );
    let manager = add_member(&app, &admin, "boss2@example.com", "Manager").await;

    let form = manager.get(&format!("{ORG}/invitations/new")).await;
    assert_eq!(form.status, 200);
    assert!(!form.body.contains(">Admin</option>"));
    assert!(form.body.contains(">Manager</option>"));
    let refused = manager
        .post(
            &format!("{ORG}/invitations"),
            &[
                ("csrf_token", form.csrf()),
                ("emails", "climber@example.com".into()),
                ("role_id", admin_role),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("above your own role"));
    assert_eq!(
        app.count("invitations WHERE email = 'climber@example.com'"),
        0
    );

    // The manager's own invitation dies cleanly once the manager may no longer invite.
    let sent = invite(&manager, "junior@example.com", "Manager").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let link = mailed_invite_link(&app, "junior@example.com").await;
    {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        let member_role: String = portcullis::db::schema::roles::table
            .filter(portcullis::db::schema::roles::key.eq("member"))
            .select(portcullis::db::schema::roles::id)
            .first(conn)
            .unwrap();
        diesel::update(memberships::table.filter(memberships::email.eq("boss2@example.com")))
            .set(memberships::role_id.eq(member_role))
            .execute(conn)
            .unwrap();
    }
    // Dead as soon as it is opened: nobody types a name and a password for nothing.
    let visitor = app.client();
    let opened = visitor.get(&link).await;
    assert_dead(&opened);
    let sent = visitor
        .post(
            &link,
            &account_form(
                visitor.get("/login").await.csrf(),
                "Junior",
                "Tester",
                NEW_PASSWORD,
            ),
        )
        .await;
    assert_dead(&sent);
    assert_eq!(member_count(&app, "junior@example.com"), 0);
    assert_eq!(app.count("users WHERE email = 'junior@example.com'"), 0);
    // The organization's admins learn why: once, however often the link is tried.
    assert_dead(&app.client().get(&link).await);
    assert_eq!(app.audit_count("my-org", "invitation.refused"), 1);
}

#[actix_web::test]
async fn the_accept_form_explains_bad_input_and_keeps_the_link_alive() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let link = invite_with(
        &admin,
        "named@example.com",
        "Member",
        &[("first_name", "Nia"), ("last_name", "Named")],
    )
    .await
    .invite_link();
    let visitor = app.client();
    let form = visitor.get(&link).await;
    assert!(
        form.body.contains("value=\"Nia\""),
        "names filled in advance"
    );
    let page = visitor
        .post(&link, &account_form(form.csrf(), "Nia", "", "short"))
        .await;
    assert_eq!(page.status, 422);
    assert_private(&page);
    assert!(page.body.contains("Enter a name."));
    assert!(page.body.contains("Use at least 8 characters."));
    assert!(!page.body.contains("value=\"short\""));
    assert_eq!(visitor.get(&link).await.status, 200, "still usable");
}

#[actix_web::test]
async fn emails_escape_names_and_cannot_be_given_extra_headers() {
    let smtp = SmtpServer::start();
    let app = spawn_with_smtp(&smtp).await;
    let admin = app.setup_admin().await;
    {
        // Stored values that validation would refuse, to check the email's own defences.
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        use portcullis::db::schema::organizations;
        diesel::update(organizations::table)
            .set(organizations::name.eq("<b>Acme</b> & Co"))
            .execute(conn)
            .unwrap();
        diesel::update(users::table)
            .set(users::first_name.eq("Eve\r\nBcc: victim@example.com\r\n"))
            .execute(conn)
            .unwrap();
    }
    invite(&admin, "target@example.com", "Member").await;
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.to, vec!["target@example.com".to_string()]);
    assert!(mail.header("Bcc").is_none());
    let head = mail.raw.split("\r\n\r\n").next().unwrap();
    assert!(!head.contains("\r\nBcc:"), "no header injected: {head}");
    let decoded = mail.decoded();
    assert!(
        decoded.contains("<strong>&#60;b&#62;Acme&#60;/b&#62; &#38; Co</strong>"),
        "{decoded}"
    );
}

#[actix_web::test]
async fn the_invited_tab_pages_through_invitations_newest_first() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let emails: Vec<String> = (0..120).map(|i| format!("p{i:03}@example.com")).collect();
    invite(&admin, &emails.join(" "), "Member").await;

    let mut seen = Vec::new();
    let mut path = format!("{ORG}/invitations");
    let mut pages = 0;
    loop {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("<th scope=\"col\">Invited by</th>"));
        let rows = attr_values(&page.body, "data-email");
        assert!(rows.len() <= 50);
        seen.extend(rows);
        pages += 1;
        let next = attr_values(&page.body, "href")
            .into_iter()
            .find(|h| h.contains("cursor="));
        match next {
            Some(next) => path = next.replace("&amp;", "&"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 120, "no row twice");
    // A damaged link starts the tab again (see
    // `the_invited_tab_recovers_from_a_damaged_link_and_an_overlong_search`).
    assert_eq!(
        admin
            .get(&format!("{ORG}/invitations?cursor=garbage"))
            .await
            .status,
        303
    );
}

fn insert_group(app: &TestApp, name: &str, role_key: Option<&str>) -> String {
    use portcullis::db::schema::{groups, organizations, roles};
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    let org_id: String = organizations::table
        .select(organizations::id)
        .first(conn)
        .unwrap();
    let role_id: Option<String> = role_key.map(|key| {
        roles::table
            .filter(roles::key.eq(key))
            .select(roles::id)
            .first(conn)
            .unwrap()
    });
    let id = portcullis::db::new_id();
    diesel::insert_into(groups::table)
        .values((
            groups::id.eq(&id),
            groups::org_id.eq(&org_id),
            groups::name.eq(name),
            groups::description.eq(""),
            groups::role_id.eq(role_id),
            groups::created_at.eq(portcullis::db::now()),
        ))
        .execute(conn)
        .unwrap();
    id
}

fn insert_pool(app: &TestApp, name: &str) -> String {
    use portcullis::db::schema::{organizations, pools};
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    let org_id: String = organizations::table
        .select(organizations::id)
        .first(conn)
        .unwrap();
    let id = portcullis::db::new_id();
    diesel::insert_into(pools::table)
        .values((
            pools::id.eq(&id),
            pools::org_id.eq(&org_id),
            pools::name.eq(name),
            pools::created_at.eq(portcullis::db::now()),
        ))
        .execute(conn)
        .unwrap();
    id
}

#[actix_web::test]
async fn chosen_groups_and_pools_are_joined_on_acceptance() {
    use portcullis::db::schema::{group_members, pool_members, roles};
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let group = insert_group(&app, "Night shift", None);
    let admins_group = insert_group(&app, "Admins", Some("admin"));
    let pool = insert_pool(&app, "Europe");

    let form = admin.get(&format!("{ORG}/invitations/new")).await;
    assert!(form.body.contains(">Night shift</label>"));
    assert!(form.body.contains(">Europe</label>"));
    let results = invite_with(
        &admin,
        "grouped@example.com",
        "Engineer",
        &[("group_ids", &group), ("pool_ids", &pool)],
    )
    .await;
    let (_, done) = accept_new(&app, &results.invite_link(), "Grouped").await;
    assert_eq!(done.status, 303);

    {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        let user_id: String = users::table
            .filter(users::email.eq("grouped@example.com"))
            .select(users::id)
            .first(conn)
            .unwrap();
        let groups: Vec<String> = group_members::table
            .filter(group_members::user_id.eq(&user_id))
            .select(group_members::group_id)
            .load(conn)
            .unwrap();
        assert_eq!(groups, vec![group]);
        let pool_role: String = pool_members::table
            .inner_join(roles::table.on(roles::id.eq(pool_members::role_id)))
            .filter(pool_members::user_id.eq(&user_id))
            .filter(pool_members::pool_id.eq(&pool))
            .select(roles::key)
            .first(conn)
            .unwrap();
        assert_eq!(
            pool_role, "engineer",
            "the pool role is the invitation's role"
        );
    }

    // A group that grants Admin is beyond a Manager.
    let manager = add_member(&app, &admin, "lead@example.com", "Manager").await;
    let refused = invite_with(
        &manager,
        "sneaky@example.com",
        "Member",
        &[("group_ids", &admins_group)],
    )
    .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("The group Admins grants a role above your own (a higher rank")
    );
}

/// Runs the real binary with a mail server configured, and reads everything it logs.
#[actix_web::test]
async fn with_a_mail_server_no_invitation_link_reaches_the_log() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    let smtp = SmtpServer::start();
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let port = unused_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .env_remove("PORTCULLIS_PUBLIC_URL")
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_SMTP_URL", smtp.url())
        .env("PORTCULLIS_MAIL_POLL_INTERVAL", "200ms")
        .env("PORTCULLIS_LOG", "debug")
        .env("PORTCULLIS_WORKERS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run portcullis");
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("/setup/") {
                let _ = tx.send(line[at..].trim().to_string());
            }
        }
    });
    let setup = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server prints its setup link");

    let base = format!("http://127.0.0.1:{port}");
    let admin = Browser::new(&base);
    let form = admin.get(&setup).await;
    let done = admin.post(&setup, &first_admin_form(form.csrf())).await;
    assert_eq!(done.status, 303);
    let results = invite(&admin, "quiet@example.com", "Member").await;
    let shown = results.invite_link();
    let mail = smtp.wait_for(1).await.remove(0);
    let link = mail.invite_path();
    assert_eq!(link, shown);
    let visitor = Browser::new(&base);
    let form = visitor.get(&link).await;
    let joined = visitor
        .post(
            &link,
            &account_form(form.csrf(), "Quiet", "Person", NEW_PASSWORD),
        )
        .await;
    assert_eq!(joined.status, 303);
    assert_eq!(Browser::new(&base).get(&link).await.status, 404);
    // Opened again by the account that used it, it leads in: the link is in no log then
    // either.
    assert_eq!(visitor.get(&link).await.status, 303);

    child.kill().expect("stop the server");
    let _ = child.wait();
    let log = log.join().unwrap();
    assert!(
        log.contains("/invite/{token}"),
        "requests were logged: {log}"
    );
    assert!(log.contains("email sent"), "{log}");
    let token = link.trim_start_matches("/invite/");
    assert!(!log.contains(token), "a token reached the log");
    assert!(!log.contains(&portcullis::domain::tokens::hash(token)));
    assert!(!log.contains("invitation link"));
}

#[actix_web::test]
async fn every_invited_tab_query_is_served_by_an_index_in_order() {
    use diesel::connection::SimpleConnection;
    use portcullis::db::invitations::{ListWhere, StatusFilter, explain_list};
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    let mut conn = app.conn();
    let postgres = app.db.is_postgres();
    if postgres {
        // Tiny test tables make a full scan look cheapest; ask whether an index *can*
        // serve the query in page order.
        conn.batch_execute("SET enable_seqscan = off; SET enable_sort = off")
            .unwrap();
    }
    let now = portcullis::db::now();
    for filter in [
        StatusFilter::Open,
        StatusFilter::Pending,
        StatusFilter::Expired,
        StatusFilter::Accepted,
        StatusFilter::Cancelled,
        StatusFilter::All,
    ] {
        for after in [None, Some((now, "0".to_string()))] {
            let at = ListWhere {
                org_id: &org,
                filter,
                email_prefix: None,
                now,
            };
            let plan = explain_list(&mut conn, &at, after.clone())
                .unwrap()
                .join("\n");
            let lower = plan.to_lowercase();
            assert!(
                lower.contains("invitations_org_"),
                "{filter:?} {after:?}: {plan}"
            );
            assert!(
                !lower.contains("temp b-tree for order by"),
                "{filter:?}: {plan}"
            );
            assert!(
                !lower.contains("seq scan on invitations"),
                "{filter:?}: {plan}"
            );
            assert!(
                !lower.lines().any(|l| l
                    .trim_start()
                    .trim_start_matches("->")
                    .trim_start()
                    .starts_with("sort")),
                "{filter:?}: {plan}"
            );
        }
    }
    // A search by address start drives from the (org_id, email) index: the matches are
    // found without reading the organization's other invitations, then put in order
    // (so sorting is allowed here).
    if postgres {
        // PostgreSQL weighs indexes by statistics: give it an organization with many
        // invitations, few of them matching, as a search meets them.
        let role = app.role_id("my-org", "member");
        conn.batch_execute(&format!(
            "INSERT INTO invitations (id, org_id, email, first_name, last_name, role_id, \
             token_hash, status, created_at, expires_at, last_sent_at, send_count) \
             SELECT 'i' || g, '{org}', 'user' || g || '@example.com', '', '', '{role}', \
             'h' || g, 'pending', now(), now(), now(), 1 FROM generate_series(1, 3000) g; \
             ANALYZE invitations; RESET enable_sort"
        ))
        .unwrap();
    }
    for filter in [StatusFilter::Open, StatusFilter::All] {
        let at = ListWhere {
            org_id: &org,
            filter,
            email_prefix: Some("ada"),
            now,
        };
        let plan = explain_list(&mut conn, &at, None).unwrap().join("\n");
        let lower = plan.to_lowercase();
        // Open invitations may also come from the unique (org_id, email) index of
        // pending ones: an address index either way.
        assert!(
            lower.contains("invitations_org_email_idx")
                || lower.contains("invitations_one_pending_idx"),
            "{filter:?}: {plan}"
        );
        assert!(
            !lower.contains("seq scan on invitations"),
            "{filter:?}: {plan}"
        );
    }
    if postgres {
        conn.batch_execute("RESET enable_seqscan; RESET enable_sort")
            .unwrap();
    }
}

#[actix_web::test]
async fn the_pending_badge_counts_from_its_index() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    let mut conn = app.conn();
    if app.db.is_postgres() {
        conn.batch_execute("SET enable_seqscan = off").unwrap();
    }
    let plan = portcullis::db::invitations::explain_pending_count(&mut conn, &org)
        .unwrap()
        .join("\n");
    let lower = plan.to_lowercase();
    assert!(
        lower.contains("invitations_org_status_idx")
            || lower.contains("invitations_one_pending_idx"),
        "{plan}"
    );
    assert!(!lower.contains("seq scan on invitations"), "{plan}");
    assert!(
        !lower.contains("scan invitations\n") && !lower.ends_with("scan invitations"),
        "{plan}"
    );
}

/// A removal ends the open invitations its member sent, and the removal page counts them:
/// found from their index, not by reading every open invitation of the organization.
#[actix_web::test]
async fn the_invitations_a_member_sent_are_read_from_their_index() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    let someone = app.user_id(ADMIN_EMAIL);
    let role = app.role_id("my-org", "member");
    for n in 0..10 {
        app.add_account(&format!("sender{n}@example.com"), "none");
    }
    let mut conn = app.conn();
    // Five hundred open invitations from ten others, counted by the planner: reading them
    // all is what the index must spare.
    conn.batch_execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
         INSERT INTO invitations (id, org_id, email, role_id, token_hash, status, \
           invited_by, created_at, expires_at, last_sent_at) \
         SELECT 'i' || i, '{org}', 'p' || i || '@example.com', '{role}', 'h' || i, \
           'pending', (SELECT id FROM users WHERE email = 'sender' || (i % 10) || '@example.com'), \
           CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM n; \
         ANALYZE invitations;"
    ))
    .unwrap();
    let plan = portcullis::db::invitations::explain_pending_sent_by(&mut conn, &org, &someone)
        .unwrap()
        .join("\n");
    assert!(plan.contains("invitations_org_sender_idx"), "{plan}");
    assert!(!plan.to_lowercase().contains("seq scan"), "{plan}");
}

/// A member's Activity tab finds the invitations they accepted from an index, newest
/// first, whatever else the organization has sent.
#[actix_web::test]
async fn the_invitations_a_member_accepted_are_read_from_their_index() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    let someone = app.user_id(ADMIN_EMAIL);
    let mut conn = app.conn();
    if app.db.is_postgres() {
        conn.batch_execute("SET enable_seqscan = off").unwrap();
    }
    let plan = portcullis::db::invitations::explain_accepted_by(&mut conn, &org, &someone)
        .unwrap()
        .join("\n");
    let lower = plan.to_lowercase();
    assert!(lower.contains("invitations_accepted_user_idx"), "{plan}");
    assert!(
        !lower.contains("temp b-tree") && !lower.contains("sort"),
        "{plan}"
    );
    assert!(!lower.contains("seq scan on invitations"), "{plan}");
}

#[actix_web::test]
async fn the_results_show_each_link_once_to_the_inviter_and_a_refresh_posts_nothing() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let other = add_member(&app, &admin, "other-admin@example.com", "Admin").await;
    let form = admin.get(&format!("{ORG}/invitations/new")).await;
    let fields = [
        ("csrf_token", form.csrf()),
        ("emails", "once@example.com".to_string()),
        ("role_id", option_value(&form.body, "Member")),
    ];
    let posted = admin.post(&format!("{ORG}/invitations"), &fields).await;
    assert_eq!(posted.status, 303, "{}", posted.body);
    let results_path = posted.location.clone().unwrap();
    assert_eq!(results_path, "/orgs/my-org/invitations/sent");

    // Another admin of the organization, at the same address, sees no link.
    let theirs = other.get(&results_path).await;
    assert_eq!(theirs.status, 303);
    assert!(!theirs.body.contains("/invite/"));

    let shown = admin.get(&results_path).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(row(&shown.body, "once@example.com").contains("data-result=\"invited\""));
    let link = shown.invite_link();
    assert_eq!(
        shown.headers.get("cache-control").unwrap(),
        "no-store",
        "a page holding links is not cached"
    );

    // A refresh: nothing posted again, no "Already invited", and the link is gone.
    let again = admin.get(&results_path).await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location.as_deref(), Some("/orgs/my-org/invitations"));
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(tab.body.contains("shown only once"), "{}", tab.body);
    assert!(!tab.body.contains(&link));
    assert!(!tab.body.contains("Already invited"));
    assert_eq!(audit_count(&app, "invitation.created"), 2);
    assert_eq!(app.count("invitations"), 2);
}

/// A Manager who opened the link of an address they invited would choose that account's
/// password, and hold an account the organization takes for the address's owner: one an
/// Admin, or an identity provider pushing an admin group to the address, may raise to
/// Admin. Neither the invite nor a resend shows them the link; the mailbox gets it.
#[actix_web::test]
async fn an_inviter_who_may_not_grant_every_role_is_never_shown_an_accept_link() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let manager = add_member(&app, &admin, "manager@example.com", "Manager").await;

    let sent = invite(&manager, "ceo@example.com", "Member").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(row(&sent.body, "ceo@example.com").contains("data-result=\"invited\""));
    assert!(row(&sent.body, "ceo@example.com").contains("Sent by email"));
    assert!(sent.body.contains("data-links-withheld"), "{}", sent.body);
    assert!(!sent.body.contains("/invite/"), "{}", sent.body);

    // A resend, from the button or by inviting the address again, shows none either.
    let id = invitation_id(&app, "ceo@example.com");
    backdate_sent(&app, "ceo@example.com");
    let resent = post_with_csrf(&manager, &format!("{ORG}/invitations/{id}/resend")).await;
    let resent = manager.follow_results(resent).await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    assert!(!resent.body.contains("/invite/"), "{}", resent.body);
    backdate_sent(&app, "ceo@example.com");
    let again = invite(&manager, "ceo@example.com", "Member").await;
    assert!(row(&again.body, "ceo@example.com").contains("data-result=\"resent\""));
    assert!(!again.body.contains("/invite/"), "{}", again.body);
    assert_eq!(audit_count(&app, "invitation.resent"), 2);

    // The address's owner has three emails (the invitation, two reminders): the newest
    // link, and only it, opens the accept page.
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = crate::browser::all_mail_to(&app, "ceo@example.com");
        if mails.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mails.len(), 3);
    let mut live = Vec::new();
    for mail in &mails {
        let link = mail.invite_path();
        if app.client().get(&link).await.status == 200 {
            live.push(link);
        }
    }
    assert_eq!(live.len(), 1, "{live:?}");
    let (_, done) = accept_new(&app, &live[0], "Chief").await;
    assert_eq!(done.status, 303, "{}", done.body);

    // An Admin still gets the link to pass on another way.
    let by_admin = invite(&admin, "pat@example.com", "Manager").await;
    assert!(!by_admin.body.contains("data-links-withheld"));
    let (_, done) = accept_new(&app, &by_admin.invite_link(), "Pat").await;
    assert_eq!(done.status, 303, "{}", done.body);
}

#[actix_web::test]
async fn mixed_input_gives_back_the_invalid_addresses_with_each_reason() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let page = invite(
        &admin,
        "good@example.com, nope\nbad@@example.com",
        "Engineer",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Some invited, some not: a warning, not a success.
    assert!(
        page.body.contains("flash flash-warning invite-summary"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("flash flash-success invite-summary"));
    // The invalid ones are back in the textarea, alone, each with its reason by it.
    assert!(
        page.body.contains(">nope\nbad@@example.com</textarea>"),
        "{}",
        page.body
    );
    let error = page.body.split("id=\"emails-error\">").nth(1).unwrap();
    let error = &error[..error.find("</p>").unwrap()];
    assert!(
        error.contains("“nope”") && error.contains("“bad@@example.com”"),
        "{error}"
    );
    assert!(error.contains("needs one @"), "{error}");
    // With the same role still chosen.
    let engineer = option_value(&page.body, "Engineer");
    assert!(
        page.body
            .contains(&format!("value=\"{engineer}\" selected"))
    );
    assert_eq!(app.count("invitations"), 1);

    // Only addresses already in: nothing sent, so the summary is an error.
    let members = invite(&admin, "admin@example.com", "Member").await;
    assert!(
        members.body.contains("flash flash-error invite-summary"),
        "{}",
        members.body
    );

    // Nothing valid at all: the form itself comes back, 422, with each reason.
    let none = invite(&admin, "nope another-bad", "Member").await;
    assert_eq!(none.status, 422);
    assert!(none.body.contains(">nope another-bad</textarea>"));
    assert!(none.body.contains("“another-bad”"));
    assert_eq!(app.count("invitations"), 1);
}

#[actix_web::test]
async fn the_invited_tab_searches_by_address_and_counts_pending_ones() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(
        !tab.body.contains("data-pending-count"),
        "no badge when nobody waits"
    );
    invite(
        &admin,
        "ada@example.com adam@example.com bob@example.com",
        "Member",
    )
    .await;

    let found = admin.get(&format!("{ORG}/invitations?q=%20ADA")).await;
    assert_eq!(found.status, 200);
    assert!(found.body.contains("data-email=\"ada@example.com\""));
    assert!(found.body.contains("data-email=\"adam@example.com\""));
    assert!(!found.body.contains("data-email=\"bob@example.com\""));
    assert!(
        found.body.contains("value=\"ADA\""),
        "the search stays in its field"
    );
    // The status filters keep the search.
    assert!(
        found.body.contains("status=all&#38;q=ADA"),
        "{}",
        found.body
    );
    let none = admin.get(&format!("{ORG}/invitations?q=zed")).await;
    assert!(
        none.body
            .contains("No invitation to an address starting with “zed”")
    );

    // The badge on the tab, on every organization page, for those who may invite.
    let users = admin.get(&format!("{ORG}/users")).await;
    assert!(
        users.body.contains("data-pending-count=\"3\""),
        "{}",
        users.body
    );
    let member = add_member(&app, &admin, "plain@example.com", "Member").await;
    assert!(
        !member
            .get(&format!("{ORG}/users"))
            .await
            .body
            .contains("data-pending-count")
    );
    // Accepted: one fewer waits.
    let users = admin.get(&format!("{ORG}/users")).await;
    assert!(
        users.body.contains("data-pending-count=\"3\""),
        "{}",
        users.body
    );
}

#[actix_web::test]
async fn a_members_activity_starts_with_their_invitation() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let results = invite(&admin, "ada@example.com", "Member").await;
    let (ada, done) = accept_new(&app, &results.invite_link(), "Ada").await;
    assert_eq!(done.status, 303);
    let ada_id = app.user_id("ada@example.com");
    let org = app.org_id("my-org");
    let group =
        portcullis::db::groups::insert(&mut app.conn(), &org, "Builders", "", None, None).unwrap();
    let added = admin
        .submit(
            &format!("{ORG}/groups/{group}"),
            &format!("{ORG}/groups/{group}/members"),
            &[("user_id", &ada_id)],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    // Something Ada does herself.
    let _ = ada.get(&format!("{ORG}/users")).await;

    let activity = admin.get(&format!("{ORG}/users/{ada_id}/activity")).await;
    assert_eq!(activity.status, 200);
    let body = &activity.body;
    assert!(!body.contains("nothing has happened"), "{body}");
    let invited = body
        .find("admin@example.com invited ada@example.com")
        .expect(body);
    let accepted = body
        .find("ada@example.com accepted an invitation and joined")
        .expect(body);
    let grouped = body
        .find("admin@example.com added ada@example.com to the group Builders")
        .expect(body);
    // Newest first.
    assert!(grouped < accepted && accepted < invited, "{body}");
    assert!(!body.contains("did “"), "no raw action keys: {body}");
}

/// A Manager sees Resend and Cancel only where pressing them can work: an invitation to
/// Admin shows why not instead (and the POSTs still answer 403, in `authz`).
#[actix_web::test]
async fn the_invited_tab_offers_resend_and_cancel_only_within_ones_role() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    for (email, role) in [("boss@example.com", "admin"), ("pat@example.com", "member")] {
        let sent = admin
            .submit(
                &format!("{ORG}/invitations/new"),
                &format!("{ORG}/invitations"),
                &[("emails", email), ("role_id", &app.role_id("my-org", role))],
            )
            .await;
        assert_eq!(sent.status, 303, "{}", sent.body);
    }
    app.add_member("my-org", "manny@example.com", "Manny", "M", "manager", true);
    let manager = app.member_browser("manny@example.com").await;
    let tab = manager.get(&format!("{ORG}/invitations")).await;
    assert_eq!(tab.status, 200);
    let row = |email: &str| {
        let start = tab.body.find(&format!("data-email=\"{email}\"")).unwrap();
        let end = tab.body[start..].find("</tr>").unwrap() + start;
        tab.body[start..end].to_string()
    };
    let boss = row("boss@example.com");
    assert!(!boss.contains("/resend"), "{boss}");
    assert!(!boss.contains("/cancel"), "{boss}");
    assert!(boss.contains("data-beyond-role"), "{boss}");
    let pat = row("pat@example.com");
    assert!(pat.contains("/resend") && pat.contains("/cancel"), "{pat}");
    assert!(!pat.contains("data-beyond-role"), "{pat}");

    // The Admin sees both rows' buttons.
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert_eq!(tab.body.matches("/resend\"").count(), 2, "{}", tab.body);
}

/// Every pool named is a row per invitation and a line in its audit event, times up to
/// 500 addresses a submit: one submit names at most 25 pools (and 25 groups).
#[actix_web::test]
async fn one_invitation_names_at_most_twenty_five_pools() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let mut pool_ids = Vec::new();
    for i in 0..26 {
        pool_ids.push(crate::authz::pool(&admin, &format!("Pool {i}")).await);
    }
    let mut chosen: Vec<(&str, &str)> = pool_ids
        .iter()
        .map(|id| ("pool_ids", id.as_str()))
        .collect();
    let refused = invite_with(&admin, "a@example.com b@example.com", "Member", &chosen).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Choose at most 25 pools for one invitation."),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("a@example.com b@example.com"),
        "the addresses are kept"
    );
    assert_eq!(app.count("invitations"), 0);

    chosen.pop();
    let sent = invite_with(&admin, "a@example.com", "Member", &chosen).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(app.count("invitation_pools"), 25);
}

/// A pool role outlives a later change of organization role: an Admin invited into a pool
/// holds Manager there, the most the pool page grants, so a demotion leaves no Admin
/// reach inside the pool.
#[actix_web::test]
async fn an_admin_invited_into_a_pool_holds_no_more_than_manager_there() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let pool = crate::authz::pool(&admin, "Alpha").await;
    for (email, first, role) in [
        ("ada@example.com", "Ada", "Admin"),
        ("eve@example.com", "Eve", "Engineer"),
    ] {
        let sent = invite_with(&admin, email, role, &[("pool_ids", pool.as_str())]).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        let (_, done) = accept_new(&app, &sent.invite_link(), first).await;
        assert_eq!(done.status, 303, "{}", done.body);
    }
    assert_eq!(
        pool_role_of(&app, "ada@example.com"),
        app.role_id("my-org", "manager")
    );
    assert_eq!(
        pool_role_of(&app, "eve@example.com"),
        app.role_id("my-org", "engineer"),
        "a role below Manager is kept"
    );
}

fn pool_role_of(app: &TestApp, email: &str) -> String {
    use portcullis::db::schema::pool_members;
    let user = app.user_id(email);
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;
    pool_members::table
        .filter(pool_members::user_id.eq(user))
        .select(pool_members::role_id)
        .first(conn)
        .unwrap()
}

/// Two organizations invite one new address, and both links are accepted at once with
/// a new account. One account is made; the other acceptance is sent to sign in with
/// it, never a 500. On PostgreSQL both find no account before either inserts one (the
/// test holds the accounts table against inserts until both wait), so the second insert
/// meets the first's in the unique index.
#[actix_web::test]
async fn two_organizations_invitations_accepted_at_once_make_one_account() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.create_org("other-org", "Other Org");
    app.add_member("other-org", ADMIN_EMAIL, "Ada", "Admin", "admin", true);
    let mut accepts = Vec::new();
    for slug in ["my-org", "other-org"] {
        let sent = admin
            .invite(slug, "twice@example.com", &app.role_id(slug, "member"))
            .await;
        let link = admin.follow_results(sent).await.invite_link();
        let browser = app.client();
        let csrf = browser.get(&link).await.csrf();
        accepts.push((browser, link, account_form(csrf, "Two", "Ce", NEW_PASSWORD)));
    }

    let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let pool = app.pool.clone();
    let postgres = app.db.is_postgres();
    let holder = std::thread::spawn(move || {
        let mut conn = pool.get().unwrap();
        portcullis::db::write_tx(&mut conn, |conn| {
            if postgres {
                use diesel::connection::SimpleConnection;
                conn.batch_execute("LOCK TABLE users IN SHARE MODE")?;
            }
            held.0.send(()).unwrap();
            release.1.recv().unwrap();
            diesel::QueryResult::Ok(())
        })
        .unwrap();
    });
    held.1.recv().unwrap();
    let [
        (first, first_link, first_form),
        (second, second_link, second_form),
    ] = <[_; 2]>::try_from(accepts).ok().unwrap();
    let (a, b, ()) = tokio::join!(
        first.post(&first_link, &first_form),
        second.post(&second_link, &second_form),
        async {
            if postgres {
                let waiting = "pg_stat_activity WHERE datname = current_database() \
                               AND wait_event_type = 'Lock'";
                while app.count(waiting) < 2 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            } else {
                tokio::time::sleep(Duration::from_millis(750)).await;
            }
            release.0.send(()).unwrap();
        }
    );
    holder.join().unwrap();

    assert_eq!((a.status, b.status), (303, 303), "{} {}", a.body, b.body);
    let places: Vec<String> = [&a, &b]
        .iter()
        .map(|p| p.location.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        places.iter().filter(|l| l.starts_with("/invite/")).count(),
        1,
        "one is sent to sign in with the account the other made: {places:?}"
    );
    assert_eq!(app.count("users WHERE email = 'twice@example.com'"), 1);
}

/// One member mails at most `--invitations-per-hour` invitations in an hour, new and
/// resent alike: whoever holds (or took over) an account that may invite cannot mail
/// strangers without end in the organization's name. The refused list stays in the form.
#[actix_web::test]
async fn one_member_sends_at_most_the_hourly_number_of_invitations() {
    let app = spawn_app_with(|s| s.invitations_per_hour = 3).await;
    let admin = app.setup_admin().await;
    let sent = invite(&admin, "a1@example.com, a2@example.com", "Member").await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    let refused = invite(&admin, "b1@example.com, b2@example.com", "Member").await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("You can send 1 more invitations this hour"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("b2@example.com"), "the list stays");
    assert_eq!(app.count("invitations"), 2);
    // Addresses of members are mailed nothing, so they use none of the hour's number.
    app.add_member("my-org", "m1@example.com", "M", "One", "member", false);
    app.add_member("my-org", "m2@example.com", "M", "Two", "member", false);
    let last = invite(
        &admin,
        "b1@example.com m1@example.com m2@example.com",
        "Member",
    )
    .await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert!(row(&last.body, "b1@example.com").contains("data-result=\"invited\""));

    // The Resend button sends an email too.
    backdate_sent(&app, "a1@example.com");
    let id = invitation_id(&app, "a1@example.com");
    let resend = post_with_csrf(&admin, &format!("{ORG}/invitations/{id}/resend")).await;
    assert_eq!(resend.status, 303);
    let tab = admin.get(&format!("{ORG}/invitations")).await;
    assert!(
        tab.body.contains("the most one person may send in an hour"),
        "{}",
        tab.body
    );
    assert_eq!(audit_count(&app, "invitation.resent"), 0);

    // Another admin has an hour of their own.
    app.add_member("my-org", "sam@example.com", "Sam", "S", "admin", true);
    let sam = app.member_browser("sam@example.com").await;
    assert_eq!(invite(&sam, "c1@example.com", "Member").await.status, 200);

    // An hour on, the first admin may send again.
    app.advance_clock(chrono::Duration::minutes(61));
    assert_eq!(invite(&admin, "d1@example.com", "Member").await.status, 200);
    assert_eq!(app.count("invitations"), 5);
}

/// The Invited tab answered 403 to everyone it was shown to who may not invite: it is
/// shown only to those who may.
#[actix_web::test]
async fn only_those_who_may_invite_see_the_invited_tab() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    app.add_member("my-org", "mo@example.com", "Mo", "M", "member", true);
    let member = app.member_browser("mo@example.com").await;
    let tab = "href=\"/orgs/my-org/invitations\"";
    let page = member.get(&format!("{ORG}/users")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(tab), "{}", page.body);
    assert_eq!(member.get(&format!("{ORG}/invitations")).await.status, 403);
    assert!(admin.get(&format!("{ORG}/users")).await.body.contains(tab));
}

/// Resend and Cancel on a filtered, searched Invited tab return to it as it was (they
/// returned to the unfiltered first page); a `next` elsewhere is not followed.
#[actix_web::test]
async fn resend_and_cancel_return_to_the_invited_tab_as_it_was() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    invite(&admin, "pat@example.com, pam@example.com", "Member").await;
    let here = format!("{ORG}/invitations?status=pending&q=pa");
    let tab = admin.get(&here).await;
    let pat = invitation_id(&app, "pat@example.com");
    let encoded = "/orgs/my-org/invitations%3Fstatus%3Dpending%26q%3Dpa";
    assert!(
        tab.body
            .contains(&format!("/invitations/{pat}/cancel?next={encoded}")),
        "{}",
        tab.body
    );
    assert!(
        tab.body
            .contains("name=\"next\" value=\"/orgs/my-org/invitations?status=pending&#38;q=pa\"")
    );

    // Resend within the minute: refused, back on the same filtered tab.
    let resend = admin
        .post(
            &format!("{ORG}/invitations/{pat}/resend"),
            &[("csrf_token", tab.csrf()), ("next", here.clone())],
        )
        .await;
    assert_eq!(resend.location.as_deref(), Some(here.as_str()));

    // Cancel asks first; its Cancel link and its button both return to the tab.
    let asked = admin
        .get(&format!("{ORG}/invitations/{pat}/cancel?next={encoded}"))
        .await;
    assert_eq!(asked.status, 200);
    assert!(
        asked
            .body
            .contains("href=\"/orgs/my-org/invitations?status=pending&#38;q=pa\"")
    );
    let cancelled = admin
        .post(
            &format!("{ORG}/invitations/{pat}/cancel"),
            &[("csrf_token", asked.csrf()), ("next", here.clone())],
        )
        .await;
    assert_eq!(cancelled.location.as_deref(), Some(here.as_str()));

    // A Resend that goes through shows its results once; their way back is the tab too.
    let pam = invitation_id(&app, "pam@example.com");
    app.a_minute_passes("pam@example.com");
    let resent = admin
        .post(
            &format!("{ORG}/invitations/{pam}/resend"),
            &[("csrf_token", tab.csrf()), ("next", here.clone())],
        )
        .await;
    let results = admin.follow_results(resent).await;
    assert!(
        results.body.contains("Invitation resent"),
        "{}",
        results.body
    );
    assert!(
        results
            .body
            .contains("href=\"/orgs/my-org/invitations?status=pending&#38;q=pa\">Back to Invited"),
        "{}",
        results.body
    );

    // A return outside the tab is not followed.
    let pam = invitation_id(&app, "pam@example.com");
    let elsewhere = admin
        .post(
            &format!("{ORG}/invitations/{pam}/cancel"),
            &[
                ("csrf_token", asked.csrf()),
                ("next", "/admin/users".to_string()),
            ],
        )
        .await;
    assert_eq!(
        elsewhere.location.as_deref(),
        Some("/orgs/my-org/invitations")
    );
}

/// A page link cut short when copied starts the tab again, with its search, instead of a
/// bare error page; a search longer than any address finds nothing, not everything.
#[actix_web::test]
async fn the_invited_tab_recovers_from_a_damaged_link_and_an_overlong_search() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    invite(&admin, "pat@example.com", "Member").await;
    let damaged = admin
        .get(&format!("{ORG}/invitations?q=pat&cursor=not-a-cursor"))
        .await;
    assert_eq!(damaged.status, 303);
    assert_eq!(
        damaged.location.as_deref(),
        Some("/orgs/my-org/invitations?q=pat")
    );
    let again = admin.get(damaged.location.as_deref().unwrap()).await;
    assert!(again.body.contains("starts again from its first page"));
    assert!(again.body.contains("data-email=\"pat@example.com\""));

    let long = "p".repeat(300);
    let none = admin.get(&format!("{ORG}/invitations?q={long}")).await;
    assert_eq!(none.status, 200);
    assert!(
        !none.body.contains("data-email=\"pat@example.com\""),
        "{}",
        none.body
    );
}

/// An invitation sent with a name stored before a character joined the invisible-
/// character rule offers that name on its form: sent back as it was, it is accepted; a
/// name typed anew is held to the rule.
#[actix_web::test]
async fn the_name_an_invitation_was_stored_with_is_accepted_as_offered() {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    let link = invite(&admin, "soft@example.com", "Member")
        .await
        .invite_link();
    {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        diesel::update(invitations::table.filter(invitations::email.eq("soft@example.com")))
            .set(invitations::first_name.eq("So\u{00AD}phie"))
            .execute(conn)
            .unwrap();
    }
    let visitor = app.client();
    let form = visitor.get(&link).await;
    assert!(
        form.body.contains("value=\"So\u{00AD}phie\""),
        "the form offers the stored name: {}",
        form.body
    );
    let typed_anew = visitor
        .post(
            &link,
            &account_form(form.csrf(), "So\u{2060}phie", "Tester", NEW_PASSWORD),
        )
        .await;
    assert_eq!(typed_anew.status, 422, "{}", typed_anew.body);
    let as_offered = visitor
        .post(
            &link,
            &account_form(form.csrf(), "So\u{00AD}phie", "Tester", NEW_PASSWORD),
        )
        .await;
    assert_eq!(as_offered.status, 303, "{}", as_offered.body);
}
