//! Journeys 3–6 and 14: inviting several people at once, accepting an invitation with a
//! new account, with an existing account and while signed in as someone else, and
//! resending and cancelling from the Invited tab.

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};

use super::entry::create_first_admin;
use super::{Chrome, Js, all_mail_to, journey, mailed_to};
use crate::helpers::{ADMIN_EMAIL, MEMBER_PASSWORD, TestApp, spawn_app, spawn_app_with};
use crate::smtp::{SmtpServer, unused_port, url_for};

const INVITEES: [&str; 3] = [
    "grace@example.com",
    "linus@example.com",
    "margaret@example.com",
];
const GROUP: &str = "Support desk";
const POOL: &str = "Night shift";
const INVITEE_PASSWORD: &str = "a long invitee passphrase";

/// The admin creates a group and a pool on their pages, by typing and clicking.
async fn create_group_and_pool(admin: &Chrome) -> Result<()> {
    admin.follow_within("Organization", "Groups").await?;
    admin.fill("Name", GROUP).await?;
    admin.fill("Description", "Answers the phone").await?;
    admin.press("Create group").await?;
    admin.expect_text(GROUP).await?;

    admin.follow_within("Organization", "Pools").await?;
    admin.fill("Name", POOL).await?;
    admin.press("Create pool").await?;
    admin.expect_text(POOL).await?;
    Ok(())
}

/// From the Invited tab, the admin invites `emails` as `role`, ticking the named group and
/// pool, and sends the form. The browser ends on the per-address results.
async fn invite(
    admin: &Chrome,
    emails: &str,
    role: &str,
    group: Option<&str>,
    pool: Option<&str>,
) -> Result<()> {
    admin.follow_within("Organization", "Invited").await?;
    admin.follow("Invite people").await?;
    admin.expect_text("Invite people").await?;
    admin.fill("Email addresses", emails).await?;
    admin.select("Role", role).await?;
    if let Some(group) = group {
        admin.tick(group).await?;
    }
    if let Some(pool) = pool {
        admin.tick(pool).await?;
    }
    admin.press("Send invitations").await
}

/// Journey 3 up to the Invited tab: a group, a pool, and three people invited into both
/// as Engineers. Answers the admin's browser, on the Invited tab.
async fn invite_three(j: &super::Journey, app: &TestApp, js: Js) -> Result<Chrome> {
    let admin = create_first_admin(j, app, js).await?;
    create_group_and_pool(&admin).await?;
    invite(
        &admin,
        // Separated as people paste them: a comma, a new line and spaces.
        &format!("{}, {}\n  {}", INVITEES[0], INVITEES[1], INVITEES[2]),
        "Engineer",
        Some(GROUP),
        Some(POOL),
    )
    .await?;

    // One result per address, each invited, under the role chosen.
    admin.expect_text("Invitations as Engineer").await?;
    admin.expect_text("3 people invited").await?;
    assert_eq!(admin.rows("email").await?, INVITEES.to_vec());
    assert_eq!(admin.rows("result").await?, vec!["invited"; 3]);
    for email in INVITEES {
        ensure!(
            admin.row_text(email).await?.contains("/invite/"),
            "the result for {email} shows no link"
        );
    }

    admin.follow("Back to Invited").await?;
    admin.expect_path("/orgs/acme/invitations").await?;
    let mut listed = admin.rows("email").await?;
    listed.sort();
    assert_eq!(listed, INVITEES.to_vec());
    for email in INVITEES {
        assert_eq!(admin.row_attr(email, "status").await?, "pending");
        assert_eq!(admin.row_attr(email, "role").await?, "engineer");
        let row = admin.row_text(email).await?;
        ensure!(
            row.contains("Engineer") && row.contains("Ada Admin") && row.contains("Pending"),
            "the Invited row of {email} reads {row:?}"
        );
    }
    Ok(admin)
}

