//! Connector-protocol acceptance tests, each run in both protocol modes: direct index access
//! against osmem (`feature_use_connectors_api: false`) and the `_connector` API through
//! es-shim (`true`). Every test gets its own osmem (and shim), daemons run in their own
//! runtimes (so one can be "killed" by dropping its runtime), and the source is a test
//! source registered through [`ServiceDeps::registry`].

mod common;

use async_trait::async_trait;
use chrono::TimeZone;
use common::source::{Knobs, TestSource};
use connectors::config::Config;
use connectors::es::EsClient;
use connectors::protocol::connector::Connector;
use connectors::protocol::doc::{Doc, View};
use connectors::protocol::indices::{CONNECTORS_INDEX, JOBS_INDEX};
use connectors::protocol::job::SyncJob;
use connectors::protocol::runner::RunnerTimings;
use connectors::protocol::store::{self, ConnectorStore};
use connectors::scheduler::{Clock, ScaledClock, SystemClock};
use connectors::service::{run_with, Action, ServiceDeps, ServiceError};
use connectors::sources::SourceRegistry;
use connectors::sources::{
    basic_features, slack, Configuration, ConfigurationExt, DataSource, SourceError, SourceFactory,
};
use serde_json::{json, Value};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Direct,
    Api,
}

/// A `slack`-typed factory whose sources yield `docs` numbered documents.
struct TestFactory {
    state: Arc<Knobs>,
}

impl SourceFactory for TestFactory {
    fn service_type(&self) -> &'static str {
        "slack"
    }
    fn display_name(&self) -> &'static str {
        "Slack (test)"
    }
    fn default_configuration(&self) -> Configuration {
        slack::default_configuration()
    }
    fn features(&self) -> Value {
        basic_features()
    }
    fn build(
        &self,
        _connector_id: &str,
        configuration: &Configuration,
    ) -> Result<Box<dyn DataSource>, SourceError> {
        Ok(Box::new(TestSource::titled(
            self.state.clone(),
            configuration.str_value("token").unwrap_or_default(),
        )))
    }
}

/// One test's cluster, store and source.
struct Env {
    mode: Mode,
    _osmem: osmem::Osmem,
    _shim: Option<es_shim::ShimHandle>,
    url: String,
    state: Arc<Knobs>,
    registry: SourceRegistry,
    store: Arc<dyn ConnectorStore>,
    dir: tempfile::TempDir,
    /// Set when a test checked the conformance audit itself.
    audited: std::cell::Cell<bool>,
}

static ENV_ONCE: Once = Once::new();

