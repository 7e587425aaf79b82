//! JSON views of model objects, shaped like Slack's documented examples, and
//! the deterministic text generator.
//!
//! Invariant: everything here is a pure function of the model (and the seed),
//! so the same message always renders the same; views borrow from the model
//! and are serialized straight into the response body (no `serde_json::Value`
//! trees on the hot path).

use crate::model::{make_id, mix};
use crate::model::{Channel, ConvKind, Kind, Msg, Rng, User, Workspace, NONE};
use crate::ts::{Ts, MICROS};
use serde::Serialize;
use std::borrow::Cow;

const WORDS: &[&str] = &[
    "the",
    "deploy",
    "looks",
    "good",
    "to",
    "me",
    "can",
    "we",
    "ship",
    "it",
    "today",
    "please",
    "review",
    "my",
    "PR",
    "when",
    "you",
    "have",
    "a",
    "minute",
    "thanks",
    "for",
    "the",
    "quick",
    "fix",
    "meeting",
    "moved",
    "to",
    "3pm",
    "déjà",
    "vu",
    "naïve",
    "façade",
    "smörgåsbord",
    "日本語",
    "テスト",
    "Привет",
    "мир",
    "ünïcödé",
    "🎉",
    "🚀",
    "✅",
    "latency",
    "spike",
    "on",
    "api",
    "gateway",
    "rollback",
    "incident",
    "resolved",
    "customer",
    "asked",
    "about",
    "pricing",
    "Q3",
    "roadmap",
    "R&D",
    "a<b",
    "x>y",
    "\"quoted\"",
    "tab\there",
    "dashboards",
    "updated",
    "coffee",
    "☕",
    "lunch?",
    "standup",
    "notes",
    "in",
    "the",
    "doc",
    "ETA",
    "tomorrow",
];
const EMOJI: &[&str] = &[
    "tada",
    "thumbsup",
    "eyes",
    "rocket",
    "white_check_mark",
    "fire",
    "pray",
];
const LINKS: &[(&str, &str)] = &[
    ("https://example.com/docs/runbook", "runbook"),
    ("https://github.com/example/repo/pull/42", "PR #42"),
    ("https://status.example.com", "status page"),
    ("https://example.com/q?x=1&y=2", "search"),
];
const FILES: &[(&str, &str, &str, &str)] = &[
    ("report.pdf", "application/pdf", "pdf", "PDF"),
    ("screenshot.png", "image/png", "png", "PNG"),
    ("notes.txt", "text/plain", "text", "Plain Text"),
    ("data.csv", "text/csv", "csv", "CSV"),
    ("diagram.svg", "image/svg+xml", "svg", "SVG"),
    ("readme.md", "text/markdown", "markdown", "Markdown"),
    ("rows.json", "application/json", "json", "JSON"),
    ("page.html", "text/html", "html", "HTML"),
];

/// A shared file's name, MIME type and Slack file type, by its name (downloads).
pub fn file_kind(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|f| f.0 == name)
        .map(|&(_, mime, ft, _)| (mime, ft))
}

