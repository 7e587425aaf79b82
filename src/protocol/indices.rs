//! The connector indices `.elastic-connectors-v1` and `.elastic-connectors-sync-jobs-v1`,
//! behind the aliases `.elastic-connectors` and `.elastic-connectors-sync-jobs`.
//!
//! Invariant: when an index or alias is missing it is created as Elasticsearch's template
//! registry creates it (hidden, one shard, `auto_expand_replicas: 0-1`, `dynamic: false`
//! mappings with keyword ids and statuses, the alias); an existing one is used as it is.
//! Keyword mappings matter: the job queries use `terms` on `status`, `job_type` and
//! `connector.id`, which never match tokenised `text` fields.

use crate::es::{EsClient, EsError};
use serde_json::{json, Value};

/// Alias of the connectors index.
pub const CONNECTORS_INDEX: &str = ".elastic-connectors";
/// Alias of the sync-jobs index.
pub const JOBS_INDEX: &str = ".elastic-connectors-sync-jobs";
/// Concrete connectors index.
pub const CONNECTORS_CONCRETE: &str = ".elastic-connectors-v1";
/// Concrete sync-jobs index.
pub const JOBS_CONCRETE: &str = ".elastic-connectors-sync-jobs-v1";

fn settings() -> Value {
    json!({"index": {"hidden": true, "number_of_shards": 1, "auto_expand_replicas": "0-1"}})
}

fn disabled_object() -> Value {
    json!({"type": "object", "enabled": false})
}

/// Mappings of `.elastic-connectors-v1`.
pub fn connectors_mappings() -> Value {
    let keyword = json!({"type": "keyword"});
    let date = json!({"type": "date"});
    let long = json!({"type": "long"});
    json!({
        "dynamic": false,
        "_meta": {"version": 1, "managed_by": "connectors-rust"},
        "properties": {
            "api_key_id": keyword, "api_key_secret_id": keyword,
            "configuration": disabled_object(), "custom_scheduling": disabled_object(),
            "deleted": {"type": "boolean"}, "description": {"type": "text"},
            "error": keyword, "features": disabled_object(), "filtering": disabled_object(),
            "index_name": keyword, "is_native": {"type": "boolean"}, "language": keyword,
            "last_access_control_sync_error": keyword,
            "last_access_control_sync_scheduled_at": date,
            "last_access_control_sync_status": keyword,
            "last_deleted_document_count": long,
            "last_incremental_sync_scheduled_at": date,
            "last_indexed_document_count": long,
            "last_seen": date, "last_sync_error": keyword, "last_sync_scheduled_at": date,
            "last_sync_status": keyword, "last_synced": date,
            "name": keyword, "pipeline": disabled_object(), "scheduling": disabled_object(),
            "service_type": keyword, "status": keyword, "sync_cursor": disabled_object(),
            "sync_now": {"type": "boolean"}
        }
    })
}

/// Mappings of `.elastic-connectors-sync-jobs-v1`.
pub fn jobs_mappings() -> Value {
    let keyword = json!({"type": "keyword"});
    let date = json!({"type": "date"});
    let long = json!({"type": "long"});
    json!({
        "dynamic": false,
        "_meta": {"version": 1, "managed_by": "connectors-rust"},
        "properties": {
            "cancelation_requested_at": date, "canceled_at": date, "completed_at": date,
            "connector": {"properties": {
                "id": keyword, "index_name": keyword, "language": keyword,
                "service_type": keyword, "configuration": disabled_object(),
                "filtering": disabled_object(), "pipeline": disabled_object(),
                "sync_cursor": disabled_object()
            }},
            "created_at": date, "deleted_document_count": long, "error": keyword,
            "indexed_document_count": long, "indexed_document_volume": long,
            "job_type": keyword, "last_seen": date, "metadata": disabled_object(),
            "started_at": date, "status": keyword, "total_document_count": long,
            "trigger_method": keyword, "worker_hostname": keyword
        }
    })
}

/// Makes sure both indices and aliases exist; returns the names it created.
pub async fn ensure_connector_indices(es: &EsClient) -> Result<Vec<String>, EsError> {
    let mut created = Vec::new();
    for (alias, concrete, mappings) in [
        (CONNECTORS_INDEX, CONNECTORS_CONCRETE, connectors_mappings()),
        (JOBS_INDEX, JOBS_CONCRETE, jobs_mappings()),
    ] {
        if es.index_exists(alias).await? {
            continue;
        }
        if es.index_exists(concrete).await? {
            // The index is there but not the alias: add the alias only.
            es.json(
                elasticsearch::http::Method::Post,
                "/_aliases",
                &[],
                Some(json!({"actions": [{"add": {"index": concrete, "alias": alias, "is_hidden": true}}]})),
            )
            .await?;
            created.push(alias.to_string());
            continue;
        }
        let body = json!({
            "settings": settings(),
            "mappings": mappings,
            "aliases": {alias: {"is_hidden": true}}
        });
        if es.create_index(concrete, Some(body)).await? {
            created.push(concrete.to_string());
        }
    }
    Ok(created)
}
