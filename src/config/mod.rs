//! `config.yml`: the same keys, defaults and loading rules as Elastic's Python connector service
//! (`../shared/reference/elastic-connectors-protocol.md` §1).
//!
//! Loading is parse, then validate:
//! 1. YAML is parsed into a tree (a syntax error gives the line and column);
//! 2. `${VAR}` / `${VAR:-default}` is expanded in every string (a whole-value reference keeps the
//!    variable's YAML type, so `port: ${PORT}` is a number);
//! 3. dotted keys (`elasticsearch.bulk.chunk_size: 10`) are expanded into nested maps;
//! 4. every key is checked against the known keys (unknown ones get a "did you mean") and
//!    every value against the type of its default;
//! 5. the tree is deep-merged over the defaults and turned into [`Config`];
//! 6. semantic checks run (connectors list, service types, `changeme` placeholders, ranges).
//!
//! Invariants: all problems are reported at once, each naming the key, what is wrong and the
//! fix; no IO but reading the file (Elasticsearch and the sources are checked later, at start-up);
//! secrets are [`Secret`]s and never appear in any message.

mod env;
mod secret;

pub use env::interpolate;
pub use secret::{Secret, REDACTED};

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The placeholder `config.yml.example` ships with; running with it is a mistake.
const PLACEHOLDER: &str = "changeme";

/// Errors of loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file `{path}`: {source}; pass the right file with -c/--config-file (config.yml.example documents every key)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed.
    #[error(
        "configuration file `{path}` is not valid YAML at line {line}, column {column}: {message}"
    )]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// One or more keys or values are wrong.
    #[error("configuration file `{path}` has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// One line per problem.
        problems: Vec<String>,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `elasticsearch.*`.
    pub elasticsearch: ElasticsearchConfig,
    /// `service.*`.
    pub service: ServiceConfig,
    /// The connectors this service runs.
    pub connectors: Vec<ConnectorEntry>,
    /// `service_type -> "module:Class"` (kept for compatibility; only built-in sources run).
    pub sources: BTreeMap<String, String>,
    /// Accepted for compatibility; not supported (a warning says so).
    pub extraction_service: Option<Value>,
    /// `notifications.*`: sync alerts and reports posted to Slack (this service's addition).
    pub notifications: crate::notify::NotificationsConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            elasticsearch: ElasticsearchConfig::default(),
            service: ServiceConfig::default(),
            connectors: Vec::new(),
            sources: crate::sources::registry()
                .iter()
                .filter_map(|f| Some((f.service_type().to_string(), f.upstream_class()?.into())))
                .collect(),
            extraction_service: None,
            notifications: crate::notify::NotificationsConfig::default(),
        }
    }
}

/// `elasticsearch.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ElasticsearchConfig {
    /// Node URL; the scheme chooses TLS.
    pub host: String,
    /// Encoded API key; wins over basic auth.
    pub api_key: Option<Secret>,
    /// Basic-auth user, used when `api_key` is absent.
    pub username: String,
    /// Basic-auth password.
    pub password: Secret,
    /// Whether `verify_certs`/`ca_certs` apply.
    pub ssl: bool,
    /// Verify the server certificate.
    pub verify_certs: bool,
    /// PEM CA bundle path.
    pub ca_certs: Option<String>,
    /// Retry requests that time out.
    pub retry_on_timeout: bool,
    /// Per-request timeout, seconds.
    pub request_timeout: f64,
    /// Start-up wait-for-cluster budget, seconds.
    pub max_wait_duration: f64,
    /// First start-up ping backoff, seconds.
    pub initial_backoff_duration: f64,
    /// Start-up ping backoff multiplier.
    pub backoff_multiplier: f64,
    /// Log level of the Elasticsearch client.
    pub log_level: String,
    /// Retries of a failed request (timeouts, connection errors, 429, 500, 502, 503, 504).
    pub max_retries: u32,
    /// Backoff unit between retries, seconds (doubles each retry, with jitter).
    pub retry_interval: f64,
    /// Use the `_connector` API (true) or read and write the connector indices directly (false).
    pub feature_use_connectors_api: bool,
    /// Extra HTTP headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// `elasticsearch.bulk.*`.
    pub bulk: BulkConfig,
}

