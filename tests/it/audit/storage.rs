//! Audit events are insert-only in the database itself; retention is the one way
//! rows leave, and it cannot reach past its cutoff.

use chrono::Duration;
use diesel::prelude::*;
use portcullis::db::audit_events::{self, AuditRow};
use portcullis::db::schema::audit_events as ae;
use portcullis::db::{self, DbConnection};

use super::{Ev, all_events, insert_events};
use crate::helpers::*;

#[actix_web::test]
async fn the_database_refuses_to_update_or_delete_audit_events() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let before = all_events(&app);
    assert!(!before.is_empty());
    let mut conn = app.conn();
    let conn: &mut DbConnection = &mut conn;

    let update = diesel::update(ae::table)
        .set(ae::action.eq("tampered"))
        .execute(conn)
        .unwrap_err();
    assert!(update.to_string().contains("insert-only"), "{update}");
    let one = diesel::update(ae::table.find(&before[0].id))
        .set(ae::details.eq("{}"))
        .execute(conn)
        .unwrap_err();
    assert!(one.to_string().contains("insert-only"), "{one}");
    let delete = diesel::delete(ae::table).execute(conn).unwrap_err();
    assert!(delete.to_string().contains("insert-only"), "{delete}");
    let old = diesel::delete(ae::table.filter(ae::created_at.lt(db::now())))
        .execute(conn)
        .unwrap_err();
    assert!(old.to_string().contains("insert-only"), "{old}");
    if app.db.is_postgres() {
        let truncate = diesel::sql_query("TRUNCATE audit_events")
            .execute(conn)
            .unwrap_err();
        assert!(truncate.to_string().contains("insert-only"), "{truncate}");
    }
    let after = all_events(&app);
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|e| e.action != "tampered"));
}

#[actix_web::test]
async fn prune_audit_deletes_old_events_and_records_that_it_ran() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let org = app.org_id("my-org");
    let now = db::now();
    let old: Vec<Ev> = (0..7)
        .map(|i| {
            Ev::new(&org, "member.updated", now - Duration::days(100 + i)).actor("old@example.com")
        })
        .collect();
    let old_ids = insert_events(&app, &old);
    let recent = insert_events(
        &app,
        &[Ev::new(&org, "member.updated", now - Duration::days(29))],
    );
    let before = all_events(&app).len();

    let refused = app.run_cli(&["prune-audit", "--older-than", "0"]);
    assert!(!refused.status.success(), "at least one day is kept");

    let out = app.run_cli(&["prune-audit", "--older-than", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Deleted 7 audit events"));

    let after = all_events(&app);
    assert_eq!(after.len(), before - 7 + 1);
    assert!(after.iter().all(|e| !old_ids.contains(&e.id)));
    assert!(after.iter().any(|e| e.id == recent[0]));
    let pruned: Vec<&AuditRow> = after
        .iter()
        .filter(|e| e.action == "audit.pruned")
        .collect();
    assert_eq!(pruned.len(), 1);
    let details: serde_json::Value = serde_json::from_str(&pruned[0].details).unwrap();
    assert_eq!(details["deleted"], 7);
    assert_eq!(details["older_than_days"], 30);
    assert!(details["cutoff"].as_str().unwrap().ends_with('Z'));
    assert_eq!(pruned[0].org_id, None);

    // Once it is done, the table is insert-only again.
    let mut conn = app.conn();
    let err = diesel::delete(ae::table).execute(&mut *conn).unwrap_err();
    assert!(err.to_string().contains("insert-only"));
}

#[actix_web::test]
async fn pruning_cannot_reach_events_newer_than_its_cutoff() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let before = all_events(&app).len();
    let mut conn = app.conn();
    // Inside the prune transaction, try to delete everything: the trigger still
    // protects rows at or after the cutoff, and the whole run rolls back.
    let cutoff = db::now() - Duration::days(1);
    let result = audit_events::prune(&mut conn, cutoff, |conn, _| {
        diesel::delete(ae::table).execute(conn).map(|_| ())
    });
    let err = result.unwrap_err();
    assert!(err.to_string().contains("insert-only"), "{err}");
    drop(conn);
    assert_eq!(all_events(&app).len(), before);
}
