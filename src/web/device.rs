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
    pub nonce: String,
}

/// The request's device cookie, when it carries a valid signature.
pub fn read(req: &HttpRequest, key: &DeviceKey) -> Option<Device> {
    let raw = req.cookie(DEVICE_COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(raw.into_owned());
    let verified = jar.signed(&key.0).get(DEVICE_COOKIE)?;
    let (user_id, nonce) = verified.value().split_once('.')?;
    if user_id.is_empty() || nonce.is_empty() {
        return None;
    }
    Some(Device {
        user_id: user_id.to_string(),
        nonce: nonce.to_string(),
    })
}

/// A fresh device cookie for `user_id`, to set on the response of a successful sign-in.
pub fn issue(key: &DeviceKey, user_id: &str, secure: bool) -> Cookie<'static> {
    let value = format!("{user_id}.{}", crate::domain::tokens::generate());
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
        let cookie = issue(&key, "user-1", true);
        assert!(cookie.http_only().unwrap_or(false));
        let device = read(&request_with(&cookie), &key).expect("valid cookie");
        assert_eq!(device.user_id, "user-1");
        assert!(device.nonce.len() >= 40);

        let forged = Cookie::new(DEVICE_COOKIE, cookie.value().replace("user-1", "user-2"));
        assert_eq!(read(&request_with(&forged), &key), None);
        let other_key = DeviceKey::derive(&Key::generate());
        assert_eq!(read(&request_with(&cookie), &other_key), None);
        let unsigned = Cookie::new(DEVICE_COOKIE, "user-1.nonce");
        assert_eq!(read(&request_with(&unsigned), &key), None);
    }
}
