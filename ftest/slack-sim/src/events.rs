//! Slack Events API deliveries for workspace mutations (issue 17's live updates): the
//! `event_callback` bodies Slack would send after each mutation, and signed HTTP delivery
//! ([`sign`], [`deliver`]) with the faults a receiver must survive (bad signatures, stale
//! timestamps, duplicates, Slack's retries, out-of-order edits: the caller picks the order
//! and the headers).
//!
//! Payloads follow Slack's event docs: `message` (the message as history renders it;
//! replies as `conversations.replies` renders them), `message_changed` (`message` = the
//! edited message, `previous_message`), `message_deleted` (`deleted_ts`,
//! `previous_message`; deleting a parent sends one per message of its thread, since this
//! simulator removes the whole thread), `channel_rename`, `channel_archive`,
//! `channel_unarchive`, `channel_created` (the channel as `conversations.info` shows it),
//! `user_change`, `team_join`, `member_joined_channel`/`member_left_channel`.
//!
//! The signature is computed here independently of the connector's code: `v0=` + hex
//! HMAC-SHA256 of `v0:<timestamp>:<body>` (Slack's "Verifying requests from Slack").

use crate::model::{Loc, Workspace, NONE};
use crate::render::{channel_view, msg_view, user_view, View};
use crate::ts::{Ts, MICROS};
use crate::types::Mutation;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// `v0=<hex>` of `v0:<timestamp>:<body>` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

/// How to send one delivery.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    /// Signing secret; `None` sends no signature headers at all.
    pub secret: Option<String>,
    /// `X-Slack-Request-Timestamp` (epoch seconds).
    pub timestamp: i64,
    /// `X-Slack-Retry-Num`, when a retry.
    pub retry: Option<u32>,
}

/// POSTs `body` to `url` as Slack would; returns the status.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    how: &Delivery,
) -> anyhow::Result<u16> {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(secret) = &how.secret {
        request = request
            .header("x-slack-request-timestamp", how.timestamp.to_string())
            .header("x-slack-signature", sign(secret, how.timestamp, body));
    }
    if let Some(n) = how.retry {
        request = request
            .header("x-slack-retry-num", n.to_string())
            .header("x-slack-retry-reason", "http_timeout");
    }
    Ok(request.send().await?.status().as_u16())
}

fn render(ws: &Workspace, c: u32, ts: i64) -> Option<Value> {
    let ch = &ws.channels[c as usize];
    let (msg, view) = match ch.locate(ts)? {
        Loc::Top(i) => (ch.top[i].clone(), View::History),
        Loc::Reply(t, j) => (ch.threads[t].replies[j].clone(), View::Replies),
    };
    serde_json::to_value(msg_view(ws, ch, &msg, view)).ok()
}

/// The messages a deletion of `ts` removes (replies first), rendered before it.
fn doomed(ws: &Workspace, c: u32, ts: i64) -> Vec<(i64, Value)> {
    let ch = &ws.channels[c as usize];
    let mut out = Vec::new();
    if let Some(Loc::Top(i)) = ch.locate(ts) {
        let thread = ch.top[i].thread;
        if thread != NONE {
            for reply in &ch.threads[thread as usize].replies {
                out.extend(render(ws, c, reply.ts).map(|v| (reply.ts, v)));
            }
        }
    }
    out.extend(render(ws, c, ts).map(|v| (ts, v)));
    out
}

/// What [`events_for`] needs from before a mutation.
pub struct Before {
    deleted: Vec<(i64, Value)>,
}

