//! How audit events read to a person: the one table of known actions (name, the
//! filter's label, the sentence an event reads as) and the sentence building.

use serde_json::Value;

use crate::db::audit_events::AuditRow;

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
        "account.wrong_password",
        "Wrong current password",
        "{actor} gave a wrong current password {details.purpose}",
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
    def(
        "org.two_factor_policy_changed",
        "Two-factor policy changed",
        "{actor} changed the two-factor policy of {target}: {details.summary}",
    ),
    def(
        "api_token.created",
        "API token created",
        "{actor} created the API token {target} (scopes {details.scopes})",
    ),
    def(
        "api_token.revoked",
        "API token revoked",
        "{actor} revoked the API token {target}",
    ),
    def(
        "member.provisioned",
        "Member provisioned",
        "{actor} provisioned {target} as {details.role}",
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
        "member.access_expired",
        "Access expired",
        "{target}'s access ended on its set date ({details.access_until}) and the membership was deactivated",
    ),
    def(
        "member.access_kept",
        "Access kept",
        "{target}'s access was to end on {details.access_until}, but they are the organization's last active admin: it stays, without an end",
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
        "invitation.refused",
        "Invitation refused at acceptance",
        "The invitation to {target} was refused when accepted: its inviter may no longer grant what it offers",
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
        "pool.updated",
        "Pool edited",
        "{actor} edited the pool {target} (named {details.old_name} before)",
    ),
    def(
        "pool.moved",
        "Pool moved",
        "{actor} moved the pool {target} to another place in the tree",
    ),
    def(
        "pool.deleted",
        "Pool deleted",
        "{actor} deleted the pool {target} and its sub-pools",
    ),
    def(
        "pool.member_added",
        "Added to a pool",
        "{actor} added {target} to the pool {details.pool} as {details.role}",
    ),
    def(
        "pool.member_removed",
        "Removed from a pool",
        "{actor} removed {target} from the pool {details.pool}",
    ),
    def(
        "group.updated",
        "Group edited",
        "{actor} edited the group {target}",
    ),
    def(
        "group.member_added",
        "Added to a group",
        "{actor} added {target} to the group {details.group}",
    ),
    def(
        "group.member_removed",
        "Removed from a group",
        "{actor} removed {target} from the group {details.group}",
    ),
    def(
        "role.created",
        "Role created",
        "{actor} created the role {target}",
    ),
    def(
        "role.updated",
        "Role edited",
        "{actor} edited the role {target}",
    ),
    def(
        "role.deleted",
        "Role deleted",
        "{actor} deleted the role {target}",
    ),
    def(
        "invitation.expired_link_used",
        "Expired invitation link opened",
        "Someone opened the expired invitation link of {target}",
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
    def(
        "user.two_factor_reset",
        "Two-factor reset by an admin",
        "{actor} reset the two-factor authentication of {target}",
    ),
    def(
        "auth.password_reset_capped",
        "Password reset capped",
        "Password reset emails for {target} stopped for the day after {details.emails_a_day}",
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

/// A stable dotted name such as `member.deactivated`: known or not, the filter accepts
/// it, so events of an action newer than this table can still be found.
pub fn is_action_name(s: &str) -> bool {
    s.len() <= 64
        && s.contains('.')
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
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

#[cfg(test)]
pub(crate) mod tests {
    use chrono::NaiveDate;

    use super::*;

    /// An event as the audit trail stores it, for the audit modules' unit tests.
    pub(crate) fn row(
        action: &str,
        actor: Option<&str>,
        target: Option<&str>,
        details: &str,
    ) -> AuditRow {
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

    /// No action reads as its raw key once the event carries what its sentence names.
    #[test]
    fn every_action_reads_as_a_sentence() {
        for def in ACTIONS {
            let mut details = serde_json::Map::new();
            for part in def.sentence.split('{').skip(1) {
                let key = part.split('}').next().unwrap();
                if let Some(name) = key.strip_prefix("details.") {
                    details.insert(name.into(), Value::String("x".into()));
                }
            }
            let details = Value::Object(details).to_string();
            let r = row(
                def.name,
                Some("a@example.com"),
                Some("b@example.com"),
                &details,
            );
            let text = sentence(&r);
            assert!(!text.contains(def.name), "{} reads as {text}", def.name);
            assert!(!def.label.is_empty() && !text.contains('{'), "{text}");
        }
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
