//! The SCIM 2.0 server (RFC 7643/7644) at `/scim/v2`: JSON only, bearer tokens, no
//! cookies or CSRF (the session, CSRF and form-input layers pass `/scim/` by; see
//! `web::API_PREFIX`). The token's organization is the tenant. Handlers read the token
//! and the body, run one `domain::provisioning` function and answer its resource.

pub mod discovery;
pub mod error;
pub mod extract;
pub mod groups;
pub mod query;
pub mod users;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use error::{ApiError, CONTENT_TYPE};

pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// `web::input_guard`'s check of the path and query string, answered as a SCIM error
/// instead of the portal's page.
async fn refuse_hostile_addresses(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::ResponseError;
    match crate::web::input_guard::address_refusal(&req, "request's address") {
        Some(why) => Ok(req.into_response(ApiError::syntax(why).error_response())),
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use discovery as d;
    let other = || web::route().to(method_not_allowed);
    cfg.service(
        web::scope(crate::web::API_SCOPE)
            .wrap(actix_web::middleware::from_fn(refuse_hostile_addresses))
            // A query string serde cannot read (`count` twice, say) is a SCIM error too.
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::syntax(e.to_string()).into()),
            )
            .route(
                "/ServiceProviderConfig",
                web::get().to(d::service_provider_config),
            )
            .route("/ServiceProviderConfig", other())
            .route("/ResourceTypes", web::get().to(d::resource_types))
            .route("/ResourceTypes", other())
            .route("/ResourceTypes/{id}", web::get().to(d::resource_type))
            .route("/ResourceTypes/{id}", other())
            .route("/Schemas", web::get().to(d::schemas))
            .route("/Schemas", other())
            .route("/Schemas/{id}", web::get().to(d::schema))
            .route("/Schemas/{id}", other())
            .route("/.search", web::post().to(users::search_root))
            .route("/.search", other())
            .route("/Users", web::get().to(users::list))
            .route("/Users", web::post().to(users::create))
            .route("/Users", other())
            .route("/Users/.search", web::post().to(users::search))
            .route("/Users/.search", other())
            .route("/Users/{id}", web::get().to(users::get))
            .route("/Users/{id}", web::put().to(users::replace))
            .route("/Users/{id}", web::patch().to(users::patch))
            .route("/Users/{id}", web::delete().to(users::delete))
            .route("/Users/{id}", other())
            .route("/Groups", web::get().to(groups::list))
            .route("/Groups", web::post().to(groups::create))
            .route("/Groups", other())
            .route("/Groups/.search", web::post().to(groups::search))
            .route("/Groups/.search", other())
            .route("/Groups/{id}", web::get().to(groups::get))
            .route("/Groups/{id}", web::put().to(groups::replace))
            .route("/Groups/{id}", web::patch().to(groups::patch))
            .route("/Groups/{id}", web::delete().to(groups::delete))
            .route("/Groups/{id}", other())
            .default_service(web::to(not_found)),
    );
}

/// A method the endpoint does not serve (RFC 7644 §3.2: 405, not 404).
async fn method_not_allowed() -> error::ApiResult<HttpResponse> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "This endpoint does not support that method.",
    ))
}

async fn not_found() -> error::ApiResult<HttpResponse> {
    Err(ApiError::not_found())
}

/// A JSON answer as SCIM's media type.
pub fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(CONTENT_TYPE)
        .body(body.to_string())
}

/// One resource, with its version as `ETag` and, when just created, its `Location`.
pub fn resource_response(status: StatusCode, resource: &Value, projected: &Value) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.content_type(CONTENT_TYPE);
    if let Some(version) = resource["meta"]["version"].as_str() {
        response.insert_header((header::ETAG, version));
    }
    if status == StatusCode::CREATED
        && let Some(location) = resource["meta"]["location"].as_str()
    {
        response.insert_header((header::LOCATION, location));
    }
    response.body(projected.to_string())
}

pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_URN],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// 204 No Content for a resource that still exists, with its version as `ETag`.
pub fn no_content_at(resource: &Value) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    if let Some(version) = resource["meta"]["version"].as_str() {
        response.insert_header((header::ETAG, version));
    }
    response.finish()
}
