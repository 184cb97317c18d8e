//! The one answer to "may this actor do this to that target, here?". Domain functions and
//! handlers ask these functions; none of them compares ranks or permissions itself.
//!
//! - What a member may do comes from their role, the roles their groups grant and, inside
//!   a pool subtree, the pool roles they hold on it or an ancestor (`Standing::of`).
//! - Nobody grants, or acts on someone, above their own standing: neither a higher rank
//!   nor a permission they do not hold. Ranks alone are not enough once an organization
//!   defines roles of its own: a custom role ranks with the smallest built-in role
//!   covering it, so a "Helpdesk" holding `users.manage` ranks with Manager without
//!   holding what Manager holds. Anything an action hands out counts: the role itself and
//!   the roles its groups and pools carry (`may_grant_all`).
//! - Actions on oneself that could lock one out are refused or need their own
//!   confirmation (`own_membership`).
//! - An account that belongs to several organizations, or holds a platform role, is not
//!   one organization's to rename, re-address or strip of its second factor
//!   (`org_owns_account`).
//! - Platform pages: operators read, platform admins change.
//! - The target's organization is never a question here: every query that loads a target
//!   filters by the caller's organization, so another organization's object is not found.

use super::roles::{Permission, PermissionSet, effective_permissions};

/// How far apart the clocks of instances sharing a database may be (kept in step by NTP,
/// as the outbox's leases already assume): times stamped by two of them are compared
/// with this much allowed.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(60);
use crate::db::roles::Role;

/// What an actor holds at one place: an organization, or a pool subtree in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub perms: PermissionSet,
    pub rank: i64,
}