impl Env {
    fn new(mode: Mode) -> Env {
        ENV_ONCE.call_once(|| {
            // osmem reports an OpenSearch version; the shim reports ES 9 (API mode).
            std::env::set_var("ALLOW_ES_VERSION_MISMATCH", "true");
        });
        let osmem = osmem::Osmem::start().expect("osmem-server");
        let (shim, url) = match mode {
            Mode::Direct => (None, osmem.url().to_string()),
            Mode::Api => {
                // Recording: every `_connector` request of the service and the CLI is audited
                // against the conformance table when the test ends.
                let shim = es_shim::ShimHandle::start(es_shim::ShimConfig {
                    record: true,
                    ..es_shim::ShimConfig::new(osmem.url())
                })
                .expect("es-shim");
                let url = shim.url();
                (Some(shim), url)
            }
        };
        let state = Arc::new(Knobs::default());
        state.docs.store(3, Ordering::SeqCst);
        let factory: &'static TestFactory = Box::leak(Box::new(TestFactory {
            state: state.clone(),
        }));
        let registry = SourceRegistry::new(vec![factory]);
        let config = Config::from_yaml_str(
            &yaml(&url, mode, &["x"], ""),
            std::path::Path::new("test.yml"),
            &|_| None,
        )
        .unwrap()
        .config;
        let es = EsClient::new(&config.elasticsearch).unwrap();
        if mode == Mode::Api {
            // Elasticsearch installs this pipeline itself; the shim needs it put.
            block_on_other(es.json(
                elasticsearch::http::Method::Put,
                "/_ingest/pipeline/search-default-ingestion",
                &[],
                Some(json!({"processors": []})),
            ))
            .expect("pipeline");
        }
        let store = store::for_mode(es, mode == Mode::Api);
        Env {
            mode,
            _osmem: osmem,
            _shim: shim,
            url,
            state,
            registry,
            store,
            dir: tempfile::tempdir().unwrap(),
            audited: std::cell::Cell::new(false),
        }
    }

    /// What the service and the CLI sent to the `_connector` API so far, held against the
    /// conformance table (API mode; empty in direct mode).
    fn audit(&self) -> es_shim::conformance::Audit {
        self.audited.set(true);
        let recorded = self
            ._shim
            .as_ref()
            .map(|shim| shim.recorder().connector_requests())
            .unwrap_or_default();
        es_shim::conformance::audit(es_shim::conformance::table(), &recorded)
    }

    fn config(&self, connector_ids: &[&str], extra: &str) -> Config {
        Config::from_yaml_str(
            &yaml(&self.url, self.mode, connector_ids, extra),
            std::path::Path::new("test.yml"),
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .config
    }

    fn config_file(&self) -> PathBuf {
        let path = self.dir.path().join("config.yml");
        std::fs::write(&path, yaml(&self.url, self.mode, &["x"], "")).unwrap();
        path
    }

    /// Runs the `connectors` CLI in-process; returns (exit code, stdout, stderr).
    async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut out = Vec::new();
        let (code, err) = self.cli_to(args, &mut out).await;
        (code, String::from_utf8_lossy(&out).into_owned(), err)
    }

    /// [`cli`](Self::cli) writing its output to `out` as it goes; returns (exit code, stderr).
    async fn cli_to(&self, args: &[&str], out: &mut dyn std::io::Write) -> (i32, String) {
        let path = self.config_file();
        let mut argv = vec![
            "connectors".to_string(),
            "-c".into(),
            path.display().to_string(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        let mut err = Vec::new();
        let code = connectors::cli::main_with(argv, out, &mut err).await;
        (code, String::from_utf8_lossy(&err).into_owned())
    }

    async fn cli_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.cli(args).await;
        assert_eq!(code, 0, "connectors {args:?} failed: {err}");
        out
    }

    /// A connector created with the CLI and configured with a good token.
    async fn configured_connector(&self, id: &str) {
        self.cli_ok(&[
            "connector",
            "create",
            "--service-type",
            "slack",
            "--index-name",
            &format!("search-{id}"),
            "--connector-id",
            id,
            "--update-config",
            "--set",
            "token=good",
            "--set",
            "fetch_last_n_days=7",
        ])
        .await;
        if self.mode == Mode::Direct {
            // osmem has no ingest pipelines (Elasticsearch installs search-default-ingestion).
            self.store
                .update_connector(id, json!({"pipeline": {"name": "_none"}}), None)
                .await
                .unwrap();
        }
    }

    /// A configured connector with a full sync every minute (`0 * * * * ?`).
    async fn scheduled_connector(&self, id: &str) {
        self.configured_connector(id).await;
        let out = self
            .cli_ok(&[
                "connector",
                "schedule",
                "set",
                "-i",
                id,
                "--full",
                "0 * * * * ?",
            ])
            .await;
        assert!(out.contains("full every"), "{out}");
    }

    async fn start_job(&self, connector_id: &str) -> String {
        let out = self
            .cli_ok(&[
                "-o",
                "json",
                "job",
                "start",
                "-i",
                connector_id,
                "-t",
                "full",
            ])
            .await;
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// A connector as stored (the service must also be able to read it).
    async fn connector(&self, id: &str) -> Doc {
        let doc = store::get_doc(self.store.es(), CONNECTORS_INDEX, id)
            .await
            .unwrap()
            .expect("connector");
        reads_as::<Connector>(doc)
    }

    /// A job as stored (the service must also be able to read it).
    async fn job(&self, id: &str) -> Doc {
        let doc = store::get_doc(self.store.es(), JOBS_INDEX, id)
            .await
            .unwrap()
            .expect("job");
        reads_as::<SyncJob>(doc)
    }

    async fn jobs_of(&self, connector_id: &str) -> Vec<Doc> {
        store::search_docs(
            self.store.es(),
            JOBS_INDEX,
            json!({"size": 100, "query": {"term": {"connector.id": connector_id}},
                            "sort": [{"created_at": {"order": "asc"}}]}),
        )
        .await
        .unwrap()
        .into_iter()
        .map(reads_as::<SyncJob>)
        .collect()
    }

    fn deps(&self, hostname: &str, clock: Arc<dyn Clock>) -> ServiceDeps {
        ServiceDeps {
            clock,
            registry: self.registry.clone(),
            timings: RunnerTimings {
                stats_interval: Duration::from_millis(200),
                check_interval: Duration::from_millis(100),
                cancel_grace: Duration::from_secs(1),
                progress_interval: Duration::from_millis(100),
            },
            hostname: hostname.to_string(),
        }
    }

    fn daemon(&self, config: Config, actions: &[Action], hostname: &str) -> Daemon {
        Daemon::start(config, actions, self.deps(hostname, Arc::new(SystemClock)))
    }
}

impl Drop for Env {
    /// Fails an API-mode test whose service or CLI sent a request the conformance table does
    /// not allow (unless the test examined the audit itself).
    fn drop(&mut self) {
        if self.audited.get() || std::thread::panicking() {
            return;
        }
        let audit = self.audit();
        assert!(
            audit.violations.is_empty(),
            "requests outside the conformance table (ftest/es-shim/conformance/):\n{}",
            audit.violations.join("\n")
        );
    }
}

fn yaml(url: &str, mode: Mode, ids: &[&str], extra: &str) -> String {
    let connectors: String = ids
        .iter()
        .map(|id| format!("  - {{connector_id: \"{id}\", service_type: slack}}\n"))
        .collect();
    let idling = if extra.contains("idling:") {
        ""
    } else {
        "  idling: 0.05\n"
    };
    format!(
        "elasticsearch:\n  host: {url}\n  feature_use_connectors_api: {}\n  max_retries: 2\n  retry_interval: 0.05\n\
         service:\n{idling}  job_cleanup_interval: 0.2\n  job_idle_timeout: 1.5\n  max_concurrent_content_syncs: 2\n{extra}\
         connectors:\n{connectors}",
        mode == Mode::Api
    )
}

/// A service running on its own runtime.
struct Daemon {
    rt: Option<tokio::runtime::Runtime>,
    token: CancellationToken,
    handle: Option<tokio::task::JoinHandle<Result<(), ServiceError>>>,
}

impl Daemon {
    fn start(config: Config, actions: &[Action], deps: ServiceDeps) -> Daemon {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let token = CancellationToken::new();
        let handle = rt.spawn(run_with(config, actions.to_vec(), token.clone(), deps));
        Daemon {
            rt: Some(rt),
            token,
            handle: Some(handle),
        }
    }

    /// Graceful shutdown (SIGTERM): waits until the service returns.
    async fn stop(mut self) {
        self.token.cancel();
        if let Some(handle) = self.handle.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("service stops within 10 s");
            result.unwrap().unwrap();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    /// SIGKILL: every task dropped at once, nothing finalised.
    fn kill(mut self) {
        self.handle.take();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.token.cancel();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn wait_connector_field(
    env: &Env,
    id: &str,
    field: &str,
    value: &str,
    timeout: Duration,
) -> Doc {
    wait_for(
        &format!("connector {id} {field} = {value}"),
        timeout,
        || async { env.connector(id).await.str(field) == Some(value) },
    )
    .await;
    env.connector(id).await
}

async fn wait_job_status(env: &Env, job_id: &str, status: &str, timeout: Duration) -> Doc {
    wait_for(&format!("job {job_id} {status}"), timeout, || async {
        env.job(job_id).await.str("status") == Some(status)
    })
    .await;
    env.job(job_id).await
}

/// `doc`, after checking that it reads as the service's view `T`.
fn reads_as<T: View>(doc: Doc) -> Doc {
    if let Err(error) = doc.clone().read::<T>() {
        panic!("{error}: {}", doc.source);
    }
    doc
}

/// Field reads on a document as stored, for the assertions.
trait Fields {
    /// A string field (`None` when missing, null or not a string).
    fn str(&self, key: &str) -> Option<&str>;
    /// A field by JSON pointer (`/connector/id`).
    fn at(&self, pointer: &str) -> &Value;
}

impl Fields for Doc {
    fn str(&self, key: &str) -> Option<&str> {
        self.source.get(key).and_then(Value::as_str)
    }
    fn at(&self, pointer: &str) -> &Value {
        self.source.pointer(pointer).unwrap_or(&Value::Null)
    }
}

/// Runs a future on a fresh runtime from inside another one.
fn block_on_other<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|scope| scope.spawn(|| block_on(future)).join().unwrap())
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// created → needs_configuration (exact schema) → configured → connected; bad configuration
/// → error naming the field.
async fn connector_lifecycle(mode: Mode) {
    let env = Env::new(mode);
    let id = "lifecycle";
    let out = env
        .cli_ok(&[
            "connector",
            "create",
            "--service-type",
            "slack",
            "--index-name",
            "search-lifecycle",
            "--connector-id",
            id,
            "--name",
            "Lifecycle",
        ])
        .await;
    assert!(out.contains("created connector lifecycle"), "{out}");
    let doc = env.connector(id).await;
    assert_eq!(doc.str("status"), Some("created"));
    assert_eq!(doc.source["configuration"], json!({}));
    assert_eq!(doc.source["pipeline"]["name"], "search-default-ingestion");
    assert_eq!(
        doc.source["filtering"][0]["active"]["rules"][0]["id"],
        "DEFAULT"
    );
    assert_eq!(doc.source["scheduling"]["full"]["enabled"], false);
    assert!(env
        .store
        .es()
        .index_exists("search-lifecycle")
        .await
        .unwrap());

    let daemon = env.daemon(env.config(&[id], ""), &[Action::Schedule], "worker-1");
    wait_connector_field(&env, id, "status", "needs_configuration", WAIT).await;
    wait_for("heartbeat", WAIT, || async {
        env.connector(id).await.str("last_seen").is_some()
    })
    .await;
    let doc = env.connector(id).await;
    let expected = connectors::protocol::connector::to_value(&slack::default_configuration());
    assert_eq!(
        doc.source["configuration"], expected,
        "schema exactly as the Slack source declares"
    );
    assert_eq!(doc.source["configuration"]["token"]["sensitive"], true);
    assert_eq!(doc.source["configuration"]["fetch_last_n_days"]["order"], 2);
    assert_eq!(
        doc.source["configuration"]["auto_join_channels"]["value"],
        false
    );
    assert_eq!(doc.source["features"], basic_features());
    assert_eq!(doc.str("service_type"), Some("slack"));
    assert!(doc.str("last_seen").is_some(), "heartbeat on first sight");

    let out = env
        .cli_ok(&[
            "connector",
            "config",
            "set",
            "-i",
            id,
            "token=xoxb-very-secret",
            "fetch_last_n_days=30",
        ])
        .await;
    assert!(
        !out.contains("xoxb-very-secret"),
        "secrets are never echoed: {out}"
    );
    assert!(out.contains("token=******"), "{out}");
    let doc = env.connector(id).await;
    assert!(
        matches!(doc.str("status"), Some("configured") | Some("connected")),
        "{:?}",
        doc.str("status")
    );
    let doc = wait_connector_field(&env, id, "status", "connected", WAIT).await;
    assert_eq!(doc.source["error"], Value::Null);
    assert_eq!(
        doc.source["configuration"]["fetch_last_n_days"]["value"],
        30
    );

    env.cli_ok(&[
        "connector",
        "config",
        "set",
        "-i",
        id,
        "fetch_last_n_days=many",
    ])
    .await;
    let doc = wait_connector_field(&env, id, "status", "error", WAIT).await;
    let error = doc.str("error").unwrap_or("");
    assert!(
        error.contains("Days of message history to fetch"),
        "{error}"
    );

    env.cli_ok(&[
        "connector",
        "config",
        "set",
        "-i",
        id,
        "fetch_last_n_days=30",
        "token=",
    ])
    .await;
    wait_for("empty token error", WAIT, || async {
        env.connector(id)
            .await
            .str("error")
            .unwrap_or("")
            .contains("'Authentication Token' cannot be empty.")
    })
    .await;

    env.cli_ok(&["connector", "config", "set", "-i", id, "token=bad"])
        .await;
    wait_for("ping error", WAIT, || async {
        env.connector(id)
            .await
            .str("error")
            .unwrap_or("")
            .contains("invalid_auth")
    })
    .await;
    env.cli_ok(&["connector", "config", "set", "-i", id, "token=good"])
        .await;
    wait_connector_field(&env, id, "status", "connected", WAIT).await;
    daemon.stop().await;
}

/// A one-minute schedule, a virtual clock (1 minute = 1 s) and two daemons: exactly one job
/// per tick.
async fn schedule_one_job_per_tick(mode: Mode) {
    let env = Env::new(mode);
    let id = "scheduled";
    env.scheduled_connector(id).await;
    // Virtual time starts at 00:00:30 and runs 60× faster: slots 00:01:00 (real 0.5 s) and
    // 00:02:00 (1.5 s); the daemons stop at about 00:02:45 (2.25 s).
    let origin = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 30).unwrap();
    let scaled = ScaledClock::new_delayed(origin, 60.0, Duration::from_millis(300));
    let started = scaled.started();
    let clock: Arc<dyn Clock> = Arc::new(scaled);
    // idling 6 s of virtual time = 0.1 s real.
    let config = env.config(&[id], "  idling: 6\n");
    let actions = [Action::Schedule, Action::SyncContent];
    let a = Daemon::start(
        config.clone(),
        &actions,
        env.deps("worker-a", clock.clone()),
    );
    let b = Daemon::start(config, &actions, env.deps("worker-b", clock.clone()));
    tokio::time::sleep(
        (started + Duration::from_millis(2250)).saturating_duration_since(Instant::now()),
    )
    .await;
    a.stop().await;
    b.stop().await;
    let jobs = env.jobs_of(id).await;
    let scheduled: Vec<&Doc> = jobs
        .iter()
        .filter(|j| j.str("trigger_method") == Some("scheduled"))
        .collect();
    assert_eq!(
        scheduled.len(),
        2,
        "one job per tick: {:#?}",
        jobs.iter().map(|j| &j.source).collect::<Vec<_>>()
    );
    for job in &scheduled {
        assert_eq!(job.str("job_type"), Some("full"));
        assert_eq!(job.str("status"), Some("completed"));
    }
    let doc = env.connector(id).await;
    assert_eq!(
        doc.str("last_sync_scheduled_at"),
        Some("2026-01-01T00:02:00.000000Z")
    );
    assert_eq!(env.state.syncs.load(Ordering::SeqCst), 2);
}

/// No scheduled job piles up while the previous one is still pending (upstream creates one
/// per tick regardless).
async fn schedule_skips_while_pending(mode: Mode) {
    let env = Env::new(mode);
    let id = "pileup";
    env.scheduled_connector(id).await;
    let origin = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 30).unwrap();
    let scaled = ScaledClock::new_delayed(origin, 60.0, Duration::from_millis(300));
    let started = scaled.started();
    let clock: Arc<dyn Clock> = Arc::new(scaled);
    let daemon = Daemon::start(
        env.config(&[id], "  idling: 6\n"),
        &[Action::Schedule],
        env.deps("w", clock),
    );
    tokio::time::sleep(
        (started + Duration::from_millis(2250)).saturating_duration_since(Instant::now()),
    )
    .await;
    daemon.stop().await;
    let jobs = env.jobs_of(id).await;
    assert_eq!(jobs.len(), 1, "one pending job, not one per tick");
    assert_eq!(jobs[0].str("status"), Some("pending"));
    assert_eq!(jobs[0].str("trigger_method"), Some("scheduled"));
    let doc = env.connector(id).await;
    assert_eq!(
        doc.str("last_sync_scheduled_at"),
        Some("2026-01-01T00:02:00.000000Z")
    );
}

/// An on-demand job is claimed, run and finalised with the exact §2.5 fields.
async fn on_demand_job_finalised(mode: Mode) {
    let env = Env::new(mode);
    let id = "ondemand";
    env.configured_connector(id).await;
    env.state.docs.store(5, Ordering::SeqCst);
    let job_id = env.start_job(id).await;
    let job = env.job(&job_id).await;
    assert_eq!(job.str("status"), Some("pending"));
    assert_eq!(job.str("trigger_method"), Some("on_demand"));
    assert_eq!(job.at("/connector/index_name"), "search-ondemand");
    assert_eq!(job.at("/connector/configuration/token/value"), "good");
    let daemon = env.daemon(env.config(&[id], ""), &[Action::SyncContent], "worker-x");
    let job = wait_job_status(&env, &job_id, "completed", WAIT).await;
    daemon.stop().await;
    let s = &job.source;
    assert_eq!(s["error"], Value::Null);
    assert_eq!(s["worker_hostname"], "worker-x");
    for key in ["started_at", "completed_at", "last_seen", "created_at"] {
        assert!(
            s[key]
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "{key}: {s}"
        );
    }
    assert!(s["canceled_at"].is_null());
    assert_eq!(s["indexed_document_count"], 5);
    assert_eq!(s["indexed_document_volume"], 0);
    assert_eq!(s["deleted_document_count"], 0);
    assert_eq!(s["total_document_count"], 5);
    // A full job that ends clears its resume point (it may have been written meanwhile).
    assert_eq!(s["metadata"], json!({"resume": null}));
    let c = env.connector(id).await;
    let c = &c.source;
    assert_eq!(c["last_sync_status"], "completed");
    assert_eq!(c["last_sync_error"], Value::Null);
    assert_eq!(c["status"], "connected");
    assert_eq!(c["error"], Value::Null);
    assert!(c["last_synced"].as_str().is_some());
    assert_eq!(c["last_indexed_document_count"], 5);
    assert_eq!(c["last_deleted_document_count"], 0);
    assert_eq!(c["sync_cursor"], json!({"docs": 5}));
    assert_eq!(env.store.es().count("search-ondemand").await.unwrap(), 5);

    // A failing source: the job ends `error` with the source's text, the connector too.
    env.state.fail.store(true, Ordering::SeqCst);
    let job_id = env.start_job(id).await;
    let daemon = env.daemon(env.config(&[id], ""), &[Action::SyncContent], "worker-x");
    let job = wait_job_status(&env, &job_id, "error", WAIT).await;
    daemon.stop().await;
    // The full job's source was handed the connector's saved cursor first.
    assert_eq!(
        *env.state.loaded_cursor.lock().unwrap(),
        Some(json!({"docs": 5}))
    );
    assert!(
        job.str("error").unwrap_or("").contains("ratelimited"),
        "{}",
        job.source
    );
    assert!(job.source["completed_at"].is_string());
    let c = env.connector(id).await;
    assert_eq!(c.str("last_sync_status"), Some("error"));
    assert_eq!(c.str("status"), Some("error"));
    assert!(c
        .str("last_sync_error")
        .unwrap_or("")
        .contains("ratelimited"));
    assert_eq!(
        c.source["sync_cursor"],
        json!({"docs": 5}),
        "cursor kept from the completed sync"
    );
}

/// Two daemons, ten connectors, ten pending jobs: every job runs exactly once.
async fn ten_jobs_run_exactly_once(mode: Mode) {
    let env = Env::new(mode);
    let ids: Vec<String> = (0..10).map(|i| format!("many-{i}")).collect();
    for id in &ids {
        env.configured_connector(id).await;
    }
    let mut jobs = Vec::new();
    for id in &ids {
        jobs.push(env.start_job(id).await);
    }
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let config = env.config(&id_refs, "");
    let a = env.daemon(config.clone(), &[Action::SyncContent], "worker-a");
    let b = env.daemon(config, &[Action::SyncContent], "worker-b");
    for job in &jobs {
        wait_job_status(&env, job, "completed", WAIT).await;
    }
    a.stop().await;
    b.stop().await;
    assert_eq!(
        env.state.syncs.load(Ordering::SeqCst),
        10,
        "each job ran exactly once"
    );
    for id in &ids {
        let all = env.jobs_of(id).await;
        assert_eq!(all.len(), 1);
        assert_eq!(
            env.connector(id).await.str("last_sync_status"),
            Some("completed")
        );
    }
}

/// Cancel while running → canceled within 5 s.
async fn cancel_running_job(mode: Mode) {
    let env = Env::new(mode);
    let id = "cancel";
    env.configured_connector(id).await;
    env.state.docs.store(100_000, Ordering::SeqCst);
    env.state.delay_ms.store(5, Ordering::SeqCst);
    env.state.report_progress.store(true, Ordering::SeqCst);
    let job_id = env.start_job(id).await;
    let daemon = env.daemon(env.config(&[id], ""), &[Action::SyncContent], "worker-c");
    wait_job_status(&env, &job_id, "in_progress", WAIT).await;
    // The stats heartbeat carries the source's progress while the job runs.
    wait_for("the running job's metadata.progress", WAIT, || async {
        let job = env.job(&job_id).await;
        job.str("status") == Some("in_progress")
            && job.source["metadata"]["progress"]["docs_sent"]
                .as_u64()
                .is_some_and(|n| n > 0)
    })
    .await;
    let out = env.cli_ok(&["job", "cancel", &job_id]).await;
    assert!(out.contains("canceling"), "{out}");
    let asked = Instant::now();
    let job = wait_job_status(&env, &job_id, "canceled", Duration::from_secs(5)).await;
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert!(job.source["canceled_at"].is_string() && job.source["completed_at"].is_string());
    assert_eq!(job.source["error"], Value::Null);
    // The connector is written right after the job.
    let c = wait_connector_field(&env, id, "last_sync_status", "canceled", WAIT).await;
    assert_eq!(c.str("status"), Some("connected"));
    daemon.stop().await;
}

/// Shutdown mid-job → suspended; a new daemon completes it.
async fn shutdown_suspends_and_resumes(mode: Mode) {
    let env = Env::new(mode);
    let id = "suspend";
    env.configured_connector(id).await;
    env.state.docs.store(100_000, Ordering::SeqCst);
    env.state.delay_ms.store(5, Ordering::SeqCst);
    let job_id = env.start_job(id).await;
    let daemon = env.daemon(env.config(&[id], ""), &[Action::SyncContent], "worker-1");
    wait_job_status(&env, &job_id, "in_progress", WAIT).await;
    daemon.stop().await;
    let job = env.job(&job_id).await;
    assert_eq!(job.str("status"), Some("suspended"));
    assert!(job.source["completed_at"].is_null());
    assert_eq!(
        env.connector(id).await.str("last_sync_status"),
        Some("suspended")
    );

    env.state.docs.store(4, Ordering::SeqCst);
    env.state.delay_ms.store(0, Ordering::SeqCst);
    let daemon = env.daemon(env.config(&[id], ""), &[Action::SyncContent], "worker-2");
    let job = wait_job_status(&env, &job_id, "completed", WAIT).await;
    daemon.stop().await;
    assert_eq!(job.str("worker_hostname"), Some("worker-2"));
    assert_eq!(job.source["indexed_document_count"], 4);
}

/// A daemon killed mid-job: the cleanup fails the job after the idle timeout and releases
/// the connector, which then syncs again.
async fn killed_daemon_cleaned_up(mode: Mode) {
    let env = Env::new(mode);
    let id = "killed";
    env.configured_connector(id).await;
    env.state.docs.store(100_000, Ordering::SeqCst);
    env.state.delay_ms.store(5, Ordering::SeqCst);
    let job_id = env.start_job(id).await;
    let victim = env.daemon(env.config(&[id], ""), &[Action::SyncContent], "victim");
    wait_job_status(&env, &job_id, "in_progress", WAIT).await;
    victim.kill();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.job(&job_id).await.str("status"), Some("in_progress"));
    assert_eq!(
        env.connector(id).await.str("last_sync_status"),
        Some("in_progress")
    );

    // The cleanup hands the job whose worker died back to the executors (`suspended`, after
    // the idle timeout); the rescuer resumes it and completes it.
    env.state.docs.store(2, Ordering::SeqCst);
    env.state.delay_ms.store(0, Ordering::SeqCst);
    let rescuer = env.daemon(
        env.config(&[id], ""),
        &[Action::SyncContent, Action::Cleanup],
        "rescuer",
    );
    let job = wait_job_status(&env, &job_id, "completed", WAIT).await;
    assert!(killed_at.elapsed() >= Duration::from_millis(1500));
    assert_eq!(job.str("worker_hostname"), Some("rescuer"));
    assert_eq!(job.at("/metadata/orphaned"), 1, "{}", job.source);
    assert_eq!(*job.at("/metadata/resume"), Value::Null);
    assert_eq!(job.source["error"], Value::Null);
    wait_connector_field(&env, id, "last_sync_status", "completed", WAIT).await;

    let next = env.start_job(id).await;
    let job = wait_job_status(&env, &next, "completed", WAIT).await;
    assert_eq!(job.str("worker_hostname"), Some("rescuer"));
    rescuer.stop().await;
}

