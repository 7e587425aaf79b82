//! The one document type a source hands to the engine ([`Document`]), and the writer that
//! makes its body ([`DocumentWriter`]).
//!
//! A document is its id, its body serialized once by the source (one JSON object), and the
//! time the source dates it at, typed ([`Timestamp`]). The engine copies the body into the
//! bulk request as bytes and appends its own fields; it parses a body only when the sync has
//! rules to match (see `sync::document`).
//!
//! Invariants, checked by [`Document::check`] in debug builds whenever a document is made,
//! and by the tests:
//! - the body is one JSON object with no key twice;
//! - it has none of [`RESERVED_KEYS`] (`id`, `_id`, the pipeline flags, `_sync_marker`): the
//!   engine writes those, and Elasticsearch refuses a duplicate key;
//! - it has `_timestamp` exactly when the document has a [`Timestamp`], as that instant's
//!   ISO-8601 text: the engine reads "the source dates this document" from the type, never
//!   from the bytes;
//! - [`Document::access_controlled`] is true exactly when the body's
//!   [`ACCESS_CONTROL_FIELD`] is a non-empty list of strings. Under Elastic's DLS query a
//!   document without that field, or with an empty list, is readable by everyone, so the
//!   engine refuses such a document while document-level security is on; it reads "this
//!   document is protected" from the type, as it reads the timestamp.

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::ops::Range;

/// Keys the engine writes into documents (content documents get the pipeline flags and
/// the marker, identity documents the digest); a body must not have them.
pub const RESERVED_KEYS: [&str; 7] = [
    "id",
    "_id",
    "_extract_binary_content",
    "_reduce_whitespace",
    "_run_ml_inference",
    "_sync_marker",
    "_sync_digest",
];

/// The body key of a document's [`Timestamp`].
pub const TIMESTAMP_FIELD: &str = "_timestamp";

/// The body key of the identities that may read a document under document-level security
/// (Elastic's `ACCESS_CONTROL`).
pub const ACCESS_CONTROL_FIELD: &str = "_allow_access_control";

/// Who may read a document under document-level security: the identities of its
/// [`ACCESS_CONTROL_FIELD`], sorted, without duplicates, and serialized once (a channel's
/// list goes into every one of its messages, so it is written as bytes, not rebuilt).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessControl {
    identities: Vec<String>,
    /// `["a","b"]`.
    json: Vec<u8>,
}

impl AccessControl {
    /// The identities, sorted and deduplicated.
    pub fn new(identities: impl IntoIterator<Item = String>) -> AccessControl {
        let mut identities: Vec<String> = identities.into_iter().collect();
        identities.sort_unstable();
        identities.dedup();
        // A list of strings always serializes.
        let json = serde_json::to_vec(&identities).unwrap_or_else(|_| b"[]".to_vec());
        AccessControl { identities, json }
    }

    /// The identities, sorted.
    pub fn identities(&self) -> &[String] {
        &self.identities
    }

    /// No identity: a document with this list would be readable by everyone.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }
}

/// When a document last changed, as its source says: a UTC instant in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    micros: i64,
}

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    pub fn from_micros(micros: i64) -> Timestamp {
        Timestamp { micros }
    }

    /// An RFC 3339 date-time (`2024-05-01T10:00:00+00:00`), or `None`.
    pub fn parse(text: &str) -> Option<Timestamp> {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Timestamp::from_micros(t.timestamp_micros()))
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> i64 {
        self.micros
    }

    /// ISO-8601 UTC with microseconds (`2023-11-14T22:13:20.000100Z`), or `None` for an
    /// instant chrono cannot represent.
    pub fn iso(self) -> Option<String> {
        let mut out = Vec::with_capacity(27);
        self.write_iso(&mut out)
            .then(|| String::from_utf8(out).ok())
            .flatten()
    }

    /// Appends [`Self::iso`]: the fast writer for 1970..=9999, chrono beyond; `false`, with
    /// nothing written, when the instant has no representation.
    fn write_iso(self, out: &mut Vec<u8>) -> bool {
        if write_iso_micros(out, self.micros) {
            return true;
        }
        match iso_chrono(self.micros) {
            Some(iso) => {
                out.extend_from_slice(iso.as_bytes());
                true
            }
            None => false,
        }
    }
}

/// A document to index: its id, its serialized body and its [`Timestamp`] (see the module
/// invariants).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    id: String,
    body: Vec<u8>,
    timestamp: Option<Timestamp>,
    access_controlled: bool,
}

