//! Live sync counters, and the resume point of a full sync.
//!
//! [`SyncStats`] is a cheap handle on shared atomics: the engine's stages bump them while the
//! job reporter reads them from another task ([`SyncStats::snapshot`]); the same handle
//! carries the sync's [`Progress`] (what a resumed job would start from). Relaxed ordering is
//! enough: each counter is independent and readers only need an eventually-consistent view;
//! the final snapshot is taken after every writer has finished (the engine joins its tasks).

use super::resume::Progress;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const MIB: f64 = 1_048_576.0;

#[derive(Debug, Default)]
struct Counters {
    indexed_document_count: AtomicU64,
    indexed_document_volume_bytes: AtomicU64,
    deleted_document_count: AtomicU64,
    docs_filtered: AtomicU64,
    docs_dropped: AtomicU64,
    docs_unchanged: AtomicU64,
    failed_document_count: AtomicU64,
}

/// Shared, live counters of one sync. Clones share the same counters.
#[derive(Debug, Clone, Default)]
pub struct SyncStats {
    counters: Arc<Counters>,
    progress: Arc<Progress>,
}

/// A point-in-time copy of [`SyncStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Index and update operations Elasticsearch accepted.
    pub indexed_document_count: u64,
    /// Serialized bytes of those documents (their bulk source lines).
    pub indexed_document_volume_bytes: u64,
    /// Documents deleted (delete operations and the full-sync sweep).
    pub deleted_document_count: u64,
    /// Documents excluded by basic sync rules.
    pub docs_filtered: u64,
    /// Documents dropped for exceeding `max_text_document_size`.
    pub docs_dropped: u64,
    /// Identity documents left alone because they had not changed (access-control syncs).
    pub docs_unchanged: u64,
    /// Bulk items Elasticsearch rejected for good (after retries).
    pub failed_document_count: u64,
}

impl StatsSnapshot {
    /// The indexed volume in MiB, rounded, as the job document's `indexed_document_volume`.
    pub fn indexed_document_volume_mib(&self) -> u64 {
        (self.indexed_document_volume_bytes as f64 / MIB).round() as u64
    }
}

impl SyncStats {
    /// Fresh counters at zero.
    pub fn new() -> Self {
        SyncStats::default()
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.counters;
        StatsSnapshot {
            indexed_document_count: c.indexed_document_count.load(Ordering::Relaxed),
            indexed_document_volume_bytes: c.indexed_document_volume_bytes.load(Ordering::Relaxed),
            deleted_document_count: c.deleted_document_count.load(Ordering::Relaxed),
            docs_filtered: c.docs_filtered.load(Ordering::Relaxed),
            docs_dropped: c.docs_dropped.load(Ordering::Relaxed),
            docs_unchanged: c.docs_unchanged.load(Ordering::Relaxed),
            failed_document_count: c.failed_document_count.load(Ordering::Relaxed),
        }
    }

    /// The resume point the engine records (full syncs).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Starts from the counters of an interrupted run of the same job (a resumed job reports
    /// its whole work; failures before the interruption still cancel the sweep).
    pub fn carry_over(&self, before: &StatsSnapshot) {
        self.add_indexed(
            before.indexed_document_count,
            before.indexed_document_volume_bytes,
        );
        self.add_deleted(before.deleted_document_count);
        self.add_failed(before.failed_document_count);
    }

    pub(crate) fn add_indexed(&self, docs: u64, bytes: u64) {
        self.counters
            .indexed_document_count
            .fetch_add(docs, Ordering::Relaxed);
        self.counters
            .indexed_document_volume_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_deleted(&self, docs: u64) {
        self.counters
            .deleted_document_count
            .fetch_add(docs, Ordering::Relaxed);
    }

    pub(crate) fn add_filtered(&self, docs: u64) {
        self.counters
            .docs_filtered
            .fetch_add(docs, Ordering::Relaxed);
    }

    pub(crate) fn add_dropped(&self, docs: u64) {
        self.counters
            .docs_dropped
            .fetch_add(docs, Ordering::Relaxed);
    }

    pub(crate) fn add_unchanged(&self, docs: u64) {
        self.counters
            .docs_unchanged
            .fetch_add(docs, Ordering::Relaxed);
    }

    pub(crate) fn add_failed(&self, docs: u64) {
        self.counters
            .failed_document_count
            .fetch_add(docs, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_counters_and_volume_rounds_to_mib() {
        let stats = SyncStats::new();
        let other = stats.clone();
        other.add_indexed(3, 1_572_864); // 1.5 MiB rounds up
        other.add_deleted(2);
        other.add_filtered(1);
        other.add_dropped(4);
        other.add_failed(5);
        other.add_unchanged(6);
        let snap = stats.snapshot();
        assert_eq!(snap.indexed_document_count, 3);
        assert_eq!(snap.indexed_document_volume_mib(), 2);
        assert_eq!(snap.deleted_document_count, 2);
        assert_eq!(snap.docs_filtered, 1);
        assert_eq!(snap.docs_dropped, 4);
        assert_eq!(snap.failed_document_count, 5);
        assert_eq!(snap.docs_unchanged, 6);
        let small = StatsSnapshot {
            indexed_document_volume_bytes: 400_000,
            ..StatsSnapshot::default()
        };
        assert_eq!(small.indexed_document_volume_mib(), 0);
        let resumed = SyncStats::new();
        resumed.carry_over(&snap);
        let carried = resumed.snapshot();
        assert_eq!(carried.indexed_document_count, 3);
        assert_eq!(carried.failed_document_count, 5);
        assert_eq!(carried.docs_filtered, 0);
    }
}
