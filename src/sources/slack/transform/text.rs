//! Slack text: display names, mention rewriting, mrkdwn to plain text, permalinks; each
//! writes into any [`TextOut`] (a `String`, or straight into a JSON string value).
//!
//! Invariants: unknown ids are kept as they are (never dropped); Slack's three entities are
//! undone in one pass (`&amp;lt;` gives `&lt;`).

use super::wire::{Message, User};
use crate::sources::document::JsonText;
use std::collections::HashMap;

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

/// Text written straight into a document's JSON string value, escaped on the way in.
impl TextOut for JsonText<'_> {
    fn push_str(&mut self, s: &str) {
        JsonText::push_str(self, s);
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{names, user};
    use super::*;

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
}