impl Document {
    /// A document made of a field map (sources without a writer of their own, tests).
    ///
    /// `_timestamp`, when it is an RFC 3339 string, becomes the [`Timestamp`] and stays in
    /// the body as it was written. A reserved key, or a `_timestamp` that is not such a
    /// string, is a bug of the source: it panics in debug builds and is dropped otherwise
    /// (the engine writes `id` and `_id`; an undated document keeps its creation time).
    pub fn from_fields(id: String, mut body: Map<String, Value>) -> Document {
        for key in RESERVED_KEYS {
            debug_assert!(!body.contains_key(key), "a document body has `{key}`");
            body.remove(key);
        }
        let timestamp = match body.get(TIMESTAMP_FIELD) {
            None => None,
            Some(value) => {
                let timestamp = value.as_str().and_then(Timestamp::parse);
                debug_assert!(timestamp.is_some(), "`_timestamp` {value} is not RFC 3339");
                if timestamp.is_none() {
                    body.remove(TIMESTAMP_FIELD);
                }
                timestamp
            }
        };
        let document = Document {
            id,
            access_controlled: protects(body.get(ACCESS_CONTROL_FIELD)),
            // Serializing a map of string keys into a Vec cannot fail.
            body: serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec()),
            timestamp,
        };
        debug_assert_eq!(document.check(), Ok(()));
        document
    }

    /// The document id (`U…`, `C…`, `<channel>-<ts>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The serialized body: one JSON object.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// When the source dates the document, if it does.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    /// Whether the body carries a non-empty [`ACCESS_CONTROL_FIELD`]: a document Elastic's
    /// DLS query shows only to the identities listed.
    pub fn access_controlled(&self) -> bool {
        self.access_controlled
    }

    /// The document with [`ACCESS_CONTROL_FIELD`] appended to its body: who may read it under
    /// document-level security. Appending costs the list's bytes, not a copy of the body
    /// (messages are most documents). An empty list adds nothing: the document stays
    /// unprotected, and the engine refuses it while DLS is on (under Elastic's DLS query an
    /// empty list is as public as none).
    pub fn with_access_control(mut self, readers: &AccessControl) -> Document {
        if readers.is_empty() {
            return self;
        }
        debug_assert!(
            !self.access_controlled,
            "`{ACCESS_CONTROL_FIELD}` written twice"
        );
        // The body is `{…}` by construction.
        if self.body.pop() != Some(b'}') {
            debug_assert!(false, "a document body is not an object");
            self.body.push(b'}');
            return self;
        }
        if self.body.last() != Some(&b'{') {
            self.body.push(b',');
        }
        self.body.push(b'"');
        self.body.extend_from_slice(ACCESS_CONTROL_FIELD.as_bytes());
        self.body.extend_from_slice(b"\":");
        self.body.extend_from_slice(&readers.json);
        self.body.push(b'}');
        self.access_controlled = true;
        debug_assert_eq!(self.check(), Ok(()));
        self
    }

    /// The id, body and timestamp, by value (the encoder keeps the id).
    pub fn into_parts(self) -> (String, Vec<u8>, Option<Timestamp>) {
        (self.id, self.body, self.timestamp)
    }

    /// The body as a field map (sync rules, tests). Parses the body: not for the hot path.
    pub fn fields(&self) -> Map<String, Value> {
        // A body is an object by construction (see the module invariants).
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// Checks the module invariants; the error says which one the document breaks.
    pub fn check(&self) -> Result<(), String> {
        let keys = top_level_keys(&self.body)
            .map_err(|e| format!("document {}: the body is not a JSON object: {e}", self.id))?;
        let mut seen = std::collections::HashSet::new();
        for key in &keys {
            if !seen.insert(key.as_str()) {
                return Err(format!("document {}: `{key}` appears twice", self.id));
            }
            if RESERVED_KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "document {}: `{key}` is reserved to the engine",
                    self.id
                ));
            }
        }
        let mut fields = self.fields();
        if protects(fields.get(ACCESS_CONTROL_FIELD)) != self.access_controlled {
            return Err(format!(
                "document {}: `{ACCESS_CONTROL_FIELD}` {:?} does not match access_controlled = {}",
                self.id,
                fields.get(ACCESS_CONTROL_FIELD),
                self.access_controlled
            ));
        }
        let written = fields.remove(TIMESTAMP_FIELD);
        let agree = match (&written, self.timestamp) {
            (None, None) => true,
            // The writer's text, or the text a field map came with.
            (Some(Value::String(text)), Some(timestamp)) => {
                timestamp.iso().as_deref() == Some(text.as_str())
                    || Timestamp::parse(text) == Some(timestamp)
            }
            _ => false,
        };
        if agree {
            return Ok(());
        }
        Err(format!(
            "document {}: `_timestamp` {written:?} does not match its timestamp {:?}",
            self.id,
            self.timestamp.map(Timestamp::iso)
        ))
    }
}

