//! SCIM filter expressions (RFC 7644 §3.4.2.2): parsed from what an identity provider
//! sends, printed back, and evaluated against a resource's JSON.
//!
//! A small recursive-descent parser: the published Rust SCIM parsers either borrow their
//! tree from the input, stop at filters (no PATCH paths), or pull in a JSON model of their
//! own, and the grammar is a page of ABNF.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// Nesting of parentheses and `not` allowed before the parser refuses: a request from the
/// network must not be able to exhaust the stack.
const MAX_DEPTH: usize = 32;

/// `and`s and `or`s allowed in one filter. A flat chain nests too: `a or b or c` is read
/// as `(a or b) or c`, and walking (or dropping) a tree of a hundred thousand such levels
/// overflows the stack and aborts the process, for every organization.
const MAX_OPERATORS: usize = 100;

/// URN prefix under which the core schemas keep their attributes at the top level of a
/// resource (extensions keep theirs in an object named by their URN).
const CORE_SCHEMA_PREFIX: &str = "urn:ietf:params:scim:schemas:core:";

/// Attributes compared case-sensitively (RFC 7643 `caseExact: true`); every other string
/// attribute of the User and Group schemas is compared ignoring case.
/// `discovery` publishes the same characteristics; a test keeps the two in step.
pub(crate) const CASE_EXACT: &[&str] = &[
    "id",
    "externalid",
    "meta.location",
    "meta.version",
    "members.value",
    "members.$ref",
    "groups.value",
    "groups.$ref",
];

/// Why a filter (or a PATCH path) could not be read, in words a client's developer can act
/// on; the server answers 400 `invalidFilter` with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    pub message: String,
}

impl FilterError {
    fn new(message: impl Into<String>) -> Self {
        FilterError {
            message: message.into(),
        }
    }
}

/// `[URI ":"] ATTRNAME ["." subAttr]`. Names are kept lower-case because SCIM compares
/// them ignoring case; `text` keeps the spelling the client used, for messages and for
/// creating an attribute the schema does not name.
#[derive(Debug, Clone)]
pub struct AttrPath {
    pub schema: Option<String>,
    pub name: String,
    pub sub: Option<String>,
    pub text: String,
}

impl PartialEq for AttrPath {
    fn eq(&self, other: &Self) -> bool {
        self.schema == other.schema && self.name == other.name && self.sub == other.sub
    }
}

impl Eq for AttrPath {}

impl AttrPath {
    /// Reads a whole string as an attribute path (as `attributes=` lists name them).
    pub fn parse(input: &str) -> Result<AttrPath, FilterError> {
        let mut p = Parser::new(input);
        p.skip_ws();
        let path = p.attr_path()?;
        p.skip_ws();
        p.expect_end()?;
        Ok(path)
    }

    /// Builds a path from its parts, as a server does when it names an attribute itself.
    pub fn new(name: &str, sub: Option<&str>) -> AttrPath {
        let text = match sub {
            Some(s) => format!("{name}.{s}"),
            None => name.to_owned(),
        };
        AttrPath {
            schema: None,
            name: name.to_ascii_lowercase(),
            sub: sub.map(str::to_ascii_lowercase),
            text,
        }
    }

    /// True when this names the top-level attribute `name` (any case, no sub-attribute).
    pub fn is(&self, name: &str) -> bool {
        self.sub.is_none() && self.name.eq_ignore_ascii_case(name)
    }

