//! The sync engine: a source's document stream to Elasticsearch bulk requests, with safe
//! deletions, sync rules and stats.
//!
//! STAND-IN (branch wt-protocol): the real engine is written on branch wt-sync. This module
//! only has the agreed interface and a minimal body (drain the source into plain `_bulk`
//! index requests, no deletions) so the job runner compiles and its lifecycle tests run.
//! When the real engine lands in main, this file is replaced by it.

use crate::config::BulkConfig;
use crate::es::{EsClient, EsError};
use crate::sources::{DataSource, DocOp, DocSender, SourceError};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The kind of sync job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Full sync.
    Full,
    /// Incremental sync.
    Incremental,
    /// Access-control sync.
    AccessControl,
}

impl JobKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Full => "full",
            JobKind::Incremental => "incremental",
            JobKind::AccessControl => "access_control",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "full" => Some(JobKind::Full),
            "incremental" => Some(JobKind::Incremental),
            "access_control" => Some(JobKind::AccessControl),
            _ => None,
        }
    }
}

/// The job's ingest pipeline settings.
#[derive(Debug, Clone, Default)]
pub struct PipelineSettings {
    /// Pipeline name; "" or "_none" → no `?pipeline`.
    pub name: String,
    /// `_extract_binary_content`.
    pub extract_binary_content: bool,
    /// `_reduce_whitespace`.
    pub reduce_whitespace: bool,
    /// `_run_ml_inference`.
    pub run_ml_inference: bool,
}

/// What one sync does.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The content index.
    pub index_name: String,
    /// Full, incremental or access control.
    pub job_kind: JobKind,
    /// For logs and the deletion marker.
    pub job_id: String,
    /// Pipeline settings.
    pub pipeline: PipelineSettings,
    /// The job's active filtering object.
    pub filtering: Value,
    /// Cursor for incremental syncs.
    pub sync_cursor: Option<Value>,
    /// Bulk settings.
    pub bulk: BulkConfig,
}

#[derive(Debug, Default)]
struct Counters {
    indexed: AtomicU64,
    volume: AtomicU64,
    deleted: AtomicU64,
    filtered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// Live counters, readable from another task.
#[derive(Debug, Clone, Default)]
pub struct SyncStats(Arc<Counters>);

impl SyncStats {
    /// Zeroed counters.
    pub fn new() -> Self {
        SyncStats::default()
    }

