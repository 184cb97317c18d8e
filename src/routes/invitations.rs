//! The Invited tab, the invite form, resend and cancel, and the accept link.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::auth::keys;
use crate::db::invitations::{Choice, ListKey, ListRow};
use crate::db::organizations::Organization;
use crate::db::roles::Role;
use crate::db::users::User;
use crate::domain::FieldErrors;
use crate::domain::invitations::{
    self, AcceptError, AcceptForm, AddressResult, Env, InvitationError, InviteChoices, InviteForm,
    InviteReport, InvitedPage, Inviter, LinkInfo, MAX_ADDRESSES, NewAccount, Submission, Tone,
    Undelivered,
};
use crate::domain::policy::Standing;
use crate::domain::pools::PoolChoice;
use crate::domain::roles::Permission;
use crate::domain::timefmt;
use crate::error::{AppError, AppResult};
use crate::web::extract::{CurrentUser, MaybeUser, OrgCtx, sign_in};
use crate::web::form::{Form, Query, Return, to_query};
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
            standing: ctx.actor().standing(),
            access_until: ctx.membership.access_until,
            now: ctx.now,
        },
        ttl: chrono::Duration::from_std(state.settings.invitation_ttl)
            .map_err(|e| AppError::Internal(e.into()))?,
        public_url: state.settings.public_url(),
        origin,
        sends_per_hour: state.settings.invitations_per_hour,
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
    /// Open, from an inviter who is deactivated or whose access has ended: its link does
    /// not work meanwhile.
    held: bool,
    /// Its email has not reached the mail server: `retrying` or `given-up`, and what
    /// the tab says of it.
    undelivered: Option<(&'static str, &'static str)>,
    /// The viewer may resend or cancel it (`invitations::may_renew_role`).
    renewable: bool,
}

impl RowView {
    fn new(row: ListRow, page: &InvitedPage, viewer: &Standing) -> Self {
        let status = row.invitation.display_status(page.now);
        let open = matches!(status, "pending" | "expired");
        let held = open && page.held.contains(&row.invitation.id);
        let undelivered = page.undelivered.get(&row.invitation.id).map(|u| match u {
            Undelivered::Retrying => (
                "retrying",
                "Its email has not reached the mail server yet; retrying.",
            ),
            Undelivered::LinkDied => ("given-up", "Its email was never sent: its link died first."),
            Undelivered::GivenUp => (
                "given-up",
                "Its email was never sent: the mail server did not take it in a week of tries.",
            ),
        });
        let renewable = invitations::may_renew_role(viewer, &row.role);
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
            open,
            held,
            undelivered,
            renewable,
        }
    }
}

struct FilterLink {
    href: String,
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

/// Where a Resend or Cancel returns: the Invited tab as the person left it (`next`, when
/// it is a page of this organization's tab), or the tab itself.
fn tab_return(slug: &str, next: Option<&str>) -> String {
    crate::domain::redirect::back_to(&list_path(slug), next)
}

/// The Invited tab with this status filter, search and cursor.
fn tab_href(slug: &str, status: &str, q: &str, cursor: Option<&str>) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("status", status),
        ("q", q),
        ("cursor", cursor.unwrap_or("")),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    if pairs.is_empty() {
        list_path(slug)
    } else {
        format!("{}?{}", list_path(slug), to_query(&pairs))
    }
}

#[derive(Template)]
#[template(path = "invitations/list.html")]
struct ListPage {
    layout: Layout,
    slug: String,
    rows: Vec<RowView>,
    filters: Vec<FilterLink>,
    status: &'static str,
    /// The search as typed.
    q: String,
    next_href: Option<String>,
    first_href: Option<String>,
    paged: bool,
    /// This very page (status, search, cursor): where its Resend and Cancel return.
    here: String,
}

impl ListPage {
    fn new(
        layout: Layout,
        (slug, viewer): (&str, &Standing),
        mut page: InvitedPage,
        status: &'static str,
        q: String,
    ) -> Self {
        let filters = FILTERS
            .into_iter()
            .map(|(value, label)| FilterLink {
                href: tab_href(slug, value, &q, None),
                label,
                current: value == status,
            })
            .collect();
        let next = page.next.take().map(|key| Cursor(key).encode());
        ListPage {
            layout,
            slug: slug.to_string(),
            rows: std::mem::take(&mut page.rows)
                .into_iter()
                .map(|r| RowView::new(r, &page, viewer))
                .collect(),
            filters,
            status,
            next_href: next.map(|c| tab_href(slug, status, &q, Some(&c))),
            first_href: None,
            here: tab_href(slug, status, &q, None),
            q,
            paged: false,
        }
    }
}

