use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::auth::current_user::OrgCtx;
use crate::db::audit_events::{self, AuditRow};
use crate::db::memberships;
use crate::db::roles::{self, Role};
use crate::db::{self, groups, pools, sessions};
use crate::domain::FieldErrors;
use crate::domain::member_list::{self, ListParams, PAGE_SIZE, encode_cursor, sort_param};
use crate::domain::members::{
    self, BulkAction, BulkOutcome, EditForm, MemberError, RemovalPlan, RemoveForm,
};
use crate::domain::redirect::safe_next;
use crate::domain::roles::Permission;
use crate::domain::timefmt;
use crate::error::{AppError, AppResult};
use crate::web::confirm::ConfirmPage;
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render, render_status, see_other};

/// Counts in the header stop here: exact totals of big sets cost a scan.
const COUNT_CAP: i64 = 10_000;

pub(crate) fn member_error(e: MemberError) -> AppError {
    match e {
        MemberError::NotFound => AppError::NotFound,
        MemberError::Forbidden(m) => AppError::Forbidden(m),
        MemberError::Conflict(m) => AppError::Conflict(m),
        MemberError::LastAdmin => AppError::Conflict(MemberError::LastAdmin.to_string()),
        e @ MemberError::ConfirmOwnRole { .. } => AppError::Conflict(e.to_string()),
        MemberError::Invalid(errors) => AppError::BadRequest(
            errors
                .first()
                .unwrap_or("Please correct the form.")
                .to_string(),
        ),
        MemberError::Db(e) => e.into(),
    }
}

/// A row of the Users tab, ready to print.
struct UserRowView {
    id: String,
    email: String,
    name: String,
    status: String,
    active: bool,
    role_key: String,
    role_name: String,
    groups: String,
    created: String,
    created_exact: String,
    last_active: String,
    last_active_exact: String,
    auth_method: String,
    is_self: bool,
}

struct SortLink {
    label: &'static str,
    href: String,
    /// "ascending" / "descending" for the column the page is sorted by.
    current: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<UserRowView>,
    q: String,
    status: String,
    role: String,
    sort: String,
    roles: Vec<Role>,
    groups: Vec<groups::Group>,
    active_count: String,
    inactive_count: String,
    can_manage: bool,
    next_href: Option<String>,
    first_href: Option<String>,
    sort_links: Vec<SortLink>,
    notice: Option<String>,
    /// This very page, where row actions come back to.
    here: String,
}

