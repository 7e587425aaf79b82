//! The optional health and metrics listener (`service.http.listen`, off by default).
//!
//! - `GET /healthz`: 200 while the process runs.
//! - `GET /readyz`: 200 when Elasticsearch answered recently and the service loops run,
//!   503 with the reasons otherwise.
//! - `GET /metrics`: [`crate::metrics`] in the Prometheus text format.
//! - `POST /live/{connector_id}`: live-update deliveries (the Slack Events API), judged and
//!   queued by [`crate::live::receive::Receivers::deliver`]; 404 for a connector without
//!   live updates over http.
//!
//! Invariant: the listener never blocks or fails the service: a bind error is reported at
//! start-up (the address is the user's configuration), and the server stops with the
//! shutdown token.

use crate::live::receive::Receivers;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Readiness facts, set by the service.
#[derive(Debug, Default)]
pub struct Health {
    elasticsearch_ok: AtomicBool,
    loops_running: AtomicBool,
}

impl Health {
    /// Records whether the last Elasticsearch call succeeded.
    pub fn set_elasticsearch_ok(&self, ok: bool) {
        self.elasticsearch_ok.store(ok, Ordering::Relaxed);
    }

    /// Records whether the service loops are running.
    pub fn set_loops_running(&self, running: bool) {
        self.loops_running.store(running, Ordering::Relaxed);
    }

    /// Problems that make the service not ready (empty = ready).
    pub fn problems(&self) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if !self.elasticsearch_ok.load(Ordering::Relaxed) {
            problems.push("elasticsearch is not reachable");
        }
        if !self.loops_running.load(Ordering::Relaxed) {
            problems.push("service loops are not running");
        }
        problems
    }
}

/// The router (exposed for tests).
pub fn router(health: Arc<Health>) -> Router {
    router_with(health, Receivers::default())
}

/// The router with the live-update endpoints of `receivers`.
pub fn router_with(health: Arc<Health>, receivers: Receivers) -> Router {
    let live = Router::new()
        .route("/live/{connector_id}", post(live))
        .with_state(receivers);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
        .merge(live)
}

async fn live(
    State(receivers): State<Receivers>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let now = chrono::Utc::now().timestamp();
    let (status, reply) = receivers.deliver(&connector_id, &headers, &body, now);
    (status, axum::Json(reply))
}

async fn readyz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    let problems = health.problems();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join("; ")),
        )
    }
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::global().render(),
    )
}

/// Binds `listen` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    listen: &str,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    serve_with(listen, health, Receivers::default(), shutdown).await
}

/// [`serve`] with the live-update endpoints of `receivers`.
pub async fn serve_with(
    listen: &str,
    health: Arc<Health>,
    receivers: Receivers,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let server = axum::serve(listener, router_with(health, receivers))
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(error) = server.await {
            tracing::warn!(%error, "health and metrics listener stopped");
        }
    });
    tracing::info!(%addr, "health and metrics listener on /healthz, /readyz, /metrics, /live/{{connector_id}}");
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get_text(addr: SocketAddr, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    #[tokio::test]
    async fn health_readiness_and_metrics() {
        let health = Arc::new(Health::default());
        let shutdown = CancellationToken::new();
        let addr = serve("127.0.0.1:0", health.clone(), shutdown.clone())
            .await
            .unwrap();
        assert_eq!(get_text(addr, "/healthz").await, (200, "ok\n".to_string()));
        let (status, body) = get_text(addr, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("elasticsearch is not reachable"), "{body}");
        health.set_elasticsearch_ok(true);
        health.set_loops_running(true);
        assert_eq!(get_text(addr, "/readyz").await.0, 200);
        crate::metrics::global().documents_indexed(1);
        let (status, body) = get_text(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            body.contains("# TYPE connectors_documents_indexed_total counter"),
            "{body}"
        );
        assert!(body.contains("connectors_slack_calls_total"));
        shutdown.cancel();
    }
}