/// A store whose heartbeat is the request the service used to send: `PUT _check_in` with the
/// body `{}`, which Elasticsearch (and the strict shim) refuses with 400.
struct RefusedHeartbeat {
    inner: Arc<dyn ConnectorStore>,
}

#[async_trait]
impl ConnectorStore for RefusedHeartbeat {
    fn es(&self) -> &EsClient {
        self.inner.es()
    }
    fn uses_api(&self) -> bool {
        self.inner.uses_api()
    }
    async fn check_in(&self, id: &str) -> Result<(), connectors::es::EsError> {
        let path = format!("/_connector/{}/_check_in", connectors::es::encode(id));
        self.es()
            .json(
                elasticsearch::http::Method::Put,
                &path,
                &[],
                Some(json!({})),
            )
            .await
            .map(|_| ())
    }
    async fn write_filtering_validation(
        &self,
        connector: &Doc<Connector>,
        validation: &connectors::sync::rules::FilteringValidation,
    ) -> Result<(), connectors::es::EsError> {
        self.inner
            .write_filtering_validation(connector, validation)
            .await
    }
    async fn create_job(
        &self,
        connector_id: &str,
        kind: connectors::sync::JobKind,
        trigger_method: &str,
    ) -> Result<String, store::StoreError> {
        self.inner
            .create_job(connector_id, kind, trigger_method)
            .await
    }
    async fn claim_job(
        &self,
        job: &Doc<SyncJob>,
        worker_hostname: &str,
        sync_cursor: Option<Value>,
    ) -> Result<(), connectors::es::EsError> {
        self.inner
            .claim_job(job, worker_hostname, sync_cursor)
            .await
    }
    async fn job_stats(
        &self,
        job_id: &str,
        stats: &connectors::sync::StatsSnapshot,
        metadata: Option<&Value>,
    ) -> Result<(), connectors::es::EsError> {
        self.inner.job_stats(job_id, stats, metadata).await
    }
    async fn create_connector(
        &self,
        request: &store::NewConnector,
    ) -> Result<String, store::StoreError> {
        self.inner.create_connector(request).await
    }
    async fn set_configuration(
        &self,
        id: &str,
        configuration: Value,
    ) -> Result<(), store::StoreError> {
        self.inner.set_configuration(id, configuration).await
    }
    async fn set_scheduling(&self, id: &str, scheduling: Value) -> Result<(), store::StoreError> {
        self.inner.set_scheduling(id, scheduling).await
    }
    async fn cancel_job(&self, id: &str) -> Result<String, store::StoreError> {
        self.inner.cancel_job(id).await
    }
}

