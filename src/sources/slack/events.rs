//! Slack's Events API for live updates: verifying HTTP deliveries and turning events into
//! [`LiveOp`]s with the same document shapes as a sync ([`super::transform`]).
//!
//! Verification ([`verify`], pure): `X-Slack-Signature` must be `v0=` + hex HMAC-SHA256 of
//! `v0:<X-Slack-Request-Timestamp>:<raw body>` under the signing secret, compared in
//! constant time (`hmac`'s `verify_slice`); the timestamp must be within
//! [`MAX_SKEW_SECS`] of now. Anything else is [`LiveError::Rejected`] (401). A delivery
//! carrying `X-Slack-Retry-Num` is Slack's retry: the shared endpoint answers it 200 and
//! drops it when its `event_id` was seen ([`crate::live::receive`]).
//!
//! Translation ([`EventContext::ops`], pure over the context): `message` (new top-level
//! message or thread reply; a reply also re-derives its parent's `reply_count` and
//! `latest_reply` from the replies the index holds), `message_changed` (the new message
//! replaces the document), `message_deleted`, `channel_created`/`channel_rename`/
//! `channel_archive`/`channel_unarchive`/`channel_deleted`, `user_change`/`team_join`.
//! Versions: a message's is its last edit time (or its ts), a deletion's the event time,
//! so a late older edit never overwrites a newer one. Channels the sync would not read
//! (filters, private conversations without their option), messages outside
//! `fetch_last_n_days`, and bot messages when skipped give no ops, as in a sync.
//! `member_joined_channel`/`member_left_channel` change no document (DLS is refused with
//! live updates for now, see [`super::live`]); the app's own bot user joining a conversation
//! the connector does not read yet calls for a catch-up sync
//! ([`EventContext::calls_for_catch_up`]).

use super::cursor::thread_scope;
use super::socket::SocketOptions;
use super::transform::{
    channel_doc, message_doc, message_id, ts_micros, user_doc, Channel, Message, MessageContext,
    Names, User,
};
use super::SlackOptions;
use crate::config::Secret;
use crate::live::receive::{Endpoint, Event, Judged, LiveReceiver};
use crate::live::{Derive, LiveError, LiveOp};
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// Header of the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Header of the request timestamp (epoch seconds).
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Header Slack puts on its retries.
pub const RETRY_HEADER: &str = "x-slack-retry-num";
/// Largest distance between a request's timestamp and now, seconds (Slack's advice).
pub const MAX_SKEW_SECS: i64 = 300;

