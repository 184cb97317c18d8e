//! Pools form a tree per organization. A pool role (Manager or Engineer) held on a pool
//! applies to that pool and its whole subtree: a pool Manager manages inside it and
//! nothing outside; a pool Engineer reads. A member whose own role is Engineer
//! (`pools.operate`) acts on the pools they belong to, and only those, within their rank.
//! Organization-wide `pools.manage` covers every pool.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::FieldErrors;
use super::RuleError;
use super::member_picker::{Picker, PickerPage};
use super::members::{Actor, CHOOSE_A_MEMBER, check_own_role_change, in_org_tx, load_target};
use super::names::{HIDES_TEXT, newly_hides_text};
use super::policy::Standing;
use super::roles::{ENGINEER, MANAGER, Permission, PermissionSet};
use crate::audit::{self, Event, Origin};
use crate::db::pools::{self, Pool};
use crate::db::roles::Role;
use crate::db::users::User;
use crate::db::{DbConnection, memberships, roles};

/// Parent links of one organization's pools, for walking up and down the tree.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    parent: HashMap<String, Option<String>>,
    children: HashMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
    UnknownParent,
    UnderItself,
    UnderDescendant,
    TooDeep,
}

/// Levels a pool tree may have (a root is the first). The tree is read whole for every
/// pools page and walked per pool; a bound keeps that work, and the indentation printed
/// per level, small whoever creates the pools.
pub const MAX_LEVELS: usize = 10;

/// Pools one organization may have, for the same reason.
pub const MAX_POOLS: usize = 1_000;

impl std::fmt::Display for MoveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MoveError::UnknownParent => "Choose one of the organization's pools.",
            MoveError::UnderItself => "A pool cannot be its own parent.",
            MoveError::UnderDescendant => "A pool cannot move under one of its own sub-pools.",
            MoveError::TooDeep => "Pools nest at most 10 levels deep: choose a parent higher up.",
        })
    }
}

impl Tree {
    pub fn new<'a>(links: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        let mut tree = Tree::default();
        for (id, parent) in links {
            tree.parent
                .insert(id.to_string(), parent.map(str::to_string));
            if let Some(p) = parent {
                tree.children
                    .entry(p.to_string())
                    .or_default()
                    .push(id.to_string());
            }
        }
        tree
    }

    pub fn of(pools: &[Pool]) -> Self {
        Tree::new(
            pools
                .iter()
                .map(|p| (p.id.as_str(), p.parent_id.as_deref())),
        )
    }

    pub fn contains(&self, id: &str) -> bool {
        self.parent.contains_key(id)
    }

    /// The pool itself, then its parent, up to the root (stops on a corrupt cycle).
    pub fn ancestors_or_self(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut current = Some(id.to_string());
        while let Some(c) = current {
            if !self.contains(&c) || !seen.insert(c.clone()) {
                break;
            }
            current = self.parent.get(&c).cloned().flatten();
            out.push(c);
        }
        out
    }

    /// Every pool below `id`, not including it.
    pub fn descendants(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = HashSet::from([id.to_string()]);
        let mut stack = vec![id.to_string()];
        while let Some(c) = stack.pop() {
            for child in self.children.get(&c).into_iter().flatten() {
                if seen.insert(child.clone()) {
                    out.push(child.clone());
                    stack.push(child.clone());
                }
            }
        }
        out
    }

    /// The pool `id` and every pool below it: what deleting or moving it takes along.
    pub fn subtree(&self, id: &str) -> Vec<String> {
        let mut all = self.descendants(id);
        all.push(id.to_string());
        all
    }

    /// Whether `id` may move under `new_parent` (`None` = make it a root).
    pub fn check_move(&self, id: &str, new_parent: Option<&str>) -> Result<(), MoveError> {
        let Some(parent) = new_parent else {
            return Ok(());
        };
        if !self.contains(parent) {
            return Err(MoveError::UnknownParent);
        }
        if parent == id {
            return Err(MoveError::UnderItself);
        }
        if self.descendants(id).iter().any(|d| d == parent) {
            return Err(MoveError::UnderDescendant);
        }
        self.check_room_under(Some(parent), self.height(id))
    }

    /// Whether a subtree `height` levels tall (0: a single pool) fits under `parent`
    /// (`None` = as a root) within `MAX_LEVELS`.
    pub fn check_room_under(&self, parent: Option<&str>, height: usize) -> Result<(), MoveError> {
        let level = parent.map_or(0, |p| self.depth(p) + 1);
        if level + height >= MAX_LEVELS {
            return Err(MoveError::TooDeep);
        }
        Ok(())
    }

    /// Levels below `id` (0 for a pool without sub-pools).
    fn height(&self, id: &str) -> usize {
        let base = self.depth(id);
        self.descendants(id)
            .iter()
            .map(|d| self.depth(d) - base)
            .max()
            .unwrap_or(0)
    }

    /// Depth of each pool, for printing the tree indented.
    pub fn depth(&self, id: &str) -> usize {
        self.ancestors_or_self(id).len().saturating_sub(1)
    }
}

