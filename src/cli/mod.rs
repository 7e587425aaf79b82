//! `connectors`: the management CLI (connectors, sync jobs, indices) for users without Kibana
//! and for the ftest. It reads `elasticsearch.*` from the service's `config.yml` and talks the
//! same protocol mode as the service (`feature_use_connectors_api`).
//!
//! Invariants: sensitive configuration values are never printed (`******`); unknown ids exit
//! 1 with a message naming the id; usage errors exit 2 (clap's convention).

use crate::config::Config;
use crate::es::{EsClient, EsError};
use crate::protocol::connector::{self as conn, Connector, Schedule, Scheduling};
use crate::protocol::doc::Doc;
use crate::protocol::indices::{CONNECTORS_INDEX, JOBS_INDEX};
use crate::protocol::store::{self, ConnectorStore, NewConnector, StoreError};
use crate::scheduler::cron::CronSchedule;
use crate::sync::JobKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use elasticsearch::http::Method;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

pub mod install;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "connectors",
    version,
    about = "Manage connectors, sync jobs and indices"
)]
pub struct Cli {
    /// The service's config.yml (only `elasticsearch.*` is used).
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "config.yml"
    )]
    pub config: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable.
    Table,
    /// JSON.
    Json,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connectors.
    #[command(subcommand)]
    Connector(ConnectorCmd),
    /// Sync jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// Content indices.
    #[command(subcommand)]
    Index(IndexCmd),
    /// The Slack app (OAuth install).
    #[command(subcommand)]
    Slack(install::SlackCmd),
}

/// `connector …`.
#[derive(Debug, Subcommand)]
pub enum ConnectorCmd {
    /// Create a connector and its content index.
    Create(CreateArgs),
    /// List connectors.
    List,
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Schedules.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
}

/// `connector create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Service type.
    #[arg(long)]
    pub service_type: String,
    /// Content index.
    #[arg(long)]
    pub index_name: String,
    /// Display name (default: the index name).
    #[arg(long)]
    pub name: Option<String>,
    /// Index language.
    #[arg(long)]
    pub index_language: Option<String>,
    /// Connector id (default: generated).
    #[arg(long, allow_hyphen_values = true)]
    pub connector_id: Option<String>,
    /// JSON file of configuration values or full field objects.
    #[arg(long)]
    pub from_file: Option<PathBuf>,
    /// Write the configuration from --set KEY=VALUE pairs (no prompts).
    #[arg(long)]
    pub update_config: bool,
    /// KEY=VALUE configuration values.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// `connector config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Set configuration values.
    Set {
        /// Connector id.
        #[arg(short = 'i', long = "id", allow_hyphen_values = true)]
        id: String,
        /// KEY=VALUE pairs.
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
}

/// `connector schedule …`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Enable or disable schedules.
    Set(ScheduleArgs),
}

/// `connector schedule set`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["full", "incremental", "access_control", "disable"])))]
pub struct ScheduleArgs {
    /// Connector id.
    #[arg(short = 'i', long = "id", allow_hyphen_values = true)]
    pub id: String,
    /// Full-sync Quartz cron.
    #[arg(long)]
    pub full: Option<String>,
    /// Incremental-sync Quartz cron.
    #[arg(long)]
    pub incremental: Option<String>,
    /// Access-control-sync Quartz cron.
    #[arg(long = "access-control")]
    pub access_control: Option<String>,
    /// Disable these schedules (all when given without values).
    #[arg(long, value_enum, num_args = 0..)]
    pub disable: Option<Vec<KindArg>>,
}

/// Job types on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Full.
    Full,
    /// Incremental.
    Incremental,
    /// Access control.
    #[value(name = "access_control", alias = "access-control")]
    AccessControl,
}

impl From<KindArg> for JobKind {
    fn from(kind: KindArg) -> JobKind {
        match kind {
            KindArg::Full => JobKind::Full,
            KindArg::Incremental => JobKind::Incremental,
            KindArg::AccessControl => JobKind::AccessControl,
        }
    }
}

