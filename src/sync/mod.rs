//! The sync engine: a source's document stream to Elasticsearch bulk requests, with safe
//! deletions, sync rules and stats.
//!
//! # Pipeline
//! ```text
//! source ──DocOp──▶ bounded channel (64) ──▶ prepare + rules + serialize once ──▶ batcher
//!        ──batch──▶ ≤ max_concurrency `_bulk` requests in flight ──▶ per-item verdicts
//! ```
//! - The source pushes into a bounded [`DocSender`](crate::sources::DocSender); a full channel
//!   makes it wait, a full request pool makes the engine wait, so memory is bounded end to
//!   end: the channel (64 ops), one batch under construction (at most `chunk_size` lines,
//!   `queue_max_size` docs and min(`chunk_max_mem_size`, `queue_max_mem_size`) MiB of
//!   serialized bytes), and `max_concurrency` request bodies in flight. A batch waiting
//!   longer than `queue_refresh_timeout` for a free request slot fails the sync with
//!   [`SyncError::Overloaded`].
//! - Each document is serialized exactly once; the bytes are both the size measure and
//!   the request body ([`document`], [`batcher`]). Item results: [`bulk`], [`monitor`].
//!
//! # Deletions without an id map
//! Upstream loads every existing id of the index into memory before a full sync (~50 MiB
//! per 300k ids) and deletes the ids the source did not produce. We keep peak memory flat
//! instead: every document a sync writes carries `_sync_marker`, a `long` unique to that
//! sync (its start time in epoch milliseconds, bumped above the index's current maximum
//! so it is unique even if the clock goes back). When — and only when — a FULL (or access
//! control) sync streamed everything with the source returning `Ok`, every bulk item
//! succeeded (`failed_document_count == 0`), and it was not cancelled, the engine refreshes
//! the index, counts the documents the sweep would remove, and — if the mass-deletion
//! [`guard`] allows that many (`service.max_deletion_ratio`, half the index by default,
//! never all of a non-empty one) — runs `_delete_by_query` for documents with an older
//! marker; otherwise the job ends in error and keeps every document.
//! Documents excluded by sync rules are therefore deleted, as upstream. Any fetch error,
//! item failure, cancel or crash leaves the index untouched (the next good full sync
//! cleans up); the log says why the deletion was skipped.
//!
//! The marker is mapped as `long` when the engine creates the content index (a plain
//! `PUT <index>` plus that one mapping), and put on an existing index with
//! `PUT <index>/_mapping` before the first write; an index where `_sync_marker` is mapped
//! otherwise fails the sync with a message saying so.
//!
//! The sweep deletes documents whose marker is *lower* than this sync's (or missing), not
//! every other marker: a document a later sync wrote (an incremental one while a full job
//! was suspended) is newer than anything this sync read, and stays.
//!
//! # Resumable full syncs
//! A full sync's source marks resume points as it goes; the engine records each once every
//! operation before it is written ([`resume`]), and the job runner stores the record in the
//! job document. A suspended or orphaned job is resumed from it with the same marker, so
//! the sweep after the resumed fetch covers documents written before and after the
//! interruption; it still runs only after a complete fetch with no failed item (failures
//! before the interruption count). A resume point is dropped (the sync starts over with a new
//! marker) when the index holds no document with its marker (the index was replaced).
//!
//! # Incremental and access-control syncs
//! Incremental syncs apply the source's `index`/`update`/`delete` ops (updates are
//! `doc_as_upsert`) and hand back the source's cursor, merged over the previous one (keys
//! the source does not set are kept). They run no index-wide sweep: only the scopes the
//! source declares it re-read in full ([`crate::sources::SinkOp::Sweep`]) are swept, after a
//! complete fetch with no failed item, through the same mass-deletion guard.
//! Access-control syncs write the source's identity documents into the index given in
//! [`SyncOptions`] (`.search-acl-filter-…`, created as Elasticsearch's template would);
//! sync rules do not apply to them, and instead of a marker each document carries the
//! digest of its body, so unchanged ones are not rewritten and users who left are deleted
//! with the same safety rules as the sweep ([`acl`]).
//!
//! # Document-level security
//! With [`SyncOptions::require_access_control`] (the source's DLS is on), every document a
//! content sync writes must carry `_allow_access_control`
//! ([`crate::sources::Document::access_controlled`]): Elastic's DLS query shows a document
//! without it to everyone, so one such document fails the sync (nothing is deleted). The
//! content index gets the field's mapping before the first write
//! ([`crate::sources::access_control::content_mapping`]) unless it is mapped already, and
//! a mapping without the subfield the DLS query matches is a clear error.

