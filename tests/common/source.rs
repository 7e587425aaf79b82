//! The one test data source: numbered Slack-like documents (or a listed few), with the
//! failures the engine and runner tests need (an outage after N documents, parking until
//! cancelled, failing after the last document, a rejected token) and counters of what it
//! was asked to do. The sync-engine tests run it directly; the protocol tests build one per
//! job from a factory and steer it through the shared [`Knobs`].

use async_trait::async_trait;
use connectors::sources::{DataSource, DocOp, DocSender, SourceError};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a test can change while sources run (shared by every source a factory builds), and
/// what the sources report back.
#[derive(Debug, Default)]
pub struct Knobs {
    /// How many numbered documents a full sync yields (read when the sync starts).
    pub docs: AtomicUsize,
    /// Pause before each document, ms (read before each document).
    pub delay_ms: AtomicU64,
    /// Fail after the last document with a Slack-like fetch error.
    pub fail: AtomicBool,
    /// Full syncs started.
    pub syncs: AtomicUsize,
    /// Pings.
    pub pings: AtomicUsize,
    /// Report `{"progress": {"docs_sent": n}}` as the job's metadata (a long sync's progress).
    pub report_progress: AtomicBool,
    /// Numbered documents sent by the running sync.
    pub sent: AtomicUsize,
    /// The connector's `sync_cursor` the last source was handed before its job
    /// (`DataSource::load_cursor`).
    pub loaded_cursor: std::sync::Mutex<Option<Value>>,
}

/// The body of numbered document `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// A message: type, channel, author, text, `n` (plus `_timestamp` and the extra fields).
    #[default]
    Message,
    /// `n` and `_timestamp` only: osmem's ingest cost grows with the field count.
    Lean,
    /// `title` only (the protocol tests' documents).
    Title,
}

/// A source of numbered documents `{prefix}{i}` for `i` in `0..knobs.docs`.
#[derive(Clone)]
pub struct TestSource {
    /// Counts and failures shared with the test.
    pub knobs: Arc<Knobs>,
    /// Id prefix of the numbered documents.
    pub prefix: &'static str,
    /// Body of the numbered documents.
    pub shape: Shape,
    /// Whether message bodies carry `_timestamp`.
    pub with_timestamp: bool,
    /// Extra body fields for every message.
    pub extra: Map<String, Value>,
    /// Fields replaced in one document's body (by number).
    pub patched: HashMap<usize, Map<String, Value>>,
    /// Documents yielded as they are, before the numbered ones.
    pub listed: Vec<(String, Map<String, Value>)>,
    /// Numbers not yielded.
    pub skip: HashSet<usize>,
    /// Fail (a simulated outage) once this many documents were sent.
    pub fail_after: Option<usize>,
    /// Park until cancelled once this many documents were sent, notifying `parked`.
    pub park_after: Option<usize>,
    /// Notified when the source parks.
    pub parked: Arc<Notify>,
    /// The operations of an incremental sync.
    pub incremental: Vec<DocOp>,
    /// What `sync_cursor` returns.
    pub cursor: Option<Value>,
    /// The configured token: `bad` fails the ping as Slack's `invalid_auth` would.
    pub token: String,
}

impl Default for TestSource {
    fn default() -> Self {
        TestSource {
            knobs: Arc::default(),
            prefix: "M",
            shape: Shape::Message,
            with_timestamp: false,
            extra: Map::new(),
            patched: HashMap::new(),
            listed: Vec::new(),
            skip: HashSet::new(),
            fail_after: None,
            park_after: None,
            parked: Arc::default(),
            incremental: Vec::new(),
            cursor: None,
            token: String::new(),
        }
    }
}

impl TestSource {
    /// `count` messages `M{i}` with `_timestamp`.
    pub fn messages(count: usize) -> TestSource {
        let source = TestSource {
            with_timestamp: true,
            ..TestSource::default()
        };
        source.knobs.docs.store(count, Ordering::SeqCst);
        source
    }

    /// Only these documents.
    pub fn listed(docs: Vec<(String, Map<String, Value>)>) -> TestSource {
        TestSource {
            listed: docs,
            ..TestSource::default()
        }
    }

