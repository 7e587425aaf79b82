//! The `_connector` endpoints on connector documents, following ES's `ConnectorIndexService`.
//!
//! Invariants:
//! - Documents live in `.elastic-connectors` exactly as ES writes them: fields that are null are
//!   left out, `id` is not stored (it is the `_id`) and is added to GET/list answers.
//! - A soft-deleted connector (`deleted: true`) is "not found" unless `include_deleted`.
//! - Every update is a read-modify-write under `if_seq_no`/`if_primary_term` (see
//!   [`Upstream::modify`]); an update that changes nothing answers `noop`, as ES's detect-noop.
//! - Errors match ES: 404 `resource_not_found_exception` "connector [id] not found", 400
//!   `status_exception` for rule violations, 400 `action_request_validation_exception` and
//!   `x_content_parse_exception` for bad requests.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::body::{self, flag, int_param, list_param, now, param, Query};
use crate::error::{ShimError, ShimResult};
use crate::store::{CONNECTORS_ALIAS, JOBS_ALIAS};
use crate::upstream::{Upstream, WriteResult};
use crate::App;

/// Indices attached to Elastic-managed (native) connectors must start with this.
const MANAGED_INDEX_PREFIX: &str = "content-";

pub const STATUSES: [&str; 5] = [
    "created",
    "needs_configuration",
    "configured",
    "connected",
    "error",
];

type Answer = ShimResult<(StatusCode, Value)>;

pub fn not_found(id: &str) -> ShimError {
    ShimError::not_found(format!("connector [{id}] not found"))
}

fn updated(r: WriteResult) -> Answer {
    Ok((StatusCode::OK, json!({"result": r.as_str()})))
}

/// Connector statuses ES allows to follow each other (`ConnectorStateMachine`).
fn valid_status_transition(from: &str, to: &str) -> bool {
    let next: &[&str] = match from {
        "created" => &["needs_configuration", "error"],
        "needs_configuration" => &["configured", "error"],
        "configured" => &["needs_configuration", "configured", "connected", "error"],
        "connected" => &["connected", "configured", "error"],
        "error" => &["connected", "configured", "error"],
        _ => &[],
    };
    next.contains(&to)
}

/// ES's index-name rules (`MetadataCreateIndexService.validateIndexOrAliasName`).
pub fn index_name_problem(name: &str) -> Option<String> {
    let bad = |why: &str| Some(format!("Invalid index name [{name}], {why}"));
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name != name.to_lowercase() {
        return bad("must be lowercase");
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
        )
    }) {
        return bad(&format!("must not contain the following characters [{c}]"));
    }
    if name.starts_with(['_', '-', '+']) {
        return bad("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return bad("must not be '.' or '..'");
    }
    if name.len() > 255 {
        return bad("index name is too long, (> 255)");
    }
    None
}

/// The default filtering ES writes on create: one DEFAULT domain whose active and draft sides
/// hold the include-everything regex rule.
fn default_filtering(ts: &str) -> Value {
    let side = json!({
        "advanced_snippet": {"created_at": ts, "updated_at": ts, "value": {}},
        "rules": [default_rule(Some(ts), 0)],
        "validation": {"errors": [], "state": "valid"},
    });
    json!([{"active": side, "domain": "DEFAULT", "draft": side}])
}

fn default_rule(ts: Option<&str>, order: i64) -> Value {
    json!({"created_at": ts, "field": "_", "id": "DEFAULT", "order": order, "policy": "include",
           "rule": "regex", "updated_at": ts, "value": ".*"})
}

fn default_scheduling() -> Value {
    let off = json!({"enabled": false, "interval": "0 0 0 * * ?"});
    json!({"access_control": off, "full": off, "incremental": off})
}

