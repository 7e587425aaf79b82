//! The `_connector/_sync_job` endpoints, following ES's `ConnectorSyncJobIndexService`, and the
//! connector secrets (`_connector/_secret`).
//!
//! Invariants:
//! - A new job snapshots the connector as ES does: `connector` holds id, index_name (the
//!   `.search-acl-filter-` index for access-control jobs), language, pipeline, service_type,
//!   configuration, and the ACTIVE rules of the first filtering domain; status `pending`,
//!   counters 0, `created_at` = `last_seen` = now, `metadata: {}`.
//! - Status changes through `_cancel` and `_error` obey ES's job state machine and answer 400
//!   `status_exception` otherwise. `_claim` does not check the current status (ES does not).
//! - All updates are read-modify-writes under optimistic concurrency, so concurrent `_stats` and
//!   `_check_in` calls never lose each other's fields.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::body::{self, int_param, list_param, now, param, Query};
use crate::error::{ShimError, ShimResult};
use crate::store::{CONNECTORS_ALIAS, JOBS_ALIAS, SECRETS_INDEX};
use crate::upstream::encode;
use crate::App;

pub const STATUSES: [&str; 7] = [
    "canceling",
    "canceled",
    "completed",
    "error",
    "in_progress",
    "pending",
    "suspended",
];
const JOB_TYPES: [&str; 3] = ["full", "incremental", "access_control"];
const TRIGGER_METHODS: [&str; 2] = ["on_demand", "scheduled"];

type Answer = ShimResult<(StatusCode, Value)>;

/// ES's job state machine (`ConnectorSyncJobStateMachine`).
pub fn valid_transition(from: &str, to: &str) -> bool {
    let next: &[&str] = match from {
        "pending" => &["in_progress", "canceled"],
        "in_progress" => &["canceling", "completed", "suspended", "error"],
        "suspended" => &["in_progress", "canceled"],
        "canceling" => &["canceled", "error"],
        _ => &[],
    };
    next.contains(&to)
}

fn transition_error(from: &str, to: &str) -> ShimError {
    ShimError::status(format!(
        "Invalid transition attempt from [{from}] to [{to}]. Such a sync job status transition is not \
         supported by the Connector Protocol."
    ))
}

/// The 404 of updates (ES: "connector sync job [id] not found").
fn update_not_found(id: &str) -> ShimError {
    ShimError::not_found(format!("connector sync job [{id}] not found"))
}

/// `POST /_connector/_sync_job`.
pub async fn create(app: &App, raw: &Bytes) -> Answer {
    const P: &str = "connector_sync_job_post_request";
    let b = body::required(raw, P, &["id", "job_type", "trigger_method"])?;
    let connector_id = body::opt_str(&b, "id", P)?.unwrap_or_default();
    if connector_id.is_empty() {
        return Err(ShimError::validation(&[
            "[id] of the connector cannot be null or empty.".to_string(),
        ]));
    }
    let job_type = body::opt_str(&b, "job_type", P)?.unwrap_or_else(|| "full".into());
    if !JOB_TYPES.contains(&job_type.as_str()) {
        return Err(ShimError::illegal_argument(format!(
            "Unknown ConnectorSyncJobType: {job_type}"
        )));
    }
    let trigger = body::opt_str(&b, "trigger_method", P)?.unwrap_or_else(|| "on_demand".into());
    if !TRIGGER_METHODS.contains(&trigger.as_str()) {
        return Err(ShimError::illegal_argument(format!(
            "Unknown ConnectorSyncJobTriggerMethod: {trigger}"
        )));
    }
    app.system.ensure(&app.upstream).await?;
    let connector = app
        .upstream
        .get_doc(CONNECTORS_ALIAS, &connector_id)
        .await?
        .ok_or_else(|| {
            ShimError::not_found(format!(
                "Connector with id '{connector_id}' does not exist."
            ))
        })?;
    let src = &connector.source;
    let index_name = src.get("index_name").and_then(Value::as_str).unwrap_or("");
    if index_name.is_empty() {
        return Err(ShimError::status(format!(
            "Cannot start a sync for connector [{connector_id}] with no index attached. Set the \
             [index_name] property for the connector to enable syncing data."
        )));
    }
    if src
        .get("service_type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(ShimError::status(format!(
            "Cannot start a sync for connector [{connector_id}] with [service_type] not defined. \
             Set the service type of your connector before starting the sync."
        )));
    }
    let target = if job_type == "access_control" {
        format!(".search-acl-filter-{index_name}")
    } else {
        index_name.to_string()
    };
    let mut snapshot = Map::new();
    snapshot.insert("id".into(), json!(connector_id));
    if let Some(active) = src
        .get("filtering")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|f| f.get("active"))
        .filter(|a| !a.is_null())
    {
        snapshot.insert("filtering".into(), active.clone());
    }
    snapshot.insert("index_name".into(), json!(target));
    for key in ["language", "pipeline", "service_type"] {
        if let Some(v) = src.get(key).filter(|v| !v.is_null()) {
            snapshot.insert(key.into(), v.clone());
        }
    }
    snapshot.insert(
        "configuration".into(),
        src.get("configuration")
            .cloned()
            .unwrap_or_else(|| json!({})),
    );
    let ts = now();
    let job = json!({
        "connector": snapshot,
        "created_at": ts,
        "deleted_document_count": 0,
        "indexed_document_count": 0,
        "indexed_document_volume": 0,
        "job_type": job_type,
        "last_seen": ts,
        "metadata": {},
        "status": "pending",
        "total_document_count": 0,
        "trigger_method": trigger,
    });
    let answer = app
        .upstream
        .index_doc(JOBS_ALIAS, None, &job, false)
        .await?;
    // ES's REST handler answers 201 here.
    Ok((StatusCode::CREATED, json!({"id": answer["_id"]})))
}

