//! es-shim: a loopback reverse proxy in front of osmem-server that makes it look like
//! Elasticsearch 9.x to the connector service and to official ES clients.
//!
//! # Layout
//! - [`router`]: per-request dispatch; everything unknown goes to [`proxy`] unchanged.
//! - [`media`]: vendor media types (`compatible-with=8|9`) ↔ plain JSON/NDJSON.
//! - [`identity`]: `GET /`, `_license`, `_security/_authenticate`, ES-style PIT.
//! - [`conformance`]: the conformance table; every `_connector` request is checked against it
//!   (query parameters, body or none, body fields and types) before a handler runs, and
//!   recorded when [`ShimConfig::record`] is set, for the ftest's audit.
//! - [`connector`], [`sync_job`]: the `_connector` API over the connector system indices
//!   ([`store`]), with ES's defaults, validation, errors and job state machine.
//! - [`pipeline`], [`ingest`]: ingest pipelines stored in memory and applied to `_bulk` and
//!   single-document writes.
//! - [`upstream`]: the shim's own JSON client for osmem, including optimistic-concurrency
//!   read-modify-write.
//!
//! # Invariants
//! - The shim runs on its own thread with its own Tokio runtime ([`ShimHandle`]), so a test
//!   that pauses its clock or blocks its runtime never stalls the shim.
//! - Nothing in request data can panic the shim; every failure is an ES-shaped error answer.

pub mod body;
pub mod conformance;
pub mod connector;
pub mod error;
pub mod identity;
pub mod ingest;
pub mod media;
pub mod pipeline;
pub mod proxy;
pub mod router;
pub mod sink;
pub mod store;
pub mod sync_job;
pub mod upstream;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use tokio::sync::oneshot;

/// How long in-flight requests may run on after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Default version reported by `GET /`.
pub const DEFAULT_ES_VERSION: &str = "9.2.0";

/// How the shim is started.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// Base URL of osmem, e.g. `http://127.0.0.1:40123`.
    pub upstream: String,
    /// Address to listen on; `127.0.0.1:0` picks a free port.
    pub listen: String,
    /// Version `GET /` reports.
    pub es_version: String,
    /// Indices whose `_bulk` writes are answered and discarded ([`sink`], benchmarks).
    pub sink_indices: Vec<String>,
    /// Record every request ([`conformance::Recorder`]) for a conformance audit.
    pub record: bool,
}

impl ShimConfig {
    pub fn new(upstream: impl Into<String>) -> Self {
        ShimConfig {
            upstream: upstream.into(),
            listen: "127.0.0.1:0".into(),
            es_version: DEFAULT_ES_VERSION.into(),
            sink_indices: Vec::new(),
            record: false,
        }
    }
}

/// Shared state of one shim.
pub struct App {
    pub upstream: upstream::Upstream,
    pub pipelines: pipeline::Pipelines,
    pub system: store::SystemIndices,
    pub es_version: String,
    pub cluster_uuid: String,
    pub sink: Arc<sink::Sink>,
    pub recorder: Arc<conformance::Recorder>,
}

impl App {
    pub fn new(cfg: &ShimConfig) -> anyhow::Result<App> {
        let client = reqwest::Client::builder()
            .no_proxy()
            // Transparent proxying: never decompress or re-negotiate encodings.
            .no_gzip()
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .build()
            .context("building the upstream HTTP client")?;
        let uuid: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(22)
            .map(char::from)
            .collect();
        Ok(App {
            upstream: upstream::Upstream::new(&cfg.upstream, client),
            pipelines: pipeline::Pipelines::default(),
            system: store::SystemIndices::default(),
            es_version: cfg.es_version.clone(),
            cluster_uuid: uuid,
            sink: Arc::new(sink::Sink::new(cfg.sink_indices.clone())),
            recorder: Arc::new(conformance::Recorder::new(cfg.record)),
        })
    }
}

/// The axum application for a given state (exposed for embedding in an existing runtime).
pub fn app_router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(router::handle).with_state(app)
}

/// A running shim. Dropping it (or [`shutdown`](Self::shutdown)) stops it.
pub struct ShimHandle {
    sink: Arc<sink::Sink>,
    recorder: Arc<conformance::Recorder>,
    server: server_thread::ServerThread,
}

impl ShimHandle {
    /// Binds the listener, then serves on a dedicated thread and runtime. Returns once the
    /// socket accepts connections.
    pub fn start(cfg: ShimConfig) -> anyhow::Result<ShimHandle> {
        let app = Arc::new(App::new(&cfg)?);
        let sink = app.sink.clone();
        let recorder = app.recorder.clone();
        let options = server_thread::Options {
            name: "es-shim".into(),
            listen: cfg.listen.clone(),
            workers: 2,
            // Do not wait for lingering keep-alive connections.
            shutdown_timeout: Duration::from_millis(100),
        };
        let server = server_thread::ServerThread::start(options, |serving| async move {
            let server_thread::Serving {
                listener,
                stop,
                ready,
            } = serving;
            // Best effort: templates in place before anyone (the daemon in direct mode)
            // creates the connector indices through us.
            if let Err(e) = store::install_templates(&app.upstream).await {
                tracing::warn!(error = %e, "could not install connector index templates yet");
            }
            ready.ready();
            let (stopping_tx, stopping_rx) = oneshot::channel::<()>();
            let server = axum::serve(listener, app_router(app)).with_graceful_shutdown(async {
                let _ = stop.await;
                let _ = stopping_tx.send(());
            });
            // Graceful shutdown waits for in-flight requests; a client stuck mid-request
            // must not hang whoever drops the handle, so it gets SHUTDOWN_GRACE.
            let deadline = async {
                if stopping_rx.await.is_ok() {
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                r = server.into_future() => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "es-shim server failed");
                    }
                }
                _ = deadline => tracing::warn!("es-shim: in-flight requests cut at shutdown"),
            }
        })?;
        Ok(ShimHandle {
            sink,
            recorder,
            server,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40125`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The discarding sink ([`ShimConfig::sink_indices`]).
    pub fn sink(&self) -> &sink::Sink {
        &self.sink
    }

    /// What was recorded ([`ShimConfig::record`]).
    pub fn recorder(&self) -> &conformance::Recorder {
        &self.recorder
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(self) {
        self.server.shutdown();
    }
}

/// One shim per test binary, in front of `osmem::shared()`.
pub fn shared() -> &'static ShimHandle {
    static SHIM: OnceLock<ShimHandle> = OnceLock::new();
    SHIM.get_or_init(|| {
        let es = osmem::shared();
        ShimHandle::start(ShimConfig::new(es.url()))
            .unwrap_or_else(|e| panic!("test es-shim: {e:#}"))
    })
}