impl Default for ElasticsearchConfig {
    fn default() -> ElasticsearchConfig {
        ElasticsearchConfig {
            host: "http://localhost:9200".into(),
            api_key: None,
            username: "elastic".into(),
            password: Secret::new(PLACEHOLDER),
            ssl: true,
            verify_certs: true,
            ca_certs: None,
            retry_on_timeout: true,
            request_timeout: 240.0,
            max_wait_duration: 240.0,
            initial_backoff_duration: 1.0,
            backoff_multiplier: 2.0,
            log_level: "info".into(),
            max_retries: 5,
            retry_interval: 10.0,
            feature_use_connectors_api: true,
            headers: BTreeMap::new(),
            bulk: BulkConfig::default(),
        }
    }
}

/// `elasticsearch.bulk.*`. Sizes are MiB as in the Python service, but measured on the
/// serialized JSON rather than on in-memory object sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BulkConfig {
    /// Documents queued between the source and the bulk writer.
    pub queue_max_size: usize,
    /// Serialized bytes (MiB) queued between the source and the bulk writer.
    pub queue_max_mem_size: f64,
    /// How often a blocked producer re-checks, seconds.
    pub queue_refresh_interval: f64,
    /// A producer blocked longer than this fails the sync, seconds.
    pub queue_refresh_timeout: f64,
    /// Log progress every N documents.
    pub display_every: u64,
    /// Bulk body lines per request (an index op is 2 lines, a delete 1).
    pub chunk_size: usize,
    /// Serialized MiB per bulk request.
    pub chunk_max_mem_size: f64,
    /// Documents whose JSON exceeds this many MiB are dropped (0 disables).
    pub max_text_document_size: f64,
    /// Bulk requests in flight.
    pub max_concurrency: usize,
    /// Concurrent downloads (no source of this build downloads; kept for compatibility).
    pub concurrent_downloads: usize,
    /// Retries of a bulk item answered 429/5xx.
    pub max_retries: u32,
    /// Backoff unit for bulk item retries, seconds.
    pub retry_interval: f64,
    /// Log every document id and operation at DEBUG.
    pub enable_operations_logging: bool,
    /// The per-item error circuit breaker.
    pub error_monitor: ErrorMonitorConfig,
}

impl Default for BulkConfig {
    fn default() -> BulkConfig {
        BulkConfig {
            queue_max_size: 1024,
            queue_max_mem_size: 25.0,
            queue_refresh_interval: 1.0,
            queue_refresh_timeout: 1300.0,
            display_every: 100,
            // Not the framework's defaults (500 lines, 3 MiB, 5 in flight; some releases
            // 1000 lines and 5 MiB): a Slack message is small (about 760 bytes serialized),
            // and each `_bulk` request has a cost of its own in Elasticsearch (a translog
            // sync, its coordination, making the writes visible), so 1000 messages a request
            // (about 0.75 MB, far under Elasticsearch's advised 5-15 MB) halve the cluster's
            // work for the same documents against 500. One request in flight: the source
            // builds the next while it is written, Slack's pace (a few hundred messages a
            // second at most) is far below what one bulk stream indexes, and every request
            // in flight holds its body. Measured end to end on the large workspace
            // (BENCHMARKS.md, issue 20): osmem CPU 67.7 s against 139-152 s at 1000 lines and
            // 5 in flight; peak RSS 19.2 MB against 22.3 MB with 5 in flight.
            chunk_size: 2000,
            chunk_max_mem_size: 5.0,
            max_text_document_size: 3.0,
            max_concurrency: 1,
            concurrent_downloads: 10,
            max_retries: 5,
            retry_interval: 10.0,
            enable_operations_logging: false,
            error_monitor: ErrorMonitorConfig::default(),
        }
    }
}

/// `elasticsearch.bulk.error_monitor.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorMonitorConfig {
    /// Whether bulk item errors can fail a sync.
    pub enabled: bool,
    /// More than this many errors in a sync fail it.
    pub max_total_errors: u64,
    /// More than this many consecutive errors fail it.
    pub max_consecutive_errors: u64,
    /// An error share above this over the window fails it.
    pub max_error_rate: f64,
    /// Window of the error rate, in operations.
    pub error_window_size: usize,
    /// How many recent error messages are kept for the report.
    pub error_queue_size: usize,
}

