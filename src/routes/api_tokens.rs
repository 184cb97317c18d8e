//! The API tokens tab: an organization's bearer tokens for SCIM, for its Admins.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::audit::Origin;
use crate::db::roles::Role;
use crate::domain::FieldErrors;
use crate::domain::account::PasswordPurpose;
use crate::domain::api_tokens::{self as tokens, CreateForm, Created, Scope, TokenRow};
use crate::domain::roles::Permission;
use crate::error::AppResult;
use crate::routes::account::{password_again, signed_in_recently};
use crate::web::extract::OrgCtx;
use crate::web::form::Form;
use crate::web::layout::Layout;
use crate::web::outcome::{done, done_or_form_again};
use crate::web::{AppState, once, private, render, render_status};

/// One scope checkbox of the form.
struct ScopeChoice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

/// The token just made, shown once.
struct NewToken {
    name: String,
    secret: String,
    never_expires: bool,
}

#[derive(Template)]
#[template(path = "api_tokens/list.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenRow>,
    roles: Vec<Role>,
    scopes: Vec<ScopeChoice>,
    name: String,
    expires_days: String,
    role_id: String,
    created: Option<NewToken>,
    /// The form was sent again (a refresh of the page that showed its token): nothing made.
    sent_again: bool,
    form_id: String,
    errors: FieldErrors,
    /// Making a token asks for the password too: the sign-in is not recent.
    ask_password: bool,
}

fn scope_choices(sent: &[String]) -> Vec<ScopeChoice> {
    Scope::ALL
        .into_iter()
        .map(|s| ScopeChoice {
            value: s.as_str(),
            label: s.label(),
            checked: sent.iter().any(|c| c == s.as_str()),
        })
        .collect()
}

/// The role the form shows chosen: the one sent, else Member.
fn chosen_role(roles: &[Role], sent: String) -> String {
    if !sent.is_empty() {
        return sent;
    }
    roles
        .iter()
        .find(|r| r.key == crate::domain::roles::MEMBER)
        .map(|r| r.id.clone())
        .unwrap_or_default()
}

/// The page; `sent` is the form as sent (refused, or just used), `created` the new token.
async fn page(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    sent: Option<(CreateForm, FieldErrors)>,
    created: Option<NewToken>,
) -> AppResult<TokensPage> {
    ctx.require(Permission::OrgManage)?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    let (tokens, roles) = state
        .db(move |conn| {
            Ok((
                tokens::list(conn, &actor, now)?,
                tokens::grantable_roles(conn, &actor)?,
            ))
        })
        .await?;
    let (form, errors) = sent.unwrap_or_default();
    Ok(TokensPage {
        layout: Layout::in_org(session, ctx, "API tokens", "api-tokens"),
        tokens,
        scopes: scope_choices(&form.scopes),
        role_id: chosen_role(&roles, form.role_id),
        roles,
        name: if created.is_some() {
            String::new()
        } else {
            form.name
        },
        expires_days: form.expires_days,
        created,
        sent_again: false,
        form_id: once::new_form_id(),
        errors,
        ask_password: !signed_in_recently(state, session),
    })
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    Ok(private(render(
        &page(&state, &session, &ctx, None, None).await?,
    )))
}

/// Makes a token and shows it once, on this answer only: it is never put in the session
/// or a redirect, so it is stored nowhere but in the page the Admin sees.
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    form: Form<CreateForm>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::OrgManage)?;
    let (actor, sent, now) = (ctx.actor(), form.into_inner(), state.clock.now());
    if once::already_sent(&session, &sent.form_id) {
        let mut again = page(&state, &session, &ctx, None, None).await?;
        again.sent_again = true;
        return Ok(private(render_status(StatusCode::CONFLICT, &again)));
    }
    if let Some(refused) = password_refused(&state, &session, &ctx, &origin, &sent).await? {
        return Ok(refused);
    }
    let f = sent.clone();
    let result = state
        .db(move |conn| Ok(tokens::create(conn, &actor, &f, now, &origin)))
        .await?;
    let created = match result {
        Ok(Created { secret, token }) => NewToken {
            name: token.name,
            never_expires: token.expires_at.is_none(),
            secret,
        },
        Err(e) => {
            let again = |errors| page(&state, &session, &ctx, Some((sent, errors)), None);
            return done_or_form_again(Err::<(), _>(e), |_| HttpResponse::Ok().finish(), again)
                .await;
        }
    };
    once::mark_sent(&session, &sent.form_id);
    let shown = page(&state, &session, &ctx, None, Some(created)).await?;
    Ok(private(render(&shown)))
}

/// The form again, saying why, when the sign-in is not recent and the password sent with
/// the form is missing or wrong.
async fn password_refused(
    state: &AppState,
    session: &Session,
    ctx: &OrgCtx,
    origin: &Origin,
    sent: &CreateForm,
) -> AppResult<Option<HttpResponse>> {
    if signed_in_recently(state, session) {
        return Ok(None);
    }
    let purpose = PasswordPurpose::MakeApiToken;
    let Err(why) = password_again(state, &ctx.current, origin, &sent.password, purpose).await?
    else {
        return Ok(None);
    };
    // The form's own format mistakes too (a name, scopes, an expiry), said in the same
    // round; what the organization decides (a role, a name in use) waits for the password.
    let mut errors = tokens::read_form(sent).err().unwrap_or_default();
    errors.add("password", why);
    let again = page(state, session, ctx, Some((sent.clone(), errors)), None).await?;
    Ok(Some(private(render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &again,
    ))))
}

pub async fn revoke(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
    origin: Origin,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::OrgManage)?;
    let (actor, id, now) = (ctx.actor(), path.into_inner().1, state.clock.now());
    let name = state
        .db(move |conn| Ok(tokens::revoke(conn, &actor, &id, now, &origin)?))
        .await?;
    Ok(done(
        &session,
        format!("Token {name} revoked: it no longer works."),
        &format!("/orgs/{}/api-tokens", ctx.org.slug),
    ))
}
