//! The route × actor × tenant matrix (issue 10, deliverable 2).
//!
//! Every route of `src/routes/mod.rs` is read from the source and must have a row in
//! `ROUTES`, which says what a caller needs to use it (`Need`). Every route is then hit
//! by every actor, with targets from the caller's organization and from another one, and
//! the expected status is computed from the actor's capabilities, not written by hand.
//! Every refused request is wrapped in a database snapshot: it may add `access.denied`
//! audit rows (the product records refusals under /orgs and /admin), nothing else.
//!
//! Phases, on one app:
//! 1. every GET, and every POST the policy refuses, against one stable set of targets;
//! 2. every POST the policy allows, each against targets made fresh for it, so one
//!    success (a delete, a deactivation) never changes what the next request sees;
//! 3. the session routes (password change, sign-in, sign-out), last, since they renew or
//!    end the actor's session.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::Text;
use portcullis::db::{self, DbConnection};
use portcullis::domain::roles::{BUILTIN_ROLES, Permission, PermissionSet};

use crate::helpers::*;

const MY: &str = "my-org";
const OTHER: &str = "other-org";
/// A token that names nothing: the token routes must answer it with one generic 404.
const DEAD_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// What a caller needs to use a route.
#[derive(Clone, Copy, Debug)]
enum Need {
    /// Anyone, signed in or not (a signed-in visitor may be redirected onwards).
    Public,
    /// A token route, hit with a token that does not exist: 404 for everyone.
    DeadToken,
    /// Any active account.
    SignedIn,
    /// A session id in the path that is not one of the caller's (the matrix passes a
    /// member's user id): 404 for anyone signed in, nothing changed.
    NotOwnSession,
    /// Any active account, but success needs a one-time code the matrix cannot compute
    /// (two-factor): a signed-in caller's request must fail cleanly and change nothing.
    SignedInCode,
    /// An active membership of the organization in the path, and the rule.
    Org(Rule),
    /// Platform operator or admin.
    PlatformRead,
    /// Platform admin.
    PlatformWrite,
}

/// What a member needs inside their organization.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Any active member.
    Member,
    Perm(Permission),
    /// Both permissions (another member's Activity tab is read from the audit trail).
    Both(Permission, Permission),
    /// The permission, and a rank at least this high (making an admin needs Admin's).
    Ranked(Permission, i64),
    /// Read the target pool: `pools.manage` there, or a pool role on it or an ancestor.
    PoolRead,
    /// `pools.manage` at the target pool (organization-wide or from a pool role). The
    /// target pools hang under the pool the pool Manager manages, so deleting one (which
    /// needs `pools.manage` at its parent) follows the same rule.
    PoolManage,
    /// `users.invite`, organization-wide or from a pool role (a pool Manager invites
    /// into their pools).
    Invite,
}

/// What `{id}` names in a route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Obj {
    None,
    Member,
    /// A member whose membership is inactive (what `activate` acts on).
    Inactive,
    /// An account disabled platform-wide (what `enable` acts on).
    Disabled,
    Group,
    Pool,
    Invitation,
    Role,
    /// An API token of the organization.
    Token,
}

/// When the route is exercised.
#[derive(Clone, Copy, Debug, PartialEq)]
enum When {
    /// Phases 1 and 2.
    Normal,
    /// Phase 3: it renews or ends the actor's session.
    Last,
}