/// `GET /_connector/_sync_job/{id}`.
pub async fn get(app: &App, id: &str) -> Answer {
    let doc = app
        .upstream
        .get_doc(JOBS_ALIAS, id)
        .await?
        // ES's GET answers a bare id as the reason here.
        .ok_or_else(|| ShimError::not_found(id.to_string()))?;
    Ok((StatusCode::OK, with_id(&doc.id, doc.source)))
}

fn with_id(id: &str, source: Map<String, Value>) -> Value {
    let mut out = Map::with_capacity(source.len() + 1);
    out.insert("id".into(), Value::String(id.to_string()));
    out.extend(source);
    Value::Object(out)
}

/// `DELETE /_connector/_sync_job/{id}`.
pub async fn delete(app: &App, id: &str) -> Answer {
    let path = format!("/{JOBS_ALIAS}/_doc/{}?refresh=true", encode(id));
    let (status, body) = app.upstream.send(Method::DELETE, &path, None).await?;
    if status == StatusCode::NOT_FOUND {
        return Err(ShimError::not_found(id.to_string()));
    }
    if !status.is_success() {
        return Err(ShimError::Upstream { status, body });
    }
    Ok((StatusCode::OK, json!({"acknowledged": true})))
}

/// `GET /_connector/_sync_job`: newest first.
pub async fn list(app: &App, query: &Query) -> Answer {
    let from = int_param(query, "from", 0)?;
    let size = int_param(query, "size", 100)?;
    let mut problems = Vec::new();
    if from < 0 {
        problems.push(format!(
            "[from] parameter cannot be negative, found [{from}]"
        ));
    }
    if size < 0 {
        problems.push(format!(
            "[size] parameter cannot be negative, found [{size}]"
        ));
    }
    if !problems.is_empty() {
        return Err(ShimError::validation(&problems));
    }
    let mut must = Vec::new();
    if let Some(c) = param(query, "connector_id") {
        must.push(json!({"term": {"connector.id": c}}));
    }
    if let Some(s) = param(query, "status") {
        if !STATUSES.contains(&s) {
            return Err(ShimError::illegal_argument(format!(
                "Unknown ConnectorSyncStatus: {s}"
            )));
        }
        must.push(json!({"term": {"status": s}}));
    }
    let types = list_param(query, "job_type");
    if let Some(bad) = types.iter().find(|t| !JOB_TYPES.contains(&t.as_str())) {
        return Err(ShimError::illegal_argument(format!(
            "Unknown ConnectorSyncJobType: {bad}"
        )));
    }
    if !types.is_empty() {
        must.push(json!({"terms": {"job_type": types}}));
    }
    let search = json!({"from": from, "size": size, "query": {"bool": {"must": must}},
                        "sort": [{"created_at": {"order": "desc", "unmapped_type": "date"}}]});
    let (count, hits) = app
        .upstream
        .search(JOBS_ALIAS, &search)
        .await?
        .unwrap_or_default();
    let results: Vec<Value> = hits.into_iter().map(|d| with_id(&d.id, d.source)).collect();
    Ok((StatusCode::OK, json!({"count": count, "results": results})))
}

