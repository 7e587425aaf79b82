//! A Slack answer that breaks its promise never costs a document (issue 13), end to end:
//! the Slack source against the simulator, through the sync engine, into osmem-server.
//!
//! For each malformed shape (the method's data missing, `null`, of the wrong type;
//! `has_more` without a cursor; a cursor that repeats) and each method the service calls,
//! a full sync after a good one either ends in error naming the method and the field (the
//! fault persists past the retries) or completes with the exact document set (the fault
//! fired once and the retry got a good answer); the index keeps every document either way.
//! Then the mass-deletion guard with a real source: a bot that lost every channel.

use connectors::config::BulkConfig;
use connectors::es::EsClient;
use connectors::fuzzing::SLACK_METHODS;
use connectors::sources::slack::{SlackOptions, SlackSource};
use connectors::sync::guard::DEFAULT_MAX_DELETION_RATIO;
use connectors::sync::{run_sync, JobKind, SyncError, SyncOptions, SyncOutcome, SyncStats};
use serde_json::json;
use slack_sim::{ExpectedQuery, FaultAction, FaultRule, Mutation, SimHandle, WorkspaceSpec};
use std::collections::BTreeSet;
use tokio_util::sync::CancellationToken;

mod common;

use common::{start, NOW, TOKEN};

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

fn slack_options(sim: &SimHandle, auto_join: bool) -> SlackOptions {
    let mut options = common::slack_options(sim, 0, auto_join, true);
    // Every listing paged; a persistent fault fails fast.
    options.page_size = 3;
    options.history_page_size = 5;
    options.retry.max_retries = 2;
    options
}

fn query(auto_join: bool) -> ExpectedQuery {
    ExpectedQuery {
        fetch_last_n_days: 0,
        auto_join_channels: auto_join,
        sync_users: true,
        now: Some(NOW),
        ..ExpectedQuery::default()
    }
}

fn sync_options(index: &str, max_deletion_ratio: f64) -> SyncOptions {
    SyncOptions {
        bulk: BulkConfig {
            retry_interval: 0.005,
            display_every: 50_000,
            ..BulkConfig::default()
        },
        max_deletion_ratio,
        ..SyncOptions::new(index, JobKind::Full)
    }
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

/// The bot leaves the first `count` readable channels (`auto_join` as the sync runs).
fn leave_channels(sim: &SimHandle, auto_join: bool, count: usize) {
    let leave: Vec<Mutation> = sim
        .expected(&query(auto_join))
        .docs
        .iter()
        .filter_map(|d| match d {
            slack_sim::ExpectedDoc::Channel { id, .. } => Some(Mutation::SetMembership {
                channel: id.clone(),
                member: false,
                user: None,
            }),
            _ => None,
        })
        .take(count)
        .collect();
    assert!(!leave.is_empty(), "no channel to leave");
    sim.mutate(leave).expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_shape_of_every_method_fails_or_completes_and_keeps_the_index() {
    let sim = start(tiny());
    let es = common::osmem_es();
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
    // A content sync's methods (access-control syncs' `conversations.members` and
    // `users.info` are not called by it).
    let content_methods = SLACK_METHODS
        .into_iter()
        .filter(|m| !matches!(*m, "conversations.members" | "users.info"));
    for method in content_methods {
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
                // The first sync joined them all: leave one so that the sync joins it.
                leave_channels(&sim, true, 1);
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
                // The first sync joined them all: leave one so that the sync joins it.
                leave_channels(&sim, true, 1);
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
    let es = common::osmem_es();
    let index = osmem::unique_name("lost-channels");
    full_sync(&es, &sim, false, &index, DEFAULT_MAX_DELETION_RATIO)
        .await
        .expect("the good first sync");
    let before = expected_ids(&sim, false);
    assert_eq!(index_ids(&es, &index).await, before);

    // The bot is removed from every channel: Slack answers well, but only users remain.
    leave_channels(&sim, false, usize::MAX);
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
