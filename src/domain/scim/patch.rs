//! SCIM PATCH (RFC 7644 §3.5.2): reading a PatchOp request and applying its operations
//! to a User or Group as JSON, including the shapes Okta and Microsoft Entra send
//! (pathless `replace` of `{"active": false}`, capitalised `"Replace"`, `"False"` as a
//! string, dotted keys in a pathless value, `emails[type eq "work"].value`,
//! `members[value eq "…"]`).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::discovery;
use super::filter::{AttrPath, CompareOp, Filter, FilterError, Parser};

pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Operations in one request before it is refused: every IdP sends a handful.
/// Okta and Entra send a handful; each operation walks the resource it changes, inside the
/// organization's write transaction.
const MAX_OPERATIONS: usize = 100;
/// Most values one request's `add` operations list in all (array elements at any depth,
/// a lone value counting one): each is compared with what the resource holds.
pub const MAX_LISTED: usize = 1000;
/// Most attributes one object in a value may name: no SCIM resource has more, and each is
/// looked up among the resource's own.
const MAX_KEYS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// `PATH = attrPath / valuePath [subAttr]`: `name.givenName`, `members[value eq "x"]`,
/// `emails[type eq "work"].value`, `urn:…:User:active`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after the bracket (lower-case); `name.givenName` keeps its
    /// sub-attribute in `attr.sub` instead.
    pub sub: Option<String>,
}

impl PatchPath {
    pub fn parse(input: &str) -> Result<PatchPath, FilterError> {
        let mut p = Parser::new(input.trim());
        let attr = p.attr_path()?;
        let mut filter = None;
        let mut sub = None;
        if attr.sub.is_none() && p.peek_is('[') {
            filter = Some(p.bracket()?);
            sub = p.sub_attr()?;
        }
        p.expect_end()?;
        Ok(PatchPath { attr, filter, sub })
    }

    /// The sub-attribute this path ends on, wherever it was written.
    fn leaf(&self) -> Option<&str> {
        self.sub.as_deref().or(self.attr.sub.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub op: Op,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Why a PATCH was refused; `scim_type` is the RFC 7644 §3.12 code for the 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    NoTarget(String),
    #[error("{0}")]
    Mutability(String),
}

impl PatchError {
    pub fn scim_type(&self) -> &'static str {
        match self {
            PatchError::InvalidSyntax(_) => "invalidSyntax",
            PatchError::InvalidPath(_) => "invalidPath",
            PatchError::InvalidValue(_) => "invalidValue",
            PatchError::NoTarget(_) => "noTarget",
            PatchError::Mutability(_) => "mutability",
        }
    }
}

/// `true`, `false`, and the strings Entra sends for them ("True", "False").
pub fn coerce_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Reads a PatchOp request body.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOp>, PatchError> {
    let syntax = |m: &str| PatchError::InvalidSyntax(m.to_owned());
    if !body.is_object() {
        return Err(syntax("The request body must be a JSON object."));
    }
    let lists_urn = get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP_URN))
            })
        });
    if !lists_urn {
        return Err(syntax(&format!("\"schemas\" must list {PATCH_OP_URN}.")));
    }
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| syntax("\"Operations\" must be a non-empty array."))?;
    if ops.len() > MAX_OPERATIONS {
        return Err(syntax(&format!(
            "A request may carry at most {MAX_OPERATIONS} operations."
        )));
    }
    let is_add = |op: &&Value| {
        get_ci(op, "op")
            .and_then(Value::as_str)
            .is_some_and(|o| o.eq_ignore_ascii_case("add"))
    };
    let listed: usize = ops
        .iter()
        .filter(is_add)
        .filter_map(|op| get_ci(op, "value"))
        .map(|value| listed_in(value).max(1))
        .sum();
    if listed > MAX_LISTED {
        return Err(PatchError::InvalidValue(format!(
            "A request may list at most {MAX_LISTED} values; this one lists {listed}. Send the rest in further requests."
        )));
    }
    if ops
        .iter()
        .filter_map(|op| get_ci(op, "value"))
        .any(|value| widest_object(value) > MAX_KEYS)
    {
        return Err(PatchError::InvalidValue(format!(
            "An object in a value may name at most {MAX_KEYS} attributes."
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_operation(i + 1, op))
        .collect()
}

/// The most members any object in `value` has, at any depth.
fn widest_object(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.iter().map(widest_object).max().unwrap_or(0),
        Value::Object(map) => map
            .values()
            .map(widest_object)
            .max()
            .unwrap_or(0)
            .max(map.len()),
        _ => 0,
    }
}

/// How many array elements `value` holds, at any depth.
fn listed_in(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.len() + items.iter().map(listed_in).sum::<usize>(),
        Value::Object(map) => map.values().map(listed_in).sum(),
        _ => 0,
    }
}

