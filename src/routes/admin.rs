//! Platform administration: organizations and accounts across the installation.
//! Platform admins change things; operators only read (403 on every POST).

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Origin;
use crate::db::memberships;
use crate::db::organizations::{self, Organization};
use crate::db::users::{self, User};
use crate::domain::FieldErrors;
use crate::domain::RuleError;
use crate::domain::platform::{self, MembershipForm, OrgForm, PlatformActor, UserForm};
use crate::error::{AppError, AppResult};
use crate::web::extract::CurrentUser;
use crate::web::layout::Layout;
use crate::web::{AppState, flash, render, render_status, see_other};

const ORGS_SHOWN: i64 = 500;
const USERS_PAGE: i64 = 100;

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
        })
    } else {
        Err(AppError::forbidden())
    }
}

fn setup_link(state: &AppState, token: &str) -> String {
    format!(
        "{}/setup/{token}",
        state.settings.public_url().trim_end_matches('/')
    )
}

#[derive(Template)]
#[template(path = "admin/orgs.html")]
struct OrgsPage {
    layout: Layout,
    orgs: Vec<Organization>,
    can_change: bool,
    form: OrgForm,
    errors: FieldErrors,
    /// After creating: what happened and, for a new account, its setup link.
    created: Option<(String, String, Option<String>)>,
}

async fn orgs(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    form: OrgForm,
    errors: FieldErrors,
    created: Option<(String, String, Option<String>)>,
) -> AppResult<OrgsPage> {
    require_reader(current)?;
    let orgs = state
        .db(|conn| Ok(organizations::list(conn, ORGS_SHOWN)?))
        .await?;
    Ok(OrgsPage {
        layout: Layout::signed_in(session, current, "Organizations · Platform"),
        orgs,
        can_change: current.is_platform_admin(),
        form,
        errors,
        created,
    })
}

pub async fn orgs_page(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    let page = orgs(
        &state,
        &session,
        &current,
        OrgForm::default(),
        FieldErrors::default(),
        None,
    )
    .await?;
    Ok(render(&page))
}

pub async fn create_org(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    form: web::Form<OrgForm>,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let form = form.into_inner();
    let f = form.clone();
    let result = state
        .db(move |conn| Ok(platform::create_org(conn, &actor, &f, &origin)))
        .await?;
    match result {
        Ok(created) => {
            state.mail.wake();
            let link = created
                .setup_token
                .as_deref()
                .map(|t| setup_link(&state, t));
            let info = (created.org.name.clone(), created.admin_email.clone(), link);
            let page = orgs(
                &state,
                &session,
                &current,
                OrgForm::default(),
                FieldErrors::default(),
                Some(info),
            )
            .await?;
            Ok(render_status(StatusCode::CREATED, &page))
        }
        Err(RuleError::Invalid(errors)) => {
            let page = orgs(&state, &session, &current, form, errors, None).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(AppError::from(e)),
    }
}

struct UserRow {
    user: User,
    orgs: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<UserRow>,
    next_href: Option<String>,
    orgs: Vec<Organization>,
    can_change: bool,
    form: UserForm,
    errors: FieldErrors,
    created: Option<(String, String, String)>,
}

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    after: Option<String>,
}

async fn users_view(
    state: &AppState,
    session: &Session,
    current: &CurrentUser,
    after: Option<String>,
    form: UserForm,
    errors: FieldErrors,
    created: Option<(String, String, String)>,
) -> AppResult<UsersPage> {
    require_reader(current)?;
    let (mut list, member_of, orgs) = state
        .db(move |conn| {
            let list = users::list_page(
                conn,
                after.as_deref().filter(|a| !a.is_empty()),
                USERS_PAGE + 1,
            )?;
            let ids: Vec<String> = list.iter().map(|u| u.id.clone()).collect();
            Ok((
                list,
                memberships::orgs_of_users(conn, &ids)?,
                organizations::list(conn, ORGS_SHOWN)?,
            ))
        })
        .await?;
    let has_next = list.len() as i64 > USERS_PAGE;
    list.truncate(USERS_PAGE as usize);
    let next_href = has_next.then(|| list.last()).flatten().map(|u| {
        format!(
            "/admin/users?{}",
            serde_urlencoded::to_string([("after", u.email.as_str())]).unwrap_or_default()
        )
    });
    let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
    for (user_id, org, role, status) in member_of {
        let label = if status == "active" {
            format!("{org} ({role})")
        } else {
            format!("{org} ({role}, {status})")
        };
        by_user.entry(user_id).or_default().push(label);
    }
    Ok(UsersPage {
        layout: Layout::signed_in(session, current, "Accounts · Platform"),
        rows: list
            .into_iter()
            .map(|u| UserRow {
                orgs: by_user.remove(&u.id).unwrap_or_default().join(", "),
                user: u,
            })
            .collect(),
        next_href,
        orgs,
        can_change: current.is_platform_admin(),
        form,
        errors,
        created,
    })
}

