//! The SCIM discovery documents (RFC 7643 §5–7, RFC 7644 §4): what the server supports,
//! which resource types it serves, and the User and Group schemas with the
//! characteristics (mutability, returned, uniqueness, caseExact, required, type) that
//! clients and conformance testers read to decide what they may send and expect back.

use serde_json::{Map, Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Not served, but recognised in PATCH values so Entra's extension attributes land
/// under their URN instead of being misread as attribute paths.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Largest page a list or search answers, published as `filter.maxResults`.
pub const MAX_RESULTS: u64 = 200;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    String,
    Boolean,
    Complex,
    Reference,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Uniqueness {
    None,
    Server,
}

/// One attribute definition; `json()` writes it as RFC 7643 §7 does.
struct Attr {
    name: &'static str,
    ty: Type,
    multi: bool,
    required: bool,
    case_exact: bool,
    mutability: Mutability,
    uniqueness: Uniqueness,
    canonical: &'static [&'static str],
    reference_types: &'static [&'static str],
    description: &'static str,
    sub: &'static [Attr],
}

/// A read-write, optional, single-valued, case-insensitive string: the common case.
const fn string(name: &'static str, description: &'static str) -> Attr {
    Attr {
        name,
        ty: Type::String,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        uniqueness: Uniqueness::None,
        canonical: &[],
        reference_types: &[],
        description,
        sub: &[],
    }
}

const fn read_only(mut a: Attr) -> Attr {
    a.mutability = Mutability::ReadOnly;
    a
}

const fn immutable(mut a: Attr) -> Attr {
    a.mutability = Mutability::Immutable;
    a
}

const fn case_exact(mut a: Attr) -> Attr {
    a.case_exact = true;
    a
}

const fn boolean(name: &'static str, description: &'static str) -> Attr {
    let mut a = string(name, description);
    a.ty = Type::Boolean;
    a
}

const fn reference(
    name: &'static str,
    types: &'static [&'static str],
    description: &'static str,
) -> Attr {
    let mut a = string(name, description);
    a.ty = Type::Reference;
    a.case_exact = true;
    a.reference_types = types;
    a
}

const fn complex(
    name: &'static str,
    multi: bool,
    sub: &'static [Attr],
    description: &'static str,
) -> Attr {
    let mut a = string(name, description);
    a.ty = Type::Complex;
    a.multi = multi;
    a.sub = sub;
    a
}

const fn canonical(mut a: Attr, values: &'static [&'static str]) -> Attr {
    a.canonical = values;
    a
}

/// `externalId` (RFC 7643 §3.1): the identifier the provisioning client keeps for the
/// resource; case-exact, written by the client.
const EXTERNAL_ID: Attr = case_exact(string(
    "externalId",
    "The identifier of the resource in the provisioning client (for example Okta or Entra).",
));

const USER_ATTRIBUTES: &[Attr] = &[
    {
        let mut a = string(
            "userName",
            "The member's email address, which they sign in with. Unique across the portal.",
        );
        a.required = true;
        a.uniqueness = Uniqueness::Server;
        a
    },
    complex(
        "name",
        false,
        &[
            string("formatted", "The full name, formatted for display."),
            string("familyName", "The family name (last name)."),
            string("givenName", "The given name (first name)."),
        ],
        "The components of the member's name.",
    ),
    string("displayName", "The name shown for the member."),
    boolean(
        "active",
        "Whether the member may use the organization; false deactivates the membership.",
    ),
    complex(
        "emails",
        true,
        &[
            string("value", "An email address."),
            canonical(
                string("type", "The kind of address: work, home or other."),
                &["work", "home", "other"],
            ),
            boolean(
                "primary",
                "Whether this is the preferred address; true on one at most.",
            ),
        ],
        "The member's email addresses.",
    ),
    EXTERNAL_ID,
    read_only(complex(
        "groups",
        true,
        &[
            read_only(case_exact(string("value", "The id of the group."))),
            read_only(reference("$ref", &["Group"], "The URI of the group.")),
            read_only(string("display", "The name of the group.")),
            read_only(canonical(
                string("type", "direct: the member was added to the group."),
                &["direct", "indirect"],
            )),
        ],
        "The groups the member belongs to; change them through the Group resource.",
    )),
];

