//! Logging: readable text by default, ECS JSON with `--log-format json` (`--filebeat`).
//!
//! Text is coloured only when it goes to a terminal: a log file or `docker logs` gets plain
//! lines, without ANSI escape codes. JSON is never coloured.
//!
//! Invariants: third-party crates (HTTP stacks, TLS) log at WARN at most unless `RUST_LOG`
//! says otherwise, so a `--debug` or trace run never dumps request headers; secrets are
//! [`crate::config::Secret`]s and print as `**REDACTED**` anyway. Span fields such as
//! `connector_id` and `sync_job_id` appear on every line logged inside the span.

use std::io::IsTerminal;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One ECS JSON object per line (for Filebeat/Elastic Agent).
    Json,
}

/// The filter for `level` (a tracing level name): ours at `level`, others at WARN.
pub fn filter_for(level: &str) -> EnvFilter {
    if let Ok(spec) = std::env::var("RUST_LOG") {
        if !spec.is_empty() {
            return EnvFilter::new(spec);
        }
    }
    EnvFilter::new(format!("warn,connectors={level},elastic_ingest={level}"))
}

/// Installs the global subscriber writing to stderr (coloured text only on a terminal).
pub fn init(level: &str, format: LogFormat) {
    init_with_writer(
        level,
        format,
        std::io::stderr,
        std::io::stderr().is_terminal(),
    );
}

/// Installs the global subscriber with any writer; `ansi` colours text logs.
pub fn init_with_writer<W>(level: &str, format: LogFormat, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter_for(level))
        .with_writer(writer);
    let result = match format {
        LogFormat::Text => builder.with_target(false).with_ansi(ansi).try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(EcsFormat)
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// ECS JSON lines: `@timestamp`, `log.level`, `message`, `log.logger`, `ecs.version`,
/// `service.name`, `process.pid`, then the event's and its spans' fields.
pub struct EcsFormat;

impl<S, N> FormatEvent<S, N> for EcsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut object = serde_json::Map::new();
        object.insert(
            "@timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        object.insert(
            "log.level".into(),
            event.metadata().level().as_str().to_lowercase().into(),
        );
        object.insert("log.logger".into(), event.metadata().target().into());
        object.insert("ecs.version".into(), "1.6.0".into());
        object.insert("service.name".into(), "elastic-ingest".into());
        object.insert("service.version".into(), crate::VERSION.into());
        object.insert("process.pid".into(), std::process::id().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if let Ok(serde_json::Value::Object(map)) =
                        serde_json::from_str::<serde_json::Value>(fields.as_str())
                    {
                        object.extend(map);
                    }
                }
            }
        }
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        for (key, value) in visitor.0 {
            let key = if key == "message" {
                "message".to_string()
            } else {
                key
            };
            object.insert(key, value);
        }
        let mut line = serde_json::to_vec(&object).map_err(|_| std::fmt::Error)?;
        line.push(b'\n');
        let text = String::from_utf8(line).map_err(|_| std::fmt::Error)?;
        writer.write_str(&text)
    }
}

#[derive(Default)]
struct JsonVisitor(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}
