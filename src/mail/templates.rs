//! Views of the email templates (`templates/email/<name>.txt` and `.html`). Each email's
//! subject is built here, next to its view.

use askama::Template;
use chrono::NaiveDateTime;

/// An email ready for the outbox.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A header value that cannot start a new header: control characters (CR, LF, ...) become
/// spaces and the length is bounded. Names are validated on the way in; this is the
/// second line of defence, applied where headers are written.
pub fn header_safe(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(200).collect()
}

/// The invitation email, first sent or resent.
#[derive(Debug, Clone)]
pub struct InvitationEmail {
    pub org_name: String,
    pub inviter_name: String,
    pub role_name: String,
    pub link: String,
    pub expires_at: NaiveDateTime,
    pub reminder: bool,
    /// When the access it offers ends, if it does: the moment, as stored.
    pub access_until: Option<NaiveDateTime>,
}

impl InvitationEmail {
    /// The last day of the access offered, as the accept page says it.
    pub fn last_day(&self) -> Option<String> {
        self.access_until.map(|until| {
            (until - chrono::Duration::days(1))
                .format("%Y-%m-%d")
                .to_string()
        })
    }

    pub fn subject(&self) -> String {
        let prefix = if self.reminder { "Reminder: " } else { "" };
        header_safe(&format!(
            "{prefix}{} invited you to join {} on Portcullis",
            self.inviter_name, self.org_name
        ))
    }

    pub fn expires(&self) -> String {
        self.expires_at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        Ok(Rendered {
            subject: self.subject(),
            text: InvitationText { e: self }.render()?,
            html: InvitationHtml { e: self }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationText<'a> {
    e: &'a InvitationEmail,
}

#[derive(Template)]
#[template(path = "email/invitation.html")]
struct InvitationHtml<'a> {
    e: &'a InvitationEmail,
}

/// The account-setup email: an administrator created the account, the person chooses
/// a name and password through the one-time link.
#[derive(Debug, Clone)]
pub struct AccountSetupEmail {
    pub admin_name: String,
    /// Empty when the account belongs to no organization yet.
    pub org_name: String,
    pub link: String,
    pub expires_at: NaiveDateTime,
}

impl AccountSetupEmail {
    pub fn subject(&self) -> String {
        header_safe(&format!(
            "{} created your Portcullis account",
            self.admin_name
        ))
    }

    pub fn expires(&self) -> String {
        self.expires_at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        Ok(Rendered {
            subject: self.subject(),
            text: AccountSetupText { e: self }.render()?,
            html: AccountSetupHtml { e: self }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "email/account_setup.txt")]
struct AccountSetupText<'a> {
    e: &'a AccountSetupEmail,
}

#[derive(Template)]
#[template(path = "email/account_setup.html")]
struct AccountSetupHtml<'a> {
    e: &'a AccountSetupEmail,
}

/// The password reset email: a one-time link to choose a new password.
#[derive(Debug, Clone)]
pub struct PasswordResetEmail {
    pub name: String,
    pub link: String,
    pub expires_at: NaiveDateTime,
}

impl PasswordResetEmail {
    pub fn subject(&self) -> String {
        "Reset your Portcullis password".into()
    }

    pub fn expires(&self) -> String {
        self.expires_at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        Ok(Rendered {
            subject: self.subject(),
            text: PasswordResetText { e: self }.render()?,
            html: PasswordResetHtml { e: self }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "email/password_reset.txt")]
struct PasswordResetText<'a> {
    e: &'a PasswordResetEmail,
}

#[derive(Template)]
#[template(path = "email/password_reset.html")]
struct PasswordResetHtml<'a> {
    e: &'a PasswordResetEmail,
}

/// Sent after a password reset, so the owner learns of a reset they did not ask for.
#[derive(Debug, Clone)]
pub struct PasswordChangedEmail {
    pub name: String,
    pub changed_at: NaiveDateTime,
    /// Where to ask for a new link: the forgot-password page.
    pub reset_url: String,
    /// Through a reset link (someone who reads the mailbox), or on the account page
    /// (someone signed in who knew the password).
    pub by_reset_link: bool,
}

impl PasswordChangedEmail {
    pub fn subject(&self) -> String {
        "Your Portcullis password was changed".into()
    }

    pub fn when(&self) -> String {
        self.changed_at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        Ok(Rendered {
            subject: self.subject(),
            text: PasswordChangedText { e: self }.render()?,
            html: PasswordChangedHtml { e: self }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "email/password_changed.txt")]
struct PasswordChangedText<'a> {
    e: &'a PasswordChangedEmail,
}

#[derive(Template)]
#[template(path = "email/password_changed.html")]
struct PasswordChangedHtml<'a> {
    e: &'a PasswordChangedEmail,
}

/// Sent to the address an organization's identity provider moved an account away from:
/// whoever holds the new mailbox can reset the password there, and an admin with a SCIM
/// token could otherwise take a co-member's account unheard.
#[derive(Debug, Clone)]
pub struct AddressChangedEmail {
    pub name: String,
    pub old_address: String,
    pub new_address: String,
    /// The organization whose identity provider changed it.
    pub org_name: String,
    pub at: NaiveDateTime,
}

impl AddressChangedEmail {
    pub fn subject(&self) -> String {
        "Your Portcullis account: sign-in address changed".into()
    }

    pub fn when(&self) -> String {
        self.at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        Ok(Rendered {
            subject: self.subject(),
            text: AddressChangedText { e: self }.render()?,
            html: AddressChangedHtml { e: self }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "email/address_changed.txt")]
struct AddressChangedText<'a> {
    e: &'a AddressChangedEmail,
}

#[derive(Template)]
#[template(path = "email/address_changed.html")]
struct AddressChangedHtml<'a> {
    e: &'a AddressChangedEmail,
}

/// A change to how the account is protected, made from a browser signed in to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityChange {
    TwoFactorOn,
    TwoFactorOff,
    RecoveryCodesMade,
    SignInAlertsOff,
}

/// Told to the account's owner whenever its protection changes: whoever holds a stolen
/// session would otherwise turn the alerts off, make recovery codes of their own, or turn
/// two-factor on and lock the owner out, unheard.
#[derive(Debug, Clone)]
pub struct SecurityChangeEmail {
    pub name: String,
    pub change: SecurityChange,
    pub at: NaiveDateTime,
    /// The account page, where sessions are seen and ended.
    pub account_url: String,
    /// The forgot-password page.
    pub reset_url: String,
}

impl SecurityChangeEmail {
    pub fn subject(&self) -> String {
        // Short enough for one header line: a folded subject is still one subject, but
        // some clients show only its first line in a list.
        "Your Portcullis account: ".to_string()
            + match self.change {
                SecurityChange::TwoFactorOn => "two-factor authentication turned on",
                SecurityChange::TwoFactorOff => "two-factor authentication turned off",
                SecurityChange::RecoveryCodesMade => "new recovery codes made",
                SecurityChange::SignInAlertsOff => "new sign-in alerts turned off",
            }
    }