/// One piece of generated message content.
enum Seg<'a> {
    Text(String),
    User(&'a str),
    Chan(&'a str, &'a str),
    Link(&'static str, &'static str),
    Emoji(&'static str),
}

/// Slack's three mrkdwn escapes. Copies unescaped runs as slices (hot path).
fn escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

fn msg_rng(ws: &Workspace, ch: &Channel, msg: &Msg) -> Rng {
    Rng::new(mix(&[ws.seed, 50, u64::from(ch.idx), u64::from(msg.gen)]))
}

fn segments<'a>(ws: &'a Workspace, ch: &'a Channel, msg: &Msg) -> Vec<Seg<'a>> {
    let mut rng = msg_rng(ws, ch, msg);
    let mut segs = Vec::with_capacity(6);
    let sentences = 1 + rng.below(3);
    for _ in 0..sentences {
        let n = 3 + rng.below(10) as usize;
        let mut s = String::with_capacity(n * 7);
        for w in 0..n {
            if w > 0 {
                s.push(' ');
            }
            s.push_str(rng.pick_str(WORDS));
        }
        s.push(*rng.pick(&['.', '!', '?', '.']));
        segs.push(Seg::Text(s));
        match rng.below(20) {
            0..=3 => {
                let u = &ws.users[rng.below(ws.users.len() as u64) as usize];
                segs.push(Seg::User(&u.id));
            }
            4 => {
                let c = &ws.channels[rng.below(ws.channels.len() as u64) as usize];
                if matches!(c.kind, ConvKind::Public) {
                    segs.push(Seg::Chan(&c.id, &c.name));
                }
            }
            5 | 6 => {
                let (u, l) = *rng.pick(LINKS);
                segs.push(Seg::Link(u, l));
            }
            7..=9 => segs.push(Seg::Emoji(rng.pick_str(EMOJI))),
            _ => {}
        }
    }
    segs
}

fn segs_text(segs: &[Seg<'_>]) -> String {
    let mut out = String::with_capacity(128);
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match s {
            Seg::Text(t) => escape_into(&mut out, t),
            Seg::User(id) => {
                out.push_str("<@");
                out.push_str(id);
                out.push('>');
            }
            Seg::Chan(id, name) => {
                out.push_str("<#");
                out.push_str(id);
                out.push('|');
                out.push_str(name);
                out.push('>');
            }
            Seg::Link(u, l) => {
                out.push('<');
                escape_into(&mut out, u);
                out.push('|');
                out.push_str(l);
                out.push('>');
            }
            Seg::Emoji(e) => {
                out.push(':');
                out.push_str(e);
                out.push(':');
            }
        }
    }
    out
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Elem<'a> {
    Text {
        text: Cow<'a, str>,
    },
    User {
        user_id: &'a str,
    },
    Channel {
        channel_id: &'a str,
    },
    Link {
        url: &'static str,
        text: &'static str,
    },
    Emoji {
        name: &'static str,
    },
}

#[derive(Serialize)]
pub struct Section<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    elements: Vec<Elem<'a>>,
}

#[derive(Serialize)]
pub struct Block<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    block_id: String,
    elements: [Section<'a>; 1],
}

fn segs_blocks<'a>(segs: Vec<Seg<'a>>, block_id: String) -> Block<'a> {
    let mut elements = Vec::with_capacity(segs.len() * 2);
    for (i, s) in segs.into_iter().enumerate() {
        if i > 0 {
            elements.push(Elem::Text {
                text: Cow::Borrowed(" "),
            });
        }
        elements.push(match s {
            Seg::Text(t) => Elem::Text {
                text: Cow::Owned(t),
            },
            Seg::User(id) => Elem::User { user_id: id },
            Seg::Chan(id, _) => Elem::Channel { channel_id: id },
            Seg::Link(url, text) => Elem::Link { url, text },
            Seg::Emoji(name) => Elem::Emoji { name },
        });
    }
    Block {
        ty: "rich_text",
        block_id,
        elements: [Section {
            ty: "rich_text_section",
            elements,
        }],
    }
}

#[derive(Serialize)]
pub struct Edited<'a> {
    pub user: &'a str,
    pub ts: Ts,
}

#[derive(Serialize)]
pub struct Reaction<'a> {
    pub name: &'static str,
    pub users: Vec<&'a str>,
    pub count: usize,
}

#[derive(Serialize)]
pub struct Attachment {
    pub id: u32,
    pub fallback: String,
    pub text: String,
    pub title: &'static str,
    pub title_link: &'static str,
    pub color: &'static str,
}

#[derive(Serialize)]
pub struct FileView<'a> {
    pub id: String,
    pub created: i64,
    pub timestamp: i64,
    pub name: &'static str,
    pub title: &'static str,
    pub mimetype: &'static str,
    pub filetype: &'static str,
    pub pretty_type: &'static str,
    pub user: &'a str,
    pub user_team: &'a str,
    pub editable: bool,
    pub size: u64,
    pub mode: &'static str,
    pub is_external: bool,
    pub external_type: &'static str,
    pub is_public: bool,
    pub public_url_shared: bool,
    pub display_as_bot: bool,
    pub username: &'static str,
    pub url_private: String,
    pub url_private_download: String,
    pub permalink: String,
    pub permalink_public: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ims: Option<Vec<&'a str>>,
    pub comments_count: u32,
}