impl Default for ErrorMonitorConfig {
    fn default() -> ErrorMonitorConfig {
        ErrorMonitorConfig {
            enabled: true,
            max_total_errors: 1000,
            max_consecutive_errors: 10,
            max_error_rate: 0.15,
            error_window_size: 100,
            error_queue_size: 10,
        }
    }
}

/// `service.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceConfig {
    /// Poll period of the scheduler and job executors, seconds.
    pub idling: f64,
    /// Minimum interval between connector check-ins, seconds.
    pub heartbeat: f64,
    /// Attempts to prepare the connector indices at start-up.
    pub preflight_max_attempts: u32,
    /// Sleep between those attempts, seconds.
    pub preflight_idle: f64,
    /// Loop errors tolerated within `max_errors_span` before the service stops.
    pub max_errors: u32,
    /// Window for `max_errors`, seconds.
    pub max_errors_span: f64,
    /// Content (full and incremental) syncs run at once.
    pub max_concurrent_content_syncs: usize,
    /// Access-control syncs run at once.
    pub max_concurrent_access_control_syncs: usize,
    /// Connectors scheduled at once.
    pub max_concurrent_scheduling_tasks: usize,
    /// Largest file downloaded, bytes (no source of this build downloads; kept for compatibility).
    pub max_file_download_size: u64,
    /// Period of the cleanup of orphaned and idle jobs, seconds.
    pub job_cleanup_interval: f64,
    /// A running job not seen for this long is marked `error` by cleanup, seconds.
    pub job_idle_timeout: f64,
    /// Service log level (the CLI's --log-level/--debug win).
    pub log_level: String,
    /// Drop sources that are not FIPS compliant (this build's are; no effect).
    pub fips_mode: bool,
    /// Serve every non-native connector of `service_types`, not only the listed ones.
    pub worker_mode: bool,
    /// Service types served in worker mode.
    pub service_types: Vec<String>,
    /// Optional HTTP listener for health and metrics.
    pub http: HttpConfig,
    /// The largest share (0 to 1) of a content index a full sync's deletion sweep may
    /// remove; above it, or all of a non-empty index, the sweep is refused and the job ends
    /// in error (the mass-deletion guard). 1 turns the guard off.
    pub max_deletion_ratio: f64,
}

impl Default for ServiceConfig {
    fn default() -> ServiceConfig {
        ServiceConfig {
            idling: 30.0,
            heartbeat: 300.0,
            preflight_max_attempts: 10,
            preflight_idle: 30.0,
            max_errors: 20,
            max_errors_span: 600.0,
            max_concurrent_content_syncs: 1,
            max_concurrent_access_control_syncs: 1,
            max_concurrent_scheduling_tasks: 4,
            max_file_download_size: 10_485_760,
            job_cleanup_interval: 300.0,
            job_idle_timeout: 300.0,
            log_level: "INFO".into(),
            fips_mode: false,
            worker_mode: false,
            service_types: Vec::new(),
            http: HttpConfig::default(),
            max_deletion_ratio: crate::sync::guard::DEFAULT_MAX_DELETION_RATIO,
        }
    }
}

/// `service.http.*`: the health and metrics listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// `host:port` to listen on; unset means no listener.
    pub listen: Option<String>,
}

/// One `connectors` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectorEntry {
    /// Id of the connector document.
    pub connector_id: String,
    /// Its service type (a key of `crate::sources::registry`).
    pub service_type: String,
    /// API key used by this connector's sync jobs instead of the service credentials.
    pub api_key: Option<Secret>,
}

