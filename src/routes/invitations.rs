//! The Invited tab, the invite form, resend and cancel, and the accept link.

use std::collections::HashSet;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use serde::Deserialize;

use super::setup::private;
use crate::audit::Origin;
use crate::db;
use crate::db::invitations::{self as rows, Choice, ListRow, StatusFilter};
use crate::db::roles::{self, Role};
use crate::domain::FieldErrors;
use crate::domain::invitations::{
    self, AcceptError, AcceptForm, AddressResult, Env, InvitationError, InviteForm, Inviter,
    LinkInfo, MAX_ADDRESSES,
};
use crate::domain::roles::{MEMBER, Permission};
use crate::error::{AppError, AppResult};
use crate::web::extract::{CurrentUser, MaybeUser, OrgCtx, sign_in};
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render, render_status, see_other};

const PAGE_SIZE: i64 = 50;

impl From<InvitationError> for AppError {
    fn from(e: InvitationError) -> Self {
        match e {
            InvitationError::NotFound => AppError::NotFound,
            InvitationError::TooSoon => AppError::TooManyRequests(e.to_string()),
            InvitationError::Forbidden(why) => AppError::Forbidden(why.into()),
            InvitationError::Closed(why) => AppError::Conflict(why.into()),
            InvitationError::Invalid(_) => AppError::BadRequest(e.to_string()),
            InvitationError::Db(e) => AppError::Internal(e.into()),
            InvitationError::Render(e) => AppError::Internal(e.into()),
        }
    }
}

fn fmt_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn env(state: &AppState, ctx: &OrgCtx, origin: Origin) -> AppResult<Env> {
    Ok(Env {
        org: ctx.org.clone(),
        inviter: Inviter {
            user: ctx.user().clone(),
            role: ctx.role.clone(),
            rank: ctx.rank,
        },
        ttl: chrono::Duration::from_std(state.settings.invitation_ttl)
            .map_err(|e| AppError::Internal(e.into()))?,
        public_url: state.settings.public_url(),
        origin,
    })
}

fn list_path(slug: &str) -> String {
    format!("/orgs/{slug}/invitations")
}

// ----- Invited tab -----

struct RowView {
    id: String,
    email: String,
    role_key: String,
    role_name: String,
    status: &'static str,
    status_label: &'static str,
    invited_by: String,
    sent: String,
    send_count: i64,
    expires: String,
    open: bool,
}

impl RowView {
    fn new(row: ListRow, now: NaiveDateTime) -> Self {
        let status = row.invitation.display_status(now);
        let invited_by = match (row.inviter_first_name, row.inviter_last_name) {
            (Some(first), Some(last)) if !(first.is_empty() && last.is_empty()) => {
                crate::domain::names::full_name(&first, &last)
            }
            _ => row.inviter_email.unwrap_or_default(),
        };
        RowView {
            id: row.invitation.id,
            email: row.invitation.email,
            role_key: row.role.key,
            role_name: row.role.name,
            status,
            status_label: match status {
                "pending" => "Pending",
                "expired" => "Expired",
                "accepted" => "Accepted",
                _ => "Cancelled",
            },
            invited_by,
            sent: fmt_time(row.invitation.last_sent_at),
            send_count: row.invitation.send_count,
            expires: fmt_time(row.invitation.expires_at),
            open: matches!(status, "pending" | "expired"),
        }
    }
}

struct FilterLink {
    value: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "invitations/list.html")]
