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
//! 7. filters: `exclude_archived_channels` makes archived conversations unreadable;
//!    `channels_include` (when not empty) keeps only the conversations one of its
//!    entries names, `channels_exclude` drops those one of its entries names (and wins):
//!    an entry `/re/` is a regular expression searched in the id and the name, any
//!    other entry (without a leading `#`) equals the id or, ignoring case, the name;
//!    DMs have no name. `exclude_bot_messages` drops `bot_message` messages,
//!    `exclude_channel_event_messages` drops `channel_join` ones; a dropped thread
//!    parent keeps its replies. `start_date` raises `oldest` when it is later.
//! 8. workspace documents: `sync_team` → `{type:"team", id: team id, name}`;
//!    `sync_user_groups` → per `usergroups.list` group `{type:"usergroup", id, name,
//!    users}` (members in the answer's order; both `[team:<team>]` with DLS); `sync_channel_members` → per readable
//!    conversation and member `{type:"channel_member", id:"<channel>-<user>", channel_id,
//!    user_id}` with the conversation's readers (rule 5). Members as `conversations.members`
//!    lists them when the expected set is asked (after the sync: auto-join adds the bot).
//! 9. files: `sync_files` → per file of a kept `file_share` message of rule 3 (in a
//!    readable conversation, in the window) `{type:"file", id:"F…", name, channel_ids,
//!    content_skipped, text_prefix}` with the conversation's readers (rule 5).
//!    `content_skipped`, first that applies: `content_disabled` (cap 0),
//!    `binary_without_pipeline` (PNG, PDF, SVG without `extract_binary_content`),
//!    `too_large` (size over `max_file_size`), `too_large_for_pipeline` (a binary over
//!    `max_pipeline_file_size`), then the download's class
//!    (`crate::files`): `not_found` (404), `forbidden` (403), `truncated`; otherwise no
//!    reason, and a text file's `body` starts with `text_prefix`.
//! 10. remote files: `sync_remote_files` → per remote file ([`crate::remote`]) shared in a
//!     readable conversation (rule 2; one shared nowhere makes no document)
//!     `{type:"remote_file", id:"F…", title, url: external_url, channel_ids}` with the
//!     conversation's readers (rule 5).
//! 11. who reacted: `sync_reaction_users` → every message document of rule 3 and 4 carries
//!     `reactions`: each reaction's name, count and every user who made it, in the order
//!     they reacted ([`crate::render::reactions_of`]: what `reactions.get` with `full`
//!     lists, where history lists at most
//!     [`LISTED_REACTION_USERS`](crate::render::LISTED_REACTION_USERS)); empty for a
//!     message without reactions.

use crate::model::{Channel, ConvKind, Msg, User, Workspace};
use crate::render::{edited_of, reactions_of, thread_of};
use crate::ts::{Ts, MICROS};
use crate::types::{ExpectedDoc, ExpectedIdentity, ExpectedQuery, ExpectedReaction, ExpectedSet};
use std::collections::{BTreeMap, HashMap};

/// Whether the connector reads `ch` under `q` (rule 2).
fn readable(ws: &Workspace, ch: &Channel, q: &ExpectedQuery) -> bool {
    if q.exclude_archived_channels && ch.archived {
        return false;
    }
    let name = (ch.kind != ConvKind::Im).then_some(ch.name.as_str());
    let include_ok = q.channels_include.is_empty() || names(&q.channels_include, &ch.id, name);
    if !include_ok || names(&q.channels_exclude, &ch.id, name) {
        return false;
    }
    let member = ch.is_member(ws.bot_user);
    let dls = q.use_document_level_security;
    match ch.kind {
        ConvKind::Public => member || (q.auto_join_channels && !ch.archived),
        ConvKind::Private => dls && q.include_private_channels && member,
        ConvKind::Im | ConvKind::Mpim => dls && q.include_direct_messages && member,
    }
}

/// Rule 7: whether an entry of `list` names the conversation.
fn names(list: &[String], id: &str, name: Option<&str>) -> bool {
    list.iter().map(|e| e.trim()).any(|entry| {
        if entry.len() >= 2 && entry.starts_with('/') && entry.ends_with('/') {
            // An invalid pattern names nothing (the connector refuses it outright).
            regex::Regex::new(&entry[1..entry.len() - 1])
                .is_ok_and(|re| re.is_match(id) || name.is_some_and(|n| re.is_match(n)))
        } else {
            let entry = entry.trim_start_matches('#');
            !entry.is_empty()
                && (entry == id || name.is_some_and(|n| n.to_lowercase() == entry.to_lowercase()))
        }
    })
}