    /// True when this names `name.sub` (any case).
    pub fn is_sub(&self, name: &str, sub: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && self
                .sub
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(sub))
    }

    /// `name` or `name.sub`, lower-case, without the schema URN.
    pub fn dotted(&self) -> String {
        match &self.sub {
            Some(sub) => format!("{}.{}", self.name, sub),
            None => self.name.clone(),
        }
    }

    /// The attribute name as the client spelled it.
    pub fn original_name(&self) -> &str {
        let rest = self.unprefixed_text();
        rest.split('.').next().unwrap_or(rest)
    }

    /// The sub-attribute as the client spelled it.
    pub fn original_sub(&self) -> Option<&str> {
        self.unprefixed_text().split_once('.').map(|(_, s)| s)
    }

    fn unprefixed_text(&self) -> &str {
        match self.text.rfind(':') {
            Some(i) => &self.text[i + 1..],
            None => &self.text,
        }
    }

    /// True when the URN prefix is absent or names a core schema, whose attributes live
    /// at the top level of the resource.
    pub fn in_core_schema(&self) -> bool {
        self.schema
            .as_deref()
            .is_none_or(|s| s.starts_with(CORE_SCHEMA_PREFIX))
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn from_word(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A parsed filter. Inside `ValuePath`, paths are relative to one element of the
/// multi-valued attribute (`emails[type eq "work"]`: `type` is the element's).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// Parses a `filter=` expression.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    let mut p = Parser::new(input);
    p.skip_ws();
    if p.at_end() {
        return Err(FilterError::new("The filter is empty."));
    }
    let filter = p.or_expr(false)?;
    p.skip_ws();
    p.expect_end()?;
    Ok(filter)
}

impl Filter {
    /// Whether `resource` (a SCIM User or Group as JSON) satisfies this filter.
    pub fn matches(&self, resource: &Value) -> bool {
        eval(self, resource, None)
    }

    /// Whether one element of the multi-valued attribute `parent` (lower-case, e.g.
    /// `members`) satisfies the filter of a value path.
    pub fn matches_element(&self, element: &Value, parent: &str) -> bool {
        eval(self, element, Some(parent))
    }

    /// Whether any part of the filter reads the attribute `name` (or one of its
    /// sub-attributes), at any depth.
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            Filter::Compare { path, .. } | Filter::Present(path) => {
                path.name.eq_ignore_ascii_case(name)
            }
            Filter::And(a, b) | Filter::Or(a, b) => a.mentions(name) || b.mentions(name),
            Filter::Not(inner) => inner.mentions(name),
            Filter::ValuePath { path, .. } => path.name.eq_ignore_ascii_case(name),
        }
    }

    /// Precedence for printing: or < and < everything else.
    fn rank(&self) -> u8 {
        match self {
            Filter::Or(..) => 0,
            Filter::And(..) => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parsing is left-associative, so a right operand of the same rank needs
        // parentheses to read back as the same tree.
        fn operand(f: &mut fmt::Formatter<'_>, child: &Filter, min: u8) -> fmt::Result {
            if child.rank() < min {
                write!(f, "({child})")
            } else {
                write!(f, "{child}")
            }
        }
        match self {
            Filter::Compare { path, op, value } => {
                write!(f, "{path} {} {value}", op.as_str())
            }
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(a, b) => {
                operand(f, a, 1)?;
                f.write_str(" and ")?;
                operand(f, b, 2)
            }
            Filter::Or(a, b) => {
                operand(f, a, 0)?;
                f.write_str(" or ")?;
                operand(f, b, 1)
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

pub(super) struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    operators: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Parser {
            src,
            pos: 0,
            depth: 0,
            operators: 0,
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// 1-based character position, for messages.
    fn column(&self) -> usize {
        self.src[..self.pos].chars().count() + 1
    }

    pub(super) fn skip_ws(&mut self) -> bool {
        let before = self.pos;
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.pos > before
    }

    pub(super) fn peek_is(&self, c: char) -> bool {
        self.peek() == Some(c)
    }

    pub(super) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub(super) fn expect_end(&self) -> Result<(), FilterError> {
        if self.at_end() {
            return Ok(());
        }
        Err(FilterError::new(format!(
            "Unexpected \"{}\" at character {}.",
            snippet(self.rest()),
            self.column()
        )))
    }

    /// The run of letters at the cursor, without consuming it.
    fn peek_word(&self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn descend(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(format!(
                "The filter nests deeper than {MAX_DEPTH} levels."
            )));
        }
        Ok(())
    }

    /// A logical operator (`and`/`or`) after whitespace, consumed with its whitespace.
    fn logical(&mut self, word: &str) -> bool {
        let save = self.pos;
        if !self.skip_ws() {
            return false;
        }
        let w = self.peek_word();
        if w.eq_ignore_ascii_case(word) {
            let after = self.rest()[w.len()..].chars().next();
            if after.is_some_and(|c| c.is_whitespace() || c == '(') {
                self.pos += w.len();
                self.skip_ws();
                return true;
            }
        }
        self.pos = save;
        false
    }

    fn count_operator(&mut self) -> Result<(), FilterError> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(FilterError::new(format!(
                "The filter joins more than {MAX_OPERATORS} expressions with and/or."
            )));
        }
        Ok(())
    }

    pub(super) fn or_expr(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let mut left = self.and_expr(in_brackets)?;
        while self.logical("or") {
            self.count_operator()?;
            let right = self.and_expr(in_brackets)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let mut left = self.unary(in_brackets)?;
        while self.logical("and") {
            self.count_operator()?;
            let right = self.unary(in_brackets)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        if self.at_end() {
            return Err(FilterError::new(
                "The filter ends where an expression was expected.",
            ));
        }
        let word = self.peek_word();
        if word.eq_ignore_ascii_case("not") {
            let save = self.pos;
            self.pos += word.len();
            self.skip_ws();
            if self.peek() == Some('(') {
                let inner = self.group(in_brackets)?;
                return Ok(Filter::Not(Box::new(inner)));
            }
            // An attribute that happens to be called "not" is followed by an operator.
            let next = self.peek_word();
            if CompareOp::from_word(next).is_none() && !next.eq_ignore_ascii_case("pr") {
                return Err(FilterError::new(format!(
                    "\"not\" at character {} must be followed by a filter in parentheses, \
                     as in not (active eq true).",
                    self.src[..save].chars().count() + 1
                )));
            }
            self.pos = save;
        }
        if self.peek() == Some('(') {
            return self.group(in_brackets);
        }
        self.attr_expr(in_brackets)
    }

    fn group(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let open = self.column();
        self.eat('(');
        self.descend()?;
        self.skip_ws();
        let inner = self.or_expr(in_brackets)?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(FilterError::new(format!(
                "The parenthesis opened at character {open} is not closed."
            )));
        }
        self.depth -= 1;
        Ok(inner)
    }

    fn attr_expr(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let path = self.attr_path()?;
        if self.peek() == Some('[') {
            if in_brackets {
                return Err(FilterError::new(format!(
                    "A filter in brackets cannot contain another at character {}.",
                    self.column()
                )));
            }
            if path.sub.is_some() {
                return Err(FilterError::new(format!(
                    "\"{path}\" names a sub-attribute; brackets follow a multi-valued attribute."
                )));
            }
            let inner = self.bracket()?;
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(inner),
            });
        }
        if !self.skip_ws() || self.at_end() {
            return Err(FilterError::new(format!(
                "Expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr) after \"{path}\"."
            )));
        }
        let at = self.column();
        let word = self.peek_word();
        let next = self.rest()[word.len()..].chars().next();
        let complete = next.is_none_or(|c| !c.is_ascii_alphanumeric());
        if word.eq_ignore_ascii_case("pr") && complete {
            self.pos += word.len();
            return Ok(Filter::Present(path));
        }
        let op = match CompareOp::from_word(word) {
            Some(op) if complete => op,
            _ => {
                let found = snippet(self.rest());
                return Err(FilterError::new(format!(
                    "Unknown operator \"{found}\" after \"{path}\" at character {at}; \
                     expected eq, ne, co, sw, ew, gt, ge, lt, le or pr."
                )));
            }
        };
        self.pos += word.len();
        self.skip_ws();
        let value = self.comp_value(&path, op)?;
        Ok(Filter::Compare { path, op, value })
    }

    /// `"[" valFilter "]"`, the cursor on `[`.
    pub(super) fn bracket(&mut self) -> Result<Filter, FilterError> {
        let open = self.column();
        self.eat('[');
        self.descend()?;
        self.skip_ws();
        let inner = self.or_expr(true)?;
        self.skip_ws();
        if !self.eat(']') {
            return Err(FilterError::new(format!(
                "The bracket opened at character {open} is not closed."
            )));
        }
        self.depth -= 1;
        Ok(inner)
    }

    /// `"." ATTRNAME` after a bracket (PATCH paths), lower-cased; `None` without a dot.
    pub(super) fn sub_attr(&mut self) -> Result<Option<String>, FilterError> {
        if !self.eat('.') {
            return Ok(None);
        }
        let at = self.column();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$')))
            .unwrap_or(rest.len());
        let name = &rest[..len];
        if !is_attr_name(name) {
            return Err(FilterError::new(format!(
                "Expected a sub-attribute name at character {at}."
            )));
        }
        self.pos += len;
        Ok(Some(name.to_ascii_lowercase()))
    }

    /// `[URI ":"] ATTRNAME ["." ATTRNAME]`.
    pub(super) fn attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        let at = self.column();
        let rest = self.rest();
        let len = rest
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | '$'))
            })
            .unwrap_or(rest.len());
        let text = &rest[..len];
        if text.is_empty() {
            return Err(FilterError::new(format!(
                "Expected an attribute name at character {at}, found \"{}\".",
                snippet(rest)
            )));
        }
        let (schema, local) = match text.rfind(':') {
            Some(i) => (Some(&text[..i]), &text[i + 1..]),
            None => (None, text),
        };
        let mut parts = local.split('.');
        let name = parts.next().unwrap_or("");
        let sub = parts.next();
        let valid = is_attr_name(name)
            && sub.is_none_or(is_attr_name)
            && parts.next().is_none()
            && schema.is_none_or(|s| s.contains(':'));
        if !valid {
            return Err(FilterError::new(format!(
                "\"{text}\" at character {at} is not an attribute name."
            )));
        }
        self.pos = start + len;
        Ok(AttrPath {
            schema: schema.map(str::to_ascii_lowercase),
            name: name.to_ascii_lowercase(),
            sub: sub.map(str::to_ascii_lowercase),
            text: text.to_owned(),
        })
    }

    /// `compValue = false / null / true / number / string`.
    fn comp_value(&mut self, path: &AttrPath, op: CompareOp) -> Result<Value, FilterError> {
        let at = self.column();
        let rest = self.rest();
        let missing = || {
            FilterError::new(format!(
                "Expected a value after \"{path} {}\" at character {at}: a quoted string, \
                 a number, true, false or null.",
                op.as_str()
            ))
        };
        match rest.chars().next() {
            None => Err(missing()),
            Some('"') => {
                let end = string_end(rest).ok_or_else(|| {
                    FilterError::new(format!(
                        "The string starting at character {at} is not closed."
                    ))
                })?;
                let value: String = serde_json::from_str(&rest[..end]).map_err(|_| {
                    FilterError::new(format!(
                        "The string starting at character {at} has an invalid escape."
                    ))
                })?;
                // No stored attribute holds a NUL (bodies with one are refused), and
                // PostgreSQL refuses one in a text parameter.
                if value.contains('\0') {
                    return Err(FilterError::new(format!(
                        "The string starting at character {at} contains a NUL character."
                    )));
                }
                self.pos += end;
                Ok(Value::String(value))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let len = rest
                    .find(|c: char| {
                        !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
                    })
                    .unwrap_or(rest.len());
                let number: serde_json::Number =
                    serde_json::from_str(&rest[..len]).map_err(|_| {
                        FilterError::new(format!(
                            "\"{}\" at character {at} is not a number.",
                            &rest[..len]
                        ))
                    })?;
                self.pos += len;
                Ok(Value::Number(number))
            }
            Some(_) => {
                let word = self.peek_word();
                let value = match word.to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => return Err(missing()),
                };
                self.pos += word.len();
                Ok(value)
            }
        }
    }
}