/// A message as Slack returns it from history/replies.
#[derive(Serialize)]
pub struct MsgView<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<&'a str>,
    pub text: String,
    pub ts: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<[Block<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<Attachment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileView<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_as_bot: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited: Option<Edited<'a>>,
    /// Conversations the message is pinned in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_to: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_users_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_reply: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_users: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_locked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactions: Option<Vec<Reaction<'a>>>,
}

/// Edit state of a message: the override's, else a deterministic ~5% of
/// plain messages edited 1–50 min after posting.
pub fn edited_of(ws: &Workspace, ch: &Channel, msg: &Msg) -> Option<(u32, i64)> {
    if msg.ovr != NONE {
        return ws.overrides.get(msg.ovr as usize).and_then(|o| o.edited);
    }
    if !matches!(msg.kind, Kind::Plain | Kind::Reply) {
        return None;
    }
    let h = mix(&[ws.seed, 51, u64::from(ch.idx), u64::from(msg.gen)]);
    matches!(h % 20, 0).then(|| {
        (
            msg.user,
            msg.ts - msg.ts % MICROS + (60 + (h >> 8) as i64 % 2940) * MICROS,
        )
    })
}

/// The thread a message starts (parent) — `None` for replies, broadcasts and
/// thread-less messages, or when every reply was deleted.
pub fn thread_of<'w>(ch: &'w Channel, msg: &Msg) -> Option<&'w crate::model::Thread> {
    if msg.thread == NONE || matches!(msg.kind, Kind::Reply | Kind::Broadcast) {
        return None;
    }
    ch.threads
        .get(msg.thread as usize)
        .filter(|t| !t.replies.is_empty())
}

pub fn file_view<'a>(
    ws: &'a Workspace,
    ch: &'a Channel,
    msg: &Msg,
    with_channels: bool,
) -> FileView<'a> {
    let h = mix(&[ws.seed, 52, u64::from(ch.idx), u64::from(msg.gen)]);
    let (name, mimetype, filetype, pretty) = FILES[(h % FILES.len() as u64) as usize];
    let id = make_id("F", h);
    let user = ws.users[msg.user as usize].id.as_str();
    let created = Ts(msg.ts).secs();
    let base = format!("{}/files-pri/{}-{}/{}", ws.files_base, ws.team_id, id, name);
    let (channels, groups, ims) = if with_channels {
        let v = vec![ch.id.as_str()];
        match ch.kind {
            ConvKind::Public => (Some(v), Some(vec![]), Some(vec![])),
            ConvKind::Private | ConvKind::Mpim => (Some(vec![]), Some(v), Some(vec![])),
            ConvKind::Im => (Some(vec![]), Some(vec![]), Some(v)),
        }
    } else {
        (None, None, None)
    };
    let size = crate::files::size(&id, filetype);
    FileView {
        permalink: format!(
            "https://{}.slack.com/files/{}/{}/{}",
            ws.domain, user, id, name
        ),
        permalink_public: format!(
            "https://slack-files.com/{}-{}-{:x}",
            ws.team_id,
            id,
            h >> 40
        ),
        url_private_download: format!("{base}/download/{name}"),
        url_private: base,
        id,
        created,
        timestamp: created,
        name,
        title: name,
        mimetype,
        filetype,
        pretty_type: pretty,
        user,
        user_team: &ws.team_id,
        editable: false,
        size,
        mode: "hosted",
        is_external: false,
        external_type: "",
        is_public: ch.kind == ConvKind::Public,
        public_url_shared: false,
        display_as_bot: false,
        username: "",
        channels,
        groups,
        ims,
        comments_count: 0,
    }
}

/// How many users each reaction lists in `conversations.history` and
/// `conversations.replies` (and in `reactions.get` without `full`), while `count` is
/// every user: Slack's method docs say the list is limited "to X users, and X might
/// change", and that `reactions.get` with `full=true` returns the complete list. Small,
/// so that the small workspace's channels have reactions over it.
pub const LISTED_REACTION_USERS: usize = 4;