const GROUP_ATTRIBUTES: &[Attr] = &[
    {
        let mut a = string(
            "displayName",
            "The group's name. Unique in the organization.",
        );
        a.required = true;
        a.uniqueness = Uniqueness::Server;
        a
    },
    complex(
        "members",
        true,
        &[
            immutable(case_exact(string(
                "value",
                "The id of the member (a User).",
            ))),
            immutable(reference("$ref", &["User"], "The URI of the member.")),
            read_only(string("display", "The member's name.")),
            immutable(canonical(string("type", "The kind of member."), &["User"])),
        ],
        "The members of the group.",
    ),
    EXTERNAL_ID,
];

struct SchemaDef {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    endpoint: &'static str,
    resource: &'static str,
    attributes: &'static [Attr],
}

const SCHEMAS: &[SchemaDef] = &[
    SchemaDef {
        id: USER_SCHEMA,
        name: "User",
        description: "A member of the organization",
        endpoint: "/Users",
        resource: "User",
        attributes: USER_ATTRIBUTES,
    },
    SchemaDef {
        id: GROUP_SCHEMA,
        name: "Group",
        description: "A group of members of the organization",
        endpoint: "/Groups",
        resource: "Group",
        attributes: GROUP_ATTRIBUTES,
    },
];

impl Attr {
    fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert(
            "type".into(),
            json!(match self.ty {
                Type::String => "string",
                Type::Boolean => "boolean",
                Type::Complex => "complex",
                Type::Reference => "reference",
            }),
        );
        m.insert("multiValued".into(), json!(self.multi));
        m.insert("description".into(), json!(self.description));
        m.insert("required".into(), json!(self.required));
        if matches!(self.ty, Type::String | Type::Reference) {
            m.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical));
        }
        if !self.reference_types.is_empty() {
            m.insert("referenceTypes".into(), json!(self.reference_types));
        }
        m.insert(
            "mutability".into(),
            json!(match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
            }),
        );
        m.insert("returned".into(), json!("default"));
        m.insert(
            "uniqueness".into(),
            json!(match self.uniqueness {
                Uniqueness::None => "none",
                Uniqueness::Server => "server",
            }),
        );
        if self.ty == Type::Complex {
            m.insert(
                "subAttributes".into(),
                Value::Array(self.sub.iter().map(Attr::json).collect()),
            );
        }
        Value::Object(m)
    }
}

impl SchemaDef {
    fn json(&self) -> Value {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(Attr::json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": format!("/Schemas/{}", self.id)},
        })
    }

    fn resource_type(&self) -> Value {
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.resource,
            "name": self.resource,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.id,
            "schemaExtensions": [],
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("/ResourceTypes/{}", self.resource),
            },
        })
    }
}

fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

/// Prefixes each relative `meta.location` with the server's SCIM base URL.
fn located(mut doc: Value, base_url: &str) -> Value {
    if let Some(Value::String(loc)) = doc.pointer_mut("/meta/location") {
        *loc = format!("{}{}", base_url.trim_end_matches('/'), loc);
    }
    doc
}

/// `GET /ServiceProviderConfig`. `base_url` is the SCIM root (`https://host/scim/v2`).
pub fn service_provider_config(base_url: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An organization API token with the scim scope, sent as \
                            Authorization: Bearer <token>.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base_url.trim_end_matches('/')),
        },
    })
}

/// `GET /ResourceTypes`: a ListResponse of User and Group.
pub fn resource_types(base_url: &str) -> Value {
    list_response(
        SCHEMAS
            .iter()
            .map(|s| located(s.resource_type(), base_url))
            .collect(),
    )
}

/// `GET /ResourceTypes/{id}` (`User` or `Group`); `meta.location` is relative to the SCIM
/// root. `None` answers 404.
pub fn resource_type(id: &str) -> Option<Value> {
    SCHEMAS
        .iter()
        .find(|s| s.resource == id)
        .map(SchemaDef::resource_type)
}

