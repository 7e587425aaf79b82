//! The connector indices `.elastic-connectors-v1` and `.elastic-connectors-sync-jobs-v1`,
//! behind the aliases `.elastic-connectors` and `.elastic-connectors-sync-jobs`.
//!
//! Invariants:
//! - An existing index or alias is used as it is.
//! - A missing index is created as the Python service creates it (`ensure_exists` in its
//!   preflight check): `PUT .elastic-connectors-v1` with no body, so that the
//!   `elastic-connectors` and `elastic-connectors-sync-jobs` index templates Elasticsearch's
//!   `ConnectorTemplateRegistry` installs give it its settings, mappings and alias. Only where
//!   a template is missing (Elasticsearch-compatible servers without the registry, such as the
//!   test server) do our own settings and mappings (below, modelled on the templates: hidden,
//!   one shard, `auto_expand_replicas: 0-1`, `dynamic: false`, the alias) go in the request.
//! - Whichever way the index came, the alias exists afterwards.
//! - Keyword mappings matter: the job queries use `terms` on `status`, `job_type` and
//!   `connector.id`, which never match tokenised `text` fields.

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

/// The index template Elasticsearch installs for each connector index.
pub const CONNECTORS_TEMPLATE: &str = "elastic-connectors";
/// The index template of the sync-jobs index.
pub const JOBS_TEMPLATE: &str = "elastic-connectors-sync-jobs";

/// What creating a missing concrete index sends: nothing when Elasticsearch's template will
/// apply, our settings, mappings and alias otherwise.
pub fn create_body(template_exists: bool, alias: &str, mappings: Value) -> Option<Value> {
    (!template_exists).then(|| {
        json!({
            "settings": settings(),
            "mappings": mappings,
            "aliases": {alias: {"is_hidden": true}}
        })
    })
}

/// Makes sure both indices and aliases exist; returns the names it created.
pub async fn ensure_connector_indices(es: &EsClient) -> Result<Vec<String>, EsError> {
    let mut created = Vec::new();
    for (alias, concrete, template, mappings) in [
        (
            CONNECTORS_INDEX,
            CONNECTORS_CONCRETE,
            CONNECTORS_TEMPLATE,
            connectors_mappings(),
        ),
        (JOBS_INDEX, JOBS_CONCRETE, JOBS_TEMPLATE, jobs_mappings()),
    ] {
        if es.index_exists(alias).await? {
            continue;
        }
        if !es.index_exists(concrete).await? {
            let template_exists = es.index_template_exists(template).await?;
            tracing::info!(
                index = concrete,
                template_exists,
                "creating a connector index (with no body when Elasticsearch's template applies)"
            );
            if es
                .create_index(concrete, create_body(template_exists, alias, mappings))
                .await?
            {
                created.push(concrete.to_string());
            }
            if es.index_exists(alias).await? {
                continue;
            }
        }
        // The index is there but not the alias: add the alias only.
        es.json(
            elasticsearch::http::Method::Post,
            "/_aliases",
            &[],
            Some(json!({"actions": [{"add": {"index": concrete, "alias": alias, "is_hidden": true}}]})),
        )
        .await?;
        created.push(alias.to_string());
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_body_when_the_template_applies() {
        assert_eq!(create_body(true, JOBS_INDEX, jobs_mappings()), None);
        let body = create_body(false, JOBS_INDEX, jobs_mappings()).unwrap();
        assert_eq!(body["aliases"][JOBS_INDEX]["is_hidden"], true);
        assert_eq!(body["settings"]["index"]["hidden"], true);
        assert_eq!(
            body["mappings"]["properties"]["connector"]["properties"]["id"]["type"],
            "keyword"
        );
        assert!(
            body["mappings"]["properties"]["connector"]["properties"]
                .get("sync_cursor")
                .is_some(),
            "claims write connector.sync_cursor into a job"
        );
    }
}
