//! The in-memory workspace: users, conversations, messages and threads, and
//! its deterministic generator and mutation operations.
//!
//! Invariants:
//! * Message text is not stored: it is derived at serve time from
//!   `(seed, channel index, Msg::gen)`; edits and API-posted messages keep
//!   their text in `Workspace::overrides` (indexed by `Msg::ovr`). This keeps a
//!   message at 32 bytes, so 1M messages fit in ~40 MB.
//! * `Channel::top` (what `conversations.history` shows: non-replies plus
//!   `thread_broadcast` replies) and every `Thread::replies` are sorted by
//!   `ts` ascending; `ts` is unique within a channel (top and replies alike).
//! * Generated timestamps keep `(now - ts) mod 86400 s` in [3600, 82800) so
//!   that any N-day window computed within an hour of `now` selects the same
//!   messages; replies are after their parent and before `now`.

use crate::spec::WorkspaceSpec;
use crate::ts::MICROS;
use std::collections::{HashMap, HashSet};

pub const NONE: u32 = u32::MAX;
const DAY: i64 = 86_400 * MICROS;

/// SplitMix64: tiny, fast and stable forever (unlike library RNGs whose
/// streams may change between versions), so generated data never drifts.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, n); 0 when n == 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Hash of a few words, used to seed per-item streams.
pub fn mix(parts: &[u64]) -> u64 {
    let mut r = Rng::new(0x5EED);
    let mut acc = 0u64;
    for p in parts {
        r.0 ^= p.wrapping_add(acc);
        acc = r.next_u64();
    }
    acc
}

/// A Slack-like id: prefix + 10 characters of [0-9A-Z].
pub fn make_id(prefix: &str, mut h: u64) -> String {
    const ALPHA: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut s = String::with_capacity(prefix.len() + 10);
    s.push_str(prefix);
    // Slack ids start with a digit after the prefix, e.g. C061FA5PB.
    s.push('0');
    for _ in 0..9 {
        s.push(ALPHA[(h % 36) as usize] as char);
        h /= 36;
        if h == 0 {
            h = mix(&[s.len() as u64, 77]);
        }
    }
    s
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Bot,
    Join,
    FileShare,
    Me,
    Reply,
    Broadcast,
}

impl Kind {
    pub fn subtype(self) -> Option<&'static str> {
        match self {
            Kind::Plain | Kind::Reply => None,
            Kind::Bot => Some("bot_message"),
            Kind::Join => Some("channel_join"),
            Kind::FileShare => Some("file_share"),
            Kind::Me => Some("me_message"),
            Kind::Broadcast => Some("thread_broadcast"),
        }
    }
}

