//! The connector system indices, set up the way Elasticsearch's `ConnectorTemplateRegistry`
//! does it.
//!
//! ES installs index templates at startup and the indices come into being on first write. The
//! shim installs the same templates (hidden, 1 shard, `auto_expand_replicas: "0-1"`,
//! `dynamic: false` mappings, the alias) and creates the `-v1` indices on first use of the
//! connector API. The framework's preflight `PUT .elastic-connectors-v1` (no body) sent through
//! the shim therefore gets the same mappings.
//!
//! Invariants:
//! - Indices or aliases that already exist are used as they are (the daemon in direct mode may
//!   have created them); a missing alias on an existing index is added.
//! - `number_of_replicas: 0` is set too: osmem does not apply `auto_expand_replicas`, and ES on
//!   one node ends up with 0 replicas (green), which is what tests should see.
//! - Setup is retried on the next call until it succeeds once.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::error::{ShimError, ShimResult};
use crate::upstream::Upstream;

pub const CONNECTORS_INDEX: &str = ".elastic-connectors-v1";
pub const CONNECTORS_ALIAS: &str = ".elastic-connectors";
pub const JOBS_INDEX: &str = ".elastic-connectors-sync-jobs-v1";
pub const JOBS_ALIAS: &str = ".elastic-connectors-sync-jobs";
pub const SECRETS_INDEX: &str = ".connector-secrets";

/// The template `version` ES writes into `_meta` (the registry's template version).
const TEMPLATE_VERSION: u64 = 3;

/// Remembers that setup succeeded, and serializes concurrent first calls.
#[derive(Default)]
pub struct SystemIndices {
    ready: AtomicBool,
    lock: Mutex<()>,
}

impl SystemIndices {
    /// Makes sure templates, indices and aliases exist. Cheap after the first success.
    pub async fn ensure(&self, upstream: &Upstream) -> ShimResult<()> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self.lock.lock().await;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        install_templates(upstream).await?;
        ensure_index(
            upstream,
            CONNECTORS_INDEX,
            CONNECTORS_ALIAS,
            connectors_mappings(),
        )
        .await?;
        ensure_index(upstream, JOBS_INDEX, JOBS_ALIAS, jobs_mappings()).await?;
        ensure_index(upstream, SECRETS_INDEX, "", secrets_mappings()).await?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }
}

fn settings() -> Value {
    json!({"index": {"hidden": true, "number_of_shards": 1, "auto_expand_replicas": "0-1",
                      "number_of_replicas": 0}})
}

/// Installs the two index templates (ES's registry keeps them current; overwriting is fine).
pub async fn install_templates(upstream: &Upstream) -> ShimResult<()> {
    for (name, index, alias, mappings) in [
        (
            "elastic-connectors",
            CONNECTORS_INDEX,
            CONNECTORS_ALIAS,
            connectors_mappings(),
        ),
        (
            "elastic-connectors-sync-jobs",
            JOBS_INDEX,
            JOBS_ALIAS,
            jobs_mappings(),
        ),
    ] {
        let body = json!({
            "index_patterns": [index],
            "priority": 100,
            "template": {"settings": settings(), "mappings": mappings,
                         "aliases": {alias: {"is_hidden": true}}},
            "_meta": {"description": "Built-in mappings applied by default to elastic-connectors indices",
                      "managed": true},
            "version": TEMPLATE_VERSION,
        });
        upstream
            .ok(
                Method::PUT,
                &format!("/_index_template/{name}"),
                Some(&body),
            )
            .await?;
    }
    Ok(())
}

async fn ensure_index(
    upstream: &Upstream,
    index: &str,
    alias: &str,
    mappings: Value,
) -> ShimResult<()> {
    if !alias.is_empty() {
        let (status, _) = upstream
            .send(Method::HEAD, &format!("/_alias/{alias}"), None)
            .await?;
        if status == StatusCode::OK {
            return Ok(());
        }
    }
    let (status, _) = upstream
        .send(Method::HEAD, &format!("/{index}"), None)
        .await?;
    if status == StatusCode::OK {
        if !alias.is_empty() {
            let body =
                json!({"actions": [{"add": {"index": index, "alias": alias, "is_hidden": true}}]});
            upstream.ok(Method::POST, "/_aliases", Some(&body)).await?;
        }
        return Ok(());
    }
    let mut body = json!({"settings": settings(), "mappings": mappings});
    if !alias.is_empty() {
        body["aliases"] = json!({alias: {"is_hidden": true}});
    }
    let (status, answer) = upstream
        .send(Method::PUT, &format!("/{index}"), Some(&body))
        .await?;
    if status.is_success()
        || answer.pointer("/error/type").and_then(Value::as_str)
            == Some("resource_already_exists_exception")
    {
        return Ok(());
    }
    Err(ShimError::Upstream {
        status,
        body: answer,
    })
}

fn kw() -> Value {
    json!({"type": "keyword"})
}