async fn invite_three_journey(name: &'static str, js: Js) {
    let app = spawn_app().await;
    journey(name, |j| async move {
        invite_three(&j, &app, js).await?;
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_03_invite_three_people_into_a_group_and_a_pool() {
    invite_three_journey("journey_03_invite_three", Js::On).await;
}

#[actix_web::test]
async fn journey_03_invite_three_people_without_javascript() {
    invite_three_journey("journey_03_invite_three_nojs", Js::Off).await;
}

/// Fills the accept page's new-account form and sends it.
async fn create_account(invitee: &Chrome, first: &str, last: &str) -> Result<()> {
    invitee.fill("First name", first).await?;
    invitee.fill("Last name", last).await?;
    invitee.fill("Password", INVITEE_PASSWORD).await?;
    invitee.fill("Confirm password", INVITEE_PASSWORD).await?;
    invitee.press("Create account and join").await
}

async fn accept_new_account_journey(name: &'static str, js: Js) {
    let app = spawn_app().await;
    journey(name, |j| async move {
        let admin = invite_three(&j, &app, js).await?;
        let grace = INVITEES[0];

        // Grace opens the mailed link on her own computer.
        let link = mailed_to(&app, grace).await?.invite_path();
        let invitee = j.browser_with(&app, js).await?;
        invitee.open(&link).await?;
        invitee.expect_text("Join Acme").await?;
        let title = invitee.title().await?;
        ensure!(title.starts_with("Join Acme"), "the tab reads {title:?}");
        invitee
            .expect_text("Ada Admin invited grace@example.com to join as Engineer")
            .await?;
        create_account(&invitee, "Grace", "Hopper").await?;

        // She lands in the organization, signed in.
        invitee.expect_path("/orgs/acme/users").await?;
        invitee.expect_text("Welcome to Acme, Grace.").await?;
        invitee.expect_text("Grace Hopper").await?;

        // The link was for one use: opened again from her email, it leads her back in.
        invitee.open(&link).await?;
        invitee.expect_path("/orgs/acme/users").await?;
        invitee
            .expect_text("You accepted this invitation already.")
            .await?;
        // To anyone else it is dead.
        let stranger = j.browser_with(&app, js).await?;
        stranger.open(&link).await?;
        stranger
            .expect_text("This invitation link does not work")
            .await?;

        // The admin sees her as an active Engineer, in the group and the pool.
        admin.follow_within("Organization", "Users").await?;
        assert_eq!(admin.row_attr(grace, "role").await?, "engineer");
        assert_eq!(admin.row_attr(grace, "status").await?, "active");
        admin.follow_in_row(grace, grace).await?;
        admin.expect_text("Grace Hopper").await?;
        admin.follow_within("Member", "Groups Associated").await?;
        admin.expect_text(GROUP).await?;
        admin.expect_no_text("Not a member of any group").await?;
        admin.follow_within("Member", "Pools").await?;
        admin.expect_text(POOL).await?;
        admin.expect_no_text("Not a member of any pool").await?;

        // Her invitation left the pending list; the two others are still there.
        admin.follow_within("Organization", "Invited").await?;
        let mut pending = admin.rows("email").await?;
        pending.sort();
        assert_eq!(pending, INVITEES[1..].to_vec());
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_04_accept_with_a_new_account() {
    accept_new_account_journey("journey_04_accept_new_account", Js::On).await;
}

#[actix_web::test]
async fn journey_04_accept_with_a_new_account_without_javascript() {
    accept_new_account_journey("journey_04_accept_new_account_nojs", Js::Off).await;
}

#[actix_web::test]
async fn journey_05_accept_with_an_existing_account() {
    let app = spawn_app().await;
    journey("journey_05_accept_existing_account", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        // Precondition only: Joan already has an account, as a member of another
        // organization, with a password she knows.
        let joan = "joan@example.com";
        app.create_org("globex", "Globex");
        app.add_member("globex", joan, "Joan", "Clarke", "member", true);

        invite(&admin, joan, "Member", None, None).await?;
        admin.expect_text("1 person invited").await?;

        let link = mailed_to(&app, joan).await?.invite_path();
        let invitee = j.browser(&app).await?;
        invitee.open(&link).await?;
        invitee
            .expect_text("An account with this address already exists")
            .await?;
        invitee.expect_no_text("Create account and join").await?;
        // Had her account been made for her, without a password, the page says where to
        // set one.
        invitee.follow("Set a new password").await?;
        invitee.expect_path("/forgot-password").await?;
        invitee.client.back().await?;
        invitee
            .expect_text("An account with this address already exists")
            .await?;
        invitee.follow("Sign in to accept").await?;
        invitee.expect_path("/login").await?;
        invitee.sign_in(joan, MEMBER_PASSWORD).await?;

        // Signed in, she is back on the invitation, one press away from joining.
        invitee.expect_path(&link).await?;
        invitee.press("Join Acme").await?;
        invitee.expect_path("/orgs/acme/users").await?;
        invitee.expect_text("You joined Acme.").await?;
        // Her other organization is still hers.
        invitee.open_menu("Switch organization").await?;
        invitee.expect_text("Globex").await?;

        admin.follow_within("Organization", "Users").await?;
        assert_eq!(admin.row_attr(joan, "role").await?, "member");
        assert_eq!(admin.row_attr(joan, "status").await?, "active");
        ensure!(
            admin.row_text(joan).await?.contains("Joan Clarke"),
            "Joan keeps her name"
        );
        Ok(())
    })
    .await;
}

#[actix_web::test]
async fn journey_06_invitation_opened_while_signed_in_as_someone_else() {
    let app = spawn_app().await;
    journey("journey_06_wrong_account", |j| async move {
        let browser = create_first_admin(&j, &app, Js::On).await?;
        let hedy = "hedy@example.com";
        invite(&browser, hedy, "Member", None, None).await?;
        browser.expect_text("1 person invited").await?;

        // Hedy opens her link on the computer where the admin is still signed in.
        let link = mailed_to(&app, hedy).await?.invite_path();
        browser.open(&link).await?;
        browser
            .expect_text("This invitation is for hedy@example.com")
            .await?;
        browser
            .expect_text(&format!("you are signed in as {ADMIN_EMAIL}"))
            .await?;
        browser.expect_no_text("Create account and join").await?;

        // The page's own Sign out button works (it once failed with 403: Origin null),
        // and comes back to the invitation, now for Hedy to accept.
        browser.press_in_main("Sign out").await?;
        browser.expect_path(&link).await?;
        browser.expect_no_text("Forbidden").await?;
        browser.expect_text("Join Acme").await?;
        create_account(&browser, "Hedy", "Lamarr").await?;
        browser.expect_path("/orgs/acme/users").await?;
        browser.expect_text("Welcome to Acme, Hedy.").await?;
        assert_eq!(browser.row_attr(hedy, "role").await?, "member");
        browser.open_menu("Account menu").await?;
        browser.expect_text(hedy).await?;
        Ok(())
    })
    .await;
}

/// Waits for the `n`th email to `address` (the outbox sends in the background) and
/// answers its invitation link.
async fn nth_invite_path(app: &TestApp, address: &str, n: usize) -> Result<String> {
    let started = Instant::now();
    loop {
        let mails = all_mail_to(app, address);
        if mails.len() >= n {
            return Ok(mails[n - 1].invite_path());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("{} email(s) to {address}, expected {n}", mails.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn journey_14_resend_and_cancel_from_the_invited_tab() {
    let app = spawn_app().await;
    journey("journey_14_resend_and_cancel", |j| async move {
        let admin = create_first_admin(&j, &app, Js::On).await?;
        let (katherine, dorothy) = ("katherine@example.com", "dorothy@example.com");
        invite(
            &admin,
            &format!("{katherine} {dorothy}"),
            "Member",
            None,
            None,
        )
        .await?;
        admin.expect_text("2 people invited").await?;
        let katherine_old = nth_invite_path(&app, katherine, 1).await?;
        let dorothy_link = nth_invite_path(&app, dorothy, 1).await?;

        // Resending at once is refused with a plain explanation, on the tab itself.
        admin.follow("Back to Invited").await?;
        admin.press_in_row(katherine, "Resend").await?;
        admin.expect_path("/orgs/acme/invitations").await?;
        admin.expect_text("less than a minute ago").await?;

        app.a_minute_passes(katherine);
        admin.follow_within("Organization", "Invited").await?;
        admin.press_in_row(katherine, "Resend").await?;
        admin.expect_text("Invitation resent").await?;
        admin
            .expect_text(
                "A new link was sent to katherine@example.com; the previous link no longer works.",
            )
            .await?;
        let katherine_new = nth_invite_path(&app, katherine, 2).await?;
        ensure!(
            katherine_new != katherine_old,
            "the resent email carries a new link"
        );

        admin.follow("Back to Invited").await?;
        ensure!(
            admin.row_text(katherine).await?.contains("(2 times)"),
            "the Invited tab counts two sendings: {}",
            admin.row_text(katherine).await?
        );

        // Cancel, whether the portal asks in a dialog or on a confirmation page.
        admin.press_in_row_and_confirm(dorothy, "Cancel").await?;
        admin.expect_path("/orgs/acme/invitations").await?;
        admin
            .expect_text("The invitation to dorothy@example.com was cancelled")
            .await?;
        assert_eq!(admin.rows("email").await?, vec![katherine.to_string()]);
        admin.follow_within("Filter by status", "Cancelled").await?;
        assert_eq!(admin.row_attr(dorothy, "status").await?, "cancelled");

        // The old links show the one generic page; the new one works.
        let invitee = j.browser(&app).await?;
        for dead in [&katherine_old, &dorothy_link] {
            invitee.open(dead).await?;
            invitee
                .expect_text("This invitation link does not work")
                .await?;
            invitee.expect_no_text("Create account and join").await?;
        }
        invitee.open(&katherine_new).await?;
        invitee.expect_text("Join Acme").await?;
        create_account(&invitee, "Katherine", "Johnson").await?;
        invitee.expect_text("Welcome to Acme, Katherine.").await?;
        Ok(())
    })
    .await;
}

/// A Manager on the Invited tab, without JavaScript: an invitation to Admin shows why it
/// offers no Resend or Cancel, while a Member's invitation offers both.
#[actix_web::test]
async fn a_manager_sees_why_an_admins_invitation_offers_no_resend() {
    let app = spawn_app().await;
    journey("invited_tab_beyond_role", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        invite(&admin, "boss@example.com", "Admin", None, None).await?;
        admin.expect_text("1 person invited").await?;
        invite(&admin, "pat@example.com", "Member", None, None).await?;
        admin.expect_text("1 person invited").await?;
        app.add_member("acme", "manny@example.com", "Manny", "M", "manager", true);

        let manager = j.browser_with(&app, Js::Off).await?;
        manager.open("/login").await?;
        manager
            .sign_in("manny@example.com", MEMBER_PASSWORD)
            .await?;
        manager.follow_within("Organization", "Invited").await?;
        let boss = manager.row_text("boss@example.com").await?;
        ensure!(boss.contains("Its role is beyond yours"), "{boss}");
        ensure!(!boss.contains("Resend"), "{boss}");
        let pat = manager.row_text("pat@example.com").await?;
        ensure!(pat.contains("Resend") && pat.contains("Cancel"), "{pat}");
        Ok(())
    })
    .await;
}

/// On an Invited tab narrowed by a search, without JavaScript: Cancel (through its
/// confirmation page), and a Resend's results, both lead back to the tab as it was.
#[actix_web::test]
async fn cancel_and_resend_lead_back_to_the_searched_invited_tab() {
    let app = spawn_app().await;
    journey("invited_tab_search_kept", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        let (pat, pam, zed) = ("pat@example.com", "pam@example.com", "zed@example.com");
        invite(&admin, &format!("{pat} {pam} {zed}"), "Member", None, None).await?;
        admin.expect_text("3 people invited").await?;
        admin.follow("Back to Invited").await?;
        admin.fill("Search by email", "pa").await?;
        admin.press("Search").await?;
        let searched = admin.path().await?;
        ensure!(searched.contains("q=pa"), "on {searched}");
        ensure!(admin.rows("email").await?.len() == 2);

        admin.press_in_row_and_confirm(pat, "Cancel").await?;
        admin
            .expect_text("The invitation to pat@example.com was cancelled")
            .await?;
        admin.expect_path(&searched).await?;
        ensure!(admin.rows("email").await? == vec![pam.to_string()]);

        app.a_minute_passes(pam);
        admin.press_in_row(pam, "Resend").await?;
        admin.expect_text("Invitation resent").await?;
        admin.follow("Back to Invited").await?;
        admin.expect_path(&searched).await?;

        // A page link cut short where it was pasted starts the tab again, searched as it
        // was, and says why.
        admin.open(&format!("{searched}&cursor=eyJl")).await?;
        admin
            .expect_text("That page link no longer works, so the list starts again")
            .await?;
        admin.expect_path(&searched).await?;
        ensure!(admin.rows("email").await? == vec![pam.to_string()]);
        Ok(())
    })
    .await;
}

/// A pool Manager finds "Invite people" on the Users tab; the form offers their pool and
/// not one they cannot open, and the results lead back to the Users tab (they have no
/// Invited tab).
#[actix_web::test]
async fn a_pool_manager_invites_into_their_pool_from_the_users_tab() {
    let app = spawn_app().await;
    journey("pool_manager_invites", |j| async move {
        create_first_admin(&j, &app, Js::On).await?;
        let org = app.org_id("acme");
        let owner = app.user_id(ADMIN_EMAIL);
        let night = portcullis::db::pools::insert(&mut app.conn(), &org, None, POOL, &owner)?;
        portcullis::db::pools::insert(&mut app.conn(), &org, None, "Secret Merger", &owner)?;
        let mo = app.add_member("acme", "mo@example.com", "Mo", "M", "member", true);
        let manager = app.role_id("acme", "manager");
        // Set-up, not a step: Mo manages the night shift.
        portcullis::db::pools::add_member(&mut app.conn(), &org, &night, &mo, &manager)?;

        let pool_manager = j.browser(&app).await?;
        pool_manager.open("/login").await?;
        pool_manager
            .sign_in("mo@example.com", MEMBER_PASSWORD)
            .await?;
        pool_manager.open("/orgs/acme/users").await?;
        pool_manager.follow("Invite people").await?;
        pool_manager.expect_text(POOL).await?;
        pool_manager.expect_no_text("Secret Merger").await?;
        pool_manager
            .fill("Email addresses", "newbie@example.com")
            .await?;
        pool_manager.select("Role", "Member").await?;
        pool_manager.tick(POOL).await?;
        pool_manager.press("Send invitations").await?;
        pool_manager.expect_text("1 person invited").await?;
        // Whoever opens a link chooses the account's password: not the Manager.
        pool_manager.expect_text("Sent by email").await?;
        pool_manager.expect_no_text("/invite/").await?;
        pool_manager.follow("Back to Users").await?;
        pool_manager.expect_path("/orgs/acme/users").await?;
        Ok(())
    })
    .await;
}

/// A Manager pastes two addresses as a mail program copies them, then is deactivated: the
/// admin sees both invitations On hold on the Invited tab and resends one in their own
/// name. Removing the Manager then says the other one will be cancelled, and does so; its
/// link stops working while the resent one stays open. Without JavaScript.
#[actix_web::test]
async fn invitations_of_a_manager_who_leaves_are_held_then_cancelled() {
    let app = spawn_app().await;
    journey("invitations_of_a_leaving_manager", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        app.add_member(
            "acme",
            "manny@example.com",
            "Manny",
            "Moss",
            "manager",
            true,
        );
        let (pat, sam) = ("pat@example.com", "sam@example.com");

        let manager = j.browser_with(&app, Js::Off).await?;
        manager.open("/login").await?;
        manager
            .sign_in("manny@example.com", MEMBER_PASSWORD)
            .await?;
        invite(
            &manager,
            &format!("Pat Doe <{pat}>, \"Roe, Sam\" <{sam}>"),
            "Member",
            None,
            None,
        )
        .await?;
        manager.expect_text("2 people invited").await?;
        assert_eq!(manager.rows("email").await?, vec![pat, sam]);
        let sams_link = nth_invite_path(&app, sam, 1).await?;

        admin.open("/orgs/acme/users").await?;
        admin
            .press_in_row("manny@example.com", "Deactivate")
            .await?;
        admin.press("Deactivate manny@example.com").await?;
        admin
            .expect_text("manny@example.com was deactivated")
            .await?;
        admin.follow_within("Organization", "Invited").await?;
        for email in [pat, sam] {
            let row = admin.row_text(email).await?;
            ensure!(
                row.contains("Manny Moss")
                    && row.contains("On hold: whoever sent it may not invite here now")
                    && row.contains("Resend sends it in your name."),
                "the Invited row of {email} reads {row:?}"
            );
        }
        app.a_minute_passes(pat);
        admin.press_in_row(pat, "Resend").await?;
        admin.expect_text("Invitation resent").await?;
        admin.follow("Back to Invited").await?;
        let resent = admin.row_text(pat).await?;
        ensure!(
            resent.contains("Ada Admin") && !resent.contains("On hold"),
            "the resent invitation reads {resent:?}"
        );

        admin.open("/orgs/acme/users?status=inactive").await?;
        admin.follow("manny@example.com").await?;
        admin.press("Remove…").await?;
        admin
            .expect_text(
                "They sent 1 invitation that is still open. It is cancelled with their \
                 membership, and its link stops working.",
            )
            .await?;
        admin
            .fill("Type manny@example.com to confirm", "manny@example.com")
            .await?;
        admin.press("Remove from Acme").await?;
        admin
            .expect_text("manny@example.com was removed from Acme")
            .await?;

        admin.follow_within("Organization", "Invited").await?;
        assert_eq!(admin.rows("email").await?, vec![pat.to_string()]);
        admin.follow_within("Filter by status", "Cancelled").await?;
        assert_eq!(admin.row_attr(sam, "status").await?, "cancelled");
        let invitee = j.browser_with(&app, Js::Off).await?;
        invitee.open(&sams_link).await?;
        invitee
            .expect_text("This invitation link does not work")
            .await?;
        // The resent one, in the admin's name, still opens.
        invitee.open(&nth_invite_path(&app, pat, 2).await?).await?;
        invitee.expect_text("Join Acme").await?;
        Ok(())
    })
    .await;
}

/// The mail server is away when the admin invites: the Invited tab says the email is still
/// being retried. Once the server is back the email goes, the note goes with it, and the
/// mailed link works. Without JavaScript.
#[actix_web::test]
async fn the_invited_tab_says_when_an_email_waits_for_the_mail_server() {
    let port = unused_port();
    let url = url_for(port);
    let app = spawn_app_with(move |s| s.smtp_url = Some(url)).await;
    journey("invited_tab_mail_server_away", |j| async move {
        let admin = create_first_admin(&j, &app, Js::Off).await?;
        let late = "late@example.com";
        invite(&admin, late, "Member", None, None).await?;
        admin.expect_text("1 person invited").await?;
        // Set-up, not a step: the outbox has tried once and failed.
        wait_until(&app, "email_outbox WHERE last_error IS NOT NULL").await?;
        admin.follow("Back to Invited").await?;
        let row = admin.row_text(late).await?;
        ensure!(
            row.contains("Its email has not reached the mail server yet; retrying."),
            "the Invited row reads {row:?}"
        );

        let smtp = SmtpServer::start_on(port);
        let mail = smtp.wait_for(1).await.remove(0);
        wait_until(&app, "email_outbox WHERE sent_at IS NOT NULL").await?;
        admin.follow_within("Organization", "Invited").await?;
        let row = admin.row_text(late).await?;
        ensure!(
            !row.contains("mail server"),
            "once sent, the row reads {row:?}"
        );

        let invitee = j.browser_with(&app, Js::Off).await?;
        invitee.open(&mail.invite_path()).await?;
        invitee.expect_text("Join Acme").await?;
        Ok(())
    })
    .await;
}

/// Waits (as set-up, up to 20 s) until `rows` (a table and its condition) counts one.
async fn wait_until(app: &TestApp, rows: &str) -> Result<()> {
    let started = Instant::now();
    while app.count(rows) < 1 {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("no {rows} after 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
