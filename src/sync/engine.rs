//! [`run_sync`]: runs one sync job's data flow (see the module docs of [`crate::sync`]).
//!
//! Structure: the source's stream future and the consumer future run concurrently in the
//! caller's task (the source is borrowed, so it cannot be spawned); bulk requests run as
//! spawned tasks, at most `max_concurrency` at once (a semaphore whose permit each task
//! holds). The consumer stops at the first fatal error and drops its receiver, so the
//! source's next `send` fails and the source returns; dropping the task set abandons
//! in-flight requests (their documents may or may not land — nothing is deleted then).
//!
//! Full syncs number their bulk requests and record the source's checkpoints as the
//! requests before them succeed ([`super::resume`]); completed requests are collected as
//! they finish, and a batch a checkpoint waits for is sent after [`CHECKPOINT_FLUSH`] even
//! when not full, so a slow source's progress is recorded within seconds.

use super::acl::{self, Known, Verdict};
use super::batcher::{Batch, BatchLimits, Batcher};
use super::bulk::{BulkError, BulkSender};
use super::content_index;
use super::document::{body_digest, Clock, EncodeContext, OpKind, SYNC_MARKER_FIELD};
use super::guard::check_sweep;
use super::monitor::ErrorMonitor;
use super::resume::{ResumePoint, Tracker};
use super::rules::Rules;
use super::{merge_cursor, JobKind, SyncError, SyncOptions, SyncOutcome, SyncStats};
use crate::es::{encode, EsClient, EsError};
use crate::retry::RetryParams;
use crate::sources::access_control::{content_mapping, mapping_has_query_field};
use crate::sources::document::ACCESS_CONTROL_FIELD;
use crate::sources::{DataSource, DocOp, DocSender, SinkOp, SourceError};
use elasticsearch::http::Method;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Capacity of the source → engine channel, in operations. Small: the real buffering is the
/// batch, and a small channel keeps the source's memory (unserialized documents) low.
pub const CHANNEL_CAPACITY: usize = 64;

const MIB: f64 = 1_048_576.0;

/// How long a batch holding operations a checkpoint waits for may wait to fill up.
pub const CHECKPOINT_FLUSH: Duration = Duration::from_secs(1);

/// Scopes per `_delete_by_query` of an incremental sweep (a bounded query size).
const SCOPES_PER_QUERY: usize = 256;

/// Runs one sync: prepares the index, streams the source into bulk requests, and (full and
/// access-control syncs that fully succeeded only) deletes the documents this sync did not
/// write. Counters are live in `stats` throughout. See [`crate::sync`] for the guarantees.
pub async fn run_sync(
    es: &EsClient,
    source: &dyn DataSource,
    options: SyncOptions,
    stats: SyncStats,
    cancel: CancellationToken,
) -> Result<SyncOutcome, SyncError> {
    let span = tracing::info_span!(
        "sync",
        sync_job_id = %options.job_id,
        index = %options.index_name,
        job_type = %options.job_kind
    );
    run(es, source, options, stats, cancel)
        .instrument(span)
        .await
}

