//! One-time setup links: the first administrator of a fresh installation, and accounts
//! created from the command line that still need a password.

use chrono::Duration;

use super::FieldErrors;
use super::email::Email;
use super::names::parse_name;
use super::password::validate_new;
use super::roles::ADMIN;
use crate::audit::{self, Event, Origin};
use crate::db::organizations::{self, Organization};
use crate::db::setup_tokens::{self, ACCOUNT, FIRST_ADMIN, NewSetupToken};
use crate::db::users::{self, User};
use crate::db::{self, DbConnection, memberships, roles};
use crate::domain::tokens;

pub const FIRST_ADMIN_LINK_TTL_HOURS: i64 = 24;
pub const ACCOUNT_LINK_TTL_HOURS: i64 = 72;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Unknown, used, expired, or a first-admin link after someone already set up.
    #[error("This setup link is not valid any more.")]
    InvalidLink,
    #[error("An account with this email address already exists.")]
    EmailTaken,
    #[error("Please correct the highlighted fields.")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl SetupError {
    /// What the setup form shows next to its fields, when the person can correct it;
    /// otherwise the error itself.
    pub fn into_field_errors(self) -> Result<FieldErrors, SetupError> {
        match self {
            SetupError::EmailTaken => {
                let mut errors = FieldErrors::default();
                errors.add("email", SetupError::EmailTaken);
                Ok(errors)
            }
            SetupError::Invalid(errors) => Ok(errors),
            other => Err(other),
        }
    }
}

/// A valid link, as the setup form needs it.
#[derive(Debug, Clone)]
pub enum SetupLink {
    FirstAdmin { org: Organization },
    Account { user: User },
}

/// Issues a fresh first-admin link while the installation has no user; earlier unused
/// links die so only the one printed last works.
pub fn issue_first_admin_link(conn: &mut DbConnection) -> diesel::QueryResult<Option<String>> {
    db::write_tx(conn, |conn| {
        // Instances starting at once on one database issue one link at a time.
        db::platform_lock(conn)?;
        if users::any_exists(conn)? {
            return Ok(None);
        }
        setup_tokens::delete_unused_first_admin(conn)?;
        let token = tokens::generate();
        insert_token(conn, &token, FIRST_ADMIN, None, FIRST_ADMIN_LINK_TTL_HOURS)?;
        Ok(Some(token))
    })
}

/// A one-time link with which an account created without a password sets its name and
/// password (purpose `account`). Answers the raw token; only its hash is stored.
pub fn issue_account_link(conn: &mut DbConnection, user_id: &str) -> diesel::QueryResult<String> {
    let token = tokens::generate();
    insert_token(conn, &token, ACCOUNT, Some(user_id), ACCOUNT_LINK_TTL_HOURS)?;
    Ok(token)
}

fn insert_token(
    conn: &mut DbConnection,
    token: &str,
    purpose: &str,
    user_id: Option<&str>,
    ttl_hours: i64,
) -> diesel::QueryResult<()> {
    let now = db::now();
    setup_tokens::insert(
        conn,
        &NewSetupToken {
            token_hash: &tokens::hash(token),
            purpose,
            user_id,
            org_id: None,
            created_at: now,
            expires_at: now + Duration::hours(ttl_hours),
        },
    )
}

pub fn check_link(conn: &mut DbConnection, token: &str) -> Result<SetupLink, SetupError> {
    let now = db::now();
    let row =
        setup_tokens::find_live(conn, &tokens::hash(token), now)?.ok_or(SetupError::InvalidLink)?;
    match row.purpose.as_str() {
        FIRST_ADMIN => {
            if users::any_exists(conn)? {
                return Err(SetupError::InvalidLink);
            }
            let org = organizations::first(conn)?.ok_or(SetupError::InvalidLink)?;
            Ok(SetupLink::FirstAdmin { org })
        }
        ACCOUNT => {
            let user_id = row.user_id.as_deref().ok_or(SetupError::InvalidLink)?;
            let user = users::find(conn, user_id)?.ok_or(SetupError::InvalidLink)?;
            if !user.is_active() || user.password_hash.is_some() {
                return Err(SetupError::InvalidLink);
            }
            Ok(SetupLink::Account { user })
        }
        _ => Err(SetupError::InvalidLink),
    }
}

