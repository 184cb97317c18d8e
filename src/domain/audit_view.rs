//! How audit events read to a person, the audit pages' filters and cursor, and the CSV
//! export's cells. Free of HTTP so it is unit-tested alone.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::FieldErrors;
use super::email::Email;
use diesel::QueryResult;

use crate::db::audit_events::{self, AuditRow, Cursor, Filter, Scope};
use crate::db::{DbConnection, organizations};

/// Rows per page of the audit pages.
pub const PAGE_SIZE: i64 = 50;
/// Rows fetched per query while streaming the CSV export.
pub const EXPORT_BATCH: i64 = 1000;

/// One known action: its stable dotted name, how the filter lists it, and the sentence
/// an event of it reads as. `{actor}` and `{target}` are the actor's email and the
/// target's label; `{details.KEY}` is a string or number from the event's details.
pub struct ActionDef {
    pub name: &'static str,
    pub label: &'static str,
    sentence: &'static str,
}

const fn def(name: &'static str, label: &'static str, sentence: &'static str) -> ActionDef {
    ActionDef {
        name,
        label,
        sentence,
    }
}

/// The one table of actions. A new action reads through the fallback until it is added
/// here; add it here when you add the code that records it.
pub const ACTIONS: &[ActionDef] = &[
    def("auth.login_succeeded", "Signed in", "{actor} signed in"),
    def(
        "auth.login_failed",
        "Sign-in failed",
        "Failed sign-in attempt as {target}",
    ),
    def(
        "auth.login_throttled",
        "Sign-in throttled",
        "Sign-in as {target} refused after too many failed attempts",
    ),
    def("auth.logout", "Signed out", "{actor} signed out"),
    def(
        "auth.2fa_enabled",
        "Two-factor turned on",
        "{actor} turned on two-factor authentication",
    ),
    def(
        "auth.2fa_disabled",
        "Two-factor turned off",
        "{actor} turned off two-factor authentication",
    ),
    def(
        "auth.2fa_recovery_codes_regenerated",
        "Recovery codes regenerated",
        "{actor} made new two-factor recovery codes; the old ones no longer work",
    ),
    def(
        "auth.2fa_failed",
        "Two-factor code refused",
        "A two-factor code for {target} was refused ({details.reason})",
    ),
    def(
        "auth.2fa_throttled",
        "Two-factor throttled",
        "Two-factor codes for {target} refused after too many wrong ones",
    ),
    def(
        "auth.recovery_code_used",
        "Recovery code used",
        "{actor} used a two-factor recovery code ({details.recovery_codes_left} left)",
    ),
    def(
        "access.denied",
        "Access denied",
        "{actor} was refused {details.method} {details.route}",
    ),
    def(
        "setup.completed",
        "First-time setup",
        "{actor} completed the first-time setup as administrator",
    ),
    def(
        "account.setup_completed",
        "Account set up",
        "{actor} set up their account",
    ),
    def(
        "account.password_changed",
        "Password changed",
        "{actor} changed their password",
    ),
    def(
        "auth.password_reset_requested",
        "Password reset requested",
        "A password reset link was emailed to {target}",
    ),
    def(
        "auth.password_reset",
        "Password reset",
        "{actor} reset their password with an emailed link",
    ),
    def(
        "account.session_ended",
        "Session ended",
        "{actor} ended their session in {details.browser} on {details.os} from {details.session_ip}",
    ),
    def(
        "account.other_sessions_ended",
        "Signed out everywhere else",
        "{actor} signed out of every other browser ({details.sessions_ended} sessions ended)",
    ),
    def(
        "account.signin_alerts_changed",
        "New sign-in emails changed",
        "{actor} turned new sign-in emails {details.emails}",
    ),
    def(
        "user.created",
        "Account created",
        "{actor} created the account {target}",
    ),
    def(
        "org.created",
        "Organization created",
        "{actor} created the organization {target}",
    ),
    def("member.updated", "Member edited", "{actor} edited {target}"),
    def(
        "member.role_changed",
        "Role changed",
        "{actor} changed the role of {target}",
    ),
    def(
        "member.deactivated",
        "Member deactivated",
        "{actor} deactivated {target}",
    ),
    def(
        "member.activated",
        "Member re-activated",
        "{actor} re-activated {target}",
    ),
    def(
        "member.made_admin",
        "Member made admin",
        "{actor} made {target} an admin",
    ),
    def(
        "member.removed",
        "Member removed",
        "{actor} removed {target} from the organization",
    ),
    def(
        "invitation.created",
        "Invitation sent",
        "{actor} invited {target}",
    ),
    def(
        "invitation.resent",
        "Invitation resent",
        "{actor} resent the invitation to {target}",
    ),
    def(
        "invitation.cancelled",
        "Invitation cancelled",
        "{actor} cancelled the invitation to {target}",
    ),
    def(
        "invitation.accepted",
        "Invitation accepted",
        "{actor} accepted an invitation and joined",
    ),
    def(
        "group.created",
        "Group created",
        "{actor} created the group {target}",
    ),
    def(
        "group.deleted",
        "Group deleted",
        "{actor} deleted the group {target}",
    ),
    def(
        "pool.created",
        "Pool created",
        "{actor} created the pool {target}",
    ),
    def(
        "admin.user_created",
        "Account created by a platform admin",
        "{actor} created the account {target}",
    ),
    def(
        "admin.user_disabled",
        "Account disabled",
        "{actor} disabled the account {target} everywhere",
    ),
    def(
        "admin.user_enabled",
        "Account enabled",
        "{actor} enabled the account {target} again",
    ),
    def(
        "admin.membership_added",
        "Added by a platform admin",
        "{actor} added {target} to the organization",
    ),
    def(
        "admin.membership_activated",
        "Re-activated by a platform admin",
        "{actor} re-activated the membership of {target}",
    ),
    def(
        "admin.membership_role_changed",
        "Role changed by a platform admin",
        "{actor} changed the role of {target}",
    ),
    def(
        "admin.sessions_ended",
        "Sessions ended by a platform admin",
        "{actor} ended every session of {target}",
    ),
    // Issue 14 (admin two-factor reset, throttled reset requests).
    def(
        "user.two_factor_reset",
        "Two-factor reset by an admin",
        "{actor} reset the two-factor authentication of {target}",
    ),
    def(
        "auth.password_reset_throttled",
        "Password reset throttled",
        "Password reset requests for {target} refused after too many",
    ),
    def(
        "audit.pruned",
        "Audit trail pruned",
        "Retention deleted {details.deleted} audit events older than {details.cutoff}",
    ),
];

