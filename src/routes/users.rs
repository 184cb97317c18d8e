use std::ops::Deref;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::db;
use crate::db::memberships::{self, SortKey};
use crate::domain::member_list::{self, ListError, ListParams, UsersList, sort_param};
use crate::domain::member_profile::{self, Profile, Tab};
use crate::domain::members::{self, BulkAction, BulkOutcome, EditForm, RemovalPlan, RemoveForm};
use crate::domain::redirect::safe_next;
use crate::domain::roles::Permission;
use crate::domain::two_factor_reset::{self, By};
use crate::domain::{FieldErrors, RuleError};
use crate::error::{AppError, AppResult};
use crate::web::confirm::ConfirmPage;
use crate::web::extract::OrgCtx;
use crate::web::form::{Form, Query, decode, to_query};
use crate::web::layout::Layout;
use crate::web::outcome::{done, done_or_form_again};
use crate::web::paging::{BadCursor, Cursor, PAGE_SIZE};
use crate::web::{AppState, flash, render, render_status, see_other};

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
    first_href: Option<String>,
    /// This very page, where row actions come back to.
    here: String,
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct UsersPage {
    layout: Layout,
    list: UsersList,
    nav: ListNav,
}

/// The template reads the list's fields as its own.
impl Deref for UsersPage {
    type Target = UsersList;
    fn deref(&self) -> &UsersList {
        &self.list
    }
}

fn page_href(org: &str, params: &ListParams, sort: &str, cursor: Option<&str>) -> String {
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
    if let Some(c) = cursor {
        pairs.push(("cursor", c));
    }
    format!("/orgs/{org}/users?{}", to_query(&pairs))
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
            href: page_href(org, params, &sort_param(key, descending), None),
            current: is_current.then_some(if list.descending {
                "descending"
            } else {
                "ascending"
            }),
        }
    })
    .collect();
    let next = list.next.clone().map(|key| Cursor(key).encode());
    ListNav {
        sort_links,
        next_href: next.map(|c| page_href(org, params, &list.sort, Some(&c))),
        first_href: params
            .cursor
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|_| page_href(org, params, &list.sort, None)),
        here: page_href(org, params, &list.sort, params.cursor.as_deref()),
    }
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    params: Query<ListParams>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersRead)?;
    let params = params.into_inner();
    let after = Cursor::from_param(params.cursor.as_deref())
        .map(|c| c.map(|Cursor(key)| key))
        .map_err(|BadCursor| ListError::BadCursor);
    let (actor, query) = (ctx.actor(), params.clone());
    let list = state
        .db(move |conn| {
            Ok(member_list::load_page(
                conn, &actor, &query, after, PAGE_SIZE,
            )?)
        })
        .await?;
    let nav = list_nav(&ctx.org.slug, &params, &list);
    Ok(render(&UsersPage {
        layout: Layout::in_org(&session, &ctx, "Users", "users"),
        list,
        nav,
    }))
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
    let profile = state
        .db(move |conn| Ok(member_profile::load(conn, &actor, &user_id, tab)?))
        .await?
        .ok_or(AppError::NotFound)?;
    let (form, errors) = form.unwrap_or_else(|| (profile.form.clone(), FieldErrors::default()));
    Ok(ProfilePage {
        layout: Layout::in_org(session, ctx, &profile.member.email, "users"),
        base: format!("/orgs/{}/users/{}", ctx.org.slug, profile.member_id),
        can_manage: ctx.can(Permission::UsersManage),
        can_manage_groups: ctx.can(Permission::GroupsManage),
        can_reset_two_factor: ctx.can(Permission::OrgManage),
        errors,
        form,
        profile,
    })
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
        |()| done(&session, "Changes saved.", &base),
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
    .field("confirm_own_role", "yes")
    .button(format!("Change my role to {to}"))
    .cancel(base)
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
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let actor = ctx.actor();
    let target = state
        .db(move |conn| Ok(members::promotable(conn, &actor, &user_id)?))
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
        .db(move |conn| Ok(members::removal_plan(conn, &actor, &user_id)?))
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
    form: Form<RemoveForm>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner().1;
    let form = form.into_inner();
    let actor = ctx.actor();
    let (id, f) = (user_id.clone(), form.clone());
    let result = state
        .db(move |conn| Ok(members::remove(conn, &actor, &id, &f, &origin)))
        .await?;
    done_or_form_again(
        result,
        |email| {
            let removed = format!("{email} was removed from {}.", ctx.org.name);
            done(&session, removed, &format!("/orgs/{}/users", ctx.org.slug))
        },
        |errors| delete_page(&state, &session, &ctx, user_id, form, errors),
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
}

impl BulkForm {
    /// The form as sent; one that cannot be read chooses no action, and says so.
    fn read(raw: &[u8]) -> Self {
        decode(raw).unwrap_or_default()
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
    error: Option<String>,
    back: String,
}

impl BulkResultPage {
    fn new(
        session: &Session,
        ctx: &OrgCtx,
        action: &'static str,
        outcomes: Vec<BulkOutcome>,
    ) -> Self {
        let done = outcomes.iter().filter(|o| o.done).count();
        BulkResultPage {
            layout: Layout::in_org(session, ctx, "Bulk action", "users"),
            action,
            skipped: outcomes.len() - done,
            done,
            outcomes,
            error: None,
            back: format!("/orgs/{}/users", ctx.org.slug),
        }
    }
}

const NO_BULK_ACTION: &str = "Choose what to do with the selected members.";

/// A bulk request that cannot run: the result page with the reason, back to Users.
fn bulk_refused(session: &Session, ctx: &OrgCtx, action: &'static str, why: &str) -> HttpResponse {
    let page = BulkResultPage {
        error: Some(why.to_string()),
        ..BulkResultPage::new(session, ctx, action, Vec::new())
    };
    render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// A refused bulk request: invalid choices on the result page, anything else its error.
fn bulk_error(
    session: &Session,
    ctx: &OrgCtx,
    action: &'static str,
    e: RuleError,
) -> AppResult<HttpResponse> {
    match e {
        RuleError::Invalid(errors) => {
            let why = errors.first().unwrap_or("Please correct the form.");
            Ok(bulk_refused(session, ctx, action, why))
        }
        e => Err(e.into()),
    }
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
        return Ok(bulk_refused(&session, &ctx, "Bulk action", NO_BULK_ACTION));
    };
    let (actor, f) = (ctx.actor(), form.clone());
    let preview = state
        .db(move |conn| {
            let (role, group) = (f.role_id.as_deref(), f.group_id.as_deref());
            Ok(members::bulk_preview(
                conn,
                &actor,
                action,
                &f.user_ids,
                role,
                group,
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
        Err(e) => bulk_error(&session, &ctx, "Bulk action", e),
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
    let form = BulkForm::read(&body);
    let Some(action) = BulkAction::parse(&form.action) else {
        return Ok(bulk_refused(&session, &ctx, "Bulk action", NO_BULK_ACTION));
    };
    let actor = ctx.actor();
    let result = state
        .db(move |conn| {
            let (role, group) = (form.role_id.as_deref(), form.group_id.as_deref());
            let ids = &form.user_ids;
            Ok(members::bulk(
                conn, &actor, action, ids, role, group, &origin,
            ))
        })
        .await?;
    match result {
        Ok(outcomes) => Ok(render(&BulkResultPage::new(
            &session,
            &ctx,
            action.label(),
            outcomes,
        ))),
        Err(e) => bulk_error(&session, &ctx, action.label(), e),
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