fn page_href(org: &str, params: &ListParams, sort: &str, cursor: Option<&str>) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (name, value) in [
        ("q", params.q.as_deref()),
        ("status", params.status.as_deref()),
        ("role", params.role.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            pairs.push((name, v));
        }
    }
    pairs.push(("sort", sort));
    if let Some(c) = cursor {
        pairs.push(("cursor", c));
    }
    format!(
        "/orgs/{org}/users?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    params: web::Query<ListParams>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersRead)?;
    let params = params.into_inner();
    let org_id = ctx.org.id.clone();
    let can_manage = ctx.can(Permission::UsersManage);
    let query_params = params.clone();
    let (roles, role_groups, rows, groups_by_user, active, inactive, problem) = state
        .db(move |conn| {
            let roles = roles::list(conn, &org_id)?;
            let mut notice = None;
            let role_id = match query_params.role.as_deref().filter(|r| !r.is_empty()) {
                None => None,
                Some(wanted) => match roles.iter().find(|r| r.id == wanted || r.key == wanted) {
                    Some(role) => Some(role.id.clone()),
                    None => {
                        notice = Some("There is no such role; showing all roles.".to_string());
                        None
                    }
                },
            };
            let (filter, problem) = member_list::to_filter(&query_params, role_id);
            let rows = memberships::list_page(conn, &org_id, &filter)?;
            let ids: Vec<String> = rows.iter().map(|r| r.user.id.clone()).collect();
            let mut groups_by_user: HashMap<String, Vec<String>> = HashMap::new();
            for (user_id, name) in groups::names_for_members(conn, &org_id, &ids)? {
                groups_by_user.entry(user_id).or_default().push(name);
            }
            let active = memberships::capped_count(conn, &org_id, "active", COUNT_CAP)?;
            let inactive = memberships::capped_count(conn, &org_id, "inactive", COUNT_CAP)?;
            let all_groups = if can_manage {
                groups::list(conn, &org_id)?
            } else {
                Vec::new()
            };
            let problem = problem.map(|p| p.to_string()).or(notice);
            Ok((
                roles,
                all_groups,
                (rows, filter),
                groups_by_user,
                active,
                inactive,
                problem,
            ))
        })
        .await?;
    let (mut rows, filter) = rows;
    let has_next = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let sort = sort_param(filter.sort, filter.descending);
    let sort_for_here = sort.clone();
    let slug = ctx.org.slug.clone();
    let next_href = has_next
        .then(|| rows.last().map(|r| encode_cursor(&r.cursor(filter.sort))))
        .flatten()
        .map(|c| page_href(&slug, &params, &sort, Some(&c)));
    let first_href = params
        .cursor
        .as_ref()
        .filter(|c| !c.is_empty())
        .map(|_| page_href(&slug, &params, &sort, None));
    let sort_links = [
        ("Email", memberships::SortKey::Email),
        ("Name", memberships::SortKey::Name),
        ("Created at", memberships::SortKey::Created),
        ("Last active", memberships::SortKey::LastActive),
    ]
    .into_iter()
    .map(|(label, key)| {
        let is_current = key == filter.sort;
        let descending = is_current && !filter.descending;
        SortLink {
            label,
            href: page_href(&slug, &params, &sort_param(key, descending), None),
            current: is_current.then_some(if filter.descending {
                "descending"
            } else {
                "ascending"
            }),
        }
    })
    .collect();
    let now = db::now();
    let me = ctx.user().id.clone();
    let rows = rows
        .into_iter()
        .map(|r| {
            let last = r.membership.last_active();
            UserRowView {
                groups: groups_by_user
                    .get(&r.user.id)
                    .map(|g| g.join(", "))
                    .unwrap_or_default(),
                is_self: r.user.id == me,
                id: r.user.id.clone(),
                name: r.user.display_name(),
                email: r.user.email,
                active: r.membership.is_active(),
                status: r.membership.status,
                role_key: r.role.key,
                role_name: r.role.name,
                created: timefmt::date(r.membership.created_at),
                created_exact: timefmt::exact(r.membership.created_at),
                last_active: last
                    .map(|t| timefmt::relative(now, t))
                    .unwrap_or_else(|| "Never".into()),
                last_active_exact: last.map(timefmt::exact).unwrap_or_default(),
                auth_method: crate::domain::two_factor::auth_method_label(&r.user.auth_method)
                    .into(),
            }
        })
        .collect();
    Ok(render(&UsersPage {
        layout: Layout::in_org(&session, &ctx, "Users", "users"),
        rows,
        q: params.q.clone().unwrap_or_default(),
        status: params.status.clone().unwrap_or_default(),
        role: params.role.clone().unwrap_or_default(),
        sort,
        roles,
        groups: role_groups,
        active_count: timefmt::count(active, COUNT_CAP),
        inactive_count: timefmt::count(inactive, COUNT_CAP),
        can_manage,
        next_href,
        first_href,
        sort_links,
        notice: problem,
        here: page_href(&slug, &params, &sort_for_here, params.cursor.as_deref()),
    }))
}

struct ProfileView {
    email: String,
    name: String,
    status: String,
    active: bool,
    role_name: String,
    is_admin_role: bool,
    created: String,
    last_active: String,
    last_active_exact: String,
    auth_method: String,
    sessions: i64,
    is_self: bool,
}

struct ActivityView {
    when: String,
    when_exact: String,
    sentence: String,
    action: String,
    details: String,
}

#[derive(Template)]
#[template(path = "users/profile.html")]
struct ProfilePage {
    layout: Layout,
    /// The profile's URL, which its tabs and actions extend.
    base: String,
    member: ProfileView,
    tab: &'static str,
    can_manage: bool,
    can_manage_groups: bool,
    member_id: String,
    roles: Vec<Role>,
    errors: FieldErrors,
    form: EditForm,
    /// The account belongs to other organizations too: its name is not this one's to edit.
    name_locked: bool,
    groups: Vec<groups::Group>,
    pools: Vec<(pools::Pool, String)>,
    activity: Vec<ActivityView>,
}

enum Tab {
    Details,
    Groups,
    Pools,
    Activity,
}