/// `v0=<hex>` of `v0:<timestamp>:<body>` under `secret` (what Slack sends; the simulator
/// and tests sign with it).
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let bytes = mac(secret, timestamp, body).finalize().into_bytes();
    let mut out = String::from("v0=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a delivery's timestamp and signature (see the module docs). Messages never
/// include the secret or the expected signature.
pub fn verify(
    secret: &Secret,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), LiveError> {
    let reject = |why: &str| Err(LiveError::Rejected(why.to_string()));
    let Some(timestamp) = header(headers, TIMESTAMP_HEADER) else {
        return reject("no X-Slack-Request-Timestamp header");
    };
    let Ok(at) = timestamp.trim().parse::<i64>() else {
        return reject("X-Slack-Request-Timestamp is not a number");
    };
    if (now - at).abs() > MAX_SKEW_SECS {
        return reject(
            "X-Slack-Request-Timestamp is more than 5 minutes from now (stale or replayed)",
        );
    }
    let Some(sent) = header(headers, SIGNATURE_HEADER) else {
        return reject("no X-Slack-Signature header");
    };
    let Some(sent) = sent.strip_prefix("v0=").and_then(hex_decode) else {
        return reject("X-Slack-Signature is not v0=<hex>");
    };
    if secret.is_empty() {
        return reject("no signing secret is configured");
    }
    mac(secret.expose(), timestamp.trim(), body)
        .verify_slice(&sent)
        .map_err(|_| LiveError::Rejected("X-Slack-Signature does not match".into()))
}

/// What translating events needs besides the event: the workspace's names, the channels
/// the sync reads, the permalink base, the options.
#[derive(Debug, Clone, Default)]
pub struct EventContext {
    /// User and bot names.
    pub names: Names,
    /// Channel id → name, of channels a sync reads.
    pub channels: HashMap<String, String>,
    /// `https://<domain>.slack.com`.
    pub base: Option<String>,
    /// The connector's options.
    pub options: Option<SlackOptions>,
    /// Fixed "now" for the history window (tests); `None`: the clock.
    pub now: Option<i64>,
    /// The connector's own Slack user (the app's bot user, `auth.test`'s `user_id`).
    pub bot_user: Option<String>,
}

fn micros_now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl EventContext {
    fn sync_users(&self) -> bool {
        self.options.as_ref().is_none_or(|o| o.sync_users)
    }

    fn in_window(&self, ts: &str) -> bool {
        let days = self.options.as_ref().map_or(0, |o| o.fetch_last_n_days);
        let start = self.options.as_ref().and_then(|o| o.start_date);
        let now = self.now.unwrap_or_else(|| chrono::Utc::now().timestamp());
        // The sync's window: the later of `fetch_last_n_days` and `start_date`.
        match (
            super::filters::history_oldest(now, days, start)
                .as_deref()
                .and_then(ts_micros),
            ts_micros(ts),
        ) {
            (Some(oldest), Some(ts)) => ts > oldest,
            _ => true,
        }
    }

    fn keep_message(&self, message: &Message<'_>) -> bool {
        let Some(options) = &self.options else {
            return true;
        };
        // The same message filters as a sync's.
        super::filters::message_wanted(
            message.subtype.as_deref(),
            message.bot_id.as_deref(),
            options.skip_bot_messages,
            options.skip_channel_events,
        )
    }

    /// Whether `event` is the app's bot user joining a conversation the connector does not
    /// read yet: its history comes from no event, so a catch-up sync reads it (the sync
    /// applies the filters and the membership rules), and the receiver restarts knowing it.
    pub fn calls_for_catch_up(&self, event: &Value) -> bool {
        event["type"] == "member_joined_channel"
            && self
                .bot_user
                .as_deref()
                .is_some_and(|bot| event["user"].as_str() == Some(bot))
            && event["channel"]
                .as_str()
                .is_some_and(|channel| !self.channels.contains_key(channel))
    }

    /// The index changes of one event (the `event` object of an `event_callback`), and the
    /// context updated by it (new users, renamed channels).
    pub fn ops(&mut self, event: &Value) -> Vec<LiveOp> {
        let kind = event["type"].as_str().unwrap_or_default();
        match kind {
            "message" => self.message_ops(event),
            "channel_created" | "channel_rename" => self.channel_ops(kind, event),
            "channel_archive" | "channel_unarchive" => {
                let Some(id) = event["channel"]
                    .as_str()
                    .filter(|id| self.channels.contains_key(*id))
                else {
                    return Vec::new();
                };
                let mut fields = Map::new();
                fields.insert("is_archived".into(), json!(kind == "channel_archive"));
                vec![LiveOp::Patch {
                    id: id.to_string(),
                    fields,
                }]
            }
            "channel_deleted" => match event["channel"].as_str() {
                Some(id) if self.channels.remove(id).is_some() => vec![LiveOp::Delete {
                    id: id.to_string(),
                    version: micros_now(),
                }],
                _ => Vec::new(),
            },
            "user_change" | "team_join" => {
                let Ok(user) = serde_json::from_value::<User>(event["user"].clone()) else {
                    tracing::warn!(event = kind, "slack event without a readable user, ignored");
                    return Vec::new();
                };
                self.names.add(&user);
                if !self.sync_users() {
                    return Vec::new();
                }
                let version = user
                    .updated
                    .map_or_else(micros_now, |u| u.saturating_mul(1_000_000));
                vec![LiveOp::Put {
                    doc: user_doc(&user),
                    version,
                }]
            }
            _ => Vec::new(),
        }
    }

    fn channel_ops(&mut self, kind: &str, event: &Value) -> Vec<LiveOp> {
        let Ok(channel) = serde_json::from_value::<Channel>(event["channel"].clone()) else {
            return Vec::new();
        };
        let name = channel.name.clone().unwrap_or_default();
        if !self.channel_wanted(&channel.id, &name) {
            return Vec::new();
        }
        self.channels.insert(channel.id.clone(), name.clone());
        if kind == "channel_rename" {
            let mut fields = Map::new();
            fields.insert("name".into(), json!(name));
            fields.insert(
                "name_normalized".into(),
                json!(channel.name_normalized.clone().unwrap_or(name)),
            );
            return vec![LiveOp::Patch {
                id: channel.id,
                fields,
            }];
        }
        let version = channel
            .created
            .map_or_else(micros_now, |c| c.saturating_mul(1_000_000));
        let doc = channel_doc(&channel, &self.names, self.base.as_deref());
        vec![LiveOp::Put { doc, version }]
    }

    /// A new public channel is read when the connector's filters allow it (the sync
    /// decides membership and joins; a new channel's messages arrive as events).
    fn channel_wanted(&self, id: &str, name: &str) -> bool {
        let Some(options) = &self.options else {
            return true;
        };
        super::filters::channel_wanted(
            &options.channel_include,
            &options.channel_exclude,
            id,
            Some(name),
        )
    }

    fn message_ops(&mut self, event: &Value) -> Vec<LiveOp> {
        let Some(channel) = event["channel"].as_str() else {
            return Vec::new();
        };
        let Some(channel_name) = self.channels.get(channel).cloned() else {
            // Not a channel this connector reads (private without the option, filtered).
            return Vec::new();
        };
        match event["subtype"].as_str() {
            Some("message_deleted") => {
                let Some(deleted) = event["deleted_ts"].as_str() else {
                    return Vec::new();
                };
                let version = event["event_ts"]
                    .as_str()
                    .or(event["ts"].as_str())
                    .and_then(ts_micros)
                    .unwrap_or_else(micros_now);
                let mut ops = vec![LiveOp::Delete {
                    id: message_id(channel, deleted),
                    version,
                }];
                let parent = event["previous_message"]["thread_ts"].as_str();
                if let Some(parent) = parent.filter(|p| *p != deleted) {
                    ops.push(thread_derive(channel, parent));
                }
                ops
            }
            Some("message_changed") => self.put_message(channel, &channel_name, &event["message"]),
            // Thread bookkeeping Slack sends besides the reply itself.
            Some("message_replied") => Vec::new(),
            _ => self.put_message(channel, &channel_name, event),
        }
    }

    fn put_message(&self, channel: &str, channel_name: &str, raw: &Value) -> Vec<LiveOp> {
        let text = raw.to_string();
        let Ok(message) = serde_json::from_str::<Message<'_>>(&text) else {
            tracing::warn!(
                channel_id = channel,
                "slack message event without a readable message, ignored"
            );
            return Vec::new();
        };
        if !self.keep_message(&message) || !self.in_window(&message.ts) {
            return Vec::new();
        }
        let edited = message.edited.as_ref().and_then(|e| e.ts.as_deref());
        let Some(version) = edited.or(Some(&message.ts)).and_then(ts_micros) else {
            return Vec::new();
        };
        let ctx = MessageContext {
            channel_id: channel,
            channel_name,
            names: &self.names,
            channels: &self.channels,
            base: self.base.as_deref(),
            // Lists as the event gives them: live updates make no `reactions.get` call
            // (the next sync completes a list Slack cut short).
            reaction_users: self.options.as_ref().is_some_and(|o| o.reaction_users),
        };
        let mut ops = vec![LiveOp::Put {
            doc: message_doc(&message, &ctx),
            version,
        }];
        if let Some(parent) = message.thread_ts.as_deref().filter(|p| *p != message.ts) {
            ops.push(thread_derive(channel, parent));
        }
        ops
    }
}

