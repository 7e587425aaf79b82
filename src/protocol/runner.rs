//! The sync-job runner (`elastic-connectors-protocol.md` §2.5): lock the connector, claim the
//! job, build the source from the job's snapshot, run the sync while reporting stats and
//! watching for cancellation, then write the final job and connector state.
//!
//! Invariants:
//! - The lock is the guarded `_update` of the connector's `last_sync_status` to
//!   `in_progress`: two daemons racing for jobs of one connector never both win. After the
//!   lock, the job is read again; a job that is no longer pending/suspended (another worker
//!   already ran it) releases the lock and is left alone, so every job runs exactly once.
//! - Once claimed, a job is always finalised (completed, error, canceled or suspended),
//!   except when the process dies; then the cleanup suspends it (or fails it) after the
//!   idle timeout.
//! - A full sync's recorded progress ([`crate::sync::resume`]) is written to the job's
//!   `metadata.resume` while it advances (with the counters: `_stats` in API mode), at most
//!   every `progress_interval` and, as the point grows, at most [`PROGRESS_BYTES_PER_SEC`]
//!   on average ([`progress_due`]): each write costs Elasticsearch (and every later read
//!   of the job document) in proportion to the point's size, so a large workspace's point
//!   is written less often; it is written with the final state of a suspended job; a
//!   suspended or orphaned full job is resumed from it, so it does not start over. Any
//!   other end clears it.
//! - A shutdown suspends the job; a `canceling` job is stopped within one check interval
//!   and ends `canceled`.

use super::connector::{self, format_time, last_sync_fields, Connector, Pipeline};
use super::doc::Doc;
use super::job::{error_text, finish_job_patch, sync_done_patch, Finish, JobStatus, SyncJob};
use super::outcome::{JobObserver, JobOutcome};
use super::store::ConnectorStore;
use crate::config::Config;
use crate::es::{EsClient, EsError};
use crate::sources::{SourceError, SourceRegistry};
use crate::sync::resume::{self, ResumePoint};
use crate::sync::{self, JobKind, SyncError, SyncOptions, SyncStats};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Intervals of a running job (upstream: stats every 10 s, checks every 5 s, 5 s grace).
#[derive(Debug, Clone, Copy)]
pub struct RunnerTimings {
    /// How often the counters are reported (also the job heartbeat).
    pub stats_interval: Duration,
    /// How often the job is re-read for cancellation.
    pub check_interval: Duration,
    /// How long a cancelled sync gets to stop before it is abandoned.
    pub cancel_grace: Duration,
    /// How often a full sync's progress is written while it advances (what a restarted
    /// service resumes from).
    pub progress_interval: Duration,
}

