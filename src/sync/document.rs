//! Preparing a source document and serializing it, once, into its bulk NDJSON lines.
//!
//! What preparing does (as upstream, see the protocol notes §3.1):
//! - an `_id` longer than [`MAX_ID_BYTES`] UTF-8 bytes becomes the md5 hex of itself
//!   (Elasticsearch refuses ids over 512 bytes);
//! - the body gets `id` = `_id`, the three pipeline flags `_extract_binary_content`,
//!   `_reduce_whitespace`, `_run_ml_inference` (the ingest pipeline removes them), and the
//!   sync's deletion marker `_sync_marker` (see the engine docs);
//! - `_timestamp` is set on creation and kept for unchanged documents. A source that dates
//!   a document (Slack: from the message `ts`) has written `_timestamp` in its body, and the
//!   document is indexed as is with an `index` op.
//!   Without one we cannot know whether the document exists (we keep no id map), so the op
//!   becomes an `update` with `doc` = body and `upsert` = body + `_timestamp: now`: an
//!   existing document keeps its `_timestamp` and a new one gets now. The price is the body
//!   twice on the wire, and fields the source stopped sending survive on an existing
//!   document (an update merges) until its next change.
//!
//! The serialized bytes are what the batcher measures and what goes on the wire: each
//! document is serialized exactly once, by its source ([`Document`]). The encoder never
//! parses it: the body's object is copied and the engine's fields are appended as bytes,
//! which is what keeps the per-document CPU of a large sync low. Whether the source dates
//! the document comes from its typed [`Document::timestamp`], never from the bytes.

use crate::sources::document::TIMESTAMP_FIELD;
use crate::sources::{DocOp, Document};
use md5::{Digest, Md5};
use serde_json::Value;
use sha2::Sha256;
use std::io::Write;
use std::time::{Duration, Instant};

/// Longest `_id` Elasticsearch accepts, in UTF-8 bytes.
pub const MAX_ID_BYTES: usize = 512;

/// The field that carries the deletion marker of the sync that last wrote a document.
pub const SYNC_MARKER_FIELD: &str = "_sync_marker";

/// The field of an access-control (identity) document that carries [`body_digest`] of the
/// body its source made: equal digests mean an unchanged document, which is not rewritten.
pub const DIGEST_FIELD: &str = "_sync_digest";

/// The bulk operation an item became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `index`: create or replace.
    Index,
    /// `update` with `doc` + `doc_as_upsert` or `upsert`.
    Update,
    /// `delete`.
    Delete,
}

/// What encoding one op produced (its bytes went into the output buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The op.
    pub kind: OpKind,
    /// The final `_id` (hashed when too long).
    pub id: String,
    /// Bulk body lines: 2 for index/update, 1 for delete.
    pub lines: usize,
    /// Bytes of the source line (the document volume counted on success); 0 for deletes.
    pub source_len: usize,
}

/// Fixed per-sync facts every document gets.
#[derive(Debug, Clone)]
pub struct EncodeContext {
    /// The target index, already JSON-escaped with its quotes.
    index_json: String,
    stamp: Stamp,
}

/// What the engine writes into every body besides `id`.
#[derive(Debug, Clone)]
enum Stamp {
    /// Content syncs: the job's pipeline flags and the sync marker.
    Content {
        extract_binary_content: bool,
        reduce_whitespace: bool,
        run_ml_inference: bool,
        marker: i64,
    },
    /// Access-control syncs: the digest of the source's body ([`DIGEST_FIELD`]), which the
    /// next access-control sync compares to leave unchanged identity documents alone. No
    /// pipeline flags (the framework's identity documents have none) and no marker (their
    /// deletions come from the digest comparison, not from a marker sweep).
    Digest,
}

impl EncodeContext {
    /// A context for `index` with the job's pipeline flags and the sync marker.
    pub fn new(
        index: &str,
        extract_binary_content: bool,
        reduce_whitespace: bool,
        run_ml_inference: bool,
        marker: i64,
    ) -> EncodeContext {
        EncodeContext {
            index_json: Value::String(index.to_string()).to_string(),
            stamp: Stamp::Content {
                extract_binary_content,
                reduce_whitespace,
                run_ml_inference,
                marker,
            },
        }
    }

