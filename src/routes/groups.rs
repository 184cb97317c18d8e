//! Groups: list and create, a group's page with its members, edit, delete.

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::users::member_error;
use crate::audit::Origin;
use crate::db::groups::{self, Group};
use crate::db::memberships::{self, Membership};
use crate::db::roles::{self, Role};
use crate::db::users::User;
use crate::domain::FieldErrors;
use crate::domain::groups::{self as rules, GroupForm};
use crate::domain::members::MemberError;
use crate::domain::redirect::safe_next;
use crate::domain::roles::Permission;
use crate::error::{AppError, AppResult};
use crate::web::extract::OrgCtx;
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render, render_status, see_other};

/// Choices for the role and owner selects.
const MEMBER_CHOICES: i64 = 500;
const MEMBERS_SHOWN: i64 = 500;

struct GroupRow {
    group: Group,
    role_name: String,
    owner: String,
    members: i64,
}

#[derive(Template)]
#[template(path = "groups/list.html")]
struct GroupsPage {
    layout: Layout,
    rows: Vec<GroupRow>,
    can_manage: bool,
    roles: Vec<Role>,
    owners: Vec<Membership>,
    action: String,
    submit: &'static str,
    form: GroupForm,
    errors: FieldErrors,
}

async fn list(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    failed: Option<(GroupForm, FieldErrors)>,
) -> AppResult<GroupsPage> {
    ctx.require(Permission::UsersRead)?;
    let org_id = ctx.org.id.clone();
    let standing = ctx.standing();
    let (groups, counts, all_roles, members) = state
        .db(move |conn| {
            Ok((
                groups::list(conn, &org_id)?,
                groups::member_counts(conn, &org_id)?,
                roles::list(conn, &org_id)?,
                memberships::active_members(conn, &org_id, MEMBER_CHOICES)?,
            ))
        })
        .await?;
    let counts: HashMap<String, i64> = counts.into_iter().collect();
    let role_names: HashMap<&str, &str> = all_roles
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let emails: HashMap<&str, &str> = members
        .iter()
        .map(|m| (m.user_id.as_str(), m.email.as_str()))
        .collect();
    let rows = groups
        .into_iter()
        .map(|g| GroupRow {
            role_name: g
                .role_id
                .as_deref()
                .and_then(|id| role_names.get(id).copied())
                .unwrap_or("")
                .to_string(),
            owner: g
                .owner_id
                .as_deref()
                .and_then(|id| emails.get(id).copied())
                .unwrap_or("")
                .to_string(),
            members: counts.get(&g.id).copied().unwrap_or(0),
            group: g,
        })
        .collect();
    let (form, errors) = failed.unwrap_or_else(|| {
        (
            GroupForm {
                owner_id: ctx.user().id.clone(),
                ..Default::default()
            },
            FieldErrors::default(),
        )
    });
    Ok(GroupsPage {
        layout: Layout::in_org(session, ctx, "Groups", "groups"),
        rows,
        can_manage: ctx.can(Permission::GroupsManage),
        roles: crate::domain::policy::grantable(&standing, all_roles, |r| r.rank),
        owners: members,
        action: format!("/orgs/{}/groups", ctx.org.slug),
        submit: "Create group",
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
    form: web::Form<GroupForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
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
                format!("Group {} created.", form.name.trim()),
            );
            Ok(see_other(&format!("/orgs/{}/groups/{id}", ctx.org.slug)))
        }
        Err(MemberError::Invalid(errors)) => {
            let page = list(&state, &session, &ctx, Some((form, errors))).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(member_error(e)),
    }
}

#[derive(Template)]
#[template(path = "groups/show.html")]
struct GroupPage {
    layout: Layout,
    group: Group,
    members: Vec<User>,
    can_manage: bool,
    roles: Vec<Role>,
    candidates: Vec<Membership>,
    owners: Vec<Membership>,
    action: String,
    submit: &'static str,
    form: GroupForm,
    errors: FieldErrors,
}

type GroupPath = web::Path<(String, String)>;

