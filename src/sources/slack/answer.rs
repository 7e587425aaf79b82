//! Strict decoding of Slack Web API answers: what each method's `ok:true` answer must carry
//! ([`shape`]), the envelope decoder that checks it ([`decode`]), and the cursor loop guard
//! ([`Pager`]).
//!
//! Why strict: an answer that says `ok:true` but lacks the method's list (`messages`,
//! `channels`, `members`), has `null` or a wrong type there, or says `has_more` without a
//! cursor, once decoded as an empty last page; the full sync then "completed" and its
//! deletion sweep removed everything it had not seen. Now every such answer is a
//! [`SlackError::Protocol`] naming the method and the field: the client retries it like a
//! 5xx within its budget, then the fetch fails and the sync deletes nothing.
//!
//! Invariants: decoding is a pure function of the bytes (no side effects: the client may
//! decode a retried answer again); an answer is either a complete page or an error, never a
//! silently shortened one; errors carry the method, field and a short reason, never the
//! request (so never the token). The envelope is read in one pass with a hand-written map
//! visitor: page items borrow from the receive buffer as before, and unknown keys are
//! skipped without allocating.

use super::client::SlackError;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

/// What a successful (`ok:true`) answer of one method must carry besides `ok`, from Slack's
/// method documentation. One row per method the source calls ([`shape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The key of the page's items (`members`, `channels`, `messages`): a list, required.
    pub items: Option<&'static str>,
    /// Whether `has_more` (a boolean) is required: `conversations.history` and `.replies`.
    pub has_more: bool,
    /// Strings that must be present and non-null (`auth.test`: `url`, `team_id`, `user_id`).
    pub strings: &'static [&'static str],
    /// Objects that must be present and non-null (`conversations.join`: `channel`).
    pub objects: &'static [&'static str],
}

impl Shape {
    /// No requirement beyond `ok` (methods the source does not call).
    pub const ANY: Shape = Shape {
        items: None,
        has_more: false,
        strings: &[],
        objects: &[],
    };
}

/// The fields each method's `ok:true` answer must carry (pure; the conformance table of
/// the client side). In every paged answer `response_metadata.next_cursor` must be a
/// non-empty string when `has_more` is true; that is checked for every method.
pub fn shape(method: &str) -> Shape {
    match method {
        // `url` makes every permalink; the ids are always sent.
        "auth.test" => Shape {
            strings: &["url", "team_id", "user_id"],
            ..Shape::ANY
        },
        "users.list" => Shape {
            items: Some("members"),
            ..Shape::ANY
        },
        "conversations.list" => Shape {
            items: Some("channels"),
            ..Shape::ANY
        },
        "conversations.history" | "conversations.replies" => Shape {
            items: Some("messages"),
            has_more: true,
            ..Shape::ANY
        },
        "conversations.join" => Shape {
            objects: &["channel"],
            ..Shape::ANY
        },
        // Member ids, paged: an answer without them would drop every member's access.
        "conversations.members" => Shape {
            items: Some("members"),
            ..Shape::ANY
        },
        "users.info" => Shape {
            objects: &["user"],
            ..Shape::ANY
        },
        // Issue 19's workspace documents: the team, and every user group in one answer
        // (not paged).
        "team.info" => Shape {
            objects: &["team"],
            ..Shape::ANY
        },
        "usergroups.list" => Shape {
            items: Some("usergroups"),
            ..Shape::ANY
        },
        // Remote files (issue 19), paged: an answer without them would drop every one.
        "files.remote.list" => Shape {
            items: Some("files"),
            ..Shape::ANY
        },
        // Who reacted (issue 19): the item asked for, a message with its reactions.
        "reactions.get" => Shape {
            strings: &["type"],
            objects: &["message"],
            ..Shape::ANY
        },
        // Slack as a destination (`crate::notify`) and the OAuth install: the ids the next
        // step needs.
        "chat.postMessage" => Shape {
            strings: &["channel", "ts"],
            ..Shape::ANY
        },
        "files.getUploadURLExternal" => Shape {
            strings: &["upload_url", "file_id"],
            ..Shape::ANY
        },
        "files.completeUploadExternal" => Shape {
            items: Some("files"),
            ..Shape::ANY
        },
        // Socket Mode (issue 17): the single-use WebSocket URL.
        "apps.connections.open" => Shape {
            strings: &["url"],
            ..Shape::ANY
        },
        "oauth.v2.access" => Shape {
            strings: &[
                "access_token",
                "token_type",
                "scope",
                "bot_user_id",
                "app_id",
            ],
            objects: &["team"],
            ..Shape::ANY
        },
        _ => Shape::ANY,
    }
}

