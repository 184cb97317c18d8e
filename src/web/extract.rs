//! Extractors for the signed-in user and for their membership in the organization named
//! by the path.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};

use crate::audit::Origin;
use crate::auth::client_ip::resolve_client_ip;
use crate::auth::keys;
use crate::auth::password::stamp_of;
use crate::config::{ProxyHeader, Settings};
use crate::db::DbConnection;
use crate::db::memberships::{self, Membership};
use crate::db::organizations::Organization;
use crate::db::roles::Role;
use crate::db::users::{self, User};
use crate::domain::policy::{self, Standing};
use crate::domain::roles::{Permission, PermissionSet};
use crate::domain::two_factor_policy::{self, Demand};
use crate::domain::{expiry, timefmt};
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
        let Some((user_id, credential)) = signed_in_as(&session) else {
            return Ok(None);
        };
        let loaded = state(req)
            .read(move |conn| CurrentUser::find(conn, &user_id, &credential))
            .await?;
        CurrentUser::remember(req, &session, &loaded);
        Ok(loaded)
    }

    /// The active account `user_id` names, with its organizations, while its password is
    /// still the one the session was signed in with.
    fn find(
        conn: &mut DbConnection,
        user_id: &str,
        credential: &str,
    ) -> Result<Option<CurrentUser>, AppError> {
        let Some(user) = users::find(conn, user_id)?.filter(|u| still_signed_in(u, credential))
        else {
            return Ok(None);
        };
        let orgs = memberships::orgs_of_user(conn, &user.id)?;
        Ok(Some(CurrentUser { user, orgs }))
    }

    /// Keeps the signed-in user for the rest of the request, or ends a session whose
    /// account is gone or disabled.
    fn remember(req: &HttpRequest, session: &Session, loaded: &Option<CurrentUser>) {
        match loaded {
            Some(current) => {
                if matches!(session.get::<String>(keys::CREDENTIAL), Ok(None)) {
                    let stamp = stamp_of(&current.user);
                    // Best effort: the next request tries again.
                    let _ = session.insert(keys::CREDENTIAL, stamp);
                }
                req.extensions_mut().insert(current.clone());
            }
            None => session.purge(),
        }
    }

    pub fn is_platform_admin(&self) -> bool {
        policy::platform_may_change(&self.user.platform_role)
    }

    pub fn is_platform_operator(&self) -> bool {
        policy::platform_may_read(&self.user.platform_role)
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
///
/// It is also the one place the organization's two-factor policy is enforced: every
/// organization page and form takes an `OrgCtx`, so a member held to enrolment past the
/// deadline (`domain::two_factor_policy::demand`) gets the enrolment requirement instead
/// of any of them, on GET and POST alike, and gets them back as soon as they enrol.
#[derive(Debug, Clone)]
pub struct OrgCtx {
    pub current: CurrentUser,
    pub org: Organization,
    pub membership: Membership,
    pub role: Role,
    pub perms: PermissionSet,
    /// The highest rank among the member's role and the roles their groups grant.
    pub rank: i64,
    /// What the organization's two-factor policy asks of the member (never `Blocked`:
    /// a blocked member gets no `OrgCtx`).
    pub two_factor: Demand,
    /// The Invited tab's badge ("3", "99+"), for members who may invite.
    pub pending_invitations: Option<String>,
    /// The app's clock as this request read it.
    pub now: chrono::NaiveDateTime,
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
            access_until: self.membership.access_until,
            now: self.now,
        }
    }

    /// The member's own last day of access here (`YYYY-MM-DD`), if it ends: forms that
    /// give access offer no later day.
    pub fn last_day_of_access(&self) -> Option<String> {
        Some(crate::domain::access_until::field_value(
            self.membership.access_until,
        ))
        .filter(|day| !day.is_empty())
    }

    /// What the member holds here, as the policy weighs it.
    pub fn standing(&self) -> Standing {
        Standing {
            perms: self.perms,
            rank: self.rank,
        }
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.standing().may(permission)
    }

    /// Records that the member was here (the Members list's "last active"): at most once
    /// a minute, since each is a turn at SQLite's one write lock.
    async fn touch(&self, state: &AppState) {
        let (org_id, user_id) = (self.org.id.clone(), self.current.user.id.clone());
        let touched = state
            .db(move |conn| Ok(memberships::touch(conn, &org_id, &user_id)?))
            .await;
        // Best effort: a full disk or a read-only database still serves reads.
        if let Err(e) = touched {
            tracing::warn!(error = %e, "could not record membership activity");
        }
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
            let login_required = || AppError::LoginRequired {
                next: next_of(&req),
            };
            let session = req.get_session();
            let mut arrival = find_org_ctx(&req, &session).await?;
            let ended_now = matches!(arrival, Arrival::AccessEnded { .. });
            if let Arrival::AccessEnded { org_id, user_id } = arrival {
                // Past their last day and the job has not come by yet: the calendar is
                // applied now, then the member is looked at again (still here only if
                // they are the last admin, whose day is dropped instead).
                let (now, origin) = (state(&req).clock.now(), origin_of(&req));
                state(&req)
                    .db(move |conn| {
                        Ok(expiry::expire_member(
                            conn, &org_id, &user_id, now, &origin,
                        )?)
                    })
                    .await?;
                arrival = find_org_ctx(&req, &session).await?;
            }
            match arrival {
                Arrival::Member(ctx) => {
                    if ctx.membership.touch_due() {
                        ctx.touch(&state(&req)).await;
                    }
                    CurrentUser::remember(&req, &session, &Some(ctx.current.clone()));
                    Ok(*ctx)
                }
                Arrival::NotMember(current) => {
                    CurrentUser::remember(&req, &session, &Some(current));
                    // They were a member until this request: say why, not "nothing here".
                    Err(match ended_now {
                        true => AppError::Forbidden(ACCESS_ENDED.into()),
                        false => AppError::NotFound,
                    })
                }
                // Ended twice over: another request reset the day in between; this one
                // is refused, the next is looked at afresh.
                Arrival::AccessEnded { .. } => Err(AppError::NotFound),
                Arrival::SignedOut => {
                    CurrentUser::remember(&req, &session, &None);
                    Err(login_required())
                }
                Arrival::Anonymous => Err(login_required()),
            }
        })
    }
}

