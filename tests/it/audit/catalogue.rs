//! Every action the code records has a catalogue entry (a sentence and a place in the
//! Action filter), found by reading `src/` as `layers.rs` does.
//!
//! An action reaches the audit writer as a string literal: passed straight to
//! `Event::new` or to a helper whose name says "event", or first bound to a constant or
//! chosen in a `match`. The literals passed straight tell which prefixes (`member.`,
//! `pool.`, …) are audit actions; every other literal shaped like an action with one of
//! those prefixes counts too, except permission names (`audit.read`).

use std::collections::BTreeSet;
use std::path::Path;

use portcullis::domain::audit_catalogue::{find_action, is_action_name};
use portcullis::domain::roles::Permission;
use syn::visit::Visit;

use crate::layers::{is_cfg_test, rust_files};

#[derive(Default)]
struct Literals {
    /// First arguments of `Event::new(..)` and `*event*(..)` calls.
    passed: BTreeSet<String>,
    /// Every other literal shaped like an action name.
    shaped: BTreeSet<String>,
}

fn callee_records(func: &syn::Expr) -> bool {
    let syn::Expr::Path(p) = func else {
        return false;
    };
    let segments: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    match segments.as_slice() {
        [.., ty, last] if ty == "Event" && last == "new" => true,
        [.., last] => last.to_lowercase().contains("event"),
        [] => false,
    }
}

impl<'ast> Visit<'ast> for Literals {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }
    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_fn(self, item);
        }
    }
    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if callee_records(&call.func)
            && let Some(syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            })) = call.args.first()
        {
            self.passed.insert(s.value());
        }
        syn::visit::visit_expr_call(self, call);
    }
    fn visit_lit_str(&mut self, lit: &'ast syn::LitStr) {
        let value = lit.value();
        if is_action_name(&value) && value.matches('.').count() == 1 {
            self.shaped.insert(value);
        }
    }
}

/// The actions the code under `src/` records, as far as reading it tells.
fn recorded_actions() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Literals::default();
    for file in files {
        if file.ends_with("domain/audit_catalogue.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        found.visit_file(&parsed);
    }
    let prefixes: BTreeSet<&str> = found
        .passed
        .iter()
        .filter_map(|a| a.split('.').next())
        .collect();
    let permissions: BTreeSet<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    let mut actions = found.passed.clone();
    actions.extend(
        found
            .shaped
            .iter()
            .filter(|a| {
                let prefix = a.split('.').next().unwrap_or("");
                prefixes.contains(prefix) && !permissions.contains(a.as_str())
            })
            .cloned(),
    );
    actions
}

#[test]
fn every_recorded_action_has_a_catalogue_entry() {
    let actions = recorded_actions();
    // The scan sees each way an action reaches the writer: straight, through a helper,
    // through a constant, through a `match`.
    for known in [
        "member.deactivated",
        "group.member_added",
        "role.created",
        "user.two_factor_reset",
        "pool.moved",
    ] {
        assert!(
            actions.contains(known),
            "the scan missed {known}: {actions:?}"
        );
    }
    let missing: Vec<&String> = actions
        .iter()
        .filter(|a| find_action(a).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "actions recorded in src/ without a sentence in src/domain/audit_catalogue.rs: {missing:?}"
    );
}
