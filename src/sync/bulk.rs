//! Sending one batch with `_bulk` and judging every item.
//!
//! Per item (§3.3): `2xx` (created, updated, deleted, noop) is a success, and so is a
//! `delete` answered 404 (the document is already gone). Items answered 429 or 5xx are
//! worth resending: only those items are resent, as the shared retry policy
//! ([`crate::retry`]) decides — `bulk.retry_interval` doubling, with jitter, at most
//! `bulk.max_retries` times; a round where every item was answered 429 is throttling, with
//! its own count and backoff. Any other item failure — and one that ran out of retries — is
//! permanent: it is counted in `failed_document_count` and fed to the [`ErrorMonitor`],
//! which may fail the sync.
//! A failure of the whole request is retried by [`EsClient`]'s own policy; if it still fails
//! the sync fails (the batch's fate is unknown, so nothing may be deleted).
//!
//! The response is parsed into small typed structs (not a `Value` tree), and asked for with
//! `filter_path` so Elasticsearch only sends what we read.

use super::batcher::{Batch, ItemMeta};
use super::document::OpKind;
use super::monitor::{ErrorMonitor, TooManyErrors};
use super::stats::SyncStats;
use crate::es::{Body, EsClient, EsError};
use crate::retry::{Retrier, RetryKind, RetryParams};
use bytes::Bytes;
use elasticsearch::http::Method;
use serde::Deserialize;
use std::sync::{Arc, Mutex};

/// What Elasticsearch said about one item, as far as the engine cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemVerdict {
    /// Done. `deleted` is true when a document was actually removed.
    Success {
        /// A delete that removed a document.
        deleted: bool,
    },
    /// Worth resending (429, 5xx).
    Retry {
        /// What happened, for the message if retries run out.
        message: String,
        /// Answered 429: Elasticsearch pacing us.
        throttled: bool,
    },
    /// Rejected for good.
    Failed {
        /// `type: reason (document id …)`.
        message: String,
    },
}