/// `job …`.
#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// Start an on-demand sync.
    Start {
        /// Connector id.
        #[arg(short = 'i', long = "id", allow_hyphen_values = true)]
        id: String,
        /// Job type.
        #[arg(short = 't', long = "type", value_enum, default_value = "full")]
        kind: KindArg,
    },
    /// List a connector's jobs.
    List {
        /// Connector id.
        #[arg(allow_hyphen_values = true)]
        connector_id: String,
    },
    /// Show a job.
    View {
        /// Job id.
        #[arg(allow_hyphen_values = true)]
        job_id: String,
    },
    /// Cancel a job.
    Cancel {
        /// Job id.
        #[arg(allow_hyphen_values = true)]
        job_id: String,
    },
}

/// `index …`.
#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    /// List indices with document counts.
    List,
    /// Delete every document of an index.
    Clean {
        /// Index.
        name: String,
    },
    /// Delete an index.
    Delete {
        /// Index.
        name: String,
    },
}

/// Why a command failed (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration file.
    #[error("{0}")]
    Config(String),
    /// Elasticsearch.
    #[error("{0}")]
    Elasticsearch(#[from] EsError),
    /// Store-level failure (unknown id, invalid request).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Bad input the parser could not catch.
    #[error("{0}")]
    Invalid(String),
    /// Output.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the CLI on `args` (including the program name); returns the exit code. Output goes to
/// `out`, errors to `err`.
pub async fn main_with(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            if code == 0 {
                let _ = write!(out, "{e}");
            } else {
                let _ = write!(err, "{e}");
            }
            return code;
        }
    };
    match run(cli, out).await {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            1
        }
    }
}

/// The `elasticsearch.*` part of a config file as a [`Config`] (other keys are ignored, so
/// the CLI works with a service file that lists no connectors yet).
pub fn load_es_config(path: &std::path::Path) -> Result<Config, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Config(format!(
            "cannot read configuration file `{}`: {e}; pass it with -c/--config",
            path.display()
        ))
    })?;
    let raw: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        CliError::Config(format!(
            "configuration file `{}` is not valid YAML: {e}",
            path.display()
        ))
    })?;
    let mut kept = serde_yaml::Mapping::new();
    if let serde_yaml::Value::Mapping(map) = raw {
        for (key, value) in map {
            if key
                .as_str()
                .is_some_and(|k| k == "elasticsearch" || k.starts_with("elasticsearch."))
            {
                kept.insert(key, value);
            }
        }
    }
    kept.insert("service.worker_mode".into(), true.into());
    kept.insert(
        "service.service_types".into(),
        serde_yaml::Value::Sequence(vec!["slack".into()]),
    );
    let text = serde_yaml::to_string(&kept).map_err(|e| CliError::Config(e.to_string()))?;
    Config::from_yaml_str(&text, path, &|name| std::env::var(name).ok())
        .map(|loaded| loaded.config)
        .map_err(|e| CliError::Config(e.to_string()))
}

