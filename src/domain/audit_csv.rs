//! The audit CSV export: its columns, cells a spreadsheet cannot run, and the export
//! read in batches by keyset so memory stays flat however many rows match.

use std::borrow::Cow;

use super::audit_catalogue::sentence;
use super::audit_query::{org_slugs, slug_of};
use super::timefmt::iso_time;
use crate::db::DbConnection;
use crate::db::audit_events::{self, AuditRow, EventKey, Filter, Scope};

/// Rows fetched per query while streaming the export.
const EXPORT_BATCH: i64 = 1000;

pub const CSV_HEADER: [&str; 13] = [
    "time_utc",
    "organization",
    "actor_email",
    "actor_id",
    "action",
    "event",
    "target_type",
    "target_id",
    "target_label",
    "details",
    "ip",
    "request_id",
    "event_id",
];

/// Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage
/// return in front of one) as a formula; a leading `'` makes it text (OWASP's advice).
fn csv_safe(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// One export row, every cell guarded. `org_slug` is the organization's slug, empty
/// for events outside any.
fn csv_record(row: &AuditRow, org_slug: &str) -> [String; 13] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        iso_time(row.created_at),
        org_slug.to_string(),
        opt(&row.actor_email),
        opt(&row.actor_id),
        row.action.clone(),
        sentence(row),
        opt(&row.target_type),
        opt(&row.target_id),
        opt(&row.target_label),
        row.details.clone(),
        opt(&row.ip),
        opt(&row.request_id),
        row.id.clone(),
    ]
    .map(|cell| csv_safe(&cell).into_owned())
}

/// One batch of the export, as CSV text.
pub struct Batch {
    pub csv: Vec<u8>,
    /// Where the next batch starts; `None` after the last one.
    pub next: Option<EventKey>,
}

/// Up to `EXPORT_BATCH` matching events after `after`, newest first; the first batch
/// (`after` is `None`) starts with the header row.
pub fn export_batch(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &Filter,
    after: Option<&EventKey>,
) -> anyhow::Result<Batch> {
    let rows = audit_events::page(conn, scope, filter, after, EXPORT_BATCH)?;
    let slugs = org_slugs(conn, &rows)?;
    // Every cell quoted: where the list separator is `;`, a spreadsheet splits an
    // unquoted `x;=1+1` and runs its second half (OWASP's CSV injection advice).
    let mut out = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(rows.len() * 320 + 256));
    if after.is_none() {
        out.write_record(CSV_HEADER)?;
    }
    for row in &rows {
        out.write_record(csv_record(row, slug_of(&slugs, row)))?;
    }
    let csv = out
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
    let more = rows.len() as i64 == EXPORT_BATCH;
    let next = rows.last().map(EventKey::after).filter(|_| more);
    Ok(Batch { csv, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit_catalogue::tests::row;

    #[test]
    fn formula_cells_are_defused() {
        for (cell, expected) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("a=1", "a=1"),
            ("", ""),
        ] {
            assert_eq!(csv_safe(cell), expected);
        }
        let mut r = row(
            "auth.logout",
            Some("a@example.com"),
            Some("=HYPERLINK(\"x\")"),
            "{}",
        );
        r.details = "-2".into();
        let record = csv_record(&r, "acme");
        assert_eq!(record[8], "'=HYPERLINK(\"x\")");
        assert_eq!(record[9], "'-2");
        assert_eq!(record[0], "2026-11-23T14:05:09.123456Z");
    }
}
