//! Scheduling: Quartz cron expressions ([`cron`]) and the `schedule` service: every
//! `service.idling`, each handled connector is prepared, heartbeated, validated, and gets its
//! scheduled sync jobs (§2.4 A).
//!
//! Invariants:
//! - Exactly one job per schedule slot across daemons: the slot (`next_after(last wake-up)`) is
//!   taken by a guarded write of `last_*_scheduled_at`; the loser of a race reloads and sees
//!   the slot taken (`last_*_scheduled_at >= slot`).
//! - Quartz seconds are honoured (upstream drops them).
//! - No scheduled job is created while one of the same kind for the connector is still
//!   pending, running or suspended (upstream piles them up); the slot is consumed anyway.
//! - Time comes from a [`Clock`], so tests run minutes of schedule in a second.
//! - One failing step never silences a round: each [`Step`] that fails is logged with the
//!   Elasticsearch error and counted, and the connector's other steps still run.

pub mod cron;

use crate::config::Config;
use crate::es::EsError;
use crate::protocol::connector::{
    format_time, heartbeat_due, parse_time, prepare_patch, scheduled_at_field,
    validate_configuration, Connector, ConnectorStatus,
};
use crate::protocol::connectors_query;
use crate::protocol::doc::{readable, Doc};
use crate::protocol::job::active_jobs_query;
use crate::protocol::store::ConnectorStore;
use crate::sources::{SourceFactory, SourceRegistry};
use crate::sync::rules::validate_rules;
use crate::sync::JobKind;
use chrono::{DateTime, Utc};
use cron::CronSchedule;
use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Where the scheduler gets the time from.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Waits `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock running `scale` times faster than real time from `origin` (tests: a minute of
/// schedule per real second with `scale = 60`).
#[derive(Debug, Clone)]
pub struct ScaledClock {
    origin: DateTime<Utc>,
    started: Instant,
    scale: f64,
}

impl ScaledClock {
    /// Starts now at `origin`.
    pub fn new(origin: DateTime<Utc>, scale: f64) -> ScaledClock {
        ScaledClock::new_delayed(origin, scale, Duration::ZERO)
    }

    /// Stays at `origin` for `delay` of real time (while daemons start), then runs.
    pub fn new_delayed(origin: DateTime<Utc>, scale: f64, delay: Duration) -> ScaledClock {
        ScaledClock {
            origin,
            started: Instant::now() + delay,
            scale: scale.max(1e-6),
        }
    }

    /// The real instant at which the clock started running.
    pub fn started(&self) -> Instant {
        self.started
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now()
            .saturating_duration_since(self.started)
            .as_secs_f64()
            * self.scale;
        self.origin + chrono::Duration::microseconds((elapsed * 1e6) as i64)
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration.div_f64(self.scale)))
    }
}

/// Whether a schedule slot is due (pure): the slot is `next_after(last_wake_up)`; it is due
/// when `now` reached it and nobody took it (`last_scheduled_at < slot`).
pub fn due_slot(
    schedule: &CronSchedule,
    last_wake_up: DateTime<Utc>,
    last_scheduled_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let slot = schedule.next_after(last_wake_up)?;
    if now < slot {
        return None;
    }
    if last_scheduled_at.is_some_and(|taken| taken >= slot) {
        return None;
    }
    Some(slot)
}

/// The steps of a connector's scheduling round that write to Elasticsearch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Service type, features, configuration schema.
    Prepare,
    /// `last_seen` (`_check_in` in API mode).
    Heartbeat,
    /// The `error` status of a connector that failed validation.
    ErrorStatus,
    /// The draft sync rules' validation (and activation).
    Filtering,
    /// The `connected` status.
    Status,
    /// A `last_*_scheduled_at` slot and its job.
    Schedule,
    /// The source's renewed credentials (an expiring OAuth token).
    Credentials,
}

impl Step {
    /// The `step` label of `connectors_scheduling_failures_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::Heartbeat => "heartbeat",
            Step::ErrorStatus => "error_status",
            Step::Filtering => "filtering",
            Step::Status => "status",
            Step::Schedule => "schedule",
            Step::Credentials => "credentials",
        }
    }
}

