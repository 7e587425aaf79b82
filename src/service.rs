//! The daemon: start-up checks, then the services selected by `--action` until shutdown.
//!
//! Start-up: wait for Elasticsearch (`max_wait_duration`) and check its version; in
//! direct-index mode make sure the connector indices exist. Then the loops run until the
//! shutdown token is cancelled.

use crate::config::Config;
use crate::es::{EsClient, EsError};
use crate::protocol::indices;
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
}

/// Connects, runs the preflight, then runs `actions` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    actions: Vec<Action>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let es = EsClient::new(&config.elasticsearch)?;
    tracing::info!(host = %es.host(), "connecting to elasticsearch");
    let info = tokio::select! {
        info = es.wait_for_cluster() => info?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    tracing::info!(
        version = info["version"]["number"].as_str().unwrap_or("unknown"),
        cluster = info["cluster_name"].as_str().unwrap_or("unknown"),
        "connected to elasticsearch"
    );
    if !config.elasticsearch.feature_use_connectors_api {
        let created = indices::ensure_connector_indices(&es).await?;
        if !created.is_empty() {
            tracing::info!(?created, "created the connector indices");
        }
    }
    tracing::info!(?actions, connectors = ?config.connector_ids(), "service running; press Ctrl-C to stop");
    shutdown.cancelled().await;
    tracing::info!("service stopped");
    Ok(())
}
