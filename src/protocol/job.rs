//! Sync-job documents (`.elastic-connectors-sync-jobs`, `elastic-connectors-protocol.md` §2.3)
//! and the pure decisions on them: the job snapshot ES takes of a connector, the queries of the
//! executors and the cleanup, and the finalisation writes of §2.5.
//!
//! Invariants:
//! - Jobs are read as [`SyncJob`] views: `connector.id`, `job_type` and `status` are required
//!   (every writer sets them); the rest of the snapshot is optional and checked where used.
//! - A job snapshot is what `POST _connector/_sync_job` stores: the job's configuration is a
//!   copy, so a job runs with the configuration it was created with.
//! - Terminal statuses (`completed`, `canceled`, `error`) are never left; a finished job's
//!   connector gets its `last_sync_status` released so the next job can start.

use super::connector::{last_sync_fields, Connector, Filter, Pipeline};
use super::doc::{job_kind, View};
use crate::sync::{JobKind, StatsSnapshot};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Job statuses (also a connector's `last_sync_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker.
    Pending,
    /// Claimed and running.
    InProgress,
    /// Cancel requested.
    Canceling,
    /// Cancelled.
    Canceled,
    /// Interrupted (a shutdown, or its worker died); runs again, a full sync from its
    /// recorded progress.
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

/// A sync-job document (`.elastic-connectors-sync-jobs`) as Elasticsearch, the shim and
/// direct mode write it: the fields the service reads, typed, and every other field in
/// `rest`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SyncJob {
    /// The connector snapshot the job runs with.
    pub connector: JobConnector,
    /// `full`, `incremental` or `access_control`.
    #[serde(with = "job_kind")]
    pub job_type: JobKind,
    /// Where the job is in its life.
    pub status: JobStatus,
    /// `on_demand` or `scheduled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_method: Option<String>,
    /// The job heartbeat (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Every other field, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl View for SyncJob {
    const KIND: &'static str = "sync job";
}

/// A job's `connector`: the snapshot of the connector taken when the job was created.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct JobConnector {
    /// The connector id.
    pub id: String,
    /// The source to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// The index the job writes (`.search-acl-filter-…` for access control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_name: Option<String>,
    /// The configuration the source is built from, as stored.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub configuration: Value,
    /// The active sync rules when the job was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtering: Option<Filter>,
    /// The ingest pipeline settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Pipeline>,
    /// `language`, `sync_cursor` and anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
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

/// How many times the cleanup hands a job whose worker died back to the executors before
/// failing it: a job that kills its worker every time must not loop forever.
pub const MAX_ORPHAN_RESUMES: u64 = 3;

/// What the cleanup does with a running job that stopped heartbeating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StuckJob {
    /// Suspend it (the next executor resumes it); the value is the new `metadata.orphaned`.
    Suspend(u64),
    /// Fail it with this error.
    Fail(String),
}

/// The cleanup's decision for a job of a handled connector idle for `idle_secs` (pure): a
/// content job that was running is suspended, to be resumed (a full one from its recorded
/// progress) rather than lost, at most [`MAX_ORPHAN_RESUMES`] times; a `canceling` or
/// access-control job, or one handed back too often, fails.
pub fn stuck_job(job: &SyncJob, idle_secs: f64) -> StuckJob {
    let orphaned = job
        .rest
        .get("metadata")
        .and_then(|m| m.get("orphaned"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let content = matches!(job.job_type, JobKind::Full | JobKind::Incremental);
    if content && job.status == JobStatus::InProgress && orphaned < MAX_ORPHAN_RESUMES {
        return StuckJob::Suspend(orphaned + 1);
    }
    let mut error = idle_error(idle_secs);
    if orphaned >= MAX_ORPHAN_RESUMES {
        error.push_str(&format!(
            " (its worker died {orphaned} times before: not resumed again)"
        ));
    }
    StuckJob::Fail(error)
}

/// The job `_update` that hands a job whose worker died back to the executors.
pub fn suspend_orphan_patch(orphaned: u64, now: &str) -> Value {
    json!({"status": "suspended", "last_seen": now, "metadata": {"orphaned": orphaned}})
}

/// The connector `_update` that releases a connector whose job was suspended by the cleanup.
pub fn suspended_release_patch(kind: JobKind) -> Value {
    let (status_field, error_field) = last_sync_fields(kind);
    json!({status_field: "suspended", error_field: null})
}

/// The text written when a job's connector no longer exists.
pub const ORPHAN_ERROR: &str =
    "The job has not seen any update for some time: its connector no longer exists";

/// The job index of a connector's job of `kind` (`.search-acl-filter-` for access control).
pub fn target_index(index_name: &str, kind: JobKind) -> String {
    match kind {
        JobKind::AccessControl => crate::sources::access_control::access_control_index(index_name),
        _ => index_name.to_string(),
    }
}

/// The connector's index and service type, or why a job cannot be created for it (the
/// checks Elasticsearch makes).
fn job_target<'a>(
    connector_id: &str,
    connector: &'a Connector,
) -> Result<(&'a str, &'a str), String> {
    let set = |value: &'a Option<String>, what: &str, fix: &str| {
        value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
            format!("cannot start a sync for connector [{connector_id}] with no {what}; {fix}")
        })
    };
    Ok((
        set(
            &connector.index_name,
            "index attached",
            "set its index_name",
        )?,
        set(
            &connector.service_type,
            "service_type",
            "set its service type",
        )?,
    ))
}

