//! Data sources: the [`DataSource`] trait every source implements, and the registry that
//! maps a connector's `service_type` to its [`SourceFactory`] ([`registry`], the only list of
//! service types; [`SourceRegistry`], what a service builds from).
//!
//! Contract between a source and the sync engine:
//! - documents are [`Document`]s: a body the source serialized once, and a typed timestamp
//!   (the invariants are in [`document`]);
//! - a source pushes [`DocOp`]s into a bounded [`DocSender`]; `send` waits when the engine is
//!   behind (backpressure), and fails with [`SourceError::SinkClosed`] when the engine has
//!   stopped (cancel, bulk failure): the source must then return promptly;
//! - `get_docs` returns `Ok(())` only when **every** fetch succeeded: the engine deletes
//!   documents that were not produced only after an `Ok` full sync, so a source must never
//!   swallow a fetch error (skipping a channel on purpose is fine and is reported in
//!   [`DataSource::metadata`]);
//! - sources check the cancellation token between pages;
//! - a full sync may mark resume points ([`DocSender::checkpoint`]): once every operation sent
//!   before a checkpoint is written, the engine records it where a restarted service finds it,
//!   and an interrupted job continues through [`DataSource::resume_docs`] with the recorded
//!   points instead of starting over;
//! - an incremental sync may name scopes it re-read completely ([`DocSender::sweep`]): after
//!   a fetch that saw everything, the engine deletes the documents of those scopes that the
//!   sync did not write (and nothing outside them).

pub mod access_control;
pub mod document;
pub mod schema;
pub mod slack;

pub use document::{AccessControl, Document, DocumentWriter, Timestamp};
pub use schema::{ConfigField, Configuration, ConfigurationExt};

use async_trait::async_trait;
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a source asks the engine to do with one document.
#[derive(Debug, Clone, PartialEq)]
pub enum DocOp {
    /// Create or replace.
    Index(Document),
    /// Partial update (incremental syncs).
    Update(Document),
    /// Delete by id (incremental syncs).
    Delete(String),
}

/// What travels from a source to the engine: document operations, in order, with the
/// markers a source puts between them.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkOp {
    /// A document operation.
    Doc(DocOp),
    /// A resume point of a full sync: `value` under `key` replaces the earlier value of that
    /// key once every operation sent before it is written ([`DocSender::checkpoint`]).
    Checkpoint {
        /// Which part of the sync (a Slack channel id, …).
        key: String,
        /// Where that part stands, as the source reads it back in [`DataSource::resume_docs`].
        value: Value,
    },
    /// An incremental sync's scope that was read again in full: an Elasticsearch query
    /// filter on the source's own document fields ([`DocSender::sweep`]).
    Sweep(Value),
}

/// The producer side of the source → engine channel.
#[derive(Debug, Clone)]
pub struct DocSender {
    tx: mpsc::Sender<SinkOp>,
}

impl DocSender {
    /// A bounded channel of `capacity` operations.
    pub fn channel(capacity: usize) -> (DocSender, mpsc::Receiver<SinkOp>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (DocSender { tx }, rx)
    }

    /// Sends one operation, waiting while the engine is behind.
    pub async fn send(&self, op: DocOp) -> Result<(), SourceError> {
        self.put(SinkOp::Doc(op)).await
    }

    /// Marks a resume point of a full sync: when every operation sent before this call has
    /// been written, `value` becomes the recorded state of `key` (the last value per key
    /// wins). The recorded points are what [`DataSource::resume_docs`] gets after an
    /// interruption, so a point must only claim what was sent before it.
    pub async fn checkpoint(&self, key: &str, value: Value) -> Result<(), SourceError> {
        self.put(SinkOp::Checkpoint {
            key: key.to_string(),
            value,
        })
        .await
    }

    /// Declares, in an incremental sync, that every document matching `filter` (an
    /// Elasticsearch query on the source's own fields) that still exists upstream was sent
    /// in this sync: after a complete fetch the engine deletes the other documents of that
    /// scope. A filter must never match a document the sync could not see.
    pub async fn sweep(&self, filter: Value) -> Result<(), SourceError> {
        self.put(SinkOp::Sweep(filter)).await
    }

    async fn put(&self, op: SinkOp) -> Result<(), SourceError> {
        self.tx.send(op).await.map_err(|_| SourceError::SinkClosed)
    }

    /// Shorthand for `send(DocOp::Index(..))` of a document made of a field map
    /// ([`Document::from_fields`]).
    pub async fn index(&self, id: String, body: Map<String, Value>) -> Result<(), SourceError> {
        self.send(DocOp::Index(Document::from_fields(id, body)))
            .await
    }
}