/// A loaded configuration plus the warnings to log once logging is up.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Non-fatal remarks (unsupported keys and the like).
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads and validates `path`, with the process environment for `${VAR}`.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml_str(&text, path, &|name| std::env::var(name).ok())
    }

    /// Loads and validates YAML text; `path` only names the source in messages.
    pub fn from_yaml_str(
        text: &str,
        path: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Loaded, ConfigError> {
        let raw: Value = serde_yaml::from_str(text).map_err(|error| {
            let (line, column) = error
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: strip_location(&error.to_string()),
            }
        })?;
        let invalid = |problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        };
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let raw = match raw {
            Value::Null => Value::Mapping(Mapping::new()),
            Value::Mapping(_) => raw,
            other => {
                return Err(invalid(vec![format!(
                    "the top level must be a mapping of keys (`elasticsearch`, `service`, `connectors`, …), found {}",
                    kind_of(&other)
                )]))
            }
        };
        let raw = interpolate_tree(raw, "", lookup, &mut problems);
        let mut tree = expand_dotted(raw, "");
        legacy_connector_form(&mut tree);
        let defaults = serde_yaml::to_value(Config::default()).expect("defaults serialize");
        check_tree(&tree, &defaults, "", &mut problems, &mut warnings);
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        // Every struct field has a serde default, so deserializing the user's tree is the
        // deep merge over the defaults; the one map with default entries is merged by hand.
        let mut config: Config = match serde_yaml::from_value(tree) {
            Ok(config) => config,
            Err(error) => return Err(invalid(vec![strip_location(&error.to_string())])),
        };
        for (service_type, class) in Config::default().sources {
            config.sources.entry(service_type).or_insert(class);
        }
        config.validate(&mut problems, &mut warnings);
        if problems.is_empty() {
            Ok(Loaded { config, warnings })
        } else {
            Err(invalid(problems))
        }
    }

    /// Semantic checks on a fully typed configuration.
    fn validate(&self, problems: &mut Vec<String>, warnings: &mut Vec<String>) {
        let es = &self.elasticsearch;
        match url::Url::parse(&es.host) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => problems.push(format!(
                "`elasticsearch.host`: `{}` is not an http(s) URL: write it like `http://localhost:9200`",
                es.host
            )),
        }
        if es
            .api_key
            .as_ref()
            .is_some_and(|k| k.expose() == PLACEHOLDER)
        {
            problems.push(
                "`elasticsearch.api_key`: still the placeholder `changeme`: set an encoded API key, or remove the key to use username/password"
                    .into(),
            );
        }
        for (key, value) in [
            ("elasticsearch.request_timeout", es.request_timeout),
            ("elasticsearch.max_wait_duration", es.max_wait_duration),
            ("elasticsearch.backoff_multiplier", es.backoff_multiplier),
            ("service.idling", self.service.idling),
            ("service.heartbeat", self.service.heartbeat),
            (
                "service.job_cleanup_interval",
                self.service.job_cleanup_interval,
            ),
            ("service.job_idle_timeout", self.service.job_idle_timeout),
            (
                "elasticsearch.bulk.chunk_max_mem_size",
                es.bulk.chunk_max_mem_size,
            ),
            (
                "elasticsearch.bulk.queue_max_mem_size",
                es.bulk.queue_max_mem_size,
            ),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                problems.push(format!("`{key}`: must be a positive number, got {value}"));
            }
        }
        for (key, value) in [
            ("elasticsearch.bulk.chunk_size", es.bulk.chunk_size),
            (
                "elasticsearch.bulk.max_concurrency",
                es.bulk.max_concurrency,
            ),
            ("elasticsearch.bulk.queue_max_size", es.bulk.queue_max_size),
            (
                "service.max_concurrent_content_syncs",
                self.service.max_concurrent_content_syncs,
            ),
            (
                "service.max_concurrent_access_control_syncs",
                self.service.max_concurrent_access_control_syncs,
            ),
        ] {
            if value == 0 {
                problems.push(format!("`{key}`: must be at least 1"));
            }
        }
        let ratio = self.service.max_deletion_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            problems.push(format!(
                "`{}`: must be between 0 and 1 (the share of the index a full sync may delete; 1 turns the mass-deletion guard off), got {ratio}",
                crate::sync::guard::MAX_DELETION_RATIO_KEY
            ));
        }
        if es.bulk.chunk_size == 1 {
            problems.push("`elasticsearch.bulk.chunk_size`: counts bulk lines and an index operation takes 2: use at least 2".into());
        }
        for (key, level) in [
            ("elasticsearch.log_level", &es.log_level),
            ("service.log_level", &self.service.log_level),
        ] {
            if parse_level(level).is_none() {
                problems.push(format!(
                    "`{key}`: unknown level `{level}`: use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
                ));
            }
        }
        if let Some(listen) = &self.service.http.listen {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                problems.push(format!(
                    "`service.http.listen`: `{listen}` is not a socket address: write it like `127.0.0.1:8090`"
                ));
            }
        }
        if self.service.worker_mode {
            if self.service.service_types.is_empty() {
                problems.push(format!("`service.service_types`: required when `service.worker_mode` is true: list the service types to serve, e.g. [{}]", known_service_types()));
            }
            for (i, service_type) in self.service.service_types.iter().enumerate() {
                check_service_type(
                    &format!("service.service_types[{i}]"),
                    service_type,
                    problems,
                );
            }
        } else if self.connectors.is_empty() {
            problems.push(format!(
                "`connectors`: empty: add at least one entry `{{connector_id: <id>, service_type: {}}}` (create the connector in Kibana or with `connectors connector create`), or set `service.worker_mode: true`",
                crate::sources::service_types().first().copied().unwrap_or("<type>")
            ));
        }
        for (i, entry) in self.connectors.iter().enumerate() {
            let at = format!("connectors[{i}]");
            if entry.connector_id.trim().is_empty() {
                problems.push(format!(
                    "`{at}.connector_id`: missing: set the id of the connector document"
                ));
            } else if entry.connector_id == PLACEHOLDER {
                problems.push(format!(
                    "`{at}.connector_id`: still the placeholder `changeme`: set the id of a connector created in Kibana or with `connectors connector create`"
                ));
            }
            if entry.service_type.trim().is_empty() {
                problems.push(format!(
                    "`{at}.service_type`: missing: set it to one of {}",
                    known_service_types()
                ));
            } else if entry.service_type == PLACEHOLDER {
                problems.push(format!(
                    "`{at}.service_type`: still the placeholder `changeme`: set it to one of {}",
                    known_service_types()
                ));
            } else {
                check_service_type(&format!("{at}.service_type"), &entry.service_type, problems);
            }
            if entry
                .api_key
                .as_ref()
                .is_some_and(|k| k.expose() == PLACEHOLDER)
            {
                problems.push(format!(
                    "`{at}.api_key`: still the placeholder `changeme`: set the connector's encoded API key, or remove the key"
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for entry in &self.connectors {
            if !entry.connector_id.is_empty() && !seen.insert(&entry.connector_id) {
                problems.push(format!(
                    "`connectors`: connector id `{}` is listed twice: keep one entry",
                    entry.connector_id
                ));
            }
        }
        if self
            .extraction_service
            .as_ref()
            .is_some_and(|v| !v.is_null())
        {
            let sources: Vec<&str> = crate::sources::registry()
                .iter()
                .map(|f| f.display_name())
                .collect();
            warnings.push(format!("`extraction_service` is accepted but not supported: the {} source has no binary content to extract", sources.join(", ")));
        }
        for (service_type, class) in &self.sources {
            if crate::sources::factory(service_type).is_none() {
                warnings.push(format!(
                    "`sources.{service_type}` ({class}) is ignored: this build only has {}",
                    known_service_types()
                ));
            }
        }
        self.notifications.validate(problems);
    }

    /// The configured connector ids.
    pub fn connector_ids(&self) -> Vec<String> {
        self.connectors
            .iter()
            .map(|c| c.connector_id.clone())
            .collect()
    }
}

/// Maps a Python-style level name to a tracing level name.
pub fn parse_level(level: &str) -> Option<&'static str> {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => Some("trace"),
        "DEBUG" => Some("debug"),
        "INFO" => Some("info"),
        "WARN" | "WARNING" => Some("warn"),
        "ERROR" | "CRITICAL" | "FATAL" => Some("error"),
        _ => None,
    }
}