type FormFn = fn(&Ids) -> Vec<(&'static str, String)>;

struct Route {
    method: &'static str,
    path: &'static str,
    need: Need,
    id: Obj,
    /// The form (POST) or query (GET) sent; ids come from the tenant's targets.
    form: FormFn,
    /// The form names objects by id, so another organization's ids are tried there too.
    ids_in_form: bool,
    when: When,
}

fn none(_: &Ids) -> Vec<(&'static str, String)> {
    Vec::new()
}

const fn r(method: &'static str, path: &'static str, need: Need, id: Obj) -> Route {
    Route {
        method,
        path,
        need,
        id,
        form: none,
        ids_in_form: false,
        when: When::Normal,
    }
}

const fn with_form(mut route: Route, form: FormFn, ids_in_form: bool) -> Route {
    route.form = form;
    route.ids_in_form = ids_in_form;
    route
}

const fn last(mut route: Route) -> Route {
    route.when = When::Last;
    route
}

use Need::*;
use Obj as O;
use Permission as P;
use Rule::*;

const USERS_READ: Need = Org(Perm(P::UsersRead));
const USERS_MANAGE: Need = Org(Perm(P::UsersManage));
const GROUPS_MANAGE: Need = Org(Perm(P::GroupsManage));
const INVITE_LIST: Need = Org(Perm(P::UsersInvite));
const ORG_MANAGE: Need = Org(Perm(P::OrgManage));
const AUDIT_READ: Need = Org(Perm(P::AuditRead));
/// The Admin role's rank: only someone who reaches it grants it.
const ADMIN_RANK: i64 = 100;

/// The expectation table: one row per route of `src/routes/mod.rs`.
const ROUTES: &[Route] = &[
    r("GET", "/", Public, O::None),
    r("GET", "/healthz", Public, O::None),
    r("GET", "/readyz", Public, O::None),
    r("GET", "/metrics", Public, O::None),
    r("GET", "/static/{name}", Public, O::None),
    r("GET", "/login", Public, O::None),
    r("GET", "/account", SignedIn, O::None),
    r(
        "POST",
        "/account/sessions/{id}/end",
        NotOwnSession,
        O::Member,
    ),
    r("POST", "/account/signin-alerts", SignedIn, O::None),
    r("GET", "/account/2fa", SignedIn, O::None),
    r("POST", "/account/2fa", SignedInCode, O::None),
    r("POST", "/account/2fa/disable", SignedInCode, O::None),
    r("POST", "/account/2fa/recovery-codes", SignedInCode, O::None),
    r("GET", "/login/2fa", Public, O::None),
    r("POST", "/login/2fa", Public, O::None),
    r("GET", "/setup/{token}", DeadToken, O::None),
    with_form(
        r("POST", "/setup/{token}", DeadToken, O::None),
        setup_form,
        false,
    ),
    r("GET", "/forgot-password", Public, O::None),
    with_form(
        r("POST", "/forgot-password", Public, O::None),
        forgot_password_form,
        false,
    ),
    r("GET", "/reset/{token}", DeadToken, O::None),
    with_form(
        r("POST", "/reset/{token}", DeadToken, O::None),
        reset_form,
        false,
    ),
    r("GET", "/orgs", SignedIn, O::None),
    // Every member enters here: without `users.read` they are sent on (303) to the
    // first tab they may open (users::a_role_without_users_read_lands_where_it_may_go).
    r("GET", "/orgs/{org}/users", Org(Member), O::None),
    with_form(
        r("GET", "/orgs/{org}/users/bulk", USERS_MANAGE, O::None),
        bulk_form,
        true,
    ),
    with_form(
        r("POST", "/orgs/{org}/users/bulk", USERS_MANAGE, O::None),
        bulk_form,
        true,
    ),
    r("GET", "/orgs/{org}/users/{id}", USERS_READ, O::Member),
    with_form(
        r("POST", "/orgs/{org}/users/{id}", USERS_MANAGE, O::Member),
        edit_form,
        true,
    ),
    r(
        "GET",
        "/orgs/{org}/users/{id}/groups",
        USERS_READ,
        O::Member,
    ),
    r("GET", "/orgs/{org}/users/{id}/pools", USERS_READ, O::Member),
    with_form(
        r(
            "POST",
            "/orgs/{org}/users/{id}/groups",
            GROUPS_MANAGE,
            O::Member,
        ),
        join_group_form,
        true,
    ),
    with_form(
        r(
            "POST",
            "/orgs/{org}/users/{id}/pools",
            Org(PoolManage),
            O::Member,
        ),
        join_pool_form,
        true,
    ),
    with_form(
        r(
            "POST",
            "/orgs/{org}/users/{id}/role",
            USERS_MANAGE,
            O::Member,
        ),
        engineer_form,
        true,
    ),
    with_form(
        r("GET", "/orgs/{org}/members/search", USERS_READ, O::None),
        search_form,
        false,
    ),
    r(
        "GET",
        "/orgs/{org}/users/{id}/activity",
        Org(Both(P::UsersRead, P::AuditRead)),
        O::Member,
    ),
    r(
        "GET",
        "/orgs/{org}/users/{id}/deactivate",
        USERS_MANAGE,
        O::Member,
    ),
    r(
        "POST",
        "/orgs/{org}/users/{id}/deactivate",
        USERS_MANAGE,
        O::Member,
    ),
    r(
        "POST",
        "/orgs/{org}/users/{id}/activate",
        USERS_MANAGE,
        O::Inactive,
    ),
    r(
        "GET",
        "/orgs/{org}/users/{id}/make-admin",
        Org(Ranked(P::UsersManage, ADMIN_RANK)),
        O::Member,
    ),
    r(
        "POST",
        "/orgs/{org}/users/{id}/make-admin",
        Org(Ranked(P::UsersManage, ADMIN_RANK)),
        O::Member,
    ),
    // The targets have no second factor: an allowed reset says there is nothing to reset.
    r(
        "GET",
        "/orgs/{org}/users/{id}/2fa/reset",
        ORG_MANAGE,
        O::Member,
    ),
    r(
        "POST",
        "/orgs/{org}/users/{id}/2fa/reset",
        ORG_MANAGE,
        O::Member,
    ),
    r(
        "GET",
        "/orgs/{org}/users/{id}/delete",
        USERS_MANAGE,
        O::Member,
    ),
    with_form(
        r(
            "POST",
            "/orgs/{org}/users/{id}/delete",
            USERS_MANAGE,
            O::Member,
        ),
        remove_form,
        false,
    ),
    r("GET", "/orgs/{org}/invitations", INVITE_LIST, O::None),
    with_form(
        r("POST", "/orgs/{org}/invitations", Org(Invite), O::None),
        invite_form,
        true,
    ),
    r("GET", "/orgs/{org}/invitations/new", Org(Invite), O::None),
    // The results of the caller's own last invite, once; without any, back to the tab.
    r("GET", "/orgs/{org}/invitations/sent", Org(Member), O::None),
    r(
        "POST",
        "/orgs/{org}/invitations/{id}/resend",
        INVITE_LIST,
        O::Invitation,
    ),
    r(
        "GET",
        "/orgs/{org}/invitations/{id}/cancel",
        INVITE_LIST,
        O::Invitation,
    ),
    r(
        "POST",
        "/orgs/{org}/invitations/{id}/cancel",
        INVITE_LIST,
        O::Invitation,
    ),
    r("GET", "/invite/{token}", DeadToken, O::None),
    with_form(
        r("POST", "/invite/{token}", DeadToken, O::None),
        accept_form,
        false,
    ),
    r("GET", "/orgs/{org}/roles", ORG_MANAGE, O::None),
    with_form(
        r("POST", "/orgs/{org}/roles", ORG_MANAGE, O::None),
        role_form,
        false,
    ),
    with_form(
        r("POST", "/orgs/{org}/roles/{id}", ORG_MANAGE, O::Role),
        role_form,
        false,
    ),
    r("GET", "/orgs/{org}/roles/{id}/delete", ORG_MANAGE, O::Role),
    r("POST", "/orgs/{org}/roles/{id}/delete", ORG_MANAGE, O::Role),
    r("GET", "/orgs/{org}/api-tokens", ORG_MANAGE, O::None),
    with_form(
        r("POST", "/orgs/{org}/api-tokens", ORG_MANAGE, O::None),
        api_token_form,
        true,
    ),
    r(
        "POST",
        "/orgs/{org}/api-tokens/{id}/revoke",
        ORG_MANAGE,
        O::Token,
    ),
    r("GET", "/orgs/{org}/settings", ORG_MANAGE, O::None),
    with_form(
        r("POST", "/orgs/{org}/settings/2fa", ORG_MANAGE, O::None),
        two_factor_policy_form,
        false,
    ),
    r("GET", "/orgs/{org}/groups", USERS_READ, O::None),
    with_form(
        r("POST", "/orgs/{org}/groups", GROUPS_MANAGE, O::None),
        group_form,
        true,
    ),
    r("GET", "/orgs/{org}/groups/{id}", USERS_READ, O::Group),
    with_form(
        r("POST", "/orgs/{org}/groups/{id}", GROUPS_MANAGE, O::Group),
        group_form,
        true,
    ),
    r(
        "GET",
        "/orgs/{org}/groups/{id}/delete",
        GROUPS_MANAGE,
        O::Group,
    ),
    r(
        "POST",
        "/orgs/{org}/groups/{id}/delete",
        GROUPS_MANAGE,
        O::Group,
    ),
    with_form(
        r(
            "POST",
            "/orgs/{org}/groups/{id}/members",
            GROUPS_MANAGE,
            O::Group,
        ),
        member_form,
        true,
    ),
    r(
        "POST",
        "/orgs/{org}/groups/{id}/members/{user_id}/remove",
        GROUPS_MANAGE,
        O::Group,
    ),
    r("GET", "/orgs/{org}/pools", Org(Member), O::None),
    with_form(
        r(
            "POST",
            "/orgs/{org}/pools",
            Org(Perm(P::PoolsManage)),
            O::None,
        ),
        pool_form,
        false,
    ),
    r("GET", "/orgs/{org}/pools/{id}", Org(PoolRead), O::Pool),
    with_form(
        r("POST", "/orgs/{org}/pools/{id}", Org(PoolManage), O::Pool),
        pool_form,
        true,
    ),
    r(
        "GET",
        "/orgs/{org}/pools/{id}/delete",
        Org(PoolManage),
        O::Pool,
    ),
    r(
        "POST",
        "/orgs/{org}/pools/{id}/delete",
        Org(PoolManage),
        O::Pool,
    ),
    with_form(
        r(
            "POST",
            "/orgs/{org}/pools/{id}/members",
            Org(PoolManage),
            O::Pool,
        ),
        pool_member_form,
        true,
    ),
    r(
        "POST",
        "/orgs/{org}/pools/{id}/members/{user_id}/remove",
        Org(PoolManage),
        O::Pool,
    ),
    r("GET", "/admin/orgs", PlatformRead, O::None),
    with_form(
        r("POST", "/admin/orgs", PlatformWrite, O::None),
        new_org_form,
        false,
    ),
    r("GET", "/admin/users", PlatformRead, O::None),
    with_form(
        r("POST", "/admin/users", PlatformWrite, O::None),
        new_user_form,
        true,
    ),
    r("GET", "/admin/users/{id}", PlatformRead, O::Member),
    r(
        "POST",
        "/admin/users/{id}/memberships/{org}/activate",
        PlatformWrite,
        O::Inactive,
    ),
    with_form(
        r(
            "POST",
            "/admin/users/{id}/memberships/{org}/role",
            PlatformWrite,
            O::Member,
        ),
        engineer_form,
        true,
    ),
    r(
        "POST",
        "/admin/users/{id}/sessions/end",
        PlatformWrite,
        O::Member,
    ),
    r(
        "GET",
        "/admin/users/{id}/2fa/reset",
        PlatformWrite,
        O::Member,
    ),
    r(
        "POST",
        "/admin/users/{id}/2fa/reset",
        PlatformWrite,
        O::Member,
    ),
    r("GET", "/admin/users/{id}/disable", PlatformWrite, O::Member),
    r(
        "POST",
        "/admin/users/{id}/disable",
        PlatformWrite,
        O::Member,
    ),
    r(
        "POST",
        "/admin/users/{id}/enable",
        PlatformWrite,
        O::Disabled,
    ),
    with_form(
        r(
            "POST",
            "/admin/users/{id}/memberships",
            PlatformWrite,
            O::Member,
        ),
        add_membership_form,
        true,
    ),
    r("GET", "/orgs/{org}/audit", AUDIT_READ, O::None),
    r("GET", "/orgs/{org}/audit.csv", AUDIT_READ, O::None),
    r("GET", "/admin/audit", PlatformRead, O::None),
    r("GET", "/admin/audit.csv", PlatformRead, O::None),
    // Phase 3, in this order.
    last(r("POST", "/account/sessions/end-others", SignedIn, O::None)),
    last(r("POST", "/account/password", SignedIn, O::None)),
    last(r("POST", "/login", Public, O::None)),
    last(r("POST", "/logout", Public, O::None)),
];

// ----- Forms: plausible values, so an allowed request succeeds -----

/// A different address each time: every actor asks from the same client address, under
/// the per-account limit.
fn forgot_password_form(_: &Ids) -> Vec<(&'static str, String)> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    vec![("email", format!("forgot{n}@example.com"))]
}

fn reset_form(_: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("password", "a new long password".into()),
        ("password_confirm", "a new long password".into()),
    ]
}