async fn show(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    group_id: String,
    failed: Option<(GroupForm, FieldErrors)>,
) -> AppResult<GroupPage> {
    ctx.require(Permission::UsersRead)?;
    let org_id = ctx.org.id.clone();
    let standing = ctx.standing();
    let (group, members, all_roles, candidates) = state
        .db(move |conn| {
            let group = groups::find(conn, &org_id, &group_id)?.ok_or(AppError::NotFound)?;
            Ok((
                groups::members(conn, &org_id, &group.id, MEMBERS_SHOWN)?,
                roles::list(conn, &org_id)?,
                memberships::active_members(conn, &org_id, MEMBER_CHOICES)?,
                group,
            ))
        })
        .await
        .map(|(m, r, c, g)| (g, m, r, c))?;
    let (form, errors) = failed.unwrap_or_else(|| {
        (
            GroupForm {
                name: group.name.clone(),
                description: group.description.clone(),
                role_id: group.role_id.clone().unwrap_or_default(),
                owner_id: group.owner_id.clone().unwrap_or_default(),
            },
            FieldErrors::default(),
        )
    });
    Ok(GroupPage {
        layout: Layout::in_org(session, ctx, &group.name, "groups"),
        can_manage: ctx.can(Permission::GroupsManage),
        roles: crate::domain::policy::grantable(&standing, all_roles, |r| r.rank),
        candidates: candidates
            .iter()
            .filter(|c| !members.iter().any(|m| m.id == c.user_id))
            .cloned()
            .collect(),
        owners: candidates,
        action: format!("/orgs/{}/groups/{}", ctx.org.slug, group.id),
        submit: "Save group",
        group,
        members,
        form,
        errors,
    })
}

pub async fn show_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: GroupPath,
) -> AppResult<HttpResponse> {
    let id = path.into_inner().1;
    Ok(render(&show(&state, &session, &ctx, id, None).await?))
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: GroupPath,
    form: web::Form<GroupForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let id = path.into_inner().1;
    let form = form.into_inner();
    let actor = ctx.actor();
    let (f, gid) = (form.clone(), id.clone());
    let result = state
        .db(move |conn| Ok(rules::update(conn, &actor, &gid, &f, &origin)))
        .await?;
    match result {
        Ok(()) => {
            flash(&session, "success", "Group saved.");
            Ok(see_other(&format!("/orgs/{}/groups/{id}", ctx.org.slug)))
        }
        Err(MemberError::Invalid(errors)) => {
            let page = show(&state, &session, &ctx, id, Some((form, errors))).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(member_error(e)),
    }
}

/// Asks before deleting a group.
pub async fn delete_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: GroupPath,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let id = path.into_inner().1;
    let actor = ctx.actor();
    let group = state
        .db(move |conn| rules::deletable(conn, &actor, &id).map_err(member_error))
        .await?;
    let show = format!("/orgs/{}/groups/{}", ctx.org.slug, group.id);
    let page = crate::web::confirm::ConfirmPage::new(
        Layout::in_org(&session, &ctx, "Delete group", "groups"),
        format!("Delete the group {}?", group.name),
        format!("{show}/delete"),
    )
    .line("Its members stay in the organization, but lose the role the group gave them.")
    .button(format!("Delete {}", group.name))
    .cancel(show);
    Ok(render(&page))
}

pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: GroupPath,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let id = path.into_inner().1;
    let actor = ctx.actor();
    let name = state
        .db(move |conn| rules::delete(conn, &actor, &id, &origin).map_err(member_error))
        .await?;
    flash(&session, "success", format!("Group {name} deleted."));
    Ok(see_other(&format!("/orgs/{}/groups", ctx.org.slug)))
}

#[derive(Deserialize)]
pub struct AddMemberForm {
    #[serde(default)]
    user_id: String,
}

pub async fn add_member(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: GroupPath,
    form: web::Form<AddMemberForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let id = path.into_inner().1;
    let user_id = form.into_inner().user_id;
    let actor = ctx.actor();
    let gid = id.clone();
    let email = state
        .db(move |conn| {
            rules::add_member(conn, &actor, &gid, &user_id, &origin).map_err(member_error)
        })
        .await?;
    flash(&session, "success", format!("{email} added to the group."));
    Ok(see_other(&format!("/orgs/{}/groups/{id}", ctx.org.slug)))
}

#[derive(Deserialize)]
pub struct RemoveForm {
    next: Option<String>,
}

pub async fn remove_member(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String, String)>,
    form: web::Form<RemoveForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let (_, id, user_id) = path.into_inner();
    let actor = ctx.actor();
    let gid = id.clone();
    let email = state
        .db(move |conn| {
            rules::remove_member(conn, &actor, &gid, &user_id, &origin).map_err(member_error)
        })
        .await?;
    flash(
        &session,
        "success",
        format!("{email} removed from the group."),
    );
    let back = format!("/orgs/{}/groups/{id}", ctx.org.slug);
    Ok(see_other(safe_next(
        form.into_inner().next.as_deref(),
        &back,
    )))
}
