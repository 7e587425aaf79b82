//! Socket Mode (issue 17): `apps.connections.open` and the WebSocket that delivers events.
//!
//! As Slack documents it: an app-level token (`xapp-…`) calls `apps.connections.open`
//! (a bot or user token is refused with `not_allowed_token_type`, an unknown one with
//! `invalid_auth`), which answers a single-use URL `ws://…/link/?ticket=…`; a second use
//! of a ticket, or an unknown one, is refused before the upgrade (401). The server's first
//! message is `hello`; events arrive as envelopes `{"envelope_id", "type": "events_api",
//! "payload": <the event_callback body>, "retry_attempt", "retry_reason",
//! "accepts_response_payload"}`, each of which the app acknowledges by sending
//! `{"envelope_id": …}`. An envelope not acknowledged within [`ACK_DEADLINE`], or whose
//! connection closed before it was acknowledged, is sent again (to an open connection,
//! the next one when none is) with `retry_attempt` + 1, at most [`MAX_RETRIES`] times.
//!
//! Faults, on request ([`Hub`] methods, also `POST /_sim/socket/{disconnect,drop}`):
//! `disconnect` messages (reason `refresh_requested`, the connection closed
//! [`DISCONNECT_GRACE`] later, as Slack warns before it closes), dropped sockets (closed
//! without a word), duplicates (the same payload in two envelopes), out-of-order delivery
//! (the caller picks the order), and losing what is sent while no connection is open
//! ([`Hub::set_lose_while_down`]: Slack gives up on an app it cannot reach), and an outage
//! that refuses every new connection ([`Hub::set_refusing`]).
//!
//! Invariants: an envelope goes to one connection at a time (round robin over the open
//! ones that were not told to disconnect); what is sent before any connection is open
//! waits in `pending` and goes out on the next `hello` (unless lost on purpose); every ack
//! is checked (well-formed, known envelope) and counted in [`SocketStats`].

use crate::state::{lock, Sim};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The app-level token the simulator accepts unless told otherwise.
pub const DEFAULT_APP_TOKEN: &str = "xapp-1-A0SIMAPP-1-sim-app-token";
/// Slack's deadline for an acknowledgement.
pub const ACK_DEADLINE: Duration = Duration::from_secs(3);
/// Redeliveries of an unacknowledged envelope.
pub const MAX_RETRIES: u32 = 3;
/// Time between a `disconnect` message and the close (Slack: about 10 s).
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(3);

/// Counters of the Socket Mode endpoint (`GET /_sim/socket`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SocketStats {
    /// `apps.connections.open` answers with a URL.
    pub urls: u64,
    /// WebSocket connections accepted (each said `hello`).
    pub connections: u64,
    /// Connections open now.
    pub open: usize,
    /// Upgrades refused (unknown or reused ticket).
    pub refused: u64,
    /// Envelopes sent (first attempts).
    pub delivered: u64,
    /// Envelopes sent again after no acknowledgement.
    pub redelivered: u64,
    /// Acknowledgements of pending envelopes.
    pub acked: u64,
    /// Acknowledgements that came after [`ACK_DEADLINE`].
    pub late_acks: u64,
    /// Acknowledgements of unknown (or already acknowledged) envelopes.
    pub unknown_acks: u64,
    /// Messages from the app that are not an acknowledgement.
    pub malformed: u64,
    /// `disconnect` messages sent.
    pub disconnects: u64,
    /// Connections dropped on purpose.
    pub dropped: u64,
    /// Envelopes given up (lost while no connection was open, or past the retries).
    pub lost: u64,
    /// Envelopes waiting for an acknowledgement now.
    pub pending: usize,
}

enum Out {
    Text(String),
    Close,
}

struct Conn {
    tx: mpsc::UnboundedSender<Out>,
    /// Told to disconnect (no new envelopes); closed at this instant.
    closing: Option<Instant>,
}

struct Pending {
    payload: Value,
    attempt: u32,
    /// `None`: not sent yet (no connection was open, or its connection closed).
    sent_at: Option<Instant>,
    /// The connection it was last sent on.
    conn: u64,
}

#[derive(Default)]
struct HubState {
    app_tokens: HashSet<String>,
    tickets: HashSet<String>,
    seq: u64,
    conns: BTreeMap<u64, Conn>,
    turn: usize,
    pending: BTreeMap<String, Pending>,
    lose_while_down: bool,
    /// Refuse upgrades (an outage between the app and Slack).
    refusing: bool,
    stats: SocketStats,
}

/// The Socket Mode side of the simulator.
pub struct Hub {
    state: Mutex<HubState>,
}