fn setup_form(_: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("email", "intruder@example.com".into()),
        ("first_name", "In".into()),
        ("last_name", "Truder".into()),
        ("org_name", "Intruders".into()),
        ("password", "a long enough password".into()),
        ("password_confirm", "a long enough password".into()),
    ]
}

fn accept_form(_: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("first_name", "In".into()),
        ("last_name", "Truder".into()),
        ("password", "a long enough password".into()),
        ("password_confirm", "a long enough password".into()),
    ]
}

fn bulk_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("action", "deactivate".into()),
        ("user_ids", ids.member.clone()),
    ]
}

fn edit_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("first_name", format!("Renamed{}", ids.n)),
        ("last_name", "Target".into()),
        ("role_id", ids.member_role.clone()),
    ]
}

fn remove_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("confirm_email", ids.member_email.clone()),
        ("successor_id", String::new()),
    ]
}

fn invite_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("emails", format!("invitee-{}@example.com", ids.n)),
        ("role_id", ids.member_role.clone()),
        ("pool_ids", ids.pool.clone()),
    ]
}

fn role_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("Custom role {}", ids.n)),
        ("permissions", "users.read".into()),
    ]
}

/// The role is named by id, so another organization's role is tried there too.
fn api_token_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("Token made {}", ids.n)),
        ("scopes", "scim".into()),
        ("expires_days", "30".into()),
        ("role_id", ids.member_role.clone()),
    ]
}

/// A long grace period, so that no actor of the matrix is held by it.
fn two_factor_policy_form(_: &Ids) -> Vec<(&'static str, String)> {
    vec![("require", "admins".into()), ("grace_days", "90".into())]
}

fn group_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("Group made {}", ids.n)),
        ("description", "made by the matrix".into()),
        ("role_id", ids.member_role.clone()),
        ("owner_id", ids.member.clone()),
    ]
}

fn member_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![("user_id", ids.member.clone())]
}

fn pool_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("Pool made {}", ids.n)),
        // Creating: the top level. Updating: the pool stays where it is.
        ("parent_id", ids.pool_parent_for_form.clone()),
    ]
}

fn pool_member_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("user_id", ids.member.clone()),
        ("role_id", ids.engineer_role.clone()),
    ]
}

fn new_org_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("Made {}", ids.n)),
        ("slug", format!("made-{}", ids.n)),
        ("admin_email", format!("boss-{}@example.com", ids.n)),
    ]
}

fn new_user_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("email", format!("made-{}@example.com", ids.n)),
        ("first_name", "Made".into()),
        ("last_name", "User".into()),
        ("org", ids.home.clone()),
        ("role_id", ids.member_role.clone()),
    ]
}

fn join_group_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![("group_id", ids.group.clone())]
}

fn join_pool_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("pool_id", ids.pool.clone()),
        ("role_id", ids.engineer_role.clone()),
    ]
}

fn search_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![("q", ids.member_email.clone())]
}

fn engineer_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![("role_id", ids.engineer_role.clone())]
}

fn add_membership_form(ids: &Ids) -> Vec<(&'static str, String)> {
    vec![
        ("org", ids.elsewhere.clone()),
        ("role_id", ids.elsewhere_role.clone()),
    ]
}

// ----- Targets -----

