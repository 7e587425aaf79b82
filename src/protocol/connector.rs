//! Connector documents (`.elastic-connectors`, `elastic-connectors-protocol.md` §2.2): reading
//! them, and the pure decisions made on them (prepare, configuration validation, defaults).
//!
//! Invariants:
//! - A [`Doc`] keeps `_seq_no`/`_primary_term` from the read, so every guarded write is made
//!   against exactly the version the decision was taken on.
//! - Decisions are pure functions of a document (and a source factory); the IO is in
//!   [`super::store`] and the loops.
//! - New connectors mirror `PUT _connector/<id>`: status `created`, `configuration: {}`,
//!   default filtering, scheduling and pipeline.

use crate::sources::schema::ConfigField;
use crate::sources::{Configuration, SourceFactory};
use crate::sync::JobKind;
use serde_json::{json, Map, Value};

/// Connector statuses.
pub mod status {
    /// Just created.
    pub const CREATED: &str = "created";
    /// Schema written, values missing.
    pub const NEEDS_CONFIGURATION: &str = "needs_configuration";
    /// Values written.
    pub const CONFIGURED: &str = "configured";
    /// Validated and reachable.
    pub const CONNECTED: &str = "connected";
    /// Something is wrong; `error` says what.
    pub const ERROR: &str = "error";
}

/// The default ingest pipeline (`pipeline` of a new connector).
pub const DEFAULT_PIPELINE: &str = "search-default-ingestion";

/// A document read from Elasticsearch with its concurrency-control version.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// `_id`.
    pub id: String,
    /// `_seq_no` of the read.
    pub seq_no: Option<u64>,
    /// `_primary_term` of the read.
    pub primary_term: Option<u64>,
    /// `_source`.
    pub source: Value,
}

impl Doc {
    /// From a `GET _doc` answer or a search hit; `None` when it has no `_id`/`_source`.
    pub fn from_hit(hit: &Value) -> Option<Doc> {
        if hit.get("found") == Some(&Value::Bool(false)) {
            return None;
        }
        Some(Doc {
            id: hit["_id"].as_str()?.to_string(),
            seq_no: hit["_seq_no"].as_u64(),
            primary_term: hit["_primary_term"].as_u64(),
            source: hit.get("_source").filter(|s| s.is_object())?.clone(),
        })
    }

    /// The `if_seq_no`/`if_primary_term` guard for a write against this version.
    pub fn guard(&self) -> Option<(u64, u64)> {
        Some((self.seq_no?, self.primary_term?))
    }

    /// A string field (`None` when missing, null or not a string).
    pub fn str(&self, key: &str) -> Option<&str> {
        self.source.get(key).and_then(Value::as_str)
    }

    /// A field by JSON pointer (`/connector/id`).
    pub fn at(&self, pointer: &str) -> &Value {
        self.source.pointer(pointer).unwrap_or(&Value::Null)
    }
}

/// The `last_*_scheduled_at` field of a job kind.
pub fn scheduled_at_field(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Full => "last_sync_scheduled_at",
        JobKind::Incremental => "last_incremental_sync_scheduled_at",
        JobKind::AccessControl => "last_access_control_sync_scheduled_at",
    }
}

/// The `(status, error)` fields of the connector's last sync of a kind.
pub fn last_sync_fields(kind: JobKind) -> (&'static str, &'static str) {
    match kind {
        JobKind::AccessControl => (
            "last_access_control_sync_status",
            "last_access_control_sync_error",
        ),
        _ => ("last_sync_status", "last_sync_error"),
    }
}

/// Whether sync rules are on (any of the four flags, legacy flat ones included).
pub fn sync_rules_enabled(features: &Value) -> bool {
    features["sync_rules"]["basic"]["enabled"] == true
        || features["sync_rules"]["advanced"]["enabled"] == true
        || features["filtering_rules"] == true
        || features["filtering_advanced_config"] == true
}

/// Whether the document enables a job kind's feature (full is always on).
pub fn feature_enabled(features: &Value, kind: JobKind) -> bool {
    match kind {
        JobKind::Full => true,
        JobKind::Incremental => features["incremental_sync"]["enabled"] == true,
        JobKind::AccessControl => features["document_level_security"]["enabled"] == true,
    }
}

/// `scheduling.<kind>` → the interval when enabled.
pub fn schedule_interval(doc: &Value, kind: JobKind) -> Option<&str> {
    let entry = &doc["scheduling"][kind.as_str()];
    if entry["enabled"] == true {
        entry["interval"].as_str()
    } else {
        None
    }
}

/// The configuration object parsed into fields.
pub fn configuration(doc: &Value) -> Result<Configuration, String> {
    match doc.get("configuration") {
        None | Some(Value::Null) => Ok(Configuration::new()),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| format!("the connector configuration cannot be read: {e}")),
    }
}

