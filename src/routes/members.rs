//! The member picker's search: at most 20 active members of the organization, as an
//! HTML fragment of choices (what static/app.js puts in the page) or as JSON.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::member_picker::{self, Match};
use crate::domain::roles::Permission;
use crate::error::AppResult;
use crate::web::extract::OrgCtx;
use crate::web::form::Query;
use crate::web::{AppState, render};

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    /// The form field the fragment's radio buttons fill (`user_id`, `owner_id`, ...).
    field: Option<String>,
}

#[derive(Template)]
#[template(path = "members/matches.html")]
struct MatchesFragment {
    field: &'static str,
    matches: Vec<Match>,
}

/// Whether the caller asked for JSON rather than the HTML fragment.
fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

pub async fn search(
    state: web::Data<AppState>,
    ctx: OrgCtx,
    query: Query<SearchQuery>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersRead)?;
    let query = query.into_inner();
    let (actor, q) = (ctx.actor(), query.q.unwrap_or_default());
    // Through the pool: a search may read much of the organization (`web::AppState::read`).
    let matches = state
        .db(move |conn| Ok(member_picker::search(conn, &actor, &q, &[])?))
        .await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(matches));
    }
    let field = member_picker::field_name(query.field.as_deref());
    Ok(render(&MatchesFragment { field, matches }))
}