struct ListPage {
    layout: Layout,
    slug: String,
    rows: Vec<RowView>,
    filters: Vec<FilterLink>,
    status: &'static str,
    next_cursor: Option<String>,
    paged: bool,
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

fn parse_filter(raw: Option<&str>) -> (StatusFilter, &'static str) {
    match raw.unwrap_or("") {
        "pending" => (StatusFilter::Pending, "pending"),
        "expired" => (StatusFilter::Expired, "expired"),
        "accepted" => (StatusFilter::Accepted, "accepted"),
        "cancelled" => (StatusFilter::Cancelled, "cancelled"),
        "all" => (StatusFilter::All, "all"),
        _ => (StatusFilter::Open, ""),
    }
}

/// Keyset cursor: the last row's creation time (microseconds) and id.
fn encode_cursor(created_at: NaiveDateTime, id: &str) -> String {
    format!("{}.{id}", created_at.and_utc().timestamp_micros())
}

fn decode_cursor(raw: &str) -> Option<(NaiveDateTime, String)> {
    let (micros, id) = raw.split_once('.')?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    (!id.is_empty()).then(|| (at, id.to_string()))
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersInvite)?;
    let (filter, status) = parse_filter(query.status.as_deref());
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(raw) => Some(
            decode_cursor(raw)
                .ok_or_else(|| AppError::BadRequest("This page link is not valid.".into()))?,
        ),
        None => None,
    };
    let paged = after.is_some();
    let org_id = ctx.org.id.clone();
    let now = db::now();
    let mut found = state
        .db(move |conn| {
            Ok(rows::list(
                conn,
                &org_id,
                filter,
                now,
                after,
                PAGE_SIZE + 1,
            )?)
        })
        .await?;
    let next_cursor = if found.len() as i64 > PAGE_SIZE {
        found.truncate(PAGE_SIZE as usize);
        found
            .last()
            .map(|r| encode_cursor(r.invitation.created_at, &r.invitation.id))
    } else {
        None
    };
    let filters = [
        ("", "Pending and expired"),
        ("pending", "Pending"),
        ("expired", "Expired"),
        ("accepted", "Accepted"),
        ("cancelled", "Cancelled"),
        ("all", "All"),
    ]
    .into_iter()
    .map(|(value, label)| FilterLink {
        value,
        label,
        current: value == status,
    })
    .collect();
    Ok(render(&ListPage {
        layout: Layout::in_org(&session, &ctx, "Invited", "invitations"),
        slug: ctx.org.slug.clone(),
        rows: found.into_iter().map(|r| RowView::new(r, now)).collect(),
        filters,
        status,
        next_cursor,
        paged,
    }))
}

// ----- Invite form -----

#[derive(Template)]
#[template(path = "invitations/new.html")]
struct NewPage {
    layout: Layout,
    slug: String,
    form: InviteForm,
    roles: Vec<Role>,
    groups: Vec<Choice>,
    pools: Vec<Choice>,
    errors: FieldErrors,
    max: usize,
}

impl NewPage {
    fn role_selected(&self, id: &str) -> bool {
        self.form.role_id == id
    }

    fn group_checked(&self, id: &str) -> bool {
        self.form.group_ids.iter().any(|g| g == id)
    }

    fn pool_checked(&self, id: &str) -> bool {
        self.form.pool_ids.iter().any(|p| p == id)
    }
}

struct Options {
    roles: Vec<Role>,
    groups: Vec<Choice>,
    pools: Vec<Choice>,
}

/// Roles the member may grant, groups and pools of the organization.
async fn options(state: &AppState, ctx: &OrgCtx) -> AppResult<Options> {
    let org_id = ctx.org.id.clone();
    let own = ctx.standing();
    state
        .db(move |conn| {
            let roles =
                crate::domain::policy::grantable(&own, roles::list(conn, &org_id)?, |r| r.rank);
            Ok(Options {
                roles,
                groups: rows::org_groups(conn, &org_id)?,
                pools: rows::org_pools(conn, &org_id)?,
            })
        })
        .await
}

/// Where the member may invite: `None` means organization-wide (`users.invite`);
/// `Some(pools)` a pool Manager, limited to the pools of their subtrees and no groups.
async fn invite_scope(state: &AppState, ctx: &OrgCtx) -> AppResult<Option<HashSet<String>>> {
    if ctx.can(Permission::UsersInvite) {
        return Ok(None);
    }
    let (org_id, user_id) = (ctx.org.id.clone(), ctx.user().id.clone());
    let pools = state
        .db(move |conn| {
            Ok(crate::domain::pools::invitable_pools(
                conn, &org_id, &user_id,
            )?)
        })
        .await?;
    if pools.is_empty() {
        return Err(AppError::forbidden());
    }
    Ok(Some(pools))
}

