//! Starting and stopping each connector's live updates as its document says.
//!
//! Every [`POLL`] the manager reads the handled connectors; a connector whose source gives
//! a live receiver ([`crate::sources::SourceFactory::live_receiver`]) gets a queue, a
//! writer task ([`super::writer::run`]) and a route on the HTTP listener; a change of its
//! configuration, index, sync rules or pipeline restarts them; a connector that turns live
//! updates off, or goes away, is stopped. A source that drives its own connection (Slack's
//! Socket Mode) is started through [`super::receive::LiveReceiver::start`] with the same
//! endpoint. A gap (a full queue refused events, or the source's connection was down too
//! long) asks for an incremental sync of the connector, so nothing stays missing until the
//! next schedule; an event that gives the connector a new conversation to read (Slack: the
//! app joined a channel) asks for one too, and restarts the receiver so that its context
//! (the conversations it indexes) includes it.
//!
//! Invariant: a receiver that cannot start (bad configuration, Slack unreachable) is logged
//! and retried after [`RETRY`], never failing the service; secrets are not logged (the
//! errors are the source's, which never carry them).

use super::receive::{Endpoint, Receivers};
use super::writer::{self, WriterOptions};
use crate::config::Config;
use crate::es::EsClient;
use crate::protocol::connector::Connector;
use crate::protocol::connectors_query;
use crate::protocol::doc::{readable, Doc};
use crate::protocol::store::ConnectorStore;
use crate::sources::SourceRegistry;
use crate::sync::JobKind;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often connectors are re-read.
pub const POLL: Duration = Duration::from_secs(5);
/// How long a receiver that failed to start waits before the next attempt.
pub const RETRY: Duration = Duration::from_secs(60);

struct Running {
    key: String,
    cancel: CancellationToken,
    endpoint: Option<Arc<Endpoint>>,
    failed_at: Option<Instant>,
}

/// What the live pipeline of a connector depends on: a change restarts it.
fn key(connector: &Connector) -> String {
    json!({
        "configuration": connector.configuration,
        "index": connector.index_name,
        "filtering": filtering(connector),
        "pipeline": connector.pipeline,
    })
    .to_string()
}

fn filtering(connector: &Connector) -> Value {
    if !connector.sync_rules_enabled() {
        return Value::Null;
    }
    connector
        .active_filtering()
        .map(|f| f.to_value())
        .unwrap_or(Value::Null)
}

/// Runs until `shutdown`.
pub async fn run(
    store: Arc<dyn ConnectorStore>,
    registry: SourceRegistry,
    config: Arc<Config>,
    es: EsClient,
    receivers: Receivers,
    shutdown: CancellationToken,
) {
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        match store.search_connectors(connectors_query(&config)).await {
            Ok(found) => {
                let connectors = readable(found, "live updates");
                reconcile(
                    &store,
                    &registry,
                    &es,
                    &receivers,
                    &mut running,
                    connectors,
                    &shutdown,
                )
                .await;
            }
            Err(error) => tracing::warn!(%error, "live updates: cannot read the connectors"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    for (id, run) in running.drain() {
        run.cancel.cancel();
        receivers.remove(&id);
    }
}

async fn reconcile(
    store: &Arc<dyn ConnectorStore>,
    registry: &SourceRegistry,
    es: &EsClient,
    receivers: &Receivers,
    running: &mut HashMap<String, Running>,
    connectors: Vec<Doc<Connector>>,
    shutdown: &CancellationToken,
) {
    let listed: Vec<String> = connectors.iter().map(|c| c.id.clone()).collect();
    running.retain(|id, run| {
        let keep = listed.contains(id);
        if !keep {
            run.cancel.cancel();
            receivers.remove(id);
        }
        keep
    });
    for doc in connectors {
        let connector = &doc.source;
        let (Some(service_type), Some(index)) = (&connector.service_type, &connector.index_name)
        else {
            continue;
        };
        let Some(factory) = registry.get(service_type) else {
            continue;
        };
        let key = key(connector);
        if let Some(run) = running.get(&doc.id) {
            let mut refresh = false;
            if let Some(endpoint) = &run.endpoint {
                if endpoint.take_gap() {
                    request_catch_up(store, &doc.id).await;
                }
                // The receiver's context is out of date (the app joined a conversation):
                // rebuilt below, while the catch-up sync reads what it missed.
                refresh = endpoint.take_refresh();
            }
            let retry_due = run.failed_at.is_some_and(|at| at.elapsed() >= RETRY);
            if run.key == key && !retry_due && !refresh {
                continue;
            }
            run.cancel.cancel();
            receivers.remove(&doc.id);
            running.remove(&doc.id);
        }
        let cancel = shutdown.child_token();
        let Ok(configuration) = connector.configuration() else {
            continue;
        };
        let span = tracing::info_span!("live", connector_id = %doc.id);
        let _entered = span.enter();
        let mut run = Running {
            key,
            cancel: cancel.clone(),
            endpoint: None,
            failed_at: None,
        };
        match factory
            .live_receiver(&doc.id, &configuration, &cancel)
            .await
        {
            Ok(None) => {}
            Ok(Some(receiver)) => {
                let options = WriterOptions {
                    connector_id: doc.id.clone(),
                    index: index.clone(),
                    pipeline: connector
                        .pipeline
                        .as_ref()
                        .map(|p| p.settings())
                        .unwrap_or_default(),
                    filtering: filtering(connector),
                    // Sources refuse live updates they cannot protect (the Slack source
                    // with document-level security).
                    require_access_control: false,
                    flush: writer::FLUSH,
                };
                let endpoint = writer::spawn(es.clone(), options, receiver, cancel.clone());
                receivers.insert(&doc.id, endpoint.clone());
                if endpoint.receiver.start(endpoint.clone(), cancel.clone()) {
                    tracing::info!(index = %index, "live updates on: the source's own connection");
                } else {
                    tracing::info!(index = %index, "live updates on: deliveries go to /live/{}", doc.id);
                }
                run.endpoint = Some(endpoint);
            }
            Err(error) => {
                tracing::warn!(%error, "live updates cannot start; retrying in {}s", RETRY.as_secs());
                run.failed_at = Some(Instant::now());
            }
        }
        running.insert(doc.id.clone(), run);
    }
}

/// Asks for an incremental sync after lost events.
async fn request_catch_up(store: &Arc<dyn ConnectorStore>, connector_id: &str) {
    match store
        .create_job(connector_id, JobKind::Incremental, "on_demand")
        .await
    {
        Ok(job) => tracing::warn!(
            connector_id,
            job,
            "live events were lost (queue full, or the connection was down too long): incremental sync requested"
        ),
        Err(error) => {
            tracing::error!(connector_id, %error, "live events were lost and the catch-up sync could not be requested")
        }
    }
}
