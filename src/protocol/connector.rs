//! Connector documents (`.elastic-connectors`, `elastic-connectors-protocol.md` §2.2): the
//! typed view they are read into ([`Connector`]), and the pure decisions made on them
//! (prepare, configuration validation, defaults).
//!
//! Invariants:
//! - Connectors are read as [`Connector`] views (through [`super::doc::Doc::read`]) that keep
//!   `_seq_no`/`_primary_term` from the read, so every guarded write is made against exactly
//!   the version the decision was taken on.
//! - Decisions are pure functions of a view (and a source factory); the IO is in
//!   [`super::store`] and the loops.
//! - New connectors mirror `PUT _connector/<id>`: status `created`, `configuration: {}`,
//!   default filtering, scheduling and pipeline.

use super::doc::View;
use super::job::JobStatus;
use crate::sources::schema::ConfigField;
use crate::sources::{Configuration, SourceFactory};
use crate::sync::{JobKind, PipelineSettings};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A connector's status (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorStatus {
    /// Just created.
    Created,
    /// Schema written, values missing.
    NeedsConfiguration,
    /// Values written.
    Configured,
    /// Validated and reachable.
    Connected,
    /// Something is wrong; `error` says what.
    Error,
}

impl ConnectorStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorStatus::Created => "created",
            ConnectorStatus::NeedsConfiguration => "needs_configuration",
            ConnectorStatus::Configured => "configured",
            ConnectorStatus::Connected => "connected",
            ConnectorStatus::Error => "error",
        }
    }
}

/// The default ingest pipeline (`pipeline` of a new connector).
pub const DEFAULT_PIPELINE: &str = "search-default-ingestion";

/// A connector document (`.elastic-connectors`) as Elasticsearch, the shim and direct mode
/// write it: the fields the service reads, typed, and every other field in `rest`.
///
/// `status` is the one required field (every writer sets it). The configuration stays as
/// stored and is read by [`Connector::configuration`]: a configuration that does not read is
/// reported on the connector (its `error`), not as an unreadable document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Connector {
    /// Lifecycle status.
    pub status: ConnectorStatus,
    /// `slack`; `None` until prepare writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// The content index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_name: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Index language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The error shown with the `error` status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Soft-deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    /// The last heartbeat (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Status of the last content sync (`in_progress` is the lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_status: Option<JobStatus>,
    /// Error of the last content sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_error: Option<String>,
    /// Status of the last access-control sync (its lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_access_control_sync_status: Option<JobStatus>,
    /// Error of the last access-control sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_access_control_sync_error: Option<String>,
    /// The full-sync schedule slot last taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_scheduled_at: Option<String>,
    /// The incremental-sync schedule slot last taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_incremental_sync_scheduled_at: Option<String>,
    /// The access-control-sync schedule slot last taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_access_control_sync_scheduled_at: Option<String>,
    /// The configuration object as stored ([`Connector::configuration`] reads it).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub configuration: Value,
    /// The features the connector enables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
    /// The sync schedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<Scheduling>,
    /// Sync-rule domains (the first one is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtering: Option<Vec<FilteringDomain>>,
    /// Ingest pipeline settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Pipeline>,
    /// Where the next incremental sync starts (the source's own object).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub sync_cursor: Value,
    /// Every other field, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl View for Connector {
    const KIND: &'static str = "connector";
}

impl Connector {
    /// The `(status, error)` of the connector's last sync of a kind.
    pub fn last_sync(&self, kind: JobKind) -> (Option<JobStatus>, Option<&str>) {
        match kind {
            JobKind::AccessControl => (
                self.last_access_control_sync_status,
                self.last_access_control_sync_error.as_deref(),
            ),
            _ => (self.last_sync_status, self.last_sync_error.as_deref()),
        }
    }

    /// The `last_*_scheduled_at` of a job kind.
    pub fn scheduled_at(&self, kind: JobKind) -> Option<&str> {
        match kind {
            JobKind::Full => self.last_sync_scheduled_at.as_deref(),
            JobKind::Incremental => self.last_incremental_sync_scheduled_at.as_deref(),
            JobKind::AccessControl => self.last_access_control_sync_scheduled_at.as_deref(),
        }
    }

    /// Whether sync rules are on.
    pub fn sync_rules_enabled(&self) -> bool {
        self.features
            .as_ref()
            .is_some_and(Features::sync_rules_enabled)
    }