fn parse_operation(n: usize, raw: &Value) -> Result<PatchOp, PatchError> {
    if !raw.is_object() {
        return Err(PatchError::InvalidSyntax(format!(
            "Operation {n} must be a JSON object."
        )));
    }
    let op = match get_ci(raw, "op").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("add") => Op::Add,
        Some(s) if s.eq_ignore_ascii_case("remove") => Op::Remove,
        Some(s) if s.eq_ignore_ascii_case("replace") => Op::Replace,
        _ => {
            return Err(PatchError::InvalidSyntax(format!(
                "Operation {n}: \"op\" must be add, remove or replace."
            )));
        }
    };
    let path = match get_ci(raw, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            PatchPath::parse(s)
                .map_err(|e| PatchError::InvalidPath(format!("Operation {n}: {e}")))?,
        ),
        Some(_) => {
            return Err(PatchError::InvalidPath(format!(
                "Operation {n}: \"path\" must be a string."
            )));
        }
    };
    let value = get_ci(raw, "value").cloned();
    match op {
        Op::Remove if path.is_none() => Err(PatchError::NoTarget(format!(
            "Operation {n}: remove needs a \"path\"."
        ))),
        Op::Add | Op::Replace if value.is_none() => Err(PatchError::InvalidValue(format!(
            "Operation {n}: {} needs a \"value\".",
            if op == Op::Add { "add" } else { "replace" }
        ))),
        _ => Ok(PatchOp { op, path, value }),
    }
}

/// Applies `ops` in order to a User or Group; all or nothing (RFC 7644 §3.5.2: the
/// request is atomic), so on error `resource` is left as it was.
pub fn apply_patch(resource: &mut Value, ops: &[PatchOp]) -> Result<(), PatchError> {
    let mut work = resource.clone();
    if !work.is_object() {
        return Err(PatchError::InvalidSyntax(
            "Only a resource object can be patched.".into(),
        ));
    }
    for op in ops {
        apply_one(&mut work, op)?;
    }
    *resource = work;
    Ok(())
}

fn apply_one(root: &mut Value, op: &PatchOp) -> Result<(), PatchError> {
    let value = op.value.clone().unwrap_or(Value::Null);
    match &op.path {
        Some(path) => apply_at(root, op.op, path, value),
        None => {
            let Value::Object(attrs) = value else {
                return Err(PatchError::InvalidValue(
                    "Without a \"path\", the value must be an object of attributes.".into(),
                ));
            };
            for (key, v) in attrs {
                apply_pathless(root, op.op, None, &key, v)?;
            }
            Ok(())
        }
    }
}

/// One key of a pathless value: an attribute (`active`), a dotted one (`name.givenName`,
/// as Entra sends), a URN-prefixed one, or a whole extension object under its URN.
fn apply_pathless(
    root: &mut Value,
    op: Op,
    schema: Option<&str>,
    key: &str,
    value: Value,
) -> Result<(), PatchError> {
    if schema.is_none() && key.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    if schema.is_none() && discovery::is_schema_urn(key) {
        let Value::Object(attrs) = value else {
            return Err(PatchError::InvalidValue(format!(
                "The value of \"{key}\" must be an object of attributes."
            )));
        };
        for (k, v) in attrs {
            apply_pathless(root, op, Some(key), &k, v)?;
        }
        return Ok(());
    }
    let text = match schema {
        Some(urn) => format!("{urn}:{key}"),
        None => key.to_owned(),
    };
    let path = PatchPath::parse(&text)
        .map_err(|e| PatchError::InvalidPath(format!("\"{key}\" in the value: {e}")))?;
    apply_at(root, op, &path, value)
}

fn apply_at(root: &mut Value, op: Op, path: &PatchPath, value: Value) -> Result<(), PatchError> {
    let name = path.attr.name.clone();
    let value = coerce_attr(path.leaf().unwrap_or(&name), value)?;
    guard(root, op, path, &value)?;
    let Some(container) = container(root, &path.attr, op != Op::Remove) else {
        return Ok(());
    };
    let key = key_in(container, &name, path.attr.original_name());
    match &path.filter {
        Some(filter) => apply_filtered(container, &key, op, path, filter, value),
        None => match path.attr.sub.as_deref() {
            None => apply_attribute(container, &key, op, value),
            Some(sub) => apply_sub(container, &key, op, path, sub, value),
        },
    }
}

