//! Hostile input, as a property: random and hostile values go into every form field,
//! query parameter and path parameter of every route (read from the route table, so a new
//! route is fuzzed without touching this file), and the server must
//! - never answer 5xx,
//! - never panic (a hook records panics on the server's threads; a dropped connection
//!   counts too),
//! - change nothing when it refuses (4xx): a snapshot of the database — row counts of every
//!   table and the content of the tables that hold who may do what — is the same after.
//!
//! One server per proptest run (per route family), signed in as the organization's Admin
//! with a valid CSRF token so requests reach the handlers; a smaller run as anonymous.
//! Cases per family: `PROPTEST_CASES`, default 128. Both databases (`TEST_DATABASE_URL`).

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Mutex, Once, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
use portcullis::db::{DbConnection, DbPool};
use portcullis::domain::input::{Place, check_text};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Browser, Page, TestDb, hidden_value, spawn_app};
use crate::helpers::{Route, registered_routes};

/// The form limit (`domain::input::MAX_FORM_BYTES`).
const FORM_LIMIT: usize = 256 * 1024;
const ORG: &str = "my-org";
const OTHER_ORG: &str = "other";

// ---------------------------------------------------------------------------------------
// The route table, as registered in the source (`helpers::registered_routes`).

/// Which proptest run a route belongs to. Anything new lands in one of them.
fn family(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if path.contains("/audit") {
        return "audit";
    }
    match segments.as_slice() {
        ["orgs", _, "users", ..] => "users",
        ["orgs", _, "invitations", ..] | ["invite", ..] => "invitations",
        ["orgs", _, "groups", ..] => "groups",
        ["orgs", _, "pools", ..] => "pools",
        ["orgs", _, "roles", ..] => "roles",
        ["admin", ..] => "admin",
        _ => "misc",
    }
}

/// The fields a route reads (DESIGN §4 and the templates' `name=` attributes). Routes
/// not listed still get `next` and random extra fields.
fn fields(route: &Route) -> Vec<&'static str> {
    let mut fields: Vec<&'static str> = match (route.method, route.path.as_str()) {
        ("GET", "/login") => vec!["next", "signed_out"],
        ("POST", "/login") => vec!["email", "password"],
        ("POST", "/account/password") => vec!["current_password", "password", "password_confirm"],
        ("POST", "/account/signin-alerts") => vec!["signin_alerts"],
        ("POST", "/setup/{token}") => vec![
            "email",
            "first_name",
            "last_name",
            "org_name",
            "password",
            "password_confirm",
        ],
        ("GET", "/orgs/{org}/users") => vec!["q", "status", "role", "sort", "cursor"],
        (_, "/orgs/{org}/users/bulk") => vec!["action", "user_ids", "role_id", "group_id"],
        ("POST", "/orgs/{org}/users/{id}") => {
            vec!["first_name", "last_name", "role_id", "confirm_own_role"]
        }
        ("POST", "/orgs/{org}/users/{id}/delete") => vec!["confirm_email", "successor_id"],
        ("GET", "/orgs/{org}/invitations") => vec!["status", "cursor"],
        ("POST", "/orgs/{org}/invitations") => vec![
            "emails",
            "role_id",
            "group_ids",
            "pool_ids",
            "first_name",
            "last_name",
        ],
        ("POST", "/invite/{token}") => {
            vec!["first_name", "last_name", "password", "password_confirm"]
        }
        ("POST", "/orgs/{org}/roles" | "/orgs/{org}/roles/{id}") => vec!["name", "permissions"],
        ("POST", "/orgs/{org}/groups" | "/orgs/{org}/groups/{id}") => {
            vec!["name", "description", "role_id", "owner_id"]
        }
        ("POST", "/orgs/{org}/groups/{id}/members") => vec!["user_id"],
        ("POST", "/orgs/{org}/pools" | "/orgs/{org}/pools/{id}") => vec!["name", "parent_id"],
        ("POST", "/orgs/{org}/pools/{id}/members") => vec!["user_id", "role_id"],
        ("POST", "/admin/orgs") => vec!["name", "slug", "admin_email"],
        ("GET", "/admin/users") => vec!["after"],
        ("POST", "/admin/users") => vec![
            "email",
            "first_name",
            "last_name",
            "org",
            "role_id",
            "group_ids",
        ],
        ("POST", "/admin/users/{id}/memberships") => vec!["org", "role_id"],
        ("POST", "/admin/users/{id}/memberships/{org}/role") => vec!["role_id"],
        ("GET", path) if path.contains("/audit") => {
            vec!["actor", "action", "target", "from", "to", "cursor", "org"]
        }
        _ => vec![],
    };
    fields.push("next");
    fields
}

fn params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Values.

/// One value: bytes percent-encoded on the wire, or (`raw`) written as they are into the
/// body, so a body can carry bytes that are not UTF-8 at all, or inject `&` and `=`.
#[derive(Clone, PartialEq)]
struct V {
    /// Shared: the huge values are cloned into every case that draws them.
    bytes: Arc<[u8]>,
    raw: bool,
}

