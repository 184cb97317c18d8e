//! An administrator takes a member's second factor away, for someone who lost their
//! authenticator and their recovery codes: the secret, the recovery codes and the record
//! of used time steps are deleted, the account signs in with its password alone again,
//! the person is told by email, and the audit trail says who did it.
//!
//! Who may do it is `policy::may_reset_two_factor`: an organization's admin only for an
//! account that belongs to that organization alone, a platform admin for any account,
//! nobody for their own. The rule is checked again inside the transaction that resets.

use askama::Template;
use chrono::NaiveDateTime;
use serde_json::json;

use super::RuleError;
use super::members::Actor;
use super::platform::PlatformActor;
use super::policy::{self, TwoFactorReset, TwoFactorResetter};
use super::roles::Permission;
use super::two_factor::{AUTH_METHOD_PASSWORD, is_enrolled};
use crate::audit::{self, Event, Origin};
use crate::db::users::{self, User};
use crate::db::{self, DbConnection, memberships, organizations, two_factor};
use crate::mail::outbox;
use crate::mail::templates::{Rendered, header_safe};

pub const ACTION: &str = "user.two_factor_reset";

/// Who resets, with what the email and the audit event say about them.
pub enum By<'a> {
    OrgAdmin(&'a Actor),
    PlatformAdmin(&'a PlatformActor),
}

impl By<'_> {
    fn user_id(&self) -> &str {
        match self {
            By::OrgAdmin(a) => &a.user_id,
            By::PlatformAdmin(a) => &a.user_id,
        }
    }

    fn email(&self) -> &str {
        match self {
            By::OrgAdmin(a) => &a.email,
            By::PlatformAdmin(a) => &a.email,
        }
    }

    fn resetter(&self) -> TwoFactorResetter {
        match self {
            By::OrgAdmin(a) => TwoFactorResetter::Member {
                is_admin: a.standing().may(Permission::OrgManage),
            },
            By::PlatformAdmin(_) => TwoFactorResetter::PlatformAdmin,
        }
    }
}

/// What a reset would apply to, for the confirmation page and the reset itself.
pub struct Target {
    pub user: User,
    /// False: the account has no second factor, and there is nothing to reset.
    pub enrolled: bool,
}

/// The account `user_id`, if `by` may reset its two-factor authentication; another
/// organization's member is not found by an organization's admin.
pub fn resettable(conn: &mut DbConnection, by: &By, user_id: &str) -> Result<Target, RuleError> {
    let user = match by {
        By::OrgAdmin(actor) => {
            // Asked before the lookup, so a Manager learns nothing of who exists.
            if !actor.standing().may(Permission::OrgManage) {
                return Err(refusal(TwoFactorReset::NotAdmin, ""));
            }
            let target =
                memberships::find(conn, &actor.org_id, user_id)?.ok_or(RuleError::NotFound)?;
            // As for every change to a member: not above one's own rank.
            super::members::check_target_rank(conn, actor, &target)?;
            target.user
        }
        By::PlatformAdmin(_) => users::find(conn, user_id)?.ok_or(RuleError::NotFound)?,
    };
    let owned = super::members::org_owns_account(conn, &user)?;
    match policy::may_reset_two_factor(by.resetter(), user.id == by.user_id(), owned) {
        TwoFactorReset::Allowed => Ok(Target {
            enrolled: is_enrolled(conn, &user.id)?,
            user,
        }),
        verdict => Err(refusal(verdict, &user.email)),
    }
}

fn refusal(verdict: TwoFactorReset, email: &str) -> RuleError {
    match verdict {
        TwoFactorReset::NotAdmin => RuleError::Forbidden(
            "Only an admin of the organization can reset a member's two-factor authentication."
                .into(),
        ),
        TwoFactorReset::NeedsPlatformAdmin => RuleError::Forbidden(format!(
            "{email}'s account is not this organization's alone (it belongs to other organizations too, or runs the platform), so only a platform admin can reset its two-factor authentication."
        )),
        TwoFactorReset::OwnAccount => RuleError::Conflict(
            "This is your own account: turn two-factor authentication off on your account page, with your password and a code."
                .into(),
        ),
        TwoFactorReset::Allowed => RuleError::Conflict("Nothing to refuse.".into()),
    }
}