    /// A context for the access-control index `index`: each body gets its digest
    /// ([`body_digest`]) instead of the content fields.
    pub fn access_control(index: &str) -> EncodeContext {
        EncodeContext {
            index_json: Value::String(index.to_string()).to_string(),
            stamp: Stamp::Digest,
        }
    }

    /// Writes `op` as NDJSON lines (each ending with `\n`) into `out`.
    /// `now` is the ISO-8601 time used for `_timestamp` of new documents.
    pub fn encode(&self, op: DocOp, now: &str, out: &mut Vec<u8>) -> Encoded {
        match op {
            DocOp::Index(doc) => self.encode_document(OpKind::Index, doc, now, out),
            DocOp::Update(doc) => self.encode_document(OpKind::Update, doc, now, out),
            DocOp::Delete(id) => {
                let id = normalize_id(id);
                self.action_line(out, "delete", &id);
                Encoded {
                    kind: OpKind::Delete,
                    id,
                    lines: 1,
                    source_len: 0,
                }
            }
        }
    }

    /// An `index` op for a dated document asked to be indexed; an `update` otherwise.
    fn encode_document(
        &self,
        requested: OpKind,
        doc: Document,
        now: &str,
        out: &mut Vec<u8>,
    ) -> Encoded {
        let (id, body, dated) = doc.into_parts();
        let digest = matches!(self.stamp, Stamp::Digest).then(|| body_digest(&body));
        let digest = digest.as_deref();
        // A body is an object by construction (`sources::document`).
        let inner = object_inner(&body).unwrap_or_default();
        let id = normalize_id(id);
        let has_timestamp = dated.is_some();
        let kind = if requested == OpKind::Index && has_timestamp {
            OpKind::Index
        } else {
            OpKind::Update
        };
        self.write_op(kind, has_timestamp, id, now, out, |out, id, timestamp| {
            self.write_body(out, inner, id, digest, timestamp)
        })
    }

    /// The action line and the source line of an index or update op. `body(out, id, ts)`
    /// writes the document, with `_timestamp` set to `ts` when there is one (the upsert of a
    /// document its source does not date).
    fn write_op(
        &self,
        kind: OpKind,
        has_timestamp: bool,
        id: String,
        now: &str,
        out: &mut Vec<u8>,
        mut body: impl FnMut(&mut Vec<u8>, &str, Option<&str>),
    ) -> Encoded {
        match kind {
            OpKind::Index => self.action_line(out, "index", &id),
            _ => self.action_line(out, "update", &id),
        }
        let start = out.len();
        match (kind, has_timestamp) {
            (OpKind::Index, _) => body(out, &id, None),
            (_, true) => {
                out.extend_from_slice(b"{\"doc\":");
                body(out, &id, None);
                out.extend_from_slice(b",\"doc_as_upsert\":true}");
            }
            (_, false) => {
                out.extend_from_slice(b"{\"doc\":");
                body(out, &id, None);
                out.extend_from_slice(b",\"upsert\":");
                body(out, &id, Some(now));
                out.push(b'}');
            }
        }
        let source_len = out.len() - start;
        out.push(b'\n');
        Encoded {
            kind,
            id,
            lines: 2,
            source_len,
        }
    }