/// The objects a request names, all from one organization (`home`).
#[derive(Clone, Debug)]
struct Ids {
    n: usize,
    home: String,
    member: String,
    member_email: String,
    inactive: String,
    disabled: String,
    group: String,
    group_member: String,
    pool: String,
    pool_parent: String,
    /// What `pool_form` sends as `parent_id`: empty for a stable set (create at the top
    /// level), the pool's own parent when the pool is updated.
    pool_parent_for_form: String,
    pool_member: String,
    invitation: String,
    role: String,
    token: String,
    member_role: String,
    engineer_role: String,
    /// The other organization, and its Engineer role (for adding a membership there).
    elsewhere: String,
    elsewhere_role: String,
}

struct OrgInfo {
    slug: &'static str,
    id: String,
    /// An admin of the organization: owner of what the fixtures create.
    maker: String,
    /// The pool the pool Manager manages (in my-org); target pools hang under it.
    parent_pool: String,
    elsewhere: &'static str,
}

/// Fresh targets in `org`, made directly in the database (set-up, not under test).
fn fresh(app: &TestApp, org: &OrgInfo, n: usize) -> Ids {
    let slug = org.slug;
    let add = |what: &str| {
        app.add_member(
            slug,
            &format!("t{n}-{what}@{slug}.test"),
            "Tess",
            &format!("{what}{n}"),
            "member",
            false,
        )
    };
    let member = add("member");
    let inactive = add("inactive");
    app.deactivate_for_setup(slug, &inactive);
    let disabled = add("disabled");
    {
        use portcullis::db::schema::users;
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        diesel::update(users::table.filter(users::id.eq(&disabled)))
            .set(users::status.eq("disabled"))
            .execute(conn)
            .unwrap();
    }
    let group_member = add("in-group");
    let pool_member = add("in-pool");
    let member_role = app.role_id(slug, "member");
    let engineer_role = app.role_id(slug, "engineer");
    let mut pooled = app.conn();
    let conn: &mut DbConnection = &mut pooled;
    let group = db::groups::insert(conn, &org.id, &format!("Group {n}"), "", None, None).unwrap();
    db::groups::add_member(conn, &org.id, &group, &group_member).unwrap();
    let pool = db::pools::insert(
        conn,
        &org.id,
        Some(&org.parent_pool),
        &format!("Pool {n}"),
        &org.maker,
    )
    .unwrap();
    db::pools::add_member(conn, &org.id, &pool, &pool_member, &engineer_role).unwrap();
    let invitation = db::new_id();
    let now = db::now();
    db::invitations::insert(
        conn,
        &db::invitations::NewInvitation {
            id: &invitation,
            org_id: &org.id,
            email: &format!("t{n}-invited@{slug}.test"),
            first_name: "In",
            last_name: "Vited",
            role_id: &member_role,
            token_hash: &db::new_id(),
            status: "pending",
            invited_by: Some(&org.maker),
            created_at: now - chrono::Duration::minutes(5),
            expires_at: now + chrono::Duration::hours(72),
            // Long enough ago that a resend is not refused for coming too soon.
            last_sent_at: now - chrono::Duration::minutes(5),
            send_count: 1,
            access_until: None,
        },
    )
    .unwrap();
    let role =
        db::roles::insert_custom(conn, &org.id, &format!("Role {n}"), "users.read", 10).unwrap();
    let token = portcullis::domain::api_tokens::create_from_cli(
        conn,
        slug,
        &format!("Token {n}"),
        &["scim".to_string()],
        Some("member"),
        None,
    )
    .unwrap()
    .token
    .id;
    drop(pooled);
    Ids {
        n,
        home: slug.to_string(),
        member_email: format!("t{n}-member@{slug}.test"),
        member,
        inactive,
        disabled,
        group,
        group_member,
        pool,
        pool_parent: org.parent_pool.clone(),
        pool_parent_for_form: String::new(),
        pool_member,
        invitation,
        role,
        token,
        member_role,
        engineer_role,
        elsewhere: org.elsewhere.to_string(),
        elsewhere_role: app.role_id(org.elsewhere, "engineer"),
    }
}

// ----- Actors -----

