//! Where connector and job documents are read and written: [`ConnectorStore`], with
//! [`ApiStore`] (`elasticsearch.feature_use_connectors_api: true`: the `_connector` API where
//! the Python service uses it, direct index access where it does, table of §2.1) and
//! [`DirectStore`] (`false`: direct reads and writes of the connector indices).
//!
//! Invariants:
//! - Connectors and jobs are read into their typed views ([`Connector`], [`SyncJob`]); a
//!   document that does not read is an error naming it and the field, never a view with
//!   empty strings. Searches read each hit on its own ([`Read`]), so one unreadable
//!   document does not hide the others.
//! - Reads keep `_seq_no`/`_primary_term`; every decision-bearing write (prepare, lock,
//!   `last_*_scheduled_at`) is guarded by them, so two daemons never both win.
//! - Every `_connector` call sends exactly what Elasticsearch's specification declares for it
//!   (the conformance table, `ftest/es-shim/conformance/`): no body where none is declared
//!   (`_check_in`, `_filtering/_activate`, `_cancel`: Elasticsearch answers any body with 400),
//!   no query parameters, only declared body fields with their types.
//! - Writes that change what a search must see (new jobs, status changes) refresh, as
//!   `POST _connector/_sync_job` does (`refresh=immediate`).

use super::connector::{format_time, new_connector_doc, Connector, FilterValidation};
use super::doc::{Doc, Read, View};
use super::indices::{self, CONNECTORS_INDEX, JOBS_INDEX};
use super::job::{new_job_doc, JobStatus, SyncJob};
use crate::es::{encode, EsClient, EsError};
use crate::sync::rules::FilteringValidation;
use crate::sync::{JobKind, StatsSnapshot};
use async_trait::async_trait;
use elasticsearch::http::Method;
use serde_json::{json, Map, Value};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Elasticsearch failed.
    #[error(transparent)]
    Elasticsearch(#[from] EsError),
    /// The connector or job does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be done (the message says why).
    #[error("{0}")]
    Invalid(String),
}

/// What `connector create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewConnector {
    /// Connector id (`None`: generated).
    pub id: Option<String>,
    /// Content index.
    pub index_name: String,
    /// Display name.
    pub name: String,
    /// `slack`.
    pub service_type: String,
    /// Index language.
    pub language: Option<String>,
}

/// Connector and job persistence, in one of the two protocol modes.
#[async_trait]
pub trait ConnectorStore: Send + Sync {
    /// The client in use.
    fn es(&self) -> &EsClient;
    /// Whether this store uses the `_connector` API.
    fn uses_api(&self) -> bool;

    /// Direct mode: creates missing connector indices. API mode: nothing (ES owns them).
    async fn ensure_indices(&self) -> Result<(), EsError> {
        if !self.uses_api() {
            indices::ensure_connector_indices(self.es()).await?;
        }
        Ok(())
    }

    /// Connectors matching `query`, all pages of 100, each read or why not.
    async fn search_connectors(&self, query: Value) -> Result<Vec<Read<Connector>>, EsError> {
        search_views(self.es(), CONNECTORS_INDEX, query).await
    }

    /// One connector with its version (`None`: missing; an unreadable one is an error).
    async fn get_connector(&self, id: &str) -> Result<Option<Doc<Connector>>, EsError> {
        get_view(self.es(), CONNECTORS_INDEX, id).await
    }

    /// Partial `_update` of a connector, optionally guarded.
    async fn update_connector(
        &self,
        id: &str,
        patch: Value,
        guard: Option<(u64, u64)>,
    ) -> Result<(), EsError> {
        self.es()
            .update_doc(CONNECTORS_INDEX, id, patch, guard, true)
            .await
            .map(|_| ())
    }

    /// Heartbeat: sets `last_seen`.
    async fn check_in(&self, id: &str) -> Result<(), EsError>;

    /// Writes a draft filtering validation (and activates the draft when valid).
    async fn write_filtering_validation(
        &self,
        connector: &Doc<Connector>,
        validation: &FilteringValidation,
    ) -> Result<(), EsError>;