/// Re-derives a thread parent's `reply_count` and `latest_reply` from its replies.
fn thread_derive(channel: &str, parent_ts: &str) -> LiveOp {
    let mut filter = thread_scope(channel, parent_ts);
    filter["bool"]["must_not"] = json!([{"match_phrase": {"ts": parent_ts}}]);
    LiveOp::Derive(Derive {
        id: message_id(channel, parent_ts),
        filter,
        count_field: "reply_count".into(),
        latest_field: "latest_reply".into(),
        sort_field: "_timestamp".into(),
        source_field: "ts".into(),
        // A message with replies is a thread parent: Slack gives it `thread_ts` = its ts.
        fields: Map::from_iter([("thread_ts".to_string(), json!(parent_ts))]),
    })
}

/// The Slack side of live updates over HTTP for one connector.
pub struct SlackReceiver {
    signing_secret: Secret,
    context: RwLock<EventContext>,
    /// Socket Mode: the receiver opens its own connection ([`super::socket`]) and refuses
    /// HTTP deliveries.
    socket: Option<SocketOptions>,
}

impl std::fmt::Debug for SlackReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackReceiver")
            .field("signing_secret", &self.signing_secret)
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl SlackReceiver {
    /// A receiver checking signatures with `signing_secret` and translating with `context`.
    pub fn new(signing_secret: Secret, context: EventContext) -> SlackReceiver {
        SlackReceiver {
            signing_secret,
            context: RwLock::new(context),
            socket: None,
        }
    }

    /// A receiver of events over Socket Mode ([`super::socket`]) translating with `context`.
    pub fn socket_mode(options: SocketOptions, context: EventContext) -> SlackReceiver {
        SlackReceiver {
            signing_secret: Secret::new(""),
            context: RwLock::new(context),
            socket: Some(options),
        }
    }
}