/// One reaction of a message in the model: its emoji and every user who made it, in the
/// order they reacted (user indices, distinct).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionOf {
    pub name: &'static str,
    pub users: Vec<u32>,
}

/// The reactions of `msg` (pure: a hash of the message, like [`pinned`], not its random
/// stream): about 15% of messages but join notices have one or two. A quarter of those in
/// conversations with more than [`LISTED_REACTION_USERS`] possible reactors get a popular
/// first reaction, whose users outnumber what history lists. Reactors are the
/// conversation's members but the app's bot user (Slack always lists the authenticated
/// user among a reaction's users when it reacted; leaving it out keeps the listed users
/// plainly the first ones, and keeps auto-join from changing any reaction), distinct, in
/// an order of their own per message.
pub fn reactions_of(ws: &Workspace, ch: &Channel, msg: &Msg) -> Vec<ReactionOf> {
    if msg.kind == Kind::Join {
        return Vec::new();
    }
    let (idx, gen) = (u64::from(ch.idx), u64::from(msg.gen));
    let h = mix(&[ws.seed, 81, idx, gen]);
    if h % 100 >= 15 {
        return Vec::new();
    }
    let mut ranked: Vec<(u64, u32)> = ch
        .members
        .iter()
        .filter(|&&u| u != ws.bot_user)
        .map(|&u| (mix(&[ws.seed, 82, idx, gen, u64::from(u)]), u))
        .collect();
    if ranked.is_empty() {
        return Vec::new();
    }
    ranked.sort_unstable();
    let order: Vec<u32> = ranked.into_iter().map(|(_, u)| u).collect();
    let n = order.len();
    let listed = LISTED_REACTION_USERS;
    let first = if n > listed && (h >> 8).is_multiple_of(4) {
        // listed + 1 ..= n
        listed + 1 + ((h >> 12) % (n - listed) as u64) as usize
    } else {
        (1 + ((h >> 12) % 3) as usize).min(n)
    };
    let e = ((h >> 20) % EMOJI.len() as u64) as usize;
    let mut out = vec![ReactionOf {
        name: EMOJI[e],
        users: order[..first].to_vec(),
    }];
    if (h >> 28).is_multiple_of(3) {
        let k = (1 + ((h >> 32) % 2) as usize).min(n);
        let other = (e + 1 + ((h >> 36) % (EMOJI.len() as u64 - 1)) as usize) % EMOJI.len();
        out.push(ReactionOf {
            name: EMOJI[other],
            users: order[n - k..].iter().rev().copied().collect(),
        });
    }
    out
}

/// `reactions` as Slack renders them: each with `count` (every user) and at most `listed`
/// of its users.
pub fn reaction_views<'a>(
    ws: &'a Workspace,
    reactions: &[ReactionOf],
    listed: usize,
) -> Vec<Reaction<'a>> {
    reactions
        .iter()
        .map(|r| Reaction {
            name: r.name,
            users: r
                .users
                .iter()
                .take(listed)
                .map(|&u| ws.users[u as usize].id.as_str())
                .collect(),
            count: r.users.len(),
        })
        .collect()
}

/// Where the message is rendered: history shows parents with their thread
/// summary; replies views add `parent_user_id` to replies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum View {
    History,
    Replies,
}

/// Whether `msg` is pinned in its conversation: one message in 40 but join notices,
/// decided by a hash (not the message's random stream, so nothing else changes).
pub fn pinned(ws: &Workspace, ch: &Channel, msg: &Msg) -> bool {
    msg.kind != Kind::Join
        && mix(&[ws.seed, 71, u64::from(ch.idx), u64::from(msg.gen)]).is_multiple_of(40)
}

