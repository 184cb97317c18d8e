//! `/metrics`: the request counters in Prometheus' text format.

use actix_web::{HttpResponse, web};

use crate::web::metrics::Metrics;

pub async fn metrics_page(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