/// readOnly attributes (RFC 7643 `mutability`) refuse a change; sending their current
/// value back, as clients that PATCH a whole resource do, is not a change.
fn guard(root: &Value, op: Op, path: &PatchPath, value: &Value) -> Result<(), PatchError> {
    if !path.attr.in_core_schema() {
        return Ok(());
    }
    let name = path.attr.name.as_str();
    let read_only = matches!(name, "id" | "meta" | "groups" | "schemas");
    if read_only {
        let same = path.filter.is_none()
            && path.attr.sub.is_none()
            && op != Op::Remove
            && get_ci(root, name) == Some(value);
        if !same {
            return Err(PatchError::Mutability(format!(
                "\"{}\" is read-only.",
                path.attr
            )));
        }
    }
    let required = if is_group(root) {
        "displayname"
    } else {
        "username"
    };
    let removes = op == Op::Remove || value.is_null();
    if removes && name == required && path.filter.is_none() && path.attr.sub.is_none() {
        return Err(PatchError::InvalidValue(format!(
            "\"{}\" is required and cannot be removed.",
            path.attr
        )));
    }
    Ok(())
}

fn is_group(root: &Value) -> bool {
    get_ci(root, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(discovery::GROUP_SCHEMA))
            })
        })
}

/// The object an attribute lives in: the resource itself for core attributes, the
/// extension object under its URN otherwise (created, and listed in `schemas`, when
/// something is being written to it).
fn container<'v>(
    root: &'v mut Value,
    attr: &AttrPath,
    create: bool,
) -> Option<&'v mut Map<String, Value>> {
    if attr.in_core_schema() {
        return root.as_object_mut();
    }
    let urn_text = attr.text[..attr.text.rfind(':')?].to_owned();
    let map = root.as_object_mut()?;
    let key = match map.keys().find(|k| k.eq_ignore_ascii_case(&urn_text)) {
        Some(k) => k.clone(),
        None if create => {
            let urn = discovery::canonical_schema_urn(&urn_text).unwrap_or(&urn_text);
            let schemas = map
                .entry("schemas")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = schemas
                && !list
                    .iter()
                    .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
            {
                list.push(Value::String(urn.to_owned()));
            }
            map.insert(urn.to_owned(), Value::Object(Map::new()));
            urn.to_owned()
        }
        None => return None,
    };
    map.get_mut(&key)?.as_object_mut()
}

/// Add, replace or remove a whole attribute.
fn apply_attribute(
    container: &mut Map<String, Value>,
    key: &str,
    op: Op,
    value: Value,
) -> Result<(), PatchError> {
    if op == Op::Remove {
        return remove_listed(container, key, value);
    }
    if is_unassigned(&value) {
        container.remove(key);
        return Ok(());
    }
    match (container.get_mut(key), value) {
        (Some(Value::Array(existing)), value) if op == Op::Add => {
            let added = match value {
                Value::Array(items) => items,
                single => vec![single],
            };
            // Compared by their text, in a set: a growing list searched for every item
            // added made a large add quadratic.
            let mut present: HashSet<String> = existing.iter().map(Value::to_string).collect();
            for item in added.into_iter().map(canonical_keys) {
                if item_is_primary(&item) {
                    clear_primary(existing);
                    present = existing.iter().map(Value::to_string).collect();
                }
                if present.insert(item.to_string()) {
                    existing.push(item);
                }
            }
        }
        (Some(Value::Object(existing)), Value::Object(new)) => merge(existing, new),
        (_, value) => {
            container.insert(key.to_owned(), canonical_keys(value));
        }
    }
    Ok(())
}

/// `remove` of a whole attribute, or — as Entra sends for groups — of the listed
/// elements of a multi-valued attribute (`"path": "members", "value": [{"value": "…"}]`).
fn remove_listed(
    container: &mut Map<String, Value>,
    key: &str,
    value: Value,
) -> Result<(), PatchError> {
    let listed: Vec<Value> = match value {
        Value::Null => {
            container.remove(key);
            return Ok(());
        }
        Value::Array(items) => items,
        single => vec![single],
    };
    if let Some(Value::Array(existing)) = container.get_mut(key) {
        // An element goes when a listed one names its value, or equals it whole.
        let values: HashSet<String> = listed
            .iter()
            .filter_map(|l| get_ci(l, "value"))
            .map(Value::to_string)
            .collect();
        let whole: HashSet<String> = listed.iter().map(Value::to_string).collect();
        existing.retain(|item| {
            let named = get_ci(item, "value").is_some_and(|v| values.contains(&v.to_string()));
            !named && !whole.contains(&item.to_string())
        });
        if existing.is_empty() {
            container.remove(key);
        }
    } else {
        container.remove(key);
    }
    Ok(())
}

