//! Slack's Socket Mode for live updates: events over a WebSocket the connector opens, so
//! no public URL is needed (a deployment behind a firewall).
//!
//! The cycle: `apps.connections.open` with the app-level token (`xapp-…`, scope
//! `connections:write`) answers a single-use `wss://` URL; the connection is usable once
//! Slack says `hello`. Every envelope is acknowledged with `{"envelope_id": …}` right
//! after its event is queued ([`Endpoint::accept`]), never after processing, so the ack
//! is within Slack's 3 s; the writer applies it as it applies HTTP deliveries. A
//! `disconnect` message opens a replacement (a fresh URL) while the old connection keeps
//! delivering, and the old one is closed once the new one said `hello`; a dropped socket
//! reconnects with the shared retry policy's backoff ([`RECONNECT`]), a fresh URL each
//! time. A connection down for longer than [`GAP_AFTER`] marks a gap, which the live
//! manager catches up with an incremental sync.
//!
//! Invariants:
//! - the app token goes only into the `Authorization` header of `apps.connections.open`
//!   (marked sensitive); [`SocketOptions`]' `Debug` shows it redacted, and neither it nor
//!   the WebSocket URL (its ticket is a credential for one connection) reaches a log line;
//! - Slack delivers at least once (a retry after a missed ack, `retry_attempt` > 0, or the
//!   same event in two envelopes): every event is accepted as possibly repeated, so a
//!   repeat of a queued `event_id` is a counted duplicate and changes nothing;
//! - an envelope whose event cannot be queued (a full queue) is not acknowledged: Slack
//!   sends it again, and the gap is recorded meanwhile.

use super::client::{ClientConfig, SlackClient, SlackError, Verb};
use super::events::read_callback;
use crate::config::Secret;
use crate::live::receive::{Endpoint, Judged};
use crate::live::writer::metrics;
use crate::live::LiveError;
use crate::retry::RetryParams;
use backoff::backoff::Backoff as _;
use futures::{SinkExt, StreamExt};
use serde::de::IgnoredAny;
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// A connection down this long (or a reconnection that takes longer) is a gap: events may
/// have been lost, and an incremental sync is requested.
pub const GAP_AFTER: Duration = Duration::from_secs(10);
/// How long a new connection may take to say `hello`.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnection backoff (the shared policy's numbers): from 0.5 s, doubling, up to 30 s,
/// retried for as long as live updates are on.
pub const RECONNECT: RetryParams = RetryParams::exponential(
    Duration::from_millis(500),
    Duration::from_secs(30),
    u32::MAX,
);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// Web API base URL (`SLACK_API_BASE_URL` or `https://slack.com/api`).
    pub api_url: String,
    /// The app-level token (`xapp-…`).
    pub app_token: Secret,
    /// See [`GAP_AFTER`].
    pub gap_after: Duration,
    /// See [`RECONNECT`].
    pub reconnect: RetryParams,
    /// Retries of one `apps.connections.open` call.
    pub retry: RetryParams,
}

impl SocketOptions {
    /// The defaults for `app_token` against `api_url`.
    pub fn new(api_url: &str, app_token: Secret, retry: RetryParams) -> SocketOptions {
        SocketOptions {
            api_url: api_url.to_string(),
            app_token,
            gap_after: GAP_AFTER,
            reconnect: RECONNECT,
            retry,
        }
    }
}

/// Why a connection could not be made. Messages never carry the token or the URL.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// `apps.connections.open` failed.
    #[error("apps.connections.open failed: {0}")]
    Open(#[from] SlackError),
    /// The WebSocket handshake failed.
    #[error("the Socket Mode connection failed: {0}")]
    Connect(String),
    /// No `hello` in time, or the connection closed before it.
    #[error("the Socket Mode connection did not say hello within {0:?}")]
    NoHello(Duration),
}

/// One message from Slack over the socket (pure reading: [`read_envelope`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// The connection is ready.
    Hello,
    /// Slack will close this connection: open another.
    Disconnect {
        /// `refresh_requested`, `link_disabled`, `warning`, …
        reason: String,
    },
    /// An envelope to acknowledge, with the event it carries (`None`: nothing to apply,
    /// such as slash commands or interactivity, which this connector does not handle).
    Envelope {
        /// What the acknowledgement names.
        envelope_id: String,
        /// The Events API event, for the endpoint.
        event: Option<crate::live::receive::Event>,
    },
}

