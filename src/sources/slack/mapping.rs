//! The explicit mappings of every field the Slack documents carry (users, channels,
//! messages, and issue 19's team, user-group, channel-member, file and remote file documents; see
//! [`super::transform`] and [`super::workspace`]), for a content index the service creates
//! ([`crate::sync::content_index`]). Live updates ([`super::events`]) write the same
//! documents and patch fields of them, so these mappings cover them too.
//!
//! Choices (each field's purpose is in the README's document reference; the cost figures
//! are in BENCHMARKS.md, "Elasticsearch cost of a sync"). A sync's cluster cost is analysis
//! at bulk time, and messages are nearly every document, so each message field gets the
//! least that serves what people do with it:
//! - the framework's text field with every relevance subfield ([`text_field`]) where people
//!   look things up by name or topic: user, channel, team and user-group names, channel
//!   topic and purpose, user-group descriptions (few documents: their cost is nothing);
//! - message `text` and `body`: words with stemming ([`stemmed_text_field`]), without the
//!   framework's `prefix`, `delimiter`, `joined` and `enum` subfields (search-as-you-type
//!   on chat text, word-part splits, bigrams and a keyword of the whole message: most of
//!   the cluster's work for little a search over messages needs);
//! - the message's `channel` and `author`: `keyword` (exact filters and facets, names as
//!   shown); their words are searchable in `title` (`#channel — author`, base analysis);
//! - `keyword` for ids, Slack timestamps (`ts` strings are ids in Slack, compared exactly),
//!   enums and names used as exact values (topic authors, member names);
//! - `url`: stored only ([`stored_keyword_field`]): a link is read from the result, never
//!   searched or aggregated;
//! - `date` for Slack's epoch times (seconds; `last_updated` is Slack's `updated`, in
//!   milliseconds), also accepting ISO dates in queries; `long` for counts; `boolean` for
//!   flags; `reactions` an object of a `keyword` name, a `long` count and, with who
//!   reacted (`sync_reaction_users`), `keyword` user ids and names (exact values: "what did
//!   alice react to" is a filter).
//!
//! Invariant: every key a Slack document body can have is here ([`tests`] builds one
//! document of each kind, and the fields live updates patch, and checks), so nothing the
//! source writes is mapped dynamically.

