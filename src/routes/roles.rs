//! The Roles page: built-in roles as seeded, custom roles admins compose from permissions.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::db::roles::Role;
use crate::domain::FieldErrors;
use crate::domain::custom_roles::{self, RoleForm};
use crate::domain::roles::{Permission, PermissionSet};
use crate::error::AppResult;
use crate::web::extract::OrgCtx;
use crate::web::form::decode;
use crate::web::layout::Layout;
use crate::web::outcome::{done, done_or_back, done_or_form_again};
use crate::web::{AppState, render};

struct PermBox {
    name: &'static str,
    description: &'static str,
    checked: bool,
}

/// A permission as the Roles page explains it.
struct PermLine {
    name: &'static str,
    description: &'static str,
}

struct RoleView {
    id: String,
    key: String,
    name: String,
    builtin: bool,
    rank: i64,
    permissions: Vec<PermLine>,
    members: i64,
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
            description: p.description(),
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

/// A role as its row prints it; the one whose form failed shows what was sent.
fn role_view(r: Role, members: i64, sent: Option<&RoleForm>) -> RoleView {
    RoleView {
        name: sent.map_or_else(|| r.name.clone(), |f| f.name.clone()),
        permissions: r
            .permission_set()
            .iter()
            .map(|p| PermLine {
                name: p.as_str(),
                description: p.description(),
            })
            .collect(),
        members,
        boxes: boxes(sent.map_or_else(|| r.permission_set(), form_set)),
        id: r.id,
        key: r.key,
        builtin: r.builtin,
        rank: r.rank,
    }
}

/// The Roles page; `failed` is the form the rules refused: the role's id ("" for the
/// create form), what was sent, and why.
async fn page(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    failed: Option<(String, RoleForm, FieldErrors)>,
) -> AppResult<RolesPage> {
    ctx.require(Permission::OrgManage)?;
    let org_id = ctx.org.id.clone();
    let list: Vec<(Role, i64)> = state
        .db(move |conn| Ok(custom_roles::overview(conn, &org_id)?))
        .await?;
    let (error_for, form, errors) = failed.unwrap_or_default();
    let creating = error_for.is_empty();
    let roles = list
        .into_iter()
        .map(|(r, members)| {
            let sent = (r.id == error_for).then_some(&form);
            role_view(r, members, sent)
        })
        .collect();
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

/// After a role form: on success back to the list saying the role was `verb`, else the
/// form again.
async fn saved(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    (role_id, form): (String, RoleForm),
    result: Result<(), crate::domain::RuleError>,
    verb: &str,
) -> AppResult<HttpResponse> {
    done_or_form_again(
        result,
        |()| {
            done(
                session,
                format!("Role {} {verb}.", form.name.trim()),
                &format!("/orgs/{}/roles", ctx.org.slug),
            )
        },
        |errors| page(state, session, ctx, Some((role_id, form.clone(), errors))),
    )
    .await
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::OrgManage)?;
    // An unreadable body is an empty form, which the rules then refuse by field.
    let form: RoleForm = decode(&body).unwrap_or_default();
    let (actor, f) = (ctx.actor(), form.clone());
    let result = state
        .db(move |conn| Ok(custom_roles::create(conn, &actor, &f, &origin).map(drop)))
        .await?;
    saved(
        &state,
        &session,
        &ctx,
        (String::new(), form),
        result,
        "created",
    )
    .await
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
    let form: RoleForm = decode(&body).unwrap_or_default();
    let (actor, f, id) = (ctx.actor(), form.clone(), role_id.clone());
    let result = state
        .db(move |conn| Ok(custom_roles::update(conn, &actor, &id, &f, &origin)))
        .await?;
    saved(&state, &session, &ctx, (role_id, form), result, "saved").await
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
    let result = state
        .db(move |conn| Ok(custom_roles::deletable(conn, &actor, &role_id)))
        .await?;
    let list = format!("/orgs/{}/roles", ctx.org.slug);
    // A role in use is refused here, on the list, before anyone confirms anything.
    let asked = |role: Role| {
        let page = crate::web::confirm::ConfirmPage::new(
            Layout::in_org(&session, &ctx, "Delete role", "roles"),
            format!("Delete the role {}?", role.name),
            format!("{list}/{}/delete", role.id),
        )
        .button(format!("Delete {}", role.name))
        .cancel(list.clone());
        render(&page)
    };
    done_or_back(&session, result, asked, &list)
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
    let result = state
        .db(move |conn| Ok(custom_roles::delete(conn, &actor, &role_id, &origin)))
        .await?;
    let list = format!("/orgs/{}/roles", ctx.org.slug);
    let deleted = |name| done(&session, format!("Role {name} deleted."), &list);
    done_or_back(&session, result, deleted, &list)
}