impl Standing {
    /// From the member's role, their groups' roles and (inside a pool subtree) their pool
    /// roles, each as (permissions as stored, rank): the union and the highest rank.
    pub fn of<'a>(
        role: (&'a str, i64),
        groups: &[(&'a str, i64)],
        pools: &[(&'a str, i64)],
    ) -> Standing {
        Standing {
            perms: effective_permissions(
                role.0,
                groups.iter().map(|(p, _)| *p),
                pools.iter().map(|(p, _)| *p),
            ),
            rank: groups
                .iter()
                .chain(pools)
                .map(|(_, rank)| *rank)
                .fold(role.1, i64::max),
        }
    }

    /// The standing at a pool, from the member's organization-wide standing (role and
    /// groups) and the one including the pool roles that apply there. `pools.operate`
    /// held organization-wide acts as `pools.manage` at the pools the member belongs to
    /// (a pool role on the pool or an ancestor); at any other pool, or held only through
    /// a pool role, it grants nothing. This is what sets an Engineer apart from a Member.
    pub fn at_pool(org_wide: Standing, here: Standing, belongs: bool) -> Standing {
        if belongs && org_wide.may(Permission::PoolsOperate) {
            Standing {
                perms: here.perms.with(Permission::PoolsManage),
                ..here
            }
        } else {
            here
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.perms.contains(permission)
    }

    /// The organization's first tab this member may open, where entering it lands them:
    /// the Users tab, else the Invited tab, else the audit trail, else the Pools tab,
    /// which every member may open.
    pub fn first_tab(&self) -> &'static str {
        [
            (Permission::UsersRead, "users"),
            (Permission::UsersInvite, "invitations"),
            (Permission::AuditRead, "audit"),
        ]
        .into_iter()
        .find(|(p, _)| self.may(*p))
        .map_or("pools", |(_, tab)| tab)
    }

    /// What a member holds organization-wide: their role with the roles their groups
    /// grant.
    pub fn of_member(role: &Role, group_roles: &[Role]) -> Standing {
        let groups: Vec<(&str, i64)> = group_roles
            .iter()
            .map(|r| (r.permissions.as_str(), r.rank))
            .collect();
        Standing::of((&role.permissions, role.rank), &groups, &[])
    }

    /// What holding `role` alone confers: what granting it hands out.
    pub fn of_role(role: &Role) -> Standing {
        Standing::of((&role.permissions, role.rank), &[], &[])
    }

    /// Whether `other` stays within this standing: ranked no higher, and holding no
    /// permission this one lacks.
    fn covers(&self, other: Standing) -> bool {
        other.rank <= self.rank && self.may_define(other.perms)
    }

    /// Granting a role (directly, or through a group or a pool); `granted` is what it
    /// confers (`Standing::of_role`).
    pub fn may_grant(&self, granted: Standing) -> bool {
        self.covers(granted)
    }

    /// Whether this standing still holds everything `earlier` held (an actor read again
    /// under the organization's lock).
    pub fn holds_at_least(&self, earlier: Standing) -> bool {
        self.covers(earlier)
    }

    /// Granting everything at once: a role with the roles of its groups and pools.
    pub fn may_grant_all(&self, granted: impl IntoIterator<Item = Standing>) -> bool {
        granted.into_iter().all(|g| self.may_grant(g))
    }

    /// Changing a member whose effective standing (role and group roles) is `target`.
    pub fn may_act_on(&self, target: Standing) -> bool {
        self.covers(target)
    }

    /// Defining a role with these permissions: only ones the actor holds. `pools.manage`
    /// (every pool) holds `pools.operate` (the pools one belongs to).
    pub fn may_define(&self, perms: PermissionSet) -> bool {
        let held = if self.may(Permission::PoolsManage) {
            self.perms.with(Permission::PoolsOperate)
        } else {
            self.perms
        };
        perms.iter().all(|p| held.contains(p))
    }
}

/// The roles the actor may hand out, for the choice lists of forms.
pub fn grantable(standing: &Standing, all: Vec<Role>) -> Vec<Role> {
    all.into_iter()
        .filter(|r| standing.may_grant(Standing::of_role(r)))
        .collect()
}

/// What an actor may do to their own membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnMembership {
    /// Deactivating oneself: refused, since one would lose access at once.
    Deactivate,
    /// Changing one's own role: allowed after a confirmation of its own.
    ChangeRole,
    /// Leaving the organization: allowed on its own explicit page.
    Leave,
    /// A bulk action that could lock one out: the actor is skipped.
    BulkChange,
    /// Adding oneself to a group through a bulk action.
    BulkJoinGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    NeedsOwnConfirmation,
    Refused,
}

pub fn own_membership(action: OwnMembership) -> Verdict {
    match action {
        OwnMembership::Deactivate | OwnMembership::BulkChange => Verdict::Refused,
        OwnMembership::ChangeRole | OwnMembership::Leave => Verdict::NeedsOwnConfirmation,
        OwnMembership::BulkJoinGroup => Verdict::Allowed,
    }
}

/// Whether one may make a role one's own: only within the role one holds oneself. What a
/// group grants lasts while one is in the group; taken as one's own role, it would stay
/// after one leaves the group.
pub fn may_take_role(own_role: Standing, new_role: Standing) -> bool {
    own_role.may_grant(new_role)
}

/// Whether someone whose own access ends at `limit` may hand out access ending at
/// `until`: nobody hands out access that outlives their own, their own included. A member
/// given access until a date (a contractor, say) must not lift the date themselves, nor
/// invite a second address of theirs without one, nor make a token that outlives them.
pub fn access_within(
    limit: Option<chrono::NaiveDateTime>,
    until: Option<chrono::NaiveDateTime>,
) -> bool {
    match (limit, until) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(limit), Some(until)) => until <= limit,
    }
}

/// Whether an account is one organization's to change (its name, its email address, its
/// second factor): only when it belongs to that organization alone and holds no platform
/// role. A platform admin's account guards every organization; letting one
/// organization's admin give it a new address (then reset its password there) would hand
/// them all of them.
pub fn org_owns_account(organizations_of_account: usize, platform_role: &str) -> bool {
    organizations_of_account <= 1 && !platform_may_read(platform_role)
}

/// Whether an inviter is shown the accept links their invitations carry. Whoever opens a
/// link chooses the new account's password, and the account keeps the address: an
/// inviter who opened it holds an account the organization takes for the address's owner,
/// which an Admin promoting "the new CFO", or an identity provider that finds the address
/// later and pushes its groups, may raise to any role. So only an inviter who may grant
/// every role of the organization already sees them; anyone else's invitations reach the
/// invitee through the mailbox alone.
pub fn sees_accept_links(inviter: &Standing, org_roles: &[Role]) -> bool {
    inviter.may_grant_all(org_roles.iter().map(Standing::of_role))
}

/// Whether provisioning (SCIM) may make an existing account a member without its owner's
/// say: only one without a password, which nobody but the address's owner can enter
/// (through a link mailed to it). Nobody proves the address of an account that holds a
/// password: an Admin sees each accept link (`sees_accept_links`), so they may have opened
/// one and chosen that password themselves, then waited for another organization's
/// identity provider to provision the address.
pub fn provisioning_may_attach(account_has_password: bool) -> bool {
    !account_has_password
}

/// Whether a platform admin's new organization takes an existing account as its first
/// admin at once: the platform admin's own, or one without a password (as provisioning
/// does). Any other is invited by a link mailed to the address, for the same reason:
/// someone who once invited the address may have chosen its password.
pub fn new_org_may_attach(actor_is_account: bool, account_has_password: bool) -> bool {
    actor_is_account || provisioning_may_attach(account_has_password)
}

/// Whether an organization's admin may rename an account: only one the organization
/// owns (`org_owns_account`), or their own.
pub fn may_rename_account(actor_is_account: bool, org_owns_account: bool) -> bool {
    actor_is_account || org_owns_account
}

/// Platform pages: operators and admins read them; only admins change anything.
pub fn platform_may_read(platform_role: &str) -> bool {
    matches!(platform_role, "admin" | "operator")
}

pub fn platform_may_change(platform_role: &str) -> bool {
    platform_role == "admin"
}

/// Who asks to reset someone's two-factor authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorResetter {
    /// A platform admin, from the platform user page.
    PlatformAdmin,
    /// A member of the organization; `is_admin` when they hold `org.manage` there.
    Member { is_admin: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorReset {
    Allowed,
    /// Not an admin of the organization.
    NotAdmin,
    /// The account belongs to other organizations too, or holds a platform role: one
    /// organization's admin would otherwise take the second factor off an account that
    /// guards more than their organization.
    NeedsPlatformAdmin,
    /// One's own second factor is turned off on the account page, which asks for the
    /// password and a code: a stolen admin session must not skip that.
    OwnAccount,
}

/// Whether `by` may reset the two-factor authentication of an account, which the
/// organization owns or not (`org_owns_account`).
pub fn may_reset_two_factor(
    by: TwoFactorResetter,
    own_account: bool,
    org_owns_account: bool,
) -> TwoFactorReset {
    match by {
        _ if own_account => TwoFactorReset::OwnAccount,
        TwoFactorResetter::PlatformAdmin => TwoFactorReset::Allowed,
        TwoFactorResetter::Member { is_admin: false } => TwoFactorReset::NotAdmin,
        TwoFactorResetter::Member { is_admin: true } if !org_owns_account => {
            TwoFactorReset::NeedsPlatformAdmin
        }
        TwoFactorResetter::Member { is_admin: true } => TwoFactorReset::Allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roles::BUILTIN_ROLES;

    #[test]
    fn entering_an_organization_lands_on_the_first_tab_one_may_open() {
        let with = |perms: &[Permission]| Standing {
            perms: PermissionSet::of(perms),
            rank: 10,
        };
        assert_eq!(
            with(&[Permission::UsersRead, Permission::AuditRead]).first_tab(),
            "users"
        );
        assert_eq!(
            with(&[Permission::AuditRead, Permission::UsersInvite]).first_tab(),
            "invitations"
        );
        assert_eq!(with(&[Permission::AuditRead]).first_tab(), "audit");
        assert_eq!(with(&[]).first_tab(), "pools");
    }

    fn builtin(key: &str) -> (String, i64) {
        let b = BUILTIN_ROLES.iter().find(|b| b.key == key).unwrap();
        (b.permissions().to_string(), b.rank)
    }

    fn standing(role: &str, groups: &[&str], pools: &[&str]) -> Standing {
        let role = builtin(role);
        let groups: Vec<(String, i64)> = groups.iter().map(|g| builtin(g)).collect();
        let pools: Vec<(String, i64)> = pools.iter().map(|p| builtin(p)).collect();
        let g: Vec<(&str, i64)> = groups.iter().map(|(p, r)| (p.as_str(), *r)).collect();
        let p: Vec<(&str, i64)> = pools.iter().map(|(p, r)| (p.as_str(), *r)).collect();
        Standing::of((&role.0, role.1), &g, &p)
    }

    fn rank(key: &str) -> i64 {
        builtin(key).1
    }

    /// What holding the built-in role `key` alone confers.
    fn role(key: &str) -> Standing {
        standing(key, &[], &[])
    }

    /// What a custom role holding `perms` confers, ranked as `custom_roles` ranks it.
    fn custom(perms: &[Permission]) -> Standing {
        let perms = PermissionSet::of(perms);
        Standing {
            perms,
            rank: crate::domain::roles::rank_for(perms),
        }
    }

    #[test]
    fn a_group_role_raises_both_permissions_and_rank() {
        let plain = standing("member", &[], &[]);
        assert!(!plain.may(Permission::UsersManage));
        let lifted = standing("member", &["manager"], &[]);
        assert!(lifted.may(Permission::UsersManage));
        assert_eq!(lifted.rank, rank("manager"));
    }

    #[test]
    fn a_pool_role_counts_only_where_it_is_passed() {
        let org_wide = standing("member", &[], &[]);
        let in_pool = standing("member", &[], &["manager"]);
        assert!(!org_wide.may(Permission::PoolsManage));
        assert!(in_pool.may(Permission::PoolsManage));
    }

    #[test]
    fn an_engineer_manages_only_the_pools_they_belong_to() {
        let at = |role: &str, belongs: bool| {
            let org_wide = standing(role, &[], &[]);
            let here = if belongs {
                standing(role, &[], &["engineer"])
            } else {
                org_wide
            };
            Standing::at_pool(org_wide, here, belongs)
        };
        let engineer = standing("engineer", &[], &[]);
        assert!(
            !engineer.may(Permission::PoolsManage),
            "not organization-wide"
        );
        assert!(!at("engineer", false).may(Permission::PoolsManage));
        assert!(at("engineer", true).may(Permission::PoolsManage));
        // A Member holding the same pool role only reads there: that is the difference.
        assert!(!at("member", true).may(Permission::PoolsManage));
        // Nor does belonging lift the rank: an Engineer still grants no Manager.
        assert!(!at("engineer", true).may_grant(role("manager")));
    }

    /// (actor's role, what is granted, allowed) for every pair of built-in roles.
    #[test]
    fn nobody_grants_above_their_own_rank() {
        let keys = ["admin", "manager", "engineer", "member"];
        for actor in keys {
            for granted in keys {
                let s = standing(actor, &[], &[]);
                assert_eq!(
                    s.may_grant(role(granted)),
                    rank(granted) <= rank(actor),
                    "{actor} granting {granted}"
                );
                assert_eq!(s.may_act_on(role(granted)), rank(granted) <= rank(actor));
            }
        }
    }

    #[test]
    fn everything_an_invitation_carries_counts() {
        let manager = standing("manager", &[], &[]);
        // A Member invitation into a group that grants Admin grants Admin.
        assert!(!manager.may_grant_all([role("member"), role("admin")]));
        assert!(manager.may_grant_all([role("member"), role("engineer")]));
        assert!(manager.may_grant_all([]));
    }

    #[test]
    fn custom_roles_hold_only_permissions_the_actor_holds() {
        let manager = standing("manager", &[], &[]);
        assert!(manager.may_define(PermissionSet::of(&[Permission::UsersRead])));
        assert!(!manager.may_define(PermissionSet::of(&[Permission::OrgManage])));
    }

    /// The permission sets of custom roles are not nested like the built-in ones, so a
    /// rank alone would let their holders grant what they do not hold.
    #[test]
    fn a_custom_role_grants_only_what_it_holds() {
        use Permission::*;
        let helpdesk = custom(&[UsersRead, UsersManage]);
        assert_eq!(helpdesk.rank, rank("manager"), "it ranks with Manager");
        assert!(!helpdesk.may_grant(role("manager")));
        assert!(helpdesk.may_grant(role("member")));
        assert!(!helpdesk.may_grant(role("engineer")), "no pools.operate");
        assert!(!helpdesk.may_grant_all([role("member"), role("manager")]));
        // Nor acts on a member holding what it does not: a Manager is out of its reach.
        assert!(!helpdesk.may_act_on(role("manager")));
        assert!(helpdesk.may_act_on(role("member")));
        // A role with `org.manage` alone ranks with Admin and still grants no Admin.
        let owner = custom(&[OrgManage]);
        assert_eq!(owner.rank, rank("admin"));
        assert!(!owner.may_grant(role("admin")));
        // Managing every pool includes operating one's own: a "Pool admin" grants Engineer.
        let pool_admin = custom(&[UsersRead, PoolsManage]);
        assert!(pool_admin.may_grant(role("engineer")));
        assert!(!pool_admin.may_grant(role("manager")));
        // So does an Admin role stored before `pools.operate` existed (a migration added
        // it to Engineer and Manager only).
        let older_admin = Standing {
            perms: PermissionSet::all()
                .iter()
                .filter(|p| *p != PoolsOperate)
                .fold(PermissionSet::default(), PermissionSet::with),
            rank: rank("admin"),
        };
        assert!(older_admin.may_grant(role("engineer")));
        // Built-in holders are unaffected: their roles nest.
        assert!(role("manager").may_grant(helpdesk));
        assert!(role("admin").may_grant(owner));
        assert!(!role("engineer").may_grant(helpdesk));
    }

    /// The built-in role `key` as an organization stores it.
    fn stored(key: &str) -> Role {
        let (permissions, rank) = builtin(key);
        Role {
            id: key.into(),
            org_id: "o".into(),
            key: key.into(),
            name: key.into(),
            permissions,
            rank,
            builtin: true,
            created_at: chrono::NaiveDateTime::default(),
        }
    }

    #[test]
    fn only_an_inviter_who_may_grant_every_role_sees_accept_links() {
        let roles = [stored("admin"), stored("manager"), stored("member")];
        assert!(sees_accept_links(&role("admin"), &roles));
        assert!(!sees_accept_links(&role("manager"), &roles));
        assert!(sees_accept_links(
            &standing("member", &["admin"], &[]),
            &roles
        ));
        let helpdesk = custom(&[Permission::UsersRead, Permission::UsersInvite]);
        assert!(!sees_accept_links(&helpdesk, &roles));
    }

    #[test]
    fn choice_lists_offer_only_grantable_roles() {
        let offered = grantable(
            &role("manager"),
            vec![stored("admin"), stored("manager"), stored("member")],
        );
        let keys: Vec<&str> = offered.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["manager", "member"]);
    }

    #[test]
    fn own_membership_rules() {
        assert_eq!(own_membership(OwnMembership::Deactivate), Verdict::Refused);
        assert_eq!(own_membership(OwnMembership::BulkChange), Verdict::Refused);
        assert_eq!(
            own_membership(OwnMembership::ChangeRole),
            Verdict::NeedsOwnConfirmation
        );
        assert_eq!(
            own_membership(OwnMembership::Leave),
            Verdict::NeedsOwnConfirmation
        );
        assert_eq!(
            own_membership(OwnMembership::BulkJoinGroup),
            Verdict::Allowed
        );
    }

    #[test]
    fn only_unopened_accounts_and_ones_own_join_a_new_organization_unasked() {
        assert!(
            new_org_may_attach(false, false),
            "no password: only mail opens it"
        );
        assert!(new_org_may_attach(true, true), "the platform admin's own");
        assert!(
            !new_org_may_attach(false, true),
            "someone may have chosen it"
        );
        assert!(!provisioning_may_attach(true));
    }

    #[test]
    fn nobody_keeps_what_a_group_lends_them_or_hands_out_access_beyond_their_own() {
        assert!(may_take_role(role("manager"), role("member")));
        assert!(may_take_role(role("admin"), role("admin")));
        assert!(!may_take_role(role("member"), role("admin")));
        let day = |d: u32| {
            chrono::NaiveDate::from_ymd_opt(2027, 1, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
        };
        assert!(access_within(None, day(5)));
        assert!(access_within(day(9), day(5)));
        assert!(access_within(day(9), day(9)));
        assert!(!access_within(day(9), day(10)));
        assert!(!access_within(day(9), None));
    }

    #[test]
    fn names_of_shared_accounts_are_their_own() {
        assert!(may_rename_account(false, org_owns_account(1, "none")));
        assert!(!may_rename_account(false, org_owns_account(2, "none")));
        assert!(may_rename_account(true, org_owns_account(3, "none")));
        assert!(may_rename_account(true, org_owns_account(1, "admin")));
    }

    #[test]
    fn no_organization_owns_a_platform_account() {
        assert!(org_owns_account(1, "none"));
        assert!(org_owns_account(0, ""));
        assert!(!org_owns_account(2, "none"));
        assert!(!org_owns_account(1, "admin"));
        assert!(!org_owns_account(1, "operator"));
    }

    #[test]
    fn platform_roles() {
        for (role, read, change) in [
            ("admin", true, true),
            ("operator", true, false),
            ("none", false, false),
            ("", false, false),
        ] {
            assert_eq!(platform_may_read(role), read, "{role}");
            assert_eq!(platform_may_change(role), change, "{role}");
        }
    }

    #[test]
    fn two_factor_resets() {
        use TwoFactorReset::*;
        use TwoFactorResetter::*;
        let admin = Member { is_admin: true };
        let manager = Member { is_admin: false };
        for (by, own, owned, verdict) in [
            (admin, false, true, Allowed),
            (admin, false, false, NeedsPlatformAdmin),
            (admin, true, true, OwnAccount),
            (manager, false, true, NotAdmin),
            (manager, false, false, NotAdmin),
            (PlatformAdmin, false, true, Allowed),
            (PlatformAdmin, false, false, Allowed),
            (PlatformAdmin, true, false, OwnAccount),
        ] {
            assert_eq!(
                may_reset_two_factor(by, own, owned),
                verdict,
                "{by:?} own={own} owned={owned}"
            );
        }
    }
}
