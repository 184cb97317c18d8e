use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::current_user::OrgCtx;
use crate::db::memberships::{self, MemberRow};
use crate::domain::roles::Permission;
use crate::error::AppResult;
use crate::web::layout::Layout;
use crate::web::{AppState, render};

#[derive(Template)]
#[template(path = "users/list.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<MemberRow>,
}

pub async fn list_page(
    state: web::Data<AppState>,
    session: Session,
    ctx: OrgCtx,
) -> AppResult<HttpResponse> {
    ctx.require(Permission::UsersRead)?;
    let org_id = ctx.org.id.clone();
    let rows = state
        .db(move |conn| Ok(memberships::first_page(conn, &org_id, 50)?))
        .await?;
    Ok(render(&UsersPage {
        layout: Layout::in_org(&session, &ctx, "Users", "users"),
        rows,
    }))
}