    /// `{<inner>,"id":…,<pipeline flags>,"_sync_marker":…[,"_timestamp":…]}`, or for an
    /// identity document `{<inner>,"id":…,"_sync_digest":…[,"_timestamp":…]}`.
    fn write_body(
        &self,
        out: &mut Vec<u8>,
        inner: &[u8],
        id: &str,
        digest: Option<&str>,
        timestamp: Option<&str>,
    ) {
        out.push(b'{');
        out.extend_from_slice(inner);
        if !inner.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"id\":");
        write_json(out, id);
        match &self.stamp {
            Stamp::Content {
                extract_binary_content,
                reduce_whitespace,
                run_ml_inference,
                marker,
            } => {
                for (key, value) in [
                    (
                        &b",\"_extract_binary_content\":"[..],
                        *extract_binary_content,
                    ),
                    (b",\"_reduce_whitespace\":", *reduce_whitespace),
                    (b",\"_run_ml_inference\":", *run_ml_inference),
                ] {
                    out.extend_from_slice(key);
                    out.extend_from_slice(if value { b"true" } else { b"false" });
                }
                out.extend_from_slice(b",\"");
                out.extend_from_slice(SYNC_MARKER_FIELD.as_bytes());
                out.extend_from_slice(b"\":");
                // Writing to a Vec cannot fail.
                let _ = write!(out, "{marker}");
            }
            Stamp::Digest => {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(DIGEST_FIELD.as_bytes());
                out.extend_from_slice(b"\":");
                write_json(out, digest.unwrap_or_default());
            }
        }
        if let Some(timestamp) = timestamp {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(TIMESTAMP_FIELD.as_bytes());
            out.extend_from_slice(b"\":");
            write_json(out, timestamp);
        }
        out.push(b'}');
    }

    fn action_line(&self, out: &mut Vec<u8>, action: &str, id: &str) {
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(action.as_bytes());
        out.extend_from_slice(b"\":{\"_index\":");
        out.extend_from_slice(self.index_json.as_bytes());
        out.extend_from_slice(b",\"_id\":");
        write_json(out, id);
        out.extend_from_slice(b"}}\n");
    }
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serializing a `Value`/`str` into a Vec cannot fail (no IO, string keys only).
    if serde_json::to_writer(&mut *out, value).is_err() {
        let _ = out.write_all(b"null");
    }
}

/// The bytes between the braces of a serialized JSON object (whitespace trimmed), or `None`
/// when `json` is not `{…}`.
fn object_inner(json: &[u8]) -> Option<&[u8]> {
    let inner = json.trim_ascii().strip_prefix(b"{")?.strip_suffix(b"}")?;
    Some(inner.trim_ascii())
}

/// The SHA-256 (hex) of a document body as its source serialized it: what an identity
/// document's [`DIGEST_FIELD`] holds. Collision-resistant on purpose: no crafted profile may
/// make a changed identity document (who may read what) pass for an unchanged one.
pub fn body_digest(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = std::fmt::Write::write_fmt(&mut hex, format_args!("{byte:02x}"));
    }
    hex
}

/// An id over [`MAX_ID_BYTES`] becomes its md5 hex digest; others are kept.
pub fn normalize_id(id: String) -> String {
    if id.len() <= MAX_ID_BYTES {
        return id;
    }
    hex(&Md5::digest(id.as_bytes()))
}

/// The current UTC time as ISO-8601 (`+00:00`, as upstream's `iso_utc`), re-read at most
/// once per `resolution`: formatting a date per document is measurable at our rates, and
/// a second is finer than anyone reads `_timestamp` at.
#[derive(Debug)]
pub struct Clock {
    text: String,
    read_at: Instant,
    resolution: Duration,
}

impl Clock {
    /// A clock re-read every second.
    pub fn new() -> Clock {
        Clock {
            text: iso_now(),
            read_at: Instant::now(),
            resolution: Duration::from_secs(1),
        }
    }

