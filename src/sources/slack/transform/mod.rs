//! Slack objects → index documents (`elastic-connectors-protocol.md` §4.3), as pure
//! functions.
//!
//! Layout: [`wire`] (the answer models, only the fields we index), [`text`] (names,
//! mentions, mrkdwn, permalinks), [`time`] (`ts`, ISO-8601, the history window), [`json`]
//! (the object writer); this module makes the user, channel and message documents.
//!
//! Invariants: documents carry every §4.3 field under the same name, `null` when Slack
//! left it out (so the index mapping is stable); message timestamps are handled as exact
//! strings and integer microseconds, never floats (the bug class of elastic/connectors#3032).

mod json;
pub mod text;
pub mod time;
pub mod wire;

pub use text::{
    display_name, permalink, permalink_into, plain_text, plain_text_into, rewrite_mentions,
    rewrite_mentions_into, workspace_base, JsonText, Names, TextOut,
};
pub use time::{iso_from_epoch, iso_from_micros, ts_micros, window_oldest};
pub use wire::{Channel, Edited, Message, Profile, Topic, User};

use json::ObjectWriter;
use serde_json::{Map, Value};
use std::collections::HashMap;

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

#[cfg(test)]
mod fixtures {
    use super::*;

    pub fn user(id: &str, display: &str, real: &str, name: &str) -> User {
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

    pub fn names() -> Names {
        let mut names = Names::default();
        names.add(&user("USERID1", "user_one", "User One", "u1"));
        let mut bot = user("UBOT", "", "", "ci-bot");
        bot.profile.bot_id = Some("B01".into());
        bot.real_name = None;
        bot.profile.real_name_normalized = None;
        names.add(&bot);
        names
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::names;
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

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
