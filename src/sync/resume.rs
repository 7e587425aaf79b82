//! Resumable full syncs: the resume point a full sync records as it goes, and when a
//! source's checkpoint may be recorded.
//!
//! A checkpoint ([`SinkOp::Checkpoint`](crate::sources::SinkOp)) claims everything the source
//! sent before it, so it may only be recorded once all of that is in Elasticsearch. The
//! [`Tracker`] numbers bulk requests in dispatch order and keeps a watermark: the highest
//! number up to which every request succeeded. A checkpoint needs the request that holds the
//! last operation sent before it; it is released, in arrival order, when the watermark
//! reaches that request. A request that fails or is abandoned never finishes, so nothing
//! sent after its operations is ever recorded.
//!
//! What is recorded is a [`ResumePoint`]: the sync's marker, the permanent item failures so
//! far, and the latest value of each checkpoint key. The engine publishes it to the sync's
//! [`Progress`] cell; the job runner writes it to the job document as `metadata.resume`
//! (through `_stats` in API mode). A restarted service reads it back, and the resumed sync
//! writes with the same marker: its deletion sweep (documents with an older marker, or none)
//! then covers what was written before and after the interruption. Failures before the
//! interruption still cancel the sweep.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The key of the resume point in a job's `metadata`.
pub const METADATA_KEY: &str = "resume";

/// Where an interrupted full sync stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The `_sync_marker` the sync writes with.
    pub marker: i64,
    /// Bulk items rejected for good before the point was written: any cancels the sweep.
    #[serde(default)]
    pub failed: u64,
    /// The source's checkpoints: key → the last value recorded.
    #[serde(default)]
    pub checkpoints: Map<String, Value>,
}

impl ResumePoint {
    /// A sync's start: its marker, nothing recorded yet.
    pub fn new(marker: i64) -> ResumePoint {
        ResumePoint {
            marker,
            failed: 0,
            checkpoints: Map::new(),
        }
    }

    /// The point stored in a job's `metadata` (`None`: none, or not one we wrote: the job
    /// then starts over, which is always safe).
    pub fn from_metadata(metadata: &Value) -> Option<ResumePoint> {
        let stored = metadata.get(METADATA_KEY).filter(|v| !v.is_null())?;
        match serde_json::from_value::<ResumePoint>(stored.clone()) {
            Ok(point) if point.marker > 0 => Some(point),
            Ok(_) | Err(_) => {
                tracing::warn!("the job's resume point is unreadable; the sync starts over");
                None
            }
        }
    }