/// Why a source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The configuration is wrong; the message says which field and how to fix it.
    #[error("{0}")]
    Configuration(String),
    /// Authentication or authorization failed (revoked token, missing scope, …).
    #[error("{0}")]
    Auth(String),
    /// A fetch failed after retries; the sync fails and deletes nothing.
    #[error("{0}")]
    Fetch(String),
    /// The sync was cancelled.
    #[error("sync cancelled")]
    Cancelled,
    /// The engine stopped taking documents.
    #[error("the sync engine stopped taking documents")]
    SinkClosed,
    /// The job type is not supported by this source.
    #[error("{0}")]
    Unsupported(String),
}

/// A running data source, built from one job's configuration snapshot.
#[async_trait]
pub trait DataSource: Send + Sync {
    /// Checks that the source is reachable with these credentials.
    async fn ping(&self) -> Result<(), SourceError>;

    /// Deeper checks (token shape, scopes); messages name what to fix.
    async fn validate(&self) -> Result<(), SourceError> {
        Ok(())
    }

    /// Streams every document of a full sync into `sink`.
    async fn get_docs(
        &self,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError>;

    /// Streams the rest of an interrupted full sync, from the resume points it recorded
    /// ([`DocSender::checkpoint`]; key → last recorded value). The default starts over,
    /// which is always correct: the deletion sweep of the resumed job still covers what was
    /// written before the interruption.
    async fn resume_docs(
        &self,
        _checkpoints: &Map<String, Value>,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        self.get_docs(sink, cancel).await
    }

    /// Streams the changes since `cursor` (incremental syncs).
    async fn get_docs_incrementally(
        &self,
        _cursor: Option<&Value>,
        _sink: &DocSender,
        _cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(
            "this source does not support incremental syncs".into(),
        ))
    }

    /// Whether this source's configuration turns document-level security on: then every
    /// content document it makes carries `_allow_access_control` (the engine refuses any
    /// that does not), and its access-control syncs may run.
    fn document_level_security(&self) -> bool {
        false
    }

    /// Streams access-control documents (document-level security): one identity document
    /// per user ([`access_control`]). The engine rewrites only those whose body changed
    /// and deletes those no longer produced.
    async fn get_access_control(
        &self,
        _sink: &DocSender,
        _cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        Err(SourceError::Unsupported(
            "this source does not support access control syncs".into(),
        ))
    }

    /// The connector's saved `sync_cursor` (null when none), handed over before a job of any
    /// kind runs: what the source learned on earlier syncs that is not tied to the job type
    /// (the Slack source: its learned rate budgets). Incremental jobs also get it in
    /// [`get_docs_incrementally`](Self::get_docs_incrementally). A cursor the source cannot
    /// read must not fail the job: the source logs it and starts afresh.
    fn load_cursor(&self, _cursor: &Value) {}

    /// The cursor to save on the connector after a completed sync. The engine keeps the keys
    /// of the previous cursor this one does not set (so a cursor can carry other parts'
    /// state); `None` keeps the previous cursor as it is.
    fn sync_cursor(&self) -> Option<Value> {
        None
    }

    /// The connector's ingest pipeline settings, handed over before a job runs (a source
    /// that sends binary content as `_attachment` does so only when the pipeline extracts
    /// it).
    fn use_pipeline(&self, _settings: &crate::sync::PipelineSettings) {}

    /// Source-specific facts for the job's `metadata` (skipped channels, calls, …).
    fn metadata(&self) -> Value {
        Value::Object(Map::new())
    }