/// Pools in tree order (each parent before its children, siblings by name) with depth.
pub fn tree_order(pools: &[Pool]) -> Vec<(Pool, usize)> {
    let tree = Tree::of(pools);
    let by_id: HashMap<&str, &Pool> = pools.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut children: HashMap<Option<&str>, Vec<&Pool>> = HashMap::new();
    for p in pools {
        let parent = p.parent_id.as_deref().filter(|id| by_id.contains_key(id));
        children.entry(parent).or_default().push(p);
    }
    for list in children.values_mut() {
        list.sort_by_key(|a| a.name.to_lowercase());
    }
    let mut out = Vec::new();
    let mut stack: Vec<&Pool> = children.get(&None).cloned().unwrap_or_default();
    stack.reverse();
    let mut seen = HashSet::new();
    while let Some(p) = stack.pop() {
        if !seen.insert(p.id.as_str()) {
            continue;
        }
        out.push((p.clone(), tree.depth(&p.id)));
        if let Some(kids) = children.get(&Some(p.id.as_str())) {
            stack.extend(kids.iter().rev());
        }
    }
    out
}

/// A pool as a form offers it: in tree order, indented by depth, with the path of its
/// parents so two sub-pools of the same name under different parents tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolChoice {
    pub id: String,
    pub name: String,
    pub depth: usize,
    /// "Ops / Berlin" for a pool under Berlin under Ops; empty for a top-level pool.
    pub parent_path: String,
}

/// The organization's pools as choices, each parent before its children.
pub fn choices(pools: &[Pool]) -> Vec<PoolChoice> {
    choices_among(pools, None)
}

/// [`choices`] for a reader who may see only the pools `shown`: only those are offered,
/// and a choice's parents name only those (not a pool above them the reader cannot open).
pub fn choices_among(pools: &[Pool], shown: Option<&HashSet<String>>) -> Vec<PoolChoice> {
    let seen = |id: &str| shown.is_none_or(|s| s.contains(id));
    let tree = Tree::of(pools);
    let names: HashMap<&str, &str> = pools
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    tree_order(pools)
        .into_iter()
        .filter(|(pool, _)| seen(&pool.id))
        .map(|(pool, depth)| {
            let mut above: Vec<&str> = tree
                .ancestors_or_self(&pool.id)
                .iter()
                .skip(1)
                .filter(|id| seen(id))
                .filter_map(|id| names.get(id.as_str()).copied())
                .collect();
            above.reverse();
            PoolChoice {
                parent_path: above.join(" / "),
                id: pool.id,
                name: pool.name,
                depth,
            }
        })
        .collect()
}

/// The pool roles that apply at `pool_id`: those held on it or on an ancestor.
pub fn roles_in_scope<'a>(tree: &Tree, pool_id: &str, held: &'a [(String, Role)]) -> Vec<&'a Role> {
    let scope = tree.ancestors_or_self(pool_id);
    held.iter()
        .filter(|(p, _)| scope.contains(p))
        .map(|(_, r)| r)
        .collect()
}

/// What the actor may do at one pool, and their rank there.
#[derive(Debug, Clone, Copy)]
pub struct PoolAccess {
    pub perms: PermissionSet,
    pub rank: i64,
    /// Holds a pool role on this pool or an ancestor (a pool member may read it).
    pub in_pool: bool,
}

impl PoolAccess {
    pub fn standing(&self) -> super::policy::Standing {
        super::policy::Standing {
            perms: self.perms,
            rank: self.rank,
        }
    }

    pub fn can_read(&self) -> bool {
        self.in_pool || self.standing().may(Permission::PoolsManage)
    }

    pub fn can_manage(&self) -> bool {
        self.standing().may(Permission::PoolsManage)
    }
}

/// Everything needed to answer "what may this member do at pool X", loaded once.
pub struct Scope {
    pub pools: Vec<Pool>,
    pub tree: Tree,
    member_role: Role,
    group_roles: Vec<Role>,
    held: Vec<(String, Role)>,
}

impl Scope {
    pub fn load(conn: &mut DbConnection, actor: &Actor) -> Result<Scope, RuleError> {
        let row =
            memberships::find(conn, &actor.org_id, &actor.user_id)?.ok_or(RuleError::NotFound)?;
        let group_roles = memberships::group_roles(conn, &actor.org_id, &actor.user_id)?;
        let held = pools::roles_of_user(conn, &actor.org_id, &actor.user_id)?;
        let pools = pools::list(conn, &actor.org_id)?;
        let tree = Tree::of(&pools);
        Ok(Scope {
            pools,
            tree,
            member_role: row.role,
            group_roles,
            held,
        })
    }