pub fn msg_view<'a>(ws: &'a Workspace, ch: &'a Channel, msg: &Msg, view: View) -> MsgView<'a> {
    let user = &ws.users[msg.user as usize];
    let ovr = (msg.ovr != NONE)
        .then(|| ws.overrides.get(msg.ovr as usize))
        .flatten();
    let mut rng = msg_rng(ws, ch, msg);
    let block_id = format!("{:05x}", rng.next_u64() & 0xFFFFF);
    let (text, blocks) = match (ovr.and_then(|o| o.text.as_deref()), msg.kind) {
        (Some(t), _) => {
            let mut esc = String::with_capacity(t.len());
            escape_into(&mut esc, t);
            let b = segs_blocks(vec![Seg::Text(t.to_string())], block_id);
            (esc, Some([b]))
        }
        (None, Kind::Join) => (format!("<@{}> has joined the channel", user.id), None),
        (None, Kind::Me) => {
            let segs = segments(ws, ch, msg);
            (segs_text(&segs), None)
        }
        (None, Kind::FileShare) if rng.chance(0.4) => (String::new(), None),
        (None, _) => {
            let segs = segments(ws, ch, msg);
            let text = segs_text(&segs);
            let blocks = (msg.kind != Kind::Bot).then(|| [segs_blocks(segs, block_id)]);
            (text, blocks)
        }
    };
    let is_bot_msg = msg.kind == Kind::Bot;
    let mut v = MsgView {
        ty: "message",
        subtype: msg.kind.subtype(),
        user: (!is_bot_msg).then_some(user.id.as_str()),
        bot_id: if is_bot_msg {
            user.bot_id.as_deref()
        } else {
            None
        },
        username: is_bot_msg.then_some(user.name.as_str()),
        app_id: None,
        text,
        ts: Ts(msg.ts),
        client_msg_id: matches!(msg.kind, Kind::Plain | Kind::Reply | Kind::Broadcast).then(|| {
            let h = mix(&[
                ws.seed,
                53,
                u64::from(ch.idx),
                u64::from(msg.gen),
                msg.ts as u64,
            ]);
            format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                h >> 32,
                (h >> 16) & 0xFFFF,
                h & 0xFFF,
                (h >> 20) & 0xFFF,
                (h.rotate_left(17)) & 0xFFFF_FFFF_FFFF
            )
        }),
        team: (!is_bot_msg).then_some(ws.team_id.as_str()),
        blocks,
        attachments: None,
        files: None,
        upload: None,
        display_as_bot: None,
        edited: None,
        pinned_to: pinned(ws, ch, msg).then(|| vec![ch.id.as_str()]),
        thread_ts: None,
        reply_count: None,
        reply_users_count: None,
        latest_reply: None,
        reply_users: None,
        is_locked: None,
        subscribed: None,
        parent_user_id: None,
        reactions: None,
    };
    if is_bot_msg && ovr.is_none() {
        v.attachments = Some(vec![Attachment {
            id: 1,
            fallback: format!("[{}] build #{}", user.name, msg.gen),
            text: format!("Build #{} finished: *passed* ✅", msg.gen),
            title: "CI run",
            title_link: "https://ci.example.com/runs/1",
            color: "36a64f",
        }]);
    }
    if msg.kind == Kind::FileShare {
        v.files = Some(vec![file_view(ws, ch, msg, false)]);
        v.upload = Some(false);
        v.display_as_bot = Some(false);
    }
    if let Some((eu, ets)) = edited_of(ws, ch, msg) {
        v.edited = Some(Edited {
            user: &ws.users[eu as usize].id,
            ts: Ts(ets),
        });
    }
    let reactions = reactions_of(ws, ch, msg);
    if !reactions.is_empty() {
        v.reactions = Some(reaction_views(ws, &reactions, LISTED_REACTION_USERS));
    }
    if let Some(th) = thread_of(ch, msg) {
        let mut ru: Vec<&str> = Vec::new();
        for r in &th.replies {
            let id = ws.users[r.user as usize].id.as_str();
            if !ru.contains(&id) {
                ru.push(id);
            }
        }
        v.thread_ts = Some(Ts(msg.ts));
        v.reply_count = Some(th.replies.len());
        v.reply_users_count = Some(ru.len());
        v.latest_reply = th.replies.last().map(|r| Ts(r.ts));
        ru.truncate(5);
        v.reply_users = Some(ru);
        v.is_locked = Some(false);
        v.subscribed = Some(false);
    } else if matches!(msg.kind, Kind::Reply | Kind::Broadcast) {
        if let Some(th) = ch.threads.get(msg.thread as usize) {
            v.thread_ts = Some(Ts(th.parent_ts));
            if view == View::Replies || msg.kind == Kind::Broadcast {
                v.parent_user_id = Some(&ws.users[th.parent_user as usize].id);
            }
        }
    }
    v
}