impl fmt::Debug for V {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = String::from_utf8_lossy(&self.bytes[..self.bytes.len().min(48)]).into_owned();
        let kind = if self.raw { "raw" } else { "enc" };
        if self.bytes.len() > 48 {
            write!(f, "{kind}({shown:?}… {} bytes)", self.bytes.len())
        } else if std::str::from_utf8(&self.bytes).is_err() {
            write!(f, "{kind}(bytes {:?})", self.bytes)
        } else {
            write!(f, "{kind}({shown:?})")
        }
    }
}

fn enc(s: &str) -> V {
    V {
        bytes: Arc::from(s.as_bytes()),
        raw: false,
    }
}

fn enc_bytes(b: &[u8]) -> V {
    V {
        bytes: Arc::from(b),
        raw: false,
    }
}

fn raw(b: &[u8]) -> V {
    V {
        bytes: Arc::from(b),
        raw: true,
    }
}

/// The fixed hostile values, by class. Shrinking goes towards the first.
fn hostile_values() -> &'static [V] {
    static VALUES: OnceLock<Vec<V>> = OnceLock::new();
    VALUES.get_or_init(make_hostile_values)
}

/// The fixed values that the input guard lets through.
fn clean_values() -> &'static [V] {
    static VALUES: OnceLock<Vec<V>> = OnceLock::new();
    VALUES.get_or_init(|| {
        hostile_values()
            .iter()
            .filter(|v| check_text(&v.bytes, Place::Form).is_ok())
            .cloned()
            .collect()
    })
}

fn make_hostile_values() -> Vec<V> {
    let mut values = vec![
        // empty
        enc(""),
        enc(" "),
        // non-UTF-8
        enc_bytes(&[0xFF, 0xFE]),
        enc_bytes(b"ok\xC3("),
        enc_bytes(b"\xED\xA0\x80"),
        raw(b"\xFF\xFE"),
        raw(b"caf\xE9"),
        // NUL and other control characters
        enc("\0"),
        enc("a\0b"),
        enc("\x01\x02\x1b[31m\x7f"),
        enc("line\r\nbreak\ttab"),
        enc("\u{85}\u{9c}"),
        // SQL metacharacters
        enc("'"),
        enc("\""),
        enc(";"),
        enc("--"),
        enc("%"),
        enc("_"),
        enc("\\"),
        enc("' OR '1'='1"),
        enc("'; DROP TABLE users; --"),
        enc("%_%\\%"),
        enc("a\" OR \"\"=\""),
        enc("NEAR(a b) OR * AND \"^"),
        // HTML and template metacharacters
        enc("<script>alert(1)</script>"),
        enc("\"><img src=x onerror=alert(1)>"),
        enc("&amp;&lt;&#0;"),
        enc("{{ 7*7 }}{% raw %}"),
        enc("javascript:alert(1)"),
        enc("//evil.example/"),
        // unicode
        enc("\u{202E}gnp.exe"),
        enc("😀👩‍👩‍👧‍👦"),
        enc("e\u{301}\u{301}\u{301}\u{301}"),
        enc("\u{FEFF}\u{200B}\u{2028}"),
        enc("\u{FFFD}\u{10FFFF}"),
        enc("İıßﬃ"),
        // garbage cursors
        enc("AAAA"),
        enc("////++=="),
        enc("="),
        enc("eyJpZCI6MX0"),
        enc("MjAyNi0wMS0wMVQwMDowMDowMHw"),
        enc(&"QUJD".repeat(2500)),
        // numbers where text is expected
        enc("0"),
        enc("-1"),
        enc("99999999999999999999999999"),
        enc("1e309"),
        enc("NaN"),
        enc("0x10"),
        // raw bodies: field injection and broken escapes
        raw(b"a&csrf_token=x&next=http://evil.example/"),
        raw(b"%"),
        raw(b"%zz%0"),
        raw(b"=&=&&=="),
        raw(b"a+b%2"),
    ];
    // huge: 100 KB, and just over the form limit
    values.push(enc(&"a".repeat(100 * 1024)));
    values.push(enc(&"x".repeat(FORM_LIMIT + 1)));
    values
}

/// Hostile values. `clean` ones are those the input guard lets through (no control
/// character, valid UTF-8), so that half the cases reach the handlers and the database
/// with SQL and HTML metacharacters, huge values, unicode and garbage cursors.
fn hostile(clean: bool) -> BoxedStrategy<V> {
    let fixed = if clean {
        clean_values()
    } else {
        hostile_values()
    };
    let base64 = |b: &[u8]| enc(&URL_SAFE_NO_PAD.encode(b));
    prop_oneof![
        6 => prop::sample::select(fixed),
        1 => prop::collection::vec(any::<char>(), 0..24).prop_map(move |chars| {
            enc(&chars
                .into_iter()
                .filter(|c| !clean || !c.is_control())
                .collect::<String>())
        }),
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(move |b| {
            if clean { base64(&b) } else { enc_bytes(&b) }
        }),
        // Cursors and tokens that decode to hostile bytes (NUL, not UTF-8, huge).
        1 => prop::sample::select(hostile_values()).prop_map(move |v| base64(&v.bytes)),
    ]
    .boxed()
}