/// `GET /Schemas`: a ListResponse of the User and Group schemas.
pub fn schemas() -> Value {
    list_response(SCHEMAS.iter().map(SchemaDef::json).collect())
}

/// `GET /Schemas/{id}` by URN (case-insensitive, as URNs compare). `None` answers 404.
pub fn schema(id: &str) -> Option<Value> {
    SCHEMAS
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .map(SchemaDef::json)
}

/// True for the URN of a schema a resource can carry (core User/Group, enterprise User).
pub fn is_schema_urn(s: &str) -> bool {
    canonical_schema_urn(s).is_some()
}

/// The canonical spelling of a known schema URN.
pub fn canonical_schema_urn(s: &str) -> Option<&'static str> {
    [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]
        .into_iter()
        .find(|u| u.eq_ignore_ascii_case(s))
}

fn all_attrs() -> impl Iterator<Item = &'static Attr> {
    SCHEMAS
        .iter()
        .flat_map(|s| s.attributes.iter())
        .flat_map(|a| std::iter::once(a).chain(a.sub.iter()))
}

/// The schema's spelling of an attribute or sub-attribute name given in any case
/// (`givenname` → `givenName`), for keys a PATCH creates.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    const COMMON: &[&str] = &["id", "meta", "schemas"];
    COMMON
        .iter()
        .copied()
        .chain(all_attrs().map(|a| a.name))
        .find(|n| n.eq_ignore_ascii_case(name))
}