/// A clock stopped at one instant.
struct StoppedClock(chrono::DateTime<chrono::Utc>);

impl Clock for StoppedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }
    fn sleep(&self, duration: Duration) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Log lines written while a test holds the guard.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The heartbeat Elasticsearch refuses (the old `{}` body) is logged with Elasticsearch's error
/// and counted, and the same round still validates the configuration, shows the connector
/// `connected` and creates the due scheduled job.
#[test]
fn refused_heartbeat_does_not_silence_the_round() {
    block_on(async {
        let env = Env::new(Mode::Api);
        let id = "heartbeat-refused";
        env.scheduled_connector(id).await;
        assert_eq!(env.connector(id).await.str("status"), Some("configured"));
        let store: Arc<dyn ConnectorStore> = Arc::new(RefusedHeartbeat {
            inner: env.store.clone(),
        });
        let at = |m: u32, s: u32| chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, m, s).unwrap();
        let scheduler = connectors::scheduler::Scheduler::new(
            store,
            env.registry.clone(),
            Arc::new(env.config(&[id], "")),
            Arc::new(StoppedClock(at(1, 5))),
        );
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let failures = || connectors::metrics::global().scheduling_failures("heartbeat");
        let before = failures();
        let pings = env.state.pings.load(Ordering::SeqCst);

        scheduler
            .round(at(0, 50), &CancellationToken::new())
            .await
            .unwrap();

        assert_eq!(failures(), before + 1, "the refused heartbeat is counted");
        let logged = logs.text();
        assert!(
            logged.contains("scheduling step failed")
                && logged.contains("step=\"heartbeat\"")
                && logged.contains("does not support having a body"),
            "the refused heartbeat is logged with Elasticsearch's error:\n{logged}"
        );
        let c = env.connector(id).await;
        assert!(c.source["last_seen"].is_null(), "no heartbeat landed");
        assert!(
            env.state.pings.load(Ordering::SeqCst) > pings,
            "the configuration was validated (the source pinged)"
        );
        assert_eq!(c.str("status"), Some("connected"));
        assert_eq!(c.source["error"], Value::Null);
        assert_eq!(
            c.str("last_sync_scheduled_at"),
            Some("2026-01-01T00:01:00.000000Z")
        );
        let jobs = env.jobs_of(id).await;
        assert_eq!(jobs.len(), 1, "the due job was created");
        assert_eq!(jobs[0].str("trigger_method"), Some("scheduled"));
        assert_eq!(jobs[0].str("status"), Some("pending"));
        // The conformance audit names the refused request, and nothing else.
        let audit = env.audit();
        assert_eq!(audit.violations.len(), 1, "{:#?}", audit.violations);
        assert!(
            audit.violations[0]
                .starts_with(&format!("PUT /_connector/{id}/_check_in body \"{{}}\""))
                && audit.violations[0].contains("does not support having a body"),
            "{}",
            audit.violations[0]
        );
    });
}

