//! SCIM provisioning (issue 15, item 2): what an identity provider's requests do to the
//! organization's members and groups. The portal's own rules run unchanged underneath:
//! the token acts as a member manager at the rank of its role (`TokenActor::as_actor`),
//! through the same functions the pages use, so the last-admin rule, rank limits and
//! audit events hold in the same transaction as each change.
//!
//! The SCIM wire format (filters, PATCH paths, attribute projection, discovery) is parsed
//! in `domain::scim`; this module applies it.

pub mod groups;
pub mod search;
pub mod users;

use chrono::NaiveDateTime;
use serde_json::Value;

use super::RuleError;
use super::api_tokens::TokenActor;
use super::scim::filter::FilterError;
use super::scim::patch::PatchError;
use crate::audit::Origin;
use crate::db::{self, DbConnection, organizations};

/// Who calls, from where, when, and the base URL resources are located under.
#[derive(Debug, Clone)]
pub struct Call {
    pub token: TokenActor,
    pub origin: Origin,
    pub now: NaiveDateTime,
    /// e.g. `https://portal.example.com/scim/v2`, for `meta.location`.
    pub base: String,
    /// Most members (or groups) a filter that no index narrows may read in one request.
    pub scan_limit: i64,
}

/// Why a SCIM request was refused, in SCIM's terms (RFC 7644 §3.12).
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    #[error("Resource not found.")]
    NotFound,
    /// 409 with `scimType: uniqueness`.
    #[error("{0}")]
    Uniqueness(String),
    /// 409 without a `scimType`: a rule of the portal refused (the last admin).
    #[error("{0}")]
    Conflict(String),
    /// 400 `invalidValue`.
    #[error("{0}")]
    InvalidValue(String),
    /// 400 `invalidSyntax`.
    #[error("{0}")]
    InvalidSyntax(String),
    /// 400 `invalidFilter`.
    #[error("{0}")]
    InvalidFilter(String),
    /// 400 `tooMany`: the filter would read more than the server reads for one request.
    #[error("{0}")]
    TooMany(String),
    /// 400 `invalidPath`.
    #[error("{0}")]
    InvalidPath(String),
    /// 400 `noTarget`.
    #[error("{0}")]
    NoTarget(String),
    /// 400 `mutability`.
    #[error("{0}")]
    Mutability(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 412: `If-Match` names another version.
    #[error("The resource has changed since the version given in If-Match.")]
    PreconditionFailed,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl ScimError {
    /// The `scimType` of the error body, when SCIM defines one.
    pub fn scim_type(&self) -> Option<&'static str> {
        Some(match self {
            ScimError::Uniqueness(_) => "uniqueness",
            ScimError::InvalidValue(_) => "invalidValue",
            ScimError::InvalidSyntax(_) => "invalidSyntax",
            ScimError::InvalidFilter(_) => "invalidFilter",
            ScimError::TooMany(_) => "tooMany",
            ScimError::InvalidPath(_) => "invalidPath",
            ScimError::NoTarget(_) => "noTarget",
            ScimError::Mutability(_) => "mutability",
            _ => return None,
        })
    }
}

impl From<RuleError> for ScimError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::NotFound => ScimError::NotFound,
            RuleError::Forbidden(m) => ScimError::Forbidden(m),
            e @ (RuleError::LastAdmin | RuleError::ConfirmOwnRole { .. }) => {
                ScimError::Conflict(e.to_string())
            }
            RuleError::Conflict(m) => ScimError::Conflict(m),
            RuleError::Invalid(errors) => ScimError::InvalidValue(
                errors
                    .first()
                    .unwrap_or("A value is not valid.")
                    .to_string(),
            ),
            RuleError::Db(e) => ScimError::Db(e),
        }
    }
}

impl From<PatchError> for ScimError {
    fn from(e: PatchError) -> Self {
        let message = e.to_string();
        match e {
            PatchError::InvalidSyntax(_) => ScimError::InvalidSyntax(message),
            PatchError::InvalidPath(_) => ScimError::InvalidPath(message),
            PatchError::InvalidValue(_) => ScimError::InvalidValue(message),
            PatchError::NoTarget(_) => ScimError::NoTarget(message),
            PatchError::Mutability(_) => ScimError::Mutability(message),
        }
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::InvalidFilter(e.to_string())
    }
}

/// In one transaction that holds the organization's lock, as every member change does
/// (so the last-admin rule cannot be raced), for a token that still acts once it has the
/// lock: its maker demoted or removed while the request waited must not act through it.
pub fn in_org<T>(
    conn: &mut DbConnection,
    call: &Call,
    f: impl FnOnce(&mut DbConnection) -> Result<T, ScimError>,
) -> Result<T, ScimError> {
    db::write_tx(conn, |conn| {
        organizations::lock(conn, &call.token.org_id)?;
        if !crate::domain::api_tokens::still_acts(conn, &call.token)? {
            return Err(ScimError::Forbidden(
                "The token's maker no longer holds what it holds: nothing was changed.".into(),
            ));
        }
        f(conn)
    })
}

/// A weak version tag of a resource's content (without `meta`), for `ETag` and
/// `meta.version`: it changes whenever anything the IdP can see changes.
pub fn version_of(resource: &Value) -> String {
    let mut content = resource.clone();
    if let Some(obj) = content.as_object_mut() {
        obj.remove("meta");
    }
    let hash = super::tokens::hash(&content.to_string());
    format!("W/\"{}\"", &hash[..16])
}

/// Refuses a change made against another version than the current one (`If-Match`).
pub fn check_version(current: &Value, if_match: Option<&str>) -> Result<(), ScimError> {
    match if_match {
        Some(wanted) if current["meta"]["version"].as_str() != Some(wanted) => {
            Err(ScimError::PreconditionFailed)
        }
        _ => Ok(()),
    }
}

/// The value of `key` in a JSON object, the key compared case-insensitively (SCIM
/// attribute names are).
pub fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// A boolean as IdPs send it: `true`, or Entra's `"True"` / `"false"` strings.
pub fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_version_ignores_meta_and_follows_content() {
        let a = json!({"id": "1", "active": true, "meta": {"created": "x"}});
        let b = json!({"id": "1", "active": true, "meta": {"created": "y"}});
        let c = json!({"id": "1", "active": false});
        assert_eq!(version_of(&a), version_of(&b));
        assert_ne!(version_of(&a), version_of(&c));
        assert!(version_of(&a).starts_with("W/\""));
    }

    #[test]
    fn booleans_come_as_json_or_as_entra_strings() {
        assert_eq!(as_bool(&json!(false)), Some(false));
        assert_eq!(as_bool(&json!("False")), Some(false));
        assert_eq!(as_bool(&json!("TRUE")), Some(true));
        assert_eq!(as_bool(&json!("no")), None);
        assert_eq!(
            get_ci(&json!({"UserName": "a"}), "username"),
            Some(&json!("a"))
        );
    }

    #[test]
    fn the_last_admin_rule_reads_as_a_conflict_with_its_reason() {
        let e = ScimError::from(RuleError::LastAdmin);
        assert!(matches!(&e, ScimError::Conflict(m) if m.contains("at least one active admin")));
        assert_eq!(e.scim_type(), None);
    }
}
