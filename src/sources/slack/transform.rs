//! Slack objects → index documents (`elastic-connectors-protocol.md` §4.3), as pure
//! functions: the wire models (only the fields we index), name resolution, mention
//! rewriting, plain-text bodies, permalinks, timestamps and the history window.
//!
//! Invariants: documents carry every §4.3 field under the same name, `null` when Slack
//! left it out (so the index mapping is stable); message timestamps are handled as exact
//! strings and integer microseconds, never floats (the bug class of elastic/connectors#3032).

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A `users.list` member (fields we use).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    /// `U…`.
    pub id: String,
    /// Handle.
    #[serde(default)]
    pub name: Option<String>,
    /// Full name.
    #[serde(default)]
    pub real_name: Option<String>,
    /// Deactivated.
    #[serde(default)]
    pub deleted: Option<bool>,
    /// Admin.
    #[serde(default)]
    pub is_admin: Option<bool>,
    /// Owner.
    #[serde(default)]
    pub is_owner: Option<bool>,
    /// Bot user.
    #[serde(default)]
    pub is_bot: Option<bool>,
    /// Last change (epoch seconds).
    #[serde(default)]
    pub updated: Option<i64>,
    /// Profile.
    #[serde(default)]
    pub profile: Profile,
}

/// A user's profile (fields we use).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Profile {
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Display name without diacritics.
    #[serde(default)]
    pub display_name_normalized: Option<String>,
    /// Full name.
    #[serde(default)]
    pub real_name: Option<String>,
    /// Full name without diacritics.
    #[serde(default)]
    pub real_name_normalized: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// For bot users: the `B…` id their messages carry.
    #[serde(default)]
    pub bot_id: Option<String>,
}

/// A channel's topic or purpose.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Topic {
    /// Text.
    #[serde(default)]
    pub value: Option<String>,
    /// Who set it (`U…`).
    #[serde(default)]
    pub creator: Option<String>,
    /// When (epoch seconds).
    #[serde(default)]
    pub last_set: Option<i64>,
}

/// A `conversations.list` channel (fields we use).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Channel {
    /// `C…`.
    pub id: String,
    /// Name without `#`.
    #[serde(default)]
    pub name: Option<String>,
    /// Normalized name.
    #[serde(default)]
    pub name_normalized: Option<String>,
    /// Creation (epoch seconds).
    #[serde(default)]
    pub created: Option<i64>,
    /// Last change (Slack sends epoch milliseconds here).
    #[serde(default)]
    pub updated: Option<i64>,
    /// Whether the token's user (the bot) is a member.
    #[serde(default)]
    pub is_member: Option<bool>,
    /// Archived.
    #[serde(default)]
    pub is_archived: Option<bool>,
    /// Private channel.
    #[serde(default)]
    pub is_private: Option<bool>,
    /// Topic.
    #[serde(default)]
    pub topic: Option<Topic>,
    /// Purpose.
    #[serde(default)]
    pub purpose: Option<Topic>,
}

/// `edited` of a message.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Edited {
    /// When (a ts string).
    #[serde(default)]
    pub ts: Option<String>,
}

/// A history or replies message (fields we use).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Message {
    /// Always `message`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// `bot_message`, `thread_broadcast`, …
    #[serde(default)]
    pub subtype: Option<String>,
    /// Author (`U…`).
    #[serde(default)]
    pub user: Option<String>,
    /// Bot author (`B…`).
    #[serde(default)]
    pub bot_id: Option<String>,
    /// Bot display name.
    #[serde(default)]
    pub username: Option<String>,
    /// Slack mrkdwn text.
    #[serde(default)]
    pub text: Option<String>,
    /// `"<secs>.<micros>"`, unique in the channel.
    #[serde(default)]
    pub ts: String,
    /// Thread parent's ts (equal to `ts` on a parent).
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// Replies (on parents).
    #[serde(default)]
    pub reply_count: Option<u64>,
    /// Newest reply's ts (on parents).
    #[serde(default)]
    pub latest_reply: Option<String>,
    /// Edit marker.
    #[serde(default)]
    pub edited: Option<Edited>,
}

