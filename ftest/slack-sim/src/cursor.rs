//! Opaque pagination cursors, Slack style: standard base64 (with `=` padding)
//! of `"<kind>:<value>"`, e.g. `bmV4dF90czoxNzAwMDAwMDAwMDAwMTAwIw==`.
//!
//! Invariant: every cursor we emit carries `=` padding (the payload is padded
//! with `#` until its length is not a multiple of 3), so a client that forgets
//! to URL-encode it (or whose `+`/`/`/`=` got mangled) is caught: decoding is
//! strict and a mangled cursor yields `invalid_cursor`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Encodes a cursor; always ends in `=` or `==`.
pub fn encode(kind: &str, value: i64) -> String {
    let mut payload = format!("{kind}:{value}");
    while payload.len() % 3 == 0 {
        payload.push('#');
    }
    STANDARD.encode(payload.as_bytes())
}

/// Decodes a cursor of the given kind; `None` means `invalid_cursor`.
pub fn decode(kind: &str, cursor: &str) -> Option<i64> {
    let raw = STANDARD.decode(cursor.as_bytes()).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (k, v) = text.split_once(':')?;
    if k != kind {
        return None;
    }
    v.trim_end_matches('#').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_padded_and_strict() {
        for v in [0i64, 7, 42, 999, 1_700_000_000_000_100, 123_456] {
            let c = encode("next_ts", v);
            assert!(c.ends_with('='), "{c}");
            assert_eq!(decode("next_ts", &c), Some(v));
            assert_eq!(decode("offset", &c), None);
            assert_eq!(decode("next_ts", c.trim_end_matches('=')), None);
            assert_eq!(decode("next_ts", &c.replace('=', "%3D")), None);
        }
        assert_eq!(decode("next_ts", "not base64!"), None);
    }
}