/// Whether `index_name` is attached to another live connector.
async fn index_name_in_use(
    up: &Upstream,
    index_name: &str,
    except: Option<&str>,
) -> ShimResult<bool> {
    let mut must_not = vec![json!({"term": {"deleted": true}})];
    if let Some(id) = except {
        must_not.push(json!({"ids": {"values": [id]}}));
    }
    let q = json!({"size": 0, "query": {"bool": {"must": [{"term": {"index_name": index_name}}],
                                                  "must_not": must_not}}});
    Ok(up
        .search(CONNECTORS_ALIAS, &q)
        .await?
        .is_some_and(|(total, _)| total > 0))
}

/// `PUT /_connector/{id}`, `PUT /_connector` and `POST /_connector`: create (or overwrite) a
/// connector with ES's defaults.
pub async fn create(app: &App, id: Option<&str>, raw: &Bytes) -> Answer {
    const P: &str = "connector_put_request";
    let allowed = [
        "description",
        "index_name",
        "is_native",
        "language",
        "name",
        "service_type",
    ];
    let b = body::object(raw, P, &allowed)?.unwrap_or_default();
    let description = body::opt_str(&b, "description", P)?;
    let index_name = body::opt_str(&b, "index_name", P)?;
    let is_native = body::opt_bool(&b, "is_native", P)?.unwrap_or(false);
    let language = body::opt_str(&b, "language", P)?;
    let name = body::opt_str(&b, "name", P)?;
    let service_type = body::opt_str(&b, "service_type", P)?;

    let mut problems = Vec::new();
    if let Some(id) = id {
        if id.trim().is_empty() {
            problems.push("[connector_id] cannot be [null] or [\"\"]".to_string());
        }
    }
    if let Some(ix) = index_name.as_deref().filter(|s| !s.is_empty()) {
        if let Some(p) = index_name_problem(ix) {
            problems.push(p);
        }
        if is_native && !ix.starts_with(MANAGED_INDEX_PREFIX) {
            problems.push(format!(
                "Index attached to an Elastic-managed connector must start with the prefix: \
                 [{MANAGED_INDEX_PREFIX}]. The index name in the payload [{ix}] doesn't comply with this requirement."
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ShimError::validation(&problems));
    }

    app.system.ensure(&app.upstream).await?;
    if let Some(ix) = index_name.as_deref() {
        if index_name_in_use(&app.upstream, ix, id).await? {
            return Err(ShimError::status(format!(
                "Index name [{ix}] is used by another connector."
            )));
        }
    }
    let ts = now();
    let mut doc = Map::new();
    doc.insert("configuration".into(), json!({}));
    doc.insert("custom_scheduling".into(), json!({}));
    if let Some(d) = description {
        doc.insert("description".into(), Value::String(d));
    }
    doc.insert("filtering".into(), default_filtering(&ts));
    if let Some(ix) = index_name {
        doc.insert("index_name".into(), Value::String(ix));
    }
    doc.insert("is_native".into(), Value::Bool(is_native));
    if let Some(l) = language {
        doc.insert("language".into(), Value::String(l));
    }
    doc.insert("name".into(), Value::String(name.unwrap_or_default()));
    doc.insert("scheduling".into(), default_scheduling());
    if let Some(s) = service_type {
        doc.insert("service_type".into(), Value::String(s));
    }
    let status = if is_native {
        "needs_configuration"
    } else {
        "created"
    };
    doc.insert("status".into(), json!(status));
    doc.insert("sync_now".into(), Value::Bool(false));
    doc.insert("deleted".into(), Value::Bool(false));

    let answer = app
        .upstream
        .index_doc(CONNECTORS_ALIAS, id, &Value::Object(doc), false)
        .await?;
    let result = answer["result"].as_str().unwrap_or("created").to_string();
    let id = answer["_id"].as_str().unwrap_or_default().to_string();
    let status = if result == "created" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, json!({"result": result, "id": id})))
}

