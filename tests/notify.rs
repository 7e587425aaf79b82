//! Notifications against the Slack simulator: the notifier's worker, sender and triggers with
//! real HTTP (component tests; the service-level ones are in `tests/protocol.rs`).
//!
//! Every test here also runs under a TRACE-level log capture, and the last check is that no
//! secret (bot token, webhook URL, upload URL) appears in any line.

mod common;

use chrono::Utc;
use connectors::config::Config;
use connectors::notify::slack::SenderOptions;
use connectors::notify::{Counts, Event, Notifier, NotifierOptions};
use connectors::protocol::job::JobStatus;
use connectors::protocol::outcome::{JobObserver, JobOutcome};
use connectors::retry::RetryParams;
use connectors::sync::{JobKind, StatsSnapshot};
use slack_sim::{FaultAction, FaultRule, SimHandle, TokenSpec, WorkspaceSpec};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every log line of this test binary, at every level.
fn logs() -> &'static common::CaptureWriter {
    static LOGS: OnceLock<common::CaptureWriter> = OnceLock::new();
    LOGS.get_or_init(|| {
        let writer = common::CaptureWriter::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        writer
    })
}

const UPLOADER: &str = "xoxb-notify-uploader-SECRET";

fn sim() -> SimHandle {
    logs();
    let sim = common::start(WorkspaceSpec::default());
    sim.set_token(TokenSpec {
        token: UPLOADER.into(),
        kind: Default::default(),
        scopes: vec!["chat:write".into(), "files:write".into()],
        revoked: false,
        user: None,
    });
    sim
}