/// Whether a body's [`ACCESS_CONTROL_FIELD`] value protects the document: a non-empty list
/// of strings (anything else leaves it readable by everyone under Elastic's DLS query).
fn protects(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Array(items)) => !items.is_empty() && items.iter().all(Value::is_string),
        _ => false,
    }
}

/// The top-level keys of a JSON object, in order, duplicates kept.
fn top_level_keys(json: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let keys = deserializer.deserialize_map(Keys)?;
    deserializer.end()?;
    Ok(keys)
}

/// Writes a document body field by field into one buffer: the fast way to make a
/// [`Document`] (a sync writes a million), with no field map to build and drop. Keys are the
/// source's own (plain ASCII, never escaped); values are escaped as JSON requires.
#[derive(Debug)]
pub struct DocumentWriter {
    out: Vec<u8>,
    timestamp: Option<Timestamp>,
}

impl DocumentWriter {
    /// A writer whose buffer starts with room for `capacity` bytes.
    #[inline]
    pub fn with_capacity(capacity: usize) -> DocumentWriter {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        DocumentWriter {
            out,
            timestamp: None,
        }
    }

    /// A writer whose body starts with `key` set to `value`, taking `value`'s buffer instead
    /// of copying it: for one large value (a file's base64) that must not be held twice. The
    /// head is inserted in place when `value` has room for it (and for the fields after it);
    /// a value that needs JSON escaping is written the ordinary way.
    pub fn starting_with_string(key: &str, value: String) -> DocumentWriter {
        if value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            let mut writer = DocumentWriter::with_capacity(value.len() + 1024);
            writer.str(key, &value);
            return writer;
        }
        let mut out = value.into_bytes();
        let head = format!("{{\"{key}\":\"");
        out.splice(0..0, head.into_bytes());
        out.push(b'"');
        DocumentWriter {
            out,
            timestamp: None,
        }
    }

    #[inline]
    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string value; returns where it lies in the body (quotes included), for [`Self::same`].
    #[inline]
    pub fn str(&mut self, key: &str, value: &str) -> Range<usize> {
        self.str_parts(key, &[value])
    }

    /// One string value made of `parts`, concatenated; returns the value's span.
    #[inline]
    pub fn str_parts(&mut self, key: &str, parts: &[&str]) -> Range<usize> {
        self.key(key);
        let start = self.out.len();
        self.out.push(b'"');
        for part in parts {
            escape_json_into(&mut self.out, part);
        }
        self.out.push(b'"');
        start..self.out.len()
    }

    /// `key` with a value already written at `value` (a span [`Self::str`] returned).
    #[inline]
    pub fn same(&mut self, key: &str, value: Range<usize>) {
        self.key(key);
        self.out.extend_from_within(value);
    }

    /// A string value written piece by piece by `write`, escaped on the way.
    #[inline]
    pub fn text(&mut self, key: &str, write: impl FnOnce(&mut JsonText<'_>)) {
        self.key(key);
        self.out.push(b'"');
        write(&mut JsonText(&mut self.out));
        self.out.push(b'"');
    }

    /// A string, or `null`.
    #[inline]
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => {
                self.str(key, value);
            }
            None => self.null(key),
        }
    }

    /// An unsigned integer.
    #[inline]
    pub fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        // Writing to a Vec cannot fail.
        let _ = std::io::Write::write_fmt(&mut self.out, format_args!("{value}"));
    }

    /// An integer, or `null`.
    #[inline]
    pub fn opt_i64(&mut self, key: &str, value: Option<i64>) {
        self.key(key);
        match value {
            // Writing to a Vec cannot fail.
            Some(value) => {
                let _ = std::io::Write::write_fmt(&mut self.out, format_args!("{value}"));
            }
            None => self.out.extend_from_slice(b"null"),
        }
    }

    /// A boolean, or `null`.
    #[inline]
    pub fn opt_bool(&mut self, key: &str, value: Option<bool>) {
        self.key(key);
        self.out.extend_from_slice(match value {
            Some(true) => b"true",
            Some(false) => b"false",
            None => b"null",
        });
    }

    /// Any JSON value (the sparse, structured fields: lists of objects or ids).
    pub fn json(&mut self, key: &str, value: &serde_json::Value) {
        self.key(key);
        // Writing a Value to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.out, value);
    }

    /// `null`.
    #[inline]
    pub fn null(&mut self, key: &str) {
        self.key(key);
        self.out.extend_from_slice(b"null");
    }

    /// `_timestamp`, here in the body, when the source dates the document and the instant
    /// can be written (nothing is written otherwise, and the document stays undated: the
    /// engine then keeps the creation time of an existing document). Returns whether it
    /// was written.
    #[inline]
    pub fn timestamp(&mut self, timestamp: Option<Timestamp>) -> bool {
        let Some(timestamp) = timestamp else {
            return false;
        };
        debug_assert!(self.timestamp.is_none(), "`_timestamp` written twice");
        let mark = self.out.len();
        self.key(TIMESTAMP_FIELD);
        self.out.push(b'"');
        if timestamp.write_iso(&mut self.out) {
            self.out.push(b'"');
            self.timestamp = Some(timestamp);
            true
        } else {
            self.out.truncate(mark);
            false
        }
    }

    /// The document `id` with the body written so far.
    #[inline]
    pub fn finish(mut self, id: String) -> Document {
        self.out.push(b'}');
        let document = Document {
            id,
            body: self.out,
            timestamp: self.timestamp,
            access_controlled: false,
        };
        debug_assert_eq!(document.check(), Ok(()));
        document
    }
}