/// Real values for a name (a field or a path parameter), or a hostile one.
fn value_for(real: Vec<String>, clean: bool) -> BoxedStrategy<V> {
    if real.is_empty() {
        return hostile(clean);
    }
    prop_oneof![
        2 => prop::sample::select(real).prop_map(|s| enc(&s)),
        3 => hostile(clean),
    ]
    .boxed()
}

/// A path parameter: mostly real, so the fields behind it are reached too.
fn param_value(real: Vec<String>, clean: bool) -> BoxedStrategy<V> {
    if real.is_empty() {
        return hostile(clean);
    }
    prop_oneof![
        3 => prop::sample::select(real).prop_map(|s| enc(&s)),
        1 => hostile(clean),
    ]
    .boxed()
}

/// Ids and names that exist, so values reach deep into the handlers.
#[derive(Clone, Debug, Default)]
struct Real {
    user_ids: Vec<String>,
    emails: Vec<String>,
    group_ids: Vec<String>,
    pool_ids: Vec<String>,
    invitation_ids: Vec<String>,
    role_ids: Vec<String>,
    org_ids: Vec<String>,
}

impl Real {
    fn all_ids(&self) -> Vec<String> {
        [
            &self.user_ids,
            &self.group_ids,
            &self.pool_ids,
            &self.invitation_ids,
            &self.role_ids,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }

    fn param(&self, route: &str, name: &str) -> Vec<String> {
        match name {
            // Mostly the admin's own organization; sometimes one they are not in.
            "org" => vec![ORG.into(), ORG.into(), ORG.into(), OTHER_ORG.into()],
            "user_id" => self.user_ids.clone(),
            "name" => vec!["app.css".into(), "app.js".into()],
            "token" => vec![],
            "id" if route.contains("/users/") => self.user_ids.clone(),
            "id" if route.contains("/groups/") => self.group_ids.clone(),
            "id" if route.contains("/pools/") => self.pool_ids.clone(),
            "id" if route.contains("/invitations/") => self.invitation_ids.clone(),
            "id" if route.contains("/roles/") => self.role_ids.clone(),
            _ => self.all_ids(),
        }
    }

    fn field(&self, name: &str) -> Vec<String> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match name {
            "role_id" | "role" => self.role_ids.clone(),
            "group_id" | "group_ids" => self.group_ids.clone(),
            "pool_ids" | "parent_id" => self.pool_ids.clone(),
            "user_id" | "user_ids" | "successor_id" | "owner_id" => self.user_ids.clone(),
            "org" => {
                let mut v = self.org_ids.clone();
                v.extend([ORG.to_string(), OTHER_ORG.to_string()]);
                v
            }
            "email" | "emails" | "confirm_email" | "admin_email" | "actor" | "target" => {
                self.emails.clone()
            }
            "action" => words(&[
                "deactivate",
                "activate",
                "remove",
                "set-role",
                "add-to-group",
                "auth.login_failed",
            ]),
            "status" => words(&["active", "inactive", "pending", "accepted", "all"]),
            "sort" => words(&["email", "-email", "name", "created", "last_active"]),
            "permissions" => words(&["users.read", "audit.read", "org.manage"]),
            "from" | "to" => words(&["2026-01-01", "2026-13-45", "9999-12-31T23:59"]),
            "next" => words(&["/orgs", "//evil.example", "/orgs/my-org/users?x=1"]),
            "password" | "password_confirm" | "current_password" => {
                words(&["a long enough password"])
            }
            _ => vec![],
        }
    }
}

// ---------------------------------------------------------------------------------------
// One request, generated.

#[derive(Clone, Debug)]
struct Case {
    route: usize,
    params: Vec<V>,
    fields: Vec<(String, Vec<V>)>,
    /// Instead of the fields, one whole body (POST) or query string (GET).
    whole: Option<V>,
}

const EXTRA_NAMES: &[&str] = &[
    "q",
    "cursor",
    "id",
    "csrf_token",
    "user_ids",
    "role_id",
    "x",
];

fn case_strategy(routes: Arc<Vec<Route>>, real: Arc<Real>) -> BoxedStrategy<Case> {
    (0..routes.len(), prop::bool::weighted(0.5))
        .prop_flat_map(move |(i, clean)| {
            let route = &routes[i];
            let params: Vec<BoxedStrategy<V>> = params(&route.path)
                .iter()
                .map(|p| param_value(real.param(&route.path, p), clean))
                .collect();
            let mut fields: Vec<BoxedStrategy<(String, Vec<V>)>> = fields(route)
                .into_iter()
                .map(|f| {
                    (
                        Just(f.to_string()),
                        prop::collection::vec(value_for(real.field(f), clean), 0..=3),
                    )
                        .boxed()
                })
                .collect();
            fields.push(
                (
                    prop::sample::select(EXTRA_NAMES).prop_map(str::to_string),
                    prop::collection::vec(hostile(clean), 0..=1),
                )
                    .boxed(),
            );
            let whole = prop::option::weighted(0.1, hostile(clean));
            (Just(i), params, fields, whole).prop_map(|(route, params, fields, whole)| Case {
                route,
                params,
                fields,
                whole,
            })
        })
        .boxed()
}

