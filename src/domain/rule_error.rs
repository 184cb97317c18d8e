//! The one error of the organization's rules: members, groups, pools, custom roles and
//! platform administration all refuse in these terms, and `crate::error` maps it to a
//! response once.

use super::FieldErrors;

/// Why a rule refused an action.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "An organization must keep at least one active admin. Make someone else an admin first."
    )]
    LastAdmin,
    #[error("{0}")]
    Conflict(String),
    #[error("Please correct the highlighted fields.")]
    Invalid(FieldErrors),
    /// Changing one's own role needs its own, explicit confirmation.
    #[error("Confirm that you want to change your own role from {from} to {to}.")]
    ConfirmOwnRole { from: String, to: String },
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl RuleError {
    pub(crate) fn invalid(field: &'static str, message: &str) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        RuleError::Invalid(errors)
    }
}
