//! Helpers shared by the test files: a simulator with a pinned clock, Slack source options
//! pointing at it, a full fetch into memory, a log capture, and ([`source`]) the one test
//! data source.
#![allow(dead_code)]

pub mod source;

use connectors::config::{ElasticsearchConfig, Secret};
use connectors::es::EsClient;
use connectors::retry::RetryParams;
use connectors::sources::slack::SlackOptions;
use connectors::sources::{DataSource, DocOp, DocSender, SinkOp, SourceError};
use slack_sim::{SimConfig, SimHandle, WorkspaceSpec};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pinned clock: the same workspace on every run.
pub const NOW: i64 = 1_700_000_000;
/// The simulator's bot token.
pub const TOKEN: &str = "xoxb-sim-bot-token";

/// A simulator of `spec` at [`NOW`].
pub fn start(spec: WorkspaceSpec) -> SimHandle {
    SimHandle::start(SimConfig {
        spec,
        now: Some(NOW),
        ..SimConfig::default()
    })
    .expect("simulator starts")
}

/// Options against `sim`: the pinned clock, unpaced, fast retries; the rest as a
/// configuration would set them.
pub fn slack_options(
    sim: &SimHandle,
    days: u32,
    auto_join: bool,
    sync_users: bool,
) -> SlackOptions {
    let mut options = SlackOptions::new(Secret::new(TOKEN));
    options.base_url = sim.api_url();
    options.now = Some(NOW);
    options.fetch_last_n_days = days;
    options.auto_join_channels = auto_join;
    options.sync_users = sync_users;
    options.pace = false;
    options.request_timeout = Duration::from_secs(10);
    options.retry = RetryParams {
        max_throttled: 200,
        ..RetryParams::exponential(Duration::from_millis(1), Duration::from_millis(20), 10)
    };
    options
}

/// A client of the shared test Elasticsearch (osmem-server), with the tests' retry policy.
pub fn osmem_es() -> EsClient {
    EsClient::new(&ElasticsearchConfig {
        host: osmem::shared().url().to_string(),
        request_timeout: 60.0,
        ..ElasticsearchConfig::default()
    })
    .expect("client")
    .with_retry(RetryParams::for_test())
}

/// One sync of `source` with fresh stats and no cancellation.
pub async fn sync_once(
    es: &EsClient,
    source: &dyn connectors::sources::DataSource,
    options: connectors::sync::SyncOptions,
) -> Result<connectors::sync::SyncOutcome, connectors::sync::SyncError> {
    connectors::sync::run_sync(
        es,
        source,
        options,
        connectors::sync::SyncStats::new(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
}

/// Runs `source`'s full fetch to the end: its result and every document operation it sent,
/// in order (resume points are the engine's business; a full fetch never sends a sweep).
pub async fn fetch_all(source: &dyn DataSource) -> (Result<(), SourceError>, Vec<DocOp>) {
    let (tx, mut rx) = DocSender::channel(64);
    let cancel = CancellationToken::new();
    let fetch = async {
        let result = source.get_docs(&tx, &cancel).await;
        drop(tx);
        result
    };
    let collect = async {
        let mut ops = Vec::new();
        while let Some(op) = rx.recv().await {
            match op {
                SinkOp::Doc(op) => ops.push(op),
                SinkOp::Checkpoint { .. } => {}
                sweep @ SinkOp::Sweep(_) => panic!("a full fetch sent {sweep:?}"),
            }
        }
        ops
    };
    tokio::join!(fetch, collect)
}

/// A writer that appends to a shared buffer: lets tests read every log line.
#[derive(Clone, Default)]
pub struct CaptureWriter(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CaptureWriter {
    /// Everything written so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CaptureWriter {
    type Writer = CaptureWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A public, unarchived channel the simulator's bot is in: `(id, name)`.
pub async fn member_channel(sim: &SimHandle) -> (String, String) {
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/conversations.list", sim.api_url()))
        .query(&[("limit", "1000")])
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("conversations.list")
        .json()
        .await
        .expect("json");
    let channel = answer["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["is_member"] == true && c["is_archived"] == false)
        .expect("a channel the bot is in");
    (
        channel["id"].as_str().unwrap_or_default().to_string(),
        channel["name"].as_str().unwrap_or_default().to_string(),
    )
}
