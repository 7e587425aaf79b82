//! Sync-job documents (`.elastic-connectors-sync-jobs`, `elastic-connectors-protocol.md` §2.3)
//! and the pure decisions on them: the job snapshot ES takes of a connector, the queries of the
//! executors and the cleanup, and the finalisation writes of §2.5.
//!
//! Invariants:
//! - A job snapshot is what `POST _connector/_sync_job` stores: the job's configuration is a
//!   copy, so a job runs with the configuration it was created with.
//! - Terminal statuses (`completed`, `canceled`, `error`) are never left; a finished job's
//!   connector gets its `last_sync_status` released so the next job can start.

use super::connector::{active_filtering, last_sync_fields};
use crate::sync::{JobKind, StatsSnapshot};
use serde_json::{json, Map, Value};

/// Job statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for a worker.
    Pending,
    /// Claimed and running.
    InProgress,
    /// Cancel requested.
    Canceling,
    /// Cancelled.
    Canceled,
    /// Interrupted by a shutdown; runs again from scratch.
    Suspended,
    /// Done.
    Completed,
    /// Failed.
    Error,
}

impl JobStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::InProgress => "in_progress",
            JobStatus::Canceling => "canceling",
            JobStatus::Canceled => "canceled",
            JobStatus::Suspended => "suspended",
            JobStatus::Completed => "completed",
            JobStatus::Error => "error",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "pending" => JobStatus::Pending,
            "in_progress" => JobStatus::InProgress,
            "canceling" => JobStatus::Canceling,
            "canceled" => JobStatus::Canceled,
            "suspended" => JobStatus::Suspended,
            "completed" => JobStatus::Completed,
            "error" => JobStatus::Error,
            _ => return None,
        })
    }

    /// Whether the job can be picked up by an executor.
    pub fn is_runnable(self) -> bool {
        matches!(self, JobStatus::Pending | JobStatus::Suspended)
    }
}

/// The text written to `error` when a job is failed by the cleanup.
pub fn idle_error(idle_secs: f64) -> String {
    let secs = if idle_secs.fract() == 0.0 {
        format!("{idle_secs:.0}")
    } else {
        format!("{idle_secs:.1}")
    };
    format!(
        "The job has not seen any update for some time (no heartbeat for more than {secs} s): \
         the worker running it probably died; start a new sync"
    )
}

/// The text written when a job's connector no longer exists.
pub const ORPHAN_ERROR: &str =
    "The job has not seen any update for some time: its connector no longer exists";

/// The job index of a connector's job of `kind` (`.search-acl-filter-` for access control).
pub fn target_index(index_name: &str, kind: JobKind) -> String {
    match kind {
        JobKind::AccessControl => format!(".search-acl-filter-{index_name}"),
        _ => index_name.to_string(),
    }
}

/// A new job document, as `POST _connector/_sync_job` writes it (direct-index mode): null
/// fields are left out (Elasticsearch's `ConnectorSyncJob.toXContent`), and the connector
/// snapshot has id, filtering (the active rules), index_name, language, pipeline,
/// service_type and configuration, but no `sync_cursor` (neither Elasticsearch's snapshot
/// nor the Python service's has one; a claim adds the cursor an incremental job starts from).
pub fn new_job_doc(
    connector_id: &str,
    connector: &Value,
    kind: JobKind,
    trigger: &str,
    ts: &str,
) -> Value {
    let index_name = connector["index_name"].as_str().unwrap_or("");
    let mut snapshot = Map::new();
    snapshot.insert("id".into(), json!(connector_id));
    if let Some(filtering) = active_filtering(connector) {
        snapshot.insert("filtering".into(), filtering);
    }
    snapshot.insert("index_name".into(), json!(target_index(index_name, kind)));
    for key in ["language", "pipeline", "service_type"] {
        if let Some(value) = connector.get(key).filter(|v| !v.is_null()) {
            snapshot.insert(key.into(), value.clone());
        }
    }
    let configuration = connector
        .get("configuration")
        .filter(|c| !c.is_null())
        .cloned()
        .unwrap_or_else(|| json!({}));
    snapshot.insert("configuration".into(), configuration);
    json!({
        "connector": snapshot,
        "created_at": ts, "deleted_document_count": 0,
        "indexed_document_count": 0, "indexed_document_volume": 0,
        "job_type": kind.as_str(), "last_seen": ts, "metadata": {},
        "status": "pending", "total_document_count": 0, "trigger_method": trigger
    })
}