/// The envelope of a Web API answer, decoded for one method. On `ok:true` every field
/// the method's [`Shape`] requires was present and well typed.
#[derive(Debug)]
pub struct ApiResponse<T> {
    /// Slack's success flag.
    pub ok: bool,
    /// Error code when `ok` is false.
    pub error: Option<String>,
    /// `missing_scope`: the scope needed.
    pub needed: Option<String>,
    /// `missing_scope`: the token's scopes.
    pub provided: Option<String>,
    /// The page's items (the method's list: `members`, `channels` or `messages`).
    pub items: Vec<T>,
    /// `conversations.history`/`replies`: more pages exist.
    pub has_more: bool,
    /// Paging cursor holder.
    pub response_metadata: Option<ResponseMetadata>,
    /// `auth.test`: the workspace URL (`https://<domain>.slack.com/`).
    pub url: Option<String>,
    /// `auth.test`: the team id.
    pub team_id: Option<String>,
    /// `auth.test`: the token's user id.
    pub user_id: Option<String>,
    /// Every string the method's [`Shape`] requires, by field (`channel`, `upload_url`, …).
    pub texts: Vec<(&'static str, String)>,
}

/// `response_metadata`: an object (serde would also read a struct from a list, so
/// `[]` or `["c"]` would pass for one; Slack never sends that).
#[derive(Debug, Default)]
pub struct ResponseMetadata {
    /// Empty or absent when this was the last page.
    pub next_cursor: Option<String>,
}

impl<'de> Deserialize<'de> for ResponseMetadata {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = ResponseMetadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut metadata = ResponseMetadata::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "next_cursor" {
                        metadata.next_cursor = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(metadata)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

impl<T> ApiResponse<T> {
    /// A string the method's [`Shape`] requires (present on every `ok:true` answer).
    pub fn text(&self, field: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, value)| value.as_str())
    }

    /// The cursor of the next page, if any (pure: empty means done).
    pub fn next_cursor(&self) -> Option<&str> {
        self.response_metadata
            .as_ref()
            .and_then(|m| m.next_cursor.as_deref())
            .filter(|c| !c.is_empty())
    }
}

/// Decodes `bytes` as an answer of `method` (pure). `Ok` holds an `ok:false` answer as
/// is (the caller turns it into [`SlackError::Api`]) or an `ok:true` answer with
/// everything its [`shape`] requires; anything else is [`SlackError::Protocol`] (a field
/// missing, `null` or mistyped; `has_more` without a cursor) or [`SlackError::Malformed`]
/// (not JSON).
pub fn decode<'de, T: Deserialize<'de>>(
    method: &str,
    bytes: &'de [u8],
) -> Result<ApiResponse<T>, SlackError> {
    let shape = shape(method);
    let failed = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Envelope::<T> {
        shape: &shape,
        failed: &failed,
        items: PhantomData,
    }
    .deserialize(&mut de)
    .and_then(|raw| de.end().map(|()| raw));
    let raw = match parsed {
        Ok(raw) => raw,
        // A type error inside a known field names it; bad JSON is bad JSON.
        Err(error) => {
            return Err(match (failed.get(), error.classify()) {
                (Some(field), serde_json::error::Category::Data) => {
                    protocol(method, field, format!("is not what Slack sends: {error}"))
                }
                _ => SlackError::Malformed {
                    method: method.into(),
                    reason: error.to_string(),
                },
            })
        }
    };
    raw.check(method, &shape)
}

/// A [`SlackError::Protocol`].
pub fn protocol(method: &str, field: &str, problem: impl Into<String>) -> SlackError {
    SlackError::Protocol {
        method: method.into(),
        field: field.into(),
        problem: problem.into(),
    }
}

/// Cursor paging of one listing, with a loop guard: every cursor used is remembered, so a
/// next cursor that was already used (Slack or a stand-in looping, `A → B → A`) is a
/// protocol error rather than an endless listing. One per listing (a channel's history, a
/// thread, the user list); the set allocates only from the second page on.
#[derive(Debug, Default)]
pub struct Pager {
    cursor: Option<String>,
    seen: HashSet<String>,
}

impl Pager {
    /// A listing at its first page.
    pub fn new() -> Pager {
        Pager::default()
    }

