//! The conformance table (`conformance/connector-api.json`, rendered in
//! `conformance/README.md`): every `_connector` endpoint the shim serves, as Elasticsearch
//! accepts it. One table drives three things:
//!
//! - [`check`]: the shim's own strictness, applied to every `_connector` request before a
//!   handler sees it, with Elasticsearch's error types and texts (`BaseRestHandler` for query
//!   parameters and bodies nobody reads, `ObjectParser`/`ConstructingObjectParser` for bodies).
//! - [`Recorder`]: what the service and the CLI sent during a run (ftest, API mode).
//! - [`audit`]: the recorded requests held against the table; a request to an endpoint the
//!   service and the CLI are not declared to use (`used_by` empty), or one the endpoint's row
//!   does not allow, is a violation, whatever the shim answered.
//!
//! Invariants:
//! - The order of checks is Elasticsearch's: an endpoint with a body parses it first (inside
//!   `prepareRequest`), then the query parameters are checked; an endpoint without a body
//!   checks the parameters, then refuses any body.
//! - Error locations (`[line:col]`) point at the offending key's first occurrence in the raw
//!   body; Elasticsearch points at the token, which clients do not parse.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::body::token_name;
use crate::error::ShimError;

/// The table, as committed.
pub const TABLE_JSON: &str = include_str!("../conformance/connector-api.json");

/// The parsed table.
#[derive(Debug, Deserialize)]
pub struct Table {
    /// Parameters every handler accepts (`BaseRestHandler`, `RestController`).
    pub common_params: Vec<String>,
    /// One row per method and path.
    pub endpoints: Vec<Endpoint>,
}

/// One row: a method and path template.
#[derive(Debug, Deserialize)]
pub struct Endpoint {
    /// REST spec name, e.g. `connector.check_in`.
    pub api: String,
    /// HTTP method.
    pub method: String,
    /// Path template, e.g. `/_connector/{connector_id}/_check_in`.
    pub path: String,
    /// Declared query parameters and their types.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Whether a body is allowed or required.
    pub body: Presence,
    /// The body's schema (endpoints with a body).
    #[serde(default)]
    pub schema: Option<Field>,
    /// `service` and/or `cli`: who calls it (empty: neither).
    #[serde(default)]
    pub used_by: Vec<String>,
    /// Where each fact comes from.
    #[serde(default)]
    pub source: Vec<String>,
}

/// Whether an endpoint takes a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// The handler never reads one: any body is refused.
    None,
    /// Read when present.
    Optional,
    /// `request body is required` when missing.
    Required,
}

/// A JSON value's schema, in the terms of Elasticsearch's object parsers.
#[derive(Debug, Deserialize)]
pub struct Field {
    /// The accepted JSON type.
    #[serde(rename = "type", default = "object_kind")]
    pub kind: Kind,
    /// A required constructor argument.
    #[serde(default)]
    pub required: bool,
    /// `null` accepted (`declare…OrNull`, `STRING_OR_NULL`).
    #[serde(default)]
    pub nullable: bool,
    /// Accepted values (case-insensitive, as the connector enums parse them).
    #[serde(default)]
    pub one_of: Vec<String>,
    /// Objects: the parser's name, used in error texts.
    #[serde(default)]
    pub parser: Option<String>,
    /// Objects: unknown fields are refused (`ignoreUnknownFields = false`).
    #[serde(default)]
    pub strict: bool,
    /// Objects: declared fields.
    #[serde(default)]
    pub fields: BTreeMap<String, Field>,
    /// Objects used as maps: the schema of every value.
    #[serde(default)]
    pub values: Option<Box<Field>>,
    /// Arrays: the schema of every item.
    #[serde(default)]
    pub items: Option<Box<Field>>,
}

fn object_kind() -> Kind {
    Kind::Object
}

