//! Documents read from the connector indices: [`Doc`] (id, version, `_source`) and the one
//! way a `_source` is read, into a typed view ([`super::connector::Connector`],
//! [`super::job::SyncJob`]).
//!
//! Invariants:
//! - A view names the fields the service reads and keeps every other one (`rest`), so a
//!   field Elasticsearch adds is no error and nothing read is lost.
//! - A missing required field, or a field of the wrong type, is a [`DocError`] naming the
//!   document and the field's path. Optional fields are `Option`s: absent and `null` read as
//!   `None`, never as `""`.
//! - Decisions take views; the raw `Doc<Value>` is for printing a document as stored (the
//!   CLI, tests).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A document read from Elasticsearch with its concurrency-control version: `_source` raw
/// (`Doc<Value>`) or read into a view (`Doc<Connector>`, `Doc<SyncJob>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Doc<T = Value> {
    /// `_id`.
    pub id: String,
    /// `_seq_no` of the read.
    pub seq_no: Option<u64>,
    /// `_primary_term` of the read.
    pub primary_term: Option<u64>,
    /// `_source`.
    pub source: T,
}

impl<T> Doc<T> {
    /// The `if_seq_no`/`if_primary_term` guard for a write against this version.
    pub fn guard(&self) -> Option<(u64, u64)> {
        Some((self.seq_no?, self.primary_term?))
    }
}

impl Doc<Value> {
    /// From a `GET _doc` answer or a search hit; `None` when it has no `_id`/`_source`.
    pub fn from_hit(hit: &Value) -> Option<Doc> {
        if hit.get("found") == Some(&Value::Bool(false)) {
            return None;
        }
        Some(Doc {
            id: hit.get("_id")?.as_str()?.to_string(),
            seq_no: hit.get("_seq_no").and_then(Value::as_u64),
            primary_term: hit.get("_primary_term").and_then(Value::as_u64),
            source: hit.get("_source").filter(|s| s.is_object())?.clone(),
        })
    }

    /// The `_source` read into its view `T`, with the same id and version.
    pub fn read<T: View>(self) -> Read<T> {
        let Doc {
            id,
            seq_no,
            primary_term,
            source,
        } = self;
        match serde_path_to_error::deserialize::<_, T>(source) {
            Ok(source) => Ok(Doc {
                id,
                seq_no,
                primary_term,
                source,
            }),
            Err(error) => {
                let path = error.path().to_string();
                let problem = if path == "." {
                    error.into_inner().to_string()
                } else {
                    format!("{path}: {}", error.into_inner())
                };
                Err(DocError {
                    kind: T::KIND,
                    id,
                    problem,
                })
            }
        }
    }
}

/// A typed view of a document of the connector indices.
pub trait View: DeserializeOwned {
    /// What a document of this kind is called in errors (`connector`, `sync job`).
    const KIND: &'static str;
}

/// A document that does not read as its view: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {kind} document [{id}] cannot be read: {problem}")]
pub struct DocError {
    /// `connector` or `sync job`.
    pub kind: &'static str,
    /// The document id.
    pub id: String,
    /// The field's path and the problem (`connector: missing field `id``).
    pub problem: String,
}

/// A document read into its view, or why it could not be (one per search hit, so that one
/// unreadable document does not hide the others).
pub type Read<T> = Result<Doc<T>, DocError>;

/// The readable documents of a search; each unreadable one is logged (`what` says what the
/// caller skips it for) and left out.
pub fn readable<T>(reads: Vec<Read<T>>, what: &str) -> Vec<Doc<T>> {
    reads
        .into_iter()
        .filter_map(|read| match read {
            Ok(doc) => Some(doc),
            Err(error) => {
                tracing::error!(id = %error.id, %error, "{what}: skipping a document that cannot be read; fix or delete it");
                None
            }
        })
        .collect()
}

/// `source` (of document `id`) read into its view, or the error's text: the views' unit tests.
#[cfg(test)]
pub(crate) fn read_source<T: View>(id: &str, source: Value) -> Result<T, String> {
    let doc = Doc {
        id: id.to_string(),
        seq_no: None,
        primary_term: None,
        source,
    };
    doc.read::<T>()
        .map(|read| read.source)
        .map_err(|error| error.to_string())
}

/// `serde` helpers for the [`crate::sync::JobKind`] wire names (`full`, `incremental`,
/// `access_control`).
pub(crate) mod job_kind {
    use crate::sync::JobKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &JobKind, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<JobKind, D::Error> {
        let name = String::deserialize(deserializer)?;
        JobKind::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown job type `{name}`, expected full, incremental or access_control"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Thing {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        id: String,
    }

    impl View for Thing {
        const KIND: &'static str = "thing";
    }

    fn hit(source: Value) -> Doc {
        Doc::from_hit(&json!({"_id": "t1", "_seq_no": 4, "_primary_term": 2, "_source": source}))
            .unwrap()
    }

    #[test]
    fn hits_keep_their_version() {
        let doc = hit(json!({"name": "x"}));
        assert_eq!(doc.guard(), Some((4, 2)));
        let read = doc.read::<Thing>().unwrap();
        assert_eq!((read.id.as_str(), read.guard()), ("t1", Some((4, 2))));
        assert!(Doc::from_hit(&json!({"_id": "t1", "found": false})).is_none());
        assert!(Doc::from_hit(&json!({"_id": "t1", "_source": 3})).is_none());
        assert!(Doc::from_hit(&json!({"_source": {}})).is_none());
    }

    #[test]
    fn errors_name_the_document_and_the_field() {
        let error = hit(json!({})).read::<Thing>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "the thing document [t1] cannot be read: missing field `name`"
        );
        let error = hit(json!({"name": "x", "inner": {"id": 5}}))
            .read::<Thing>()
            .unwrap_err();
        assert!(
            error.problem.starts_with("inner.id: invalid type"),
            "{error}"
        );
        let error = hit(json!({"name": "x", "inner": {}}))
            .read::<Thing>()
            .unwrap_err();
        assert!(error.problem.contains("missing field `id`"), "{error}");
    }

    #[test]
    fn readable_leaves_out_what_cannot_be_read() {
        let reads = vec![hit(json!({"name": "a"})), hit(json!({"name": 1}))]
            .into_iter()
            .map(Doc::read::<Thing>)
            .collect();
        assert_eq!(readable(reads, "test").len(), 1);
    }
}
