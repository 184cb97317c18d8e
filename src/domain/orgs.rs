use diesel::QueryResult;

use crate::audit::{self, Event, Origin};
use crate::db::organizations::{self, Organization};
use crate::db::{self, DbConnection};

pub const FIRST_ORG_NAME: &str = "My organization";
pub const FIRST_ORG_SLUG: &str = "my-org";

/// Creates an organization with its built-in roles and records it; call inside a
/// transaction.
pub fn create(
    conn: &mut DbConnection,
    slug: &str,
    name: &str,
    actor: Option<(&str, &str)>,
    origin: &Origin,
) -> QueryResult<Organization> {
    let org = insert(conn, slug, name)?;
    let mut event = created_event(&org, origin).details(serde_json::json!({ "slug": org.slug }));
    if let Some((actor_id, actor_email)) = actor {
        event = event.actor(actor_id, actor_email);
    }
    audit::record(conn, &event)?;
    Ok(org)
}

/// Creates an organization with its built-in roles without recording anything: for a
/// caller that records the whole change as one `created_event` of its own (one request,
/// one event). Call inside a transaction.
pub(crate) fn insert(conn: &mut DbConnection, slug: &str, name: &str) -> QueryResult<Organization> {
    let id = db::new_id();
    organizations::insert(conn, &id, slug, name)?;
    super::roles::seed_builtin(conn, &id)?;
    organizations::find(conn, &id).map(|o| o.expect("organization just inserted"))
}

/// The `org.created` event for `org`, without actor or details.
pub(crate) fn created_event(org: &Organization, origin: &Origin) -> Event {
    Event::new("org.created", origin)
        .org(&org.id)
        .target("org", &org.id, &org.name)
}

/// A fresh installation gets one organization so the first administrator has a home.
pub fn ensure_first(conn: &mut DbConnection) -> QueryResult<Organization> {
    // Instances starting at once on an empty database make one first organization.
    db::write_tx(conn, |conn| {
        match db::platform_lock(conn).and_then(|()| organizations::first(conn))? {
            Some(org) => Ok(org),
            None => create(
                conn,
                FIRST_ORG_SLUG,
                FIRST_ORG_NAME,
                None,
                &Origin::default(),
            ),
        }
    })
}