#[derive(Serialize)]
pub struct TopicView<'a> {
    pub value: &'a str,
    pub creator: &'a str,
    pub last_set: i64,
}

/// A conversation object (channels, private channels, IMs, MPIMs).
#[derive(Serialize)]
pub struct ChannelView<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_channel: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_group: Option<bool>,
    pub is_im: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_mpim: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_private: Option<bool>,
    pub created: i64,
    pub is_archived: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_general: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlinked: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_normalized: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_shared: Option<bool>,
    pub is_org_shared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_pending_ext_shared: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_shared: Option<[(); 0]>,
    pub context_team_id: &'a str,
    pub updated: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_conversation: Option<Option<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ext_shared: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_team_ids: Option<[&'a str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_connected_team_ids: Option<[(); 0]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_member: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<TopicView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_names: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_members: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_user_deleted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

pub fn channel_view<'a>(
    ws: &'a Workspace,
    ch: &'a Channel,
    viewer: u32,
    num_members: bool,
) -> ChannelView<'a> {
    let uid = |u: u32| -> &'a str {
        if u == NONE {
            ""
        } else {
            ws.users[u as usize].id.as_str()
        }
    };
    if ch.kind == ConvKind::Im {
        let other = &ws.users[ch.im_user as usize];
        return ChannelView {
            id: &ch.id,
            name: None,
            is_channel: None,
            is_group: None,
            is_im: true,
            is_mpim: None,
            is_private: None,
            created: ch.created,
            is_archived: ch.archived,
            is_general: None,
            unlinked: None,
            name_normalized: None,
            is_shared: None,
            is_org_shared: false,
            is_pending_ext_shared: None,
            pending_shared: None,
            context_team_id: &ws.team_id,
            updated: ch.updated_ms,
            parent_conversation: None,
            creator: None,
            is_ext_shared: None,
            shared_team_ids: None,
            pending_connected_team_ids: None,
            is_member: None,
            topic: None,
            purpose: None,
            previous_names: None,
            num_members: None,
            user: Some(&other.id),
            is_user_deleted: Some(other.deleted),
            priority: Some(0),
        };
    }
    let topic = |t: &'a crate::model::TopicInfo| TopicView {
        value: &t.value,
        creator: uid(t.creator),
        last_set: t.last_set,
    };
    let private = ch.kind != ConvKind::Public;
    ChannelView {
        id: &ch.id,
        name: Some(&ch.name),
        is_channel: Some(
            ch.kind == ConvKind::Public || (ch.kind == ConvKind::Private && !ch.legacy_group),
        ),
        is_group: Some(ch.kind == ConvKind::Mpim || ch.legacy_group),
        is_im: false,
        is_mpim: Some(ch.kind == ConvKind::Mpim),
        is_private: Some(private),
        created: ch.created,
        is_archived: ch.archived,
        is_general: Some(ch.is_general),
        unlinked: Some(0),
        name_normalized: Some(&ch.name),
        is_shared: Some(ch.shared),
        is_org_shared: false,
        is_pending_ext_shared: Some(false),
        pending_shared: Some([]),
        context_team_id: &ws.team_id,
        updated: ch.updated_ms,
        parent_conversation: Some(None),
        creator: Some(uid(ch.creator)),
        is_ext_shared: Some(ch.shared),
        shared_team_ids: Some([&ws.team_id]),
        pending_connected_team_ids: Some([]),
        is_member: Some(ch.is_member(viewer)),
        topic: Some(topic(&ch.topic)),
        purpose: Some(topic(&ch.purpose)),
        previous_names: Some(&ch.previous_names),
        num_members: num_members.then_some(ch.members.len()),
        user: None,
        is_user_deleted: None,
        priority: None,
    }
}