pub fn find_action(name: &str) -> Option<&'static ActionDef> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// The filter's label of an action, its name when unknown.
pub fn action_label(name: &str) -> &str {
    find_action(name).map(|a| a.label).unwrap_or(name)
}

/// Who did it, as the sentence names them.
pub fn actor_text(row: &AuditRow) -> String {
    match row.actor_email.as_deref().filter(|e| !e.is_empty()) {
        Some(email) => email.to_string(),
        None if detail(&parse_details(&row.details), "via").as_deref() == Some("cli") => {
            "The command line".into()
        }
        None => "The system".into(),
    }
}

/// What it was done to: the label when there is one, else the id.
pub fn target_text(row: &AuditRow) -> Option<String> {
    row.target_label
        .as_deref()
        .filter(|l| !l.is_empty())
        .or(row.target_id.as_deref().filter(|i| !i.is_empty()))
        .map(str::to_string)
}

fn parse_details(details: &str) -> Value {
    serde_json::from_str(details).unwrap_or(Value::Null)
}

fn detail(details: &Value, key: &str) -> Option<String> {
    match details.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The event as a sentence: "alice@example.com deactivated bob@example.com". Unknown
/// actions, and known ones missing what their sentence needs, read through a fallback
/// that still names actor, action and target.
pub fn sentence(row: &AuditRow) -> String {
    let details = parse_details(&row.details);
    let actor = actor_text(row);
    let target = target_text(row);
    if let Some(def) = find_action(&row.action)
        && let Some(text) = fill(def.sentence, &actor, target.as_deref(), &details)
    {
        return text;
    }
    match target {
        Some(target) => format!("{actor} did “{}” on {target}", row.action),
        None => format!("{actor} did “{}”", row.action),
    }
}

fn fill(template: &str, actor: &str, target: Option<&str>, details: &Value) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let key = &rest[start + 1..end];
        match key {
            "actor" => out.push_str(actor),
            "target" => out.push_str(target?),
            _ => out.push_str(&detail(details, key.strip_prefix("details.")?)?),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Details as indented JSON for the expandable panel; whatever is not JSON as stored.
pub fn details_pretty(details: &str) -> Option<String> {
    match serde_json::from_str::<Value>(details) {
        Ok(Value::Object(map)) if map.is_empty() => None,
        Ok(Value::Null) => None,
        Ok(value) => serde_json::to_string_pretty(&value).ok(),
        Err(_) if details.trim().is_empty() => None,
        Err(_) => Some(details.to_string()),
    }
}

/// "2026-11-23 14:05:09 UTC"
pub fn display_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// "2026-11-23T14:05:09.123456Z", for `<time datetime>` and the export.
pub fn iso_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

// ---- filters ----------------------------------------------------------------------

/// The audit pages' query string as typed, kept to fill the form back in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditParams {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub from: String,
    pub to: String,
    pub cursor: String,
    /// Platform audit page only: an organization slug, `-` for events outside any.
    pub org: String,
}

/// `org` value meaning "events outside any organization".
pub const NO_ORG: &str = "-";
const MAX_INPUT: usize = 254;

impl AuditParams {
    /// Reads a query string leniently: unknown keys are ignored and a repeated key
    /// keeps its last value, so no query string is an error by itself.
    pub fn from_query(query: &str) -> Self {
        let mut params = AuditParams::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "actor" => &mut params.actor,
                "action" => &mut params.action,
                "target" => &mut params.target,
                "from" => &mut params.from,
                "to" => &mut params.to,
                "cursor" => &mut params.cursor,
                "org" => &mut params.org,
                _ => continue,
            };
            *slot = value.chars().take(MAX_INPUT * 2).collect();
        }
        params
    }

    /// The filters (not the cursor) as a query string, for links that keep them: the
    /// next page, the CSV export.
    pub fn filter_query(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("org", &self.org),
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            let value = value.trim();
            if !value.is_empty() {
                out.append_pair(key, value);
            }
        }
        out.finish()
    }

    /// A link to the page after `cursor`, keeping the filters.
    pub fn next_query(&self, cursor: &str) -> String {
        let filters = self.filter_query();
        let mut out = url::form_urlencoded::Serializer::new(filters);
        out.append_pair("cursor", cursor);
        out.finish()
    }

    pub fn is_filtered(&self) -> bool {
        !self.filter_query().is_empty()
    }
}

