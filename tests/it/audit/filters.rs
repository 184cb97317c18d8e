//! The audit page's filters narrow the events; bad input is explained, not an error.

use chrono::Duration;
use portcullis::db;

use super::{Ev, day, insert_events, row_ids};
use crate::helpers::*;

#[actix_web::test]
async fn filters_narrow_the_events() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = app.org_id("my-org");
    let bob = db::new_id();
    let base = day(2026, 3, 1);
    let mut events = Vec::new();
    for i in 0..60 {
        let actor = if i % 2 == 0 {
            "alice@example.com"
        } else {
            "carol@example.com"
        };
        let (action, target, label) = if i % 3 == 0 {
            ("member.deactivated", bob.as_str(), "bob@example.com")
        } else {
            ("invitation.created", "inv", "dave@example.com")
        };
        events.push(
            Ev::new(&org, action, base + Duration::hours(i))
                .actor(actor)
                .target(target, label),
        );
    }
    let ids = insert_events(&app, &events);
    let ids_where = |pred: &dyn Fn(usize) -> bool| -> Vec<String> {
        let mut v: Vec<String> = (0..60)
            .filter(|i| pred(*i))
            .map(|i| ids[i].clone())
            .collect();
        v.reverse();
        v
    };
    let check = |query: &'static str, expected: Vec<String>| {
        let browser = browser.clone();
        async move {
            let page = browser.get(&format!("/orgs/my-org/audit?{query}")).await;
            assert_eq!(page.status, 200, "{query}: {}", page.body);
            assert_eq!(row_ids(&page.body), expected, "{query}");
        }
    };
    check("actor=Alice%40Example.com", ids_where(&|i| i % 2 == 0)).await;
    check("action=member.deactivated", ids_where(&|i| i % 3 == 0)).await;
    check("target=bob%40example.com", ids_where(&|i| i % 3 == 0)).await;
    let by_id = format!("/orgs/my-org/audit?target={bob}");
    assert_eq!(
        row_ids(&browser.get(&by_id).await.body),
        ids_where(&|i| i % 3 == 0)
    );
    check(
        "actor=carol%40example.com&action=member.deactivated",
        ids_where(&|i| i % 2 == 1 && i % 3 == 0),
    )
    .await;
    // 2026-03-02 is hours 24..47; both days are included.
    check(
        "from=2026-03-02&to=2026-03-02",
        ids_where(&|i| (24..48).contains(&i)),
    )
    .await;
    check("from=2026-03-03&to=2026-03-31", ids_where(&|i| i >= 48)).await;
    check(
        "to=2026-03-01&action=invitation.created",
        ids_where(&|i| i < 24 && i % 3 != 0),
    )
    .await;
    check("actor=nobody%40example.com", vec![]).await;

    // The action filter offers the known actions and keeps the choice.
    let page = browser
        .get("/orgs/my-org/audit?action=member.deactivated")
        .await;
    assert!(
        page.body
            .contains("<option value=\"member.deactivated\" selected>")
    );
    assert!(page.body.contains("<option value=\"auth.login_failed\">"));
    assert!(page.body.contains("No events match") || !row_ids(&page.body).is_empty());
}

#[actix_web::test]
async fn bad_filter_input_is_explained_not_an_error() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    for (query, message) in [
        ("from=2026-02-30", "Enter a date as YYYY-MM-DD"),
        ("to=tomorrow", "Enter a date as YYYY-MM-DD"),
        (
            "from=2026-03-02&to=2026-03-01",
            "The end date is before the start date.",
        ),
        ("actor=alice", "Enter the full email address"),
        ("action=%3Cscript%3E", "Choose an action from the list."),
        (
            "cursor=not-a-cursor",
            "This page link is damaged or out of date.",
        ),
        (
            "cursor=99999999999999999999_x",
            "This page link is damaged or out of date.",
        ),
        // {"created_at":"-5000-01-01T00:00:00","id":"x"}: PostgreSQL refuses the year.
        (
            "cursor=eyJjcmVhdGVkX2F0IjoiLTUwMDAtMDEtMDFUMDA6MDA6MDAiLCJpZCI6IngifQ",
            "This page link is damaged or out of date.",
        ),
    ] {
        let page = browser.get(&format!("/orgs/my-org/audit?{query}")).await;
        assert_eq!(page.status, 422, "{query}");
        assert!(page.body.contains(message), "{query}");
        assert!(!page.body.contains("<script>"), "{query}");
        let csv = browser
            .get(&format!("/orgs/my-org/audit.csv?{query}"))
            .await;
        assert_eq!(csv.status, 422, "{query}");
    }
    // A repeated or unknown parameter is no error.
    let page = browser
        .get("/orgs/my-org/audit?action=auth.logout&action=&utm=1")
        .await;
    assert_eq!(page.status, 200);
}