impl Default for RunnerTimings {
    fn default() -> Self {
        RunnerTimings {
            stats_interval: Duration::from_secs(10),
            check_interval: Duration::from_secs(5),
            cancel_grace: Duration::from_secs(5),
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// The average rate at which a growing resume point may be written (bytes per second).
/// A point of 32 KiB or less is written every `progress_interval`; one of 320 KiB every
/// 10 s. Under Slack's real limits a full sync that builds a point that large runs for
/// hours, so a few seconds of progress is all an interruption can cost.
pub const PROGRESS_BYTES_PER_SEC: u64 = 32 * 1024;

/// Whether new progress may be written now: `since_last` after the previous write, which
/// was `last_bytes` long (pure: the rule of the module docs).
pub fn progress_due(since_last: Duration, last_bytes: u64, min_interval: Duration) -> bool {
    let paced = Duration::from_secs_f64(last_bytes as f64 / PROGRESS_BYTES_PER_SEC as f64);
    since_last >= min_interval.max(paced)
}

/// The length of `value` as JSON, without building the text.
fn json_len(value: &Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// What a runner needs.
#[derive(Clone)]
pub struct RunnerContext {
    /// Connector and job persistence.
    pub store: Arc<dyn ConnectorStore>,
    /// Source factories.
    pub registry: SourceRegistry,
    /// The service configuration (bulk settings, per-connector API keys).
    pub config: Arc<Config>,
    /// `worker_hostname`.
    pub hostname: String,
    /// Intervals.
    pub timings: RunnerTimings,
    /// Told of every finished job (notifications); `None` = nobody listens.
    pub observer: Option<Arc<dyn JobObserver>>,
}

/// Why a job was not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// The connector is missing.
    ConnectorMissing,
    /// Another job of the connector runs (or another daemon won the lock).
    ConnectorBusy,
    /// The job is no longer pending or suspended.
    JobTaken,
}

/// How [`execute`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// The job was not started; it stays as it was.
    Skipped(Skipped),
    /// The job ran and was finalised with this status.
    Finished(JobStatus),
}

/// Why a claimed job ended in error. The text is the job's `error`.
#[derive(Debug, thiserror::Error)]
enum JobError {
    /// The job's connector snapshot lacks a field the run needs.
    #[error("the job's connector snapshot has no {0}")]
    SnapshotMissing(&'static str),
    /// No source of this build has the connector's service type.
    #[error("unknown service type '{0}': this connector service does not support it")]
    UnknownServiceType(String),
    /// The connector's configuration cannot be read or does not validate.
    #[error("{0}")]
    Configuration(String),
    /// The source could not be built, or its checks (validate, ping) failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sync's Elasticsearch client could not be built.
    #[error(transparent)]
    Elasticsearch(#[from] EsError),
    /// Incremental syncs are not supported by the source or not enabled on the connector.
    #[error("incremental syncs are not supported by the {0} connector (or not enabled on it)")]
    IncrementalNotEnabled(String),
    /// Access-control syncs are not supported by the source or DLS is off.
    #[error("access control syncs are not supported by the {0} connector (or document level security is off)")]
    AccessControlNotEnabled(String),
    /// An access-control job for a connector whose configuration has DLS off.
    #[error("document level security is off in the connector's configuration: turn on 'Enable document level security' (use_document_level_security) to run access control syncs, or disable the access control schedule")]
    DocumentLevelSecurityOff,
    /// The active sync rules did not validate.
    #[error("the job's sync rules are not valid; fix the draft rules in Kibana and activate them")]
    InvalidSyncRules,
    /// The sync failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Someone else changed the job's status while it ran.
    #[error("the job's status changed to {0} while it was running")]
    StatusChanged(String),
    /// The job document disappeared while it ran.
    #[error("Couldn't find the job")]
    JobMissing,
}

/// Why a job run stopped before the sync ended.
enum Stop {
    Shutdown,
    Cancel,
    Error(JobError),
}

/// Runs one pending or suspended job end to end.
pub async fn execute(
    ctx: &RunnerContext,
    job: &Doc<SyncJob>,
    shutdown: &CancellationToken,
) -> Result<Executed, EsError> {
    let connector_id = job.source.connector.id.as_str();
    let span = tracing::info_span!("sync_job", connector_id = %connector_id, sync_job_id = %job.id,
                                   job_type = job.source.job_type.as_str());
    execute_inner(ctx, job, connector_id, shutdown)
        .instrument(span)
        .await
}

async fn execute_inner(
    ctx: &RunnerContext,
    job: &Doc<SyncJob>,
    connector_id: &str,
    shutdown: &CancellationToken,
) -> Result<Executed, EsError> {
    let kind = job.source.job_type;
    let store = ctx.store.as_ref();
    let (status_field, error_field) = last_sync_fields(kind);

    // 1. sync_starts: the lock.
    let mut locked = None;
    for _ in 0..3 {
        let Some(connector) = store.get_connector(connector_id).await? else {
            return Ok(Executed::Skipped(Skipped::ConnectorMissing));
        };
        if connector.source.last_sync(kind).0 == Some(JobStatus::InProgress) {
            tracing::debug!("connector busy with another job; the job stays pending");
            return Ok(Executed::Skipped(Skipped::ConnectorBusy));
        }
        let patch = json!({"status": "connected", "error": null, status_field: "in_progress", error_field: null});
        match store
            .es()
            .update_doc(
                super::indices::CONNECTORS_INDEX,
                connector_id,
                patch,
                connector.guard(),
                true,
            )
            .await
        {
            Ok(answer) => {
                locked = Some((connector, answer));
                break;
            }
            Err(error) if error.is_version_conflict() => continue,
            Err(error) => return Err(error),
        }
    }
    let Some((connector, lock_answer)) = locked else {
        return Ok(Executed::Skipped(Skipped::ConnectorBusy));
    };
    let release = |reason: &'static str| {
        let (status, error) = connector.source.last_sync(kind);
        let previous = json!({status_field: status, error_field: error});
        let guard = lock_answer["_seq_no"]
            .as_u64()
            .zip(lock_answer["_primary_term"].as_u64());
        async move {
            tracing::debug!(reason, "releasing the connector lock");
            if let Err(error) = store.update_connector(connector_id, previous, guard).await {
                tracing::warn!(%error, "could not release the connector lock");
            }
        }
    };

    // 2. The job must still be runnable: another worker may have run it meanwhile.
    let current = match store.get_job(&job.id).await {
        Ok(Some(current)) => current,
        Ok(None) => {
            release("job deleted").await;
            return Ok(Executed::Skipped(Skipped::JobTaken));
        }
        Err(error) => {
            release("job read failed").await;
            return Err(error);
        }
    };
    if !current.source.status.is_runnable() {
        release("job already taken").await;
        return Ok(Executed::Skipped(Skipped::JobTaken));
    }

    // 3. Claim.
    // The claim records the cursor an incremental job starts from, as the Python service's.
    let claimed_cursor = (kind == JobKind::Incremental)
        .then(|| connector.source.sync_cursor.clone())
        .filter(|c| !c.is_null());
    if let Err(error) = store
        .claim_job(&current, &ctx.hostname, claimed_cursor)
        .await
    {
        release("claim failed").await;
        if error.is_version_conflict() {
            return Ok(Executed::Skipped(Skipped::JobTaken));
        }
        return Err(error);
    }
    tracing::info!("sync job claimed");
    let started_at = chrono::Utc::now();

    // 4. Run, then finalise whatever happened. A full job interrupted before carries on
    // from its recorded progress, with its counters.
    let stats = SyncStats::new();
    let resume_from = (kind == JobKind::Full)
        .then(|| current.source.rest.get("metadata"))
        .flatten()
        .and_then(ResumePoint::from_metadata);
    if let Some(point) = &resume_from {
        stats.carry_over(&resumed_counters(&current.source, point));
        tracing::info!(
            checkpoints = point.checkpoints.len(),
            "resuming the job from its recorded progress"
        );
    }
    let connector_cursor = Some(connector.source.sync_cursor.clone()).filter(|c| !c.is_null());
    let metrics = crate::metrics::global();
    metrics.syncs_running_add(1);
    let run = Run {
        job: &current,
        connector: &connector,
        kind,
        cursor: connector_cursor,
        resume: resume_from,
        stats: &stats,
    };
    let outcome = run_claimed(ctx, run, shutdown).await;
    metrics.syncs_running_add(-1);
    let (ended, error, sync_cursor, metadata) = match outcome {
        Ok(ended) => ended,
        Err(error) => (JobStatus::Error, Some(error), None, json!({})),
    };
    let metadata = final_metadata(metadata, kind, ended, &stats);
    let finish = Finish {
        status: ended,
        error: error.map(|error| error_text(&error.to_string())),
        stats: stats.snapshot(),
        total_document_count: 0,
        metadata,
        sync_cursor,
    };
    let snapshot = finish.stats;
    let error_text = finish.error.clone();
    let (status, total_document_count) = finalise(ctx, &current, kind, finish).await?;
    metrics.sync_finished(status.as_str());
    metrics.documents_indexed(snapshot.indexed_document_count);
    metrics.documents_deleted(snapshot.deleted_document_count);
    if let Some(observer) = &ctx.observer {
        let live = &connector.source;
        observer.job_finished(JobOutcome {
            connector_id: connector_id.to_string(),
            connector_name: live.name.clone().filter(|n| !n.is_empty()),
            service_type: current.source.connector.service_type.clone(),
            index_name: current.source.connector.index_name.clone(),
            job_id: current.id.clone(),
            job_kind: kind,
            status,
            previous_status: live.last_sync(kind).0,
            error: error_text,
            stats: snapshot,
            total_document_count,
            started_at: Some(started_at),
            completed_at: chrono::Utc::now(),
        });
    }
    Ok(Executed::Finished(status))
}

type RunResult = Result<(JobStatus, Option<JobError>, Option<Value>, Value), JobError>;

/// What one claimed run works with.
struct Run<'a> {
    job: &'a Doc<SyncJob>,
    connector: &'a Doc<Connector>,
    kind: JobKind,
    /// The connector's `sync_cursor` (incremental jobs start from it; every content job's
    /// cursor is merged over it).
    cursor: Option<Value>,
    /// Where an interrupted full job stands.
    resume: Option<ResumePoint>,
    stats: &'a SyncStats,
}

/// The counters an interrupted job had reported, to carry on from.
fn resumed_counters(job: &SyncJob, point: &ResumePoint) -> sync::StatsSnapshot {
    let count = |field: &str| job.rest.get(field).and_then(Value::as_u64).unwrap_or(0);
    sync::StatsSnapshot {
        indexed_document_count: count("indexed_document_count"),
        indexed_document_volume_bytes: count("indexed_document_volume") * 1_048_576,
        deleted_document_count: count("deleted_document_count"),
        failed_document_count: point.failed,
        ..Default::default()
    }
}

/// The recorded progress as a `metadata` patch (`{"resume": …}`) and its version.
fn progress_patch(stats: &SyncStats) -> Option<(u64, Value)> {
    let (version, mut point) = stats.progress().current()?;
    point.failed = stats.snapshot().failed_document_count;
    Some((version, json!({ resume::METADATA_KEY: point.to_value() })))
}

/// The `metadata` keys of a stats report: on the heartbeat, the source's own figures (its
/// progress: channels done, calls, learned rates); with new progress, the resume point.
/// `None` when there is nothing to set.
fn heartbeat_metadata(source: Option<Value>, progress: Option<Value>) -> Option<Value> {
    let mut keys = match source {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(Value::Object(patch)) = progress {
        keys.extend(patch);
    }
    (!keys.is_empty()).then_some(Value::Object(keys))
}

/// The job's final `metadata`: the source's, plus where a suspended full job stands (what
/// the next service resumes from); any other end of a full job clears the resume point (it
/// may have been written while the job ran; a partial `_update` cannot remove a key, so
/// `resume` is set to `null`). Other jobs never record one, and leave `metadata` alone.
fn final_metadata(metadata: Value, kind: JobKind, status: JobStatus, stats: &SyncStats) -> Value {
    let mut metadata = match metadata {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if kind != JobKind::Full {
        return Value::Object(metadata);
    }
    let point = match status {
        JobStatus::Suspended => progress_patch(stats)
            .map(|(_, patch)| patch[resume::METADATA_KEY].clone())
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    metadata.insert(resume::METADATA_KEY.into(), point);
    Value::Object(metadata)
}

async fn run_claimed(ctx: &RunnerContext, run: Run<'_>, shutdown: &CancellationToken) -> RunResult {
    let Run {
        job,
        connector,
        kind,
        cursor,
        resume,
        stats,
    } = run;
    let snapshot = &job.source.connector;
    let service_type = snapshot
        .service_type
        .as_deref()
        .ok_or(JobError::SnapshotMissing("service_type"))?;
    let factory = ctx
        .registry
        .get(service_type)
        .ok_or_else(|| JobError::UnknownServiceType(service_type.to_string()))?;
    let index_name = snapshot
        .index_name
        .clone()
        .filter(|index| !index.is_empty())
        .ok_or(JobError::SnapshotMissing("index_name"))?;
    let configuration =
        connector::configuration(&snapshot.configuration).map_err(JobError::Configuration)?;
    connector::validate_configuration(&configuration).map_err(JobError::Configuration)?;
    let source = factory.build(&connector.id, &configuration)?;
    source.load_cursor(&connector.source.sync_cursor);
    source.validate().await?;
    source.ping().await?;
    let live = &connector.source;
    if kind == JobKind::Incremental
        && !(factory.supports_incremental() && live.feature_enabled(kind))
    {
        return Err(JobError::IncrementalNotEnabled(service_type.to_string()));
    }
    if kind == JobKind::AccessControl
        && !(factory.supports_access_control() && live.feature_enabled(kind))
    {
        return Err(JobError::AccessControlNotEnabled(service_type.to_string()));
    }
    // DLS follows the configuration: with it on, every content document must be protected
    // (the engine refuses any that is not), whatever the connector's features say.
    let dls = source.document_level_security();
    if kind == JobKind::AccessControl && !dls {
        return Err(JobError::DocumentLevelSecurityOff);
    }
    let filtering = snapshot.filtering.as_ref();
    if kind != JobKind::AccessControl
        && live.sync_rules_enabled()
        && filtering.is_some_and(|filter| filter.state() != Some("valid"))
    {
        return Err(JobError::InvalidSyncRules);
    }
    let es = sync_client(ctx, connector)?;
    let options = SyncOptions {
        index_name,
        job_kind: kind,
        job_id: job.id.clone(),
        pipeline: snapshot
            .pipeline
            .as_ref()
            .map(Pipeline::settings)
            .unwrap_or_default(),
        filtering: filtering
            .map(|filter| filter.to_value())
            .unwrap_or_default(),
        sync_cursor: cursor,
        resume,
        bulk: ctx.config.elasticsearch.bulk.clone(),
        max_deletion_ratio: ctx.config.service.max_deletion_ratio,
        require_access_control: dls,
        index_language: connector.source.language.clone(),
    };
    source.use_pipeline(&options.pipeline);
    let sync_cancel = CancellationToken::new();
    let sync = sync::run_sync(
        &es,
        source.as_ref(),
        options,
        stats.clone(),
        sync_cancel.clone(),
    );
    tokio::pin!(sync);
    let mut stats_tick = tokio::time::interval(ctx.timings.stats_interval);
    let mut check_tick = tokio::time::interval(ctx.timings.check_interval);
    let mut progress_tick = tokio::time::interval(ctx.timings.progress_interval);
    stats_tick.reset();
    check_tick.reset();
    progress_tick.reset();
    // The version of the progress last written (the resumed point is already there), when
    // and how long.
    let mut written = stats.progress().version();
    let mut written_at = tokio::time::Instant::now();
    let mut written_bytes = 0u64;
    let store = ctx.store.as_ref();
    let stop = loop {
        let report = tokio::select! {
            result = &mut sync => {
                return Ok(match result {
                    Ok(outcome) => (JobStatus::Completed, None, outcome.sync_cursor, outcome.metadata),
                    Err(error) => (JobStatus::Error, Some(error.into()), None, source.metadata()),
                });
            }
            _ = stats_tick.tick() => true,
            _ = progress_tick.tick() => false,
            _ = check_tick.tick() => {
                match store.get_job(&job.id).await {
                    Ok(Some(current)) => match current.source.status {
                        JobStatus::InProgress => {}
                        JobStatus::Canceling => break Stop::Cancel,
                        other => break Stop::Error(JobError::StatusChanged(
                            other.as_str().to_string())),
                    },
                    Ok(None) => break Stop::Error(JobError::JobMissing),
                    Err(error) => tracing::warn!(%error, "could not check the job status"),
                }
                continue;
            }
            _ = shutdown.cancelled() => break Stop::Shutdown,
        };
        // The counters every stats interval (the job heartbeat); new progress when the
        // pacing of the module docs allows (the point is copied only then).
        let due = stats.progress().version() != written
            && progress_due(
                written_at.elapsed(),
                written_bytes,
                ctx.timings.progress_interval,
            );
        let progress = if due { progress_patch(stats) } else { None };
        if !report && progress.is_none() {
            continue;
        }
        let (version, patch) = progress.unzip();
        let bytes = patch.as_ref().map(json_len);
        let metadata = heartbeat_metadata(report.then(|| source.metadata()), patch);
        match store
            .job_stats(&job.id, &stats.snapshot(), metadata.as_ref())
            .await
        {
            Ok(()) => {
                if let Some((version, bytes)) = version.zip(bytes) {
                    written = version;
                    written_at = tokio::time::Instant::now();
                    written_bytes = bytes;
                }
            }
            Err(error) => tracing::warn!(%error, "could not report job stats"),
        }
    };
    sync_cancel.cancel();
    if tokio::time::timeout(ctx.timings.cancel_grace, &mut sync)
        .await
        .is_err()
    {
        tracing::warn!("the sync did not stop within the grace period; abandoning it");
    }
    let metadata = source.metadata();
    Ok(match stop {
        Stop::Shutdown => {
            tracing::info!("service shutting down: suspending the job");
            (JobStatus::Suspended, None, None, metadata)
        }
        Stop::Cancel => {
            tracing::info!("job canceled");
            (JobStatus::Canceled, None, None, metadata)
        }
        Stop::Error(message) => (JobStatus::Error, Some(message), None, metadata),
    })
}

/// The client of a sync: the connector's own `api_key` when configured.
fn sync_client(ctx: &RunnerContext, connector: &Doc<Connector>) -> Result<EsClient, EsError> {
    let entry = ctx
        .config
        .connectors
        .iter()
        .find(|c| c.connector_id == connector.id);
    match entry.and_then(|e| e.api_key.as_ref()) {
        Some(key) => ctx.store.es().with_api_key(key),
        None => Ok(ctx.store.es().clone()),
    }
}

/// §2.5 step 8: counts, job `_update`, connector `sync_done`.
async fn finalise(
    ctx: &RunnerContext,
    job: &Doc<SyncJob>,
    kind: JobKind,
    mut finish: Finish,
) -> Result<(JobStatus, u64), EsError> {
    let store = ctx.store.as_ref();
    let snapshot = &job.source.connector;
    if let Some(index) = snapshot.index_name.as_deref().filter(|i| !i.is_empty()) {
        let counted = async {
            store.es().refresh(index).await?;
            store.es().count(index).await
        };
        match counted.await {
            Ok(total) => finish.total_document_count = total,
            Err(error) => tracing::warn!(%error, "could not count the documents of the index"),
        }
    }
    let now = format_time(chrono::Utc::now());
    store
        .update_job(&job.id, finish_job_patch(&finish, &now), None)
        .await?;
    match store
        .update_connector(&snapshot.id, sync_done_patch(kind, &finish, &now), None)
        .await
    {
        Ok(()) => {}
        Err(error) if error.is_not_found() => {
            tracing::warn!("the connector was deleted while its job ran")
        }
        Err(error) => return Err(error),
    }
    let s = finish.stats;
    tracing::info!(
        status = finish.status.as_str(),
        error = finish.error.as_deref().unwrap_or(""),
        indexed = s.indexed_document_count,
        deleted = s.deleted_document_count,
        total = finish.total_document_count,
        "sync job finished"
    );
    Ok((finish.status, finish.total_document_count))
}

/// This machine's host name (`worker_hostname`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::{heartbeat_metadata, json_len, progress_due, PROGRESS_BYTES_PER_SEC};
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn progress_is_written_less_often_as_the_point_grows() {
        let second = Duration::from_secs(1);
        // A small point: every interval, never sooner.
        assert!(progress_due(second, 0, second));
        assert!(progress_due(second, 1_000, second));
        assert!(!progress_due(Duration::from_millis(999), 1_000, second));
        // 10 × the byte rate: every 10 s.
        let big = 10 * PROGRESS_BYTES_PER_SEC;
        assert!(!progress_due(Duration::from_secs(9), big, second));
        assert!(progress_due(Duration::from_secs(10), big, second));
        assert_eq!(
            json_len(&json!({"a": [1, "x"]})),
            r#"{"a":[1,"x"]}"#.len() as u64
        );
    }

    #[test]
    fn heartbeat_metadata_joins_the_sources_figures_and_the_resume_point() {
        assert_eq!(heartbeat_metadata(None, None), None);
        assert_eq!(heartbeat_metadata(Some(json!({})), None), None);
        assert_eq!(
            heartbeat_metadata(Some(json!({"progress": {"channels_done": 3}})), None),
            Some(json!({"progress": {"channels_done": 3}}))
        );
        // New progress between heartbeats: only the resume point.
        assert_eq!(
            heartbeat_metadata(None, Some(json!({"resume": {"C1": 1}}))),
            Some(json!({"resume": {"C1": 1}}))
        );
        assert_eq!(
            heartbeat_metadata(
                Some(json!({"progress": {"channels_done": 3}, "resume": "stale"})),
                Some(json!({"resume": {"C1": 1}}))
            ),
            Some(json!({"progress": {"channels_done": 3}, "resume": {"C1": 1}}))
        );
        // A source whose metadata is not an object sets nothing of its own.
        assert_eq!(heartbeat_metadata(Some(json!(null)), None), None);
    }
}
