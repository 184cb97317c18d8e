//! The Invited tab: a page of an organization's invitations, newest first.

use std::collections::HashSet;

use chrono::NaiveDateTime;

use crate::db::invitations::{self as rows, ListKey, ListRow, ListWhere, StatusFilter};
use crate::db::roles::Role;
use crate::db::{self, DbConnection};
use crate::domain::policy::Standing;

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

/// Whether the tab offers this viewer Resend and Cancel on an invitation of this role:
/// both re-check everything it grants when pressed (its groups and pools too), but a
/// role above the viewer's already settles it, without a query per row.
pub fn may_renew_role(viewer: &Standing, role: &Role) -> bool {
    viewer.may_grant(Standing::of_role(role))
}

/// One page of the tab.
#[derive(Debug)]
pub struct InvitedPage {
    pub rows: Vec<ListRow>,
    /// Where the next page starts, if there is one.
    pub next: Option<ListKey>,
    /// The moment the page was read, which tells pending from expired.
    pub now: NaiveDateTime,
    /// The page's open invitations whose inviter is held from acting here (deactivated,
    /// access ended, account disabled): their links do not work meanwhile (acceptance
    /// asks the inviter's standing), and the tab says so rather than show them plainly
    /// Pending.
    pub held: HashSet<String>,
    /// The page's invitations whose email the mail server has not taken yet, by id:
    /// still retried, or given up and why.
    pub undelivered: std::collections::HashMap<String, Undelivered>,
}

/// An invitation email that has not reached the mail server. The server's own words
/// stay in the log: they can name the platform's mail set-up, which is not the inviter's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// An attempt failed; more follow.
    Retrying,
    /// Given up on: its link died before it could be sent.
    LinkDied,
    /// Given up on after a week of attempts.
    GivenUp,
}

/// The `q` parameter as the search runs it: addresses are stored trimmed and lower-case,
/// so the prefix is too; blank searches nothing. A term longer than any address finds
/// nothing, as its first 255 characters do.
pub fn search_prefix(raw: Option<&str>) -> Option<String> {
    let q = raw?.trim().to_lowercase();
    Some(q.chars().take(255).collect()).filter(|q: &String| !q.is_empty())
}

/// At most `page_size` rows after `after`, of addresses starting with `email_prefix`.
pub fn list_page(
    conn: &mut DbConnection,
    org_id: &str,
    filter: StatusFilter,
    email_prefix: Option<&str>,
    after: Option<ListKey>,
    page_size: i64,
) -> diesel::QueryResult<InvitedPage> {
    let now = db::now();
    let at = ListWhere {
        org_id,
        filter,
        email_prefix,
        now,
    };
    let mut rows = rows::list(conn, &at, after, page_size + 1)?;
    let next = if rows.len() as i64 > page_size {
        rows.truncate(page_size as usize);
        rows.last()
            .map(|r| (r.invitation.created_at, r.invitation.id.clone()))
    } else {
        None
    };
    let inviters: HashSet<&str> = rows
        .iter()
        .filter(|r| r.invitation.status == rows::PENDING)
        .filter_map(|r| r.invitation.invited_by.as_deref())
        .collect();
    let inviters: Vec<&str> = inviters.into_iter().collect();
    let acting: std::collections::HashMap<String, bool> =
        rows::inviters_here(conn, org_id, &inviters, now)?
            .into_iter()
            .collect();
    let mut held = HashSet::new();
    for row in rows.iter().filter(|r| r.invitation.status == rows::PENDING) {
        let Some(inviter) = &row.invitation.invited_by else {
            continue;
        };
        // Without a membership here (removed before removals ended what they sent, or a
        // platform admin), only the platform's own invitations still work.
        let may_act = acting.get(inviter).copied().unwrap_or(false);
        if !may_act && !crate::domain::withdrawals::sent_from_the_platform(conn, &row.invitation)? {
            held.insert(row.invitation.id.clone());
        }
    }
    let open: Vec<&str> = rows
        .iter()
        .filter(|r| r.invitation.status == rows::PENDING)
        .map(|r| r.invitation.id.as_str())
        .collect();
    let undelivered = crate::db::email_outbox::undelivered_for(conn, &open)?
        .into_iter()
        .map(|(id, error, given_up)| {
            let state = match (given_up, error == crate::db::email_outbox::LINK_DIED) {
                (false, _) => Undelivered::Retrying,
                (true, true) => Undelivered::LinkDied,
                (true, false) => Undelivered::GivenUp,
            };
            (id, state)
        })
        .collect();
    Ok(InvitedPage {
        rows,
        next,
        now,
        held,
        undelivered,
    })
}

/// Most the Invited tab's badge counts; beyond it reads "99+".
pub const BADGE_CAP: i64 = 100;

/// The badge on the Invited tab: how many invitations are open (pending or expired, as
/// the tab's default view lists them), if any.
pub fn pending_badge(conn: &mut DbConnection, org_id: &str) -> diesel::QueryResult<Option<String>> {
    let n = rows::pending_count(conn, org_id, BADGE_CAP)?;
    Ok(match n {
        0 => None,
        n if n >= BADGE_CAP => Some(format!("{}+", BADGE_CAP - 1)),
        n => Some(n.to_string()),
    })
}
