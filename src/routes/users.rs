use std::ops::Deref;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::db;
use crate::db::memberships::SortKey;
use crate::domain::groups;
use crate::domain::member_list::{self, ListError, ListParams, UsersList, sort_param};
use crate::domain::member_picker::{PickQuery, Picker, PickerPage, removal_with_successor};
use crate::domain::member_profile::{self, Profile, Tab};
use crate::domain::members::{self, BulkAction, BulkOutcome, EditForm, RemovalPlan, RemoveForm};
use crate::domain::pools::{self, PoolMemberForm};
use crate::domain::redirect::safe_next;
use crate::domain::roles::Permission;
use crate::domain::two_factor_reset::{self, By};
use crate::domain::{FieldErrors, RuleError};
use crate::error::{AppError, AppResult};
use crate::web::confirm::ConfirmPage;
use crate::web::extract::OrgCtx;
use crate::web::form::{Form, Query, decode, to_query};
use crate::web::layout::Layout;
use crate::web::outcome::{done, done_or_back, done_or_form_again, unchanged};
use crate::web::paging::{BadCursor, Cursor, PAGE_SIZE};
use crate::web::{AppState, flash, once, render, render_sized, render_status, see_other};

struct SortLink {
    label: &'static str,
    href: String,
    /// "ascending" / "descending" for the column the page is sorted by.
    current: Option<&'static str>,
}

/// The links of a Users page: its columns, its neighbours, itself.
struct ListNav {
    sort_links: Vec<SortLink>,
    next_href: Option<String>,
    previous_href: Option<String>,
    first_href: Option<String>,
    /// This very page, where row actions come back to.
    here: String,
    /// `here` percent-encoded for a `?next=` (three links a row encoded it anew).
    here_encoded: String,
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct UsersPage {
    layout: Layout,
    list: UsersList,
    nav: ListNav,
    bulk: BulkState,
}

/// What the bulk form held when it comes back refused: the ticked members, the choices,
/// and why, shown by the form.
#[derive(Default)]
struct BulkState {
    selected: Vec<String>,
    action: String,
    role_id: String,
    group_id: String,
    error: Option<String>,
}

impl UsersPage {
    /// About what the page will weigh: a row is 3 KB (ids, emails and its forms), and
    /// the rest of the page about 16 KB.
    fn expected_bytes(&self) -> usize {
        16_384 + 3_300 * self.list.rows.len()
    }

