//! Grouping serialized operations into bulk requests.
//!
//! A batch is one `_bulk` body plus, per item, where its bytes are and what it was (for
//! counting results and resending only the items to retry). Limits, whichever comes first:
//! - body lines (`chunk_size`; an index/update op is 2 lines, a delete 1),
//! - serialized bytes (`chunk_max_mem_size` MiB, and never more than `queue_max_mem_size`),
//! - documents (`queue_max_size`).
//!
//! As upstream, an op that would overflow the batch flushes the batch *before* it is added
//! (so a batch never exceeds the limits unless a single op does), and a batch that reached a
//! limit after an add is flushed at once. Sizes are wire bytes, not in-memory object sizes
//! (upstream measures Python object sizes, ~3× larger for the same documents).

use super::document::{Encoded, OpKind};
use crate::config::BulkConfig;

const MIB: f64 = 1_048_576.0;

/// The flush thresholds of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Bulk body lines.
    pub max_lines: usize,
    /// Body bytes.
    pub max_bytes: usize,
    /// Items.
    pub max_items: usize,
}

impl BatchLimits {
    /// The limits from `elasticsearch.bulk.*`; a size of 0 or less means "no byte limit".
    pub fn from_config(bulk: &BulkConfig) -> BatchLimits {
        let mib = |v: f64| {
            if v > 0.0 {
                ((v * MIB) as usize).max(1)
            } else {
                usize::MAX
            }
        };
        BatchLimits {
            max_lines: bulk.chunk_size.max(1),
            max_bytes: mib(bulk.chunk_max_mem_size).min(mib(bulk.queue_max_mem_size)),
            max_items: bulk.queue_max_size.max(1),
        }
    }
}

/// Where one item sits in a batch body and what it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemMeta {
    /// The op.
    pub kind: OpKind,
    /// The `_id`.
    pub id: String,
    /// Byte range of the item's lines in the body.
    pub start: usize,
    /// End of that range (exclusive).
    pub end: usize,
    /// Source line bytes (volume counted on success).
    pub source_len: usize,
}

/// One `_bulk` request being built.
#[derive(Debug, Default)]
pub struct Batch {
    /// The NDJSON body.
    pub body: Vec<u8>,
    /// The items, in body order.
    pub items: Vec<ItemMeta>,
    /// Body lines.
    pub lines: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// An empty batch with room for `bytes` of body and `items` items.
    pub fn with_capacity(bytes: usize, items: usize) -> Batch {
        Batch {
            body: Vec::with_capacity(bytes),
            items: Vec::with_capacity(items),
            lines: 0,
        }
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether an op of `lines` lines and `bytes` bytes must wait for the next batch.
    pub fn must_flush_before(&self, lines: usize, bytes: usize, limits: &BatchLimits) -> bool {
        !self.is_empty()
            && (self.lines + lines > limits.max_lines
                || self.body.len() + bytes > limits.max_bytes
                || self.items.len() + 1 > limits.max_items)
    }

    /// Whether the batch reached a limit.
    pub fn is_full(&self, limits: &BatchLimits) -> bool {
        self.lines >= limits.max_lines
            || self.body.len() >= limits.max_bytes
            || self.items.len() >= limits.max_items
    }

    /// Appends an encoded op whose lines are `bytes`.
    pub fn push(&mut self, encoded: Encoded, bytes: &[u8]) {
        let start = self.body.len();
        self.body.extend_from_slice(bytes);
        self.lines += encoded.lines;
        self.items.push(ItemMeta {
            kind: encoded.kind,
            id: encoded.id,
            start,
            end: self.body.len(),
            source_len: encoded.source_len,
        });
    }
}

/// Adds ops to a current batch and hands out full batches.
#[derive(Debug)]
pub struct Batcher {
    limits: BatchLimits,
    current: Batch,
}

impl Batcher {
    /// A batcher with these limits.
    pub fn new(limits: BatchLimits) -> Batcher {
        Batcher {
            limits,
            current: Batch::new(),
        }
    }

    /// Adds one op; returns the batches that became ready (0, 1 or 2), in order.
    pub fn add(&mut self, encoded: Encoded, bytes: &[u8]) -> Vec<Batch> {
        let mut ready = Vec::new();
        if self
            .current
            .must_flush_before(encoded.lines, bytes.len(), &self.limits)
        {
            ready.push(self.take_current());
        }
        self.current.push(encoded, bytes);
        if self.current.is_full(&self.limits) {
            ready.push(self.take_current());
        }
        ready
    }

    /// Hands out the current batch and starts the next one with the room this one took.
    ///
    /// Batches of a sync are about the same size, so reserving it once beats doubling up to it:
    /// a batch in flight then holds its bytes rather than up to twice as many, and no body is
    /// copied as it grows (issue 16: the 1M-message run's heap peak is mostly batches in flight).
    fn take_current(&mut self) -> Batch {
        let next = Batch::with_capacity(
            self.current.body.len().min(self.limits.max_bytes),
            self.current.items.len().min(self.limits.max_items),
        );
        std::mem::replace(&mut self.current, next)
    }

    /// Whether the batch under construction is empty.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// The last, partial batch (if any).
    pub fn finish(&mut self) -> Option<Batch> {
        if self.current.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.current))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{DocOp, Document};
    use crate::sync::document::EncodeContext;
    use serde_json::json;

    fn op(id: &str, text: &str) -> (Encoded, Vec<u8>) {
        let ctx = EncodeContext::new("i", false, false, false, 1);
        let mut out = Vec::new();
        let body = json!({"_timestamp": "2024-01-01T00:00:00Z", "t": text});
        let encoded = ctx.encode(
            DocOp::Index(Document::from_fields(
                id.into(),
                body.as_object().cloned().unwrap(),
            )),
            "now",
            &mut out,
        );
        (encoded, out)
    }

