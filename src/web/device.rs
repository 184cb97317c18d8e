//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): after
//! a successful sign-in the browser gets a long-lived, HttpOnly cookie naming the account
//! and a random nonce, signed (HMAC-SHA256) with a key derived from the session key. A
//! later sign-in to *that* account from a browser presenting a valid one is counted per
//! device instead of per account (see `throttle`), so strangers guessing the account's
//! password cannot lock its owner out. The cookie grants nothing else: the password is
//! still checked, and a forged or altered cookie is simply ignored.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite, time};
use sha2::{Digest, Sha512};

pub const DEVICE_COOKIE: &str = "portcullis_device";

/// How long a browser is remembered after its last successful sign-in.
const LIFETIME_DAYS: i64 = 365;

/// The signing key of device cookies, registered as app data at start-up.
#[derive(Clone)]
pub struct DeviceKey(Key);

impl DeviceKey {
    /// A key of its own, derived from the session key, so the two cookies' signatures
    /// can never stand in for each other.
    pub fn derive(session_key: &Key) -> Self {
        let mut hasher = Sha512::new();
        hasher.update(b"portcullis device cookie v1\0");
        hasher.update(session_key.master());
        DeviceKey(Key::from(&hasher.finalize()))
    }
}

/// What a valid device cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub user_id: String,
    /// The password of the sign-in that issued it (`password::credential_stamp`): a
    /// cookie from before a change of password spares nobody's lockout, so cookies
    /// gathered while a stolen password worked are worthless once it is changed.
    pub credential: String,
    pub nonce: String,
}

impl Device {
    /// Whether the cookie speaks for `user` as the account is now.
    /// Whether it names `user`'s browser, for the "new sign-in" email: issued to them with
    /// their current password, or of the form from before cookies named the password. A
    /// cookie from before a password change (a thief's, say) names nobody's.
    pub fn is_owners(&self, user: &crate::db::users::User) -> bool {
        self.user_id == user.id && (self.credential.is_empty() || self.is_for(user))
    }

    pub fn is_for(&self, user: &crate::db::users::User) -> bool {
        self.user_id == user.id
            && !self.credential.is_empty()
            && crate::auth::password::stamp_of(user) == self.credential
    }
}

/// The request's device cookie, when it carries a valid signature.
pub fn read(req: &HttpRequest, key: &DeviceKey) -> Option<Device> {
    let raw = req.cookie(DEVICE_COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(raw.into_owned());
    let verified = jar.signed(&key.0).get(DEVICE_COOKIE)?;
    let parts: Vec<&str> = verified.value().splitn(3, '.').collect();
    // A cookie issued before cookies named the password (`user.nonce`) still names its
    // browser's owner (no "new sign-in" email), but spares no guesses.
    let (user_id, credential, nonce) = match parts[..] {
        [user_id, credential, nonce] => (user_id, credential, nonce),
        [user_id, nonce] => (user_id, "", nonce),
        _ => return None,
    };
    if user_id.is_empty() || nonce.is_empty() {
        return None;
    }
    Some(Device {
        user_id: user_id.to_string(),
        credential: credential.to_string(),
        nonce: nonce.to_string(),
    })
}

/// A fresh device cookie for `user`, to set on the response of a successful sign-in or a
/// change of password.
pub fn issue(key: &DeviceKey, user: &crate::db::users::User, secure: bool) -> Cookie<'static> {
    let credential = crate::auth::password::stamp_of(user);
    issue_for(key, &user.id, &credential, secure)
}

/// Sets a fresh device cookie for `user` on `response`.
pub fn remember(
    response: &mut actix_web::HttpResponse,
    key: &DeviceKey,
    user: &crate::db::users::User,
    secure: bool,
) -> Result<(), crate::error::AppError> {
    response
        .add_cookie(&issue(key, user, secure))
        .map_err(|e| crate::error::AppError::Internal(anyhow::anyhow!("device cookie: {e}")))
}

fn issue_for(key: &DeviceKey, user_id: &str, credential: &str, secure: bool) -> Cookie<'static> {
    let value = format!(
        "{user_id}.{credential}.{}",
        crate::domain::tokens::generate()
    );
    let cookie = Cookie::build(DEVICE_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::days(LIFETIME_DAYS))
        .finish();
    let mut jar = CookieJar::new();
    jar.signed_mut(&key.0).add(cookie);
    jar.get(DEVICE_COOKIE)
        .cloned()
        .expect("the cookie was just added")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request_with(cookie: &Cookie<'_>) -> HttpRequest {
        TestRequest::default()
            .cookie(Cookie::new(DEVICE_COOKIE, cookie.value().to_string()))
            .to_http_request()
    }

    #[test]
    fn a_signed_cookie_reads_back_and_an_altered_one_does_not() {
        let key = DeviceKey::derive(&Key::generate());
        let cookie = issue_for(&key, "user-1", "c0ffee", true);
        assert!(cookie.http_only().unwrap_or(false));
        let device = read(&request_with(&cookie), &key).expect("valid cookie");
        assert_eq!(device.user_id, "user-1");
        assert_eq!(device.credential, "c0ffee");
        assert!(device.nonce.len() >= 40);

        let forged = Cookie::new(DEVICE_COOKIE, cookie.value().replace("user-1", "user-2"));
        assert_eq!(read(&request_with(&forged), &key), None);
        let other_key = DeviceKey::derive(&Key::generate());
        assert_eq!(read(&request_with(&cookie), &other_key), None);
        let unsigned = Cookie::new(DEVICE_COOKIE, "user-1.nonce");
        assert_eq!(read(&request_with(&unsigned), &key), None);

        // One issued before cookies named the password reads, without a password.
        let mut jar = CookieJar::new();
        jar.signed_mut(&key.0)
            .add(Cookie::new(DEVICE_COOKIE, "user-1.oldnonce"));
        let legacy = jar.get(DEVICE_COOKIE).unwrap().clone();
        let device = read(&request_with(&legacy), &key).expect("a legacy cookie");
        assert_eq!(
            (device.user_id.as_str(), device.credential.as_str()),
            ("user-1", "")
        );
    }
}