/// A page link this tab did not write (damaged, or cut short when copied): the tab from
/// its first page, with its search, and a word on why.
fn start_again(session: &Session, first_page: &str) -> HttpResponse {
    flash(
        session,
        "info",
        "That page link no longer works, so the list starts again from its first page.",
    );
    see_other(first_page)
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
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
    let q = query.q.clone().unwrap_or_default().trim().to_string();
    let Ok(after) = Cursor::<ListKey>::from_param(query.cursor.as_deref()) else {
        return Ok(start_again(
            &session,
            &tab_href(&ctx.org.slug, status, &q, None),
        ));
    };
    let after = after.map(|cursor| cursor.0);
    let paged = after.is_some();
    let (org_id, prefix) = (
        ctx.org.id.clone(),
        invitations::search_prefix(query.q.as_deref()),
    );
    let page = state
        .db(move |conn| {
            let prefix = prefix.as_deref();
            Ok(invitations::list_page(
                conn, &org_id, filter, prefix, after, PAGE_SIZE,
            )?)
        })
        .await?;
    let layout = Layout::in_org(&session, &ctx, "Invited", "invitations");
    let viewer = ctx.actor().standing();
    let mut view = ListPage::new(layout, (&ctx.org.slug, &viewer), page, status, q);
    view.paged = paged;
    view.first_href = paged.then(|| tab_href(&ctx.org.slug, status, &view.q, None));
    let cursor = query.cursor.as_deref().filter(|_| paged);
    view.here = tab_href(&ctx.org.slug, status, &view.q, cursor);
    Ok(render(&view))
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
    /// See `InviteChoices`.
    pools_only: bool,
    offers_groups: bool,
    errors: FieldErrors,
    max: usize,
    /// The inviter's own last day, if their access ends: the latest an invitee's may.
    last_day: Option<String>,
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
            pools_only: choices.pools_only,
            offers_groups: choices.offers_groups,
            errors,
            max: MAX_ADDRESSES,
            last_day: ctx.last_day_of_access(),
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

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ResultView {
    email: String,
    key: String,
    label: String,
    id: String,
    link: Option<String>,
}

impl ResultView {
    /// An invitation went out for the address, whose link the inviter may not be shown.
    fn link_withheld(&self) -> bool {
        self.link.is_none() && ["invited", "resent", "replaced"].contains(&self.key.as_str())
    }
}

/// The addresses an invite refused, sent back to be fixed: the form as it was, with
/// only those addresses in it, and why each was refused.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Retry {
    form: InviteForm,
    message: String,
}

/// What the results page shows once. It waits in the inviter's own session between the
/// POST that made the links and the GET that shows them: a refresh posts nothing again,
/// and nobody else, and no later visit, sees the links.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Held {
    org_id: String,
    title: String,
    heading: String,
    /// `success`, `warning` or `error`: the summary's colour.
    tone: String,
    summary: Vec<String>,
    results: Vec<ResultView>,
    retry: Option<Retry>,
    /// The Invited tab as a Resend left it (its filter, search, page); the plain tab
    /// when absent.
    #[serde(default)]
    back: Option<String>,
}

/// How many addresses met each outcome, in words: "3 people invited".
const SUMMARY: [(&str, &str, &str); 7] = [
    ("invited", "person invited", "people invited"),
    ("resent", "invitation resent", "invitations resent"),
    (
        "replaced",
        "invitation replaced by this offer",
        "invitations replaced by this offer",
    ),
    (
        "not_resent",
        "already invited, not resent",
        "already invited, not resent",
    ),
    ("member", "already a member", "already members"),
    ("withheld", "not invited", "not invited"),
    ("invalid", "invalid address", "invalid addresses"),
];

impl Held {
    fn invited(ctx: &OrgCtx, form: &InviteForm, report: InviteReport) -> Self {
        let summary = SUMMARY
            .into_iter()
            .map(|(key, one, many)| (report.count(key), one, many))
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
            .collect();
        let retry = (report.count("invalid") > 0).then(|| Retry {
            form: InviteForm {
                emails: report.invalid_addresses(),
                ..form.clone()
            },
            message: report.invalid_reasons(),
        });
        Held {
            org_id: ctx.org.id.clone(),
            title: "Invitations sent".into(),
            heading: format!("Invitations as {}", report.role_name),
            tone: report.tone().class().into(),
            summary,
            results: result_views(report.results),
            retry,
            back: None,
        }
    }

    fn resent(ctx: &OrgCtx, result: AddressResult, back: String) -> Self {
        Held {
            org_id: ctx.org.id.clone(),
            title: "Invitation resent".into(),
            heading: "Invitation resent".into(),
            tone: Tone::Success.class().into(),
            summary: vec![format!(
                "A new link was sent to {}; the previous link no longer works.",
                result.email
            )],
            results: result_views(vec![result]),
            retry: None,
            back: Some(back),
        }
    }