/// `name.givenName`: a sub-attribute of a single-valued complex attribute.
fn apply_sub(
    container: &mut Map<String, Value>,
    key: &str,
    op: Op,
    path: &PatchPath,
    sub: &str,
    value: Value,
) -> Result<(), PatchError> {
    if matches!(container.get(key), Some(Value::Array(_))) {
        return Err(PatchError::InvalidPath(format!(
            "\"{}\" is multi-valued: select its values with a filter, as in {}[type eq \"work\"].{}.",
            path.attr.original_name(),
            path.attr.original_name(),
            path.attr.original_sub().unwrap_or(sub)
        )));
    }
    if op == Op::Remove || is_unassigned(&value) {
        if let Some(Value::Object(obj)) = container.get_mut(key) {
            remove_ci(obj, sub);
            if obj.is_empty() {
                container.remove(key);
            }
        }
        return Ok(());
    }
    let entry = container
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    let obj = entry.as_object_mut().expect("made an object above");
    let sub_key = key_in(obj, sub, path.attr.original_sub().unwrap_or(sub));
    obj.insert(sub_key, canonical_keys(value));
    Ok(())
}

/// `emails[type eq "work"]` and `emails[type eq "work"].value`.
fn apply_filtered(
    container: &mut Map<String, Value>,
    key: &str,
    op: Op,
    path: &PatchPath,
    filter: &Filter,
    value: Value,
) -> Result<(), PatchError> {
    let parent = path.attr.name.as_str();
    if op != Op::Remove && value.is_null() {
        return apply_filtered(container, key, Op::Remove, path, filter, Value::Null);
    }
    let items = match container.get_mut(key) {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(PatchError::InvalidPath(format!(
                "\"{}\" is not multi-valued; a filter in brackets cannot select from it.",
                path.attr
            )));
        }
        None if op == Op::Remove => return Ok(()),
        None => {
            container.insert(key.to_owned(), Value::Array(Vec::new()));
            match container.get_mut(key) {
                Some(Value::Array(items)) => items,
                _ => unreachable!("inserted an array above"),
            }
        }
    };
    let hits: Vec<usize> = (0..items.len())
        .filter(|&i| filter.matches_element(&items[i], parent))
        .collect();
    match op {
        Op::Remove => match &path.sub {
            None => {
                let hits: std::collections::HashSet<usize> = hits.into_iter().collect();
                let mut i = 0;
                items.retain(|_| {
                    i += 1;
                    !hits.contains(&(i - 1))
                });
            }
            Some(sub) => {
                for &i in &hits {
                    if let Value::Object(obj) = &mut items[i] {
                        remove_ci(obj, sub);
                    }
                }
            }
        },
        Op::Add | Op::Replace => {
            if hits.is_empty() {
                let mut element = template(filter).ok_or_else(|| {
                    PatchError::NoTarget(format!(
                        "No value of \"{}\" matches [{filter}].",
                        path.attr
                    ))
                })?;
                write_element(&mut element, path.sub.as_deref(), value)?;
                if item_is_primary(&Value::Object(element.clone())) {
                    clear_primary(items);
                }
                items.push(Value::Object(element));
            } else {
                for &i in &hits {
                    let Value::Object(element) = &mut items[i] else {
                        return Err(PatchError::InvalidPath(format!(
                            "The values of \"{}\" have no sub-attributes.",
                            path.attr
                        )));
                    };
                    write_element(element, path.sub.as_deref(), value.clone())?;
                }
            }
        }
    }
    if items.is_empty() {
        container.remove(key);
    }
    Ok(())
}

fn write_element(
    element: &mut Map<String, Value>,
    sub: Option<&str>,
    value: Value,
) -> Result<(), PatchError> {
    match (sub, value) {
        (Some(sub), value) => {
            let k = key_in(element, sub, sub);
            element.insert(k, canonical_keys(value));
        }
        (None, Value::Object(new)) => merge(element, new),
        (None, _) => {
            return Err(PatchError::InvalidValue(
                "A value selected by a filter is replaced by an object of its sub-attributes."
                    .into(),
            ));
        }
    }
    Ok(())
}

