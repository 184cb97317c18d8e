//! The invitation lifecycle: inviting many addresses at once with a result for each
//! ([`create`]), resend and cancel ([`renew`]), the Invited tab ([`list`]), and acceptance
//! by a new or an existing account ([`accept`]).
//!
//! Rules: only the SHA-256 of a token is stored; a resend or a cancel kills the old link;
//! a link is consumed by one conditional UPDATE; nobody invites into a role, or a group
//! granting a role, ranked above their own, and that is checked again at acceptance.

use chrono::{Duration, NaiveDateTime};

use super::members::{self, Actor};
use super::policy::Standing;
use super::{FieldErrors, RuleError};
use crate::audit::{Event, Origin};
use crate::db::invitations::Choice;
use crate::db::organizations::Organization;
use crate::db::roles::Role;
use crate::db::users::User;
use crate::db::{self, DbConnection};
use crate::mail::outbox;
use crate::mail::templates::InvitationEmail;

pub mod accept;
pub mod create;
pub mod list;
pub mod renew;

pub use accept::{
    AcceptError, AcceptForm, LinkInfo, NewAccount, accept_as, accept_with_new_account, check_link,
    joined_through, record_refusal, validate_account,
};
pub use create::{
    InviteChoices, InviteForm, InviteReport, MAX_ADDRESSES, PlatformInvitation, Submission, Tone,
    form_choices, invite, invite_from_platform, submit,
};
pub use list::{
    InvitedPage, Undelivered, list_page, may_renew_role, parse_filter, pending_badge, search_prefix,
};
pub use renew::{cancel, cancellable, resend, withdraw_for_member, withdraw_open};

