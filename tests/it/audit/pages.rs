//! The organization audit page: sentences, expandable details, keyset pages, and the
//! query behind a member's activity.

use chrono::Duration;
use portcullis::db;
use portcullis::db::audit_events::{Filter, Scope};
use portcullis::domain::audit_query::{self, AuditQuery};
use portcullis::web::paging::PAGE_SIZE;

use super::{Ev, day, insert_events, row_ids, scope_events};
use crate::helpers::*;

#[actix_web::test]
async fn the_audit_page_reads_as_sentences_with_expandable_details() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = app.org_id("my-org");
    let ids = insert_events(
        &app,
        &[Ev::new(&org, "member.deactivated", db::now())
            .actor("alice@example.com")
            .target(&db::new_id(), "bob@example.com")
            .details(r#"{"reason":"<left the company>"}"#)],
    );
    let page = browser.get("/orgs/my-org/audit").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("alice@example.com deactivated bob@example.com"));
    assert!(body.contains(&format!(
        "<tr data-id=\"{}\" data-action=\"member.deactivated\">",
        ids[0]
    )));
    assert!(body.contains("<details"));
    assert!(
        body.contains("&#60;left the company&#62;"),
        "details are escaped"
    );
    assert!(!body.contains("<left the company>"));
    // The first admin's setup is there too, newest first.
    let rows = row_ids(body);
    assert_eq!(rows[0], ids[0]);
    assert!(body.contains("data-action=\"setup.completed\""));
    // Every filter has a label.
    for field in ["actor", "action", "target", "from", "to"] {
        assert!(body.contains(&format!("<label for=\"{field}\"")), "{field}");
        assert!(body.contains(&format!("id=\"{field}\"")), "{field}");
    }
    assert!(body.contains("href=\"/orgs/my-org/audit\" aria-current=\"page\""));
}

#[actix_web::test]
async fn keyset_pages_cover_every_event_once_newest_first() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = app.create_org("paged", "Paged");
    app.add_member("paged", ADMIN_EMAIL, "Ada", "Admin", "admin", false);
    // Three events share each timestamp, so page boundaries fall inside ties.
    let base = day(2026, 1, 1);
    let events: Vec<Ev> = (0..120)
        .map(|i| Ev::new(&org, "member.updated", base + Duration::hours(i / 3)))
        .collect();
    insert_events(&app, &events);
    let expected: Vec<String> = {
        let mut rows = scope_events(&app, Scope::Org(org.clone()), Filter::default());
        rows.retain(|r| r.action == "member.updated");
        rows.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(expected.len(), 120);

    let mut seen = Vec::new();
    let mut url = "/orgs/paged/audit?action=member.updated".to_string();
    let mut pages = 0;
    loop {
        let page = browser.get(&url).await;
        assert_eq!(page.status, 200, "{url}");
        let ids = row_ids(&page.body);
        assert!(ids.len() <= 50);
        seen.extend(ids);
        pages += 1;
        match next_link(&page.body) {
            Some(next) => {
                assert!(
                    next.contains("action=member.updated"),
                    "filters kept: {next}"
                );
                assert!(!next.contains("offset"));
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);
}

#[actix_web::test]
async fn the_activity_query_narrows_to_one_member() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    let bob = db::new_id();
    let now = db::now();
    let ids = insert_events(
        &app,
        &[
            Ev::new(&org, "member.deactivated", now).target(&bob, "bob@example.com"),
            Ev::new(&org, "member.updated", now + Duration::seconds(1))
                .target(&db::new_id(), "eve@example.com"),
            Ev::new(&org, "member.activated", now + Duration::seconds(2))
                .target(&bob, "bob@example.com"),
        ],
    );
    let page = audit_query::org_page(
        &mut app.conn(),
        &org,
        &AuditQuery::default(),
        Some(&bob),
        PAGE_SIZE,
    )
    .unwrap();
    let got: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[0].as_str()]);
    assert!(page.next_cursor.is_none());
    assert_eq!(
        page.events[1].sentence,
        "The system deactivated bob@example.com"
    );
    // The same function without a target is the organization's page.
    let all = audit_query::org_page(
        &mut app.conn(),
        &org,
        &AuditQuery::default(),
        None,
        PAGE_SIZE,
    )
    .unwrap();
    assert!(all.events.len() >= 3);
}
