//! An organization's two-factor policy (issue 14, item 2): an Admin requires two-factor
//! of the organization's admins, or of all its members, with a grace period in days.
//!
//! - Who is subject: with `admins`, members whose effective permissions (role and group
//!   roles, as `policy::Standing` weighs them) include `org.manage`, the same test that
//!   makes someone an admin everywhere else; with `all`, every active member.
//! - Enrolled: the account has TOTP turned on (`totp_credentials`).
//! - The deadline is the moment the policy took effect plus the grace days. Before it, an
//!   unenrolled subject is [`Demand::Due`] (a banner); from it on, [`Demand::Blocked`]
//!   (the organization's pages show only the enrolment requirement).
//! - The clock restarts only when the policy reaches more people (see [`effective_at`]).
//!
//! [`demand`] is the rule, pure; [`demand_for`] loads what it needs.

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;
use serde::Deserialize;
use serde_json::json;

use super::FieldErrors;
use super::RuleError;
use super::members::Actor;
use super::roles::Permission;
use crate::audit::{self, Event, Origin};
use crate::db::org_two_factor::{self, PolicyRow};
use crate::db::{self, DbConnection, groups, organizations, roles};

pub const MAX_GRACE_DAYS: i64 = 90;
pub const ACTION_CHANGED: &str = "org.two_factor_policy_changed";

/// Whom the organization requires two-factor of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    None,
    Admins,
    All,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::None, Scope::Admins, Scope::All];

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "none" => Some(Scope::None),
            "admins" => Some(Scope::Admins),
            "all" => Some(Scope::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::None => "none",
            Scope::Admins => "admins",
            Scope::All => "all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Scope::None => "Not required",
            Scope::Admins => "Required for admins",
            Scope::All => "Required for all members",
        }
    }

    /// Whether a member is held to it.
    pub fn covers(self, is_admin: bool) -> bool {
        match self {
            Scope::None => false,
            Scope::Admins => is_admin,
            Scope::All => true,
        }
    }
}

/// An organization's policy as the rules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub scope: Scope,
    pub grace_days: i64,
    /// When the current clock started.
    pub effective_at: NaiveDateTime,
}

impl Policy {
    pub fn deadline(&self) -> NaiveDateTime {
        self.effective_at + Duration::days(self.grace_days)
    }

    fn from_row(row: &PolicyRow) -> Policy {
        Policy {
            // A value no version wrote reads as the strictest scope rather than none.
            scope: Scope::parse(&row.required).unwrap_or(Scope::All),
            grace_days: row.grace_days,
            effective_at: row.effective_at,
        }
    }
}

/// What the policy asks of one member, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demand {
    /// Nothing: not subject, or already enrolled.
    Free,
    /// Subject and not enrolled, before the deadline: a banner.
    Due { deadline: NaiveDateTime },
    /// Subject and not enrolled, from the deadline on: nothing of the organization but
    /// the requirement.
    Blocked { deadline: NaiveDateTime },
}

/// The rule: whether `now` the member is free, reminded, or held to enrolment.
pub fn demand(
    policy: Option<&Policy>,
    is_admin: bool,
    enrolled: bool,
    now: NaiveDateTime,
) -> Demand {
    let Some(policy) = policy.filter(|p| p.scope.covers(is_admin)) else {
        return Demand::Free;
    };
    if enrolled {
        return Demand::Free;
    }
    let deadline = policy.deadline();
    if now >= deadline {
        Demand::Blocked { deadline }
    } else {
        Demand::Due { deadline }
    }
}

/// When a new policy's clock starts. It restarts (at `now`) when the new scope reaches
/// people the old one did not (none → admins, admins → all): they had no warning and get
/// the whole grace period. Otherwise it keeps running, so changing the grace days moves
/// the deadline of the people already warned by exactly that difference, and re-saving
/// the form cannot be used, by accident or on purpose, to push a deadline off forever.
pub fn effective_at(old: Option<&Policy>, scope: Scope, now: NaiveDateTime) -> NaiveDateTime {
    match old {
        Some(old) if old.scope != Scope::None && scope <= old.scope => old.effective_at,
        _ => now,
    }
}

/// The settings form: `require` (`none`|`admins`|`all`) and `grace_days` (0–90).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    pub require: String,
    #[serde(default)]
    pub grace_days: String,
}

