//! Slack objects → index documents (`elastic-connectors-protocol.md` §4.3), as pure
//! functions: the wire models (only the fields we index), name resolution, mention
//! rewriting, plain-text bodies, permalinks, timestamps and the history window.
//!
//! Invariants: documents carry every §4.3 field under the same name, `null` when Slack
//! left it out (so the index mapping is stable); message timestamps are handled as exact
//! strings and integer microseconds, never floats (the bug class of elastic/connectors#3032).

use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
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
pub struct Edited<'a> {
    /// When (a ts string).
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub ts: Option<Cow<'a, str>>,
}

/// A history or replies message (fields we use). Strings borrow from the response body
/// when they hold no JSON escapes: a sync parses a million of these, and owning every
/// field cost an allocation and a copy each. (serde borrows a bare `Cow<str>` field with
/// `borrow`, but an `Option<Cow<str>>` only through [`borrowed_opt`].)
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Message<'a> {
    /// Always `message`.
    #[serde(rename = "type", default, borrow, deserialize_with = "borrowed_opt")]
    pub kind: Option<Cow<'a, str>>,
    /// `bot_message`, `thread_broadcast`, …
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub subtype: Option<Cow<'a, str>>,
    /// Author (`U…`).
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub user: Option<Cow<'a, str>>,
    /// Bot author (`B…`).
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub bot_id: Option<Cow<'a, str>>,
    /// Bot display name.
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub username: Option<Cow<'a, str>>,
    /// Slack mrkdwn text.
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub text: Option<Cow<'a, str>>,
    /// `"<secs>.<micros>"`, unique in the channel: required (a message without one cannot
    /// have an id, and dropping it quietly would let the sweep delete it).
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
    /// Thread parent's ts (equal to `ts` on a parent).
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub thread_ts: Option<Cow<'a, str>>,
    /// Replies (on parents).
    #[serde(default)]
    pub reply_count: Option<u64>,
    /// Newest reply's ts (on parents).
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub latest_reply: Option<Cow<'a, str>>,
    /// Edit marker.
    #[serde(default, borrow)]
    pub edited: Option<Edited<'a>>,
}

/// An optional string that borrows from the input when it can (no escapes), owned
/// otherwise; `null` and absence are `None`.
fn borrowed_opt<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
    }
    deserializer.deserialize_option(Visit)
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
    pub fn author<'a>(&'a self, message: &'a Message<'_>) -> Option<&'a str> {
        if let Some(user) = message.user.as_deref() {
            return Some(self.user(user).unwrap_or(user));
        }
        let bot = message.bot_id.as_deref()?;
        Some(
            self.bots
                .get(bot)
                .map(String::as_str)
                .or(message.username.as_deref())
                .unwrap_or(bot),
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

/// Where transformed text goes: a `String`, or straight into a JSON string value being
/// written ([`JsonText`]), so a message document needs no intermediate strings.
pub trait TextOut {
    /// Appends a piece.
    fn push_str(&mut self, s: &str);
    /// Appends one character.
    fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }
}

impl TextOut for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
}

/// The inside of a JSON string value: every piece is escaped on the way in.
pub struct JsonText<'a>(pub &'a mut Vec<u8>);

impl TextOut for JsonText<'_> {
    fn push_str(&mut self, s: &str) {
        escape_json_into(self.0, s);
    }
}

/// Upstream's `text`: every `<@ID>` of a known user becomes `<@name>` (unknown ids stay).
pub fn rewrite_mentions(text: &str, names: &Names) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    rewrite_mentions_into(&mut out, text, names);
    out
}

