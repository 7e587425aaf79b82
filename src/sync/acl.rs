//! Access-control syncs: identity documents into `.search-acl-filter-<index>`, rewritten
//! only when they changed, and deleted when their user is gone.
//!
//! Why not the content syncs' marker sweep: identity documents are few (one per user) and
//! most do not change between syncs, so rewriting every one to stamp a new `_sync_marker`
//! would make each sync rewrite them all, and skipping the unchanged ones would leave them
//! with an old marker for the sweep to delete. Instead, as Elastic's framework does with
//! `_timestamp`, the engine loads the ids of the index with the digest each document was
//! written with ([`Known::load`], a scroll of ids and 64-byte digests: a few MB for 100k
//! users), skips a document whose body digest is unchanged, writes the others, and
//! afterwards deletes the ids the source did not produce ([`Known::stale`]).
//!
//! Invariants: the deletions obey the content syncs' rules: only after the source returned
//! `Ok`, every bulk item was accepted and the sync was not cancelled, and only as far as
//! the mass-deletion guard allows ([`super::guard`]); any doubt deletes nothing. A
//! document without a digest (written by another service) counts as changed.

use super::document::{normalize_id, DIGEST_FIELD};
use crate::es::{encode, EsClient, EsError};
use crate::sources::access_control::{access_control_index_body, ACCESS_CONTROL_TEMPLATE};
use elasticsearch::http::Method;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Scroll page size when loading the known identity documents.
const PAGE: usize = 1000;

/// The identity documents of an access-control index as the sync found them: id → digest
/// (`None`: written without one). Ids are removed as the source produces them; what is
/// left at the end is stale.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Known {
    digests: HashMap<String, Option<String>>,
    total: u64,
}

/// What to do with one produced identity document (pure decision of [`Known::observe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same digest as stored: leave it alone.
    Unchanged,
    /// Stored with another digest (or none): rewrite it.
    Changed,
    /// Not in the index: write it.
    New,
}

impl Known {
    /// From `(id, digest)` pairs (tests, and [`Known::load`]).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Option<String>)>) -> Known {
        let digests: HashMap<String, Option<String>> = pairs.into_iter().collect();
        Known {
            total: digests.len() as u64,
            digests,
        }
    }

    /// Every document of `index` with its digest; an index that does not exist is empty.
    pub async fn load(es: &EsClient, index: &str) -> Result<Known, EsError> {
        let mut pairs = Vec::new();
        let path = format!("/{}/_search", encode(index));
        let body = json!({"size": PAGE, "sort": ["_doc"], "_source": [DIGEST_FIELD]});
        let mut page = match es
            .json(Method::Post, &path, &[("scroll", "1m".into())], Some(body))
            .await
        {
            Ok(page) => page,
            Err(error) if error.is_not_found() => return Ok(Known::default()),
            Err(error) => return Err(error),
        };
        loop {
            let hits = page["hits"]["hits"].as_array().map(Vec::as_slice);
            let hits = hits.unwrap_or_default();
            for hit in hits {
                if let Some(id) = hit["_id"].as_str() {
                    let digest = hit["_source"][DIGEST_FIELD].as_str().map(str::to_string);
                    pairs.push((id.to_string(), digest));
                }
            }
            let scroll_id = page["_scroll_id"].as_str().map(str::to_string);
            let (true, Some(scroll_id)) = (hits.len() == PAGE, scroll_id.clone()) else {
                clear_scroll(es, scroll_id).await;
                break;
            };
            page = es
                .json(
                    Method::Post,
                    "/_search/scroll",
                    &[],
                    Some(json!({"scroll": "1m", "scroll_id": scroll_id})),
                )
                .await?;
        }
        Ok(Known::from_pairs(pairs))
    }

    /// How many documents the index held when the sync started.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Decides for a produced document with id `id` (as the source gave it) and body digest
    /// `digest`, and marks the id as produced (pure).
    pub fn observe(&mut self, id: &str, digest: &str) -> Verdict {
        match self.digests.remove(&normalize_id(id.to_string())) {
            None => Verdict::New,
            Some(Some(stored)) if stored == digest => Verdict::Unchanged,
            Some(_) => Verdict::Changed,
        }
    }

    /// Marks an id as handled without a verdict (a delete the source asked for).
    pub fn forget(&mut self, id: &str) {
        self.digests.remove(&normalize_id(id.to_string()));
    }

    /// The ids the source did not produce, sorted: the users who left.
    pub fn stale(self) -> Vec<String> {
        let mut ids: Vec<String> = self.digests.into_keys().collect();
        ids.sort_unstable();
        ids
    }
}

async fn clear_scroll(es: &EsClient, scroll_id: Option<String>) {
    let Some(scroll_id) = scroll_id else { return };
    let body = json!({"scroll_id": [scroll_id]});
    if let Err(error) = es
        .json(Method::Delete, "/_search/scroll", &[], Some(body))
        .await
    {
        // The scroll expires on its own within a minute.
        tracing::debug!(%error, "could not clear the scroll of the access-control index");
    }
}

/// Creates the access-control index when missing: with no body when Elasticsearch's
/// `search-acl-filter` template will give it its settings and mappings (as the framework
/// relies on), with a body modelled on that template otherwise.
pub async fn prepare_index(es: &EsClient, index: &str) -> Result<(), EsError> {
    if es.index_exists(index).await? {
        return Ok(());
    }
    let body: Option<Value> = if es.index_template_exists(ACCESS_CONTROL_TEMPLATE).await? {
        None
    } else {
        Some(access_control_index_body())
    };
    if es.create_index(index, body).await? {
        tracing::info!("created the access-control index");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_changed_new_and_stale() {
        let mut known = Known::from_pairs([
            ("a@x.com".to_string(), Some("d1".to_string())),
            ("b@x.com".to_string(), Some("d2".to_string())),
            ("U3".to_string(), None),
            ("gone@x.com".to_string(), Some("d4".to_string())),
        ]);
        assert_eq!(known.total(), 4);
        assert_eq!(known.observe("a@x.com", "d1"), Verdict::Unchanged);
        assert_eq!(known.observe("b@x.com", "changed"), Verdict::Changed);
        assert_eq!(known.observe("U3", "d3"), Verdict::Changed);
        assert_eq!(known.observe("new@x.com", "d5"), Verdict::New);
        // Seen once: a second document with the same id is new as far as the index goes.
        assert_eq!(known.observe("a@x.com", "d1"), Verdict::New);
        assert_eq!(known.total(), 4);
        assert_eq!(known.stale(), vec!["gone@x.com".to_string()]);
    }

    #[test]
    fn ids_are_compared_as_elasticsearch_stores_them() {
        let long = "u".repeat(600);
        let mut known = Known::from_pairs([(normalize_id(long.clone()), Some("d".into()))]);
        assert_eq!(known.observe(&long, "d"), Verdict::Unchanged);
        let mut known = Known::from_pairs([("x".to_string(), None), ("y".to_string(), None)]);
        known.forget("x");
        assert_eq!(known.stale(), vec!["y".to_string()]);
    }
}
