//! The Invited tab, the invite form, resend and cancel, and the accept link.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::db::invitations::{Choice, ListKey, ListRow};
use crate::db::organizations::Organization;
use crate::db::roles::Role;
use crate::db::users::User;
use crate::domain::FieldErrors;
use crate::domain::invitations::{
    self, AcceptError, AcceptForm, AddressResult, Env, InviteChoices, InviteForm, InviteReport,
    InvitedPage, Inviter, LinkInfo, MAX_ADDRESSES, NewAccount, Submission,
};
use crate::domain::pools::PoolChoice;
use crate::domain::roles::Permission;
use crate::domain::timefmt;
use crate::error::{AppError, AppResult};
use crate::web::extract::{CurrentUser, MaybeUser, OrgCtx, sign_in};
use crate::web::form::{Form, Query, to_query};
use crate::web::layout::Layout;
use crate::web::paging::{Cursor, PAGE_SIZE};
use crate::web::private;
use crate::web::{AppState, flash, render, render_status, see_other};

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

/// The invitation a Resend or Cancel button names, and what acting on it needs; refused
/// unless the member may invite.
fn acting_on(
    state: &AppState,
    ctx: &OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<(Env, String)> {
    ctx.require(Permission::UsersInvite)?;
    let (_, id) = path.into_inner();
    Ok((env(state, ctx, origin)?, id))
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
    fn new(row: ListRow, now: chrono::NaiveDateTime) -> Self {
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
            sent: timefmt::exact(row.invitation.last_sent_at),
            send_count: row.invitation.send_count,
            expires: timefmt::exact(row.invitation.expires_at),
            open: matches!(status, "pending" | "expired"),
        }
    }
}

struct FilterLink {
    value: &'static str,
    label: &'static str,
    current: bool,
}

const FILTERS: [(&str, &str); 6] = [
    ("", "Pending and expired"),
    ("pending", "Pending"),
    ("expired", "Expired"),
    ("accepted", "Accepted"),
    ("cancelled", "Cancelled"),
    ("all", "All"),
];

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

impl ListPage {
    fn new(
        layout: Layout,
        slug: &str,
        page: InvitedPage,
        status: &'static str,
        paged: bool,
    ) -> Self {
        let filters = FILTERS
            .into_iter()
            .map(|(value, label)| FilterLink {
                value,
                label,
                current: value == status,
            })
            .collect();
        ListPage {
            layout,
            slug: slug.to_string(),
            rows: page
                .rows
                .into_iter()
                .map(|r| RowView::new(r, page.now))
                .collect(),
            filters,
            status,
            next_cursor: page.next.map(|key| Cursor(key).encode()),
            paged,
        }
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    query: Query<ListQuery>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersInvite)?;
    let (filter, status) = invitations::parse_filter(query.status.as_deref());
    let after = Cursor::<ListKey>::from_param(query.cursor.as_deref())
        .map_err(|_| AppError::BadRequest("This page link is not valid.".into()))?
        .map(|cursor| cursor.0);
    let paged = after.is_some();
    let org_id = ctx.org.id.clone();
    let page = state
        .db(move |conn| {
            Ok(invitations::list_page(
                conn, &org_id, filter, after, PAGE_SIZE,
            )?)
        })
        .await?;
    let layout = Layout::in_org(&session, &ctx, "Invited", "invitations");
    Ok(render(&ListPage::new(
        layout,
        &ctx.org.slug,
        page,
        status,
        paged,
    )))
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
    pools: Vec<PoolChoice>,
    errors: FieldErrors,
    max: usize,
}

