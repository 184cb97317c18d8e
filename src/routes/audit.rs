//! The audit pages and their CSV export: one organization's (`audit.read`), and the
//! platform's across organizations (platform operators and admins).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::db::audit_events::{self, Cursor, Filter, Scope};
use crate::db::{DbPool, organizations};
use crate::domain::FieldErrors;
use crate::domain::audit_view::{
    self, ACTIONS, ActionDef, AuditPage, AuditParams, AuditQuery, EXPORT_BATCH, NO_ORG,
};
use crate::domain::roles::Permission;
use crate::error::{AppError, AppResult};
use crate::web::extract::{CurrentUser, OrgCtx};
use crate::web::layout::{Layout, NavOrg};
use crate::web::{AppState, render_status};

/// Organizations offered in the platform page's filter; more can still be typed into
/// the URL.
const ORG_CHOICES: i64 = 1000;

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
    orgs: Vec<NavOrg>,
    unlisted_org: Option<String>,
    page: AuditPage,
    filtered: bool,
    first_href: String,
    next_href: Option<String>,
    csv_href: String,
}

impl AuditPageView {
    fn new(layout: Layout, heading: String, base_path: String, params: AuditParams) -> Self {
        let action = params.action.trim();
        let unlisted_action = (!action.is_empty() && audit_view::find_action(action).is_none())
            .then(|| action.to_string());
        let filters = params.filter_query();
        let with = |path: &str, query: &str| {
            if query.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{query}")
            }
        };
        AuditPageView {
            first_href: with(&base_path, &filters),
            csv_href: with(&format!("{base_path}.csv"), &filters),
            filtered: params.is_filtered(),
            layout,
            heading,
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

    fn with_page(mut self, page: AuditPage) -> Self {
        self.next_href = page
            .next_cursor
            .as_ref()
            .map(|c| format!("{}?{}", self.base_path, self.params.next_query(c)));
        self.page = page;
        self
    }

    /// Bad filters: the form comes back with a message next to each, and no rows.
    fn invalid(mut self, errors: FieldErrors) -> HttpResponse {
        self.errors = errors;
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &self)
    }
}

/// GET /orgs/{org}/audit
pub async fn org_page(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::AuditRead)?;
    let params = org_params(&req);
    let view = AuditPageView::new(
        Layout::in_org(&session, &ctx, "Audit", "audit"),
        "Audit".into(),
        format!("/orgs/{}/audit", ctx.org.slug),
        params.clone(),
    );
    let query = match audit_view::validate(&params) {
        Ok(query) => query,
        Err(errors) => return Ok(view.invalid(errors)),
    };
    let org_id = ctx.org.id.clone();
    let page = state
        .db(move |conn| Ok(audit_view::org_page(conn, &org_id, &query, None)?))
        .await?;
    Ok(render_status(StatusCode::OK, &view.with_page(page)))
}

/// GET /orgs/{org}/audit.csv
pub async fn org_csv(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::AuditRead)?;
    let params = org_params(&req);
    match audit_view::validate(&params) {
        Ok(query) => Ok(csv_export(
            state.pool.clone(),
            Scope::Org(ctx.org.id.clone()),
            query.filter,
            &ctx.org.slug,
        )),
        Err(errors) => Ok(AuditPageView::new(
            Layout::in_org(&session, &ctx, "Audit", "audit"),
            "Audit".into(),
            format!("/orgs/{}/audit", ctx.org.slug),
            params,
        )
        .invalid(errors)),
    }
}

/// An organization's pages take no organization filter: the path names it.
fn org_params(req: &HttpRequest) -> AuditParams {
    AuditParams {
        org: String::new(),
        ..AuditParams::from_query(req.query_string())
    }
}

/// GET /admin/audit
pub async fn platform_page(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    require_platform(&current)?;
    let params = AuditParams::from_query(req.query_string());
    let (scope, query, orgs) = {
        let params = params.clone();
        state
            .db(move |conn| {
                let orgs = organizations::list(conn, ORG_CHOICES)?;
                let scope = platform_scope(conn, &params.org)?;
                Ok((scope, audit_view::validate(&params), orgs))
            })
            .await?
    };
    let mut view = AuditPageView::new(
        Layout::signed_in(&session, &current, "Platform audit"),
        "Platform audit".into(),
        "/admin/audit".into(),
        params.clone(),
    );
    view.platform = true;
    let org = params.org.trim();
    view.unlisted_org = (!org.is_empty() && org != NO_ORG && !orgs.iter().any(|o| o.slug == org))
        .then(|| org.to_string());
    view.orgs = orgs
        .into_iter()
        .map(|o| NavOrg {
            slug: o.slug,
            name: o.name,
        })
        .collect();
    let (scope, query) = match combine(scope, query) {
        Ok(valid) => valid,
        Err(errors) => return Ok(view.invalid(errors)),
    };
    let page = state
        .db(move |conn| Ok(audit_view::load_page(conn, &scope, &query)?))
        .await?;
    Ok(render_status(StatusCode::OK, &view.with_page(page)))
}

