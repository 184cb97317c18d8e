//! The member picker: choosing one member of an organization however large it is. It
//! searches with the Users tab's indexed search (`db::memberships::list_page`), scoped
//! to the organization inside the query, and offers at most [`MAX_MATCHES`] active
//! members. The same matches serve the search-as-you-type endpoint and the page that
//! re-renders with them when JavaScript is off.

use diesel::QueryResult;

use super::RuleError;
use super::member_search::parse_search;
use super::members::{Actor, RemovalPlan, removal_plan};
use super::roles::Permission;
use crate::db::DbConnection;
use crate::db::memberships::{self, ListFilter, SortKey};

/// At most this many matches: enough to choose from, never the whole organization.
pub const MAX_MATCHES: i64 = 20;

/// One member a picker offers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Match {
    pub id: String,
    pub email: String,
    pub name: String,
}

/// Active members of the actor's organization matching `q` (email or name; an empty
/// query lists the first by email), at most `MAX_MATCHES`, minus `exclude`.
pub fn search(
    conn: &mut DbConnection,
    actor: &Actor,
    q: &str,
    exclude: &[String],
) -> QueryResult<Vec<Match>> {
    let filter = ListFilter {
        search: parse_search(Some(q)),
        status: Some(memberships::ACTIVE.to_string()),
        ..ListFilter::everyone(SortKey::Email, false, MAX_MATCHES)
    };
    Ok(memberships::list_page(conn, &actor.org_id, &filter)?
        .into_iter()
        .filter(|r| !exclude.contains(&r.user.id))
        .map(|r| Match {
            name: r.user.display_name(),
            id: r.user.id,
            email: r.user.email,
        })
        .collect())
}

/// The member `user_id` of the actor's organization, to show as already chosen.
pub fn chosen(conn: &mut DbConnection, actor: &Actor, user_id: &str) -> QueryResult<Option<Match>> {
    if user_id.is_empty() {
        return Ok(None);
    }
    Ok(
        memberships::find(conn, &actor.org_id, user_id)?.map(|r| Match {
            name: r.user.display_name(),
            id: r.user.id,
            email: r.user.email,
        }),
    )
}

/// Which picker of a page a search is for, and what was typed: `?pick=owner_id&q=ada`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PickQuery {
    pub pick: Option<String>,
    pub q: Option<String>,
}

impl PickQuery {
    /// The term typed into the picker choosing `field`, if this search is for it.
    pub fn term_for(&self, field: &str) -> Option<&str> {
        (self.pick.as_deref() == Some(field))
            .then_some(self.q.as_deref())
            .flatten()
    }
}

/// A picker as a page shows it: the field it fills, what was searched, what it offers.
#[derive(Debug, Clone, Default)]
pub struct Picker {
    /// The form field the choice fills (`user_id`, `owner_id`, `successor_id`).
    pub field: &'static str,
    pub legend: String,
    /// The page the search (without JavaScript) reloads.
    pub page: String,
    /// The search endpoint the script asks as one types.
    pub endpoint: String,
    pub q: String,
    pub searched: bool,
    /// The member chosen so far (the group's owner), offered first and ticked.
    pub chosen: Option<Match>,
    pub matches: Vec<Match>,
    /// Whether the actor may read the members list, which the search lists from: a
    /// pool Manager or group manager whose role lacks `users.read` would otherwise read
    /// every member's address through it, twenty at a time.
    pub may_search: bool,
}

/// Where a page's pickers live: the page a search reloads, the endpoint the script
/// asks, and the search the page was asked for.
#[derive(Debug, Clone, Default)]
pub struct PickerPage {
    pub page: String,
    pub endpoint: String,
    pub query: PickQuery,
}

impl Picker {
    /// A picker filling `field`; searched when the page's query is for it. `exclude` are
    /// members it must not offer (those already in the group or pool, the one leaving).
    pub fn load(
        conn: &mut DbConnection,
        actor: &Actor,
        (field, legend): (&'static str, &str),
        at: &PickerPage,
        chosen_id: &str,
        exclude: &[String],
    ) -> QueryResult<Picker> {
        let may_search = actor.standing().may(Permission::UsersRead);
        // Nor is a member named by the id a form sent back shown to them.
        let chosen = match may_search {
            true => chosen(conn, actor, chosen_id)?,
            false => None,
        };
        let term = at.query.term_for(field).filter(|_| may_search);
        let matches = match term {
            Some(term) => {
                let mut skip = exclude.to_vec();
                skip.extend(chosen.iter().map(|c| c.id.clone()));
                search(conn, actor, term, &skip)?
            }
            None => Vec::new(),
        };
        Ok(Picker {
            field,
            legend: legend.to_string(),
            page: at.page.clone(),
            endpoint: at.endpoint.clone(),
            searched: term.is_some(),
            q: term.unwrap_or_default().to_string(),
            chosen,
            matches,
            may_search,
        })
    }
}

/// The removal page: what the member owns, and the picker of who takes it over (never
/// the member leaving). `successor_id`: the one a form being shown again had chosen.
pub fn removal_with_successor(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    at: &PickerPage,
    successor_id: &str,
) -> Result<(RemovalPlan, Picker), RuleError> {
    let plan = removal_plan(conn, actor, user_id)?;
    let leaving = [plan.target.user.id.clone()];
    let chosen = if successor_id == plan.target.user.id {
        ""
    } else {
        successor_id
    };
    let field = ("successor_id", "New owner");
    let picker = Picker::load(conn, actor, field, at, chosen, &leaving)?;
    Ok((plan, picker))
}

/// The fields a picker may fill: the search endpoint names its radio buttons after one.
pub fn field_name(raw: Option<&str>) -> &'static str {
    match raw {
        Some("owner_id") => "owner_id",
        Some("successor_id") => "successor_id",
        _ => "user_id",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_for_the_picker_it_names() {
        let query = PickQuery {
            pick: Some("owner_id".into()),
            q: Some("ada".into()),
        };
        assert_eq!(query.term_for("owner_id"), Some("ada"));
        assert_eq!(query.term_for("user_id"), None);
        assert_eq!(PickQuery::default().term_for("user_id"), None);
    }

    #[test]
    fn only_known_fields_name_the_choices() {
        assert_eq!(field_name(Some("owner_id")), "owner_id");
        assert_eq!(field_name(Some("successor_id")), "successor_id");
        for other in [None, Some(""), Some("\"><script>"), Some("role_id")] {
            assert_eq!(field_name(other), "user_id");
        }
    }
}