    /// Whether the connector enables a job kind's feature (full is always on).
    pub fn feature_enabled(&self, kind: JobKind) -> bool {
        kind == JobKind::Full || self.features.as_ref().is_some_and(|f| f.enabled(kind))
    }

    /// `scheduling.<kind>` → the interval when enabled.
    pub fn schedule_interval(&self, kind: JobKind) -> Option<&str> {
        let schedule = self.scheduling.as_ref()?.get(kind)?;
        if schedule.enabled {
            schedule.interval.as_deref()
        } else {
            None
        }
    }

    /// The configuration parsed into fields.
    pub fn configuration(&self) -> Result<Configuration, String> {
        configuration(&self.configuration)
    }

    /// The active filter of the first domain (what a job snapshot carries); `None` when the
    /// connector has none (the snapshot then has no `filtering`, as Elasticsearch writes it).
    pub fn active_filtering(&self) -> Option<&Filter> {
        self.filtering.as_ref()?.first()?.active.as_ref()
    }

    /// The draft of the first domain when it waits for validation (`validation.state ==
    /// edited`).
    pub fn draft_needs_validation(&self) -> Option<&Filter> {
        self.filtering
            .as_ref()?
            .first()?
            .draft
            .as_ref()
            .filter(|draft| draft.state() == Some("edited"))
    }
}

/// `features` of a connector. Sync rules are on if any of the four flags is (the legacy
/// flat ones included).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Features {
    /// Basic and advanced sync rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_rules: Option<SyncRulesFeatures>,
    /// Incremental syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_sync: Option<Flag>,
    /// Document-level security (access-control syncs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_level_security: Option<Flag>,
    /// Legacy flat flag of basic sync rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtering_rules: Option<bool>,
    /// Legacy flat flag of advanced sync rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtering_advanced_config: Option<bool>,
    /// Every other feature, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Features {
    /// Whether sync rules are on (any of the four flags, legacy flat ones included).
    pub fn sync_rules_enabled(&self) -> bool {
        let rules = self.sync_rules.as_ref();
        rules.is_some_and(|r| on(&r.basic) || on(&r.advanced))
            || self.filtering_rules == Some(true)
            || self.filtering_advanced_config == Some(true)
    }

    /// Whether a job kind's feature is on (full is always on).
    pub fn enabled(&self, kind: JobKind) -> bool {
        match kind {
            JobKind::Full => true,
            JobKind::Incremental => on(&self.incremental_sync),
            JobKind::AccessControl => on(&self.document_level_security),
        }
    }
}

/// `features.sync_rules`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct SyncRulesFeatures {
    /// Basic rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<Flag>,
    /// Advanced rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<Flag>,
    /// Anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `{"enabled": bool}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Flag {
    /// On or off (absent: off).
    #[serde(default)]
    pub enabled: bool,
    /// Anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

fn on(flag: &Option<Flag>) -> bool {
    flag.as_ref().is_some_and(|f| f.enabled)
}

/// `scheduling`: one schedule per job kind.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Scheduling {
    /// Full syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<Schedule>,
    /// Incremental syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Schedule>,
    /// Access-control syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control: Option<Schedule>,
    /// Anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Scheduling {
    /// The schedule of a job kind.
    pub fn get(&self, kind: JobKind) -> Option<&Schedule> {
        match kind {
            JobKind::Full => self.full.as_ref(),
            JobKind::Incremental => self.incremental.as_ref(),
            JobKind::AccessControl => self.access_control.as_ref(),
        }
    }

    /// The schedule of a job kind, to change.
    pub fn slot_mut(&mut self, kind: JobKind) -> &mut Option<Schedule> {
        match kind {
            JobKind::Full => &mut self.full,
            JobKind::Incremental => &mut self.incremental,
            JobKind::AccessControl => &mut self.access_control,
        }
    }
}

/// One schedule: a Quartz cron `interval`, on or off.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Schedule {
    /// On or off (absent: off).
    #[serde(default)]
    pub enabled: bool,
    /// Quartz cron.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// One `filtering` domain: the active rules (what jobs run with) and the draft (Kibana's
/// editor).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct FilteringDomain {
    /// The rules jobs run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<Filter>,
    /// The rules being edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<Filter>,
    /// `domain` and anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// One side of a filtering domain (also a job's `connector.filtering`): the rules, read by