/// GET /admin/audit.csv
pub async fn platform_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
    current: CurrentUser,
) -> AppResult<HttpResponse> {
    require_platform(&current)?;
    let params = AuditParams::from_query(req.query_string());
    let (scope, query) = {
        let params = params.clone();
        state
            .db(move |conn| {
                Ok((
                    platform_scope(conn, &params.org)?,
                    audit_view::validate(&params),
                ))
            })
            .await?
    };
    match combine(scope, query) {
        Ok((scope, query)) => Ok(csv_export(
            state.pool.clone(),
            scope,
            query.filter,
            "platform",
        )),
        // A download link is built from a page that validated; anything else was typed.
        Err(errors) => Err(AppError::BadRequest(
            ["org", "actor", "action", "target", "from", "to", "cursor"]
                .iter()
                .find_map(|field| errors.get(field))
                .unwrap_or("These filters are not valid.")
                .to_string(),
        )),
    }
}

fn require_platform(current: &CurrentUser) -> AppResult<()> {
    if current.is_platform_operator() {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

/// The platform page's organization filter: empty for all, `-` for events outside any
/// organization, else a slug that must exist.
fn platform_scope(
    conn: &mut crate::db::DbConnection,
    org: &str,
) -> Result<Result<Scope, &'static str>, AppError> {
    let org = org.trim();
    Ok(match org {
        "" => Ok(Scope::All),
        NO_ORG => Ok(Scope::Platform),
        slug => match organizations::find_by_slug(conn, slug)? {
            Some(org) => Ok(Scope::Org(org.id)),
            None => Err("No organization has this slug."),
        },
    })
}

fn combine(
    scope: Result<Scope, &'static str>,
    query: Result<AuditQuery, FieldErrors>,
) -> Result<(Scope, AuditQuery), FieldErrors> {
    match (scope, query) {
        (Ok(scope), Ok(query)) => Ok((scope, query)),
        (scope, query) => {
            let mut errors = query.err().unwrap_or_default();
            if let Err(message) = scope {
                errors.add("org", message);
            }
            Err(errors)
        }
    }
}

/// Streams every matching event as CSV, newest first, fetching `EXPORT_BATCH` rows at
/// a time by keyset: memory stays flat however many rows match, and a database
/// connection is held only while a batch is read.
fn csv_export(pool: DbPool, scope: Scope, filter: Filter, name: &str) -> HttpResponse {
    struct Export {
        pool: DbPool,
        scope: Scope,
        filter: Filter,
        cursor: Option<Cursor>,
        first: bool,
    }

    fn next_batch(mut export: Export) -> anyhow::Result<(Bytes, Option<Export>)> {
        let mut conn = export.pool.get()?;
        let rows = audit_events::page(
            &mut conn,
            &export.scope,
            &export.filter,
            export.cursor.as_ref(),
            EXPORT_BATCH,
        )?;
        let slugs = audit_view::org_slugs(&mut conn, &rows)?;
        drop(conn);
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::with_capacity(rows.len() * 320 + 256));
        if export.first {
            out.write_record(audit_view::CSV_HEADER)?;
            export.first = false;
        }
        for row in &rows {
            out.write_record(audit_view::csv_record(
                row,
                audit_view::slug_of(&slugs, row),
            ))?;
        }
        let bytes = out
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
        let more = rows.len() as i64 == EXPORT_BATCH;
        export.cursor = rows.last().map(Cursor::after);
        Ok((Bytes::from(bytes), more.then_some(export)))
    }

    let start = Export {
        pool,
        scope,
        filter,
        cursor: None,
        first: true,
    };
    let body = futures_util::stream::unfold(Some(start), |state| async move {
        let export = state?;
        match web::block(move || next_batch(export)).await {
            Ok(Ok((bytes, rest))) => Some((Ok::<_, actix_web::Error>(bytes), rest)),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "audit export failed part-way");
                Some((
                    Err(actix_web::error::ErrorInternalServerError("export failed")),
                    None,
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "audit export failed part-way");
                Some((
                    Err(actix_web::error::ErrorInternalServerError("export failed")),
                    None,
                ))
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
