//! # connectors: the Elastic connector service for Slack, in Rust
//!
//! A drop-in for Elastic's Python connector service (`elastic-ingest`) for the `slack`
//! service type: it reads the same `config.yml`, speaks the same connector protocol to
//! Elasticsearch (the `_connector` API, or the connector indices directly), schedules and
//! runs sync jobs, and keeps an index in step with a Slack workspace.
//!
//! ## Layout
//! - [`cli`]: the `connectors` management CLI.
//! - [`config`]: `config.yml` loading and validation; [`config::Secret`] for credentials.
//! - [`es`]: the Elasticsearch client layer (status checks, typed errors).
//! - [`retry`]: the one retry policy (decision, backoff, loop) of every caller.
//! - [`protocol`]: connector and sync-job documents, both protocol modes, job lifecycle.
//! - [`scheduler`]: Quartz cron and the scheduling loop.
//! - [`sync`]: the sync engine (source stream → bulk writer, safe deletions, rules, stats).
//! - [`sources`]: the `DataSource` trait, the registry, and [`sources::slack`].
//! - [`service`]: the daemon's services (`schedule`, `sync_content`, `sync_access_control`,
//!   `cleanup`) wired together.
//! - [`notify`]: sync alerts and reports posted to Slack (Slack as a destination).
//! - [`telemetry`], [`shutdown`]: logs and signals; [`metrics`] and [`http`]: the optional
//!   health and Prometheus metrics listener.

pub mod cli;
pub mod config;
pub mod es;
pub mod fuzzing;
pub mod http;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod protocol;
pub mod retry;
pub mod scheduler;
pub mod service;
pub mod shutdown;
pub mod sources;
pub mod sync;
pub mod telemetry;

/// This build's version (`elastic-ingest --version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
