//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which attributes of a
//! resource a response carries.

use serde_json::{Map, Value};

use super::filter::AttrPath;

/// Always in a response, whatever was asked: the id, the schemas the resource carries,
/// and `meta.resourceType` (RFC 7643 `returned: always`).
const ALWAYS: &[&str] = &["id", "schemas"];

/// `returned: never` (RFC 7643 §4.1): kept out of every response.
const NEVER: &[&str] = &["password"];

/// One name from an `attributes` list.
enum Selector {
    /// An attribute, or one sub-attribute of it, in the core schema or an extension.
    Attr {
        extension: Option<String>,
        path: AttrPath,
    },
    /// A whole extension object named by its URN.
    Extension(String),
}

/// Reduces `resource` to what `attributes` asks for, or removes what `excluded` names.
/// Names are comma-separated, compared ignoring case, and may carry a schema URN prefix
/// or a sub-attribute (`name.givenName`); unknown names are ignored.
pub fn project(resource: &mut Value, attributes: Option<&str>, excluded: Option<&str>) {
    let Value::Object(map) = resource else { return };
    for never in NEVER {
        remove_ci(map, never);
    }
    let wanted = selectors(map, attributes);
    if !wanted.is_empty() {
        *map = keep_only(map, &wanted);
    }
    for selector in selectors(map, excluded) {
        exclude(map, &selector);
    }
}

fn selectors(resource: &Map<String, Value>, list: Option<&str>) -> Vec<Selector> {
    let Some(list) = list else { return Vec::new() };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|name| {
            if let Some(key) = find_key(resource, name).filter(|k| k.contains(':')) {
                return Some(Selector::Extension(key));
            }
            let path = AttrPath::parse(name).ok()?;
            let extension = if path.in_core_schema() {
                None
            } else {
                let urn = &path.text[..path.text.rfind(':')?];
                Some(find_key(resource, urn).unwrap_or_else(|| urn.to_owned()))
            };
            Some(Selector::Attr { extension, path })
        })
        .collect()
}

fn keep_only(source: &Map<String, Value>, wanted: &[Selector]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in ALWAYS {
        if let Some(k) = find_key(source, key) {
            out.insert(k.clone(), source[&k].clone());
        }
    }
    if let Some(Value::Object(meta)) = find_key(source, "meta").map(|k| &source[&k])
        && let Some(rt) = find_key(meta, "resourceType")
    {
        let mut m = Map::new();
        m.insert(rt.clone(), meta[&rt].clone());
        out.insert("meta".into(), Value::Object(m));
    }
    for selector in wanted {
        match selector {
            Selector::Extension(urn) => {
                if let Some(v) = source.get(urn) {
                    out.insert(urn.clone(), v.clone());
                }
            }
            Selector::Attr { extension, path } => {
                let (from, to) = match extension {
                    None => (source, &mut out),
                    Some(urn) => {
                        let Some(Value::Object(ext)) = source.get(urn) else {
                            continue;
                        };
                        let to = out
                            .entry(urn.clone())
                            .or_insert_with(|| Value::Object(Map::new()))
                            .as_object_mut()
                            .expect("extension slot is an object");
                        (ext, to)
                    }
                };
                copy_selected(from, to, path);
            }
        }
    }
    out
}

/// Copies `path` from `from` into `to`, merging with sub-attributes copied before.
fn copy_selected(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &AttrPath) {
    let Some(key) = find_key(from, &path.name) else {
        return;
    };
    let value = &from[&key];
    let Some(sub) = &path.sub else {
        to.insert(key, value.clone());
        return;
    };
    match value {
        Value::Object(obj) => {
            let Some(sub_key) = find_key(obj, sub) else {
                return;
            };
            let slot = to.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(slot) = slot {
                slot.insert(sub_key.clone(), obj[&sub_key].clone());
            }
        }
        Value::Array(items) => {
            let slot = to
                .entry(key)
                .or_insert_with(|| Value::Array(vec![Value::Object(Map::new()); items.len()]));
            let Value::Array(slots) = slot else { return };
            for (item, slot) in items.iter().zip(slots.iter_mut()) {
                if let (Value::Object(item), Value::Object(slot)) = (item, slot)
                    && let Some(sub_key) = find_key(item, sub)
                {
                    slot.insert(sub_key.clone(), item[&sub_key].clone());
                }
            }
        }
        _ => {}
    }
}