impl NewPage {
    fn new(
        session: &Session,
        ctx: &OrgCtx,
        choices: InviteChoices,
        form: InviteForm,
        errors: FieldErrors,
    ) -> Self {
        NewPage {
            layout: Layout::in_org(session, ctx, "Invite people", "invitations"),
            slug: ctx.org.slug.clone(),
            form,
            roles: choices.roles,
            groups: choices.groups,
            pools: choices.pools,
            errors,
            max: MAX_ADDRESSES,
        }
    }

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

pub async fn new_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    let (org_id, user_id, own) = (ctx.org.id.clone(), ctx.user().id.clone(), ctx.standing());
    let choices = state
        .db(move |conn| Ok(invitations::form_choices(conn, &org_id, &user_id, &own)?))
        .await?;
    let form = InviteForm {
        role_id: choices.default_role(),
        ..InviteForm::default()
    };
    let page = NewPage::new(&session, &ctx, choices, form, FieldErrors::default());
    Ok(render(&page))
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

/// How many addresses met each outcome, in words: "3 people invited".
const SUMMARY: [(&str, &str, &str); 5] = [
    ("invited", "person invited", "people invited"),
    ("resent", "invitation resent", "invitations resent"),
    (
        "not_resent",
        "already invited, not resent",
        "already invited, not resent",
    ),
    ("member", "already a member", "already members"),
    ("invalid", "invalid address", "invalid addresses"),
];

impl ResultsPage {
    fn new(session: &Session, ctx: &OrgCtx, title: &str, heading: String) -> Self {
        ResultsPage {
            layout: Layout::in_org(session, ctx, title, "invitations"),
            slug: ctx.org.slug.clone(),
            heading,
            summary: Vec::new(),
            results: Vec::new(),
        }
    }

    fn invited(session: &Session, ctx: &OrgCtx, report: InviteReport) -> Self {
        let heading = format!("Invitations as {}", report.role_name);
        let summary = SUMMARY
            .into_iter()
            .map(|(key, one, many)| (report.count(key), one, many))
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
            .collect();
        ResultsPage {
            summary,
            results: result_views(report.results),
            ..Self::new(session, ctx, "Invitations sent", heading)
        }
    }