/// Why a batch could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// The request failed (after the client's retries) or its answer made no sense.
    #[error(transparent)]
    Elasticsearch(#[from] EsError),
    /// The error monitor stopped the sync.
    #[error(transparent)]
    TooManyErrors(#[from] TooManyErrors),
}

#[derive(Debug, Deserialize)]
struct BulkResponse {
    #[serde(default)]
    items: Vec<ItemEnvelope>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ItemEnvelope {
    Index(ItemResult),
    Create(ItemResult),
    Update(ItemResult),
    Delete(ItemResult),
}

impl ItemEnvelope {
    fn into_result(self) -> ItemResult {
        match self {
            ItemEnvelope::Index(r)
            | ItemEnvelope::Create(r)
            | ItemEnvelope::Update(r)
            | ItemEnvelope::Delete(r) => r,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ItemResult {
    #[serde(default)]
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// The `filter_path` of our bulk requests: only what [`classify_response`] reads.
pub const FILTER_PATH: &str = "errors,items.*.status,items.*.error";

/// Judges one item from its status and error object.
pub fn classify_item(
    kind: OpKind,
    id: &str,
    status: u16,
    error: Option<&serde_json::Value>,
) -> ItemVerdict {
    if (200..300).contains(&status) {
        return ItemVerdict::Success {
            deleted: kind == OpKind::Delete,
        };
    }
    if kind == OpKind::Delete && status == 404 {
        return ItemVerdict::Success { deleted: false };
    }
    let message = describe_error(status, id, error);
    if status == 429 || (500..600).contains(&status) {
        ItemVerdict::Retry {
            message,
            throttled: status == 429,
        }
    } else {
        ItemVerdict::Failed { message }
    }
}

/// `type: reason (caused by: …) (document id X, status N)`.
fn describe_error(status: u16, id: &str, error: Option<&serde_json::Value>) -> String {
    let (error_type, reason) = match error {
        Some(serde_json::Value::Object(e)) => {
            let error_type = e.get("type").and_then(|t| t.as_str()).unwrap_or("unknown");
            let mut reason = e
                .get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or("")
                .to_string();
            if let Some(cause) = e.get("caused_by").and_then(|c| c["reason"].as_str()) {
                reason = format!("{reason} (caused by: {cause})");
            }
            (error_type.to_string(), reason)
        }
        Some(serde_json::Value::String(s)) => ("unknown".into(), s.clone()),
        _ => ("unknown".into(), "no error detail".into()),
    };
    format!("{error_type}: {reason} (document id {id}, status {status})")
}

/// Parses a `_bulk` answer and judges each of `items` (same order).
pub fn classify_response(body: &[u8], items: &[ItemMeta]) -> Result<Vec<ItemVerdict>, EsError> {
    let response: BulkResponse = serde_json::from_slice(body).map_err(|e| EsError::Decode {
        path: "/_bulk".into(),
        message: format!("cannot parse the bulk response: {e}"),
    })?;
    if response.items.len() != items.len() {
        return Err(EsError::Decode {
            path: "/_bulk".into(),
            message: format!(
                "the bulk response has {} items for {} operations sent",
                response.items.len(),
                items.len()
            ),
        });
    }
    Ok(response
        .items
        .into_iter()
        .zip(items)
        .map(|(envelope, meta)| {
            let result = envelope.into_result();
            classify_item(meta.kind, &meta.id, result.status, result.error.as_ref())
        })
        .collect())
}

/// Everything a bulk task needs; shared by all in-flight requests of a sync.
#[derive(Debug)]
pub struct BulkSender {
    /// The client.
    pub es: EsClient,
    /// The ingest pipeline, if any.
    pub pipeline: Option<String>,
    /// Backoff for items answered 429/5xx.
    pub item_retry: RetryParams,
    /// The sync's counters.
    pub stats: SyncStats,
    /// The sync's error monitor.
    pub monitor: Arc<Mutex<ErrorMonitor>>,
    /// Log every item at debug (`enable_operations_logging`).
    pub log_operations: bool,
}

impl BulkSender {
    /// Sends `batch`, resending transient item failures; see the module docs.
    pub async fn send(&self, batch: Batch) -> Result<(), BulkError> {
        let mut query: Vec<(&str, String)> = vec![("filter_path", FILTER_PATH.to_string())];
        if let Some(pipeline) = &self.pipeline {
            query.push(("pipeline", pipeline.clone()));
        }
        let mut body = Bytes::from(batch.body);
        let mut items = batch.items;
        let mut retrier = Retrier::new(&self.item_retry);
        loop {
            if self.log_operations {
                for item in &items {
                    tracing::debug!(id = %item.id, op = ?item.kind, "bulk operation");
                }
            }
            let sent_at = std::time::Instant::now();
            let response = self
                .es
                .request(
                    Method::Post,
                    "/_bulk",
                    &query,
                    Some(Body::NdJson(body.clone())),
                )
                .await?;
            crate::metrics::global().bulk_request(sent_at.elapsed());
            let verdicts = classify_response(&response.body, &items)?;
            // `None`: nothing to resend, or no retry left (those items then count as failed).
            let delay = round_kind(&verdicts).and_then(|kind| retrier.next_delay(kind, None));
            let to_retry = self.account(&items, verdicts, delay.is_none())?;
            let Some(delay) = delay else {
                return Ok(());
            };
            crate::metrics::global().retry("elasticsearch");
            tracing::warn!(
                items = to_retry.len(),
                retry = retrier.retries(),
                delay_ms = delay.as_millis() as u64,
                "bulk items answered 429/5xx, resending them"
            );
            // A cancelled sync aborts this task, which ends the wait.
            tokio::time::sleep(delay).await;
            let (next_body, next_items) = rebuild(&body, &items, &to_retry);
            body = next_body;
            items = next_items;
        }
    }

    /// Counts successes and failures; returns the indices of items to resend.
    fn account(
        &self,
        items: &[ItemMeta],
        verdicts: Vec<ItemVerdict>,
        retries_exhausted: bool,
    ) -> Result<Vec<usize>, TooManyErrors> {
        let mut to_retry = Vec::new();
        let mut indexed = 0u64;
        let mut volume = 0u64;
        let mut deleted = 0u64;
        let mut successes_run = 0u64;
        // The monitor is never held across an await.
        let mut monitor = self
            .monitor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut outcome = Ok(());
        for (index, (meta, verdict)) in items.iter().zip(verdicts).enumerate() {
            let message = match verdict {
                ItemVerdict::Success { deleted: removed } => {
                    successes_run += 1;
                    match meta.kind {
                        OpKind::Delete => deleted += u64::from(removed),
                        _ => {
                            indexed += 1;
                            volume += meta.source_len as u64;
                        }
                    }
                    continue;
                }
                ItemVerdict::Retry { .. } if !retries_exhausted => {
                    to_retry.push(index);
                    continue;
                }
                ItemVerdict::Retry { message, .. } => {
                    format!(
                        "{message} (still failing after {} retries)",
                        self.item_retry.max_retries
                    )
                }
                ItemVerdict::Failed { message } => message,
            };
            monitor.track_successes(std::mem::take(&mut successes_run));
            self.stats.add_failed(1);
            tracing::warn!(error = %message, "bulk item failed");
            if let Err(too_many) = monitor.track_error(message) {
                if outcome.is_ok() {
                    outcome = Err(too_many);
                }
            }
        }
        monitor.track_successes(successes_run);
        drop(monitor);
        self.stats.add_indexed(indexed, volume);
        self.stats.add_deleted(deleted);
        outcome.map(|()| to_retry)
    }
}

/// The kind of a resend round: throttled when every item to resend was answered 429,
/// transient otherwise; `None` when nothing is to be resent.
fn round_kind(verdicts: &[ItemVerdict]) -> Option<RetryKind> {
    let mut kind = None;
    for verdict in verdicts {
        match verdict {
            ItemVerdict::Retry {
                throttled: false, ..
            } => return Some(RetryKind::Transient),
            ItemVerdict::Retry { .. } => kind = Some(RetryKind::Throttled),
            _ => {}
        }
    }
    kind
}

/// A body and item list made of the `keep` items of `body`/`items` only.
fn rebuild(body: &Bytes, items: &[ItemMeta], keep: &[usize]) -> (Bytes, Vec<ItemMeta>) {
    let mut next_body =
        Vec::with_capacity(keep.iter().map(|&i| items[i].end - items[i].start).sum());
    let mut next_items = Vec::with_capacity(keep.len());
    for &i in keep {
        let meta = &items[i];
        let start = next_body.len();
        next_body.extend_from_slice(&body[meta.start..meta.end]);
        next_items.push(ItemMeta {
            start,
            end: next_body.len(),
            ..meta.clone()
        });
    }
    (Bytes::from(next_body), next_items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(kind: OpKind, id: &str) -> ItemMeta {
        ItemMeta {
            kind,
            id: id.into(),
            start: 0,
            end: 0,
            source_len: 10,
        }
    }

    #[test]
    fn classifies_items() {
        let body = json!({"errors": true, "items": [
            {"index": {"status": 201}},
            {"update": {"status": 200}},
            {"delete": {"status": 404}},
            {"delete": {"status": 200}},
            {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected"}}},
            {"index": {"status": 503, "error": {"type": "unavailable_shards_exception", "reason": "no shard"}}},
            {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [n]",
                        "caused_by": {"type": "number_format_exception", "reason": "For input string: \"x\""}}}},
            {"update": {"status": 404, "error": {"type": "document_missing_exception", "reason": "missing"}}}
        ]});
        let items = vec![
            meta(OpKind::Index, "a"),
            meta(OpKind::Update, "b"),
            meta(OpKind::Delete, "c"),
            meta(OpKind::Delete, "d"),
            meta(OpKind::Index, "e"),
            meta(OpKind::Index, "f"),
            meta(OpKind::Index, "g"),
            meta(OpKind::Update, "h"),
        ];
        let verdicts = classify_response(body.to_string().as_bytes(), &items).unwrap();
        assert_eq!(verdicts[0], ItemVerdict::Success { deleted: false });
        assert_eq!(verdicts[1], ItemVerdict::Success { deleted: false });
        assert_eq!(verdicts[2], ItemVerdict::Success { deleted: false });
        assert_eq!(verdicts[3], ItemVerdict::Success { deleted: true });
        assert!(
            matches!(&verdicts[4], ItemVerdict::Retry { message, .. } if message.contains("es_rejected_execution_exception"))
        );
        assert!(matches!(verdicts[5], ItemVerdict::Retry { .. }));
        assert_eq!(round_kind(&verdicts[..5]), Some(RetryKind::Throttled));
        assert_eq!(round_kind(&verdicts), Some(RetryKind::Transient));
        assert_eq!(round_kind(&verdicts[..4]), None);
        assert_eq!(
            verdicts[6],
            ItemVerdict::Failed {
                message: "mapper_parsing_exception: failed to parse field [n] (caused by: For input string: \"x\") (document id g, status 400)".into()
            }
        );
        assert!(matches!(verdicts[7], ItemVerdict::Failed { .. }));
    }

    #[test]
    fn mismatched_or_broken_responses_are_errors() {
        let items = vec![meta(OpKind::Index, "a"), meta(OpKind::Index, "b")];
        let one = json!({"errors": false, "items": [{"index": {"status": 201}}]});
        let err = classify_response(one.to_string().as_bytes(), &items).unwrap_err();
        assert!(
            err.to_string().contains("1 items for 2 operations"),
            "{err}"
        );
        let err = classify_response(b"<html>", &items).unwrap_err();
        assert!(
            err.to_string().contains("cannot parse the bulk response"),
            "{err}"
        );
    }

    #[test]
    fn rebuild_keeps_only_the_chosen_items() {
        let body = Bytes::from_static(b"AA\nBBB\nC\n");
        let items = vec![
            ItemMeta {
                start: 0,
                end: 3,
                ..meta(OpKind::Delete, "a")
            },
            ItemMeta {
                start: 3,
                end: 7,
                ..meta(OpKind::Delete, "b")
            },
            ItemMeta {
                start: 7,
                end: 9,
                ..meta(OpKind::Delete, "c")
            },
        ];
        let (next, next_items) = rebuild(&body, &items, &[0, 2]);
        assert_eq!(&next[..], b"AA\nC\n");
        assert_eq!(next_items[1].id, "c");
        assert_eq!((next_items[1].start, next_items[1].end), (3, 5));
    }
}