/// The service types of this build's sources (`crate::sources::registry`), for messages.
fn known_service_types() -> String {
    crate::sources::service_types().join(", ")
}

fn check_service_type(key: &str, service_type: &str, problems: &mut Vec<String>) {
    if crate::sources::factory(service_type).is_some() {
        return;
    }
    let hint = did_you_mean(service_type, crate::sources::service_types().into_iter())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    problems.push(format!(
        "`{key}`: unknown service type `{service_type}`{hint}: available: {}",
        known_service_types()
    ));
}

/// serde_yaml appends "at line X column Y"; our messages carry the key instead.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Expands `${VAR}` in every string. A value that is exactly one reference is re-read as a
/// YAML scalar so that numbers and booleans keep their type.
fn interpolate_tree(
    value: Value,
    at: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Value {
    match value {
        Value::String(text) if text.contains("${") => {
            match interpolate(&text, lookup, is_secret_key(at)) {
                Ok(expanded) => {
                    let whole = text.starts_with("${")
                        && text.ends_with('}')
                        && text.matches("${").count() == 1;
                    if whole {
                        match serde_yaml::from_str::<Value>(&expanded) {
                            Ok(scalar @ (Value::Bool(_) | Value::Number(_))) => scalar,
                            _ => Value::String(expanded),
                        }
                    } else {
                        Value::String(expanded)
                    }
                }
                Err(errors) => {
                    problems.extend(errors.into_iter().map(|e| format!("`{at}`: {e}")));
                    Value::Null
                }
            }
        }
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| {
                    let at = join(at, &key_text(&k));
                    (k, interpolate_tree(v, &at, lookup, problems))
                })
                .collect(),
        ),
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| interpolate_tree(v, &format!("{at}[{i}]"), lookup, problems))
                .collect(),
        ),
        other => other,
    }
}