pub mod acl;
pub mod batcher;
pub mod bulk;
pub mod content_index;
pub mod document;
mod engine;
pub mod guard;
pub mod monitor;
pub mod resume;
pub mod rules;
pub mod stats;

pub use engine::run_sync;
pub use resume::ResumePoint;
pub use stats::{StatsSnapshot, SyncStats};

use crate::config::BulkConfig;
use crate::es::EsError;
use crate::sources::SourceError;
use serde::{Deserialize, Serialize};

/// The kind of a sync job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// `full`: everything, then delete what was not seen.
    Full,
    /// `incremental`: changes since the cursor.
    Incremental,
    /// `access_control`: the access-control documents.
    AccessControl,
}

impl JobKind {
    /// The wire name (`full`, `incremental`, `access_control`).
    pub fn as_str(&self) -> &'static str {
        match self {
            JobKind::Full => "full",
            JobKind::Incremental => "incremental",
            JobKind::AccessControl => "access_control",
        }
    }

    /// From the wire name (`None` for anything else).
    pub fn parse(s: &str) -> Option<JobKind> {
        s.parse().ok()
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobKind {
    type Err = String;

    fn from_str(s: &str) -> Result<JobKind, String> {
        match s {
            "full" => Ok(JobKind::Full),
            "incremental" => Ok(JobKind::Incremental),
            "access_control" => Ok(JobKind::AccessControl),
            other => Err(format!(
                "unknown job type `{other}` (expected full, incremental or access_control)"
            )),
        }
    }
}

/// The job's ingest pipeline settings (`connector.pipeline`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSettings {
    /// Pipeline name; `""` or `_none` sends no `?pipeline=`.
    pub name: String,
    /// Copied into each document as `_extract_binary_content`.
    pub extract_binary_content: bool,
    /// Copied into each document as `_reduce_whitespace`.
    pub reduce_whitespace: bool,
    /// Copied into each document as `_run_ml_inference`.
    pub run_ml_inference: bool,
}

impl PipelineSettings {
    /// The `?pipeline=` value, if one is to be sent.
    pub fn query_name(&self) -> Option<&str> {
        match self.name.as_str() {
            "" | "_none" => None,
            name => Some(name),
        }
    }
}

/// What to sync and how.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The target index (or alias).
    pub index_name: String,
    /// The job type.
    pub job_kind: JobKind,
    /// The job id, for logs.
    pub job_id: String,
    /// The job's pipeline settings.
    pub pipeline: PipelineSettings,
    /// The job's active `connector.filtering` (`{rules, advanced_snippet, validation}`);
    /// `null` keeps every document.
    pub filtering: serde_json::Value,
    /// The connector's cursor: what an incremental sync starts from; the final cursor of
    /// any content sync is merged over it ([`merge_cursor`]).
    pub sync_cursor: Option<serde_json::Value>,
    /// Where an interrupted full sync of this job stands (`None`: from the start).
    pub resume: Option<ResumePoint>,
    /// `elasticsearch.bulk.*`.
    pub bulk: BulkConfig,
    /// `service.max_deletion_ratio`: the largest share of the index a sweep may delete
    /// ([`guard`]); 1 turns the guard off.
    pub max_deletion_ratio: f64,
    /// Document-level security is on: every content document must carry
    /// `_allow_access_control` (content syncs only).
    pub require_access_control: bool,
    /// The connector's index language (`language`): the analysis of a content index the
    /// engine creates ([`content_index`]); `None` is English.
    pub index_language: Option<String>,
}

