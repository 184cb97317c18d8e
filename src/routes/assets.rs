//! `/static/{name}`: the compiled-in CSS and JavaScript.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::web::assets;

pub async fn serve(path: web::Path<String>) -> HttpResponse {
    match assets::find(path.as_str()) {
        // The URL carries the content hash (`assets::url`), so it may be cached for good.
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.body),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found"),
    }
}
