//! The specification of what the connector must index (`/_sim/expected`).
//!
//! Rules (the connector implements exactly these):
//! 1. users: if `sync_users`, one doc per `users.list` member (deleted users,
//!    bots and USLACKBOT included): `{type:"user", id, name}`.
//! 2. channels: public channels (archived included). A channel is readable if
//!    the bot is a member, or if `auto_join_channels` and it is not archived.
//!    One `{type:"channel", id, name}` doc per readable channel.
//! 3. messages: in each readable channel every history message (any subtype)
//!    with `ts > oldest`, `oldest = floor(now) - fetch_last_n_days*86400`
//!    (0 days = no lower bound); id `"<channel_id>-<ts>"`.
//! 4. threads: for each such message with `reply_count > 0`, every reply of
//!    its thread regardless of the window; a broadcast reply seen both in
//!    history and in its thread is one doc.
//! 5. private channels, DMs and group DMs are not indexed.

use crate::model::{ConvKind, Msg, Workspace};
use crate::render::{edited_of, thread_of};
use crate::ts::{Ts, MICROS};
use crate::types::{ExpectedDoc, ExpectedQuery, ExpectedSet};
use std::collections::BTreeMap;

pub fn compute(ws: &Workspace, q: &ExpectedQuery, default_now: i64) -> ExpectedSet {
    let now = q.now.unwrap_or(default_now);
    let oldest = (q.fetch_last_n_days > 0).then(|| now - i64::from(q.fetch_last_n_days) * 86_400);
    let mut docs: BTreeMap<String, ExpectedDoc> = BTreeMap::new();
    if q.sync_users {
        for u in &ws.users {
            docs.insert(
                u.id.clone(),
                ExpectedDoc::User {
                    id: u.id.clone(),
                    name: u.name.clone(),
                },
            );
        }
    }
    for ch in ws.channels.iter().filter(|c| c.kind == ConvKind::Public) {
        let readable = ch.is_member(ws.bot_user) || (q.auto_join_channels && !ch.archived);
        if !readable {
            continue;
        }
        docs.insert(
            ch.id.clone(),
            ExpectedDoc::Channel {
                id: ch.id.clone(),
                name: ch.name.clone(),
            },
        );
        let msg_doc =
            |m: &Msg, thread_ts: Option<i64>, reply_count: Option<usize>| ExpectedDoc::Message {
                id: format!("{}-{}", ch.id, Ts(m.ts)),
                channel: ch.name.clone(),
                channel_id: ch.id.clone(),
                ts: Ts(m.ts).to_string(),
                thread_ts: thread_ts.map(|t| Ts(t).to_string()),
                reply_count: reply_count.map(|n| n as u64),
                edited_ts: edited_of(ws, ch, m).map(|(_, t)| Ts(t).to_string()),
            };
        let lo = oldest.map(|o| o * MICROS).unwrap_or(i64::MIN);
        let start = ch.top.partition_point(|m| m.ts <= lo);
        for m in &ch.top[start..] {
            let doc = match thread_of(ch, m) {
                Some(th) => {
                    for r in &th.replies {
                        let d = msg_doc(r, Some(th.parent_ts), None);
                        docs.insert(d.id().to_string(), d);
                    }
                    msg_doc(m, Some(m.ts), Some(th.replies.len()))
                }
                None => {
                    let tts = ch
                        .threads
                        .get(m.thread as usize)
                        .filter(|_| m.kind == crate::model::Kind::Broadcast);
                    msg_doc(m, tts.map(|t| t.parent_ts), None)
                }
            };
            docs.insert(doc.id().to_string(), doc);
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in ["user", "channel", "message"] {
        counts.insert(t.to_string(), 0);
    }
    for d in docs.values() {
        *counts.entry(d.doc_type().to_string()).or_default() += 1;
    }
    let docs: Vec<ExpectedDoc> = docs.into_values().collect();
    ExpectedSet {
        total: docs.len(),
        docs,
        counts,
        now,
        oldest,
    }
}