/// What `prepare` must write to a connector, or `None` when it is up to date.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The partial document to `_update`.
    pub patch: Map<String, Value>,
    /// Configuration keys added by this version (logged as an upgrade).
    pub upgraded: Vec<String>,
}

/// The prepare decision (§2.4 A.3.1): service type, features, default schema or merged
/// upgrade fields. Pure.
pub fn prepare_patch(
    doc: &Value,
    factory: &dyn SourceFactory,
    configured_service_type: Option<&str>,
) -> Option<Prepared> {
    let mut patch = Map::new();
    let mut upgraded = Vec::new();
    if doc["service_type"].as_str().unwrap_or("").is_empty() {
        let service_type = configured_service_type.unwrap_or(factory.service_type());
        patch.insert("service_type".into(), json!(service_type));
    }
    let features = factory.features();
    if doc["features"] != features {
        patch.insert("features".into(), features);
    }
    let defaults = factory.default_configuration();
    let current = doc["configuration"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if current.is_empty() {
        patch.insert("configuration".into(), to_value(&defaults));
        patch.insert("status".into(), json!(status::NEEDS_CONFIGURATION));
    } else {
        let mut merged = current.clone();
        for (key, field) in &defaults {
            let default = to_field_value(field);
            match merged.get_mut(key) {
                None => {
                    merged.insert(key.clone(), default);
                    upgraded.push(key.clone());
                }
                Some(Value::Object(existing)) => {
                    if let Value::Object(default) = default {
                        for (property, value) in default {
                            if !existing.contains_key(&property) {
                                existing.insert(property, value);
                                if !upgraded.contains(key) {
                                    upgraded.push(key.clone());
                                }
                            }
                        }
                    }
                }
                Some(other) => {
                    // A non-object field is unusable: replace it by the default.
                    *other = default;
                    upgraded.push(key.clone());
                }
            }
        }
        if merged != current {
            patch.insert("configuration".into(), Value::Object(merged));
        }
    }
    if patch.is_empty() {
        None
    } else {
        Some(Prepared { patch, upgraded })
    }
}

fn to_field_value(field: &ConfigField) -> Value {
    serde_json::to_value(field).unwrap_or(Value::Null)
}

/// A configuration as the JSON object stored on a connector.
pub fn to_value(configuration: &Configuration) -> Value {
    Value::Object(
        configuration
            .iter()
            .map(|(k, f)| (k.clone(), to_field_value(f)))
            .collect(),
    )
}

/// Configuration validation (`check_valid`): fields whose `depends_on` is unmet are skipped;
/// required and empty → `'<label>' cannot be empty.`; values of the wrong type; then the
/// `validations`. Returns the error text naming every bad field.
pub fn validate_configuration(configuration: &Configuration) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut fields: Vec<(&String, &ConfigField)> = configuration.iter().collect();
    fields.sort_by_key(|(key, field)| (field.order, key.as_str()));
    for (key, field) in fields {
        if !dependencies_met(configuration, field) {
            continue;
        }
        let label = field.display_label(key);
        if field.required && field.is_empty() {
            errors.push(format!("'{label}' cannot be empty."));
            continue;
        }
        if let Some(message) = field.coerce_error(key) {
            errors.push(message);
            continue;
        }
        let Some(value) = field.coerced() else {
            continue;
        };
        for validation in &field.validations {
            if let Some(message) = check_validation(
                &label,
                &value,
                &validation.validation_type,
                &validation.constraint,
            ) {
                errors.push(message);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("Field validation errors: {}", errors.join("; ")))
    }
}

fn dependencies_met(configuration: &Configuration, field: &ConfigField) -> bool {
    field.depends_on.iter().all(|dep| {
        let Some(other) = configuration.get(&dep.field) else {
            return false;
        };
        let actual = other.coerced().unwrap_or(Value::Null);
        let mut expected = other.clone();
        expected.value = dep.value.clone();
        actual == expected.coerced().unwrap_or(Value::Null)
    })
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One `validations` entry against a coerced value; `Some(message)` when it fails.
pub fn check_validation(
    label: &str,
    value: &Value,
    kind: &str,
    constraint: &Value,
) -> Option<String> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    match kind {
        "less_than" | "greater_than" => {
            let bound = as_number(constraint)?;
            let n = as_number(value)?;
            let ok = if kind == "less_than" {
                n < bound
            } else {
                n > bound
            };
            (!ok).then(|| {
                format!(
                    "'{label}' value '{}' should be {} {}.",
                    display(value),
                    kind.replace('_', " "),
                    display(constraint)
                )
            })
        }
        "list_type" => {
            let wanted = constraint.as_str().unwrap_or("str");
            let bad: Vec<String> = items
                .iter()
                .filter(|item| match wanted {
                    "int" => as_number(item).is_none_or(|f| f.fract() != 0.0),
                    _ => !item.is_string(),
                })
                .map(|item| display(item))
                .collect();
            (!bad.is_empty()).then(|| {
                format!(
                    "'{label}' list value(s) '{}' should be of type {wanted}.",
                    bad.join(", ")
                )
            })
        }
        "included_in" => {
            let allowed: Vec<String> = constraint
                .as_array()
                .map(|a| a.iter().map(display).collect())
                .unwrap_or_default();
            let bad: Vec<String> = items
                .iter()
                .map(|item| display(item))
                .filter(|item| !allowed.contains(item))
                .collect();
            (!bad.is_empty()).then(|| {
                format!(
                    "'{label}' value(s) '{}' should be one of {}.",
                    bad.join(", "),
                    allowed.join(", ")
                )
            })
        }
        "regex" => {
            let pattern = constraint.as_str()?;
            let Ok(re) = regex::Regex::new(&format!("^(?:{pattern})")) else {
                return Some(format!(
                    "'{label}' has an invalid regex validation '{pattern}'."
                ));
            };
            let bad: Vec<String> = items
                .iter()
                .map(|item| display(item))
                .filter(|item| !re.is_match(item))
                .collect();
            (!bad.is_empty()).then(|| {
                format!(
                    "'{label}' value(s) '{}' should match regular expression '{pattern}'.",
                    bad.join(", ")
                )
            })
        }
        _ => None,
    }
}

/// The default filtering of a new connector (one `DEFAULT` domain, include-everything rule
/// on both sides), as ES writes it.
pub fn default_filtering(ts: &str) -> Value {
    let side = json!({
        "advanced_snippet": {"created_at": ts, "updated_at": ts, "value": {}},
        "rules": [{"created_at": ts, "field": "_", "id": "DEFAULT", "order": 0, "policy": "include",
                   "rule": "regex", "updated_at": ts, "value": ".*"}],
        "validation": {"errors": [], "state": "valid"},
    });
    json!([{"active": side, "domain": "DEFAULT", "draft": side}])
}

/// The default scheduling of a new connector (everything off, daily at midnight).
pub fn default_scheduling() -> Value {
    let off = json!({"enabled": false, "interval": "0 0 0 * * ?"});
    json!({"access_control": off, "full": off, "incremental": off})
}

/// The default pipeline settings.
pub fn default_pipeline() -> Value {
    json!({"name": DEFAULT_PIPELINE, "extract_binary_content": true,
           "reduce_whitespace": true, "run_ml_inference": true})
}

/// A new connector document, as `PUT _connector/<id>` writes it, plus the pipeline Kibana
/// sets.
pub fn new_connector_doc(
    index_name: &str,
    name: &str,
    service_type: &str,
    language: Option<&str>,
    ts: &str,
) -> Value {
    json!({
        "api_key_id": null, "api_key_secret_id": null,
        "configuration": {}, "custom_scheduling": {}, "description": null,
        "deleted": false, "error": null, "features": null,
        "filtering": default_filtering(ts), "index_name": index_name, "is_native": false,
        "language": language, "last_access_control_sync_error": null,
        "last_access_control_sync_scheduled_at": null, "last_access_control_sync_status": null,
        "last_deleted_document_count": 0, "last_incremental_sync_scheduled_at": null,
        "last_indexed_document_count": 0, "last_seen": null, "last_sync_error": null,
        "last_sync_scheduled_at": null, "last_sync_status": null, "last_synced": null,
        "name": name, "pipeline": default_pipeline(), "scheduling": default_scheduling(),
        "service_type": service_type, "status": status::CREATED, "sync_cursor": null,
        "sync_now": false
    })
}

/// The active filter object of the first domain (what a job snapshot carries); `None` when
/// the connector has none (the snapshot then has no `filtering`, as Elasticsearch writes it).
pub fn active_filtering(doc: &Value) -> Option<Value> {
    doc["filtering"]
        .as_array()
        .and_then(|domains| domains.first())
        .map(|domain| domain["active"].clone())
        .filter(|active| !active.is_null())
}

/// Filtering domains whose draft waits for validation (`draft.validation.state == edited`).
pub fn draft_needs_validation(doc: &Value) -> Option<&Value> {
    doc["filtering"]
        .as_array()?
        .first()
        .map(|domain| &domain["draft"])
        .filter(|draft| draft["validation"]["state"] == "edited")
}

/// Whether the heartbeat is due: first sight, never seen, or older than `interval`.
pub fn heartbeat_due(
    last_seen: Option<&str>,
    first_sight: bool,
    now: chrono::DateTime<chrono::Utc>,
    interval: chrono::Duration,
) -> bool {
    if first_sight {
        return true;
    }
    match last_seen.and_then(parse_time) {
        None => true,
        Some(seen) => now - seen > interval,
    }
}

/// An ISO-8601 timestamp as written by ES or by us.
pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A timestamp as ES writes it (RFC 3339, microseconds, `Z`).
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::slack::SlackFactory;

    #[test]
    fn prepare_writes_schema_and_needs_configuration() {
        let doc = new_connector_doc("search-x", "x", "slack", None, "t");
        let prepared = prepare_patch(&doc, &SlackFactory, Some("slack")).unwrap();
        assert_eq!(prepared.patch["status"], "needs_configuration");
        assert_eq!(
            prepared.patch["configuration"]["token"]["label"],
            "Authentication Token"
        );
        assert_eq!(prepared.patch["configuration"]["sync_users"]["value"], true);
        assert!(prepared.patch.contains_key("features"));
        assert!(!prepared.patch.contains_key("service_type"));
    }

    #[test]
    fn prepare_merges_new_fields_and_is_idempotent() {
        let mut doc = new_connector_doc("search-x", "x", "", None, "t");
        let mut config = to_value(&SlackFactory.default_configuration());
        config.as_object_mut().unwrap().remove("sync_users");
        config["token"]["value"] = json!("xoxb");
        doc["configuration"] = config;
        doc["features"] = SlackFactory.features();
        let prepared = prepare_patch(&doc, &SlackFactory, Some("slack")).unwrap();
        assert_eq!(prepared.upgraded, vec!["sync_users".to_string()]);
        assert_eq!(prepared.patch["service_type"], "slack");
        assert_eq!(prepared.patch["configuration"]["token"]["value"], "xoxb");
        assert!(!prepared.patch.contains_key("status"));
        let mut after = doc.clone();
        for (k, v) in prepared.patch {
            after[k] = v;
        }
        assert_eq!(prepare_patch(&after, &SlackFactory, Some("slack")), None);
    }

    #[test]
    fn validation_names_the_field() {
        let config = SlackFactory.default_configuration();
        let err = validate_configuration(&config).unwrap_err();
        assert!(
            err.contains("'Authentication Token' cannot be empty."),
            "{err}"
        );
        assert!(
            err.contains("'Days of message history to fetch' cannot be empty."),
            "{err}"
        );
        let mut config = config;
        config.get_mut("token").unwrap().value = json!("xoxb-1");
        config.get_mut("fetch_last_n_days").unwrap().value = json!("many");
        let err = validate_configuration(&config).unwrap_err();
        assert!(err.contains("Days of message history to fetch"), "{err}");
        config.get_mut("fetch_last_n_days").unwrap().value = json!(30);
        assert_eq!(validate_configuration(&config), Ok(()));
    }

    #[test]
    fn validations_and_depends_on() {
        let mut config = Configuration::new();
        config.insert(
            "on".into(),
            ConfigField::new("On", "bool", 1).value(json!(false)),
        );
        config.insert(
            "n".into(),
            ConfigField::new("N", "int", 2)
                .depends_on("on", json!(true))
                .validation("less_than", json!(10)),
        );
        assert_eq!(validate_configuration(&config), Ok(()));
        config.get_mut("on").unwrap().value = json!(true);
        assert!(validate_configuration(&config)
            .unwrap_err()
            .contains("'N' cannot be empty."));
        config.get_mut("n").unwrap().value = json!(12);
        assert!(validate_configuration(&config)
            .unwrap_err()
            .contains("should be less than 10"));
        assert!(check_validation("L", &json!(["a", "b"]), "included_in", &json!(["a"])).is_some());
        assert!(check_validation("L", &json!(["a"]), "included_in", &json!(["a"])).is_none());
        assert!(check_validation("L", &json!(["1", "x"]), "list_type", &json!("int")).is_some());
        assert!(check_validation("R", &json!("abc"), "regex", &json!("a.c")).is_none());
        assert!(check_validation("R", &json!("xbc"), "regex", &json!("a.c")).is_some());
        assert!(check_validation("G", &json!(3), "greater_than", &json!(5)).is_some());
    }

    #[test]
    fn heartbeat_rules() {
        let now = chrono::Utc::now();
        let five = chrono::Duration::seconds(300);
        assert!(heartbeat_due(None, false, now, five));
        assert!(heartbeat_due(Some(&format_time(now)), true, now, five));
        assert!(!heartbeat_due(Some(&format_time(now)), false, now, five));
        let old = now - chrono::Duration::seconds(301);
        assert!(heartbeat_due(Some(&format_time(old)), false, now, five));
    }
}