async fn profile(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    user_id: String,
    tab: Tab,
    form: Option<(EditForm, FieldErrors)>,
) -> AppResult<ProfilePage> {
    ctx.require(Permission::UsersRead)?;
    let org_id = ctx.org.id.clone();
    let loaded = state
        .db(move |conn| {
            let Some(row) = memberships::find(conn, &org_id, &user_id)? else {
                return Ok(None);
            };
            let session_count = sessions::count_for_user(conn, &user_id, db::now())?;
            let other_orgs = memberships::all_orgs_of_user(conn, &user_id)?.len() > 1;
            let roles = roles::list(conn, &org_id)?;
            let (groups, pools, activity) = match tab {
                Tab::Details => (Vec::new(), Vec::new(), Vec::new()),
                Tab::Groups => (
                    groups::of_member(conn, &org_id, &user_id)?,
                    Vec::new(),
                    Vec::new(),
                ),
                Tab::Pools => (
                    Vec::new(),
                    pools::of_member(conn, &org_id, &user_id)?,
                    Vec::new(),
                ),
                Tab::Activity => (
                    Vec::new(),
                    Vec::new(),
                    audit_events::page(
                        conn,
                        &audit_events::Scope::Org(org_id.clone()),
                        &audit_events::Filter {
                            target_id: Some(user_id.clone()),
                            ..Default::default()
                        },
                        None,
                        100,
                    )?,
                ),
            };
            Ok(Some((
                (row, other_orgs),
                session_count,
                roles,
                groups,
                pools,
                activity,
                tab,
            )))
        })
        .await?;
    let ((row, other_orgs), session_count, roles, groups, pools, activity, tab) =
        loaded.ok_or(AppError::NotFound)?;
    let name_locked = other_orgs && row.user.id != ctx.user().id;
    let now = db::now();
    let last = row.membership.last_active();
    let tab_name = match tab {
        Tab::Details => "details",
        Tab::Groups => "groups",
        Tab::Pools => "pools",
        Tab::Activity => "activity",
    };
    let (form, errors) = form.unwrap_or_else(|| {
        (
            EditForm {
                first_name: row.user.first_name.clone(),
                last_name: row.user.last_name.clone(),
                role_id: row.role.id.clone(),
                confirm_own_role: String::new(),
            },
            FieldErrors::default(),
        )
    });
    let title = row.user.email.clone();
    Ok(ProfilePage {
        layout: Layout::in_org(session, ctx, &title, "users"),
        base: format!("/orgs/{}/users/{}", ctx.org.slug, row.user.id),
        member: ProfileView {
            is_self: row.user.id == ctx.user().id,
            name: row.user.display_name(),
            email: row.user.email.clone(),
            active: row.membership.is_active(),
            status: row.membership.status.clone(),
            is_admin_role: row.role.permission_set().is_admin(),
            role_name: row.role.name.clone(),
            created: timefmt::exact(row.membership.created_at),
            last_active: last
                .map(|t| timefmt::relative(now, t))
                .unwrap_or_else(|| "Never".into()),
            last_active_exact: last.map(timefmt::exact).unwrap_or_default(),
            auth_method: crate::domain::two_factor::auth_method_label(&row.user.auth_method).into(),
            sessions: session_count,
        },
        tab: tab_name,
        can_manage: ctx.can(Permission::UsersManage),
        can_manage_groups: ctx.can(Permission::GroupsManage),
        member_id: row.user.id.clone(),
        roles: crate::domain::policy::grantable(&ctx.standing(), roles, |r| r.rank),
        errors,
        form,
        name_locked,
        groups,
        pools,
        activity: activity
            .into_iter()
            .map(|e| activity_view(now, e))
            .collect(),
    })
}

fn activity_view(now: chrono::NaiveDateTime, e: AuditRow) -> ActivityView {
    ActivityView {
        when: timefmt::relative(now, e.created_at),
        when_exact: timefmt::exact(e.created_at),
        sentence: crate::domain::audit_catalogue::sentence(&e),
        details: crate::domain::audit_catalogue::details_pretty(&e.details).unwrap_or_default(),
        action: e.action,
    }
}

type MemberPath = web::Path<(String, String)>;

/// One tab of the member profile, read-only.
async fn tab_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
    tab: Tab,
) -> AppResult<HttpResponse> {
    let page = profile(&state, &session, &ctx, path.into_inner().1, tab, None).await?;
    Ok(render(&page))
}

pub async fn profile_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
) -> AppResult<HttpResponse> {
    tab_page(state, session, ctx, path, Tab::Details).await
}

pub async fn groups_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
) -> AppResult<HttpResponse> {
    tab_page(state, session, ctx, path, Tab::Groups).await
}

pub async fn pools_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
) -> AppResult<HttpResponse> {
    tab_page(state, session, ctx, path, Tab::Pools).await
}

