//! What a notice looks like in Slack: Block Kit sections with a plain-text fallback (the
//! `text` Slack shows in notifications and screen readers), and the CSV report (pure).
//!
//! Invariants: dynamic text (names, error texts) is escaped for mrkdwn (`&`, `<`, `>`), so
//! an error text can never ping a channel or forge a link; every section text stays under
//! Block Kit's 3000-character limit; report cells that a spreadsheet would run as a formula
//! are quoted.

use super::episode::Notice;
use crate::protocol::outcome::JobOutcome;
use serde_json::{json, Value};

/// Block Kit's limit on a section's text; error texts are cut to fit.
const SECTION_MAX: usize = 2900;

/// A message ready to post.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The plain-text fallback (also the file's comment of a report).
    pub text: String,
    /// The Block Kit blocks (a JSON array).
    pub blocks: Value,
    /// A file to upload with the message (reports).
    pub file: Option<Report>,
}

/// A file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its file name.
    pub filename: String,
    /// Its title in Slack.
    pub title: String,
    /// Its bytes.
    pub content: Vec<u8>,
}

/// Escapes text for mrkdwn: Slack's three control characters.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text`, cut to at most `max` characters (on a character boundary) with an ellipsis.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The link to a connector in Kibana 9 (`…/app/elasticsearch/content/connectors/<id>`).
pub fn kibana_link(kibana_url: &str, connector_id: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(connector_id.as_bytes()).collect();
    format!(
        "{}/app/elasticsearch/content/connectors/{id}",
        kibana_url.trim_end_matches('/')
    )
}

/// "name (`id`)" or "`id`", escaped.
fn who(connector_id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("*{}* (`{}`)", escape(name), escape(connector_id)),
        None => format!("`{}`", escape(connector_id)),
    }
}

fn who_plain(connector_id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name} ({connector_id})"),
        None => connector_id.to_string(),
    }
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, SECTION_MAX)}})
}

fn fields(outcome: &JobOutcome) -> Value {
    let s = &outcome.stats;
    let mut items = vec![
        format!(
            "*Job*\n`{}` ({})",
            escape(&outcome.job_id),
            outcome.job_kind
        ),
        format!(
            "*Index*\n{}",
            escape(outcome.index_name.as_deref().unwrap_or("-"))
        ),
        format!(
            "*Indexed / deleted*\n{} / {}",
            s.indexed_document_count, s.deleted_document_count
        ),
        format!("*Documents in the index*\n{}", outcome.total_document_count),
    ];
    if let Some(duration) = duration_secs(outcome) {
        items.push(format!("*Duration*\n{duration:.0} s"));
    }
    let fields: Vec<Value> = items
        .into_iter()
        .map(|text| json!({"type": "mrkdwn", "text": text}))
        .collect();
    json!({"type": "section", "fields": fields})
}

fn duration_secs(outcome: &JobOutcome) -> Option<f64> {
    outcome
        .started_at
        .map(|start| (outcome.completed_at - start).num_milliseconds().max(0) as f64 / 1000.0)
}

fn link_block(kibana_url: Option<&str>, connector_id: &str) -> Option<Value> {
    kibana_url.map(|base| {
        section(format!(
            "<{}|Open the connector in Kibana>",
            kibana_link(base, connector_id)
        ))
    })
}