    /// Creates a job; returns its id.
    async fn create_job(
        &self,
        connector_id: &str,
        kind: JobKind,
        trigger_method: &str,
    ) -> Result<String, StoreError>;

    /// One job with its version (`None`: missing; an unreadable one is an error).
    async fn get_job(&self, id: &str) -> Result<Option<Doc<SyncJob>>, EsError> {
        get_view(self.es(), JOBS_INDEX, id).await
    }

    /// Jobs matching a search body (its `size` is the page size; all pages are read), each
    /// read or why not.
    async fn search_jobs(&self, body: Value) -> Result<Vec<Read<SyncJob>>, EsError> {
        search_views(self.es(), JOBS_INDEX, body).await
    }

    /// Claims a job: `in_progress`, `started_at`, `last_seen`, `worker_hostname`.
    async fn claim_job(
        &self,
        job: &Doc<SyncJob>,
        worker_hostname: &str,
        sync_cursor: Option<Value>,
    ) -> Result<(), EsError>;

    /// Reports the counters (the job heartbeat), and `metadata` keys to set when given (a
    /// partial object: keys it leaves out stay as they are).
    async fn job_stats(
        &self,
        job_id: &str,
        stats: &StatsSnapshot,
        metadata: Option<&Value>,
    ) -> Result<(), EsError>;

    /// Direct partial `_update` of a job (finalisation, cleanup), optionally guarded.
    async fn update_job(
        &self,
        id: &str,
        patch: Value,
        guard: Option<(u64, u64)>,
    ) -> Result<(), EsError> {
        self.es()
            .update_doc(JOBS_INDEX, id, patch, guard, true)
            .await
            .map(|_| ())
    }

    /// Management: creates a connector as `PUT _connector/<id>` does; returns its id.
    async fn create_connector(&self, request: &NewConnector) -> Result<String, StoreError>;

    /// Management: replaces the configuration (full field objects); status `configured`.
    async fn set_configuration(&self, id: &str, configuration: Value) -> Result<(), StoreError>;

    /// Management: replaces `scheduling`.
    async fn set_scheduling(&self, id: &str, scheduling: Value) -> Result<(), StoreError>;

    /// Management: cancels a job (pending/suspended → canceled, running → canceling).
    async fn cancel_job(&self, id: &str) -> Result<String, StoreError>;
}

/// One document as stored (`None`: missing): for printing it; decisions read views.
pub async fn get_doc(es: &EsClient, index: &str, id: &str) -> Result<Option<Doc>, EsError> {
    Ok(es
        .get_doc(index, id)
        .await?
        .as_ref()
        .and_then(Doc::from_hit))
}

/// One document read into its view; an unreadable one is a [`EsError::Decode`] naming the
/// document and the field.
async fn get_view<T: View>(
    es: &EsClient,
    index: &str,
    id: &str,
) -> Result<Option<Doc<T>>, EsError> {
    match get_doc(es, index, id).await? {
        None => Ok(None),
        Some(doc) => doc.read().map(Some).map_err(|error| EsError::Decode {
            path: format!("/{index}/_doc/{id}"),
            message: error.to_string(),
        }),
    }
}

/// Every hit of a search, each read into its view.
async fn search_views<T: View>(
    es: &EsClient,
    index: &str,
    body: Value,
) -> Result<Vec<Read<T>>, EsError> {
    Ok(search_docs(es, index, body)
        .await?
        .into_iter()
        .map(Doc::read)
        .collect())
}