/// Resets the account's two-factor authentication, with its email and audit event, in
/// one transaction. Answers the account and whether it had a second factor to reset
/// (without one, nothing changes and nothing is recorded).
pub fn reset(
    conn: &mut DbConnection,
    by: &By,
    user_id: &str,
    public_url: &str,
    origin: &Origin,
) -> Result<(User, bool), RuleError> {
    db::write_tx(conn, |conn| {
        match by {
            By::OrgAdmin(actor) => super::members::still_holds(conn, actor)?,
            By::PlatformAdmin(actor) => super::platform::still_runs_the_platform(conn, actor)?,
        }
        // The credential first, then the account, as every change to a second factor
        // (`two_factor::hold`). Whether the organization owns the account alone is counted
        // under the account's hold (`members::org_owns_account_held`).
        let held = two_factor::hold(conn, user_id)?;
        users::lock(conn, user_id)?;
        let Target { user, enrolled } = resettable(conn, by, user_id)?;
        // Enrolled only meanwhile (no credential to hold before the account): nothing to
        // reset that this change has seen.
        if !(enrolled && held) {
            return Ok((user, false));
        }
        two_factor::delete(conn, &user.id)?;
        two_factor::set_auth_method(conn, &user.id, AUTH_METHOD_PASSWORD)?;
        let now = db::now();
        let (org_id, org_name) = match by {
            By::OrgAdmin(actor) => {
                let org = organizations::find(conn, &actor.org_id)?.ok_or(RuleError::NotFound)?;
                (Some(org.id), Some(org.name))
            }
            By::PlatformAdmin(_) => (None, None),
        };
        let email = TwoFactorResetEmail {
            name: user.first_name.clone(),
            by: match &org_name {
                Some(name) => format!("an administrator of {name}"),
                None => "a platform administrator".into(),
            },
            at: now,
            account_url: format!("{}/account/2fa", public_url.trim_end_matches('/')),
        }
        .render()
        .map_err(|e| RuleError::Db(diesel::result::Error::SerializationError(e.into())))?;
        outbox::queue(conn, &user.email, &email, Some(&user.id), now)?;
        let mut event = Event::new(ACTION, origin)
            .actor(by.user_id(), by.email())
            .target("user", &user.id, &user.email)
            .details(json!({
                "by": match by {
                    By::OrgAdmin(_) => "organization admin",
                    By::PlatformAdmin(_) => "platform admin",
                },
            }));
        if let Some(org_id) = &org_id {
            event = event.org(org_id);
        }
        audit::record(conn, &event)?;
        Ok((user, true))
    })
}

/// Tells the person their second factor was taken away, and by whom, so a reset they
/// did not ask for does not go unnoticed.
#[derive(Debug, Clone)]
pub struct TwoFactorResetEmail {
    pub name: String,
    /// "an administrator of Acme", "a platform administrator".
    pub by: String,
    pub at: NaiveDateTime,
    /// Where to turn it on again.
    pub account_url: String,
}

impl TwoFactorResetEmail {
    pub fn subject(&self) -> String {
        header_safe("Two-factor authentication was turned off on your Portcullis account")
    }

    pub fn when(&self) -> String {
        self.at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        Ok(Rendered {
            subject: self.subject(),
            text: TwoFactorResetText { e: self }.render()?,
            html: TwoFactorResetHtml { e: self }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "email/two_factor_reset.txt")]
struct TwoFactorResetText<'a> {
    e: &'a TwoFactorResetEmail,
}

#[derive(Template)]
#[template(path = "email/two_factor_reset.html")]
struct TwoFactorResetHtml<'a> {
    e: &'a TwoFactorResetEmail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_says_who_and_escapes_names() {
        let rendered = TwoFactorResetEmail {
            name: "Bob <b>".into(),
            by: "an administrator of Acme & Co".into(),
            at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
            account_url: "https://portal.example.com/account/2fa".into(),
        }
        .render()
        .unwrap();
        assert!(rendered.text.contains("an administrator of Acme & Co"));
        assert!(rendered.html.contains("Acme &#38; Co"));
        assert!(!rendered.html.contains("<b>"));
        assert!(
            rendered
                .text
                .contains("https://portal.example.com/account/2fa")
        );
    }
}