    /// Field → mapping of the fields its documents carry, for a content index the service
    /// creates ([`crate::sync::content_index`]); fields left out are mapped by the
    /// framework's dynamic template. Should equal its factory's.
    fn content_mappings(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// Builds [`DataSource`]s of one service type and describes them.
pub trait SourceFactory: Send + Sync {
    /// `service_type` (`slack`).
    fn service_type(&self) -> &'static str;
    /// Human name (`Slack`).
    fn display_name(&self) -> &'static str;
    /// The default configuration schema written to new connectors.
    fn default_configuration(&self) -> Configuration;
    /// The `features` object written to the connector document.
    fn features(&self) -> Value;
    /// Whether incremental syncs are supported.
    fn supports_incremental(&self) -> bool {
        false
    }
    /// Whether access-control syncs are supported.
    fn supports_access_control(&self) -> bool {
        false
    }
    /// The `module:Class` Elastic's Python framework lists for this service type under
    /// `sources` in `config.yml` (the configuration's default of that key), if it has one.
    fn upstream_class(&self) -> Option<&'static str> {
        None
    }
    /// Registers the source's own metrics into the process-wide registry, which labels
    /// them `source="<service type>"` (`crate::metrics::global`, once per process); a
    /// source records them labelled with its connector.
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}
    /// Field → mapping of the fields this source's documents carry (see
    /// [`DataSource::content_mappings`]), for a content index the CLI creates.
    fn content_mappings(&self) -> Map<String, Value> {
        Map::new()
    }
    /// Credentials that expire (an OAuth access token with rotation): the configuration
    /// with fresh ones when a renewal is due at `now`, `None` when nothing is due. The
    /// scheduler calls it every round before it checks the connector, and stores the result.
    fn renew_credentials<'a>(
        &'a self,
        _configuration: &'a Configuration,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> futures::future::BoxFuture<'a, Result<Option<Configuration>, SourceError>> {
        Box::pin(async { Ok(None) })
    }
    /// The receiver of live events for connector `connector_id` ([`crate::live`]), `None`
    /// when its configuration turns live updates off (the default) or the source has none.
    fn live_receiver<'a>(
        &'a self,
        _connector_id: &'a str,
        _configuration: &'a Configuration,
        _cancel: &'a CancellationToken,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Option<Arc<dyn crate::live::receive::LiveReceiver>>, SourceError>,
    > {
        Box::pin(async { Ok(None) })
    }
    /// Builds a source for connector `connector_id` from a configuration (the job's
    /// snapshot).
    fn build(
        &self,
        connector_id: &str,
        configuration: &Configuration,
    ) -> Result<Box<dyn DataSource>, SourceError>;
}

/// Every source this build has: the one list of service types. The configuration checks
/// `service_type`s against it, the CLI describes it, and a service builds from it (through a
/// [`SourceRegistry`], where tests inject their own).
pub fn registry() -> &'static [&'static dyn SourceFactory] {
    static SOURCES: [&dyn SourceFactory; 1] = [&slack::SlackFactory];
    &SOURCES
}

/// The built-in factory for `service_type`.
pub fn factory(service_type: &str) -> Option<&'static dyn SourceFactory> {
    find(registry(), service_type)
}

/// The built-in service types, in [`registry`] order.
pub fn service_types() -> Vec<&'static str> {
    types(registry())
}

fn find(
    factories: &[&'static dyn SourceFactory],
    service_type: &str,
) -> Option<&'static dyn SourceFactory> {
    factories
        .iter()
        .copied()
        .find(|f| f.service_type() == service_type)
}

fn types(factories: &[&'static dyn SourceFactory]) -> Vec<&'static str> {
    factories.iter().map(|f| f.service_type()).collect()
}

/// The source factories a running service builds from: [`registry`] by default; tests
/// inject their own.
#[derive(Clone)]
pub struct SourceRegistry {
    factories: Arc<Vec<&'static dyn SourceFactory>>,
}

impl Default for SourceRegistry {
    fn default() -> Self {
        SourceRegistry::new(registry().to_vec())
    }
}

impl std::fmt::Debug for SourceRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SourceRegistry")
            .field(&self.service_types())
            .finish()
    }
}

impl SourceRegistry {
    /// A registry of these factories (the first one of a service type wins).
    pub fn new(factories: Vec<&'static dyn SourceFactory>) -> SourceRegistry {
        SourceRegistry {
            factories: Arc::new(factories),
        }
    }

    /// The factory for a service type.
    pub fn get(&self, service_type: &str) -> Option<&'static dyn SourceFactory> {
        find(&self.factories, service_type)
    }

    /// The service types it has, in order.
    pub fn service_types(&self) -> Vec<&'static str> {
        types(&self.factories)
    }
}

/// The default `features` of a source without sync-rule extras, DLS or incremental syncs.
pub fn basic_features() -> Value {
    serde_json::json!({
        "sync_rules": {"basic": {"enabled": true}, "advanced": {"enabled": false}},
        "document_level_security": {"enabled": false},
        "incremental_sync": {"enabled": false},
        "native_connector_api_keys": {"enabled": false}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_knows_slack() {
        assert!(factory("slack").is_some());
        assert!(factory("nope").is_none());
        assert_eq!(service_types(), ["slack"]);
        let registry = SourceRegistry::default();
        assert!(registry.get("slack").is_some());
        assert!(registry.get("nope").is_none());
        assert_eq!(registry.service_types(), service_types());
    }
}