/// Reads a verified Events API body (pure).
pub fn read_delivery(headers: &HeaderMap, body: &[u8]) -> Result<Judged, LiveError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| LiveError::Malformed(format!("the body is not JSON: {e}")))?;
    match value["type"].as_str() {
        Some("url_verification") => {
            let challenge = value["challenge"].as_str().ok_or_else(|| {
                LiveError::Malformed("url_verification without a challenge".into())
            })?;
            Ok(Judged::Reply(json!({"challenge": challenge})))
        }
        _ => read_callback(&value, headers.contains_key(RETRY_HEADER)),
    }
}

/// Reads an Events API body other than `url_verification` (pure; the HTTP and Socket Mode
/// transports share it): an `event_callback` is an [`Event`] (`retry`: the transport says
/// this delivery may repeat an earlier one); other types are acknowledged with nothing to
/// apply.
pub fn read_callback(value: &Value, retry: bool) -> Result<Judged, LiveError> {
    match value["type"].as_str() {
        Some("event_callback") => {
            let id = value["event_id"]
                .as_str()
                .ok_or_else(|| LiveError::Malformed("event_callback without an event_id".into()))?;
            if !value["event"].is_object() {
                return Err(LiveError::Malformed(
                    "event_callback without an event".into(),
                ));
            }
            Ok(Judged::Event(Event {
                id: id.to_string(),
                retry,
                time: value["event_time"].as_f64(),
                payload: value["event"].clone(),
            }))
        }
        // app_rate_limited and future types: acknowledged, nothing to apply.
        _ => Ok(Judged::Reply(json!({"ok": true}))),
    }
}

