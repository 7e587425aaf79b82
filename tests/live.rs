//! Live updates over the HTTP Events API, end to end: the simulator's workspace fully synced
//! into osmem, then the simulator's mutations delivered only as signed events to the
//! service's listener (`/live/{connector_id}`), which verifies, queues and writes them.
//!
//! Checks: unsigned, wrongly signed, stale and replayed requests get 401 and write nothing;
//! a Slack retry of an applied event changes nothing; a burst of mutations (new messages,
//! replies, edits delivered out of order and twice, deletions, new users) ends with the
//! index equal to the simulator's expected set; events lost in a burst are caught up by an
//! incremental sync.

mod common;

use common::{member_channel, osmem_es, slack_options, start, sync_once};
use connectors::config::Secret;
use connectors::es::EsClient;
use connectors::http::{serve_with, Health};
use connectors::live::receive::{Endpoint, Receivers};
use connectors::live::writer::{self, WriterOptions};
use connectors::retry::RetryParams;
use connectors::sources::slack::events::SlackReceiver;
use connectors::sources::slack::socket::SocketOptions;
use connectors::sources::slack::{live, SlackSource};
use connectors::sync::{JobKind, SyncOptions};
use serde_json::{json, Value};
use slack_sim::events::{deliver, Delivery};
use slack_sim::{DataSize, ExpectedDoc, ExpectedQuery, Mutation, SimHandle, WorkspaceSpec};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "sim-signing-secret";
const CONNECTOR: &str = "live-connector";

struct Live {
    sim: SimHandle,
    es: EsClient,
    index: String,
    url: String,
    cancel: CancellationToken,
    client: reqwest::Client,
    cursor: Option<Value>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn signed() -> Delivery {
    Delivery {
        secret: Some(SECRET.into()),
        timestamp: now(),
        retry: None,
    }
}

/// How the test's events reach the connector.
enum Transport {
    /// Signed deliveries to the service's listener.
    Http,
    /// Socket Mode; a connection lost this long is a gap.
    Socket(Duration),
}

/// A fully synced small workspace and a live endpoint over it, over HTTP.
async fn setup(name: &str) -> Live {
    setup_with(name, Transport::Http).await.0
}

/// [`setup`] for either transport; also the connector's endpoint.
async fn setup_with(name: &str, transport: Transport) -> (Live, Arc<Endpoint>) {
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    let es = osmem_es();
    let index = format!("live-{name}-{}", std::process::id());
    let _ = es.delete_index(&index).await;
    let options = slack_options(&sim, 0, false, true);
    let source = SlackSource::new(options.clone()).unwrap();
    let outcome = sync_once(&es, &source, SyncOptions::new(&index, JobKind::Full))
        .await
        .expect("full sync");
    let cancel = CancellationToken::new();
    let api_url = options.base_url.clone();
    let context = live::context(options, &cancel).await.expect("context");
    let receiver = Arc::new(match transport {
        Transport::Http => SlackReceiver::new(Secret::new(SECRET), context),
        Transport::Socket(gap_after) => SlackReceiver::socket_mode(
            SocketOptions {
                gap_after,
                reconnect: RetryParams::exponential(
                    Duration::from_millis(50),
                    Duration::from_millis(500),
                    u32::MAX,
                ),
                ..SocketOptions::new(
                    &api_url,
                    Secret::new(slack_sim::socket::DEFAULT_APP_TOKEN),
                    RetryParams::for_test(),
                )
            },
            context,
        ),
    });
    let options = WriterOptions {
        connector_id: CONNECTOR.into(),
        index: index.clone(),
        pipeline: Default::default(),
        filtering: Value::Null,
        require_access_control: false,
        flush: Duration::from_millis(200),
    };
    let receivers = Receivers::default();
    let endpoint = writer::spawn(es.clone(), options, receiver, cancel.clone());
    receivers.insert(CONNECTOR, endpoint.clone());
    endpoint.receiver.start(endpoint.clone(), cancel.clone());
    let addr = serve_with(
        "127.0.0.1:0",
        Arc::new(Health::default()),
        receivers,
        cancel.clone(),
    )
    .await
    .unwrap();
    let live = Live {
        sim,
        es,
        index,
        url: format!("http://{addr}/live/{CONNECTOR}"),
        cancel,
        client: reqwest::Client::new(),
        cursor: outcome.sync_cursor,
    };
    (live, endpoint)
}

impl Live {
    async fn send(&self, body: &Value, how: &Delivery) -> u16 {
        deliver(&self.client, &self.url, body.to_string().as_bytes(), how)
            .await
            .unwrap()
    }