/// JSON types as `ObjectParser.ValueType` accepts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `VALUE_STRING`.
    String,
    /// `VALUE_BOOLEAN`, or the strings `true`/`false`.
    Boolean,
    /// `VALUE_NUMBER`, or a string holding a number.
    Long,
    /// Same tokens as `long`.
    Integer,
    /// `START_OBJECT`.
    Object,
    /// `START_ARRAY` (or one item alone, as `declare…Array` accepts).
    Array,
    /// A configuration value: a scalar, an object or null, never an array.
    Value,
    /// Anything.
    Any,
}

/// The committed table, parsed once.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(TABLE_JSON)
            .unwrap_or_else(|e| panic!("conformance/connector-api.json is not a valid table: {e}"))
    })
}

impl Table {
    /// The row for a method and decoded path segments; literal segments win over
    /// `{placeholders}` (`/_connector/_sync_job` is not a connector id), as in ES's path trie.
    pub fn find(&self, method: &str, segments: &[&str]) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .filter(|e| e.method == method)
            .filter_map(|e| e.literal_matches(segments).map(|n| (n, e)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, e)| e)
    }
}

impl Endpoint {
    fn template(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').filter(|s| !s.is_empty())
    }

    /// How many literal segments match, or `None` when the path does not fit the template.
    fn literal_matches(&self, segments: &[&str]) -> Option<usize> {
        if self.template().count() != segments.len() {
            return None;
        }
        let mut literal = 0;
        for (t, s) in self.template().zip(segments) {
            if t.starts_with('{') {
                continue;
            }
            if t != *s {
                return None;
            }
            literal += 1;
        }
        Some(literal)
    }

    /// The `{placeholder}` names of the path (they count as consumed parameters).
    pub fn path_params(&self) -> Vec<&str> {
        self.template()
            .filter_map(|t| t.strip_prefix('{').and_then(|t| t.strip_suffix('}')))
            .collect()
    }