#[derive(Serialize)]
pub struct ProfileView<'a> {
    pub title: &'a str,
    pub phone: &'static str,
    pub skype: &'static str,
    pub real_name: &'a str,
    pub real_name_normalized: String,
    pub display_name: &'a str,
    pub display_name_normalized: String,
    pub fields: Option<()>,
    pub status_text: &'static str,
    pub status_emoji: &'static str,
    pub status_expiration: i64,
    pub avatar_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub image_24: String,
    pub image_48: String,
    pub image_72: String,
    pub image_192: String,
    pub status_text_canonical: &'static str,
    pub team: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_app_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub always_active: Option<bool>,
}

#[derive(Serialize)]
pub struct UserView<'a> {
    pub id: &'a str,
    pub team_id: &'a str,
    pub name: &'a str,
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<&'a str>,
    pub real_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz_label: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz_offset: Option<i64>,
    pub profile: ProfileView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_owner: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_primary_owner: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_restricted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ultra_restricted: Option<bool>,
    pub is_bot: bool,
    pub is_app_user: bool,
    pub updated: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_email_confirmed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who_can_share_contact_card: Option<&'static str>,
}

/// Slack's `*_normalized` fields drop non-ASCII diacritics; approximated
/// with a small fold table (enough for the generated names).
pub fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'é' | 'è' | 'ë' => 'e',
            'É' => 'E',
            'ç' => 'c',
            'á' | 'à' => 'a',
            'í' => 'i',
            'ñ' => 'n',
            'ó' | 'ö' | 'ø' => 'o',
            'ú' | 'ü' => 'u',
            'Ł' => 'L',
            'ł' => 'l',
            'ß' => 's',
            c => c,
        })
        .collect()
}

pub fn user_view<'a>(ws: &'a Workspace, u: &'a User, with_email: bool) -> UserView<'a> {
    let avatar = format!(
        "g{:011x}",
        mix(&[ws.seed, 60, u.id.len() as u64, u.updated as u64]) >> 20
    );
    let img = |n: u32| format!("https://secure.gravatar.com/avatar/{avatar}.jpg?s={n}&d=mm");
    let live = !u.deleted;
    let team = if u.external {
        &ws.external_team_id
    } else {
        &ws.team_id
    };
    UserView {
        id: &u.id,
        team_id: team,
        name: &u.name,
        deleted: u.deleted,
        color: live.then_some(u.color.as_str()),
        real_name: &u.real_name,
        tz: live.then_some(u.tz.0),
        tz_label: live.then_some(u.tz.1),
        tz_offset: live.then_some(u.tz.2),
        profile: ProfileView {
            title: &u.title,
            phone: "",
            skype: "",
            real_name: &u.real_name,
            real_name_normalized: normalize(&u.real_name),
            display_name: &u.display_name,
            display_name_normalized: normalize(&u.display_name),
            fields: None,
            status_text: "",
            status_emoji: "",
            status_expiration: 0,
            image_24: img(24),
            image_48: img(48),
            image_72: img(72),
            image_192: img(192),
            avatar_hash: avatar,
            email: if with_email { u.email.as_deref() } else { None },
            first_name: &u.first_name,
            last_name: &u.last_name,
            status_text_canonical: "",
            team,
            bot_id: u.bot_id.as_deref(),
            api_app_id: u.bot_id.as_ref().map(|_| ws.app_id.as_str()),
            always_active: u.is_bot.then_some(false),
        },
        is_admin: live.then_some(u.is_admin),
        is_owner: live.then_some(u.is_owner),
        is_primary_owner: live.then_some(u.is_primary_owner),
        is_restricted: live.then_some(u.is_restricted),
        is_ultra_restricted: live.then_some(u.is_ultra_restricted),
        is_bot: u.is_bot,
        is_app_user: u.is_app_user,
        updated: u.updated,
        is_email_confirmed: (live && !u.is_bot).then_some(true),
        who_can_share_contact_card: live.then_some("EVERYONE"),
    }
}
