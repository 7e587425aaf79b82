//! Who reacted (`sync_reaction_users`, off by default, scope `reactions:read`): each
//! reaction of a message document also carries `users` (the Slack user ids, in the order
//! they reacted) and `user_names` (each resolved as a message's author is).
//!
//! Why a second call: `conversations.history` and `conversations.replies` give each
//! reaction its `name`, `count` and `users`, but Slack cuts `users` short on popular
//! reactions ("we limit it to X users, and X might change"; `count` stays the whole
//! number). A message with such a reaction gets one `reactions.get` (`channel`,
//! `timestamp`, `full=true`: "If true always return the complete reaction list"; Tier 3)
//! for the complete lists; every other message keeps the lists as given, at no cost.
//!
//! Invariants: off by default (a sync asks Slack for nothing more than before, and message
//! documents are the same bytes); an `ok:true` answer without its item (`type`, `message`)
//! or with a reaction lacking `name`, `count` or `users`, or of the wrong type, is a
//! protocol error naming the method (retried like a 5xx, then it fails the sync: nothing
//! is deleted), never an empty list; a message Slack answers about with an error
//! (`message_not_found` when it was deleted meanwhile, `channel_not_found`,
//! `bad_timestamp`, …) keeps the lists history gave and is counted in the job's
//! `metadata.reactions` (the sync goes on); a refused token fails the sync like any call.
//! Live updates write the lists their events carry (no `reactions.get`); the next sync
//! completes them.

