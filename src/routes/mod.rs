//! Thin handlers: extract, authorize, run the domain rule in `web::block`, render.

pub mod audit;
pub mod auth;
pub mod health;
pub mod orgs;
pub mod setup;
pub mod users;

use actix_web::web;

use crate::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(orgs::root))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/{name}", web::get().to(crate::web::assets::serve))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/setup/{token}", web::get().to(setup::setup_form))
        .route("/setup/{token}", web::post().to(setup::complete))
        .route("/orgs", web::get().to(orgs::list_page))
        .route("/orgs/{org}/users", web::get().to(users::list_page))
        .route("/orgs/{org}/audit", web::get().to(audit::org_page))
        .route("/orgs/{org}/audit.csv", web::get().to(audit::org_csv))
        .route("/admin/audit", web::get().to(audit::platform_page))
        .route("/admin/audit.csv", web::get().to(audit::platform_csv))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}