/// Runs a parsed command.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let config = load_es_config(&cli.config)?;
    let es = EsClient::new(&config.elasticsearch)?;
    let store = store::for_mode(es.clone(), config.elasticsearch.feature_use_connectors_api);
    let json_out = cli.output == Output::Json;
    match cli.command {
        Command::Connector(ConnectorCmd::Create(args)) => {
            create(&store, &es, args, json_out, out).await
        }
        Command::Connector(ConnectorCmd::List) => {
            // Listed as stored, so that a connector the service cannot read shows too.
            let connectors = store::search_docs(
                &es,
                CONNECTORS_INDEX,
                json!({"size": 100, "query": {"bool": {"must_not": [{"term": {"deleted": true}}]}}}),
            )
            .await?;
            if json_out {
                let list: Vec<Value> = connectors.iter().map(with_id).collect();
                writeln!(out, "{}", pretty(&redact_doc(json!(list)))).map_err(CliError::Io)
            } else {
                let keys = [
                    "name",
                    "index_name",
                    "service_type",
                    "status",
                    "last_sync_status",
                ];
                let rows = connectors.iter().map(|c| row(c, &keys)).collect();
                table(
                    out,
                    &["ID", "NAME", "INDEX", "SERVICE TYPE", "STATUS", "LAST SYNC"],
                    rows,
                )
            }
        }
        Command::Connector(ConnectorCmd::Config(ConfigCmd::Set { id, pairs })) => {
            let connector = require_connector(&store, &id).await?;
            let pairs = parse_pairs(&pairs)?;
            let (configuration, shown) = apply_values(
                &connector.source.configuration,
                &pairs,
                connector_factory_defaults(&connector.source),
            )?;
            store.set_configuration(&id, configuration).await?;
            if json_out {
                writeln!(out, "{}", json!({"id": id, "updated": shown}))?;
            } else {
                writeln!(
                    out,
                    "connector {id}: configuration updated ({})",
                    shown.join(", ")
                )?;
            }
            Ok(())
        }
        Command::Connector(ConnectorCmd::Schedule(ScheduleCmd::Set(args))) => {
            let connector = require_connector(&store, &args.id).await?;
            let mut scheduling = connector.source.scheduling.unwrap_or_else(|| {
                serde_json::from_value::<Scheduling>(conn::default_scheduling()).unwrap_or_default()
            });
            let mut changes = Vec::new();
            for (kind, interval) in [
                (JobKind::Full, &args.full),
                (JobKind::Incremental, &args.incremental),
                (JobKind::AccessControl, &args.access_control),
            ] {
                if let Some(interval) = interval {
                    CronSchedule::parse(interval).map_err(|e| {
                        CliError::Invalid(format!(
                            "invalid {} schedule '{interval}': {e}",
                            kind.as_str()
                        ))
                    })?;
                    *scheduling.slot_mut(kind) = Some(Schedule {
                        enabled: true,
                        interval: Some(interval.clone()),
                        ..Schedule::default()
                    });
                    changes.push(format!("{} every '{interval}'", kind.as_str()));
                }
            }
            if let Some(disable) = &args.disable {
                let kinds: Vec<JobKind> = if disable.is_empty() {
                    vec![JobKind::Full, JobKind::Incremental, JobKind::AccessControl]
                } else {
                    disable.iter().map(|k| (*k).into()).collect()
                };
                for kind in kinds {
                    let schedule = scheduling.slot_mut(kind).get_or_insert_with(|| Schedule {
                        interval: Some("0 0 0 * * ?".into()),
                        ..Schedule::default()
                    });
                    schedule.enabled = false;
                    changes.push(format!("{} disabled", kind.as_str()));
                }
            }
            let scheduling = json!(scheduling);
            store.set_scheduling(&args.id, scheduling.clone()).await?;
            if json_out {
                writeln!(out, "{}", json!({"id": args.id, "scheduling": scheduling}))?;
            } else {
                writeln!(out, "connector {}: {}", args.id, changes.join(", "))?;
            }
            Ok(())
        }
        Command::Job(JobCmd::Start { id, kind }) => {
            require_connector(&store, &id).await?;
            let job_id = store.create_job(&id, kind.into(), "on_demand").await?;
            if json_out {
                writeln!(out, "{}", json!({"id": job_id}))?;
            } else {
                writeln!(
                    out,
                    "started {} sync job {job_id} for connector {id}",
                    JobKind::from(kind).as_str()
                )?;
            }
            Ok(())
        }
        Command::Job(JobCmd::List { connector_id }) => {
            require_connector(&store, &connector_id).await?;
            // Listed as stored, so that a job the service cannot read shows too.
            let jobs = store::search_docs(
                &es,
                JOBS_INDEX,
                json!({"size": 100, "query": {"term": {"connector.id": connector_id}},
                       "sort": [{"created_at": {"order": "desc"}}]}),
            )
            .await?;
            if json_out {
                let list: Vec<Value> = jobs.iter().map(with_id).collect();
                writeln!(out, "{}", pretty(&redact_doc(json!(list))))?;
                return Ok(());
            }
            let keys = [
                "job_type",
                "trigger_method",
                "status",
                "indexed_document_count",
                "created_at",
            ];
            let rows = jobs.iter().map(|j| row(j, &keys)).collect();
            table(
                out,
                &["ID", "TYPE", "TRIGGER", "STATUS", "INDEXED", "CREATED"],
                rows,
            )
        }
        Command::Job(JobCmd::View { job_id }) => {
            let job = store::get_doc(&es, JOBS_INDEX, &job_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("sync job [{job_id}] not found")))?;
            let doc = redact_doc(with_id(&job));
            if json_out {
                writeln!(out, "{}", pretty(&doc))?;
            } else {
                let mut rows = Vec::new();
                for key in [
                    "job_type",
                    "trigger_method",
                    "status",
                    "error",
                    "worker_hostname",
                    "created_at",
                    "started_at",
                    "completed_at",
                    "indexed_document_count",
                    "deleted_document_count",
                    "total_document_count",
                ] {
                    rows.push(vec![key.to_string(), cell(&job.source, key)]);
                }
                let connector = job.source.get("connector").unwrap_or(&Value::Null);
                rows.insert(0, vec!["connector".into(), cell(connector, "id")]);
                rows.insert(0, vec!["id".into(), job.id.clone()]);
                table(out, &["FIELD", "VALUE"], rows)?;
            }
            Ok(())
        }
        Command::Job(JobCmd::Cancel { job_id }) => {
            let status = store.cancel_job(&job_id).await?;
            if json_out {
                writeln!(out, "{}", json!({"id": job_id, "status": status}))?;
            } else {
                writeln!(out, "sync job {job_id}: {status}")?;
            }
            Ok(())
        }
        Command::Index(cmd) => index_command(&es, cmd, json_out, out).await,
        Command::Slack(install::SlackCmd::Install(args)) => {
            install::install(&store, &es, args, json_out, out).await
        }
    }
}