/// A failed step: logged with Elasticsearch's error, and counted.
fn report(step: Step, error: &EsError) {
    tracing::error!(step = step.as_str(), %error, "scheduling step failed; the round goes on");
    crate::metrics::global().scheduling_failure(step.as_str());
}

/// The `schedule` service.
pub struct Scheduler {
    store: Arc<dyn ConnectorStore>,
    registry: SourceRegistry,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    seen: Mutex<HashSet<String>>,
}

impl Scheduler {
    /// A scheduler; nothing runs until [`Scheduler::run`].
    pub fn new(
        store: Arc<dyn ConnectorStore>,
        registry: SourceRegistry,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
    ) -> Scheduler {
        Scheduler {
            store,
            registry,
            config,
            clock,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// Runs rounds every `service.idling` until `shutdown`; failed rounds go to `on_error`.
    pub async fn run(&self, shutdown: CancellationToken, on_error: &(dyn Fn(&EsError) + Sync)) {
        let idling = Duration::from_secs_f64(self.config.service.idling.max(0.001));
        let mut last_wake_up = self.clock.now();
        while !shutdown.is_cancelled() {
            if let Err(error) = self.round(last_wake_up, &shutdown).await {
                tracing::error!(%error, "scheduling round failed");
                on_error(&error);
            }
            last_wake_up = self.clock.now();
            tokio::select! {
                _ = self.clock.sleep(idling) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }

    /// One round over the handled connectors.
    pub async fn round(
        &self,
        last_wake_up: DateTime<Utc>,
        shutdown: &CancellationToken,
    ) -> Result<(), EsError> {
        let connectors = readable(
            self.store
                .search_connectors(connectors_query(&self.config))
                .await?,
            "scheduling",
        );
        let pool = self.config.service.max_concurrent_scheduling_tasks.max(1);
        futures::stream::iter(connectors)
            .for_each_concurrent(pool, |doc| async move {
                if shutdown.is_cancelled() {
                    return;
                }
                let span = tracing::info_span!("schedule", connector_id = %doc.id);
                self.process(doc, last_wake_up).instrument(span).await;
            })
            .await;
        Ok(())
    }

    /// One connector's round: prepare, heartbeat, validate, sync-rule validation, status,
    /// schedules. A step that fails is reported on its own ([`report`]) and the round goes on
    /// with the next: a heartbeat Elasticsearch refuses must not keep a connector from being
    /// validated, shown connected and scheduled.
    /// Stores the source's renewed credentials when a renewal is due and reloads the
    /// connector so that the round goes on with them. The write has no version guard and
    /// touches only the fields the renewal changed: a renewal consumes a single-use grant
    /// (an OAuth refresh token), so this replica alone holds the new credentials, and they
    /// must not be lost to a heartbeat written meanwhile. A renewal that fails (another
    /// replica renewed first) is logged; the stored credentials are used.
    async fn renew_credentials(&self, doc: &mut Doc<Connector>, factory: &dyn SourceFactory) {
        let Ok(configuration) = doc.source.configuration() else {
            return;
        };
        let renewed = match factory.renew_credentials(&configuration, Utc::now()).await {
            Ok(Some(renewed)) => renewed,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "the source's credentials could not be renewed");
                return;
            }
        };
        let changed: crate::sources::Configuration = renewed
            .into_iter()
            .filter(|(key, field)| configuration.get(key) != Some(field))
            .collect();
        let patch = json!({"configuration": crate::protocol::connector::to_value(&changed)});
        if let Err(error) = self.store.update_connector(&doc.id, patch, None).await {
            report(Step::Credentials, &error);
            tracing::error!("the renewed credentials could not be stored: the connector keeps the old ones until they expire (then reinstall the app)");
            return;
        }
        tracing::info!("renewed the source's credentials");
        match self.store.get_connector(&doc.id).await {
            Ok(Some(fresh)) => *doc = fresh,
            Ok(None) => {}
            Err(error) => report(Step::Credentials, &error),
        }
    }

    async fn process(&self, doc: Doc<Connector>, last_wake_up: DateTime<Utc>) {
        let id = doc.id.clone();
        let entry = self.config.connectors.iter().find(|c| c.connector_id == id);
        let service_type = doc
            .source
            .service_type
            .clone()
            .filter(|s| !s.is_empty())
            .or(entry.map(|e| e.service_type.clone()))
            .unwrap_or_default();
        let Some(factory) = self.registry.get(&service_type) else {
            let message = format!(
                "unknown service type '{service_type}': this connector service supports {}",
                self.registry.service_types().join(", ")
            );
            if let Err(error) = self.set_error(&doc, &message).await {
                report(Step::ErrorStatus, &error);
            }
            return;
        };

        // Prepare (configured connectors only).
        let mut doc = doc;
        if let Some(entry) = entry {
            match self.prepare(&mut doc, factory, &entry.service_type).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => report(Step::Prepare, &error),
            }
        }

        // Heartbeat.
        let first_sight = self
            .seen
            .lock()
            .map(|mut s| s.insert(id.clone()))
            .unwrap_or(false);
        let interval =
            chrono::Duration::milliseconds((self.config.service.heartbeat * 1000.0) as i64);
        if heartbeat_due(
            doc.source.last_seen.as_deref(),
            first_sight,
            Utc::now(),
            interval,
        ) {
            if let Err(error) = self.store.check_in(&id).await {
                report(Step::Heartbeat, &error);
            }
        }

        if matches!(
            doc.source.status,
            ConnectorStatus::Created | ConnectorStatus::NeedsConfiguration
        ) {
            return;
        }

        // Renew expiring credentials, then validate and ping with them.
        self.renew_credentials(&mut doc, factory).await;
        let checked = async {
            let configuration = doc.source.configuration()?;
            validate_configuration(&configuration)?;
            let source = factory
                .build(&id, &configuration)
                .map_err(|e| e.to_string())?;
            source.validate().await.map_err(|e| e.to_string())?;
            source.ping().await.map_err(|e| e.to_string())
        };
        if let Err(message) = checked.await {
            tracing::warn!(error = %message, "connector configuration or source check failed");
            if let Err(error) = self.set_error(&doc, &message).await {
                report(Step::ErrorStatus, &error);
            }
            return;
        }
        if doc.source.sync_rules_enabled() {
            if let Some(draft) = doc.source.draft_needs_validation() {
                let validation = validate_rules(&draft.rules);
                tracing::info!(state = %validation.state, "validated draft sync rules");
                if let Err(error) = self
                    .store
                    .write_filtering_validation(&doc, &validation)
                    .await
                {
                    report(Step::Filtering, &error);
                }
            }
        }
        if doc.source.status != ConnectorStatus::Connected || doc.source.error.is_some() {
            let connected = json!({"status": ConnectorStatus::Connected, "error": null});
            if let Err(error) = self.store.update_connector(&id, connected, None).await {
                report(Step::Status, &error);
            }
        }

        // Schedules.
        let mut kinds = Vec::new();
        if factory.supports_access_control() && doc.source.feature_enabled(JobKind::AccessControl) {
            kinds.push(JobKind::AccessControl);
        }
        if factory.supports_incremental() && doc.source.feature_enabled(JobKind::Incremental) {
            kinds.push(JobKind::Incremental);
        }
        kinds.push(JobKind::Full);
        for kind in kinds {
            if let Err(error) = self.schedule_kind(&id, kind, last_wake_up).await {
                report(Step::Schedule, &error);
            }
        }
    }

    /// Writes what `prepare` decides (3 tries on 409) and reloads `doc`; `false` when the
    /// connector is gone.
    async fn prepare(
        &self,
        doc: &mut Doc<Connector>,
        factory: &dyn SourceFactory,
        configured_service_type: &str,
    ) -> Result<bool, EsError> {
        for attempt in 0..3 {
            let Some(prepared) = prepare_patch(&doc.source, factory, Some(configured_service_type))
            else {
                break;
            };
            if !prepared.upgraded.is_empty() {
                tracing::warn!(fields = ?prepared.upgraded, "connector configuration upgraded with fields added by this version");
            }
            match self
                .store
                .update_connector(&doc.id, Value::Object(prepared.patch), doc.guard())
                .await
            {
                Ok(()) => {}
                Err(error) if error.is_version_conflict() && attempt < 2 => {}
                Err(error) => return Err(error),
            }
            match self.store.get_connector(&doc.id).await? {
                Some(reloaded) => *doc = reloaded,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn set_error(&self, doc: &Doc<Connector>, message: &str) -> Result<(), EsError> {
        if doc.source.status == ConnectorStatus::Error
            && doc.source.error.as_deref() == Some(message)
        {
            return Ok(());
        }
        self.store
            .update_connector(
                &doc.id,
                json!({"status": ConnectorStatus::Error, "error": message}),
                None,
            )
            .await
    }

    async fn schedule_kind(
        &self,
        id: &str,
        kind: JobKind,
        last_wake_up: DateTime<Utc>,
    ) -> Result<(), EsError> {
        let field = scheduled_at_field(kind);
        for _ in 0..3 {
            let Some(doc) = self.store.get_connector(id).await? else {
                return Ok(());
            };
            let Some(interval) = doc.source.schedule_interval(kind) else {
                return Ok(());
            };
            let schedule = match CronSchedule::parse(interval) {
                Ok(schedule) => schedule,
                Err(error) => {
                    tracing::warn!(%error, interval, job_type = kind.as_str(), "invalid schedule; no job created");
                    return Ok(());
                }
            };
            let taken = doc.source.scheduled_at(kind).and_then(parse_time);
            let Some(slot) = due_slot(&schedule, last_wake_up, taken, self.clock.now()) else {
                return Ok(());
            };
            match self
                .store
                .update_connector(id, json!({field: format_time(slot)}), doc.guard())
                .await
            {
                Ok(()) => {}
                Err(error) if error.is_version_conflict() => continue,
                Err(error) => return Err(error),
            }
            // Any hit counts, readable or not: a job we cannot read may still be running.
            let active = self.store.search_jobs(active_jobs_query(id, kind)).await?;
            if let Some(job) = active.first() {
                let job_id = match job {
                    Ok(job) => &job.id,
                    Err(unreadable) => &unreadable.id,
                };
                tracing::info!(job_type = kind.as_str(), active_job = %job_id, "a job is still pending or running; not creating another");
                return Ok(());
            }
            match self.store.create_job(id, kind, "scheduled").await {
                Ok(job_id) => {
                    tracing::info!(job_type = kind.as_str(), sync_job_id = %job_id, slot = %format_time(slot), "scheduled sync job created")
                }
                Err(error) => {
                    tracing::error!(%error, job_type = kind.as_str(), "could not create the scheduled job");
                    crate::metrics::global().scheduling_failure(Step::Schedule.as_str());
                }
            }
            return Ok(());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn due_slot_takes_each_slot_once() {
        let every_minute = CronSchedule::parse("0 * * * * ?").unwrap();
        let t = |m: u32, s: u32| Utc.with_ymd_and_hms(2026, 1, 1, 0, m, s).unwrap();
        assert_eq!(due_slot(&every_minute, t(0, 30), None, t(0, 50)), None);
        assert_eq!(
            due_slot(&every_minute, t(0, 50), None, t(1, 5)),
            Some(t(1, 0))
        );
        assert_eq!(
            due_slot(&every_minute, t(0, 50), Some(t(1, 0)), t(1, 5)),
            None
        );
        assert_eq!(
            due_slot(&every_minute, t(1, 5), Some(t(1, 0)), t(1, 10)),
            None
        );
        let at_seconds = CronSchedule::parse("30 * * * * ?").unwrap();
        assert_eq!(
            due_slot(&at_seconds, t(0, 10), None, t(0, 31)),
            Some(t(0, 30))
        );
    }

    #[test]
    fn scaled_clock_runs_fast() {
        let origin = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ScaledClock::new(origin, 3600.0);
        std::thread::sleep(Duration::from_millis(20));
        assert!(clock.now() - origin >= chrono::Duration::seconds(60));
    }
}