/// The form's scope and grace days, or what to correct next to each field.
pub fn read_form(form: &PolicyForm) -> Result<(Scope, i64), FieldErrors> {
    let mut errors = FieldErrors::default();
    let scope = Scope::parse(form.require.trim());
    if scope.is_none() {
        errors.add("require", "Choose who must use two-factor authentication.");
    }
    let grace = form.grace_days.trim();
    let days = match grace.parse::<i64>() {
        Ok(days) if (0..=MAX_GRACE_DAYS).contains(&days) => Some(days),
        _ if grace.is_empty() => {
            errors.add("grace_days", "Enter the grace period in days (0 to 90).");
            None
        }
        _ => {
            let message =
                format!("The grace period is a whole number of days from 0 to {MAX_GRACE_DAYS}.");
            errors.add("grace_days", message);
            None
        }
    };
    match (scope, days) {
        (Some(scope), Some(days)) if errors.is_empty() => Ok((scope, days)),
        _ => Err(errors),
    }
}

fn load(conn: &mut DbConnection, org_id: &str) -> QueryResult<Option<Policy>> {
    Ok(org_two_factor::find(conn, org_id)?
        .as_ref()
        .map(Policy::from_row))
}

/// What the organization's policy (`stored`, as the caller already read it with the
/// membership) asks of this member now. `is_admin` is whether their effective
/// permissions include `org.manage`. Reads the member's enrolment only when the policy
/// covers them.
pub fn demand_for(
    conn: &mut DbConnection,
    stored: Option<&PolicyRow>,
    user_id: &str,
    is_admin: bool,
    now: NaiveDateTime,
) -> QueryResult<Demand> {
    let Some(policy) = stored
        .map(Policy::from_row)
        .filter(|p| p.scope.covers(is_admin))
    else {
        return Ok(Demand::Free);
    };
    let enrolled = super::two_factor::is_enrolled(conn, user_id)?;
    Ok(demand(Some(&policy), is_admin, enrolled, now))
}

/// The Settings tab's two-factor section.
#[derive(Debug, Clone)]
pub struct SettingsView {
    pub scope: Scope,
    pub grace_days: i64,
    /// The deadline, to the minute (UTC), when something is required.
    pub deadline: Option<String>,
    /// Whether the deadline has passed.
    pub past_deadline: bool,
    /// Subject members not yet enrolled.
    pub unenrolled: i64,
}

/// The organization's roles and groups that make someone an admin (grant `org.manage`).
fn admin_roles_and_groups(
    conn: &mut DbConnection,
    org_id: &str,
) -> QueryResult<(Vec<String>, Vec<String>)> {
    let admin_roles: Vec<String> = roles::list(conn, org_id)?
        .into_iter()
        .filter(|r| r.permission_set().contains(Permission::OrgManage))
        .map(|r| r.id)
        .collect();
    let admin_groups = groups::granting(conn, org_id, &admin_roles)?;
    Ok((admin_roles, admin_groups))
}

/// A fresh form suggests two weeks: long enough to enrol without hurry.
const SUGGESTED_GRACE_DAYS: i64 = 14;

pub fn load_settings(
    conn: &mut DbConnection,
    org_id: &str,
    now: NaiveDateTime,
) -> QueryResult<SettingsView> {
    let stored = load(conn, org_id)?;
    let unenrolled = match stored.map(|p| p.scope) {
        None | Some(Scope::None) => 0,
        Some(Scope::Admins) => {
            let (roles, groups) = admin_roles_and_groups(conn, org_id)?;
            org_two_factor::count_unenrolled(conn, org_id, Some((&roles, &groups)))?
        }
        Some(Scope::All) => org_two_factor::count_unenrolled(conn, org_id, None)?,
    };
    let required = stored.filter(|p| p.scope != Scope::None);
    Ok(SettingsView {
        scope: stored.map_or(Scope::None, |p| p.scope),
        grace_days: stored.map_or(SUGGESTED_GRACE_DAYS, |p| p.grace_days),
        deadline: required.map(|p| super::timefmt::exact(p.deadline())),
        past_deadline: required.is_some_and(|p| now >= p.deadline()),
        unenrolled,
    })
}

fn described(policy: Option<&Policy>) -> serde_json::Value {
    match policy {
        Some(p) if p.scope != Scope::None => json!({
            "require": p.scope.as_str(),
            "grace_days": p.grace_days,
            "deadline": super::timefmt::iso_time(p.deadline()),
        }),
        _ => json!({ "require": "none" }),
    }
}

fn summary(policy: &Policy) -> String {
    match policy.scope {
        Scope::None => "not required".into(),
        scope => format!(
            "{} by {}",
            scope.label().to_lowercase(),
            super::timefmt::exact(policy.deadline())
        ),
    }
}

/// Whether saving changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Changed,
    Unchanged,
}