pub async fn activity_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
) -> AppResult<HttpResponse> {
    tab_page(state, session, ctx, path, Tab::Activity).await
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: web::Form<EditForm>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let form = form.into_inner();
    let actor = ctx.actor();
    let result = {
        let (user_id, form) = (user_id.clone(), form.clone());
        state
            .db(move |conn| Ok(members::edit(conn, &actor, &user_id, &form, &origin)))
            .await?
    };
    match result {
        Ok(()) => {
            flash(&session, "success", "Changes saved.");
            Ok(see_other(&format!(
                "/orgs/{}/users/{user_id}",
                ctx.org.slug
            )))
        }
        Err(MemberError::ConfirmOwnRole { from, to }) => {
            let base = format!("/orgs/{}/users/{user_id}", ctx.org.slug);
            let page = ConfirmPage::new(
                Layout::in_org(&session, &ctx, "Change your own role", "users"),
                format!("Change your own role to {to}?"),
                base.clone(),
            )
            .line(format!(
                "You are about to change your own role in {} from {from} to {to}.",
                ctx.org.name
            ))
            .line(format!(
                "You lose what {from} allows at once, and only another admin can give it back."
            ))
            .field("first_name", form.first_name)
            .field("last_name", form.last_name)
            .field("role_id", form.role_id)
            .field("confirm_own_role", "yes")
            .button(format!("Change my role to {to}"))
            .cancel(base);
            Ok(render_status(StatusCode::CONFLICT, &page))
        }
        Err(MemberError::Invalid(errors)) => {
            let page = profile(
                &state,
                &session,
                &ctx,
                user_id,
                Tab::Details,
                Some((form, errors)),
            )
            .await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(member_error(e)),
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    next: Option<String>,
}

/// A one-click action on a member, and what the flash says once it is done.
struct MemberAction {
    run: fn(&mut db::DbConnection, &members::Actor, &str, &Origin) -> Result<(), MemberError>,
    done: &'static str,
}

const DEACTIVATE: MemberAction = MemberAction {
    run: members::deactivate,
    done: "was deactivated and can no longer reach this organization",
};
const ACTIVATE: MemberAction = MemberAction {
    run: members::activate,
    done: "is active again",
};
const MAKE_ADMIN: MemberAction = MemberAction {
    run: members::make_admin,
    done: "is now an admin",
};

async fn member_action(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    (user_id, next): (String, Option<String>),
    action: MemberAction,
) -> AppResult<HttpResponse> {
    let actor = ctx.actor();
    let target = user_id.clone();
    let email = state
        .db(move |conn| {
            (action.run)(conn, &actor, &target, &origin).map_err(member_error)?;
            Ok(db::users::find(conn, &target)?
                .map(|u| u.email)
                .unwrap_or_default())
        })
        .await?;
    flash(&session, "success", format!("{email} {}.", action.done));
    let profile = format!("/orgs/{}/users/{user_id}", ctx.org.slug);
    Ok(see_other(safe_next(next.as_deref(), &profile)))
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Asks before deactivating, so the action needs a second, deliberate press.
pub async fn deactivate_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
    query: web::Query<NextQuery>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let actor = ctx.actor();
    let target = state
        .db(move |conn| members::deactivatable(conn, &actor, &user_id).map_err(member_error))
        .await?;
    let profile = format!("/orgs/{}/users/{}", ctx.org.slug, target.user.id);
    let back = safe_next(query.next.as_deref(), &profile).to_string();
    let email = &target.user.email;
    let page = ConfirmPage::new(
        Layout::in_org(&session, &ctx, "Deactivate member", "users"),
        format!("Deactivate {email}?"),
        format!("{profile}/deactivate"),
    )
    .line(format!(
        "{email} loses access to {} on their very next request. Their groups, pools and role stay, so you can activate them again later.",
        ctx.org.name
    ))
    .field("next", back.clone())
    .button(format!("Deactivate {email}"))
    .cancel(back);
    Ok(render(&page))
}

/// Asks before giving someone the Admin role.
pub async fn make_admin_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let actor = ctx.actor();
    let target = state
        .db(move |conn| members::promotable(conn, &actor, &user_id).map_err(member_error))
        .await?;
    let profile = format!("/orgs/{}/users/{}", ctx.org.slug, target.user.id);
    let email = &target.user.email;
    let page = ConfirmPage::new(
        Layout::in_org(&session, &ctx, "Make admin", "users"),
        format!("Make {email} an admin of {}?", ctx.org.name),
        format!("{profile}/make-admin"),
    )
    .line(format!(
        "Admins can do everything in {}: invite and remove anyone, change roles, and read the audit trail.",
        ctx.org.name
    ))
    .button(format!("Make {email} an admin"))
    .harmless()
    .cancel(profile.clone());
    Ok(render(&page))
}

pub async fn deactivate(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: web::Form<ActionForm>,
) -> AppResult<HttpResponse> {
    let target = (path.into_inner().1, form.into_inner().next);
    member_action(state, session, ctx, origin, target, DEACTIVATE).await
}

pub async fn activate(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: web::Form<ActionForm>,
) -> AppResult<HttpResponse> {
    let target = (path.into_inner().1, form.into_inner().next);
    member_action(state, session, ctx, origin, target, ACTIVATE).await
}

pub async fn make_admin(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: web::Form<ActionForm>,
) -> AppResult<HttpResponse> {
    let target = (path.into_inner().1, form.into_inner().next);
    member_action(state, session, ctx, origin, target, MAKE_ADMIN).await
}

#[derive(Template)]
#[template(path = "users/delete.html")]
struct DeletePage {
    layout: Layout,
    org_name: String,
    email: String,
    user_id: String,
    owned_groups: Vec<String>,
    owned_pools: Vec<String>,
    needs_successor: bool,
    successors: Vec<memberships::Membership>,
    /// The actor is removing themselves: the page is an explicit "leave" confirmation.
    leaving: bool,
    form: RemoveForm,
    errors: FieldErrors,
}

async fn delete_page(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    user_id: String,
    form: RemoveForm,
    errors: FieldErrors,
) -> AppResult<DeletePage> {
    let actor = ctx.actor();
    let plan: RemovalPlan = state
        .db(move |conn| members::removal_plan(conn, &actor, &user_id).map_err(member_error))
        .await?;
    Ok(DeletePage {
        layout: Layout::in_org(session, ctx, "Remove member", "users"),
        org_name: ctx.org.name.clone(),
        needs_successor: plan.needs_successor(),
        leaving: plan.target.user.id == ctx.user().id,
        email: plan.target.user.email,
        user_id: plan.target.user.id,
        owned_groups: plan.owned_groups,
        owned_pools: plan.owned_pools,
        successors: plan.successors,
        form,
        errors,
    })
}

pub async fn delete_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
) -> AppResult<HttpResponse> {
    let page = delete_page(
        &state,
        &session,
        &ctx,
        path.into_inner().1,
        RemoveForm::default(),
        FieldErrors::default(),
    )
    .await?;
    Ok(render(&page))
}

