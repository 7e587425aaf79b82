//! Receiving live deliveries: the source-independent half of the HTTP endpoint.
//!
//! A source judges each request ([`LiveReceiver::judge`]: signature, freshness, shape);
//! [`Receivers::deliver`] then applies the rules every source shares, in this order:
//! 1. no live connector under that id: 404;
//! 2. the source rejects the request: 401, nothing queued;
//! 3. a handshake (url verification): its answer, nothing queued;
//! 4. an event id seen before ([`Seen`]): a sender's retry (the source says so) is a
//!    duplicate, answered 200 so the sender stops, and changes nothing; the same id without
//!    a retry mark is a replay: 401;
//! 5. otherwise the event is queued (never processed in the request: the answer must come
//!    within the sender's deadline) and answered 200; a full queue answers 503 and records a
//!    gap, which the service catches up with an incremental sync.
//!
//! Invariant: nothing is queued unless the request passed every check, and an event id is
//! remembered only once its event is queued.

use super::{LiveError, LiveOp};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long event ids are remembered, seconds: longer than the freshness window a source
/// enforces on request timestamps (Slack: 5 minutes), so a replay is refused either way.
pub const SEEN_SECS: i64 = 600;
/// At most this many remembered ids (the oldest go first).
pub const SEEN_CAPACITY: usize = 200_000;

/// What a source made of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// A handshake: answer this JSON, queue nothing.
    Reply(Value),
    /// An event to apply.
    Event(Event),
}

/// One accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The sender's unique id of the event (replays and retries carry the same).
    pub id: String,
    /// The sender marked this delivery as a retry of an earlier one.
    pub retry: bool,
    /// When the event happened upstream (epoch seconds), for the lag.
    pub time: Option<f64>,
    /// The event itself, for [`LiveReceiver::ops`].
    pub payload: Value,
}

/// A source's side of live updates.
pub trait LiveReceiver: Send + Sync {
    /// Judges an HTTP request (headers, raw body) at `now` (epoch seconds), without side
    /// effects. [`LiveError::Rejected`] for anything not provably from the upstream.
    fn judge(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Judged, LiveError>;

    /// The index changes an accepted event makes (none for events it does not index).
    fn ops(&self, event: &Value) -> Vec<LiveOp>;

    /// Whether an accepted event gives the connector something to read that no event will
    /// bring (Slack: the app added to a conversation whose history it has not read). The
    /// endpoint then asks for a catch-up sync and a restart of the receiver, so its context
    /// knows the conversation from then on. Pure; by default no event does.
    fn calls_for_catch_up(&self, _event: &Value) -> bool {
        false
    }

    /// Starts a transport the source drives itself (a connection it opens to the
    /// upstream, such as Slack's Socket Mode), handing events to [`Endpoint::accept`]
    /// until `cancel`. Returns whether it did; by default deliveries come to the HTTP
    /// listener instead.
    fn start(&self, _endpoint: Arc<Endpoint>, _cancel: CancellationToken) -> bool {
        false
    }
}

/// Remembered event ids, for replays and retries.
#[derive(Debug, Default)]
pub struct Seen {
    order: VecDeque<(i64, String)>,
    ids: HashSet<String>,
}

impl Seen {
    /// Whether `id` was remembered (after forgetting what is older than [`SEEN_SECS`]).
    pub fn contains(&mut self, id: &str, now: i64) -> bool {
        while let Some((at, _)) = self.order.front() {
            if now - *at <= SEEN_SECS && self.order.len() <= SEEN_CAPACITY {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.ids.contains(id)
    }

    /// Remembers `id` seen at `now`.
    pub fn insert(&mut self, id: String, now: i64) {
        if self.ids.insert(id.clone()) {
            self.order.push_back((now, id));
        }
    }
}

/// What is queued for a connector's writer.
#[derive(Debug)]
pub struct Queued {
    /// The event.
    pub event: Event,
}

/// One live connector: its source's receiver, its queue, its memory of event ids.
pub struct Endpoint {
    /// The source's judge and translator.
    pub receiver: Arc<dyn LiveReceiver>,
    queue: mpsc::Sender<Queued>,
    seen: Mutex<Seen>,
    gap: AtomicBool,
    refresh: AtomicBool,
    connector_id: String,
}

impl Endpoint {
    /// An endpoint queueing into `queue`.
    pub fn new(
        connector_id: &str,
        receiver: Arc<dyn LiveReceiver>,
        queue: mpsc::Sender<Queued>,
    ) -> Endpoint {
        Endpoint {
            receiver,
            queue,
            seen: Mutex::new(Seen::default()),
            gap: AtomicBool::new(false),
            refresh: AtomicBool::new(false),
            connector_id: connector_id.to_string(),
        }
    }

    /// Whether events were lost since the last call (a full queue), clearing the flag.
    pub fn take_gap(&self) -> bool {
        self.gap.swap(false, Ordering::Relaxed)
    }

    /// The connector whose events this endpoint receives.
    pub fn connector_id(&self) -> &str {
        &self.connector_id
    }

    /// Records a gap (a transport lost its connection for too long, …).
    pub fn mark_gap(&self) {
        self.gap.store(true, Ordering::Relaxed);
    }

    /// Whether the receiver must be rebuilt (its context is out of date), clearing the flag.
    pub fn take_refresh(&self) -> bool {
        self.refresh.swap(false, Ordering::Relaxed)
    }

    /// Queues an accepted event unless its id was seen (see the module docs for the order
    /// of checks). Shared by every transport.
    pub fn accept(&self, event: Event, now: i64) -> Result<Outcome, LiveError> {
        let metrics = super::writer::metrics();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&event.id, now) {
            if event.retry {
                metrics.count(&self.connector_id, "duplicated");
                return Ok(Outcome::Duplicate);
            }
            metrics.count(&self.connector_id, "rejected");
            return Err(LiveError::Rejected(format!(
                "event {} was already delivered (replay)",
                event.id
            )));
        }
        let id = event.id.clone();
        let catch_up = self.receiver.calls_for_catch_up(&event.payload);
        match self.queue.try_send(Queued { event }) {
            Ok(()) => {
                seen.insert(id, now);
                metrics.count(&self.connector_id, "received");
                if catch_up {
                    // Read by a sync, known to the receiver once it restarts.
                    self.mark_gap();
                    self.refresh.store(true, Ordering::Relaxed);
                    metrics.count(&self.connector_id, "catch_up");
                }
                Ok(Outcome::Queued)
            }
            Err(_) => {
                self.mark_gap();
                metrics.count(&self.connector_id, "overflow");
                Err(LiveError::Overloaded)
            }
        }
    }
}

/// What happened to an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Queued for the writer.
    Queued,
    /// A retry of an event already queued: nothing to do.
    Duplicate,
}

/// The live connectors of this process, by connector id (what the HTTP listener routes to).
#[derive(Clone, Default)]
pub struct Receivers {
    endpoints: Arc<RwLock<HashMap<String, Arc<Endpoint>>>>,
}

impl std::fmt::Debug for Receivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.read().keys().cloned().collect();
        f.debug_tuple("Receivers").field(&ids).finish()
    }
}