/// Why a new job cannot be created for a connector (the checks ES makes), or `None`.
pub fn job_creation_problem(connector_id: &str, connector: &Value) -> Option<String> {
    if connector["index_name"].as_str().unwrap_or("").is_empty() {
        return Some(format!(
            "cannot start a sync for connector [{connector_id}] with no index attached; set its index_name"
        ));
    }
    if connector["service_type"].as_str().unwrap_or("").is_empty() {
        return Some(format!(
            "cannot start a sync for connector [{connector_id}] with no service_type; set its service type"
        ));
    }
    None
}

/// The pending/suspended jobs query of the executors (oldest first).
pub fn pending_jobs_query(connector_ids: &[String], kinds: &[JobKind]) -> Value {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    json!({
        "size": 100,
        "query": {"bool": {"must": [
            {"terms": {"status": ["pending", "suspended"]}},
            {"terms": {"connector.id": connector_ids}},
            {"terms": {"job_type": kinds}}
        ]}},
        "sort": [{"created_at": {"order": "asc"}}]
    })
}

/// The running jobs (`in_progress`/`canceling`) query of the cleanup.
pub fn running_jobs_query() -> Value {
    json!({
        "size": 1000,
        "query": {"bool": {"must": [{"terms": {"status": ["in_progress", "canceling"]}}]}},
        "sort": [{"created_at": {"order": "asc"}}]
    })
}

/// The active (not finished) jobs of a connector and kind.
pub fn active_jobs_query(connector_id: &str, kind: JobKind) -> Value {
    json!({
        "size": 1,
        "query": {"bool": {"must": [
            {"terms": {"status": ["pending", "in_progress", "canceling", "suspended"]}},
            {"term": {"connector.id": connector_id}},
            {"term": {"job_type": kind.as_str()}}
        ]}}
    })
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// Final status.
    pub status: JobStatus,
    /// Error text (`error` status; also kept for canceled/suspended as null).
    pub error: Option<String>,
    /// Final counters.
    pub stats: StatsSnapshot,
    /// `_count` of the index after refresh.
    pub total_document_count: u64,
    /// Job metadata.
    pub metadata: Value,
    /// Cursor to save (content + completed only).
    pub sync_cursor: Option<Value>,
}

/// The job `_update` of §2.5 step 8.3.
pub fn finish_job_patch(finish: &Finish, now: &str) -> Value {
    let mut patch = Map::new();
    patch.insert("last_seen".into(), json!(now));
    patch.insert("status".into(), json!(finish.status.as_str()));
    patch.insert("error".into(), json!(finish.error));
    if matches!(
        finish.status,
        JobStatus::Completed | JobStatus::Error | JobStatus::Canceled
    ) {
        patch.insert("completed_at".into(), json!(now));
    }
    if finish.status == JobStatus::Canceled {
        patch.insert("canceled_at".into(), json!(now));
    }
    patch.insert(
        "indexed_document_count".into(),
        json!(finish.stats.indexed_document_count),
    );
    patch.insert(
        "indexed_document_volume".into(),
        json!(finish.stats.indexed_document_volume_mib()),
    );
    patch.insert(
        "deleted_document_count".into(),
        json!(finish.stats.deleted_document_count),
    );
    patch.insert(
        "total_document_count".into(),
        json!(finish.total_document_count),
    );
    patch.insert("metadata".into(), finish.metadata.clone());
    Value::Object(patch)
}

/// The connector `_update` of `sync_done` (§2.5 step 8.4).
pub fn sync_done_patch(kind: JobKind, finish: &Finish, now: &str) -> Value {
    let (status_field, error_field) = last_sync_fields(kind);
    let mut patch = Map::new();
    patch.insert("last_synced".into(), json!(now));
    let connector_status = if finish.status == JobStatus::Error {
        "error"
    } else {
        "connected"
    };
    patch.insert("status".into(), json!(connector_status));
    patch.insert("error".into(), json!(finish.error));
    patch.insert(status_field.into(), json!(finish.status.as_str()));
    patch.insert(error_field.into(), json!(finish.error));
    if kind != JobKind::AccessControl && finish.status == JobStatus::Completed {
        patch.insert(
            "sync_cursor".into(),
            finish.sync_cursor.clone().unwrap_or(Value::Null),
        );
    }
    patch.insert(
        "last_indexed_document_count".into(),
        json!(finish.stats.indexed_document_count),
    );
    patch.insert(
        "last_deleted_document_count".into(),
        json!(finish.stats.deleted_document_count),
    );
    Value::Object(patch)
}

