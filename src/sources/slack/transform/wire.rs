//! Slack's wire models: the fields of `users.list`, `conversations.list` and message answers
//! that the documents use (the rest of each object is skipped while decoding).
//!
//! Invariant: message strings borrow from the response body when they hold no JSON escapes
//! ([`Message`]), so a page is made into documents without copying its text.

use serde::Deserialize;
use std::borrow::Cow;

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
    /// The workspace the user belongs to (another one for Slack Connect members).
    #[serde(default)]
    pub team_id: Option<String>,
    /// Guest (multi-channel).
    #[serde(default)]
    pub is_restricted: Option<bool>,
    /// Single-channel guest.
    #[serde(default)]
    pub is_ultra_restricted: Option<bool>,
    /// Belongs to a different workspace (Slack Connect).
    #[serde(default)]
    pub is_stranger: Option<bool>,
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
    /// Email (with the `users:read.email` scope).
    #[serde(default)]
    pub email: Option<String>,
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
    /// Private channel (group DMs too); absent on DMs.
    #[serde(default)]
    pub is_private: Option<bool>,
    /// A DM.
    #[serde(default)]
    pub is_im: Option<bool>,
    /// A group DM.
    #[serde(default)]
    pub is_mpim: Option<bool>,
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
    /// Emoji reactions (`reactions:read`).
    #[serde(default, borrow)]
    pub reactions: Option<Vec<Reaction<'a>>>,
    /// Files shared with the message (only their ids are kept here).
    #[serde(default, borrow)]
    pub files: Option<Vec<FileRef<'a>>>,
    /// Conversations the message is pinned in.
    #[serde(default, borrow)]
    pub pinned_to: Option<Vec<Cow<'a, str>>>,
    /// Legacy attachments (apps, unfurls): their text is searchable.
    #[serde(default, borrow)]
    pub attachments: Option<Vec<Attachment<'a>>>,
    /// Block Kit layout: the text of `section` and `header` blocks is searchable
    /// (`rich_text` blocks repeat `text` and are skipped).
    #[serde(default, borrow)]
    pub blocks: Option<Vec<Block<'a>>>,
}

/// One reaction of a message.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reaction<'a> {
    /// Emoji name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// How many reacted.
    #[serde(default)]
    pub count: Option<u64>,
    /// Who reacted (`U…`), in the order they did: Slack cuts the list short on popular
    /// reactions (`count` stays the whole number; `reactions.get` with `full` lists them
    /// all, see [`super::super::reactions`]).
    #[serde(default, borrow)]
    pub users: Option<Vec<Cow<'a, str>>>,
}

/// A file of a message (Slack's file object, the fields the file document uses). `id` is
/// required: Slack sends it on every file, even a deleted (`mode: tombstone`) one, and a
/// file without it could not be a document; every other field is optional (a file hidden
/// by the plan's limit carries only `id` and `mode`) but must have Slack's type.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FileRef<'a> {
    /// `F…`.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// `hosted`, `external`, `snippet`, `post`, `tombstone` (deleted), `hidden_by_limit`.
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub mode: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub title: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub mimetype: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub filetype: Option<Cow<'a, str>>,
    /// Bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Uploader (`U…`).
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub user: Option<Cow<'a, str>>,
    /// Upload time (epoch seconds).
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub permalink: Option<Cow<'a, str>>,
    /// Where the content is read (with the token).
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub url_private: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub url_private_download: Option<Cow<'a, str>>,
}

/// A legacy attachment's text fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Attachment<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub pretext: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub title: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub text: Option<Cow<'a, str>>,
    /// Plain-text summary, used when the attachment has no other text.
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub fallback: Option<Cow<'a, str>>,
}

/// A layout block: its type and, for the text-bearing ones, the text objects.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Block<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "borrowed_opt")]
    pub kind: Option<Cow<'a, str>>,
    /// A text object (`section`, `header`); other blocks may use `text` differently, so
    /// anything else is ignored rather than refused.
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub text: Option<Cow<'a, str>>,
}

/// `{"type": …, "text": "…"}` → its text; any other shape → `None` (a layout we do not
/// read must never fail a page).
fn lenient_text<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape<'a> {
        Object {
            #[serde(default, borrow, deserialize_with = "borrowed_opt")]
            text: Option<Cow<'a, str>>,
        },
        Other(serde::de::IgnoredAny),
    }
    Ok(match Shape::deserialize(deserializer)? {
        Shape::Object { text } => text,
        Shape::Other(_) => None,
    })
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