    /// The cursor of the page to ask for (`None` = the first page).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Checks a page's next cursor (pure). Decoders call it, so a repeated cursor is
    /// retried like any other bad answer before the fetch fails.
    pub fn check(&self, method: &str, next: Option<&str>) -> Result<(), SlackError> {
        match next {
            Some(next) if self.seen.contains(next) => Err(protocol(
                method,
                "response_metadata.next_cursor",
                format!("repeats the cursor `{next}` already used in this listing: paging would loop forever"),
            )),
            _ => Ok(()),
        }
    }

    /// Moves on to `next` (checked with [`Pager::check`]); `false` when the listing is done.
    pub fn advance(&mut self, next: Option<&str>) -> bool {
        match next {
            Some(next) => {
                self.seen.insert(next.to_string());
                self.cursor = Some(next.to_string());
                true
            }
            None => false,
        }
    }
}

/// A required field as found: absent, `null`, or a value.
#[derive(Debug)]
enum Slot<V> {
    Missing,
    Null,
    Value(V),
}

impl<V> Slot<V> {
    fn from_option(value: Option<V>) -> Slot<V> {
        value.map_or(Slot::Null, Slot::Value)
    }
}

/// What the map visitor collected, before the shape check.
struct Raw<T> {
    ok: Slot<bool>,
    error: Option<String>,
    needed: Option<String>,
    provided: Option<String>,
    items: Slot<Vec<T>>,
    has_more: Slot<bool>,
    response_metadata: Option<ResponseMetadata>,
    /// Bit `i`: `shape.strings[i]` present and non-null.
    strings: u32,
    /// Bit `i`: `shape.objects[i]` present and non-null.
    objects: u32,
    /// Bit `i` of `strings` / `objects`: present as `null`.
    null_strings: u32,
    null_objects: u32,
    url: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    texts: Vec<(&'static str, String)>,
}

impl<T> Raw<T> {
    /// The shape check (pure): `ok:false` passes as is; `ok:true` must carry the shape.
    fn check(self, method: &str, shape: &Shape) -> Result<ApiResponse<T>, SlackError> {
        let ok = match self.ok {
            Slot::Value(ok) => ok,
            Slot::Missing => return Err(protocol(method, "ok", "is missing")),
            Slot::Null => return Err(protocol(method, "ok", "is null")),
        };
        let mut response = ApiResponse {
            ok,
            error: self.error,
            needed: self.needed,
            provided: self.provided,
            items: Vec::new(),
            has_more: false,
            response_metadata: self.response_metadata,
            url: self.url,
            team_id: self.team_id,
            user_id: self.user_id,
            texts: self.texts,
        };
        if !ok {
            return Ok(response);
        }
        let absent = |slot_null: bool| if slot_null { "is null" } else { "is missing" };
        if let Some(field) = shape.items {
            match self.items {
                Slot::Value(items) => response.items = items,
                Slot::Missing => return Err(protocol(method, field, absent(false))),
                Slot::Null => return Err(protocol(method, field, absent(true))),
            }
        }
        match self.has_more {
            Slot::Value(more) => response.has_more = more,
            Slot::Missing if shape.has_more => {
                return Err(protocol(method, "has_more", absent(false)))
            }
            Slot::Null if shape.has_more => return Err(protocol(method, "has_more", absent(true))),
            Slot::Missing | Slot::Null => {}
        }
        let required = [
            (shape.strings, self.strings, self.null_strings),
            (shape.objects, self.objects, self.null_objects),
        ];
        for (fields, present, null) in required {
            for (i, field) in fields.iter().enumerate() {
                if present & (1 << i) == 0 {
                    return Err(protocol(method, field, absent(null & (1 << i) != 0)));
                }
            }
        }
        if response.has_more && response.next_cursor().is_none() {
            return Err(protocol(
                method,
                "response_metadata.next_cursor",
                "is missing or empty while has_more is true",
            ));
        }
        Ok(response)
    }
}

/// Keys of an envelope, resolved without allocating.
enum Key {
    Ok,
    Error,
    Needed,
    Provided,
    Items,
    HasMore,
    Metadata,
    String(usize),
    Object(usize),
    Other,
}

struct KeySeed<'s>(&'s Shape);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        let shape = self.0;
        Ok(match key {
            "ok" => Key::Ok,
            "error" => Key::Error,
            "needed" => Key::Needed,
            "provided" => Key::Provided,
            "has_more" => Key::HasMore,
            "response_metadata" => Key::Metadata,
            _ if shape.items == Some(key) => Key::Items,
            _ => {
                if let Some(i) = shape.strings.iter().position(|s| *s == key) {
                    Key::String(i)
                } else if let Some(i) = shape.objects.iter().position(|s| *s == key) {
                    Key::Object(i)
                } else {
                    Key::Other
                }
            }
        })
    }
}