fn exclude(map: &mut Map<String, Value>, selector: &Selector) {
    let (target, path) = match selector {
        Selector::Extension(urn) => {
            map.remove(urn);
            return;
        }
        Selector::Attr {
            extension: None,
            path,
        } => (map, path),
        Selector::Attr {
            extension: Some(urn),
            path,
        } => match map.get_mut(urn) {
            Some(Value::Object(ext)) => (ext, path),
            _ => return,
        },
    };
    if path.sub.is_none() && ALWAYS.iter().any(|a| path.is(a)) {
        return;
    }
    let Some(key) = find_key(target, &path.name) else {
        return;
    };
    match (&path.sub, path.is("meta")) {
        (None, true) => {
            // meta.resourceType stays.
            if let Some(Value::Object(meta)) = target.get_mut(&key) {
                meta.retain(|k, _| k.eq_ignore_ascii_case("resourceType"));
            }
        }
        (None, false) => {
            target.remove(&key);
        }
        (Some(sub), _) => {
            if path.name == "meta" && sub == "resourcetype" {
                return;
            }
            match target.get_mut(&key) {
                Some(Value::Object(obj)) => remove_ci(obj, sub),
                Some(Value::Array(items)) => {
                    for item in items {
                        if let Value::Object(obj) = item {
                            remove_ci(obj, sub);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn remove_ci(map: &mut Map<String, Value>, name: &str) {
    if let Some(k) = find_key(map, name) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &str = crate::domain::scim::discovery::USER_SCHEMA;
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Value {
        json!({
            "schemas": [USER, EXT],
            "id": "u1",
            "externalId": "e1",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
            "displayName": "Babs",
            "active": true,
            "password": "never shown",
            "emails": [
                {"value": "b@example.com", "type": "work", "primary": true},
                {"value": "b@home.org", "type": "home"}
            ],
            EXT: {"employeeNumber": "7", "department": "R&D"},
            "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z", "version": "W/\"1\""}
        })
    }

    fn projected(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let mut u = user();
        project(&mut u, attributes, excluded);
        u
    }

    #[test]
    fn nothing_asked_returns_everything_but_the_password() {
        let mut expected = user();
        expected.as_object_mut().unwrap().remove("password");
        assert_eq!(projected(None, None), expected);
        assert_eq!(projected(Some(""), Some(" , ")), expected);
    }

    #[test]
    fn attributes_keeps_the_named_ones_and_those_always_returned() {
        assert_eq!(
            projected(Some("userName"), None),
            json!({
                "schemas": [USER, EXT],
                "id": "u1",
                "userName": "bjensen@example.com",
                "meta": {"resourceType": "User"}
            })
        );
    }

    #[test]
    fn names_are_compared_ignoring_case_and_may_carry_a_urn() {
        let r = projected(
            Some("USERNAME, urn:ietf:params:scim:schemas:core:2.0:User:displayName"),
            None,
        );
        assert_eq!(r["userName"], "bjensen@example.com");
        assert_eq!(r["displayName"], "Babs");
        assert!(r.get("active").is_none());
    }

    #[test]
    fn sub_attributes_select_inside_complex_and_multi_valued_attributes() {
        let r = projected(Some("name.givenName,emails.value,name.familyName"), None);
        assert_eq!(
            r["name"],
            json!({"givenName": "Barbara", "familyName": "Jensen"})
        );
        assert_eq!(
            r["emails"],
            json!([{"value": "b@example.com"}, {"value": "b@home.org"}])
        );
    }

    #[test]
    fn meta_sub_attributes_and_extensions_can_be_asked_for() {
        let r = projected(Some("meta.created"), None);
        assert_eq!(
            r["meta"],
            json!({"resourceType": "User", "created": "2024-01-01T00:00:00Z"})
        );
        let r = projected(Some(&format!("{EXT}:department")), None);
        assert_eq!(r[EXT], json!({"department": "R&D"}));
        let r = projected(Some(EXT), None);
        assert_eq!(r[EXT], json!({"employeeNumber": "7", "department": "R&D"}));
    }

    #[test]
    fn excluded_attributes_removes_the_named_ones_but_never_id_or_schemas() {
        let r = projected(None, Some("emails,name.formatted,ID,schemas,meta"));
        assert!(r.get("emails").is_none());
        assert_eq!(
            r["name"],
            json!({"givenName": "Barbara", "familyName": "Jensen"})
        );
        assert_eq!(r["id"], "u1");
        assert!(r.get("schemas").is_some());
        assert_eq!(r["meta"], json!({"resourceType": "User"}));
        assert_eq!(r["userName"], "bjensen@example.com");
        let r = projected(None, Some(&format!("emails.type,{EXT}:employeeNumber")));
        assert_eq!(
            r["emails"],
            json!([{"value": "b@example.com", "primary": true}, {"value": "b@home.org"}])
        );
        assert_eq!(r[EXT], json!({"department": "R&D"}));
    }

    #[test]
    fn unknown_or_malformed_names_are_ignored() {
        let r = projected(Some("nickName,1bad,userName"), None);
        assert_eq!(r["userName"], "bjensen@example.com");
        assert!(r.get("nickName").is_none());
        assert_eq!(projected(None, Some("nickName,%%")), projected(None, None));
    }
}