async fn run(
    es: &EsClient,
    source: &dyn DataSource,
    options: SyncOptions,
    stats: SyncStats,
    cancel: CancellationToken,
) -> Result<SyncOutcome, SyncError> {
    let started = Instant::now();
    if cancel.is_cancelled() {
        return Err(SyncError::Cancelled);
    }
    let index = options.index_name.clone();
    let kind = options.job_kind;
    let mut resume = None;
    let (ctx, rules, known, marker) = match kind {
        JobKind::AccessControl => {
            acl::prepare_index(es, &index).await?;
            let known = Known::load(es, &index).await?;
            tracing::info!(existing = known.total(), "access control sync started");
            let ctx = EncodeContext::access_control(&index);
            (ctx, Rules::default(), Some(known), None)
        }
        JobKind::Full | JobKind::Incremental => {
            prepare_index(es, source, &index, options.index_language.as_deref()).await?;
            if options.require_access_control {
                prepare_access_control_mapping(es, &index).await?;
            }
            if let (JobKind::Full, Some(point)) = (kind, options.resume.clone()) {
                resume = usable_resume_point(es, &index, point).await?;
            }
            let marker = match &resume {
                Some(point) => point.marker,
                None => next_marker(es, &index, chrono::Utc::now().timestamp_millis()).await?,
            };
            match &resume {
                Some(point) => tracing::info!(
                    marker,
                    checkpoints = point.checkpoints.len(),
                    "sync resumed from its recorded progress"
                ),
                None => tracing::info!(marker, "sync started"),
            }
            if kind == JobKind::Full {
                stats
                    .progress()
                    .start(resume.clone().unwrap_or_else(|| ResumePoint::new(marker)));
            }
            let pipeline = &options.pipeline;
            let ctx = EncodeContext::new(
                &index,
                pipeline.extract_binary_content,
                pipeline.reduce_whitespace,
                pipeline.run_ml_inference,
                marker,
            );
            (
                ctx,
                Rules::from_filtering(&options.filtering),
                None,
                Some(marker),
            )
        }
    };
    let bulk = &options.bulk;
    let retry_interval = Duration::from_secs_f64(bulk.retry_interval.max(0.0));
    let sender = Arc::new(BulkSender {
        es: es.clone(),
        pipeline: options.pipeline.query_name().map(str::to_string),
        item_retry: RetryParams::exponential(
            retry_interval,
            retry_interval.saturating_mul(16),
            bulk.max_retries,
        ),
        stats: stats.clone(),
        monitor: Arc::new(Mutex::new(ErrorMonitor::new(&bulk.error_monitor))),
        log_operations: bulk.enable_operations_logging,
    });
    let consumer = Consumer {
        ctx,
        rules,
        require_access_control: options.require_access_control
            && options.job_kind != JobKind::AccessControl,
        known,
        batcher: Batcher::new(BatchLimits::from_config(bulk)),
        scratch: Vec::with_capacity(4096),
        clock: Clock::new(),
        max_doc_bytes: if bulk.max_text_document_size > 0.0 {
            (bulk.max_text_document_size * MIB) as usize
        } else {
            0
        },
        slots: Arc::new(Semaphore::new(bulk.max_concurrency.max(1))),
        overload_timeout: Duration::from_secs_f64(bulk.queue_refresh_timeout.max(0.001)),
        tasks: JoinSet::new(),
        tracker: (kind == JobKind::Full).then(Tracker::new),
        flush_at: None,
        sweeps: Vec::new(),
        keep_sweeps: kind == JobKind::Incremental,
        sender: sender.clone(),
        stats: stats.clone(),
        cancel: cancel.clone(),
        display_every: bulk.display_every,
        received: 0,
        started,
    };

    let (tx, rx) = DocSender::channel(CHANNEL_CAPACITY);
    let cursor = options.sync_cursor.clone();
    let checkpoints = resume
        .map(|point| point.checkpoints)
        .filter(|c| !c.is_empty());
    let source_cancel = cancel.clone();
    let source_future = async move {
        let result = match (kind, &checkpoints) {
            (JobKind::Full, Some(checkpoints)) => {
                source.resume_docs(checkpoints, &tx, &source_cancel).await
            }
            (JobKind::Full, None) => source.get_docs(&tx, &source_cancel).await,
            (JobKind::Incremental, _) => {
                source
                    .get_docs_incrementally(cursor.as_ref(), &tx, &source_cancel)
                    .await
            }
            (JobKind::AccessControl, _) => source.get_access_control(&tx, &source_cancel).await,
        };
        // Closing the channel tells the consumer the stream is over.
        drop(tx);
        result
    };
    let consumer_future = consumer.run(rx);
    tokio::pin!(source_future);
    tokio::pin!(consumer_future);
    let mut source_result: Option<Result<(), SourceError>> = None;
    let consumed = loop {
        tokio::select! {
            result = &mut source_future, if source_result.is_none() => source_result = Some(result),
            result = &mut consumer_future => break result,
        }
    };
    let (sweeps, known) = match consumed {
        Ok(consumed) => consumed,
        Err(error) => {
            // Dropping the source future here stops a source that ignores the closed channel.
            tracing::warn!(%error, "sync failed; not deleting anything");
            return Err(error);
        }
    };
    let source_result = match source_result {
        Some(result) => result,
        None => source_future.await,
    };
    if cancel.is_cancelled() {
        tracing::info!("sync cancelled; not deleting anything");
        return Err(SyncError::Cancelled);
    }
    match source_result {
        Ok(()) => {}
        Err(SourceError::Cancelled) => return Err(SyncError::Cancelled),
        Err(SourceError::Unsupported(message)) => return Err(SyncError::Unsupported(message)),
        Err(error) => {
            tracing::warn!(%error, "the source failed; skipping the deletion of stale documents");
            return Err(SyncError::Source(error));
        }
    }

    // Access-control syncs delete the identities they did not see; content syncs sweep by
    // marker (incremental ones only the scopes the source re-read in full).
    let queries = match (kind, marker) {
        (JobKind::Incremental, Some(marker)) => sweeps
            .chunks(SCOPES_PER_QUERY)
            .map(|scopes| scoped_stale_query(marker, scopes))
            .collect(),
        (_, Some(marker)) => vec![stale_query(marker)],
        (_, None) => Vec::new(),
    };
    if known.is_some() || !queries.is_empty() {
        let failed = stats.snapshot().failed_document_count;
        if failed > 0 {
            tracing::warn!(
                failed,
                "some documents were rejected by Elasticsearch; skipping the deletion of stale documents"
            );
        } else if let Some(known) = known {
            let limits = BatchLimits::from_config(&options.bulk);
            delete_identities(&sender, &index, known, limits, options.max_deletion_ratio).await?;
        } else {
            let deleted = delete_stale(es, &index, &queries, options.max_deletion_ratio).await?;
            stats.add_deleted(deleted);
        }
    }

    let snapshot = stats.snapshot();
    let elapsed = started.elapsed().as_secs_f64();
    tracing::info!(
        indexed = snapshot.indexed_document_count,
        volume_bytes = snapshot.indexed_document_volume_bytes,
        deleted = snapshot.deleted_document_count,
        unchanged = snapshot.docs_unchanged,
        filtered = snapshot.docs_filtered,
        dropped = snapshot.docs_dropped,
        failed = snapshot.failed_document_count,
        elapsed_s = elapsed,
        docs_per_sec = (snapshot.indexed_document_count as f64 / elapsed.max(1e-9)) as u64,
        "sync finished"
    );
    Ok(SyncOutcome {
        stats: snapshot,
        sync_cursor: match kind {
            JobKind::AccessControl => None,
            _ => merge_cursor(options.sync_cursor.as_ref(), source.sync_cursor()),
        },
        metadata: source.metadata(),
    })
}

