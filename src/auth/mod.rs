//! Passwords, server-side sessions, sign-in throttling, two-factor codes and the client
//! address: what sign-in decides with, free of HTTP types.

pub mod client_ip;
pub mod password;
pub mod session_store;
pub mod throttle;
pub mod totp;

/// Keys of the values kept in a session's state.
pub mod keys {
    pub const USER_ID: &str = "uid";
    pub const CSRF: &str = "csrf";
    pub const FLASH: &str = "flash";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "ua";
    /// When the session signed in (Unix seconds, by the app's clock): a change that could
    /// lock its owner out asks for the password again once it is not recent.
    pub const SIGNED_IN_AT: &str = "signed_in_at";
    /// The password the session was signed in with, as `password::credential_stamp`.
    pub const CREDENTIAL: &str = "cred";
    /// Half signed in: the account whose password was right and whose code is awaited,
    /// until when (Unix seconds), and where to go afterwards.
    pub const PENDING_2FA_USER: &str = "2fa_uid";
    pub const PENDING_2FA_UNTIL: &str = "2fa_until";
    pub const PENDING_2FA_NEXT: &str = "2fa_next";
    pub const PENDING_2FA_CREDENTIAL: &str = "2fa_cred";
    /// When the session being given a new key was made (JSON time): the new row keeps
    /// it, and with it the absolute limit. Read, and dropped, when the new row is stored.
    pub const BORN: &str = "born";
    /// The secret of a two-factor enrolment in progress, until a code confirms it.
    pub const ENROL_SECRET: &str = "2fa_enrol";
    /// The results of the inviter's last invite or resend, with their one-time links,
    /// until the results page shows them once.
    pub const INVITE_RESULTS: &str = "invite_results";
    /// The ids of the forms this session acted on that must act only once (`web::once`).
    pub const FORMS_SENT: &str = "forms_sent";
}