/// Captures what the events of `op` need from before it is applied.
pub fn before(ws: &Workspace, op: &Mutation) -> Before {
    let deleted = match op {
        Mutation::DeleteMessage { channel, ts } => match (ws.channel_ref(channel), Ts::parse(ts)) {
            (Some(c), Some(ts)) => doomed(ws, c, ts.0),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    Before { deleted }
}

/// The `event` objects Slack sends after `op` was applied with `result` at `now_us`.
pub fn events_for(
    ws: &Workspace,
    op: &Mutation,
    result: &Value,
    before: Before,
    now_us: i64,
) -> Vec<Value> {
    if result.get("ok") != Some(&Value::Bool(true)) {
        return Vec::new();
    }
    let now = Ts(now_us).to_string();
    let chan = |r: &str| ws.channel_ref(r);
    match op {
        Mutation::AddMessage { channel, .. } | Mutation::AddReply { channel, .. } => {
            let (Some(c), Some(ts)) = (chan(channel), result["ts"].as_str().and_then(Ts::parse)) else {
                return Vec::new();
            };
            let Some(Value::Object(mut event)) = render(ws, c, ts.0) else {
                return Vec::new();
            };
            event.insert("type".into(), json!("message"));
            event.insert("channel".into(), json!(ws.channels[c as usize].id));
            event.insert("event_ts".into(), json!(ts.to_string()));
            vec![Value::Object(event)]
        }
        Mutation::EditMessage { channel, ts, .. } => {
            let (Some(c), Some(t)) = (chan(channel), Ts::parse(ts)) else {
                return Vec::new();
            };
            let Some(message) = render(ws, c, t.0) else {
                return Vec::new();
            };
            vec![json!({"type": "message", "subtype": "message_changed", "hidden": true,
                "channel": ws.channels[c as usize].id, "message": message,
                "event_ts": now, "ts": now})]
        }
        Mutation::DeleteMessage { channel, .. } => {
            let Some(c) = chan(channel) else {
                return Vec::new();
            };
            before
                .deleted
                .into_iter()
                .map(|(ts, previous)| {
                    json!({"type": "message", "subtype": "message_deleted", "hidden": true,
                        "channel": ws.channels[c as usize].id, "deleted_ts": Ts(ts).to_string(),
                        "previous_message": previous, "event_ts": now, "ts": now})
                })
                .collect()
        }
        Mutation::RenameChannel { channel, .. } => chan(channel)
            .map(|c| {
                let ch = &ws.channels[c as usize];
                vec![json!({"type": "channel_rename", "channel": {"id": ch.id, "name": ch.name,
                    "name_normalized": crate::render::normalize(&ch.name), "created": ch.created},
                    "event_ts": now})]
            })
            .unwrap_or_default(),
        Mutation::ArchiveChannel { channel } | Mutation::UnarchiveChannel { channel } => chan(channel)
            .map(|c| {
                let kind = if matches!(op, Mutation::ArchiveChannel { .. }) {
                    "channel_archive"
                } else {
                    "channel_unarchive"
                };
                let user = &ws.users[ws.owner_user as usize].id;
                vec![json!({"type": kind, "channel": ws.channels[c as usize].id, "user": user, "event_ts": now})]
            })
            .unwrap_or_default(),
        Mutation::DeactivateUser { user } | Mutation::AddUser { name: user, .. } => {
            let kind = if matches!(op, Mutation::AddUser { .. }) { "team_join" } else { "user_change" };
            let id = result["id"].as_str().unwrap_or(user);
            let Some(u) = ws.user_ref(id).or_else(|| ws.user_ref(user)) else {
                return Vec::new();
            };
            let view = serde_json::to_value(user_view(ws, &ws.users[u as usize], false)).unwrap_or_default();
            vec![json!({"type": kind, "user": view, "event_ts": now})]
        }
        Mutation::SetMembership { channel, member, user } => chan(channel)
            .map(|c| {
                let u = user
                    .as_deref()
                    .and_then(|u| ws.user_ref(u))
                    .unwrap_or(ws.bot_user);
                let kind = if *member { "member_joined_channel" } else { "member_left_channel" };
                vec![json!({"type": kind, "user": ws.users[u as usize].id,
                    "channel": ws.channels[c as usize].id, "channel_type": "C", "event_ts": now})]
            })
            .unwrap_or_default(),
        Mutation::AddChannel { name, .. } => chan(name)
            .map(|c| {
                let ch = &ws.channels[c as usize];
                let view = serde_json::to_value(channel_view(ws, ch, ws.bot_user, false)).unwrap_or_default();
                vec![json!({"type": "channel_created", "channel": view, "event_ts": now})]
            })
            .unwrap_or_default(),
    }
}

/// The `event_callback` body around `event`.
pub fn envelope(ws: &Workspace, event: Value, event_id: &str, now_us: i64) -> Value {
    json!({"token": "sim-verification-token", "team_id": ws.team_id, "api_app_id": "A0SIMAPP",
        "type": "event_callback", "event_id": event_id, "event_time": now_us / MICROS,
        "event": event})
}
