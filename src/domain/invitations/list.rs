//! The Invited tab: a page of an organization's invitations, newest first.

use chrono::NaiveDateTime;

use crate::db::invitations::{self as rows, ListKey, ListRow, StatusFilter};
use crate::db::{self, DbConnection};

/// The `status` parameter of the tab: the filter, and the value links repeat (empty for
/// the default, pending and expired).
pub fn parse_filter(raw: Option<&str>) -> (StatusFilter, &'static str) {
    match raw.unwrap_or("") {
        "pending" => (StatusFilter::Pending, "pending"),
        "expired" => (StatusFilter::Expired, "expired"),
        "accepted" => (StatusFilter::Accepted, "accepted"),
        "cancelled" => (StatusFilter::Cancelled, "cancelled"),
        "all" => (StatusFilter::All, "all"),
        _ => (StatusFilter::Open, ""),
    }
}

/// One page of the tab.
#[derive(Debug)]
pub struct InvitedPage {
    pub rows: Vec<ListRow>,
    /// Where the next page starts, if there is one.
    pub next: Option<ListKey>,
    /// The moment the page was read, which tells pending from expired.
    pub now: NaiveDateTime,
}

/// At most `page_size` rows after `after`.
pub fn list_page(
    conn: &mut DbConnection,
    org_id: &str,
    filter: StatusFilter,
    after: Option<ListKey>,
    page_size: i64,
) -> diesel::QueryResult<InvitedPage> {
    let now = db::now();
    let mut rows = rows::list(conn, org_id, filter, now, after, page_size + 1)?;
    let next = if rows.len() as i64 > page_size {
        rows.truncate(page_size as usize);
        rows.last()
            .map(|r| (r.invitation.created_at, r.invitation.id.clone()))
    } else {
        None
    };
    Ok(InvitedPage { rows, next, now })
}
