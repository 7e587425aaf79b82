//! Slack objects → index documents (`elastic-connectors-protocol.md` §4.3), as pure
//! functions.
//!
//! Layout: [`wire`] (the answer models, only the fields we index), [`text`] (names,
//! mentions, mrkdwn, permalinks), [`time`] (`ts`, epochs, the history window); this module
//! makes the user, channel and message [`Document`]s, each written field by field with the
//! sources' [`DocumentWriter`].
//!
//! Invariants: documents carry every §4.3 field under the same name, `null` when Slack
//! left it out (so the index mapping is stable); `_timestamp` only when Slack dates the
//! object (the engine otherwise keeps an existing document's creation time); message
//! timestamps are handled as exact strings and integer microseconds, never floats (the bug
//! class of elastic/connectors#3032).

pub mod text;
pub mod time;
pub mod wire;

pub use crate::sources::document::JsonText;
pub use text::{
    display_name, permalink, permalink_into, plain_text, plain_text_into, rewrite_mentions,
    rewrite_mentions_into, workspace_base, Names, TextOut,
};
pub use time::{epoch_timestamp, iso_from_epoch, iso_from_micros, ts_micros, window_oldest};
pub use wire::{
    Attachment, Block, Channel, Edited, FileRef, Message, Profile, Reaction, Topic, User,
};

use crate::sources::{Document, DocumentWriter, Timestamp};
use std::collections::HashMap;

/// The user document (§4.3 fields, plus `type` and `_timestamp`).
pub fn user_doc(user: &User) -> Document {
    let p = &user.profile;
    let mut doc = DocumentWriter::with_capacity(512);
    doc.str("type", "user");
    doc.opt_str("name", user.name.as_deref());
    doc.opt_str("real_name", user.real_name.as_deref());
    doc.opt_str("real_name_normalized", p.real_name_normalized.as_deref());
    doc.opt_str("profile_real_name", p.real_name.as_deref());
    doc.opt_str("display_name", p.display_name.as_deref());
    doc.opt_str(
        "display_name_normalized",
        p.display_name_normalized.as_deref(),
    );
    doc.opt_str("first_name", p.first_name.as_deref());
    doc.opt_str("last_name", p.last_name.as_deref());
    doc.opt_bool("deleted", user.deleted);
    doc.opt_bool("is_admin", user.is_admin);
    doc.opt_bool("is_owner", user.is_owner);
    doc.opt_bool("is_bot", user.is_bot);
    doc.timestamp(user.updated.and_then(epoch_timestamp));
    doc.finish(user.id.clone())
}

/// The channel document (§4.3 fields, plus `type`, `_timestamp` and `url`).
pub fn channel_doc(channel: &Channel, names: &Names, base: Option<&str>) -> Document {
    fn author<'a>(topic: &'a Topic, names: &'a Names) -> Option<&'a str> {
        let creator = topic.creator.as_deref().filter(|c| !c.is_empty());
        creator.map(|c| names.user(c).unwrap_or(c))
    }
    let empty = Topic::default();
    let topic = channel.topic.as_ref().unwrap_or(&empty);
    let purpose = channel.purpose.as_ref().unwrap_or(&empty);
    let mut doc = DocumentWriter::with_capacity(512);
    doc.str("type", "channel");
    doc.opt_str("name", channel.name.as_deref());
    doc.opt_str("name_normalized", channel.name_normalized.as_deref());
    doc.opt_i64("created", channel.created);
    doc.opt_i64("last_updated", channel.updated);
    doc.opt_str("topic", topic.value.as_deref());
    doc.opt_str("topic_author", author(topic, names));
    doc.opt_i64("topic_last_updated", topic.last_set);
    doc.opt_str("purpose", purpose.value.as_deref());
    doc.opt_str("purpose_author", author(purpose, names));
    doc.opt_i64("purpose_last_updated", purpose.last_set);
    doc.opt_bool("is_archived", channel.is_archived);
    let updated = channel.updated.filter(|u| *u > 0).or(channel.created);
    doc.timestamp(updated.and_then(epoch_timestamp));
    match base {
        Some(base) => {
            doc.str_parts("url", &[base, "/archives/", &channel.id]);
        }
        None => doc.null("url"),
    }
    doc.finish(channel.id.clone())
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
    /// Who reacted (`sync_reaction_users`): each reaction also carries its `users` and
    /// `user_names`.
    pub reaction_users: bool,
}

/// The message's document id: `<channel_id>-<ts>`.
pub fn message_id(channel_id: &str, ts: &str) -> String {
    let mut id = String::with_capacity(channel_id.len() + ts.len() + 1);
    id.push_str(channel_id);
    id.push('-');
    id.push_str(ts);
    id
}

