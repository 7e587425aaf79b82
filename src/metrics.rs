//! Process-wide metrics: one `prometheus-client` registry, rendered in the Prometheus text
//! format (0.0.4) on `/metrics`.
//!
//! The engine's metrics are fixed here, so dashboards and tests can rely on them; each
//! source registers its own (`SourceFactory::register_metrics`) under a `source` label
//! (the Slack source's are in `sources::slack::metrics`):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `connectors_syncs_total` | counter | `status` (completed, error, canceled, suspended) |
//! | `connectors_documents_indexed_total` | counter | |
//! | `connectors_documents_deleted_total` | counter | |
//! | `connectors_bulk_request_duration_seconds` | histogram | |
//! | `connectors_queue_depth` | gauge | |
//! | `connectors_retries_total` | counter | `target` (elasticsearch, or a source's service type) |
//! | `connectors_syncs_running` | gauge | |
//! | `connectors_scheduling_failures_total` | counter | `step` (prepare, heartbeat, error_status, filtering, status, schedule) |
//! | `connectors_notifications_total` | counter | `outcome` (sent, failed, dropped): Slack notifications (`crate::notify`) |
//!
//! Invariants: recording is cheap (atomics, or a short lock of a label map for events that
//! happen at most once per HTTP request), never per document; every family is listed (its
//! `# HELP` and `# TYPE`) from the start, before its first sample.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use std::sync::OnceLock;
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the bulk latency buckets, seconds.
const BULK_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The registry and the engine's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    syncs: Family<StatusLabels, Counter>,
    documents_indexed: Counter,
    documents_deleted: Counter,
    bulk_request_duration: Histogram,
    queue_depth: Gauge,
    syncs_running: Gauge,
    retries: Family<TargetLabels, Counter>,
    scheduling_failures: Family<StepLabels, Counter>,
    notifications: Family<OutcomeLabels, Counter>,
}

/// The process-wide registry: the engine's metrics, then every built-in source's.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut metrics = Metrics::new();
        for factory in crate::sources::registry() {
            let label = ("source".into(), factory.service_type().into());
            factory.register_metrics(metrics.registry.sub_registry_with_label(label));
        }
        crate::live::writer::metrics().register(&mut metrics.registry);
        metrics
    })
}

/// Registers `metric` under `name` (counters without `_total`: the text format adds it), to
/// be listed from the start: `prometheus-client` leaves out a family that has no sample yet,
/// and dashboards (and the tests) look for the family itself.
pub fn register(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    metric: Box<dyn Metric>,
) {
    registry.register_collector(Box::new(Listed { name, help, metric }));
}

#[derive(Debug)]
struct Listed {
    name: &'static str,
    help: &'static str,
    metric: Box<dyn Metric>,
}

impl Collector for Listed {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metric_encoder =
            encoder.encode_descriptor(self.name, self.help, None, self.metric.metric_type())?;
        self.metric.encode(metric_encoder)
    }
}

