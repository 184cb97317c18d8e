//! actix-session's `SessionStore` over the `sessions` table, so sessions survive restarts,
//! are shared by every instance, and can be ended server-side.
//!
//! Only signed-in sessions get a row. A visitor who has not signed in needs no more than a
//! CSRF token for the form in front of them and perhaps a flash message; that state
//! travels in the session cookie itself, which actix-session encrypts and authenticates
//! with the session key (`CookieContentSecurity::Private`), so anonymous requests, however
//! many, store nothing. The form's token is checked against the token in the visitor's own
//! cookie, so a token taken from another cookie is refused as before.

use std::collections::HashMap;
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;

use super::keys;
use crate::db::inline_reads::InlineReads;
use crate::db::{self, DbPool, sessions};
use crate::domain::tokens;

/// Sessions seen again within this long keep their stored times, so reads stay reads.
const TOUCH_INTERVAL_SECS: i64 = 60;

/// The stored id of the session a request came with, put into its state by [`load`]
/// (never stored): the id is the SHA-256 of the cookie's key, so it names the row on
/// /account without being able to stand in for the key (`web::extract::current_session_id`
/// reads it).
///
/// [`load`]: DbSessionStore
pub const SESSION_ID: &str = "_sid";

/// Marks a session key that carries an anonymous visitor's state instead of naming a row.
/// Keys of stored sessions are base64url tokens, which never contain a dot.
const ANONYMOUS_PREFIX: &str = "anon.";
/// The only state an anonymous session may carry in its cookie; anything else (a sign-in
/// above all) is stored server-side.
const ANONYMOUS_KEYS: [&str; 2] = [keys::CSRF, keys::FLASH];
/// Keeps the encrypted cookie well under browsers' 4 KB limit per cookie.
const MAX_ANONYMOUS_KEY: usize = 2048;

/// What an anonymous session key holds: its state and when it stops being honoured.
#[derive(serde::Serialize, serde::Deserialize)]
struct Anonymous {
    /// Unix seconds; the idle timeout from when the state last changed.
    exp: i64,
    state: HashMap<String, String>,
}

fn is_anonymous(state: &HashMap<String, String>) -> bool {
    state.keys().all(|k| ANONYMOUS_KEYS.contains(&k.as_str()))
}

/// The session-state key the session store sets, instead of failing, when it cannot load
/// a session because the database is out of reach (`web::error_page::session_unavailable` answers it).
pub const SESSION_UNAVAILABLE: &str = "_database_unavailable";

/// The state the session store answers with when loading a session failed: only the
/// marker, with the cause. actix-session would turn the store's error into a bare 500
/// that skips the request log; letting the request through as anonymous would send a
/// signed-in visitor to the sign-in page (and run handlers against a dead database).
pub fn session_unavailable_state(cause: &anyhow::Error) -> HashMap<String, String> {
    let cause = serde_json::to_string(&format!("{cause:#}")).unwrap_or_default();
    HashMap::from([(SESSION_UNAVAILABLE.to_string(), cause)])
}

#[derive(Clone)]
pub struct DbSessionStore {
    pool: DbPool,
    reads: InlineReads,
    idle: chrono::Duration,
    absolute: chrono::Duration,
}

