//! The specification of what the connector must index (`/_sim/expected`).
//!
//! Rules (the connector implements exactly these):
//! 1. users: if `sync_users`, one doc per `users.list` member (deleted users,
//!    bots and USLACKBOT included; members of other workspaces are not listed):
//!    `{type:"user", id, name}`.
//! 2. channels: public channels (archived included). A channel is readable if
//!    the bot is a member, or if `auto_join_channels` and it is not archived.
//!    With document-level security, also private channels the bot is in
//!    (`include_private_channels`) and DMs and group DMs the bot is in
//!    (`include_direct_messages`); never without it.
//!    One `{type:"channel", id, name}` doc per readable conversation (DMs: no name).
//! 3. messages: in each readable conversation every history message (any subtype)
//!    with `ts > oldest`, `oldest = floor(now) - fetch_last_n_days*86400`
//!    (0 days = no lower bound); id `"<channel_id>-<ts>"`; `channel` is the
//!    conversation's name, or its id for a DM.
//! 4. threads: for each such message with `reply_count > 0`, every reply of
//!    its thread regardless of the window; a broadcast reply seen both in
//!    history and in its thread is one doc.
//! 5. with DLS, `_allow_access_control`: a public channel and its messages
//!    `[channel:<id>, team:<team>]`; any other conversation and its messages
//!    `[channel:<id>]`; a user doc `[team:<team>, user:<id>]`.
//! 6. with DLS, one identity document per `users.list` member and per member of
//!    another workspace found in a readable conversation: `_id` the email (when
//!    no one else has it) else the user id; identities `user:<id>`,
//!    `email:<email>`, `team:<team>` for full members (not guests, not
//!    deactivated, not of another workspace), `channel:<id>` for each readable
//!    conversation the user is a member of; a deactivated user has none.

use crate::model::{Channel, ConvKind, Msg, User, Workspace};
use crate::render::{edited_of, thread_of};
use crate::ts::{Ts, MICROS};
use crate::types::{ExpectedDoc, ExpectedIdentity, ExpectedQuery, ExpectedSet};
use std::collections::{BTreeMap, HashMap};

/// Whether the connector reads `ch` under `q` (rule 2).
fn readable(ws: &Workspace, ch: &Channel, q: &ExpectedQuery) -> bool {
    let member = ch.is_member(ws.bot_user);
    let dls = q.use_document_level_security;
    match ch.kind {
        ConvKind::Public => member || (q.auto_join_channels && !ch.archived),
        ConvKind::Private => dls && q.include_private_channels && member,
        ConvKind::Im | ConvKind::Mpim => dls && q.include_direct_messages && member,
    }
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort_unstable();
    items.dedup();
    items
}

/// Rule 5 for a conversation.
fn conversation_readers(ws: &Workspace, ch: &Channel) -> Vec<String> {
    let mut readers = vec![format!("channel:{}", ch.id)];
    if ch.kind == ConvKind::Public {
        readers.push(format!("team:{}", ws.team_id));
    }
    sorted(readers)
}

pub fn compute(ws: &Workspace, q: &ExpectedQuery, default_now: i64) -> ExpectedSet {
    let now = q.now.unwrap_or(default_now);
    let oldest = (q.fetch_last_n_days > 0).then(|| now - i64::from(q.fetch_last_n_days) * 86_400);
    let dls = q.use_document_level_security;
    let mut docs: BTreeMap<String, ExpectedDoc> = BTreeMap::new();
    if q.sync_users {
        for u in ws.users.iter().filter(|u| !u.external) {
            docs.insert(
                u.id.clone(),
                ExpectedDoc::User {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    allow_access_control: dls.then(|| {
                        sorted(vec![
                            format!("team:{}", ws.team_id),
                            format!("user:{}", u.id),
                        ])
                    }),
                },
            );
        }
    }
    for ch in ws.channels.iter().filter(|c| readable(ws, c, q)) {
        let readers = dls.then(|| conversation_readers(ws, ch));
        let named = ch.kind != ConvKind::Im;
        docs.insert(
            ch.id.clone(),
            ExpectedDoc::Channel {
                id: ch.id.clone(),
                name: named.then(|| ch.name.clone()),
                allow_access_control: readers.clone(),
            },
        );
        let channel = if named { &ch.name } else { &ch.id };
        let msg_doc =
            |m: &Msg, thread_ts: Option<i64>, reply_count: Option<usize>| ExpectedDoc::Message {
                id: format!("{}-{}", ch.id, Ts(m.ts)),
                channel: channel.clone(),
                channel_id: ch.id.clone(),
                ts: Ts(m.ts).to_string(),
                thread_ts: thread_ts.map(|t| Ts(t).to_string()),
                reply_count: reply_count.map(|n| n as u64),
                edited_ts: edited_of(ws, ch, m).map(|(_, t)| Ts(t).to_string()),
                allow_access_control: readers.clone(),
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
        identities: if dls { identities(ws, q) } else { Vec::new() },
    }
}

/// Rule 6.
fn identities(ws: &Workspace, q: &ExpectedQuery) -> Vec<ExpectedIdentity> {
    let rooms: Vec<&Channel> = ws.channels.iter().filter(|c| readable(ws, c, q)).collect();
    let in_a_room = |i: u32| rooms.iter().any(|c| c.is_member(i));
    let users: Vec<(u32, &User)> = (0..ws.users.len() as u32)
        .map(|i| (i, &ws.users[i as usize]))
        .filter(|(i, u)| !u.external || in_a_room(*i))
        .collect();
    let mut emails: HashMap<String, usize> = HashMap::new();
    for (_, u) in &users {
        if let Some(email) = &u.email {
            *emails.entry(email.to_lowercase()).or_default() += 1;
        }
    }
    let mut out: Vec<ExpectedIdentity> = users
        .iter()
        .map(|&(i, u)| {
            let status = if u.deleted {
                "deactivated"
            } else if u.external {
                "external"
            } else if u.is_restricted || u.is_ultra_restricted {
                "guest"
            } else {
                "member"
            };
            let mut access = Vec::new();
            if !u.deleted {
                access.push(format!("user:{}", u.id));
                if let Some(email) = &u.email {
                    access.push(format!("email:{email}"));
                }
                if status == "member" {
                    access.push(format!("team:{}", ws.team_id));
                }
                for c in rooms.iter().filter(|c| c.is_member(i)) {
                    access.push(format!("channel:{}", c.id));
                }
            }
            let id = match &u.email {
                Some(email) if emails.get(&email.to_lowercase()) == Some(&1) => email.clone(),
                _ => u.id.clone(),
            };
            ExpectedIdentity {
                id,
                user_id: u.id.clone(),
                status: status.to_string(),
                access_control: sorted(access),
            }
        })
        .collect();
    out.sort();
    out
}