/// Reads one text message from the socket (pure). An `events_api` envelope's payload is
/// read as an HTTP delivery's body is ([`read_callback`]), always as a possible repeat.
pub fn read_envelope(text: &str) -> Result<Envelope, LiveError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| LiveError::Malformed(format!("a Socket Mode message is not JSON: {e}")))?;
    let kind = value["type"]
        .as_str()
        .ok_or_else(|| LiveError::Malformed("a Socket Mode message without a type".into()))?;
    match kind {
        "hello" => Ok(Envelope::Hello),
        "disconnect" => Ok(Envelope::Disconnect {
            reason: value["reason"].as_str().unwrap_or("unknown").to_string(),
        }),
        _ => {
            let envelope_id = value["envelope_id"]
                .as_str()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    LiveError::Malformed(format!("a Socket Mode '{kind}' without an envelope_id"))
                })?
                .to_string();
            let event = if kind == "events_api" {
                if !value["payload"].is_object() {
                    return Err(LiveError::Malformed(
                        "an events_api envelope without a payload".into(),
                    ));
                }
                match read_callback(&value["payload"], true)? {
                    Judged::Event(event) => Some(event),
                    Judged::Reply(_) => None,
                }
            } else {
                None
            };
            Ok(Envelope::Envelope { envelope_id, event })
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Socket, SocketError>> + Send>>;

/// A fresh URL from `apps.connections.open`.
async fn open_url(
    options: &SocketOptions,
    cancel: &CancellationToken,
) -> Result<String, SocketError> {
    let client = SlackClient::new(ClientConfig {
        base_url: options.api_url.clone(),
        token: options.app_token.clone(),
        timeout: Duration::from_secs(30),
        tier_scale: 1.0,
        budget: super::ratelimit::BudgetMode::Published,
        pace: false,
        retry: options.retry,
    })?;
    let reply = client
        .call::<IgnoredAny>("apps.connections.open", Verb::PostForm, &[], cancel)
        .await?;
    // Required by the method's shape (answer.rs): present on every `ok:true` answer.
    reply
        .body
        .url
        .ok_or_else(|| SocketError::Connect("apps.connections.open gave no url".into()))
}

/// Opens a connection and waits for its `hello`.
async fn connect(options: SocketOptions, cancel: CancellationToken) -> Result<Socket, SocketError> {
    let url = open_url(&options, &cancel).await?;
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        // tungstenite's errors do not quote the URL.
        .map_err(|e| SocketError::Connect(e.to_string()))?;
    let hello = async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    if matches!(read_envelope(text.as_str()), Ok(Envelope::Hello)) {
                        return true;
                    }
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };
    let said = tokio::time::timeout(HELLO_TIMEOUT, hello).await;
    match said {
        Ok(true) => Ok(socket),
        _ => Err(SocketError::NoHello(HELLO_TIMEOUT)),
    }
}

/// How serving one connection ended.
enum Ended {
    Cancelled,
    Lost,
}

/// Keeps `endpoint`'s connector connected until `cancel` (see the module docs).
pub async fn run(options: SocketOptions, endpoint: Arc<Endpoint>, cancel: CancellationToken) {
    let connector = endpoint.connector_id().to_string();
    let mut backoff = options.reconnect.backoff();
    // The first connection is no gap: the syncs so far cover what came before.
    let mut down_since: Option<Instant> = None;
    let mut gap_marked = false;
    loop {
        let socket = tokio::select! {
            result = connect(options.clone(), cancel.clone()) => result,
            _ = cancel.cancelled() => return,
        };
        let socket = match socket {
            Ok(socket) => socket,
            Err(error) => {
                metrics().connection(&connector, "failed");
                let since = *down_since.get_or_insert_with(Instant::now);
                if !gap_marked && since.elapsed() >= options.gap_after {
                    mark_gap(&endpoint, &connector, since);
                    gap_marked = true;
                }
                let delay = backoff
                    .next_backoff()
                    .unwrap_or(options.reconnect.max_delay);
                tracing::warn!(connector_id = %connector, %error, "Socket Mode: cannot connect; next try in {:.1} s", delay.as_secs_f64());
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = cancel.cancelled() => return,
                }
            }
        };
        backoff.reset();
        metrics().connection(&connector, "connected");
        if let Some(since) = down_since.take() {
            // Marked again even when the outage was already a gap: a catch-up sync that ran
            // while the connection was still down cannot have read what came after it.
            if since.elapsed() >= options.gap_after {
                mark_gap(&endpoint, &connector, since);
            }
            tracing::info!(connector_id = %connector, "Socket Mode: reconnected after {:.1} s", since.elapsed().as_secs_f64());
        } else {
            tracing::info!(connector_id = %connector, "Socket Mode: connected");
        }
        gap_marked = false;
        match serve(socket, &options, &endpoint, &connector, &cancel).await {
            Ended::Cancelled => return,
            Ended::Lost => {
                metrics().connection(&connector, "lost");
                tracing::warn!(connector_id = %connector, "Socket Mode: the connection was lost; reconnecting");
                down_since = Some(Instant::now());
            }
        }
    }
}

fn mark_gap(endpoint: &Endpoint, connector: &str, since: Instant) {
    metrics().connection(connector, "gap");
    tracing::warn!(
        connector_id = connector,
        "Socket Mode: no connection for {:.1} s; events may be lost, a catch-up sync follows",
        since.elapsed().as_secs_f64()
    );
    endpoint.mark_gap();
}

