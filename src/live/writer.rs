//! Applying live ops: batches of events become `_bulk` requests, written as soon as no
//! event arrived for [`QUIET`], and at most [`FLUSH`] after the first event of a batch (or at
//! once when [`MAX_BATCH`] events wait): a lone event is written within tens of
//! milliseconds, a steady stream in batches of up to a second.
//!
//! Per item: 2xx is applied; 409 on a versioned op means the index already holds a newer
//! version (a late or repeated event): counted `stale`, not an error; 404 on a patch means
//! the document is not indexed (outside the window, excluded): nothing to do; 404 on a
//! delete is done already; 429/5xx items are resent with backoff (the shared retry
//! policy's numbers), anything else is logged and counted `failed` (the next sync repairs
//! it: live updates never delete on doubt, and a failed item deletes nothing).

use super::receive::{LiveReceiver, Queued};
use super::{Derive, LiveOp};
use crate::es::{Body, EsClient, EsError};
use crate::metrics::register;
use crate::sources::DocOp;
use crate::sync::document::{Clock, EncodeContext, OpKind};
use crate::sync::rules::Rules;
use crate::sync::PipelineSettings;
use elasticsearch::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest wait between an event's arrival and the write of its batch.
pub const FLUSH: Duration = Duration::from_secs(1);
/// A batch is written once no event arrived for this long.
pub const QUIET: Duration = Duration::from_millis(50);
/// Events per batch at most.
pub const MAX_BATCH: usize = 500;
/// Events queued per connector before deliveries are refused (a gap).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Resends of items answered 429/5xx.
const MAX_RESENDS: u32 = 3;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    connector: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabels {
    connector: String,
}

/// Live-update metrics: `connectors_live_events_total{connector, outcome}` (received,
/// applied, rejected, duplicated, stale, failed, overflow) and
/// `connectors_live_lag_seconds{connector}` (upstream event time → written, last batch).
#[derive(Debug, Default)]
pub struct LiveMetrics {
    events: Family<EventLabels, Counter>,
    lag: Family<ConnectorLabels, Gauge<f64, AtomicU64>>,
}

impl LiveMetrics {
    /// Counts one event of `connector` with `outcome`.
    pub fn count(&self, connector: &str, outcome: &str) {
        self.add(connector, outcome, 1);
    }

    /// Counts `n` events.
    pub fn add(&self, connector: &str, outcome: &str, n: u64) {
        self.events
            .get_or_create(&EventLabels {
                connector: connector.to_string(),
                outcome: outcome.to_string(),
            })
            .inc_by(n);
    }

    /// The count so far (tests).
    pub fn get(&self, connector: &str, outcome: &str) -> u64 {
        self.events
            .get_or_create(&EventLabels {
                connector: connector.to_string(),
                outcome: outcome.to_string(),
            })
            .get()
    }

    fn lag(&self, connector: &str, seconds: f64) {
        self.lag
            .get_or_create(&ConnectorLabels {
                connector: connector.to_string(),
            })
            .set(seconds);
    }

    /// Registers both families into `registry`.
    pub fn register(&self, registry: &mut Registry) {
        register(
            registry,
            "connectors_live_events",
            "Live-update events by outcome",
            Box::new(self.events.clone()),
        );
        register(
            registry,
            "connectors_live_lag_seconds",
            "Seconds from the upstream event to its write, last batch",
            Box::new(self.lag.clone()),
        );
    }
}

/// The process's live metrics (registered in [`crate::metrics::global`]).
pub fn metrics() -> &'static LiveMetrics {
    static METRICS: OnceLock<LiveMetrics> = OnceLock::new();
    METRICS.get_or_init(LiveMetrics::default)
}

/// What a connector's writer writes into.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// For logs and metrics.
    pub connector_id: String,
    /// The content index.
    pub index: String,
    /// The connector's pipeline settings (same flags as its syncs).
    pub pipeline: PipelineSettings,
    /// The connector's active filtering (sync rules).
    pub filtering: Value,
    /// Document-level security is on: unprotected documents are refused.
    pub require_access_control: bool,
    /// Longest wait before a batch is written ([`FLUSH`]).
    pub flush: Duration,
}

/// What applying one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Items written.
    pub written: u64,
    /// Versioned items refused as older than the index's (409).
    pub stale: u64,
    /// Items that failed for good.
    pub failed: u64,
}