    /// `METHOD /path/template`, the key of counts and messages.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Checks one request against its row, in Elasticsearch's order and with its errors.
/// `path` is the decoded request path without the query string.
pub fn check(
    table: &Table,
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: &[u8],
) -> Result<(), ShimError> {
    if endpoint.body == Presence::None {
        check_params(table, endpoint, path, query)?;
        if !body.is_empty() {
            return Err(ShimError::illegal_argument(format!(
                "request [{method} {path}] does not support having a body"
            )));
        }
        return Ok(());
    }
    check_body(endpoint, body)?;
    check_params(table, endpoint, path, query)
}

fn check_params(
    table: &Table,
    endpoint: &Endpoint,
    path: &str,
    query: &[(String, String)],
) -> Result<(), ShimError> {
    let mut known: BTreeSet<&str> = endpoint.params.keys().map(String::as_str).collect();
    known.extend(endpoint.path_params());
    known.extend(table.common_params.iter().map(String::as_str));
    let unknown: BTreeSet<&str> = query
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !known.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = unknown
        .iter()
        .map(|name| {
            let close = suggestions(name, known.iter().copied());
            match close.as_slice() {
                [] => format!("[{name}]"),
                [one] => format!("[{name}] -> did you mean [{one}]?"),
                many => format!("[{name}] -> did you mean any of [{}]?", many.join(", ")),
            }
        })
        .collect();
    Err(ShimError::illegal_argument(format!(
        "request [{path}] contains unrecognized parameter{}: {}",
        if unknown.len() > 1 { "s" } else { "" },
        listed.join(", ")
    )))
}

fn check_body(endpoint: &Endpoint, body: &[u8]) -> Result<(), ShimError> {
    if body.is_empty() {
        if endpoint.body == Presence::Required {
            return Err(ShimError::new(
                StatusCode::BAD_REQUEST,
                "parse_exception",
                "request body is required",
            ));
        }
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ShimError::parse(format!("[{}:{}] {e}", e.line(), e.column())))?;
    let Some(schema) = &endpoint.schema else {
        return Ok(());
    };
    let parser = schema.parser.as_deref().unwrap_or("request");
    let Value::Object(map) = &value else {
        return Err(ShimError::parse(format!(
            "[1:1] [{parser}] Expected START_OBJECT but was: {}",
            token_name(&value)
        )));
    };
    check_object(map, schema, parser, body).map_err(|e| match e {
        Refusal::Content(reason) => ShimError::parse(reason),
        Refusal::Argument(reason) => ShimError::illegal_argument(reason),
    })
}

/// Why a parser refused a value: an `XContentParseException` (x_content_parse_exception) or,
/// for missing constructor arguments at the top level, an `IllegalArgumentException`.
enum Refusal {
    Content(String),
    Argument(String),
}

fn check_object(
    map: &Map<String, Value>,
    schema: &Field,
    parser: &str,
    raw: &[u8],
) -> Result<(), Refusal> {
    for (key, value) in map {
        let at = locate(raw, key);
        let Some(field) = schema.fields.get(key) else {
            if let Some(values) = &schema.values {
                check_value(value, values, key, parser, raw, at)?;
                continue;
            }
            if schema.strict {
                let mut reason = format!("{at} [{parser}] unknown field [{key}]");
                let close = suggestions(key, schema.fields.keys().map(String::as_str));
                match close.as_slice() {
                    [] => {}
                    [one] => reason.push_str(&format!(" did you mean [{one}]?")),
                    many => {
                        reason.push_str(&format!(" did you mean any of [{}]?", many.join(", ")))
                    }
                }
                return Err(Refusal::Content(reason));
            }
            continue;
        };
        check_value(value, field, key, parser, raw, at)?;
    }
    let missing: Vec<&str> = schema
        .fields
        .iter()
        .filter(|(k, f)| f.required && !map.contains_key(k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Argument(format!(
            "Required [{}]",
            missing.join(", ")
        )))
    }
}

fn check_value(
    value: &Value,
    field: &Field,
    key: &str,
    parser: &str,
    raw: &[u8],
    at: String,
) -> Result<(), Refusal> {
    let unsupported = || {
        Refusal::Content(format!(
            "{at} [{parser}] {key} doesn't support values of type: {}",
            token_name(value)
        ))
    };
    let failed = || Refusal::Content(format!("{at} [{parser}] failed to parse field [{key}]"));
    if value.is_null() {
        return if field.nullable || matches!(field.kind, Kind::Value | Kind::Any) {
            Ok(())
        } else {
            Err(unsupported())
        };
    }
    match field.kind {
        Kind::Any => Ok(()),
        Kind::Value => {
            if value.is_array() {
                Err(failed())
            } else {
                Ok(())
            }
        }
        Kind::String => match value.as_str() {
            None => Err(unsupported()),
            Some(s)
                if !field.one_of.is_empty()
                    && !field.one_of.iter().any(|o| o.eq_ignore_ascii_case(s)) =>
            {
                Err(failed())
            }
            Some(_) => Ok(()),
        },
        Kind::Boolean => match value {
            Value::Bool(_) => Ok(()),
            Value::String(s) if s == "true" || s == "false" => Ok(()),
            Value::String(_) => Err(failed()),
            _ => Err(unsupported()),
        },
        Kind::Long | Kind::Integer => match value {
            Value::Number(_) => Ok(()),
            Value::String(s) if s.trim().parse::<f64>().is_ok() => Ok(()),
            Value::String(_) => Err(failed()),
            _ => Err(unsupported()),
        },
        Kind::Object => {
            let Value::Object(map) = value else {
                return Err(unsupported());
            };
            let inner = field.parser.as_deref().unwrap_or(key);
            // A nested parser's refusal surfaces as the outer field failing to parse.
            check_object(map, field, inner, raw).map_err(|_| failed())
        }
        Kind::Array => {
            let items: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                Value::Object(_) | Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    vec![value]
                }
                Value::Null => Vec::new(),
            };
            let Some(schema) = &field.items else {
                return if value.is_array() {
                    Ok(())
                } else {
                    Err(unsupported())
                };
            };
            for item in items {
                check_value(item, schema, key, parser, raw, at.clone()).map_err(|_| failed())?;
            }
            Ok(())
        }
    }
}

