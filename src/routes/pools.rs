//! Pools and sub-pools: the tree, a pool's page with members, create, rename / move,
//! delete after a confirmation that says what goes.

use std::ops::Deref;

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::domain::FieldErrors;
use crate::domain::member_picker::{PickQuery, PickerPage};
use crate::domain::pools::{
    self as rules, DeletePlan, PoolForm, PoolList, PoolMemberForm, PoolView,
};
use crate::error::AppResult;
use crate::web::extract::OrgCtx;
use crate::web::form::{Form, Query};
use crate::web::layout::Layout;
use crate::web::outcome::{done, done_or_form_again};
use crate::web::{AppState, render};

#[derive(Template)]
#[template(path = "pools/list.html")]
struct PoolsPage {
    layout: Layout,
    list: PoolList,
    form: PoolForm,
    errors: FieldErrors,
}

/// The template reads the list's fields as its own.
impl Deref for PoolsPage {
    type Target = PoolList;
    fn deref(&self) -> &PoolList {
        &self.list
    }
}

async fn list(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    failed: Option<(PoolForm, FieldErrors)>,
) -> AppResult<PoolsPage> {
    let actor = ctx.actor();
    let list = state
        .db(move |conn| Ok(rules::load_list(conn, &actor)?))
        .await?;
    let (form, errors) = failed.unwrap_or_default();
    Ok(PoolsPage {
        layout: Layout::in_org(session, ctx, "Pools", "pools"),
        list,
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
    form: Form<PoolForm>,
) -> AppResult<HttpResponse> {
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
                format!("Pool {} created.", form.name.trim()),
                &format!("/orgs/{}/pools/{id}", ctx.org.slug),
            )
        },
        |errors| list(&state, &session, &ctx, Some((form.clone(), errors))),
    )
    .await
}

#[derive(Template)]
#[template(path = "pools/show.html")]
struct PoolPage {
    layout: Layout,
    view: PoolView,
    form: PoolForm,
    errors: FieldErrors,
}

/// The template reads the pool's fields as its own.
impl Deref for PoolPage {
    type Target = PoolView;
    fn deref(&self) -> &PoolView {
        &self.view
    }
}

type PoolPath = web::Path<(String, String)>;

/// The pool's page; `form` is the edit form as sent, or as the pool stands when `None`.
async fn show(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    pool_id: String,
    form: Option<PoolForm>,
    (errors, query): (FieldErrors, PickQuery),
) -> AppResult<PoolPage> {
    let actor = ctx.actor();
    let at = PickerPage {
        page: format!("/orgs/{}/pools/{pool_id}", ctx.org.slug),
        endpoint: format!("/orgs/{}/members/search", ctx.org.slug),
        query,
    };
    let view = state
        .db(move |conn| Ok(rules::load_view(conn, &actor, &pool_id, &at)?))
        .await?;
    Ok(PoolPage {
        layout: Layout::in_org(session, ctx, &view.pool.name, "pools"),
        form: form.unwrap_or_else(|| view.form()),
        view,
        errors,
    })
}

pub async fn show_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: PoolPath,
    query: Query<PickQuery>,
) -> AppResult<HttpResponse> {
    let (id, query) = (path.into_inner().1, query.into_inner());
    let at = (FieldErrors::default(), query);
    let page = show(&state, &session, &ctx, id, None, at).await?;
    Ok(render(&page))
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: PoolPath,
    form: Form<PoolForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner().1;
    let form = form.into_inner();
    let (actor, f, pid) = (ctx.actor(), form.clone(), id.clone());
    let result = state
        .db(move |conn| Ok(rules::update(conn, &actor, &pid, &f, &origin)))
        .await?;
    done_or_form_again(
        result,
        |()| {
            done(
                &session,
                "Pool saved.",
                &format!("/orgs/{}/pools/{id}", ctx.org.slug),
            )
        },
        |errors| {
            let at = (errors, PickQuery::default());
            show(&state, &session, &ctx, id.clone(), Some(form), at)
        },
    )
    .await
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
        .db(move |conn| Ok(rules::delete_plan(conn, &actor, &id)?))
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
        .db(move |conn| Ok(rules::delete(conn, &actor, &id, &origin)?))
        .await?;
    Ok(done(
        &session,
        format!("Pool {name} deleted."),
        &format!("/orgs/{}/pools", ctx.org.slug),
    ))
}

pub async fn add_member(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: PoolPath,
    form: Form<PoolMemberForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner().1;
    let (actor, f, pid) = (ctx.actor(), form.into_inner(), id.clone());
    let result = state
        .db(move |conn| Ok(rules::add_member(conn, &actor, &pid, &f, &origin)))
        .await?;
    done_or_form_again(
        result,
        |email| {
            done(
                &session,
                format!("{email} added to the pool."),
                &format!("/orgs/{}/pools/{id}", ctx.org.slug),
            )
        },
        |errors| {
            let at = (errors, PickQuery::default());
            show(&state, &session, &ctx, id.clone(), None, at)
        },
    )
    .await
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
        .db(move |conn| Ok(rules::remove_member(conn, &actor, &pid, &user_id, &origin)?))
        .await?;
    Ok(done(
        &session,
        format!("{email} removed from the pool."),
        &format!("/orgs/{}/pools/{id}", ctx.org.slug),
    ))
}
