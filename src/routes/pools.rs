//! Pools and sub-pools: the tree, a pool's page with members, create, rename / move,
//! delete after a confirmation that says what goes.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::users::member_error;
use crate::audit::Origin;
use crate::db::memberships::{self, Membership};
use crate::db::pools::{self, Pool};
use crate::db::roles::Role;
use crate::db::users::User;
use crate::domain::FieldErrors;
use crate::domain::members::MemberError;
use crate::domain::pools::{self as rules, DeletePlan, PoolForm, PoolMemberForm, Scope};
use crate::error::{AppError, AppResult};
use crate::web::extract::OrgCtx;
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render, render_status, see_other};

const MEMBER_CHOICES: i64 = 500;
const MEMBERS_SHOWN: i64 = 500;

struct TreeRow {
    pool: Pool,
    depth: usize,
    indent: String,
    members: i64,
}

#[derive(Template)]
#[template(path = "pools/list.html")]
struct PoolsPage {
    layout: Layout,
    rows: Vec<TreeRow>,
    /// Pools under which the caller may create a sub-pool.
    parents: Vec<(String, String)>,
    can_create_root: bool,
    form: PoolForm,
    errors: FieldErrors,
}

fn indent(depth: usize) -> String {
    "— ".repeat(depth)
}

async fn list(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    failed: Option<(PoolForm, FieldErrors)>,
) -> AppResult<PoolsPage> {
    let actor = ctx.actor();
    let (rows, parents, can_create_root) = state
        .db(move |conn| {
            let scope = Scope::load(conn, &actor).map_err(member_error)?;
            let visible = scope.visible();
            let ordered = rules::tree_order(&scope.pools);
            let mut rows = Vec::new();
            let mut parents = Vec::new();
            for (pool, depth) in ordered {
                if !visible.contains(&pool.id) {
                    continue;
                }
                let members =
                    pools::member_count(conn, &actor.org_id, std::slice::from_ref(&pool.id))?;
                if scope.at(&pool.id).can_manage() {
                    parents.push((pool.id.clone(), format!("{}{}", indent(depth), pool.name)));
                }
                rows.push(TreeRow {
                    indent: indent(depth),
                    depth,
                    members,
                    pool,
                });
            }
            Ok((rows, parents, scope.org_access().can_manage()))
        })
        .await?;
    let (form, errors) = failed.unwrap_or_default();
    Ok(PoolsPage {
        layout: Layout::in_org(session, ctx, "Pools", "pools"),
        rows,
        parents,
        can_create_root,
        form,
        errors,
    })
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    Ok(render(&list(&state, &session, &ctx, None).await?))
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    form: web::Form<PoolForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let actor = ctx.actor();
    let f = form.clone();
    let result = state
        .db(move |conn| Ok(rules::create(conn, &actor, &f, &origin)))
        .await?;
    match result {
        Ok(id) => {
            flash(
                &session,
                "success",
                format!("Pool {} created.", form.name.trim()),
            );
            Ok(see_other(&format!("/orgs/{}/pools/{id}", ctx.org.slug)))
        }
        Err(MemberError::Invalid(errors)) => {
            let page = list(&state, &session, &ctx, Some((form, errors))).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(member_error(e)),
    }
}

#[derive(Template)]
#[template(path = "pools/show.html")]
struct PoolPage {
    layout: Layout,
    pool: Pool,
    path: Vec<Pool>,
    children: Vec<Pool>,
    members: Vec<(User, Role)>,
    can_manage: bool,
    pool_roles: Vec<Role>,
    candidates: Vec<Membership>,
    /// Where the pool may move to (besides the top level when allowed).
    move_targets: Vec<(String, String)>,
    can_move_to_root: bool,
    /// Whether the current parent is among `move_targets`.
    parent_listed: bool,
    form: PoolForm,
    errors: FieldErrors,
}

type PoolPath = web::Path<(String, String)>;

async fn show(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    pool_id: String,
    failed: Option<(PoolForm, FieldErrors)>,
) -> AppResult<PoolPage> {
    let actor = ctx.actor();
    let loaded = state
        .db(move |conn| {
            let scope = Scope::load(conn, &actor).map_err(member_error)?;
            let pool = scope.pool(&pool_id).cloned().ok_or(AppError::NotFound)?;
            let access = scope.at(&pool.id);
            if !access.can_read() {
                return Err(AppError::forbidden());
            }
            let path: Vec<Pool> = scope
                .tree
                .ancestors_or_self(&pool.id)
                .iter()
                .rev()
                .filter_map(|id| scope.pool(id).cloned())
                .collect();
            let children: Vec<Pool> = scope
                .pools
                .iter()
                .filter(|p| p.parent_id.as_deref() == Some(pool.id.as_str()))
                .cloned()
                .collect();
            let members = pools::members(conn, &actor.org_id, &pool.id, MEMBERS_SHOWN)?;
            let pool_roles = crate::domain::policy::grantable(
                &access.standing(),
                rules::pool_roles(conn, &actor.org_id)?,
                |r| r.rank,
            );
            let candidates = memberships::active_members(conn, &actor.org_id, MEMBER_CHOICES)?
                .into_iter()
                .filter(|c| !members.iter().any(|(u, _)| u.id == c.user_id))
                .collect();
            let own_subtree = {
                let mut d = scope.tree.descendants(&pool.id);
                d.push(pool.id.clone());
                d
            };
            let move_targets: Vec<(String, String)> = rules::tree_order(&scope.pools)
                .into_iter()
                .filter(|(p, _)| !own_subtree.contains(&p.id) && scope.at(&p.id).can_manage())
                .map(|(p, depth)| (p.id, format!("{}{}", indent(depth), p.name)))
                .collect();
            Ok((
                pool,
                path,
                children,
                members,
                access.can_manage(),
                pool_roles,
                candidates,
                move_targets,
                scope.org_access().can_manage(),
            ))
        })
        .await?;
    let (pool, path, children, members, can_manage, pool_roles, candidates, move_targets, root) =
        loaded;
    let (form, errors) = failed.unwrap_or_else(|| {
        (
            PoolForm {
                name: pool.name.clone(),
                parent_id: pool.parent_id.clone().unwrap_or_default(),
            },
            FieldErrors::default(),
        )
    });
    let parent_listed = pool
        .parent_id
        .as_ref()
        .is_some_and(|p| move_targets.iter().any(|(id, _)| id == p));
    Ok(PoolPage {
        parent_listed,
        layout: Layout::in_org(session, ctx, &pool.name, "pools"),
        pool,
        path,
        children,
        members,
        can_manage,
        pool_roles,
        candidates,
        move_targets,
        can_move_to_root: root,
        form,
        errors,
    })
}

pub async fn show_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: PoolPath,
) -> AppResult<HttpResponse> {
    let id = path.into_inner().1;
    Ok(render(&show(&state, &session, &ctx, id, None).await?))
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: PoolPath,
    form: web::Form<PoolForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner().1;
    let form = form.into_inner();
    let actor = ctx.actor();
    let (f, pid) = (form.clone(), id.clone());
    let result = state
        .db(move |conn| Ok(rules::update(conn, &actor, &pid, &f, &origin)))
        .await?;
    match result {
        Ok(()) => {
            flash(&session, "success", "Pool saved.");
            Ok(see_other(&format!("/orgs/{}/pools/{id}", ctx.org.slug)))
        }
        Err(MemberError::Invalid(errors)) => {
            let page = show(&state, &session, &ctx, id, Some((form, errors))).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(member_error(e)),
    }
}

#[derive(Template)]
#[template(path = "pools/delete.html")]
struct DeletePage {
    layout: Layout,
    plan: DeletePlan,
}

pub async fn delete_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: PoolPath,
) -> AppResult<HttpResponse> {
    let id = path.into_inner().1;
    let actor = ctx.actor();
    let plan = state
        .db(move |conn| rules::delete_plan(conn, &actor, &id).map_err(member_error))
        .await?;
    Ok(render(&DeletePage {
        layout: Layout::in_org(&session, &ctx, "Delete pool", "pools"),
        plan,
    }))
}

pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: PoolPath,
) -> AppResult<HttpResponse> {
    let id = path.into_inner().1;
    let actor = ctx.actor();
    let name = state
        .db(move |conn| rules::delete(conn, &actor, &id, &origin).map_err(member_error))
        .await?;
    flash(&session, "success", format!("Pool {name} deleted."));
    Ok(see_other(&format!("/orgs/{}/pools", ctx.org.slug)))
}

pub async fn add_member(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: PoolPath,
    form: web::Form<PoolMemberForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner().1;
    let form = form.into_inner();
    let actor = ctx.actor();
    let (f, pid) = (form.clone(), id.clone());
    let result = state
        .db(move |conn| Ok(rules::add_member(conn, &actor, &pid, &f, &origin)))
        .await?;
    match result {
        Ok(email) => {
            flash(&session, "success", format!("{email} added to the pool."));
            Ok(see_other(&format!("/orgs/{}/pools/{id}", ctx.org.slug)))
        }
        Err(MemberError::Invalid(errors)) => {
            let mut page = show(&state, &session, &ctx, id, None).await?;
            page.errors = errors;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(member_error(e)),
    }
}

pub async fn remove_member(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String, String)>,
) -> AppResult<HttpResponse> {
    let (_, id, user_id) = path.into_inner();
    let actor = ctx.actor();
    let pid = id.clone();
    let email = state
        .db(move |conn| {
            rules::remove_member(conn, &actor, &pid, &user_id, &origin).map_err(member_error)
        })
        .await?;
    flash(
        &session,
        "success",
        format!("{email} removed from the pool."),
    );
    Ok(see_other(&format!("/orgs/{}/pools/{id}", ctx.org.slug)))
}