/// Validated filters and position, ready for the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub filter: Filter,
    pub cursor: Option<Cursor>,
}

/// Checks every filter and names each bad one; the page shows the messages next to
/// the fields instead of failing.
pub fn validate(params: &AuditParams) -> Result<AuditQuery, FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut filter = Filter::default();

    let actor = params.actor.trim();
    if !actor.is_empty() {
        match Email::parse(actor) {
            Ok(email) => filter.actor_email = Some(email.as_str().to_string()),
            Err(_) => errors.add(
                "actor",
                "Enter the full email address of the person who acted.",
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

    let cursor = params.cursor.trim();
    let cursor = if cursor.is_empty() {
        None
    } else {
        errors.check(
            "cursor",
            decode_cursor(cursor).ok_or(
                "This page link is damaged or out of date. The list starts again from the newest events.",
            ),
        )
    };

    if errors.is_empty() {
        Ok(AuditQuery { filter, cursor })
    } else {
        Err(errors)
    }
}

/// A stable dotted name such as `member.deactivated`: known or not, the filter accepts
/// it, so events of an action newer than this table can still be found.
fn is_action_name(s: &str) -> bool {
    s.len() <= 64
        && s.contains('.')
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
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

/// Where the next page starts: microseconds since the epoch and the last row's id.
/// Readable on purpose; it reveals nothing the page did not show.
pub fn encode_cursor(cursor: &Cursor) -> String {
    format!(
        "{}_{}",
        cursor.created_at.and_utc().timestamp_micros(),
        cursor.id
    )
}

pub fn decode_cursor(raw: &str) -> Option<Cursor> {
    let (micros, id) = raw.split_once('_')?;
    let micros: i64 = micros.parse().ok()?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    let id_ok =
        (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    id_ok.then(|| Cursor {
        created_at,
        id: id.to_string(),
    })
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

/// A page of events and, when there are more, the cursor of the next one.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub events: Vec<EventView>,
    pub next_cursor: Option<String>,
}

/// A page of `scope`'s events, newest first. One row more than a page is fetched to
/// know whether another page follows, so no count is ever needed.
pub fn load_page(
    conn: &mut DbConnection,
    scope: &Scope,
    query: &AuditQuery,
) -> QueryResult<AuditPage> {
    let mut rows = audit_events::page(
        conn,
        scope,
        &query.filter,
        query.cursor.as_ref(),
        PAGE_SIZE + 1,
    )?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let next_cursor = more
        .then(|| rows.last().map(|r| encode_cursor(&Cursor::after(r))))
        .flatten();
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

/// The organization audit page's query, optionally narrowed to events about one
/// target: the per-member Activity tab calls this with the member's user id.
pub fn org_page(
    conn: &mut DbConnection,
    org_id: &str,
    query: &AuditQuery,
    target_id: Option<&str>,
) -> QueryResult<AuditPage> {
    let mut query = query.clone();
    if let Some(target) = target_id {
        query.filter.target_id = Some(target.to_string());
        query.filter.target_label = None;
    }
    load_page(conn, &Scope::Org(org_id.to_string()), &query)
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

// ---- CSV export -------------------------------------------------------------------

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
pub fn csv_safe(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// One export row, every cell guarded. `org_slug` is the organization's slug, empty
/// for events outside any.
pub fn csv_record(row: &AuditRow, org_slug: &str) -> [String; 13] {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str, actor: Option<&str>, target: Option<&str>, details: &str) -> AuditRow {
        AuditRow {
            id: "0192f0c0-0000-7000-8000-000000000001".into(),
            org_id: None,
            actor_id: actor.map(|_| "u1".into()),
            actor_email: actor.map(str::to_string),
            action: action.into(),
            target_type: target.map(|_| "user".into()),
            target_id: target.map(|_| "u2".into()),
            target_label: target.map(str::to_string),
            details: details.into(),
            ip: Some("127.0.0.1".into()),
            request_id: None,
            created_at: NaiveDate::from_ymd_opt(2026, 11, 23)
                .unwrap()
                .and_hms_micro_opt(14, 5, 9, 123456)
                .unwrap(),
        }
    }

    #[test]
    fn known_actions_read_as_sentences() {
        let r = row(
            "member.deactivated",
            Some("alice@example.com"),
            Some("bob@example.com"),
            "{}",
        );
        assert_eq!(
            sentence(&r),
            "alice@example.com deactivated bob@example.com"
        );
        let r = row("auth.login_failed", None, Some("bob@example.com"), "{}");
        assert_eq!(sentence(&r), "Failed sign-in attempt as bob@example.com");
        let r = row(
            "access.denied",
            Some("m@example.com"),
            None,
            r#"{"method":"GET","route":"/orgs/{org}/audit"}"#,
        );
        assert_eq!(
            sentence(&r),
            "m@example.com was refused GET /orgs/{org}/audit"
        );
        let r = row(
            "audit.pruned",
            None,
            None,
            r#"{"deleted":12,"cutoff":"2026-01-01T00:00:00Z"}"#,
        );
        assert_eq!(
            sentence(&r),
            "Retention deleted 12 audit events older than 2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn missing_parts_fall_back_to_a_plain_sentence() {
        let r = row(
            "member.frobbed",
            Some("a@example.com"),
            Some("b@example.com"),
            "{}",
        );
        assert_eq!(
            sentence(&r),
            "a@example.com did “member.frobbed” on b@example.com"
        );
        // Known action, but the target its sentence needs is absent.
        let r = row("member.deactivated", Some("a@example.com"), None, "{}");
        assert_eq!(sentence(&r), "a@example.com did “member.deactivated”");
        // A details placeholder that is missing.
        let r = row("audit.pruned", None, None, "{}");
        assert_eq!(sentence(&r), "The system did “audit.pruned”");
        let r = row(
            "user.created",
            None,
            Some("x@example.com"),
            r#"{"via":"cli"}"#,
        );
        assert_eq!(
            sentence(&r),
            "The command line created the account x@example.com"
        );
    }

    #[test]
    fn every_action_name_is_unique_and_well_formed() {
        for (i, a) in ACTIONS.iter().enumerate() {
            assert!(is_action_name(a.name), "{}", a.name);
            assert!(
                ACTIONS[i + 1..].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
    }

    #[test]
    fn filters_are_validated_and_normalized() {
        let params = AuditParams::from_query(
            "actor=+Alice%40Example.com+&action=member.deactivated&target=Bob%40Example.com&from=2026-11-01&to=2026-11-30",
        );
        let q = validate(&params).unwrap();
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
        let q = validate(&AuditParams {
            target: id.into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.filter.target_id, Some(id.to_lowercase()));
        let q = validate(&AuditParams {
            target: "Acme Corp".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.filter.target_label.as_deref(), Some("Acme Corp"));
    }

    #[test]
    fn bad_filters_get_messages_not_errors() {
        let errors = validate(&AuditParams {
            actor: "alice".into(),
            action: "DROP TABLE".into(),
            from: "2026-13-01".into(),
            to: "yesterday".into(),
            cursor: "garbage".into(),
            ..Default::default()
        })
        .unwrap_err();
        for field in ["actor", "action", "from", "to", "cursor"] {
            assert!(errors.get(field).is_some(), "{field}");
        }
        let errors = validate(&AuditParams {
            from: "2026-11-02".into(),
            to: "2026-11-01".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            errors.get("to"),
            Some("The end date is before the start date.")
        );
        // An action this version does not know is still a valid filter.
        assert!(
            validate(&AuditParams {
                action: "pool.member_added".into(),
                ..Default::default()
            })
            .is_ok()
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let r = row("auth.logout", None, None, "{}");
        let cursor = Cursor::after(&r);
        let encoded = encode_cursor(&cursor);
        assert_eq!(decode_cursor(&encoded), Some(cursor));
        for junk in [
            "",
            "_",
            "12",
            "abc_def",
            "1_",
            "1_a'b",
            "99999999999999999999_x",
        ] {
            assert_eq!(decode_cursor(junk), None, "{junk}");
        }
    }

    #[test]
    fn query_strings_keep_filters_and_drop_empties() {
        let params =
            AuditParams::from_query("actor=a%40b.c&action=&cursor=1_x&bogus=1&to=2026-01-01");
        assert_eq!(params.filter_query(), "actor=a%40b.c&to=2026-01-01");
        assert_eq!(
            params.next_query("5_y"),
            "actor=a%40b.c&to=2026-01-01&cursor=5_y"
        );
        assert!(!AuditParams::default().is_filtered());
    }

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

    #[test]
    fn details_are_pretty_or_absent() {
        assert_eq!(details_pretty("{}"), None);
        assert_eq!(details_pretty(""), None);
        assert_eq!(
            details_pretty(r#"{"role":"Admin"}"#).unwrap(),
            "{\n  \"role\": \"Admin\"\n}"
        );
        assert_eq!(details_pretty("not json").unwrap(), "not json");
    }
}