    /// As stored under [`METADATA_KEY`].
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The recorded resume point of a running sync, shared between the engine (writer) and the
/// job runner (reader). Each change bumps a version, so the runner writes only news.
#[derive(Debug, Default)]
pub struct Progress {
    point: Mutex<Option<ResumePoint>>,
    version: AtomicU64,
}

impl Progress {
    /// Starts recording for a sync (its marker and, when resumed, the points so far).
    pub fn start(&self, point: ResumePoint) {
        *self.lock() = Some(point);
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    /// Records durable checkpoints.
    pub fn record(&self, checkpoints: impl IntoIterator<Item = (String, Value)>) {
        let mut guard = self.lock();
        let Some(point) = guard.as_mut() else { return };
        let mut changed = false;
        for (key, value) in checkpoints {
            point.checkpoints.insert(key, value);
            changed = true;
        }
        if changed {
            self.version.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The current version (0: nothing recorded).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// The recorded point and its version, if one was started.
    pub fn current(&self) -> Option<(u64, ResumePoint)> {
        let guard = self.lock();
        let point = guard.clone()?;
        Some((self.version(), point))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ResumePoint>> {
        self.point.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Decides when checkpoints become durable (pure; see the module docs).
#[derive(Debug, Default)]
pub struct Tracker {
    /// Requests dispatched so far (the last one's number).
    dispatched: u64,
    /// Every request up to this number succeeded.
    watermark: u64,
    /// Succeeded requests above the watermark.
    finished: BTreeSet<u64>,
    /// Checkpoints waiting, with the request number each needs, in arrival order.
    pending: VecDeque<(u64, String, Value)>,
}

impl Tracker {
    /// A tracker with nothing dispatched.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Numbers the next request (1, 2, …).
    pub fn dispatch(&mut self) -> u64 {
        self.dispatched += 1;
        self.dispatched
    }

    /// A checkpoint arrives; `open_batch` says whether the batch under construction holds
    /// operations (then the checkpoint needs that batch, the next request). Returns what is
    /// durable at once.
    pub fn checkpoint(
        &mut self,
        key: String,
        value: Value,
        open_batch: bool,
    ) -> Vec<(String, Value)> {
        let needs = self.dispatched + u64::from(open_batch);
        self.pending.push_back((needs, key, value));
        self.release()
    }

    /// Request `seq` succeeded; returns the checkpoints that became durable.
    pub fn finished(&mut self, seq: u64) -> Vec<(String, Value)> {
        if seq > self.watermark {
            self.finished.insert(seq);
        }
        while self.finished.remove(&(self.watermark + 1)) {
            self.watermark += 1;
        }
        self.release()
    }

    /// Whether a checkpoint waits for the batch under construction (which should then be
    /// sent soon rather than when full).
    pub fn waits_on_open_batch(&self) -> bool {
        self.pending
            .back()
            .is_some_and(|(needs, _, _)| *needs > self.dispatched)
    }

    fn release(&mut self) -> Vec<(String, Value)> {
        let mut durable = Vec::new();
        while let Some((needs, _, _)) = self.pending.front() {
            if *needs > self.watermark {
                break;
            }
            if let Some((_, key, value)) = self.pending.pop_front() {
                durable.push((key, value));
            }
        }
        durable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(durable: Vec<(String, Value)>) -> Vec<String> {
        durable.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_checkpoint_with_nothing_unwritten_is_durable_at_once() {
        let mut t = Tracker::new();
        assert_eq!(keys(t.checkpoint("a".into(), json!(1), false)), ["a"]);
        let seq = t.dispatch();
        assert_eq!(keys(t.finished(seq)), Vec::<String>::new());
        assert_eq!(keys(t.checkpoint("b".into(), json!(2), false)), ["b"]);
    }

    #[test]
    fn a_checkpoint_waits_for_the_open_batch_and_everything_before_it() {
        let mut t = Tracker::new();
        let first = t.dispatch(); // 1 in flight
        assert!(t.checkpoint("a".into(), json!(1), true).is_empty()); // needs 2
        assert!(t.waits_on_open_batch());
        let second = t.dispatch();
        assert!(!t.waits_on_open_batch());
        assert!(t.checkpoint("b".into(), json!(2), false).is_empty()); // needs 2
        let third = t.dispatch();
        assert!(t.checkpoint("c".into(), json!(3), false).is_empty()); // needs 3
                                                                       // Out of order: 2 and 3 finish before 1.
        assert!(t.finished(second).is_empty());
        assert!(t.finished(third).is_empty());
        assert_eq!(keys(t.finished(first)), ["a", "b", "c"]);
    }

    #[test]
    fn a_request_that_never_finishes_holds_every_later_checkpoint() {
        let mut t = Tracker::new();
        let lost = t.dispatch();
        assert!(t.checkpoint("a".into(), json!(1), false).is_empty());
        let later = t.dispatch();
        assert!(t.checkpoint("b".into(), json!(2), false).is_empty());
        assert!(t.finished(later).is_empty());
        let _ = lost; // failed: never reported finished
        assert!(t.checkpoint("c".into(), json!(3), false).is_empty());
    }

    #[test]
    fn progress_keeps_the_last_value_per_key_and_versions_changes() {
        let progress = Progress::default();
        assert!(progress.current().is_none());
        progress.record([("x".to_string(), json!(1))]); // not started: ignored
        assert_eq!(progress.version(), 0);
        progress.start(ResumePoint::new(42));
        progress.record([("C1".to_string(), json!({"before": "2"}))]);
        progress.record([("C1".to_string(), json!({"done": true}))]);
        let (version, point) = progress.current().unwrap();
        assert_eq!(version, 3);
        assert_eq!(point.marker, 42);
        assert_eq!(point.checkpoints["C1"], json!({"done": true}));
    }

    #[test]
    fn resume_points_round_trip_through_job_metadata() {
        let mut point = ResumePoint::new(1_700_000_000_000);
        point.failed = 2;
        point.checkpoints.insert("C1".into(), json!({"done": true}));
        let metadata = json!({"resume": point.to_value(), "channels": 3});
        assert_eq!(ResumePoint::from_metadata(&metadata), Some(point));
        assert_eq!(ResumePoint::from_metadata(&json!({})), None);
        assert_eq!(ResumePoint::from_metadata(&json!({"resume": null})), None);
        assert_eq!(
            ResumePoint::from_metadata(&json!({"resume": {"marker": "x"}})),
            None
        );
        assert_eq!(
            ResumePoint::from_metadata(&json!({"resume": {"marker": 0}})),
            None
        );
    }
}