/// Notifications at the service level: a failing job posts one alert and the next good one
/// "recovered"; with a token Slack refuses, the same jobs end exactly as they would without
/// notifications (a notification never changes a job's outcome).
#[test]
fn notifications_follow_outcomes_and_never_change_them() {
    block_on(async {
        let env = Env::new(Mode::Direct);
        let sim = common::start(slack_sim::WorkspaceSpec::default());
        let (channel, _) = common::member_channel(&sim).await;
        let id = "notified";
        env.configured_connector(id).await;
        let notifications = |token: &str| {
            format!(
                "notifications:\n  slack:\n    bot_token: {token}\n    targets: [{channel}]\n    api_url: {}\n",
                sim.api_url()
            )
        };
        let run = |fail: bool, token: &'static str| {
            let (env, notifications) = (&env, &notifications);
            async move {
                env.state.fail.store(fail, Ordering::SeqCst);
                let job_id = env.start_job(id).await;
                let config = env.config(&[id], &notifications(token));
                let daemon = env.daemon(config, &[Action::SyncContent], "worker-n");
                let status = if fail { "error" } else { "completed" };
                let job = wait_job_status(env, &job_id, status, WAIT).await;
                (daemon, job)
            }
        };
        let (daemon, failed) = run(true, common::TOKEN).await;
        wait_for("the alert", WAIT, || async { sim.posted().len() == 1 }).await;
        daemon.stop().await;
        assert!(failed.str("error").unwrap_or("").contains("ratelimited"));
        let (daemon, _) = run(false, common::TOKEN).await;
        wait_for("recovered", WAIT, || async { sim.posted().len() == 2 }).await;
        daemon.stop().await;
        let posted = sim.posted();
        assert!(
            posted[0]
                .text
                .starts_with("Sync failed: the full job of connector"),
            "{}",
            posted[0].text
        );
        assert!(posted[0].text.contains("ratelimited"), "{}", posted[0].text);
        assert!(
            posted[1].text.starts_with("Sync recovered:"),
            "{}",
            posted[1].text
        );
        assert!(posted.iter().all(|p| p.channel == channel));

        // Slack refuses the token (invalid_auth): the jobs end as they would anyway.
        let post_calls = || {
            sim.stats()
                .calls
                .get("chat.postMessage")
                .copied()
                .unwrap_or(0)
        };
        for fail in [true, false] {
            let before = post_calls();
            let (daemon, job) = run(fail, "xoxb-refused-by-slack").await;
            // The post is attempted after the job ends: stopping the daemon first would race it.
            wait_for("the refused post", WAIT, || async { post_calls() > before }).await;
            daemon.stop().await;
            let c = env.connector(id).await;
            let want = if fail { "error" } else { "completed" };
            assert_eq!(job.str("status"), Some(want));
            assert_eq!(c.str("last_sync_status"), Some(want));
            assert_eq!(job.source["error"].is_null(), !fail, "{}", job.source);
        }
        assert_eq!(sim.posted().len(), 2, "nothing posted with a refused token");
        assert!(post_calls() >= 4);
    });
}