/// The serialize-and-batch stage and the owner of the in-flight bulk tasks.
struct Consumer {
    ctx: EncodeContext,
    rules: Rules,
    /// Refuse content documents without `_allow_access_control` (DLS on).
    require_access_control: bool,
    /// Access-control syncs: the identity documents of the index, to skip unchanged ones
    /// and find the stale ones.
    known: Option<Known>,
    batcher: Batcher,
    /// Reused buffer for one op's lines.
    scratch: Vec<u8>,
    clock: Clock,
    /// 0 = no size limit.
    max_doc_bytes: usize,
    slots: Arc<Semaphore>,
    overload_timeout: Duration,
    /// In-flight bulk requests, each answering with its number.
    tasks: JoinSet<(u64, Result<(), BulkError>)>,
    /// Full syncs: when checkpoints become durable.
    tracker: Option<Tracker>,
    /// When the batch a checkpoint waits for is sent even if not full.
    flush_at: Option<tokio::time::Instant>,
    /// Incremental syncs: the scopes the source re-read in full.
    sweeps: Vec<serde_json::Value>,
    keep_sweeps: bool,
    sender: Arc<BulkSender>,
    stats: SyncStats,
    cancel: CancellationToken,
    display_every: u64,
    received: u64,
    started: Instant,
}

/// What a finished consumer hands back: the incremental sweep scopes, and the identity
/// documents an access-control sync knows of.
type Consumed = (Vec<serde_json::Value>, Option<Known>);

