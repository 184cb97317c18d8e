//! Validated types and the rules of the portal, free of HTTP so they are unit-tested alone.

pub mod access_until;
pub mod account;
pub mod api_tokens;
pub mod audit_catalogue;
pub mod audit_csv;
pub mod audit_query;
pub mod custom_roles;
pub mod email;
pub mod expiry;
pub mod groups;
pub mod input;
pub mod invitations;
pub mod member_list;
pub mod member_picker;
pub mod member_profile;
pub mod member_search;
pub mod members;
pub mod names;
pub mod new_account;
pub mod notices;
pub mod orgs;
pub mod password;
pub mod password_reset;
pub mod platform;
pub mod policy;
pub mod pools;
pub mod provisioning;
pub mod redirect;
pub mod roles;
pub mod rule_error;
pub mod scim;
pub mod seed_audit;
pub mod sessions;
pub mod setup;
pub mod slug;
#[cfg(test)]
pub(crate) mod testing;
pub mod timefmt;
pub mod tokens;
pub mod two_factor;
pub mod two_factor_policy;
pub mod two_factor_reset;
pub mod withdrawals;

use std::collections::BTreeMap;

pub use rule_error::RuleError;

/// Messages keyed by form field, shown next to the field when a form is re-rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl ToString) {
        self.0.entry(field).or_insert_with(|| message.to_string());
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// The errors of a form that names a field otherwise: `from`'s message said at `to`.
    pub fn moved(mut self, from: &str, to: &'static str) -> Self {
        if let Some(message) = self.0.remove(from) {
            self.0.entry(to).or_insert(message);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn first(&self) -> Option<&str> {
        self.0.values().next().map(String::as_str)
    }

    /// Records the error of `result` under `field` and hands back its value, if any.
    pub fn check<T, E: ToString>(
        &mut self,
        field: &'static str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }
}