    /// Organization-wide: no pool roles count.
    pub fn org_access(&self) -> PoolAccess {
        self.access_with(&[])
    }

    pub fn at(&self, pool_id: &str) -> PoolAccess {
        self.access_with(&roles_in_scope(&self.tree, pool_id, &self.held))
    }

    fn access_with(&self, pool_roles: &[&Role]) -> PoolAccess {
        let groups: Vec<(&str, i64)> = self
            .group_roles
            .iter()
            .map(|r| (r.permissions.as_str(), r.rank))
            .collect();
        let pools: Vec<(&str, i64)> = pool_roles
            .iter()
            .map(|r| (r.permissions.as_str(), r.rank))
            .collect();
        let in_pool = !pool_roles.is_empty();
        let role = (self.member_role.permissions.as_str(), self.member_role.rank);
        let Standing { perms, rank } = Standing::at_pool(
            Standing::of(role, &groups, &[]),
            Standing::of(role, &groups, &pools),
            in_pool,
        );
        PoolAccess {
            perms,
            rank,
            in_pool,
        }
    }

    /// Where the actor may create a pool: `None` is the top level.
    pub fn access_under(&self, parent: Option<&str>) -> PoolAccess {
        match parent {
            Some(p) => self.at(p),
            None => self.org_access(),
        }
    }

    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.id == id)
    }

    /// The organization's pool `id`, or "not found".
    pub fn find(&self, id: &str) -> Result<Pool, RuleError> {
        self.pool(id).cloned().ok_or(RuleError::NotFound)
    }

    /// Pools the actor may see: all with organization-wide `pools.manage`, otherwise
    /// the subtrees of the pools they belong to.
    pub fn visible(&self) -> HashSet<String> {
        if self.org_access().can_manage() {
            return self.pools.iter().map(|p| p.id.clone()).collect();
        }
        let mut out = HashSet::new();
        for (pool_id, _) in &self.held {
            if self.tree.contains(pool_id) {
                out.insert(pool_id.clone());
                out.extend(self.tree.descendants(pool_id));
            }
        }
        out
    }
}

/// The pools whose names and roles `actor` may read on other members' rows and profiles:
/// `None` when every pool (organization-wide `pools.manage`), otherwise those they see in
/// the tree ([`Scope::visible`]). A pool's page refuses everyone else, so its name must
/// not reach them through a member who belongs to it.
pub fn readable_by(
    conn: &mut DbConnection,
    actor: &Actor,
) -> diesel::QueryResult<Option<HashSet<String>>> {
    if actor.standing().may(Permission::PoolsManage) {
        return Ok(None);
    }
    match Scope::load(conn, actor) {
        Ok(scope) => Ok(Some(scope.visible())),
        Err(RuleError::Db(e)) => Err(e),
        Err(_) => Ok(Some(HashSet::new())),
    }
}

fn forbidden() -> RuleError {
    RuleError::Forbidden("You do not have permission to manage this pool.".into())
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PoolForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub parent_id: String,
}

pub fn parse_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Enter a name for the pool.");
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("Use at most 100 printable characters.");
    }
    Ok(name.to_string())
}

fn parent_of(form: &PoolForm) -> Option<&str> {
    Some(form.parent_id.trim()).filter(|p| !p.is_empty())
}

const SIBLING_NAME_TAKEN: &str =
    "Another pool at this level already has this name: choose another name or parent.";

fn refuse_sibling_name(
    conn: &mut DbConnection,
    org_id: &str,
    parent: Option<&str>,
    name: &str,
    except: Option<&str>,
) -> Result<(), RuleError> {
    if pools::sibling_name_taken(conn, org_id, parent, name, except)? {
        return Err(RuleError::invalid("name", SIBLING_NAME_TAKEN));
    }
    Ok(())
}

/// The unique index's refusal, for a writer the check above did not see (the org lock
/// makes that rare): the same message as the check.
fn sibling_name_clash(e: diesel::result::Error) -> RuleError {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => RuleError::invalid("name", SIBLING_NAME_TAKEN),
        e => e.into(),
    }
}

fn event(action: &'static str, actor: &Actor, pool: (&str, &str), origin: &Origin) -> Event {
    Event::new(action, origin)
        .org(&actor.org_id)
        .actor(&actor.user_id, &actor.email)
        .target("pool", pool.0, pool.1)
}

pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    form: &PoolForm,
    origin: &Origin,
) -> Result<String, RuleError> {
    let mut errors = FieldErrors::default();
    let name = errors.check("name", parse_name(&form.name));
    if name.as_deref().is_some_and(|n| newly_hides_text(n, None)) {
        errors.add("name", HIDES_TEXT);
    }
    in_org_tx(conn, actor, |conn| {
        let scope = Scope::load(conn, actor)?;
        let parent = parent_of(form);
        if let Some(p) = parent
            && scope.pool(p).is_none()
        {
            errors.add("parent_id", MoveError::UnknownParent.to_string());
        } else if let Err(e) = scope.tree.check_room_under(parent, 0) {
            errors.add("parent_id", e.to_string());
        }
        if scope.pools.len() >= MAX_POOLS {
            errors.add(
                "name",
                format!("This organization has {MAX_POOLS} pools, the most it may have: delete one first."),
            );
        }
        let Some(name) = name.filter(|_| errors.is_empty()) else {
            return Err(RuleError::Invalid(errors));
        };
        if !scope.access_under(parent).can_manage() {
            return Err(forbidden());
        }
        refuse_sibling_name(conn, &actor.org_id, parent, &name, None)?;
        let id = pools::insert(conn, &actor.org_id, parent, &name, &actor.user_id)
            .map_err(sibling_name_clash)?;
        audit::record(
            conn,
            &event("pool.created", actor, (&id, &name), origin)
                .details(json!({ "parent_id": parent })),
        )?;
        Ok(id)
    })
}

/// Renames and/or moves a pool. Renaming needs `pools.manage` at the pool; moving also
/// needs it where the pool leaves from and where it goes to.
pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    pool_id: &str,
    form: &PoolForm,
    origin: &Origin,
) -> Result<(), RuleError> {
    let mut errors = FieldErrors::default();
    let name = errors.check("name", parse_name(&form.name));
    in_org_tx(conn, actor, |conn| {
        let scope = Scope::load(conn, actor)?;
        let pool = scope.find(pool_id)?;
        let access = scope.at(&pool.id);
        if !access.can_read() {
            return Err(forbidden());
        }
        if !access.can_manage() {
            return Err(forbidden());
        }
        if name
            .as_deref()
            .is_some_and(|n| newly_hides_text(n, Some(&pool.name)))
        {
            errors.add("name", HIDES_TEXT);
        }
        let new_parent = parent_of(form);
        if let Err(e) = scope.tree.check_move(&pool.id, new_parent) {
            errors.add("parent_id", e.to_string());
        }
        let Some(name) = name.filter(|_| errors.is_empty()) else {
            return Err(RuleError::Invalid(errors));
        };
        let moved = new_parent != pool.parent_id.as_deref();
        let from = scope.access_under(pool.parent_id.as_deref());
        if moved && (!from.can_manage() || !scope.access_under(new_parent).can_manage()) {
            return Err(forbidden());
        }
        // Moved elsewhere, a pool Manager's pool could land where its mover outranks
        // them: moving is acting on the pool roles inside, as deleting is.
        let subtree = scope.tree.subtree(&pool.id);
        if moved && !covers_roles_held_in(conn, actor, &from, &subtree)? {
            // Said at the field, with the form kept: the rest of it may still be saved.
            return Err(RuleError::invalid(
                "parent_id",
                "You cannot move this pool: someone in it holds a pool role that ranks above your own or holds a permission you do not hold.",
            ));
        }
        refuse_sibling_name(conn, &actor.org_id, new_parent, &name, Some(&pool.id))?;
        pools::update(conn, &actor.org_id, &pool.id, &name, new_parent)
            .map_err(sibling_name_clash)?;
        let (action, details) = if moved {
            (
                "pool.moved",
                json!({ "old_parent_id": pool.parent_id, "parent_id": new_parent, "old_name": pool.name }),
            )
        } else {
            ("pool.updated", json!({ "old_name": pool.name }))
        };
        audit::record(
            conn,
            &event(action, actor, (&pool.id, &name), origin).details(details),
        )?;
        Ok(())
    })
}

/// What deleting a pool takes with it, for the confirmation page.
pub struct DeletePlan {
    pub pool: Pool,
    pub sub_pools: Vec<String>,
    pub memberships: i64,
}

/// Whether `access` (the actor's standing where a subtree hangs) may act on every pool
/// role held in these pools: deleting the subtree takes those roles away, and moving it
/// takes it out of reach of those who manage it where it hangs now.
fn covers_roles_held_in(
    conn: &mut DbConnection,
    actor: &Actor,
    access: &PoolAccess,
    pool_ids: &[String],
) -> diesel::QueryResult<bool> {
    let held = pools::roles_held_in(conn, &actor.org_id, pool_ids)?;
    Ok(held
        .iter()
        .all(|role| access.standing().may_act_on(Standing::of_role(role))))
}