/// The inside of a JSON string value being written: every piece is escaped on the way in.
#[derive(Debug)]
pub struct JsonText<'a>(&'a mut Vec<u8>);

impl JsonText<'_> {
    /// Appends `s`, escaped.
    pub fn push_str(&mut self, s: &str) {
        escape_json_into(self.0, s);
    }
}

/// Appends `s` JSON-escaped (without quotes): `"`, `\\` and control characters; the rest,
/// unicode included, is copied as is (JSON text is UTF-8). Message text is most of the
/// bytes we write, so clean runs are found eight bytes at a time.
fn escape_json_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i..i + 8]);
            if !word_needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes of `word` is `"`, `\\` or below 0x20 (may say yes for a
/// byte that only looks close; the byte loop then decides exactly).
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The classic "has a byte below n" and "has a zero byte" tricks.
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let has_quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let has_backslash = backslash.wrapping_sub(ONES) & !backslash & HIGH;
    below_space | has_quote | has_backslash != 0
}

/// Writes [`Timestamp::iso`] for years 1970..=9999 (every Slack `ts`) without chrono's
/// general formatter, which was a visible share of a message's cost; `false` (nothing
/// written) outside that range. Days to civil date after Howard Hinnant's algorithm.
fn write_iso_micros(out: &mut Vec<u8>, micros: i64) -> bool {
    // 253402300800 s = 10000-01-01T00:00:00Z.
    if !(0..253_402_300_800_000_000).contains(&micros) {
        return false;
    }
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    out.push(b'T');
    push_digits(out, rem / 3600, 2);
    out.push(b':');
    push_digits(out, rem / 60 % 60, 2);
    out.push(b':');
    push_digits(out, rem % 60, 2);
    out.push(b'.');
    push_digits(out, frac, 6);
    out.push(b'Z');
    true
}

