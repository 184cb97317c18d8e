use diesel::QueryResult;

use crate::audit::{self, Event, Origin};
use crate::db::organizations::{self, Organization};
use crate::db::{self, DbConnection, roles};

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
    let id = db::new_id();
    organizations::insert(conn, &id, slug, name)?;
    roles::seed_builtin(conn, &id)?;
    let mut event = Event::new("org.created", origin)
        .org(&id)
        .target("org", &id, name)
        .details(serde_json::json!({ "slug": slug }));
    if let Some((actor_id, actor_email)) = actor {
        event = event.actor(actor_id, actor_email);
    }
    audit::record(conn, &event)?;
    organizations::find(conn, &id).map(|o| o.expect("organization just inserted"))
}

/// A fresh installation gets one organization so the first administrator has a home.
pub fn ensure_first(conn: &mut DbConnection) -> QueryResult<Organization> {
    db::write_tx(conn, |conn| match organizations::first(conn)? {
        Some(org) => Ok(org),
        None => create(
            conn,
            FIRST_ORG_SLUG,
            FIRST_ORG_NAME,
            None,
            &Origin::default(),
        ),
    })
}