use crate::sync::content_index::{
    keyword_field, stemmed_text_field, stored_keyword_field, text_field,
};
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
    let long = || json!({"type": "long"});
    let fields = [
        // Every kind.
        ("type", keyword()),
        ("url", stored_keyword_field()),
        // Users (`name` also channels, the team and user groups).
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
        // Messages (`channel` and `channel_id` also channel members).
        ("channel", keyword()),
        ("channel_id", keyword()),
        ("author", keyword()),
        ("author_id", keyword()),
        ("text", stemmed_text_field()),
        ("body", stemmed_text_field()),
        ("title", json!({"type": "text", "analyzer": "iq_text_base"})),
        ("ts", keyword()),
        ("edited_ts", keyword()),
        ("subtype", keyword()),
        ("reply_count", long()),
        ("latest_reply", keyword()),
        ("thread_ts", keyword()),
        (
            "reactions",
            json!({"properties": {
                "name": keyword(),
                "count": long(),
                "users": keyword(),
                "user_names": keyword(),
            }}),
        ),
        ("files", keyword()),
        ("pinned_to", keyword()),
        // The team.
        ("domain", keyword()),
        ("email_domain", keyword()),
        // User groups.
        ("handle", keyword()),
        ("description", text()),
        ("users", keyword()),
        ("user_names", keyword()),
        ("user_count", long()),
        // Channel members.
        ("user_id", keyword()),
        ("user", keyword()),
        // Files (`name`, `title`, `author`, `author_id`, `created`, `url`, `thread_ts` and
        // `body` as above; `_attachment` goes only to a pipeline that removes it).
        ("mimetype", keyword()),
        ("filetype", keyword()),
        ("size", long()),
        ("channel_ids", keyword()),
        ("channels", keyword()),
        ("message_id", keyword()),
        ("content_skipped", keyword()),
        // Remote files (`title`, `name`, `filetype`, `author`, `author_id`, `channel_ids`,
        // `channels`, `created` as above; `url` is the remote document itself).
        ("external_id", keyword()),
        ("permalink", stored_keyword_field()),
    ];
    fields
        .into_iter()
        .map(|(name, mapping)| (name.to_string(), mapping))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::files::{file_doc, Content, SharedFile};
    use super::super::remote_files::{remote_file_doc, RemoteFile};
    use super::super::transform::{
        channel_doc, message_doc, user_doc, Channel, Message, MessageContext, Names, User,
    };
    use super::super::workspace::{member_doc, team_doc, usergroup_doc, Team, UserGroup};
    use super::*;
    use crate::sources::document::{ACCESS_CONTROL_FIELD, TIMESTAMP_FIELD};
    use std::collections::BTreeSet;
    use std::collections::HashMap;

    #[test]
    fn every_field_of_every_document_kind_is_mapped() {
        let properties = properties();
        let names = Names::default();
        let channels = HashMap::new();
        let raw = json!({
            "type": "message", "user": "U1", "text": "hi <@U1> &amp;", "ts": "1.000001",
            "thread_ts": "1.000001", "reply_count": 1, "latest_reply": "2.000001",
            "edited": {"ts": "3.0"}, "subtype": "thread_broadcast",
            "reactions": [{"name": "tada", "count": 2, "users": ["U1"]}],
            "files": [{"id": "F1"}], "pinned_to": ["C1"],
            "attachments": [{"pretext": "p", "title": "t", "text": "x"}]
        })
        .to_string();
        let message: Message = serde_json::from_str(&raw).unwrap();
        let ctx = MessageContext {
            channel_id: "C1",
            channel_name: "general",
            names: &names,
            channels: &channels,
            base: Some("https://acme.slack.com"),
            reaction_users: true,
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
        let team: Team = serde_json::from_value(json!({
            "id": "T1", "name": "Acme", "domain": "acme", "email_domain": "acme.com",
            "url": "https://acme.slack.com/"
        }))
        .unwrap();
        let group: UserGroup = serde_json::from_value(json!({
            "id": "S1", "name": "Eng", "handle": "eng", "description": "d",
            "users": ["U1"], "date_create": 1700000000
        }))
        .unwrap();
        let file = SharedFile {
            id: "F1".into(),
            name: Some("rows.csv".into()),
            title: Some("Rows".into()),
            mimetype: Some("text/csv".into()),
            filetype: Some("csv".into()),
            size: Some(10),
            user: Some("U1".into()),
            created: Some(1700000000),
            permalink: Some("https://acme.slack.com/files/U1/F1/rows.csv".into()),
            channel_id: "C1".into(),
            message_id: "C1-1.000001".into(),
            thread_ts: Some("1.000001".into()),
            ..SharedFile::default()
        };
        let in_general = BTreeSet::from(["C1".to_string()]);
        let channel_names = HashMap::from([("C1".to_string(), "general".to_string())]);
        let file_docs = [
            Content::Text("id,value".into()),
            Content::Skipped("too_large"),
        ]
        .map(|content| file_doc(&file, &in_general, &names, &channel_names, content).fields());
        let [file_with_text, file_skipped] = file_docs;
        let remote: RemoteFile = serde_json::from_value(json!({
            "id": "F2", "external_url": "https://docs.example.com/d/1", "external_id": "d1",
            "title": "Roadmap", "name": "roadmap", "filetype": "gdoc", "user": "U1",
            "created": 1700000000, "permalink": "https://acme.slack.com/files/U1/F2/roadmap",
            "channels": ["C1"]
        }))
        .unwrap();
        let remote_channels = BTreeSet::from(["C1"]);
        let docs = [
            remote_file_doc(&remote, &remote_channels, &names, &channel_names).fields(),
            file_with_text,
            file_skipped,
            message_doc(&message, &ctx).fields(),
            channel_doc(&channel, &names, Some("https://acme.slack.com")).fields(),
            user_doc(&user).fields(),
            team_doc(&team).fields(),
            usergroup_doc(&group, &names).fields(),
            member_doc(&channel, "U1", &names).fields(),
        ];
        // The sparse message fields are there, so the check covers them.
        for field in ["reactions", "files", "pinned_to", "body"] {
            assert!(docs[3].contains_key(field), "{field}");
        }
        // Who reacted (the context asks for it): every key of a reaction is mapped too.
        let reaction = docs[3]["reactions"][0].as_object().unwrap();
        assert!(reaction.contains_key("user_names"), "{reaction:?}");
        for key in reaction.keys() {
            let nested = &properties["reactions"]["properties"];
            assert!(nested.get(key).is_some(), "`reactions.{key}` is not mapped");
        }
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
        for field in ["name", "topic", "purpose", "description", "real_name"] {
            assert_eq!(properties[field], text_field(), "{field}");
        }
        for field in ["text", "body"] {
            assert_eq!(properties[field], stemmed_text_field(), "{field}");
        }
        for field in [
            "channel_id",
            "author_id",
            "ts",
            "thread_ts",
            "type",
            "channel",
            "author",
            "files",
            "pinned_to",
            "users",
            "user_id",
        ] {
            assert_eq!(properties[field], keyword_field(), "{field}");
        }
        assert_eq!(properties["url"], stored_keyword_field());
        assert_eq!(
            properties["reactions"]["properties"]["count"]["type"],
            "long"
        );
        for field in ["name", "users", "user_names"] {
            assert_eq!(
                properties["reactions"]["properties"][field],
                keyword_field(),
                "reactions.{field}"
            );
        }
        assert_eq!(properties["reply_count"]["type"], "long");
        assert_eq!(properties["created"]["type"], "date");
    }

    /// The README's document reference (the table after "The content index and its
    /// mappings") lists every field of a created index with its kind of mapping.
    #[test]
    fn the_readme_document_reference_matches_the_mappings() {
        use crate::sync::content_index::mappings;
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("#### The content index and its mappings")
            .expect("README section");
        let section = &readme[start..];
        let table = section
            .lines()
            .skip_while(|l| !l.starts_with("| field | on | mapping |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'));
        let all = mappings(&properties());
        let all = all["properties"].as_object().unwrap();
        let mut documented = Vec::new();
        for row in table {
            let cells: Vec<&str> = row.split(" | ").collect();
            let (fields, kind) = (cells[0].trim_start_matches("| "), cells[2]);
            // "date, keyword" for two fields: one kind each, in order; else one for all.
            let kinds: Vec<&str> = kind.split(", ").collect();
            let names: Vec<&str> = fields.split('`').skip(1).step_by(2).collect();
            for (i, name) in names.iter().enumerate() {
                let kind = if kinds.len() == names.len() {
                    kinds[i]
                } else {
                    kind
                };
                let mapping = all
                    .get(*name)
                    .unwrap_or_else(|| panic!("README documents `{name}`, not mapped"));
                let matches = match kind {
                    k if k.starts_with("framework text") => *mapping == text_field(),
                    k if k.starts_with("stemmed text") => *mapping == stemmed_text_field(),
                    k if k.starts_with("base text") => {
                        *mapping == json!({"type": "text", "analyzer": "iq_text_base"})
                    }
                    k if k.starts_with("stored keyword") => *mapping == stored_keyword_field(),
                    k if k.starts_with("object") => mapping.get("properties").is_some(),
                    k => {
                        let word = k.split([' ', ',']).next().unwrap_or_default();
                        mapping["type"] == word && mapping.get("index").is_none()
                    }
                };
                assert!(matches, "README says `{name}` is {kind}; mapped {mapping}");
                documented.push(name.to_string());
            }
        }
        for field in all.keys() {
            assert!(
                documented.contains(field),
                "`{field}` is mapped, not in the README's document reference"
            );
        }
    }
}
