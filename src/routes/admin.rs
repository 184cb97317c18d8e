//! Platform administration: organizations and accounts across the installation.
//! Platform admins change things; operators only read (403 on every POST).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::db::DbConnection;
use crate::db::organizations::{self, Organization};
use crate::domain::FieldErrors;
use crate::domain::RuleError;
use crate::domain::platform::{
    self, AccountList, AccountQuery, FirstAdmin, MembershipForm, OrgForm, PlatformActor, UserForm,
};
use crate::domain::redirect::back_to;
use crate::domain::two_factor_reset::{self, By};
use crate::error::{AppError, AppResult};
use crate::web::extract::CurrentUser;
use crate::web::form::{Form, Query, Return, decode, to_query};
use crate::web::layout::Layout;
use crate::web::once::{self, SentOnce};
use crate::web::outcome::{done, done_or_back};
use crate::web::paging::{Cursor, PAGE_SIZE};
use crate::web::{AppState, flash, render, render_status, see_other};

const ORGS_SHOWN: i64 = 500;

fn require_reader(current: &CurrentUser) -> AppResult<()> {
    if current.is_platform_operator() {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

fn require_admin(state: &AppState, current: &CurrentUser) -> AppResult<PlatformActor> {
    if current.is_platform_admin() {
        Ok(PlatformActor {
            user_id: current.user.id.clone(),
            email: current.user.email.clone(),
            public_url: state.settings.public_url(),
            invitation_ttl: chrono::Duration::from_std(state.settings.invitation_ttl)
                .map_err(|e| AppError::Internal(e.into()))?,
            now: state.clock.now(),
        })
    } else {
        Err(AppError::forbidden())
    }
}

/// Runs one platform rule on the blocking pool; its refusals become error pages.
async fn apply<T, F>(state: &AppState, rule: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, RuleError> + Send + 'static,
{
    state
        .db(move |conn| rule(conn).map_err(AppError::from))
        .await
}

/// [`apply`] for a button on a list or a page: a refusal that says why (already so, the
/// last admin) is said back there, not on an error page of its own.
async fn apply_or_back<T, F>(
    state: &AppState,
    session: &Session,
    rule: F,
    (back, said): (&str, impl FnOnce(T) -> String),
) -> AppResult<HttpResponse>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, RuleError> + Send + 'static,
{
    let result = state.db(move |conn| Ok(rule(conn))).await?;
    let succeeded = |value| done(session, said(value), back);
    done_or_back(session, result, succeeded, back)
}

fn setup_link(state: &AppState, token: &str) -> String {
    format!(
        "{}/setup/{token}",
        state.settings.public_url().trim_end_matches('/')
    )
}

/// A create form as its page shows it: empty, or after a POST either emptied with what
/// was made (201) or as typed with its errors (422).
struct Posted<F, T> {
    status: StatusCode,
    form: F,
    errors: FieldErrors,
    created: Option<T>,
    /// The form came again (a refresh of its answer, Back then Forward) after it had
    /// made what it makes: nothing was made twice.
    sent_again: bool,
}

impl<F: Default, T> Posted<F, T> {
    fn blank() -> Self {
        Posted {
            status: StatusCode::OK,
            form: F::default(),
            errors: FieldErrors::default(),
            created: None,
            sent_again: false,
        }
    }

    /// The page a form sent again answers: 409, nothing made, the form empty.
    fn sent_again() -> Self {
        Posted {
            status: StatusCode::CONFLICT,
            sent_again: true,
            ..Posted::blank()
        }
    }

    /// Any refusal but the form's own errors is an error page.
    fn after(result: Result<T, RuleError>, form: F) -> AppResult<Self> {
        match result {
            Ok(created) => Ok(Posted {
                status: StatusCode::CREATED,
                created: Some(created),
                ..Posted::blank()
            }),
            Err(RuleError::Invalid(errors)) => Ok(Posted {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
                ..Posted::blank()
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// A new organization, as the page confirms it.
struct NewOrg {
    org_name: String,
    email: String,
    /// For a first admin created here, who still needs a password.
    link: Option<String>,
    /// The account existed, so it was invited by email rather than made admin at once.
    invited: bool,
}

#[derive(Template)]
#[template(path = "admin/orgs.html")]
struct OrgsPage {
    layout: Layout,
    orgs: Vec<Organization>,
    can_change: bool,
    form: OrgForm,
    errors: FieldErrors,
    created: Option<NewOrg>,
    sent_again: bool,
    /// This rendering of the create form (see `web::once`).
    form_id: String,
}

async fn orgs(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    posted: Posted<OrgForm, NewOrg>,
) -> AppResult<HttpResponse> {
    require_reader(current)?;
    let orgs = state
        .db(|conn| Ok(organizations::list(conn, ORGS_SHOWN)?))
        .await?;
    let view = OrgsPage {
        layout: Layout::signed_in(session, current, "Organizations · Platform"),
        orgs,
        can_change: current.is_platform_admin(),
        form: posted.form,
        errors: posted.errors,
        created: posted.created,
        sent_again: posted.sent_again,
        form_id: once::new_form_id(),
    };
    Ok(render_status(posted.status, &view))
}

pub async fn orgs_page(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    orgs(&state, &session, &current, Posted::blank()).await
}

pub async fn create_org(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let (form, sent): (OrgForm, _) = (decode(&body)?, SentOnce::read(&body));
    if once::already_sent(&session, &sent.form_id) {
        return orgs(&state, &session, &current, Posted::sent_again()).await;
    }
    let f = form.clone();
    let result = state
        .db(move |conn| Ok(platform::create_org(conn, &actor, &f, &origin)))
        .await?;
    if result.is_ok() {
        state.mail.wake();
        once::mark_sent(&session, &sent.form_id);
    }
    let created = result.map(|c| NewOrg {
        link: match &c.first_admin {
            FirstAdmin::NewAccount { setup_token } => Some(setup_link(&state, setup_token)),
            _ => None,
        },
        invited: c.first_admin == FirstAdmin::Invited,
        org_name: c.org.name,
        email: c.admin_email,
    });
    orgs(&state, &session, &current, Posted::after(created, form)?).await
}

/// A new account, as the page confirms it.
struct NewAccount {
    email: String,
    org_name: String,
    link: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    layout: Layout,
    list: AccountList,
    /// The search box as typed.
    q: String,
    /// Past the first page.
    paged: bool,
    first_href: String,
    next_href: Option<String>,
    /// This page of the list, where its buttons return.
    here: String,
    /// `here` as the query of a link (`next=…`).
    next_query: String,
    /// Every organization has these, so the add-to-organization form offers them.
    builtin_roles: &'static [crate::domain::roles::BuiltinRole],
    can_change: bool,
    form: UserForm,
    errors: FieldErrors,
    created: Option<NewAccount>,
    sent_again: bool,
    /// This rendering of the create form (see `web::once`).
    form_id: String,
}

impl UsersPage {
    fn role_selected(&self, role: &crate::db::roles::Role) -> bool {
        if self.form.role_id.is_empty() {
            role.key == crate::domain::roles::MEMBER
        } else {
            self.form.role_id == role.id || self.form.role_id == role.key
        }
    }

    fn group_checked(&self, id: &str) -> bool {
        self.form.group_ids.iter().any(|g| g == id)
    }
}

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    /// The start of an email.
    #[serde(default)]
    q: String,
    /// The cursor of the page before: the last email it showed.
    after: Option<String>,
    /// The organization the new-account form creates the account in.
    #[serde(default)]
    org: String,
}

impl UsersQuery {
    fn account_query(&self, posted: &UserForm) -> AccountQuery {
        AccountQuery {
            prefix: platform::email_prefix(Some(&self.q)),
            // A cursor this list did not write starts the list over.
            after: Cursor::<String>::from_param(self.after.as_deref())
                .ok()
                .flatten()
                .map(|c| c.0),
            new_in: if posted.org.is_empty() {
                self.org.clone()
            } else {
                posted.org.clone()
            },
        }
    }
}

/// The account list at the page after `after` (the first page when `None`), keeping
/// the search.
fn page_href(q: &str, after: Option<&str>) -> String {
    let mut pairs = Vec::new();
    if !q.trim().is_empty() {
        pairs.push(("q", q.trim().to_string()));
    }
    if let Some(email) = after {
        pairs.push(("after", Cursor(email.to_string()).encode()));
    }
    if pairs.is_empty() {
        "/admin/users".to_string()
    } else {
        format!("/admin/users?{}", to_query(&pairs))
    }
}

/// The list as the person sees it: its search and the cursor it was opened with.
fn list_here(params: &UsersQuery) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("q", params.q.trim()),
        ("after", params.after.as_deref().unwrap_or("")),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    if pairs.is_empty() {
        LIST.to_string()
    } else {
        format!("{LIST}?{}", to_query(&pairs))
    }
}

const LIST: &str = "/admin/users";

async fn users_view(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    params: UsersQuery,
    posted: Posted<UserForm, NewAccount>,
) -> AppResult<HttpResponse> {
    require_reader(current)?;
    let query = params.account_query(&posted.form);
    let list = state
        .db(move |conn| Ok(platform::account_list(conn, &query, PAGE_SIZE, ORGS_SHOWN)?))
        .await?;
    let next_href = list
        .next_after
        .as_deref()
        .map(|e| page_href(&params.q, Some(e)));
    let first_href = page_href(&params.q, None);
    let here = list_here(&params);
    let view = UsersPage {
        layout: Layout::signed_in(session, current, "Accounts · Platform"),
        list,
        paged: params.after.is_some(),
        first_href,
        next_query: to_query(&[("next", &here)]),
        here,
        q: params.q,
        next_href,
        builtin_roles: &crate::domain::roles::BUILTIN_ROLES,
        can_change: current.is_platform_admin(),
        form: posted.form,
        errors: posted.errors,
        created: posted.created,
        sent_again: posted.sent_again,
        form_id: once::new_form_id(),
    };
    Ok(render_status(posted.status, &view))
}

pub async fn users_page(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    query: Query<UsersQuery>,
) -> AppResult<HttpResponse> {
    users_view(
        &state,
        &session,
        &current,
        query.into_inner(),
        Posted::blank(),
    )
    .await
}

pub async fn create_user(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    // An unreadable body is an empty form: the page then says what is missing.
    let form: UserForm = decode(&body).unwrap_or_default();
    let sent = SentOnce::read(&body);
    if once::already_sent(&session, &sent.form_id) {
        let again = Posted::sent_again();
        return users_view(&state, &session, &current, UsersQuery::default(), again).await;
    }
    let f = form.clone();
    let result = state
        .db(move |conn| Ok(platform::create_user(conn, &actor, &f, &origin)))
        .await?;
    if result.is_ok() {
        state.mail.wake();
        once::mark_sent(&session, &sent.form_id);
    }
    let created = result.map(|c| NewAccount {
        link: setup_link(&state, &c.setup_token),
        email: c.user.email,
        org_name: c.org.name,
    });
    let posted = Posted::after(created, form)?;
    users_view(&state, &session, &current, UsersQuery::default(), posted).await
}

type UserPath = web::Path<String>;

async fn set_enabled(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    (user_id, enabled): (String, bool),
    back: Return,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let said = |email| match enabled {
        true => format!("{email} can sign in again."),
        false => format!("{email} is disabled; their sessions have ended."),
    };
    let back = back_to(LIST, back.next.as_deref());
    apply_or_back(
        &state,
        &session,
        move |conn| platform::set_enabled(conn, &actor, &user_id, enabled, &origin),
        (&back, said),
    )
    .await
}

/// Asks before disabling an account everywhere.
pub async fn disable_form(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    path: UserPath,
    back: Query<Return>,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let back = back_to(LIST, back.next.as_deref());
    let user_id = path.into_inner();
    let user = apply(&state, move |conn| {
        platform::disableable(conn, &actor, &user_id)
    })
    .await?;
    let page = crate::web::confirm::ConfirmPage::new(
        Layout::signed_in(&session, &current, "Disable account · Platform"),
        format!("Disable {} everywhere?", user.email),
        format!("/admin/users/{}/disable", user.id),
    )
    .line("They cannot sign in to any organization, and every session of theirs ends at once. You can enable the account again later.")
    .field("next", back.clone())
    .button(format!("Disable {}", user.email))
    .cancel(back);
    Ok(render(&page))
}

pub async fn disable(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: UserPath,
    back: Form<Return>,
) -> AppResult<HttpResponse> {
    let change = (path.into_inner(), false);
    set_enabled(state, session, current, origin, change, back.into_inner()).await
}

pub async fn enable(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: UserPath,
    back: Form<Return>,
) -> AppResult<HttpResponse> {
    let change = (path.into_inner(), true);
    set_enabled(state, session, current, origin, change, back.into_inner()).await
}

pub async fn add_membership(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: UserPath,
    form: Form<MembershipForm>,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let user_id = path.into_inner();
    let form = form.into_inner();
    let back = back_to(LIST, form.next.as_deref());
    let said = |added: platform::Added| match added.invited {
        true => format!(
            "{} has signed in before, so it was sent an invitation to {} by email; it joins when its owner accepts.",
            added.email, added.org_name
        ),
        false => format!("{} is now a member of {}.", added.email, added.org_name),
    };
    let answer = apply_or_back(
        &state,
        &session,
        move |conn| platform::add_membership(conn, &actor, &user_id, &form, &origin),
        (&back, said),
    )
    .await;
    // After the change committed: an invitation may have been queued.
    state.mail.wake();
    answer
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    layout: Layout,
    detail: platform::UserDetail,
    can_change: bool,
}

/// One account across the installation: its memberships, with the controls that let a
/// platform admin rescue an organization whose admins all lost access.
pub async fn user_page(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    path: UserPath,
) -> AppResult<HttpResponse> {
    require_reader(&current)?;
    let user_id = path.into_inner();
    let detail = apply(&state, move |conn| platform::user_detail(conn, &user_id)).await?;
    Ok(render(&UserPage {
        layout: Layout::signed_in(
            &session,
            &current,
            &format!("{} · Platform", detail.user.email),
        ),
        detail,
        can_change: current.is_platform_admin(),
    }))
}

type MembershipPath = web::Path<(String, String)>;

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role_id: String,
}

pub async fn activate_membership(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: MembershipPath,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let (user_id, org) = path.into_inner();
    let back = format!("/admin/users/{user_id}");
    let (email, org_name) = apply(&state, move |conn| {
        platform::activate_membership(conn, &actor, &user_id, &org, &origin)
    })
    .await?;
    flash(
        &session,
        "success",
        format!("{email} is active in {org_name} again."),
    );
    Ok(see_other(&back))
}

pub async fn set_membership_role(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: MembershipPath,
    form: Form<RoleForm>,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let (user_id, org) = path.into_inner();
    let back = format!("/admin/users/{user_id}");
    let role_id = form.into_inner().role_id;
    let said = |(email, role)| format!("{email} is now {role}.");
    apply_or_back(
        &state,
        &session,
        move |conn| platform::set_membership_role(conn, &actor, &user_id, &org, &role_id, &origin),
        (&back, said),
    )
    .await
}

pub async fn end_sessions(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: UserPath,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let user_id = path.into_inner();
    let back = format!("/admin/users/{user_id}");
    let (email, ended) = apply(&state, move |conn| {
        platform::end_sessions(conn, &actor, &user_id, &origin)
    })
    .await?;
    flash(
        &session,
        "success",
        format!("{ended} session(s) of {email} ended."),
    );
    Ok(see_other(&back))
}

/// Asks before taking an account's second factor away, whatever organizations it is in.
pub async fn two_factor_reset_form(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    path: UserPath,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let user_id = path.into_inner();
    let target = apply(&state, move |conn| {
        two_factor_reset::resettable(conn, &By::PlatformAdmin(&actor), &user_id)
    })
    .await?;
    let back = format!("/admin/users/{}", target.user.id);
    if !target.enrolled {
        return Ok(super::users::nothing_to_reset(
            &session,
            &target.user.email,
            &back,
        ));
    }
    let layout = Layout::signed_in(&session, &current, "Reset two-factor · Platform");
    let page = super::users::two_factor_reset_page(layout, &target.user.email, &back);
    Ok(render(&page))
}

pub async fn reset_two_factor(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: UserPath,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let user_id = path.into_inner();
    let back = format!("/admin/users/{user_id}");
    let public_url = actor.public_url.clone();
    let (user, was_enrolled) = apply(&state, move |conn| {
        let by = By::PlatformAdmin(&actor);
        two_factor_reset::reset(conn, &by, &user_id, &public_url, &origin)
    })
    .await?;
    Ok(super::users::two_factor_reset_done(
        &state,
        &session,
        &user.email,
        was_enrolled,
        &back,
    ))
}