fn config(notifications: &str) -> Config {
    let yaml = format!(
        "connectors:\n  - {{connector_id: c1, service_type: slack}}\nnotifications:\n{notifications}"
    );
    Config::from_yaml_str(&yaml, std::path::Path::new("t.yml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

fn options(sim: &SimHandle) -> NotifierOptions {
    NotifierOptions {
        sender: SenderOptions {
            api_url: sim.api_url(),
            retry: RetryParams {
                max_throttled: 3,
                ..RetryParams::exponential(Duration::from_millis(1), Duration::from_millis(5), 2)
            },
            interval: Duration::from_millis(10),
            timeout: Duration::from_secs(10),
        },
    }
}

fn outcome(status: JobStatus, previous: Option<JobStatus>) -> JobOutcome {
    let now = Utc::now();
    JobOutcome {
        connector_id: "c1".into(),
        connector_name: Some("Team Slack".into()),
        service_type: Some("slack".into()),
        index_name: Some("search-slack".into()),
        job_id: format!("job-{}", now.timestamp_nanos_opt().unwrap_or(0)),
        job_kind: JobKind::Full,
        status,
        previous_status: previous,
        error: (status == JobStatus::Error)
            .then(|| "slack conversations.history failed: internal_error".into()),
        stats: StatsSnapshot {
            indexed_document_count: 12,
            deleted_document_count: 1,
            ..StatsSnapshot::default()
        },
        total_document_count: 40,
        started_at: Some(now - chrono::Duration::seconds(3)),
        completed_at: now,
    }
}

/// Waits until `check` holds (polling), or fails after 10 s.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Stops the notifier (it sends what is queued) and returns its counts.
async fn stop(
    notifier: Arc<Notifier>,
    worker: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
) -> Counts {
    shutdown.cancel();
    worker.await.unwrap();
    notifier.counts()
}

fn assert_no_secret(secrets: &[&str]) {
    let text = logs().contents();
    for secret in secrets {
        assert!(!text.contains(secret), "a secret is in the logs:\n{text}");
    }
}

#[tokio::test]
async fn one_alert_per_episode_and_one_recovered() {
    let sim = sim();
    let (channel, name) = common::member_channel(&sim).await;
    let config = config(&format!(
        "  kibana_url: https://kibana.example:5601\n  slack:\n    bot_token: {}\n    targets: ['#{name}']\n    triggers: {{consecutive_failures: 3}}\n",
        common::TOKEN
    ));
    let shutdown = CancellationToken::new();
    let (notifier, worker) = Notifier::start(&config, options(&sim), shutdown.clone()).unwrap();
    notifier.job_finished(outcome(JobStatus::Error, Some(JobStatus::Completed)));
    notifier.job_finished(outcome(JobStatus::Error, Some(JobStatus::Error)));
    notifier.job_finished(outcome(JobStatus::Canceled, Some(JobStatus::Error)));
    notifier.job_finished(outcome(JobStatus::Completed, Some(JobStatus::Error)));
    notifier.job_finished(outcome(JobStatus::Completed, Some(JobStatus::Completed)));
    until("two messages", || sim.posted().len() >= 2).await;
    let counts = stop(notifier, worker, shutdown).await;
    let posted = sim.posted();
    assert_eq!(posted.len(), 2, "{posted:#?}");
    assert_eq!(
        counts,
        Counts {
            sent: 2,
            failed: 0,
            dropped: 0
        }
    );
    let (alert, back) = (&posted[0], &posted[1]);
    assert_eq!(alert.channel, channel, "the name was resolved by Slack");
    assert!(alert.text.starts_with("Sync failed: the full job of connector Team Slack (c1) ended in error: slack conversations.history failed: internal_error"), "{}", alert.text);
    let blocks = alert.blocks.as_ref().unwrap().to_string();
    assert!(blocks.contains("internal_error"), "{blocks}");
    assert!(
        blocks.contains("https://kibana.example:5601/app/elasticsearch/content/connectors/c1"),
        "{blocks}"
    );
    assert!(back.text.starts_with("Sync recovered: the full job of connector Team Slack (c1) completed after 2 failed jobs"), "{}", back.text);
    assert_no_secret(&[common::TOKEN]);
}

#[tokio::test]
async fn the_report_arrives_through_the_three_step_upload() {
    let sim = sim();
    let (channel, _) = common::member_channel(&sim).await;
    let config = config(&format!(
        "  slack:\n    bot_token: {UPLOADER}\n    targets: [{channel}]\n    triggers: {{csv_report: true}}\n"
    ));
    let shutdown = CancellationToken::new();
    let (notifier, worker) = Notifier::start(&config, options(&sim), shutdown.clone()).unwrap();
    let done = outcome(JobStatus::Completed, None);
    notifier.job_finished(done.clone());
    until("a file", || !sim.files().is_empty()).await;
    let counts = stop(notifier, worker, shutdown).await;
    assert_eq!(counts.sent, 1);
    let stats = sim.stats();
    for method in [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.upload_url",
        "files.completeUploadExternal",
    ] {
        assert_eq!(
            stats.calls.get(method).copied().unwrap_or(0),
            1,
            "{method}: {:?}",
            stats.calls
        );
    }
    let files = sim.files();
    let posted = sim.posted();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].channel_id.as_deref(), Some(channel.as_str()));
    assert_eq!(
        files[0].thread_ts.as_deref(),
        Some(posted[0].ts.as_str()),
        "in the summary's thread"
    );
    assert_eq!(
        files[0].filename,
        format!("sync-report-c1-{}.csv", done.job_id)
    );
    let lines: Vec<&str> = files[0].content.lines().collect();
    assert!(
        lines[0].starts_with("connector_id,connector_name,job_id,job_type,status,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("c1,Team Slack,{},full,completed,", done.job_id)),
        "{}",
        lines[1]
    );
    assert_no_secret(&[UPLOADER, "/_upload/"]);
}

#[tokio::test]
async fn delivery_errors_are_counted_never_raised() {
    let sim = sim();
    let (channel, _) = common::member_channel(&sim).await;
    // An unknown token, an unknown channel, and Slack throttling past the retry budget.
    let cases = [
        ("xoxb-not-a-real-token-SECRET", channel.clone(), None),
        (common::TOKEN, "C0MISSING".to_string(), None),
        (
            common::TOKEN,
            channel.clone(),
            Some(FaultRule {
                method: "chat.postMessage".into(),
                channel: None,
                after: 0,
                times: None,
                action: FaultAction::HttpStatus {
                    status: 429,
                    retry_after: Some("0.01".into()),
                },
            }),
        ),
    ];
    for (token, target, fault) in cases {
        sim.set_faults(fault.into_iter().collect());
        let config = config(&format!(
            "  slack:\n    bot_token: {token}\n    targets: [{target}]\n"
        ));
        let shutdown = CancellationToken::new();
        let (notifier, worker) = Notifier::start(&config, options(&sim), shutdown.clone()).unwrap();
        notifier.job_finished(outcome(JobStatus::Error, None));
        until("a failure", || notifier.counts().failed == 1).await;
        let counts = stop(notifier, worker, shutdown).await;
        assert_eq!(
            counts,
            Counts {
                sent: 0,
                failed: 1,
                dropped: 0
            },
            "{target}"
        );
    }
    assert!(
        sim.stats()
            .calls
            .get("chat.postMessage")
            .copied()
            .unwrap_or(0)
            >= 4,
        "429s were retried"
    );
    let text = logs().contents();
    for reason in ["invalid_auth", "channel_not_found", "http 429"] {
        assert!(text.contains(reason), "{reason} not logged");
    }
    assert_no_secret(&["xoxb-not-a-real-token-SECRET", common::TOKEN]);
    // A 429 within the budget is waited out: the message arrives.
    sim.set_faults(vec![FaultRule {
        method: "chat.postMessage".into(),
        channel: None,
        after: 0,
        times: Some(2),
        action: FaultAction::HttpStatus {
            status: 429,
            retry_after: Some("0.05".into()),
        },
    }]);
    let config = config(&format!(
        "  slack:\n    bot_token: {}\n    targets: [{channel}]\n",
        common::TOKEN
    ));
    let shutdown = CancellationToken::new();
    let (notifier, worker) = Notifier::start(&config, options(&sim), shutdown.clone()).unwrap();
    notifier.job_finished(outcome(JobStatus::Error, None));
    until("the alert", || notifier.counts().sent == 1).await;
    stop(notifier, worker, shutdown).await;
    assert_eq!(sim.posted().len(), 1);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let sim = sim();
    sim.set_latency_ms(300);
    let (channel, _) = common::member_channel(&sim).await;
    let config = config(&format!(
        "  slack:\n    bot_token: {}\n    targets: [{channel}]\n    queue_size: 1\n    triggers: {{sync_summary: true}}\n",
        common::TOKEN
    ));
    let shutdown = CancellationToken::new();
    let (notifier, worker) = Notifier::start(&config, options(&sim), shutdown.clone()).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..20 {
        notifier.job_finished(outcome(JobStatus::Completed, None));
    }
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "pushing never waits"
    );
    assert!(notifier.counts().dropped >= 17, "{:?}", notifier.counts());
    sim.set_latency_ms(0);
    let counts = stop(notifier, worker, shutdown).await;
    assert_eq!(counts.sent + counts.dropped, 20, "{counts:?}");
    assert!(logs().contents().contains("notification dropped"));
}

#[tokio::test]
async fn webhooks_and_check_ins() {
    let sim = sim();
    let url = sim.webhook_url("hook-SECRET", "C_ALERTS");
    let config = config(&format!(
        "  slack:\n    webhook_url: '{url}'\n    triggers: {{stopped_checking_in: 60}}\n"
    ));
    let shutdown = CancellationToken::new();
    let (notifier, worker) = Notifier::start(&config, options(&sim), shutdown.clone()).unwrap();
    let long_ago = Utc::now() - chrono::Duration::seconds(600);
    for last_seen in [long_ago, long_ago, Utc::now()] {
        notifier.push(Event::CheckIn {
            connector_id: "c1".into(),
            name: None,
            last_seen: Some(last_seen),
        });
    }
    until("two webhook posts", || sim.posted().len() >= 2).await;
    stop(notifier, worker, shutdown).await;
    let posted = sim.posted();
    assert_eq!(posted.len(), 2);
    assert!(
        posted[0]
            .text
            .starts_with("Connector c1 stopped checking in"),
        "{}",
        posted[0].text
    );
    assert_eq!(posted[1].text, "Connector c1 is checking in again");
    assert_eq!(posted[0].channel, "webhook:C_ALERTS");
    assert_no_secret(&["hook-SECRET"]);
}