/// The element a filter like `type eq "work"` (or a conjunction of such equalities)
/// describes, so a write to a value that does not exist yet creates it.
fn template(filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.sub.is_none() && !value.is_null() => {
            let mut m = Map::new();
            m.insert(canonical(&path.name, path.original_name()), value.clone());
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = template(a)?;
            m.extend(template(b)?);
            Some(m)
        }
        _ => None,
    }
}

/// Sub-attributes in `new` replace or join those in `existing`; others stay
/// (RFC 7644 §3.5.2.3 for complex attributes).
fn merge(existing: &mut Map<String, Value>, new: Map<String, Value>) {
    for (k, v) in new {
        let key = key_in(existing, &k.to_ascii_lowercase(), &k);
        if is_unassigned(&v) {
            existing.remove(&key);
        } else {
            existing.insert(key, canonical_keys(v));
        }
    }
}

/// Entra sends booleans as "True"/"False"; everything else keeps its JSON type.
fn coerce_attr(name: &str, value: Value) -> Result<Value, PatchError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|i| coerce_attr(name, i))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| coerce_attr(&k, v).map(|v| (k, v)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        Value::Null => Ok(Value::Null),
        other if discovery::is_boolean_attribute(name) => {
            coerce_bool(&other).map(Value::Bool).ok_or_else(|| {
                PatchError::InvalidValue(format!("\"{name}\" must be true or false, not {other}."))
            })
        }
        other => Ok(other),
    }
}

/// Keys of a written object spelled as the schema spells them (`givenname` → `givenName`).
/// Null sub-attributes are dropped, as unassigned (Entra sends `"$ref": null` in members).
fn canonical_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (canonical(&k.to_ascii_lowercase(), &k), canonical_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_keys).collect()),
        other => other,
    }
}

fn canonical(lower: &str, original: &str) -> String {
    discovery::canonical_name(lower)
        .map(str::to_owned)
        .unwrap_or_else(|| original.to_owned())
}

/// The key under which `lower` lives in `map` (whatever its case), or the schema's
/// spelling for a new one.
fn key_in(map: &Map<String, Value>, lower: &str, original: &str) -> String {
    map.keys()
        .find(|k| k.eq_ignore_ascii_case(lower))
        .cloned()
        .unwrap_or_else(|| canonical(lower, original))
}

fn remove_ci(map: &mut Map<String, Value>, lower: &str) {
    let keys: Vec<String> = map
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(lower))
        .cloned()
        .collect();
    for k in keys {
        map.remove(&k);
    }
}

fn get_ci<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    super::filter::get_ci(value, name)
}

/// RFC 7643 §2.5: null and an empty array mean "unassigned".
fn is_unassigned(value: &Value) -> bool {
    value.is_null() || value.as_array().is_some_and(Vec::is_empty)
}

fn item_is_primary(item: &Value) -> bool {
    get_ci(item, "primary").and_then(coerce_bool) == Some(true)
}