pub fn delete_plan(
    conn: &mut DbConnection,
    actor: &Actor,
    pool_id: &str,
) -> Result<DeletePlan, RuleError> {
    let scope = Scope::load(conn, actor)?;
    let pool = scope.find(pool_id)?;
    let access = scope.access_under(pool.parent_id.as_deref());
    if !access.can_manage() {
        return Err(forbidden());
    }
    let descendants = scope.tree.descendants(&pool.id);
    let all = scope.tree.subtree(&pool.id);
    // Deleting takes every pool role in the subtree away from its holder.
    if !covers_roles_held_in(conn, actor, &access, &all)? {
        return Err(RuleError::Forbidden(
            "You cannot delete this pool: someone in it holds a pool role that ranks above your own or holds a permission you do not hold."
                .into(),
        ));
    }
    let memberships = pools::member_count(conn, &actor.org_id, &all)?;
    let sub_pools = descendants
        .iter()
        .filter_map(|id| scope.pool(id).map(|p| p.name.clone()))
        .collect();
    Ok(DeletePlan {
        pool,
        sub_pools,
        memberships,
    })
}

/// Deletes a pool with its sub-pools and their memberships. Needs `pools.manage` where
/// the pool hangs (a pool Manager removes sub-pools, not the pool they manage).
pub fn delete(
    conn: &mut DbConnection,
    actor: &Actor,
    pool_id: &str,
    origin: &Origin,
) -> Result<String, RuleError> {
    in_org_tx(conn, actor, |conn| {
        let plan = delete_plan(conn, actor, pool_id)?;
        let scope_tree = Tree::of(&pools::list(conn, &actor.org_id)?);
        let ids = scope_tree.subtree(&plan.pool.id);
        pools::delete_many(conn, &actor.org_id, &ids)?;
        audit::record(
            conn,
            &event(
                "pool.deleted",
                actor,
                (&plan.pool.id, &plan.pool.name),
                origin,
            )
            .details(
                json!({ "sub_pools": plan.sub_pools, "memberships_removed": plan.memberships }),
            ),
        )?;
        Ok(plan.pool.name)
    })
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PoolMemberForm {
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub role_id: String,
}

/// The pool role an invitation naming a pool gives: the invitation's role, but none above
/// Manager, the most a pool page grants. A pool role outlives a later change of the
/// member's organization role, so an Admin's would keep Admin's reach in the pool after a
/// demotion.
pub fn invited_pool_role(
    conn: &mut DbConnection,
    org_id: &str,
    role: &Role,
) -> diesel::QueryResult<String> {
    // By rank alone: a custom role below Manager that holds a permission Manager lacks
    // must not become Manager, above the role it was.
    Ok(match roles::find_by_key(conn, org_id, MANAGER)? {
        Some(manager) if role.rank > manager.rank => manager.id,
        _ => role.id.clone(),
    })
}

/// The two roles a pool membership can carry.
pub fn pool_roles(conn: &mut DbConnection, org_id: &str) -> diesel::QueryResult<Vec<Role>> {
    Ok(roles::list(conn, org_id)?
        .into_iter()
        .filter(|r| r.builtin && (r.key == MANAGER || r.key == ENGINEER))
        .collect())
}

pub fn add_member(
    conn: &mut DbConnection,
    actor: &Actor,
    pool_id: &str,
    form: &PoolMemberForm,
    origin: &Origin,
) -> Result<String, RuleError> {
    if pool_id.trim().is_empty() {
        return Err(RuleError::invalid("pool_id", "Choose a pool."));
    }
    in_org_tx(conn, actor, |conn| {
        let scope = Scope::load(conn, actor)?;
        // Someone who manages no pool at all is refused before any pool id is looked
        // up, so a pool id from elsewhere tells them nothing either way.
        let manages_some = scope.org_access().can_manage()
            || scope.pools.iter().any(|p| scope.at(&p.id).can_manage());
        if !manages_some {
            return Err(forbidden());
        }
        let pool = scope.find(pool_id)?;
        let access = scope.at(&pool.id);
        if !access.can_manage() {
            return Err(forbidden());
        }
        let role = pool_roles(conn, &actor.org_id)?
            .into_iter()
            .find(|r| r.id == form.role_id.trim())
            .ok_or_else(|| RuleError::invalid("role_id", "Choose Manager or Engineer."))?;
        if !access.standing().may_grant(Standing::of_role(&role)) {
            return Err(RuleError::Forbidden(
                "You cannot grant a role that ranks above your own or holds a permission you do not hold."
                    .into(),
            ));
        }
        if form.user_id.trim().is_empty() {
            return Err(RuleError::invalid("user_id", CHOOSE_A_MEMBER));
        }
        let target = memberships::find(conn, &actor.org_id, form.user_id.trim())?
            .ok_or(RuleError::NotFound)?;
        // A pool role outlives a role a group lends: one's own stays within one's own role.
        check_own_role_change(actor, &target, &role)?;
        if pools::is_member(conn, &pool.id, &target.user.id)? {
            // Said at the picker: with JavaScript its matches include who is in already.
            let already = format!("{} is already in {}.", target.user.email, pool.name);
            return Err(RuleError::invalid("user_id", &already));
        }
        pools::add_member(conn, &actor.org_id, &pool.id, &target.user.id, &role.id)?;
        audit::record(
            conn,
            &Event::new("pool.member_added", origin)
                .org(&actor.org_id)
                .actor(&actor.user_id, &actor.email)
                .target("user", &target.user.id, &target.user.email)
                .details(json!({ "pool_id": pool.id, "pool": pool.name, "role": role.name })),
        )?;
        Ok(target.user.email)
    })
}

pub fn remove_member(
    conn: &mut DbConnection,
    actor: &Actor,
    pool_id: &str,
    user_id: &str,
    origin: &Origin,
) -> Result<String, RuleError> {
    in_org_tx(conn, actor, |conn| {
        let scope = Scope::load(conn, actor)?;
        let pool = scope.find(pool_id)?;
        let access = scope.at(&pool.id);
        if !access.can_manage() {
            return Err(forbidden());
        }
        let target = load_target(conn, actor, user_id)?;
        // Taking a pool role away is acting on its holder: an Engineer running a pool
        // removes no Manager from it.
        let held = pools::roles_of_user(conn, &actor.org_id, &target.user.id)?;
        if let Some((_, role)) = held.iter().find(|(p, _)| *p == pool.id)
            && !access.standing().may_act_on(Standing::of_role(role))
        {
            return Err(RuleError::Forbidden(
                "You cannot remove someone whose role in this pool ranks above your own or holds a permission you do not hold."
                    .into(),
            ));
        }
        if pools::remove_member(conn, &actor.org_id, &pool.id, &target.user.id)? == 0 {
            return Err(RuleError::NotFound);
        }
        audit::record(
            conn,
            &Event::new("pool.member_removed", origin)
                .org(&actor.org_id)
                .actor(&actor.user_id, &actor.email)
                .target("user", &target.user.id, &target.user.email)
                .details(json!({ "pool_id": pool.id, "pool": pool.name })),
        )?;
        Ok(target.user.email)
    })
}

/// The pools into which a member may invite people because a pool role they hold there
/// (on the pool or an ancestor) grants `users.invite`: a pool Manager's subtree.
pub fn invitable_pools(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> diesel::QueryResult<HashSet<String>> {
    let held = pools::roles_of_user(conn, org_id, user_id)?;
    if held.is_empty() {
        return Ok(HashSet::new());
    }
    let all = pools::list(conn, org_id)?;
    let tree = Tree::of(&all);
    Ok(all
        .iter()
        .filter(|p| {
            roles_in_scope(&tree, &p.id, &held)
                .iter()
                .any(|r| r.permission_set().contains(Permission::UsersInvite))
        })
        .map(|p| p.id.clone())
        .collect())
}

const MEMBERS_SHOWN: i64 = 500;

/// A pool's name indented by its depth, for the tree and the parent selects.
fn indent(depth: usize) -> String {
    "— ".repeat(depth)
}

pub struct TreeRow {
    pub pool: Pool,
    pub depth: usize,
    pub indent: String,
    pub members: i64,
}

/// The Pools page: the pools the actor may see, in tree order.
pub struct PoolList {
    pub rows: Vec<TreeRow>,
    /// Pools under which the actor may create a sub-pool: (id, indented name).
    pub parents: Vec<(String, String)>,
    pub can_create_root: bool,
    /// They may invite people, organization-wide or into pools of theirs: the page leads
    /// to the invite form (a pool Manager without the Users tab has no other way there).
    pub may_invite: bool,
}

pub fn load_list(conn: &mut DbConnection, actor: &Actor) -> Result<PoolList, RuleError> {
    let scope = Scope::load(conn, actor)?;
    let visible = scope.visible();
    let mut list = PoolList {
        rows: Vec::new(),
        parents: Vec::new(),
        can_create_root: scope.org_access().can_manage(),
        may_invite: actor.standing().may(Permission::UsersInvite)
            || !invitable_pools(conn, &actor.org_id, &actor.user_id)?.is_empty(),
    };
    let counts = pools::member_counts(conn, &actor.org_id)?;
    for (pool, depth) in tree_order(&scope.pools) {
        if !visible.contains(&pool.id) {
            continue;
        }
        let members = counts.get(&pool.id).copied().unwrap_or(0);
        if scope.at(&pool.id).can_manage() {
            let label = format!("{}{}", indent(depth), pool.name);
            list.parents.push((pool.id.clone(), label));
        }
        list.rows.push(TreeRow {
            indent: indent(depth),
            depth,
            members,
            pool,
        });
    }
    Ok(list)
}

/// A pool's page: where it sits, its members, and the choices of its forms.
pub struct PoolView {
    pub pool: Pool,
    /// From the root down to the pool.
    pub path: Vec<Pool>,
    pub children: Vec<Pool>,
    pub members: Vec<(User, Role)>,
    pub can_manage: bool,
    /// Deleting needs `pools.manage` where the pool hangs (see [`delete_plan`]): a pool
    /// Manager deletes the pools below theirs, not their own.
    pub can_delete: bool,
    /// The pool roles the actor may give here.
    pub pool_roles: Vec<Role>,
    /// Finds an active member not in the pool yet.
    pub add_picker: Picker,
    /// Where the pool may move to (besides the top level when allowed).
    pub move_targets: Vec<(String, String)>,
    pub can_move_to_root: bool,
    /// Whether the current parent is among `move_targets`.
    pub parent_listed: bool,
}

impl PoolView {
    /// The edit form as the pool stands.
    pub fn form(&self) -> PoolForm {
        PoolForm {
            name: self.pool.name.clone(),
            parent_id: self.pool.parent_id.clone().unwrap_or_default(),
        }
    }
}

pub fn load_view(
    conn: &mut DbConnection,
    actor: &Actor,
    pool_id: &str,
    at: &PickerPage,
) -> Result<PoolView, RuleError> {
    let scope = Scope::load(conn, actor)?;
    let pool = scope.find(pool_id)?;
    let access = scope.at(&pool.id);
    if !access.can_read() {
        return Err(RuleError::Forbidden(
            "You do not have permission to do this.".into(),
        ));
    }
    let members = pools::members(conn, &actor.org_id, &pool.id, MEMBERS_SHOWN)?;
    let pool_roles = pool_roles(conn, &actor.org_id)?;
    let in_pool: Vec<String> = members.iter().map(|(u, _)| u.id.clone()).collect();
    let add = ("user_id", "Add a member");
    // Only those who may add members search the organization's members from here.
    let add_picker = if access.can_manage() {
        Picker::load(conn, actor, add, at, "", &in_pool)?
    } else {
        Picker::default()
    };
    let move_targets = move_targets(&scope, &pool.id);
    // As `delete_plan` decides: where the pool hangs, over every pool role inside it.
    let from = scope.access_under(pool.parent_id.as_deref());
    let subtree = scope.tree.subtree(&pool.id);
    let can_delete = from.can_manage() && covers_roles_held_in(conn, actor, &from, &subtree)?;
    Ok(PoolView {
        // A pool's name reaches only those who may open it: a Manager of a sub-pool sees
        // the path from their own pool down, not the names of the pools above it.
        path: scope
            .tree
            .ancestors_or_self(&pool.id)
            .iter()
            .rev()
            .filter(|id| scope.at(id).can_read())
            .filter_map(|id| scope.pool(id).cloned())
            .collect(),
        children: scope
            .pools
            .iter()
            .filter(|p| p.parent_id.as_deref() == Some(pool.id.as_str()))
            .cloned()
            .collect(),
        parent_listed: pool
            .parent_id
            .as_ref()
            .is_some_and(|p| move_targets.iter().any(|(id, _)| id == p)),
        members,
        can_manage: access.can_manage(),
        can_delete,
        pool_roles: super::policy::grantable(&access.standing(), pool_roles),
        add_picker,
        move_targets,
        can_move_to_root: scope.org_access().can_manage(),
        pool,
    })
}

/// Pools the actor manages outside the pool's own subtree: (id, indented name).
fn move_targets(scope: &Scope, pool_id: &str) -> Vec<(String, String)> {
    let own_subtree = scope.tree.subtree(pool_id);
    tree_order(&scope.pools)
        .into_iter()
        .filter(|(p, _)| !own_subtree.contains(&p.id) && scope.at(&p.id).can_manage())
        .map(|(p, depth)| (p.id, format!("{}{}", indent(depth), p.name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    //   a ── b ── c
    //   └─ d
    //   e
    fn tree() -> Tree {
        Tree::new([
            ("a", None),
            ("b", Some("a")),
            ("c", Some("b")),
            ("d", Some("a")),
            ("e", None),
        ])
    }

    fn named_pool(id: &str, parent: Option<&str>, name: &str) -> Pool {
        Pool {
            id: id.into(),
            org_id: "o".into(),
            parent_id: parent.map(str::to_string),
            name: name.into(),
            owner_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
        }
    }

    #[test]
    fn choices_come_in_tree_order_with_the_path_of_their_parents() {
        let pools = [
            named_pool("b", Some("a"), "Berlin"),
            named_pool("z", None, "Ads"),
            named_pool("c", Some("b"), "Night shift"),
            named_pool("a", None, "Ops"),
            named_pool("x", Some("z"), "Berlin"),
        ];
        let shown: Vec<(String, usize, String)> = choices(&pools)
            .into_iter()
            .map(|c| (c.name, c.depth, c.parent_path))
            .collect();
        let expected = [
            ("Ads", 0, ""),
            ("Berlin", 1, "Ads"),
            ("Ops", 0, ""),
            ("Berlin", 1, "Ops"),
            ("Night shift", 2, "Ops / Berlin"),
        ];
        let expected: Vec<(String, usize, String)> = expected
            .iter()
            .map(|(n, d, p)| (n.to_string(), *d, p.to_string()))
            .collect();
        assert_eq!(shown, expected);
    }

    fn role(key: &str, perms: &str, rank: i64) -> Role {
        Role {
            id: key.into(),
            org_id: "o".into(),
            key: key.into(),
            name: key.into(),
            permissions: perms.into(),
            rank,
            builtin: true,
            created_at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
        }
    }

    #[test]
    fn ancestors_walk_up_to_the_root() {
        let t = tree();
        assert_eq!(t.ancestors_or_self("c"), vec!["c", "b", "a"]);
        assert_eq!(t.ancestors_or_self("e"), vec!["e"]);
        assert!(t.ancestors_or_self("zz").is_empty());
        assert_eq!(t.depth("c"), 2);
    }

    #[test]
    fn descendants_cover_the_whole_subtree() {
        let t = tree();
        let mut d = t.descendants("a");
        d.sort();
        assert_eq!(d, vec!["b", "c", "d"]);
        assert!(t.descendants("c").is_empty());
    }

    #[test]
    fn moves_that_would_make_a_cycle_are_refused() {
        let t = tree();
        assert_eq!(t.check_move("a", Some("a")), Err(MoveError::UnderItself));
        assert_eq!(
            t.check_move("a", Some("c")),
            Err(MoveError::UnderDescendant)
        );
        assert_eq!(t.check_move("a", Some("zz")), Err(MoveError::UnknownParent));
        assert_eq!(t.check_move("c", Some("e")), Ok(()));
        assert_eq!(t.check_move("c", None), Ok(()));
        // A corrupt cycle in stored data does not hang the walk.
        let bad = Tree::new([("x", Some("y")), ("y", Some("x"))]);
        assert_eq!(bad.ancestors_or_self("x").len(), 2);
    }

    #[test]
    fn trees_grow_at_most_ten_levels_deep() {
        let names: Vec<String> = (0..MAX_LEVELS).map(|i| format!("p{i}")).collect();
        let chain = Tree::new(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i.checked_sub(1).map(|p| names[p].as_str()))),
        );
        let (top, ninth, last) = (&names[0], &names[MAX_LEVELS - 2], &names[MAX_LEVELS - 1]);
        assert_eq!(chain.check_room_under(Some(ninth), 0), Ok(()));
        assert_eq!(
            chain.check_room_under(Some(last), 0),
            Err(MoveError::TooDeep)
        );
        assert_eq!(chain.check_room_under(None, 0), Ok(()));
        // A whole chain of ten cannot move under anything; its lower half can, high up.
        let other = Tree::new(
            names
                .iter()
                .map(|n| (n.as_str(), None))
                .chain([("root", None)]),
        );
        assert_eq!(other.check_move(top, Some("root")), Ok(()));
        let with_root = Tree::new(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i.checked_sub(1).map(|p| names[p].as_str())))
                .chain([("root", None)]),
        );
        assert_eq!(
            with_root.check_move(top, Some("root")),
            Err(MoveError::TooDeep)
        );
        assert_eq!(with_root.check_move(&names[5], Some("root")), Ok(()));
    }

    #[test]
    fn a_pool_role_applies_in_its_subtree_only() {
        let t = tree();
        let held = vec![(
            "b".to_string(),
            role("manager", "pools.manage,users.read", 30),
        )];
        let at = |id: &str| {
            let roles = roles_in_scope(&t, id, &held);
            crate::domain::roles::effective_permissions(
                "users.read",
                [],
                roles.iter().map(|r| r.permissions.as_str()),
            )
        };
        assert!(at("b").contains(Permission::PoolsManage));
        assert!(at("c").contains(Permission::PoolsManage));
        assert!(!at("a").contains(Permission::PoolsManage));
        assert!(!at("d").contains(Permission::PoolsManage));
        assert!(!at("e").contains(Permission::PoolsManage));
    }

    #[test]
    fn tree_order_puts_parents_before_children() {
        let p = |id: &str, parent: Option<&str>, name: &str| Pool {
            id: id.into(),
            org_id: "o".into(),
            parent_id: parent.map(str::to_string),
            name: name.into(),
            owner_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
        };
        let pools = vec![
            p("c", Some("b"), "C"),
            p("b", Some("a"), "B"),
            p("a", None, "A"),
            p("e", None, "E"),
            p("d", Some("a"), "D"),
        ];
        let order: Vec<(String, usize)> = tree_order(&pools)
            .into_iter()
            .map(|(p, d)| (p.id, d))
            .collect();
        assert_eq!(
            order,
            vec![
                ("a".into(), 0),
                ("b".into(), 1),
                ("c".into(), 2),
                ("d".into(), 1),
                ("e".into(), 0)
            ]
        );
    }
}