/// The searchable text beyond `text`: each attachment's pretext, title and text (its
/// fallback when it has none of them), then the text of `section` and `header` blocks.
/// `rich_text` blocks are left out: they are the message's own `text` again.
fn extra_text<'m>(message: &'m Message<'_>) -> Vec<&'m str> {
    let mut pieces = Vec::new();
    let non_empty =
        |s: &Option<std::borrow::Cow<'_, str>>| s.as_deref().is_some_and(|t| !t.is_empty());
    for a in message.attachments.iter().flatten() {
        let before = pieces.len();
        for field in [&a.pretext, &a.title, &a.text] {
            if non_empty(field) {
                pieces.push(field.as_deref().unwrap_or_default());
            }
        }
        if pieces.len() == before && non_empty(&a.fallback) {
            pieces.push(a.fallback.as_deref().unwrap_or_default());
        }
    }
    for b in message.blocks.iter().flatten() {
        if matches!(b.kind.as_deref(), Some("section" | "header")) && non_empty(&b.text) {
            pieces.push(b.text.as_deref().unwrap_or_default());
        }
    }
    pieces
}

/// One entry of a message's `reactions`: `{name, count}`, and with `users` (who reacted,
/// when the connector is asked to index it) also `users` (ids, in Slack's order) and
/// `user_names` (each resolved as a message's author is: the user's name, else the id).
pub fn reaction_entry<U: AsRef<str>>(
    name: &str,
    count: u64,
    users: Option<&[U]>,
    names: &Names,
) -> serde_json::Value {
    let mut entry = serde_json::json!({"name": name, "count": count});
    if let Some(users) = users {
        let ids: Vec<&str> = users.iter().map(|u| u.as_ref()).collect();
        let user_names: Vec<&str> = ids.iter().map(|&u| names.user(u).unwrap_or(u)).collect();
        entry["users"] = serde_json::json!(ids);
        entry["user_names"] = serde_json::json!(user_names);
    }
    entry
}

/// `reactions` (`[{name, count}]`, with `users` and `user_names` when
/// [`MessageContext::reaction_users`]), `files` (ids) and `pinned_to` (conversation ids),
/// written only when the message has them: most messages have none, and their bytes stay
/// as they were (what Elasticsearch receives and stores).
fn write_sparse_fields(doc: &mut DocumentWriter, message: &Message<'_>, ctx: &MessageContext<'_>) {
    if let Some(reactions) = message.reactions.as_ref().filter(|r| !r.is_empty()) {
        let list: Vec<serde_json::Value> = reactions
            .iter()
            .map(|r| {
                // Who reacted, as Slack listed them (none listed is none known).
                let users = ctx
                    .reaction_users
                    .then(|| r.users.as_deref().unwrap_or_default());
                reaction_entry(&r.name, r.count.unwrap_or(0), users, ctx.names)
            })
            .collect();
        doc.json("reactions", &serde_json::Value::Array(list));
    }
    if let Some(files) = message.files.as_ref() {
        let ids: Vec<&str> = files.iter().map(|f| f.id.as_ref()).collect();
        if !ids.is_empty() {
            doc.json("files", &serde_json::json!(ids));
        }
    }
    if let Some(pins) = message.pinned_to.as_ref().filter(|p| !p.is_empty()) {
        doc.json("pinned_to", &serde_json::json!(pins));
    }
}