/// `GET /_connector/{id}`.
pub async fn get(app: &App, id: &str, query: &Query) -> Answer {
    let include_deleted = flag(query, "include_deleted")?;
    let doc = app
        .upstream
        .get_doc(CONNECTORS_ALIAS, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !include_deleted && doc.source.get("deleted") == Some(&Value::Bool(true)) {
        return Err(not_found(id));
    }
    Ok((StatusCode::OK, with_id(&doc.id, doc.source)))
}

fn with_id(id: &str, source: Map<String, Value>) -> Value {
    let mut out = Map::with_capacity(source.len() + 1);
    out.insert("id".into(), Value::String(id.to_string()));
    out.extend(source);
    Value::Object(out)
}

/// `DELETE /_connector/{id}`: soft delete (`deleted: true`) unless `hard`; optionally deletes
/// the connector's sync jobs.
pub async fn delete(app: &App, id: &str, query: &Query) -> Answer {
    let hard = flag(query, "hard")?;
    let delete_jobs = flag(query, "delete_sync_jobs")?;
    if hard {
        let path = format!(
            "/{CONNECTORS_ALIAS}/_doc/{}?refresh=true",
            crate::upstream::encode(id)
        );
        let (status, body) = app.upstream.send(Method::DELETE, &path, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(not_found(id));
        }
        if !status.is_success() {
            return Err(ShimError::Upstream { status, body });
        }
    } else {
        let r = app
            .upstream
            .modify(CONNECTORS_ALIAS, id, |doc| {
                if doc.get("deleted") == Some(&Value::Bool(true)) {
                    return Err(not_found(id));
                }
                doc.insert("deleted".into(), Value::Bool(true));
                Ok(())
            })
            .await?;
        r.ok_or_else(|| not_found(id))?;
    }
    if delete_jobs {
        delete_jobs_of(&app.upstream, id).await?;
    }
    Ok((StatusCode::OK, json!({"acknowledged": true})))
}

async fn delete_jobs_of(up: &Upstream, connector_id: &str) -> ShimResult<()> {
    let q = json!({"query": {"term": {"connector.id": connector_id}}});
    let path = format!("/{JOBS_ALIAS}/_delete_by_query?refresh=true&ignore_unavailable=true");
    let (status, body) = up.send(Method::POST, &path, Some(&q)).await?;
    if status.is_success() || status == StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(ShimError::Upstream { status, body })
    }
}

/// `GET /_connector`: list, sorted by index name.
pub async fn list(app: &App, query: &Query) -> Answer {
    let from = int_param(query, "from", 0)?;
    let size = int_param(query, "size", 100)?;
    let mut problems = Vec::new();
    if from < 0 {
        problems.push(
            "[from] parameter cannot be negative, found [".to_string() + &from.to_string() + "]",
        );
    }
    if size < 0 {
        problems.push(
            "[size] parameter cannot be negative, found [".to_string() + &size.to_string() + "]",
        );
    }
    if !problems.is_empty() {
        return Err(ShimError::validation(&problems));
    }
    let mut must = Vec::new();
    for (param_name, field) in [
        ("index_name", "index_name"),
        ("connector_name", "name"),
        ("service_type", "service_type"),
    ] {
        let values = list_param(query, param_name);
        if !values.is_empty() {
            must.push(json!({"terms": {field: values}}));
        }
    }
    if let Some(q) = param(query, "query").filter(|q| !q.is_empty()) {
        let w = format!("*{q}*");
        must.push(json!({"bool": {"should": [
            {"wildcard": {"index_name": w}}, {"wildcard": {"name": w}},
            {"wildcard": {"description": w}}]}}));
    }
    let mut must_not = Vec::new();
    if !flag(query, "include_deleted")? {
        must_not.push(json!({"term": {"deleted": true}}));
    }
    let search = json!({"from": from, "size": size,
                        "query": {"bool": {"must": must, "must_not": must_not}},
                        "sort": [{"index_name": {"order": "asc", "unmapped_type": "keyword"}}]});
    let (count, hits) = app
        .upstream
        .search(CONNECTORS_ALIAS, &search)
        .await?
        .unwrap_or_default();
    let results: Vec<Value> = hits.into_iter().map(|d| with_id(&d.id, d.source)).collect();
    Ok((StatusCode::OK, json!({"count": count, "results": results})))
}

