//! Translation of Elasticsearch's vendor media types.
//!
//! Official ES clients (Python, JS/Kibana, Java) send
//! `application/vnd.elasticsearch+json; compatible-with=8` (or `+x-ndjson`, or `=9`) as
//! Content-Type and Accept. osmem answers 406 to those, so requests are rewritten to the plain
//! types, and responses to such requests carry the vendor type back, as ES does.
//!
//! Invariants:
//! - Only the two vendor types ES defines for JSON and NDJSON are rewritten; any other value is
//!   left alone byte for byte.
//! - The compatibility version answered is the one the client asked for.

use axum::http::{header, HeaderMap, HeaderValue};

const VENDOR_JSON: &str = "application/vnd.elasticsearch+json";
const VENDOR_NDJSON: &str = "application/vnd.elasticsearch+x-ndjson";

/// If `value` is a vendor media type, the plain type to send upstream and the compatibility
/// version (e.g. `"8"`) the client asked for.
pub fn plain_type(value: &str) -> Option<(&'static str, Option<String>)> {
    let mut parts = value.split(';');
    let essence = parts.next()?.trim().to_ascii_lowercase();
    let plain = match essence.as_str() {
        VENDOR_JSON => "application/json",
        VENDOR_NDJSON => "application/x-ndjson",
        _ => return None,
    };
    let compat = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("compatible-with")).then(|| v.trim().to_string())
    });
    Some((plain, compat))
}

/// Rewrites vendor Content-Type and Accept headers in place. Returns the compatibility version
/// if the client used a vendor type in either header (then responses must use it too).
pub fn normalize_request(headers: &mut HeaderMap) -> Option<String> {
    let mut compat: Option<String> = None;
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        let Some(value) = headers.get(&name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Some((plain, version)) = plain_type(value) {
            compat = compat.or(version).or_else(|| Some(String::new()));
            headers.insert(name, HeaderValue::from_static(plain));
        }
    }
    compat
}

/// The Content-Type ES answers a vendor-type request with: `compatible-with` echoes the
/// version asked for (ES answers with its own major when none was given).
pub fn vendor_response_type(compat: &str, default_major: &str) -> HeaderValue {
    let version = if compat.is_empty() {
        default_major
    } else {
        compat
    };
    HeaderValue::from_str(&format!("{VENDOR_JSON};compatible-with={version}"))
        .unwrap_or_else(|_| HeaderValue::from_static("application/json"))
}

/// Whether a response Content-Type is JSON (only JSON answers get the vendor type back; `_cat`
/// text and empty HEAD answers keep theirs).
pub fn is_json(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase().starts_with("application/json"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_types_map_to_plain_ones() {
        assert_eq!(
            plain_type("application/vnd.elasticsearch+json; compatible-with=8"),
            Some(("application/json", Some("8".into())))
        );
        assert_eq!(
            plain_type("application/vnd.elasticsearch+x-ndjson;compatible-with=9"),
            Some(("application/x-ndjson", Some("9".into())))
        );
        assert_eq!(plain_type("application/json"), None);
    }

    #[test]
    fn request_headers_are_rewritten() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.elasticsearch+x-ndjson; compatible-with=8"),
        );
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.elasticsearch+json; compatible-with=8"),
        );
        assert_eq!(normalize_request(&mut h).as_deref(), Some("8"));
        assert_eq!(h[header::CONTENT_TYPE], "application/x-ndjson");
        assert_eq!(h[header::ACCEPT], "application/json");
    }
}