const ACCESS_ENDED: &str = "Your access to this organization has ended: its last day is over. Ask one of its admins if you need it again.";

/// What an organization page finds of its caller.
enum Arrival {
    Member(Box<OrgCtx>),
    /// Signed in, but not an active member here.
    NotMember(CurrentUser),
    /// An active member whose last day is over.
    AccessEnded {
        org_id: String,
        user_id: String,
    },
    /// The session names an account that is gone, disabled or signed in with another
    /// password: it ends.
    SignedOut,
    /// Nobody signed in: the session (a CSRF token, a half-finished two-factor sign-in)
    /// stays as it is.
    Anonymous,
}

async fn find_org_ctx(req: &HttpRequest, session: &Session) -> Result<Arrival, AppError> {
    let slug = req
        .match_info()
        .get("org")
        .ok_or(AppError::NotFound)?
        .to_string();
    // The account and the membership in one trip to the database: each trip is a hop to
    // the blocking pool and a pooled connection taken and given back.
    let cached = req.extensions().get::<CurrentUser>().cloned();
    let (user_id, credential) = match &cached {
        Some(current) => (current.user.id.clone(), String::new()),
        None => match signed_in_as(session) {
            Some(signed_in) => signed_in,
            None => return Ok(Arrival::Anonymous),
        },
    };
    let now = state(req).clock.now();
    state(req)
        .read(move |conn| {
            let Some((current, here)) =
                standing_of(conn, cached.clone(), &user_id, &credential, &slug)?
            else {
                return Ok(Arrival::SignedOut);
            };
            let Some((org, membership, role, policy)) = here else {
                return Ok(Arrival::NotMember(current));
            };
            if membership.access_ended_by(now) {
                return Ok(Arrival::AccessEnded {
                    org_id: org.id,
                    user_id: user_id.clone(),
                });
            }
            let group_roles = memberships::group_roles(conn, &org.id, &user_id)?;
            let Standing { perms, rank } = Standing::of_member(&role, &group_roles);
            let demand = two_factor_policy::demand_for(
                conn,
                policy.as_ref(),
                &user_id,
                perms.is_admin(),
                now,
            )?;
            if let Demand::Blocked { deadline } = demand {
                return Err(AppError::TwoFactorRequired {
                    org: org.name,
                    deadline: timefmt::date(deadline),
                });
            }
            let pending_invitations = if perms.contains(Permission::UsersInvite) {
                crate::domain::invitations::pending_badge(conn, &org.id)?
            } else {
                None
            };
            Ok(Arrival::Member(Box::new(OrgCtx {
                current,
                org,
                membership,
                role,
                perms,
                rank,
                two_factor: demand,
                pending_invitations,
                now,
            })))
        })
        .await
}

/// The signed-in account (`cached` when an earlier extractor loaded it) and its standing
/// in the organization `slug`: `None` when the account is gone or disabled, an inner
/// `None` when it is not an active member there. Without a cached account, the switcher's
/// organizations and this one's standing come from the same query.
fn standing_of(
    conn: &mut DbConnection,
    cached: Option<CurrentUser>,
    user_id: &str,
    credential: &str,
    slug: &str,
) -> Result<Option<(CurrentUser, Option<memberships::Standing>)>, AppError> {
    if let Some(current) = cached {
        let here = memberships::find_active_by_slug(conn, slug, user_id)?;
        return Ok(Some((current, here)));
    }
    let Some(user) = users::find(conn, user_id)?.filter(|u| still_signed_in(u, credential)) else {
        return Ok(None);
    };
    let standings = memberships::active_standings(conn, user_id)?;
    let orgs = standings.iter().map(|(org, ..)| org.clone()).collect();
    let here = standings.into_iter().find(|(org, ..)| org.slug == slug);
    Ok(Some((CurrentUser { user, orgs }, here)))
}