const CLIENT_ID: &str = "1234.5678";
const CLIENT_SECRET: &str = "client-secret-SECRET-4c1f";

/// `connectors slack install` against the simulator, with a "browser" that opens the printed
/// URL, follows Slack's redirect to the CLI's loopback listener (through `tamper`) and
/// returns what the listener answered. Returns (exit code, stdout, stderr, page).
async fn slack_install(
    env: &Env,
    sim: &slack_sim::SimHandle,
    id: &str,
    tamper: impl Fn(&str) -> String,
) -> (i32, String, String, (u16, String)) {
    let out = common::CaptureWriter::default();
    let api_url = sim.api_url();
    let args = [
        "slack",
        "install",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
        "--connector-id",
        id,
        "--port",
        "0",
        "--timeout",
        "20",
        "--api-url",
        &api_url,
    ];
    let mut writer = out.clone();
    let cli = env.cli_to(&args, &mut writer);
    let browser = async {
        let started = Instant::now();
        let url = loop {
            let text = out.contents();
            if let Some(line) = text.lines().map(str::trim).find(|l| l.starts_with("http")) {
                break line.to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no URL printed: {text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(&url).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 302, "{url}");
        let location = page.headers()["location"].to_str().unwrap().to_string();
        let answer = http.get(tamper(&location)).send().await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    };
    let ((code, err), page) = tokio::join!(cli, browser);
    (code, out.contents(), err, page)
}

/// The OAuth install end to end: the authorize URL asks for the scopes the configuration
/// needs; a forged `state` and a denied authorization store nothing and say why; an approved
/// one stores the bot token (never printed or logged), and a sync with it completes.
async fn slack_install_end_to_end(mode: Mode) {
    let env = Env::new(mode);
    let (logs, _guard) = capture_trace();
    let sim = tiny_workspace(3, 2, 4);
    let app = |decision| slack_sim::oauth::OAuthApp {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        rotation: false,
        decision,
        redirect_urls: vec![],
    };
    let id = "installed";
    env.configured_connector(id).await;
    let stored = || async {
        env.connector(id)
            .await
            .at("/configuration/token/value")
            .clone()
    };

    // A redirect whose state is not this run's: refused, nothing stored.
    sim.set_oauth_app(app(slack_sim::oauth::Decision::Approve));
    let forge = |location: &str| {
        let (head, _) = location.split_once("state=").unwrap();
        format!("{head}state=forged")
    };
    let (code, out, err, page) = slack_install(&env, &sim, id, forge).await;
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("`state` does not match"), "{err}");
    assert_eq!(page.0, 400, "{page:?}");
    assert!(
        out.contains("scope=channels%3Ahistory%2Cchannels%3Aread%2Cusers%3Aread&"),
        "{out}"
    );
    assert_eq!(stored().await, "good");

    // Denied on Slack's page: a clear message, nothing stored.
    sim.set_oauth_app(app(slack_sim::oauth::Decision::Deny));
    let (code, _, err, page) = slack_install(&env, &sim, id, str::to_string).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("not authorized in Slack (access_denied)"),
        "{err}"
    );
    assert_eq!(page.0, 400);
    assert_eq!(stored().await, "good");
    assert_eq!(sim.oauth_counts(), (0, 0), "no exchange");

    // Approved: the token is exchanged and stored, never shown.
    sim.set_oauth_app(app(slack_sim::oauth::Decision::Approve));
    let (code, out, err, page) = slack_install(&env, &sim, id, str::to_string).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(page.0, 200, "{page:?}");
    assert!(
        out.contains(&format!("connector {id}: the Slack app A")),
        "{out}"
    );
    assert!(out.contains("stored token=******"), "{out}");
    let token = stored().await.as_str().unwrap_or_default().to_string();
    assert!(token.starts_with("xoxb-sim-"), "{token}");
    assert_eq!(sim.oauth_counts(), (1, 0));
    assert_eq!(env.connector(id).await.str("status"), Some("configured"));

    // The stored token syncs: the real Slack source, through the service (which reads the
    // API URL from the environment: one mode's test at a time).
    let _one_at_a_time = REAL_SOURCE.lock().await;
    std::env::set_var("SLACK_API_BASE_URL", sim.api_url());
    std::env::set_var("SLACK_TIER_SCALE", "100");
    let job_id = env.start_job(id).await;
    let job = with_real_source(&env, id, &[Action::SyncContent], async {
        wait_job_status(&env, &job_id, "completed", Duration::from_secs(30)).await
    })
    .await;
    assert!(
        job.source["indexed_document_count"].as_u64().unwrap_or(0) >= 5,
        "{}",
        job.source
    );

    let logged = logs.text();
    assert!(
        logged.contains("oauth.v2.access") || logged.contains("slack request"),
        "trace lines are captured"
    );
    for (what, secret) in [
        ("client secret", CLIENT_SECRET),
        ("bot token", token.as_str()),
    ] {
        assert!(!logged.contains(secret), "the {what} is in the logs");
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "the {what} was printed"
        );
    }
}