/// Every hit of a search as stored, paging with `from` by the body's `size` (default 100):
/// for printing; decisions read views.
pub async fn search_docs(es: &EsClient, index: &str, mut body: Value) -> Result<Vec<Doc>, EsError> {
    let size = body["size"].as_u64().unwrap_or(100).max(1) as usize;
    body["size"] = json!(size);
    let mut docs = Vec::new();
    loop {
        body["from"] = json!(docs.len());
        let answer = match es.search(index, body.clone()).await {
            Ok(answer) => answer,
            // No connector index yet: nothing to list.
            Err(error) if error.is_not_found() => return Ok(docs),
            Err(error) => return Err(error),
        };
        let hits = answer["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let total = answer["hits"]["total"]["value"].as_u64().unwrap_or(0) as usize;
        let page = hits.len();
        docs.extend(hits.iter().filter_map(Doc::from_hit));
        if page < size || docs.len() >= total {
            return Ok(docs);
        }
    }
}

fn now() -> String {
    format_time(chrono::Utc::now())
}

/// The id Elasticsearch gave a new document (`key`: `_id` for an index write, `id` for the
/// `_connector` API).
fn new_id(answer: &Value, key: &str, what: &str) -> Result<String, StoreError> {
    answer
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            StoreError::Invalid(format!("elasticsearch returned no id for the new {what}"))
        })
}

fn not_found_connector(id: &str) -> StoreError {
    StoreError::NotFound(format!("connector [{id}] not found"))
}

/// Direct-index mode (`feature_use_connectors_api: false`).
#[derive(Debug, Clone)]
pub struct DirectStore {
    es: EsClient,
}

impl DirectStore {
    /// A store over `es`.
    pub fn new(es: EsClient) -> DirectStore {
        DirectStore { es }
    }
}

#[async_trait]
impl ConnectorStore for DirectStore {
    fn es(&self) -> &EsClient {
        &self.es
    }

    fn uses_api(&self) -> bool {
        false
    }

    async fn check_in(&self, id: &str) -> Result<(), EsError> {
        self.update_connector(id, json!({"last_seen": now()}), None)
            .await
    }

    async fn write_filtering_validation(
        &self,
        connector: &Doc<Connector>,
        validation: &FilteringValidation,
    ) -> Result<(), EsError> {
        let mut filtering = connector.source.filtering.clone().unwrap_or_default();
        let Some(domain) = filtering.first_mut() else {
            return Ok(());
        };
        let draft = domain.draft.get_or_insert_with(Default::default);
        draft.validation = Some(filter_validation(validation));
        if validation.state == "valid" {
            domain.active = domain.draft.clone();
        }
        self.update_connector(
            &connector.id,
            json!({"filtering": filtering}),
            connector.guard(),
        )
        .await
    }

    async fn create_job(
        &self,
        connector_id: &str,
        kind: JobKind,
        trigger_method: &str,
    ) -> Result<String, StoreError> {
        let connector = self
            .get_connector(connector_id)
            .await?
            .ok_or_else(|| not_found_connector(connector_id))?;
        let doc = new_job_doc(
            connector_id,
            &connector.source,
            kind,
            trigger_method,
            &now(),
        )
        .map_err(StoreError::Invalid)?;
        let answer = self.es.index_doc(JOBS_INDEX, None, doc, None, true).await?;
        new_id(&answer, "_id", "job")
    }

    async fn claim_job(
        &self,
        job: &Doc<SyncJob>,
        worker_hostname: &str,
        sync_cursor: Option<Value>,
    ) -> Result<(), EsError> {
        let ts = now();
        let mut patch = json!({"status": "in_progress", "started_at": ts, "last_seen": ts,
                                "worker_hostname": worker_hostname});
        if let Some(cursor) = sync_cursor {
            patch["connector"] = json!({"sync_cursor": cursor});
        }
        self.update_job(&job.id, patch, job.guard()).await
    }

    async fn job_stats(
        &self,
        job_id: &str,
        stats: &StatsSnapshot,
        metadata: Option<&Value>,
    ) -> Result<(), EsError> {
        self.update_job(job_id, stats_json(stats, Some(now()), metadata), None)
            .await
    }

    async fn create_connector(&self, request: &NewConnector) -> Result<String, StoreError> {
        self.ensure_indices().await?;
        let doc = new_connector_doc(
            &request.index_name,
            &request.name,
            &request.service_type,
            request.language.as_deref(),
            &now(),
        );
        let answer = self
            .es
            .index_doc(CONNECTORS_INDEX, request.id.as_deref(), doc, None, true)
            .await?;
        new_id(&answer, "_id", "connector")
    }