    /// A copy of the counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            indexed_document_count: self.0.indexed.load(Ordering::Relaxed),
            indexed_document_volume_bytes: self.0.volume.load(Ordering::Relaxed),
            deleted_document_count: self.0.deleted.load(Ordering::Relaxed),
            docs_filtered: self.0.filtered.load(Ordering::Relaxed),
            docs_dropped: self.0.dropped.load(Ordering::Relaxed),
            failed_document_count: self.0.failed.load(Ordering::Relaxed),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Successful index/update ops.
    pub indexed_document_count: u64,
    /// Their summed sizes.
    pub indexed_document_volume_bytes: u64,
    /// Successful deletes.
    pub deleted_document_count: u64,
    /// Docs rejected by sync rules.
    pub docs_filtered: u64,
    /// Docs dropped.
    pub docs_dropped: u64,
    /// Failed items.
    pub failed_document_count: u64,
}

impl StatsSnapshot {
    /// round(bytes / 1 MiB).
    pub fn indexed_document_volume_mib(&self) -> u64 {
        (self.indexed_document_volume_bytes as f64 / 1_048_576.0).round() as u64
    }
}

/// A finished sync.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// Final counters.
    pub stats: StatsSnapshot,
    /// Cursor to store on the connector.
    pub sync_cursor: Option<Value>,
    /// Job metadata.
    pub metadata: Value,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source failed.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// Elasticsearch failed.
    #[error("{0}")]
    Elasticsearch(#[from] EsError),
    /// Too many per-item errors.
    #[error("too many errors while indexing documents ({total} failed)")]
    TooManyErrors {
        /// Failed items.
        total: u64,
    },
    /// Elasticsearch overloaded.
    #[error("{0}")]
    Overloaded(String),
    /// Cancelled.
    #[error("sync cancelled")]
    Cancelled,
    /// Unsupported job type.
    #[error("{0}")]
    Unsupported(String),
}

/// Runs one sync (stand-in: index everything, delete nothing).
pub async fn run_sync(
    es: &EsClient,
    source: &dyn DataSource,
    options: SyncOptions,
    stats: SyncStats,
    cancel: CancellationToken,
) -> Result<SyncOutcome, SyncError> {
    if !es.index_exists(&options.index_name).await? {
        es.create_index(&options.index_name, None).await?;
    }
    let (tx, mut rx) = DocSender::channel(64);
    let index = options.index_name.clone();
    let pipeline = match options.pipeline.name.as_str() {
        "" | "_none" => None,
        name => Some(name.to_string()),
    };
    let writer = async {
        let mut body = Vec::new();
        let mut n = 0u64;
        let mut bytes = 0u64;
        while let Some(op) = rx.recv().await {
            if let DocOp::Index(doc) | DocOp::Update(doc) = op {
                let line = serde_json::to_vec(&doc.body).unwrap_or_default();
                bytes += line.len() as u64;
                body.extend_from_slice(
                    serde_json::json!({"index": {"_index": index, "_id": doc.id}})
                        .to_string()
                        .as_bytes(),
                );
                body.push(b'\n');
                body.extend_from_slice(&line);
                body.push(b'\n');
                n += 1;
            }
        }
        if n > 0 {
            es.bulk(body.into(), pipeline.as_deref(), false).await?;
        }
        stats.0.indexed.fetch_add(n, Ordering::Relaxed);
        stats.0.volume.fetch_add(bytes, Ordering::Relaxed);
        Ok::<(), EsError>(())
    };
    let produce = async {
        let result = match options.job_kind {
            JobKind::Full => source.get_docs(&tx, &cancel).await,
            JobKind::Incremental => {
                source
                    .get_docs_incrementally(options.sync_cursor.as_ref(), &tx, &cancel)
                    .await
            }
            JobKind::AccessControl => source.get_access_control(&tx, &cancel).await,
        };
        drop(tx);
        result
    };
    let (produced, written) = tokio::select! {
        r = async { tokio::join!(produce, writer) } => r,
        _ = cancel.cancelled() => return Err(SyncError::Cancelled),
    };
    if cancel.is_cancelled() {
        return Err(SyncError::Cancelled);
    }
    produced?;
    written?;
    Ok(SyncOutcome {
        stats: stats.snapshot(),
        sync_cursor: source.sync_cursor(),
        metadata: source.metadata(),
    })
}

/// Basic sync rules (stand-in: schema checks only).
pub mod rules {
    use serde_json::Value;

    /// One validation error.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ValidationError {
        /// Rule ids.
        pub ids: Vec<String>,
        /// Messages.
        pub messages: Vec<String>,
    }

    /// The result of validating a draft.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FilteringValidation {
        /// `valid` or `invalid`.
        pub state: String,
        /// Errors.
        pub errors: Vec<ValidationError>,
    }

    /// Validates basic rules.
    pub fn validate_rules(rules: &Value) -> FilteringValidation {
        let mut errors = Vec::new();
        for rule in rules.as_array().map(Vec::as_slice).unwrap_or_default() {
            let id = rule["id"].as_str().unwrap_or("").to_string();
            for key in ["id", "policy", "field", "rule", "value"] {
                let empty = match &rule[key] {
                    Value::Null => true,
                    Value::String(s) => s.is_empty(),
                    _ => false,
                };
                if empty {
                    errors.push(ValidationError {
                        ids: vec![id.clone()],
                        messages: vec![format!("{key} cannot be empty")],
                    });
                }
            }
            if id != "DEFAULT"
                && rule["rule"] == "regex"
                && matches!(rule["value"].as_str(), Some(".*") | Some("(.*)"))
            {
                errors.push(ValidationError {
                    ids: vec![id.clone()],
                    messages: vec!["a match-all regex is only allowed in the default rule".into()],
                });
            }
        }
        FilteringValidation {
            state: if errors.is_empty() {
                "valid"
            } else {
                "invalid"
            }
            .into(),
            errors,
        }
    }
}