fn restrict(mut options: Options, scope: &Option<HashSet<String>>) -> Options {
    if let Some(pools) = scope {
        options.groups.clear();
        options.pools.retain(|p| pools.contains(&p.id));
    }
    options
}

fn new_page(
    session: &Session,
    ctx: &OrgCtx,
    options: Options,
    form: InviteForm,
    errors: FieldErrors,
) -> NewPage {
    NewPage {
        layout: Layout::in_org(session, ctx, "Invite people", "invitations"),
        slug: ctx.org.slug.clone(),
        form,
        roles: options.roles,
        groups: options.groups,
        pools: options.pools,
        errors,
        max: MAX_ADDRESSES,
    }
}

pub async fn new_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    let scope = invite_scope(&state, &ctx).await?;
    let options = restrict(options(&state, &ctx).await?, &scope);
    let default_role = options
        .roles
        .iter()
        .find(|r| r.key == MEMBER)
        .or(options.roles.last())
        .map(|r| r.id.clone())
        .unwrap_or_default();
    let form = InviteForm {
        role_id: default_role,
        ..InviteForm::default()
    };
    Ok(render(&new_page(
        &session,
        &ctx,
        options,
        form,
        FieldErrors::default(),
    )))
}

// ----- Results (after inviting or resending) -----

struct ResultView {
    email: String,
    key: &'static str,
    label: String,
    id: String,
    link: Option<String>,
}

#[derive(Template)]
#[template(path = "invitations/results.html")]
struct ResultsPage {
    layout: Layout,
    slug: String,
    heading: String,
    summary: Vec<String>,
    results: Vec<ResultView>,
}

fn result_views(results: Vec<AddressResult>) -> Vec<ResultView> {
    results
        .into_iter()
        .map(|r| ResultView {
            key: r.outcome.key(),
            label: r.outcome.label(),
            email: r.email,
            id: r.invitation_id.unwrap_or_default(),
            link: r.link,
        })
        .collect()
}

/// With no mail server, whoever runs the portal gets the links in the log; with one,
/// links never reach a log line.
fn announce(state: &AppState, results: &[AddressResult]) {
    state.mail.wake();
    if state.mail.logs_links() {
        for r in results {
            if let Some(link) = &r.link {
                tracing::info!(to = %r.email, link = %link, "invitation link (no mail server configured; the email was written to a file)");
            }
        }
    }
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = invite_scope(&state, &ctx).await?;
    let form = InviteForm::from_urlencoded(&body);
    if let Some(pools) = &scope {
        let inside = !form.pool_ids.is_empty() && form.pool_ids.iter().all(|p| pools.contains(p));
        if !inside || !form.group_ids.is_empty() {
            return Err(AppError::Forbidden(
                "As a pool manager you invite people into your own pools: choose at least one of them, and no groups."
                    .into(),
            ));
        }
    }
    let env = env(&state, &ctx, origin)?;
    let result = {
        let form = form.clone();
        state
            .db(move |conn| match invitations::invite(conn, &env, &form) {
                Err(InvitationError::Invalid(errors)) => Ok(Err(errors)),
                other => Ok(Ok(other?)),
            })
            .await?
    };
    let report = match result {
        Ok(report) => report,
        Err(errors) => {
            let options = restrict(options(&state, &ctx).await?, &scope);
            let page = new_page(&session, &ctx, options, form, errors);
            return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    announce(&state, &report.results);
    let mut summary = Vec::new();
    for (key, one, many) in [
        ("invited", "person invited", "people invited"),
        ("resent", "invitation resent", "invitations resent"),
        (
            "not_resent",
            "already invited, not resent",
            "already invited, not resent",
        ),
        ("member", "already a member", "already members"),
        ("invalid", "invalid address", "invalid addresses"),
    ] {
        let n = report.count(key);
        if n > 0 {
            summary.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    let heading = format!("Invitations as {}", report.role_name);
    Ok(render(&ResultsPage {
        layout: Layout::in_org(&session, &ctx, "Invitations sent", "invitations"),
        slug: ctx.org.slug.clone(),
        heading,
        summary,
        results: result_views(report.results),
    }))
}

pub async fn resend(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersInvite)?;
    let (_, id) = path.into_inner();
    let env = env(&state, &ctx, origin)?;
    let result = state
        .db(move |conn| Ok(invitations::resend(conn, &env, &id)?))
        .await?;
    announce(&state, std::slice::from_ref(&result));
    let summary = vec![format!(
        "A new link was sent to {}; the previous link no longer works.",
        result.email
    )];
    Ok(render(&ResultsPage {
        layout: Layout::in_org(&session, &ctx, "Invitation resent", "invitations"),
        slug: ctx.org.slug.clone(),
        heading: "Invitation resent".into(),
        summary,
        results: result_views(vec![result]),
    }))
}

/// Asks before cancelling, without JavaScript.
pub async fn cancel_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersInvite)?;
    let (_, id) = path.into_inner();
    let env = env(&state, &ctx, origin)?;
    let invitation = state
        .db(move |conn| Ok(invitations::cancellable(conn, &env, &id)?))
        .await?;
    let list = list_path(&ctx.org.slug);
    let page = crate::web::confirm::ConfirmPage::new(
        Layout::in_org(&session, &ctx, "Cancel invitation", "invitations"),
        format!("Cancel the invitation to {}?", invitation.email),
        format!(
            "/orgs/{}/invitations/{}/cancel",
            ctx.org.slug, invitation.id
        ),
    )
    .line("Its link stops working at once. You can invite the address again later.")
    .button(format!("Cancel the invitation to {}", invitation.email))
    .cancel(list);
    Ok(render(&page))
}

pub async fn cancel(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersInvite)?;
    let (_, id) = path.into_inner();
    let env = env(&state, &ctx, origin)?;
    let cancelled = state
        .db(move |conn| Ok(invitations::cancel(conn, &env, &id)?))
        .await?;
    flash(
        &session,
        "success",
        format!(
            "The invitation to {} was cancelled; its link no longer works.",
            cancelled.email
        ),
    );
    Ok(see_other(&list_path(&ctx.org.slug)))
}

