//! A Slack answer that breaks its promise never costs a document (issue 13), end to end:
//! the Slack source against the simulator, through the sync engine, into osmem-server.
//!
//! For each malformed shape (the method's data missing, `null`, of the wrong type;
//! `has_more` without a cursor; a cursor that repeats) and each method the service calls,
//! a full sync after a good one either ends in error naming the method and the field (the
//! fault persists past the retries) or completes with the exact document set (the fault
//! fired once and the retry got a good answer); the index keeps every document either way.
//! Then the mass-deletion guard with a real source: a bot that lost every channel.

use connectors::config::{BulkConfig, ElasticsearchConfig, Secret};
use connectors::es::EsClient;
use connectors::retry::RetryParams;
use connectors::sources::slack::client::RetryBudget;
use connectors::sources::slack::{SlackOptions, SlackSource};
use connectors::sync::guard::DEFAULT_MAX_DELETION_RATIO;
use connectors::sync::{
    run_sync, JobKind, PipelineSettings, SyncError, SyncOptions, SyncOutcome, SyncStats,
};
use serde_json::{json, Value};
use slack_sim::{
    ExpectedQuery, FaultAction, FaultRule, Mutation, SimConfig, SimHandle, WorkspaceSpec,
};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pinned clock: the same workspace on every run.
const NOW: i64 = 1_700_000_000;
const TOKEN: &str = "xoxb-sim-bot-token";

/// A workspace small enough for dozens of syncs into osmem, with every listing paged
/// (page sizes below) and threads to read.
fn tiny() -> WorkspaceSpec {
    WorkspaceSpec {
        users: 5,
        bots: 1,
        deleted_users: 1,
        channels: 4,
        private_share: 0.0,
        archived_share: 0.0,
        bot_member_share: 0.75,
        messages_per_channel: 12,
        thread_share: 0.4,
        replies_per_thread: 3,
        history_days: 30,
        dms: 0,
        group_dms: 0,
        ..WorkspaceSpec::default()
    }
}

fn start(spec: WorkspaceSpec) -> SimHandle {
    SimHandle::start(SimConfig {
        spec,
        now: Some(NOW),
        ..SimConfig::default()
    })
    .expect("simulator starts")
}