    /// The protocol tests' source: `doc-{i}` titled documents steered by `knobs`, with
    /// `{"docs": n}` as its cursor.
    pub fn titled(knobs: Arc<Knobs>, token: String) -> TestSource {
        let docs = knobs.docs.load(Ordering::SeqCst);
        TestSource {
            knobs,
            prefix: "doc-",
            shape: Shape::Title,
            cursor: Some(json!({ "docs": docs })),
            token,
            ..TestSource::default()
        }
    }

    /// The body of numbered document `i`.
    pub fn body(&self, i: usize) -> Map<String, Value> {
        let mut body = Map::new();
        match self.shape {
            Shape::Title => {
                body.insert("title".into(), json!(format!("document {i}")));
            }
            Shape::Lean => {
                body.insert("n".into(), json!(i));
                body.insert("_timestamp".into(), json!("2024-05-01T10:00:00+00:00"));
            }
            Shape::Message => {
                body.insert("type".into(), json!("message"));
                body.insert("channel".into(), json!(format!("C{:04}", i % 50)));
                body.insert("author".into(), json!(format!("U{:05}", i % 997)));
                body.insert(
                    "text".into(),
                    json!(format!(
                        "message number {i} about the deploy of service-{} in region eu-west",
                        i % 13
                    )),
                );
                body.insert("n".into(), json!(i));
                if self.with_timestamp {
                    body.insert("_timestamp".into(), json!("2024-05-01T10:00:00+00:00"));
                }
                for (k, v) in &self.extra {
                    body.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(fields) = self.patched.get(&i) {
            for (k, v) in fields {
                body.insert(k.clone(), v.clone());
            }
        }
        body
    }
}

#[async_trait]
impl DataSource for TestSource {
    async fn ping(&self) -> Result<(), SourceError> {
        self.knobs.pings.fetch_add(1, Ordering::SeqCst);
        if self.token == "bad" {
            return Err(SourceError::Auth(
                "'Authentication Token': slack rejected the token (invalid_auth)".into(),
            ));
        }
        Ok(())
    }

    async fn get_docs(
        &self,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        self.knobs.syncs.fetch_add(1, Ordering::SeqCst);
        for (id, body) in &self.listed {
            sink.index(id.clone(), body.clone()).await?;
        }
        let mut sent = 0;
        for i in 0..self.knobs.docs.load(Ordering::SeqCst) {
            if self.skip.contains(&i) {
                continue;
            }
            if self.fail_after == Some(sent) {
                return Err(SourceError::Fetch(
                    "conversations.history failed: simulated outage".into(),
                ));
            }
            if self.park_after == Some(sent) {
                self.parked.notify_one();
                cancel.cancelled().await;
                return Err(SourceError::Cancelled);
            }
            if cancel.is_cancelled() {
                return Err(SourceError::Cancelled);
            }
            let delay = self.knobs.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            sink.index(format!("{}{i}", self.prefix), self.body(i))
                .await?;
            sent += 1;
            self.knobs.sent.store(sent, Ordering::SeqCst);
        }
        if self.knobs.fail.load(Ordering::SeqCst) {
            return Err(SourceError::Fetch(
                "conversations.history failed: ratelimited".into(),
            ));
        }
        Ok(())
    }

    async fn get_docs_incrementally(
        &self,
        _cursor: Option<&Value>,
        sink: &DocSender,
        _cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        for op in &self.incremental {
            sink.send(op.clone()).await?;
        }
        Ok(())
    }

    fn sync_cursor(&self) -> Option<Value> {
        self.cursor.clone()
    }

    fn load_cursor(&self, cursor: &Value) {
        *self.knobs.loaded_cursor.lock().unwrap() = Some(cursor.clone());
    }

    fn metadata(&self) -> Value {
        if self.knobs.report_progress.load(Ordering::SeqCst) {
            json!({"progress": {"docs_sent": self.knobs.sent.load(Ordering::SeqCst)}})
        } else {
            Value::Object(Map::new())
        }
    }
}