/// One message. `thread` is the index in `Channel::threads` of the thread this
/// message starts (top-level parent) or belongs to (reply / broadcast).
#[derive(Clone, Debug)]
pub struct Msg {
    pub ts: i64,
    pub gen: u32,
    pub user: u32,
    pub thread: u32,
    pub ovr: u32,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub struct Thread {
    pub parent_ts: i64,
    pub parent_user: u32,
    /// Replies (including broadcast ones), ascending; empty once deleted.
    pub replies: Vec<Msg>,
}

/// Text/edit state that cannot be derived from the seed.
#[derive(Clone, Debug, Default)]
pub struct Override {
    pub text: Option<String>,
    pub edited: Option<(u32, i64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    Public,
    Private,
    Im,
    Mpim,
}

impl ConvKind {
    pub fn type_name(self) -> &'static str {
        match self {
            ConvKind::Public => "public_channel",
            ConvKind::Private => "private_channel",
            ConvKind::Im => "im",
            ConvKind::Mpim => "mpim",
        }
    }
    pub fn scope_prefix(self) -> &'static str {
        match self {
            ConvKind::Public => "channels",
            ConvKind::Private => "groups",
            ConvKind::Im => "im",
            ConvKind::Mpim => "mpim",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TopicInfo {
    pub value: String,
    pub creator: u32,
    pub last_set: i64,
}

#[derive(Clone, Debug)]
pub struct Channel {
    pub idx: u32,
    pub id: String,
    pub name: String,
    pub previous_names: Vec<String>,
    pub kind: ConvKind,
    /// Private channel created before 2021: `G…` id, `is_group:true`.
    pub legacy_group: bool,
    pub is_general: bool,
    pub created: i64,
    /// Milliseconds, like Slack's `updated`.
    pub updated_ms: i64,
    pub creator: u32,
    pub archived: bool,
    /// Sorted user indices.
    pub members: Vec<u32>,
    /// For IMs: the other user.
    pub im_user: u32,
    /// Shared with another workspace (Slack Connect): `is_ext_shared`.
    pub shared: bool,
    pub topic: TopicInfo,
    pub purpose: TopicInfo,
    pub top: Vec<Msg>,
    pub threads: Vec<Thread>,
    pub max_ts: i64,
    pub next_gen: u32,
}

impl Channel {
    pub fn is_member(&self, user: u32) -> bool {
        self.members.binary_search(&user).is_ok()
    }

    /// Where a ts lives: in `top` (index) or in a thread (thread, index).
    pub fn locate(&self, ts: i64) -> Option<Loc> {
        if let Ok(i) = self.top.binary_search_by_key(&ts, |m| m.ts) {
            if self.top[i].kind != Kind::Broadcast {
                return Some(Loc::Top(i));
            }
        }
        for (t, th) in self.threads.iter().enumerate() {
            if th.replies.is_empty() || th.parent_ts > ts {
                continue;
            }
            if let Ok(j) = th.replies.binary_search_by_key(&ts, |m| m.ts) {
                return Some(Loc::Reply(t, j));
            }
        }
        None
    }

    pub fn message_count(&self) -> usize {
        self.top
            .iter()
            .filter(|m| m.kind != Kind::Broadcast)
            .count()
            + self.threads.iter().map(|t| t.replies.len()).sum::<usize>()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loc {
    Top(usize),
    Reply(usize, usize),
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub display_name: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub title: String,
    pub deleted: bool,
    pub is_bot: bool,
    pub is_app_user: bool,
    pub is_admin: bool,
    pub is_owner: bool,
    pub is_primary_owner: bool,
    pub is_restricted: bool,
    /// Single-channel guest (Slack sets `is_restricted` too).
    pub is_ultra_restricted: bool,
    /// A member of another workspace (Slack Connect): in the members of the conversations
    /// shared with it and answered by `users.info`, never listed by `users.list`.
    pub external: bool,
    pub bot_id: Option<String>,
    pub tz: (&'static str, &'static str, i64),
    pub updated: i64,
    pub color: String,
}

#[derive(Clone, Debug)]
pub struct UserGroup {
    pub id: String,
    pub name: String,
    pub handle: String,
    pub description: String,
    pub created: i64,
    pub creator: u32,
    pub users: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct Workspace {
    pub seed: u64,
    pub team_id: String,
    /// The workspace of the external (Slack Connect) users.
    pub external_team_id: String,
    pub team_name: String,
    pub domain: String,
    pub enterprise_id: Option<String>,
    pub app_id: String,
    pub users: Vec<User>,
    /// Index of the app's bot user (the identity of bot tokens).
    pub bot_user: u32,
    /// Index of the primary owner (the default identity of user tokens).
    pub owner_user: u32,
    pub channels: Vec<Channel>,
    pub usergroups: Vec<UserGroup>,
    pub overrides: Vec<Override>,
    pub chan_by_id: HashMap<String, u32>,
    pub user_by_id: HashMap<String, u32>,
    /// Where shared files are served (`url_private`): Slack's host until the simulator
    /// listens, then its own address.
    pub files_base: String,
}

const FIRST: &[(&str, &str)] = &[
    ("Alice", "alice"),
    ("Bob", "bob"),
    ("Chloé", "chloe"),
    ("Dmitri", "dmitri"),
    ("Eve", "eve"),
    ("François", "francois"),
    ("Grace", "grace"),
    ("Hiro", "hiro"),
    ("Ines", "ines"),
    ("José", "jose"),
    ("Kalani", "kalani"),
    ("Łukasz", "lukasz"),
    ("Mei", "mei"),
    ("Noor", "noor"),
    ("Olu", "olu"),
    ("Priya", "priya"),
    ("Quinn", "quinn"),
    ("Rafael", "rafael"),
    ("Søren", "soren"),
    ("Tomás", "tomas"),
    ("Uma", "uma"),
    ("Viktor", "viktor"),
    ("Wen", "wen"),
    ("Ximena", "ximena"),
    ("Yuki", "yuki"),
    ("Zoë", "zoe"),
];
const LAST: &[(&str, &str)] = &[
    ("Anderson", "anderson"),
    ("Björk", "bjork"),
    ("Chen", "chen"),
    ("Dubois", "dubois"),
    ("Eriksen", "eriksen"),
    ("García", "garcia"),
    ("Hoffmann", "hoffmann"),
    ("Ivanova", "ivanova"),
    ("Jansen", "jansen"),
    ("Kowalski", "kowalski"),
    ("Lee", "lee"),
    ("Müller", "muller"),
    ("Nakamura", "nakamura"),
    ("O'Brien", "obrien"),
    ("Patel", "patel"),
    ("Rossi", "rossi"),
    ("Silva", "silva"),
    ("Tanaka", "tanaka"),
    ("Novák", "novak"),
    ("Walker", "walker"),
];
const BOT_NAMES: &[&str] = &[
    "deploybot",
    "github",
    "jira",
    "pagerduty",
    "standup-bot",
    "weatherbot",
    "grafana",
    "circleci",
    "sentry",
    "polly",
];
const CHANNEL_NAMES: &[&str] = &[
    "general",
    "random",
    "engineering",
    "design",
    "ops-alerts",
    "sales",
    "marketing",
    "support",
    "announcements",
    "dev-backend",
    "dev-frontend",
    "data-science",
    "incidents",
    "hiring",
    "social",
    "café-talk",
    "release-train",
    "security",
    "finance",
    "legal",
    "oncall",
    "customer-success",
    "product",
    "qa",
    "infra",
    "mobile",
    "docs",
    "research",
    "日本チーム",
    "watercooler",
];
const TZS: &[(&str, &str, i64)] = &[
    ("America/Los_Angeles", "Pacific Standard Time", -28800),
    ("America/New_York", "Eastern Standard Time", -18000),
    ("Europe/London", "Greenwich Mean Time", 0),
    ("Europe/Berlin", "Central European Time", 3600),
    ("Asia/Tokyo", "Japan Standard Time", 32400),
    ("Asia/Kolkata", "India Standard Time", 19800),
];
pub const TOPIC_TEXTS: &[&str] = &[
    "Weekly sync notes & decisions",
    "Ask anything — no question is too small 🙂",
    "Deploys, rollbacks and <https://status.example.com|status>",
    "",
    "Q3 planning: see the doc",
];

struct UniqueNames(HashSet<String>);
impl UniqueNames {
    fn take(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 2;
        while !self.0.insert(name.clone()) {
            name = format!("{base}{n}");
            n += 1;
        }
        name
    }
}

/// Random offset before `now` (micros) in the allowed band of a random day of
/// the history: `k*DAY + [3601 s, 82799 s)`, so collision bumps of a few µs
/// stay inside [3600 s, 82800 s).
fn random_offset(rng: &mut Rng, days: u32) -> i64 {
    let k = rng.below(u64::from(days.max(1))) as i64;
    let s = 3601 + rng.below(82_799 - 3601) as i64;
    let frac = rng.below(MICROS as u64) as i64;
    k * DAY + s * MICROS + frac
}

/// Snaps an offset out of the forbidden band by moving it *closer to now*
/// (smaller offset), which keeps a reply after its parent. `None` if that
/// would leave the first allowed band.
fn snap_offset(d: i64) -> Option<i64> {
    let rem = d.rem_euclid(DAY);
    let snapped = if rem < 3601 * MICROS {
        d - rem - (DAY - 82_798 * MICROS)
    } else if rem >= 82_799 * MICROS {
        d - rem + 82_798 * MICROS
    } else {
        d
    };
    (snapped >= 3601 * MICROS).then_some(snapped)
}

/// Inserts `ts` into `used`, bumping it 1 µs older until unique.
fn unique_ts(used: &mut HashSet<i64>, mut ts: i64) -> i64 {
    while !used.insert(ts) {
        ts -= 1;
    }
    ts
}

impl Workspace {
    /// Generates the workspace for `spec` with timestamps relative to `now`
    /// (epoch seconds).
    pub fn generate(spec: &WorkspaceSpec, now: i64) -> Workspace {
        let seed = spec.seed;
        let mut rng = Rng::new(mix(&[seed, 1]));
        let now_us = now * MICROS;
        let team_id = make_id("T", mix(&[seed, 2]));
        let mut names = UniqueNames(HashSet::new());
        let mut users = Vec::new();
        let base_user = |id: String, name: String, real: String, first: &str, last: &str| User {
            id,
            name,
            display_name: String::new(),
            first_name: first.to_string(),
            last_name: last.to_string(),
            real_name: real,
            email: None,
            title: String::new(),
            deleted: false,
            is_bot: false,
            is_app_user: false,
            is_admin: false,
            is_owner: false,
            is_primary_owner: false,
            is_restricted: false,
            is_ultra_restricted: false,
            external: false,
            bot_id: None,
            tz: TZS[0],
            updated: now - 400 * 86_400,
            color: "757575".into(),
        };
        // Slackbot is famously not `is_bot`.
        names.take("slackbot");
        users.push(base_user(
            "USLACKBOT".into(),
            "slackbot".into(),
            "Slackbot".into(),
            "slackbot",
            "",
        ));
        let bot_name = names.take("simbot");
        let mut app_bot = base_user(
            make_id("U", mix(&[seed, 3])),
            bot_name,
            "Sim Bot".into(),
            "",
            "",
        );
        app_bot.is_bot = true;
        app_bot.bot_id = Some(make_id("B", mix(&[seed, 4])));
        app_bot.display_name = "Sim Bot".into();
        users.push(app_bot);
        let bot_user = 1u32;
        let owner_user = 2u32;
        let human = |rng: &mut Rng, names: &mut UniqueNames, i: usize| {
            let (f, fa) = *rng.pick(FIRST);
            let (l, la) = *rng.pick(LAST);
            let name = names.take(&format!("{fa}.{la}"));
            let mut u = base_user(
                make_id("U", mix(&[seed, 10, i as u64])),
                name.clone(),
                format!("{f} {l}"),
                f,
                l,
            );
            if rng.chance(0.6) {
                u.display_name = f.to_string();
            }
            u.email = Some(format!("{name}@example.com"));
            u.title = rng
                .pick(&["Engineer", "Designer", "PM", "Support", "", "SRE"])
                .to_string();
            u.tz = *rng.pick(TZS);
            u.updated = now - 30 * 86_400 - rng.below(300 * 86_400) as i64;
            u.color = format!("{:06x}", rng.below(0xFFFFFF));
            u
        };
        for i in 0..spec.users {
            let mut u = human(&mut rng, &mut names, i);
            if i == 0 {
                u.is_primary_owner = true;
                u.is_owner = true;
                u.is_admin = true;
            } else if i < 3 {
                u.is_admin = true;
            } else if rng.chance(0.05) {
                u.is_restricted = true;
            }
            users.push(u);
        }
        for i in 0..spec.bots {
            let base = BOT_NAMES[i % BOT_NAMES.len()];
            let name = names.take(base);
            let mut u = base_user(
                make_id("U", mix(&[seed, 11, i as u64])),
                name.clone(),
                name.clone(),
                "",
                "",
            );
            u.is_bot = true;
            u.bot_id = Some(make_id("B", mix(&[seed, 12, i as u64])));
            users.push(u);
        }
        for i in 0..spec.deleted_users {
            let mut u = human(&mut rng, &mut names, 100_000 + i);
            u.deleted = true;
            u.email = None;
            users.push(u);
        }
        let humans: Vec<u32> = (0..users.len() as u32)
            .filter(|&i| {
                let u = &users[i as usize];
                !u.is_bot && !u.deleted && u.id != "USLACKBOT"
            })
            .collect();
        let bots: Vec<u32> = (0..users.len() as u32)
            .filter(|&i| users[i as usize].is_bot && i != bot_user)
            .collect();

        // Conversation kinds in creation order: shuffled so DMs interleave
        // with channels (conversations.list pages then come out short).
        let n_private = (spec.channels as f64 * spec.private_share).round() as usize;
        let n_public = spec.channels.saturating_sub(n_private).max(1);
        let mut kinds: Vec<ConvKind> = Vec::new();
        kinds.extend(std::iter::repeat_n(ConvKind::Private, n_private));
        kinds.extend(std::iter::repeat_n(
            ConvKind::Im,
            spec.dms.min(humans.len()),
        ));
        kinds.extend(std::iter::repeat_n(ConvKind::Mpim, spec.group_dms));
        kinds.extend(std::iter::repeat_n(ConvKind::Public, n_public - 1));
        for i in (1..kinds.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            kinds.swap(i, j);
        }
        kinds.insert(0, ConvKind::Public); // #general comes first
        let chosen = |rng: &mut Rng, n: usize, share: f64| -> Vec<bool> {
            let k = ((n as f64) * share).round() as usize;
            let mut v: Vec<bool> = (0..n).map(|i| i < k).collect();
            for i in (1..n).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                v.swap(i, j);
            }
            v
        };
        let n_chan = n_public + n_private;
        let mut bot_in = chosen(&mut rng, n_chan, spec.bot_member_share).into_iter();
        let mut archived = chosen(&mut rng, n_chan, spec.archived_share).into_iter();
        let mut chan_names = UniqueNames(HashSet::new());
        let history = i64::from(spec.history_days.max(1));
        let created_base = now - (history + 60) * 86_400;
        let mut channels = Vec::with_capacity(kinds.len());
        let mut im_next = 0usize;
        for (ci, kind) in kinds.iter().copied().enumerate() {
            let h = mix(&[seed, 20, ci as u64]);
            let mut crng = Rng::new(h);
            let created = created_base + ci as i64 * 3_600 + crng.below(3_000) as i64;
            let creator = *crng.pick(&humans_or(&humans, owner_user));
            let (prefix, legacy) = match kind {
                ConvKind::Public => ("C", false),
                ConvKind::Private => {
                    let legacy = crng.chance(0.5);
                    (if legacy { "G" } else { "C" }, legacy)
                }
                ConvKind::Im => ("D", false),
                ConvKind::Mpim => ("G", false),
            };
            let id = make_id(prefix, h);
            let mut members: Vec<u32>;
            let mut im_user = NONE;
            let mut is_archived = false;
            let name;
            match kind {
                ConvKind::Public | ConvKind::Private => {
                    let base = if ci == 0 {
                        "general".to_string()
                    } else {
                        let b = CHANNEL_NAMES[1 + (ci - 1) % (CHANNEL_NAMES.len() - 1)];
                        if kind == ConvKind::Private {
                            format!("priv-{b}")
                        } else {
                            b.to_string()
                        }
                    };
                    name = chan_names.take(&base);
                    members = if ci == 0 {
                        humans.clone()
                    } else {
                        let want = 3 + crng.below((humans.len() / 3).max(1) as u64) as usize;
                        let mut m: Vec<u32> = (0..want)
                            .map(|_| *crng.pick(&humans_or(&humans, owner_user)))
                            .collect();
                        m.push(creator);
                        m
                    };
                    let bot_member = bot_in.next().unwrap_or(false) || ci == 0;
                    if bot_member {
                        members.push(bot_user);
                    }
                    if ci != 0 {
                        is_archived = archived.next().unwrap_or(false);
                    }
                    if crng.chance(0.3) && !bots.is_empty() {
                        members.push(*crng.pick(&bots));
                    }
                }
                ConvKind::Im => {
                    im_user = humans.get(im_next).copied().unwrap_or(owner_user);
                    im_next += 1;
                    members = vec![bot_user, im_user];
                    name = users[im_user as usize].id.clone();
                }
                ConvKind::Mpim => {
                    let mut m: Vec<u32> = (0..2 + crng.below(2))
                        .map(|_| *crng.pick(&humans_or(&humans, owner_user)))
                        .collect();
                    m.sort_unstable();
                    m.dedup();
                    let handles: Vec<&str> =
                        m.iter().map(|&u| users[u as usize].name.as_str()).collect();
                    name = format!("mpdm-{}-1", handles.join("--"));
                    m.push(bot_user);
                    members = m;
                }
            }
            members.sort_unstable();
            members.dedup();
            let topic_creator = creator;
            let topic_text = if kind == ConvKind::Im {
                String::new()
            } else {
                crng.pick(TOPIC_TEXTS).to_string()
            };
            let mut ch = Channel {
                idx: ci as u32,
                id,
                name,
                previous_names: Vec::new(),
                kind,
                legacy_group: legacy,
                is_general: ci == 0,
                created,
                updated_ms: (created + 86_400) * 1000 + crng.below(1000) as i64,
                creator,
                archived: is_archived,
                members,
                im_user,
                shared: false,
                topic: TopicInfo {
                    last_set: if topic_text.is_empty() {
                        0
                    } else {
                        created + 600
                    },
                    creator: if topic_text.is_empty() {
                        NONE
                    } else {
                        topic_creator
                    },
                    value: topic_text,
                },
                purpose: TopicInfo {
                    value: if kind == ConvKind::Im {
                        String::new()
                    } else {
                        format!(
                            "Purpose of this conversation #{ci}: keep <@{}> & co. in sync",
                            users[creator as usize].id
                        )
                    },
                    creator: if kind == ConvKind::Im { NONE } else { creator },
                    last_set: if kind == ConvKind::Im { 0 } else { created },
                },
                top: Vec::new(),
                threads: Vec::new(),
                max_ts: 0,
                next_gen: 0,
            };
            generate_messages(&mut ch, spec, now_us, &humans, &bots, owner_user);
            channels.push(ch);
        }
        // Guests and members of another workspace, from their own random streams after
        // everything else, so the rest of the workspace is the same with or without them.
        // They join channels the app's bot is in (so they matter to what is indexed), never
        // #general; guests are listed by users.list, external members only in member lists.
        let mut vrng = Rng::new(mix(&[seed, 70]));
        let mut rooms: Vec<usize> = (1..channels.len())
            .filter(|&c| {
                let ch = &channels[c];
                matches!(ch.kind, ConvKind::Public | ConvKind::Private) && ch.is_member(bot_user)
            })
            .collect();
        if rooms.is_empty() {
            rooms = (1..channels.len())
                .filter(|&c| matches!(channels[c].kind, ConvKind::Public | ConvKind::Private))
                .collect();
        }
        let visitors = [
            (spec.guests, 3u64, false, false),
            (spec.ultra_guests, 1, true, false),
            (spec.external_users, 2, false, true),
        ];
        for (kind, (count, max_rooms, ultra, external)) in visitors.into_iter().enumerate() {
            for i in 0..count {
                if rooms.is_empty() {
                    break;
                }
                let mut u = human(&mut vrng, &mut names, 200_000 + 1000 * kind + i);
                u.is_restricted = !external;
                u.is_ultra_restricted = ultra;
                u.external = external;
                if external {
                    u.email = Some(format!("{}@partner.example", u.name));
                }
                let idx = users.len() as u32;
                users.push(u);
                let joined = if ultra {
                    1
                } else {
                    1 + vrng.below(max_rooms) as usize
                };
                for _ in 0..joined {
                    let ch = &mut channels[*vrng.pick(&rooms)];
                    if let Err(pos) = ch.members.binary_search(&idx) {
                        ch.members.insert(pos, idx);
                    }
                    ch.shared |= external;
                }
            }
        }
        let mut usergroups = Vec::new();
        let n_groups = (spec.users / 10).clamp(2, 30);
        for g in 0..n_groups {
            let mut grng = Rng::new(mix(&[seed, 30, g as u64]));
            let handle = format!("{}-team", CHANNEL_NAMES[1 + g % (CHANNEL_NAMES.len() - 1)])
                .replace('é', "e");
            let mut members: Vec<u32> = (0..2 + grng.below(6))
                .map(|_| *grng.pick(&humans_or(&humans, owner_user)))
                .collect();
            members.sort_unstable();
            members.dedup();
            usergroups.push(UserGroup {
                id: make_id("S", mix(&[seed, 31, g as u64])),
                name: format!("Team {handle}"),
                handle: format!("{handle}-{g}"),
                description: "Generated user group".into(),
                created: created_base + g as i64 * 1000,
                creator: owner_user,
                users: members,
            });
        }
        let chan_by_id = channels
            .iter()
            .map(|c: &Channel| (c.id.clone(), c.idx))
            .collect();
        let user_by_id = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id.clone(), i as u32))
            .collect();
        Workspace {
            seed,
            team_id,
            external_team_id: make_id("T", mix(&[seed, 71])),
            team_name: "Sim Workspace".into(),
            domain: "simteam".into(),
            enterprise_id: None,
            app_id: make_id("A", mix(&[seed, 5])),
            users,
            bot_user,
            owner_user,
            channels,
            usergroups,
            files_base: "https://files.slack.com".into(),
            overrides: Vec::new(),
            chan_by_id,
            user_by_id,
        }
    }

    pub fn channel_ref(&self, id_or_name: &str) -> Option<u32> {
        if let Some(&i) = self.chan_by_id.get(id_or_name) {
            return Some(i);
        }
        let name = id_or_name.trim_start_matches('#');
        self.channels.iter().find(|c| c.name == name).map(|c| c.idx)
    }

    pub fn user_ref(&self, id_or_name: &str) -> Option<u32> {
        if let Some(&i) = self.user_by_id.get(id_or_name) {
            return Some(i);
        }
        let name = id_or_name.trim_start_matches('@');
        self.users
            .iter()
            .position(|u| u.name == name)
            .map(|i| i as u32)
    }

    pub fn total_messages(&self) -> usize {
        self.channels.iter().map(Channel::message_count).sum()
    }
}

fn humans_or(humans: &[u32], fallback: u32) -> Vec<u32> {
    if humans.is_empty() {
        vec![fallback]
    } else {
        humans.to_vec()
    }
}

fn generate_messages(
    ch: &mut Channel,
    spec: &WorkspaceSpec,
    now_us: i64,
    humans: &[u32],
    bots: &[u32],
    fallback_user: u32,
) {
    let mut rng = Rng::new(mix(&[spec.seed, 40, u64::from(ch.idx)]));
    let n = match ch.kind {
        ConvKind::Public | ConvKind::Private => spec.messages_per_channel,
        ConvKind::Im | ConvKind::Mpim => (spec.messages_per_channel / 10).max(1),
    };
    let posters: Vec<u32> = {
        let v: Vec<u32> = ch
            .members
            .iter()
            .copied()
            .filter(|u| humans.binary_search(u).is_ok())
            .collect();
        if v.is_empty() {
            vec![fallback_user]
        } else {
            v
        }
    };
    let threaded = matches!(ch.kind, ConvKind::Public | ConvKind::Private);
    let mut used: HashSet<i64> = HashSet::with_capacity(n * 2);
    let mut offsets: Vec<i64> = (0..n)
        .map(|_| random_offset(&mut rng, spec.history_days))
        .collect();
    offsets.sort_unstable_by(|a, b| b.cmp(a)); // oldest first
    let mut top = Vec::with_capacity(n + n / 10);
    let mut threads: Vec<Thread> = Vec::new();
    let mut broadcasts = Vec::new();
    let mut gen = 0u32;
    for (i, d) in offsets.into_iter().enumerate() {
        let ts = unique_ts(&mut used, now_us - d);
        let roll = rng.below(100);
        let kind = if !threaded {
            Kind::Plain
        } else if i < 2 || roll < 3 {
            Kind::Join
        } else if roll < 10 && !bots.is_empty() {
            Kind::Bot
        } else if roll < 13 {
            Kind::FileShare
        } else if roll < 15 {
            Kind::Me
        } else {
            Kind::Plain
        };
        let user = if kind == Kind::Bot {
            *rng.pick(bots)
        } else {
            *rng.pick(&posters)
        };
        let mut msg = Msg {
            ts,
            gen,
            user,
            thread: NONE,
            ovr: NONE,
            kind,
        };
        gen += 1;
        if threaded
            && kind != Kind::Join
            && spec.replies_per_thread > 0
            && rng.chance(spec.thread_share)
        {
            let parent_d = now_us - ts;
            let span = (parent_d - 3661 * MICROS).min(2 * DAY);
            let want = 1 + rng.below((2 * spec.replies_per_thread - 1) as u64) as usize;
            let mut replies = Vec::with_capacity(want);
            if span > 0 {
                for _ in 0..want {
                    let gap = 60 * MICROS + rng.below(span as u64) as i64;
                    let Some(rd) = snap_offset(parent_d - gap) else {
                        continue;
                    };
                    if rd >= parent_d {
                        continue;
                    }
                    let rts = unique_ts(&mut used, now_us - rd);
                    if rts <= ts {
                        continue;
                    }
                    let kind = if rng.chance(0.1) {
                        Kind::Broadcast
                    } else {
                        Kind::Reply
                    };
                    replies.push(Msg {
                        ts: rts,
                        gen: 0,
                        user: *rng.pick(&posters),
                        thread: threads.len() as u32,
                        ovr: NONE,
                        kind,
                    });
                }
            }
            if !replies.is_empty() {
                replies.sort_unstable_by_key(|m| m.ts);
                for r in &mut replies {
                    r.gen = u32::MAX / 2 + gen;
                    gen += 1;
                    if r.kind == Kind::Broadcast {
                        broadcasts.push(r.clone());
                    }
                }
                msg.thread = threads.len() as u32;
                threads.push(Thread {
                    parent_ts: ts,
                    parent_user: user,
                    replies,
                });
            }
        }
        top.push(msg);
    }
    if !broadcasts.is_empty() {
        top.extend(broadcasts);
        top.sort_unstable_by_key(|m| m.ts);
    }
    ch.max_ts = used.iter().copied().max().unwrap_or(0);
    ch.top = top;
    ch.threads = threads;
    ch.next_gen = gen;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ts_respect_the_window_rule_and_order() {
        let spec = WorkspaceSpec::default();
        let now = 1_700_000_000;
        let ws = Workspace::generate(&spec, now);
        let mut count = 0;
        for ch in &ws.channels {
            let mut all: Vec<i64> = ch
                .top
                .iter()
                .filter(|m| m.kind != Kind::Broadcast)
                .map(|m| m.ts)
                .collect();
            for th in &ch.threads {
                for r in &th.replies {
                    assert!(r.ts > th.parent_ts);
                    all.push(r.ts);
                }
            }
            for ts in &all {
                let d = now * MICROS - ts;
                let rem = d.rem_euclid(DAY);
                assert!((3600 * MICROS..82_800 * MICROS).contains(&rem), "{ts}");
                count += 1;
            }
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            assert_eq!(n, all.len(), "ts unique per channel");
            assert!(ch.top.windows(2).all(|w| w[0].ts < w[1].ts));
        }
        assert!(count > 1000);
        // Determinism.
        let again = Workspace::generate(&spec, now);
        assert_eq!(again.channels[3].top[5].ts, ws.channels[3].top[5].ts);
        assert_eq!(again.users[5].id, ws.users[5].id);
    }
}