impl SyncOptions {
    /// A `kind` sync into `index_name` with every other setting at its default: no
    /// pipeline, no sync rules, no cursor, default bulk settings and deletion guard.
    pub fn new(index_name: &str, job_kind: JobKind) -> SyncOptions {
        SyncOptions {
            index_name: index_name.to_string(),
            job_kind,
            job_id: format!("job-{index_name}"),
            pipeline: PipelineSettings::default(),
            filtering: serde_json::Value::Null,
            sync_cursor: None,
            resume: None,
            bulk: BulkConfig::default(),
            max_deletion_ratio: guard::DEFAULT_MAX_DELETION_RATIO,
            require_access_control: false,
            index_language: None,
        }
    }
}

/// What a finished sync reports.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// Final counters.
    pub stats: StatsSnapshot,
    /// The cursor to store on the connector.
    pub sync_cursor: Option<serde_json::Value>,
    /// The source's metadata for the job document.
    pub metadata: serde_json::Value,
}

/// The cursor to store after a sync: the source's `next` over the `previous` one. Both
/// objects: `previous` with `next`'s keys replaced (other parts' state — learned budgets, … —
/// survives a source that only knows its own keys). `next` missing: `previous` as it was.
pub fn merge_cursor(
    previous: Option<&serde_json::Value>,
    next: Option<serde_json::Value>,
) -> Option<serde_json::Value> {
    match (previous, next) {
        (Some(serde_json::Value::Object(previous)), Some(serde_json::Value::Object(next))) => {
            let mut merged = previous.clone();
            merged.extend(next);
            Some(serde_json::Value::Object(merged))
        }
        (previous, None) => previous.filter(|p| !p.is_null()).cloned(),
        (_, next) => next,
    }
}

/// Why a sync failed. The text is what the job's `error` field shows.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The data source failed (nothing was deleted).
    #[error("the data source failed: {0}")]
    Source(#[from] SourceError),
    /// Elasticsearch failed after retries (nothing was deleted).
    #[error("Elasticsearch failed: {0}")]
    Elasticsearch(#[from] EsError),
    /// Too many documents were rejected by Elasticsearch.
    #[error("too many documents were rejected by Elasticsearch: {0}")]
    TooManyErrors(#[from] monitor::TooManyErrors),
    /// Elasticsearch did not finish a bulk request within `queue_refresh_timeout`.
    #[error(
        "Elasticsearch did not finish a bulk request within {:.0} s \
         (elasticsearch.bulk.queue_refresh_timeout): the cluster is overloaded; check its \
         health, or lower elasticsearch.bulk.max_concurrency or chunk_size",
        .0.as_secs_f64()
    )]
    Overloaded(std::time::Duration),
    /// The sync was cancelled.
    #[error("sync cancelled")]
    Cancelled,
    /// The source does not support this job type.
    #[error("{0}")]
    Unsupported(String),
    /// The content index maps the sync marker as something else than a `long`.
    #[error(
        "cannot map `{field}` as a long in the content index `{index}` ({error_type}: \
         {reason}); this connector marks each document with the sync that wrote it: delete or \
         reindex the index without that field, then run a full sync",
        field = document::SYNC_MARKER_FIELD
    )]
    MarkerMappingConflict {
        /// The content index.
        index: String,
        /// Elasticsearch's error type.
        error_type: String,
        /// Elasticsearch's reason.
        reason: String,
    },
    /// A bulk request task panicked or was aborted (a bug).
    #[error("internal error: a bulk request task failed: {0}")]
    BulkTask(tokio::task::JoinError),
    /// The mass-deletion guard refused the sweep (everything was kept).
    #[error("{0}")]
    DeletionRefused(guard::Refusal),
    /// A content document without `_allow_access_control` while DLS is on (a source bug).
    #[error(
        "document `{id}` has no `_allow_access_control` while document level security is \
         on: Elastic's DLS query would show it to everyone, so the sync stopped without \
         writing it and deleted nothing"
    )]
    Unprotected {
        /// The document's id.
        id: String,
    },
    /// The content index maps `_allow_access_control` without the subfield the DLS query
    /// matches: every protected document would be hidden from everyone.
    #[error(
        "the content index `{index}` maps `_allow_access_control` as {mapping}, without the \
         keyword subfield `{field}` that the document level security query matches; \
         protected documents would be hidden from every user: delete or reindex the index \
         (this connector maps the field itself when it creates it), then run a full sync",
        field = crate::sources::access_control::QUERY_FIELD
    )]
    AccessControlMapping {
        /// The content index.
        index: String,
        /// The field's mapping as found.
        mapping: String,
    },
}

