//! Groups: list and create, a group's page with its members, edit, delete.

use std::ops::Deref;

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::domain::FieldErrors;
use crate::domain::groups::{self as rules, GroupForm, GroupView, GroupsList};
use crate::domain::member_picker::{PickQuery, PickerPage};
use crate::domain::redirect::safe_next;
use crate::domain::roles::Permission;
use crate::error::AppResult;
use crate::web::extract::OrgCtx;
use crate::web::form::{Form, Query};
use crate::web::layout::Layout;
use crate::web::outcome::{done, done_or_back, done_or_form_again};
use crate::web::{AppState, render};

#[derive(Template)]
#[template(path = "groups/list.html")]
struct GroupsPage {
    layout: Layout,
    list: GroupsList,
    can_manage: bool,
    action: String,
    submit: &'static str,
    form: GroupForm,
    errors: FieldErrors,
}

/// The template reads the list's fields as its own.
impl Deref for GroupsPage {
    type Target = GroupsList;
    fn deref(&self) -> &GroupsList {
        &self.list
    }
}

/// Where a page's member pickers search: the page itself, and the search endpoint.
fn picker_page(ctx: &OrgCtx, page: String, query: PickQuery) -> PickerPage {
    PickerPage {
        page,
        endpoint: format!("/orgs/{}/members/search", ctx.org.slug),
        query,
    }
}

async fn list(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    failed: Option<(GroupForm, FieldErrors)>,
    query: PickQuery,
) -> AppResult<GroupsPage> {
    ctx.require(Permission::UsersRead)?;
    let actor = ctx.actor();
    let at = picker_page(ctx, format!("/orgs/{}/groups", ctx.org.slug), query);
    let owner = failed.as_ref().map(|(f, _)| f.owner_id.clone());
    let list = state
        .db(move |conn| Ok(rules::load_list(conn, &actor, &at, owner.as_deref())?))
        .await?;
    let (form, errors) = failed.unwrap_or_else(|| {
        let owner_id = ctx.user().id.clone();
        let form = GroupForm {
            owner_id,
            ..Default::default()
        };
        (form, FieldErrors::default())
    });
    Ok(GroupsPage {
        layout: Layout::in_org(session, ctx, "Groups", "groups"),
        list,
        can_manage: ctx.can(Permission::GroupsManage),
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
    query: Query<PickQuery>,
) -> AppResult<HttpResponse> {
    let page = list(&state, &session, &ctx, None, query.into_inner()).await?;
    Ok(render(&page))
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    form: Form<GroupForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let form = form.into_inner();
    let (actor, f) = (ctx.actor(), form.clone());
    let result = state
        .db(move |conn| Ok(rules::create(conn, &actor, &f, &origin)))
        .await?;
    done_or_form_again(
        result,
        |id| {
            done(
                &session,
                format!("Group {} created.", form.name.trim()),
                &format!("/orgs/{}/groups/{id}", ctx.org.slug),
            )
        },
        |errors| {
            let failed = Some((form.clone(), errors));
            list(&state, &session, &ctx, failed, PickQuery::default())
        },
    )
    .await
}

#[derive(Template)]
#[template(path = "groups/show.html")]
struct GroupPage {
    layout: Layout,
    view: GroupView,
    can_manage: bool,
    /// They manage groups, but not this one: it grants a role above theirs.
    out_of_reach: bool,
    action: String,
    submit: &'static str,
    form: GroupForm,
    errors: FieldErrors,
}

/// The template reads the group's fields as its own.
impl Deref for GroupPage {
    type Target = GroupView;
    fn deref(&self) -> &GroupView {
        &self.view
    }
}

type GroupPath = web::Path<(String, String)>;

async fn show(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    group_id: String,
    failed: Option<(GroupForm, FieldErrors)>,
    query: PickQuery,
) -> AppResult<GroupPage> {
    ctx.require(Permission::UsersRead)?;
    let actor = ctx.actor();
    let page = format!("/orgs/{}/groups/{group_id}", ctx.org.slug);
    let at = picker_page(ctx, page, query);
    let owner = failed.as_ref().map(|(f, _)| f.owner_id.clone());
    let view = state
        .db(move |conn| {
            let owner = owner.as_deref();
            Ok(rules::load_view(conn, &actor, &group_id, &at, owner)?)
        })
        .await?;
    let (form, errors) = failed.unwrap_or_else(|| (view.form(), FieldErrors::default()));
    Ok(GroupPage {
        layout: Layout::in_org(session, ctx, &view.group.name, "groups"),
        can_manage: ctx.can(Permission::GroupsManage) && !view.beyond_reach,
        out_of_reach: ctx.can(Permission::GroupsManage) && view.beyond_reach,
        action: format!("/orgs/{}/groups/{}", ctx.org.slug, view.group.id),
        submit: "Save group",
        view,
        form,
        errors,
    })
}

pub async fn show_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: GroupPath,
    query: Query<PickQuery>,
) -> AppResult<HttpResponse> {
    let (id, query) = (path.into_inner().1, query.into_inner());
    Ok(render(
        &show(&state, &session, &ctx, id, None, query).await?,
    ))
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: GroupPath,
    form: Form<GroupForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let id = path.into_inner().1;
    let form = form.into_inner();
    let (actor, f, gid) = (ctx.actor(), form.clone(), id.clone());
    let result = state
        .db(move |conn| Ok(rules::update(conn, &actor, &gid, &f, &origin)))
        .await?;
    done_or_form_again(
        result,
        |()| {
            done(
                &session,
                "Group saved.",
                &format!("/orgs/{}/groups/{id}", ctx.org.slug),
            )
        },
        |errors| {
            let failed = Some((form, errors));
            show(
                &state,
                &session,
                &ctx,
                id.clone(),
                failed,
                PickQuery::default(),
            )
        },
    )
    .await
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
        .db(move |conn| Ok(rules::deletable(conn, &actor, &id)?))
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
        .db(move |conn| Ok(rules::delete(conn, &actor, &id, &origin)?))
        .await?;
    Ok(done(
        &session,
        format!("Group {name} deleted."),
        &format!("/orgs/{}/groups", ctx.org.slug),
    ))
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
    form: Form<AddMemberForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let id = path.into_inner().1;
    let user_id = form.into_inner().user_id;
    let actor = ctx.actor();
    let gid = id.clone();
    let added = state
        .db(move |conn| Ok(rules::add_member(conn, &actor, &gid, &user_id, &origin)))
        .await?;
    let page = format!("/orgs/{}/groups/{id}", ctx.org.slug);
    // A refusal the person can act on (nobody picked, already in the group) is said at
    // the top of the group's page, not on an error page of its own.
    done_or_back(
        &session,
        added,
        |email| done(&session, format!("{email} added to the group."), &page),
        &page,
    )
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
    form: Form<RemoveForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::GroupsManage)?;
    let (_, id, user_id) = path.into_inner();
    let actor = ctx.actor();
    let gid = id.clone();
    let email = state
        .db(move |conn| Ok(rules::remove_member(conn, &actor, &gid, &user_id, &origin)?))
        .await?;
    let back = format!("/orgs/{}/groups/{id}", ctx.org.slug);
    let next = form.into_inner().next;
    let back = safe_next(next.as_deref(), &back);
    Ok(done(
        &session,
        format!("{email} removed from the group."),
        back,
    ))
}