/// The message document (§4.3 fields plus `type`, `title`, `url`, and `body` when the plain
/// text differs from `text`), id [`message_id`]. Messages are nearly every document of a sync: `text`, `body` and `url`
/// are written straight into their JSON values, with no intermediate strings.
pub fn message_doc(message: &Message<'_>, ctx: &MessageContext<'_>) -> Document {
    let raw_text = message.text.as_deref().unwrap_or("");
    let author = ctx.names.author(message);
    let author_id = message.user.as_deref().or(message.bot_id.as_deref());
    let mut doc = DocumentWriter::with_capacity(3 * raw_text.len() + 512);
    doc.str("type", "message");
    doc.str("channel", ctx.channel_name);
    doc.str("channel_id", ctx.channel_id);
    doc.opt_str("author", author);
    doc.opt_str("author_id", author_id);
    // Most messages have no markup (`<…>`) and no entities (`&…;`): then `body` would repeat
    // `text`, so it is left out (a third of a message's bytes, and one analysed field less
    // for Elasticsearch); searches cover `text` and `body` together.
    let plain = memchr::memchr2(b'<', b'&', raw_text.as_bytes()).is_none();
    let extra = extra_text(message);
    match message.text.as_deref() {
        _ if !extra.is_empty() => {
            match message.text.as_deref() {
                Some(text) => doc.text("text", |out| rewrite_mentions_into(out, text, ctx.names)),
                None => doc.null("text"),
            }
            // Attachments and layout blocks are searchable too (one piece a line).
            doc.text("body", |out| {
                let mut first = raw_text.is_empty();
                plain_text_into(out, raw_text, ctx.names, ctx.channels);
                for piece in &extra {
                    if !first {
                        out.push_str("\n");
                    }
                    first = false;
                    plain_text_into(out, piece, ctx.names, ctx.channels);
                }
            });
        }
        Some(text) if plain => {
            doc.str("text", text);
        }
        Some(text) => {
            doc.text("text", |out| rewrite_mentions_into(out, text, ctx.names));
            doc.text("body", |out| {
                plain_text_into(out, raw_text, ctx.names, ctx.channels)
            });
        }
        None => {
            doc.null("text");
        }
    }
    match author {
        Some(a) => doc.str_parts("title", &["#", ctx.channel_name, " — ", a]),
        None => doc.str_parts("title", &["#", ctx.channel_name]),
    };
    doc.str("ts", &message.ts);
    doc.timestamp(ts_micros(&message.ts).map(Timestamp::from_micros));
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
    write_sparse_fields(&mut doc, message, ctx);
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
    doc.finish(message_id(ctx.channel_id, &message.ts))
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
    use serde_json::{json, Value};
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
            reaction_users: false,
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
            let doc = message_doc(&message, &ctx).fields();
            assert_eq!(
                doc["text"],
                json!(rewrite_mentions(text, &names)),
                "{text:?}"
            );
            // `body` only where it differs from `text`.
            let plain = json!(plain_text(text, &names, &channels));
            match doc.get("body") {
                Some(body) => assert_eq!(body, &plain, "{text:?}"),
                None => assert_eq!(doc["text"], plain, "{text:?}"),
            }
            if text.contains('<') || text.contains('&') {
                assert!(doc.contains_key("body"), "{text:?}");
            }
        }
    }

    #[test]
    fn message_doc_matches_the_field_helpers() {
        let names = names();
        let channels = HashMap::new();
        let ctx = MessageContext {
            channel_id: "C1",
            channel_name: "gen\"eral",
            names: &names,
            channels: &channels,
            base: Some("https://acme.slack.com"),
            reaction_users: false,
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
        let reply_doc = message_doc(&reply, &ctx);
        assert!(reply_doc.timestamp().is_some());
        assert_eq!(reply_doc.id(), "C1-1700000001.000200");
        let doc = reply_doc.fields();
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
        let undated_doc = message_doc(&undated, &ctx);
        assert!(undated_doc.timestamp().is_none());
        let doc = undated_doc.fields();
        assert!(!doc.contains_key("_timestamp"));
        assert_eq!(doc["url"], Value::Null);
        assert_eq!(doc["text"], Value::Null);
        assert!(!doc.contains_key("body"));
        assert_eq!(doc["author"], Value::Null);
        assert_eq!(doc["title"], json!("#gen\"eral"));
    }

    #[test]
    fn reactions_files_pins_and_attachment_text() {
        let names = names();
        let channels = HashMap::new();
        let ctx = MessageContext {
            channel_id: "C1",
            channel_name: "general",
            names: &names,
            channels: &channels,
            base: None,
            reaction_users: false,
        };
        let raw = json!({
            "type": "message", "user": "USERID1", "text": "see <@USERID1>", "ts": "1.000001",
            "reactions": [{"name": "tada", "count": 2, "users": ["U1", "U2"]}],
            "files": [{"id": "F1", "name": "a.txt"}, {"id": "F2"}],
            "pinned_to": ["C1"],
            "attachments": [{"fallback": "only fallback"}, {"title": "CI", "text": "Build *passed*", "fallback": "x"}],
            "blocks": [
                {"type": "rich_text", "elements": [{"type": "text", "text": "see"}]},
                {"type": "section", "text": {"type": "mrkdwn", "text": "Deploy <@USERID1>"}},
                {"type": "header", "text": {"type": "plain_text", "text": "Release"}},
                {"type": "weird", "text": "not an object"}
            ]
        })
        .to_string();
        let message: Message = serde_json::from_str(&raw).unwrap();
        let doc = message_doc(&message, &ctx).fields();
        assert_eq!(doc["reactions"], json!([{"name": "tada", "count": 2}]));
        assert_eq!(doc["files"], json!(["F1", "F2"]));
        assert_eq!(doc["pinned_to"], json!(["C1"]));
        assert_eq!(doc["text"], json!("see <@user_one>"));
        assert_eq!(
            doc["body"],
            json!("see @user_one\nonly fallback\nCI\nBuild *passed*\nDeploy @user_one\nRelease")
        );
        // A message with none of them keeps its fields (and bytes) as before.
        let bare: Message =
            serde_json::from_str(r#"{"type":"message","text":"hi","ts":"1.2"}"#).unwrap();
        let doc = message_doc(&bare, &ctx).fields();
        // (`body` too: it would repeat `text`, issue 20.)
        for key in ["reactions", "files", "pinned_to", "body"] {
            assert!(!doc.contains_key(key), "{key}");
        }
        assert_eq!(doc["text"], json!("hi"));
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
            reaction_users: false,
        };
        let doc = message_doc(&message, &ctx).fields();
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

        let user = user_doc(&User {
            id: "U9".into(),
            ..User::default()
        });
        assert_eq!((user.id(), user.timestamp()), ("U9", None));
        let user_doc = user.fields();
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
        let cdoc = channel_doc(&channel, &names, None).fields();
        assert_eq!(cdoc["topic_author"], json!("user_one"));
        assert_eq!(cdoc["purpose"], Value::Null);
        assert_eq!(cdoc["_timestamp"], json!("2023-11-14T22:13:20.000000Z"));
        assert_eq!(cdoc["url"], Value::Null);
    }
}
