//! How a finished job is told to whoever listens (notifications): a [`JobOutcome`] handed to
//! a [`JobObserver`] once the job and its connector are finalised.
//!
//! Invariants: the hook is synchronous and must not block or fail (an observer queues the
//! outcome and returns at once), so a listener can never delay or change a job's outcome;
//! the outcome is source-agnostic (ids, status, error text, counters, times).

use super::job::JobStatus;
use crate::sync::{JobKind, StatsSnapshot};
use chrono::{DateTime, Utc};

/// A job that ended (completed, error, canceled, suspended).
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    /// The connector.
    pub connector_id: String,
    /// The connector's display name, when it has one.
    pub connector_name: Option<String>,
    /// The connector's service type.
    pub service_type: Option<String>,
    /// The index the job wrote.
    pub index_name: Option<String>,
    /// The job.
    pub job_id: String,
    /// `full`, `incremental` or `access_control`.
    pub job_kind: JobKind,
    /// How it ended.
    pub status: JobStatus,
    /// The connector's last status of this kind before the job (its previous job's end):
    /// lets a listener tell a new failure from an ongoing one across restarts and replicas.
    pub previous_status: Option<JobStatus>,
    /// The job's `error`.
    pub error: Option<String>,
    /// Final counters.
    pub stats: StatsSnapshot,
    /// Documents in the index after the job.
    pub total_document_count: u64,
    /// When the job was claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: DateTime<Utc>,
}

/// Told of every job a service finalises (including jobs failed by the cleanup).
pub trait JobObserver: Send + Sync {
    /// Called once per finished job; must return at once and never fail.
    fn job_finished(&self, outcome: JobOutcome);
}