impl Default for Hub {
    fn default() -> Self {
        let state = HubState {
            app_tokens: HashSet::from([DEFAULT_APP_TOKEN.to_string()]),
            ..HubState::default()
        };
        Hub {
            state: Mutex::new(state),
        }
    }
}

fn envelope(id: &str, pending: &Pending) -> String {
    json!({"envelope_id": id, "type": "events_api", "accepts_response_payload": false,
        "retry_attempt": pending.attempt,
        "retry_reason": if pending.attempt == 0 { "" } else { "timeout" },
        "payload": pending.payload})
    .to_string()
}

impl HubState {
    /// The next open connection (round robin), not one told to disconnect.
    fn pick(&mut self) -> Option<u64> {
        let open: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.closing.is_none())
            .map(|(id, _)| *id)
            .collect();
        if open.is_empty() {
            return None;
        }
        self.turn = self.turn.wrapping_add(1);
        Some(open[self.turn % open.len()])
    }

    fn send(&mut self, id: &str) -> bool {
        let Some(conn) = self.pick() else {
            return false;
        };
        let Some(pending) = self.pending.get_mut(id) else {
            return false;
        };
        let text = envelope(id, pending);
        pending.sent_at = Some(Instant::now());
        pending.conn = conn;
        self.conns[&conn].tx.send(Out::Text(text)).is_ok()
    }

    /// Connection `conn` is gone: what it did not acknowledge goes out again on the next
    /// connection (a retry), unless lost on purpose.
    fn closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
        let lose = self.lose_while_down;
        let (mut lost, mut again) = (0, 0);
        self.pending.retain(|_, p| {
            if p.sent_at.is_none() || p.conn != conn {
                return true;
            }
            if lose || p.attempt >= MAX_RETRIES {
                lost += 1;
                return false;
            }
            p.sent_at = None;
            p.attempt += 1;
            again += 1;
            true
        });
        self.stats.lost += lost;
        self.stats.redelivered += again;
    }

    /// Sends what waits: never sent, or unacknowledged past the deadline (a retry).
    fn flush(&mut self, now: Instant) {
        if self.conns.values().all(|c| c.closing.is_some()) {
            return;
        }
        let due: Vec<(String, bool)> = self
            .pending
            .iter()
            .filter_map(|(id, p)| match p.sent_at {
                None => Some((id.clone(), false)),
                Some(at) if now.duration_since(at) >= ACK_DEADLINE => Some((id.clone(), true)),
                Some(_) => None,
            })
            .collect();
        for (id, retry) in due {
            if retry {
                let Some(p) = self.pending.get_mut(&id) else {
                    continue;
                };
                if p.attempt >= MAX_RETRIES {
                    self.pending.remove(&id);
                    self.stats.lost += 1;
                    continue;
                }
                p.attempt += 1;
                self.stats.redelivered += 1;
            }
            self.send(&id);
        }
    }
}

