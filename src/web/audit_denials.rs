//! Records every refusal (403) of an organization or platform administration request
//! as an `access.denied` audit event, so probing for what one may not do leaves a trace.
//!
//! A GET another site sent the browser to (`Sec-Fetch-Site: cross-site`) is marked so and
//! recorded once an hour per route: any page could otherwise make a signed-in member
//! "probe" admin pages, over and over, in their name. Any other refusal is recorded up to
//! [`PER_ROUTE_AN_HOUR`] times an hour per account and route, the last of them saying
//! that more are not: the trail is insert-only, and a signed-in account could otherwise
//! grow it at its own request rate. Probing leaves its trace long before that.
//!
//! It sits inside the CSRF guard: a form refused for a missing or foreign token never
//! reached a handler and is not a permission decision, so it is not recorded here.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use crate::audit::{self, Event, Origin};
use crate::db::{audit_events, organizations};
use crate::web::AppState;
use crate::web::extract::{CurrentUser, client_ip};
use crate::web::middleware::RequestId;

/// Refusals of one route recorded an hour for one account (and method).
pub const PER_ROUTE_AN_HOUR: i64 = 20;

pub async fn audit_denials(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let res = next.call(req).await?;
    if res.status() != StatusCode::FORBIDDEN {
        return Ok(res);
    }
    let request = res.request();
    // The route's pattern, not the raw path: actix routes on the decoded path, so
    // `/%6Frgs/...` reaches an organization's page too. The pattern, never the path, is
    // also what is recorded: ids are fine, but a path could carry anything.
    let Some(route) = request.match_pattern() else {
        return Ok(res);
    };
    let in_org = route.starts_with("/orgs/");
    if !(in_org || route.starts_with("/admin")) {
        return Ok(res);
    }
    // Another site may have sent the browser here: the refusal may be that site's doing,
    // not the member's probing, and any page could make it write events in their name. So
    // it says so, and is recorded once an hour per route. Still recorded: a script sends
    // the header as it likes, and its probing must leave a trace.
    let cross_site = request.method() == actix_web::http::Method::GET
        && request
            .headers()
            .get("sec-fetch-site")
            // A sibling subdomain's page sends `same-site`: another site's doing too.
            .is_some_and(|site| matches!(site.as_bytes(), b"cross-site" | b"same-site"));
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(res);
    };
    // The extractors leave the signed-in user here; nobody signed in is never a 403.
    let Some(current) = request.extensions().get::<CurrentUser>().cloned() else {
        return Ok(res);
    };
    let origin = Origin {
        ip: Some(client_ip(request, &state.settings)),
        request_id: request.extensions().get::<RequestId>().map(|r| r.0.clone()),
    };
    let method = request.method().to_string();
    // Only an organization's own pages write into its trail: a platform route names an
    // organization too, and anyone signed in could fill that trail through it.
    let slug = in_org
        .then(|| request.match_info().get("org").map(str::to_string))
        .flatten();
    let user = current.user;
    let recorded = state
        .db(move |conn| {
            // Its own write: the refused change never happened, so there is no
            // transaction of its to join.
            let org = match &slug {
                Some(slug) => organizations::find_by_slug(conn, slug)?,
                None => None,
            };
            let mut details = serde_json::json!({ "method": method, "route": route });
            let since = crate::db::now() - chrono::Duration::hours(1);
            let org_id = org.as_ref().map(|o| o.id.as_str());
            let action = "access.denied";
            if cross_site {
                details["sent_by_another_site"] = true.into();
                let text = details.to_string();
                if audit_events::recorded_by(conn, org_id, &user.email, action, &text, since)? {
                    return Ok(());
                }
            } else {
                let plain = details.to_string();
                let mut last = details.clone();
                last["later_refusals_this_hour"] = "not recorded".into();
                let last = last.to_string();
                let cap = PER_ROUTE_AN_HOUR;
                let texts = [plain.as_str(), last.as_str()];
                let n = audit_events::count_recorded_by(
                    conn,
                    org_id,
                    &user.email,
                    action,
                    &texts,
                    since,
                    cap,
                )?;
                if n >= cap {
                    return Ok(());
                }
                if n == cap - 1 {
                    details["later_refusals_this_hour"] = "not recorded".into();
                }
            }
            let mut event = Event::new("access.denied", &origin)
                .actor(&user.id, &user.email)
                .details(details);
            if let Some(org) = &org {
                event = event.org(&org.id);
            }
            audit::record(conn, &event)?;
            Ok(())
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not record a refused request in the audit trail");
    }
    Ok(res)
}