/// `ATTRNAME = ALPHA *(nameChar)`; `$ref` is the one name SCIM itself spells with `$`.
fn is_attr_name(s: &str) -> bool {
    let body = s.strip_prefix('$').unwrap_or(s);
    let mut chars = body.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Byte length of the JSON string literal at the start of `s` (quotes included).
fn string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn snippet(s: &str) -> String {
    s.chars().take(20).collect()
}

fn eval(filter: &Filter, node: &Value, parent: Option<&str>) -> bool {
    match filter {
        Filter::And(a, b) => eval(a, node, parent) && eval(b, node, parent),
        Filter::Or(a, b) => eval(a, node, parent) || eval(b, node, parent),
        Filter::Not(inner) => !eval(inner, node, parent),
        Filter::Present(path) => resolve(node, path).into_iter().any(is_assigned),
        Filter::Compare { path, op, value } => {
            let exact = is_case_exact(parent, path);
            let values = resolve(node, path);
            match op {
                // "ne" is the negation of "eq", so an unassigned attribute is "ne" anything.
                CompareOp::Ne => !values
                    .into_iter()
                    .any(|v| compare(v, CompareOp::Eq, value, exact)),
                CompareOp::Eq if value.is_null() => !values.into_iter().any(is_assigned),
                _ => values.into_iter().any(|v| compare(v, *op, value, exact)),
            }
        }
        Filter::ValuePath { path, filter } => {
            let scope = Some(path.name.as_str());
            match attribute(node, path) {
                Some(Value::Array(items)) => items.iter().any(|item| eval(filter, item, scope)),
                Some(item @ Value::Object(_)) => eval(filter, item, scope),
                _ => false,
            }
        }
    }
}

fn is_case_exact(parent: Option<&str>, path: &AttrPath) -> bool {
    let full = match parent {
        Some(p) => format!("{p}.{}", path.dotted()),
        None => path.dotted(),
    };
    CASE_EXACT.contains(&full.as_str())
}

fn is_assigned(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// The key of `object` equal to `name` ignoring case.
pub(super) fn get_ci<'v>(object: &'v Value, name: &str) -> Option<&'v Value> {
    let map = object.as_object()?;
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The value of the top-level attribute `path` names (ignoring its sub-attribute),
/// looking inside the extension object when the path carries an extension URN.
fn attribute<'v>(node: &'v Value, path: &AttrPath) -> Option<&'v Value> {
    let scope = match &path.schema {
        Some(urn) => match get_ci(node, urn) {
            Some(ext) => ext,
            None if path.in_core_schema() => node,
            None => return None,
        },
        None => node,
    };
    get_ci(scope, &path.name)
}

