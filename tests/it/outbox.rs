//! The order the outbox sends in: the emails someone waits for go first.

use chrono::{Duration, NaiveDateTime};
use portcullis::db::{self, DbConnection, email_outbox};
use portcullis::mail::outbox;
use portcullis::mail::templates::Rendered;

use crate::helpers::TestDb;

fn email(what: &str) -> Rendered {
    Rendered {
        subject: what.to_string(),
        text: what.to_string(),
        html: format!("<p>{what}</p>"),
    }
}

/// `count` notices with this subject, to `to(i)`, queued a second apart, the last of them
/// a minute before `now` (before any link the tests queue).
fn queue_notices(
    conn: &mut DbConnection,
    subject: &str,
    to: impl Fn(i64) -> String,
    count: i64,
    now: NaiveDateTime,
) {
    let notice = email(subject);
    for i in 0..count {
        let queued = now - Duration::seconds(60 + count - i);
        outbox::queue(conn, &to(i), &notice, None, queued).unwrap();
    }
}

/// An identity provider moving an organization to a new domain queues a notice for each
/// member; an invitation and a password reset sent after them are claimed first, then the
/// notices oldest first. Queued oldest first, the links waited for every notice.
#[test]
fn links_someone_waits_for_are_sent_before_a_flood_of_notices() {
    let db = TestDb::new();
    let pool = crate::outbox_crash::open(&db);
    let mut conn = pool.get().unwrap();
    let conn: &mut DbConnection = &mut conn;
    let now = db::now();
    let moved = |i| format!("moved{i:02}@example.com");
    queue_notices(conn, "Your sign-in address changed", moved, 50, now);
    let link_dies = Some(now + Duration::days(7));
    for (to, what, ago) in [
        ("invited@example.com", "You are invited", 2),
        ("reset@example.com", "Reset your password", 1),
    ] {
        let queued = now - Duration::seconds(ago);
        outbox::queue_link(conn, to, &email(what), None, queued, link_dies).unwrap();
    }

    let lease = now + Duration::seconds(30);
    let claimed = email_outbox::claim_due(conn, "worker", now, lease, 20).unwrap();
    let to: Vec<&str> = claimed.iter().map(|c| c.email.to_addr.as_str()).collect();
    let mut expected = vec!["invited@example.com", "reset@example.com"];
    let notices: Vec<String> = (0..18)
        .map(|i| format!("moved{i:02}@example.com"))
        .collect();
    expected.extend(notices.iter().map(String::as_str));
    assert_eq!(to, expected);
    // The rest of the notices, oldest first, at the next claim.
    let next = email_outbox::claim_due(conn, "worker", now, lease, 40).unwrap();
    assert_eq!(next.len(), 32);
    assert_eq!(next[0].email.to_addr, "moved18@example.com");
    assert_eq!(next[31].email.to_addr, "moved49@example.com");
}

/// While links keep coming (a run of invitations, resets asked for many addresses), a
/// quarter of each batch still goes to what has waited longest: a notice of a new sign-in
/// or of two-factor turned off is told, not held back for as long as links are due.
#[test]
fn notices_still_go_while_links_keep_coming() {
    let db = TestDb::new();
    let pool = crate::outbox_crash::open(&db);
    let mut conn = pool.get().unwrap();
    let conn: &mut DbConnection = &mut conn;
    let now = db::now();
    let signed_in = |i| format!("signed-in{i}@example.com");
    queue_notices(conn, "A new sign-in to your account", signed_in, 10, now);
    let link_dies = Some(now + Duration::days(7));
    for i in 0..40 {
        let queued = now - Duration::seconds(60 - i);
        let to = format!("invited{i:02}@example.com");
        let invitation = email("You are invited");
        outbox::queue_link(conn, &to, &invitation, None, queued, link_dies).unwrap();
    }

    let lease = now + Duration::seconds(30);
    let claimed = email_outbox::claim_due(conn, "worker", now, lease, 20).unwrap();
    let to: Vec<&str> = claimed.iter().map(|c| c.email.to_addr.as_str()).collect();
    let links: Vec<String> = (0..15)
        .map(|i| format!("invited{i:02}@example.com"))
        .collect();
    let notices: Vec<String> = (0..5)
        .map(|i| format!("signed-in{i}@example.com"))
        .collect();
    let expected: Vec<&str> = links.iter().chain(&notices).map(String::as_str).collect();
    assert_eq!(to, expected);
}
