//! The Slack source's metrics, registered by [`SlackFactory`](super::SlackFactory) into the
//! process-wide registry (`crate::metrics`), which labels them `source="slack"`:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `connectors_slack_calls_total` | counter | `source`, `connector`, `method`, `status` (HTTP status or `error`) |
//! | `connectors_slack_rate_limited_total` | counter | `source`, `connector`, `method` |
//!
//! Retries are counted by the engine's `connectors_retries_total{target="slack"}`.
//!
//! Invariant: recorded once per HTTP request, never per document.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    connector: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    connector: String,
    method: String,
}

/// The families, one per process (sources come and go with jobs; their counts stay).
#[derive(Debug, Default)]
struct Families {
    calls: Family<CallLabels, Counter>,
    rate_limited: Family<MethodLabels, Counter>,
}

fn families() -> &'static Families {
    static FAMILIES: OnceLock<Families> = OnceLock::new();
    FAMILIES.get_or_init(Families::default)
}

/// Registers the Slack families (the factory's `register_metrics`).
pub fn register(registry: &mut Registry) {
    let families = families();
    crate::metrics::register(
        registry,
        "connectors_slack_calls",
        "Slack Web API calls, by connector, method and HTTP status.",
        Box::new(families.calls.clone()),
    );
    crate::metrics::register(
        registry,
        "connectors_slack_rate_limited",
        "Slack calls answered 429 or ratelimited, by connector and method.",
        Box::new(families.rate_limited.clone()),
    );
}

/// What one client records, labelled with its connector.
#[derive(Debug, Clone, Default)]
pub struct CallMetrics {
    connector: Arc<str>,
}

impl CallMetrics {
    /// Metrics of calls made for `connector_id` (empty outside a service: tests, tools).
    pub fn for_connector(connector_id: &str) -> CallMetrics {
        CallMetrics {
            connector: connector_id.into(),
        }
    }

    /// One call of `method` answered `status` (an HTTP status, or `error` without a response).
    pub fn call(&self, method: &str, status: &str) {
        let labels = CallLabels {
            connector: self.connector.to_string(),
            method: method.to_string(),
            status: status.to_string(),
        };
        families().calls.get_or_create(&labels).inc();
    }

    /// One call of `method` was rate limited (429 or `ratelimited`).
    pub fn rate_limited(&self, method: &str) {
        let labels = MethodLabels {
            connector: self.connector.to_string(),
            method: method.to_string(),
        };
        families().rate_limited.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_labelled_by_source_connector_method_and_status() {
        let metrics = CallMetrics::for_connector("conn-metrics-test");
        metrics.call("conversations.history", "200");
        metrics.call("conversations.history", "429");
        metrics.rate_limited("conversations.history");
        let text = crate::metrics::global().render();
        for line in [
            "connectors_slack_calls_total{source=\"slack\",connector=\"conn-metrics-test\",method=\"conversations.history\",status=\"429\"} 1",
            "connectors_slack_rate_limited_total{source=\"slack\",connector=\"conn-metrics-test\",method=\"conversations.history\"} 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }
}