/// What the consumer's loop woke up for.
enum Wake {
    Op(Option<SinkOp>),
    Finished(Result<(u64, Result<(), BulkError>), tokio::task::JoinError>),
    Flush,
}

impl Consumer {
    /// Consumes the stream; returns the sweep scopes an incremental source declared and
    /// what an access-control sync learnt of the index.
    async fn run(mut self, mut rx: mpsc::Receiver<SinkOp>) -> Result<Consumed, SyncError> {
        loop {
            // Full syncs collect finished requests as they finish (their checkpoints become
            // durable then); other syncs when the next batch is dispatched.
            let collect = self.tracker.is_some() && !self.tasks.is_empty();
            let flush_at = self.flush_at;
            let wake = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(SyncError::Cancelled),
                Some(joined) = self.tasks.join_next(), if collect => Wake::Finished(joined),
                _ = sleep_until(flush_at), if flush_at.is_some() => Wake::Flush,
                op = rx.recv() => Wake::Op(op),
            };
            match wake {
                Wake::Op(None) => break,
                Wake::Op(Some(op)) => {
                    // Sampled, not per document: the gauge only needs to show a backlog.
                    if self.received % 256 == 0 {
                        crate::metrics::global().set_queue_depth(rx.len() as i64);
                    }
                    self.accept(op).await?;
                }
                Wake::Finished(joined) => self.finished(joined)?,
                Wake::Flush => {
                    self.flush_at = None;
                    if let Some(batch) = self.batcher.finish() {
                        self.dispatch(batch).await?;
                    }
                }
            }
        }
        crate::metrics::global().set_queue_depth(0);
        if let Some(batch) = self.batcher.finish() {
            self.dispatch(batch).await?;
        }
        self.drain().await?;
        Ok((std::mem::take(&mut self.sweeps), self.known.take()))
    }

    async fn accept(&mut self, op: SinkOp) -> Result<(), SyncError> {
        match op {
            SinkOp::Doc(op) => self.accept_doc(op).await,
            SinkOp::Checkpoint { key, value } => {
                let open_batch = !self.batcher.is_empty();
                if let Some(tracker) = self.tracker.as_mut() {
                    let durable = tracker.checkpoint(key, value, open_batch);
                    self.stats.progress().record(durable);
                    if tracker.waits_on_open_batch() && self.flush_at.is_none() {
                        self.flush_at = Some(tokio::time::Instant::now() + CHECKPOINT_FLUSH);
                    }
                }
                Ok(())
            }
            SinkOp::Sweep(filter) => {
                if self.keep_sweeps {
                    self.sweeps.push(filter);
                }
                Ok(())
            }
        }
    }

    async fn accept_doc(&mut self, op: DocOp) -> Result<(), SyncError> {
        self.received += 1;
        if self.display_every > 0 && self.received % self.display_every == 0 {
            let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(
                docs = self.received,
                docs_per_sec = (self.received as f64 / elapsed) as u64,
                "sync progress"
            );
        }
        let keep = match &op {
            // Rules need fields: parse only when there are rules (then the fast path's
            // saving is spent, but filtering is rare and stays correct).
            DocOp::Index(doc) | DocOp::Update(doc) => {
                self.rules.is_empty() || self.rules.includes(&doc.fields())
            }
            DocOp::Delete(_) => true,
        };
        if !keep {
            self.stats.add_filtered(1);
            return Ok(());
        }
        if let DocOp::Index(doc) | DocOp::Update(doc) = &op {
            if self.require_access_control && !doc.access_controlled() {
                return Err(SyncError::Unprotected {
                    id: doc.id().to_string(),
                });
            }
        }
        if let Some(known) = &mut self.known {
            match &op {
                DocOp::Index(doc) | DocOp::Update(doc) => {
                    let verdict = known.observe(doc.id(), &body_digest(doc.body()));
                    if verdict == Verdict::Unchanged {
                        self.stats.add_unchanged(1);
                        return Ok(());
                    }
                }
                DocOp::Delete(id) => known.forget(id),
            }
        }
        self.scratch.clear();
        let encoded = self.ctx.encode(op, self.clock.now(), &mut self.scratch);
        if self.max_doc_bytes > 0
            && encoded.kind != OpKind::Delete
            && self.scratch.len() > self.max_doc_bytes
        {
            tracing::warn!(
                id = %encoded.id,
                bytes = self.scratch.len(),
                limit_bytes = self.max_doc_bytes,
                "dropping a document larger than elasticsearch.bulk.max_text_document_size"
            );
            self.stats.add_dropped(1);
            return Ok(());
        }
        for batch in self.batcher.add(encoded, &self.scratch) {
            self.dispatch(batch).await?;
        }
        Ok(())
    }

    /// Starts a bulk request for `batch` once a request slot is free.
    async fn dispatch(&mut self, batch: Batch) -> Result<(), SyncError> {
        let wait = tokio::time::timeout(self.overload_timeout, self.slots.clone().acquire_owned());
        let permit = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Err(SyncError::Cancelled),
            acquired = wait => match acquired {
                Ok(Ok(permit)) => permit,
                // The semaphore is never closed; treat it like a timeout if it were.
                Ok(Err(_)) | Err(_) => return Err(SyncError::Overloaded(self.overload_timeout)),
            },
        };
        self.reap()?;
        let sender = self.sender.clone();
        let seq = match self.tracker.as_mut() {
            Some(tracker) => {
                let seq = tracker.dispatch();
                if !tracker.waits_on_open_batch() {
                    self.flush_at = None;
                }
                seq
            }
            None => 0,
        };
        self.tasks.spawn(
            async move {
                let result = sender.send(batch).await;
                drop(permit);
                (seq, result)
            }
            .in_current_span(),
        );
        Ok(())
    }

    /// Collects finished requests without waiting; the first failure stops the sync.
    fn reap(&mut self) -> Result<(), SyncError> {
        while let Some(joined) = self.tasks.try_join_next() {
            self.finished(joined)?;
        }
        Ok(())
    }

    /// One finished request: a failure stops the sync; a success may make checkpoints
    /// durable.
    fn finished(
        &mut self,
        joined: Result<(u64, Result<(), BulkError>), tokio::task::JoinError>,
    ) -> Result<(), SyncError> {
        let (seq, result) = joined.map_err(SyncError::BulkTask)?;
        result.map_err(SyncError::from)?;
        if let Some(tracker) = self.tracker.as_mut() {
            let durable = tracker.finished(seq);
            self.stats.progress().record(durable);
        }
        Ok(())
    }

    /// Waits for every in-flight request.
    async fn drain(&mut self) -> Result<(), SyncError> {
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(SyncError::Cancelled),
                next = self.tasks.join_next() => next,
            };
            match next {
                None => return Ok(()),
                Some(joined) => self.finished(joined)?,
            }
        }
    }
}