pub async fn users_page(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    query: web::Query<UsersQuery>,
) -> AppResult<HttpResponse> {
    let page = users_view(
        &state,
        &session,
        &current,
        query.into_inner().after,
        UserForm::default(),
        FieldErrors::default(),
        None,
    )
    .await?;
    Ok(render(&page))
}

pub async fn create_user(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let form: UserForm = serde_html_form::from_bytes(&body).unwrap_or_default();
    let f = form.clone();
    let result = state
        .db(move |conn| Ok(platform::create_user(conn, &actor, &f, &origin)))
        .await?;
    match result {
        Ok(created) => {
            state.mail.wake();
            let info = (
                created.user.email.clone(),
                created.org.name.clone(),
                setup_link(&state, &created.setup_token),
            );
            let page = users_view(
                &state,
                &session,
                &current,
                None,
                UserForm::default(),
                FieldErrors::default(),
                Some(info),
            )
            .await?;
            Ok(render_status(StatusCode::CREATED, &page))
        }
        Err(RuleError::Invalid(errors)) => {
            let page = users_view(&state, &session, &current, None, form, errors, None).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(AppError::from(e)),
    }
}

type UserPath = web::Path<String>;

async fn set_enabled(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    user_id: String,
    enabled: bool,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let email = state
        .db(move |conn| {
            platform::set_enabled(conn, &actor, &user_id, enabled, &origin).map_err(AppError::from)
        })
        .await?;
    let message = if enabled {
        format!("{email} can sign in again.")
    } else {
        format!("{email} is disabled; their sessions have ended.")
    };
    flash(&session, "success", message);
    Ok(see_other("/admin/users"))
}

/// Asks before disabling an account everywhere.
pub async fn disable_form(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    path: UserPath,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let user_id = path.into_inner();
    let user = state
        .db(move |conn| platform::disableable(conn, &actor, &user_id).map_err(AppError::from))
        .await?;
    let page = crate::web::confirm::ConfirmPage::new(
        Layout::signed_in(&session, &current, "Disable account · Platform"),
        format!("Disable {} everywhere?", user.email),
        format!("/admin/users/{}/disable", user.id),
    )
    .line("They cannot sign in to any organization, and every session of theirs ends at once. You can enable the account again later.")
    .button(format!("Disable {}", user.email))
    .cancel("/admin/users");
    Ok(render(&page))
}

pub async fn disable(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: UserPath,
) -> AppResult<HttpResponse> {
    set_enabled(state, session, current, origin, path.into_inner(), false).await
}

pub async fn enable(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: UserPath,
) -> AppResult<HttpResponse> {
    set_enabled(state, session, current, origin, path.into_inner(), true).await
}

pub async fn add_membership(
    state: web::Data<AppState>,
    session: Session,
    current: CurrentUser,
    origin: Origin,
    path: UserPath,
    form: web::Form<MembershipForm>,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let user_id = path.into_inner();
    let form = form.into_inner();
    let (email, org) = state
        .db(move |conn| {
            platform::add_membership(conn, &actor, &user_id, &form, &origin).map_err(|e| match e {
                RuleError::Invalid(errors) => AppError::BadRequest(
                    errors
                        .first()
                        .unwrap_or("Please correct the form.")
                        .to_string(),
                ),
                other => AppError::from(other),
            })
        })
        .await?;
    flash(
        &session,
        "success",
        format!("{email} is now a member of {org}."),
    );
    Ok(see_other("/admin/users"))
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
    let detail = state
        .db(move |conn| platform::user_detail(conn, &user_id).map_err(AppError::from))
        .await?;
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
    let (email, org_name) = state
        .db(move |conn| {
            platform::activate_membership(conn, &actor, &user_id, &org, &origin)
                .map_err(AppError::from)
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
    form: web::Form<RoleForm>,
) -> AppResult<HttpResponse> {
    let actor = require_admin(&state, &current)?;
    let (user_id, org) = path.into_inner();
    let back = format!("/admin/users/{user_id}");
    let role_id = form.into_inner().role_id;
    let (email, role) = state
        .db(move |conn| {
            platform::set_membership_role(conn, &actor, &user_id, &org, &role_id, &origin)
                .map_err(AppError::from)
        })
        .await?;
    flash(&session, "success", format!("{email} is now {role}."));
    Ok(see_other(&back))
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
    let (email, ended) = state
        .db(move |conn| {
            platform::end_sessions(conn, &actor, &user_id, &origin).map_err(AppError::from)
        })
        .await?;
    flash(
        &session,
        "success",
        format!("{ended} session(s) of {email} ended."),
    );
    Ok(see_other(&back))
}
