//! The discovery endpoints (RFC 7644 §4): what this server supports, for IdPs and for
//! conformance tools. They need a token like everything else here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::error::{ApiError, ApiResult};
use super::extract::Caller;
use super::json_response;
use crate::domain::scim::discovery;

pub async fn service_provider_config(caller: Caller) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &discovery::service_provider_config(&caller.0.base),
    )
}

pub async fn resource_types(caller: Caller) -> HttpResponse {
    json_response(StatusCode::OK, &discovery::resource_types(&caller.0.base))
}

pub async fn resource_type(_: Caller, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let found = discovery::resource_type(&id).ok_or_else(ApiError::not_found)?;
    Ok(json_response(StatusCode::OK, &found))
}

pub async fn schemas(_: Caller) -> HttpResponse {
    json_response(StatusCode::OK, &discovery::schemas())
}

pub async fn schema(_: Caller, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let found = discovery::schema(&id).ok_or_else(ApiError::not_found)?;
    Ok(json_response(StatusCode::OK, &found))
}