#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("Please correct the highlighted fields.")]
    Invalid(FieldErrors),
    #[error("not found")]
    NotFound,
    /// The member may not invite anyone.
    #[error("not allowed")]
    NotAllowed,
    #[error(
        "This invitation was sent less than a minute ago. Wait a minute before sending it again."
    )]
    TooSoon,
    #[error("{0}")]
    Forbidden(&'static str),
    /// This invitation grants more than the member may hand out: said where they pressed
    /// the button (unlike `Forbidden`, which is about the member, not the invitation).
    #[error("{0}")]
    BeyondGrants(&'static str),
    #[error("{0}")]
    Closed(&'static str),
    /// The inviter has sent as many invitations as an hour allows.
    #[error("{0}")]
    HourlyLimit(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("email template failed: {0}")]
    Render(#[from] askama::Error),
}

/// The trail's events that each mean one invitation email sent by its actor.
const SENDING_EVENTS: [&str; 2] = ["invitation.created", "invitation.resent"];

/// The member sending invitations, as the rules see them.
#[derive(Debug, Clone)]
pub struct Inviter {
    pub user: User,
    pub role: Role,
    /// What the inviter holds organization-wide: their role with the roles their groups
    /// grant.
    pub standing: Standing,
    /// When the inviter's own access ends, if it does: invitations end by then too.
    pub access_until: Option<NaiveDateTime>,
    /// The app's clock when the request came in.
    pub now: NaiveDateTime,
}

impl Inviter {
    fn name(&self) -> String {
        display_name(&self.user)
    }

    /// Whether they may learn which addresses are members (they may open the Users tab).
    fn sees_members(&self) -> bool {
        self.standing.may(super::roles::Permission::UsersRead)
    }

    /// Whether they may learn what open invitations offer (they may open the Invited tab).
    fn sees_invitations(&self) -> bool {
        self.standing.may(super::roles::Permission::UsersInvite)
    }

    fn as_actor(&self, org_id: &str) -> Actor {
        Actor {
            user_id: self.user.id.clone(),
            email: self.user.email.clone(),
            org_id: org_id.into(),
            rank: self.standing.rank,
            perms: self.standing.perms,
            access_until: self.access_until,
            now: self.now,
        }
    }

    fn may_grant(&self, granted: Standing) -> bool {
        self.standing.may_grant(granted)
    }
}

/// Whether the inviter may place people in these pools: anywhere with `pools.manage`
/// organization-wide, else only where a pool role of theirs lets them invite (a pool
/// Manager's subtree). Holding `users.invite` alone places nobody in a pool.
fn may_place_in_pools(
    conn: &mut DbConnection,
    org_id: &str,
    inviter_id: &str,
    inviter: &Standing,
    pool_ids: &[String],
) -> diesel::QueryResult<bool> {
    if pool_ids.is_empty() || inviter.may(super::roles::Permission::PoolsManage) {
        return Ok(true);
    }
    let invitable = super::pools::invitable_pools(conn, org_id, inviter_id)?;
    Ok(pool_ids.iter().all(|p| invitable.contains(p)))
}

/// Whether the inviter may put invitees in groups: only with `groups.manage`, as they
/// would add a member to one.
fn may_place_in_groups(inviter: &Standing, group_ids: &[String]) -> bool {
    group_ids.is_empty() || inviter.may(super::roles::Permission::GroupsManage)
}

/// Whether the inviter may send (or renew) an invitation placing people in these groups
/// and pools: one holding `users.invite` within `may_place_in_groups` and
/// `may_place_in_pools`; a pool Manager without it only into pools of their subtree, and
/// into no group. Sending, renewing and accepting all ask this, so a renewal never
/// leaves a link that acceptance refuses.
fn may_place(
    conn: &mut DbConnection,
    org_id: &str,
    (inviter_id, inviter): (&str, &Standing),
    (group_ids, pool_ids): (&[String], &[String]),
) -> diesel::QueryResult<bool> {
    if inviter.may(super::roles::Permission::UsersInvite) {
        Ok(may_place_in_groups(inviter, group_ids)
            && may_place_in_pools(conn, org_id, inviter_id, inviter, pool_ids)?)
    } else {
        let invitable = super::pools::invitable_pools(conn, org_id, inviter_id)?;
        Ok(group_ids.is_empty()
            && !pool_ids.is_empty()
            && pool_ids.iter().all(|p| invitable.contains(p)))
    }
}

/// What joining a group hands out: the role it grants, if any.
fn group_grant(group: &Choice) -> Option<Standing> {
    Some(Standing::of(
        (group.role_permissions.as_deref()?, group.role_rank?),
        &[],
        &[],
    ))
}

fn display_name(user: &User) -> String {
    let name = user.display_name();
    if name.is_empty() {
        user.email.clone()
    } else {
        name
    }
}

/// What every invitation change needs besides the database.
#[derive(Debug, Clone)]
pub struct Env {
    pub org: Organization,
    pub inviter: Inviter,
    /// How long a fresh link stays valid.
    pub ttl: Duration,
    /// Base of links, without a trailing slash.
    pub public_url: String,
    pub origin: Origin,
    /// Invitation emails the inviter may send in an hour (`--invitations-per-hour`).
    pub sends_per_hour: i64,
}

impl Env {
    /// Takes the organization's lock for an inviter who still holds what the request was
    /// read with. A demotion that committed while this change waited for the lock must
    /// not let it invite, resend or cancel with what they held before.
    fn hold_org(&self, conn: &mut DbConnection) -> Result<(), InvitationError> {
        db::organizations::lock(conn, &self.org.id)?;
        members::still_holds(conn, &self.inviter.as_actor(&self.org.id)).map_err(|e| match e {
            RuleError::Db(e) => InvitationError::Db(e),
            _ => InvitationError::Forbidden(members::STANDING_CHANGED),
        })
    }

    /// How many more invitation emails the inviter may send this hour, counted from the
    /// trail (`invitation.created` and `invitation.resent` by them, in this organization),
    /// under the organization's lock so two submits at once cannot both use the rest.
    fn sends_left(&self, conn: &mut DbConnection) -> Result<i64, InvitationError> {
        let sent = db::audit_events::count_by_actor_since(
            conn,
            &self.org.id,
            &self.inviter.user.email,
            &SENDING_EVENTS,
            self.inviter.now - Duration::hours(1),
        )?;
        Ok((self.sends_per_hour - sent).max(0))
    }

    /// Refuses sending `wanted` more invitation emails past the inviter's hourly limit.
    fn within_hourly_limit(
        &self,
        conn: &mut DbConnection,
        wanted: usize,
    ) -> Result<(), InvitationError> {
        let left = self.sends_left(conn)?;
        let wanted = i64::try_from(wanted).unwrap_or(i64::MAX);
        if wanted <= left {
            return Ok(());
        }
        let limit = self.sends_per_hour;
        Err(InvitationError::HourlyLimit(if left == 0 {
            format!(
                "You have sent {limit} invitations in the past hour, the most one person may send in an hour. Try again later."
            )
        } else {
            format!(
                "You can send {left} more invitations this hour (at most {limit} an hour each), and this asks for {wanted}. Send fewer, or try again later."
            )
        }))
    }

    fn link(&self, token: &str) -> String {
        invite_link(&self.public_url, token)
    }

    /// Takes the accept links out of `results` unless the inviter is shown them
    /// (`policy::sees_accept_links`): their invitations went by email all the same.
    fn withhold_links(
        &self,
        conn: &mut DbConnection,
        results: &mut [AddressResult],
    ) -> Result<(), InvitationError> {
        let roles = db::roles::list(conn, &self.org.id)?;
        if !super::policy::sees_accept_links(&self.inviter.standing, &roles) {
            for result in results {
                result.link = None;
            }
        }
        Ok(())
    }

    fn sender(&self) -> Sender<'_> {
        Sender {
            org_name: &self.org.name,
            inviter_name: self.inviter.name(),
            public_url: &self.public_url,
        }
    }

    fn event(&self, action: &'static str, invitation_id: &str, email: &str) -> Event {
        Event::new(action, &self.origin)
            .org(&self.org.id)
            .actor(&self.inviter.user.id, &self.inviter.user.email)
            .target("invitation", invitation_id, email)
    }
}

/// What happened to one address of an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Invited,
    AlreadyMember,
    /// Already invited: the invitation got a new link and expiry, and was sent again.
    Resent,
    /// Already invited, and not sent again, for this reason.
    NotResent(&'static str),
    /// Already invited with another offer (role, groups, pools or last day): that
    /// invitation was cancelled and this one sent in its place.
    Replaced,
    /// Not invited, for a reason the inviter may not learn: that the address is a member
    /// (they may not open the Users tab), or what an invitation they may not touch offers
    /// (they may not open the Invited tab). A pool Manager, say.
    Withheld,
    Invalid(String),
}

impl Outcome {
    /// Stable key for the results table (`data-result`).
    pub fn key(&self) -> &'static str {
        match self {
            Outcome::Invited => "invited",
            Outcome::AlreadyMember => "member",
            Outcome::Resent => "resent",
            Outcome::NotResent(_) => "not_resent",
            Outcome::Replaced => "replaced",
            Outcome::Withheld => "withheld",
            Outcome::Invalid(_) => "invalid",
        }
    }

    pub fn label(&self) -> String {
        match self {
            Outcome::Invited => "Invited".into(),
            Outcome::AlreadyMember => "Already a member".into(),
            Outcome::Resent => "Already invited: link resent".into(),
            Outcome::NotResent(why) => format!("Already invited: {why}"),
            Outcome::Replaced => {
                "Already invited with another offer: replaced by this one (the earlier link no longer works)".into()
            }
            Outcome::Withheld => {
                "Not invited: ask someone who manages the organization's members".into()
            }
            Outcome::Invalid(why) => format!("Invalid address: {why}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AddressResult {
    /// The address as stored, or as typed when it is invalid.
    pub email: String,
    pub outcome: Outcome,
    pub invitation_id: Option<String>,
    /// The raw accept link: shown once, right now, and never again.
    pub link: Option<String>,
}

impl AddressResult {
    /// An address that got no invitation.
    fn unsent(email: String, outcome: Outcome) -> Self {
        AddressResult {
            email,
            outcome,
            invitation_id: None,
            link: None,
        }
    }
}

/// A fresh link of an invitation, as its email carries it.
struct Link<'a> {
    token: &'a str,
    expires_at: NaiveDateTime,
    /// When the access the invitation offers ends, if it does.
    access_until: Option<NaiveDateTime>,
}

/// When a link sent now dies: when the invitation expires, or earlier when the access it
/// offers ends first, since accepting after that would make a member whose access is over.
fn link_expiry(
    now: NaiveDateTime,
    ttl: Duration,
    access_until: Option<NaiveDateTime>,
) -> NaiveDateTime {
    link_dies_at(now + ttl, access_until)
}

/// When a link that expires at `expires_at` dies: then, or when the access it offers
/// ends, if that comes first.
fn link_dies_at(expires_at: NaiveDateTime, access_until: Option<NaiveDateTime>) -> NaiveDateTime {
    access_until.map_or(expires_at, |until| expires_at.min(until))
}

/// Whether the access the invitation offers has ended: its link is dead, whenever it was
/// sent, and it cannot be sent again.
pub fn access_has_ended(
    invitation: &crate::db::invitations::Invitation,
    now: NaiveDateTime,
) -> bool {
    invitation.access_until.is_some_and(|until| until <= now)
}

fn invite_link(public_url: &str, token: &str) -> String {
    format!("{public_url}/invite/{token}")
}

/// Who an invitation email says it comes from, and the base of its link.
struct Sender<'a> {
    org_name: &'a str,
    inviter_name: String,
    public_url: &'a str,
}

/// Queues the email that carries `link`; a reminder says the earlier link is dead.
fn queue_email(
    conn: &mut DbConnection,
    sender: Sender,
    (to, invitation_id): (&str, &str),
    role: &Role,
    link: Link,
    reminder: bool,
) -> Result<(), InvitationError> {
    let email = InvitationEmail {
        org_name: sender.org_name.to_string(),
        inviter_name: sender.inviter_name,
        role_name: role.name.clone(),
        link: invite_link(sender.public_url, link.token),
        expires_at: link.expires_at,
        reminder,
        access_until: link.access_until,
    }
    .render()?;
    let dies = Some(link.expires_at);
    outbox::queue_link(conn, to, &email, Some(invitation_id), db::now(), dies)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod fixture {
    //! An organization with its administrator, and what the tests of every part ask of it.

    use super::*;
    use crate::db::roles;
    use crate::domain::roles::ADMIN;
    use crate::domain::testing::{self, TestDb};

    pub struct Fixture {
        pub db: TestDb,
        pub org: Organization,
        pub admin: Inviter,
    }

    pub fn fixture() -> Fixture {
        let db = testing::with_admin("x");
        let org = db.admin.org.clone();
        let role = roles::find_by_key(&mut db.pool.get().unwrap(), &org.id, ADMIN)
            .unwrap()
            .unwrap();
        let admin = Inviter {
            user: db.admin.user.clone(),
            standing: Standing::of_role(&role),
            role,
            access_until: None,
            now: db::now(),
        };
        Fixture { db, org, admin }
    }

    impl Fixture {
        pub fn env(&self, inviter: &Inviter) -> Env {
            Env {
                org: self.org.clone(),
                inviter: inviter.clone(),
                ttl: Duration::hours(72),
                public_url: "https://portal.example.com".into(),
                origin: Origin::default(),
                sends_per_hour: 1000,
            }
        }

        pub fn role(&self, key: &str) -> Role {
            roles::find_by_key(&mut self.db.pool.get().unwrap(), &self.org.id, key)
                .unwrap()
                .unwrap()
        }

        pub fn form(&self, emails: &str, role: &str) -> InviteForm {
            InviteForm {
                emails: emails.into(),
                role_id: self.role(role).id,
                ..InviteForm::default()
            }
        }

        /// Invites one address as the administrator; answers its token.
        pub fn invite_one(&self, conn: &mut DbConnection, email: &str, role: &str) -> String {
            let report = invite(conn, &self.env(&self.admin), &self.form(email, role)).unwrap();
            token_of(&report.results[0])
        }
    }

    pub fn token_of(result: &AddressResult) -> String {
        result
            .link
            .as_ref()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    }

    pub fn count(conn: &mut DbConnection, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        use diesel::RunQueryDsl;
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<N>(conn)
            .unwrap()
            .n
    }

    /// Makes every invitation look sent long enough ago to be sent again.
    pub fn age_all(conn: &mut DbConnection, by: Duration) {
        use crate::db::schema::invitations;
        use diesel::prelude::*;
        diesel::update(invitations::table)
            .set(invitations::last_sent_at.eq(db::now() - by))
            .execute(conn)
            .unwrap();
    }
}