fn connector_factory_defaults(connector: &Connector) -> Option<Value> {
    let service_type = connector.service_type.as_deref()?;
    crate::sources::factory(service_type).map(|f| conn::to_value(&f.default_configuration()))
}

async fn require_connector(
    store: &Arc<dyn ConnectorStore>,
    id: &str,
) -> Result<Doc<Connector>, CliError> {
    store
        .get_connector(id)
        .await?
        .filter(|c| c.source.deleted != Some(true))
        .ok_or_else(|| CliError::Store(StoreError::NotFound(format!("connector [{id}] not found"))))
}

fn parse_pairs(pairs: &[String]) -> Result<Vec<(String, String)>, CliError> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    CliError::Invalid(format!("expected KEY=VALUE, got '{}'", redact_pair(pair)))
                })
        })
        .collect()
}

fn redact_pair(pair: &str) -> String {
    pair.split_once('=')
        .map(|(k, _)| format!("{k}=…"))
        .unwrap_or_else(|| "…".into())
}

/// Applies KEY=VALUE pairs to a connector's configuration (its factory's schema when it has
/// none yet). Values are typed by the field's `type`. Returns the configuration and what to
/// print (sensitive values as `******`).
pub fn apply_values(
    configuration: &Value,
    pairs: &[(String, String)],
    defaults: Option<Value>,
) -> Result<(Value, Vec<String>), CliError> {
    let mut configuration = configuration.clone();
    if configuration.as_object().is_none_or(Map::is_empty) {
        configuration = defaults.unwrap_or_else(|| json!({}));
    }
    let mut shown = Vec::new();
    for (key, raw) in pairs {
        let Some(field) = configuration
            .get_mut(key.as_str())
            .filter(|f| f.is_object())
        else {
            let known: Vec<String> = configuration
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            return Err(CliError::Invalid(format!(
                "unknown configuration field '{key}'; known fields: {}",
                known.join(", ")
            )));
        };
        let value = match field["type"].as_str().unwrap_or("str") {
            "int" => raw
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(raw)),
            "bool" => match raw.trim().to_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => json!(true),
                "false" | "no" | "off" | "0" => json!(false),
                _ => json!(raw),
            },
            _ => json!(raw),
        };
        let sensitive = field["sensitive"] == true;
        shown.push(if sensitive {
            format!("{key}=******")
        } else {
            format!("{key}={raw}")
        });
        field["value"] = value;
    }
    Ok((configuration, shown))
}

