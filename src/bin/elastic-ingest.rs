//! `elastic-ingest`: the connector service. A thin shell over [`connectors::service`].
//!
//! Exit status: 0 after a clean shutdown, 2 for a configuration error, 1 for a runtime failure.

use clap::{Parser, ValueEnum};
use connectors::config::{parse_level, Config};
use connectors::service::{self, Action};
use connectors::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum ActionArg {
    Schedule,
    SyncContent,
    SyncAccessControl,
    Cleanup,
    List,
    Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

/// Elastic connector service for Slack (Rust).
#[derive(Debug, Parser)]
#[command(name = "elastic-ingest", disable_version_flag = true)]
struct Args {
    /// Configuration file.
    #[arg(short = 'c', long = "config-file", default_value = "config.yml")]
    config_file: PathBuf,
    /// Log level (DEBUG, INFO, WARNING, ERROR, CRITICAL); wins over service.log_level.
    #[arg(long = "log-level")]
    log_level: Option<String>,
    /// Shorthand for --log-level DEBUG.
    #[arg(long)]
    debug: bool,
    /// Log format.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    log_format: FormatArg,
    /// ECS JSON logs (same as --log-format json).
    #[arg(long)]
    filebeat: bool,
    /// What to run; repeatable. Default: schedule, sync_content, sync_access_control, cleanup.
    /// `list` prints the known sources, `config` a source's default configuration.
    #[arg(long = "action", value_enum)]
    action: Vec<ActionArg>,
    /// Service type for `--action config`.
    #[arg(long = "service-type")]
    service_type: Option<String>,
    /// Accepted for compatibility with the Python service; no effect.
    #[arg(long, hide = true)]
    uvloop: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
}

fn main() -> ExitCode {
    // Before any thread exists: glibc reads the arena cap when a thread first allocates.
    let allocator = connectors::memory::tune_allocator();
    let args = Args::parse();
    if args.version {
        println!("{}", connectors::VERSION);
        return ExitCode::SUCCESS;
    }
    if args.action.contains(&ActionArg::List) {
        println!("Registered connectors:");
        for factory in connectors::sources::registry() {
            println!("- {} ({})", factory.display_name(), factory.service_type());
        }
        println!("Bye");
        return ExitCode::SUCCESS;
    }
    if args.action.contains(&ActionArg::Config) {
        let Some(service_type) = args.service_type.as_deref() else {
            eprintln!(
                "error: --action config needs --service-type (one of: {})",
                service_types()
            );
            return ExitCode::from(2);
        };
        let Some(factory) = connectors::sources::factory(service_type) else {
            eprintln!(
                "error: unknown service type `{service_type}`: available: {}",
                service_types()
            );
            return ExitCode::from(2);
        };
        let config = serde_json::to_string_pretty(&factory.default_configuration())
            .expect("configuration serializes");
        println!("{config}");
        return ExitCode::SUCCESS;
    }

    let loaded = match Config::load(&args.config_file) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let level_name = if args.debug {
        "DEBUG".to_string()
    } else {
        args.log_level
            .clone()
            .unwrap_or_else(|| loaded.config.service.log_level.clone())
    };
    let Some(level) = parse_level(&level_name) else {
        eprintln!("error: --log-level `{level_name}` is not a level: use DEBUG, INFO, WARNING, ERROR or CRITICAL");
        return ExitCode::from(2);
    };
    let format = if args.filebeat || args.log_format == FormatArg::Json {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    telemetry::init(level, format);
    tracing::debug!(?allocator, "allocator settings");
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let actions: Vec<Action> = if args.action.is_empty() {
        Action::DEFAULT.to_vec()
    } else {
        args.action
            .iter()
            .filter_map(|a| match a {
                ActionArg::Schedule => Some(Action::Schedule),
                ActionArg::SyncContent => Some(Action::SyncContent),
                ActionArg::SyncAccessControl => Some(Action::SyncAccessControl),
                ActionArg::Cleanup => Some(Action::Cleanup),
                ActionArg::List | ActionArg::Config => None,
            })
            .collect()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let shutdown = connectors::shutdown::install();
        service::run(loaded.config, actions, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "service failed");
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

fn service_types() -> String {
    connectors::sources::service_types().join(", ")
}