/// Rule 7: whether the message filters keep `m`.
fn kept(m: &Msg, q: &ExpectedQuery) -> bool {
    match m.kind {
        crate::model::Kind::Bot => !q.exclude_bot_messages,
        crate::model::Kind::Join => !q.exclude_channel_event_messages,
        _ => true,
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
    let by_days = (q.fetch_last_n_days > 0).then(|| now - i64::from(q.fetch_last_n_days) * 86_400);
    let oldest = match (by_days, q.start_date) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
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
                reactions: q.sync_reaction_users.then(|| reactions(ws, ch, m)),
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
                    if !kept(m, q) {
                        continue;
                    }
                    msg_doc(m, Some(m.ts), Some(th.replies.len()))
                }
                None if !kept(m, q) => continue,
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
    let workspace_readers = dls.then(|| vec![format!("team:{}", ws.team_id)]);
    if q.sync_team {
        docs.insert(
            ws.team_id.clone(),
            ExpectedDoc::Team {
                id: ws.team_id.clone(),
                name: ws.team_name.clone(),
                allow_access_control: workspace_readers.clone(),
            },
        );
    }
    if q.sync_user_groups {
        for g in &ws.usergroups {
            // In `usergroups.list`'s order.
            let users = g
                .users
                .iter()
                .map(|&u| ws.users[u as usize].id.clone())
                .collect();
            docs.insert(
                g.id.clone(),
                ExpectedDoc::Usergroup {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    users,
                    allow_access_control: workspace_readers.clone(),
                },
            );
        }
    }
    if q.sync_channel_members {
        for ch in ws.channels.iter().filter(|c| readable(ws, c, q)) {
            let readers = dls.then(|| conversation_readers(ws, ch));
            for &m in &ch.members {
                let user_id = ws.users[m as usize].id.clone();
                let id = format!("{}-{user_id}", ch.id);
                docs.insert(
                    id.clone(),
                    ExpectedDoc::ChannelMember {
                        id,
                        channel_id: ch.id.clone(),
                        user_id,
                        allow_access_control: readers.clone(),
                    },
                );
            }
        }
    }
    if q.sync_files {
        files(ws, q, oldest, &mut docs);
    }
    if q.sync_remote_files {
        remote_files(ws, q, &mut docs);
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

/// Rule 11: the reactions of `m` with every user.
fn reactions(ws: &Workspace, ch: &Channel, m: &Msg) -> Vec<ExpectedReaction> {
    reactions_of(ws, ch, m)
        .into_iter()
        .map(|r| ExpectedReaction {
            name: r.name.to_string(),
            count: r.users.len() as u64,
            users: r
                .users
                .iter()
                .map(|&u| ws.users[u as usize].id.clone())
                .collect(),
        })
        .collect()
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

/// Rule 10.
fn remote_files(ws: &Workspace, q: &ExpectedQuery, docs: &mut BTreeMap<String, ExpectedDoc>) {
    for file in crate::remote::remote_files(ws) {
        let Some(ch) = file.channel.map(|c| &ws.channels[c as usize]) else {
            continue;
        };
        if !readable(ws, ch, q) {
            continue;
        }
        docs.insert(
            file.id.clone(),
            ExpectedDoc::RemoteFile {
                id: file.id.clone(),
                title: file.title.clone(),
                url: file.external_url.clone(),
                channel_ids: vec![ch.id.clone()],
                allow_access_control: q
                    .use_document_level_security
                    .then(|| conversation_readers(ws, ch)),
            },
        );
    }
}

/// Rule 9.
fn files(
    ws: &Workspace,
    q: &ExpectedQuery,
    oldest: Option<i64>,
    docs: &mut BTreeMap<String, ExpectedDoc>,
) {
    use crate::files::{self as f, Class};
    let dls = q.use_document_level_security;
    let lo = oldest.map(|o| o * MICROS).unwrap_or(i64::MIN);
    for ch in ws.channels.iter().filter(|c| readable(ws, c, q)) {
        let readers = dls.then(|| conversation_readers(ws, ch));
        let start = ch.top.partition_point(|m| m.ts <= lo);
        for m in ch.top[start..]
            .iter()
            .filter(|m| m.kind == crate::model::Kind::FileShare && kept(m, q))
        {
            let view = crate::render::file_view(ws, ch, m, false);
            let text = f::is_text(view.filetype);
            let skipped = if q.max_file_size == 0 {
                Some("content_disabled")
            } else if !text && !q.extract_binary_content {
                Some("binary_without_pipeline")
            } else if view.size > q.max_file_size {
                Some("too_large")
            } else if !text && view.size > q.max_pipeline_file_size {
                Some("too_large_for_pipeline")
            } else {
                match f::class(&view.id) {
                    Class::NotFound => Some("not_found"),
                    Class::Forbidden => Some("forbidden"),
                    Class::Truncated => Some("truncated"),
                    Class::Huge | Class::Ok => None,
                }
            };
            let text_prefix = if skipped.is_none() {
                f::text_prefix(&view.id, view.filetype)
            } else {
                None
            };
            docs.insert(
                view.id.clone(),
                ExpectedDoc::File {
                    id: view.id.clone(),
                    name: view.name.to_string(),
                    channel_ids: vec![ch.id.clone()],
                    content_skipped: skipped.map(str::to_string),
                    text_prefix,
                    allow_access_control: readers.clone(),
                },
            );
        }
    }
}