impl Hub {
    fn state(&self) -> std::sync::MutexGuard<'_, HubState> {
        lock(&self.state)
    }

    /// Accepts `token` as an app-level token too.
    pub fn add_app_token(&self, token: &str) {
        self.state().app_tokens.insert(token.to_string());
    }

    /// Whether `token` is a known app-level token.
    pub fn is_app_token(&self, token: &str) -> bool {
        self.state().app_tokens.contains(token)
    }

    /// A new single-use ticket for the WebSocket URL.
    pub fn ticket(&self) -> String {
        let mut state = self.state();
        state.seq += 1;
        let ticket = format!("sim-ticket-{}-{}", state.seq, rand::random::<u32>());
        state.tickets.insert(ticket.clone());
        state.stats.urls += 1;
        ticket
    }

    /// Envelopes `bodies` (`event_callback` bodies) for delivery, in order; with
    /// `duplicate`, each goes out twice in two envelopes (Slack's at-least-once delivery).
    pub fn deliver(&self, bodies: &[Value], duplicate: bool) {
        let mut state = self.state();
        let down = state.conns.values().all(|c| c.closing.is_some());
        let copies = if duplicate { 2 } else { 1 };
        for body in bodies {
            for _ in 0..copies {
                state.stats.delivered += 1;
                if down && state.lose_while_down {
                    state.stats.lost += 1;
                    continue;
                }
                state.seq += 1;
                let id = format!("{:08x}-sim-envelope-{}", rand::random::<u32>(), state.seq);
                state.pending.insert(
                    id.clone(),
                    Pending {
                        payload: body.clone(),
                        attempt: 0,
                        sent_at: None,
                        conn: 0,
                    },
                );
                state.send(&id);
            }
        }
    }

    /// Sends `disconnect` (reason `reason`) on every open connection and closes each
    /// [`DISCONNECT_GRACE`] later.
    pub fn disconnect(&self, reason: &str) {
        let mut state = self.state();
        let text = json!({"type": "disconnect", "reason": reason,
            "debug_info": {"host": "slack-sim"}})
        .to_string();
        let close_at = Instant::now() + DISCONNECT_GRACE;
        let mut told = 0;
        for conn in state.conns.values_mut().filter(|c| c.closing.is_none()) {
            conn.closing = Some(close_at);
            let _ = conn.tx.send(Out::Text(text.clone()));
            told += 1;
        }
        state.stats.disconnects += told;
    }

    /// Closes every connection at once, without a close frame (a dropped socket).
    pub fn drop_connections(&self) {
        let mut state = self.state();
        let ids: Vec<u64> = state.conns.keys().copied().collect();
        state.stats.dropped += ids.len() as u64;
        for id in ids {
            if let Some(conn) = state.conns.get(&id) {
                let _ = conn.tx.send(Out::Close);
            }
            state.closed(id);
        }
    }

    /// While on, envelopes sent with no connection open (and those unacknowledged when the
    /// connections are dropped) are lost, as when Slack gives up on an unreachable app.
    pub fn set_lose_while_down(&self, lose: bool) {
        self.state().lose_while_down = lose;
    }

    /// While on, every WebSocket upgrade is refused (an outage: the app cannot reach
    /// Slack's socket servers).
    pub fn set_refusing(&self, refusing: bool) {
        self.state().refusing = refusing;
    }

    /// The counters.
    pub fn stats(&self) -> SocketStats {
        let state = self.state();
        let mut stats = state.stats.clone();
        stats.open = state.conns.values().filter(|c| c.closing.is_none()).count();
        stats.pending = state.pending.len();
        stats
    }

    fn ack(&self, text: &str) {
        let mut state = self.state();
        let id = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("envelope_id")?.as_str().map(str::to_string));
        let Some(id) = id else {
            state.stats.malformed += 1;
            return;
        };
        match state.pending.remove(&id) {
            Some(p) => {
                state.stats.acked += 1;
                if p.sent_at.is_some_and(|at| at.elapsed() > ACK_DEADLINE) {
                    state.stats.late_acks += 1;
                }
            }
            None => state.stats.unknown_acks += 1,
        }
    }
}

/// The body of an `apps.connections.open` answer for `token` (bearer or `token` param).
pub fn open(sim: &Sim, token: Option<&str>) -> Value {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return json!({"ok": false, "error": "not_authed"});
    };
    if !sim.socket.is_app_token(token) {
        let error = if sim.token(token).is_some() {
            "not_allowed_token_type"
        } else {
            "invalid_auth"
        };
        return json!({"ok": false, "error": error});
    }
    let base = sim.base_url.get().cloned().unwrap_or_default();
    let ws = base.replacen("http", "ws", 1);
    let ticket = sim.socket.ticket();
    json!({"ok": true, "url": format!("{ws}/link/?ticket={ticket}&app_id=A0SIMAPP")})
}

/// `GET /link/?ticket=…`: the WebSocket, for a ticket issued and not yet used.
pub async fn link(
    State(sim): State<Arc<Sim>>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").cloned().unwrap_or_default();
    let fresh = {
        let mut state = sim.socket.state();
        let fresh = state.tickets.remove(&ticket) && !state.refusing;
        if !fresh {
            state.stats.refused += 1;
        }
        fresh
    };
    if !fresh {
        return (StatusCode::UNAUTHORIZED, "unknown or used ticket").into_response();
    }
    upgrade.on_upgrade(move |socket| serve(sim, socket))
}

async fn serve(sim: Arc<Sim>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut state = sim.socket.state();
        state.seq += 1;
        let id = state.seq;
        let open = state.conns.len() + 1;
        let hello = json!({"type": "hello", "num_connections": open,
            "debug_info": {"host": "slack-sim", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A0SIMAPP"}});
        let _ = tx.send(Out::Text(hello.to_string()));
        state.conns.insert(id, Conn { tx, closing: None });
        state.stats.connections += 1;
        state.flush(Instant::now());
        id
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close) | None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => sim.socket.ack(text.as_str()),
                Some(Ok(Message::Binary(_))) => sim.socket.state().stats.malformed += 1,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let mut state = sim.socket.state();
                state.flush(now);
                let due = state.conns.get(&id).and_then(|c| c.closing).is_some_and(|at| now >= at);
                if due {
                    break;
                }
            }
        }
    }
    // Dropping the socket closes the TCP connection (no close frame on a drop).
    sim.socket.state().closed(id);
}