// ----- Accepting -----

#[derive(Template)]
#[template(path = "invitations/invalid.html")]
struct InvalidLinkPage {
    layout: Layout,
}

/// One page for every dead link, so none of them tells more than the others.
fn invalid_link(session: &Session) -> HttpResponse {
    let page = InvalidLinkPage {
        layout: Layout::public(session, "Invitation not valid"),
    };
    private(render_status(StatusCode::NOT_FOUND, &page))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No account has the address: choose a name and a password.
    NewAccount,
    /// Signed in as the invited address: one click to join.
    Join,
    /// An account has the address but nobody is signed in.
    SignIn,
    /// Signed in as someone else.
    WrongAccount,
}

#[derive(Template)]
#[template(path = "invitations/accept.html")]
struct AcceptPage {
    layout: Layout,
    mode: Mode,
    org_name: String,
    role_name: String,
    inviter_name: String,
    email: String,
    signed_in_as: String,
    login_url: String,
    form: AcceptForm,
    errors: FieldErrors,
}

fn mode_of(info: &LinkInfo, current: Option<&CurrentUser>) -> Mode {
    match (&info.account, current) {
        (None, None) => Mode::NewAccount,
        (Some(_), None) => Mode::SignIn,
        (Some(account), Some(me)) if account.id == me.user.id => Mode::Join,
        (_, Some(_)) => Mode::WrongAccount,
    }
}