    fn delete(id: &str) -> (Encoded, Vec<u8>) {
        let ctx = EncodeContext::new("i", false, false, false, 1);
        let mut out = Vec::new();
        let encoded = ctx.encode(DocOp::Delete(id.into()), "now", &mut out);
        (encoded, out)
    }

    fn limits(max_lines: usize, max_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_lines,
            max_bytes,
            max_items: 1000,
        }
    }

    #[test]
    fn flushes_by_lines_counting_two_per_index_and_one_per_delete() {
        let mut batcher = Batcher::new(limits(5, usize::MAX));
        let (e, b) = op("a", "x");
        assert!(batcher.add(e, &b).is_empty());
        let (e, b) = op("b", "x");
        assert!(batcher.add(e, &b).is_empty()); // 4 lines
        let (e, b) = op("c", "x"); // 6 > 5: flush before
        let ready = batcher.add(e, &b);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].lines, 4);
        assert_eq!(ready[0].items.len(), 2);
        let (e, b) = delete("d"); // 3 lines
        assert!(batcher.add(e, &b).is_empty());
        let (e, b) = delete("e"); // 4
        assert!(batcher.add(e, &b).is_empty());
        let (e, b) = delete("f"); // 5 = limit: flush after
        let ready = batcher.add(e, &b);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].lines, 5);
        assert!(batcher.finish().is_none());
        let body = String::from_utf8(ready[0].body.clone()).unwrap();
        assert_eq!(
            body,
            "{\"index\":{\"_index\":\"i\",\"_id\":\"c\"}}\n\
             {\"_timestamp\":\"2024-01-01T00:00:00Z\",\"t\":\"x\",\"id\":\"c\",\"_extract_binary_content\":false,\"_reduce_whitespace\":false,\"_run_ml_inference\":false,\"_sync_marker\":1}\n\
             {\"delete\":{\"_index\":\"i\",\"_id\":\"d\"}}\n\
             {\"delete\":{\"_index\":\"i\",\"_id\":\"e\"}}\n\
             {\"delete\":{\"_index\":\"i\",\"_id\":\"f\"}}\n"
        );
        let last = &ready[0].items[3];
        assert_eq!(
            &body[last.start..last.end],
            "{\"delete\":{\"_index\":\"i\",\"_id\":\"f\"}}\n"
        );
    }

    #[test]
    fn flushes_by_bytes_before_overflowing() {
        let (e, b) = op("a", "x");
        let one = b.len();
        // Room for two ops and a bit, not three.
        let mut batcher = Batcher::new(limits(1000, one * 2 + one / 2));
        assert!(batcher.add(e, &b).is_empty());
        let (e, b) = op("b", "x");
        assert!(batcher.add(e, &b).is_empty());
        let (e, b) = op("c", "x");
        let ready = batcher.add(e, &b);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].body.len(), one * 2);
        let rest = batcher.finish().unwrap();
        assert_eq!(rest.items.len(), 1);
        assert_eq!(rest.items[0].id, "c");
    }

    #[test]
    fn an_op_larger_than_the_limit_goes_alone() {
        let (small_e, small_b) = op("a", "x");
        let mut batcher = Batcher::new(limits(1000, small_b.len() + 10));
        assert!(batcher.add(small_e, &small_b).is_empty());
        let (big_e, big_b) = op("big", &"y".repeat(500));
        let ready = batcher.add(big_e, &big_b);
        // The small batch is flushed before, the big one right after (it is over the limit).
        assert_eq!(ready.len(), 2);
        assert_eq!(ready[0].items[0].id, "a");
        assert_eq!(ready[1].items[0].id, "big");
        assert!(batcher.finish().is_none());
    }

    #[test]
    fn the_next_batch_starts_with_the_room_the_last_one_took() {
        let mut batcher = Batcher::new(limits(4, usize::MAX));
        let mut ready = Vec::new();
        for id in ["a", "b", "c", "d"] {
            let (e, b) = op(id, "x");
            ready.extend(batcher.add(e, &b));
        }
        assert_eq!(ready.len(), 2);
        // The second batch grew into the room reserved from the first: it holds its bytes, not
        // the doubling's spare.
        assert_eq!(ready[1].body.len(), ready[0].body.len());
        assert_eq!(ready[1].body.capacity(), ready[0].body.len());
        assert_eq!(ready[1].items.capacity(), 2);
    }

    #[test]
    fn exact_byte_limit_flushes_after_add() {
        let (e, b) = op("a", "x");
        let mut batcher = Batcher::new(limits(1000, b.len()));
        assert_eq!(batcher.add(e, &b).len(), 1);
    }

    #[test]
    fn limits_from_config_take_the_smaller_memory_cap() {
        let bulk = BulkConfig {
            chunk_size: 500,
            chunk_max_mem_size: 3.0,
            queue_max_mem_size: 2.0,
            queue_max_size: 100,
            ..BulkConfig::default()
        };
        let limits = BatchLimits::from_config(&bulk);
        assert_eq!(limits.max_lines, 500);
        assert_eq!(limits.max_bytes, 2 * 1_048_576);
        assert_eq!(limits.max_items, 100);
        let mut batcher = Batcher::new(BatchLimits {
            max_items: 2,
            ..limits
        });
        let (e, b) = op("a", "x");
        assert!(batcher.add(e, &b).is_empty());
        let (e, b) = op("b", "x");
        assert_eq!(batcher.add(e, &b).len(), 1);
    }
}