    /// The current time text.
    pub fn now(&mut self) -> &str {
        if self.read_at.elapsed() >= self.resolution {
            self.text = iso_now();
            self.read_at = Instant::now();
        }
        &self.text
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

fn iso_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::document::RESERVED_KEYS;
    use crate::sources::{DocumentWriter, Timestamp};
    use serde_json::{json, Map};

    fn ctx() -> EncodeContext {
        EncodeContext::new("idx", false, true, false, 42)
    }

    fn doc(id: &str, body: Value) -> Document {
        Document::from_fields(id.into(), body.as_object().cloned().unwrap())
    }

    #[test]
    fn long_ids_become_md5_hex() {
        let short = "a".repeat(512);
        assert_eq!(normalize_id(short.clone()), short);
        let long = "a".repeat(513);
        let hashed = normalize_id(long);
        assert_eq!(hashed.len(), 32);
        assert!(hashed.chars().all(|c| c.is_ascii_hexdigit()));
        // 171 three-byte characters = 513 bytes: bytes count, not chars.
        let wide = "€".repeat(171);
        assert_eq!(normalize_id(wide).len(), 32);
        assert_eq!(
            normalize_id("x".repeat(600)),
            normalize_id("x".repeat(600)),
            "stable"
        );
        // md5("") is well known; check the digest itself on a long input made of it.
        let digest = Md5::digest(b"");
        assert_eq!(format!("{digest:x}"), "d41d8cd98f00b204e9800998ecf8427e");
    }

    /// The body as the source wrote it, then the engine's fields.
    #[test]
    fn index_op_with_source_timestamp_is_literal_ndjson() {
        let mut out = Vec::new();
        let encoded = ctx().encode(
            DocOp::Index(doc(
                "C1-1.0",
                json!({"_timestamp": "2020-01-01T00:00:00+00:00", "text": "hi"}),
            )),
            "NOW",
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"index\":{\"_index\":\"idx\",\"_id\":\"C1-1.0\"}}\n\
             {\"_timestamp\":\"2020-01-01T00:00:00+00:00\",\"text\":\"hi\",\"id\":\"C1-1.0\",\
             \"_extract_binary_content\":false,\"_reduce_whitespace\":true,\"_run_ml_inference\":false,\
             \"_sync_marker\":42}\n"
        );
        assert_eq!(encoded.kind, OpKind::Index);
        assert_eq!(encoded.lines, 2);
        assert_eq!(encoded.source_len, text.lines().nth(1).unwrap().len());
    }

    #[test]
    fn doc_without_timestamp_becomes_update_with_upsert_timestamp() {
        let mut out = Vec::new();
        let encoded = ctx().encode(
            DocOp::Index(doc("U1", json!({"name": "a\"b"}))),
            "NOW",
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "{\"update\":{\"_index\":\"idx\",\"_id\":\"U1\"}}");
        let source: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(source["doc"]["name"], "a\"b");
        assert_eq!(source["doc"]["id"], "U1");
        assert!(source["doc"].get("_timestamp").is_none());
        assert!(source["doc"].get("_id").is_none());
        assert_eq!(source["upsert"]["_timestamp"], "NOW");
        assert_eq!(source["upsert"]["_sync_marker"], 42);
        assert_eq!(encoded.kind, OpKind::Update);
    }

    #[test]
    fn update_and_delete_ops() {
        let mut out = Vec::new();
        ctx().encode(
            DocOp::Update(doc(
                "U1",
                json!({"_timestamp": "2020-01-01T00:00:00Z", "a": 1}),
            )),
            "NOW",
            &mut out,
        );
        let encoded = ctx().encode(DocOp::Delete("x".repeat(600)), "NOW", &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].ends_with(",\"doc_as_upsert\":true}"),
            "{}",
            lines[1]
        );
        assert_eq!(
            lines[2],
            format!(
                "{{\"delete\":{{\"_index\":\"idx\",\"_id\":\"{}\"}}}}",
                normalize_id("x".repeat(600))
            )
        );
        assert_eq!(encoded.lines, 1);
        assert_eq!(encoded.kind, OpKind::Delete);
    }

    fn source_lines(op: DocOp) -> (Encoded, String, Value) {
        let mut out = Vec::new();
        let encoded = ctx().encode(op, "NOW", &mut out);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let action = lines.next().unwrap().to_string();
        let source = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert!(text.ends_with('\n'));
        (encoded, action, source)
    }

    /// A body written field by field and the same fields as a map become the same request
    /// (key order aside).
    #[test]
    fn written_documents_encode_like_field_maps() {
        let long_id = "x".repeat(600);
        let t = Timestamp::from_micros(1_577_836_800_000_000);
        let t_text = "2020-01-01T00:00:00.000000Z";
        let written = |id: &str, timestamp: Option<Timestamp>, fields: &[(&str, Option<&str>)]| {
            let mut writer = DocumentWriter::with_capacity(64);
            for (key, value) in fields {
                writer.opt_str(key, *value);
            }
            writer.timestamp(timestamp);
            writer.finish(id.into())
        };
        for (id, timestamp, fields) in [
            ("C1-1.0", Some(t), vec![("text", Some("h\"i")), ("n", None)]),
            (
                "U1",
                None,
                vec![("name", Some("a\"b")), ("count", Some("3"))],
            ),
            ("E1", Some(t), vec![]),
            (long_id.as_str(), Some(t), vec![("x", Some("1"))]),
            ("Z", None, vec![]),
        ] {
            let mut map = Map::new();
            for (key, value) in &fields {
                map.insert(key.to_string(), value.map_or(Value::Null, Value::from));
            }
            if timestamp.is_some() {
                map.insert("_timestamp".into(), t_text.into());
            }
            let (w_encoded, w_action, w_source) =
                source_lines(DocOp::Index(written(id, timestamp, &fields)));
            let (m_encoded, m_action, m_source) =
                source_lines(DocOp::Index(Document::from_fields(id.into(), map)));
            assert_eq!(w_action, m_action, "{id}");
            assert_eq!(w_source, m_source, "{id}");
            assert_eq!(w_encoded.kind, m_encoded.kind, "{id}");
            assert_eq!(w_encoded.id, m_encoded.id, "{id}");
            assert_eq!(w_encoded.lines, 2);
        }
        let (encoded, _, source) = source_lines(DocOp::Index(written("U1", None, &[])));
        assert_eq!(encoded.kind, OpKind::Update);
        assert_eq!(source["upsert"]["_timestamp"], "NOW");
        assert_eq!(source["doc"]["_sync_marker"], 42);
    }

