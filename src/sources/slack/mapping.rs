//! The explicit mappings of every field the Slack documents carry (users, channels,
//! messages; see [`super::transform`]), for a content index the service creates
//! ([`crate::sync::content_index`]).
//!
//! Choices (each field's purpose is in the README's document reference):
//! - the framework's text field with its relevance subfields ([`text_field`]) where people
//!   search words: message `text` and `body`, names, channel topic and purpose, the
//!   message's `channel` and `author` (their `enum` subfield is the exact-value facet);
//! - `keyword` for ids, Slack timestamps (`ts` strings are ids in Slack, compared exactly),
//!   enums and links;
//! - `date` for Slack's epoch times (seconds; `last_updated` is Slack's `updated`, in
//!   milliseconds), also accepting ISO dates in queries; `long` for counts; `boolean` for
//!   flags;
//! - `title` (`#channel — author`, what a result list shows) is analysed with the base
//!   analyzer only: its words are the `channel` and `author` fields', already searchable
//!   with every subfield.
//!
//! Invariant: every key a Slack document body can have is here ([`tests`] builds one
//! document of each kind and checks), so nothing the source writes is mapped dynamically.

use crate::sync::content_index::{keyword_field, text_field};
use serde_json::{json, Map, Value};

/// Field → mapping for every field of the Slack source's documents.
pub fn properties() -> Map<String, Value> {
    let text = text_field;
    let keyword = keyword_field;
    let epoch_seconds =
        || json!({"type": "date", "format": "epoch_second||strict_date_optional_time"});
    let epoch_millis =
        || json!({"type": "date", "format": "epoch_millis||strict_date_optional_time"});
    let boolean = || json!({"type": "boolean"});
    let fields: [(&str, Value); 37] = [
        // Every kind.
        ("type", keyword()),
        ("url", keyword()),
        // Users.
        ("name", text()),
        ("real_name", text()),
        ("real_name_normalized", text()),
        ("profile_real_name", text()),
        ("display_name", text()),
        ("display_name_normalized", text()),
        ("first_name", text()),
        ("last_name", text()),
        ("deleted", boolean()),
        ("is_admin", boolean()),
        ("is_owner", boolean()),
        ("is_bot", boolean()),
        // Channels.
        ("name_normalized", keyword()),
        ("created", epoch_seconds()),
        ("last_updated", epoch_millis()),
        ("topic", text()),
        ("topic_author", keyword()),
        ("topic_last_updated", epoch_seconds()),
        ("purpose", text()),
        ("purpose_author", keyword()),
        ("purpose_last_updated", epoch_seconds()),
        ("is_archived", boolean()),
        // Messages.
        ("channel", text()),
        ("channel_id", keyword()),
        ("author", text()),
        ("author_id", keyword()),
        ("text", text()),
        ("body", text()),
        ("title", json!({"type": "text", "analyzer": "iq_text_base"})),
        ("ts", keyword()),
        ("edited_ts", keyword()),
        ("subtype", keyword()),
        ("reply_count", json!({"type": "long"})),
        ("latest_reply", keyword()),
        ("thread_ts", keyword()),
    ];
    fields
        .into_iter()
        .map(|(name, mapping)| (name.to_string(), mapping))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::transform::{
        channel_doc, message_doc, user_doc, Channel, Message, MessageContext, Names, User,
    };
    use super::*;
    use crate::sources::document::{ACCESS_CONTROL_FIELD, TIMESTAMP_FIELD};
    use std::collections::HashMap;

    #[test]
    fn every_field_of_every_document_kind_is_mapped() {
        let properties = properties();
        let names = Names::default();
        let channels = HashMap::new();
        let raw = json!({
            "type": "message", "user": "U1", "text": "hi <@U1> &amp;", "ts": "1.000001",
            "thread_ts": "1.000001", "reply_count": 1, "latest_reply": "2.000001",
            "edited": {"ts": "3.0"}, "subtype": "thread_broadcast"
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
        let channel: Channel = serde_json::from_value(json!({
            "id": "C1", "name": "general", "created": 1, "updated": 2,
            "topic": {"value": "t", "creator": "U1", "last_set": 5},
            "purpose": {"value": "p", "creator": "U1", "last_set": 5}
        }))
        .unwrap();
        let user = User {
            id: "U1".into(),
            ..User::default()
        };
        let docs = [
            message_doc(&message, &ctx).fields(),
            channel_doc(&channel, &names, Some("https://acme.slack.com")).fields(),
            user_doc(&user).fields(),
        ];
        for doc in docs {
            for key in doc.keys() {
                if key == TIMESTAMP_FIELD || key == ACCESS_CONTROL_FIELD {
                    continue; // mapped by the engine
                }
                assert!(properties.contains_key(key), "`{key}` is not mapped");
            }
        }
    }

    #[test]
    fn searched_fields_are_text_and_ids_are_keywords() {
        let properties = properties();
        for field in [
            "text", "body", "name", "topic", "purpose", "author", "channel",
        ] {
            assert_eq!(properties[field], text_field(), "{field}");
        }
        for field in ["channel_id", "author_id", "ts", "thread_ts", "type", "url"] {
            assert_eq!(properties[field]["type"], "keyword", "{field}");
        }
        assert_eq!(properties["reply_count"]["type"], "long");
        assert_eq!(properties["created"]["type"], "date");
    }
}