use super::answer::protocol;
use super::client::{classify, Class, Head, SlackError, Verb};
use super::filters::{check_types, toggle};
use super::source::{check_cancel, source_error, Inner};
use super::transform::{reaction_entry, Names, Reaction};
use crate::sources::{Configuration, ConfigurationExt, Document, SourceError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Form key and label.
pub const REACTIONS_KEY: &str = "sync_reaction_users";
pub const REACTIONS_LABEL: &str = "Index who reacted";
/// Scopes it needs.
pub const REACTIONS_SCOPES: &[&str] = &["reactions:read"];
/// The method completing a list Slack cut short.
pub const METHOD: &str = "reactions.get";

/// Reads the toggle (an uncoercible value is an error naming the field).
pub fn from_configuration(configuration: &Configuration) -> Result<bool, SourceError> {
    check_types(configuration, &[REACTIONS_KEY])?;
    Ok(configuration.bool_value(REACTIONS_KEY).unwrap_or(false))
}

/// Adds the toggle to the form (order 37).
pub fn add_fields(config: &mut Configuration) {
    config.insert(REACTIONS_KEY.into(), toggle(REACTIONS_LABEL, 37, "Each reaction of a message also lists who made it: their user ids (users) and names (user_names). Slack lists only the first users of a popular reaction; a message with one costs one more Slack call (reactions.get, Tier 3) for the whole list. Needs the reactions:read scope."));
}

/// Whether Slack cut some reaction's list of users short (pure): fewer users listed than
/// its `count` (a missing list is an empty one). Only such messages cost a
/// `reactions.get`.
pub fn cut_short(reactions: &[Reaction<'_>]) -> bool {
    reactions
        .iter()
        .any(|r| (r.users.as_ref().map_or(0, Vec::len) as u64) < r.count.unwrap_or(0))
}

/// One reaction of a `reactions.get` answer: every field required (with `full` Slack lists
/// every user).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FullReaction {
    pub name: String,
    pub count: u64,
    pub users: Vec<String>,
}

#[derive(Deserialize)]
struct Item {
    message: ItemMessage,
}

#[derive(Deserialize)]
struct ItemMessage {
    /// Absent when the message has no reaction left (all removed since history read it);
    /// `null` or anything but a list of reactions is refused.
    #[serde(default)]
    reactions: Vec<FullReaction>,
}

/// Decodes a `reactions.get` answer (pure; [`super::answer::shape`] requires `type` and
/// `message`): the item must be a message, then its reactions, strictly.
pub fn decode_reactions_get(
    bytes: &[u8],
    head: &Head<'_>,
) -> Result<Vec<FullReaction>, SlackError> {
    let envelope = head.decode::<serde::de::IgnoredAny>(bytes)?;
    match envelope.text("type") {
        Some("message") => {}
        other => {
            return Err(protocol(
                head.method,
                "type",
                format!(
                    "is `{}`, not `message` (the item asked for is a message)",
                    other.unwrap_or_default()
                ),
            ))
        }
    }
    serde_json::from_slice::<Item>(bytes)
        .map(|item| item.message.reactions)
        .map_err(|e| {
            protocol(
                head.method,
                "message",
                format!("is not what Slack sends: {e}"),
            )
        })
}

/// The message document `doc` with its `reactions` replaced by `full`, with every user
/// (pure). Only the rare message whose lists Slack cut short comes here, so its body is
/// parsed and written again. A message whose reactions were all removed meanwhile loses
/// the field, as a message without reactions never has it.
pub fn with_full_reactions(doc: &Document, full: &[FullReaction], names: &Names) -> Document {
    let mut fields = doc.fields();
    if full.is_empty() {
        fields.remove("reactions");
    } else {
        let list = full
            .iter()
            .map(|r| reaction_entry(&r.name, r.count, Some(r.users.as_slice()), names))
            .collect();
        fields.insert("reactions".into(), Value::Array(list));
    }
    Document::from_fields(doc.id().to_string(), fields)
}

/// Whether a failed `reactions.get` leaves the message with the lists history gave (pure):
/// Slack answered about this message (`message_not_found`, `channel_not_found`,
/// `bad_timestamp`, …). A refused token, or Slack failing past the retries, fails the sync
/// as any other call does.
pub fn keeps_listed_users(error: &SlackError) -> bool {
    matches!(error, SlackError::Api { .. }) && matches!(classify(error), Class::Skip | Class::Fail)
}

/// The counts for the job's `metadata.reactions`.
#[derive(Debug, Default)]
pub struct ReactionCounters {
    /// Messages whose lists `reactions.get` completed.
    completed: AtomicU64,
    /// Messages that kept the lists history gave, by Slack's error code.
    kept: Mutex<BTreeMap<String, u64>>,
}

impl ReactionCounters {
    fn kept(&self, code: &str) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        *kept.entry(code.to_string()).or_default() += 1;
    }

    /// `metadata.reactions`: `{lists_completed, kept_cut_short, errors: {code: n}}`.
    pub fn to_value(&self) -> Value {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone();
        json!({
            "lists_completed": self.completed.load(Ordering::Relaxed),
            "kept_cut_short": kept.values().sum::<u64>(),
            "errors": kept,
        })
    }
}