fn accept_page(
    session: &Session,
    token: &str,
    info: &LinkInfo,
    current: Option<&CurrentUser>,
    form: AcceptForm,
    errors: FieldErrors,
) -> (StatusCode, AcceptPage) {
    let mode = mode_of(info, current);
    let title = format!("Join {}", info.org.name);
    let layout = match current {
        Some(me) => Layout::signed_in(session, me, &title),
        None => Layout::public(session, &title),
    };
    let status = match mode {
        Mode::WrongAccount => StatusCode::FORBIDDEN,
        Mode::NewAccount if !errors.is_empty() => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let login_url = format!(
        "/login?{}",
        serde_urlencoded::to_string([("next", format!("/invite/{token}"))]).unwrap_or_default()
    );
    let page = AcceptPage {
        layout,
        mode,
        org_name: info.org.name.clone(),
        role_name: info.role.name.clone(),
        inviter_name: info.inviter_name.clone(),
        email: info.invitation.email.clone(),
        signed_in_as: current.map(|c| c.user.email.clone()).unwrap_or_default(),
        login_url,
        form: AcceptForm {
            password: String::new(),
            password_confirm: String::new(),
            ..form
        },
        errors,
    };
    (status, page)
}

async fn check(state: &AppState, token: &str, origin: &Origin) -> AppResult<Option<LinkInfo>> {
    let (token, origin) = (token.to_string(), origin.clone());
    state
        .db(move |conn| Ok(invitations::check_link(conn, &token, &origin)?))
        .await
}

pub async fn accept_form(
    state: web::Data<AppState>,
    session: Session,
    current: MaybeUser,
    origin: Origin,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let Some(info) = check(&state, &token, &origin).await? else {
        return Ok(invalid_link(&session));
    };
    let form = AcceptForm {
        first_name: info.invitation.first_name.clone(),
        last_name: info.invitation.last_name.clone(),
        ..AcceptForm::default()
    };
    let (status, page) = accept_page(
        &session,
        &token,
        &info,
        current.0.as_ref(),
        form,
        FieldErrors::default(),
    );
    Ok(private(render_status(status, &page)))
}

pub async fn accept(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    current: MaybeUser,
    origin: Origin,
    token: web::Path<String>,
    form: web::Form<AcceptForm>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let form = form.into_inner();
    let Some(info) = check(&state, &token, &origin).await? else {
        return Ok(invalid_link(&session));
    };
    let current = current.0;
    match mode_of(&info, current.as_ref()) {
        Mode::NewAccount => {
            let account = match invitations::validate_account(&form) {
                Ok(account) => account,
                Err(errors) => {
                    let (status, page) = accept_page(&session, &token, &info, None, form, errors);
                    return Ok(private(render_status(status, &page)));
                }
            };
            let hash = state.hasher.hash(form.password.clone()).await?;
            let result = {
                let token = token.clone();
                state
                    .db(move |conn| {
                        Ok(invitations::accept_with_new_account(
                            conn, &token, &account, &hash, &origin,
                        ))
                    })
                    .await?
            };
            match result {
                Ok((user, org)) => {
                    sign_in(&session, &req, &user, &state.settings)?;
                    flash(
                        &session,
                        "success",
                        format!("Welcome to {}, {}.", org.name, user.first_name),
                    );
                    Ok(private(see_other(&format!("/orgs/{}/users", org.slug))))
                }
                // Someone made an account with this address meanwhile: it signs in now.
                Err(AcceptError::AccountExists) => {
                    Ok(private(see_other(&format!("/invite/{token}"))))
                }
                Err(e) => accept_failed(&session, e),
            }
        }
        Mode::Join => {
            let Some(me) = current else {
                return Ok(invalid_link(&session));
            };
            let user = me.user.clone();
            let result = {
                let token = token.clone();
                state
                    .db(move |conn| Ok(invitations::accept_as(conn, &token, &user, &origin)))
                    .await?
            };
            match result {
                Ok(org) => {
                    flash(&session, "success", format!("You joined {}.", org.name));
                    Ok(private(see_other(&format!("/orgs/{}/users", org.slug))))
                }
                Err(e) => accept_failed(&session, e),
            }
        }
        Mode::SignIn | Mode::WrongAccount => {
            let (status, page) = accept_page(
                &session,
                &token,
                &info,
                current.as_ref(),
                AcceptForm::default(),
                FieldErrors::default(),
            );
            Ok(private(render_status(status, &page)))
        }
    }
}

fn accept_failed(session: &Session, e: AcceptError) -> AppResult<HttpResponse> {
    match e {
        AcceptError::Db(e) => Err(AppError::Internal(e.into())),
        AcceptError::NoLongerGrantable => {
            tracing::warn!("invitation refused at acceptance: the inviter may no longer grant it");
            Ok(invalid_link(session))
        }
        AcceptError::WrongAccount => Err(AppError::forbidden()),
        AcceptError::InvalidLink | AcceptError::AccountExists => Ok(invalid_link(session)),
    }
}