struct Actor {
    name: &'static str,
    email: String,
    password: String,
    browser: Browser,
    csrf: String,
    signed_in: bool,
    platform: &'static str,
    /// The organization the actor is an active member of: slug, permissions, rank.
    org: Option<(&'static str, PermissionSet, i64)>,
    /// Permissions from a pool role, at the target pools (which hang under its pool).
    pool_perms: PermissionSet,
}

fn builtin(key: &str) -> (PermissionSet, i64) {
    let role = BUILTIN_ROLES.iter().find(|b| b.key == key).unwrap();
    (role.permissions(), role.rank)
}

impl Actor {
    async fn refresh_csrf(&mut self) {
        let page = if self.signed_in {
            self.browser.get("/account").await
        } else {
            self.browser.get("/login").await
        };
        self.csrf = hidden_value(&page.body, "csrf_token").unwrap_or_default();
    }
}

// ----- Expectations -----

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tenant {
    /// The caller's organization in the path, its objects as targets.
    Own,
    /// my-org in the path, other-org's objects as targets (in the path or the form).
    ForeignIds,
    /// other-org in the path, and its objects.
    ForeignOrg,
    /// The caller's own object in the path (a group, a pool, a member), another
    /// organization's objects referenced by the request: a member to add or remove, a
    /// role to grant, an owner, a parent pool to move under.
    Mixed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// 200/201, or a 303 that is not to the sign-in page.
    Allowed,
    /// 303 to /login.
    Login,
    Forbidden,
    NotFound,
    /// Another organization's object, asked for by someone lacking the permission anyway:
    /// "not allowed" and "not found" disclose the same (nothing).
    ForbiddenOrNotFound,
    /// Another organization's ids in a form: refused or a no-op (any status below 500),
    /// the other organization's data not shown, nothing changed.
    Inert,
}

impl Rule {
    fn allows(self, perms: PermissionSet, rank: i64, pool: PermissionSet) -> bool {
        let at_pool = perms.union(pool);
        match self {
            Member => true,
            Perm(p) => perms.contains(p),
            Both(p, q) => perms.contains(p) && perms.contains(q),
            Ranked(p, min) => perms.contains(p) && rank >= min,
            PoolRead => perms.contains(P::PoolsManage) || pool != PermissionSet::default(),
            PoolManage => at_pool.contains(P::PoolsManage),
            Invite => at_pool.contains(P::UsersInvite),
        }
    }
}

fn expect(route: &Route, actor: &Actor, tenant: Tenant) -> Expect {
    let signed_in = |allowed: bool| match (actor.signed_in, allowed) {
        (false, _) => Expect::Login,
        (true, true) => Expect::Allowed,
        (true, false) => Expect::Forbidden,
    };
    match route.need {
        Public => Expect::Allowed,
        DeadToken => Expect::NotFound,
        SignedIn => signed_in(true),
        NotOwnSession if actor.signed_in => Expect::NotFound,
        NotOwnSession => Expect::Login,
        SignedInCode => match signed_in(true) {
            Expect::Allowed => Expect::Inert,
            other => other,
        },
        PlatformRead => signed_in(matches!(actor.platform, "operator" | "admin")),
        PlatformWrite => match signed_in(actor.platform == "admin") {
            Expect::Allowed if tenant == Tenant::Mixed => Expect::Inert,
            other => other,
        },
        Org(rule) => {
            if !actor.signed_in {
                return Expect::Login;
            }
            let path_org = if tenant == Tenant::ForeignOrg {
                OTHER
            } else {
                MY
            };
            let Some((_, perms, rank)) = actor.org.filter(|(slug, _, _)| *slug == path_org) else {
                return Expect::NotFound;
            };
            // Pool roles are held in my-org, on the pools the targets hang under. Inviting
            // needs one anywhere, whatever pools the form names: another organization's
            // pool ids then leave the form refused (422), not the member (403).
            let pool = if path_org == MY
                && (matches!(tenant, Tenant::Own | Tenant::Mixed) || matches!(rule, Invite))
            {
                actor.pool_perms
            } else {
                PermissionSet::default()
            };
            let permitted = rule.allows(perms, rank, pool);
            match tenant {
                Tenant::Own | Tenant::ForeignOrg if permitted => Expect::Allowed,
                Tenant::Own | Tenant::ForeignOrg => Expect::Forbidden,
                Tenant::ForeignIds if path_names_object(route) => {
                    if permitted {
                        Expect::NotFound
                    } else {
                        Expect::ForbiddenOrNotFound
                    }
                }
                Tenant::ForeignIds | Tenant::Mixed if permitted => Expect::Inert,
                Tenant::ForeignIds | Tenant::Mixed => Expect::Forbidden,
            }
        }
    }
}

fn path_names_object(route: &Route) -> bool {
    route.path.contains("{id}") || route.path.contains("{user_id}")
}

fn tenants(route: &Route) -> Vec<Tenant> {
    let references = route.id != O::None && (route.path.contains("{user_id}") || route.ids_in_form);
    let mut t = vec![Tenant::Own];
    if route.path.starts_with("/orgs/{org}") {
        if path_names_object(route) || route.ids_in_form {
            t.push(Tenant::ForeignIds);
        }
        t.push(Tenant::ForeignOrg);
    } else if route.path.starts_with("/admin/") && (route.id != O::None || route.ids_in_form) {
        // The platform spans organizations: the other one's objects are expected alike.
        t.push(Tenant::ForeignIds);
    }
    if references && (route.path.starts_with("/orgs/{org}") || route.path.starts_with("/admin/")) {
        t.push(Tenant::Mixed);
    }
    t
}

/// The caller's own object where the path names one; every other id from `foreign`.
fn mixed(own: &Ids, foreign: &Ids, route: &Route) -> Ids {
    let mut ids = foreign.clone();
    ids.home = own.home.clone();
    ids.pool_parent_for_form = foreign.pool_parent.clone();
    match route.id {
        O::None => {}
        O::Member => {
            ids.member = own.member.clone();
            ids.member_email = own.member_email.clone();
        }
        O::Inactive => ids.inactive = own.inactive.clone(),
        O::Disabled => ids.disabled = own.disabled.clone(),
        O::Group => ids.group = own.group.clone(),
        O::Pool => ids.pool = own.pool.clone(),
        O::Invitation => ids.invitation = own.invitation.clone(),
        O::Role => ids.role = own.role.clone(),
        O::Token => ids.token = own.token.clone(),
    }
    ids
}

fn concrete_path(route: &Route, tenant: Tenant, ids: &Ids) -> String {
    let slug = match tenant {
        Tenant::ForeignOrg => OTHER,
        _ if route.path.starts_with("/admin/") => ids.home.as_str(),
        _ => MY,
    };
    let id = match route.id {
        O::None => "",
        O::Member => &ids.member,
        O::Inactive => &ids.inactive,
        O::Disabled => &ids.disabled,
        O::Group => &ids.group,
        O::Pool => &ids.pool,
        O::Invitation => &ids.invitation,
        O::Role => &ids.role,
        O::Token => &ids.token,
    };
    let user_id = if route.path.contains("/groups/") {
        &ids.group_member
    } else {
        &ids.pool_member
    };
    route
        .path
        .replace("{org}", slug)
        .replace("{id}", id)
        .replace("{user_id}", user_id)
        .replace("{token}", DEAD_TOKEN)
        .replace("{name}", "app.js")
}

// ----- Database snapshot -----

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Tables whose rows are compared, not only counted.
const DIGESTED: [&str; 9] = [
    "users",
    "memberships",
    "roles",
    "groups",
    "group_members",
    "pools",
    "pool_members",
    "invitations",
    "sessions",
];
/// Touched by reads: when a member or a session was last seen, and a session's idle
/// deadline, which any request slides forward once a minute has passed (a slow run of
/// the matrix crosses that minute).
const TOUCHED_BY_READS: [(&str, &str); 3] = [
    ("*", "last_seen_at"),
    ("*", "last_active_at"),
    ("sessions", "expires_at"),
];

fn touched_by_reads(table: &str, column: &str) -> bool {
    TOUCHED_BY_READS
        .iter()
        .any(|&(t, c)| (t == "*" || t == table) && c == column)
}

struct Snapshotter {
    counts: Vec<(String, String)>,
    digests: Vec<(String, String)>,
}

#[derive(Debug, PartialEq, Clone)]
struct Snapshot {
    counts: BTreeMap<String, i64>,
    rows: BTreeMap<String, Vec<String>>,
    denied: i64,
}

fn lines(conn: &mut DbConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Line>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|l| l.line)
        .collect()
}