/// Keys whose values are secrets ([`Secret`] fields): never quoted in a message.
fn is_secret_key(path: &str) -> bool {
    matches!(
        path.rsplit('.').next(),
        Some("password" | "api_key" | "bot_token" | "webhook_url")
    )
}

/// Free-form maps whose keys are data, not configuration keys.
fn is_free_form(at: &str) -> bool {
    matches!(
        at,
        "elasticsearch.headers" | "sources" | "extraction_service"
    )
}

/// Turns `a.b.c: v` into `a: {b: {c: v}}`, merging with siblings.
fn expand_dotted(value: Value, at: &str) -> Value {
    match value {
        Value::Mapping(map) if !is_free_form(at) => {
            let mut out = Mapping::new();
            for (key, child) in map {
                let key = key_text(&key);
                let parts: Vec<&str> = key.split('.').filter(|p| !p.is_empty()).collect();
                if parts.len() <= 1 {
                    let child = expand_dotted(child, &join(at, &key));
                    merge_into(&mut out, Value::String(key), child);
                    continue;
                }
                let full = join(at, &key);
                let mut nested = expand_dotted(child, &full);
                for part in parts[1..].iter().rev() {
                    let mut m = Mapping::new();
                    m.insert(Value::String((*part).to_string()), nested);
                    nested = Value::Mapping(m);
                }
                merge_into(&mut out, Value::String(parts[0].to_string()), nested);
            }
            Value::Mapping(out)
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .map(|v| expand_dotted(v, &format!("{at}[]")))
                .collect(),
        ),
        other => other,
    }
}

fn merge_into(map: &mut Mapping, key: Value, value: Value) {
    match (map.get_mut(&key), value) {
        (Some(Value::Mapping(existing)), Value::Mapping(incoming)) => {
            for (k, v) in incoming {
                merge_into(existing, k, v);
            }
        }
        (_, value) => {
            map.insert(key, value);
        }
    }
}

/// The Python service's legacy form: top-level `connector_id` + `service_type`.
fn legacy_connector_form(tree: &mut Value) {
    let Value::Mapping(map) = tree else { return };
    let id_key = Value::String("connector_id".into());
    let type_key = Value::String("service_type".into());
    if !map.contains_key(&id_key) && !map.contains_key(&type_key) {
        return;
    }
    let id = map.remove(&id_key).unwrap_or(Value::Null);
    let service_type = map.remove(&type_key).unwrap_or(Value::Null);
    let connectors_key = Value::String("connectors".into());
    if map.get(&connectors_key).is_some_and(|v| !v.is_null()) {
        return;
    }
    let mut entry = Mapping::new();
    entry.insert(id_key, id);
    entry.insert(type_key, service_type);
    map.insert(connectors_key, Value::Sequence(vec![Value::Mapping(entry)]));
}