    async fn set_configuration(&self, id: &str, configuration: Value) -> Result<(), StoreError> {
        if self.get_connector(id).await?.is_none() {
            return Err(not_found_connector(id));
        }
        self.update_connector(
            id,
            json!({"configuration": configuration, "status": "configured"}),
            None,
        )
        .await?;
        Ok(())
    }

    async fn set_scheduling(&self, id: &str, scheduling: Value) -> Result<(), StoreError> {
        if self.get_connector(id).await?.is_none() {
            return Err(not_found_connector(id));
        }
        self.update_connector(id, json!({"scheduling": scheduling}), None)
            .await?;
        Ok(())
    }

    async fn cancel_job(&self, id: &str) -> Result<String, StoreError> {
        let job = self
            .get_job(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("sync job [{id}] not found")))?;
        let ts = now();
        let (next, patch) = match job.source.status {
            JobStatus::Pending | JobStatus::Suspended => (
                "canceled",
                json!({"status": "canceled", "cancelation_requested_at": ts, "canceled_at": ts, "completed_at": ts}),
            ),
            JobStatus::InProgress => (
                "canceling",
                json!({"status": "canceling", "cancelation_requested_at": ts}),
            ),
            other => {
                return Err(StoreError::Invalid(format!(
                    "sync job [{id}] is {} and cannot be canceled",
                    other.as_str()
                )))
            }
        };
        self.update_job(id, patch, job.guard()).await?;
        Ok(next.to_string())
    }
}

/// `_connector` API mode (`feature_use_connectors_api: true`), hybrid like the Python service.
#[derive(Debug, Clone)]
pub struct ApiStore {
    es: EsClient,
}

impl ApiStore {
    /// A store over `es`.
    pub fn new(es: EsClient) -> ApiStore {
        ApiStore { es }
    }

    /// `PUT` with the declared body, or none at all (never `{}`: Elasticsearch refuses a body
    /// on an endpoint that reads none).
    async fn put(&self, path: &str, body: Option<Value>) -> Result<Value, EsError> {
        self.es.json(Method::Put, path, &[], body).await
    }
}

fn map_not_found(error: EsError, what: String) -> StoreError {
    if error.is_not_found() {
        StoreError::NotFound(what)
    } else if error.status() == Some(400) {
        StoreError::Invalid(error.to_string())
    } else {
        StoreError::Elasticsearch(error)
    }
}

#[async_trait]
impl ConnectorStore for ApiStore {
    fn es(&self) -> &EsClient {
        &self.es
    }

    fn uses_api(&self) -> bool {
        true
    }

    async fn check_in(&self, id: &str) -> Result<(), EsError> {
        self.put(&format!("/_connector/{}/_check_in", encode(id)), None)
            .await
            .map(|_| ())
    }

    async fn write_filtering_validation(
        &self,
        connector: &Doc<Connector>,
        validation: &FilteringValidation,
    ) -> Result<(), EsError> {
        let id = encode(&connector.id);
        self.put(
            &format!("/_connector/{id}/_filtering/_validation"),
            Some(json!({"validation": filter_validation(validation)})),
        )
        .await?;
        if validation.state == "valid" {
            self.put(&format!("/_connector/{id}/_filtering/_activate"), None)
                .await?;
        }
        Ok(())
    }

    async fn create_job(
        &self,
        connector_id: &str,
        kind: JobKind,
        trigger_method: &str,
    ) -> Result<String, StoreError> {
        let answer = self
            .es
            .json(
                Method::Post,
                "/_connector/_sync_job",
                &[],
                Some(json!({"id": connector_id, "job_type": kind.as_str(), "trigger_method": trigger_method})),
            )
            .await
            .map_err(|e| map_not_found(e, format!("connector [{connector_id}] not found")))?;
        new_id(&answer, "id", "job")
    }

