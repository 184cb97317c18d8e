//! At scale: every audit query is served by an index in page order, and demo events
//! can be seeded in bulk.

use chrono::Duration;
use diesel::prelude::*;
use portcullis::db;
use portcullis::db::audit_events::{self, EventKey, Filter, Scope};
use portcullis::domain::member_profile::activity_filters;
use portcullis::domain::seed_audit::{demo_actor_email, seed_audit_events};

use super::row_ids;
use crate::helpers::*;

/// (what, scope, filters, cursor, indexes any of which may serve it)
type PlanCase<'a> = (&'a str, Scope, Filter, Option<EventKey>, &'a [&'a str]);

/// Every query the audit pages run must be served by an index in the page order: no
/// full scan, no sort. Plans, not timings: they hold on any machine.
#[actix_web::test]
async fn every_audit_query_is_served_by_an_index_in_order() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    app.create_org("other", "Other");
    {
        let mut conn = app.conn();
        seed_audit_events(&mut conn, Some("my-org"), 3000, |_, _| {}).unwrap();
        seed_audit_events(&mut conn, Some("other"), 1000, |_, _| {}).unwrap();
        diesel::sql_query("ANALYZE").execute(&mut *conn).unwrap();
    }
    let sample = audit_events::page(
        &mut app.conn(),
        &Scope::Org(org.clone()),
        &Filter::default(),
        None,
        60,
    )
    .unwrap();
    let target = sample[0].target_id.clone().unwrap();
    let label = sample[0].target_label.clone().unwrap();
    let cursor = EventKey::after(&sample[50]);
    let actor = Some(demo_actor_email(7));
    let in_org = Scope::Org(org.clone());
    let f = Filter::default;
    let cases: Vec<PlanCase> = vec![
        (
            "org, first page",
            in_org.clone(),
            f(),
            None,
            &["audit_org_time_idx"],
        ),
        (
            "org, next page",
            in_org.clone(),
            f(),
            Some(cursor.clone()),
            &["audit_org_time_idx"],
        ),
        (
            "org, actor",
            in_org.clone(),
            Filter {
                actor_email: actor.clone(),
                ..f()
            },
            None,
            &["audit_org_actor_idx"],
        ),
        (
            "org, actor, next page",
            in_org.clone(),
            Filter {
                actor_email: actor.clone(),
                ..f()
            },
            Some(cursor.clone()),
            &["audit_org_actor_idx"],
        ),
        (
            "org, action",
            in_org.clone(),
            Filter {
                action: Some("member.removed".into()),
                ..f()
            },
            None,
            &["audit_org_action_idx"],
        ),
        (
            "org, target id",
            in_org.clone(),
            Filter {
                target_id: Some(target.clone()),
                ..f()
            },
            None,
            &["audit_org_target_idx", "audit_target_idx"],
        ),
        (
            "org, target label",
            in_org.clone(),
            Filter {
                target_label: Some(label.clone()),
                ..f()
            },
            None,
            &["audit_org_label_idx", "audit_label_idx"],
        ),
        (
            "org, dates",
            in_org.clone(),
            Filter {
                from: Some(db::now() - Duration::days(30)),
                until: Some(db::now() - Duration::days(20)),
                ..f()
            },
            None,
            &["audit_org_time_idx"],
        ),
        (
            "org, actor and action",
            in_org.clone(),
            Filter {
                actor_email: actor.clone(),
                action: Some("member.removed".into()),
                ..f()
            },
            None,
            &["audit_org_actor_idx", "audit_org_action_idx"],
        ),
        (
            "platform events, actor",
            Scope::Platform,
            Filter {
                actor_email: actor.clone(),
                ..f()
            },
            None,
            &[
                "audit_actor_idx",
                "audit_org_actor_idx",
                "audit_platform_time_idx",
            ],
        ),
        (
            "platform events",
            Scope::Platform,
            f(),
            None,
            &["audit_platform_time_idx", "audit_org_time_idx"],
        ),
        (
            "all, first page",
            Scope::All,
            f(),
            None,
            &["audit_time_idx"],
        ),
        (
            "all, next page",
            Scope::All,
            f(),
            Some(cursor.clone()),
            &["audit_time_idx"],
        ),
        (
            "all, actor",
            Scope::All,
            Filter {
                actor_email: actor.clone(),
                ..f()
            },
            None,
            &["audit_actor_idx"],
        ),
        (
            "all, action",
            Scope::All,
            Filter {
                action: Some("member.removed".into()),
                ..f()
            },
            None,
            &["audit_action_idx"],
        ),
        (
            "all, target id",
            Scope::All,
            Filter {
                target_id: Some(target.clone()),
                ..f()
            },
            None,
            &["audit_target_idx"],
        ),
        (
            "all, target label",
            Scope::All,
            Filter {
                target_label: Some(label.clone()),
                ..f()
            },
            None,
            &["audit_label_idx"],
        ),
    ];
    // A member's Activity tab: the union of these, each read on its own (one for each
    // invitation the member accepted).
    let invitation = portcullis::db::new_id();
    let Ok::<[_; 3], _>([done_to, done_by, about]) =
        activity_filters(&target, std::slice::from_ref(&invitation)).try_into()
    else {
        panic!("two filters of the member's own, and one an invitation");
    };
    let mut cases = cases;
    cases.extend([
        (
            "activity: done to the member",
            in_org.clone(),
            done_to,
            None,
            &["audit_org_target_idx", "audit_target_idx"][..],
        ),
        (
            "activity: done by the member",
            in_org.clone(),
            done_by,
            None,
            &["audit_org_actor_id_idx"][..],
        ),
        (
            "activity: the invitation they accepted",
            in_org.clone(),
            about,
            None,
            &["audit_org_target_idx", "audit_target_idx"][..],
        ),
    ]);
    let postgres = app.db.is_postgres();
    for (name, scope, filter, cursor, indexes) in cases {
        let mut conn = app.conn();
        let plan = diesel::Connection::transaction(&mut *conn, |conn| {
            if postgres {
                // Make the planner show whether an ordered index path exists at all:
                // with these off, a missing index shows up as a Sort or a Seq Scan.
                diesel::sql_query("SET LOCAL enable_seqscan = off").execute(conn)?;
                diesel::sql_query("SET LOCAL enable_sort = off").execute(conn)?;
            }
            audit_events::explain_page(conn, &scope, &filter, cursor.as_ref(), 51)
        })
        .unwrap();
        let text = plan.join("\n");
        assert!(!text.contains("TEMP B-TREE"), "{name} sorts:\n{text}");
        assert!(!text.contains("Sort"), "{name} sorts:\n{text}");
        assert!(
            !text.contains("Seq Scan"),
            "{name} scans the table:\n{text}"
        );
        assert!(
            !text.contains("SCAN audit_events\n") && !text.ends_with("SCAN audit_events"),
            "{name} scans the table:\n{text}"
        );
        // Either index is fine where both serve the filter and the order: the
        // planner may rightly prefer the global one for a very selective value.
        assert!(
            indexes.iter().any(|i| text.contains(&format!("{i} "))
                || text.ends_with(i)
                || text.contains(&format!("{i}\n"))),
            "{name} should use one of {indexes:?}:\n{text}"
        );
    }
}

#[actix_web::test]
async fn seed_demo_adds_audit_events_in_batches() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let before = app.count("audit_events");
    let out = app.run_cli(&["seed-demo", "--org", "my-org", "--audit-events", "2500"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Added 2500 demo audit events"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2500 / 2500"));
    assert_eq!(app.count("audit_events"), before + 2500);
    let page = browser
        .get("/orgs/my-org/audit?actor=actor0%40demo.example")
        .await;
    assert_eq!(row_ids(&page.body).len(), 50);
    assert!(next_link(&page.body).is_some());

    let missing = app.run_cli(&["seed-demo", "--org", "nope", "--audit-events", "5"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no organization has the slug"));
}