/// Checks `tree` against the key set and value types of `defaults`.
fn check_tree(
    tree: &Value,
    defaults: &Value,
    at: &str,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let (Value::Mapping(map), Value::Mapping(known)) = (tree, defaults) else {
        return;
    };
    for (key, value) in map {
        let name = key_text(key);
        let path = join(at, &name);
        let Some(default) = known.get(key) else {
            let hint = did_you_mean(&name, known.keys().filter_map(|k| k.as_str()))
                .map(|s| format!("; did you mean `{}`?", join(at, s)))
                .unwrap_or_else(|| {
                    let keys: Vec<String> = known.keys().map(key_text).collect();
                    format!("; known keys here: {}", keys.join(", "))
                });
            problems.push(format!("`{path}`: unknown key{hint}"));
            continue;
        };
        check_value(&path, value, default, problems, warnings);
    }
}

fn check_value(
    path: &str,
    value: &Value,
    default: &Value,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let wrong = |expected: &str| {
        if is_secret_key(path) {
            // A mistyped secret is still a secret: say what is wrong, not what it is.
            return format!(
                "`{path}`: expected {expected}, found {} (not shown: the value is a secret)",
                kind_of(value)
            );
        }
        format!(
            "`{path}`: expected {expected}, found {} `{}`",
            kind_of(value),
            serde_yaml::to_string(value)
                .unwrap_or_default()
                .trim()
                .chars()
                .take(60)
                .collect::<String>()
        )
    };
    match path {
        "connectors" => {
            let items = match value {
                Value::Null => return,
                Value::Sequence(items) => items,
                _ => {
                    problems.push(wrong("a list of `{connector_id, service_type}` entries"));
                    return;
                }
            };
            let item_defaults =
                serde_yaml::to_value(ConnectorEntry::default()).expect("serializes");
            for (i, item) in items.iter().enumerate() {
                let at = format!("connectors[{i}]");
                if !matches!(item, Value::Mapping(_)) {
                    problems.push(format!(
                        "`{at}`: expected a mapping `{{connector_id, service_type}}`, found {}",
                        kind_of(item)
                    ));
                    continue;
                }
                check_tree(item, &item_defaults, &at, problems, warnings);
            }
            return;
        }
        "elasticsearch.headers" | "sources" => {
            match value {
                Value::Null => {}
                Value::Mapping(map) => {
                    for (k, v) in map {
                        if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                            problems.push(format!(
                                "`{path}.{}`: expected a string, found {}",
                                key_text(k),
                                kind_of(v)
                            ));
                        }
                    }
                }
                _ => problems.push(wrong("a mapping of names to strings")),
            }
            return;
        }
        "extraction_service" => return,
        _ => {}
    }
    match default {
        Value::Mapping(_) => match value {
            Value::Mapping(_) => check_tree(value, default, path, problems, warnings),
            Value::Null => {}
            _ => problems.push(wrong("a mapping")),
        },
        Value::Bool(_) => {
            if !matches!(value, Value::Bool(_)) {
                problems.push(wrong("true or false"));
            }
        }
        Value::Number(n) if n.is_f64() => {
            if !matches!(value, Value::Number(_)) {
                problems.push(wrong("a number"));
            }
        }
        Value::Number(_) => match value {
            Value::Number(v) if v.as_u64().is_some() => {}
            Value::Number(_) => problems.push(wrong("a whole number, 0 or more")),
            _ => problems.push(wrong("a whole number")),
        },
        Value::Sequence(_) => match value {
            Value::Sequence(items) => {
                if items.iter().any(|i| !matches!(i, Value::String(_))) {
                    problems.push(wrong("a list of strings"));
                }
            }
            _ => problems.push(wrong("a list of strings")),
        },
        // Strings, and optional strings (null defaults).
        _ => {
            if !matches!(value, Value::String(_) | Value::Null) {
                problems.push(wrong("a string (quote it)"));
            }
        }
    }
}

/// The closest candidate within a small edit distance, for "did you mean".
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&word.to_lowercase(), &candidate.to_lowercase());
        let limit = (candidate.len() / 3).clamp(1, 3);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance: edits plus adjacent transpositions (`hots` → `host`
/// is one), the typos people make in keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests;