/// Query-string / form encoding of one value.
fn encode_into(out: &mut Vec<u8>, v: &V) {
    if v.raw {
        out.extend_from_slice(&v.bytes);
    } else {
        out.extend(
            percent_encode(&v.bytes, NON_ALPHANUMERIC)
                .to_string()
                .into_bytes(),
        );
    }
}

/// A path segment: always percent-encoded (a raw `/` or `?` would make another route).
/// Cut to 8 KB: a URL cannot be longer than 64 KB (`http::Uri`), and the head of a request
/// is what the server bounds, not the handlers.
fn segment(v: &V) -> String {
    percent_encode(&v.bytes[..v.bytes.len().min(8 * 1024)], NON_ALPHANUMERIC).to_string()
}

/// The longest URL the client can send (`http::Uri` stops at 64 KB).
const MAX_URL: usize = 60 * 1024;

/// What goes on the wire for a case.
struct Wire {
    method: &'static str,
    url: String,
    body: Vec<u8>,
}

fn wire(base: &str, route: &Route, case: &Case, csrf: Option<&str>) -> Wire {
    let mut path = String::new();
    let mut values = case.params.iter();
    for (i, part) in route.path.split('/').enumerate() {
        if i > 0 {
            path.push('/');
        }
        if part.starts_with('{') {
            path.push_str(&segment(values.next().expect("a value per parameter")));
        } else {
            path.push_str(part);
        }
    }
    let mut pairs: Vec<u8> = Vec::new();
    match &case.whole {
        Some(v) => encode_into(&mut pairs, v),
        None => {
            for (name, vs) in &case.fields {
                for v in vs {
                    if !pairs.is_empty() {
                        pairs.push(b'&');
                    }
                    pairs.extend_from_slice(name.as_bytes());
                    pairs.push(b'=');
                    encode_into(&mut pairs, v);
                }
            }
        }
    }
    if route.method == "GET" {
        // A URL is text: bytes that cannot be written in one are escaped, the rest stay
        // raw (so `&` and `=` still inject fields).
        let query: String = pairs
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() && b != b'#' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let mut url = if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        };
        // Huge values still make the longest URL there can be (possibly with a broken
        // `%` escape at the cut, which is fine too).
        url.truncate(MAX_URL);
        Wire {
            method: "GET",
            url,
            body: Vec::new(),
        }
    } else {
        let mut body = Vec::new();
        if let Some(token) = csrf {
            body.extend_from_slice(b"csrf_token=");
            body.extend_from_slice(token.as_bytes());
            if !pairs.is_empty() {
                body.push(b'&');
            }
        }
        body.extend(pairs);
        Wire {
            method: "POST",
            url: format!("{base}{path}"),
            body,
        }
    }
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn send(browser: &Browser, w: &Wire) -> Result<Answer, String> {
    let request = if w.method == "GET" {
        browser.client.get(&w.url)
    } else {
        browser
            .client
            .post(&w.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(w.body.clone())
    };
    let response = request.send().await.map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = response.bytes().await.map_err(|e| format!("{e:?}"))?;
    Ok(Answer {
        status,
        location,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

// ---------------------------------------------------------------------------------------
// Panics on the server's threads.

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn watch_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            // Test threads are named after their test (`module::name`); the rest are the
            // servers' (actix workers, blocking pool, our server thread).
            if !name.contains("::") && name != "main" {
                PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("thread {name:?}: {info}"));
            }
            previous(info);
        }));
    });
}

fn panics_so_far() -> usize {
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).len()
}

// ---------------------------------------------------------------------------------------
// The database snapshot.

#[derive(QueryableByName, Debug, PartialEq)]
struct SnapRow {
    #[diesel(sql_type = Text)]
    t: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Text)]
    h: String,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    t: String,
}

/// Tables whose rows are compared, not only counted: who may do what.
const HASHED: &[&str] = &[
    "organizations",
    "users",
    "roles",
    "memberships",
    "groups",
    "group_members",
    "pools",
    "pool_members",
    "invitations",
    "invitation_groups",
    "invitation_pools",
    "setup_tokens",
];
/// Columns every request may touch (activity stamps).
const VOLATILE_COLUMNS: &[&str] = &["last_active_at", "last_seen_at"];
/// A refusal may be recorded: the audit trail gets these, the sign-in throttle counts. A
/// wrong current password is one too (a generated form that passes the new password's
/// checks, rare enough that the suite met it once under load).
const REFUSAL_ACTIONS: &str =
    "'access.denied', 'auth.login_failed', 'auth.login_throttled', 'account.wrong_password'";

fn is_refusal_table(name: &str) -> bool {
    name.contains("login") || name.contains("throttle")
}

fn names(conn: &mut DbConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Name>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|n| n.t)
        .collect()
}