pub async fn remove(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: web::Form<RemoveForm>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let form = form.into_inner();
    let actor = ctx.actor();
    let result = {
        let (user_id, form) = (user_id.clone(), form.clone());
        state
            .db(move |conn| {
                let email = memberships::find(conn, &actor.org_id, &user_id)?.map(|r| r.user.email);
                Ok(members::remove(conn, &actor, &user_id, &form, &origin).map(|()| email))
            })
            .await?
    };
    match result {
        Ok(email) => {
            flash(
                &session,
                "success",
                format!(
                    "{} was removed from {}.",
                    email.unwrap_or_default(),
                    ctx.org.name
                ),
            );
            Ok(see_other(&format!("/orgs/{}/users", ctx.org.slug)))
        }
        Err(MemberError::Invalid(errors)) => {
            let page = delete_page(&state, &session, &ctx, user_id, form, errors).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(member_error(e)),
    }
}

#[derive(Deserialize, Default, Clone)]
struct BulkForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    user_ids: Vec<String>,
    role_id: Option<String>,
    group_id: Option<String>,
}

#[derive(Template)]
#[template(path = "users/bulk_result.html")]
struct BulkResultPage {
    layout: Layout,
    action: &'static str,
    outcomes: Vec<BulkOutcome>,
    done: usize,
    skipped: usize,
    error: Option<String>,
    back: String,
}

const NO_BULK_ACTION: &str = "Choose what to do with the selected members.";

/// A bulk request that cannot run: the result page with the reason, back to Users.
fn bulk_refused(session: &Session, ctx: &OrgCtx, action: &'static str, why: &str) -> HttpResponse {
    render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &BulkResultPage {
            layout: Layout::in_org(session, ctx, "Bulk action", "users"),
            action,
            outcomes: Vec::new(),
            done: 0,
            skipped: 0,
            error: Some(why.to_string()),
            back: format!("/orgs/{}/users", ctx.org.slug),
        },
    )
}