/// Sleeps until `at` (forever when `None`; the caller's guard keeps that branch off).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The resume point, if the index still holds what it recorded: documents with its marker
/// (an index deleted or replaced since would lose the channels the point calls done).
async fn usable_resume_point(
    es: &EsClient,
    index: &str,
    point: ResumePoint,
) -> Result<Option<ResumePoint>, SyncError> {
    if point.checkpoints.is_empty() {
        return Ok(Some(point));
    }
    es.refresh(index).await?;
    let query = json!({"query": {"term": {SYNC_MARKER_FIELD: point.marker}}});
    if es.count_matching(index, query).await? > 0 {
        return Ok(Some(point));
    }
    tracing::warn!(
        marker = point.marker,
        "the index holds nothing this job wrote before its interruption; starting over"
    );
    Ok(None)
}

/// Creates the content index when missing, with the framework's analysis and the source's
/// mappings ([`content_index`], the marker included); on an existing index adds only the
/// marker mapping; a conflicting mapping is a clear error.
async fn prepare_index(
    es: &EsClient,
    source: &dyn DataSource,
    index: &str,
    language: Option<&str>,
) -> Result<(), SyncError> {
    let mappings = source.content_mappings();
    if content_index::create_if_missing(es, index, language, &mappings).await? {
        return Ok(());
    }
    let properties = json!({ SYNC_MARKER_FIELD: {"type": "long"} });
    let path = format!("/{}/_mapping", encode(index));
    match es
        .json(
            Method::Put,
            &path,
            &[],
            Some(json!({"properties": properties})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(EsError::Status {
            status: 400,
            error_type,
            reason,
            ..
        }) => Err(SyncError::MarkerMappingConflict {
            index: index.to_string(),
            error_type,
            reason,
        }),
        Err(error) => Err(error.into()),
    }
}

/// Puts the `_allow_access_control` mapping on the content index unless the field is mapped
/// already (by a previous DLS sync, or by whoever created the index); a mapping without the
/// subfield the DLS query matches is refused, since it would hide every protected document.
async fn prepare_access_control_mapping(es: &EsClient, index: &str) -> Result<(), SyncError> {
    let path = format!("/{}/_mapping/field/{ACCESS_CONTROL_FIELD}", encode(index));
    let found = es.json(Method::Get, &path, &[], None).await?;
    // `{<concrete index>: {"mappings": {field: {"mapping": {field: <mapping>}}}}}`, one
    // entry per index behind an alias.
    let mappings: Vec<&serde_json::Value> = found
        .as_object()
        .into_iter()
        .flat_map(|indices| indices.values())
        .filter_map(|entry| {
            let mapping = &entry["mappings"][ACCESS_CONTROL_FIELD]["mapping"][ACCESS_CONTROL_FIELD];
            (!mapping.is_null()).then_some(mapping)
        })
        .collect();
    if let Some(wrong) = mappings.iter().find(|m| !mapping_has_query_field(m)) {
        return Err(SyncError::AccessControlMapping {
            index: index.to_string(),
            mapping: wrong.to_string(),
        });
    }
    if !mappings.is_empty() {
        return Ok(());
    }
    let path = format!("/{}/_mapping", encode(index));
    let body = json!({"properties": {ACCESS_CONTROL_FIELD: content_mapping()}});
    match es.json(Method::Put, &path, &[], Some(body)).await {
        Ok(_) => {
            tracing::info!("mapped `_allow_access_control` on the content index");
            Ok(())
        }
        Err(EsError::Status {
            status: 400,
            reason,
            ..
        }) => Err(SyncError::AccessControlMapping {
            index: index.to_string(),
            mapping: format!("something else ({reason})"),
        }),
        Err(error) => Err(error.into()),
    }
}

/// Deletes the identity documents the access-control sync did not produce (users who
/// left), unless that is more than the mass-deletion guard allows.
async fn delete_identities(
    sender: &BulkSender,
    index: &str,
    known: Known,
    limits: BatchLimits,
    max_ratio: f64,
) -> Result<(), SyncError> {
    let total = known.total();
    let stale = known.stale();
    if let Err(refusal) = check_sweep(total, stale.len() as u64, max_ratio) {
        tracing::warn!(
            stale = stale.len(),
            total,
            max_ratio,
            "the access control sync would delete too many identity documents; deleting nothing"
        );
        return Err(SyncError::DeletionRefused(
            refusal.of("access control sync"),
        ));
    }
    if stale.is_empty() {
        return Ok(());
    }
    tracing::info!(
        stale = stale.len(),
        "deleting the identity documents of users who left"
    );
    let ctx = EncodeContext::access_control(index);
    let mut batcher = Batcher::new(limits);
    let mut line = Vec::new();
    let mut batches = Vec::new();
    for id in stale {
        line.clear();
        let encoded = ctx.encode(DocOp::Delete(id), "", &mut line);
        batches.extend(batcher.add(encoded, &line));
    }
    batches.extend(batcher.finish());
    for batch in batches {
        sender.send(batch).await?;
    }
    Ok(())
}

/// This sync's marker: now, or one above the highest marker in the index (clock skew).
async fn next_marker(es: &EsClient, index: &str, now_ms: i64) -> Result<i64, SyncError> {
    let body = es
        .search(
            index,
            json!({"size": 0, "aggs": {"max_marker": {"max": {"field": SYNC_MARKER_FIELD}}}}),
        )
        .await?;
    let highest = body["aggregations"]["max_marker"]["value"]
        .as_f64()
        .map(|v| v as i64);
    Ok(choose_marker(now_ms, highest))
}

/// `now_ms`, unless an existing marker is as high: then one above it (markers must be
/// unique per sync for the deletion query to be right).
pub(crate) fn choose_marker(now_ms: i64, highest_existing: Option<i64>) -> i64 {
    match highest_existing {
        Some(highest) if highest >= now_ms => highest.saturating_add(1),
        _ => now_ms,
    }
}

/// Deletes the documents the `queries` match (older markers: [`stale_query`],
/// [`scoped_stale_query`]), unless that is more than the mass-deletion guard allows
/// ([`check_sweep`]); returns how many were deleted.
async fn delete_stale(
    es: &EsClient,
    index: &str,
    queries: &[serde_json::Value],
    max_ratio: f64,
) -> Result<u64, SyncError> {
    es.refresh(index).await?;
    if max_ratio < 1.0 {
        let total = es.count(index).await?;
        let mut stale = 0;
        for query in queries {
            stale += es.count_matching(index, query.clone()).await?;
        }
        if let Err(refusal) = check_sweep(total, stale, max_ratio) {
            tracing::warn!(
                stale,
                total,
                max_ratio,
                "the deletion sweep would remove too much of the index; deleting nothing"
            );
            return Err(SyncError::DeletionRefused(refusal));
        }
    }
    let path = format!("/{}/_delete_by_query", encode(index));
    let (mut deleted, mut failures) = (0, 0);
    for query in queries {
        let body = es
            .json(
                Method::Post,
                &path,
                &[
                    ("refresh", "true".to_string()),
                    ("conflicts", "proceed".to_string()),
                ],
                Some(query.clone()),
            )
            .await?;
        deleted += body["deleted"].as_u64().unwrap_or(0);
        failures += body["failures"].as_array().map_or(0, Vec::len);
    }
    if failures > 0 {
        tracing::warn!(
            failures,
            deleted,
            "some stale documents could not be deleted; the next full sync retries"
        );
    }
    tracing::info!(deleted, "deleted stale documents");
    Ok(deleted)
}

/// Documents written before the sync with `marker`: a lower marker, or none.
pub(crate) fn stale_query(marker: i64) -> serde_json::Value {
    json!({"query": older_than(marker)})
}

/// Documents written before the sync with `marker` inside one of the `scopes` (filters).
pub(crate) fn scoped_stale_query(marker: i64, scopes: &[serde_json::Value]) -> serde_json::Value {
    json!({"query": {"bool": {"filter": [
        older_than(marker),
        {"bool": {"should": scopes, "minimum_should_match": 1}}
    ]}}})
}

fn older_than(marker: i64) -> serde_json::Value {
    json!({"bool": {"should": [
        {"range": {SYNC_MARKER_FIELD: {"lt": marker}}},
        {"bool": {"must_not": {"exists": {"field": SYNC_MARKER_FIELD}}}}
    ], "minimum_should_match": 1}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_unique_even_when_the_clock_goes_back() {
        assert_eq!(choose_marker(1000, None), 1000);
        assert_eq!(choose_marker(1000, Some(999)), 1000);
        assert_eq!(choose_marker(1000, Some(1000)), 1001);
        assert_eq!(choose_marker(1000, Some(5000)), 5001);
        assert_eq!(choose_marker(1000, Some(i64::MAX)), i64::MAX);
    }

    #[test]
    fn stale_query_shape() {
        let older = json!({"bool": {"should": [
            {"range": {"_sync_marker": {"lt": 7}}},
            {"bool": {"must_not": {"exists": {"field": "_sync_marker"}}}}
        ], "minimum_should_match": 1}});
        assert_eq!(stale_query(7), json!({"query": older.clone()}));
        let scope = json!({"term": {"channel_id": "C1"}});
        assert_eq!(
            scoped_stale_query(7, std::slice::from_ref(&scope)),
            json!({"query": {"bool": {"filter": [
                older,
                {"bool": {"should": [scope], "minimum_should_match": 1}}
            ]}}})
        );
    }
}