/// The account a signed-in session names, and the password it was signed in with.
fn signed_in_as(session: &Session) -> Option<(String, String)> {
    let user_id = session.get::<String>(keys::USER_ID).ok().flatten()?;
    // A session signed in before sessions named their password has none: it is taken as
    // signed in with the current one, which `CurrentUser::remember` then writes down.
    let credential = session
        .get::<String>(keys::CREDENTIAL)
        .ok()
        .flatten()
        .unwrap_or_default();
    Some((user_id, credential))
}

/// An account stays signed in while it is active and its password is the one the session
/// was signed in with.
fn still_signed_in(user: &User, credential: &str) -> bool {
    user.is_active() && (credential.is_empty() || stamp_of(user) == credential)
}

/// The client address: the socket peer's, or, when the peer is one of the configured
/// `--trusted-proxies`, the right-most hop of the configured forwarding header that is not
/// itself a trusted proxy. Never the left-most hop, which whoever sent the request wrote.
pub fn client_ip(req: &HttpRequest, settings: &Settings) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let name = match settings.proxy_header {
        ProxyHeader::XForwardedFor => "x-forwarded-for",
        ProxyHeader::Forwarded => "forwarded",
    };
    // Read byte by byte: a proxy appends the address it saw to the client's own line
    // (`<client's>, <peer>`), so one unreadable byte the client sent must spoil only the
    // hop it sits in, not the line, or the walk would stop at the proxy.
    let lines: Vec<String> = req
        .headers()
        .get_all(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let values: Vec<&str> = lines.iter().map(String::as_str).collect();
    resolve_client_ip(
        peer,
        &values,
        &settings.trusted_proxies,
        settings.proxy_header,
    )
    .map(|ip| ip.to_string())
    .unwrap_or_else(|| "unknown".into())
}

impl FromRequest for Origin {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(origin_of(req)))
    }
}

/// Where a request came from, as the audit trail records it.
fn origin_of(req: &HttpRequest) -> Origin {
    let ip = match req.app_data::<web::Data<AppState>>() {
        Some(state) => client_ip(req, &state.settings),
        None => req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unknown".into()),
    };
    Origin {
        ip: Some(ip),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
    }
}

/// Signs the session in as `user`: a new session id (so a planted cookie is worthless),
/// a new CSRF token, when it signed in, and the client's address and browser for the
/// sessions list. `user`
/// must be the account as it was read before its password was checked, so that a change
/// of password since signs this session out.
pub fn sign_in(
    session: &Session,
    req: &HttpRequest,
    user: &User,
    settings: &Settings,
) -> Result<(), AppError> {
    let to_err = |e: actix_session::SessionInsertError| AppError::Internal(anyhow::anyhow!("{e}"));
    // A browser another account was signed in on (a shared computer) keeps nothing of
    // theirs: not the two-factor key they were shown, nor their one-time invitation
    // links, nor the forms they sent. The message for the next page stays.
    let previous = session.get::<String>(keys::USER_ID).ok().flatten();
    if previous.is_some_and(|id| id != user.id) {
        let flashes = session.get::<serde_json::Value>(keys::FLASH).ok().flatten();
        session.clear();
        if let Some(flashes) = flashes {
            session.insert(keys::FLASH, flashes).map_err(to_err)?;
        }
    }
    session.renew();
    session.insert(keys::USER_ID, &user.id).map_err(to_err)?;
    session
        .insert(keys::CREDENTIAL, stamp_of(user))
        .map_err(to_err)?;
    session
        .insert(keys::CSRF, crate::domain::tokens::generate())
        .map_err(to_err)?;
    let signed_in_at = settings.clock.now().and_utc().timestamp();
    session
        .insert(keys::SIGNED_IN_AT, signed_in_at)
        .map_err(to_err)?;
    session
        .insert(keys::IP, client_ip(req, settings))
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

/// Gives this browser's session a new key, keeping when it signed in (and so its
/// absolute limit): a copy of the old cookie, the one session that ending "every other
/// session" cannot name, dies with the old key.
pub fn rekey(session: &Session, born: chrono::NaiveDateTime) -> Result<(), AppError> {
    session
        .insert(keys::BORN, born)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    session.renew();
    Ok(())
}

/// The stored id of the request's session, when it is a stored (signed-in) one.
pub fn current_session_id(session: &Session) -> Option<String> {
    session
        .get::<String>(crate::auth::session_store::SESSION_ID)
        .ok()
        .flatten()
}