async fn modify<F>(app: &App, id: &str, f: F) -> ShimResult<()>
where
    F: FnMut(&mut Map<String, Value>) -> ShimResult<()>,
{
    app.upstream
        .modify(JOBS_ALIAS, id, f)
        .await?
        .ok_or_else(|| update_not_found(id))?;
    Ok(())
}

/// `PUT /_connector/_sync_job/{id}/_check_in`.
pub async fn check_in(app: &App, id: &str) -> Answer {
    let ts = now();
    modify(app, id, |doc| {
        doc.insert("last_seen".into(), json!(ts));
        Ok(())
    })
    .await?;
    Ok((StatusCode::OK, json!({})))
}

/// `PUT /_connector/_sync_job/{id}/_claim`.
pub async fn claim(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_sync_job_claim_request";
    let b = body::required(raw, P, &["worker_hostname", "sync_cursor"])?;
    let worker = body::opt_str(&b, "worker_hostname", P)?.unwrap_or_default();
    if worker.is_empty() {
        return Err(ShimError::validation(&[
            "[worker_hostname] of the connector sync job cannot be null.".to_string(),
        ]));
    }
    let cursor = b.get("sync_cursor").filter(|c| !c.is_null()).cloned();
    let ts = now();
    modify(app, id, |doc| {
        doc.insert("worker_hostname".into(), json!(worker));
        doc.insert("status".into(), json!("in_progress"));
        doc.insert("last_seen".into(), json!(ts));
        doc.insert("started_at".into(), json!(ts));
        if let Some(c) = &cursor {
            let mut patch = Map::new();
            patch.insert("connector".into(), json!({"sync_cursor": c}));
            body::merge(doc, &patch);
        }
        Ok(())
    })
    .await?;
    Ok((StatusCode::OK, json!({})))
}

/// `PUT /_connector/_sync_job/{id}/_stats`.
pub async fn stats(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_sync_job_update_ingestion_stats_request";
    let allowed = [
        "deleted_document_count",
        "indexed_document_count",
        "indexed_document_volume",
        "total_document_count",
        "last_seen",
        "metadata",
    ];
    // Required fields and types were checked against the conformance table.
    let b = body::required(raw, P, &allowed)?;
    let mut patch = Map::new();
    let mut problems = Vec::new();
    for key in [
        "deleted_document_count",
        "indexed_document_count",
        "indexed_document_volume",
    ] {
        let v = body::opt_i64(&b, key, P)?.unwrap_or(0);
        if v < 0 {
            problems.push(format!("[{key}] cannot be negative."));
        }
        patch.insert(key.into(), json!(v));
    }
    if let Some(total) = body::opt_i64(&b, "total_document_count", P)? {
        if total < 0 {
            problems.push("[total_document_count] cannot be negative.".to_string());
        }
        patch.insert("total_document_count".into(), json!(total));
    }
    if !problems.is_empty() {
        return Err(ShimError::validation(&problems));
    }
    let last_seen = body::opt_str(&b, "last_seen", P)?.unwrap_or_else(now);
    patch.insert("last_seen".into(), json!(last_seen));
    if let Some(m) = body::opt_object(&b, "metadata", P)? {
        patch.insert("metadata".into(), Value::Object(m));
    }
    modify(app, id, |doc| {
        body::merge(doc, &patch);
        Ok(())
    })
    .await?;
    Ok((StatusCode::OK, json!({})))
}