fn count(conn: &mut DbConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

impl Snapshotter {
    fn new(app: &TestApp) -> Self {
        let pg = app.db.is_postgres();
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        let tables = lines(
            conn,
            if pg {
                "SELECT CAST(tablename AS TEXT) AS line FROM pg_tables \
                 WHERE schemaname = 'public' ORDER BY 1"
            } else {
                "SELECT name AS line FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY 1"
            },
        );
        for wanted in DIGESTED.iter().chain(&["audit_events"]) {
            assert!(tables.iter().any(|t| t == wanted), "no table {wanted}");
        }
        let counts = tables
            .iter()
            .map(|t| {
                let sql = if t == "audit_events" {
                    "SELECT COUNT(*) AS n FROM audit_events WHERE action <> 'access.denied'".into()
                } else {
                    format!("SELECT COUNT(*) AS n FROM \"{t}\"")
                };
                (t.clone(), sql)
            })
            .collect();
        let digests = DIGESTED
            .iter()
            .map(|t| {
                let columns = lines(
                    conn,
                    &if pg {
                        format!(
                            "SELECT CAST(column_name AS TEXT) AS line FROM information_schema.columns \
                             WHERE table_schema = 'public' AND table_name = '{t}' ORDER BY ordinal_position"
                        )
                    } else {
                        format!("SELECT name AS line FROM pragma_table_info('{t}')")
                    },
                );
                // A session's `data` goes last, to be read as JSON (see `canonical`).
                let mut columns: Vec<&String> = columns
                    .iter()
                    .filter(|c| !touched_by_reads(t, c))
                    .collect();
                columns.sort_by_key(|c| c.as_str() == "data");
                let parts: Vec<String> = columns
                    .iter()
                    .map(|c| format!("'{c}=' || COALESCE(CAST(\"{c}\" AS TEXT), '<null>')"))
                    .collect();
                assert!(!parts.is_empty(), "no columns in {t}");
                (
                    t.to_string(),
                    format!(
                        "SELECT {} AS line FROM \"{t}\" ORDER BY 1",
                        parts.join(" || ' | ' || ")
                    ),
                )
            })
            .collect();
        Snapshotter { counts, digests }
    }

    fn take(&self, app: &TestApp) -> Snapshot {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        Snapshot {
            counts: self
                .counts
                .iter()
                .map(|(t, sql)| (t.clone(), count(conn, sql)))
                .collect(),
            rows: self
                .digests
                .iter()
                .map(|(t, sql)| {
                    let mut rows: Vec<String> =
                        lines(conn, sql).iter().map(|l| canonical(l)).collect();
                    rows.sort();
                    (t.clone(), rows)
                })
                .collect(),
            denied: count(
                conn,
                "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'access.denied'",
            ),
        }
    }
}

/// A row with its session `data` in one key order: the session store writes the same
/// state back in whatever order its map iterates, which is no change.
fn canonical(line: &str) -> String {
    let Some((head, data)) = line.split_once(" | data=") else {
        return line.to_string();
    };
    match serde_json::from_str::<BTreeMap<String, serde_json::Value>>(data) {
        Ok(mut map) => {
            // A refusal may leave its reason for the next page (the Users tab's inline
            // role select does): a message to the actor, not a change they made.
            map.remove("flash");
            format!("{head} | data={}", serde_json::to_string(&map).unwrap())
        }
        Err(_) => line.to_string(),
    }
}

/// What changed between two snapshots, in words.
fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (table, n) in &before.counts {
        let m = after.counts.get(table).copied().unwrap_or(-1);
        if *n != m {
            out.push(format!("{table}: {n} rows -> {m}"));
        }
    }
    for (table, rows) in &before.rows {
        let now = &after.rows[table];
        if rows != now {
            let old: BTreeSet<&String> = rows.iter().collect();
            let new: BTreeSet<&String> = now.iter().collect();
            for gone in old.difference(&new) {
                out.push(format!("{table}: - {gone}"));
            }
            for came in new.difference(&old) {
                out.push(format!("{table}: + {came}"));
            }
        }
    }
    out
}

// ----- Requests -----

async fn send(actor: &Actor, method: &str, path: &str, form: &[(&'static str, String)]) -> Page {
    if method == "GET" {
        let query = if form.is_empty() {
            String::new()
        } else {
            format!("?{}", serde_urlencoded::to_string(form).unwrap())
        };
        actor.browser.get(&format!("{path}{query}")).await
    } else {
        let mut body: Vec<(&str, String)> = vec![("csrf_token", actor.csrf.clone())];
        body.extend(form.iter().cloned());
        actor.browser.post(path, &body).await
    }
}

const CSRF_REFUSAL: &str = "did not come from this site";

/// Whether the answer is the expected one; `None` when it is.
fn judge(expected: Expect, page: &Page) -> Option<String> {
    // The sign-in page asked for by a page that needs it (not /logout's "signed out").
    let to_login = page.status == 303
        && page
            .location
            .as_deref()
            .is_some_and(|l| l == "/login" || l.starts_with("/login?next="));
    if page.status == 403 && page.body.contains(CSRF_REFUSAL) {
        return Some("403 from the CSRF guard: the matrix sent a bad token".into());
    }
    let ok = match expected {
        Expect::Allowed => matches!(page.status, 200 | 201 | 303) && !to_login,
        Expect::Login => to_login,
        Expect::Forbidden => page.status == 403,
        Expect::NotFound => page.status == 404,
        Expect::ForbiddenOrNotFound => matches!(page.status, 403 | 404),
        Expect::Inert => page.status < 500 && !to_login,
    };
    (!ok).then(|| {
        format!(
            "got {}{}",
            page.status,
            page.location
                .as_deref()
                .map(|l| format!(" -> {l}"))
                .unwrap_or_default()
        )
    })
}

struct World {
    app: TestApp,
    actors: Vec<Actor>,
    my: OrgInfo,
    other: OrgInfo,
    stable_my: Ids,
    stable_other: Ids,
    snap: Snapshotter,
    next_n: usize,
    failures: Vec<String>,
    requests: usize,
}

impl World {
    fn stable(&self, tenant: Tenant, route: &Route) -> Ids {
        match tenant {
            Tenant::Own => self.stable_my.clone(),
            Tenant::Mixed => mixed(&self.stable_my, &self.stable_other, route),
            _ => self.stable_other.clone(),
        }
    }

    fn fresh_for(&mut self, tenant: Tenant) -> Ids {
        self.next_n += 1;
        let org = match tenant {
            Tenant::Own => &self.my,
            _ => &self.other,
        };
        fresh(&self.app, org, self.next_n)
    }
}

/// A refused request: send it between two snapshots and check that only the audit
/// trail's `access.denied` rows moved (one for a 403 under /orgs or /admin).
struct Refused<'a> {
    label: &'a str,
    actor: usize,
    method: &'a str,
    path: &'a str,
    form: &'a [(&'static str, String)],
    expected: Expect,
    foreign_email: Option<&'a str>,
}

async fn refused(world: &mut World, before: &mut Option<Snapshot>, request: Refused<'_>) {
    let Refused {
        label,
        actor,
        method,
        path,
        form,
        expected,
        foreign_email,
    } = request;
    let start = match before.take() {
        Some(s) => s,
        None => world.snap.take(&world.app),
    };
    let page = send(&world.actors[actor], method, path, form).await;
    world.requests += 1;
    let after = world.snap.take(&world.app);
    if let Some(why) = judge(expected, &page) {
        world
            .failures
            .push(format!("{label}: expected {expected:?}, {why}"));
    }
    let mut changed = differences(&start, &after);
    let denial_path = path.starts_with("/orgs/") || path.starts_with("/admin/");
    let denials = after.denied - start.denied;
    let expected_denials =
        i64::from(page.status == 403 && denial_path && world.actors[actor].signed_in);
    if denials != expected_denials {
        changed.push(format!(
            "{denials} access.denied rows written, expected {expected_denials}"
        ));
    }
    if !changed.is_empty() {
        world.failures.push(format!(
            "{label} (answered {}) changed the database: {}",
            page.status,
            changed.join("; ")
        ));
    }
    if let Some(email) = foreign_email
        && page.body.contains(email)
    {
        world.failures.push(format!(
            "{label} (answered {}) shows the other organization's member {email}",
            page.status
        ));
    }
    *before = Some(after);
}

