//! Document-level security end to end (issue 18), against the simulator and the local test
//! Elasticsearch (osmem-server): a content sync and an access-control sync of a workspace
//! with private channels, DMs, group DMs, guests, deactivated users and Slack Connect
//! members; then every user's DLS query, rendered from their identity document as
//! Elasticsearch renders the role descriptor's template, run against the content index.

mod common;

use common::{slack_options, start};
use connectors::config::BulkConfig;
use connectors::es::EsClient;
use connectors::sources::access_control::{access_control_index, render_query};
use connectors::sources::slack::{default_configuration, SlackOptions, SlackSource};
use connectors::sources::SourceError;
use connectors::sync::{JobKind, SyncError, SyncOptions, SyncOutcome};
use serde_json::{json, Value};
use slack_sim::{
    DataSize, ExpectedDoc, ExpectedQuery, ExpectedSet, FaultAction, FaultRule, SimHandle,
    WorkspaceSpec,
};
use std::collections::BTreeSet;

/// Everything on: private channels, DMs and group DMs, with DLS.
fn dls_options(sim: &SimHandle) -> SlackOptions {
    let mut options = slack_options(sim, 0, true, true);
    options.use_document_level_security = true;
    options.include_private_channels = true;
    options.include_direct_messages = true;
    options
}

fn dls_query() -> ExpectedQuery {
    ExpectedQuery {
        fetch_last_n_days: 0,
        auto_join_channels: true,
        sync_users: true,
        now: Some(common::NOW),
        use_document_level_security: true,
        include_private_channels: true,
        include_direct_messages: true,
        ..ExpectedQuery::default()
    }
}

fn sync_options(index: &str, kind: JobKind, dls: bool) -> SyncOptions {
    SyncOptions {
        bulk: BulkConfig {
            retry_interval: 0.005,
            max_retries: 3,
            ..BulkConfig::default()
        },
        require_access_control: dls,
        ..SyncOptions::new(index, kind)
    }
}

async fn sync(
    es: &EsClient,
    source: &SlackSource,
    index: &str,
    kind: JobKind,
    dls: bool,
) -> SyncOutcome {
    common::sync_once(es, source, sync_options(index, kind, dls))
        .await
        .unwrap_or_else(|e| panic!("{kind} sync of {index}: {e}"))
}