impl DbSessionStore {
    pub fn new(pool: DbPool, reads: InlineReads, idle: Duration, absolute: Duration) -> Self {
        Self {
            pool,
            reads,
            idle: chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::hours(8)),
            absolute: chrono::Duration::from_std(absolute).unwrap_or(chrono::Duration::days(7)),
        }
    }

    fn expiry(&self, created_at: NaiveDateTime, now: NaiveDateTime) -> NaiveDateTime {
        (now + self.idle).min(created_at + self.absolute)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut db::DbConnection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let pool = self.pool.clone();
        db::off_thread::run(move || db::run_pooled(&pool, f)).await?
    }

    /// The stored session `id`: read on this thread on SQLite (every page view asks).
    async fn find(&self, id: String) -> anyhow::Result<Option<sessions::SessionRow>> {
        if self.reads.is_inline() {
            return Ok(self.reads.run(move |conn| sessions::find(conn, &id))??);
        }
        let pool = self.pool.clone();
        db::off_thread::run(move || {
            db::read_pooled(&pool, |conn| -> anyhow::Result<_> {
                Ok(sessions::find(conn, &id)?)
            })
        })
        .await?
    }

    /// The session `row` still in force, its stored times moved on at most once a
    /// minute (so reads stay reads); an expired one ends, its row deleted where the
    /// database can still be written.
    async fn keep_alive(
        &self,
        id: String,
        row: sessions::SessionRow,
    ) -> anyhow::Result<Option<sessions::SessionRow>> {
        let now = db::now();
        if row.expires_at <= now || row.created_at + self.absolute <= now {
            // The session is over whether or not its row goes: on a full disk or a
            // read-only database its visitor is signed out and can still read the sign-in
            // page (failing here answered 503 to every request of that browser).
            if let Err(e) = self.run(move |conn| Ok(sessions::delete(conn, &id)?)).await {
                tracing::warn!(error = %format!("{e:#}"), "could not delete an expired session");
            }
            return Ok(None);
        }
        if now - row.last_seen_at >= chrono::Duration::seconds(TOUCH_INTERVAL_SECS) {
            let expires_at = (now + self.idle).min(row.created_at + self.absolute);
            // Best effort: on a full disk or a read-only database the session still signs
            // its visitor in for reading; it is touched again later.
            if let Err(e) = self
                .run(move |conn| Ok(sessions::touch(conn, &id, now, expires_at)?))
                .await
            {
                tracing::warn!(error = %format!("{e:#}"), "could not extend a session");
            }
        }
        Ok(Some(row))
    }

    /// Whether the stored state of session `id` equals `state` but for flash messages.
    async fn only_flash_differs(&self, id: String, state: &HashMap<String, String>) -> bool {
        let stored = self
            .run(move |conn| Ok(sessions::find(conn, &id)?))
            .await
            .ok()
            .flatten()
            .and_then(|row| serde_json::from_str::<HashMap<String, String>>(&row.data).ok());
        let Some(mut stored) = stored else {
            return false;
        };
        let mut state = state.clone();
        stored.remove(keys::FLASH);
        state.remove(keys::FLASH);
        stored == state
    }

    /// A new session: in the cookie while nobody is signed in, otherwise a new row.
    async fn store(&self, mut state: HashMap<String, String>) -> anyhow::Result<SessionKey> {
        // A renewed session gets a new row and id; the old one's must not travel along.
        state.remove(SESSION_ID);
        let born = state
            .remove(keys::BORN)
            .and_then(|v| serde_json::from_str::<chrono::NaiveDateTime>(&v).ok());
        if is_anonymous(&state) {
            if let Some(key) = self.anonymous_key(&state) {
                return Ok(key);
            }
            // Flash messages too long for a cookie: the token matters, the message less.
            state.remove(keys::FLASH);
            if let Some(key) = self.anonymous_key(&state) {
                return Ok(key);
            }
        }
        self.insert(state, born).await
    }

    fn anonymous_key(&self, state: &HashMap<String, String>) -> Option<SessionKey> {
        let envelope = Anonymous {
            exp: (db::now() + self.idle).and_utc().timestamp(),
            state: state.clone(),
        };
        let json = serde_json::to_vec(&envelope).ok()?;
        let key = format!("{ANONYMOUS_PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        if key.len() > MAX_ANONYMOUS_KEY {
            return None;
        }
        SessionKey::try_from(key).ok()
    }

    /// A new row for `state`, made now, or at `born` when it takes over a session made
    /// then (a new key for the same sign-in).
    async fn insert(
        &self,
        state: HashMap<String, String>,
        born: Option<chrono::NaiveDateTime>,
    ) -> anyhow::Result<SessionKey> {
        let key = tokens::generate();
        let id = tokens::hash(&key);
        let data = serde_json::to_string(&state)?;
        let meta = Meta::of(&state);
        let now = db::now();
        let created_at = born.filter(|born| *born <= now).unwrap_or(now);
        let expires_at = self.expiry(created_at, now);
        self.run(move |conn| {
            sessions::insert(
                conn,
                &sessions::NewSession {
                    id: &id,
                    user_id: meta.user_id.as_deref(),
                    data: &data,
                    created_at,
                    last_seen_at: now,
                    expires_at,
                    ip: meta.ip.as_deref(),
                    user_agent: meta.user_agent.as_deref(),
                },
            )?;
            Ok(())
        })
        .await?;
        SessionKey::try_from(key).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// The state values that also get their own columns, for "end all of a user's sessions"
/// and the list of a user's sessions.
struct Meta {
    user_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl Meta {
    fn of(state: &HashMap<String, String>) -> Self {
        let get = |k: &str| {
            state
                .get(k)
                .and_then(|v| serde_json::from_str::<String>(v).ok())
        };
        Meta {
            user_id: get(keys::USER_ID),
            ip: get(keys::IP),
            user_agent: get(keys::USER_AGENT).map(|ua| ua.chars().take(300).collect()),
        }
    }
}

impl SessionStore for DbSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        if let Some(encoded) = session_key.as_ref().strip_prefix(ANONYMOUS_PREFIX) {
            return Ok(load_anonymous(encoded));
        }
        let id = tokens::hash(session_key.as_ref());
        let row = self.find(id.clone()).await;
        let row = match row {
            Ok(Some(row)) => self.keep_alive(id, row).await,
            other => other,
        };
        let row = match row {
            Ok(row) => row,
            // The database is out of reach: neither actix-session's bare 500 nor an
            // anonymous visit; `web::error_page::session_unavailable` answers with the 503 page.
            Err(e) => return Ok(Some(session_unavailable_state(&e))),
        };
        match row {
            None => Ok(None),
            Some(row) => {
                let mut state: HashMap<String, String> = serde_json::from_str(&row.data)
                    .map_err(|e| LoadError::Deserialization(e.into()))?;
                let id = serde_json::to_string(&row.id)
                    .map_err(|e| LoadError::Deserialization(e.into()))?;
                state.insert(SESSION_ID.into(), id);
                Ok(Some(state))
            }
        }
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        self.store(session_state).await.map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        if session_key.as_ref().starts_with(ANONYMOUS_PREFIX) {
            // The state lives in the key, so a change is a new key (or, signed in, a row).
            return self.store(session_state).await.map_err(UpdateError::Other);
        }
        let id = tokens::hash(session_key.as_ref());
        let mut session_state = session_state;
        session_state.remove(SESSION_ID);
        session_state.remove(keys::BORN);
        let data = serde_json::to_string(&session_state)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        let meta = Meta::of(&session_state);
        let stored_id = id.clone();
        let updated = self
            .run(move |conn| {
                Ok(sessions::update_data(
                    conn,
                    &id,
                    meta.user_id.as_deref(),
                    &data,
                    meta.ip.as_deref(),
                    meta.user_agent.as_deref(),
                )?)
            })
            .await;
        let updated = match updated {
            Ok(updated) => updated,
            // The database cannot store changes (full disk, read-only) but still reads: a
            // change of flash messages alone is let go, so pages keep working (a message
            // may show once more). Any other change fails the request.
            Err(e) if self.only_flash_differs(stored_id, &session_state).await => {
                tracing::warn!(error = %format!("{e:#}"), "could not store a flash message");
                return Ok(session_key);
            }
            Err(e) => return Err(UpdateError::Other(e)),
        };
        if updated {
            Ok(session_key)
        } else {
            // The row was deleted while this request ran (signed out elsewhere, account
            // deactivated): carry on anonymously rather than revive the sign-in.
            let mut state = session_state;
            state.retain(|k, _| ANONYMOUS_KEYS.contains(&k.as_str()));
            self.store(state).await.map_err(UpdateError::Other)
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        _ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        if session_key.as_ref().starts_with(ANONYMOUS_PREFIX) {
            return Ok(());
        }
        let id = tokens::hash(session_key.as_ref());
        let (idle, absolute) = (self.idle, self.absolute);
        self.run(move |conn| {
            if let Some(row) = sessions::find(conn, &id)? {
                let now = db::now();
                sessions::touch(conn, &id, now, (now + idle).min(row.created_at + absolute))?;
            }
            Ok(())
        })
        .await
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        if session_key.as_ref().starts_with(ANONYMOUS_PREFIX) {
            return Ok(());
        }
        let id = tokens::hash(session_key.as_ref());
        self.run(move |conn| Ok(sessions::delete(conn, &id)?)).await
    }
}

/// The state an anonymous key carries, unless it has expired. The key comes out of an
/// authenticated, encrypted cookie, so nobody but this server can have written it.
fn load_anonymous(encoded: &str) -> Option<HashMap<String, String>> {
    let json = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let envelope: Anonymous = serde_json::from_slice(&json).ok()?;
    if envelope.exp <= db::now().and_utc().timestamp() || !is_anonymous(&envelope.state) {
        return None;
    }
    Some(envelope.state)
}