/// One query that answers a row per table: its count, and for `HASHED` tables its rows.
fn snapshot_query(pool: &DbPool, postgres: bool) -> String {
    let mut conn = pool.get().unwrap();
    let conn: &mut DbConnection = &mut conn;
    let tables = if postgres {
        names(
            conn,
            "SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '\\_\\_diesel%' ORDER BY 1",
        )
    } else {
        let virtuals = names(
            conn,
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'",
        );
        names(
            conn,
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__diesel%' ORDER BY 1",
        )
        .into_iter()
        .filter(|t| {
            !virtuals
                .iter()
                .any(|v| t == v || t.starts_with(&format!("{v}_")))
        })
        .collect()
    };
    let mut parts = Vec::new();
    for table in tables {
        if is_refusal_table(&table) {
            continue;
        }
        if table == "audit_events" {
            parts.push(format!(
                "SELECT CAST('audit_events (not refusals)' AS TEXT) AS t, COUNT(*) AS n, \
                 CAST('' AS TEXT) AS h FROM audit_events WHERE action NOT IN ({REFUSAL_ACTIONS})"
            ));
            continue;
        }
        if !HASHED.contains(&table.as_str()) {
            parts.push(format!(
                "SELECT CAST('{table}' AS TEXT) AS t, COUNT(*) AS n, CAST('' AS TEXT) AS h \
                 FROM \"{table}\""
            ));
            continue;
        }
        let columns: Vec<String> = if postgres {
            names(
                conn,
                &format!(
                    "SELECT CAST(column_name AS TEXT) AS t FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = '{table}' \
                     ORDER BY ordinal_position"
                ),
            )
        } else {
            names(
                conn,
                &format!("SELECT name AS t FROM pragma_table_info('{table}') ORDER BY cid"),
            )
        }
        .into_iter()
        .filter(|c| !VOLATILE_COLUMNS.contains(&c.as_str()))
        .collect();
        if postgres {
            let row = columns
                .iter()
                .map(|c| format!("quote_nullable(CAST(\"{c}\" AS TEXT))"))
                .collect::<Vec<_>>()
                .join(", ");
            parts.push(format!(
                "SELECT CAST('{table}' AS TEXT) AS t, COUNT(*) AS n, \
                 COALESCE(md5(string_agg(r, ';' ORDER BY r)), '') AS h \
                 FROM (SELECT concat_ws('|', {row}) AS r FROM \"{table}\") s"
            ));
        } else {
            let row = columns
                .iter()
                .map(|c| format!("quote(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            parts.push(format!(
                "SELECT '{table}' AS t, COUNT(*) AS n, COALESCE(group_concat(r, ';'), '') AS h \
                 FROM (SELECT {row} AS r FROM \"{table}\" ORDER BY r)"
            ));
        }
    }
    parts.join(" UNION ALL ")
}

fn snapshot(pool: &DbPool, query: &str) -> Vec<SnapRow> {
    let mut conn = pool.get().unwrap();
    let conn: &mut DbConnection = &mut conn;
    diesel::sql_query(query)
        .load::<SnapRow>(conn)
        .unwrap_or_else(|e| panic!("snapshot: {e}"))
}