/// What the setup form sends, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub org_name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_confirm: String,
}

#[derive(Debug, Clone)]
pub struct ValidSetup {
    /// Only for the first administrator; an account link is bound to its account's email.
    pub email: Option<Email>,
    pub first_name: String,
    pub last_name: String,
    pub org_name: Option<String>,
}

pub fn validate(form: &SetupForm, first_admin: bool) -> Result<ValidSetup, FieldErrors> {
    let mut errors = FieldErrors::default();
    let email = if first_admin {
        errors.check("email", Email::parse_new(&form.email))
    } else {
        None
    };
    let first_name = errors.check("first_name", parse_name(&form.first_name));
    let last_name = errors.check("last_name", parse_name(&form.last_name));
    let org_name = if first_admin && !form.org_name.trim().is_empty() {
        errors.check("org_name", parse_org_name(&form.org_name))
    } else {
        None
    };
    errors.check(
        "password",
        validate_new(&form.password, &form.password_confirm),
    );
    match (errors.is_empty(), first_name, last_name) {
        (true, Some(first_name), Some(last_name)) => Ok(ValidSetup {
            email,
            first_name,
            last_name,
            org_name,
        }),
        _ => Err(errors),
    }
}

pub fn parse_org_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Enter the organization's name.");
    }
    if name.chars().count() > 100 || super::names::hides_text(name) {
        return Err(
            "Use at most 100 characters, none of them control characters or invisible ones, such as a zero-width space or a mark that reverses text.",
        );
    }
    Ok(name.to_string())
}

/// Completes a setup link: consumes it with one conditional UPDATE, then creates the
/// first administrator or sets the account's name and password. All or nothing.
pub fn complete(
    conn: &mut DbConnection,
    token: &str,
    input: &ValidSetup,
    password_hash: &str,
    origin: &Origin,
) -> Result<(User, Organization), SetupError> {
    db::write_tx(conn, |conn| {
        // Two first-admin links (two instances that started at once) completed at once
        // would each find no account yet on PostgreSQL: one at a time.
        db::platform_lock(conn)?;
        let link = check_link(conn, token)?;
        if !setup_tokens::consume(conn, &tokens::hash(token), db::now())? {
            return Err(SetupError::InvalidLink);
        }
        match link {
            SetupLink::FirstAdmin { org } => {
                let email = input.email.as_ref().ok_or(SetupError::InvalidLink)?;
                let user = insert_user(conn, email, input, Some(password_hash), "admin")?;
                let (old_name, old_slug) = (org.name.clone(), org.slug.clone());
                let org = match &input.org_name {
                    Some(name) if name != &org.name => {
                        let slug = unique_slug(conn, &super::slug::from_name(name), &org.id)?;
                        organizations::rename(conn, &org.id, &slug, name)?;
                        organizations::find(conn, &org.id)?.ok_or(SetupError::InvalidLink)?
                    }
                    _ => org,
                };
                join_as_admin(conn, &org, &user)?;
                let mut details = serde_json::json!({ "role": "Admin", "platform_role": "admin" });
                // The trail named the organization as it was made: it says what it became.
                if org.name != old_name {
                    details["old_name"] = old_name.into();
                    details["name"] = org.name.clone().into();
                    details["old_slug"] = old_slug.into();
                    details["slug"] = org.slug.clone().into();
                }
                audit::record(
                    conn,
                    &Event::new("setup.completed", origin)
                        .org(&org.id)
                        .actor(&user.id, &user.email)
                        .target("user", &user.id, &user.email)
                        .details(details),
                )?;
                Ok((user, org))
            }
            SetupLink::Account { user } => {
                users::set_name(conn, &user.id, &input.first_name, &input.last_name)?;
                // The Users tab sorts by the copy on each membership.
                let sort_name = users::sort_key(&input.first_name, &input.last_name);
                memberships::set_sort_name(conn, &user.id, &sort_name)?;
                users::set_password(conn, &user.id, password_hash)?;
                let user = users::find(conn, &user.id)?.ok_or(SetupError::InvalidLink)?;
                let org = memberships::orgs_of_user(conn, &user.id)?
                    .into_iter()
                    .next()
                    .ok_or(SetupError::InvalidLink)?;
                audit::record(
                    conn,
                    &Event::new("account.setup_completed", origin)
                        .actor(&user.id, &user.email)
                        .target("user", &user.id, &user.email),
                )?;
                Ok((user, org))
            }
        }
    })
}