/// Why a new job cannot be created for a connector (the checks ES makes), or `None`.
pub fn job_creation_problem(connector_id: &str, connector: &Connector) -> Option<String> {
    job_target(connector_id, connector).err()
}

/// A new job document, as `POST _connector/_sync_job` writes it (direct-index mode), or why
/// it cannot be created ([`job_creation_problem`]): null fields are left out
/// (Elasticsearch's `ConnectorSyncJob.toXContent`), and the connector snapshot has id,
/// filtering (the active rules), index_name, language, pipeline, service_type and
/// configuration, but no `sync_cursor` (neither Elasticsearch's snapshot nor the Python
/// service's has one; a claim adds the cursor an incremental job starts from).
pub fn new_job_doc(
    connector_id: &str,
    connector: &Connector,
    kind: JobKind,
    trigger: &str,
    ts: &str,
) -> Result<Value, String> {
    let (index_name, service_type) = job_target(connector_id, connector)?;
    let mut snapshot = Map::new();
    snapshot.insert("id".into(), json!(connector_id));
    if let Some(filtering) = connector.active_filtering() {
        snapshot.insert("filtering".into(), filtering.to_value());
    }
    snapshot.insert("index_name".into(), json!(target_index(index_name, kind)));
    if let Some(language) = &connector.language {
        snapshot.insert("language".into(), json!(language));
    }
    if let Some(pipeline) = &connector.pipeline {
        snapshot.insert("pipeline".into(), json!(pipeline));
    }
    snapshot.insert("service_type".into(), json!(service_type));
    let configuration = match &connector.configuration {
        Value::Null => json!({}),
        configuration => configuration.clone(),
    };
    snapshot.insert("configuration".into(), configuration);
    Ok(json!({
        "connector": snapshot,
        "created_at": ts, "deleted_document_count": 0,
        "indexed_document_count": 0, "indexed_document_volume": 0,
        "job_type": kind.as_str(), "last_seen": ts, "metadata": {},
        "status": "pending", "total_document_count": 0, "trigger_method": trigger
    }))
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
    use crate::protocol::connector::tests::view;

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
    fn a_running_content_job_whose_worker_died_is_suspended_a_few_times() {
        let job = |kind: &str, status: &str, orphaned: Option<u64>| {
            let mut doc = json!({"connector": {"id": "c1"}, "job_type": kind, "status": status});
            if let Some(n) = orphaned {
                doc["metadata"] = json!({"orphaned": n, "resume": {"marker": 1}});
            }
            read(doc).unwrap()
        };
        assert_eq!(
            stuck_job(&job("full", "in_progress", None), 60.0),
            StuckJob::Suspend(1)
        );
        assert_eq!(
            stuck_job(&job("incremental", "in_progress", Some(2)), 60.0),
            StuckJob::Suspend(3)
        );
        let StuckJob::Fail(error) = stuck_job(&job("full", "in_progress", Some(3)), 60.0) else {
            panic!("a job whose worker died 3 times is failed");
        };
        assert!(error.contains("died 3 times"), "{error}");
        assert_eq!(
            stuck_job(&job("full", "canceling", None), 60.0),
            StuckJob::Fail(idle_error(60.0))
        );
        assert_eq!(
            stuck_job(&job("access_control", "in_progress", None), 60.0),
            StuckJob::Fail(idle_error(60.0))
        );
        assert_eq!(
            suspend_orphan_patch(2, "T"),
            json!({"status": "suspended", "last_seen": "T", "metadata": {"orphaned": 2}})
        );
        assert_eq!(
            suspended_release_patch(JobKind::Full),
            json!({"last_sync_status": "suspended", "last_sync_error": null})
        );
    }

    fn read(doc: Value) -> Result<SyncJob, String> {
        crate::protocol::doc::read_source("j1", doc)
    }

    /// A new job, and the same job claimed and finished, read; so does one without the
    /// optional parts of its snapshot. Required fields missing are errors naming them.
    #[test]
    fn the_view_reads_jobs_as_written() {
        let connector = view(&new_connector_doc("search-x", "x", "slack", None, "T"));
        let mut job = new_job_doc("c1", &connector, JobKind::Full, "on_demand", "T").unwrap();
        let read_back = read(job.clone()).unwrap();
        assert_eq!(read_back.connector.id, "c1");
        assert_eq!(read_back.job_type, JobKind::Full);
        assert_eq!(read_back.status, JobStatus::Pending);
        assert_eq!(read_back.trigger_method.as_deref(), Some("on_demand"));
        assert_eq!(
            read_back
                .connector
                .filtering
                .as_ref()
                .and_then(Filter::state),
            Some("valid")
        );
        let back = serde_json::to_value(&read_back).unwrap();
        assert_eq!(back, job, "a job written by the service survives its view");
        for (k, v) in finish_job_patch(&finish(JobStatus::Error), "T2")
            .as_object()
            .unwrap()
        {
            job[k] = v.clone();
        }
        job["worker_hostname"] = json!("w");
        job["connector"]["sync_cursor"] = json!({"c": 1});
        let done = read(job).unwrap();
        assert_eq!(done.status, JobStatus::Error);
        assert_eq!(done.rest["error"], "boom");
        assert_eq!(done.connector.rest["sync_cursor"], json!({"c": 1}));

        let bare = json!({"connector": {"id": "c1"}, "job_type": "access_control",
                          "status": "in_progress"});
        let bare = read(bare).unwrap();
        assert_eq!(bare.connector.index_name, None);
        assert_eq!(bare.job_type, JobKind::AccessControl);

        let error = read(json!({"connector": {}, "job_type": "full", "status": "pending"}));
        assert_eq!(
            error.unwrap_err(),
            "the sync job document [j1] cannot be read: connector: missing field `id`"
        );
        let error = read(json!({"connector": {"id": "c1"}, "job_type": "weekly",
                                "status": "pending"}))
        .unwrap_err();
        assert!(
            error.contains("job_type: unknown job type `weekly`"),
            "{error}"
        );
        let error = read(json!({"connector": {"id": "c1"}, "job_type": "full"})).unwrap_err();
        assert!(error.ends_with("missing field `status`"), "{error}");
    }

    #[test]
    fn snapshot_like_es() {
        let connector = new_connector_doc("search-x", "x", "slack", Some("en"), "T");
        let job = new_job_doc(
            "c1",
            &view(&connector),
            JobKind::AccessControl,
            "scheduled",
            "T",
        )
        .unwrap();
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
        let job = new_job_doc("c1", &view(&bare), JobKind::Full, "on_demand", "T").unwrap();
        assert!(job["connector"].get("filtering").is_none());
        assert!(job["connector"].get("language").is_none());
        assert_eq!(job["connector"]["index_name"], "search-x");
        assert!(job_creation_problem("c1", &view(&connector)).is_none());
        let mut bad = connector.clone();
        bad["index_name"] = json!("");
        assert!(job_creation_problem("c1", &view(&bad))
            .unwrap()
            .contains("index"));
        let error = new_job_doc("c1", &view(&bad), JobKind::Full, "on_demand", "T").unwrap_err();
        assert!(error.contains("set its index_name"), "{error}");
    }
}