/// Starts a connector's writer (a task, until `cancel`) and returns the endpoint that
/// queues deliveries into it.
pub fn spawn(
    es: EsClient,
    options: WriterOptions,
    receiver: Arc<dyn LiveReceiver>,
    cancel: CancellationToken,
) -> Arc<super::receive::Endpoint> {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let endpoint = super::receive::Endpoint::new(&options.connector_id, receiver.clone(), tx);
    tokio::spawn(run(es, options, receiver, rx, cancel));
    Arc::new(endpoint)
}

/// Runs a connector's writer until `cancel` or the queue closes: see the module docs.
pub async fn run(
    es: EsClient,
    options: WriterOptions,
    receiver: Arc<dyn LiveReceiver>,
    mut queue: mpsc::Receiver<Queued>,
    cancel: CancellationToken,
) {
    let rules = Rules::from_filtering(&options.filtering);
    loop {
        let first = tokio::select! {
            queued = queue.recv() => match queued {
                Some(queued) => queued,
                None => return,
            },
            _ = cancel.cancelled() => return,
        };
        let deadline = Instant::now() + options.flush;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            let quiet = (Instant::now() + QUIET).min(deadline);
            tokio::select! {
                queued = queue.recv() => match queued {
                    Some(queued) => batch.push(queued),
                    None => break,
                },
                _ = tokio::time::sleep_until(quiet) => break,
                _ = cancel.cancelled() => break,
            }
        }
        apply_events(&es, &options, &rules, receiver.as_ref(), batch).await;
    }
}

/// Translates and writes one batch of events; records the metrics.
pub async fn apply_events(
    es: &EsClient,
    options: &WriterOptions,
    rules: &Rules,
    receiver: &dyn LiveReceiver,
    batch: Vec<Queued>,
) -> Tally {
    let events = batch.len() as u64;
    let oldest = batch
        .iter()
        .filter_map(|q| q.event.time)
        .fold(None, |acc: Option<f64>, t| {
            Some(acc.map_or(t, |a| a.min(t)))
        });
    let ops: Vec<LiveOp> = batch
        .iter()
        .flat_map(|q| receiver.ops(&q.event.payload))
        .collect();
    let connector = options.connector_id.as_str();
    let tally = match apply(es, options, rules, ops).await {
        Ok(tally) => tally,
        Err(error) => {
            // The request failed after the client's retries: the events are lost to the
            // index until the next sync (counted, logged; nothing was deleted).
            tracing::error!(connector_id = connector, %error, events, "live batch not written");
            metrics().add(connector, "failed", events);
            return Tally {
                failed: events,
                ..Tally::default()
            };
        }
    };
    metrics().add(connector, "applied", events);
    metrics().add(connector, "stale", tally.stale);
    metrics().add(connector, "failed", tally.failed);
    if let Some(oldest) = oldest {
        let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        metrics().lag(connector, (now - oldest).max(0.0));
    }
    tracing::debug!(
        connector_id = connector,
        events,
        ?tally,
        "live batch written"
    );
    tally
}

/// Writes `ops` in order, then the derived fields they call for.
pub async fn apply(
    es: &EsClient,
    options: &WriterOptions,
    rules: &Rules,
    ops: Vec<LiveOp>,
) -> Result<Tally, EsError> {
    let mut derives: BTreeMap<String, Derive> = BTreeMap::new();
    let mut direct = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            LiveOp::Derive(derive) => {
                derives.insert(derive.id.clone(), derive);
            }
            other => direct.push(other),
        }
    }
    let mut tally = write(es, options, rules, direct).await?;
    if derives.is_empty() {
        return Ok(tally);
    }
    // The derived fields read what the ops above wrote.
    es.refresh(&options.index).await?;
    let mut patches = Vec::with_capacity(derives.len());
    for derive in derives.into_values() {
        patches.push(derived_patch(es, &options.index, &derive).await?);
    }
    let more = write(es, options, rules, patches).await?;
    tally.written += more.written;
    tally.stale += more.stale;
    tally.failed += more.failed;
    Ok(tally)
}