/// Applies `f` to a live (not soft-deleted) connector.
async fn modify<F>(app: &App, id: &str, mut f: F) -> Answer
where
    F: FnMut(&mut Map<String, Value>) -> ShimResult<()>,
{
    let r = app
        .upstream
        .modify(CONNECTORS_ALIAS, id, |doc| {
            if doc.get("deleted") == Some(&Value::Bool(true)) {
                return Err(not_found(id));
            }
            f(doc)
        })
        .await?
        .ok_or_else(|| not_found(id))?;
    updated(r)
}

/// `PUT /_connector/{id}/_check_in`.
pub async fn check_in(app: &App, id: &str) -> Answer {
    let ts = now();
    modify(app, id, |doc| {
        doc.insert("last_seen".into(), json!(ts));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_configuration`.
pub async fn configuration(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_configuration_request";
    let b = body::required(raw, P, &["configuration", "values"])?;
    let schema = body::opt_object(&b, "configuration", P)?;
    let values = body::opt_object(&b, "values", P)?;
    match (&schema, &values) {
        (None, None) => {
            return Err(ShimError::validation(&[
                "[configuration] and [values] cannot both be null.".to_string(),
            ]))
        }
        (Some(_), Some(_)) => {
            return Err(ShimError::validation(&[
                "[configuration] and [values] cannot both be provided in the same request."
                    .to_string(),
            ]))
        }
        _ => {}
    }
    if let Some(schema) = &schema {
        if let Some((k, _)) = schema.iter().find(|(_, v)| !v.is_object()) {
            return Err(ShimError::parse(format!(
                "[1:2] [{P}] failed to parse field [configuration.{k}]"
            )));
        }
    }
    modify(app, id, |doc| {
        if let Some(schema) = &schema {
            doc.insert("configuration".into(), Value::Object(schema.clone()));
        } else if let Some(values) = &values {
            let existing = doc
                .get("configuration")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut unknown: Vec<&str> = values
                .keys()
                .filter(|k| !existing.contains_key(*k))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                unknown.sort_unstable();
                return Err(ShimError::status(format!(
                    "Unknown [configuration] fields in the request payload: [{}]. \
                     Remove them from request or register their schema first.",
                    unknown.join(", ")
                )));
            }
            let mut patch = Map::new();
            for (k, v) in values {
                patch.insert(k.clone(), json!({"value": v}));
            }
            let mut conf = existing;
            body::merge(&mut conf, &patch);
            doc.insert("configuration".into(), Value::Object(conf));
        }
        doc.insert("status".into(), json!("configured"));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_scheduling`. ES's `connector_scheduling` and `schedule_config`
/// parsers are lenient: unknown keys are dropped (types and required fields are checked against
/// the conformance table before this runs).
pub async fn scheduling(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_scheduling_request";
    let b = body::required(raw, P, &["scheduling"])?;
    let sched = body::opt_object(&b, "scheduling", P)?
        .ok_or_else(|| ShimError::validation(&["[scheduling] cannot be [null].".to_string()]))?;
    let mut kept = Map::new();
    for (kind, config) in sched {
        if !matches!(kind.as_str(), "access_control" | "full" | "incremental") {
            continue;
        }
        let config: Map<String, Value> = config
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| matches!(k.as_str(), "enabled" | "interval"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        kept.insert(kind, Value::Object(config));
    }
    modify(app, id, |doc| {
        let mut current = doc
            .get("scheduling")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        body::merge(&mut current, &kept);
        doc.insert("scheduling".into(), Value::Object(current));
        Ok(())
    })
    .await
}

/// The single filtering domain ES keeps, as a mutable object.
fn first_filtering(doc: &mut Map<String, Value>) -> ShimResult<&mut Map<String, Value>> {
    doc.get_mut("filtering")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.first_mut())
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ShimError::status("Connector has no filtering configuration"))
}

/// ES's `sortFilteringRulesByOrder`: non-default rules by `order`, then the DEFAULT rule last.
fn sort_rules(rules: &[Value], ts: &str) -> Vec<Value> {
    let is_default = |r: &Value| {
        r["id"] == "DEFAULT"
            && r["field"] == "_"
            && r["policy"] == "include"
            && r["rule"] == "regex"
            && r["value"] == ".*"
    };
    if rules.is_empty() {
        return vec![default_rule(Some(ts), 0)];
    }
    let default_created = rules
        .iter()
        .find(|r| is_default(r))
        .and_then(|r| r.get("created_at").and_then(Value::as_str))
        .map(String::from);
    let mut sorted: Vec<Value> = rules.iter().filter(|r| !is_default(r)).cloned().collect();
    sorted.sort_by_key(|r| r["order"].as_i64().unwrap_or(0));
    let next = sorted
        .last()
        .map(|r| r["order"].as_i64().unwrap_or(0) + 1)
        .unwrap_or(0);
    let mut d = default_rule(default_created.as_deref(), next);
    d["updated_at"] = json!(ts);
    sorted.push(d);
    sorted
}

/// `PUT /_connector/{id}/_filtering`: either the whole `filtering` list, or a new draft
/// (`rules` and/or `advanced_snippet`) whose validation becomes `edited`.
pub async fn filtering(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_filtering_request";
    let b = body::required(raw, P, &["filtering", "rules", "advanced_snippet"])?;
    let whole = match b.get("filtering") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => {
            return Err(ShimError::parse(format!(
                "[1:2] [{P}] failed to parse field [filtering]"
            )))
        }
    };
    let rules = match b.get("rules") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => {
            return Err(ShimError::parse(format!(
                "[1:2] [{P}] failed to parse field [rules]"
            )))
        }
    };
    let snippet = body::opt_object(&b, "advanced_snippet", P)?;
    if whole.is_none() && rules.is_none() && snippet.is_none() {
        return Err(ShimError::validation(&[
            "[advanced_snippet] and [rules] cannot be both null.".to_string(),
        ]));
    }
    let ts = now();
    if let Some(rules) = &rules {
        for r in rules {
            let Some(o) = r.as_object() else {
                return Err(ShimError::parse(format!(
                    "[1:2] [{P}] failed to parse field [rules]"
                )));
            };
            for key in ["field", "id", "order", "policy", "rule", "value"] {
                if !o.contains_key(key) {
                    return Err(ShimError::parse(format!(
                        "[1:2] [connector_filtering_rule] failed to parse object: Required [{key}]"
                    )));
                }
            }
        }
    }
    modify(app, id, |doc| {
        if let Some(whole) = &whole {
            doc.insert("filtering".into(), Value::Array(whole.clone()));
            return Ok(());
        }
        let f = first_filtering(doc)?;
        let mut draft = f
            .get("draft")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(rules) = &rules {
            let stamped: Vec<Value> = rules
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    for k in ["created_at", "updated_at"] {
                        if r.get(k).is_none_or(Value::is_null) {
                            r[k] = json!(ts);
                        }
                    }
                    r
                })
                .collect();
            draft.insert("rules".into(), Value::Array(sort_rules(&stamped, &ts)));
        }
        if let Some(s) = &snippet {
            let mut s = s.clone();
            for k in ["created_at", "updated_at"] {
                if s.get(k).is_none_or(Value::is_null) {
                    s.insert(k.into(), json!(ts));
                }
            }
            draft.insert("advanced_snippet".into(), Value::Object(s));
        }
        draft.insert(
            "validation".into(),
            json!({"errors": [], "state": "edited"}),
        );
        f.insert("draft".into(), Value::Object(draft));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_filtering/_validation`.
pub async fn filtering_validation(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_filtering_validation_request";
    let b = body::required(raw, P, &["validation"])?;
    let validation = body::opt_object(&b, "validation", P)?.ok_or_else(|| {
        ShimError::parse(format!(
            "[1:1] [{P}] failed to parse object: Required [validation]"
        ))
    })?;
    match validation.get("state").and_then(Value::as_str) {
        Some("edited" | "valid" | "invalid") => {}
        Some(other) => {
            return Err(ShimError::illegal_argument(format!(
                "Unknown FilteringValidationState: {other}"
            )))
        }
        None => {
            return Err(ShimError::parse(
                "[1:1] [filtering_validation] failed to parse object: Required [state]",
            ))
        }
    }
    let mut validation = validation;
    validation.entry("errors").or_insert_with(|| json!([]));
    modify(app, id, |doc| {
        let f = first_filtering(doc)?;
        let mut draft = f
            .get("draft")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        draft.insert("validation".into(), Value::Object(validation.clone()));
        f.insert("draft".into(), Value::Object(draft));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_filtering/_activate`: draft becomes active, if validated.
pub async fn filtering_activate(app: &App, id: &str) -> Answer {
    modify(app, id, |doc| {
        let f = first_filtering(doc)?;
        let draft = f.get("draft").cloned().unwrap_or(Value::Null);
        let state = draft
            .pointer("/validation/state")
            .and_then(Value::as_str)
            .unwrap_or("");
        if state != "valid" {
            return Err(ShimError::status(format!(
                "Filtering draft needs to be validated by the connector service before activation. \
                 Current filtering draft validation state [{state}] is not equal to [valid]."
            )));
        }
        f.insert("active".into(), draft);
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_status`.
pub async fn status(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_status_request";
    let b = body::required(raw, P, &["status"])?;
    let next = body::opt_str(&b, "status", P)?
        .ok_or_else(|| ShimError::validation(&["[status] cannot be [null].".to_string()]))?;
    if !STATUSES.contains(&next.as_str()) {
        return Err(ShimError::illegal_argument(format!(
            "Unknown ConnectorStatus: {next}"
        )));
    }
    modify(app, id, |doc| {
        let prev = doc
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !valid_status_transition(&prev, &next) {
            return Err(ShimError::status(format!(
                "Invalid transition attempt from [{prev}] to [{next}]. \
                 Such a status transition is not supported by the Connector Protocol."
            )));
        }
        doc.insert("status".into(), json!(next));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_error`: a non-empty error sets status `error`, null/empty clears it
/// and sets `connected`.
pub async fn error(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_error_request";
    let b = body::required(raw, P, &["error"])?;
    let err = body::opt_str(&b, "error", P)?;
    modify(app, id, |doc| {
        match err.as_deref().filter(|e| !e.is_empty()) {
            Some(e) => {
                doc.insert("error".into(), json!(e));
                doc.insert("status".into(), json!("error"));
            }
            None => {
                // ES writes an explicit null here (the map holds a null value).
                doc.insert("error".into(), Value::Null);
                doc.insert("status".into(), json!("connected"));
            }
        }
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_last_sync`.
pub async fn last_sync(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_last_sync_stats_request";
    let allowed = [
        "last_access_control_sync_error",
        "last_access_control_sync_scheduled_at",
        "last_access_control_sync_status",
        "last_deleted_document_count",
        "last_incremental_sync_scheduled_at",
        "last_indexed_document_count",
        "last_seen",
        "last_sync_error",
        "last_sync_scheduled_at",
        "last_sync_status",
        "last_synced",
        "sync_cursor",
    ];
    let b = body::required(raw, P, &allowed)?;
    for key in ["last_sync_status", "last_access_control_sync_status"] {
        if let Some(s) = body::opt_str(&b, key, P)? {
            if !crate::sync_job::STATUSES.contains(&s.as_str()) {
                return Err(ShimError::illegal_argument(format!(
                    "Unknown ConnectorSyncStatus: {s}"
                )));
            }
        }
    }
    for key in ["last_deleted_document_count", "last_indexed_document_count"] {
        body::opt_i64(&b, key, P)?;
    }
    // ES leaves out what is null in the request.
    let patch: Map<String, Value> = b.into_iter().filter(|(_, v)| !v.is_null()).collect();
    modify(app, id, |doc| {
        // A partial-document update in ES: a new sync_cursor object merges into the old one.
        body::merge(doc, &patch);
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_index_name`.
pub async fn index_name(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_index_name_request";
    let b = body::required(raw, P, &["index_name"])?;
    let ix = body::opt_str(&b, "index_name", P)?;
    if let Some(p) = ix.as_deref().and_then(index_name_problem) {
        return Err(ShimError::validation(&[p]));
    }
    if let Some(ix) = ix.as_deref() {
        if index_name_in_use(&app.upstream, ix, Some(id)).await? {
            return Err(ShimError::status(format!(
                "Index name [{ix}] is used by another connector."
            )));
        }
    }
    modify(app, id, |doc| {
        let native = doc.get("is_native") == Some(&Value::Bool(true));
        if let Some(ix) = ix.as_deref() {
            if native && !ix.starts_with(MANAGED_INDEX_PREFIX) {
                return Err(ShimError::status(format!(
                    "Index attached to an Elastic-managed connector must start with the prefix: \
                     [{MANAGED_INDEX_PREFIX}]. The index name in the payload [{ix}] doesn't comply with this requirement."
                )));
            }
        }
        doc.insert("index_name".into(), ix.clone().map(Value::String).unwrap_or(Value::Null));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_name`.
pub async fn name(app: &App, id: &str, raw: &Bytes) -> Answer {
    update_optional_pair(
        app,
        id,
        raw,
        "connector_update_name_request",
        ["name", "description"],
    )
    .await
}

/// An update of two optional string fields of which at least one must be given
/// (`_name`, `_api_key_id`): ES's shared "cannot both be null" rule.
async fn update_optional_pair(
    app: &App,
    id: &str,
    raw: &Bytes,
    request: &str,
    [first, second]: [&str; 2],
) -> Answer {
    let b = body::required(raw, request, &[first, second])?;
    let values = [
        body::opt_str(&b, first, request)?,
        body::opt_str(&b, second, request)?,
    ];
    if values.iter().all(Option::is_none) {
        return Err(ShimError::validation(&[format!(
            "[{first}] and [{second}] cannot both be null."
        )]));
    }
    modify(app, id, |doc| {
        for (field, value) in [first, second].into_iter().zip(&values) {
            if let Some(v) = value {
                doc.insert(field.into(), json!(v));
            }
        }
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_pipeline`. ES's `connector_ingest_pipeline` parser is lenient: it
/// keeps the four settings it knows and drops anything else (types and required fields are
/// checked against the conformance table before this runs).
pub async fn pipeline(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_pipeline_request";
    const KEYS: [&str; 4] = [
        "extract_binary_content",
        "name",
        "reduce_whitespace",
        "run_ml_inference",
    ];
    let b = body::required(raw, P, &["pipeline"])?;
    let p = body::opt_object(&b, "pipeline", P)?
        .ok_or_else(|| ShimError::validation(&["[pipeline] cannot be [null].".to_string()]))?;
    let p: Map<String, Value> = p
        .into_iter()
        .filter(|(k, _)| KEYS.contains(&k.as_str()))
        .collect();
    modify(app, id, |doc| {
        doc.insert("pipeline".into(), Value::Object(p.clone()));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_service_type`.
pub async fn service_type(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_service_type_request";
    let b = body::required(raw, P, &["service_type"])?;
    let st = body::opt_str(&b, "service_type", P)?.unwrap_or_default();
    if st.is_empty() {
        return Err(ShimError::validation(&[
            "[service_type] cannot be [null] or [\"\"].".to_string(),
        ]));
    }
    modify(app, id, |doc| {
        let prev = doc.get("status").and_then(Value::as_str).unwrap_or("");
        let next = if prev == "created" {
            "created"
        } else {
            "needs_configuration"
        };
        doc.insert("service_type".into(), json!(st));
        doc.insert("status".into(), json!(next));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_native`.
pub async fn native(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_native_request";
    let b = body::required(raw, P, &["is_native"])?;
    let is_native = body::opt_bool(&b, "is_native", P)?.ok_or_else(|| {
        ShimError::parse(format!(
            "[1:1] [{P}] failed to parse object: Required [is_native]"
        ))
    })?;
    modify(app, id, |doc| {
        let ix = doc.get("index_name").and_then(Value::as_str);
        if let Some(ix) = ix.filter(|ix| is_native && !ix.starts_with(MANAGED_INDEX_PREFIX)) {
            return Err(ShimError::status(format!(
                "The index name [{ix}] attached to the connector [{id}] must start with the required \
                 prefix: [{MANAGED_INDEX_PREFIX}] to be Elastic-managed. Please update the attached index first to comply with this requirement."
            )));
        }
        let status = doc.get("status").and_then(Value::as_str).unwrap_or("").to_string();
        let status = if status == "connected" { "configured".to_string() } else { status };
        doc.insert("is_native".into(), Value::Bool(is_native));
        doc.insert("status".into(), json!(status));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_features`.
pub async fn features(app: &App, id: &str, raw: &Bytes) -> Answer {
    const P: &str = "connector_update_features_request";
    let b = body::required(raw, P, &["features"])?;
    let f = body::opt_object(&b, "features", P)?
        .ok_or_else(|| ShimError::validation(&["[features] cannot be [null].".to_string()]))?;
    let known = [
        "document_level_security",
        "incremental_sync",
        "native_connector_api_keys",
        "sync_rules",
    ];
    if let Some(bad) = f.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ShimError::parse(format!(
            "[1:2] [connector_features] unknown field [{bad}]"
        )));
    }
    modify(app, id, |doc| {
        let mut current = doc
            .get("features")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        body::merge(&mut current, &f);
        doc.insert("features".into(), Value::Object(current));
        Ok(())
    })
    .await
}

/// `PUT /_connector/{id}/_api_key_id`.
pub async fn api_key_id(app: &App, id: &str, raw: &Bytes) -> Answer {
    update_optional_pair(
        app,
        id,
        raw,
        "connector_update_api_key_id_request",
        ["api_key_id", "api_key_secret_id"],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_machine() {
        assert!(valid_status_transition("created", "needs_configuration"));
        assert!(!valid_status_transition("created", "connected"));
        assert!(valid_status_transition("error", "connected"));
    }

    #[test]
    fn index_names() {
        assert!(index_name_problem("search-slack").is_none());
        assert!(index_name_problem("Bad").is_some());
        assert!(index_name_problem("_x").is_some());
        assert!(index_name_problem("a b").is_some());
    }

    #[test]
    fn rules_sorted_with_default_last() {
        let rules = vec![
            json!({"id": "b", "order": 5, "field": "f", "policy": "exclude", "rule": "equals", "value": "1"}),
            default_rule(Some("t0"), 0),
            json!({"id": "a", "order": 1, "field": "f", "policy": "include", "rule": "equals", "value": "2"}),
        ];
        let sorted = sort_rules(&rules, "t1");
        let ids: Vec<&str> = sorted.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "DEFAULT"]);
        assert_eq!(sorted[2]["order"], 6);
        assert_eq!(sorted[2]["created_at"], "t0");
    }
}