    async fn claim_job(
        &self,
        job: &Doc<SyncJob>,
        worker_hostname: &str,
        sync_cursor: Option<Value>,
    ) -> Result<(), EsError> {
        let mut body = json!({"worker_hostname": worker_hostname});
        // `sync_cursor` is declared as an object (`declareObject`): anything else is refused.
        if let Some(cursor) = sync_cursor.filter(Value::is_object) {
            body["sync_cursor"] = cursor;
        }
        self.put(
            &format!("/_connector/_sync_job/{}/_claim", encode(&job.id)),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    async fn job_stats(
        &self,
        job_id: &str,
        stats: &StatsSnapshot,
        metadata: Option<&Value>,
    ) -> Result<(), EsError> {
        // `metadata` is declared as an object; Elasticsearch merges it into the job's.
        self.put(
            &format!("/_connector/_sync_job/{}/_stats", encode(job_id)),
            Some(stats_json(stats, None, metadata)),
        )
        .await
        .map(|_| ())
    }

    async fn create_connector(&self, request: &NewConnector) -> Result<String, StoreError> {
        let mut body = json!({"index_name": request.index_name, "name": request.name,
                              "service_type": request.service_type, "is_native": false});
        if let Some(language) = &request.language {
            body["language"] = json!(language);
        }
        let answer = match &request.id {
            Some(id) => {
                self.put(&format!("/_connector/{}", encode(id)), Some(body))
                    .await
            }
            None => {
                self.es
                    .json(Method::Post, "/_connector", &[], Some(body))
                    .await
            }
        }
        .map_err(|e| map_not_found(e, "connector".into()))?;
        let id = new_id(&answer, "id", "connector")?;
        // Kibana sets the pipeline right after creating the connector.
        self.put(
            &format!("/_connector/{}/_pipeline", encode(&id)),
            Some(json!({"pipeline": super::connector::default_pipeline()})),
        )
        .await?;
        Ok(id)
    }

    async fn set_configuration(&self, id: &str, configuration: Value) -> Result<(), StoreError> {
        self.put(
            &format!("/_connector/{}/_configuration", encode(id)),
            Some(json!({"configuration": configuration})),
        )
        .await
        .map_err(|e| map_not_found(e, format!("connector [{id}] not found")))?;
        Ok(())
    }

    async fn set_scheduling(&self, id: &str, scheduling: Value) -> Result<(), StoreError> {
        self.put(
            &format!("/_connector/{}/_scheduling", encode(id)),
            Some(json!({"scheduling": scheduling})),
        )
        .await
        .map_err(|e| map_not_found(e, format!("connector [{id}] not found")))?;
        Ok(())
    }

    async fn cancel_job(&self, id: &str) -> Result<String, StoreError> {
        self.put(
            &format!("/_connector/_sync_job/{}/_cancel", encode(id)),
            None,
        )
        .await
        .map_err(|e| map_not_found(e, format!("sync job [{id}] not found")))?;
        let job = self
            .get_job(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("sync job [{id}] not found")))?;
        Ok(job.source.status.as_str().to_string())
    }
}

/// A draft's new `validation`: `state` and `errors` (`ids`, `messages`).
fn filter_validation(validation: &FilteringValidation) -> FilterValidation {
    let errors: Vec<Value> = validation
        .errors
        .iter()
        .map(|e| json!({"ids": e.ids, "messages": e.messages}))
        .collect();
    FilterValidation {
        state: Some(validation.state.clone()),
        rest: Map::from_iter([("errors".to_string(), json!(errors))]),
    }
}

fn stats_json(stats: &StatsSnapshot, last_seen: Option<String>, metadata: Option<&Value>) -> Value {
    let mut body = json!({
        "indexed_document_count": stats.indexed_document_count,
        "indexed_document_volume": stats.indexed_document_volume_mib(),
        "deleted_document_count": stats.deleted_document_count,
    });
    if let Some(ts) = last_seen {
        body["last_seen"] = json!(ts);
    }
    if let Some(metadata) = metadata.filter(|m| m.is_object()) {
        body["metadata"] = metadata.clone();
    }
    body
}

/// The store for a configuration's protocol mode.
pub fn for_mode(es: EsClient, use_connectors_api: bool) -> std::sync::Arc<dyn ConnectorStore> {
    if use_connectors_api {
        std::sync::Arc::new(ApiStore::new(es))
    } else {
        std::sync::Arc::new(DirectStore::new(es))
    }
}
