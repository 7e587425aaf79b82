//! Process-wide metrics, rendered in the Prometheus text format on `/metrics`.
//!
//! Invariants: recording is cheap (atomics, or a short mutex on label maps for events that
//! happen at most once per HTTP request), never on a per-document hot path except the plain
//! counters; names and labels are fixed here, so dashboards and tests can rely on them:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `connectors_syncs_total` | counter | `status` (completed, error, canceled, suspended) |
//! | `connectors_documents_indexed_total` | counter | |
//! | `connectors_documents_deleted_total` | counter | |
//! | `connectors_bulk_request_duration_seconds` | histogram | |
//! | `connectors_queue_depth` | gauge | |
//! | `connectors_slack_calls_total` | counter | `method`, `status` (HTTP status or `error`) |
//! | `connectors_slack_rate_limited_total` | counter | `method` |
//! | `connectors_retries_total` | counter | `target` (elasticsearch, slack) |
//! | `connectors_syncs_running` | gauge | |
//! | `connectors_scheduling_failures_total` | counter | `step` (prepare, heartbeat, error_status, filtering, status, schedule) |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the bulk latency buckets, seconds.
const BULK_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The registry.
#[derive(Default)]
pub struct Metrics {
    syncs: Mutex<BTreeMap<String, u64>>,
    documents_indexed: AtomicU64,
    documents_deleted: AtomicU64,
    bulk_buckets: [AtomicU64; BULK_BUCKETS.len()],
    bulk_count: AtomicU64,
    bulk_sum_micros: AtomicU64,
    queue_depth: AtomicI64,
    syncs_running: AtomicI64,
    slack_calls: Mutex<BTreeMap<(String, String), u64>>,
    slack_rate_limited: Mutex<BTreeMap<String, u64>>,
    retries: Mutex<BTreeMap<String, u64>>,
    scheduling_failures: Mutex<BTreeMap<String, u64>>,
}

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str, by: u64) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    *map.entry(key.to_string()).or_insert(0) += by;
}

impl Metrics {
    /// A sync ended with `status`.
    pub fn sync_finished(&self, status: &str) {
        bump(&self.syncs, status, 1);
    }

    /// A sync started (+1) or ended (-1).
    pub fn syncs_running_add(&self, delta: i64) {
        self.syncs_running.fetch_add(delta, Ordering::Relaxed);
    }

    /// Documents indexed.
    pub fn documents_indexed(&self, count: u64) {
        self.documents_indexed.fetch_add(count, Ordering::Relaxed);
    }

    /// Documents deleted.
    pub fn documents_deleted(&self, count: u64) {
        self.documents_deleted.fetch_add(count, Ordering::Relaxed);
    }

    /// One bulk request took `elapsed`.
    pub fn bulk_request(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.bulk_buckets.iter().zip(BULK_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.bulk_count.fetch_add(1, Ordering::Relaxed);
        self.bulk_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Documents waiting between source and bulk writer.
    pub fn set_queue_depth(&self, depth: i64) {
        self.queue_depth.store(depth, Ordering::Relaxed);
    }

    /// One Slack call answered `status` (an HTTP status, or `error` without a response).
    pub fn slack_call(&self, method: &str, status: &str) {
        let mut map = self.slack_calls.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((method.to_string(), status.to_string()))
            .or_insert(0) += 1;
    }

    /// One Slack call was rate limited (429 or `ratelimited`).
    pub fn slack_rate_limited(&self, method: &str) {
        bump(&self.slack_rate_limited, method, 1);
    }

    /// One retry towards `target` (`elasticsearch` or `slack`).
    pub fn retry(&self, target: &str) {
        bump(&self.retries, target, 1);
    }

    /// One step of a connector's scheduling round failed (the round went on).
    pub fn scheduling_failure(&self, step: &str) {
        bump(&self.scheduling_failures, step, 1);
    }

    /// Failures of a scheduling step so far.
    pub fn scheduling_failures(&self, step: &str) -> u64 {
        self.scheduling_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(step)
            .copied()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        counter(
            &mut out,
            "connectors_syncs_total",
            "Sync jobs finished, by final status.",
        );
        labelled(&mut out, "connectors_syncs_total", "status", &self.syncs);
        let _ = writeln!(out, "# HELP connectors_syncs_running Sync jobs running now.\n# TYPE connectors_syncs_running gauge");
        let _ = writeln!(
            out,
            "connectors_syncs_running {}",
            self.syncs_running.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "connectors_documents_indexed_total",
            "Documents indexed.",
        );
        let _ = writeln!(
            out,
            "connectors_documents_indexed_total {}",
            self.documents_indexed.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "connectors_documents_deleted_total",
            "Documents deleted.",
        );
        let _ = writeln!(
            out,
            "connectors_documents_deleted_total {}",
            self.documents_deleted.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP connectors_bulk_request_duration_seconds Duration of _bulk requests.\n# TYPE connectors_bulk_request_duration_seconds histogram");
        for (bucket, bound) in self.bulk_buckets.iter().zip(BULK_BUCKETS) {
            let _ = writeln!(
                out,
                "connectors_bulk_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.bulk_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "connectors_bulk_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "connectors_bulk_request_duration_seconds_sum {}",
            self.bulk_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "connectors_bulk_request_duration_seconds_count {count}"
        );
        let _ = writeln!(out, "# HELP connectors_queue_depth Documents waiting between the source and the bulk writer.\n# TYPE connectors_queue_depth gauge");
        let _ = writeln!(
            out,
            "connectors_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "connectors_slack_calls_total",
            "Slack Web API calls, by method and HTTP status.",
        );
        for ((method, status), n) in self
            .slack_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "connectors_slack_calls_total{{method=\"{}\",status=\"{}\"}} {n}",
                escape(method),
                escape(status)
            );
        }
        counter(
            &mut out,
            "connectors_slack_rate_limited_total",
            "Slack calls answered 429 or ratelimited.",
        );
        labelled(
            &mut out,
            "connectors_slack_rate_limited_total",
            "method",
            &self.slack_rate_limited,
        );
        counter(
            &mut out,
            "connectors_retries_total",
            "Retried requests, by target.",
        );
        labelled(
            &mut out,
            "connectors_retries_total",
            "target",
            &self.retries,
        );
        counter(
            &mut out,
            "connectors_scheduling_failures_total",
            "Failed steps of connector scheduling rounds, by step (the round goes on).",
        );
        labelled(
            &mut out,
            "connectors_scheduling_failures_total",
            "step",
            &self.scheduling_failures,
        );
        out
    }
}

/// One sample per key of a single-label counter.
fn labelled(out: &mut String, name: &str, label: &str, map: &Mutex<BTreeMap<String, u64>>) {
    for (value, n) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(value));
    }
}

/// Label values escaped as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
        m.slack_call("conversations.history", "200");
        m.slack_call("conversations.history", "429");
        m.slack_rate_limited("conversations.history");
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
            "connectors_slack_calls_total{method=\"conversations.history\",status=\"429\"} 1",
            "connectors_slack_rate_limited_total{method=\"conversations.history\"} 1",
            "connectors_retries_total{target=\"slack\"} 1",
            "connectors_scheduling_failures_total{step=\"heartbeat\"} 1",
            "# TYPE connectors_bulk_request_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