    /// Keeps the results for the next page this session sees.
    fn keep(self, session: &Session) -> AppResult<()> {
        session
            .insert(keys::INVITE_RESULTS, self)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))
    }

    /// The results waiting for this organization's results page, taken: never shown twice.
    fn take(session: &Session, org_id: &str) -> Option<Held> {
        let held = session
            .remove_as::<Held>(keys::INVITE_RESULTS)
            .and_then(Result::ok)?;
        (held.org_id == org_id).then_some(held)
    }
}

fn result_views(results: Vec<AddressResult>) -> Vec<ResultView> {
    results
        .into_iter()
        .map(|r| ResultView {
            key: r.outcome.key().into(),
            label: r.outcome.label(),
            email: r.email,
            id: r.invitation_id.unwrap_or_default(),
            link: r.link,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "invitations/results.html")]
struct ResultsPage {
    layout: Layout,
    slug: String,
    /// Where "Back to Invited" leads.
    back: String,
    heading: String,
    tone: String,
    summary: Vec<String>,
    results: Vec<ResultView>,
    /// Some invitation went out without its link shown here.
    links_withheld: bool,
    /// The invite form again, holding the refused addresses, when there are some.
    retry: bool,
    form: InviteForm,
    roles: Vec<Role>,
    groups: Vec<Choice>,
    pools: Vec<PoolChoice>,
    pools_only: bool,
    offers_groups: bool,
    errors: FieldErrors,
    max: usize,
    /// The inviter's own last day, if their access ends: the latest an invitee's may.
    last_day: Option<String>,
}

impl ResultsPage {
    fn new(session: &Session, ctx: &OrgCtx, held: Held, choices: Option<InviteChoices>) -> Self {
        let (retry, form, errors) = match held.retry {
            Some(Retry { form, message }) => {
                let mut errors = FieldErrors::default();
                errors.add("emails", message);
                (true, form, errors)
            }
            None => (false, InviteForm::default(), FieldErrors::default()),
        };
        let (pools_only, offers_groups) = choices
            .as_ref()
            .map(|c| (c.pools_only, c.offers_groups))
            .unwrap_or_default();
        let (roles, groups, pools) = choices
            .map(|c| (c.roles, c.groups, c.pools))
            .unwrap_or_default();
        ResultsPage {
            layout: Layout::in_org(session, ctx, &held.title, "invitations"),
            slug: ctx.org.slug.clone(),
            back: tab_return(&ctx.org.slug, held.back.as_deref()),
            heading: held.heading,
            tone: held.tone,
            summary: held.summary,
            links_withheld: held.results.iter().any(ResultView::link_withheld),
            results: held.results,
            retry: retry && !roles.is_empty(),
            form,
            roles,
            groups,
            pools,
            pools_only,
            offers_groups,
            errors,
            max: MAX_ADDRESSES,
            last_day: ctx.last_day_of_access(),
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

fn sent_path(slug: &str) -> String {
    format!("/orgs/{slug}/invitations/sent")
}

/// The results of this session's last invite or resend, once; a refresh after that
/// lands on the Invited tab, where the invitations are.
pub async fn sent_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    // Nothing waiting (a refresh, a bookmark): the tab, whose hint says links show once.
    // No flash either: a read leaves the session as it was.
    let Some(held) = Held::take(&session, &ctx.org.id) else {
        // A pool Manager, who invites only into their pools, has no Invited tab.
        let tab = match ctx.can(Permission::UsersInvite) {
            true => list_path(&ctx.org.slug),
            false => format!("/orgs/{}/users", ctx.org.slug),
        };
        return Ok(see_other(&tab));
    };
    // The form for the refused addresses offers what the member may still choose.
    let (org_id, user_id, own) = (ctx.org.id.clone(), ctx.user().id.clone(), ctx.standing());
    let retry = held.retry.is_some();
    let choices = state
        .db(move |conn| {
            if !retry {
                return Ok(None);
            }
            Ok(invitations::form_choices(conn, &org_id, &user_id, &own).ok())
        })
        .await?;
    Ok(private(render(&ResultsPage::new(
        &session, &ctx, held, choices,
    ))))
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
            Held::invited(&ctx, &form, report).keep(&session)?;
            Ok(see_other(&sent_path(&ctx.org.slug)))
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
    back: Form<Return>,
) -> AppResult<HttpResponse> {
    let back = tab_return(&ctx.org.slug, back.next.as_deref());
    let (env, id) = acting_on(&state, &ctx, origin, path)?;
    let resent = state
        .db(move |conn| Ok(invitations::resend(conn, &env, &id)))
        .await?;
    match resent {
        Ok(result) => {
            announce(&state, std::slice::from_ref(&result));
            Held::resent(&ctx, result, back).keep(&session)?;
            Ok(see_other(&sent_path(&ctx.org.slug)))
        }
        Err(e) if said_on_tab(&e) => {
            flash(&session, "warning", e.to_string());
            Ok(see_other(&back))
        }
        Err(e) => Err(e.into()),
    }
}

/// Refusals said on the tab the button was on, not on a page of their own: too soon, over
/// the hour's limit, beyond what the viewer may grant, or a tab out of date (accepted or
/// cancelled since it was shown).
fn said_on_tab(e: &InvitationError) -> bool {
    matches!(
        e,
        InvitationError::TooSoon
            | InvitationError::HourlyLimit(_)
            | InvitationError::BeyondGrants(_)
            | InvitationError::Closed(_)
    )
}

/// Asks before cancelling, without JavaScript.
pub async fn cancel_form(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
    back: Query<Return>,
) -> AppResult<HttpResponse> {
    let back = tab_return(&ctx.org.slug, back.next.as_deref());
    let (env, id) = acting_on(&state, &ctx, origin, path)?;
    let invitation = state
        .db(move |conn| Ok(invitations::cancellable(conn, &env, &id)))
        .await?;
    let invitation = match invitation {
        Err(e) if said_on_tab(&e) => {
            flash(&session, "warning", e.to_string());
            return Ok(see_other(&back));
        }
        other => other?,
    };
    let page = crate::web::confirm::ConfirmPage::new(
        Layout::in_org(&session, &ctx, "Cancel invitation", "invitations"),
        format!("Cancel the invitation to {}?", invitation.email),
        format!(
            "/orgs/{}/invitations/{}/cancel",
            ctx.org.slug, invitation.id
        ),
    )
    .line("Its link stops working at once. You can invite the address again later.")
    .field("next", back.clone())
    .button(format!("Cancel the invitation to {}", invitation.email))
    .cancel(back);
    Ok(render(&page))
}

pub async fn cancel(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
    back: Form<Return>,
) -> AppResult<HttpResponse> {
    let back = tab_return(&ctx.org.slug, back.next.as_deref());
    let (env, id) = acting_on(&state, &ctx, origin, path)?;
    let cancelled = state
        .db(move |conn| Ok(invitations::cancel(conn, &env, &id)))
        .await?;
    let cancelled = match cancelled {
        Err(e) if said_on_tab(&e) => {
            flash(&session, "warning", e.to_string());
            return Ok(see_other(&back));
        }
        other => other?,
    };
    flash(
        &session,
        "success",
        format!(
            "The invitation to {} was cancelled; its link no longer works.",
            cancelled.email
        ),
    );
    Ok(see_other(&back))
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
    /// Where signing out from the wrong account comes back to.
    invite_path: String,
    /// The last day of the access the invitation offers, if it ends.
    last_day: Option<chrono::NaiveDate>,
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
        invite_path: format!("/invite/{token}"),
        last_day: info
            .invitation
            .access_until
            .map(crate::domain::access_until::last_day),
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

/// A dead link, unless the signed-in account is the one that used it: then it leads into
/// the organization it joined, as the first use did.
async fn dead_or_joined(
    state: &AppState,
    session: &Session,
    current: Option<&CurrentUser>,
    token: &str,
) -> AppResult<HttpResponse> {
    let Some(me) = current else {
        return Ok(invalid_link(session));
    };
    let (token, user_id) = (token.to_string(), me.user.id.clone());
    let joined = state
        .db(move |conn| Ok(invitations::joined_through(conn, &token, &user_id)?))
        .await?;
    match joined {
        Some(slug) => {
            flash(session, "info", "You accepted this invitation already.");
            Ok(private(see_other(&format!("/orgs/{slug}/users"))))
        }
        None => Ok(invalid_link(session)),
    }
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
        return dead_or_joined(&state, &session, current.0.as_ref(), &token).await;
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
        return dead_or_joined(&state, &session, current.0.as_ref(), &token).await;
    };
    let current = current.0;
    let joined = match (mode_of(&info, current.as_ref()), current) {
        (Mode::NewAccount, _) => match invitations::validate_account(&form, &info.invitation) {
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
            if matches!(joined, Err(AcceptError::NoLongerGrantable)) {
                refusal_recorded(conn, &token, &origin);
            }
            Ok(joined.map(|(user, org)| Joined {
                org,
                new_account: Some(user),
            }))
        })
        .await
}

/// The refusal goes into the trail, or, failing that, the log: the person still gets the
/// dead-link page, not an error of the trail's.
fn refusal_recorded(conn: &mut crate::db::DbConnection, token: &str, origin: &Origin) {
    if let Err(e) = invitations::record_refusal(conn, token, origin) {
        tracing::error!(error = %e, "could not record a refused acceptance in the audit trail");
    }
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
            if matches!(org, Err(AcceptError::NoLongerGrantable)) {
                refusal_recorded(conn, &token, &origin);
            }
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