fn differences(before: &[SnapRow], after: &[SnapRow]) -> Vec<String> {
    let mut out = Vec::new();
    for a in after {
        match before.iter().find(|b| b.t == a.t) {
            Some(b) if b.n != a.n => out.push(format!("{}: {} rows, now {}", a.t, b.n, a.n)),
            Some(b) if b.h != a.h => out.push(format!("{}: rows changed", a.t)),
            Some(_) => {}
            None => out.push(format!("{}: new table", a.t)),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The server, on its own thread with its own actix system, shared by every case of a run.

struct Server {
    address: String,
    pool: DbPool,
    db: Arc<TestDb>,
    member_id: String,
    outsider_id: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fuzz-server".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let app = spawn_app().await;
                    // The first admin first: the setup link works only on an empty database.
                    app.setup_admin().await;
                    let member_id =
                        app.add_member(ORG, "member@example.com", "Mem", "Ber", "member", true);
                    app.create_org(OTHER_ORG, "Other");
                    let outsider_id = app.add_member(
                        OTHER_ORG,
                        "outsider@example.com",
                        "Out",
                        "Sider",
                        "admin",
                        false,
                    );
                    tx.send((
                        app.address.clone(),
                        app.pool.clone(),
                        app.db.clone(),
                        member_id,
                        outsider_id,
                    ))
                    .unwrap();
                    let _ = stopped.await;
                    drop(app);
                })
            })
            .unwrap();
        let (address, pool, db, member_id, outsider_id) = rx.recv().expect("server starts");
        Server {
            address,
            pool,
            db,
            member_id,
            outsider_id,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn ids(&self, sql: &str) -> Vec<String> {
        let mut conn = self.pool.get().unwrap();
        names(&mut conn, sql)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn expect_redirect(page: Page, what: &str) {
    assert_eq!(page.status, 303, "{what}: {}", page.body);
}

/// Signs in the first admin and creates one of everything in the organization.
async fn seed(server: &Server) -> (Browser, Real) {
    let admin = Browser::new(&server.address);
    let signed_in = admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    expect_redirect(signed_in, "admin signs in").await;
    let org_id = server.ids(&format!(
        "SELECT id AS t FROM organizations WHERE slug = '{ORG}'"
    ))[0]
        .clone();
    let member_role = server.ids(&format!(
        "SELECT id AS t FROM roles WHERE org_id = '{org_id}' AND key = 'member'"
    ))[0]
        .clone();
    let admin_id = server.ids(&format!(
        "SELECT id AS t FROM users WHERE email = '{ADMIN_EMAIL}'"
    ))[0]
        .clone();
    let users = format!("/orgs/{ORG}/users");
    let group = admin
        .submit(
            &format!("/orgs/{ORG}/groups"),
            &format!("/orgs/{ORG}/groups"),
            &[
                ("name", "Fuzz group"),
                ("description", "for the fuzz test"),
                ("role_id", &member_role),
                ("owner_id", &admin_id),
            ],
        )
        .await;
    expect_redirect(group, "group").await;
    let pool = admin
        .submit(
            &format!("/orgs/{ORG}/pools"),
            &format!("/orgs/{ORG}/pools"),
            &[("name", "Fuzz pool"), ("parent_id", "")],
        )
        .await;
    expect_redirect(pool, "pool").await;
    let invite = admin
        .submit(
            &format!("/orgs/{ORG}/invitations/new"),
            &format!("/orgs/{ORG}/invitations"),
            &[("emails", "invitee@example.com"), ("role_id", &member_role)],
        )
        .await;
    assert!(invite.status < 400, "invitation: {}", invite.body);
    let role = admin
        .submit(
            &format!("/orgs/{ORG}/roles"),
            &format!("/orgs/{ORG}/roles"),
            &[("name", "Fuzz role"), ("permissions", "users.read")],
        )
        .await;
    expect_redirect(role, "role").await;
    assert_eq!(admin.get(&users).await.status, 200);
    let real = Real {
        user_ids: vec![
            admin_id,
            server.member_id.clone(),
            server.outsider_id.clone(),
        ],
        emails: vec![
            ADMIN_EMAIL.into(),
            "member@example.com".into(),
            "outsider@example.com".into(),
            "invitee@example.com".into(),
        ],
        group_ids: server.ids("SELECT id AS t FROM groups"),
        pool_ids: server.ids("SELECT id AS t FROM pools"),
        invitation_ids: server.ids("SELECT id AS t FROM invitations"),
        role_ids: server.ids("SELECT id AS t FROM roles"),
        org_ids: server.ids("SELECT id AS t FROM organizations"),
    };
    assert!(!real.invitation_ids.is_empty() && !real.group_ids.is_empty());
    (admin, real)
}

// ---------------------------------------------------------------------------------------
// The property.

#[derive(Clone, Copy, PartialEq)]
enum Actor {
    Admin,
    Anonymous,
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct State {
    browser: Browser,
    csrf: Option<String>,
    last: Vec<SnapRow>,
    /// How many answers of each status, to see that cases reach the handlers.
    statuses: std::collections::BTreeMap<u16, u32>,
}

async fn fresh_csrf(browser: &Browser, actor: Actor) -> Option<String> {
    let page = match actor {
        Actor::Admin => browser.get("/account").await,
        Actor::Anonymous => browser.get("/login").await,
    };
    hidden_value(&page.body, "csrf_token")
}

/// After a request that succeeded, the admin may have been signed out (ended sessions,
/// lost a role): sign in again so later cases still reach the handlers.
async fn still_admin(state: &mut State, address: &str) {
    let probe = state.browser.get("/account").await;
    if probe.status == 200 {
        return;
    }
    let browser = Browser::new(address);
    let signed_in = browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        signed_in.status, 303,
        "admin signs in again: {}",
        signed_in.body
    );
    state.browser = browser;
}

fn run_family(family_name: &str, actor: Actor, default_cases: u32) {
    watch_panics();
    let all = registered_routes();
    let chosen: Vec<Route> = all
        .into_iter()
        .filter(|r| family_name.is_empty() || family(&r.path) == family_name)
        // Signing the admin out on purpose is the anonymous run's business.
        .filter(|r| !(actor == Actor::Admin && r.path == "/logout"))
        .collect();
    assert!(!chosen.is_empty(), "no route in family {family_name}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = Server::start();
    let query = snapshot_query(&server.pool, server.db.is_postgres());
    let (admin, real) = runtime.block_on(seed(&server));
    let browser = match actor {
        Actor::Admin => admin,
        Actor::Anonymous => Browser::new(&server.address),
    };
    let csrf = runtime.block_on(fresh_csrf(&browser, actor));
    if actor == Actor::Admin {
        assert!(csrf.is_some(), "the admin's pages carry a CSRF token");
    }
    let state = RefCell::new(State {
        browser,
        csrf,
        last: snapshot(&server.pool, &query),
        statuses: Default::default(),
    });
    let routes = Arc::new(chosen);
    let config = Config {
        cases: cases(default_cases),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    let result = runner.run(
        &case_strategy(routes.clone(), Arc::new(real)),
        |case: Case| {
            let route = &routes[case.route];
            let mut state = state.borrow_mut();
            let w = wire(&server.address, route, &case, state.csrf.as_deref());
            let panics = panics_so_far();
            let answer = runtime.block_on(send(&state.browser, &w));
            let short_url: String = w.url.chars().take(160).collect();
            let what = format!("{} {} ({short_url})", route.method, route.path);
            let answer =
                answer.map_err(|e| TestCaseError::fail(format!("{what}: no answer: {e}")))?;
            *state.statuses.entry(answer.status).or_default() += 1;
            if panics_so_far() > panics {
                let all = PANICS.lock().unwrap_or_else(|e| e.into_inner());
                return Err(TestCaseError::fail(format!(
                    "{what}: the server panicked: {}",
                    all[panics..].join("\n")
                )));
            }
            if answer.status >= 500 {
                let body: String = answer.body.chars().take(400).collect();
                return Err(TestCaseError::fail(format!(
                    "{what}: answered {}: {body}",
                    answer.status
                )));
            }
            let after = snapshot(&server.pool, &query);
            if (400..500).contains(&answer.status) {
                let changed = differences(&state.last, &after);
                if !changed.is_empty() {
                    return Err(TestCaseError::fail(format!(
                        "{what}: refused with {} but changed the database: {}",
                        answer.status,
                        changed.join("; ")
                    )));
                }
            }
            state.last = after;
            if actor == Actor::Admin && answer.status < 400 && route.method == "POST" {
                let _ = &answer.location;
                runtime.block_on(still_admin(&mut state, &server.address));
                state.csrf = runtime.block_on(fresh_csrf(&state.browser, actor));
                state.last = snapshot(&server.pool, &query);
            }
            Ok(())
        },
    );
    eprintln!(
        "fuzz {family_name:?} as {}: {} routes, {} cases in {:.1?} ({}); answers {:?}",
        if actor == Actor::Admin {
            "Admin"
        } else {
            "anonymous"
        },
        routes.len(),
        runner_cases(&runner),
        started.elapsed(),
        if server.db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        state.borrow().statuses,
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn runner_cases(runner: &TestRunner) -> u32 {
    runner.config().cases
}

#[test]
fn users_routes_refuse_hostile_input_without_5xx_or_change() {
    run_family("users", Actor::Admin, 128);
}

#[test]
fn invitation_routes_refuse_hostile_input_without_5xx_or_change() {
    run_family("invitations", Actor::Admin, 128);
}

#[test]
fn group_routes_refuse_hostile_input_without_5xx_or_change() {
    run_family("groups", Actor::Admin, 128);
}

#[test]
fn pool_routes_refuse_hostile_input_without_5xx_or_change() {
    run_family("pools", Actor::Admin, 128);
}

#[test]
fn role_routes_refuse_hostile_input_without_5xx_or_change() {
    run_family("roles", Actor::Admin, 128);
}

#[test]
fn audit_routes_refuse_hostile_input_without_5xx_or_change() {
    run_family("audit", Actor::Admin, 128);
}

#[test]
fn admin_routes_refuse_hostile_input_without_5xx_or_change() {
    run_family("admin", Actor::Admin, 128);
}

#[test]
fn other_routes_refuse_hostile_input_without_5xx_or_change() {
    run_family("misc", Actor::Admin, 128);
}

#[test]
fn anonymous_hostile_input_gets_no_5xx_and_changes_nothing() {
    run_family("", Actor::Anonymous, 128);
}

#[test]
fn every_route_is_fuzzed_with_its_fields() {
    let routes = registered_routes();
    // Every path parameter has real values or is a token (hostile values only).
    let real = Real {
        user_ids: vec!["u".into()],
        group_ids: vec!["g".into()],
        pool_ids: vec!["p".into()],
        invitation_ids: vec!["i".into()],
        role_ids: vec!["r".into()],
        ..Real::default()
    };
    for route in &routes {
        for p in params(&route.path) {
            assert!(
                p == "token" || !real.param(&route.path, &p).is_empty(),
                "{} {}: no real values for {{{p}}}",
                route.method,
                route.path
            );
        }
    }
    // A POST that takes fields other than `next` is listed in `fields`.
    for path in [
        "/login",
        "/orgs/{org}/users/bulk",
        "/orgs/{org}/invitations",
        "/orgs/{org}/groups",
        "/orgs/{org}/pools",
        "/admin/users",
    ] {
        assert!(
            routes.iter().any(|r| r.method == "POST" && r.path == path),
            "POST {path} is gone from the route table"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Regressions: the minimal inputs the property found, each a plain test.

use crate::helpers::TestApp;

async fn admin_app() -> (TestApp, Browser) {
    let app = spawn_app().await;
    let admin = app.setup_admin().await;
    (app, admin)
}

/// Answers of the guard: a 400 page that says why, on both databases.
fn assert_refused(page: &Page, status: u16, says: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.body.contains(says), "{}", page.body);
}

#[actix_web::test]
async fn a_nul_byte_in_a_path_id_is_a_400_not_a_500() {
    let (_app, admin) = admin_app().await;
    for path in [
        "/orgs/my-org/users/%00",
        "/orgs/%00/users",
        "/orgs/my-org/groups/%00",
        "/orgs/%00/audit",
        "/orgs/%00/invitations",
        "/orgs/my-org/pools/%00",
        "/admin/users/a%00b",
    ] {
        let page = admin.get(path).await;
        assert_refused(&page, 400, "control character");
    }
    // A POST too, with a valid token: refused before the handler.
    let page = admin
        .submit("/orgs/my-org/roles", "/orgs/%00/roles", &[("name", "x")])
        .await;
    assert_refused(&page, 400, "control character");
}

#[actix_web::test]
async fn a_nul_byte_in_a_query_parameter_or_cursor_is_a_400() {
    let (_app, admin) = admin_app().await;
    for path in [
        "/admin/audit?org=%00",
        "/admin/users?after=%00",
        "/orgs/my-org/users?cursor=%00",
        "/orgs/my-org/users?q=a%00b",
        "/orgs/my-org/invitations?cursor=%01",
        "/login?next=%0D%0ALocation:%20//evil.example",
    ] {
        assert_refused(&admin.get(path).await, 400, "control character");
    }
    assert_refused(
        &admin.get("/orgs/my-org/users?q=%FF%FE").await,
        400,
        "not valid UTF-8",
    );
}

/// A NUL inside a well-formed cursor gets past the input guard (the address is clean
/// base64); PostgreSQL would refuse it as a bound text, a 500.
#[actix_web::test]
async fn a_nul_byte_inside_a_cursor_starts_the_list_over() {
    let (_app, admin) = admin_app().await;
    let cursor = |key: &str| URL_SAFE_NO_PAD.encode(key);
    for path in [
        format!(
            "/orgs/my-org/users?sort=email&cursor={}",
            cursor(r#"["a\u0000","x"]"#)
        ),
        format!(
            "/orgs/my-org/users?sort=created&cursor={}",
            cursor(r#"["2026-01-01 00:00:00.000000","x\u0000"]"#)
        ),
    ] {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(
            page.body.contains("That page link is no longer valid"),
            "{path}: {}",
            page.body
        );
        assert!(page.body.contains(ADMIN_EMAIL), "{}", page.body);
    }
}

#[actix_web::test]
async fn a_nul_byte_in_the_login_email_is_a_400_that_changes_nothing() {
    let app = spawn_app().await;
    app.setup_admin().await;
    let before = (app.count("audit_events"), app.count("login_attempts"));
    let page = app.client().login("admin\0@example.com", "whatever").await;
    assert_refused(&page, 400, "control character");
    assert_eq!(
        (app.count("audit_events"), app.count("login_attempts")),
        before
    );
}

#[actix_web::test]
async fn malformed_utf8_in_a_form_is_a_400_and_nothing_is_stored() {
    let (app, admin) = admin_app().await;
    let page = admin.get("/orgs/my-org/groups").await;
    let body = format!("csrf_token={}&name=caf%E9&description=", page.csrf());
    let response = admin
        .client
        .post(app.url("/orgs/my-org/groups"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("not valid UTF-8"));
    // Raw bytes, not even percent-encoded.
    let mut raw = format!("csrf_token={}&name=", page.csrf()).into_bytes();
    raw.extend_from_slice(b"caf\xE9");
    let response = admin
        .client
        .post(app.url("/orgs/my-org/groups"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(app.count("groups"), 0);
}

#[actix_web::test]
async fn a_form_over_the_limit_is_a_413_that_says_the_limit() {
    let (app, admin) = admin_app().await;
    let csrf = admin.get("/orgs/my-org/invitations/new").await.csrf();
    for size in [FORM_LIMIT + 1, 10 * 1024 * 1024] {
        let page = admin
            .post(
                "/orgs/my-org/invitations",
                &[("csrf_token", csrf.clone()), ("emails", "a".repeat(size))],
            )
            .await;
        assert_refused(&page, 413, "256 KB");
    }
    assert_eq!(app.count("invitations"), 0);
    // Anonymous, without a token: still 413, not a 403 "could not be read".
    let page = app
        .client()
        .post("/login", &[("email", "a".repeat(FORM_LIMIT + 1))])
        .await;
    assert_refused(&page, 413, "256 KB");
}

#[actix_web::test]
async fn tabs_and_line_breaks_in_a_form_still_pass() {
    let (app, admin) = admin_app().await;
    let role = app.role_id("my-org", "member");
    let page = admin
        .submit(
            "/orgs/my-org/invitations/new",
            "/orgs/my-org/invitations",
            &[
                (
                    "emails",
                    "one@example.com\r\ntwo@example.com\tthree@example.com",
                ),
                ("role_id", &role),
            ],
        )
        .await;
    assert!(page.status < 400, "{}", page.body);
    assert_eq!(app.count("invitations"), 3);
}