impl Metrics {
    /// The engine's metrics in a registry of their own (tests; the service uses [`global`]).
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            syncs: Family::default(),
            documents_indexed: Counter::default(),
            documents_deleted: Counter::default(),
            bulk_request_duration: Histogram::new(BULK_BUCKETS),
            queue_depth: Gauge::default(),
            syncs_running: Gauge::default(),
            retries: Family::default(),
            scheduling_failures: Family::default(),
            notifications: Family::default(),
        };
        let mut registry = Registry::default();
        let engine: [(&'static str, &'static str, Box<dyn Metric>); 9] = [
            (
                "connectors_syncs",
                "Sync jobs finished, by final status.",
                Box::new(metrics.syncs.clone()),
            ),
            (
                "connectors_syncs_running",
                "Sync jobs running now.",
                Box::new(metrics.syncs_running.clone()),
            ),
            (
                "connectors_documents_indexed",
                "Documents indexed.",
                Box::new(metrics.documents_indexed.clone()),
            ),
            (
                "connectors_documents_deleted",
                "Documents deleted.",
                Box::new(metrics.documents_deleted.clone()),
            ),
            (
                "connectors_bulk_request_duration_seconds",
                "Duration of _bulk requests.",
                Box::new(metrics.bulk_request_duration.clone()),
            ),
            (
                "connectors_queue_depth",
                "Documents waiting between the source and the bulk writer.",
                Box::new(metrics.queue_depth.clone()),
            ),
            (
                "connectors_retries",
                "Retried requests, by target.",
                Box::new(metrics.retries.clone()),
            ),
            (
                "connectors_scheduling_failures",
                "Failed steps of connector scheduling rounds, by step (the round goes on).",
                Box::new(metrics.scheduling_failures.clone()),
            ),
            (
                "connectors_notifications",
                "Notifications (sync alerts and reports), by outcome: sent, failed, dropped.",
                Box::new(metrics.notifications.clone()),
            ),
        ];
        for (name, help, metric) in engine {
            register(&mut registry, name, help, metric);
        }
        Metrics {
            registry,
            ..metrics
        }
    }

    /// A sync ended with `status`.
    pub fn sync_finished(&self, status: &str) {
        let labels = StatusLabels {
            status: status.to_string(),
        };
        self.syncs.get_or_create(&labels).inc();
    }

    /// A sync started (+1) or ended (-1).
    pub fn syncs_running_add(&self, delta: i64) {
        self.syncs_running.inc_by(delta);
    }

    /// Documents indexed.
    pub fn documents_indexed(&self, count: u64) {
        self.documents_indexed.inc_by(count);
    }

    /// Documents deleted.
    pub fn documents_deleted(&self, count: u64) {
        self.documents_deleted.inc_by(count);
    }

    /// One bulk request took `elapsed`.
    pub fn bulk_request(&self, elapsed: Duration) {
        self.bulk_request_duration.observe(elapsed.as_secs_f64());
    }

    /// Documents waiting between source and bulk writer.
    pub fn set_queue_depth(&self, depth: i64) {
        self.queue_depth.set(depth);
    }

    /// One retry towards `target` (`elasticsearch`, or a source's service type).
    pub fn retry(&self, target: &str) {
        let labels = TargetLabels {
            target: target.to_string(),
        };
        self.retries.get_or_create(&labels).inc();
    }

    /// One step of a connector's scheduling round failed (the round went on).
    pub fn scheduling_failure(&self, step: &str) {
        let labels = StepLabels {
            step: step.to_string(),
        };
        self.scheduling_failures.get_or_create(&labels).inc();
    }

    /// Failures of a scheduling step so far.
    pub fn scheduling_failures(&self, step: &str) -> u64 {
        let labels = StepLabels {
            step: step.to_string(),
        };
        self.scheduling_failures.get(&labels).map_or(0, |c| c.get())
    }

    /// A notification was `sent`, `failed` or `dropped`.
    pub fn notification(&self, outcome: &str) {
        let labels = OutcomeLabels {
            outcome: outcome.to_string(),
        };
        self.notifications.get_or_create(&labels).inc();
    }

    /// The Prometheus text exposition of everything ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_family() {
        let m = Metrics::default();
        m.sync_finished("completed");
        m.sync_finished("completed");
        m.sync_finished("error");
        m.documents_indexed(250);
        m.documents_deleted(3);
        m.bulk_request(Duration::from_millis(30));
        m.set_queue_depth(7);
        m.retry("slack");
        m.scheduling_failure("heartbeat");
        let text = m.render();
        for line in [
            "connectors_syncs_total{status=\"completed\"} 2",
            "connectors_syncs_total{status=\"error\"} 1",
            "connectors_documents_indexed_total 250",
            "connectors_documents_deleted_total 3",
            "connectors_bulk_request_duration_seconds_bucket{le=\"0.025\"} 0",
            "connectors_bulk_request_duration_seconds_bucket{le=\"0.05\"} 1",
            "connectors_bulk_request_duration_seconds_bucket{le=\"+Inf\"} 1",
            "connectors_bulk_request_duration_seconds_count 1",
            "connectors_queue_depth 7",
            "connectors_retries_total{target=\"slack\"} 1",
            "connectors_scheduling_failures_total{step=\"heartbeat\"} 1",
            "# TYPE connectors_bulk_request_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert_eq!(m.scheduling_failures("heartbeat"), 1);
        assert_eq!(m.scheduling_failures("prepare"), 0);
    }

    /// A family is listed before its first sample.
    #[test]
    fn families_are_listed_before_any_sample() {
        let text = Metrics::default().render();
        for name in [
            "connectors_syncs_total",
            "connectors_retries_total",
            "connectors_scheduling_failures_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} counter")),
                "{name} in\n{text}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.retry("a\"b\\c\nd");
        let text = m.render();
        assert!(
            text.contains("connectors_retries_total{target=\"a\\\"b\\\\c\\nd\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn sources_register_their_metrics_under_their_service_type() {
        let text = global().render();
        assert!(
            text.contains("# TYPE connectors_slack_calls_total counter"),
            "{text}"
        );
    }
}
