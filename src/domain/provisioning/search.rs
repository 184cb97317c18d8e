//! `POST /.search` at the server root (RFC 7644 §3.4.3): Users and Groups as one list,
//! Users first, each in its own stable order.

use serde_json::Value;

use super::{Call, ScimError, groups, users};
use crate::db::DbConnection;
use crate::domain::scim::filter::Filter;

pub fn everything(
    conn: &mut DbConnection,
    call: &Call,
    filter: Option<&Filter>,
    start_index: i64,
    count: i64,
    group_members: groups::Members,
) -> Result<(i64, Vec<Value>), ScimError> {
    let start_index = start_index.max(1);
    let (user_total, mut page) = users::list(conn, call, filter, start_index, count)?;
    // Where the page continues among the groups, and how many it still takes.
    let group_start = (start_index - user_total).max(1);
    let room = count - page.len() as i64;
    let (group_total, found) =
        groups::list(conn, call, filter, group_start, room.max(0), group_members)?;
    if start_index + (page.len() as i64) > user_total {
        page.extend(found);
    }
    Ok((user_total + group_total, page))
}
