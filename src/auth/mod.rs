//! Passwords, server-side sessions, the signed-in user, CSRF and sign-in throttling.

pub mod csrf;
pub mod current_user;
pub mod device;
pub mod password;
pub mod session_store;
pub mod throttle;

/// Keys of the values kept in a session's state.
pub mod keys {
    pub const USER_ID: &str = "uid";
    pub const CSRF: &str = "csrf";
    pub const FLASH: &str = "flash";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "ua";
}