    /// What happened, as a sentence ending at the time it did.
    pub fn what(&self) -> String {
        let when = self.at.format("%Y-%m-%d %H:%M UTC");
        match self.change {
            SecurityChange::TwoFactorOn => format!(
                "Two-factor authentication was turned on for your Portcullis account at {when}, \
                 and every other browser signed in to it was signed out. Signing in now needs \
                 a code from the authenticator app it was set up with."
            ),
            SecurityChange::TwoFactorOff => format!(
                "Two-factor authentication was turned off for your Portcullis account at {when}. \
                 Signing in now needs only your password."
            ),
            SecurityChange::RecoveryCodesMade => format!(
                "New recovery codes were made for your Portcullis account at {when}. Each signs \
                 in once in place of an authenticator code; the old ones no longer work."
            ),
            SecurityChange::SignInAlertsOff => format!(
                "New sign-in alerts were turned off for your Portcullis account at {when}: you \
                 will no longer get an email when it is signed in to from a new browser."
            ),
        }
    }

    /// What to do if it was not the owner, up to the link.
    pub fn if_not_you(&self) -> &'static str {
        match self.change {
            SecurityChange::TwoFactorOn => {
                "someone signed in as you and can now keep you out: ask your administrator to \
                 reset your two-factor authentication, then choose a new password here"
            }
            SecurityChange::TwoFactorOff => {
                "someone knew your password and had your authenticator app: choose a new \
                 password here, turn two-factor authentication on again, and tell your \
                 administrator"
            }
            SecurityChange::RecoveryCodesMade => {
                "someone signed in as you now holds codes that sign in as you: choose a new \
                 password here, make new recovery codes on your account page, and tell your \
                 administrator"
            }
            SecurityChange::SignInAlertsOff => {
                "someone is signed in as you: choose a new password here (it signs out every \
                 browser), turn the alerts on again on your account page, and tell your \
                 administrator"
            }
        }
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        Ok(Rendered {
            subject: self.subject(),
            text: SecurityChangeText { e: self }.render()?,
            html: SecurityChangeHtml { e: self }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "email/security_change.txt")]
struct SecurityChangeText<'a> {
    e: &'a SecurityChangeEmail,
}

#[derive(Template)]
#[template(path = "email/security_change.html")]
struct SecurityChangeHtml<'a> {
    e: &'a SecurityChangeEmail,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(org: &str, inviter: &str) -> InvitationEmail {
        InvitationEmail {
            org_name: org.into(),
            inviter_name: inviter.into(),
            role_name: "Member".into(),
            link: "https://portal.example.com/invite/abc".into(),
            expires_at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
            reminder: false,
            access_until: None,
        }
    }

    #[test]
    fn html_escapes_names_and_text_keeps_them() {
        let rendered = email("<b>Acme</b> & Co", "Eve <script>").render().unwrap();
        assert!(
            rendered
                .html
                .contains("&#60;b&#62;Acme&#60;/b&#62; &#38; Co")
        );
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.text.contains("<b>Acme</b> & Co"));
        assert!(
            rendered
                .text
                .contains("https://portal.example.com/invite/abc")
        );
        assert!(
            rendered
                .html
                .contains("href=\"https://portal.example.com/invite/abc\"")
        );
    }

    #[test]
    fn subjects_cannot_carry_extra_headers() {
        let subject = email("Acme\r\nBcc: victim@example.com", "Eve\n").subject();
        assert!(!subject.contains('\r') && !subject.contains('\n'));
        assert_eq!(
            subject,
            "Eve invited you to join Acme Bcc: victim@example.com on Portcullis"
        );
    }

    #[test]
    fn account_setup_email_escapes_names_and_keeps_the_link() {
        let rendered = AccountSetupEmail {
            admin_name: "Mallory <script>".into(),
            org_name: "Acme & Co".into(),
            link: "https://portal.example.com/setup/xyz".into(),
            expires_at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
        }
        .render()
        .unwrap();
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.html.contains("Acme &#38; Co"));
        assert!(
            rendered
                .text
                .contains("https://portal.example.com/setup/xyz")
        );
        assert_eq!(
            rendered.subject,
            "Mallory <script> created your Portcullis account"
        );
    }
}