/// The bulk form asks here first: the page names the action, the count and each member,
/// and its button sends the same choice to `bulk`.
pub async fn bulk_confirm(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    req: actix_web::HttpRequest,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersManage)?;
    let form: BulkForm = serde_html_form::from_str(req.query_string()).unwrap_or_default();
    let Some(action) = BulkAction::parse(&form.action) else {
        return Ok(bulk_refused(&session, &ctx, "Bulk action", NO_BULK_ACTION));
    };
    let actor = ctx.actor();
    let chosen = form.clone();
    let preview = state
        .db(move |conn| {
            Ok(members::bulk_preview(
                conn,
                &actor,
                action,
                &chosen.user_ids,
                chosen.role_id.as_deref(),
                chosen.group_id.as_deref(),
            ))
        })
        .await?;
    let preview = match preview {
        Ok(preview) => preview,
        Err(MemberError::Invalid(errors)) => {
            let message = errors.first().unwrap_or("Please correct the form.");
            return Ok(bulk_refused(&session, &ctx, "Bulk action", message));
        }
        Err(e) => return Err(member_error(e)),
    };
    Ok(render(&bulk_confirm_page(
        Layout::in_org(&session, &ctx, "Confirm bulk action", "users"),
        &ctx.org.slug,
        action,
        &form,
        preview,
    )))
}

fn bulk_confirm_page(
    layout: Layout,
    slug: &str,
    action: BulkAction,
    form: &BulkForm,
    preview: members::BulkPreview,
) -> ConfirmPage {
    let count = preview.members.iter().filter(|(_, _, me)| !me).count();
    let noun = if count == 1 { "member" } else { "members" };
    let verb = match (action, &preview.target) {
        (BulkAction::SetRole, Some(role)) => format!("Change the role of {count} {noun} to {role}"),
        (BulkAction::AddToGroup, Some(group)) => format!("Add {count} {noun} to {group}"),
        (BulkAction::Remove, _) => format!("Remove {count} {noun} from the organization"),
        _ => format!("{} {count} {noun}", action.label()),
    };
    let mut page = ConfirmPage::new(
        layout,
        format!("{verb}?"),
        format!("/orgs/{slug}/users/bulk"),
    )
    .field("action", form.action.clone())
    .button(verb)
    .cancel(format!("/orgs/{slug}/users"));
    if matches!(action, BulkAction::Activate | BulkAction::AddToGroup) {
        page = page.harmless();
    }
    if matches!(action, BulkAction::Deactivate | BulkAction::Remove) {
        page = page.line("They lose access to this organization on their very next request.");
    }
    for (id, email, me) in preview.members {
        page.items.push(if me {
            format!("{email} (you: skipped, these bulk actions never change your own membership)")
        } else {
            email
        });
        page = page.field("user_ids", id);
    }
    if preview.unknown > 0 {
        page = page.line(format!(
            "{} of the chosen ids are not members of this organization and will be skipped.",
            preview.unknown
        ));
    }
    for (name, value) in [("role_id", &form.role_id), ("group_id", &form.group_id)] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            page = page.field(name, v.clone());
        }
    }
    page
}

pub async fn bulk(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersManage)?;
    let form: BulkForm = serde_html_form::from_bytes(&body).unwrap_or_default();
    let Some(action) = BulkAction::parse(&form.action) else {
        return Ok(bulk_refused(&session, &ctx, "Bulk action", NO_BULK_ACTION));
    };
    let actor = ctx.actor();
    let result = state
        .db(move |conn| {
            Ok(members::bulk(
                conn,
                &actor,
                action,
                &form.user_ids,
                form.role_id.as_deref(),
                form.group_id.as_deref(),
                &origin,
            ))
        })
        .await?;
    match result {
        Ok(outcomes) => {
            let done = outcomes.iter().filter(|o| o.done).count();
            Ok(render(&BulkResultPage {
                layout: Layout::in_org(&session, &ctx, "Bulk action", "users"),
                action: action.label(),
                skipped: outcomes.len() - done,
                done,
                outcomes,
                error: None,
                back: format!("/orgs/{}/users", ctx.org.slug),
            }))
        }
        Err(MemberError::Invalid(errors)) => {
            let message = errors.first().unwrap_or("Please correct the form.");
            Ok(bulk_refused(&session, &ctx, action.label(), message))
        }
        Err(e) => Err(member_error(e)),
    }
}