// ----- The route table from the source -----

/// `(METHOD, path)` of every `.route("...", web::<method>()...)` in src/routes/mod.rs.
fn routes_in_source() -> Vec<(String, String)> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes/mod.rs");
    let source = std::fs::read_to_string(&file).unwrap();
    let mut found = Vec::new();
    for (at, _) in source.match_indices(".route(") {
        let rest = &source[at + ".route(".len()..];
        let call = &rest[..rest.find(".to(").expect("a .route( call ends in .to(")];
        let start = call.find('"').expect("a route path literal") + 1;
        let end = call[start..].find('"').unwrap() + start;
        let method = call
            .split("web::")
            .nth(1)
            .and_then(|m| m.split("()").next())
            .unwrap_or_else(|| panic!("no web::<method>() in {call}"));
        found.push((method.to_uppercase(), call[start..end].to_string()));
    }
    assert!(
        found.len() > 20,
        "only {} routes found in src/routes/mod.rs: is the scanner still right?",
        found.len()
    );
    found
}

#[test]
fn every_route_has_a_row_in_the_matrix() {
    let source = routes_in_source();
    let mut missing = Vec::new();
    for (method, path) in &source {
        if !ROUTES.iter().any(|r| r.method == method && r.path == path) {
            missing.push(format!("{method} {path}"));
        }
    }
    let stale: Vec<String> = ROUTES
        .iter()
        .filter(|r| !source.iter().any(|(m, p)| m == r.method && p == r.path))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from the matrix (tests/it/matrix.rs ROUTES): add a row with the \
         capability each needs: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows of tests/it/matrix.rs ROUTES that are no longer routes: {stale:?}"
    );
    for (i, a) in ROUTES.iter().enumerate() {
        for b in &ROUTES[i + 1..] {
            assert!(
                !(a.method == b.method && a.path == b.path),
                "{} {} appears twice in ROUTES",
                a.method,
                a.path
            );
        }
    }
}

// ----- Set-up -----

async fn sign_in(app: &TestApp, email: &str) -> (Browser, String) {
    let browser = app.member_browser(email).await;
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{email} reaches /account");
    let csrf = hidden_value(&page.body, "csrf_token").expect("a token on /account");
    (browser, csrf)
}

/// An account that belongs to no organization, with a platform role.
fn platform_account(app: &TestApp, email: &str, role: &str) {
    use portcullis::db::users;
    let hash = portcullis::auth::password::hash_blocking(MEMBER_PASSWORD).unwrap();
    let mut conn = app.conn();
    let id = db::new_id();
    users::insert(
        &mut conn,
        &users::NewUser {
            id: &id,
            email,
            first_name: "Plat",
            last_name: "Form",
            password_hash: Some(&hash),
            platform_role: role,
            status: "active",
            auth_method: "password",
            created_at: db::now(),
            last_active_at: None,
        },
    )
    .unwrap();
}

/// A signed-in actor: the membership it is created with, and its platform role.
struct ActorSpec {
    name: &'static str,
    email: &'static str,
    membership: Option<(&'static str, &'static str)>,
    platform: &'static str,
}

const DEACTIVATED: &str = "deactivated member";

const fn spec(
    name: &'static str,
    email: &'static str,
    membership: Option<(&'static str, &'static str)>,
    platform: &'static str,
) -> ActorSpec {
    ActorSpec {
        name,
        email,
        membership,
        platform,
    }
}

const SIGNED_IN: &[ActorSpec] = &[
    spec("Member", "member@example.com", Some((MY, "member")), "none"),
    spec(
        "Engineer",
        "engineer@example.com",
        Some((MY, "engineer")),
        "none",
    ),
    spec(
        "Manager",
        "manager@example.com",
        Some((MY, "manager")),
        "none",
    ),
    // An org Admin who is not a platform admin (the set-up admin is both).
    spec("Admin", "orgadmin@example.com", Some((MY, "admin")), "none"),
    // A Member of my-org holding the Manager role on a pool (pool_members).
    spec(
        "pool Manager",
        "poolmanager@example.com",
        Some((MY, "member")),
        "none",
    ),
    // Platform roles, members of no organization.
    spec(
        "platform operator",
        "operator@example.com",
        None,
        "operator",
    ),
    spec("platform admin", "platformadmin@example.com", None, "admin"),
    spec(
        "other org's Admin",
        "otheradmin@example.com",
        Some((OTHER, "admin")),
        "none",
    ),
    spec(
        DEACTIVATED,
        "gone@example.com",
        Some((MY, "manager")),
        "none",
    ),
];

async fn build_world() -> World {
    let app = spawn_app().await;
    app.setup_admin().await;
    app.create_org(OTHER, "Other Org");
    let my_id = app.org_id(MY);
    let other_id = app.org_id(OTHER);
    let root_admin = app.user_id(ADMIN_EMAIL);

    for spec in SIGNED_IN {
        match spec.membership {
            Some((org, role)) => {
                app.add_member(org, spec.email, spec.name, "Actor", role, true);
            }
            None => platform_account(&app, spec.email, spec.platform),
        }
    }
    let other_admin = app.user_id("otheradmin@example.com");

    // Each organization: a pool, with a sub-pool tree made per target set under it.
    let (my_parent, other_parent) = {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        (
            db::pools::insert(conn, &my_id, None, "Managed pool", &root_admin).unwrap(),
            db::pools::insert(conn, &other_id, None, "Their pool", &other_admin).unwrap(),
        )
    };
    // The pool Manager: a Member of my-org holding the Manager role on that pool.
    {
        let mut conn = app.conn();
        let conn: &mut DbConnection = &mut conn;
        db::pools::add_member(
            conn,
            &my_id,
            &my_parent,
            &app.user_id("poolmanager@example.com"),
            &app.role_id(MY, "manager"),
        )
        .unwrap();
    }

    let mut actors = Vec::new();
    let anonymous = app.client();
    let login = anonymous.get("/login").await;
    actors.push(Actor {
        name: "anonymous",
        email: "visitor@example.com".into(),
        password: MEMBER_PASSWORD.into(),
        csrf: hidden_value(&login.body, "csrf_token").unwrap_or_default(),
        browser: anonymous,
        signed_in: false,
        platform: "none",
        org: None,
        pool_perms: PermissionSet::default(),
    });
    // The visitor's account, for phase 3's sign-in.
    platform_account(&app, "visitor@example.com", "none");
    for spec in SIGNED_IN {
        let ActorSpec {
            name,
            email,
            platform,
            ..
        } = *spec;
        // The deactivated member was a Manager; their membership is inactive.
        let org = spec.membership.filter(|_| name != DEACTIVATED);
        let (browser, csrf) = sign_in(&app, email).await;
        actors.push(Actor {
            name,
            email: email.into(),
            password: MEMBER_PASSWORD.into(),
            browser,
            csrf,
            signed_in: true,
            platform,
            org: org.map(|(slug, role)| {
                let (perms, rank) = builtin(role);
                (slug, perms, rank)
            }),
            pool_perms: if name == "pool Manager" {
                builtin("manager").0
            } else {
                PermissionSet::default()
            },
        });
    }
    // Signed in while still a member (a Manager), then deactivated: the session lives on,
    // the organization is gone for them.
    app.deactivate_for_setup(MY, &app.user_id("gone@example.com"));

    let my = OrgInfo {
        slug: MY,
        id: my_id,
        maker: root_admin,
        parent_pool: my_parent,
        elsewhere: OTHER,
    };
    let other = OrgInfo {
        slug: OTHER,
        id: other_id,
        maker: other_admin,
        parent_pool: other_parent,
        elsewhere: MY,
    };
    let stable_my = fresh(&app, &my, 0);
    let stable_other = fresh(&app, &other, 1);
    let snap = Snapshotter::new(&app);
    World {
        app,
        actors,
        my,
        other,
        stable_my,
        stable_other,
        snap,
        next_n: 1,
        failures: Vec::new(),
        requests: 0,
    }
}

