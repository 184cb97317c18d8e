//! Thin handlers: extract, authorize, run the domain rule in `web::block`, render.

pub mod auth;
pub mod health;
pub mod invitations;
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
        .route("/orgs/{org}/users/bulk", web::post().to(users::bulk))
        .route("/orgs/{org}/users/{id}", web::get().to(users::profile_page))
        .route("/orgs/{org}/users/{id}", web::post().to(users::update))
        .route(
            "/orgs/{org}/users/{id}/groups",
            web::get().to(users::groups_page),
        )
        .route(
            "/orgs/{org}/users/{id}/pools",
            web::get().to(users::pools_page),
        )
        .route(
            "/orgs/{org}/users/{id}/activity",
            web::get().to(users::activity_page),
        )
        .route(
            "/orgs/{org}/users/{id}/deactivate",
            web::post().to(users::deactivate),
        )
        .route(
            "/orgs/{org}/users/{id}/activate",
            web::post().to(users::activate),
        )
        .route(
            "/orgs/{org}/users/{id}/make-admin",
            web::post().to(users::make_admin),
        )
        .route(
            "/orgs/{org}/users/{id}/delete",
            web::get().to(users::delete_form),
        )
        .route(
            "/orgs/{org}/users/{id}/delete",
            web::post().to(users::remove),
        )
        .route(
            "/orgs/{org}/invitations",
            web::get().to(invitations::list_page),
        )
        .route(
            "/orgs/{org}/invitations",
            web::post().to(invitations::create),
        )
        .route(
            "/orgs/{org}/invitations/new",
            web::get().to(invitations::new_form),
        )
        .route(
            "/orgs/{org}/invitations/{id}/resend",
            web::post().to(invitations::resend),
        )
        .route(
            "/orgs/{org}/invitations/{id}/cancel",
            web::post().to(invitations::cancel),
        )
        .route("/invite/{token}", web::get().to(invitations::accept_form))
        .route("/invite/{token}", web::post().to(invitations::accept))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}