/// Renders a notice (pure).
pub fn render(notice: &Notice, kibana_url: Option<&str>) -> Message {
    let mut blocks = Vec::new();
    let (text, id) = match notice {
        Notice::JobFailed(o) | Notice::FailingRepeatedly { outcome: o, .. } => {
            let name = o.connector_name.as_deref();
            let error = o.error.as_deref().unwrap_or("no error text");
            let (headline, plain) = match notice {
                Notice::FailingRepeatedly { failures, .. } => (
                    format!(":rotating_light: *Sync failing repeatedly*: {failures} {} jobs of {} failed in a row", o.job_kind, who(&o.connector_id, name)),
                    format!("Sync failing repeatedly: {failures} {} jobs of connector {} failed in a row", o.job_kind, who_plain(&o.connector_id, name)),
                ),
                _ => (
                    format!(":red_circle: *Sync failed*: the {} job of {} ended in error", o.job_kind, who(&o.connector_id, name)),
                    format!("Sync failed: the {} job of connector {} ended in error", o.job_kind, who_plain(&o.connector_id, name)),
                ),
            };
            blocks.push(section(headline));
            blocks.push(section(format!(
                "```{}```",
                escape(&cut(error, SECTION_MAX - 10))
            )));
            blocks.push(fields(o));
            (format!("{plain}: {}", cut(error, 500)), &o.connector_id)
        }
        Notice::Recovered {
            outcome: o,
            failures,
        } => {
            let name = o.connector_name.as_deref();
            let after = failures
                .map(|n| format!(" after {n} failed job{}", if n == 1 { "" } else { "s" }))
                .unwrap_or_default();
            blocks.push(section(format!(
                ":large_green_circle: *Sync recovered*: the {} job of {} completed{after}",
                o.job_kind,
                who(&o.connector_id, name)
            )));
            blocks.push(fields(o));
            (
                format!(
                    "Sync recovered: the {} job of connector {} completed{after}",
                    o.job_kind,
                    who_plain(&o.connector_id, name)
                ),
                &o.connector_id,
            )
        }
        Notice::Summary(o) | Notice::Report(o) => {
            let name = o.connector_name.as_deref();
            let s = &o.stats;
            blocks.push(section(format!(
                ":white_check_mark: *Sync completed*: the {} job of {}",
                o.job_kind,
                who(&o.connector_id, name)
            )));
            blocks.push(fields(o));
            (
                format!(
                    "Sync completed: the {} job of connector {}: {} indexed, {} deleted, {} in the index",
                    o.job_kind,
                    who_plain(&o.connector_id, name),
                    s.indexed_document_count,
                    s.deleted_document_count,
                    o.total_document_count
                ),
                &o.connector_id,
            )
        }
        Notice::StoppedCheckingIn {
            connector_id,
            name,
            last_seen,
        } => {
            let when = last_seen.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            blocks.push(section(format!(
                ":warning: *Connector stopped checking in*: {} was last seen at {when}; its connector service may be down",
                who(connector_id, name.as_deref())
            )));
            (
                format!(
                    "Connector {} stopped checking in: last seen at {when}; its connector service may be down",
                    who_plain(connector_id, name.as_deref())
                ),
                connector_id,
            )
        }
        Notice::CheckingInAgain { connector_id, name } => {
            blocks.push(section(format!(
                ":large_green_circle: *Connector checking in again*: {}",
                who(connector_id, name.as_deref())
            )));
            (
                format!(
                    "Connector {} is checking in again",
                    who_plain(connector_id, name.as_deref())
                ),
                connector_id,
            )
        }
    };
    if let Some(link) = link_block(kibana_url, id) {
        blocks.push(link);
    }
    let file = match notice {
        Notice::Report(o) => Some(Report {
            filename: format!(
                "sync-report-{}-{}.csv",
                safe(&o.connector_id),
                safe(&o.job_id)
            ),
            title: format!("Sync report: {} {}", o.connector_id, o.job_id),
            content: csv(o).into_bytes(),
        }),
        _ => None,
    };
    Message {
        text,
        blocks: Value::Array(blocks),
        file,
    }
}

/// A name safe in a file name.
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The report's columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "connector_id",
    "connector_name",
    "job_id",
    "job_type",
    "status",
    "started_at",
    "completed_at",
    "duration_seconds",
    "indexed_document_count",
    "indexed_document_volume_bytes",
    "deleted_document_count",
    "failed_document_count",
    "filtered_document_count",
    "dropped_document_count",
    "total_document_count",
    "error",
];

/// The job's figures as CSV (RFC 4180: a header line and one row, CRLF line ends).
pub fn csv(o: &JobOutcome) -> String {
    let s = &o.stats;
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let row = [
        o.connector_id.clone(),
        o.connector_name.clone().unwrap_or_default(),
        o.job_id.clone(),
        o.job_kind.to_string(),
        o.status.as_str().to_string(),
        o.started_at.map(time).unwrap_or_default(),
        time(o.completed_at),
        duration_secs(o)
            .map(|d| format!("{d:.3}"))
            .unwrap_or_default(),
        s.indexed_document_count.to_string(),
        s.indexed_document_volume_bytes.to_string(),
        s.deleted_document_count.to_string(),
        s.failed_document_count.to_string(),
        s.docs_filtered.to_string(),
        s.docs_dropped.to_string(),
        o.total_document_count.to_string(),
        o.error.clone().unwrap_or_default(),
    ];
    let line = |cells: Vec<String>| cells.join(",") + "\r\n";
    line(CSV_COLUMNS.iter().map(|c| c.to_string()).collect())
        + &line(row.iter().map(|cell| csv_cell(cell)).collect())
}