/// `[line:col]` of the first `"key"` followed by `:` in the raw body (1-based, as Jackson).
fn locate(raw: &[u8], key: &str) -> String {
    let needle = format!("\"{key}\"");
    let text = String::from_utf8_lossy(raw);
    let mut from = 0;
    while let Some(found) = text[from..].find(&needle) {
        let start = from + found;
        let after = text[start + needle.len()..].trim_start();
        if after.starts_with(':') {
            let line = text[..start].matches('\n').count() + 1;
            let col = start - text[..start].rfind('\n').map_or(0, |n| n + 1) + 1;
            return format!("[{line}:{col}]");
        }
        from = start + needle.len();
    }
    "[1:1]".into()
}

/// Lucene's `LevenshteinDistance` similarity (1 - edits / longer length), as
/// `BaseRestHandler.unrecognized` and `SuggestingErrorOnUnknown` use it.
pub fn similarity(a: &str, b: &str) -> f32 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let longer = a.len().max(b.len());
    if longer == 0 {
        return 1.0;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    1.0 - previous[b.len()] as f32 / longer as f32
}

/// Candidates more than half similar, best first, then by name (the rule of both
/// `BaseRestHandler.unrecognized` and `SuggestingErrorOnUnknown.suggest`).
fn suggestions<'a>(invalid: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut close: Vec<(f32, &str)> = candidates
        .map(|c| (similarity(invalid, c), c))
        .filter(|(s, _)| *s > 0.5)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    close.into_iter().map(|(_, c)| c).collect()
}

