//! The daemon: start-up checks, then the services selected by `--action` until shutdown.
//!
//! Start-up: wait for Elasticsearch (`max_wait_duration`) and check its version; in
//! direct-index mode make sure the connector indices exist. Then the loops run until the
//! shutdown token is cancelled:
//! - `schedule`: [`crate::scheduler::Scheduler`] (prepare, heartbeat, validation, scheduled
//!   jobs) every `service.idling`;
//! - `sync_content` / `sync_access_control`: poll pending and suspended jobs every
//!   `service.idling`, run them in bounded pools ([`crate::protocol::runner`]);
//! - `cleanup`: every `service.job_cleanup_interval`, fail the jobs of deleted connectors,
//!   hand the running content jobs whose worker died back to the executors (`suspended`: a
//!   full one resumes from its recorded progress), fail the other idle jobs, and release
//!   their connectors.
//!
//! Graceful shutdown: the loops stop taking work; running jobs are suspended (their in-flight
//! bulk requests get the runner's grace period) and `run` returns once they are finalised.

use crate::config::Config;
use crate::es::{EsClient, EsError};
use crate::http::Health;
use crate::notify::{Notifier, NotifierOptions};
use crate::protocol::connector::{format_time, parse_time};
use crate::protocol::connectors_query;
use crate::protocol::doc::readable;
use crate::protocol::job::{
    pending_jobs_query, release_patch, running_jobs_query, stuck_job, suspend_orphan_patch,
    suspended_release_patch, JobStatus, StuckJob, ORPHAN_ERROR,
};
use crate::protocol::outcome::{JobObserver, JobOutcome};
use crate::protocol::runner::{self, RunnerContext, RunnerTimings};
use crate::protocol::store;
use crate::scheduler::{Clock, Scheduler, SystemClock};
use crate::sources::SourceRegistry;
use crate::sync::JobKind;
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The services `elastic-ingest` can run (`--action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create scheduled sync jobs, heartbeat and validate connectors.
    Schedule,
    /// Run full and incremental sync jobs.
    SyncContent,
    /// Run access-control sync jobs.
    SyncAccessControl,
    /// Fail orphaned and idle jobs.
    Cleanup,
}

impl Action {
    /// The default set.
    pub const DEFAULT: [Action; 4] = [
        Action::Schedule,
        Action::SyncContent,
        Action::SyncAccessControl,
        Action::Cleanup,
    ];
}

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Elasticsearch could not be used.
    #[error(transparent)]
    Elasticsearch(#[from] EsError),
    /// The loops failed too often (`service.max_errors` within `service.max_errors_span`).
    #[error("stopping: {count} errors within {span_secs:.0} s (service.max_errors / service.max_errors_span); last error: {last}")]
    TooManyErrors {
        /// Errors in the window.
        count: usize,
        /// The window, seconds.
        span_secs: f64,
        /// The last error.
        last: String,
    },
    /// The health and metrics listener could not start.
    #[error("cannot listen on service.http.listen `{listen}`: {message}; choose a free address or remove the key")]
    Listener {
        /// The configured address.
        listen: String,
        /// Why.
        message: String,
    },
}

/// Whether one more error at `now` exceeds the budget (pure): errors older than `span` are
/// forgotten; more than `max` remaining is too many.
pub fn over_budget(times: &mut VecDeque<Instant>, now: Instant, max: u32, span: Duration) -> bool {
    times.push_back(now);
    while times.front().is_some_and(|t| now.duration_since(*t) > span) {
        times.pop_front();
    }
    times.len() > max as usize
}

/// Loop errors of the whole service; tripping it stops the service (upstream: more than 20
/// errors within 600 s kill the service).
pub struct ErrorBudget {
    max: u32,
    span: Duration,
    times: Mutex<VecDeque<Instant>>,
    tripped: Mutex<Option<ServiceError>>,
    stop: CancellationToken,
}

impl ErrorBudget {
    fn new(config: &Config, stop: CancellationToken) -> ErrorBudget {
        ErrorBudget {
            max: config.service.max_errors,
            span: secs(config.service.max_errors_span),
            times: Mutex::new(VecDeque::new()),
            tripped: Mutex::new(None),
            stop,
        }
    }

    /// Records a loop error; stops the service when over budget.
    pub fn record(&self, error: &dyn std::fmt::Display) {
        let Ok(mut times) = self.times.lock() else {
            return;
        };
        if over_budget(&mut times, Instant::now(), self.max, self.span) {
            if let Ok(mut tripped) = self.tripped.lock() {
                if tripped.is_none() {
                    *tripped = Some(ServiceError::TooManyErrors {
                        count: times.len(),
                        span_secs: self.span.as_secs_f64(),
                        last: error.to_string(),
                    });
                }
            }
            self.stop.cancel();
        }
    }

    fn take(&self) -> Option<ServiceError> {
        self.tripped.lock().ok().and_then(|mut t| t.take())
    }
}

/// What the service is built from besides the configuration (tests inject their own).
#[derive(Clone)]
pub struct ServiceDeps {
    /// Scheduling time and loop sleeps.
    pub clock: Arc<dyn Clock>,
    /// Source factories.
    pub registry: SourceRegistry,
    /// Job runner intervals.
    pub timings: RunnerTimings,
    /// `worker_hostname`.
    pub hostname: String,
}

impl Default for ServiceDeps {
    fn default() -> Self {
        ServiceDeps {
            clock: Arc::new(SystemClock),
            registry: SourceRegistry::default(),
            timings: RunnerTimings::default(),
            hostname: runner::hostname(),
        }
    }
}

/// Connects, runs the preflight, then runs `actions` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    actions: Vec<Action>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    run_with(config, actions, shutdown, ServiceDeps::default()).await
}

/// [`run`] with injected dependencies.
pub async fn run_with(
    config: Config,
    actions: Vec<Action>,
    shutdown: CancellationToken,
    deps: ServiceDeps,
) -> Result<(), ServiceError> {
    let es = EsClient::new(&config.elasticsearch)?;
    // The listener comes first so that /healthz answers while the cluster is awaited.
    let health = Arc::new(Health::default());
    let receivers = crate::live::receive::Receivers::default();
    if let Some(listen) = &config.service.http.listen {
        crate::http::serve_with(listen, health.clone(), receivers.clone(), shutdown.clone())
            .await
            .map_err(|e| ServiceError::Listener {
                listen: listen.clone(),
                message: e.to_string(),
            })?;
    }
    tracing::info!(host = %es.host(), "connecting to elasticsearch");
    let info = tokio::select! {
        info = es.wait_for_cluster() => info?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    health.set_elasticsearch_ok(true);
    tracing::info!(
        version = info["version"]["number"].as_str().unwrap_or("unknown"),
        cluster = info["cluster_name"].as_str().unwrap_or("unknown"),
        "connected to elasticsearch"
    );
    let store = store::for_mode(es.clone(), config.elasticsearch.feature_use_connectors_api);
    store.ensure_indices().await?;
    tracing::info!(?actions, connectors = ?config.connector_ids(), "service running; press Ctrl-C to stop");
    // Loops stop on the caller's shutdown or when the error budget trips.
    let shutdown = shutdown.child_token();
    let budget = Arc::new(ErrorBudget::new(&config, shutdown.clone()));
    let config = Arc::new(config);
    let mut loops = JoinSet::new();
    // Notifications: job outcomes through the runner's hook, check-ins through a watch.
    let notifier = Notifier::start(
        &config,
        NotifierOptions::for_config(&config),
        shutdown.clone(),
    );
    let observer = notifier.as_ref().map(|(notifier, _)| {
        loops.spawn(crate::notify::watch_check_ins(
            store.clone(),
            connectors_query(&config),
            notifier.clone(),
            deps.clock.clone(),
            shutdown.clone(),
        ));
        notifier.clone() as Arc<dyn JobObserver>
    });
    let ctx = RunnerContext {
        store: store.clone(),
        registry: deps.registry.clone(),
        config: config.clone(),
        hostname: deps.hostname.clone(),
        timings: deps.timings,
        observer,
    };
    let actions: HashSet<Action> = actions.into_iter().collect();
    if actions.contains(&Action::Schedule) {
        let scheduler = Scheduler::new(
            store.clone(),
            deps.registry.clone(),
            config.clone(),
            deps.clock.clone(),
        );
        let token = shutdown.clone();
        let budget = budget.clone();
        loops.spawn(async move { scheduler.run(token, &|e| budget.record(e)).await });
    }
    if actions.contains(&Action::SyncContent) {
        let pool = config.service.max_concurrent_content_syncs;
        loops.spawn(executor_loop(
            ctx.clone(),
            vec![JobKind::Full, JobKind::Incremental],
            pool,
            deps.clock.clone(),
            budget.clone(),
            shutdown.clone(),
        ));
    }
    if actions.contains(&Action::SyncAccessControl) {
        let pool = config.service.max_concurrent_access_control_syncs;
        loops.spawn(executor_loop(
            ctx.clone(),
            vec![JobKind::AccessControl],
            pool,
            deps.clock.clone(),
            budget.clone(),
            shutdown.clone(),
        ));
    }
    // Live updates apply content, and their HTTP deliveries need the listener.
    if actions.contains(&Action::SyncContent) && config.service.http.listen.is_some() {
        loops.spawn(crate::live::manage::run(
            store.clone(),
            deps.registry.clone(),
            config.clone(),
            es.clone(),
            receivers.clone(),
            shutdown.clone(),
        ));
    }
    if actions.contains(&Action::Cleanup) {
        loops.spawn(cleanup_loop(
            ctx.clone(),
            deps.clock.clone(),
            budget.clone(),
            shutdown.clone(),
        ));
    }
    if config.service.http.listen.is_some() {
        loops.spawn(readiness_probe(
            store.clone(),
            health.clone(),
            shutdown.clone(),
        ));
    }
    health.set_loops_running(true);
    while let Some(joined) = loops.join_next().await {
        if let Err(error) = joined {
            tracing::error!(%error, "a service loop panicked");
        }
    }
    health.set_loops_running(false);
    if let Some((_, worker)) = notifier {
        // Sends what is queued, for a few seconds at most.
        let _ = worker.await;
    }
    if let Some(error) = budget.take() {
        return Err(error);
    }
    tracing::info!("service stopped");
    Ok(())
}

/// Keeps `/readyz` honest: pings Elasticsearch every 10 s while the service runs.
async fn readiness_probe(
    store: Arc<dyn store::ConnectorStore>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = shutdown.cancelled() => return,
        }
        health.set_elasticsearch_ok(store.es().info().await.is_ok());
    }
}

fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.001))
}

/// Ids of the handled connectors whose service type this build supports.
async fn supported_connectors(ctx: &RunnerContext) -> Result<Vec<String>, EsError> {
    let connectors = ctx
        .store
        .search_connectors(connectors_query(&ctx.config))
        .await?;
    Ok(readable(connectors, "running sync jobs")
        .into_iter()
        .filter(|c| {
            c.source
                .service_type
                .as_deref()
                .is_some_and(|t| ctx.registry.get(t).is_some())
        })
        .map(|c| c.id)
        .collect())
}

/// The `sync_content` / `sync_access_control` service.
async fn executor_loop(
    ctx: RunnerContext,
    kinds: Vec<JobKind>,
    pool: usize,
    clock: Arc<dyn Clock>,
    budget: Arc<ErrorBudget>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(pool.max(1)));
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let idling = secs(ctx.config.service.idling);
    while !shutdown.is_cancelled() {
        if let Err(error) = poll_jobs(&ctx, &kinds, &permits, &running, &mut tasks, &shutdown).await
        {
            tracing::error!(%error, "polling sync jobs failed");
            budget.record(&error);
        }
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = clock.sleep(idling) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    // Shutdown: running jobs see the token and suspend themselves.
    while tasks.join_next().await.is_some() {}
}

async fn poll_jobs(
    ctx: &RunnerContext,
    kinds: &[JobKind],
    permits: &Arc<Semaphore>,
    running: &Arc<Mutex<HashSet<String>>>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<(), EsError> {
    if permits.available_permits() == 0 {
        return Ok(());
    }
    let ids = supported_connectors(ctx).await?;
    if ids.is_empty() {
        return Ok(());
    }
    let jobs = ctx
        .store
        .search_jobs(pending_jobs_query(&ids, kinds))
        .await?;
    let mut busy_connectors = HashSet::new();
    for job in readable(jobs, "running sync jobs") {
        if shutdown.is_cancelled() {
            break;
        }
        let connector_id = job.source.connector.id.clone();
        if busy_connectors.contains(&connector_id)
            || running.lock().map(|r| r.contains(&job.id)).unwrap_or(true)
        {
            continue;
        }
        let kind = job.source.job_type;
        let Some(connector) = ctx.store.get_connector(&connector_id).await? else {
            continue;
        };
        if connector.source.last_sync(kind).0 == Some(JobStatus::InProgress) {
            busy_connectors.insert(connector_id);
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            break;
        };
        busy_connectors.insert(connector_id);
        if let Ok(mut r) = running.lock() {
            r.insert(job.id.clone());
        }
        let ctx = ctx.clone();
        let running = running.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            match runner::execute(&ctx, &job, &shutdown).await {
                Ok(outcome) => {
                    tracing::debug!(sync_job_id = %job.id, ?outcome, "job execution ended")
                }
                Err(error) => {
                    tracing::error!(sync_job_id = %job.id, %error, "job execution failed")
                }
            }
            if let Ok(mut r) = running.lock() {
                r.remove(&job.id);
            }
            drop(permit);
        });
    }
    Ok(())
}

/// The `cleanup` service.
async fn cleanup_loop(
    ctx: RunnerContext,
    clock: Arc<dyn Clock>,
    budget: Arc<ErrorBudget>,
    shutdown: CancellationToken,
) {
    let interval = secs(ctx.config.service.job_cleanup_interval);
    while !shutdown.is_cancelled() {
        match cleanup_once(&ctx).await {
            Ok(failed) if failed > 0 => {
                tracing::info!(
                    jobs = failed,
                    "cleanup failed or suspended orphaned and idle jobs"
                )
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "job cleanup failed");
                budget.record(&error);
            }
        }
        tokio::select! {
            _ = clock.sleep(interval) => {}
            _ = shutdown.cancelled() => break,
        }
    }
}

/// One cleanup pass: jobs of deleted connectors → `error`; idle jobs of handled connectors
/// (`last_seen` older than `service.job_idle_timeout`) → `suspended` when a content job was
/// running (resumed by the executors, at most [`crate::protocol::job::MAX_ORPHAN_RESUMES`]
/// times), `error` otherwise; their connectors are released. Returns how many jobs were
/// failed or suspended.
pub async fn cleanup_once(ctx: &RunnerContext) -> Result<usize, EsError> {
    let store = ctx.store.as_ref();
    // Every connector id, readable or not: a job of a connector we cannot read is no orphan.
    let all: HashSet<String> = store
        .search_connectors(json!({"size": 100, "query": {"match_all": {}}}))
        .await?
        .into_iter()
        .map(|c| match c {
            Ok(connector) => connector.id,
            Err(unreadable) => unreadable.id,
        })
        .collect();
    let handled: HashSet<String> = supported_connectors(ctx).await?.into_iter().collect();
    let idle_secs = ctx.config.service.job_idle_timeout;
    let now = chrono::Utc::now();
    let cutoff = now - chrono::Duration::milliseconds((idle_secs * 1000.0) as i64);
    let mut failed = 0;
    for job in readable(
        store.search_jobs(running_jobs_query()).await?,
        "job cleanup",
    ) {
        let connector_id = job.source.connector.id.clone();
        let kind = job.source.job_type;
        let action = if !all.contains(&connector_id) {
            StuckJob::Fail(ORPHAN_ERROR.to_string())
        } else if handled.contains(&connector_id)
            && job
                .source
                .last_seen
                .as_deref()
                .and_then(parse_time)
                .is_none_or(|seen| seen <= cutoff)
        {
            stuck_job(&job.source, idle_secs)
        } else {
            continue;
        };
        let ts = format_time(now);
        let (patch, release) = match &action {
            StuckJob::Suspend(orphaned) => (
                suspend_orphan_patch(*orphaned, &ts),
                suspended_release_patch(kind),
            ),
            StuckJob::Fail(message) => (
                json!({"status": "error", "error": message, "completed_at": ts}),
                release_patch(kind, message, &ts),
            ),
        };
        // Guarded: a job whose worker is alive has moved on (stats, status) and is left alone.
        match store.update_job(&job.id, patch, job.guard()).await {
            Ok(()) => {}
            Err(error) if error.is_version_conflict() => continue,
            Err(error) => return Err(error),
        }
        failed += 1;
        match &action {
            StuckJob::Suspend(orphaned) => tracing::warn!(sync_job_id = %job.id,
                connector_id = %connector_id, orphaned,
                "the worker of a running sync job stopped heartbeating; the job is suspended and will be resumed"),
            StuckJob::Fail(message) => {
                tracing::warn!(sync_job_id = %job.id, connector_id = %connector_id,
                    error = %message, "failed a stuck sync job");
                // A suspended job is not an outcome: it will be resumed, so only a failed one is told.
                if let Some(observer) = &ctx.observer {
                    let snapshot = &job.source.connector;
                    observer.job_finished(JobOutcome {
                        connector_id: connector_id.clone(),
                        connector_name: None,
                        service_type: snapshot.service_type.clone(),
                        index_name: snapshot.index_name.clone(),
                        job_id: job.id.clone(),
                        job_kind: kind,
                        status: JobStatus::Error,
                        previous_status: None,
                        error: Some(message.clone()),
                        stats: Default::default(),
                        total_document_count: 0,
                        started_at: None,
                        completed_at: now,
                    });
                }
            }
        }
        if let Some(connector) = store.get_connector(&connector_id).await? {
            if matches!(
                connector.source.last_sync(kind).0,
                Some(JobStatus::InProgress | JobStatus::Canceling)
            ) {
                match store
                    .update_connector(&connector_id, release, connector.guard())
                    .await
                {
                    Ok(()) => {}
                    Err(error) if error.is_version_conflict() => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_budget_counts_within_the_span() {
        let mut times = VecDeque::new();
        let start = Instant::now();
        let span = Duration::from_secs(10);
        assert!(!over_budget(&mut times, start, 2, span));
        assert!(!over_budget(
            &mut times,
            start + Duration::from_secs(1),
            2,
            span
        ));
        assert!(over_budget(
            &mut times,
            start + Duration::from_secs(2),
            2,
            span
        ));
        let mut times = VecDeque::new();
        assert!(!over_budget(&mut times, start, 1, span));
        assert!(!over_budget(
            &mut times,
            start + Duration::from_secs(11),
            1,
            span
        ));
    }
}
