//! The list parameters (RFC 7644 §3.4.2), from the query string of a GET or the body of
//! a `POST /.search`: filter, paging, and which attributes to return.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use crate::domain::provisioning::get_ci;
use crate::domain::provisioning::groups::{self, Members};
use crate::domain::scim::discovery::MAX_RESULTS;
use crate::domain::scim::filter::{self, Filter};
use crate::domain::scim::projection;

/// Without `count`, a page holds this many.
const DEFAULT_COUNT: i64 = 100;

/// The most names an `attributes` or `excludedAttributes` list may hold: a User has
/// about forty attributes and sub-attributes. Each name is looked for in every resource
/// of the page, so a list without a bound costs the server its length times the page.
const MAX_ATTRIBUTE_NAMES: usize = 100;

fn attribute_list(raw: Option<&String>, name: &str) -> ApiResult<Option<String>> {
    match raw {
        Some(list) if list.split(',').count() > MAX_ATTRIBUTE_NAMES => Err(ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            format!("{name} may name at most {MAX_ATTRIBUTE_NAMES} attributes."),
        )),
        _ => Ok(raw.cloned()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RawQuery {
    pub filter: Option<String>,
    #[serde(rename = "startIndex")]
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    pub excluded_attributes: Option<String>,
}

/// Which attributes a response carries.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    pub attributes: Option<String>,
    pub excluded: Option<String>,
}

impl Projection {
    pub fn apply(&self, resource: &Value) -> Value {
        let mut out = resource.clone();
        projection::project(
            &mut out,
            self.attributes.as_deref(),
            self.excluded.as_deref(),
        );
        out
    }

    /// Whether a Group's members survive this projection: when they do not, they are
    /// never built.
    pub fn group_members(&self) -> Members {
        let probe = self.apply(&json!({ "schemas": [groups::SCHEMA], "id": "", "members": [] }));
        if get_ci(&probe, "members").is_some() {
            Members::Listed
        } else {
            Members::LeftOut
        }
    }
}

#[derive(Debug)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub start_index: i64,
    pub count: i64,
    pub projection: Projection,
}

fn number(raw: Option<&str>, name: &str) -> ApiResult<Option<i64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            ApiError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                format!("{name} must be a whole number."),
            )
        }),
    }
}

impl ListQuery {
    pub fn read(raw: &RawQuery) -> ApiResult<ListQuery> {
        let filter = match raw
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            None => None,
            Some(f) => Some(filter::parse(f).map_err(|e| {
                ApiError::new(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    Some("invalidFilter"),
                    e.to_string(),
                )
            })?),
        };
        // RFC 7644 §3.4.2.4: below 1 reads as 1; a negative count as 0.
        let start_index = number(raw.start_index.as_deref(), "startIndex")?
            .unwrap_or(1)
            .max(1);
        let count = number(raw.count.as_deref(), "count")?
            .unwrap_or(DEFAULT_COUNT)
            .clamp(0, MAX_RESULTS as i64);
        Ok(ListQuery {
            filter,
            start_index,
            count,
            projection: Projection {
                attributes: attribute_list(raw.attributes.as_ref(), "attributes")?,
                excluded: attribute_list(raw.excluded_attributes.as_ref(), "excludedAttributes")?,
            },
        })
    }

    /// From a SearchRequest body: the same parameters, lists as JSON arrays.
    pub fn from_search(body: &Value) -> ApiResult<ListQuery> {
        if !body.is_object() {
            return Err(ApiError::syntax("The body must be a SearchRequest object."));
        }
        let text = |key: &str| -> Option<String> {
            match get_ci(body, key)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Array(list) => Some(
                    list.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => None,
            }
        };
        ListQuery::read(&RawQuery {
            filter: text("filter"),
            start_index: text("startIndex"),
            count: text("count"),
            attributes: text("attributes"),
            excluded_attributes: text("excludedAttributes"),
        })
    }
}