impl Receivers {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Endpoint>>> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes `connector_id`'s deliveries to `endpoint` (replacing an earlier one).
    pub fn insert(&self, connector_id: &str, endpoint: Arc<Endpoint>) {
        self.endpoints
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(connector_id.to_string(), endpoint);
    }

    /// Stops routing `connector_id`.
    pub fn remove(&self, connector_id: &str) {
        self.endpoints
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(connector_id);
    }

    /// The endpoint of `connector_id`.
    pub fn get(&self, connector_id: &str) -> Option<Arc<Endpoint>> {
        self.read().get(connector_id).cloned()
    }

    /// Handles one HTTP delivery; returns the status and JSON body to answer.
    pub fn deliver(
        &self,
        connector_id: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> (StatusCode, Value) {
        let Some(endpoint) = self.get(connector_id) else {
            return (
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "no connector with live updates over http under this id"}),
            );
        };
        let result = match endpoint.receiver.judge(headers, body, now) {
            Ok(Judged::Reply(reply)) => Ok(reply),
            Ok(Judged::Event(event)) => endpoint
                .accept(event, now)
                .map(|_| serde_json::json!({"ok": true})),
            Err(error) => {
                if matches!(error, LiveError::Rejected(_)) {
                    super::writer::metrics().count(connector_id, "rejected");
                }
                Err(error)
            }
        };
        match result {
            Ok(reply) => (StatusCode::OK, reply),
            Err(error) => {
                let status = match &error {
                    LiveError::Rejected(_) => StatusCode::UNAUTHORIZED,
                    LiveError::Malformed(_) => StatusCode::BAD_REQUEST,
                    LiveError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
                };
                tracing::warn!(connector_id, %error, status = status.as_u16(), "live delivery refused");
                (status, serde_json::json!({"error": error.to_string()}))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Joins;

    impl LiveReceiver for Joins {
        fn judge(&self, _: &HeaderMap, _: &[u8], _: i64) -> Result<Judged, LiveError> {
            Err(LiveError::Rejected("not used".into()))
        }
        fn ops(&self, _: &Value) -> Vec<LiveOp> {
            Vec::new()
        }
        fn calls_for_catch_up(&self, event: &Value) -> bool {
            event["type"] == "joined"
        }
    }

    fn event(id: &str, kind: &str) -> Event {
        Event {
            id: id.into(),
            retry: false,
            time: None,
            payload: serde_json::json!({"type": kind}),
        }
    }

    #[test]
    fn an_event_calling_for_a_catch_up_asks_for_a_sync_and_a_restart_once() {
        let (tx, _rx) = mpsc::channel(4);
        let endpoint = Endpoint::new("c1", Arc::new(Joins), tx);
        endpoint.accept(event("e1", "message"), 0).unwrap();
        assert!(!endpoint.take_gap());
        assert!(!endpoint.take_refresh());
        endpoint.accept(event("e2", "joined"), 0).unwrap();
        assert!(endpoint.take_gap());
        assert!(endpoint.take_refresh());
        assert!(!endpoint.take_refresh(), "taken once");
    }

    #[test]
    fn seen_forgets_after_the_window() {
        let mut seen = Seen::default();
        assert!(!seen.contains("a", 0));
        seen.insert("a".into(), 0);
        assert!(seen.contains("a", SEEN_SECS));
        assert!(!seen.contains("a", SEEN_SECS + 1));
    }
}