fn filtering_rules() -> Value {
    json!({"properties": {
        "created_at": {"type": "date"}, "field": kw(), "id": kw(), "order": {"type": "short"},
        "policy": kw(), "rule": kw(), "updated_at": {"type": "date"}, "value": kw()}})
}

fn advanced_snippet() -> Value {
    json!({"properties": {"created_at": {"type": "date"}, "updated_at": {"type": "date"},
                          "value": {"type": "object"}}})
}

fn filtering_side() -> Value {
    json!({"properties": {
        "advanced_snippet": advanced_snippet(),
        "rules": filtering_rules(),
        "validation": {"properties": {
            "errors": {"properties": {"ids": kw(), "messages": {"type": "text"}}},
            "state": kw()}}}})
}

fn pipeline_props() -> Value {
    json!({"properties": {"extract_binary_content": {"type": "boolean"}, "name": kw(),
                          "reduce_whitespace": {"type": "boolean"},
                          "run_ml_inference": {"type": "boolean"}}})
}

fn enabled() -> Value {
    json!({"properties": {"enabled": {"type": "boolean"}}})
}

fn schedule() -> Value {
    json!({"properties": {"enabled": {"type": "boolean"}, "interval": {"type": "text"}}})
}

/// Field list of ES's `elastic-connectors-mappings.json` (plus the later `deleted`,
/// `api_key_secret_id` and feature flags).
pub fn connectors_mappings() -> Value {
    json!({
        "dynamic": "false",
        "_meta": {"pipeline": {"default_name": "search-default-ingestion",
                               "default_extract_binary_content": true,
                               "default_run_ml_inference": true,
                               "default_reduce_whitespace": true},
                  "version": TEMPLATE_VERSION},
        "properties": {
            "api_key_id": kw(), "api_key_secret_id": kw(), "connector_id": kw(),
            "configuration": {"type": "object"}, "custom_scheduling": {"type": "object"},
            "deleted": {"type": "boolean"}, "description": {"type": "text"}, "error": kw(),
            "features": {"properties": {
                "document_level_security": enabled(),
                "filtering_advanced_config": {"type": "boolean"},
                "filtering_rules": {"type": "boolean"},
                "incremental_sync": enabled(),
                "native_connector_api_keys": enabled(),
                "sync_rules": {"properties": {"advanced": enabled(), "basic": enabled()}}}},
            "filtering": {"properties": {"active": filtering_side(), "domain": kw(),
                                         "draft": filtering_side()}},
            "index_name": kw(), "is_native": {"type": "boolean"}, "language": kw(),
            "last_access_control_sync_error": kw(),
            "last_access_control_sync_scheduled_at": {"type": "date"},
            "last_access_control_sync_status": kw(),
            "last_deleted_document_count": {"type": "long"},
            "last_incremental_sync_scheduled_at": {"type": "date"},
            "last_indexed_document_count": {"type": "long"},
            "last_seen": {"type": "date"}, "last_sync_error": kw(),
            "last_sync_scheduled_at": {"type": "date"}, "last_sync_status": kw(),
            "last_synced": {"type": "date"}, "name": kw(), "pipeline": pipeline_props(),
            "scheduling": {"properties": {"access_control": schedule(), "full": schedule(),
                                          "incremental": schedule()}},
            "service_type": kw(), "status": kw(), "sync_cursor": {"type": "object"},
            "sync_now": {"type": "boolean"}
        }
    })
}

/// Field list of ES's `elastic-connectors-sync-jobs-mappings.json`.
pub fn jobs_mappings() -> Value {
    json!({
        "dynamic": "false",
        "_meta": {"version": TEMPLATE_VERSION},
        "properties": {
            "cancelation_requested_at": {"type": "date"}, "canceled_at": {"type": "date"},
            "completed_at": {"type": "date"},
            "connector": {"properties": {
                "configuration": {"type": "object"},
                "filtering": {"properties": {
                    "advanced_snippet": advanced_snippet(), "domain": kw(),
                    "rules": filtering_rules(),
                    "warnings": {"properties": {"ids": kw(), "messages": {"type": "text"}}}}},
                "id": kw(), "index_name": kw(), "language": kw(), "pipeline": pipeline_props(),
                "service_type": kw(), "sync_cursor": {"type": "object"}}},
            "created_at": {"type": "date"}, "deleted_document_count": {"type": "integer"},
            "error": kw(), "indexed_document_count": {"type": "integer"},
            "indexed_document_volume": {"type": "integer"}, "job_type": kw(),
            "last_seen": {"type": "date"}, "metadata": {"type": "object"},
            "started_at": {"type": "date"}, "status": kw(),
            "total_document_count": {"type": "integer"}, "trigger_method": kw(),
            "worker_hostname": kw()
        }
    })
}

fn secrets_mappings() -> Value {
    json!({"dynamic": "false", "properties": {"value": kw()}})
}
