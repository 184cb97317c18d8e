//! Thin handlers: extract, authorize, run the domain rule on the blocking pool
//! (`db::off_thread`), render.

pub mod account;
pub mod admin;
pub mod api_tokens;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod groups;
pub mod health;
pub mod invitations;
pub mod members;
pub mod metrics;
pub mod orgs;
pub mod pools;
pub mod reset;
pub mod roles;
pub mod settings;
pub mod setup;
pub mod two_factor;
pub mod users;

use actix_web::web;

use crate::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(orgs::root))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::metrics_page))
        .route("/static/{name}", web::get().to(assets::serve))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/login/2fa", web::get().to(two_factor::login_2fa_form))
        .route("/login/2fa", web::post().to(two_factor::login_2fa))
        .route("/account/2fa", web::get().to(two_factor::two_factor_page))
        .route("/account/2fa", web::post().to(two_factor::enable))
        .route("/account/2fa/disable", web::post().to(two_factor::disable))
        .route(
            "/account/2fa/recovery-codes",
            web::post().to(two_factor::regenerate_recovery_codes),
        )
        .route("/account", web::get().to(account::account_page))
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route(
            "/account/sessions/end-others",
            web::post().to(account::end_other_sessions),
        )
        .route(
            "/account/sessions/{id}/end",
            web::post().to(account::end_session),
        )
        .route(
            "/account/signin-alerts",
            web::post().to(account::set_signin_alerts),
        )
        .route("/setup/{token}", web::get().to(setup::setup_form))
        .route("/setup/{token}", web::post().to(setup::complete))
        .route("/forgot-password", web::get().to(reset::forgot_form))
        .route("/forgot-password", web::post().to(reset::request_reset))
        .route("/reset/{token}", web::get().to(reset::reset_form))
        .route("/reset/{token}", web::post().to(reset::reset))
        .route("/orgs", web::get().to(orgs::list_page))
        .route("/orgs/{org}/users", web::get().to(users::list_page))
        .route("/orgs/{org}/members/search", web::get().to(members::search))
        .route("/orgs/{org}/users/bulk", web::get().to(users::bulk_confirm))
        .route("/orgs/{org}/users/bulk", web::post().to(users::bulk))
        .route("/orgs/{org}/users/{id}", web::get().to(users::profile_page))
        .route("/orgs/{org}/users/{id}", web::post().to(users::update))
        .route(
            "/orgs/{org}/users/{id}/groups",
            web::get().to(users::groups_page),
        )
        .route(
            "/orgs/{org}/users/{id}/groups",
            web::post().to(users::add_to_group),
        )
        .route(
            "/orgs/{org}/users/{id}/pools",
            web::get().to(users::pools_page),
        )
        .route(
            "/orgs/{org}/users/{id}/pools",
            web::post().to(users::add_to_pool),
        )
        .route(
            "/orgs/{org}/users/{id}/activity",
            web::get().to(users::activity_page),
        )
        .route(
            "/orgs/{org}/users/{id}/deactivate",
            web::get().to(users::deactivate_form),
        )
        .route(
            "/orgs/{org}/users/{id}/deactivate",
            web::post().to(users::deactivate),
        )
        .route(
            "/orgs/{org}/users/{id}/role",
            web::post().to(users::change_role),
        )
        .route(
            "/orgs/{org}/users/{id}/activate",
            web::post().to(users::activate),
        )
        .route(
            "/orgs/{org}/users/{id}/make-admin",
            web::get().to(users::make_admin_form),
        )
        .route(
            "/orgs/{org}/users/{id}/make-admin",
            web::post().to(users::make_admin),
        )
        .route(
            "/orgs/{org}/users/{id}/2fa/reset",
            web::get().to(users::two_factor_reset_form),
        )
        .route(
            "/orgs/{org}/users/{id}/2fa/reset",
            web::post().to(users::reset_two_factor),
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
            "/orgs/{org}/invitations/sent",
            web::get().to(invitations::sent_page),
        )
        .route(
            "/orgs/{org}/invitations/{id}/resend",
            web::post().to(invitations::resend),
        )
        .route(
            "/orgs/{org}/invitations/{id}/cancel",
            web::get().to(invitations::cancel_form),
        )
        .route(
            "/orgs/{org}/invitations/{id}/cancel",
            web::post().to(invitations::cancel),
        )
        .route("/invite/{token}", web::get().to(invitations::accept_form))
        .route("/invite/{token}", web::post().to(invitations::accept))
        .route("/orgs/{org}/roles", web::get().to(roles::list_page))
        .route("/orgs/{org}/roles", web::post().to(roles::create))
        .route("/orgs/{org}/roles/{id}", web::post().to(roles::update))
        .route(
            "/orgs/{org}/roles/{id}/delete",
            web::get().to(roles::delete_form),
        )
        .route(
            "/orgs/{org}/roles/{id}/delete",
            web::post().to(roles::delete),
        )
        .route(
            "/orgs/{org}/settings",
            web::get().to(settings::settings_page),
        )
        .route(
            "/orgs/{org}/settings/2fa",
            web::post().to(settings::set_two_factor),
        )
        .route(
            "/orgs/{org}/api-tokens",
            web::get().to(api_tokens::list_page),
        )
        .route("/orgs/{org}/api-tokens", web::post().to(api_tokens::create))
        .route(
            "/orgs/{org}/api-tokens/{id}/revoke",
            web::post().to(api_tokens::revoke),
        )
        .route("/orgs/{org}/groups", web::get().to(groups::list_page))
        .route("/orgs/{org}/groups", web::post().to(groups::create))
        .route("/orgs/{org}/groups/{id}", web::get().to(groups::show_page))
        .route("/orgs/{org}/groups/{id}", web::post().to(groups::update))
        .route(
            "/orgs/{org}/groups/{id}/delete",
            web::get().to(groups::delete_form),
        )
        .route(
            "/orgs/{org}/groups/{id}/delete",
            web::post().to(groups::delete),
        )
        .route(
            "/orgs/{org}/groups/{id}/members",
            web::post().to(groups::add_member),
        )
        .route(
            "/orgs/{org}/groups/{id}/members/{user_id}/remove",
            web::post().to(groups::remove_member),
        )
        .route("/orgs/{org}/pools", web::get().to(pools::list_page))
        .route("/orgs/{org}/pools", web::post().to(pools::create))
        .route("/orgs/{org}/pools/{id}", web::get().to(pools::show_page))
        .route("/orgs/{org}/pools/{id}", web::post().to(pools::update))
        .route(
            "/orgs/{org}/pools/{id}/delete",
            web::get().to(pools::delete_form),
        )
        .route(
            "/orgs/{org}/pools/{id}/delete",
            web::post().to(pools::delete),
        )
        .route(
            "/orgs/{org}/pools/{id}/members",
            web::post().to(pools::add_member),
        )
        .route(
            "/orgs/{org}/pools/{id}/members/{user_id}/remove",
            web::post().to(pools::remove_member),
        )
        .route("/admin/orgs", web::get().to(admin::orgs_page))
        .route("/admin/orgs", web::post().to(admin::create_org))
        .route("/admin/users", web::get().to(admin::users_page))
        .route("/admin/users", web::post().to(admin::create_user))
        .route("/admin/users/{id}", web::get().to(admin::user_page))
        .route(
            "/admin/users/{id}/memberships/{org}/activate",
            web::post().to(admin::activate_membership),
        )
        .route(
            "/admin/users/{id}/memberships/{org}/role",
            web::post().to(admin::set_membership_role),
        )
        .route(
            "/admin/users/{id}/sessions/end",
            web::post().to(admin::end_sessions),
        )
        .route(
            "/admin/users/{id}/2fa/reset",
            web::get().to(admin::two_factor_reset_form),
        )
        .route(
            "/admin/users/{id}/2fa/reset",
            web::post().to(admin::reset_two_factor),
        )
        .route(
            "/admin/users/{id}/disable",
            web::get().to(admin::disable_form),
        )
        .route("/admin/users/{id}/disable", web::post().to(admin::disable))
        .route("/admin/users/{id}/enable", web::post().to(admin::enable))
        .route(
            "/admin/users/{id}/memberships",
            web::post().to(admin::add_membership),
        )
        .route("/orgs/{org}/audit", web::get().to(audit::org_page))
        .route("/orgs/{org}/audit.csv", web::get().to(audit::org_csv))
        .route("/admin/audit", web::get().to(audit::platform_page))
        .route("/admin/audit.csv", web::get().to(audit::platform_csv))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}
