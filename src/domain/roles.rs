use std::fmt;

/// What a role lets its holder do. The string forms are stored in `roles.permissions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    UsersRead,
    UsersInvite,
    UsersManage,
    GroupsManage,
    PoolsManage,
    /// `pools.manage`, but only inside the pools the member belongs to.
    PoolsOperate,
    AuditRead,
    OrgManage,
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Permission::UsersRead,
        Permission::UsersInvite,
        Permission::UsersManage,
        Permission::GroupsManage,
        Permission::PoolsManage,
        Permission::PoolsOperate,
        Permission::AuditRead,
        Permission::OrgManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::UsersRead => "users.read",
            Permission::UsersInvite => "users.invite",
            Permission::UsersManage => "users.manage",
            Permission::GroupsManage => "groups.manage",
            Permission::PoolsManage => "pools.manage",
            Permission::PoolsOperate => "pools.operate",
            Permission::AuditRead => "audit.read",
            Permission::OrgManage => "org.manage",
        }
    }

    /// What the permission lets its holder do, in a line the Roles page prints.
    pub fn description(self) -> &'static str {
        match self {
            Permission::UsersRead => "See the Users tab, members' profiles and their activity.",
            Permission::UsersInvite => "Invite people and resend or cancel invitations.",
            Permission::UsersManage => {
                "Edit, deactivate, re-activate and remove members, and change their roles."
            }
            Permission::GroupsManage => "Create and delete groups and choose their members.",
            Permission::PoolsManage => {
                "Create, rename, move and delete any pool, and choose its members."
            }
            Permission::PoolsOperate => {
                "Act on the pools they belong to (and their sub-pools): rename them, add sub-pools and choose their members."
            }
            Permission::AuditRead => "Read and export the organization's audit trail.",
            Permission::OrgManage => {
                "Administer the organization: roles, settings and two-factor policy."
            }
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s.trim())
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of permissions; union is how group-granted roles add to a member's own role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionSet(u16);

impl PermissionSet {
    pub fn of(perms: &[Permission]) -> Self {
        PermissionSet(perms.iter().fold(0, |acc, p| acc | p.bit()))
    }

    pub fn all() -> Self {
        Self::of(&Permission::ALL)
    }

    /// Reads the stored comma list, ignoring names this version does not know.
    pub fn parse_lenient(list: &str) -> Self {
        Self::of(
            &list
                .split(',')
                .filter_map(Permission::parse)
                .collect::<Vec<_>>(),
        )
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn with(self, p: Permission) -> Self {
        PermissionSet(self.0 | p.bit())
    }

    pub fn union(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 | other.0)
    }

    pub fn is_admin(self) -> bool {
        self.contains(Permission::OrgManage)
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl fmt::Display for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Permission::as_str).collect();
        f.write_str(&names.join(","))
    }
}

pub struct BuiltinRole {
    pub key: &'static str,
    pub name: &'static str,
    pub rank: i64,
    permissions: &'static [Permission],
}

impl BuiltinRole {
    pub fn permissions(&self) -> PermissionSet {
        PermissionSet::of(self.permissions)
    }
}

pub const ADMIN: &str = "admin";
pub const MANAGER: &str = "manager";
pub const ENGINEER: &str = "engineer";
pub const MEMBER: &str = "member";

/// Seeded into every organization. Rank orders roles for "nobody grants above their own".
pub const BUILTIN_ROLES: [BuiltinRole; 4] = [
    BuiltinRole {
        key: ADMIN,
        name: "Admin",
        rank: 100,
        permissions: &Permission::ALL,
    },
    BuiltinRole {
        key: MANAGER,
        name: "Manager",
        rank: 30,
        permissions: &[
            Permission::UsersRead,
            Permission::UsersInvite,
            Permission::UsersManage,
            Permission::GroupsManage,
            Permission::PoolsManage,
            Permission::PoolsOperate,
            Permission::AuditRead,
        ],
    },
    BuiltinRole {
        key: ENGINEER,
        name: "Engineer",
        rank: 20,
        permissions: &[Permission::UsersRead, Permission::PoolsOperate],
    },
    BuiltinRole {
        key: MEMBER,
        name: "Member",
        rank: 10,
        permissions: &[Permission::UsersRead],
    },
];

