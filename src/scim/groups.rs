//! `/scim/v2/Groups`: the organization's groups.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::ApiResult;
use super::extract::{Caller, JsonBody};
use super::query::{ListQuery, Projection, RawQuery};
use super::users::if_match;
use super::{list_response, no_content, no_content_at, resource_response};
use crate::domain::provisioning::groups::{self, Patched};
use crate::domain::scim::patch::parse_patch;
use crate::web::AppState;

async fn run_list(state: &AppState, caller: Caller, query: ListQuery) -> ApiResult<HttpResponse> {
    let call = caller.0;
    let (filter, start, count) = (query.filter, query.start_index, query.count);
    let members = query.projection.group_members();
    let (total, found) = state
        .db(move |conn| {
            Ok(groups::list(
                conn,
                &call,
                filter.as_ref(),
                start,
                count,
                members,
            ))
        })
        .await??;
    let page = found.iter().map(|r| query.projection.apply(r)).collect();
    Ok(list_response(total, start, page))
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    raw: web::Query<RawQuery>,
) -> ApiResult<HttpResponse> {
    run_list(&state, caller, ListQuery::read(&raw)?).await
}

pub async fn search(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    run_list(&state, caller, ListQuery::from_search(&body.0)?).await
}

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    raw: web::Query<RawQuery>,
) -> ApiResult<HttpResponse> {
    let (call, id) = (caller.0, id.into_inner());
    let projection = ListQuery::read(&raw)?.projection;
    let members = projection.group_members();
    let found = state
        .db(move |conn| Ok(groups::get(conn, &call, &id, members)))
        .await??;
    let projected = projection.apply(&found);
    Ok(resource_response(StatusCode::OK, &found, &projected))
}

pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let call = caller.writer()?;
    let made = state
        .db(move |conn| Ok(groups::create(conn, &call, &body.0)))
        .await??;
    Ok(resource_response(StatusCode::CREATED, &made, &made))
}

pub async fn replace(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let (call, id, version) = (caller.writer()?, id.into_inner(), if_match(&req));
    let done = state
        .db(move |conn| {
            Ok(groups::replace(
                conn,
                &call,
                &id,
                version.as_deref(),
                &body.0,
            ))
        })
        .await??;
    Ok(resource_response(StatusCode::OK, &done, &done))
}

pub async fn patch(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody,
) -> ApiResult<HttpResponse> {
    let (call, id, version) = (caller.writer()?, id.into_inner(), if_match(&req));
    let ops = parse_patch(&body.0).map_err(crate::domain::provisioning::ScimError::from)?;
    let done = state
        .db(move |conn| Ok(groups::patch(conn, &call, &id, version.as_deref(), &ops)))
        .await??;
    Ok(match done {
        Patched::Whole(group) => {
            resource_response(StatusCode::OK, &group, &Projection::default().apply(&group))
        }
        // Its version still goes out, so a client chaining `If-Match` need not read it.
        Patched::MembersLeftOut(group) => no_content_at(&group),
    })
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (call, id, version) = (caller.writer()?, id.into_inner(), if_match(&req));
    state
        .db(move |conn| Ok(groups::delete(conn, &call, &id, version.as_deref())))
        .await??;
    Ok(no_content())
}
