//! The Roles page: built-in roles as seeded, custom roles admins compose from permissions.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::users::member_error;
use crate::audit::Origin;
use crate::db::roles::{self, Role};
use crate::domain::FieldErrors;
use crate::domain::custom_roles::{self, RoleForm};
use crate::domain::members::MemberError;
use crate::domain::roles::{Permission, PermissionSet};
use crate::error::AppResult;
use crate::web::extract::OrgCtx;
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render, render_status, see_other};

struct PermBox {
    name: &'static str,
    checked: bool,
}

struct RoleView {
    id: String,
    key: String,
    name: String,
    builtin: bool,
    rank: i64,
    permissions: String,
    boxes: Vec<PermBox>,
}

#[derive(Template)]
#[template(path = "roles/list.html")]
struct RolesPage {
    layout: Layout,
    roles: Vec<RoleView>,
    /// The create form's values and checkboxes.
    new_name: String,
    new_boxes: Vec<PermBox>,
    /// Which form the errors belong to: "" for the create form, else a role id.
    error_for: String,
    errors: FieldErrors,
}

fn boxes(set: PermissionSet) -> Vec<PermBox> {
    Permission::ALL
        .into_iter()
        .map(|p| PermBox {
            name: p.as_str(),
            checked: set.contains(p),
        })
        .collect()
}

fn form_set(form: &RoleForm) -> PermissionSet {
    PermissionSet::of(
        &form
            .permissions
            .iter()
            .filter_map(|p| Permission::parse(p))
            .collect::<Vec<_>>(),
    )
}

async fn page(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    failed: Option<(String, RoleForm, FieldErrors)>,
) -> AppResult<RolesPage> {
    ctx.require(Permission::OrgManage)?;
    let org_id = ctx.org.id.clone();
    let list: Vec<Role> = state
        .db(move |conn| Ok(roles::list(conn, &org_id)?))
        .await?;
    let (error_for, form, errors) =
        failed.unwrap_or_else(|| (String::new(), RoleForm::default(), FieldErrors::default()));
    let roles = list
        .into_iter()
        .map(|r| {
            let set = if r.id == error_for {
                form_set(&form)
            } else {
                r.permission_set()
            };
            RoleView {
                name: if r.id == error_for {
                    form.name.clone()
                } else {
                    r.name.clone()
                },
                permissions: r
                    .permission_set()
                    .iter()
                    .map(Permission::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                boxes: boxes(set),
                id: r.id,
                key: r.key,
                builtin: r.builtin,
                rank: r.rank,
            }
        })
        .collect();
    let creating = error_for.is_empty();
    Ok(RolesPage {
        layout: Layout::in_org(session, ctx, "Roles", "roles"),
        roles,
        new_name: if creating {
            form.name.clone()
        } else {
            String::new()
        },
        new_boxes: boxes(if creating {
            form_set(&form)
        } else {
            PermissionSet::default()
        }),
        error_for,
        errors,
    })
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    Ok(render(&page(&state, &session, &ctx, None).await?))
}

fn parse(body: &web::Bytes) -> RoleForm {
    serde_html_form::from_bytes(body).unwrap_or_default()
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::OrgManage)?;
    let form = parse(&body);
    let actor = ctx.actor();
    let f = form.clone();
    let result = state
        .db(move |conn| Ok(custom_roles::create(conn, &actor, &f, &origin)))
        .await?;
    match result {
        Ok(_) => {
            flash(
                &session,
                "success",
                format!("Role {} created.", form.name.trim()),
            );
            Ok(see_other(&format!("/orgs/{}/roles", ctx.org.slug)))
        }
        Err(MemberError::Invalid(errors)) => {
            let p = page(&state, &session, &ctx, Some((String::new(), form, errors))).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &p))
        }
        Err(e) => Err(member_error(e)),
    }
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::OrgManage)?;
    let role_id = path.into_inner().1;
    let form = parse(&body);
    let actor = ctx.actor();
    let (f, id) = (form.clone(), role_id.clone());
    let result = state
        .db(move |conn| Ok(custom_roles::update(conn, &actor, &id, &f, &origin)))
        .await?;
    match result {
        Ok(()) => {
            flash(
                &session,
                "success",
                format!("Role {} saved.", form.name.trim()),
            );
            Ok(see_other(&format!("/orgs/{}/roles", ctx.org.slug)))
        }
        Err(MemberError::Invalid(errors)) => {
            let p = page(&state, &session, &ctx, Some((role_id, form, errors))).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &p))
        }
        Err(e) => Err(member_error(e)),
    }
}

/// Asks before deleting a custom role.
pub async fn delete_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::OrgManage)?;
    let role_id = path.into_inner().1;
    let actor = ctx.actor();
    let role = state
        .db(move |conn| custom_roles::deletable(conn, &actor, &role_id).map_err(member_error))
        .await?;
    let list = format!("/orgs/{}/roles", ctx.org.slug);
    let page = crate::web::confirm::ConfirmPage::new(
        Layout::in_org(&session, &ctx, "Delete role", "roles"),
        format!("Delete the role {}?", role.name),
        format!("{list}/{}/delete", role.id),
    )
    .line("A role still held by members, groups, pool members or invitations cannot be deleted.")
    .button(format!("Delete {}", role.name))
    .cancel(list);
    Ok(render(&page))
}

pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::OrgManage)?;
    let role_id = path.into_inner().1;
    let actor = ctx.actor();
    let name = state
        .db(move |conn| custom_roles::delete(conn, &actor, &role_id, &origin).map_err(member_error))
        .await?;
    flash(&session, "success", format!("Role {name} deleted."));
    Ok(see_other(&format!("/orgs/{}/roles", ctx.org.slug)))
}