/// The first non-empty of §4.3's order: `display_name_normalized`, `real_name_normalized`,
/// `real_name`, `name`, `id`.
pub fn display_name(user: &User) -> String {
    [
        user.profile.display_name_normalized.as_deref(),
        user.profile.real_name_normalized.as_deref(),
        user.real_name.as_deref(),
        user.name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find(|s| !s.trim().is_empty())
    .unwrap_or(&user.id)
    .to_string()
}

/// Id → display name, for users (`U…`) and bots (`B…`).
#[derive(Debug, Default, Clone)]
pub struct Names {
    users: HashMap<String, String>,
    bots: HashMap<String, String>,
}

impl Names {
    /// Adds a user (and its bot id).
    pub fn add(&mut self, user: &User) {
        let name = display_name(user);
        if let Some(bot) = user.profile.bot_id.as_deref().filter(|b| !b.is_empty()) {
            self.bots.insert(bot.to_string(), name.clone());
        }
        self.users.insert(user.id.clone(), name);
    }

    /// A user's name.
    pub fn user(&self, id: &str) -> Option<&str> {
        self.users.get(id).map(String::as_str)
    }

    /// The author of a message: the user's name, else the bot user's, else the bot's
    /// `username`, else the raw id.
    pub fn author(&self, message: &Message) -> Option<String> {
        if let Some(user) = message.user.as_deref() {
            return Some(self.user(user).unwrap_or(user).to_string());
        }
        let bot = message.bot_id.as_deref()?;
        Some(
            self.bots
                .get(bot)
                .map(String::as_str)
                .or(message.username.as_deref())
                .unwrap_or(bot)
                .to_string(),
        )
    }

    /// Number of users known.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is known.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Upstream's `text`: every `<@ID>` of a known user becomes `<@name>` (unknown ids stay).
pub fn rewrite_mentions(text: &str, names: &Names) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('>');
        let id = end.map(|e| &after[..e]).filter(|id| is_slack_id(id));
        match (id, end) {
            (Some(id), Some(end)) => {
                out.push_str("<@");
                out.push_str(names.user(id).unwrap_or(id));
                out.push('>');
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("<@");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_slack_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Undoes Slack's three escapes (`&lt;`, `&gt;`, `&amp;`), `&amp;` last.
pub fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Readable plain text from Slack mrkdwn: `<@U1>` → `@name`, `<#C1|general>` → `#general`,
/// `<!here>` → `@here`, `<!subteam^S1|@devs>` → `@devs`, `<url|label>` → `label (url)`,
/// `<url>` → `url`, entities unescaped.
pub fn plain_text(text: &str, names: &Names, channels: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&unescape(&rest[..start]));
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            rest = &rest[start..];
            break;
        };
        let inner = &after[..end];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        if let Some(id) = target.strip_prefix('@') {
            out.push('@');
            out.push_str(label.or_else(|| names.user(id)).unwrap_or(id));
        } else if let Some(id) = target.strip_prefix('#') {
            out.push('#');
            let name = label
                .filter(|l| !l.is_empty())
                .or_else(|| channels.get(id).map(String::as_str));
            out.push_str(name.unwrap_or(id));
        } else if let Some(special) = target.strip_prefix('!') {
            match label {
                Some(l) => out.push_str(&unescape(l)),
                None => {
                    out.push('@');
                    out.push_str(special.split('^').next().unwrap_or(special));
                }
            }
        } else {
            let url = unescape(target);
            match label.filter(|l| !l.is_empty()) {
                Some(l) => {
                    out.push_str(&unescape(l));
                    out.push_str(" (");
                    out.push_str(&url);
                    out.push(')');
                }
                None => out.push_str(&url),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(&unescape(rest));
    out
}

/// A Slack ts (`"1700000000.000100"`, or an integer) as exact microseconds.
pub fn ts_micros(ts: &str) -> Option<i64> {
    let ts = ts.trim();
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || secs.len() > 12 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros: i64 = 0;
    for i in 0..6 {
        let digit = frac
            .as_bytes()
            .get(i)
            .map(|b| i64::from(b - b'0'))
            .unwrap_or(0);
        micros = micros * 10 + digit;
    }
    Some(secs.parse::<i64>().ok()? * 1_000_000 + micros)
}

/// ISO-8601 UTC (`2023-11-14T22:13:20.000100Z`) of epoch microseconds.
pub fn iso_from_micros(micros: i64) -> Option<String> {
    let secs = micros.div_euclid(1_000_000);
    let nanos = (micros.rem_euclid(1_000_000) * 1000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// ISO-8601 UTC of an epoch that may be seconds or milliseconds (Slack's channel `updated`
/// is in milliseconds, `created` in seconds): values past year 5138 in seconds are ms.
pub fn iso_from_epoch(value: i64) -> Option<String> {
    if value <= 0 {
        return None;
    }
    let micros = if value >= 100_000_000_000 {
        value.checked_mul(1000)?
    } else {
        value.checked_mul(1_000_000)?
    };
    iso_from_micros(micros)
}

/// The history window's lower bound (`oldest`, exclusive), as an integer string:
/// `floor(now) - days * 86400`; `None` for 0 days (all history). Integer-exact on purpose.
pub fn window_oldest(now_secs: i64, days: u32) -> Option<String> {
    (days > 0).then(|| (now_secs - i64::from(days) * 86_400).to_string())
}

/// `https://<domain>.slack.com` from `auth.test`'s `url` (trailing slash dropped).
pub fn workspace_base(url: &str) -> Option<String> {
    let trimmed = url.trim().trim_end_matches('/');
    (trimmed.starts_with("https://") || trimmed.starts_with("http://")).then(|| trimmed.to_string())
}

/// A message permalink: `<base>/archives/<channel>/p<ts digits>`, and for a reply
/// `?thread_ts=<parent ts>&cid=<channel>`.
pub fn permalink(base: &str, channel_id: &str, ts: &str, thread_ts: Option<&str>) -> String {
    let digits: String = ts.chars().filter(|c| *c != '.').collect();
    let mut link = format!("{base}/archives/{channel_id}/p{digits}");
    if let Some(parent) = thread_ts.filter(|t| *t != ts) {
        link.push_str("?thread_ts=");
        link.push_str(parent);
        link.push_str("&cid=");
        link.push_str(channel_id);
    }
    link
}

/// `_timestamp` only when known: the sync engine reads its *presence* as "the source dates
/// this document" and otherwise keeps the creation time of an existing document.
fn set_timestamp(doc: &mut Map<String, Value>, timestamp: Option<String>) {
    if let Some(timestamp) = timestamp {
        doc.insert("_timestamp".into(), Value::String(timestamp));
    }
}

fn opt_str(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::String(s.to_string()))
}

fn opt<T: Into<Value>>(value: Option<T>) -> Value {
    value.map_or(Value::Null, Into::into)
}

/// The user document (§4.3 fields, plus `type` and `_timestamp`).
pub fn user_doc(user: &User) -> Map<String, Value> {
    let p = &user.profile;
    let mut doc = Map::new();
    doc.insert("type".into(), "user".into());
    doc.insert("id".into(), user.id.clone().into());
    doc.insert("name".into(), opt_str(user.name.as_deref()));
    doc.insert("real_name".into(), opt_str(user.real_name.as_deref()));
    doc.insert(
        "real_name_normalized".into(),
        opt_str(p.real_name_normalized.as_deref()),
    );
    doc.insert("profile_real_name".into(), opt_str(p.real_name.as_deref()));
    doc.insert("display_name".into(), opt_str(p.display_name.as_deref()));
    doc.insert(
        "display_name_normalized".into(),
        opt_str(p.display_name_normalized.as_deref()),
    );
    doc.insert("first_name".into(), opt_str(p.first_name.as_deref()));
    doc.insert("last_name".into(), opt_str(p.last_name.as_deref()));
    doc.insert("deleted".into(), opt(user.deleted));
    doc.insert("is_admin".into(), opt(user.is_admin));
    doc.insert("is_owner".into(), opt(user.is_owner));
    doc.insert("is_bot".into(), opt(user.is_bot));
    set_timestamp(&mut doc, user.updated.and_then(iso_from_epoch));
    doc
}

/// The channel document (§4.3 fields, plus `type`, `_timestamp` and `url`).
pub fn channel_doc(channel: &Channel, names: &Names, base: Option<&str>) -> Map<String, Value> {
    let author = |t: &Topic| -> Value {
        let creator = t.creator.as_deref().filter(|c| !c.is_empty());
        opt_str(creator.map(|c| names.user(c).unwrap_or(c)))
    };
    let empty = Topic::default();
    let topic = channel.topic.as_ref().unwrap_or(&empty);
    let purpose = channel.purpose.as_ref().unwrap_or(&empty);
    let mut doc = Map::new();
    doc.insert("type".into(), "channel".into());
    doc.insert("id".into(), channel.id.clone().into());
    doc.insert("name".into(), opt_str(channel.name.as_deref()));
    doc.insert(
        "name_normalized".into(),
        opt_str(channel.name_normalized.as_deref()),
    );
    doc.insert("created".into(), opt(channel.created));
    doc.insert("last_updated".into(), opt(channel.updated));
    doc.insert("topic".into(), opt_str(topic.value.as_deref()));
    doc.insert("topic_author".into(), author(topic));
    doc.insert("topic_last_updated".into(), opt(topic.last_set));
    doc.insert("purpose".into(), opt_str(purpose.value.as_deref()));
    doc.insert("purpose_author".into(), author(purpose));
    doc.insert("purpose_last_updated".into(), opt(purpose.last_set));
    doc.insert("is_archived".into(), opt(channel.is_archived));
    let timestamp = channel
        .updated
        .filter(|u| *u > 0)
        .or(channel.created)
        .and_then(iso_from_epoch);
    set_timestamp(&mut doc, timestamp);
    doc.insert(
        "url".into(),
        opt(base.map(|b| format!("{b}/archives/{}", channel.id))),
    );
    doc
}

/// What a message document needs besides the message.
pub struct MessageContext<'a> {
    /// Channel id.
    pub channel_id: &'a str,
    /// Channel name (falls back to the id).
    pub channel_name: &'a str,
    /// Id → name of users and bots.
    pub names: &'a Names,
    /// Channel id → name, for `<#C…>` references in bodies.
    pub channels: &'a HashMap<String, String>,
    /// `https://<domain>.slack.com`, when known.
    pub base: Option<&'a str>,
}

/// The message's document id: `<channel_id>-<ts>`.
pub fn message_id(channel_id: &str, ts: &str) -> String {
    let mut id = String::with_capacity(channel_id.len() + ts.len() + 1);
    id.push_str(channel_id);
    id.push('-');
    id.push_str(ts);
    id
}

/// The message document (§4.3 fields, plus `type`, `channel_id`, `author_id`, `body`,
/// `title`, `_timestamp` and `url`).
pub fn message_doc(message: &Message, ctx: &MessageContext<'_>) -> Map<String, Value> {
    let raw_text = message.text.as_deref().unwrap_or("");
    let author = ctx.names.author(message);
    let author_id = message.user.as_deref().or(message.bot_id.as_deref());
    let title = match author.as_deref() {
        Some(a) => format!("#{} — {a}", ctx.channel_name),
        None => format!("#{}", ctx.channel_name),
    };
    let mut doc = Map::new();
    doc.insert("type".into(), "message".into());
    doc.insert("channel".into(), ctx.channel_name.into());
    doc.insert("channel_id".into(), ctx.channel_id.into());
    doc.insert("author".into(), opt(author));
    doc.insert("author_id".into(), opt_str(author_id));
    doc.insert(
        "text".into(),
        opt(message
            .text
            .as_deref()
            .map(|t| rewrite_mentions(t, ctx.names))),
    );
    doc.insert(
        "body".into(),
        plain_text(raw_text, ctx.names, ctx.channels).into(),
    );
    doc.insert("title".into(), title.into());
    doc.insert("ts".into(), message.ts.clone().into());
    set_timestamp(&mut doc, ts_micros(&message.ts).and_then(iso_from_micros));
    doc.insert(
        "edited_ts".into(),
        opt_str(message.edited.as_ref().and_then(|e| e.ts.as_deref())),
    );
    doc.insert("subtype".into(), opt_str(message.subtype.as_deref()));
    doc.insert("reply_count".into(), opt(message.reply_count));
    doc.insert(
        "latest_reply".into(),
        opt_str(message.latest_reply.as_deref()),
    );
    doc.insert("thread_ts".into(), opt_str(message.thread_ts.as_deref()));
    doc.insert(
        "url".into(),
        opt(ctx
            .base
            .map(|b| permalink(b, ctx.channel_id, &message.ts, message.thread_ts.as_deref()))),
    );
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(id: &str, display: &str, real: &str, name: &str) -> User {
        User {
            id: id.into(),
            name: Some(name.into()),
            real_name: Some(real.into()),
            profile: Profile {
                display_name_normalized: Some(display.into()),
                real_name_normalized: Some(real.into()),
                ..Profile::default()
            },
            ..User::default()
        }
    }

    fn names() -> Names {
        let mut names = Names::default();
        names.add(&user("USERID1", "user_one", "User One", "u1"));
        let mut bot = user("UBOT", "", "", "ci-bot");
        bot.profile.bot_id = Some("B01".into());
        bot.real_name = None;
        bot.profile.real_name_normalized = None;
        names.add(&bot);
        names
    }

    #[test]
    fn name_resolution_order() {
        assert_eq!(display_name(&user("U1", "disp", "Real", "handle")), "disp");
        assert_eq!(display_name(&user("U1", "", "Real", "handle")), "Real");
        let mut u = user("U1", "", "", "handle");
        u.real_name = Some("Raw Real".into());
        assert_eq!(display_name(&u), "Raw Real");
        u.real_name = None;
        assert_eq!(display_name(&u), "handle");
        u.name = None;
        assert_eq!(display_name(&u), "U1");
    }

    #[test]
    fn mentions_are_rewritten_like_upstream() {
        let names = names();
        assert_eq!(
            rewrite_mentions("<@USERID1> Hello, <@USERID2>", &names),
            "<@user_one> Hello, <@USERID2>"
        );
        assert_eq!(rewrite_mentions("a <@ b <@x> c", &names), "a <@ b <@x> c");
        assert_eq!(rewrite_mentions("no mentions", &names), "no mentions");
    }

    #[test]
    fn bodies_are_plain_text() {
        let names = names();
        let mut channels = HashMap::new();
        channels.insert("C2".to_string(), "random".to_string());
        let text = "hi <@USERID1>, see <#C1|general> and <#C2> or <https://example.com/q?x=1&amp;y=2|search> \
                    <https://status.example.com> <!here> <!subteam^S1|@devs> a&lt;b &amp; x&gt;y";
        assert_eq!(
            plain_text(text, &names, &channels),
            "hi @user_one, see #general and #random or search (https://example.com/q?x=1&y=2) \
             https://status.example.com @here @devs a<b & x>y"
        );
        assert_eq!(plain_text("<@UNKNOWN> x", &names, &channels), "@UNKNOWN x");
        assert_eq!(plain_text("broken <tag", &names, &channels), "broken <tag");
        assert_eq!(plain_text("&amp;lt;", &names, &channels), "&lt;");
    }

    #[test]
    fn authors_resolve_users_and_bots() {
        let names = names();
        let m = Message {
            user: Some("USERID1".into()),
            ..Message::default()
        };
        assert_eq!(names.author(&m).as_deref(), Some("user_one"));
        let bot = Message {
            bot_id: Some("B01".into()),
            username: Some("CI".into()),
            ..Message::default()
        };
        assert_eq!(names.author(&bot).as_deref(), Some("ci-bot"));
        let other = Message {
            bot_id: Some("B99".into()),
            username: Some("hook".into()),
            ..Message::default()
        };
        assert_eq!(names.author(&other).as_deref(), Some("hook"));
        assert_eq!(names.author(&Message::default()), None);
    }

    #[test]
    fn timestamps_are_exact() {
        assert_eq!(ts_micros("1700000000.000100"), Some(1_700_000_000_000_100));
        assert_eq!(ts_micros("1700000000"), Some(1_700_000_000_000_000));
        assert_eq!(ts_micros("1700000000.1"), Some(1_700_000_000_100_000));
        assert_eq!(ts_micros("1.7e9"), None);
        assert_eq!(ts_micros(""), None);
        assert_eq!(
            iso_from_micros(1_700_000_000_000_100).as_deref(),
            Some("2023-11-14T22:13:20.000100Z")
        );
        assert_eq!(
            iso_from_epoch(1_700_000_000).as_deref(),
            Some("2023-11-14T22:13:20.000000Z")
        );
        assert_eq!(
            iso_from_epoch(1_700_000_000_123).as_deref(),
            Some("2023-11-14T22:13:20.123000Z")
        );
        assert_eq!(iso_from_epoch(0), None);
    }

    #[test]
    fn window_bounds_are_integers() {
        assert_eq!(
            window_oldest(1_700_000_000, 180).as_deref(),
            Some("1684448000")
        );
        assert_eq!(
            window_oldest(1_700_000_000, 1).as_deref(),
            Some("1699913600")
        );
        assert_eq!(window_oldest(1_700_000_000, 0), None);
    }

    #[test]
    fn permalinks() {
        let base = workspace_base("https://acme.slack.com/").unwrap();
        assert_eq!(base, "https://acme.slack.com");
        assert_eq!(
            permalink(&base, "C1", "1700000000.000100", None),
            "https://acme.slack.com/archives/C1/p1700000000000100"
        );
        assert_eq!(
            permalink(&base, "C1", "1700000000.000100", Some("1700000000.000100")),
            "https://acme.slack.com/archives/C1/p1700000000000100"
        );
        assert_eq!(
            permalink(&base, "C1", "1700000001.000200", Some("1700000000.000100")),
            "https://acme.slack.com/archives/C1/p1700000001000200?thread_ts=1700000000.000100&cid=C1"
        );
        assert_eq!(workspace_base("nope"), None);
    }

    #[test]
    fn documents_have_every_field_with_nulls() {
        let names = names();
        let channels = HashMap::new();
        let message: Message = serde_json::from_value(json!({
            "type": "message", "user": "USERID1", "text": "hey <@USERID1> &amp; co",
            "ts": "1700000000.000100"
        }))
        .unwrap();
        let ctx = MessageContext {
            channel_id: "C1",
            channel_name: "general",
            names: &names,
            channels: &channels,
            base: Some("https://acme.slack.com"),
        };
        let doc = message_doc(&message, &ctx);
        assert_eq!(doc["text"], json!("hey <@user_one> &amp; co"));
        assert_eq!(doc["body"], json!("hey @user_one & co"));
        assert_eq!(doc["author"], json!("user_one"));
        assert_eq!(doc["author_id"], json!("USERID1"));
        assert_eq!(doc["title"], json!("#general — user_one"));
        assert_eq!(doc["_timestamp"], json!("2023-11-14T22:13:20.000100Z"));
        for key in [
            "edited_ts",
            "subtype",
            "reply_count",
            "latest_reply",
            "thread_ts",
        ] {
            assert_eq!(doc[key], Value::Null, "{key}");
        }
        assert_eq!(
            message_id("C1", "1700000000.000100"),
            "C1-1700000000.000100"
        );

        let user_doc = user_doc(&User {
            id: "U9".into(),
            ..User::default()
        });
        for key in [
            "real_name_normalized",
            "profile_real_name",
            "display_name",
            "display_name_normalized",
            "first_name",
            "last_name",
            "name",
            "deleted",
            "real_name",
            "is_admin",
            "is_owner",
            "is_bot",
        ] {
            assert_eq!(user_doc[key], Value::Null, "{key}");
        }
        assert!(
            !user_doc.contains_key("_timestamp"),
            "unknown dates are left out"
        );
        let channel: Channel = serde_json::from_value(json!({
            "id": "C1", "name": "general", "created": 1_600_000_000, "updated": 1_700_000_000_000i64,
            "topic": {"value": "t", "creator": "USERID1", "last_set": 5}
        }))
        .unwrap();
        let cdoc = channel_doc(&channel, &names, None);
        assert_eq!(cdoc["topic_author"], json!("user_one"));
        assert_eq!(cdoc["purpose"], Value::Null);
        assert_eq!(cdoc["_timestamp"], json!("2023-11-14T22:13:20.000000Z"));
        assert_eq!(cdoc["url"], Value::Null);
    }
}
