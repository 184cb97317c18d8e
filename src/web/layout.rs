use actix_session::Session;

use super::csrf::csrf_token;
use super::{Flash, assets, take_flashes};
use crate::domain::roles::Permission;
use crate::domain::timefmt;
use crate::domain::two_factor_policy::Demand;
use crate::web::extract::{CurrentUser, OrgCtx};

#[derive(Debug, Clone)]
pub struct NavOrg {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct NavUser {
    pub name: String,
    pub email: String,
    /// Shown in the round avatar.
    pub initial: String,
    pub platform: bool,
}

/// What the frame (`base.html`) shows around every page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
    pub user: Option<NavUser>,
    pub orgs: Vec<NavOrg>,
    pub org: Option<NavOrg>,
    /// Which tab is highlighted.
    pub active: &'static str,
    /// The Users and Groups tabs open to them (`users.read`).
    pub can_read_users: bool,
    pub can_invite: bool,
    /// How many invitations wait for an answer, on the Invited tab.
    pub pending_invitations: Option<String>,
    pub can_audit: bool,
    /// Admins (org.manage) see the Roles and Settings tabs.
    pub can_manage_org: bool,
    /// The date by which this organization requires the member to turn on two-factor,
    /// while that is still ahead (the banner).
    pub two_factor_due: Option<String>,
    pub css: String,
    pub js: String,
}

impl Layout {
    /// The frame with no session: error pages and anything rendered outside a request.
    pub fn bare(title: &str) -> Self {
        Layout {
            title: title.to_string(),
            csrf_token: String::new(),
            flashes: Vec::new(),
            user: None,
            orgs: Vec::new(),
            org: None,
            active: "",
            can_read_users: false,
            can_invite: false,
            pending_invitations: None,
            can_audit: false,
            can_manage_org: false,
            two_factor_due: None,
            css: assets::url("app.css"),
            js: assets::url("app.js"),
        }
    }

    /// A page for someone not signed in (sign-in, setup, invitation links).
    pub fn public(session: &Session, title: &str) -> Self {
        Layout {
            csrf_token: csrf_token(session),
            flashes: take_flashes(session),
            ..Layout::bare(title)
        }
    }

    pub fn signed_in(session: &Session, user: &CurrentUser, title: &str) -> Self {
        Layout {
            user: Some(NavUser {
                name: user.user.display_name(),
                email: user.user.email.clone(),
                initial: initial(&user.user.first_name, &user.user.email),
                platform: user.user.platform_role != "none",
            }),
            orgs: user
                .orgs
                .iter()
                .map(|o| NavOrg {
                    slug: o.slug.clone(),
                    name: o.name.clone(),
                })
                .collect(),
            ..Layout::public(session, title)
        }
    }

    pub fn in_org(session: &Session, ctx: &OrgCtx, title: &str, active: &'static str) -> Self {
        Layout {
            org: Some(NavOrg {
                slug: ctx.org.slug.clone(),
                name: ctx.org.name.clone(),
            }),
            active,
            can_read_users: ctx.can(Permission::UsersRead),
            can_invite: ctx.can(Permission::UsersInvite),
            pending_invitations: ctx.pending_invitations.clone(),
            can_audit: ctx.can(Permission::AuditRead),
            can_manage_org: ctx.can(Permission::OrgManage),
            two_factor_due: match ctx.two_factor {
                // To the minute: it holds from the minute the policy was saved, and "by
                // 2026-12-15" read as "through the 15th".
                Demand::Due { deadline } => Some(timefmt::exact(deadline)),
                Demand::Free | Demand::Blocked { .. } => None,
            },
            // Which organization, in the tab's title too: the same page of two of them
            // open side by side reads apart.
            ..Layout::signed_in(
                session,
                &ctx.current,
                &format!("{title} · {}", ctx.org.name),
            )
        }
    }
}

fn initial(first_name: &str, email: &str) -> String {
    first_name
        .chars()
        .chain(email.chars())
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".into())
}