/// Every simple value `path` reaches: multi-valued attributes contribute each element,
/// and an element that is complex stands for its `value` sub-attribute.
fn resolve<'v>(node: &'v Value, path: &AttrPath) -> Vec<&'v Value> {
    let Some(top) = attribute(node, path) else {
        return Vec::new();
    };
    let reached: Vec<&Value> = match (&path.sub, top) {
        (Some(sub), Value::Array(items)) => items.iter().filter_map(|i| get_ci(i, sub)).collect(),
        (Some(sub), other) => get_ci(other, sub).into_iter().collect(),
        (None, Value::Array(items)) => items.iter().collect(),
        (None, other) => vec![other],
    };
    reached
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        })
        .map(|v| match v {
            Value::Object(_) => get_ci(v, "value").unwrap_or(&Value::Null),
            other => other,
        })
        .collect()
}

fn compare(actual: &Value, op: CompareOp, expected: &Value, case_exact: bool) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(e)) => compare_strings(a, op, e, case_exact),
        (Value::Number(a), Value::Number(e)) => match (a.as_f64(), e.as_f64()) {
            (Some(a), Some(e)) => ordering_holds(op, a.partial_cmp(&e)),
            _ => false,
        },
        (Value::Bool(a), Value::Bool(e)) => op == CompareOp::Eq && a == e,
        (Value::Null, Value::Null) => op == CompareOp::Eq,
        _ => false,
    }
}

