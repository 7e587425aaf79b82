//! Live updates: a source's change events applied to a connector's content index between
//! syncs (the syncs stay the reconciliation).
//!
//! Split (the engine stays source-agnostic):
//! - a source turns one delivery into [`LiveOp`]s and judges HTTP deliveries itself
//!   ([`receive::LiveReceiver`]: signatures, url verification), because only it knows the
//!   upstream's wire format;
//! - [`receive`] holds what is the same for every source: the replay/duplicate memory
//!   ([`receive::Seen`]) and the per-connector routing table the HTTP listener reads;
//! - [`writer`] applies ops through `_bulk`, flushing at most [`writer::FLUSH`] after the
//!   first op of a batch arrived.
//!
//! Invariants:
//! - idempotent and order-independent per document: [`LiveOp::Put`] and [`LiveOp::Delete`]
//!   carry a version that grows with every change of the document upstream (Slack: the edit
//!   time), written with Elasticsearch's external versioning, so an older change arriving
//!   late is refused by Elasticsearch (409) and counted as stale, never applied;
//! - documents carry the same shapes as a sync writes them (same pipeline flags, a
//!   `_sync_marker` taken at write time, so a full sync running meanwhile never sweeps what
//!   arrived live), and sync rules apply (an edit that a rule now excludes deletes the
//!   document, as the next full sync would);
//! - a rejected delivery writes nothing: rejection happens before anything is queued.

pub mod manage;
pub mod receive;
pub mod writer;

use crate::sources::Document;
use serde_json::{Map, Value};

/// One change to apply to the content index.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveOp {
    /// Create or replace `doc`, unless the index holds a version at least as new.
    Put {
        /// The full document, as a sync makes it.
        doc: Document,
        /// Grows with every upstream change of the document (external versioning).
        version: i64,
    },
    /// Set some fields of an existing document; a missing document is left alone.
    Patch {
        /// Document id.
        id: String,
        /// Fields to set.
        fields: Map<String, Value>,
    },
    /// Delete, unless a newer version was written.
    Delete {
        /// Document id.
        id: String,
        /// Newer than every version of the document before its deletion.
        version: i64,
    },
    /// Recompute summary fields of a document from the documents matching a filter, after
    /// every op before it is written (a thread parent's reply count and latest reply):
    /// order-independent, since it reads what the index holds.
    Derive(Derive),
}

/// See [`LiveOp::Derive`].
#[derive(Debug, Clone, PartialEq)]
pub struct Derive {
    /// The document to update (left alone when missing).
    pub id: String,
    /// Elasticsearch query selecting the documents summarized.
    pub filter: Value,
    /// Field set to how many documents match.
    pub count_field: String,
    /// Field set to `source_field` of the match with the highest `sort_field`.
    pub latest_field: String,
    /// Sort field of "latest" (a keyword or numeric field).
    pub sort_field: String,
    /// Field of the latest match copied into `latest_field`.
    pub source_field: String,
    /// Fields set as they are, with the derived ones (a parent's `thread_ts`).
    pub fields: Map<String, Value>,
}

/// Why a delivery was refused or could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LiveError {
    /// Bad signature, stale timestamp, replay: answered 401.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A well-signed delivery the source cannot read: answered 400.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// The queue is full: answered 503, so the sender retries (and the gap is caught up).
    #[error("the live-update queue is full")]
    Overloaded,
}