/// Every log line of this thread, at every level, while the guard lives.
fn capture_trace() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// A workspace small enough for a quick real sync: public channels the bot is in, no
/// threads, DMs or bots.
fn tiny_workspace(users: usize, channels: usize, messages: usize) -> slack_sim::SimHandle {
    common::start(slack_sim::WorkspaceSpec {
        users,
        bots: 0,
        deleted_users: 0,
        channels,
        messages_per_channel: messages,
        thread_share: 0.0,
        bot_member_share: 1.0,
        archived_share: 0.0,
        dms: 0,
        group_dms: 0,
        ..slack_sim::WorkspaceSpec::default()
    })
}

/// Held while a test points the real Slack source at its simulator (the service reads the
/// API URL from the environment).
static REAL_SOURCE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the service with the built-in sources on this thread (so a thread's log capture sees
/// its lines) until `checks` is done; returns what `checks` returned.
async fn with_real_source<T>(
    env: &Env,
    id: &str,
    actions: &[Action],
    checks: impl Future<Output = T>,
) -> T {
    let deps = ServiceDeps {
        registry: SourceRegistry::default(),
        ..env.deps("worker-i", Arc::new(SystemClock))
    };
    let stop = CancellationToken::new();
    let service = run_with(env.config(&[id], ""), actions.to_vec(), stop.clone(), deps);
    let checks = async {
        let value = checks.await;
        stop.cancel();
        value
    };
    let (served, value) = tokio::join!(service, checks);
    served.expect("the service stops cleanly");
    value
}

/// An app with token rotation: the install stores the refresh token, the client credentials
/// (sensitive) and the expiry; once the expiry is near, the service renews the token (the
/// refresh token is single-use: exactly one refresh) and syncs with the new one. No secret
/// in any TRACE log line of the CLI or the service.
#[test]
fn slack_install_with_token_rotation() {
    block_on(async {
        let env = Env::new(Mode::Direct);
        let (logs, _guard) = capture_trace();
        let sim = tiny_workspace(2, 1, 2);
        sim.set_oauth_app(slack_sim::oauth::OAuthApp {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            rotation: true,
            decision: slack_sim::oauth::Decision::Approve,
            redirect_urls: vec![],
        });
        let id = "rotating";
        env.configured_connector(id).await;
        let (code, out, err, _) = slack_install(&env, &sim, id, str::to_string).await;
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("token rotation: the token expires in 43200 s"),
            "{out}"
        );
        let field = |doc: &Doc, name: &str| {
            doc.at(&format!("/configuration/{name}/value"))
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let installed = env.connector(id).await;
        let token = field(&installed, "token");
        let refresh = field(&installed, "oauth_refresh_token");
        assert!(token.starts_with("xoxe.xoxb-sim-"), "{token}");
        assert!(refresh.starts_with("xoxe-1-sim-"), "{refresh}");
        assert_eq!(field(&installed, "oauth_client_id"), CLIENT_ID);
        for secret in ["oauth_refresh_token", "oauth_client_secret", "token"] {
            let sensitive = installed.at(&format!("/configuration/{secret}/sensitive"));
            assert_eq!(sensitive, &json!(true), "{secret}");
        }
        for secret in [CLIENT_SECRET, &token, &refresh] {
            assert!(!out.contains(secret), "{out}");
        }

        // Not due yet: the service leaves it alone. Then the expiry nears (as 11 hours
        // later): it renews once, and a sync runs with the new token.
        let _one_at_a_time = REAL_SOURCE.lock().await;
        std::env::set_var("SLACK_API_BASE_URL", sim.api_url());
        std::env::set_var("SLACK_TIER_SCALE", "100");
        let actions = [Action::Schedule, Action::SyncContent];
        with_real_source(&env, id, &actions, async {
            wait_connector_field(&env, id, "status", "connected", WAIT).await;
        })
        .await;
        assert_eq!(sim.oauth_counts(), (1, 0), "nothing due: no refresh");
        let soon = (chrono::Utc::now() + chrono::Duration::minutes(59)).to_rfc3339();
        let patch = json!({"configuration": {"oauth_token_expires_at": {"value": soon}}});
        env.store.update_connector(id, patch, None).await.unwrap();
        let job_id = env.start_job(id).await;
        let (renewed, job) = with_real_source(&env, id, &actions, async {
            wait_for("the renewed token", WAIT, || async {
                field(&env.connector(id).await, "token") != token
            })
            .await;
            let job = wait_job_status(&env, &job_id, "completed", Duration::from_secs(30)).await;
            (env.connector(id).await, job)
        })
        .await;
        assert_eq!(sim.oauth_counts(), (1, 1), "one refresh");
        let new_token = field(&renewed, "token");
        let new_refresh = field(&renewed, "oauth_refresh_token");
        assert!(new_token.starts_with("xoxe.xoxb-sim-"), "{new_token}");
        assert_ne!(new_refresh, refresh);
        let expires = field(&renewed, "oauth_token_expires_at");
        let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
        assert!(
            expires > chrono::Utc::now() + chrono::Duration::hours(11),
            "{expires}"
        );
        assert_eq!(job.str("status"), Some("completed"));

        let logged = logs.text();
        assert!(
            logged.contains("renewed the source's credentials"),
            "the service's lines are captured"
        );
        for secret in [CLIENT_SECRET, &token, &refresh, &new_token, &new_refresh] {
            assert!(!logged.contains(secret), "a secret is in the logs");
        }
    });
}

macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod direct {
            $(#[test] fn $name() { super::block_on(super::$name(super::Mode::Direct)); })*
        }
        mod api {
            $(#[test] fn $name() { super::block_on(super::$name(super::Mode::Api)); })*
        }
    };
}

both_modes!(
    connector_lifecycle,
    schedule_one_job_per_tick,
    schedule_skips_while_pending,
    on_demand_job_finalised,
    ten_jobs_run_exactly_once,
    cancel_running_job,
    shutdown_suspends_and_resumes,
    killed_daemon_cleaned_up,
    slack_install_end_to_end,
);