/// Reads a job for a status change: 404 answers the bare id, as ES's get does.
async fn current_status(app: &App, id: &str) -> ShimResult<String> {
    let doc = app
        .upstream
        .get_doc(JOBS_ALIAS, id)
        .await?
        .ok_or_else(|| ShimError::not_found(id.to_string()))?;
    Ok(doc
        .source
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}

/// `PUT /_connector/_sync_job/{id}/_cancel`: pending/suspended → canceled at once, others →
/// canceling (if the state machine allows).
pub async fn cancel(app: &App, id: &str) -> Answer {
    current_status(app, id).await?;
    let ts = now();
    modify(app, id, |doc| {
        let prev = doc
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if prev == "pending" || prev == "suspended" {
            doc.insert("status".into(), json!("canceled"));
            doc.insert("cancelation_requested_at".into(), json!(ts));
            doc.insert("canceled_at".into(), json!(ts));
            doc.insert("completed_at".into(), json!(ts));
        } else {
            if !valid_transition(&prev, "canceling") {
                return Err(transition_error(&prev, "canceling"));
            }
            doc.insert("status".into(), json!("canceling"));
            doc.insert("cancelation_requested_at".into(), json!(ts));
        }
        Ok(())
    })
    .await?;
    Ok((StatusCode::OK, json!({"result": "updated"})))
}

/// `PUT /_connector/_sync_job/{id}/_error`: status `error` with the message (ES sets no
/// `completed_at` here).
pub async fn error(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_sync_job_error_request";
    let b = body::required(raw, P, &["error"])?;
    let message = body::opt_str(&b, "error", P)?.unwrap_or_default();
    if message.is_empty() {
        return Err(ShimError::validation(&[
            "[error] of the connector sync job cannot be null or empty.".to_string(),
        ]));
    }
    current_status(app, id).await?;
    modify(app, id, |doc| {
        let prev = doc
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !valid_transition(&prev, "error") {
            return Err(transition_error(&prev, "error"));
        }
        doc.insert("status".into(), json!("error"));
        doc.insert("error".into(), json!(message));
        Ok(())
    })
    .await?;
    Ok((StatusCode::OK, json!({})))
}

/// `POST /_connector/_secret`.
pub async fn secret_post(app: &App, raw: &Bytes) -> Answer {
    let value = secret_value(raw)?;
    app.system.ensure(&app.upstream).await?;
    let answer = app
        .upstream
        .index_doc(SECRETS_INDEX, None, &json!({"value": value}), false)
        .await?;
    Ok((StatusCode::OK, json!({"id": answer["_id"]})))
}

/// `PUT /_connector/_secret/{id}`.
pub async fn secret_put(app: &App, id: &str, raw: &Bytes) -> Answer {
    let value = secret_value(raw)?;
    app.system.ensure(&app.upstream).await?;
    let answer = app
        .upstream
        .index_doc(SECRETS_INDEX, Some(id), &json!({"value": value}), false)
        .await?;
    Ok((StatusCode::OK, json!({"result": answer["result"]})))
}

fn secret_value(raw: &Bytes) -> ShimResult<String> {
    const P: &str = "post_secret_request";
    let b = body::required(raw, P, &["value"])?;
    let v = body::opt_str(&b, "value", P)?.unwrap_or_default();
    if v.is_empty() {
        return Err(ShimError::validation(&[
            "[value] of the connector secret cannot be [null] or [\"\"]".to_string(),
        ]));
    }
    Ok(v)
}

/// `GET /_connector/_secret/{id}`.
pub async fn secret_get(app: &App, id: &str) -> Answer {
    let doc = app
        .upstream
        .get_doc(SECRETS_INDEX, id)
        .await?
        .ok_or_else(|| ShimError::not_found(format!("No secret with id [{id}]")))?;
    Ok((
        StatusCode::OK,
        json!({"id": doc.id, "value": doc.source.get("value")}),
    ))
}

/// `DELETE /_connector/_secret/{id}`.
pub async fn secret_delete(app: &App, id: &str) -> Answer {
    let path = format!("/{SECRETS_INDEX}/_doc/{}?refresh=true", encode(id));
    let (status, body) = app.upstream.send(Method::DELETE, &path, None).await?;
    if status == StatusCode::NOT_FOUND {
        return Err(ShimError::not_found(format!("No secret with id [{id}]")));
    }
    if !status.is_success() {
        return Err(ShimError::Upstream { status, body });
    }
    Ok((StatusCode::OK, json!({"deleted": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_state_machine() {
        assert!(valid_transition("pending", "in_progress"));
        assert!(valid_transition("pending", "canceled"));
        assert!(!valid_transition("pending", "canceling"));
        assert!(valid_transition("in_progress", "canceling"));
        assert!(valid_transition("canceling", "canceled"));
        assert!(valid_transition("suspended", "in_progress"));
        for terminal in ["completed", "canceled", "error"] {
            for s in STATUSES {
                assert!(!valid_transition(terminal, s));
            }
        }
    }
}
