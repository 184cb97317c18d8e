//! Extractors for the signed-in user and for their membership in the organization named
//! by the path.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};

use super::keys;
use crate::audit::Origin;
use crate::db::memberships::{self, Membership};
use crate::db::organizations::Organization;
use crate::db::roles::Role;
use crate::db::users::{self, User};
use crate::domain::roles::{Permission, PermissionSet, effective_permissions};
use crate::error::AppError;
use crate::web::AppState;
use crate::web::middleware::RequestId;

/// A signed-in, active account and the organizations it belongs to (for the switcher).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub orgs: Vec<Organization>,
}

fn state(req: &HttpRequest) -> web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone()
}

fn next_of(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into())
    } else {
        "/orgs".into()
    }
}

impl CurrentUser {
    async fn load(req: &HttpRequest) -> Result<Option<CurrentUser>, AppError> {
        if let Some(cached) = req.extensions().get::<CurrentUser>() {
            return Ok(Some(cached.clone()));
        }
        let session = req.get_session();
        let Ok(Some(user_id)) = session.get::<String>(keys::USER_ID) else {
            return Ok(None);
        };
        let loaded = state(req)
            .db(move |conn| {
                let Some(user) = users::find(conn, &user_id)? else {
                    return Ok(None);
                };
                if !user.is_active() {
                    return Ok(None);
                }
                let orgs = memberships::orgs_of_user(conn, &user.id)?;
                Ok(Some(CurrentUser { user, orgs }))
            })
            .await?;
        match &loaded {
            Some(current) => {
                req.extensions_mut().insert(current.clone());
            }
            None => session.purge(),
        }
        Ok(loaded)
    }

    pub fn is_platform_admin(&self) -> bool {
        self.user.platform_role == "admin"
    }

    pub fn is_platform_operator(&self) -> bool {
        matches!(self.user.platform_role.as_str(), "admin" | "operator")
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            CurrentUser::load(&req)
                .await?
                .ok_or_else(|| AppError::LoginRequired {
                    next: next_of(&req),
                })
        })
    }
}

/// `Some` when someone is signed in; pages such as /login use it to skip themselves.
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequest for MaybeUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeUser(CurrentUser::load(&req).await?)) })
    }
}

/// The caller's active membership in `/orgs/{org}/...`. An unknown organization and one
/// the caller is not an active member of both answer 404, so neither leaks.
#[derive(Debug, Clone)]
pub struct OrgCtx {
    pub current: CurrentUser,
    pub org: Organization,
    pub membership: Membership,
    pub role: Role,
    pub perms: PermissionSet,
    /// The highest rank among the member's role and the roles their groups grant.
    pub rank: i64,
}

impl OrgCtx {
    pub fn user(&self) -> &User {
        &self.current.user
    }

    /// Who is acting, as the domain rules see them.
    pub fn actor(&self) -> crate::domain::members::Actor {
        crate::domain::members::Actor {
            user_id: self.current.user.id.clone(),
            email: self.current.user.email.clone(),
            org_id: self.org.id.clone(),
            rank: self.rank,
            perms: self.perms,
        }
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.perms.contains(permission)
    }

    /// Refuses with 403 unless the member holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }
}

impl FromRequest for OrgCtx {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let current =
                CurrentUser::load(&req)
                    .await?
                    .ok_or_else(|| AppError::LoginRequired {
                        next: next_of(&req),
                    })?;
            let slug = req
                .match_info()
                .get("org")
                .ok_or(AppError::NotFound)?
                .to_string();
            let user_id = current.user.id.clone();
            let found = state(&req)
                .db(move |conn| {
                    let Some((org, membership, role)) =
                        memberships::find_active_by_slug(conn, &slug, &user_id)?
                    else {
                        return Ok(None);
                    };
                    let group_roles = memberships::group_roles(conn, &org.id, &user_id)?;
                    let perms = effective_permissions(
                        &role.permissions,
                        group_roles.iter().map(|r| r.permissions.as_str()),
                        [],
                    );
                    let rank = group_roles.iter().map(|r| r.rank).fold(role.rank, i64::max);
                    memberships::touch(conn, &org.id, &user_id)?;
                    Ok(Some((org, membership, role, perms, rank)))
                })
                .await?;
            let (org, membership, role, perms, rank) = found.ok_or(AppError::NotFound)?;
            Ok(OrgCtx {
                current,
                org,
                membership,
                role,
                perms,
                rank,
            })
        })
    }
}

/// The client address, honouring X-Forwarded-For only when configured to.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> String {
    if trust_proxy && let Some(ip) = req.connection_info().realip_remote_addr() {
        return ip.to_string();
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl FromRequest for Origin {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trust_proxy = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.trust_proxy)
            .unwrap_or(false);
        std::future::ready(Ok(Origin {
            ip: Some(client_ip(req, trust_proxy)),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        }))
    }
}

/// Signs the session in as `user`: a new session id (so a planted cookie is worthless),
/// a new CSRF token, and the client's address and browser for the sessions list.
pub fn sign_in(
    session: &Session,
    req: &HttpRequest,
    user: &User,
    trust_proxy: bool,
) -> Result<(), AppError> {
    session.renew();
    let to_err = |e: actix_session::SessionInsertError| AppError::Internal(anyhow::anyhow!("{e}"));
    session.insert(keys::USER_ID, &user.id).map_err(to_err)?;
    session
        .insert(keys::CSRF, crate::domain::tokens::generate())
        .map_err(to_err)?;
    session
        .insert(keys::IP, client_ip(req, trust_proxy))
        .map_err(to_err)?;
    let agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    session.insert(keys::USER_AGENT, agent).map_err(to_err)?;
    Ok(())
}