fn compare_strings(a: &str, op: CompareOp, e: &str, case_exact: bool) -> bool {
    // Timestamps compare as instants, so "2024-01-01T00:00:00Z" equals "…+00:00".
    if let (Ok(a), Ok(e)) = (
        chrono::DateTime::parse_from_rfc3339(a),
        chrono::DateTime::parse_from_rfc3339(e),
    ) {
        return match op {
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
            _ => ordering_holds(op, Some(a.cmp(&e))),
        };
    }
    let (a, e) = if case_exact {
        (a.to_owned(), e.to_owned())
    } else {
        (a.to_lowercase(), e.to_lowercase())
    };
    match op {
        CompareOp::Co => a.contains(&e),
        CompareOp::Sw => a.starts_with(&e),
        CompareOp::Ew => a.ends_with(&e),
        _ => ordering_holds(op, Some(a.cmp(&e))),
    }
}

fn ordering_holds(op: CompareOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Filter {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn cmp(name: &str, op: CompareOp, value: Value) -> Filter {
        Filter::Compare {
            path: AttrPath::parse(name).unwrap(),
            op,
            value,
        }
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().message
    }

    #[test]
    fn a_comparison_reads_its_path_operator_and_value() {
        assert_eq!(
            p(r#"userName eq "bjensen""#),
            cmp("userName", CompareOp::Eq, json!("bjensen"))
        );
        assert_eq!(
            p("meta.lastModified gt \"2011-05-13T04:42:34Z\""),
            cmp(
                "meta.lastModified",
                CompareOp::Gt,
                json!("2011-05-13T04:42:34Z")
            )
        );
        assert_eq!(
            p("active eq true"),
            cmp("active", CompareOp::Eq, json!(true))
        );
        assert_eq!(p("count ge 10"), cmp("count", CompareOp::Ge, json!(10)));
        assert_eq!(p("x le -1.5e2"), cmp("x", CompareOp::Le, json!(-150.0)));
        assert_eq!(
            p("manager eq null"),
            cmp("manager", CompareOp::Eq, Value::Null)
        );
        assert_eq!(
            p("title pr"),
            Filter::Present(AttrPath::parse("title").unwrap())
        );
    }

    #[test]
    fn names_operators_and_literals_ignore_case() {
        assert_eq!(
            p(r#"USERNAME EQ "x""#),
            cmp("userName", CompareOp::Eq, json!("x"))
        );
        assert_eq!(
            p("Active Eq TRUE"),
            cmp("active", CompareOp::Eq, json!(true))
        );
        assert_eq!(p("title PR"), p("title pr"));
        assert_eq!(p("a eq 1 AND b eq 2"), p("a eq 1 and b eq 2"));
        let path = AttrPath::parse("name.GivenName").unwrap();
        assert_eq!(path.name, "name");
        assert_eq!(path.sub.as_deref(), Some("givenname"));
        assert_eq!(path.original_sub(), Some("GivenName"));
        assert_eq!(path.to_string(), "name.GivenName");
    }

    #[test]
    fn a_urn_prefix_names_the_schema_and_keeps_the_attribute() {
        let path = AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:userName").unwrap();
        assert_eq!(
            path.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:user")
        );
        assert_eq!(path.name, "username");
        assert!(path.in_core_schema());
        assert_eq!(path.original_name(), "userName");
        assert_eq!(
            path,
            AttrPath::parse("userName").unwrap().with_schema_for_test()
        );
        let ext = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(ext.name, "manager");
        assert_eq!(ext.sub.as_deref(), Some("value"));
        assert!(!ext.in_core_schema());
    }

    impl AttrPath {
        fn with_schema_for_test(mut self) -> Self {
            self.schema = Some("urn:ietf:params:scim:schemas:core:2.0:user".into());
            self
        }
    }

    #[test]
    fn a_nul_in_a_string_is_an_invalid_filter() {
        let refused = parse(r#"userName eq "a\u0000b""#).unwrap_err();
        assert!(refused.to_string().contains("NUL"), "{refused}");
    }

    #[test]
    fn strings_take_json_escapes() {
        assert_eq!(
            p(r#"displayName eq "say \"hi\" \\ \u00e9t\u00e9""#),
            cmp("displayName", CompareOp::Eq, json!("say \"hi\" \\ été"))
        );
        assert_eq!(
            p(r#"displayName eq "a and b or c""#),
            cmp("displayName", CompareOp::Eq, json!("a and b or c"))
        );
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let a = || Box::new(p("a pr"));
        let b = || Box::new(p("b pr"));
        let c = || Box::new(p("c pr"));
        assert_eq!(
            p("a pr or b pr and c pr"),
            Filter::Or(a(), Box::new(Filter::And(b(), c())))
        );
        assert_eq!(
            p("a pr and b pr or c pr"),
            Filter::Or(Box::new(Filter::And(a(), b())), c())
        );
        assert_eq!(
            p("(a pr or b pr) and c pr"),
            Filter::And(Box::new(Filter::Or(a(), b())), c())
        );
        assert_eq!(
            p("not (a pr) and b pr"),
            Filter::And(Box::new(Filter::Not(a())), b())
        );
        assert_eq!(p("not(a pr)"), Filter::Not(a()));
        assert_eq!(
            p("a pr and b pr and c pr"),
            Filter::And(Box::new(Filter::And(a(), b())), c())
        );
    }

    #[test]
    fn a_value_path_filters_the_elements_of_a_multi_valued_attribute() {
        assert_eq!(
            p(r#"emails[type eq "work" and value co "@example.com"]"#),
            Filter::ValuePath {
                path: AttrPath::parse("emails").unwrap(),
                filter: Box::new(p(r#"type eq "work" and value co "@example.com""#)),
            }
        );
        assert_eq!(
            p(r#"userType eq "Employee" and emails[type eq "work" or not (primary eq false)]"#),
            Filter::And(
                Box::new(p(r#"userType eq "Employee""#)),
                Box::new(Filter::ValuePath {
                    path: AttrPath::parse("emails").unwrap(),
                    filter: Box::new(p(r#"type eq "work" or not (primary eq false)"#)),
                })
            )
        );
    }

    #[test]
    fn printing_reads_back_as_the_same_filter() {
        for s in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            r#"a pr and (b pr and c pr)"#,
            r#"a pr or (b pr or c pr)"#,
            r#"displayName eq "quote \" and \\ backslash""#,
            "meta.lastModified ge \"2011-05-13T04:42:34Z\" and active eq false",
            "x eq 1.5 or y eq null",
        ] {
            let once = p(s);
            let printed = once.to_string();
            assert_eq!(p(&printed), once, "{s} printed as {printed}");
        }
    }

    #[test]
    fn broken_filters_say_what_is_wrong() {
        assert_eq!(err(""), "The filter is empty.");
        assert!(err("userName").contains("Expected an operator"));
        assert!(err(r#"userName eqq "x""#).contains("Unknown operator \"eqq"));
        assert!(err(r#"userName equals "x""#).contains("Unknown operator"));
        assert!(err("userName eq").contains("Expected a value"));
        assert!(err("userName eq bjensen").contains("Expected a value"));
        assert!(err(r#"userName eq "bjensen"#).contains("is not closed"));
        assert!(err(r#"userName eq "a\qb""#).contains("invalid escape"));
        assert!(err(r#"(userName eq "a""#).contains("parenthesis opened at character 1"));
        assert!(err(r#"emails[type eq "work""#).contains("bracket opened at character 7"));
        assert!(err(r#"userName eq "a" xyz"#).contains("Unexpected \"xyz\""));
        assert!(err(r#"userName eq "a" and"#).contains("Unexpected"));
        assert!(err(r#"a[b[c eq 1]]"#).contains("cannot contain another"));
        assert!(err("1abc eq 1").contains("is not an attribute name"));
        assert!(err("a.b.c eq 1").contains("is not an attribute name"));
        assert!(err("x eq 1.2.3").contains("is not a number"));
        assert!(
            err(r#"not userName eq "a""#).contains("must be followed by a filter in parentheses")
        );
        assert_eq!(p("not eq 1"), cmp("not", CompareOp::Eq, json!(1)));
    }

    #[test]
    fn deep_nesting_is_refused_rather_than_exhausting_the_stack() {
        let deep = format!("{}a pr{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(err(&deep).contains("nests deeper"));
        let ok = format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(p(&ok), p("a pr"));
    }

    #[test]
    fn a_long_flat_chain_is_refused_rather_than_exhausting_the_stack() {
        for op in ["or", "and"] {
            let long = vec!["a pr"; 150_000].join(&format!(" {op} "));
            assert!(err(&long).contains("more than 100 expressions"), "{op}");
            let ok = vec!["a pr"; MAX_OPERATORS + 1].join(&format!(" {op} "));
            assert!(parse(&ok).is_ok(), "{op}");
        }
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "0190-abc",
            "externalId": "Ext-1",
            "userName": "Bjensen@Example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "displayName": "Babs Jensen",
            "active": false,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"},
            "meta": {"resourceType": "User", "lastModified": "2024-03-01T10:00:00Z"}
        })
    }

    fn m(s: &str) -> bool {
        p(s).matches(&user())
    }

    #[test]
    fn strings_compare_ignoring_case_unless_the_attribute_is_case_exact() {
        assert!(m(r#"userName eq "bjensen@example.com""#));
        assert!(m(r#"USERNAME sw "BJENSEN""#));
        assert!(m(r#"userName ew "EXAMPLE.COM""#));
        assert!(m(r#"displayName co "babs""#));
        assert!(m(r#"name.familyName eq "jensen""#));
        assert!(m(r#"externalId eq "Ext-1""#));
        assert!(!m(r#"externalId eq "ext-1""#));
        assert!(!m(r#"id eq "0190-ABC""#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com""#
        ));
    }

    #[test]
    fn a_multi_valued_attribute_matches_when_any_element_does() {
        assert!(m(r#"emails.value eq "babs@jensen.org""#));
        assert!(m(r#"emails co "jensen.org""#));
        assert!(m(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!m(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(m(r#"emails[type eq "work" and primary eq true]"#));
        assert!(m(r#"emails.type eq "home""#));
        assert!(!m(r#"emails.value eq "nobody@example.com""#));
    }

    #[test]
    fn booleans_presence_and_negation() {
        assert!(m("active eq false"));
        assert!(!m("active eq true"));
        assert!(m("not (active eq true)"));
        assert!(m("title eq null"));
        assert!(!m("title pr"));
        assert!(m("displayName pr"));
        assert!(m(r#"title ne "x""#));
        assert!(!m(r#"displayName ne "babs jensen""#));
        assert!(m(
            r#"active eq false and (title pr or userName co "example")"#
        ));
        assert!(!m(r#"active eq false and not (userName co "example")"#));
    }

    #[test]
    fn timestamps_compare_as_instants() {
        assert!(m(r#"meta.lastModified gt "2024-02-29T23:59:59Z""#));
        assert!(m(r#"meta.lastModified eq "2024-03-01T11:00:00+01:00""#));
        assert!(m(r#"meta.lastModified le "2024-03-01T10:00:00.000Z""#));
        assert!(!m(r#"meta.lastModified lt "2024-03-01T10:00:00Z""#));
    }

    #[test]
    fn extension_attributes_are_found_under_their_urn() {
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(!m(r#"employeeNumber eq "701984""#));
    }

    #[test]
    fn numbers_compare_numerically() {
        let doc = json!({"n": 10});
        assert!(p("n gt 9").matches(&doc));
        assert!(p("n eq 10.0").matches(&doc));
        assert!(!p("n lt 9").matches(&doc));
        assert!(!p(r#"n eq "10""#).matches(&doc));
    }

    #[test]
    fn the_queries_okta_and_entra_send_are_read_and_matched() {
        // Okta and Entra look a user up by userName before creating it; Entra also by
        // externalId, and checks a membership with a value path.
        assert!(m(r#"userName eq "BJENSEN@example.com""#));
        assert!(!m(
            r#"userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081""#
        ));
        assert!(m(r#"externalId eq "Ext-1""#));
        let group = json!({
            "id": "g1", "displayName": "Engineering",
            "members": [{"value": "u1"}, {"value": "u2"}]
        });
        assert!(p(r#"displayName eq "engineering""#).matches(&group));
        assert!(p(r#"id eq "g1" and members[value eq "u2"]"#).matches(&group));
        assert!(!p(r#"id eq "g1" and members[value eq "U2"]"#).matches(&group));
        assert!(p(r#"members.value eq "u1""#).matches(&group));
    }
}
