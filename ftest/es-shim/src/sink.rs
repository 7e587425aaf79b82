//! A discarding content sink for benchmarks: `_bulk` requests whose every item targets one
//! of the configured indices are answered here (each item `201 created`, or `200 deleted`
//! for deletes) and never reach osmem, which ingests our documents at only a few hundred
//! per second. What was written is kept as counts plus a set of 64-bit id hashes, so a
//! benchmark can still check that every expected document arrived exactly once.
//!
//! Invariants: a request that touches any other index (or is malformed) is not answered
//! here; it goes the normal way, so the connector indices and errors stay real.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::{json, Value};

/// The sink's state.
#[derive(Debug, Default)]
pub struct Sink {
    indices: Vec<String>,
    state: Mutex<SinkState>,
}

#[derive(Debug, Default)]
struct SinkState {
    ids: HashSet<u64>,
    writes: u64,
    deletes: u64,
    bytes: u64,
}

/// What the sink received so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Distinct ids written (and not deleted since).
    pub distinct_ids: u64,
    /// Index/create/update items.
    pub writes: u64,
    /// Delete items.
    pub deletes: u64,
    /// Request body bytes.
    pub bytes: u64,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "_index")]
    index: Option<String>,
    #[serde(rename = "_id")]
    id: Option<String>,
}

/// The 64-bit hash the sink keeps for an id (the runner hashes expected ids the same way).
pub fn id_hash(id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

impl Sink {
    /// A sink for `indices` (exact names).
    pub fn new(indices: Vec<String>) -> Sink {
        Sink {
            indices,
            state: Mutex::default(),
        }
    }

    /// Whether any index is configured.
    pub fn is_active(&self) -> bool {
        !self.indices.is_empty()
    }

    /// Answers a `_bulk` body when all its items target sink indices; `None` otherwise.
    pub fn bulk(&self, body: &[u8], default_index: Option<&str>) -> Option<Value> {
        if !self.is_active() || !body.ends_with(b"\n") {
            return None;
        }
        let mut items = Vec::new();
        let mut ops = Vec::new();
        let mut lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        while let Some(line) = lines.next() {
            let action: serde_json::Map<String, Value> = serde_json::from_slice(line).ok()?;
            let (op, meta) = action.into_iter().next()?;
            let meta: Meta = serde_json::from_value(meta).ok()?;
            let index = meta.index.as_deref().or(default_index)?;
            if !self.indices.iter().any(|i| i == index) {
                return None;
            }
            let id = meta.id?;
            match op.as_str() {
                "index" | "create" | "update" => {
                    lines.next()?;
                    items.push(json!({op.as_str(): {"_index": index, "_id": id, "status": 201, "result": "created"}}));
                }
                "delete" => {
                    items.push(json!({"delete": {"_index": index, "_id": id, "status": 200, "result": "deleted"}}));
                }
                _ => return None,
            }
            ops.push((op == "delete", id_hash(&id)));
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.bytes += body.len() as u64;
        for (delete, hash) in ops {
            if delete {
                state.deletes += 1;
                state.ids.remove(&hash);
            } else {
                state.writes += 1;
                state.ids.insert(hash);
            }
        }
        Some(json!({"took": 0, "errors": false, "items": items}))
    }

    /// Counts so far.
    pub fn stats(&self) -> SinkStats {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        SinkStats {
            distinct_ids: state.ids.len() as u64,
            writes: state.writes,
            deletes: state.deletes,
            bytes: state.bytes,
        }
    }

    /// Which of `ids` never arrived (or were deleted).
    pub fn missing<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        ids.into_iter()
            .filter(|id| !state.ids.contains(&id_hash(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_sink_bulks() {
        let sink = Sink::new(vec!["search-slack".into()]);
        let body = b"{\"index\":{\"_index\":\"search-slack\",\"_id\":\"a\"}}\n{\"x\":1}\n\
                     {\"delete\":{\"_index\":\"search-slack\",\"_id\":\"b\"}}\n";
        let answer = sink.bulk(body, None).unwrap();
        assert_eq!(answer["errors"], false);
        assert_eq!(answer["items"][0]["index"]["status"], 201);
        assert_eq!(answer["items"][1]["delete"]["_id"], "b");
        let mixed = b"{\"index\":{\"_index\":\"other\",\"_id\":\"a\"}}\n{\"x\":1}\n";
        assert!(sink.bulk(mixed, None).is_none());
        assert!(sink
            .bulk(b"{\"index\":{\"_id\":\"c\"}}\n{}\n", Some("search-slack"))
            .is_some());
        assert!(sink.bulk(b"not json\n", None).is_none());
        assert!(sink
            .bulk(b"{\"index\":{\"_id\":\"c\"}}\n{}", Some("search-slack"))
            .is_none());
        let stats = sink.stats();
        assert_eq!((stats.writes, stats.deletes, stats.distinct_ids), (2, 1, 2));
        assert_eq!(sink.missing(["a", "c", "b"]), vec!["b"]);
        assert!(Sink::default().bulk(body, None).is_none());
    }
}