fn slack_options(sim: &SimHandle, auto_join: bool) -> SlackOptions {
    let mut options = SlackOptions::new(Secret::new(TOKEN));
    options.base_url = sim.api_url();
    options.now = Some(NOW);
    options.fetch_last_n_days = 0;
    options.auto_join_channels = auto_join;
    options.pace = false;
    options.page_size = 3;
    options.history_page_size = 5;
    options.request_timeout = Duration::from_secs(10);
    options.retry = RetryBudget {
        max_retries: 2,
        max_throttled: 10,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    options
}

fn query(auto_join: bool) -> ExpectedQuery {
    ExpectedQuery {
        fetch_last_n_days: 0,
        auto_join_channels: auto_join,
        sync_users: true,
        now: Some(NOW),
    }
}

fn sync_options(index: &str, max_deletion_ratio: f64) -> SyncOptions {
    SyncOptions {
        index_name: index.to_string(),
        job_kind: JobKind::Full,
        job_id: format!("job-{index}"),
        pipeline: PipelineSettings {
            name: "_none".into(),
            ..PipelineSettings::default()
        },
        filtering: Value::Null,
        sync_cursor: None,
        bulk: BulkConfig {
            retry_interval: 0.005,
            display_every: 50_000,
            ..BulkConfig::default()
        },
        max_deletion_ratio,
    }
}

fn es() -> EsClient {
    EsClient::new(&ElasticsearchConfig {
        host: osmem::shared().url().to_string(),
        request_timeout: 60.0,
        ..ElasticsearchConfig::default()
    })
    .expect("client")
    .with_retry(RetryParams::for_test())
}

async fn full_sync(
    es: &EsClient,
    sim: &SimHandle,
    auto_join: bool,
    index: &str,
    max_deletion_ratio: f64,
) -> Result<SyncOutcome, SyncError> {
    let source = SlackSource::new(slack_options(sim, auto_join)).expect("source builds");
    run_sync(
        es,
        &source,
        sync_options(index, max_deletion_ratio),
        SyncStats::new(),
        CancellationToken::new(),
    )
    .await
}

/// Every id in the index.
async fn index_ids(es: &EsClient, index: &str) -> BTreeSet<String> {
    es.refresh(index).await.expect("refresh");
    let found = es
        .search(
            index,
            json!({"size": 10_000, "_source": false, "query": {"match_all": {}}}),
        )
        .await
        .expect("search");
    found["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["_id"].as_str().expect("_id").to_string())
        .collect()
}

fn expected_ids(sim: &SimHandle, auto_join: bool) -> BTreeSet<String> {
    sim.expected(&query(auto_join))
        .docs
        .iter()
        .map(|d| d.id().to_string())
        .collect()
}

fn rule(method: &str, times: Option<u64>, action: FaultAction) -> FaultRule {
    FaultRule {
        method: method.into(),
        channel: None,
        after: 0,
        times,
        action,
    }
}

/// A public channel to leave before a join case (the first sync joined them all).
fn leave_one_channel(sim: &SimHandle) {
    let channel = sim
        .expected(&query(true))
        .docs
        .iter()
        .find_map(|d| match d {
            slack_sim::ExpectedDoc::Channel { id, .. } => Some(id.clone()),
            _ => None,
        })
        .expect("a channel");
    sim.mutate(vec![Mutation::SetMembership {
        channel,
        member: false,
        user: None,
    }])
    .expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_shape_of_every_method_fails_or_completes_and_keeps_the_index() {
    let sim = start(tiny());
    let es = es();
    let index = osmem::unique_name("malformed");
    let auto_join = true;
    full_sync(&es, &sim, auto_join, &index, DEFAULT_MAX_DELETION_RATIO)
        .await
        .expect("the good first sync");
    let want = expected_ids(&sim, auto_join);
    assert!(want.len() > 50, "{} documents", want.len());
    assert_eq!(index_ids(&es, &index).await, want);

    let data = |method: &str| match method {
        "auth.test" => "url",
        "users.list" => "members",
        "conversations.list" => "channels",
        "conversations.join" => "channel",
        _ => "messages",
    };
    let mut cases = 0;
    for method in [
        "auth.test",
        "users.list",
        "conversations.list",
        "conversations.join",
        "conversations.history",
        "conversations.replies",
    ] {
        let mut shapes = vec![
            (FaultAction::MissingField { field: None }, data(method)),
            (FaultAction::NullField { field: None }, data(method)),
            (FaultAction::WrongType { field: None }, data(method)),
        ];
        if !matches!(method, "auth.test" | "conversations.join") {
            shapes.push((
                FaultAction::HasMoreWithoutCursor,
                "response_metadata.next_cursor",
            ));
            shapes.push((FaultAction::RepeatCursor, "response_metadata.next_cursor"));
        }
        for (fault, field) in shapes {
            let label = format!("{method} {fault:?}");
            // The fault persists past the retries: the sync fails and names it.
            if method == "conversations.join" {
                leave_one_channel(&sim);
            }
            sim.set_faults(vec![rule(method, None, fault.clone())]);
            let error = full_sync(&es, &sim, auto_join, &index, DEFAULT_MAX_DELETION_RATIO)
                .await
                .expect_err(&label);
            sim.set_faults(Vec::new());
            let text = error.to_string();
            assert!(matches!(error, SyncError::Source(_)), "{label}: {error:?}");
            assert!(
                text.contains(&format!("slack {method} answered ok but `{field}`")),
                "{label}: {text}"
            );
            assert!(!text.contains(TOKEN), "{label}: {text}");
            if method.starts_with("conversations.") && method != "conversations.list" {
                assert!(text.contains("channel C"), "{label}: {text}");
            }
            assert_eq!(
                index_ids(&es, &index).await,
                want,
                "{label}: after the failure"
            );
            println!("{method} {field}: {text}");

            // The fault fires once: the retry gets a good answer and the sync is exact.
            if method == "conversations.join" {
                leave_one_channel(&sim);
            }
            sim.set_faults(vec![rule(method, Some(1), fault)]);
            let outcome = full_sync(&es, &sim, auto_join, &index, DEFAULT_MAX_DELETION_RATIO)
                .await
                .unwrap_or_else(|e| panic!("{label}, once: {e}"));
            sim.set_faults(Vec::new());
            assert_eq!(outcome.stats.deleted_document_count, 0, "{label}");
            assert_eq!(index_ids(&es, &index).await, want, "{label}: once");
            cases += 1;
        }
    }
    assert_eq!(cases, 26);
    let faults: u64 = sim.stats().faults.values().sum();
    assert!(faults >= 26 * 2, "{faults} faults fired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_lost_every_channel_keeps_the_index_until_the_operator_allows_it() {
    let sim = start(tiny());
    let es = es();
    let index = osmem::unique_name("lost-channels");
    full_sync(&es, &sim, false, &index, DEFAULT_MAX_DELETION_RATIO)
        .await
        .expect("the good first sync");
    let before = expected_ids(&sim, false);
    assert_eq!(index_ids(&es, &index).await, before);

    // The bot is removed from every channel: Slack answers well, but only users remain.
    let channels: Vec<String> = sim
        .expected(&query(false))
        .docs
        .iter()
        .filter_map(|d| match d {
            slack_sim::ExpectedDoc::Channel { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    sim.mutate(
        channels
            .into_iter()
            .map(|channel| Mutation::SetMembership {
                channel,
                member: false,
                user: None,
            })
            .collect(),
    )
    .expect("leave");
    let after = expected_ids(&sim, false);
    assert!(
        after.len() * 4 < before.len(),
        "{} of {}",
        after.len(),
        before.len()
    );

    let error = full_sync(&es, &sim, false, &index, DEFAULT_MAX_DELETION_RATIO)
        .await
        .expect_err("the guard refuses");
    assert!(matches!(error, SyncError::DeletionRefused(_)), "{error:?}");
    let text = error.to_string();
    let stale = before.len() - after.len();
    assert!(
        text.contains(&format!(
            "would delete {stale} of the {} documents",
            before.len()
        )),
        "{text}"
    );
    assert!(text.contains("service.max_deletion_ratio"), "{text}");
    assert_eq!(index_ids(&es, &index).await, before);

    let outcome = full_sync(&es, &sim, false, &index, 1.0)
        .await
        .expect("allowed by the operator");
    assert_eq!(outcome.stats.deleted_document_count, stale as u64);
    assert_eq!(index_ids(&es, &index).await, after);
}