/// One CSV cell: quoted when it holds a comma, quote or line break; a leading `=`, `+`,
/// `-` or `@` (a formula to a spreadsheet) is neutralised with a leading `'`, except in
/// numbers.
pub fn csv_cell(cell: &str) -> String {
    let formula = cell.starts_with(['=', '+', '-', '@']) && cell.parse::<f64>().is_err();
    let cell = if formula {
        format!("'{cell}")
    } else {
        cell.to_string()
    };
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::job::JobStatus;
    use crate::sync::{JobKind, StatsSnapshot};
    use chrono::{TimeZone, Utc};

    fn outcome() -> JobOutcome {
        JobOutcome {
            connector_id: "c-1".into(),
            connector_name: Some("Team <Slack>".into()),
            service_type: Some("slack".into()),
            index_name: Some("search-slack".into()),
            job_id: "job,1".into(),
            job_kind: JobKind::Full,
            status: JobStatus::Error,
            previous_status: None,
            error: Some("slack rejected the token <!channel> & \"more\"\n=cmd".into()),
            stats: StatsSnapshot {
                indexed_document_count: 7,
                deleted_document_count: 2,
                ..StatsSnapshot::default()
            },
            total_document_count: 70,
            started_at: Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap()),
            completed_at: Utc.timestamp_opt(1_700_000_042, 0).unwrap(),
        }
    }

    #[test]
    fn alerts_escape_the_error_and_link_to_kibana() {
        let m = render(
            &Notice::JobFailed(outcome()),
            Some("https://kb.example:5601/"),
        );
        assert!(m
            .text
            .starts_with("Sync failed: the full job of connector Team <Slack> (c-1)"));
        let blocks = m.blocks.to_string();
        assert!(!blocks.contains("<!channel>"), "{blocks}");
        assert!(blocks.contains("&lt;!channel&gt; &amp;"), "{blocks}");
        assert!(blocks.contains(
            "<https://kb.example:5601/app/elasticsearch/content/connectors/c-1|Open the connector in Kibana>"
        ));
        for block in m.blocks.as_array().unwrap() {
            assert_eq!(block["type"], "section");
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000);
            }
        }
        assert!(m.file.is_none());
        let no_link = render(&Notice::JobFailed(outcome()), None);
        assert!(!no_link.blocks.to_string().contains("Kibana"));
    }

    #[test]
    fn long_errors_fit_a_section() {
        let mut o = outcome();
        o.error = Some("x".repeat(10_000));
        let m = render(&Notice::JobFailed(o), None);
        for block in m.blocks.as_array().unwrap() {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000, "{}", text.len());
            }
        }
        assert!(m.text.chars().count() < 700);
    }

    #[test]
    fn the_report_is_one_csv_row_with_a_header() {
        let mut o = outcome();
        o.status = JobStatus::Completed;
        let m = render(&Notice::Report(o.clone()), None);
        let file = m.file.unwrap();
        assert_eq!(file.filename, "sync-report-c-1-job_1.csv");
        let text = String::from_utf8(file.content).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert!(lines[1].starts_with("c-1,Team <Slack>,\"job,1\",full,completed,2023-11-14T22:13:20.000Z,2023-11-14T22:14:02.000Z,42.000,7,0,2,0,0,0,70,"), "{}", lines[1]);
        assert!(text.contains("\"slack rejected the token <!channel> & \"\"more\"\"\n=cmd\""));
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("-12"), "-12");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }

    #[test]
    fn recovered_and_check_in_notices_read_well() {
        let mut o = outcome();
        o.status = JobStatus::Completed;
        o.connector_name = None;
        let m = render(
            &Notice::Recovered {
                outcome: o.clone(),
                failures: Some(1),
            },
            None,
        );
        assert_eq!(
            m.text,
            "Sync recovered: the full job of connector c-1 completed after 1 failed job"
        );
        let m = render(
            &Notice::StoppedCheckingIn {
                connector_id: "c-1".into(),
                name: None,
                last_seen: o.completed_at,
            },
            None,
        );
        assert!(
            m.text.contains("last seen at 2023-11-14T22:14:02Z"),
            "{}",
            m.text
        );
    }
}
