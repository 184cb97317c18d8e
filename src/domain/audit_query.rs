//! What the audit pages ask for and get: their filters as typed, checked into a query,
//! and the page of events loaded for one organization or for the whole platform.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use diesel::QueryResult;
use serde::{Deserialize, Deserializer};

use super::FieldErrors;
use super::audit_catalogue::{actor_text, details_pretty, is_action_name, sentence, target_text};
use super::email::Email;
use super::timefmt::{display_time, iso_time};
use crate::db::DbConnection;
use crate::db::audit_events::{self, AuditRow, EventKey, Filter, Scope};
use crate::db::organizations::{self, Organization};

/// Organizations offered in the platform page's filter; more can still be typed into
/// the URL.
const ORG_CHOICES: i64 = 1000;
/// `org` value meaning "events outside any organization".
const NO_ORG: &str = "-";
const MAX_INPUT: usize = 254;

/// The audit pages' query string as typed, kept to fill the form back in. Read
/// leniently, so no query string is an error by itself: unknown keys are ignored and a
/// repeated key keeps its last value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AuditParams {
    #[serde(deserialize_with = "last_value")]
    pub actor: String,
    #[serde(deserialize_with = "last_value")]
    pub action: String,
    #[serde(deserialize_with = "last_value")]
    pub target: String,
    #[serde(deserialize_with = "last_value")]
    pub from: String,
    #[serde(deserialize_with = "last_value")]
    pub to: String,
    #[serde(deserialize_with = "last_value")]
    pub cursor: String,
    /// Platform audit page only: an organization slug, `-` for events outside any.
    #[serde(deserialize_with = "last_value")]
    pub org: String,
}

fn last_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let values = Vec::<String>::deserialize(deserializer)?;
    Ok(values
        .last()
        .map(|v| v.chars().take(MAX_INPUT * 2).collect())
        .unwrap_or_default())
}

impl AuditParams {
    /// The filters that are set (not the cursor), for links that keep them: the next
    /// page, the CSV export.
    pub fn filters(&self) -> Vec<(&'static str, &str)> {
        [
            ("org", &self.org),
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .map(|(key, value)| (key, value.trim()))
        .filter(|(_, value)| !value.is_empty())
        .collect()
    }
}

/// A `cursor` parameter that no audit page wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DamagedLink;

/// Where a page starts, as the route read its cursor: the newest event (`None`), after
/// a row, or a damaged link.
pub type Start = Result<Option<EventKey>, DamagedLink>;

/// Validated filters and position, ready for the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub filter: Filter,
    pub cursor: Option<EventKey>,
}

fn is_token_label(actor: &str) -> bool {
    actor.strip_prefix("token:").is_some_and(|name| {
        !name.trim().is_empty()
            && actor.chars().count() <= MAX_INPUT
            && !super::names::hides_text(name)
    })
}

/// Checks every filter and names each bad one; the page shows the messages next to
/// the fields instead of failing.
pub fn validate(params: &AuditParams, start: Start) -> Result<AuditQuery, FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut filter = Filter::default();

    let actor = params.actor.trim();
    if !actor.is_empty() {
        match Email::parse(actor) {
            Ok(email) => filter.actor_email = Some(email.as_str().to_string()),
            // What an identity provider did through an API token is recorded, and shown,
            // as `token:NAME`.
            Err(_) if is_token_label(actor) => filter.actor_email = Some(actor.to_string()),
            Err(_) => errors.add(
                "actor",
                "Enter the full email address of the person who acted, or token:NAME for an API token.",
            ),
        }
    }

    let action = params.action.trim();
    if !action.is_empty() {
        if is_action_name(action) {
            filter.action = Some(action.to_string());
        } else {
            errors.add("action", "Choose an action from the list.");
        }
    }

    let target = params.target.trim();
    if !target.is_empty() {
        if target.chars().count() > MAX_INPUT || target.chars().any(char::is_control) {
            errors.add("target", "Use at most 254 printable characters.");
        } else if uuid::Uuid::try_parse(target).is_ok() {
            filter.target_id = Some(target.to_lowercase());
        } else if target.contains('@') {
            // Email labels are stored lower-cased, like the addresses themselves.
            filter.target_label = Some(target.to_lowercase());
        } else {
            filter.target_label = Some(target.to_string());
        }
    }

    let from = errors.check("from", parse_day(&params.from)).flatten();
    let to = errors.check("to", parse_day(&params.to)).flatten();
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        errors.add("to", "The end date is before the start date.");
    }
    filter.from = from.map(|d| d.and_time(chrono::NaiveTime::MIN));
    filter.until = to.map(|d| (d + Duration::days(1)).and_time(chrono::NaiveTime::MIN));

    let cursor = errors.check(
        "cursor",
        start.map_err(|DamagedLink| {
            "This page link is damaged or out of date. The list starts again from the newest events."
        }),
    );

    if errors.is_empty() {
        Ok(AuditQuery {
            filter,
            cursor: cursor.flatten(),
        })
    } else {
        Err(errors)
    }
}