// ----- The matrix -----

#[actix_web::test]
async fn matrix_route_actor_tenant() {
    let started = Instant::now();
    let mut world = build_world().await;
    let foreign_email = world.stable_other.member_email.clone();
    let mut allowed_posts: Vec<(usize, usize, Tenant)> = Vec::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();

    // Phase 1: GETs, and POSTs the policy refuses, against the stable targets.
    let mut before: Option<Snapshot> = None;
    for (ri, route) in ROUTES.iter().enumerate() {
        if route.when == When::Last {
            continue;
        }
        for tenant in tenants(route) {
            for ai in 0..world.actors.len() {
                let expected = expect(route, &world.actors[ai], tenant);
                if route.method == "POST" && expected == Expect::Allowed {
                    allowed_posts.push((ri, ai, tenant));
                    continue;
                }
                let ids = world.stable(tenant, route);
                let path = concrete_path(route, tenant, &ids);
                let form = (route.form)(&ids);
                let label = format!(
                    "{} {path} as {} ({tenant:?})",
                    route.method, world.actors[ai].name
                );
                if expected == Expect::Allowed {
                    // An allowed read: no snapshot, it may touch "last seen".
                    before = None;
                    let page = send(&world.actors[ai], route.method, &path, &form).await;
                    world.requests += 1;
                    *counts.entry("allowed GET").or_default() += 1;
                    if let Some(why) = judge(expected, &page) {
                        world
                            .failures
                            .push(format!("{label}: expected Allowed, {why}"));
                    }
                    if tenant == Tenant::Own
                        && path.starts_with("/orgs/")
                        && page.body.contains(&foreign_email)
                    {
                        world.failures.push(format!(
                            "{label} shows the other organization's member {foreign_email}"
                        ));
                    }
                } else {
                    *counts.entry("refused or inert").or_default() += 1;
                    let request = Refused {
                        label: &label,
                        actor: ai,
                        method: route.method,
                        path: &path,
                        form: &form,
                        expected,
                        foreign_email: Some(&foreign_email),
                    };
                    refused(&mut world, &mut before, request).await;
                }
            }
        }
    }
    let phase1 = started.elapsed();

    // Phase 2: every allowed POST, against targets made for it alone.
    for (ri, ai, tenant) in allowed_posts {
        let route = &ROUTES[ri];
        let mut ids = world.fresh_for(tenant);
        if route.id == O::Pool {
            ids.pool_parent_for_form = ids.pool_parent.clone();
        }
        let path = concrete_path(route, tenant, &ids);
        let form = (route.form)(&ids);
        let page = send(&world.actors[ai], "POST", &path, &form).await;
        world.requests += 1;
        *counts.entry("allowed POST").or_default() += 1;
        if let Some(why) = judge(Expect::Allowed, &page) {
            let excerpt: String = page
                .body
                .split("<main")
                .nth(1)
                .unwrap_or(&page.body)
                .chars()
                .take(400)
                .collect();
            world.failures.push(format!(
                "POST {path} as {} ({tenant:?}): expected Allowed, {why}: {excerpt}",
                world.actors[ai].name
            ));
        }
    }
    let phase2 = started.elapsed() - phase1;

    // Phase 3: the session routes, in table order (password, sign in, sign out).
    let mut before: Option<Snapshot> = None;
    for route in ROUTES.iter().filter(|r| r.when == When::Last) {
        for ai in 0..world.actors.len() {
            let expected = expect(route, &world.actors[ai], Tenant::Own);
            let actor = &world.actors[ai];
            let new_password = format!("{} changed", actor.password);
            let form: Vec<(&'static str, String)> = match route.path {
                "/account/password" => vec![
                    ("current_password", actor.password.clone()),
                    ("password", new_password.clone()),
                    ("password_confirm", new_password.clone()),
                ],
                "/login" => vec![
                    ("email", actor.email.clone()),
                    ("password", actor.password.clone()),
                ],
                _ => Vec::new(),
            };
            let label = format!("POST {} as {}", route.path, actor.name);
            if expected == Expect::Allowed {
                before = None;
                let page = send(actor, "POST", route.path, &form).await;
                world.requests += 1;
                *counts.entry("allowed POST").or_default() += 1;
                if let Some(why) = judge(expected, &page) {
                    world
                        .failures
                        .push(format!("{label}: expected Allowed, {why}"));
                }
                let actor = &mut world.actors[ai];
                match route.path {
                    "/account/password" => actor.password = new_password,
                    "/login" => actor.signed_in = true,
                    "/logout" => actor.signed_in = false,
                    _ => {}
                }
                actor.refresh_csrf().await;
            } else {
                *counts.entry("refused or inert").or_default() += 1;
                let request = Refused {
                    label: &label,
                    actor: ai,
                    method: "POST",
                    path: route.path,
                    form: &form,
                    expected,
                    foreign_email: None,
                };
                refused(&mut world, &mut before, request).await;
            }
        }
    }

    let backend = if world.app.db.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "matrix on {backend}: {} routes x {} actors, {} requests {counts:?} in {:.1?} \
         (refusals and reads {phase1:.1?}, allowed POSTs {phase2:.1?})",
        ROUTES.len(),
        world.actors.len(),
        world.requests,
        started.elapsed()
    );
    assert!(
        world.failures.is_empty(),
        "{} cells of the matrix disagree with the policy:\n{}",
        world.failures.len(),
        world.failures.join("\n")
    );
}