async fn derived_patch(es: &EsClient, index: &str, derive: &Derive) -> Result<LiveOp, EsError> {
    let answer = es
        .search(
            index,
            json!({
                "size": 1,
                "track_total_hits": true,
                "query": derive.filter,
                "sort": [{derive.sort_field.as_str(): {"order": "desc", "unmapped_type": "date"}}],
                "_source": [derive.source_field.as_str()],
            }),
        )
        .await?;
    let count = answer["hits"]["total"]["value"].as_u64().unwrap_or(0);
    let latest = answer["hits"]["hits"][0]["_source"][derive.source_field.as_str()].clone();
    let mut fields = derive.fields.clone();
    fields.insert(derive.count_field.clone(), json!(count));
    fields.insert(derive.latest_field.clone(), latest);
    Ok(LiveOp::Patch {
        id: derive.id.clone(),
        fields,
    })
}

/// One encoded item: where its lines are in the body, and how to judge its answer.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    kind: OpKind,
    versioned: bool,
    patch: bool,
    lines: std::ops::Range<usize>,
}

async fn write(
    es: &EsClient,
    options: &WriterOptions,
    rules: &Rules,
    ops: Vec<LiveOp>,
) -> Result<Tally, EsError> {
    let mut tally = Tally::default();
    let (mut body, mut items) = encode(options, rules, ops, &mut tally);
    let mut query: Vec<(&str, String)> =
        vec![("filter_path", "items.*.status,items.*.error".into())];
    if let Some(pipeline) = options.pipeline.query_name() {
        query.push(("pipeline", pipeline.to_string()));
    }
    let mut delay = Duration::from_millis(200);
    for attempt in 0..=MAX_RESENDS {
        if items.is_empty() {
            break;
        }
        let answer = es
            .request(
                Method::Post,
                "/_bulk",
                &query,
                Some(Body::NdJson(bytes::Bytes::from(body.clone()))),
            )
            .await?;
        let answer: Value = serde_json::from_slice(&answer.body).map_err(|e| EsError::Decode {
            path: "/_bulk".into(),
            message: format!("cannot parse the bulk response: {e}"),
        })?;
        let results = answer["items"].as_array().cloned().unwrap_or_default();
        if results.len() != items.len() {
            return Err(EsError::Decode {
                path: "/_bulk".into(),
                message: format!(
                    "the bulk response has {} items for {} operations sent",
                    results.len(),
                    items.len()
                ),
            });
        }
        let mut resend = Vec::new();
        for (item, result) in items.iter().zip(results) {
            let result = result
                .as_object()
                .and_then(|o| o.values().next().cloned())
                .unwrap_or_default();
            let status = result["status"].as_u64().unwrap_or(0) as u16;
            match judge(item, status) {
                Judgement::Written => tally.written += 1,
                Judgement::Stale => tally.stale += 1,
                Judgement::Resend if attempt < MAX_RESENDS => resend.push(item.clone()),
                Judgement::Resend | Judgement::Failed => {
                    tally.failed += 1;
                    tracing::warn!(
                        connector_id = %options.connector_id,
                        id = %item.id,
                        status,
                        error = %result["error"],
                        "live update item failed"
                    );
                }
            }
        }
        if resend.is_empty() {
            break;
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
        let mut next = Vec::new();
        let mut kept = Vec::with_capacity(resend.len());
        for item in resend {
            let start = next.len();
            next.extend_from_slice(&body[item.lines.clone()]);
            kept.push(Item {
                lines: start..next.len(),
                ..item
            });
        }
        body = next;
        items = kept;
    }
    Ok(tally)
}

enum Judgement {
    Written,
    Stale,
    Resend,
    Failed,
}

/// How one item's status is judged (see the module docs).
fn judge(item: &Item, status: u16) -> Judgement {
    match status {
        200..=299 => Judgement::Written,
        409 if item.versioned => Judgement::Stale,
        404 if item.patch || item.kind == OpKind::Delete => Judgement::Written,
        429 | 500..=599 => Judgement::Resend,
        _ => Judgement::Failed,
    }
}

/// The bulk body of `ops`, sync rules and the DLS requirement applied.
fn encode(
    options: &WriterOptions,
    rules: &Rules,
    ops: Vec<LiveOp>,
    tally: &mut Tally,
) -> (Vec<u8>, Vec<Item>) {
    let pipeline = &options.pipeline;
    // Taken now: newer than the marker of any sync already running, whose sweep must not
    // delete what arrived after it started.
    let marker = chrono::Utc::now().timestamp_millis();
    let ctx = EncodeContext::new(
        &options.index,
        pipeline.extract_binary_content,
        pipeline.reduce_whitespace,
        pipeline.run_ml_inference,
        marker,
    );
    let mut clock = Clock::new();
    let mut body = Vec::new();
    let mut items = Vec::new();
    for op in ops {
        let start = body.len();
        let (encoded, version, patch) = match op {
            LiveOp::Put { doc, version } => {
                if options.require_access_control && !doc.access_controlled() {
                    tracing::warn!(id = doc.id(), "live document without access control refused (document-level security is on)");
                    tally.failed += 1;
                    continue;
                }
                if !rules.is_empty() && !rules.includes(&doc.fields()) {
                    let id = doc.id().to_string();
                    (
                        ctx.encode(DocOp::Delete(id), clock.now(), &mut body),
                        Some(version),
                        false,
                    )
                } else {
                    let encoded = ctx.encode(DocOp::Index(doc), clock.now(), &mut body);
                    // An undated document becomes an update, which takes no external version.
                    let version = (encoded.kind == OpKind::Index).then_some(version);
                    (encoded, version, false)
                }
            }
            LiveOp::Delete { id, version } => (
                ctx.encode(DocOp::Delete(id), clock.now(), &mut body),
                Some(version),
                false,
            ),
            LiveOp::Patch { id, fields } => (
                encode_patch(&options.index, &id, &fields, &mut body),
                None,
                true,
            ),
            LiveOp::Derive(_) => continue,
        };
        if let Some(version) = version {
            add_version(&mut body, start, version);
        }
        items.push(Item {
            id: encoded.id,
            kind: encoded.kind,
            versioned: version.is_some(),
            patch,
            lines: start..body.len(),
        });
    }
    (body, items)
}

/// An `update` of some fields, without upsert (a missing document stays missing).
fn encode_patch(
    index: &str,
    id: &str,
    fields: &Map<String, Value>,
    out: &mut Vec<u8>,
) -> crate::sync::document::Encoded {
    let id = crate::sync::document::normalize_id(id.to_string());
    let action = json!({"update": {"_index": index, "_id": id}});
    // Serializing values with string keys into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &action);
    out.push(b'\n');
    let start = out.len();
    let _ = serde_json::to_writer(&mut *out, &json!({"doc": fields}));
    let source_len = out.len() - start;
    out.push(b'\n');
    crate::sync::document::Encoded {
        kind: OpKind::Update,
        id,
        lines: 2,
        source_len,
    }
}

/// Puts external versioning into the action line that starts at `start`:
/// `{"index":{…}}` → `{"index":{…,"version":V,"version_type":"external"}}`. The action line
/// is one line of JSON (strings escape newlines) ending in the two closing braces.
fn add_version(body: &mut Vec<u8>, start: usize, version: i64) {
    let Some(newline) = body[start..].iter().position(|b| *b == b'\n') else {
        return;
    };
    let end = start + newline;
    if end < start + 2 || &body[end - 2..end] != b"}}" {
        debug_assert!(false, "an action line does not end with }}");
        return;
    }
    let extra = format!(",\"version\":{version},\"version_type\":\"external\"");
    body.splice(end - 2..end - 2, extra.into_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_goes_into_the_action_line() {
        let mut body = b"{\"index\":{\"_index\":\"i\",\"_id\":\"a}}\"}}\n{\"x\":1}\n".to_vec();
        add_version(&mut body, 0, 42);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"index\":{\"_index\":\"i\",\"_id\":\"a}}\",\"version\":42,\"version_type\":\"external\"}}\n{\"x\":1}\n"
        );
    }

    #[test]
    fn item_judgements() {
        let item = |kind, versioned, patch| Item {
            id: "a".into(),
            kind,
            versioned,
            patch,
            lines: 0..0,
        };
        assert!(matches!(
            judge(&item(OpKind::Index, true, false), 409),
            Judgement::Stale
        ));
        assert!(matches!(
            judge(&item(OpKind::Index, false, false), 409),
            Judgement::Failed
        ));
        assert!(matches!(
            judge(&item(OpKind::Update, false, true), 404),
            Judgement::Written
        ));
        assert!(matches!(
            judge(&item(OpKind::Delete, true, false), 404),
            Judgement::Written
        ));
        assert!(matches!(
            judge(&item(OpKind::Index, true, false), 429),
            Judgement::Resend
        ));
        assert!(matches!(
            judge(&item(OpKind::Index, true, false), 400),
            Judgement::Failed
        ));
        assert!(matches!(
            judge(&item(OpKind::Index, true, false), 201),
            Judgement::Written
        ));
    }
}