/// Serves `socket` (and the replacements `disconnect` messages call for) until it is lost
/// with no replacement, or `cancel`.
async fn serve(
    mut socket: Socket,
    options: &SocketOptions,
    endpoint: &Endpoint,
    connector: &str,
    cancel: &CancellationToken,
) -> Ended {
    let mut replacement: Option<Connecting> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = socket.close(None).await;
                return Ended::Cancelled;
            }
            new = async { replacement.as_mut().expect("guarded").await }, if replacement.is_some() => {
                replacement = None;
                match new {
                    Ok(new) => {
                        // The new connection said hello: the old one goes.
                        let mut old = std::mem::replace(&mut socket, new);
                        tokio::spawn(async move { let _ = old.close(None).await; });
                        metrics().connection(connector, "replaced");
                        tracing::info!(connector_id = connector, "Socket Mode: connection replaced");
                    }
                    Err(error) => {
                        tracing::warn!(connector_id = connector, %error, "Socket Mode: the replacement connection failed; the current one stays until it closes");
                    }
                }
            }
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    match read_envelope(text.as_str()) {
                        Ok(Envelope::Hello) => {}
                        Ok(Envelope::Disconnect { reason }) => {
                            metrics().connection(connector, "disconnect");
                            tracing::info!(connector_id = connector, %reason, "Socket Mode: disconnect asked; opening a replacement");
                            if replacement.is_none() {
                                replacement = Some(Box::pin(connect(options.clone(), cancel.clone())));
                            }
                        }
                        Ok(Envelope::Envelope { envelope_id, event }) => {
                            let acknowledge = match event {
                                Some(event) => accept(endpoint, event),
                                None => true,
                            };
                            if acknowledge {
                                let ack = json!({"envelope_id": envelope_id}).to_string();
                                if socket.send(Message::Text(ack.into())).await.is_err() {
                                    // Unacknowledged: Slack sends it again on another connection.
                                    if let Some(ended) = take_over(&mut socket, &mut replacement).await {
                                        return ended;
                                    }
                                }
                            }
                        }
                        Err(error) => {
                            metrics().count(connector, "rejected");
                            tracing::warn!(connector_id = connector, %error, "Socket Mode: message refused");
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    if let Some(ended) = take_over(&mut socket, &mut replacement).await {
                        return ended;
                    }
                }
            },
        }
    }
}

/// The current connection closed: the replacement under way (if any) takes over;
/// `Some(Lost)` when there is none to take over.
async fn take_over(socket: &mut Socket, replacement: &mut Option<Connecting>) -> Option<Ended> {
    match replacement.take() {
        Some(connecting) => match connecting.await {
            Ok(new) => {
                *socket = new;
                None
            }
            Err(_) => Some(Ended::Lost),
        },
        None => Some(Ended::Lost),
    }
}

/// Queues `event`; whether to acknowledge it (not when the queue is full: Slack resends).
fn accept(endpoint: &Endpoint, event: crate::live::receive::Event) -> bool {
    let now = chrono::Utc::now().timestamp();
    match endpoint.accept(event, now) {
        Ok(_) => true,
        Err(LiveError::Overloaded) => false,
        Err(error) => {
            tracing::warn!(connector_id = endpoint.connector_id(), %error, "Socket Mode: event refused");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_read_strictly() {
        assert_eq!(
            read_envelope(r#"{"type":"hello","num_connections":1}"#),
            Ok(Envelope::Hello)
        );
        assert_eq!(
            read_envelope(r#"{"type":"disconnect","reason":"refresh_requested"}"#),
            Ok(Envelope::Disconnect {
                reason: "refresh_requested".into()
            })
        );
        let event = r#"{"envelope_id":"e1","type":"events_api","retry_attempt":0,
            "payload":{"type":"event_callback","event_id":"Ev1","event_time":5,
            "event":{"type":"message","channel":"C1","ts":"1.000001"}}}"#;
        let Ok(Envelope::Envelope {
            envelope_id,
            event: Some(event),
        }) = read_envelope(event)
        else {
            panic!("not an event");
        };
        assert_eq!(envelope_id, "e1");
        assert_eq!(event.id, "Ev1");
        assert!(event.retry, "Socket Mode events may repeat");
        assert_eq!(
            read_envelope(r#"{"envelope_id":"e2","type":"slash_commands","payload":{}}"#),
            Ok(Envelope::Envelope {
                envelope_id: "e2".into(),
                event: None
            })
        );
        for bad in [
            "not json",
            r#"{"envelope_id":"e"}"#,
            r#"{"type":"events_api","payload":{}}"#,
            r#"{"type":"events_api","envelope_id":"e"}"#,
            r#"{"type":"events_api","envelope_id":"e","payload":{"type":"event_callback"}}"#,
        ] {
            assert!(
                matches!(read_envelope(bad), Err(LiveError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_app_token_is_not_in_debug_output() {
        let options = SocketOptions::new(
            "http://x",
            Secret::new("xapp-1-A1-2-verysecret"),
            RetryParams::for_test(),
        );
        assert!(!format!("{options:?}").contains("verysecret"));
    }
}