    async fn doc(&self, id: &str) -> Option<Value> {
        self.es.get_doc(&self.index, id).await.unwrap()
    }

    /// Waits (bounded, for a loaded machine) until document `id` satisfies `done`.
    async fn doc_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = None;
        for _ in 0..100 {
            last = self.doc(id).await;
            if last.as_ref().is_some_and(&done) {
                return last.unwrap_or_default();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{id} never got there: {last:?}");
    }

    /// `(id → _source)` of every document.
    async fn docs(&self) -> BTreeMap<String, Value> {
        self.es.refresh(&self.index).await.unwrap();
        let answer = self
            .es
            .search(
                &self.index,
                json!({"size": 10000, "query": {"match_all": {}}}),
            )
            .await
            .unwrap();
        answer["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone()))
            .collect()
    }

    /// Differences between the index and the simulator's expected set (empty: equal), on
    /// the fields the ftest verifies.
    async fn differences(&self) -> Vec<String> {
        let expected = self.sim.expected(&ExpectedQuery {
            fetch_last_n_days: 0,
            sync_users: true,
            ..ExpectedQuery::default()
        });
        let actual = self.docs().await;
        let mut out = Vec::new();
        for doc in &expected.docs {
            let Some(got) = actual.get(doc.id()) else {
                out.push(format!("missing {}", doc.id()));
                continue;
            };
            let fields: Vec<(&str, Value)> = match doc {
                ExpectedDoc::User { name, .. } => vec![("name", json!(name))],
                ExpectedDoc::Channel { name, .. } => vec![("name", json!(name))],
                ExpectedDoc::Message {
                    channel,
                    ts,
                    thread_ts,
                    reply_count,
                    edited_ts,
                    ..
                } => vec![
                    ("channel", json!(channel)),
                    ("ts", json!(ts)),
                    ("thread_ts", json!(thread_ts)),
                    ("reply_count", json!(reply_count)),
                    ("edited_ts", json!(edited_ts)),
                ],
                // Workspace documents (issue 19) are off in this query.
                ExpectedDoc::Team { .. }
                | ExpectedDoc::Usergroup { .. }
                | ExpectedDoc::ChannelMember { .. }
                | ExpectedDoc::File { .. }
                | ExpectedDoc::RemoteFile { .. } => Vec::new(),
            };
            for (field, want) in fields {
                let have = got.get(field).cloned().unwrap_or(Value::Null);
                let same = match (&have, &want) {
                    (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                    _ => have == want,
                };
                if !same {
                    out.push(format!("{}.{field}: {have} != {want}", doc.id()));
                }
            }
        }
        for id in actual.keys() {
            if !expected.docs.iter().any(|d| d.id() == id) {
                out.push(format!("unexpected {id}"));
            }
        }
        out
    }

    /// Waits (bounded) until the index equals the expected set; the last differences.
    async fn settle(&self) -> Vec<String> {
        let mut diff = Vec::new();
        for _ in 0..50 {
            diff = self.differences().await;
            if diff.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        diff
    }

    /// What the live manager does on a gap: an incremental sync from the full sync's cursor.
    async fn catch_up(&self) {
        let source = SlackSource::new(slack_options(&self.sim, 0, false, true)).unwrap();
        let mut options = SyncOptions::new(&self.index, JobKind::Incremental);
        options.sync_cursor = self.cursor.clone();
        sync_once(&self.es, &source, options)
            .await
            .expect("catch-up sync");
    }

    async fn top_messages(&self, channel: &str) -> Vec<String> {
        let docs = self.docs().await;
        let mut ts: Vec<String> = docs
            .values()
            .filter(|d| d["channel_id"] == channel && d["thread_ts"].is_null())
            .map(|d| d["ts"].as_str().unwrap().to_string())
            .collect();
        ts.sort();
        ts
    }
}

/// A burst of mutations in a member channel (a new thread and its replies, one reply
/// deleted again, edit pairs whose events go newest first, a deletion, a new user): their
/// event bodies in delivery order.
async fn burst(live: &Live) -> Vec<Value> {
    let (channel, _) = member_channel(&live.sim).await;
    let existing = live.top_messages(&channel).await;
    let mut bodies = live
        .sim
        .mutate_with_events(vec![Mutation::AddMessage {
            channel: channel.clone(),
            user: None,
            text: "parent".into(),
            thread_ts: None,
            broadcast: false,
        }])
        .unwrap();
    let parent = bodies[0][0]["event"]["ts"].as_str().unwrap().to_string();
    let mut mutations = Vec::new();
    for i in 0..3 {
        mutations.push(Mutation::AddReply {
            channel: channel.clone(),
            thread_ts: parent.clone(),
            user: None,
            text: format!("reply {i}"),
            broadcast: i == 1,
        });
    }
    for (i, ts) in existing.iter().rev().take(3).enumerate() {
        mutations.push(Mutation::EditMessage {
            channel: channel.clone(),
            ts: ts.clone(),
            text: format!("first edit {i}"),
        });
        mutations.push(Mutation::EditMessage {
            channel: channel.clone(),
            ts: ts.clone(),
            text: format!("second edit {i}"),
        });
    }
    mutations.push(Mutation::DeleteMessage {
        channel: channel.clone(),
        ts: existing[0].clone(),
    });
    mutations.push(Mutation::AddUser {
        name: "newcomer".into(),
        real_name: None,
        is_bot: false,
    });
    bodies.extend(live.sim.mutate_with_events(mutations).unwrap());
    // The first reply's event, then delete that reply (its parent's count goes down again).
    let first_reply = bodies[1][0]["event"]["ts"].as_str().unwrap().to_string();
    bodies.extend(
        live.sim
            .mutate_with_events(vec![Mutation::DeleteMessage {
                channel: channel.clone(),
                ts: first_reply,
            }])
            .unwrap(),
    );
    let mut flat: Vec<Value> = bodies.into_iter().flatten().collect();
    // Out of order: every second edit goes before its first edit.
    for pair in [(4, 5), (6, 7), (8, 9)] {
        flat.swap(pair.0, pair.1);
    }
    flat
}

/// The writer flushed whatever it had (it flushes 200 ms after the first event here).
async fn flushed() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_deliveries_get_401_and_write_nothing() {
    let live = setup("reject").await;
    let (channel, _) = member_channel(&live.sim).await;
    let ts = live.top_messages(&channel).await.pop().expect("a message");
    let id = format!("{channel}-{ts}");
    let before = live.doc(&id).await.expect("indexed");
    let bodies = live
        .sim
        .mutate_with_events(vec![Mutation::EditMessage {
            channel: channel.clone(),
            ts: ts.clone(),
            text: "edited live".into(),
        }])
        .unwrap();
    let body = &bodies[0][0];

    let unsigned = Delivery {
        secret: None,
        ..signed()
    };
    let wrong = Delivery {
        secret: Some("not-the-secret".into()),
        ..signed()
    };
    let stale = Delivery {
        timestamp: now() - 301,
        ..signed()
    };
    for (what, how) in [
        ("unsigned", &unsigned),
        ("wrong secret", &wrong),
        ("stale", &stale),
    ] {
        assert_eq!(live.send(body, how).await, 401, "{what}");
    }
    // A tampered body under a valid signature of another body.
    let tampered = json!({"type": "url_verification", "challenge": "x"});
    let status = live
        .client
        .post(&live.url)
        .header("x-slack-request-timestamp", now().to_string())
        .header(
            "x-slack-signature",
            slack_sim::events::sign(SECRET, now(), body.to_string().as_bytes()),
        )
        .body(tampered.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    flushed().await;
    assert_eq!(
        live.doc(&id).await.unwrap(),
        before,
        "a rejected delivery wrote"
    );

    // Signed url verification answers the challenge; unsigned is refused.
    let challenge = json!({"token": "t", "type": "url_verification", "challenge": "ch4ll3nge"});
    assert_eq!(live.send(&challenge, &unsigned).await, 401);
    let reply = live
        .client
        .post(&live.url)
        .header("x-slack-request-timestamp", now().to_string())
        .header(
            "x-slack-signature",
            slack_sim::events::sign(SECRET, now(), challenge.to_string().as_bytes()),
        )
        .body(challenge.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.json::<Value>().await.unwrap()["challenge"],
        "ch4ll3nge"
    );

    // The real delivery applies; a replay of it is refused; Slack's retry changes nothing.
    assert_eq!(live.send(body, &signed()).await, 200);
    let applied = live
        .doc_until(&id, |d| d["_source"]["edited_ts"] != Value::Null)
        .await;
    assert_eq!(live.send(body, &signed()).await, 401, "replay");
    let retry = Delivery {
        retry: Some(1),
        ..signed()
    };
    assert_eq!(live.send(body, &retry).await, 200, "retry");
    flushed().await;
    let after = live.doc(&id).await.unwrap();
    assert_eq!(
        after["_seq_no"], applied["_seq_no"],
        "a retry rewrote the document"
    );
    assert_eq!(after["_source"], applied["_source"]);
    let metrics = writer::metrics();
    assert!(metrics.get(CONNECTOR, "rejected") >= 6);
    assert!(metrics.get(CONNECTOR, "duplicated") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_events_ends_equal_to_the_expected_set() {
    let live = setup("burst").await;
    assert_eq!(
        live.differences().await,
        Vec::<String>::new(),
        "after the full sync"
    );
    let flat = burst(&live).await;
    for body in &flat {
        assert_eq!(live.send(body, &signed()).await, 200);
        // Slack retried each one (the first answer was "too slow"): nothing changes.
        assert_eq!(
            live.send(
                body,
                &Delivery {
                    retry: Some(1),
                    ..signed()
                }
            )
            .await,
            200
        );
    }
    assert_eq!(
        live.settle().await,
        Vec::<String>::new(),
        "index != expected"
    );
    let metrics = writer::metrics();
    assert!(
        metrics.get(CONNECTOR, "stale") >= 3,
        "out-of-order edits counted stale"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_lost_in_a_burst_are_caught_up_by_an_incremental_sync() {
    let live = setup("gap").await;
    let (channel, _) = member_channel(&live.sim).await;
    let mutations: Vec<Mutation> = (0..10)
        .map(|i| Mutation::AddMessage {
            channel: channel.clone(),
            user: None,
            text: format!("burst {i}"),
            thread_ts: None,
            broadcast: false,
        })
        .collect();
    let bodies = live.sim.mutate_with_events(mutations).unwrap();
    // The connection drops halfway: the second half never arrives.
    for body in bodies.iter().take(5).flatten() {
        assert_eq!(live.send(body, &signed()).await, 200);
    }
    flushed().await;
    assert_eq!(live.differences().await.len(), 5, "five messages missing");
    live.catch_up().await;
    assert_eq!(live.settle().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_joining_a_channel_asks_for_a_catch_up_sync() {
    let (live, endpoint) = setup_with("join", Transport::Http).await;
    let bot = live.sim.workspace().bot_user_id;
    let join = |id: &str, user: &str| {
        json!({"type": "event_callback", "event_id": id, "event_time": now(),
            "event": {"type": "member_joined_channel", "user": user, "channel": "CJOINED1",
                "channel_type": "C"}})
    };
    // Someone else joining changes nothing.
    assert_eq!(live.send(&join("EvJoin1", "UOTHER1"), &signed()).await, 200);
    assert!(!endpoint.take_gap());
    // The app's bot user joining a channel the connector does not read: a catch-up sync
    // (which reads the channel in full) and a restart of the receiver.
    assert_eq!(live.send(&join("EvJoin2", &bot), &signed()).await, 200);
    assert!(endpoint.take_gap(), "catch-up requested");
    assert!(endpoint.take_refresh(), "receiver restart requested");
    flushed().await;
    assert_eq!(
        live.differences().await,
        Vec::<String>::new(),
        "nothing written"
    );
}

/// Waits (bounded) until `done` holds of the simulator's Socket Mode counters.
async fn socket_until(
    live: &Live,
    what: &str,
    done: impl Fn(&slack_sim::socket::SocketStats) -> bool,
) {
    for _ in 0..150 {
        if done(&live.sim.socket_stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {:?}", live.sim.socket_stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_acknowledges_every_envelope_and_duplicates_change_nothing() {
    let (live, _endpoint) = setup_with("socket", Transport::Socket(Duration::from_secs(60))).await;
    socket_until(&live, "connected", |s| s.open == 1).await;
    let flat = burst(&live).await;
    // Every event twice (Slack's at-least-once delivery), edit pairs newest first.
    live.sim.socket_deliver(&flat, true);
    assert_eq!(
        live.settle().await,
        Vec::<String>::new(),
        "index != expected"
    );
    let sent = 2 * flat.len() as u64;
    socket_until(&live, "every envelope acknowledged", |s| {
        s.acked == sent && s.pending == 0
    })
    .await;
    let stats = live.sim.socket_stats();
    assert_eq!(
        (
            stats.unknown_acks,
            stats.malformed,
            stats.late_acks,
            stats.redelivered
        ),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    let metrics = writer::metrics();
    assert!(metrics.get(CONNECTOR, "duplicated") >= flat.len() as u64);
    assert!(metrics.get(CONNECTOR, "stale") >= 3, "out-of-order edits");

    // The same events again, later: nothing is rewritten.
    let edited = flat
        .iter()
        .find(|b| b["event"]["subtype"] == "message_changed")
        .expect("an edit");
    let id = format!(
        "{}-{}",
        edited["event"]["channel"].as_str().unwrap(),
        edited["event"]["message"]["ts"].as_str().unwrap()
    );
    let before = live.doc(&id).await.expect("indexed");
    live.sim.socket_deliver(&flat, false);
    socket_until(&live, "the repeats acknowledged", |s| {
        s.acked == sent + flat.len() as u64
    })
    .await;
    flushed().await;
    assert_eq!(live.doc(&id).await.unwrap()["_seq_no"], before["_seq_no"]);
    assert_eq!(live.differences().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_survives_disconnects_and_a_drop_is_caught_up() {
    // Any lost connection is a gap here (the default waits 10 s).
    let (live, endpoint) = setup_with("socket-gap", Transport::Socket(Duration::ZERO)).await;
    socket_until(&live, "connected", |s| s.open == 1).await;
    let flat = burst(&live).await;
    let (first, second) = flat.split_at(flat.len() / 2);
    live.sim.socket_deliver(first, false);
    // Slack asks for a refresh mid-burst: the connector opens a second connection (a new
    // URL) and keeps the first until the second says hello.
    live.sim.socket_disconnect("refresh_requested");
    live.sim.socket_deliver(second, false);
    socket_until(&live, "replaced", |s| s.connections == 2 && s.open == 1).await;
    socket_until(&live, "all acknowledged", |s| s.pending == 0).await;
    assert_eq!(live.settle().await, Vec::<String>::new());
    assert!(!endpoint.take_gap(), "a replacement is no gap");
    assert!(writer::metrics().connection_count(CONNECTOR, "replaced") >= 1);

    // Then the socket drops, and what Slack sends meanwhile is lost.
    let (channel, _) = member_channel(&live.sim).await;
    let lost = live
        .sim
        .mutate_with_events(
            (0..5)
                .map(|i| Mutation::AddMessage {
                    channel: channel.clone(),
                    user: None,
                    text: format!("lost {i}"),
                    thread_ts: None,
                    broadcast: false,
                })
                .collect(),
        )
        .unwrap();
    live.sim.socket_refuse(true);
    live.sim.socket_lose_while_down(true);
    live.sim.socket_drop();
    live.sim
        .socket_deliver(&lost.into_iter().flatten().collect::<Vec<_>>(), false);
    live.sim.socket_lose_while_down(false);
    socket_until(&live, "a reconnection refused", |s| s.refused >= 1).await;
    live.sim.socket_refuse(false);
    socket_until(&live, "reconnected", |s| s.connections == 3 && s.open == 1).await;
    flushed().await;
    assert_eq!(live.differences().await.len(), 5, "five messages missing");
    assert!(endpoint.take_gap(), "the drop is a gap");
    live.catch_up().await;
    assert_eq!(live.settle().await, Vec::<String>::new());
}
