//! Request-body and query helpers shared by the connector endpoints: strict parsing with ES's
//! error types, and ES's partial-document merge.
//!
//! Invariants:
//! - Unknown fields, wrong JSON types and malformed JSON are 400 `x_content_parse_exception`
//!   naming the parser, as ES's strict `ConstructingObjectParser`s answer; a missing body where
//!   one is required is 400 `parse_exception` "request body is required". The router checks
//!   every `_connector` request against the conformance table first (required fields
//!   included, [`crate::conformance`]), so these are the handlers' second line.
//! - [`merge`] is ES's `_update` `doc` semantics: objects merge recursively, everything else
//!   (arrays included) is replaced.

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::error::{ShimError, ShimResult};

/// Parses a JSON object body, rejecting keys not in `allowed` (empty `allowed` = any key).
/// An empty body is `Ok(None)`.
pub fn object(
    body: &Bytes,
    parser: &str,
    allowed: &[&str],
) -> ShimResult<Option<Map<String, Value>>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ShimError::parse(format!(
            "[{}:{}] [{parser}] failed to parse: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(ShimError::parse(format!(
            "[1:1] [{parser}] Expected START_OBJECT but was: {}",
            token_name(&value)
        )));
    };
    if !allowed.is_empty() {
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ShimError::parse(format!(
                "[1:2] [{parser}] unknown field [{unknown}]"
            )));
        }
    }
    Ok(Some(map))
}

/// Like [`object`], but a body is mandatory.
pub fn required(body: &Bytes, parser: &str, allowed: &[&str]) -> ShimResult<Map<String, Value>> {
    object(body, parser, allowed)?.ok_or_else(|| {
        ShimError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "parse_exception",
            "request body is required",
        )
    })
}

/// The parser token name of a JSON value (`START_OBJECT`, `VALUE_STRING`, ...).
pub fn token_name(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "START_ARRAY",
        Value::String(_) => "VALUE_STRING",
        Value::Number(_) => "VALUE_NUMBER",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Null => "VALUE_NULL",
        Value::Object(_) => "START_OBJECT",
    }
}

fn type_error(parser: &str, key: &str) -> ShimError {
    ShimError::parse(format!("[1:2] [{parser}] failed to parse field [{key}]"))
}

/// An optional string field (`null` counts as absent).
pub fn opt_str(map: &Map<String, Value>, key: &str, parser: &str) -> ShimResult<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(type_error(parser, key)),
    }
}

pub fn opt_bool(map: &Map<String, Value>, key: &str, parser: &str) -> ShimResult<Option<bool>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(type_error(parser, key)),
    }
}

pub fn opt_i64(map: &Map<String, Value>, key: &str, parser: &str) -> ShimResult<Option<i64>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| type_error(parser, key)),
        Some(_) => Err(type_error(parser, key)),
    }
}

pub fn opt_object(
    map: &Map<String, Value>,
    key: &str,
    parser: &str,
) -> ShimResult<Option<Map<String, Value>>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o.clone())),
        Some(_) => Err(type_error(parser, key)),
    }
}

/// ES partial-document merge.
pub fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match (target.get_mut(k), v) {
            (Some(Value::Object(t)), Value::Object(p)) => merge(t, p),
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Query parameters as pairs.
pub type Query = Vec<(String, String)>;

pub fn param<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A boolean query flag as ES reads it (`?flag` alone means true).
pub fn flag(query: &Query, name: &str) -> ShimResult<bool> {
    match param(query, name) {
        None => Ok(false),
        Some("" | "true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ShimError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed."
        ))),
    }
}

/// An integer query parameter with a default.
pub fn int_param(query: &Query, name: &str, default: i64) -> ShimResult<i64> {
    match param(query, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            ShimError::illegal_argument(format!(
                "Failed to parse int parameter [{name}] with value [{v}]"
            ))
        }),
    }
}

/// A comma-separated list parameter.
pub fn list_param(query: &Query, name: &str) -> Vec<String> {
    param(query, name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Now as ES prints an `Instant`: ISO-8601 UTC with a `Z`.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_is_recursive_for_objects_only() {
        let mut t = json!({"a": {"x": 1, "y": 2}, "l": [1, 2]})
            .as_object()
            .cloned()
            .unwrap();
        let p = json!({"a": {"y": 3}, "l": [9]})
            .as_object()
            .cloned()
            .unwrap();
        merge(&mut t, &p);
        assert_eq!(Value::Object(t), json!({"a": {"x": 1, "y": 3}, "l": [9]}));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = object(&Bytes::from_static(b"{\"nope\":1}"), "p", &["a"]).unwrap_err();
        assert!(err.to_string().contains("unknown field [nope]"));
        assert!(object(&Bytes::from_static(b"  "), "p", &["a"])
            .unwrap()
            .is_none());
        assert!(object(&Bytes::from_static(b"{bad"), "p", &[]).is_err());
    }
}