impl From<bulk::BulkError> for SyncError {
    fn from(e: bulk::BulkError) -> SyncError {
        match e {
            bulk::BulkError::Elasticsearch(e) => SyncError::Elasticsearch(e),
            bulk::BulkError::TooManyErrors(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_kinds_round_trip() {
        for kind in [JobKind::Full, JobKind::Incremental, JobKind::AccessControl] {
            assert_eq!(kind.as_str().parse::<JobKind>().unwrap(), kind);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().into())
            );
        }
        assert!("nope".parse::<JobKind>().is_err());
    }

    #[test]
    fn cursors_merge_over_the_previous_one() {
        use serde_json::json;
        let previous = json!({"budgets": {"conversations.history": 60}, "channels": {"C1": {}}});
        let next = json!({"channels": {"C2": {}}});
        assert_eq!(
            merge_cursor(Some(&previous), Some(next.clone())),
            Some(json!({"budgets": {"conversations.history": 60}, "channels": {"C2": {}}}))
        );
        assert_eq!(merge_cursor(Some(&previous), None), Some(previous.clone()));
        assert_eq!(merge_cursor(None, Some(next.clone())), Some(next.clone()));
        assert_eq!(merge_cursor(Some(&json!(null)), None), None);
        assert_eq!(
            merge_cursor(Some(&json!("old")), Some(next.clone())),
            Some(next)
        );
    }

    #[test]
    fn pipeline_name_none() {
        let mut p = PipelineSettings::default();
        assert_eq!(p.query_name(), None);
        p.name = "_none".into();
        assert_eq!(p.query_name(), None);
        p.name = "search-default-ingestion".into();
        assert_eq!(p.query_name(), Some("search-default-ingestion"));
    }

    #[test]
    fn too_many_errors_message_quotes_the_first_error() {
        let e: SyncError = monitor::TooManyErrors {
            summary: "exceeded the maximum of 10 consecutive bulk item errors (saw 11 in a row)"
                .into(),
            first_error: "mapper_parsing_exception: bad (document id x, status 400)".into(),
            recent_errors: vec![],
        }
        .into();
        let text = e.to_string();
        assert!(text.contains("first error: mapper_parsing_exception: bad (document id x"));
    }

    #[test]
    fn engine_failures_say_what_to_do() {
        let overloaded = SyncError::Overloaded(std::time::Duration::from_secs(60));
        assert_eq!(
            overloaded.to_string(),
            "Elasticsearch did not finish a bulk request within 60 s \
             (elasticsearch.bulk.queue_refresh_timeout): the cluster is overloaded; check its \
             health, or lower elasticsearch.bulk.max_concurrency or chunk_size"
        );
        let conflict = SyncError::MarkerMappingConflict {
            index: "search-slack".into(),
            error_type: "illegal_argument_exception".into(),
            reason: "mapper [_sync_marker] cannot be changed from type [keyword] to [long]".into(),
        };
        assert_eq!(
            conflict.to_string(),
            "cannot map `_sync_marker` as a long in the content index `search-slack` \
             (illegal_argument_exception: mapper [_sync_marker] cannot be changed from type \
             [keyword] to [long]); this connector marks each document with the sync that wrote \
             it: delete or reindex the index without that field, then run a full sync"
        );
    }
}