/// `value` (non-negative) as exactly `width` (at most 6) zero-padded decimal digits.
fn push_digits(out: &mut Vec<u8>, value: i64, width: usize) {
    let mut buf = [b'0'; 6];
    let mut v = value;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// chrono's RFC 3339 with microseconds: the reference, and years past 9999.
fn iso_chrono(micros: i64) -> Option<String> {
    let secs = micros.div_euclid(1_000_000);
    let nanos = (micros.rem_euclid(1_000_000) * 1000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unchecked(id: &str, body: &str, timestamp: Option<Timestamp>) -> Document {
        Document {
            id: id.into(),
            body: body.as_bytes().to_vec(),
            timestamp,
            access_controlled: false,
        }
    }

    #[test]
    fn written_documents_are_objects_with_their_timestamp() {
        let mut writer = DocumentWriter::with_capacity(16);
        let span = writer.str("text", "a \"quoted\"\nline");
        writer.same("body", span);
        writer.timestamp(Some(Timestamp::from_micros(1_700_000_000_000_100)));
        writer.opt_str("none", None);
        writer.u64("n", 3);
        writer.opt_i64("created", Some(-5));
        writer.opt_bool("flag", Some(false));
        writer.text("joined", |out| {
            out.push_str("a");
            out.push_str("\t");
        });
        let doc = writer.finish("C1-1.0".into());
        assert_eq!(
            std::str::from_utf8(doc.body()).unwrap(),
            "{\"text\":\"a \\\"quoted\\\"\\nline\",\"body\":\"a \\\"quoted\\\"\\nline\",\
             \"_timestamp\":\"2023-11-14T22:13:20.000100Z\",\"none\":null,\"n\":3,\
             \"created\":-5,\"flag\":false,\"joined\":\"a\\t\"}"
        );
        assert_eq!(doc.id(), "C1-1.0");
        assert_eq!(
            doc.timestamp().map(Timestamp::micros),
            Some(1_700_000_000_000_100)
        );
        assert_eq!(doc.check(), Ok(()));
        let empty = DocumentWriter::with_capacity(0).finish("E".into());
        assert_eq!(empty.body(), b"{}");
        assert_eq!(empty.timestamp(), None);
    }

    #[test]
    fn an_instant_without_representation_leaves_the_document_undated() {
        let mut writer = DocumentWriter::with_capacity(0);
        assert!(!writer.timestamp(Some(Timestamp::from_micros(i64::MAX))));
        assert!(!writer.timestamp(None));
        let doc = writer.finish("U1".into());
        assert_eq!(doc.body(), b"{}");
        assert_eq!(doc.timestamp(), None);
    }

    #[test]
    fn field_maps_keep_their_timestamp_text() {
        let body = json!({"text": "hi", "_timestamp": "2024-05-01T10:00:00+00:00"});
        let doc = Document::from_fields("M1".into(), body.as_object().cloned().unwrap());
        assert_eq!(
            doc.body(),
            br#"{"_timestamp":"2024-05-01T10:00:00+00:00","text":"hi"}"#
        );
        assert_eq!(doc.timestamp(), Timestamp::parse("2024-05-01T10:00:00Z"));
        assert_eq!(doc.fields(), *body.as_object().unwrap());
        let undated = Document::from_fields("M2".into(), Map::new());
        assert_eq!((undated.body(), undated.timestamp()), (&b"{}"[..], None));
    }

    /// The invariants the engine relies on, each broken once.
    #[test]
    fn check_names_the_broken_invariant() {
        let t = Timestamp::parse("2023-11-14T22:13:20.000100Z");
        for key in RESERVED_KEYS {
            let doc = unchecked("X", &format!("{{\"a\":1,\"{key}\":2}}"), None);
            let error = doc.check().unwrap_err();
            assert!(error.contains("reserved"), "{key}: {error}");
        }
        for (body, timestamp, problem) in [
            ("[1]", None, "not a JSON object"),
            ("{\"a\":1} x", None, "not a JSON object"),
            ("{\"a\":1,\"a\":2}", None, "twice"),
            (
                "{\"_timestamp\":\"2023-11-14T22:13:20.000100Z\"}",
                None,
                "does not match",
            ),
            ("{}", t, "does not match"),
            (
                "{\"_timestamp\":\"2020-01-01T00:00:00Z\"}",
                t,
                "does not match",
            ),
            ("{\"_timestamp\":5}", t, "does not match"),
        ] {
            let error = unchecked("X", body, timestamp).check().unwrap_err();
            assert!(error.contains(problem), "{body}: {error}");
        }
        let good = unchecked("X", "{\"_timestamp\":\"2023-11-14T22:13:20.000100Z\"}", t);
        assert_eq!(good.check(), Ok(()));
        // The access-control flag must say what the body says.
        let claimed = Document {
            access_controlled: true,
            ..unchecked("X", "{\"_allow_access_control\":[]}", None)
        };
        assert!(claimed.check().unwrap_err().contains("access_controlled"));
        let hidden = unchecked("X", "{\"_allow_access_control\":[\"team:T1\"]}", None);
        assert!(hidden.check().unwrap_err().contains("access_controlled"));
    }

    #[test]
    fn access_control_is_sorted_written_once_and_typed() {
        let readers = AccessControl::new(["team:T1", "channel:C1", "team:T1"].map(String::from));
        assert_eq!(readers.identities(), ["channel:C1", "team:T1"]);
        let mut writer = DocumentWriter::with_capacity(0);
        writer.str("type", "channel");
        let doc = writer.finish("C1".into());
        assert!(!doc.access_controlled());
        let doc = doc.with_access_control(&readers);
        assert_eq!(
            doc.body(),
            br#"{"type":"channel","_allow_access_control":["channel:C1","team:T1"]}"#
        );
        assert!(doc.access_controlled());
        assert_eq!(doc.check(), Ok(()));
        let bare = DocumentWriter::with_capacity(0).finish("C3".into());
        let bare = bare.with_access_control(&readers);
        assert_eq!(
            bare.body(),
            br#"{"_allow_access_control":["channel:C1","team:T1"]}"#
        );
        // An empty list protects nothing: nothing is written and the document says so.
        let open = DocumentWriter::with_capacity(0)
            .finish("C2".into())
            .with_access_control(&AccessControl::new(Vec::new()));
        assert_eq!((open.body(), open.access_controlled()), (&b"{}"[..], false));
        // Field maps: only a non-empty list of strings protects.
        for (value, protected) in [
            (json!(["user:U1"]), true),
            (json!([]), false),
            (json!("user:U1"), false),
            (json!(["user:U1", 5]), false),
            (Value::Null, false),
        ] {
            let mut body = Map::new();
            body.insert(ACCESS_CONTROL_FIELD.into(), value.clone());
            let doc = Document::from_fields("M1".into(), body);
            assert_eq!(doc.access_controlled(), protected, "{value}");
            assert_eq!(doc.check(), Ok(()));
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "a document body has `id`")]
    fn a_reserved_key_panics_in_debug_builds() {
        let body = json!({"id": "U1", "name": "a"});
        let _ = Document::from_fields("U1".into(), body.as_object().cloned().unwrap());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "is reserved to the engine")]
    fn a_written_reserved_key_panics_in_debug_builds() {
        let mut writer = DocumentWriter::with_capacity(0);
        writer.str("_sync_marker", "x");
        let _ = writer.finish("U1".into());
    }

    #[test]
    fn json_escaping_round_trips() {
        for text in [
            "plain",
            "quote \" backslash \\ slash /",
            "lines\nand\r\ttabs \u{0} \u{1f} \u{7f}",
            "unicode é 日本語 🎉 \u{2028}",
            "",
            "exactly8",
            "a longer clean run of text, then one \" quote, then more clean text\\",
            "\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\u{9}",
            "ééééé\"ééééé",
        ] {
            let mut out = b"\"".to_vec();
            escape_json_into(&mut out, text);
            out.push(b'"');
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, text);
        }
    }

    /// No byte that needs escaping slips through the eight-byte scan, at any position and
    /// beside any neighbour.
    #[test]
    fn word_scan_never_misses_a_byte_to_escape() {
        for needs in (0u8..0x20).chain([b'"', b'\\']) {
            for filler in 0u8..=255 {
                for at in 0..8 {
                    let mut word = [filler; 8];
                    word[at] = needs;
                    assert!(
                        word_needs_escape(u64::from_le_bytes(word)),
                        "{needs} at {at}"
                    );
                }
            }
        }
        assert!(!word_needs_escape(u64::from_le_bytes(*b"clean ok")));
    }

    #[test]
    fn fast_iso_agrees_with_chrono() {
        // Edges (epoch, leap days, century rules, the last representable instant) and a
        // deterministic sweep over 1970..10000 with odd strides, so every month, day and
        // time of day is hit.
        let mut cases = vec![
            0,
            1,
            999_999,
            951_782_400_000_000,   // 2000-02-29
            4_107_542_400_000_000, // 2100-03-01 (2100 is not a leap year)
            1_700_000_000_000_100,
            253_402_300_799_999_999,
        ];
        let mut x: i64 = 1;
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            cases.push(((x as u64) >> 1) as i64 % 253_402_300_800_000_000);
        }
        for micros in cases {
            assert_eq!(
                Timestamp::from_micros(micros).iso(),
                iso_chrono(micros),
                "{micros}"
            );
        }
        // Outside the fast range: chrono's answer.
        assert_eq!(
            Timestamp::from_micros(253_402_300_800_000_000)
                .iso()
                .as_deref(),
            Some("+10000-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            Timestamp::from_micros(-1).iso().as_deref(),
            Some("1969-12-31T23:59:59.999999Z")
        );
        assert_eq!(Timestamp::from_micros(i64::MAX).iso(), None);
    }
}