fn parse_day(raw: &str) -> Result<Option<NaiveDate>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|d| (1970..=9998).contains(&chrono::Datelike::year(d)))
        .map(Some)
        .ok_or("Enter a date as YYYY-MM-DD, for example 2026-11-23.")
}

/// Filters a platform export was given that no page offered: a download link is built
/// from a page that validated, so these were typed.
#[derive(Debug)]
pub struct BadFilters(pub FieldErrors);

impl BadFilters {
    /// The first field's message, in the order the form shows the fields.
    pub fn message(&self) -> &str {
        ["org", "actor", "action", "target", "from", "to", "cursor"]
            .iter()
            .find_map(|field| self.0.get(field))
            .unwrap_or("These filters are not valid.")
    }
}

// ---- pages ------------------------------------------------------------------------

/// One row of an audit page.
#[derive(Debug, Clone)]
pub struct EventView {
    pub id: String,
    pub action: String,
    pub time: String,
    pub iso_time: String,
    pub sentence: String,
    pub actor: String,
    pub target: Option<String>,
    pub target_type: Option<String>,
    /// The organization's slug; shown on the platform page, empty outside any.
    pub org_slug: String,
    pub details: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl EventView {
    pub fn new(row: &AuditRow, org_slug: &str) -> Self {
        EventView {
            id: row.id.clone(),
            action: row.action.clone(),
            time: display_time(row.created_at),
            iso_time: iso_time(row.created_at),
            sentence: sentence(row),
            actor: actor_text(row),
            target: target_text(row),
            target_type: row.target_type.clone(),
            org_slug: org_slug.to_string(),
            details: details_pretty(&row.details),
            ip: row.ip.clone(),
            request_id: row.request_id.clone(),
        }
    }
}

/// A page of events and, when there are more, where the next one starts.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub events: Vec<EventView>,
    pub next_cursor: Option<EventKey>,
}

/// Up to `size` of `scope`'s events, newest first (`size` is every list's page size,
/// which the web layer owns). One row more is fetched to know whether another page
/// follows, so no count is ever needed.
pub fn load_page(
    conn: &mut DbConnection,
    scope: &Scope,
    query: &AuditQuery,
    size: i64,
) -> QueryResult<AuditPage> {
    let mut rows = audit_events::page(conn, scope, &query.filter, query.cursor.as_ref(), size + 1)?;
    let more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    let next_cursor = more.then(|| rows.last().map(EventKey::after)).flatten();
    let slugs = org_slugs(conn, &rows)?;
    let events = rows
        .iter()
        .map(|r| EventView::new(r, slug_of(&slugs, r)))
        .collect();
    Ok(AuditPage {
        events,
        next_cursor,
    })
}

/// A page of one organization's events, optionally narrowed to events about one
/// target (a member's user id).
pub fn org_page(
    conn: &mut DbConnection,
    org_id: &str,
    query: &AuditQuery,
    target_id: Option<&str>,
    size: i64,
) -> QueryResult<AuditPage> {
    let mut query = query.clone();
    if let Some(target) = target_id {
        query.filter.target_id = Some(target.to_string());
        query.filter.target_label = None;
    }
    load_page(conn, &Scope::Org(org_id.to_string()), &query, size)
}

/// The platform audit page: the organizations its filter offers, the one asked for
/// when it is not among them, and the events or why the filters are wrong.
pub struct PlatformAudit {
    pub orgs: Vec<Organization>,
    pub unlisted_org: Option<String>,
    pub page: Result<AuditPage, FieldErrors>,
}

pub fn platform_audit(
    conn: &mut DbConnection,
    params: &AuditParams,
    start: Start,
    size: i64,
) -> QueryResult<PlatformAudit> {
    let orgs = organizations::list(conn, ORG_CHOICES)?;
    let org = params.org.trim();
    let unlisted_org = (!org.is_empty() && org != NO_ORG && !orgs.iter().any(|o| o.slug == org))
        .then(|| org.to_string());
    let page = match platform_query(conn, params, start)? {
        Ok((scope, query)) => Ok(load_page(conn, &scope, &query, size)?),
        Err(errors) => Err(errors),
    };
    Ok(PlatformAudit {
        orgs,
        unlisted_org,
        page,
    })
}

/// The platform pages' scope and filters, or every reason they are wrong.
pub fn platform_query(
    conn: &mut DbConnection,
    params: &AuditParams,
    start: Start,
) -> QueryResult<Result<(Scope, AuditQuery), FieldErrors>> {
    let scope = platform_scope(conn, &params.org)?;
    Ok(match (scope, validate(params, start)) {
        (Ok(scope), Ok(query)) => Ok((scope, query)),
        (scope, query) => {
            let mut errors = query.err().unwrap_or_default();
            if let Err(message) = scope {
                errors.add("org", message);
            }
            Err(errors)
        }
    })
}

/// The platform page's organization filter: empty for all, `-` for events outside any
/// organization, else a slug that must exist.
fn platform_scope(conn: &mut DbConnection, org: &str) -> QueryResult<Result<Scope, &'static str>> {
    Ok(match org.trim() {
        "" => Ok(Scope::All),
        NO_ORG => Ok(Scope::Platform),
        slug => match organizations::find_by_slug(conn, slug)? {
            Some(org) => Ok(Scope::Org(org.id)),
            None => Err("No organization has this slug."),
        },
    })
}