/// Attributes whose values are booleans, so `"False"` from Entra is read as `false`.
pub fn is_boolean_attribute(name: &str) -> bool {
    all_attrs().any(|a| a.ty == Type::Boolean && a.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr<'v>(schema: &'v Value, path: &str) -> &'v Value {
        let mut parts = path.split('.');
        let first = parts.next().unwrap();
        let mut found = schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == first)
            .unwrap_or_else(|| panic!("no attribute {first}"));
        for p in parts {
            found = found["subAttributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["name"] == p)
                .unwrap_or_else(|| panic!("no sub-attribute {p}"));
        }
        found
    }

    #[test]
    fn service_provider_config_states_what_is_and_is_not_supported() {
        let spc = service_provider_config("https://portal.example/scim/v2/");
        assert_eq!(spc["schemas"][0], SPC_SCHEMA);
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(spc["filter"]["supported"], true);
        assert_eq!(spc["filter"]["maxResults"], MAX_RESULTS);
        assert_eq!(spc["etag"]["supported"], true);
        for off in ["bulk", "changePassword", "sort"] {
            assert_eq!(spc[off]["supported"], false, "{off}");
        }
        assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert_eq!(
            spc["meta"]["location"],
            "https://portal.example/scim/v2/ServiceProviderConfig"
        );
    }

    #[test]
    fn resource_types_list_users_and_groups_with_their_schemas() {
        let list = resource_types("https://p.example/scim/v2");
        assert_eq!(list["schemas"][0], LIST_RESPONSE);
        assert_eq!(list["totalResults"], 2);
        let user = &list["Resources"][0];
        assert_eq!(user["id"], "User");
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schema"], USER_SCHEMA);
        assert_eq!(
            user["meta"]["location"],
            "https://p.example/scim/v2/ResourceTypes/User"
        );
        assert_eq!(resource_type("Group").unwrap()["schema"], GROUP_SCHEMA);
        assert!(resource_type("Widget").is_none());
    }

    #[test]
    fn schemas_are_listed_and_found_by_urn() {
        let list = schemas();
        assert_eq!(list["totalResults"], 2);
        assert_eq!(list["Resources"][0]["id"], USER_SCHEMA);
        assert_eq!(schema(&USER_SCHEMA.to_uppercase()).unwrap()["name"], "User");
        assert!(schema("urn:example:nothing").is_none());
    }

    #[test]
    fn user_attributes_carry_their_rfc_7643_characteristics() {
        let user = schema(USER_SCHEMA).unwrap();
        let user_name = attr(&user, "userName");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["mutability"], "readWrite");
        assert_eq!(attr(&user, "name")["type"], "complex");
        assert_eq!(attr(&user, "name.givenName")["type"], "string");
        assert_eq!(attr(&user, "name.formatted")["mutability"], "readWrite");
        assert_eq!(attr(&user, "active")["type"], "boolean");
        assert!(attr(&user, "active").get("caseExact").is_none());
        assert_eq!(attr(&user, "emails")["multiValued"], true);
        assert_eq!(attr(&user, "emails.primary")["type"], "boolean");
        assert_eq!(attr(&user, "emails.type")["canonicalValues"][0], "work");
        assert_eq!(attr(&user, "externalId")["caseExact"], true);
        assert_eq!(attr(&user, "groups")["mutability"], "readOnly");
        assert_eq!(attr(&user, "groups.value")["mutability"], "readOnly");
        assert_eq!(attr(&user, "groups.$ref")["type"], "reference");
        assert_eq!(attr(&user, "groups.$ref")["referenceTypes"][0], "Group");
    }

    #[test]
    fn group_attributes_carry_their_rfc_7643_characteristics() {
        let group = schema(GROUP_SCHEMA).unwrap();
        assert_eq!(attr(&group, "displayName")["required"], true);
        assert_eq!(attr(&group, "displayName")["uniqueness"], "server");
        assert_eq!(attr(&group, "members")["mutability"], "readWrite");
        assert_eq!(attr(&group, "members.value")["mutability"], "immutable");
        assert_eq!(attr(&group, "members.value")["caseExact"], true);
        assert_eq!(attr(&group, "members.$ref")["referenceTypes"][0], "User");
        assert_eq!(attr(&group, "members.display")["mutability"], "readOnly");
    }

    #[test]
    fn every_attribute_states_every_characteristic() {
        let list = schemas();
        for schema in list["Resources"].as_array().unwrap() {
            let mut stack: Vec<&Value> = schema["attributes"].as_array().unwrap().iter().collect();
            while let Some(a) = stack.pop() {
                for key in [
                    "name",
                    "type",
                    "multiValued",
                    "description",
                    "required",
                    "mutability",
                    "returned",
                    "uniqueness",
                ] {
                    assert!(a.get(key).is_some(), "{} lacks {key}", a["name"]);
                }
                if let Some(sub) = a["subAttributes"].as_array() {
                    stack.extend(sub);
                }
            }
        }
    }

    #[test]
    fn the_filter_compares_case_exactly_what_the_schemas_call_case_exact() {
        let mut published: Vec<String> =
            vec!["id".into(), "meta.location".into(), "meta.version".into()];
        for s in SCHEMAS {
            for a in s.attributes {
                if a.case_exact {
                    published.push(a.name.to_ascii_lowercase());
                }
                for sub in a.sub {
                    if sub.case_exact {
                        published.push(format!("{}.{}", a.name, sub.name).to_ascii_lowercase());
                    }
                }
            }
        }
        published.sort();
        published.dedup();
        let mut filter: Vec<String> = super::super::filter::CASE_EXACT
            .iter()
            .map(|s| s.to_string())
            .collect();
        filter.sort();
        assert_eq!(published, filter);
    }

    #[test]
    fn names_and_urns_are_spelled_as_the_schema_spells_them() {
        assert_eq!(canonical_name("givenname"), Some("givenName"));
        assert_eq!(canonical_name("EXTERNALID"), Some("externalId"));
        assert_eq!(canonical_name("$REF"), Some("$ref"));
        assert_eq!(canonical_name("nickname"), None);
        assert_eq!(
            canonical_schema_urn("URN:ietf:params:scim:schemas:core:2.0:user"),
            Some(USER_SCHEMA)
        );
        assert!(is_boolean_attribute("Active") && is_boolean_attribute("primary"));
        assert!(!is_boolean_attribute("userName"));
    }
}