async fn create(
    store: &Arc<dyn ConnectorStore>,
    es: &EsClient,
    args: CreateArgs,
    json_out: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let factory = crate::sources::factory(&args.service_type).ok_or_else(|| {
        CliError::Invalid(format!(
            "unknown service type '{}'; supported: {}",
            args.service_type,
            crate::sources::service_types().join(", ")
        ))
    })?;
    if let Some(problem) = index_name_problem(&args.index_name) {
        return Err(CliError::Invalid(problem));
    }
    // Read the inputs before writing anything.
    let mut pairs = parse_pairs(&args.set)?;
    let mut fields = Map::new();
    if let Some(path) = &args.from_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let values: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Invalid(format!("{} is not JSON: {e}", path.display())))?;
        let Value::Object(values) = values else {
            return Err(CliError::Invalid(format!(
                "{} must hold a JSON object",
                path.display()
            )));
        };
        for (key, value) in values {
            match value {
                Value::Object(field) => {
                    fields.insert(key, Value::Object(field));
                }
                Value::String(s) => pairs.push((key, s)),
                other => pairs.push((key, other.to_string())),
            }
        }
    }
    let request = NewConnector {
        id: args.connector_id.clone(),
        index_name: args.index_name.clone(),
        name: args.name.clone().unwrap_or_else(|| args.index_name.clone()),
        service_type: args.service_type.clone(),
        language: args.index_language.clone(),
    };
    let id = store.create_connector(&request).await?;
    // As the framework's CLI (and Kibana) do: the connector index settings and mappings,
    // with the source's fields; an existing index is left as it is.
    crate::sync::content_index::create_if_missing(
        es,
        &args.index_name,
        args.index_language.as_deref(),
        &factory.content_mappings(),
    )
    .await?;
    let mut shown = Vec::new();
    if !pairs.is_empty() || !fields.is_empty() {
        let mut configuration = conn::to_value(&factory.default_configuration());
        for (key, field) in fields {
            let Value::Object(field) = field else {
                continue;
            };
            let merged = match configuration.get(&key) {
                Some(Value::Object(default)) => {
                    let mut merged = default.clone();
                    merged.extend(field);
                    Value::Object(merged)
                }
                _ => Value::Object(field),
            };
            configuration[key.as_str()] = merged;
        }
        let (configuration, printed) = apply_values(&configuration, &pairs, None)?;
        shown = printed;
        store.set_configuration(&id, configuration).await?;
    }
    if json_out {
        writeln!(
            out,
            "{}",
            json!({"id": id, "index_name": args.index_name, "configured": shown})
        )?;
    } else {
        writeln!(
            out,
            "created connector {id} ({}) with index {}",
            args.service_type, args.index_name
        )?;
        if !shown.is_empty() {
            writeln!(out, "configuration: {}", shown.join(", "))?;
        }
    }
    Ok(())
}

fn index_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("--index-name must not be empty".into());
    }
    if name != name.to_lowercase()
        || name.starts_with(['_', '-', '+'])
        || name.chars().any(|c| {
            matches!(
                c,
                '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
            )
        })
    {
        return Some(format!("invalid index name '{name}': use lowercase letters, digits, '-' and '_', not starting with '_', '-' or '+'"));
    }
    None
}

async fn index_command(
    es: &EsClient,
    cmd: IndexCmd,
    json_out: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        IndexCmd::List => {
            let answer = es
                .json(
                    Method::Get,
                    "/_cat/indices",
                    &[("format", "json".into()), ("h", "index,docs.count".into())],
                    None,
                )
                .await?;
            let mut rows: Vec<Vec<String>> = answer
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|i| {
                    let name = i["index"].as_str()?;
                    (!name.starts_with('.')).then(|| {
                        vec![
                            name.to_string(),
                            match &i["docs.count"] {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            },
                        ]
                    })
                })
                .collect();
            rows.sort();
            if json_out {
                let list: Vec<Value> = rows
                    .iter()
                    .map(|r| json!({"index": r[0], "docs_count": r[1]}))
                    .collect();
                writeln!(out, "{}", pretty(&json!(list)))?;
                Ok(())
            } else {
                table(out, &["INDEX", "DOCS"], rows)
            }
        }
        IndexCmd::Clean { name } => {
            if !es.index_exists(&name).await? {
                return Err(CliError::Store(StoreError::NotFound(format!(
                    "index [{name}] not found"
                ))));
            }
            let path = format!("/{}/_delete_by_query", crate::es::encode(&name));
            let answer = es
                .json(
                    Method::Post,
                    &path,
                    &[("refresh", "true".into())],
                    Some(json!({"query": {"match_all": {}}})),
                )
                .await?;
            let deleted = answer["deleted"].as_u64().unwrap_or(0);
            if json_out {
                writeln!(out, "{}", json!({"index": name, "deleted": deleted}))?;
            } else {
                writeln!(out, "index {name}: deleted {deleted} documents")?;
            }
            Ok(())
        }
        IndexCmd::Delete { name } => {
            if !es.index_exists(&name).await? {
                return Err(CliError::Store(StoreError::NotFound(format!(
                    "index [{name}] not found"
                ))));
            }
            es.delete_index(&name).await?;
            if json_out {
                writeln!(out, "{}", json!({"index": name, "deleted": true}))?;
            } else {
                writeln!(out, "index {name}: deleted")?;
            }
            Ok(())
        }
    }
}