/// The table as Markdown rows (`conformance/README.md` holds this between its markers; a test
/// keeps the two equal).
pub fn markdown(table: &Table) -> String {
    let mut out = String::from(
        "| API | method and path | query parameters | body | used by |\n|---|---|---|---|---|\n",
    );
    for e in &table.endpoints {
        let params = if e.params.is_empty() {
            "—".to_string()
        } else {
            e.params
                .iter()
                .map(|(k, t)| format!("`{k}`: {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let body = match (&e.body, &e.schema) {
            (Presence::None, _) => "none".to_string(),
            (presence, Some(schema)) => format!(
                "{} `{}` ({}): {}",
                if *presence == Presence::Required {
                    "required"
                } else {
                    "optional"
                },
                schema.parser.as_deref().unwrap_or("?"),
                if schema.strict { "strict" } else { "lenient" },
                describe_fields(schema)
            ),
            (presence, None) => format!("{presence:?}").to_lowercase(),
        };
        let used = if e.used_by.is_empty() {
            "—".to_string()
        } else {
            e.used_by.join(", ")
        };
        out.push_str(&format!(
            "| `{}` | `{} {}` | {params} | {body} | {used} |\n",
            e.api, e.method, e.path
        ));
    }
    out
}

/// `a*: string, b: long` (`*`: required).
fn describe_fields(field: &Field) -> String {
    field
        .fields
        .iter()
        .map(|(name, f)| {
            format!(
                "{name}{}: {}",
                if f.required { "*" } else { "" },
                describe(f)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(field: &Field) -> String {
    let mut text = match field.kind {
        Kind::Object if !field.fields.is_empty() => format!("{{{}}}", describe_fields(field)),
        Kind::Object => match &field.values {
            Some(values) => format!("map of {}", describe(values)),
            None => "object".into(),
        },
        Kind::Array => match &field.items {
            Some(items) => format!("[{}]", describe(items)),
            None => "array".into(),
        },
        Kind::String if !field.one_of.is_empty() => field.one_of.join("/"),
        other => format!("{other:?}").to_lowercase(),
    };
    if field.nullable {
        text.push_str(" or null");
    }
    text
}

/// One request as it reached the shim.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Decoded path segments.
    pub segments: Vec<String>,
    /// Decoded path.
    pub path: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// The body as received.
    pub body: Bytes,
}

/// Records every request: `_connector` requests whole, the others as a count per
/// `METHOD /path` shape (ids and index names replaced by `{…}`), so a long benchmark keeps
/// a few hundred bytes, not its bulk bodies.
#[derive(Debug, Default)]
pub struct Recorder {
    enabled: bool,
    connector: Mutex<Vec<Recorded>>,
    others: Mutex<BTreeMap<String, u64>>,
}

impl Recorder {
    /// A recorder; a disabled one keeps nothing.
    pub fn new(enabled: bool) -> Recorder {
        Recorder {
            enabled,
            ..Recorder::default()
        }
    }

    /// Keeps a `_connector` request.
    pub fn connector(&self, request: Recorded) {
        if self.enabled {
            lock(&self.connector).push(request);
        }
    }

    /// Counts any other request.
    pub fn other(&self, method: &str, segments: &[&str]) {
        if self.enabled {
            *lock(&self.others)
                .entry(format!("{method} {}", shape(segments)))
                .or_insert(0) += 1;
        }
    }

    /// The `_connector` requests so far.
    pub fn connector_requests(&self) -> Vec<Recorded> {
        lock(&self.connector).clone()
    }

    /// The other requests so far, counted by shape.
    pub fn other_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.others).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `/search-slack/_doc/abc` → `/{…}/_doc/{…}`: API segments (`_…`) stay, names go.
fn shape(segments: &[&str]) -> String {
    let parts: Vec<&str> = segments
        .iter()
        .map(|s| if s.starts_with('_') { s } else { "{…}" })
        .collect();
    format!("/{}", parts.join("/"))
}

/// Recorded requests held against the table.
#[derive(Debug, Default)]
pub struct Audit {
    /// Requests per row (`METHOD /path/template`), rows of the table only.
    pub counts: BTreeMap<String, u64>,
    /// What the table does not allow, one line each.
    pub violations: Vec<String>,
}

/// Audits recorded `_connector` requests: each must match a row that the service or the CLI
/// is declared to use, and pass [`check`].
pub fn audit(table: &Table, recorded: &[Recorded]) -> Audit {
    let mut result = Audit::default();
    for request in recorded {
        let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
        let shown = if request.query.is_empty() {
            format!("{} {}", request.method, request.path)
        } else {
            let query: Vec<String> = request
                .query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{} {}?{}", request.method, request.path, query.join("&"))
        };
        let Some(endpoint) = table.find(&request.method, &segments) else {
            result.violations.push(format!(
                "{shown}: no endpoint of the table has this method and path"
            ));
            continue;
        };
        *result.counts.entry(endpoint.key()).or_insert(0) += 1;
        if endpoint.used_by.is_empty() {
            result.violations.push(format!(
                "{shown}: {} is not a call the service or the CLI is declared to make (add its row's used_by first)",
                endpoint.api
            ));
        }
        if let Err(error) = check(
            table,
            endpoint,
            &request.method,
            &request.path,
            &request.query,
            &request.body,
        ) {
            let body = String::from_utf8_lossy(&request.body);
            result.violations.push(format!(
                "{shown} body {body:?}: Elasticsearch would answer {error}"
            ));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, query: &[(&str, &str)], body: &str) -> Recorded {
        Recorded {
            method: method.into(),
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Bytes::from(body.to_string()),
        }
    }

    fn checked(method: &str, path: &str, query: &[(&str, &str)], body: &str) -> Result<(), String> {
        let t = table();
        let r = request(method, path, query, body);
        let segments: Vec<&str> = r.segments.iter().map(String::as_str).collect();
        let e = t.find(method, &segments).expect("row");
        check(t, e, method, path, &r.query, &r.body).map_err(|e| e.to_string())
    }

    #[test]
    fn table_parses_and_rows_are_unique_and_sourced() {
        let t = table();
        let mut keys = BTreeSet::new();
        for e in &t.endpoints {
            assert!(keys.insert(e.key()), "duplicate row {}", e.key());
            assert!(!e.source.is_empty(), "{} has no source", e.key());
            assert_eq!(e.schema.is_some(), e.body != Presence::None, "{}", e.key());
        }
        let used = t.endpoints.iter().filter(|e| !e.used_by.is_empty()).count();
        assert_eq!(used, 12);
    }

    #[test]
    fn literal_segments_win_over_placeholders() {
        let t = table();
        assert_eq!(
            t.find("POST", &["_connector", "_sync_job"]).unwrap().api,
            "connector.sync_job_post"
        );
        assert_eq!(
            t.find("GET", &["_connector", "_sync_job"]).unwrap().api,
            "connector.sync_job_list"
        );
        assert_eq!(
            t.find("GET", &["_connector", "abc"]).unwrap().api,
            "connector.get"
        );
        assert!(t
            .find("POST", &["_connector", "abc", "_check_in"])
            .is_none());
    }

    #[test]
    fn bodies_where_none_is_declared_are_refused() {
        let e = checked("PUT", "/_connector/c1/_check_in", &[], "{}").unwrap_err();
        assert_eq!(
            e,
            "400 Bad Request illegal_argument_exception: request [PUT /_connector/c1/_check_in] does not support having a body"
        );
        assert!(checked("PUT", "/_connector/c1/_check_in", &[], "").is_ok());
        assert!(checked("PUT", "/_connector/_sync_job/j/_cancel", &[], "{}").is_err());
        assert!(checked("PUT", "/_connector/c1/_filtering/_activate", &[], "{}").is_err());
    }

    #[test]
    fn unknown_params_are_refused_with_suggestions() {
        let e = checked("PUT", "/_connector/c1/_check_in", &[("foo", "1")], "").unwrap_err();
        assert!(
            e.ends_with(
                "request [/_connector/c1/_check_in] contains unrecognized parameter: [foo]"
            ),
            "{e}"
        );
        let e = checked("GET", "/_connector", &[("sizee", "1"), ("zzz", "")], "").unwrap_err();
        assert!(
            e.ends_with("contains unrecognized parameters: [sizee] -> did you mean [size]?, [zzz]"),
            "{e}"
        );
        assert!(checked("GET", "/_connector", &[("size", "1"), ("pretty", "")], "").is_ok());
        // Parameters come before the body check for body-less endpoints.
        let e = checked("PUT", "/_connector/c1/_check_in", &[("foo", "1")], "{}").unwrap_err();
        assert!(e.contains("unrecognized parameter"), "{e}");
    }

    #[test]
    fn strict_bodies_refuse_unknown_fields_and_wrong_types() {
        let e = checked(
            "PUT",
            "/_connector/_sync_job/j/_claim",
            &[],
            r#"{"worker_hostname":"h","foo":1}"#,
        )
        .unwrap_err();
        assert!(
            e.contains(
                "x_content_parse_exception: [1:24] [claim_connector_sync_job] unknown field [foo]"
            ),
            "{e}"
        );
        let e = checked(
            "PUT",
            "/_connector/_sync_job/j/_claim",
            &[],
            r#"{"worker_hostname":5}"#,
        )
        .unwrap_err();
        assert!(e.contains("[claim_connector_sync_job] worker_hostname doesn't support values of type: VALUE_NUMBER"), "{e}");
        let e = checked("PUT", "/_connector/_sync_job/j/_claim", &[], "{}").unwrap_err();
        assert!(
            e.contains("illegal_argument_exception: Required [worker_hostname]"),
            "{e}"
        );
        let e = checked("PUT", "/_connector/_sync_job/j/_claim", &[], "").unwrap_err();
        assert!(
            e.contains("parse_exception: request body is required"),
            "{e}"
        );
        let e = checked("PUT", "/_connector/_sync_job/j/_stats", &[],
            r#"{"deleted_document_count":0,"indexed_document_count":"many","indexed_document_volume":0}"#).unwrap_err();
        assert!(
            e.contains("failed to parse field [indexed_document_count]"),
            "{e}"
        );
        let e = checked("PUT", "/_connector/_sync_job/j/_stats", &[],
            r#"{"deleted_document_count":0,"indexed_document_count":1,"indexed_document_volume":0,"_extra":1}"#).unwrap_err();
        assert!(e.contains("unknown field [_extra]"), "{e}");
        assert!(checked("PUT", "/_connector/_sync_job/j/_stats", &[],
            r#"{"deleted_document_count":0,"indexed_document_count":"1","indexed_document_volume":0}"#).is_ok());
    }

    #[test]
    fn nested_parsers_are_lenient_where_elasticsearch_is() {
        let pipeline = r#"{"pipeline":{"name":"p","extract_binary_content":true,"reduce_whitespace":true,"run_ml_inference":false,"extra":1}}"#;
        assert!(checked("PUT", "/_connector/c/_pipeline", &[], pipeline).is_ok());
        let e = checked(
            "PUT",
            "/_connector/c/_pipeline",
            &[],
            r#"{"pipeline":{"name":"p"}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("[connector_update_pipeline_request] failed to parse field [pipeline]"),
            "{e}"
        );
        let e = checked(
            "PUT",
            "/_connector/c/_configuration",
            &[],
            r#"{"configuration":{"t":{"value":"x"}}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains(
                "[connector_update_configuration_request] failed to parse field [configuration]"
            ),
            "{e}"
        );
        assert!(checked("PUT", "/_connector/c/_configuration", &[],
            r#"{"configuration":{"t":{"label":"T","value":"x","display":"text","type":"str","tooltip":null}}}"#).is_ok());
        let e = checked(
            "PUT",
            "/_connector/c/_filtering/_validation",
            &[],
            r#"{"validation":{"state":"bogus","errors":[]}}"#,
        )
        .unwrap_err();
        assert!(e.contains("failed to parse field [validation]"), "{e}");
    }

    #[test]
    fn similarity_is_lucene_levenshtein() {
        assert_eq!(similarity("size", "size"), 1.0);
        assert!((similarity("sizee", "size") - 0.8).abs() < 1e-6);
        assert!(similarity("foo", "connector_id") < 0.5);
    }

    #[test]
    fn audit_counts_rows_and_names_violations() {
        let recorded = vec![
            request("PUT", "/_connector/c1/_check_in", &[], ""),
            request("PUT", "/_connector/c1/_check_in", &[], ""),
            request("PUT", "/_connector/c1/_check_in", &[("foo", "1")], ""),
            request("GET", "/_connector/c1", &[], ""),
            request("PUT", "/_connector/c1/_nope", &[], "{}"),
        ];
        let a = audit(table(), &recorded);
        assert_eq!(a.counts["PUT /_connector/{connector_id}/_check_in"], 3);
        assert_eq!(a.violations.len(), 3, "{:#?}", a.violations);
        assert!(a.violations[0].contains("?foo=1"), "{}", a.violations[0]);
        assert!(
            a.violations[1].contains("connector.get is not a call"),
            "{}",
            a.violations[1]
        );
        assert!(
            a.violations[2].contains("no endpoint"),
            "{}",
            a.violations[2]
        );
    }

    #[test]
    fn readme_renders_the_table() {
        let readme = include_str!("../conformance/README.md");
        let rendered = markdown(table());
        let inside = readme
            .split("<!-- table:start -->\n")
            .nth(1)
            .and_then(|rest| rest.split("<!-- table:end -->").next())
            .unwrap_or("");
        assert_eq!(
            inside, rendered,
            "conformance/README.md is out of date; put this between its table markers:\n{rendered}"
        );
    }

    #[test]
    fn shapes_hide_names() {
        assert_eq!(shape(&["search-slack", "_doc", "abc"]), "/{…}/_doc/{…}");
        assert_eq!(shape(&[]), "/");
    }
}
