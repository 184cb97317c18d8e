use actix_session::Session;
use actix_web::HttpResponse;
use askama::Template;

use crate::error::AppResult;
use crate::web::extract::CurrentUser;
use crate::web::layout::Layout;
use crate::web::{render, see_other};

pub async fn root() -> HttpResponse {
    see_other("/orgs")
}

#[derive(Template)]
#[template(path = "orgs/list.html")]
struct OrgListPage {
    layout: Layout,
}

/// The caller's organizations; with exactly one there is nothing to choose.
pub async fn list_page(session: Session, current: CurrentUser) -> AppResult<HttpResponse> {
    if let [only] = current.orgs.as_slice() {
        return Ok(see_other(&format!("/orgs/{}/users", only.slug)));
    }
    Ok(render(&OrgListPage {
        layout: Layout::signed_in(&session, &current, "Your organizations"),
    }))
}