impl LiveReceiver for SlackReceiver {
    fn judge(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Judged, LiveError> {
        if self.socket.is_some() {
            return Err(LiveError::Rejected(
                "this connector receives its events over Socket Mode".into(),
            ));
        }
        verify(&self.signing_secret, headers, body, now)?;
        read_delivery(headers, body)
    }

    fn start(&self, endpoint: Arc<Endpoint>, cancel: CancellationToken) -> bool {
        match &self.socket {
            Some(options) => {
                tokio::spawn(super::socket::run(options.clone(), endpoint, cancel));
                true
            }
            None => false,
        }
    }

    fn ops(&self, event: &Value) -> Vec<LiveOp> {
        self.context
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .ops(event)
    }

    fn calls_for_catch_up(&self, event: &Value) -> bool {
        self.context
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .calls_for_catch_up(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn signed(secret: &str, at: i64, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let ts = at.to_string();
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&ts).unwrap());
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&signature(secret, &ts, body)).unwrap(),
        );
        headers
    }

    #[test]
    fn signature_matches_slacks_documented_example() {
        // Slack's "Verifying requests" walk-through values.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }

    #[test]
    fn verification_rejects_unsigned_wrong_and_stale() {
        let secret = Secret::new("s3cret");
        let body = br#"{"type":"url_verification","challenge":"c"}"#;
        let now = 1_700_000_000;
        assert_eq!(
            verify(&secret, &signed("s3cret", now, body), body, now),
            Ok(())
        );
        let unsigned = HeaderMap::new();
        assert!(matches!(
            verify(&secret, &unsigned, body, now),
            Err(LiveError::Rejected(_))
        ));
        let wrong = signed("other", now, body);
        assert!(matches!(
            verify(&secret, &wrong, body, now),
            Err(LiveError::Rejected(_))
        ));
        let stale = signed("s3cret", now - MAX_SKEW_SECS - 1, body);
        let error = verify(&secret, &stale, body, now).unwrap_err();
        assert!(error.to_string().contains("5 minutes"), "{error}");
        let tampered = signed("s3cret", now, body);
        assert!(verify(&secret, &tampered, b"{}", now).is_err());
        // Never the secret in a message.
        assert!(
            !format!("{:?}", SlackReceiver::new(secret, EventContext::default()))
                .contains("s3cret")
        );
    }

    #[test]
    fn url_verification_and_event_callback() {
        let headers = HeaderMap::new();
        let reply = read_delivery(
            &headers,
            br#"{"type":"url_verification","challenge":"abc"}"#,
        )
        .unwrap();
        assert_eq!(reply, Judged::Reply(json!({"challenge": "abc"})));
        let mut retry = HeaderMap::new();
        retry.insert(RETRY_HEADER, HeaderValue::from_static("1"));
        let body = br#"{"type":"event_callback","event_id":"Ev1","event_time":1700000000,"event":{"type":"message"}}"#;
        let Judged::Event(event) = read_delivery(&retry, body).unwrap() else {
            panic!("an event");
        };
        assert_eq!((event.id.as_str(), event.retry), ("Ev1", true));
        assert!(matches!(
            read_delivery(&headers, br#"{"type":"event_callback","event":{}}"#),
            Err(LiveError::Malformed(_))
        ));
        assert!(matches!(
            read_delivery(&headers, b"nope"),
            Err(LiveError::Malformed(_))
        ));
    }

    fn context() -> EventContext {
        let mut ctx = EventContext {
            base: Some("https://ws.slack.com".into()),
            now: Some(1_700_000_000),
            ..EventContext::default()
        };
        ctx.channels.insert("C1".into(), "general".into());
        ctx
    }

    #[test]
    fn the_bot_joining_a_channel_it_does_not_read_calls_for_a_catch_up() {
        let join = |user: &str, channel: &str| json!({"type": "member_joined_channel", "user": user, "channel": channel, "channel_type": "C"});
        let mut ctx = context();
        assert!(!ctx.calls_for_catch_up(&join("UBOT", "C2")), "bot unknown");
        ctx.bot_user = Some("UBOT".into());
        assert!(ctx.calls_for_catch_up(&join("UBOT", "C2")));
        assert!(!ctx.calls_for_catch_up(&join("UBOT", "C1")), "already read");
        assert!(!ctx.calls_for_catch_up(&join("U1", "C2")), "someone else");
        assert!(!ctx.calls_for_catch_up(
            &json!({"type": "member_left_channel", "user": "UBOT", "channel": "C2"})
        ));
        // The join itself writes nothing.
        assert!(ctx.ops(&join("UBOT", "C2")).is_empty());
    }

    #[test]
    fn message_events_become_versioned_ops() {
        let mut ctx = context();
        let ops = ctx.ops(&json!({"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1699999000.000100"}));
        let [LiveOp::Put { doc, version }] = ops.as_slice() else {
            panic!("{ops:?}");
        };
        assert_eq!(doc.id(), "C1-1699999000.000100");
        assert_eq!(*version, 1_699_999_000_000_100);
        assert_eq!(doc.fields()["channel"], "general");
        // A reply re-derives its parent.
        let ops = ctx.ops(&json!({"type": "message", "channel": "C1", "user": "U1", "text": "re", "ts": "1699999100.000000", "thread_ts": "1699999000.000100"}));
        assert!(
            matches!(&ops[1], LiveOp::Derive(d) if d.id == "C1-1699999000.000100"),
            "{ops:?}"
        );
        // An edit is versioned by its edit time.
        let ops = ctx.ops(&json!({"type": "message", "subtype": "message_changed", "channel": "C1",
            "message": {"type": "message", "user": "U1", "text": "hi!", "ts": "1699999000.000100", "edited": {"user": "U1", "ts": "1699999500.000000"}}}));
        assert!(
            matches!(&ops[0], LiveOp::Put { version, .. } if *version == 1_699_999_500_000_000),
            "{ops:?}"
        );
        // A deletion, by the event's time.
        let ops = ctx.ops(&json!({"type": "message", "subtype": "message_deleted", "channel": "C1",
            "deleted_ts": "1699999000.000100", "event_ts": "1699999600.000000", "ts": "1699999600.000000"}));
        assert_eq!(
            ops,
            vec![LiveOp::Delete {
                id: "C1-1699999000.000100".into(),
                version: 1_699_999_600_000_000
            }]
        );
        // Unknown channels and messages outside the window give nothing.
        assert!(ctx
            .ops(
                &json!({"type": "message", "channel": "C9", "text": "x", "ts": "1699999000.000200"})
            )
            .is_empty());
        ctx.options = Some(SlackOptions {
            fetch_last_n_days: 1,
            ..SlackOptions::new(Secret::new("xoxb-1"))
        });
        assert!(ctx
            .ops(
                &json!({"type": "message", "channel": "C1", "text": "x", "ts": "1600000000.000000"})
            )
            .is_empty());
    }

    #[test]
    fn channel_and_user_events() {
        let mut ctx = context();
        let ops = ctx.ops(&json!({"type": "channel_created", "channel": {"id": "C2", "name": "new", "created": 1699999999, "creator": "U1"}}));
        assert!(matches!(&ops[0], LiveOp::Put { doc, .. } if doc.id() == "C2"));
        assert_eq!(ctx.channels["C2"], "new");
        let ops = ctx.ops(&json!({"type": "channel_rename", "channel": {"id": "C2", "name": "renamed", "created": 1699999999}}));
        assert!(matches!(&ops[0], LiveOp::Patch { fields, .. } if fields["name"] == "renamed"));
        let ops = ctx.ops(&json!({"type": "channel_archive", "channel": "C2", "user": "U1"}));
        assert!(matches!(&ops[0], LiveOp::Patch { fields, .. } if fields["is_archived"] == true));
        let ops = ctx.ops(&json!({"type": "channel_deleted", "channel": "C2"}));
        assert!(matches!(&ops[0], LiveOp::Delete { id, .. } if id == "C2"));
        let ops = ctx.ops(&json!({"type": "team_join", "user": {"id": "U9", "name": "nine", "updated": 1699999999, "profile": {}}}));
        assert!(
            matches!(&ops[0], LiveOp::Put { doc, version } if doc.id() == "U9" && *version == 1_699_999_999_000_000)
        );
        assert!(ctx.names.user("U9").is_some());
    }

    /// Live updates write into the same content index as syncs: every field of every op
    /// (documents, patches, derived thread fields) has an explicit mapping.
    #[test]
    fn every_field_live_updates_write_is_mapped() {
        use crate::sources::document::{ACCESS_CONTROL_FIELD, TIMESTAMP_FIELD};
        let properties = super::super::mapping::properties();
        let mut ctx = context();
        let mut written = Vec::new();
        for event in [
            json!({"type": "message", "channel": "C1", "user": "U1", "text": "re <@U1>", "ts": "1699999100.000000",
                "thread_ts": "1699999000.000100", "reactions": [{"name": "tada", "count": 1, "users": ["U1"]}],
                "files": [{"id": "F1"}], "pinned_to": ["C1"],
                "attachments": [{"title": "t", "text": "x"}]}),
            json!({"type": "channel_created", "channel": {"id": "C2", "name": "new", "created": 1699999999, "creator": "U1"}}),
            json!({"type": "channel_rename", "channel": {"id": "C2", "name": "renamed", "created": 1699999999}}),
            json!({"type": "channel_archive", "channel": "C2", "user": "U1"}),
            json!({"type": "team_join", "user": {"id": "U9", "name": "nine", "updated": 1699999999, "profile": {}}}),
        ] {
            for op in ctx.ops(&event) {
                match op {
                    LiveOp::Put { doc, .. } => written.extend(doc.fields().keys().cloned()),
                    LiveOp::Patch { fields, .. } => written.extend(fields.keys().cloned()),
                    LiveOp::Derive(d) => {
                        written.extend(d.fields.keys().cloned());
                        written.extend([d.count_field, d.latest_field, d.source_field]);
                    }
                    LiveOp::Delete { .. } => {}
                }
            }
        }
        for field in [
            "reactions",
            "files",
            "pinned_to",
            "body",
            "reply_count",
            "is_archived",
        ] {
            assert!(written.iter().any(|w| w == field), "{field} not written");
        }
        for field in written {
            if field == TIMESTAMP_FIELD || field == ACCESS_CONTROL_FIELD {
                continue; // mapped by the engine
            }
            assert!(properties.contains_key(&field), "`{field}` is not mapped");
        }
    }
}