/// The envelope's map visitor for one [`Shape`]. `failed` records the field whose value
/// failed to decode, so the error can name it.
struct Envelope<'s, T> {
    shape: &'s Shape,
    failed: &'s Cell<Option<&'static str>>,
    items: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Envelope<'_, T> {
    type Value = Raw<T>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Raw<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Envelope<'_, T> {
    type Value = Raw<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Slack answer (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<T>, A::Error> {
        let mut raw = Raw {
            ok: Slot::Missing,
            error: None,
            needed: None,
            provided: None,
            items: Slot::Missing,
            has_more: Slot::Missing,
            response_metadata: None,
            strings: 0,
            objects: 0,
            null_strings: 0,
            null_objects: 0,
            url: None,
            team_id: None,
            user_id: None,
            texts: Vec::new(),
        };
        let failed = self.failed;
        while let Some(key) = map.next_key_seed(KeySeed(self.shape))? {
            match key {
                Key::Ok => raw.ok = Slot::from_option(value(&mut map, "ok", failed)?),
                Key::Error => raw.error = value(&mut map, "error", failed)?,
                Key::Needed => raw.needed = value(&mut map, "needed", failed)?,
                Key::Provided => raw.provided = value(&mut map, "provided", failed)?,
                Key::HasMore => {
                    raw.has_more = Slot::from_option(value(&mut map, "has_more", failed)?)
                }
                Key::Metadata => {
                    raw.response_metadata = value(&mut map, "response_metadata", failed)?
                }
                Key::Items => {
                    let field = self.shape.items.unwrap_or("items");
                    raw.items = Slot::from_option(value(&mut map, field, failed)?);
                }
                Key::String(i) => {
                    let field = self.shape.strings[i];
                    let text: Option<String> = value(&mut map, field, failed)?;
                    let Some(text) = text else {
                        raw.null_strings |= 1 << i;
                        continue;
                    };
                    raw.strings |= 1 << i;
                    match field {
                        "url" => raw.url = Some(text),
                        "team_id" => raw.team_id = Some(text),
                        "user_id" => raw.user_id = Some(text),
                        _ => raw.texts.push((field, text)),
                    }
                }
                Key::Object(i) => {
                    let field = self.shape.objects[i];
                    let object: Option<AnObject> = value(&mut map, field, failed)?;
                    match object {
                        Some(AnObject) => raw.objects |= 1 << i,
                        None => raw.null_objects |= 1 << i,
                    }
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// The next value of `map`, recording `field` as the culprit when it does not decode.
fn value<'de, A: MapAccess<'de>, V: Deserialize<'de>>(
    map: &mut A,
    field: &'static str,
    failed: &Cell<Option<&'static str>>,
) -> Result<V, A::Error> {
    map.next_value().inspect_err(|_| failed.set(Some(field)))
}

/// Any JSON object, skipped (fields whose presence is checked but whose content is unused).
struct AnObject;

impl<'de> Deserialize<'de> for AnObject {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<AnObject, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = AnObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnObject)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn problem(method: &str, body: &str) -> (String, String) {
        match decode::<Value>(method, body.as_bytes()) {
            Err(SlackError::Protocol { field, problem, .. }) => (field, problem),
            other => panic!("{method} {body}: expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn good_answers_decode() {
        let users =
            decode::<Value>("users.list", br#"{"ok":true,"members":[{"id":"U1"}],"cache_ts":1,"response_metadata":{"next_cursor":"dXNlcnM6MQ=="}}"#)
                .unwrap();
        assert_eq!(users.items.len(), 1);
        assert_eq!(users.next_cursor(), Some("dXNlcnM6MQ=="));
        let last = decode::<Value>(
            "conversations.list",
            br#"{"ok":true,"channels":[],"response_metadata":{"next_cursor":""}}"#,
        )
        .unwrap();
        assert_eq!(last.next_cursor(), None);
        // List methods may leave response_metadata out on the last page.
        assert!(decode::<Value>("conversations.list", br#"{"ok":true,"channels":[]}"#).is_ok());
        let history = decode::<Value>(
            "conversations.history",
            br#"{"ok":true,"messages":[{"ts":"1.2"}],"has_more":true,"pin_count":0,"response_metadata":{"next_cursor":"bmV4dA=="}}"#,
        )
        .unwrap();
        assert!(history.has_more);
        assert_eq!(history.next_cursor(), Some("bmV4dA=="));
        let auth = decode::<Value>(
            "auth.test",
            br#"{"ok":true,"url":"https://a.slack.com/","team":"A","user":"bot","team_id":"T1","user_id":"U1","bot_id":"B1"}"#,
        )
        .unwrap();
        assert_eq!(auth.url.as_deref(), Some("https://a.slack.com/"));
        assert_eq!(auth.team_id.as_deref(), Some("T1"));
        assert!(decode::<Value>(
            "conversations.join",
            br#"{"ok":true,"channel":{"id":"C1"},"warning":"already_in_channel"}"#
        )
        .is_ok());
        let members = decode::<String>(
            "conversations.members",
            br#"{"ok":true,"members":["U1","W2"],"response_metadata":{"next_cursor":"bWVtYmVyczoy"}}"#,
        )
        .unwrap();
        assert_eq!(members.items, ["U1", "W2"]);
        assert_eq!(members.next_cursor(), Some("bWVtYmVyczoy"));
        assert!(decode::<Value>("users.info", br#"{"ok":true,"user":{"id":"U1"}}"#).is_ok());
        // Other methods need only `ok`.
        assert!(decode::<Value>("api.test", br#"{"ok":true}"#).is_ok());
    }

    #[test]
    fn failures_pass_through_without_the_shape() {
        let failed = decode::<Value>(
            "conversations.history",
            br#"{"ok":false,"error":"missing_scope","needed":"x","provided":"y"}"#,
        )
        .unwrap();
        assert!(!failed.ok);
        assert_eq!(failed.error.as_deref(), Some("missing_scope"));
        assert_eq!(failed.needed.as_deref(), Some("x"));
        assert_eq!(failed.provided.as_deref(), Some("y"));
    }

    #[test]
    fn every_method_needs_its_fields() {
        for (method, field) in [
            ("users.list", "members"),
            ("conversations.members", "members"),
            ("usergroups.list", "usergroups"),
            ("files.remote.list", "files"),
            ("conversations.list", "channels"),
            ("conversations.history", "messages"),
            ("conversations.replies", "messages"),
        ] {
            let more = if method.starts_with("conversations.h") || method.ends_with("replies") {
                r#","has_more":false"#
            } else {
                ""
            };
            let missing = problem(method, &format!(r#"{{"ok":true{more}}}"#));
            assert_eq!(missing, (field.to_string(), "is missing".to_string()));
            let null = problem(method, &format!(r#"{{"ok":true,"{field}":null{more}}}"#));
            assert_eq!(null, (field.to_string(), "is null".to_string()));
            let (f, p) = problem(method, &format!(r#"{{"ok":true,"{field}":"oops"{more}}}"#));
            assert_eq!(f, field);
            assert!(
                p.contains("invalid type: string \"oops\", expected a sequence"),
                "{p}"
            );
            let (f, p) = problem(method, &format!(r#"{{"ok":true,"{field}":{{}}{more}}}"#));
            assert_eq!(f, field);
            assert!(p.contains("invalid type: map"), "{p}");
            // Other lists do not stand in for the method's own.
            let other = if field == "members" {
                "channels"
            } else {
                "members"
            };
            assert_eq!(
                problem(method, &format!(r#"{{"ok":true,"{other}":[]{more}}}"#)).0,
                field
            );
        }
        for field in ["url", "team_id", "user_id"] {
            let mut auth = serde_json::json!({"ok": true, "url": "https://a.slack.com/", "team_id": "T1", "user_id": "U1"});
            auth.as_object_mut().unwrap().remove(field);
            let missing = (field.to_string(), "is missing".to_string());
            assert_eq!(problem("auth.test", &auth.to_string()), missing);
            auth[field] = Value::Null;
            let null = (field.to_string(), "is null".to_string());
            assert_eq!(problem("auth.test", &auth.to_string()), null);
            auth[field] = serde_json::json!(7);
            assert_eq!(problem("auth.test", &auth.to_string()).0, field);
        }
        assert_eq!(
            problem("team.info", r#"{"ok":true}"#),
            ("team".to_string(), "is missing".to_string())
        );
        assert_eq!(
            problem("conversations.join", r#"{"ok":true}"#),
            ("channel".to_string(), "is missing".to_string())
        );
        assert_eq!(
            problem("conversations.join", r#"{"ok":true,"channel":null}"#),
            ("channel".to_string(), "is null".to_string())
        );
        assert_eq!(
            problem("users.info", r#"{"ok":true}"#),
            ("user".to_string(), "is missing".to_string())
        );
        assert_eq!(
            problem("users.info", r#"{"ok":true,"user":"U1"}"#).0,
            "user"
        );
        for (method, body, field) in [
            (
                "conversations.join",
                r#"{"ok":true,"channel":"C1"}"#,
                "channel",
            ),
            ("users.list", r#"{"members":[]}"#, "ok"),
            ("users.list", r#"{"ok":null,"members":[]}"#, "ok"),
            ("users.list", r#"{"ok":"true","members":[]}"#, "ok"),
        ] {
            assert_eq!(problem(method, body).0, field, "{method} {body}");
        }
    }

    #[test]
    fn destination_methods_need_their_ids() {
        let good = [
            (
                "chat.postMessage",
                json!({"ok": true, "channel": "C1", "ts": "1.2"}),
            ),
            (
                "files.getUploadURLExternal",
                json!({"ok": true, "upload_url": "https://files/x", "file_id": "F1"}),
            ),
            (
                "files.completeUploadExternal",
                json!({"ok": true, "files": [{"id": "F1"}]}),
            ),
            (
                "oauth.v2.access",
                json!({"ok": true, "access_token": "xoxb-1", "token_type": "bot", "scope": "a,b",
                       "bot_user_id": "U1", "app_id": "A1", "team": {"id": "T1"}}),
            ),
        ];
        for (method, body) in good {
            let decoded = decode::<Value>(method, body.to_string().as_bytes()).unwrap();
            for field in shape(method).strings {
                assert_eq!(
                    decoded.text(field),
                    body[field].as_str(),
                    "{method} {field}"
                );
            }
            let want = shape(method);
            let fields = want
                .strings
                .iter()
                .chain(want.objects)
                .chain(want.items.as_slice());
            for field in fields {
                let mut broken = body.clone();
                broken.as_object_mut().unwrap().remove(*field);
                assert_eq!(
                    problem(method, &broken.to_string()),
                    (field.to_string(), "is missing".to_string())
                );
                broken[*field] = Value::Null;
                assert_eq!(problem(method, &broken.to_string()).1, "is null");
            }
        }
    }

    #[test]
    fn has_more_needs_a_cursor() {
        for meta in [
            "",
            r#","response_metadata":{"next_cursor":""}"#,
            r#","response_metadata":{}"#,
            r#","response_metadata":null"#,
        ] {
            let body = format!(r#"{{"ok":true,"messages":[],"has_more":true{meta}}}"#);
            let (field, problem) = problem("conversations.history", &body);
            assert_eq!(field, "response_metadata.next_cursor", "{body}");
            assert!(problem.contains("has_more"), "{problem}");
        }
        let meta = |m: &str| format!(r#"{{"ok":true,"members":[],"response_metadata":{m}}}"#);
        for (method, body, field) in [
            (
                "conversations.replies",
                r#"{"ok":true,"messages":[]}"#.to_string(),
                "has_more",
            ),
            (
                "conversations.history",
                r#"{"ok":true,"messages":[],"has_more":"yes"}"#.to_string(),
                "has_more",
            ),
            (
                "users.list",
                meta(r#"{"next_cursor":5}"#),
                "response_metadata",
            ),
            ("users.list", meta("[]"), "response_metadata"),
            ("users.list", meta(r#"["Yz0x"]"#), "response_metadata"),
            ("users.list", meta("7"), "response_metadata"),
            // users.list has no has_more, but one without a cursor still breaks a promise.
            (
                "users.list",
                r#"{"ok":true,"members":[],"has_more":true}"#.to_string(),
                "response_metadata.next_cursor",
            ),
        ] {
            assert_eq!(problem(method, &body).0, field, "{method} {body}");
        }
    }

    #[test]
    fn bad_json_is_malformed_not_a_field_problem() {
        for body in [
            "",
            "<html>502</html>",
            r#"{"ok":true,"messages":[{"type":"mess"#,
            r#"{"ok":true,"messages":[]} trailing"#,
            "[1,2]",
        ] {
            match decode::<Value>("conversations.history", body.as_bytes()) {
                Err(SlackError::Malformed { method, .. }) => {
                    assert_eq!(method, "conversations.history")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn item_errors_name_the_list() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Item {
            id: String,
        }
        match decode::<Item>("users.list", br#"{"ok":true,"members":[{"name":"x"}]}"#) {
            Err(SlackError::Protocol { field, problem, .. }) => {
                assert_eq!(field, "members");
                assert!(problem.contains("missing field `id`"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pager_catches_any_repeated_cursor() {
        let mut pager = Pager::new();
        assert_eq!(pager.cursor(), None);
        pager.check("m", Some("A")).unwrap();
        assert!(pager.advance(Some("A")));
        assert_eq!(pager.cursor(), Some("A"));
        // The same cursor again, or an earlier one (A → B → A), would loop.
        assert!(pager.check("m", Some("A")).is_err());
        pager.check("m", Some("B")).unwrap();
        assert!(pager.advance(Some("B")));
        let error = pager.check("m", Some("A")).unwrap_err();
        assert!(
            matches!(&error, SlackError::Protocol { field, .. } if field == "response_metadata.next_cursor"),
            "{error:?}"
        );
        assert!(error.to_string().contains("loop"), "{error}");
        pager.check("m", None).unwrap();
        assert!(!pager.advance(None));
    }
}