/// A field of a stored document in a table: strings as they are, `-` for null or absent,
/// other values as JSON.
fn cell(doc: &Value, key: &str) -> String {
    match doc.get(key) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// A stored document's table row: its id, then these fields.
fn row(doc: &Doc, keys: &[&str]) -> Vec<String> {
    std::iter::once(doc.id.clone())
        .chain(keys.iter().map(|key| cell(&doc.source, key)))
        .collect()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn with_id(doc: &Doc) -> Value {
    let mut value = doc.source.clone();
    if let Value::Object(map) = &mut value {
        map.insert("id".into(), json!(doc.id));
    }
    value
}

/// Replaces every sensitive configuration value (connectors and job snapshots) by `******`.
pub fn redact_doc(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Object(config)) = map.get_mut("configuration") {
                    for field in config.values_mut() {
                        if field["sensitive"] == true && !field["value"].is_null() {
                            field["value"] = json!("******");
                        }
                    }
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

fn table(out: &mut dyn Write, header: &[&str], rows: Vec<Vec<String>>) -> Result<(), CliError> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_and_secrets_hidden() {
        let empty = json!({});
        let defaults = conn::to_value(&crate::sources::slack::default_configuration());
        let pairs = vec![
            ("token".to_string(), "xoxb-secret".to_string()),
            ("fetch_last_n_days".to_string(), "30".to_string()),
            ("sync_users".to_string(), "false".to_string()),
        ];
        let (config, shown) = apply_values(&empty, &pairs, Some(defaults)).unwrap();
        assert_eq!(config["fetch_last_n_days"]["value"], 30);
        assert_eq!(config["sync_users"]["value"], false);
        assert_eq!(config["token"]["value"], "xoxb-secret");
        assert!(shown.iter().all(|s| !s.contains("xoxb-secret")));
        assert!(redact_doc(json!({"configuration": config}))
            .to_string()
            .find("xoxb")
            .is_none());
        assert!(apply_values(&config, &[("nope".into(), "1".into())], None).is_err());
    }

    /// Elasticsearch ids are base64url and may start with `-`: a job id
    /// like `-uEtWGX…` must be taken as a value, not as a flag.
    #[test]
    fn ids_may_start_with_a_hyphen() {
        for args in [
            vec!["connectors", "job", "view", "-uEtWGXHRMd0t5Fnqhx6"],
            vec!["connectors", "job", "cancel", "-uEtWGXHRMd0t5Fnqhx6"],
            vec!["connectors", "job", "list", "-abc"],
            vec!["connectors", "job", "start", "-i", "-abc"],
            vec!["connectors", "-o", "json", "job", "view", "-x"],
        ] {
            let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let id = match cli.command {
                Command::Job(JobCmd::View { job_id } | JobCmd::Cancel { job_id }) => job_id,
                Command::Job(JobCmd::List { connector_id }) => connector_id,
                Command::Job(JobCmd::Start { id, .. }) => id,
                other => panic!("{other:?}"),
            };
            assert!(id.starts_with('-'), "{args:?} gave {id}");
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = rt.block_on(main_with(
            vec!["connectors".into(), "job".into(), "start".into()],
            &mut out,
            &mut err,
        ));
        assert_eq!(code, 2);
    }
}