/// [`rewrite_mentions`] into any [`TextOut`].
pub fn rewrite_mentions_into(out: &mut impl TextOut, text: &str, names: &Names) {
    let mut rest = text;
    while let Some(start) = find_pair(rest, b'<', b'@') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = memchr::memchr(b'>', after.as_bytes());
        let id = end.map(|e| &after[..e]).filter(|id| is_slack_id(id));
        match (id, end) {
            (Some(id), Some(end)) => {
                out.push_str("<@");
                out.push_str(names.user(id).unwrap_or(id));
                out.push_str(">");
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("<@");
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// The byte offset of the first `first` followed by `second` (both ASCII): memchr finds the
/// candidates, where a two-byte substring search paid a setup per call.
fn find_pair(s: &str, first: u8, second: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(at) = memchr::memchr(first, &bytes[from..]) {
        let at = from + at;
        if bytes.get(at + 1) == Some(&second) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn is_slack_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Appends `text` to `out` with Slack's three escapes (`&lt;`, `&gt;`, `&amp;`) undone, in
/// one pass: `&amp;lt;` gives `&lt;` (not `<`), as the
/// `&amp;`-last replacement order does.
fn push_unescaped(out: &mut impl TextOut, text: &str) {
    let mut rest = text;
    while let Some(at) = memchr::memchr(b'&', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (replacement, len) = if tail.starts_with("&lt;") {
            ('<', 4)
        } else if tail.starts_with("&gt;") {
            ('>', 4)
        } else if tail.starts_with("&amp;") {
            ('&', 5)
        } else {
            ('&', 1)
        };
        out.push(replacement);
        rest = &tail[len..];
    }
    out.push_str(rest);
}

/// Readable plain text from Slack mrkdwn: `<@U1>` → `@name`, `<#C1|general>` → `#general`,
/// `<!here>` → `@here`, `<!subteam^S1|@devs>` → `@devs`, `<url|label>` → `label (url)`,
/// `<url>` → `url`, entities unescaped.
pub fn plain_text(text: &str, names: &Names, channels: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    plain_text_into(&mut out, text, names, channels);
    out
}

/// [`plain_text`] into any [`TextOut`].
pub fn plain_text_into(
    out: &mut impl TextOut,
    text: &str,
    names: &Names,
    channels: &HashMap<String, String>,
) {
    let mut rest = text;
    while let Some(start) = memchr::memchr(b'<', rest.as_bytes()) {
        push_unescaped(out, &rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = memchr::memchr(b'>', after.as_bytes()) else {
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
                Some(l) => push_unescaped(out, l),
                None => {
                    out.push('@');
                    out.push_str(special.split('^').next().unwrap_or(special));
                }
            }
        } else {
            match label.filter(|l| !l.is_empty()) {
                Some(l) => {
                    push_unescaped(out, l);
                    out.push_str(" (");
                    push_unescaped(out, target);
                    out.push(')');
                }
                None => push_unescaped(out, target),
            }
        }
        rest = &after[end + 1..];
    }
    push_unescaped(out, rest);
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
    let mut out = Vec::with_capacity(27);
    if write_iso(&mut out, micros) {
        return String::from_utf8(out).ok();
    }
    None
}

/// Appends [`iso_from_micros`] of `micros`: the fast writer for 1970..=9999, chrono beyond;
/// `false`, with nothing written, when the instant has no representation.
fn write_iso(out: &mut Vec<u8>, micros: i64) -> bool {
    if write_iso_micros(out, micros) {
        return true;
    }
    match iso_from_micros_chrono(micros) {
        Some(iso) => {
            out.extend_from_slice(iso.as_bytes());
            true
        }
        None => false,
    }
}

/// Writes [`iso_from_micros`] for years 1970..=9999 (every Slack `ts`) without chrono's
/// general formatter, which was a visible share of a message's cost; `false` (nothing
/// written) outside that range. Days to civil date after Howard Hinnant's algorithm.
fn write_iso_micros(out: &mut Vec<u8>, micros: i64) -> bool {
    // 253402300800 s = 10000-01-01T00:00:00Z.
    if !(0..253_402_300_800_000_000).contains(&micros) {
        return false;
    }
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    out.push(b'T');
    push_digits(out, rem / 3600, 2);
    out.push(b':');
    push_digits(out, rem / 60 % 60, 2);
    out.push(b':');
    push_digits(out, rem % 60, 2);
    out.push(b'.');
    push_digits(out, frac, 6);
    out.push(b'Z');
    true
}

/// `value` (non-negative) as exactly `width` (at most 6) zero-padded decimal digits.
fn push_digits(out: &mut Vec<u8>, value: i64, width: usize) {
    let mut buf = [b'0'; 6];
    let mut v = value;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// chrono's RFC 3339 with microseconds: the reference, and years past 9999.
fn iso_from_micros_chrono(micros: i64) -> Option<String> {
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
    (days > 0).then(|| {
        now_secs
            .saturating_sub(i64::from(days) * 86_400)
            .to_string()
    })
}

/// `https://<domain>.slack.com` from `auth.test`'s `url` (trailing slash dropped).
pub fn workspace_base(url: &str) -> Option<String> {
    let trimmed = url.trim().trim_end_matches('/');
    (trimmed.starts_with("https://") || trimmed.starts_with("http://")).then(|| trimmed.to_string())
}

/// A message permalink: `<base>/archives/<channel>/p<ts digits>`, and for a reply
/// `?thread_ts=<parent ts>&cid=<channel>`.
pub fn permalink(base: &str, channel_id: &str, ts: &str, thread_ts: Option<&str>) -> String {
    let mut link = String::with_capacity(base.len() + 2 * channel_id.len() + 2 * ts.len() + 32);
    permalink_into(&mut link, base, channel_id, ts, thread_ts);
    link
}

/// [`permalink`] into any [`TextOut`].
pub fn permalink_into(
    out: &mut impl TextOut,
    base: &str,
    channel_id: &str,
    ts: &str,
    thread_ts: Option<&str>,
) {
    out.push_str(base);
    out.push_str("/archives/");
    out.push_str(channel_id);
    out.push_str("/p");
    for digits in ts.split('.') {
        out.push_str(digits);
    }
    if let Some(parent) = thread_ts.filter(|t| *t != ts) {
        out.push_str("?thread_ts=");
        out.push_str(parent);
        out.push_str("&cid=");
        out.push_str(channel_id);
    }
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

/// The message document (§4.3 fields plus `type`, `body`, `title` and `url`), serialized
/// straight into JSON: messages are nearly every document of a sync, and building a field
/// map per message only to serialize and drop it was most of the source's CPU.
/// Returns the body and whether it carries `_timestamp`.
pub fn message_json(message: &Message<'_>, ctx: &MessageContext<'_>) -> (Vec<u8>, bool) {
    let raw_text = message.text.as_deref().unwrap_or("");
    let author = ctx.names.author(message);
    let author_id = message.user.as_deref().or(message.bot_id.as_deref());
    let mut doc = ObjectWriter::with_capacity(3 * raw_text.len() + 512);
    doc.str("type", "message");
    doc.str("channel", ctx.channel_name);
    doc.str("channel_id", ctx.channel_id);
    doc.opt_str("author", author);
    doc.opt_str("author_id", author_id);
    // Most messages have no markup (`<…>`) and no entities (`&…;`): then `text` and `body`
    // are the raw text, escaped once and copied.
    let plain = memchr::memchr2(b'<', b'&', raw_text.as_bytes()).is_none();
    match message.text.as_deref() {
        Some(text) if plain => {
            let value = doc.str("text", text);
            doc.same("body", value);
        }
        Some(text) => {
            doc.text("text", |out| rewrite_mentions_into(out, text, ctx.names));
            doc.text("body", |out| {
                plain_text_into(out, raw_text, ctx.names, ctx.channels)
            });
        }
        None => {
            doc.null("text");
            doc.str("body", "");
        }
    }
    match author {
        Some(a) => doc.str_parts("title", &["#", ctx.channel_name, " — ", a]),
        None => doc.str_parts("title", &["#", ctx.channel_name]),
    };
    doc.str("ts", &message.ts);
    let has_timestamp = doc.timestamp("_timestamp", ts_micros(&message.ts));
    doc.opt_str(
        "edited_ts",
        message.edited.as_ref().and_then(|e| e.ts.as_deref()),
    );
    doc.opt_str("subtype", message.subtype.as_deref());
    match message.reply_count {
        Some(count) => doc.u64("reply_count", count),
        None => doc.null("reply_count"),
    }
    doc.opt_str("latest_reply", message.latest_reply.as_deref());
    doc.opt_str("thread_ts", message.thread_ts.as_deref());
    match ctx.base {
        Some(base) => doc.text("url", |out| {
            permalink_into(
                out,
                base,
                ctx.channel_id,
                &message.ts,
                message.thread_ts.as_deref(),
            )
        }),
        None => doc.null("url"),
    }
    (doc.finish(), has_timestamp)
}

/// [`message_json`] as a field map (tests, and anyone who wants fields).
pub fn message_doc(message: &Message<'_>, ctx: &MessageContext<'_>) -> Map<String, Value> {
    serde_json::from_slice(&message_json(message, ctx).0).unwrap_or_default()
}

/// Writes one JSON object field by field. Keys are ours (plain ASCII, never escaped);
/// values are escaped as JSON requires.
struct ObjectWriter {
    out: Vec<u8>,
}

impl ObjectWriter {
    fn with_capacity(capacity: usize) -> ObjectWriter {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        ObjectWriter { out }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// Returns where the written value (quotes included) lies in the output, for [`Self::same`].
    fn str(&mut self, key: &str, value: &str) -> std::ops::Range<usize> {
        self.str_parts(key, &[value])
    }

    /// One string value made of `parts`, concatenated; returns the value's span.
    fn str_parts(&mut self, key: &str, parts: &[&str]) -> std::ops::Range<usize> {
        self.key(key);
        let start = self.out.len();
        self.out.push(b'"');
        for part in parts {
            escape_json_into(&mut self.out, part);
        }
        self.out.push(b'"');
        start..self.out.len()
    }

    /// `key` with a value already written at `value` (a span [`Self::str`] returned).
    fn same(&mut self, key: &str, value: std::ops::Range<usize>) {
        self.key(key);
        self.out.extend_from_within(value);
    }

    /// A string value written piece by piece by `write`, escaped on the way.
    fn text(&mut self, key: &str, write: impl FnOnce(&mut JsonText<'_>)) {
        self.key(key);
        self.out.push(b'"');
        write(&mut JsonText(&mut self.out));
        self.out.push(b'"');
    }

    /// An ISO-8601 timestamp of epoch microseconds, if it has one (nothing written, and
    /// `false`, otherwise: see [`set_timestamp`]).
    fn timestamp(&mut self, key: &str, micros: Option<i64>) -> bool {
        let Some(micros) = micros else { return false };
        let mark = self.out.len();
        self.key(key);
        self.out.push(b'"');
        if write_iso(&mut self.out, micros) {
            self.out.push(b'"');
            true
        } else {
            self.out.truncate(mark);
            false
        }
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => {
                self.str(key, value);
            }
            None => self.null(key),
        }
    }

    fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        // Writing to a Vec cannot fail.
        let _ = std::io::Write::write_fmt(&mut self.out, format_args!("{value}"));
    }

    fn null(&mut self, key: &str) {
        self.key(key);
        self.out.extend_from_slice(b"null");
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// Appends `s` JSON-escaped (without quotes): `"`, `\\` and control characters; the rest,
/// unicode included, is copied as is (JSON text is UTF-8). Message text is most of the
/// bytes we write, so clean runs are found eight bytes at a time.
fn escape_json_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i..i + 8]);
            if !word_needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes of `word` is `"`, `\\` or below 0x20 (may say yes for a
/// byte that only looks close; the byte loop then decides exactly).
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The classic "has a byte below n" and "has a zero byte" tricks.
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let has_quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let has_backslash = backslash.wrapping_sub(ONES) & !backslash & HIGH;
    below_space | has_quote | has_backslash != 0
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
        assert_eq!(names.author(&m), Some("user_one"));
        let bot = Message {
            bot_id: Some("B01".into()),
            username: Some("CI".into()),
            ..Message::default()
        };
        assert_eq!(names.author(&bot), Some("ci-bot"));
        let other = Message {
            bot_id: Some("B99".into()),
            username: Some("hook".into()),
            ..Message::default()
        };
        assert_eq!(names.author(&other), Some("hook"));
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
    fn fast_iso_agrees_with_chrono() {
        // Edges (epoch, leap days, century rules, the last representable instant) and a
        // deterministic sweep over 1970..10000 with odd strides, so every month, day and
        // time of day is hit.
        let mut cases = vec![
            0,
            1,
            999_999,
            951_782_400_000_000,   // 2000-02-29
            4_107_542_400_000_000, // 2100-03-01 (2100 is not a leap year)
            1_700_000_000_000_100,
            253_402_300_799_999_999,
        ];
        let mut x: i64 = 1;
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            cases.push(((x as u64) >> 1) as i64 % 253_402_300_800_000_000);
        }
        for micros in cases {
            assert_eq!(
                iso_from_micros(micros),
                iso_from_micros_chrono(micros),
                "{micros}"
            );
        }
        // Outside the fast range: chrono's answer.
        assert_eq!(
            iso_from_micros(253_402_300_800_000_000).as_deref(),
            Some("+10000-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            iso_from_micros(-1).as_deref(),
            Some("1969-12-31T23:59:59.999999Z")
        );
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
    fn json_escaping_round_trips() {
        for text in [
            "plain",
            "quote \" backslash \\ slash /",
            "lines\nand\r\ttabs \u{0} \u{1f} \u{7f}",
            "unicode é 日本語 🎉 \u{2028}",
            "",
            "exactly8",
            "a longer clean run of text, then one \" quote, then more clean text\\",
            "\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\u{9}",
            "ééééé\"ééééé",
        ] {
            let mut out = b"\"".to_vec();
            escape_json_into(&mut out, text);
            out.push(b'"');
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, text);
        }
    }

    /// No byte that needs escaping slips through the eight-byte scan, at any position and
    /// beside any neighbour.
    #[test]
    fn word_scan_never_misses_a_byte_to_escape() {
        for needs in (0u8..0x20).chain([b'"', b'\\']) {
            for filler in 0u8..=255 {
                for at in 0..8 {
                    let mut word = [filler; 8];
                    word[at] = needs;
                    assert!(
                        word_needs_escape(u64::from_le_bytes(word)),
                        "{needs} at {at}"
                    );
                }
            }
        }
        assert!(!word_needs_escape(u64::from_le_bytes(*b"clean ok")));
    }

    #[test]
    fn text_and_body_agree_with_the_helpers_with_or_without_markup() {
        let names = names();
        let channels = HashMap::from([("C9".to_string(), "random".to_string())]);
        let ctx = MessageContext {
            channel_id: "C1",
            channel_name: "general",
            names: &names,
            channels: &channels,
            base: None,
        };
        // Plain texts take the escape-once-and-copy path; the rest the two helpers.
        for text in [
            "",
            "plain words",
            "quotes \" and \\ backslash, tab\t, newline\n, nul\u{0}, é ✓ 🎉",
            "<@USERID1> hi",
            "a < b",
            "x &amp; y",
            "see <#C9> and <https://e.com|e>",
            "\"<@USERID2>\"\n&lt;",
        ] {
            let raw = json!({"type": "message", "text": text, "ts": "1.000001"}).to_string();
            let message: Message = serde_json::from_str(&raw).unwrap();
            let doc: Map<String, Value> =
                serde_json::from_slice(&message_json(&message, &ctx).0).unwrap();
            assert_eq!(
                doc["text"],
                json!(rewrite_mentions(text, &names)),
                "{text:?}"
            );
            assert_eq!(
                doc["body"],
                json!(plain_text(text, &names, &channels)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn message_json_matches_the_field_helpers() {
        let names = names();
        let channels = HashMap::new();
        let ctx = MessageContext {
            channel_id: "C1",
            channel_name: "gen\"eral",
            names: &names,
            channels: &channels,
            base: Some("https://acme.slack.com"),
        };
        // Escapes in the text: that field is owned, the others borrow from `raw`.
        let raw = json!({
            "type": "message", "bot_id": "B01", "text": "<@USERID1> \"quoted\"\n&lt;b&gt;",
            "ts": "1700000001.000200", "thread_ts": "1700000000.000100", "reply_count": 0,
            "edited": {"ts": "1700000002.000000"}
        })
        .to_string();
        let reply: Message = serde_json::from_str(&raw).unwrap();
        assert!(matches!(reply.text, Some(Cow::Owned(_))));
        assert!(matches!(reply.ts, Cow::Borrowed(_)));
        assert!(matches!(reply.thread_ts, Some(Cow::Borrowed(_))));
        assert!(matches!(reply.bot_id, Some(Cow::Borrowed(_))));
        let edited = reply.edited.as_ref().and_then(|e| e.ts.as_ref());
        assert!(matches!(edited, Some(Cow::Borrowed(_))));
        let (json, has_timestamp) = message_json(&reply, &ctx);
        assert!(has_timestamp);
        let doc: Map<String, Value> = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            doc["url"],
            json!(permalink(
                "https://acme.slack.com",
                "C1",
                &reply.ts,
                reply.thread_ts.as_deref()
            ))
        );
        assert_eq!(doc["title"], json!("#gen\"eral — ci-bot"));
        assert_eq!(doc["body"], json!("@user_one \"quoted\"\n<b>"));
        assert_eq!(doc["reply_count"], json!(0));
        assert_eq!(doc["edited_ts"], json!("1700000002.000000"));
        assert_eq!(doc.len(), 16);
        let undated: Message = serde_json::from_str(r#"{"ts": "not-a-ts"}"#).unwrap();
        let ctx = MessageContext { base: None, ..ctx };
        let (json, has_timestamp) = message_json(&undated, &ctx);
        assert!(!has_timestamp);
        let doc: Map<String, Value> = serde_json::from_slice(&json).unwrap();
        assert!(!doc.contains_key("_timestamp"));
        assert_eq!(doc["url"], Value::Null);
        assert_eq!(doc["text"], Value::Null);
        assert_eq!(doc["author"], Value::Null);
        assert_eq!(doc["title"], json!("#gen\"eral"));
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
        let raw = json!({
            "type": "message", "user": "USERID1", "text": "hey <@USERID1> &amp; co",
            "ts": "1700000000.000100"
        })
        .to_string();
        let message: Message = serde_json::from_str(&raw).unwrap();
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
