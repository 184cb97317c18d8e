//! The CSV export: quoting, formula defusing, and streaming in batches.

use chrono::Duration;
use portcullis::db;
use portcullis::db::audit_events::{Filter, Scope};
use portcullis::domain::audit_csv::CSV_HEADER;

use super::{Ev, csv_rows, day, insert_events, scope_events};
use crate::helpers::*;

#[actix_web::test]
async fn csv_export_quotes_cells_and_defuses_formulas() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = app.org_id("my-org");
    let details = "{\"note\":\"a, \\\"quoted\\\"\\nline\"}";
    let ids = insert_events(
        &app,
        &[
            Ev::new(&org, "member.updated", db::now())
                .actor("alice@example.com")
                .target("t1", "=HYPERLINK(\"http://evil.example\",\"click\")")
                .details(details),
            Ev::new(&org, "member.updated", db::now())
                .actor("alice@example.com")
                .target("t2", "@SUM(A1:A9)"),
            Ev::new(&org, "member.updated", db::now())
                .actor("alice@example.com")
                .target("t3", "+1, -1\r\nnext"),
            Ev::new(&org, "member.updated", db::now())
                .actor("alice@example.com")
                .target("t4", "x;=1+1;y"),
        ],
    );
    let response = browser.get("/orgs/my-org/audit.csv").await;
    assert_eq!(response.status, 200);
    assert!(
        response.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = response.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"audit-my-org-"),
        "{disposition}"
    );
    assert!(disposition.ends_with(".csv\""));
    // Quotes are doubled inside a quoted cell.
    assert!(
        response
            .body
            .contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\"")
    );

    let rows = csv_rows(&response.body);
    assert_eq!(rows[0], CSV_HEADER.map(str::to_string).to_vec());
    let by_id = |id: &str| rows.iter().find(|r| r[12] == id).unwrap().clone();
    let first = by_id(&ids[0]);
    assert_eq!(first[8], "'=HYPERLINK(\"http://evil.example\",\"click\")");
    assert_eq!(first[9], details, "commas, quotes and newlines survive");
    assert_eq!(first[1], "my-org");
    assert_eq!(first[2], "alice@example.com");
    assert_eq!(first[4], "member.updated");
    assert_eq!(
        first[5], "alice@example.com edited =HYPERLINK(\"http://evil.example\",\"click\")",
        "a formula later in a cell is inert"
    );
    assert_eq!(by_id(&ids[1])[8], "'@SUM(A1:A9)");
    assert_eq!(by_id(&ids[2])[8], "'+1, -1\r\nnext");
    // Quoted, so a spreadsheet splitting on `;` keeps it one cell, never a formula.
    assert!(response.body.contains("\"x;=1+1;y\""), "{}", response.body);
    assert!(response.body.starts_with("\"time_utc\",\"organization\""));
    // No cell of the whole export starts a formula.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
    }
}

#[actix_web::test]
async fn csv_export_streams_every_matching_event_in_batches() {
    let app = spawn_app().await;
    let browser = app.setup_admin().await;
    let org = app.org_id("my-org");
    let base = day(2026, 5, 1);
    // More than two export batches, with ties at batch boundaries.
    let events: Vec<Ev> = (0..2_345)
        .map(|i| {
            Ev::new(&org, "invitation.created", base + Duration::seconds(i / 4))
                .actor("bulk@example.com")
        })
        .collect();
    let mut ids = insert_events(&app, &events);
    let response = browser
        .get("/orgs/my-org/audit.csv?actor=bulk%40example.com")
        .await;
    assert_eq!(response.status, 200);
    let rows = csv_rows(&response.body);
    assert_eq!(rows.len(), 1 + 2_345);
    let exported: Vec<String> = rows[1..].iter().map(|r| r[12].clone()).collect();
    let expected: Vec<String> = {
        let mut rows = scope_events(
            &app,
            Scope::Org(org.clone()),
            Filter {
                actor_email: Some("bulk@example.com".into()),
                ..Default::default()
            },
        );
        rows.drain(..).map(|r| r.id).collect()
    };
    assert_eq!(exported, expected, "newest first, each once");
    ids.sort();
    let mut sorted = exported.clone();
    sorted.sort();
    assert_eq!(sorted, ids);
}