/// The connector `_update` that releases a connector whose job was failed by the cleanup.
pub fn release_patch(kind: JobKind, error: &str, now: &str) -> Value {
    let (status_field, error_field) = last_sync_fields(kind);
    let mut patch = Map::new();
    patch.insert("last_synced".into(), json!(now));
    patch.insert("status".into(), json!("error"));
    patch.insert("error".into(), json!(error));
    patch.insert(status_field.into(), json!("error"));
    patch.insert(error_field.into(), json!(error));
    Value::Object(patch)
}

/// The error text of a failed job: the error's text, or "unknown error" when it has none.
pub fn error_text(message: &str) -> String {
    if message.trim().is_empty() {
        "unknown error".to_string()
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::connector::new_connector_doc;

    fn finish(status: JobStatus) -> Finish {
        Finish {
            status,
            error: (status == JobStatus::Error).then(|| "boom".to_string()),
            stats: StatsSnapshot {
                indexed_document_count: 3,
                indexed_document_volume_bytes: 3 * 1_048_576,
                deleted_document_count: 1,
                ..Default::default()
            },
            total_document_count: 7,
            metadata: json!({"k": 1}),
            sync_cursor: Some(json!({"c": 1})),
        }
    }

    #[test]
    fn finish_patches_follow_the_protocol() {
        let p = finish_job_patch(&finish(JobStatus::Completed), "T");
        assert_eq!(p["completed_at"], "T");
        assert!(p.get("canceled_at").is_none());
        assert_eq!(p["indexed_document_volume"], 3);
        assert_eq!(p["total_document_count"], 7);
        assert_eq!(p["error"], Value::Null);
        let p = finish_job_patch(&finish(JobStatus::Canceled), "T");
        assert_eq!(p["canceled_at"], "T");
        let p = finish_job_patch(&finish(JobStatus::Suspended), "T");
        assert!(p.get("completed_at").is_none());
        let c = sync_done_patch(JobKind::Full, &finish(JobStatus::Completed), "T");
        assert_eq!(c["status"], "connected");
        assert_eq!(c["sync_cursor"], json!({"c": 1}));
        assert_eq!(c["last_sync_status"], "completed");
        let c = sync_done_patch(JobKind::Full, &finish(JobStatus::Error), "T");
        assert_eq!(c["status"], "error");
        assert_eq!(c["last_sync_error"], "boom");
        assert!(c.get("sync_cursor").is_none());
        let c = sync_done_patch(JobKind::AccessControl, &finish(JobStatus::Completed), "T");
        assert_eq!(c["last_access_control_sync_status"], "completed");
        assert!(c.get("last_sync_status").is_none());
        assert_eq!(error_text(""), "unknown error");
    }

    #[test]
    fn snapshot_like_es() {
        let connector = new_connector_doc("search-x", "x", "slack", Some("en"), "T");
        let job = new_job_doc("c1", &connector, JobKind::AccessControl, "scheduled", "T");
        assert_eq!(
            job["connector"]["index_name"],
            ".search-acl-filter-search-x"
        );
        assert_eq!(job["connector"]["filtering"]["rules"][0]["id"], "DEFAULT");
        assert_eq!(job["status"], "pending");
        // As Elasticsearch writes it: no null fields, no cursor in the snapshot.
        let nulls: Vec<&String> = job
            .as_object()
            .unwrap()
            .iter()
            .chain(job["connector"].as_object().unwrap())
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k)
            .collect();
        assert!(nulls.is_empty(), "null fields {nulls:?} in {job}");
        for absent in [
            "started_at",
            "completed_at",
            "canceled_at",
            "worker_hostname",
            "error",
        ] {
            assert!(job.get(absent).is_none(), "{absent}");
        }
        assert!(job["connector"].get("sync_cursor").is_none());
        assert!(
            job["connector"].get("language").is_some(),
            "set fields stay"
        );
        let mut bare = connector.clone();
        bare["filtering"] = json!([]);
        bare["language"] = Value::Null;
        let job = new_job_doc("c1", &bare, JobKind::Full, "on_demand", "T");
        assert!(job["connector"].get("filtering").is_none());
        assert!(job["connector"].get("language").is_none());
        assert_eq!(job["connector"]["index_name"], "search-x");
        assert!(job_creation_problem("c1", &connector).is_none());
        let mut bad = connector.clone();
        bad["index_name"] = json!("");
        assert!(job_creation_problem("c1", &bad).unwrap().contains("index"));
    }
}