/// RFC 7643 §2.4: "primary" is true on at most one value.
fn clear_primary(items: &mut [Value]) {
    for item in items {
        if let Value::Object(obj) = item {
            let keys: Vec<String> = obj
                .keys()
                .filter(|k| k.eq_ignore_ascii_case("primary"))
                .cloned()
                .collect();
            for k in keys {
                obj.insert(k, Value::Bool(false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@home.org", "type": "home"}
            ],
            "meta": {"resourceType": "User"}
        })
    }

    fn group() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "g1",
            "displayName": "Engineering",
            "members": [
                {"value": "u1", "display": "Barbara"},
                {"value": "u2", "display": "Kim"},
                {"value": "u3"}
            ]
        })
    }

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_URN], "Operations": ops})
    }

    fn patched(mut resource: Value, ops: Value) -> Value {
        let ops = parse_patch(&body(ops)).unwrap_or_else(|e| panic!("parse: {e}"));
        apply_patch(&mut resource, &ops).unwrap_or_else(|e| panic!("apply: {e}"));
        resource
    }

    fn refused(resource: Value, ops: Value) -> PatchError {
        let mut r = resource.clone();
        let err = parse_patch(&body(ops))
            .and_then(|ops| apply_patch(&mut r, &ops))
            .unwrap_err();
        assert_eq!(r, resource, "a refused PATCH changes nothing");
        err
    }

    #[test]
    fn paths_read_attribute_filter_and_sub_attribute() {
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr, AttrPath::parse("emails").unwrap());
        assert_eq!(
            p.filter,
            Some(super::super::filter::parse(r#"type eq "work""#).unwrap())
        );
        assert_eq!(p.sub.as_deref(), Some("value"));

        let p = PatchPath::parse(r#"members[value eq "2819c223"]"#).unwrap();
        assert!(p.filter.is_some() && p.sub.is_none());

        let p = PatchPath::parse("name.givenName").unwrap();
        assert_eq!(p.attr.sub.as_deref(), Some("givenname"));
        assert!(p.filter.is_none() && p.sub.is_none());

        let p = PatchPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:active").unwrap();
        assert_eq!(p.attr.name, "active");
        assert!(p.attr.in_core_schema());

        for bad in [
            "",
            "emails[type eq",
            "emails[type eq \"work\"]value",
            "a b",
            "name.givenName[x eq 1]",
        ] {
            assert!(PatchPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_must_be_a_patch_op_with_operations() {
        let no_schema = json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]});
        assert_eq!(
            parse_patch(&no_schema).unwrap_err().scim_type(),
            "invalidSyntax"
        );
        assert_eq!(
            parse_patch(&body(json!([]))).unwrap_err().scim_type(),
            "invalidSyntax"
        );
        let unknown = body(json!([{"op": "merge", "path": "title", "value": "x"}]));
        assert_eq!(
            parse_patch(&unknown).unwrap_err().scim_type(),
            "invalidSyntax"
        );
        let bad_path = body(json!([{"op": "add", "path": "emails[type eq", "value": "x"}]));
        let err = parse_patch(&bad_path).unwrap_err();
        assert_eq!(err.scim_type(), "invalidPath");
        assert!(err.to_string().starts_with("Operation 1:"));
        let no_target = body(json!([{"op": "remove"}]));
        assert_eq!(parse_patch(&no_target).unwrap_err().scim_type(), "noTarget");
        let no_value = body(json!([{"op": "replace", "path": "title"}]));
        assert_eq!(
            parse_patch(&no_value).unwrap_err().scim_type(),
            "invalidValue"
        );
    }

    #[test]
    fn op_names_are_read_whatever_their_case() {
        let ops = parse_patch(&body(json!([
            {"op": "Replace", "path": "active", "value": false},
            {"op": "ADD", "path": "title", "value": "x"},
            {"op": "Remove", "path": "title"}
        ])))
        .unwrap();
        let kinds: Vec<Op> = ops.iter().map(|o| o.op).collect();
        assert_eq!(kinds, [Op::Replace, Op::Add, Op::Remove]);
    }

    #[test]
    fn coerce_bool_reads_entra_strings() {
        assert_eq!(coerce_bool(&json!(true)), Some(true));
        assert_eq!(coerce_bool(&json!("False")), Some(false));
        assert_eq!(coerce_bool(&json!("true")), Some(true));
        assert_eq!(coerce_bool(&json!("yes")), None);
        assert_eq!(coerce_bool(&json!(0)), None);
    }

    #[test]
    fn okta_pathless_replace_deactivates() {
        let r = patched(
            user(),
            json!([{"op": "replace", "value": {"active": false}}]),
        );
        assert_eq!(r["active"], json!(false));
        assert_eq!(r["userName"], json!("bjensen@example.com"));
    }

    #[test]
    fn entra_capitalised_replace_with_a_string_boolean() {
        let r = patched(
            user(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(r["active"], json!(false));
        let err = refused(
            user(),
            json!([{"op": "Replace", "path": "active", "value": "nope"}]),
        );
        assert_eq!(err.scim_type(), "invalidValue");
    }

    #[test]
    fn entra_pathless_value_with_dotted_keys() {
        let r = patched(
            user(),
            json!([{"op": "Replace", "value": {
                "name.givenName": "Babs",
                "name.familyName": "Jensen-Smith",
                "active": "True",
                "externalId": "E1"
            }}]),
        );
        assert_eq!(
            r["name"],
            json!({"givenName": "Babs", "familyName": "Jensen-Smith"})
        );
        assert_eq!(r["active"], json!(true));
        assert_eq!(r["externalId"], json!("E1"));
    }

    #[test]
    fn entra_work_email_value_is_replaced_or_created() {
        let r = patched(
            user(),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "barbara@example.com"}]),
        );
        assert_eq!(r["emails"][0]["value"], json!("barbara@example.com"));
        assert_eq!(r["emails"][1]["value"], json!("babs@home.org"));

        let mut no_emails = user();
        no_emails.as_object_mut().unwrap().remove("emails");
        let r = patched(
            no_emails,
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
        );
        assert_eq!(
            r["emails"],
            json!([{"type": "work", "value": "new@example.com"}])
        );
    }

    #[test]
    fn a_filter_that_describes_no_element_is_no_target() {
        let err = refused(
            user(),
            json!([{"op": "replace", "path": "emails[value co \"nobody\"].type", "value": "other"}]),
        );
        assert_eq!(err.scim_type(), "noTarget");
    }

    #[test]
    fn entra_removes_a_member_by_filter() {
        let r = patched(
            group(),
            json!([{"op": "Remove", "path": "members[value eq \"u2\"]"}]),
        );
        assert_eq!(
            r["members"],
            json!([{"value": "u1", "display": "Barbara"}, {"value": "u3"}])
        );
        // member ids are case-exact
        let r = patched(
            group(),
            json!([{"op": "Remove", "path": "members[value eq \"U2\"]"}]),
        );
        assert_eq!(r["members"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn members_are_removed_by_listed_value_and_added_without_duplicates() {
        let r = patched(
            group(),
            json!([
                {"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u3"}]},
                {"op": "Add", "path": "members", "value": [{"value": "u2", "display": "Kim"}, {"value": "u4"}]}
            ]),
        );
        assert_eq!(
            r["members"],
            json!([{"value": "u2", "display": "Kim"}, {"value": "u4"}])
        );
        let r = patched(group(), json!([{"op": "remove", "path": "members"}]));
        assert!(r.get("members").is_none());
        let r = patched(
            group(),
            json!([{"op": "replace", "path": "members", "value": [{"value": "u9"}]}]),
        );
        assert_eq!(r["members"], json!([{"value": "u9"}]));
    }

    #[test]
    fn removing_the_last_selected_value_unassigns_the_attribute() {
        let r = patched(
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\" or type eq \"home\"]"}]),
        );
        assert!(r.get("emails").is_none());
    }

    #[test]
    fn sub_attributes_are_added_replaced_and_removed() {
        let r = patched(
            user(),
            json!([{"op": "replace", "path": "name.givenName", "value": "Babs"}]),
        );
        assert_eq!(
            r["name"],
            json!({"givenName": "Babs", "familyName": "Jensen"})
        );
        let r = patched(user(), json!([{"op": "remove", "path": "name.familyName"}]));
        assert_eq!(r["name"], json!({"givenName": "Barbara"}));
        let r = patched(
            user(),
            json!([{"op": "remove", "path": "name.familyName"}, {"op": "remove", "path": "name.givenName"}]),
        );
        assert!(r.get("name").is_none());
        let mut bare = user();
        bare.as_object_mut().unwrap().remove("name");
        let r = patched(
            bare,
            json!([{"op": "add", "path": "NAME.GIVENNAME", "value": "B"}]),
        );
        assert_eq!(r["name"], json!({"givenName": "B"}));
    }

    #[test]
    fn add_merges_complex_values_and_appends_to_multi_valued_ones() {
        let r = patched(
            user(),
            json!([{"op": "add", "value": {
                "name": {"formatted": "Ms. Barbara Jensen"},
                "emails": [{"value": "b@new.org", "type": "other", "primary": true}],
                "title": "Engineer"
            }}]),
        );
        assert_eq!(r["name"]["givenName"], json!("Barbara"));
        assert_eq!(r["name"]["formatted"], json!("Ms. Barbara Jensen"));
        assert_eq!(r["title"], json!("Engineer"));
        let emails = r["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3);
        assert_eq!(emails[0]["primary"], json!(false), "one primary at most");
        assert_eq!(emails[2]["primary"], json!(true));
    }

    #[test]
    fn replace_without_a_filter_replaces_a_multi_valued_attribute_whole() {
        let r = patched(
            user(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@example.com", "primary": "True"}]}]),
        );
        assert_eq!(
            r["emails"],
            json!([{"value": "only@example.com", "primary": true}])
        );
    }

    #[test]
    fn remove_of_a_whole_attribute_and_null_replace_unassign_it() {
        let r = patched(user(), json!([{"op": "remove", "path": "emails"}]));
        assert!(r.get("emails").is_none());
        let r = patched(user(), json!([{"op": "replace", "value": {"name": null}}]));
        assert!(r.get("name").is_none());
        let r = patched(user(), json!([{"op": "remove", "path": "nickName"}]));
        assert_eq!(r, user(), "removing what is absent is no change");
    }

    #[test]
    fn read_only_and_required_attributes_refuse_changes() {
        assert_eq!(
            refused(
                user(),
                json!([{"op": "replace", "path": "id", "value": "other"}])
            )
            .scim_type(),
            "mutability"
        );
        assert_eq!(
            refused(
                user(),
                json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}])
            )
            .scim_type(),
            "mutability"
        );
        assert_eq!(
            refused(user(), json!([{"op": "remove", "path": "userName"}])).scim_type(),
            "invalidValue"
        );
        assert_eq!(
            refused(group(), json!([{"op": "remove", "path": "displayName"}])).scim_type(),
            "invalidValue"
        );
        // The same id sent back with a whole resource is not a change.
        let r = patched(
            user(),
            json!([{"op": "replace", "value": {"id": "u1", "active": false}}]),
        );
        assert_eq!(r["active"], json!(false));
    }

    #[test]
    fn one_failing_operation_leaves_the_resource_untouched() {
        let err = refused(
            user(),
            json!([
                {"op": "replace", "path": "active", "value": false},
                {"op": "replace", "path": "id", "value": "x"}
            ]),
        );
        assert_eq!(err.scim_type(), "mutability");
    }

    #[test]
    fn keys_follow_the_schema_spelling_whatever_the_client_wrote() {
        let r = patched(
            user(),
            json!([{"op": "replace", "path": "USERNAME", "value": "x@example.com"}]),
        );
        assert_eq!(r["userName"], json!("x@example.com"));
        assert!(r.get("USERNAME").is_none());
        let r = patched(
            user(),
            json!([{"op": "add", "path": "externalid", "value": "e"}]),
        );
        assert_eq!(r["externalId"], json!("e"));
    }

    #[test]
    fn extension_attributes_live_under_their_urn() {
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let r = patched(
            user(),
            json!([{"op": "add", "path": format!("{urn}:employeeNumber"), "value": "701984"}]),
        );
        assert_eq!(r[urn]["employeeNumber"], json!("701984"));
        assert!(r["schemas"].as_array().unwrap().contains(&json!(urn)));
        let r = patched(
            user(),
            json!([{"op": "replace", "value": {urn: {"department": "R&D"}}}]),
        );
        assert_eq!(r[urn]["department"], json!("R&D"));
        let r = patched(
            user(),
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:User:active": false}}]),
        );
        assert_eq!(r["active"], json!(false));
    }

    #[test]
    fn okta_renames_a_group_with_a_pathless_replace_that_repeats_the_id() {
        let r = patched(
            group(),
            json!([{"op": "replace", "value": {"id": "g1", "displayName": "Platform"}}]),
        );
        assert_eq!(r["displayName"], json!("Platform"));
        assert_eq!(r["id"], json!("g1"));
    }

    #[test]
    fn okta_adds_members_with_their_display_and_removes_one_by_filter() {
        let r = patched(
            group(),
            json!([
                {"op": "add", "path": "members", "value": [{"value": "u9", "display": "new@example.com"}]},
                {"op": "remove", "path": "members[value eq \"u1\"]"}
            ]),
        );
        let ids: Vec<&Value> = r["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["value"])
            .collect();
        assert_eq!(ids, [&json!("u2"), &json!("u3"), &json!("u9")]);
    }

    #[test]
    fn entra_adds_and_removes_members_listed_with_a_null_ref() {
        let r = patched(
            group(),
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u7"}]}]),
        );
        assert_eq!(r["members"][3], json!({"value": "u7"}));
        let r = patched(
            r,
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u7"}, {"$ref": null, "value": "u1"}]}]),
        );
        let ids: Vec<&Value> = r["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["value"])
            .collect();
        assert_eq!(ids, [&json!("u2"), &json!("u3")]);
    }

    #[test]
    fn entra_mixes_replace_and_add_on_an_existing_work_email() {
        let r = patched(
            user(),
            json!([
                {"op": "Replace", "path": "title", "value": "tester"},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "joe@example.com"},
                {"op": "Replace", "path": "userName", "value": "joe@example.com"},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "IT"}
            ]),
        );
        assert_eq!(r["title"], json!("tester"));
        assert_eq!(r["userName"], json!("joe@example.com"));
        assert_eq!(
            r["emails"][0],
            json!({"value": "joe@example.com", "type": "work", "primary": true})
        );
        assert_eq!(r["emails"].as_array().unwrap().len(), 2);
        assert_eq!(
            r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            json!("IT")
        );
    }
}