/// Slugs of the organizations `rows` belong to, in one query.
pub fn org_slugs(
    conn: &mut DbConnection,
    rows: &[AuditRow],
) -> QueryResult<HashMap<String, String>> {
    let mut ids: Vec<&str> = rows.iter().filter_map(|r| r.org_id.as_deref()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(organizations::slugs_of(conn, &ids)?.into_iter().collect())
}

pub fn slug_of<'a>(slugs: &'a HashMap<String, String>, row: &AuditRow) -> &'a str {
    row.org_id
        .as_ref()
        .and_then(|id| slugs.get(id))
        .map(String::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit_catalogue::tests::row;
    use crate::web::paging::Cursor;

    #[test]
    fn filters_are_validated_and_normalized() {
        let params: AuditParams = serde_html_form::from_str(
            "actor=+Alice%40Example.com+&action=member.deactivated&target=Bob%40Example.com&from=2026-11-01&to=2026-11-30",
        )
        .unwrap();
        let q = validate(&params, Ok(None)).unwrap();
        assert_eq!(q.filter.actor_email.as_deref(), Some("alice@example.com"));
        assert_eq!(q.filter.action.as_deref(), Some("member.deactivated"));
        assert_eq!(q.filter.target_label.as_deref(), Some("bob@example.com"));
        assert_eq!(q.filter.target_id, None);
        assert_eq!(q.filter.from.unwrap().to_string(), "2026-11-01 00:00:00");
        assert_eq!(
            q.filter.until.unwrap().to_string(),
            "2026-12-01 00:00:00",
            "the end day is included"
        );
        let id = "0192F0C0-0000-7000-8000-000000000001";
        let q = validate(
            &AuditParams {
                target: id.into(),
                ..Default::default()
            },
            Ok(None),
        )
        .unwrap();
        assert_eq!(q.filter.target_id, Some(id.to_lowercase()));
        let q = validate(
            &AuditParams {
                target: "Acme Corp".into(),
                ..Default::default()
            },
            Ok(None),
        )
        .unwrap();
        assert_eq!(q.filter.target_label.as_deref(), Some("Acme Corp"));
        let q = validate(
            &AuditParams {
                actor: " token:Okta ".into(),
                ..Default::default()
            },
            Ok(None),
        )
        .unwrap();
        assert_eq!(q.filter.actor_email.as_deref(), Some("token:Okta"));
        for refused in ["token:", "token:  ", "token:Okta\u{202E}"] {
            let params = AuditParams {
                actor: refused.into(),
                ..Default::default()
            };
            assert!(validate(&params, Ok(None)).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn bad_filters_get_messages_not_errors() {
        let errors = validate(
            &AuditParams {
                actor: "alice".into(),
                action: "DROP TABLE".into(),
                from: "2026-13-01".into(),
                to: "yesterday".into(),
                cursor: "garbage".into(),
                ..Default::default()
            },
            Err(DamagedLink),
        )
        .unwrap_err();
        for field in ["actor", "action", "from", "to", "cursor"] {
            assert!(errors.get(field).is_some(), "{field}");
        }
        let errors = validate(
            &AuditParams {
                from: "2026-11-02".into(),
                to: "2026-11-01".into(),
                ..Default::default()
            },
            Ok(None),
        )
        .unwrap_err();
        assert_eq!(
            errors.get("to"),
            Some("The end date is before the start date.")
        );
        // An action this version does not know is still a valid filter.
        assert!(
            validate(
                &AuditParams {
                    action: "pool.member_added".into(),
                    ..Default::default()
                },
                Ok(None),
            )
            .is_ok()
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let r = row("auth.logout", None, None, "{}");
        let cursor = Cursor(EventKey::after(&r));
        let encoded = cursor.encode();
        assert_eq!(Cursor::decode(&encoded), Some(cursor));
        for junk in [
            "",
            "_",
            "12",
            "abc_def",
            "1_",
            "1_a'b",
            "99999999999999999999_x",
        ] {
            assert_eq!(Cursor::<EventKey>::decode(junk), None, "{junk}");
        }
    }

    #[test]
    fn query_strings_keep_filters_and_drop_empties() {
        let params: AuditParams =
            serde_html_form::from_str("actor=a%40b.c&action=&cursor=1_x&bogus=1&to=2026-01-01")
                .unwrap();
        assert_eq!(params.filters(), [("actor", "a@b.c"), ("to", "2026-01-01")]);
        assert_eq!(
            serde_html_form::to_string(params.filters()).unwrap(),
            "actor=a%40b.c&to=2026-01-01"
        );
        assert!(AuditParams::default().filters().is_empty());
        // A repeated key keeps its last value.
        let params: AuditParams =
            serde_html_form::from_str("action=auth.logout&action=&utm=1").unwrap();
        assert_eq!(params, AuditParams::default());
    }
}