    fn is_selected(&self, id: &str) -> bool {
        self.bulk.selected.iter().any(|s| s == id)
    }
}

/// The template reads the list's fields as its own.
impl Deref for UsersPage {
    type Target = UsersList;
    fn deref(&self) -> &UsersList {
        &self.list
    }
}

/// A Users page with these filters and this sort, at `position` (the paging pairs).
fn page_href(org: &str, params: &ListParams, sort: &str, position: &[(&str, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (name, value) in [
        ("q", params.q.as_deref()),
        ("status", params.status.as_deref()),
        ("role", params.role.as_deref()),
        ("auth", params.auth.as_deref()),
        ("expiring", params.expiring.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            pairs.push((name, v));
        }
    }
    pairs.push(("sort", sort));
    for (name, value) in position {
        pairs.push((name, value));
    }
    format!("/orgs/{org}/users?{}", to_query(&pairs))
}

/// Where in the list these parameters stand: the cursor it came by and the range label.
fn position(params: &ListParams) -> Vec<(&'static str, String)> {
    let mut here = Vec::new();
    for (name, value) in [
        ("cursor", &params.cursor),
        ("before", &params.before),
        ("start", &params.start),
    ] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            here.push((name, v.clone()));
        }
    }
    here
}

fn list_nav(org: &str, params: &ListParams, list: &UsersList) -> ListNav {
    let sort_links = [
        ("Email", SortKey::Email),
        ("Name", SortKey::Name),
        ("Created at", SortKey::Created),
        ("Last active", SortKey::LastActive),
    ]
    .into_iter()
    .map(|(label, key)| {
        let is_current = key == list.sort_key;
        let descending = is_current && !list.descending;
        SortLink {
            label,
            href: page_href(org, params, &sort_param(key, descending), &[]),
            current: is_current.then_some(if list.descending {
                "descending"
            } else {
                "ascending"
            }),
        }
    })
    .collect();
    let start = |n: u64| ("start", n.to_string());
    let shown = list.rows.len() as u64;
    let next = list.next.clone().map(|key| {
        let mut at = vec![("cursor", Cursor(key).encode())];
        at.extend(list.start.map(|s| start(s + shown)));
        page_href(org, params, &list.sort, &at)
    });
    let previous = list.previous.clone().map(|key| match key {
        None => page_href(org, params, &list.sort, &[]),
        Some(key) => {
            let mut at = vec![("before", Cursor(key).encode())];
            at.extend(
                list.start
                    .map(|s| start(s.saturating_sub(PAGE_SIZE as u64).max(1))),
            );
            page_href(org, params, &list.sort, &at)
        }
    });
    let here_href = page_href(org, params, &list.sort, &position(params));
    ListNav {
        sort_links,
        next_href: next,
        first_href: list
            .previous
            .as_ref()
            .and_then(|p| p.as_ref())
            .map(|_| page_href(org, params, &list.sort, &[])),
        previous_href: previous,
        here_encoded: encoded(&here_href),
        here: here_href,
    }
}

/// What the template's `urlencode` filter writes for `text`.
fn encoded(text: &str) -> String {
    let Ok(encoded) = askama::filters::urlencode(text);
    encoded.to_string()
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    params: Query<ListParams>,
) -> AppResult<HttpResponse> {
    // Every way into an organization leads here; one who may not read it goes on to the
    // first tab they may open, not to a refusal whose way out leads back here.
    let first = ctx.standing().first_tab();
    if first != "users" {
        return Ok(see_other(&format!("/orgs/{}/{first}", ctx.org.slug)));
    }
    let page = users_page(
        &state,
        &session,
        &ctx,
        params.into_inner(),
        BulkState::default(),
    );
    let page = page.await?;
    Ok(render_sized(StatusCode::OK, &page, page.expected_bytes()))
}

/// The Users tab for these filters, with the bulk form as `bulk` left it.
async fn users_page(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    params: ListParams,
    bulk: BulkState,
) -> AppResult<UsersPage> {
    ctx.require(Permission::UsersRead)?;
    let backwards = params
        .before
        .as_deref()
        .is_some_and(|b| !b.trim().is_empty());
    let raw = if backwards {
        &params.before
    } else {
        &params.cursor
    };
    let after = Cursor::from_param(raw.as_deref())
        .map(|c| c.map(|Cursor(key)| key))
        .map_err(|BadCursor| ListError::BadCursor);
    let (actor, query) = (ctx.actor(), params.clone());
    let list = state
        .read_unless_scan(params.may_scan(), move |conn| {
            let at = (after.clone(), backwards);
            Ok(member_list::load_page(conn, &actor, &query, at, PAGE_SIZE)?)
        })
        .await?;
    let nav = list_nav(&ctx.org.slug, &params, &list);
    Ok(UsersPage {
        layout: Layout::in_org(session, ctx, "Users", "users"),
        list,
        nav,
        bulk,
    })
}

#[derive(Template)]
#[template(path = "users/profile.html")]
struct ProfilePage {
    layout: Layout,
    /// The profile's URL, which its tabs and actions extend.
    base: String,
    profile: Profile,
    can_manage: bool,
    can_manage_groups: bool,
    /// Admins may reset a member's second factor (the rule decides on the target).
    can_reset_two_factor: bool,
    errors: FieldErrors,
    form: EditForm,
    /// The viewer's own last day, if their access ends: the latest they may give.
    last_day: Option<String>,
}

/// The template reads the profile's fields as its own.
impl Deref for ProfilePage {
    type Target = Profile;
    fn deref(&self) -> &Profile {
        &self.profile
    }
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
    let actor = ctx.actor();
    if tab == Tab::Activity && !member_profile::may_read_activity(&actor, &user_id) {
        return Err(AppError::forbidden());
    }
    let profile = state
        .db(move |conn| Ok(member_profile::load(conn, &actor, &user_id, tab)?))
        .await?
        .ok_or(AppError::NotFound)?;
    let (form, errors) = form.unwrap_or_else(|| (profile.form.clone(), FieldErrors::default()));
    Ok(ProfilePage {
        layout: Layout::in_org(session, ctx, &profile_title(&profile), "users"),
        base: format!("/orgs/{}/users/{}", ctx.org.slug, profile.member_id),
        can_manage: ctx.can(Permission::UsersManage),
        can_manage_groups: ctx.can(Permission::GroupsManage),
        can_reset_two_factor: ctx.can(Permission::OrgManage),
        errors,
        form,
        profile,
        last_day: ctx.last_day_of_access(),
    })
}

/// A profile's tabs read apart in the browser's tab: "Activity · ada@example.com".
fn profile_title(profile: &Profile) -> String {
    let tab = match profile.tab {
        "groups" => "Groups",
        "pools" => "Pools",
        "activity" => "Activity",
        _ => return profile.member.email.clone(),
    };
    format!("{tab} · {}", profile.member.email)
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
    form: Form<EditForm>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let form = form.into_inner();
    let actor = ctx.actor();
    let (id, f) = (user_id.clone(), form.clone());
    let result = state
        .db(move |conn| Ok(members::edit(conn, &actor, &id, &f, &origin)))
        .await?;
    let base = format!("/orgs/{}/users/{user_id}", ctx.org.slug);
    let result = match result {
        Err(RuleError::ConfirmOwnRole { from, to }) => {
            let page = confirm_own_role(&session, &ctx, base, form, (&from, &to));
            return Ok(render_status(StatusCode::CONFLICT, &page));
        }
        other => other,
    };
    done_or_form_again(
        result,
        |changed| saved_or_not(&session, changed, &base),
        |errors| {
            profile(
                &state,
                &session,
                &ctx,
                user_id,
                Tab::Details,
                Some((form, errors)),
            )
        },
    )
    .await
}

fn saved_or_not(session: &Session, changed: bool, base: &str) -> HttpResponse {
    match changed {
        true => done(session, "Changes saved.", base),
        false => unchanged(session, "Nothing changed.", base),
    }
}

/// Asks before the actor changes their own role, sending the same form again.
fn confirm_own_role(
    session: &Session,
    ctx: &OrgCtx,
    base: String,
    form: EditForm,
    (from, to): (&str, &str),
) -> ConfirmPage {
    ConfirmPage::new(
        Layout::in_org(session, ctx, "Change your own role", "users"),
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
    .field("access_until", form.access_until)
    .field("confirm_own_role", "yes")
    .button(format!("Change my role to {to}"))
    .cancel(base)
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role_id: String,
    next: Option<String>,
}

/// The Users tab's inline role change: back to the same filtered page.
pub async fn change_role(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: Form<RoleForm>,
) -> AppResult<HttpResponse> {
    let (user_id, form) = (path.into_inner().1, form.into_inner());
    let (actor, target, role_id) = (ctx.actor(), user_id.clone(), form.role_id);
    let result = state
        .db(move |conn| {
            let changed = members::change_role(conn, &actor, &target, &role_id, &origin);
            let email = db::users::find(conn, &target)?.map(|u| u.email);
            Ok(changed.map(|changed| (email.unwrap_or_default(), changed)))
        })
        .await?;
    let list = format!("/orgs/{}/users", ctx.org.slug);
    let back = safe_next(form.next.as_deref(), &list);
    let said = |(email, changed): (String, Option<String>)| match changed {
        Some(role) => done(&session, format!("{email} now has the {role} role."), back),
        None => unchanged(
            &session,
            format!("{email} already had that role: nothing changed."),
            back,
        ),
    };
    done_or_back(&session, result, said, back)
}

#[derive(Deserialize)]
pub struct JoinGroupForm {
    #[serde(default)]
    group_id: String,
}

/// The profile's "Add to group": the member joins the chosen group.
pub async fn add_to_group(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: Form<JoinGroupForm>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let (actor, id, group_id) = (ctx.actor(), user_id.clone(), form.into_inner().group_id);
    let result = state
        .db(move |conn| Ok(groups::add_member(conn, &actor, &group_id, &id, &origin)))
        .await?;
    let tab = format!("/orgs/{}/users/{user_id}/groups", ctx.org.slug);
    done_or_form_again(
        result,
        |email| done(&session, format!("{email} added to the group."), &tab),
        |errors| {
            let failed = Some((EditForm::default(), errors));
            profile(&state, &session, &ctx, user_id, Tab::Groups, failed)
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct JoinPoolForm {
    #[serde(default)]
    pool_id: String,
    #[serde(default)]
    role_id: String,
}

/// The profile's "Add to pool": the member joins the chosen pool with a pool role.
pub async fn add_to_pool(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: Form<JoinPoolForm>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let JoinPoolForm { pool_id, role_id } = form.into_inner();
    let actor = ctx.actor();
    let joining = PoolMemberForm {
        user_id: user_id.clone(),
        role_id,
    };
    let result = state
        .db(move |conn| Ok(pools::add_member(conn, &actor, &pool_id, &joining, &origin)))
        .await?;
    let tab = format!("/orgs/{}/users/{user_id}/pools", ctx.org.slug);
    done_or_form_again(
        result,
        |email| done(&session, format!("{email} added to the pool."), &tab),
        |errors| {
            // The profile's form names the pool, not the member ("already in it").
            let failed = Some((EditForm::default(), errors.moved("user_id", "pool_id")));
            profile(&state, &session, &ctx, user_id, Tab::Pools, failed)
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct ActionForm {
    next: Option<String>,
}

/// A one-click action on a member, and what the flash says once it is done.
struct MemberAction {
    run: fn(&mut db::DbConnection, &members::Actor, &str, &Origin) -> Result<(), RuleError>,
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
            (action.run)(conn, &actor, &target, &origin)?;
            Ok(db::users::find(conn, &target)?
                .map(|u| u.email)
                .unwrap_or_default())
        })
        .await?;
    let profile = format!("/orgs/{}/users/{user_id}", ctx.org.slug);
    let back = safe_next(next.as_deref(), &profile);
    Ok(done(&session, format!("{email} {}.", action.done), back))
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
    query: Query<NextQuery>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let actor = ctx.actor();
    let target = state
        .db(move |conn| Ok(members::deactivatable(conn, &actor, &user_id)?))
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
    query: Query<NextQuery>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let actor = ctx.actor();
    let target = state
        .db(move |conn| Ok(members::promotable(conn, &actor, &user_id)?))
        .await?;
    let profile = format!("/orgs/{}/users/{}", ctx.org.slug, target.user.id);
    let back = safe_next(query.next.as_deref(), &profile).to_string();
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
    .field("next", back.clone())
    .button(format!("Make {email} an admin"))
    .harmless()
    .cancel(back);
    Ok(render(&page))
}

pub async fn deactivate(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: Form<ActionForm>,
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
    form: Form<ActionForm>,
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
    form: Form<ActionForm>,
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
    unnamed_pools: usize,
    open_invitations: usize,
    needs_successor: bool,
    successor_picker: Picker,
    /// The actor is removing themselves: the page is an explicit "leave" confirmation.
    leaving: bool,
    /// The page the removal was started from, to return to once it is done.
    next: String,
    /// Where Cancel leads: that page, or the member's profile.
    cancel: String,
    form: RemoveForm,
    errors: FieldErrors,
}

/// The removal form as posted: the rule's fields, and the page to return to.
#[derive(Deserialize)]
pub struct RemoveRequest {
    #[serde(flatten)]
    form: RemoveForm,
    next: Option<String>,
}

/// Where a removal returns once done (the page it came from, or the Users tab) and
/// where its Cancel leads (that page, or the member's profile).
fn removal_returns(ctx: &OrgCtx, user_id: &str, next: Option<&str>) -> (String, String) {
    let profile = format!("/orgs/{}/users/{user_id}", ctx.org.slug);
    let list = format!("/orgs/{}/users", ctx.org.slug);
    (
        safe_next(next, &list).to_string(),
        safe_next(next, &profile).to_string(),
    )
}

/// Where a removal lands: the page it came from, or the Users tab; whoever leaves has no
/// page of this organization left, so the list of organizations.
fn removal_done(ctx: &OrgCtx, leaving: bool, next: Option<&str>) -> String {
    if leaving {
        return "/orgs".to_string();
    }
    let list = format!("/orgs/{}/users", ctx.org.slug);
    safe_next(next, &list).to_string()
}

/// Only a return the removal page was given is sent on: the form asked again after a
/// typo must still cancel to where the person came from, not to the default.
fn given_return(next: Option<String>) -> String {
    next.filter(|n| !n.is_empty() && safe_next(Some(n), "") == n.as_str())
        .unwrap_or_default()
}

async fn delete_page(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    user_id: String,
    (form, errors): (RemoveForm, FieldErrors),
    (query, next): (PickQuery, Option<String>),
) -> AppResult<DeletePage> {
    let (_, cancel) = removal_returns(ctx, &user_id, next.as_deref());
    let next = given_return(next);
    let (actor, chosen) = (ctx.actor(), form.successor_id.clone());
    let at = PickerPage {
        page: format!("/orgs/{}/users/{user_id}/delete", ctx.org.slug),
        endpoint: format!("/orgs/{}/members/search", ctx.org.slug),
        query,
    };
    let removal = move |conn: &mut _| removal_with_successor(conn, &actor, &user_id, &at, &chosen);
    let (plan, successor_picker): (RemovalPlan, Picker) =
        state.db(move |conn| Ok(removal(conn)?)).await?;
    Ok(DeletePage {
        layout: Layout::in_org(session, ctx, "Remove member", "users"),
        org_name: ctx.org.name.clone(),
        needs_successor: plan.needs_successor(),
        leaving: plan.target.user.id == ctx.user().id,
        email: plan.target.user.email,
        user_id: plan.target.user.id,
        owned_groups: plan.owned_groups,
        owned_pools: plan.owned_pools,
        unnamed_pools: plan.unnamed_pools,
        open_invitations: plan.open_invitations,
        successor_picker,
        next,
        cancel,
        form,
        errors,
    })
}

pub async fn delete_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
    (query, next): (Query<PickQuery>, Query<NextQuery>),
) -> AppResult<HttpResponse> {
    let form = (RemoveForm::default(), FieldErrors::default());
    let (id, at) = (
        path.into_inner().1,
        (query.into_inner(), next.into_inner().next),
    );
    let page = delete_page(&state, &session, &ctx, id, form, at).await?;
    Ok(render(&page))
}

pub async fn remove(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
    form: Form<RemoveRequest>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let RemoveRequest { form, next } = form.into_inner();
    let leaving = user_id == ctx.user().id;
    let back = removal_done(&ctx, leaving, next.as_deref());
    let actor = ctx.actor();
    let (id, f) = (user_id.clone(), form.clone());
    let result = state
        .db(move |conn| Ok(members::remove(conn, &actor, &id, &f, &origin)))
        .await?;
    done_or_form_again(
        result,
        |email| {
            let removed = match leaving {
                true => format!("You left {}.", ctx.org.name),
                false => format!("{email} was removed from {}.", ctx.org.name),
            };
            done(&session, removed, &back)
        },
        |errors| {
            // The page asks again with the return it was given, so its Cancel still
            // leads back to where the person came from.
            let failed = (form, errors);
            let at = (PickQuery::default(), next.clone());
            delete_page(&state, &session, &ctx, user_id, failed, at)
        },
    )
    .await
}

#[derive(Deserialize, Default, Clone)]
struct BulkForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    user_ids: Vec<String>,
    role_id: Option<String>,
    group_id: Option<String>,
    /// The Users page the form was sent from (its filters, sort and page), to return to.
    back: Option<String>,
    /// This rendering of the confirmation (`web::once`): a refresh of the result does
    /// not run the action again.
    #[serde(default)]
    form_id: String,
}

impl BulkForm {
    /// The form as sent; one that cannot be read chooses no action, and says so.
    fn read(raw: &[u8]) -> Self {
        decode(raw).unwrap_or_default()
    }

    /// The filters of the page the form came from. Only its query is read, and it is
    /// rebuilt from the parameters the list knows, so `back` cannot lead elsewhere.
    fn list_params(&self) -> ListParams {
        let back = self.back.as_deref().unwrap_or("");
        let query = back.split_once('?').map_or("", |(_, q)| q);
        decode(query.as_bytes()).unwrap_or_default()
    }

    /// The Users page the form came from.
    fn back_href(&self, slug: &str) -> String {
        let params = self.list_params();
        let sort = params.sort.clone().unwrap_or_else(|| "email".into());
        page_href(slug, &params, &sort, &position(&params))
    }

    /// The form as it comes back to the list, with why it was refused.
    fn refused(self, why: &str) -> BulkState {
        BulkState {
            selected: self.user_ids,
            action: self.action,
            role_id: self.role_id.unwrap_or_default(),
            group_id: self.group_id.unwrap_or_default(),
            error: Some(why.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "users/bulk_result.html")]
struct BulkResultPage {
    layout: Layout,
    action: &'static str,
    outcomes: Vec<BulkOutcome>,
    done: usize,
    skipped: usize,
    back: String,
}

impl BulkResultPage {
    fn new(
        session: &Session,
        ctx: &OrgCtx,
        action: &'static str,
        outcomes: Vec<BulkOutcome>,
        back: String,
    ) -> Self {
        let done = outcomes.iter().filter(|o| o.done).count();
        BulkResultPage {
            layout: Layout::in_org(session, ctx, "Bulk action", "users"),
            action,
            skipped: outcomes.len() - done,
            done,
            outcomes,
            back,
        }
    }
}

const NO_BULK_ACTION: &str = "Choose what to do with the selected members.";

/// A bulk request that cannot run: the Users page it came from, with the same filters,
/// the same members ticked, the same choices, and the reason by the form (422).
async fn bulk_refused(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    form: BulkForm,
    e: RuleError,
) -> AppResult<HttpResponse> {
    let why = match &e {
        RuleError::Invalid(errors) => errors.first().unwrap_or(NO_BULK_ACTION).to_string(),
        _ => return Err(e.into()),
    };
    let params = form.list_params();
    let page = users_page(state, session, ctx, params, form.refused(&why)).await?;
    Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

fn no_action() -> RuleError {
    RuleError::invalid("action", NO_BULK_ACTION)
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
    let form = BulkForm::read(req.query_string().as_bytes());
    let Some(action) = BulkAction::parse(&form.action) else {
        return bulk_refused(&state, &session, &ctx, form, no_action()).await;
    };
    let (actor, f) = (ctx.actor(), form.clone());
    let preview = state
        .db(move |conn| {
            let (role, group) = (f.role_id.as_deref(), f.group_id.as_deref());
            let ids = &f.user_ids;
            Ok(members::bulk_preview(
                conn, &actor, action, ids, role, group,
            ))
        })
        .await?;
    match preview {
        Ok(preview) => Ok(render(&bulk_confirm_page(
            Layout::in_org(&session, &ctx, "Confirm bulk action", "users"),
            &ctx.org.slug,
            action,
            &form,
            preview,
        ))),
        Err(e) => bulk_refused(&state, &session, &ctx, form, e).await,
    }
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
    let back = form.back_href(slug);
    let mut page = ConfirmPage::new(
        layout,
        format!("{verb}?"),
        format!("/orgs/{slug}/users/bulk"),
    )
    .field("action", form.action.clone())
    .field("back", back.clone())
    .field("form_id", once::new_form_id())
    .button(verb)
    .cancel(back);
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
    let form = BulkForm::read(&body);
    if once::already_sent(&session, &form.form_id) {
        let said = "This bulk action was already done: sending it again changed nothing.";
        return Ok(unchanged(&session, said, &form.back_href(&ctx.org.slug)));
    }
    let Some(action) = BulkAction::parse(&form.action) else {
        return bulk_refused(&state, &session, &ctx, form, no_action()).await;
    };
    let (actor, f) = (ctx.actor(), form.clone());
    let result = state
        .db(move |conn| {
            let (role, group) = (f.role_id.as_deref(), f.group_id.as_deref());
            let ids = &f.user_ids;
            Ok(members::bulk(
                conn, &actor, action, ids, role, group, &origin,
            ))
        })
        .await?;
    match result {
        Ok(outcomes) => {
            once::mark_sent(&session, &form.form_id);
            let back = form.back_href(&ctx.org.slug);
            let page = BulkResultPage::new(&session, &ctx, action.label(), outcomes, back);
            Ok(render(&page))
        }
        Err(e) => bulk_refused(&state, &session, &ctx, form, e).await,
    }
}

/// The profile's answer when the member has no second factor to reset.
pub(crate) fn nothing_to_reset(session: &Session, email: &str, back: &str) -> HttpResponse {
    let message =
        format!("{email} does not use two-factor authentication: there is nothing to reset.");
    flash(session, "info", message);
    see_other(back)
}

/// Asks before taking a member's second factor away.
pub async fn two_factor_reset_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    path: MemberPath,
) -> AppResult<HttpResponse> {
    let (actor, user_id) = (ctx.actor(), path.into_inner().1);
    let target = state
        .db(move |conn| {
            Ok(two_factor_reset::resettable(
                conn,
                &By::OrgAdmin(&actor),
                &user_id,
            )?)
        })
        .await?;
    let profile = format!("/orgs/{}/users/{}", ctx.org.slug, target.user.id);
    if !target.enrolled {
        return Ok(nothing_to_reset(&session, &target.user.email, &profile));
    }
    let layout = Layout::in_org(&session, &ctx, "Reset two-factor", "users");
    Ok(render(&two_factor_reset_page(
        layout,
        &target.user.email,
        &profile,
    )))
}

/// The confirmation of a two-factor reset, posting to `{profile}/2fa/reset`.
pub(crate) fn two_factor_reset_page(layout: Layout, email: &str, profile: &str) -> ConfirmPage {
    ConfirmPage::new(
        layout,
        format!("Reset two-factor authentication of {email}?"),
        format!("{profile}/2fa/reset"),
    )
    .line(format!(
        "{email} then signs in with their password alone: their authenticator app and recovery codes stop working, and they get an email saying who reset it."
    ))
    .line("Do this only when you are sure it is them asking, for example after they lost their phone.")
    .button(format!("Reset two-factor of {email}"))
    .cancel(profile)
}

pub async fn reset_two_factor(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: MemberPath,
) -> AppResult<HttpResponse> {
    let (actor, user_id) = (ctx.actor(), path.into_inner().1);
    let public_url = state.settings.public_url();
    let (user, was_enrolled) = state
        .db(move |conn| {
            let by = By::OrgAdmin(&actor);
            Ok(two_factor_reset::reset(
                conn,
                &by,
                &user_id,
                &public_url,
                &origin,
            )?)
        })
        .await?;
    let profile = format!("/orgs/{}/users/{}", ctx.org.slug, user.id);
    Ok(two_factor_reset_done(
        &state,
        &session,
        &user.email,
        was_enrolled,
        &profile,
    ))
}

/// Where a two-factor reset ends, from an organization or from the platform page: the
/// notification sent on its way, or "nothing to reset" when there was no second factor.
pub(crate) fn two_factor_reset_done(
    state: &AppState,
    session: &Session,
    email: &str,
    was_enrolled: bool,
    back: &str,
) -> HttpResponse {
    if !was_enrolled {
        return nothing_to_reset(session, email, back);
    }
    state.mail.wake();
    let message = format!(
        "Two-factor authentication of {email} was reset: they now sign in with their password alone."
    );
    done(session, message, back)
}