/// The ids of the documents `query` finds in `index`.
async fn ids(es: &EsClient, index: &str, query: Value) -> BTreeSet<String> {
    let answer = es
        .search(
            index,
            json!({"query": query, "size": 10_000, "_source": false}),
        )
        .await
        .expect("search");
    answer["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["_id"].as_str().expect("_id").to_string())
        .collect()
}

/// The ids of the expected documents readable with `identities`.
fn readable(expected: &ExpectedSet, identities: &[String]) -> BTreeSet<String> {
    expected
        .docs
        .iter()
        .filter(|doc| {
            doc.allow_access_control()
                .expect("every document is protected")
                .iter()
                .any(|reader| identities.contains(reader))
        })
        .map(|doc| doc.id().to_string())
        .collect()
}

fn channel_ids(expected: &ExpectedSet, public: bool) -> BTreeSet<String> {
    expected
        .docs
        .iter()
        .filter_map(|doc| match doc {
            ExpectedDoc::Channel {
                id,
                allow_access_control: Some(readers),
                ..
            } if readers.iter().any(|r| r.starts_with("team:")) == public => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// A content sync of `sim` with DLS into a fresh index, then an access-control sync: the
/// client, the content index, the access-control index and the access-control outcome.
async fn synced(sim: &SimHandle, prefix: &str) -> (EsClient, String, String, SyncOutcome) {
    let es = common::osmem_es();
    let index = osmem::unique_name(prefix);
    let acl_index = access_control_index(&index);
    let source = SlackSource::new(dls_options(sim)).expect("source");
    let content = sync(&es, &source, &index, JobKind::Full, true).await;
    assert_eq!(content.stats.failed_document_count, 0);
    let source = SlackSource::new(dls_options(sim)).expect("source");
    let acl = sync(&es, &source, &acl_index, JobKind::AccessControl, true).await;
    assert_eq!(acl.stats.failed_document_count, 0);
    es.refresh(&index).await.expect("refresh");
    es.refresh(&acl_index).await.expect("refresh");
    (es, index, acl_index, acl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_users_query_finds_exactly_the_conversations_they_may_read() {
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    let (es, index, acl_index, _) = synced(&sim, "dls-content").await;
    // After the syncs: the bot is then a member of the channels it joined.
    let expected = sim.expected(&dls_query());

    // The index holds exactly the expected documents, each protected.
    let all = ids(&es, &index, json!({"match_all": {}})).await;
    let want: BTreeSet<String> = expected.docs.iter().map(|d| d.id().to_string()).collect();
    assert_eq!(all, want, "content index");
    let unprotected = ids(
        &es,
        &index,
        json!({"bool": {"must_not": {"exists": {"field": "_allow_access_control"}}}}),
    )
    .await;
    assert!(unprotected.is_empty(), "unprotected: {unprotected:?}");

    let public = channel_ids(&expected, true);
    let private = channel_ids(&expected, false);
    assert!(!public.is_empty() && !private.is_empty(), "{expected:?}");
    assert!(!expected.identities.is_empty());
    let stored = ids(&es, &acl_index, json!({"match_all": {}})).await;
    let want: BTreeSet<String> = expected.identities.iter().map(|i| i.id.clone()).collect();
    assert_eq!(stored, want, "identity documents");

    let mut seen = BTreeSet::new();
    for identity in &expected.identities {
        let doc = es
            .get_doc(&acl_index, &identity.id)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("no identity document {}", identity.id));
        let source = &doc["_source"];
        let params: Vec<String> =
            serde_json::from_value(source["query"]["template"]["params"]["access_control"].clone())
                .expect("params.access_control");
        let mut sorted = params.clone();
        sorted.sort();
        assert_eq!(sorted, identity.access_control, "{}", identity.id);
        let found = ids(&es, &index, render_query(&params)).await;
        assert_eq!(
            found,
            readable(&expected, &params),
            "{} ({})",
            identity.id,
            identity.status
        );
        let channels: BTreeSet<String> = found
            .iter()
            .filter(|id| public.contains(*id) || private.contains(*id))
            .cloned()
            .collect();
        let member_of: BTreeSet<String> = params
            .iter()
            .filter_map(|p| p.strip_prefix("channel:"))
            .map(str::to_string)
            .collect();
        match identity.status.as_str() {
            "deactivated" => assert!(found.is_empty(), "{}: {found:?}", identity.id),
            "member" => assert!(
                public.is_subset(&channels),
                "a full member reads every public channel: {}",
                identity.id
            ),
            "guest" | "external" => assert_eq!(
                channels, member_of,
                "{} reads only their own conversations",
                identity.id
            ),
            other => panic!("status {other}"),
        }
        seen.insert(identity.status.clone());
    }
    for status in ["member", "guest", "deactivated", "external"] {
        assert!(seen.contains(status), "no {status} user in the workspace");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_conversations_without_dls_fail_validation_and_index_nothing_private() {
    // The connector's configuration: each private option without DLS is refused, naming
    // the fix.
    for key in ["include_private_channels", "include_direct_messages"] {
        let mut configuration = default_configuration();
        configuration.get_mut("token").expect("token").value = json!(common::TOKEN);
        configuration.get_mut(key).expect(key).value = json!(true);
        let error = SlackOptions::from_configuration(&configuration).unwrap_err();
        assert!(matches!(error, SourceError::Configuration(_)), "{error:?}");
        let text = error.to_string();
        assert!(text.contains(key), "{text}");
        assert!(text.contains("use_document_level_security"), "{text}");
        configuration
            .get_mut("use_document_level_security")
            .expect("dls")
            .value = json!(true);
        assert!(SlackOptions::from_configuration(&configuration).is_ok());
    }
    // Options built in code are refused too.
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    let mut unsafe_options = dls_options(&sim);
    unsafe_options.use_document_level_security = false;
    let error = SlackSource::new(unsafe_options).unwrap_err();
    assert!(matches!(error, SourceError::Configuration(_)), "{error:?}");

    // A sync without DLS writes no document of a private conversation, though the bot is
    // in some, and no document carries readers.
    let private = channel_ids(&sim.expected(&dls_query()), false);
    assert!(!private.is_empty());
    let es = common::osmem_es();
    let index = osmem::unique_name("dls-off");
    let source = SlackSource::new(slack_options(&sim, 0, true, true)).expect("source");
    sync(&es, &source, &index, JobKind::Full, false).await;
    es.refresh(&index).await.expect("refresh");
    let all = ids(&es, &index, json!({"match_all": {}})).await;
    let public = sim.expected(&ExpectedQuery {
        use_document_level_security: false,
        include_private_channels: false,
        include_direct_messages: false,
        ..dls_query()
    });
    let want: BTreeSet<String> = public.docs.iter().map(|d| d.id().to_string()).collect();
    assert_eq!(all, want);
    let leaked: Vec<&String> = all
        .iter()
        .filter(|id| {
            private
                .iter()
                .any(|c| *id == c || id.starts_with(&format!("{c}-")))
        })
        .collect();
    assert!(leaked.is_empty(), "private documents indexed: {leaked:?}");
    let protected = ids(
        &es,
        &index,
        json!({"exists": {"field": "_allow_access_control"}}),
    )
    .await;
    assert!(protected.is_empty(), "{protected:?}");
}

/// Every content document's source, by id.
async fn sources(es: &EsClient, index: &str) -> Vec<Value> {
    es.refresh(index).await.expect("refresh");
    let answer = es
        .search(
            index,
            json!({"query": {"match_all": {}}, "size": 10_000, "sort": [{"_id": "asc"}]}),
        )
        .await
        .expect("search");
    answer["hits"]["hits"].as_array().expect("hits").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaving_is_one_identity_rewrite_and_no_message_rewrite() {
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    let (es, index, acl_index, first) = synced(&sim, "dls-leave").await;
    let source = || SlackSource::new(dls_options(&sim)).expect("source");
    let before = sim.expected(&dls_query());
    let users = before.identities.len() as u64;
    assert_eq!(first.stats.indexed_document_count, users);
    let content = sources(&es, &index).await;

    // Nothing changed: nothing is rewritten, nothing deleted.
    let again = sync(&es, &source(), &acl_index, JobKind::AccessControl, true).await;
    assert_eq!(again.stats.indexed_document_count, 0, "{:?}", again.stats);
    assert_eq!(again.stats.docs_unchanged, users, "{:?}", again.stats);
    assert_eq!(again.stats.deleted_document_count, 0, "{:?}", again.stats);

    // A full member (not the app's bot: without it the channel is not read at all) leaves a
    // private channel; a Slack Connect member leaves every conversation of ours (then Slack
    // no longer shows them to us).
    let bot = sim.workspace().bot_user_id;
    let member = before
        .identities
        .iter()
        .find(|i| {
            i.status == "member"
                && i.user_id != bot
                && i.access_control.iter().any(|a| a.starts_with("channel:G"))
        })
        .expect("a member of a private channel");
    let left = member
        .access_control
        .iter()
        .find_map(|a| a.strip_prefix("channel:G"))
        .map(|rest| format!("G{rest}"))
        .expect("private channel");
    let external = before
        .identities
        .iter()
        .find(|i| i.status == "external")
        .expect("a Slack Connect member");
    let mut ops = vec![slack_sim::Mutation::SetMembership {
        channel: left.clone(),
        member: false,
        user: Some(member.user_id.clone()),
    }];
    for channel in external
        .access_control
        .iter()
        .filter_map(|a| a.strip_prefix("channel:"))
    {
        ops.push(slack_sim::Mutation::SetMembership {
            channel: channel.to_string(),
            member: false,
            user: Some(external.user_id.clone()),
        });
    }
    sim.mutate(ops).expect("mutations");
    let after = sim.expected(&dls_query());
    // The identity sweep goes through the mass-deletion guard: one of 32 is too many at 1%,
    // and then nothing is deleted.
    let strict = SyncOptions {
        max_deletion_ratio: 0.01,
        ..sync_options(&acl_index, JobKind::AccessControl, true)
    };
    let refused = common::sync_once(&es, &source(), strict).await.unwrap_err();
    assert!(
        matches!(refused, SyncError::DeletionRefused(_)),
        "{refused:?}"
    );
    es.refresh(&acl_index).await.expect("refresh");
    assert!(es
        .get_doc(&acl_index, &external.id)
        .await
        .expect("get")
        .is_some());
    let third = sync(&es, &source(), &acl_index, JobKind::AccessControl, true).await;
    // The refused sync already rewrote the member's document (writes are not deletions).
    assert_eq!(third.stats.indexed_document_count, 0, "{:?}", third.stats);
    assert_eq!(third.stats.docs_unchanged, users - 1, "{:?}", third.stats);
    assert_eq!(third.stats.deleted_document_count, 1, "{:?}", third.stats);
    es.refresh(&acl_index).await.expect("refresh");
    let stored = ids(&es, &acl_index, json!({"match_all": {}})).await;
    let want: BTreeSet<String> = after.identities.iter().map(|i| i.id.clone()).collect();
    assert_eq!(stored, want);
    assert!(!stored.contains(&external.id), "{} left", external.id);
    let doc = es
        .get_doc(&acl_index, &member.id)
        .await
        .expect("get")
        .expect("the member's identity document");
    let params = &doc["_source"]["query"]["template"]["params"]["access_control"];
    assert!(
        !params
            .as_array()
            .expect("identities")
            .contains(&json!(format!("channel:{left}"))),
        "{params}"
    );
    // The content index is untouched: membership lives in the identity documents.
    assert_eq!(sources(&es, &index).await, content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_member_list_or_user_fails_the_access_control_sync_and_keeps_every_identity() {
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    let (es, _, acl_index, _) = synced(&sim, "dls-malformed").await;
    let before = sources(&es, &acl_index).await;
    assert!(!before.is_empty());
    for (method, fault) in [
        (
            "conversations.members",
            FaultAction::MissingField { field: None },
        ),
        (
            "conversations.members",
            FaultAction::WrongType { field: None },
        ),
        ("users.info", FaultAction::MissingField { field: None }),
        ("users.list", FaultAction::NullField { field: None }),
    ] {
        let label = format!("{method} {fault:?}");
        sim.set_faults(vec![FaultRule {
            method: method.into(),
            channel: None,
            after: 0,
            times: None,
            action: fault,
        }]);
        let source = SlackSource::new(dls_options(&sim)).expect("source");
        let result = common::sync_once(
            &es,
            &source,
            sync_options(&acl_index, JobKind::AccessControl, true),
        )
        .await;
        sim.set_faults(Vec::new());
        let error = result.expect_err(&label);
        assert!(matches!(error, SyncError::Source(_)), "{label}: {error:?}");
        assert!(error.to_string().contains(method), "{label}: {error}");
        assert_eq!(sources(&es, &acl_index).await, before, "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_sync_with_dls_protects_what_it_writes() {
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    let es = common::osmem_es();
    let index = osmem::unique_name("dls-incremental");
    let source = SlackSource::new(dls_options(&sim)).expect("source");
    let full = sync(&es, &source, &index, JobKind::Full, true).await;
    let private = channel_ids(&sim.expected(&dls_query()), false);
    let channel = private
        .iter()
        .find(|c| c.starts_with('G'))
        .expect("a private channel")
        .clone();
    sim.mutate(vec![slack_sim::Mutation::AddMessage {
        channel: channel.clone(),
        user: None,
        text: "news in a private channel".into(),
        thread_ts: None,
        broadcast: false,
    }])
    .expect("mutation");
    let source = SlackSource::new(dls_options(&sim)).expect("source");
    let options = SyncOptions {
        sync_cursor: full.sync_cursor.clone(),
        ..sync_options(&index, JobKind::Incremental, true)
    };
    let incremental = common::sync_once(&es, &source, options)
        .await
        .expect("incremental sync");
    assert!(incremental.stats.indexed_document_count > 0);
    es.refresh(&index).await.expect("refresh");
    let unprotected = ids(
        &es,
        &index,
        json!({"bool": {"must_not": {"exists": {"field": "_allow_access_control"}}}}),
    )
    .await;
    assert!(unprotected.is_empty(), "{unprotected:?}");
    let expected = sim.expected(&dls_query());
    let want: BTreeSet<String> = expected.docs.iter().map(|d| d.id().to_string()).collect();
    assert_eq!(ids(&es, &index, json!({"match_all": {}})).await, want);
    // The new message is readable by the channel's members only.
    let readers = ids(&es, &index, render_query(&[format!("channel:{channel}")])).await;
    assert!(readers
        .iter()
        .any(|id| id.starts_with(&format!("{channel}-"))));
    // The workspace's identity alone (every full member has it) does not read it.
    let team = format!("team:{}", sim.workspace().team_id);
    let outsider = ids(&es, &index, render_query(&[team])).await;
    assert!(!outsider.is_empty());
    assert!(!outsider
        .iter()
        .any(|id| id.starts_with(&format!("{channel}-"))));
}