/// Sets the organization's policy from the form, with its audit event (old and new
/// policy in the details), in one transaction. The caller has checked `org.manage`.
pub fn set(
    conn: &mut DbConnection,
    actor: &Actor,
    form: &PolicyForm,
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<Saved, RuleError> {
    let (scope, grace_days) = read_form(form).map_err(RuleError::Invalid)?;
    db::write_tx(conn, |conn| {
        // Serializes two admins saving at once, so both cannot insert the first row.
        organizations::lock(conn, &actor.org_id)?;
        super::members::still_holds(conn, actor)?;
        let org = organizations::find(conn, &actor.org_id)?.ok_or(RuleError::NotFound)?;
        let old = load(conn, &org.id)?;
        let new = Policy {
            scope,
            grace_days,
            effective_at: effective_at(old.as_ref(), scope, now),
        };
        let unchanged = old.is_some_and(|o| o.scope == scope && o.grace_days == grace_days);
        if unchanged || (old.is_none() && scope == Scope::None) {
            return Ok(Saved::Unchanged);
        }
        org_two_factor::save(
            conn,
            &PolicyRow {
                org_id: org.id.clone(),
                required: scope.as_str().into(),
                grace_days,
                effective_at: new.effective_at,
                updated_at: now,
            },
        )?;
        let event = Event::new(ACTION_CHANGED, origin)
            .org(&org.id)
            .actor(&actor.user_id, &actor.email)
            .target("organization", &org.id, &org.name)
            .details(json!({
                "old": described(old.as_ref()),
                "new": described(Some(&new)),
                "summary": summary(&new),
            }));
        audit::record(conn, &event)?;
        Ok(Saved::Changed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, day)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
    }

    fn policy(scope: Scope, grace_days: i64) -> Policy {
        Policy {
            scope,
            grace_days,
            effective_at: at(1),
        }
    }

    #[test]
    fn admins_scope_holds_admins_only_and_all_holds_everyone() {
        let admins = policy(Scope::Admins, 0);
        assert_eq!(demand(Some(&admins), false, false, at(20)), Demand::Free);
        assert!(matches!(
            demand(Some(&admins), true, false, at(20)),
            Demand::Blocked { .. }
        ));
        let all = policy(Scope::All, 0);
        assert!(matches!(
            demand(Some(&all), false, false, at(20)),
            Demand::Blocked { .. }
        ));
        assert_eq!(
            demand(Some(&policy(Scope::None, 0)), true, false, at(20)),
            Demand::Free
        );
        assert_eq!(demand(None, true, false, at(20)), Demand::Free);
    }

    #[test]
    fn the_grace_period_reminds_then_the_deadline_blocks_until_enrolled() {
        let p = policy(Scope::All, 14);
        let deadline = at(15);
        assert_eq!(
            demand(Some(&p), false, false, at(14)),
            Demand::Due { deadline }
        );
        assert_eq!(
            demand(Some(&p), false, false, at(15)),
            Demand::Blocked { deadline }
        );
        assert_eq!(demand(Some(&p), false, true, at(15)), Demand::Free);
        assert_eq!(demand(Some(&p), false, true, at(14)), Demand::Free);
    }

    #[test]
    fn the_clock_restarts_only_when_more_people_are_held() {
        let now = at(10);
        let admins = policy(Scope::Admins, 14);
        assert_eq!(effective_at(None, Scope::All, now), now);
        assert_eq!(effective_at(Some(&admins), Scope::All, now), now);
        assert_eq!(effective_at(Some(&admins), Scope::Admins, now), at(1));
        assert_eq!(
            effective_at(Some(&policy(Scope::All, 3)), Scope::Admins, now),
            at(1)
        );
        assert_eq!(
            effective_at(Some(&policy(Scope::None, 3)), Scope::Admins, now),
            now
        );
    }

    #[test]
    fn the_form_needs_a_scope_and_whole_days_from_0_to_90() {
        let form = |require: &str, grace: &str| PolicyForm {
            require: require.into(),
            grace_days: grace.into(),
        };
        assert_eq!(read_form(&form("all", "0")), Ok((Scope::All, 0)));
        assert_eq!(read_form(&form("admins", " 90 ")), Ok((Scope::Admins, 90)));
        for grace in ["91", "-1", "1.5", "ten", ""] {
            let errors = read_form(&form("all", grace)).unwrap_err();
            assert!(errors.get("grace_days").is_some(), "{grace:?}");
        }
        let errors = read_form(&form("everyone", "3")).unwrap_err();
        assert!(errors.get("require").is_some());
        assert!(errors.get("grace_days").is_none());
    }
}