    fn resent(session: &Session, ctx: &OrgCtx, result: AddressResult) -> Self {
        let summary = vec![format!(
            "A new link was sent to {}; the previous link no longer works.",
            result.email
        )];
        ResultsPage {
            summary,
            results: result_views(vec![result]),
            ..Self::new(
                session,
                ctx,
                "Invitation resent",
                "Invitation resent".into(),
            )
        }
    }
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
    Form(form): Form<InviteForm>,
) -> AppResult<HttpResponse> {
    let env = env(&state, &ctx, origin)?;
    let (own, submitted) = (ctx.standing(), form.clone());
    let submission = state
        .db(move |conn| Ok(invitations::submit(conn, &env, &own, &submitted)?))
        .await?;
    match submission {
        Submission::Sent(report) => {
            announce(&state, &report.results);
            Ok(render(&ResultsPage::invited(&session, &ctx, report)))
        }
        Submission::Refused { choices, errors } => {
            let page = NewPage::new(&session, &ctx, choices, form, errors);
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

pub async fn resend(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (env, id) = acting_on(&state, &ctx, origin, path)?;
    let result = state
        .db(move |conn| Ok(invitations::resend(conn, &env, &id)?))
        .await?;
    announce(&state, std::slice::from_ref(&result));
    Ok(render(&ResultsPage::resent(&session, &ctx, result)))
}

/// Asks before cancelling, without JavaScript.
pub async fn cancel_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (env, id) = acting_on(&state, &ctx, origin, path)?;
    let invitation = state
        .db(move |conn| Ok(invitations::cancellable(conn, &env, &id)?))
        .await?;
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
    .cancel(list_path(&ctx.org.slug));
    Ok(render(&page))
}

pub async fn cancel(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (env, id) = acting_on(&state, &ctx, origin, path)?;
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

/// The accept page for this link and visitor; what was typed comes back, passwords not.
fn accept_page(
    session: &Session,
    token: &str,
    info: &LinkInfo,
    current: Option<&CurrentUser>,
    form: AcceptForm,
    errors: FieldErrors,
) -> HttpResponse {
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
    let page = AcceptPage {
        layout,
        mode,
        org_name: info.org.name.clone(),
        role_name: info.role.name.clone(),
        inviter_name: info.inviter_name.clone(),
        email: info.invitation.email.clone(),
        signed_in_as: current.map(|c| c.user.email.clone()).unwrap_or_default(),
        login_url: format!(
            "/login?{}",
            to_query(&[("next", format!("/invite/{token}"))])
        ),
        form: AcceptForm {
            password: String::new(),
            password_confirm: String::new(),
            ..form
        },
        errors,
    };
    private(render_status(status, &page))
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
    let current = current.0.as_ref();
    Ok(accept_page(
        &session,
        &token,
        &info,
        current,
        form,
        FieldErrors::default(),
    ))
}

pub async fn accept(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    current: MaybeUser,
    origin: Origin,
    token: web::Path<String>,
    Form(form): Form<AcceptForm>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let Some(info) = check(&state, &token, &origin).await? else {
        return Ok(invalid_link(&session));
    };
    let current = current.0;
    let joined = match (mode_of(&info, current.as_ref()), current) {
        (Mode::NewAccount, _) => match invitations::validate_account(&form) {
            Ok(account) => join_new(&state, &token, account, &form.password, origin).await?,
            Err(errors) => return Ok(accept_page(&session, &token, &info, None, form, errors)),
        },
        (Mode::Join, Some(me)) => join_as(&state, &token, me.user, origin).await?,
        (Mode::Join, None) => return Ok(invalid_link(&session)),
        (Mode::SignIn | Mode::WrongAccount, current) => {
            let (form, errors) = (AcceptForm::default(), FieldErrors::default());
            let page = accept_page(&session, &token, &info, current.as_ref(), form, errors);
            return Ok(page);
        }
    };
    accepted(&state, &session, &req, &token, joined)
}

/// An accepted invitation: the organization joined, and the account made for it, if
/// one was (it signs in now).
struct Joined {
    org: Organization,
    new_account: Option<User>,
}

/// Creates the invited account with this password and joins it.
async fn join_new(
    state: &AppState,
    token: &str,
    account: NewAccount,
    password: &str,
    origin: Origin,
) -> AppResult<Result<Joined, AcceptError>> {
    let hash = state.hasher.hash(password.to_string()).await?;
    let token = token.to_string();
    state
        .db(move |conn| {
            let joined =
                invitations::accept_with_new_account(conn, &token, &account, &hash, &origin);
            Ok(joined.map(|(user, org)| Joined {
                org,
                new_account: Some(user),
            }))
        })
        .await
}

async fn join_as(
    state: &AppState,
    token: &str,
    user: User,
    origin: Origin,
) -> AppResult<Result<Joined, AcceptError>> {
    let token = token.to_string();
    state
        .db(move |conn| {
            let org = invitations::accept_as(conn, &token, &user, &origin);
            Ok(org.map(|org| Joined {
                org,
                new_account: None,
            }))
        })
        .await
}

/// Where an acceptance leads: into the organization with a welcome, or to the one page
/// for a dead link.
fn accepted(
    state: &AppState,
    session: &Session,
    req: &HttpRequest,
    token: &str,
    joined: Result<Joined, AcceptError>,
) -> AppResult<HttpResponse> {
    let Joined { org, new_account } = match joined {
        Ok(joined) => joined,
        // Someone made an account with this address meanwhile: it signs in now.
        Err(AcceptError::AccountExists) => {
            return Ok(private(see_other(&format!("/invite/{token}"))));
        }
        Err(AcceptError::NoLongerGrantable) => {
            tracing::warn!("invitation refused at acceptance: the inviter may no longer grant it");
            return Ok(invalid_link(session));
        }
        Err(AcceptError::InvalidLink) => return Ok(invalid_link(session)),
        Err(e) => return Err(e.into()),
    };
    let welcome = match new_account {
        Some(user) => {
            sign_in(session, req, &user, &state.settings)?;
            format!("Welcome to {}, {}.", org.name, user.first_name)
        }
        None => format!("You joined {}.", org.name),
    };
    flash(session, "success", welcome);
    Ok(private(see_other(&format!("/orgs/{}/users", org.slug))))
}
