//! `/static/{name}`: the compiled-in CSS and JavaScript.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::web::assets;

#[derive(Deserialize)]
pub struct Version {
    v: Option<String>,
}

pub async fn serve(path: web::Path<String>, version: web::Query<Version>) -> HttpResponse {
    let Some((asset, current)) = assets::find(path.as_str()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    };
    // The URL carries the content hash (`assets::url`), so it may be cached for good; but
    // only under this build's hash. During a rolling upgrade a page from a newer instance
    // may ask an older one for the newer hash: its own bytes, kept a year under that URL,
    // would leave the new pages unstyled until the next change.
    let cache = if version.v.as_deref() == Some(current) {
        "public, max-age=31536000, immutable"
    } else {
        "no-store"
    };
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, cache))
        .body(asset.body)
}