impl crate::db::roles::Role {
    pub fn permission_set(&self) -> PermissionSet {
        PermissionSet::parse_lenient(&self.permissions)
    }
}

/// Gives a new organization the built-in roles.
pub fn seed_builtin(conn: &mut crate::db::DbConnection, org_id: &str) -> diesel::QueryResult<()> {
    for builtin in BUILTIN_ROLES {
        let id = crate::db::new_id();
        let permissions = builtin.permissions().to_string();
        crate::db::roles::insert(
            conn,
            &crate::db::roles::NewRole {
                id: &id,
                org_id,
                key: builtin.key,
                name: builtin.name,
                permissions: &permissions,
                rank: builtin.rank,
                builtin: true,
                created_at: crate::db::now(),
            },
        )?;
    }
    Ok(())
}

/// Effective permissions of a member: their role's, plus every role their groups grant,
/// plus — inside a pool subtree — the pool roles they hold on that pool or an ancestor
/// (pass none for organization-wide checks). Every permission check goes through here.
pub fn effective_permissions<'a>(
    member_role: &str,
    group_roles: impl IntoIterator<Item = &'a str>,
    pool_roles: impl IntoIterator<Item = &'a str>,
) -> PermissionSet {
    group_roles
        .into_iter()
        .chain(pool_roles)
        .fold(PermissionSet::parse_lenient(member_role), |acc, r| {
            acc.union(PermissionSet::parse_lenient(r))
        })
}

/// The rank a custom role with these permissions gets: that of the smallest built-in
/// role covering them, so "nobody grants above their own" keeps its meaning.
pub fn rank_for(perms: PermissionSet) -> i64 {
    BUILTIN_ROLES
        .iter()
        .rev()
        .find(|b| perms.iter().all(|p| b.permissions().contains(p)))
        .map(|b| b.rank)
        .unwrap_or(BUILTIN_ROLES[0].rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_has_everything_member_reads() {
        assert_eq!(BUILTIN_ROLES[0].permissions(), PermissionSet::all());
        let member = BUILTIN_ROLES[3].permissions();
        assert!(member.contains(Permission::UsersRead));
        assert!(!member.contains(Permission::UsersManage));
        assert!(!member.is_admin());
    }

    #[test]
    fn stored_form_round_trips() {
        let set = PermissionSet::of(&[Permission::AuditRead, Permission::UsersRead]);
        assert_eq!(set.to_string(), "users.read,audit.read");
        assert_eq!(PermissionSet::parse_lenient(&set.to_string()), set);
        assert_eq!(
            PermissionSet::parse_lenient("users.read, bogus"),
            PermissionSet::of(&[Permission::UsersRead])
        );
    }

    #[test]
    fn group_roles_add_to_the_member_role() {
        let eff = effective_permissions("users.read", ["org.manage", "audit.read"], []);
        assert!(eff.is_admin());
        assert!(eff.contains(Permission::AuditRead));
        assert!(!effective_permissions("users.read", [], []).is_admin());
    }

    #[test]
    fn pool_roles_add_inside_the_subtree() {
        let eff = effective_permissions("users.read", [], ["pools.manage"]);
        assert!(eff.contains(Permission::PoolsManage));
        assert!(!eff.is_admin());
    }

    #[test]
    fn custom_role_rank_is_the_smallest_covering_builtin() {
        assert_eq!(rank_for(PermissionSet::of(&[Permission::UsersRead])), 10);
        assert_eq!(rank_for(PermissionSet::default()), 10);
        assert_eq!(rank_for(PermissionSet::of(&[Permission::AuditRead])), 30);
        assert_eq!(rank_for(PermissionSet::of(&[Permission::OrgManage])), 100);
    }
}
