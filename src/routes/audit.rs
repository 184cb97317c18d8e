//! The audit pages and their CSV export: one organization's (`audit.read`), and the
//! platform's across organizations (platform operators and admins).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::db::audit_events::{EventKey, Filter, Scope};
use crate::db::organizations::Organization;
use crate::domain::FieldErrors;
use crate::domain::audit_catalogue::{self, ACTIONS, ActionDef};
use crate::domain::audit_csv;
use crate::domain::audit_query::{self, AuditPage, AuditParams, DamagedLink, Start};
use crate::domain::roles::Permission;
use crate::error::{AppError, AppResult};
use crate::web::extract::{CurrentUser, OrgCtx};
use crate::web::form::{Query, to_query};
use crate::web::layout::Layout;
use crate::web::paging::{BadCursor, Cursor, PAGE_SIZE};
use crate::web::{AppState, render_status};

#[derive(Template)]
#[template(path = "audit/page.html")]
struct AuditPageView {
    layout: Layout,
    heading: String,
    platform: bool,
    base_path: String,
    params: AuditParams,
    errors: FieldErrors,
    actions: &'static [ActionDef],
    unlisted_action: Option<String>,
    orgs: Vec<Organization>,
    unlisted_org: Option<String>,
    page: AuditPage,
    filtered: bool,
    first_href: String,
    next_href: Option<String>,
    csv_href: String,
}

impl AuditPageView {
    fn new(layout: Layout, heading: &str, base_path: String, params: AuditParams) -> Self {
        let action = params.action.trim();
        let unlisted_action = (!action.is_empty()
            && audit_catalogue::find_action(action).is_none())
        .then(|| action.to_string());
        let filters = params.filters();
        AuditPageView {
            first_href: link(&base_path, &filters),
            csv_href: link(&format!("{base_path}.csv"), &filters),
            filtered: !filters.is_empty(),
            layout,
            heading: heading.into(),
            platform: false,
            base_path,
            params,
            errors: FieldErrors::default(),
            actions: ACTIONS,
            unlisted_action,
            orgs: Vec::new(),
            unlisted_org: None,
            page: AuditPage::default(),
            next_href: None,
        }
    }

    /// The page of events, or the form with a message next to each bad filter and no
    /// rows.
    fn show(mut self, page: Result<AuditPage, FieldErrors>) -> HttpResponse {
        match page {
            Ok(page) => {
                self.next_href = page.next_cursor.clone().map(|key| {
                    let mut pairs = self.params.filters();
                    let cursor = Cursor(key).encode();
                    pairs.push(("cursor", &cursor));
                    link(&self.base_path, &pairs)
                });
                self.page = page;
                render_status(StatusCode::OK, &self)
            }
            Err(errors) => {
                self.errors = errors;
                render_status(StatusCode::UNPROCESSABLE_ENTITY, &self)
            }
        }
    }
}

/// `path`, with the query string of `pairs` when there are any.
fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", to_query(pairs))
    }
}

/// Where the page starts, read from the `cursor` parameter.
fn start_of(params: &AuditParams) -> Start {
    Cursor::<EventKey>::from_param(Some(&params.cursor))
        .map(|cursor| cursor.map(|Cursor(key)| key))
        .map_err(|BadCursor| DamagedLink)
}

/// An organization's pages take no organization filter: the path names it.
fn org_params(query: Query<AuditParams>) -> AuditParams {
    AuditParams {
        org: String::new(),
        ..query.into_inner()
    }
}

fn org_view(session: &Session, ctx: &OrgCtx, params: AuditParams) -> AuditPageView {
    AuditPageView::new(
        Layout::in_org(session, ctx, "Audit", "audit"),
        "Audit",
        format!("/orgs/{}/audit", ctx.org.slug),
        params,
    )
}

/// GET /orgs/{org}/audit
pub async fn org_page(
    state: web::Data<AppState>,
    session: Session,
    query: Query<AuditParams>,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::AuditRead)?;
    let params = org_params(query);
    let view = org_view(&session, &ctx, params.clone());
    let query = match audit_query::validate(&params, start_of(&params)) {
        Ok(query) => query,
        Err(errors) => return Ok(view.show(Err(errors))),
    };
    let org_id = ctx.org.id.clone();
    let page = state
        .db(move |conn| {
            Ok(audit_query::org_page(
                conn, &org_id, &query, None, PAGE_SIZE,
            )?)
        })
        .await?;
    Ok(view.show(Ok(page)))
}

/// GET /orgs/{org}/audit.csv
pub async fn org_csv(
    state: web::Data<AppState>,
    session: Session,
    query: Query<AuditParams>,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::AuditRead)?;
    let params = org_params(query);
    match audit_query::validate(&params, start_of(&params)) {
        Ok(query) => Ok(csv_export(
            state,
            Scope::Org(ctx.org.id.clone()),
            query.filter,
            &ctx.org.slug,
        )),
        Err(errors) => Ok(org_view(&session, &ctx, params).show(Err(errors))),
    }
}

/// GET /admin/audit
pub async fn platform_page(
    state: web::Data<AppState>,
    session: Session,
    query: Query<AuditParams>,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    require_platform(&current)?;
    let params = query.into_inner();
    let mut view = AuditPageView::new(
        Layout::signed_in(&session, &current, "Platform audit"),
        "Platform audit",
        "/admin/audit".into(),
        params.clone(),
    );
    let audit = state
        .db(move |conn| {
            let start = start_of(&params);
            Ok(audit_query::platform_audit(
                conn, &params, start, PAGE_SIZE,
            )?)
        })
        .await?;
    view.platform = true;
    view.orgs = audit.orgs;
    view.unlisted_org = audit.unlisted_org;
    Ok(view.show(audit.page))
}

/// GET /admin/audit.csv
pub async fn platform_csv(
    state: web::Data<AppState>,
    query: Query<AuditParams>,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    require_platform(&current)?;
    let params = query.into_inner();
    let (scope, query) = state
        .db(move |conn| {
            let start = start_of(&params);
            let valid = audit_query::platform_query(conn, &params, start)?;
            Ok(valid.map_err(audit_query::BadFilters)?)
        })
        .await?;
    Ok(csv_export(state, scope, query.filter, "platform"))
}

fn require_platform(current: &CurrentUser) -> AppResult<()> {
    if current.is_platform_operator() {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

/// Streams every matching event as CSV, newest first, one batch at a time: memory stays
/// flat however many rows match, and a database connection is held only while a batch
/// is read.
fn csv_export(
    state: web::Data<AppState>,
    scope: Scope,
    filter: Filter,
    name: &str,
) -> HttpResponse {
    // Before the first batch: no position yet.
    let first: Option<Option<EventKey>> = Some(None);
    let body = futures_util::stream::unfold(first, move |position| {
        let (state, scope, filter) = (state.clone(), scope.clone(), filter.clone());
        async move {
            let after = position?;
            let batch = state
                .db(move |conn| {
                    Ok(audit_csv::export_batch(
                        conn,
                        &scope,
                        &filter,
                        after.as_ref(),
                    )?)
                })
                .await;
            match batch {
                Ok(batch) => Some((Ok(Bytes::from(batch.csv)), batch.next.map(Some))),
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed part-way");
                    let failed = actix_web::error::ErrorInternalServerError("export failed");
                    Some((Err(failed), None))
                }
            }
        }
    });
    let filename = format!(
        "audit-{}-{}.csv",
        name,
        crate::db::now().format("%Y%m%d-%H%M%S")
    );
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body)
}