impl Inner {
    /// Completes the reaction lists Slack cut short in a page's documents: `incomplete`
    /// holds each such message's index in `docs` and its `ts`; one `reactions.get` each
    /// (see the module docs for what a failure does).
    pub(super) async fn complete_reactions(
        &self,
        channel_id: &str,
        docs: &mut [Document],
        incomplete: &[(usize, String)],
        names: &Names,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        for (i, ts) in incomplete {
            check_cancel(cancel)?;
            let params = [
                ("channel", channel_id),
                ("timestamp", ts.as_str()),
                ("full", "true"),
            ];
            let answer = self
                .client
                .call_with(METHOD, Verb::Get, &params, cancel, decode_reactions_get)
                .await;
            match answer {
                Ok(full) => {
                    if let Some(doc) = docs.get_mut(*i) {
                        *doc = with_full_reactions(doc, &full, names);
                    }
                    self.reactions.completed.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) if keeps_listed_users(&error) => {
                    let code = error.code().unwrap_or("unknown_error");
                    tracing::warn!(
                        channel_id,
                        ts = ts.as_str(),
                        code,
                        "slack reactions.get failed: the message keeps the reaction users history listed"
                    );
                    self.reactions.kept(code);
                }
                Err(error) => {
                    return Err(source_error(
                        error,
                        &format!("reading who reacted to message {ts} of channel {channel_id} (reactions.get)"),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::slack::transform::{message_doc, Message, MessageContext, User};
    use std::collections::HashMap;

    fn head() -> Head<'static> {
        Head {
            method: METHOD,
            scopes: None,
            retry_after: None,
        }
    }

    fn names() -> Names {
        let mut names = Names::default();
        for (id, name) in [("U1", "alice"), ("U2", "bob")] {
            names.add(&User {
                id: id.into(),
                name: Some(name.into()),
                ..User::default()
            });
        }
        names
    }

    #[test]
    fn only_lists_shorter_than_their_count_need_the_full_list() {
        let cases = [
            (
                json!([{"name": "tada", "count": 2, "users": ["U1", "U2"]}]),
                false,
            ),
            (
                json!([{"name": "tada", "count": 3, "users": ["U1", "U2"]}]),
                true,
            ),
            (
                json!([{"name": "a", "count": 1, "users": ["U1"]}, {"name": "b", "count": 9, "users": ["U1"]}]),
                true,
            ),
            // No list is an empty one; no count promises nothing.
            (json!([{"name": "tada", "count": 1}]), true),
            (json!([{"name": "tada", "users": []}]), false),
            (json!([]), false),
        ];
        for (reactions, want) in cases {
            let raw = json!({"ts": "1.000001", "reactions": reactions}).to_string();
            let message: Message = serde_json::from_str(&raw).unwrap();
            let listed = message.reactions.as_deref().unwrap();
            assert_eq!(cut_short(listed), want, "{reactions}");
        }
    }

    #[test]
    fn message_documents_list_who_reacted_when_asked() {
        let names = names();
        let channels = HashMap::new();
        let raw = json!({"type": "message", "user": "U1", "text": "hi", "ts": "1.000001",
            "reactions": [{"name": "tada", "count": 3, "users": ["U1", "U9"]}]})
        .to_string();
        let message: Message = serde_json::from_str(&raw).unwrap();
        let ctx = |reaction_users| MessageContext {
            channel_id: "C1",
            channel_name: "general",
            names: &names,
            channels: &channels,
            base: None,
            reaction_users,
        };
        // Off: name and count only, as before.
        let off = message_doc(&message, &ctx(false)).fields();
        assert_eq!(off["reactions"], json!([{"name": "tada", "count": 3}]));
        // On: the listed users, names resolved as the author's (an unknown id stays).
        let on = message_doc(&message, &ctx(true));
        assert_eq!(
            on.fields()["reactions"],
            json!([{"name": "tada", "count": 3, "users": ["U1", "U9"], "user_names": ["alice", "U9"]}])
        );
        // The full list replaces it; the rest of the document stays.
        let full = vec![FullReaction {
            name: "tada".into(),
            count: 3,
            users: vec!["U1".into(), "U9".into(), "U2".into()],
        }];
        let completed = with_full_reactions(&on, &full, &names);
        assert_eq!(completed.id(), on.id());
        assert_eq!(completed.timestamp(), on.timestamp());
        let mut fields = completed.fields();
        assert_eq!(
            fields.remove("reactions").unwrap(),
            json!([{"name": "tada", "count": 3, "users": ["U1", "U9", "U2"],
                    "user_names": ["alice", "U9", "bob"]}])
        );
        let mut before = on.fields();
        before.remove("reactions");
        assert_eq!(fields, before);
        // Every reaction removed meanwhile: no `reactions` at all.
        assert!(!with_full_reactions(&on, &[], &names)
            .fields()
            .contains_key("reactions"));
    }

    #[test]
    fn answers_decode_strictly_and_name_the_method() {
        let good = br#"{"ok":true,"type":"message","channel":"C1","message":{"type":"message","ts":"1.000001","reactions":[{"name":"tada","count":3,"users":["U1","U2","U3"]}]}}"#;
        let full = decode_reactions_get(good, &head()).unwrap();
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].users, ["U1", "U2", "U3"]);
        let none = br#"{"ok":true,"type":"message","channel":"C1","message":{"ts":"1.000001"}}"#;
        assert!(decode_reactions_get(none, &head()).unwrap().is_empty());
        for (body, field) in [
            (r#"{"ok":true,"type":"message","channel":"C1"}"#, "message"),
            (r#"{"ok":true,"type":"message","message":null}"#, "message"),
            (r#"{"ok":true,"message":{"reactions":[]}}"#, "type"),
            (
                r#"{"ok":true,"type":"file","message":{"reactions":[]}}"#,
                "type",
            ),
            (
                r#"{"ok":true,"type":"message","message":{"reactions":null}}"#,
                "message",
            ),
            (
                r#"{"ok":true,"type":"message","message":{"reactions":{}}}"#,
                "message",
            ),
            (
                r#"{"ok":true,"type":"message","message":{"reactions":[{"name":"tada","count":2}]}}"#,
                "message",
            ),
            (
                r#"{"ok":true,"type":"message","message":{"reactions":[{"name":"tada","users":["U1"]}]}}"#,
                "message",
            ),
            (
                r#"{"ok":true,"type":"message","message":{"reactions":[{"count":1,"users":["U1"]}]}}"#,
                "message",
            ),
            (
                r#"{"ok":true,"type":"message","message":{"reactions":[{"name":"t","count":1,"users":[7]}]}}"#,
                "message",
            ),
            (
                r#"{"ok":true,"type":"message","message":{"reactions":[{"name":"t","count":-1,"users":[]}]}}"#,
                "message",
            ),
        ] {
            match decode_reactions_get(body.as_bytes(), &head()) {
                Err(error @ SlackError::Protocol { .. }) => {
                    assert!(error.to_string().contains(METHOD), "{error}");
                    assert!(
                        matches!(&error, SlackError::Protocol { field: f, .. } if f == field),
                        "{body}: {error}"
                    );
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        // `ok:false` is Slack's error, for the caller to judge.
        let gone = decode_reactions_get(br#"{"ok":false,"error":"message_not_found"}"#, &head())
            .unwrap_err();
        assert_eq!(gone.code(), Some("message_not_found"));
        assert!(keeps_listed_users(&gone));
    }

    #[test]
    fn only_answers_about_the_message_keep_the_listed_users() {
        let api = |code: &str| SlackError::Api {
            method: METHOD.into(),
            code: code.into(),
            needed: None,
            provided: None,
            retry_after: None,
        };
        for code in [
            "message_not_found",
            "channel_not_found",
            "bad_timestamp",
            "not_in_channel",
            "no_item_specified",
        ] {
            assert!(keeps_listed_users(&api(code)), "{code}");
        }
        for code in [
            "missing_scope",
            "invalid_auth",
            "token_revoked",
            "ratelimited",
            "internal_error",
        ] {
            assert!(!keeps_listed_users(&api(code)), "{code}");
        }
        let broken = protocol(METHOD, "message", "is missing");
        assert!(!keeps_listed_users(&broken));
        assert!(!keeps_listed_users(&SlackError::Cancelled));
        let counters = ReactionCounters::default();
        counters.completed.fetch_add(2, Ordering::Relaxed);
        counters.kept("message_not_found");
        counters.kept("message_not_found");
        counters.kept("bad_timestamp");
        assert_eq!(
            counters.to_value(),
            json!({"lists_completed": 2, "kept_cut_short": 3,
                   "errors": {"bad_timestamp": 1, "message_not_found": 2}})
        );
    }

    #[test]
    fn the_toggle_is_off_by_default_and_checked() {
        let mut config = Configuration::new();
        add_fields(&mut config);
        assert!(!from_configuration(&config).unwrap());
        assert_eq!(config[REACTIONS_KEY].order, 37);
        config.get_mut(REACTIONS_KEY).unwrap().value = json!("sometimes");
        let e = from_configuration(&config).unwrap_err().to_string();
        assert!(e.contains(REACTIONS_LABEL), "{e}");
        config.get_mut(REACTIONS_KEY).unwrap().value = json!(true);
        assert!(from_configuration(&config).unwrap());
    }
}