/// [`crate::sync::rules`], and their validation; the advanced snippet and timestamps as
/// stored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Filter {
    /// The basic rules, as stored.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub rules: Value,
    /// Their validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<FilterValidation>,
    /// `advanced_snippet` and anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Filter {
    /// `validation.state` (`valid`, `invalid`, `edited`).
    pub fn state(&self) -> Option<&str> {
        self.validation.as_ref()?.state.as_deref()
    }

    /// As the JSON object the sync engine reads.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `validation` of a filter.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct FilterValidation {
    /// `valid`, `invalid` or `edited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `errors` and anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `pipeline`: the ingest pipeline and the flags copied into each document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Pipeline {
    /// Pipeline name (`_none`: no pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `_extract_binary_content`.
    #[serde(default)]
    pub extract_binary_content: bool,
    /// `_reduce_whitespace`.
    #[serde(default)]
    pub reduce_whitespace: bool,
    /// `_run_ml_inference`.
    #[serde(default)]
    pub run_ml_inference: bool,
    /// Anything else, as stored.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Pipeline {
    /// The settings a sync runs with (no name: no pipeline).
    pub fn settings(&self) -> PipelineSettings {
        PipelineSettings {
            name: self.name.clone().unwrap_or_default(),
            extract_binary_content: self.extract_binary_content,
            reduce_whitespace: self.reduce_whitespace,
            run_ml_inference: self.run_ml_inference,
        }
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

/// A stored configuration object parsed into fields (`null` or absent: none).
pub fn configuration(value: &Value) -> Result<Configuration, String> {
    match value {
        Value::Null => Ok(Configuration::new()),
        value => serde_json::from_value(value.clone())
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
    connector: &Connector,
    factory: &dyn SourceFactory,
    configured_service_type: Option<&str>,
) -> Option<Prepared> {
    let mut patch = Map::new();
    let mut upgraded = Vec::new();
    if connector.service_type.as_deref().is_none_or(str::is_empty) {
        let service_type = configured_service_type.unwrap_or(factory.service_type());
        patch.insert("service_type".into(), json!(service_type));
    }
    let features = factory.features();
    if connector.features != serde_json::from_value(features.clone()).ok() {
        patch.insert("features".into(), features);
    }
    let defaults = factory.default_configuration();
    let current = connector
        .configuration
        .as_object()
        .cloned()
        .unwrap_or_default();
    if current.is_empty() {
        patch.insert("configuration".into(), to_value(&defaults));
        patch.insert(
            "status".into(),
            json!(ConnectorStatus::NeedsConfiguration.as_str()),
        );
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
        "service_type": service_type, "status": ConnectorStatus::Created.as_str(), "sync_cursor": null,
        "sync_now": false
    })
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
pub(crate) mod tests {
    use super::*;
    use crate::sources::slack::SlackFactory;

    /// A connector document as its view.
    pub(crate) fn view(doc: &Value) -> Connector {
        read(doc.clone()).expect("a readable connector document")
    }

    #[test]
    fn prepare_writes_schema_and_needs_configuration() {
        let doc = new_connector_doc("search-x", "x", "slack", None, "t");
        let prepared = prepare_patch(&view(&doc), &SlackFactory, Some("slack")).unwrap();
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
        let prepared = prepare_patch(&view(&doc), &SlackFactory, Some("slack")).unwrap();
        assert_eq!(prepared.upgraded, vec!["sync_users".to_string()]);
        assert_eq!(prepared.patch["service_type"], "slack");
        assert_eq!(prepared.patch["configuration"]["token"]["value"], "xoxb");
        assert!(!prepared.patch.contains_key("status"));
        let mut after = doc.clone();
        for (k, v) in prepared.patch {
            after[k] = v;
        }
        assert_eq!(
            prepare_patch(&view(&after), &SlackFactory, Some("slack")),
            None
        );
    }

    fn read(doc: Value) -> Result<Connector, String> {
        super::super::doc::read_source("c1", doc)
    }

    /// Direct mode's new connector (nulls everywhere), one as `PUT _connector` writes it (no
    /// nulls, fields the service does not name), and both after the service's own writes:
    /// all read, and every field that is not null survives the view.
    #[test]
    fn the_view_reads_what_every_writer_writes_and_keeps_the_rest() {
        let direct = new_connector_doc("search-x", "x", "slack", None, "t");
        let api = json!({
            "configuration": {}, "custom_scheduling": {}, "filtering": default_filtering("t"),
            "index_name": "search-x", "is_native": false, "name": "x",
            "scheduling": default_scheduling(), "service_type": "slack", "status": "created",
            "sync_now": false, "deleted": false, "api_key_secret_id": "s1",
            "features": SlackFactory.features(), "pipeline": default_pipeline()
        });
        for doc in [direct, api] {
            let connector = read(doc.clone()).unwrap();
            assert_eq!(connector.status, ConnectorStatus::Created);
            assert_eq!(connector.index_name.as_deref(), Some("search-x"));
            assert_eq!(connector.schedule_interval(JobKind::Full), None);
            assert!(connector.active_filtering().is_some());
            let back = serde_json::to_value(&connector).unwrap();
            for (key, value) in doc.as_object().unwrap() {
                if !value.is_null() {
                    assert_eq!(&back[key], value, "{key}");
                }
            }
            let mut after = doc.clone();
            let finish = crate::protocol::job::Finish {
                status: JobStatus::Completed,
                error: None,
                stats: Default::default(),
                total_document_count: 0,
                metadata: json!({}),
                sync_cursor: Some(json!({"c": 1})),
            };
            for patch in [
                crate::protocol::job::sync_done_patch(JobKind::Full, &finish, "T"),
                crate::protocol::job::release_patch(JobKind::AccessControl, "boom", "T"),
                json!({"last_sync_scheduled_at": "2026-01-01T00:02:00.000000Z",
                       "last_seen": "T", "status": "connected", "error": null}),
            ] {
                for (k, v) in patch.as_object().unwrap() {
                    after[k] = v.clone();
                }
            }
            let connector = read(after).unwrap();
            assert_eq!(connector.status, ConnectorStatus::Connected);
            assert_eq!(
                connector.last_sync(JobKind::Full).0,
                Some(JobStatus::Completed)
            );
            assert_eq!(
                connector.last_sync(JobKind::AccessControl),
                (Some(JobStatus::Error), Some("boom"))
            );
            assert_eq!(
                connector.scheduled_at(JobKind::Full),
                Some("2026-01-01T00:02:00.000000Z")
            );
            assert_eq!(connector.sync_cursor, json!({"c": 1}));
        }
    }

    #[test]
    fn unreadable_connectors_are_errors_naming_the_field() {
        let doc = new_connector_doc("search-x", "x", "slack", None, "t");
        let mut missing = doc.clone();
        missing.as_object_mut().unwrap().remove("status");
        assert_eq!(
            read(missing).unwrap_err(),
            "the connector document [c1] cannot be read: missing field `status`"
        );
        let mut bad = doc.clone();
        bad["scheduling"]["full"]["enabled"] = json!("yes");
        let error = read(bad).unwrap_err();
        assert!(
            error.contains("scheduling.full.enabled: invalid type"),
            "{error}"
        );
        let mut bad = doc.clone();
        bad["last_sync_status"] = json!("weird");
        assert!(read(bad).unwrap_err().contains("last_sync_status"));
        // A configuration that does not read is the connector's error, not the document's.
        let mut bad = doc;
        bad["configuration"] = json!({"token": 5});
        let connector = read(bad).unwrap();
        assert!(connector.configuration().is_err());
    }

    #[test]
    fn features_schedules_and_rules() {
        let mut doc = new_connector_doc("search-x", "x", "slack", None, "t");
        assert!(!read(doc.clone()).unwrap().sync_rules_enabled());
        doc["features"] = json!({"filtering_advanced_config": true});
        assert!(read(doc.clone()).unwrap().sync_rules_enabled());
        doc["features"] = SlackFactory.features();
        doc["features"]["incremental_sync"] = json!({"enabled": true});
        doc["scheduling"]["incremental"] = json!({"enabled": true, "interval": "0 * * * * ?"});
        doc["filtering"][0]["draft"]["validation"]["state"] = json!("edited");
        let connector = read(doc).unwrap();
        assert!(connector.sync_rules_enabled());
        assert!(connector.feature_enabled(JobKind::Incremental));
        // Slack advertises document-level security (its configuration turns it on).
        assert!(connector.feature_enabled(JobKind::AccessControl));
        let mut off = connector.clone();
        if let Some(features) = off.features.as_mut() {
            features.document_level_security = None;
        }
        assert!(!off.feature_enabled(JobKind::AccessControl));
        assert_eq!(
            connector.schedule_interval(JobKind::Incremental),
            Some("0 * * * * ?")
        );
        let draft = connector.draft_needs_validation().unwrap();
        assert_eq!(draft.rules[0]["id"], "DEFAULT");
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