fn unique_slug(
    conn: &mut DbConnection,
    wanted: &str,
    own_org: &str,
) -> diesel::QueryResult<String> {
    let mut candidate = wanted.to_string();
    let mut n = 2;
    loop {
        match organizations::find_by_slug(conn, &candidate)? {
            Some(org) if org.id != own_org => {
                candidate = format!("{wanted}-{n}");
                n += 1;
            }
            _ => return Ok(candidate),
        }
    }
}

fn insert_user(
    conn: &mut DbConnection,
    email: &Email,
    input: &ValidSetup,
    password_hash: Option<&str>,
    platform_role: &str,
) -> Result<User, SetupError> {
    let name = (input.first_name.as_str(), input.last_name.as_str());
    super::new_account::create(conn, email.as_str(), name, password_hash, platform_role)?
        .ok_or(SetupError::EmailTaken)
}

fn join_as_admin(
    conn: &mut DbConnection,
    org: &Organization,
    user: &User,
) -> Result<(), SetupError> {
    let admin = roles::find_by_key(conn, &org.id, ADMIN)?.ok_or(SetupError::InvalidLink)?;
    memberships::insert(conn, &org.id, user, &admin.id)?;
    Ok(())
}

/// What `create-admin` did.
pub struct CreatedAdmin {
    pub user: User,
    pub org: Organization,
    /// Present when no password was given: the person sets one through this link.
    pub setup_token: Option<String>,
}

/// `portcullis create-admin`: a platform administrator who is also Admin of `org_slug`
/// (or of the first organization).
pub fn create_admin(
    conn: &mut DbConnection,
    email: &Email,
    org_slug: Option<&str>,
    password_hash: Option<&str>,
) -> Result<CreatedAdmin, SetupError> {
    crate::domain::orgs::ensure_first(conn)?;
    db::write_tx(conn, |conn| {
        let org = match org_slug {
            Some(slug) => organizations::find_by_slug(conn, slug)?,
            None => organizations::first(conn)?,
        }
        .ok_or_else(|| {
            let mut errors = FieldErrors::default();
            errors.add("org", "No organization has this slug.");
            SetupError::Invalid(errors)
        })?;
        let input = ValidSetup {
            email: Some(email.clone()),
            first_name: String::new(),
            last_name: String::new(),
            org_name: None,
        };
        let user = insert_user(conn, email, &input, password_hash, "admin")?;
        join_as_admin(conn, &org, &user)?;
        let setup_token = match password_hash {
            Some(_) => None,
            None => {
                let token = tokens::generate();
                insert_token(
                    conn,
                    &token,
                    ACCOUNT,
                    Some(&user.id),
                    ACCOUNT_LINK_TTL_HOURS,
                )?;
                Some(token)
            }
        };
        audit::record(
            conn,
            &Event::new("user.created", &Origin::default())
                .org(&org.id)
                .target("user", &user.id, &user.email)
                .details(
                    serde_json::json!({ "via": "cli", "role": "Admin", "platform_role": "admin" }),
                ),
        )?;
        Ok(CreatedAdmin {
            user,
            org,
            setup_token,
        })
    })
}
