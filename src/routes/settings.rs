//! The Settings tab: the organization's two-factor policy, for its Admins.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::domain::FieldErrors;
use crate::domain::roles::Permission;
use crate::domain::two_factor_policy::{self as policy, PolicyForm, Saved, Scope, SettingsView};
use crate::error::AppResult;
use crate::web::extract::OrgCtx;
use crate::web::form::Form;
use crate::web::layout::Layout;
use crate::web::outcome::{done, done_or_form_again, unchanged};
use crate::web::{AppState, render};

/// One choice of the "who must use two-factor" radio group.
struct ScopeChoice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "orgs/settings.html")]
struct SettingsPage {
    layout: Layout,
    current: SettingsView,
    current_label: &'static str,
    choices: Vec<ScopeChoice>,
    /// The grace days field as shown: the stored value, or what was sent.
    grace_days: String,
    /// Whether the admin looking at the page has two-factor on themselves.
    self_enrolled: bool,
    errors: FieldErrors,
}

fn scope_choices(require: &str) -> Vec<ScopeChoice> {
    Scope::ALL
        .into_iter()
        .map(|s| ScopeChoice {
            value: s.as_str(),
            label: s.label(),
            checked: s.as_str() == require,
        })
        .collect()
}

/// The page; `sent` is a refused form, shown again with its errors.
async fn page(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    sent: Option<(PolicyForm, FieldErrors)>,
) -> AppResult<SettingsPage> {
    ctx.require(Permission::OrgManage)?;
    let (org_id, user_id, now) = (ctx.org.id.clone(), ctx.user().id.clone(), state.clock.now());
    let (current, self_enrolled) = state
        .db(move |conn| {
            let view = policy::load_settings(conn, &org_id, now)?;
            Ok((
                view,
                crate::domain::two_factor::is_enrolled(conn, &user_id)?,
            ))
        })
        .await?;
    let (require, grace_days, errors) = match sent {
        Some((form, errors)) => (form.require, form.grace_days, errors),
        None => (
            current.scope.as_str().to_string(),
            current.grace_days.to_string(),
            FieldErrors::default(),
        ),
    };
    Ok(SettingsPage {
        layout: Layout::in_org(session, ctx, "Settings", "settings"),
        current_label: current.scope.label(),
        current,
        choices: scope_choices(&require),
        grace_days,
        self_enrolled,
        errors,
    })
}

pub async fn settings_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    Ok(render(&page(&state, &session, &ctx, None).await?))
}

/// Sets who must use two-factor and the grace period; bad input shows the form again (422).
pub async fn set_two_factor(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    form: Form<PolicyForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::OrgManage)?;
    let (actor, sent, now) = (ctx.actor(), form.into_inner(), state.clock.now());
    let f = sent.clone();
    let result = state
        .db(move |conn| Ok(policy::set(conn, &actor, &f, now, &origin)))
        .await?;
    let location = format!("/orgs/{}/settings", ctx.org.slug);
    done_or_form_again(
        result,
        |saved| match saved {
            Saved::Changed => done(&session, "Two-factor policy saved.", &location),
            Saved::Unchanged => unchanged(&session, "Nothing changed.", &location),
        },
        |errors| page(&state, &session, &ctx, Some((sent, errors))),
    )
    .await
}