    /// What the encoder appends to a body is exactly what a body must not have
    /// (`sources::document::RESERVED_KEYS`; `_id` goes in the action line): content
    /// documents get all but the digest, identity documents `id` and the digest.
    #[test]
    fn the_engine_writes_exactly_the_reserved_keys() {
        let written_keys = |ctx: &EncodeContext| {
            let mut writer = DocumentWriter::with_capacity(0);
            writer.timestamp(Some(Timestamp::from_micros(0)));
            let mut out = Vec::new();
            ctx.encode(DocOp::Index(writer.finish("C1-0".into())), "NOW", &mut out);
            let text = String::from_utf8(out).unwrap();
            let source: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
            assert!(text.contains("\"_id\":\"C1-0\""), "{text}");
            let mut written: Vec<String> = source.as_object().unwrap().keys().cloned().collect();
            written.push("_id".into());
            written.sort_unstable();
            written
        };
        let expected = |keys: &[&str]| {
            let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            keys.push(TIMESTAMP_FIELD.into());
            keys.sort_unstable();
            keys
        };
        let content: Vec<&str> = RESERVED_KEYS
            .into_iter()
            .filter(|k| *k != DIGEST_FIELD)
            .collect();
        assert_eq!(written_keys(&ctx()), expected(&content));
        let identity = ["id", "_id", DIGEST_FIELD];
        assert_eq!(
            written_keys(&EncodeContext::access_control("acl")),
            expected(&identity)
        );
        assert!(RESERVED_KEYS.contains(&SYNC_MARKER_FIELD));
        assert!(RESERVED_KEYS.contains(&DIGEST_FIELD));
    }

    /// An identity document carries the digest of its source body, the same for the same
    /// body, and nothing of the content syncs' fields.
    #[test]
    fn identity_documents_carry_the_digest_of_their_body() {
        let body = json!({"identity": {"user_id": "U1"}, "query": {"template": {"params": {"access_control": ["user:U1"]}}}});
        let document = doc("a@example.com", body);
        let digest = body_digest(document.body());
        assert_eq!(digest.len(), 64);
        let mut out = Vec::new();
        let encoded = EncodeContext::access_control(".search-acl-filter-idx").encode(
            DocOp::Index(document.clone()),
            "NOW",
            &mut out,
        );
        assert_eq!(encoded.kind, OpKind::Update);
        let text = String::from_utf8(out).unwrap();
        let source: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(source["doc"][DIGEST_FIELD], digest);
        assert_eq!(source["upsert"]["_timestamp"], "NOW");
        assert!(source["doc"].get(SYNC_MARKER_FIELD).is_none());
        assert!(source["doc"].get("_run_ml_inference").is_none());
        assert_eq!(body_digest(document.body()), digest, "stable");
        assert_ne!(body_digest(b"{}"), digest);
    }

    #[test]
    fn object_inner_strips_braces_and_whitespace() {
        assert_eq!(object_inner(b" { \"a\":1 } "), Some(&b"\"a\":1"[..]));
        assert_eq!(object_inner(b"{}"), Some(&b""[..]));
        assert_eq!(object_inner(b"[1]"), None);
        assert_eq!(object_inner(b""), None);
    }

    #[test]
    fn clock_formats_utc() {
        let mut clock = Clock::new();
        assert!(clock.now().ends_with("+00:00"), "{}", clock.now());
    }
}
