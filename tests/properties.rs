//! Property tests ("fuzzing" that runs on stable, in `cargo test`): every parser that reads
//! input we do not control ends in a value or an error, never a panic, and the Slack
//! decoders never turn a broken answer into a page.
//!
//! Targets: the Slack answer decoders and the document transforms fed by them, the
//! `config.yml` loader, and the readers of connector and sync-job documents (with the
//! configuration, scheduling and sync rules they carry), the Slack source's `sync_cursor`
//! and the resume points of a job's `metadata`.
//!
//! Each target runs a fixed number of cases from a fixed seed (deterministic: the same
//! inputs on every run and machine), printed with its run time. `PROPTEST_CASES=N`
//! overrides the count for a longer hunt (`make fuzz`). A failure is shrunk to a minimal
//! input and reported; nothing is written to disk.

use connectors::config::Config;
use connectors::fuzzing::{
    config_yml, connector_doc as read_connector, slack_answer, sync_job_doc, workspace_answer,
    SLACK_METHODS, WORKSPACE_METHODS,
};
use connectors::sources::slack::transform::{
    iso_from_epoch, iso_from_micros, permalink, plain_text, rewrite_mentions, ts_micros,
    window_oldest, workspace_base, Message, Names, User,
};
use connectors::sources::slack::SlackFactory;
use connectors::sources::SourceFactory;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

// ---------------------------------------------------------------- harness

/// Runs `test` on `cases` inputs of `strategy` from a fixed seed (or `PROPTEST_CASES`),
/// and prints how many ran in how long, and how many ended in a value (`test` returns
/// true) rather than an error.
fn check<S: Strategy>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> bool)
where
    S::Value: std::fmt::Debug,
{
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let config = RunnerConfig {
        cases,
        failure_persistence: None,
        // Inputs that a strategy rejects are not part of these strategies.
        max_global_rejects: 0,
        ..RunnerConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let values = std::sync::atomic::AtomicU32::new(0);
    let started = Instant::now();
    let result = runner.run(&strategy, |value| {
        if test(value) {
            values.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("property {name} failed: {failure}");
    }
    println!(
        "property {name}: {cases} cases ({} values, the rest errors) in {:.2} s",
        values.into_inner(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------- strategies

/// Slack-ish text: markup, entities, escapes, control characters, multi-byte characters.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[ -~]{0,8}",
        1 => select(vec![
            "<@U0123ABC>", "<@W1|bob>", "<@", "<#C0123|general>", "<#C9>", "<!here>",
            "<!subteam^S1|@team>", "<https://x.example/a?b=c|a link>", "<mailto:a@b.c>", "<",
            ">", "|", "&amp;", "&lt;", "&gt;", "&", "&#39;", "\"", "\\", "\n", "\t", "\u{0}",
            "\u{1f}", "\u{7f}", "é", "€", "😀", "\u{2028}", "\u{feff}",
        ])
        .prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|parts| parts.concat())
}

/// A `ts`: mostly well formed, sometimes not.
fn ts() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9]{1,10}\\.[0-9]{6}",
        1 => "-?[0-9]{0,20}(\\.[0-9]{0,12})?",
        1 => text(),
    ]
}

fn slack_id(prefix: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Z0-9]{2,11}".prop_map(move |s| format!("{prefix}{s}")),
        1 => text(),
    ]
}

/// Keys Slack answers and our documents use, plus random ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "ok", "error", "needed", "provided", "members", "channels", "messages", "channel",
            "has_more", "response_metadata", "next_cursor", "url", "team_id", "user_id", "id",
            "name", "real_name", "profile", "display_name", "bot_id", "deleted", "is_bot",
            "updated", "is_member", "is_archived", "is_private", "topic", "purpose", "value",
            "type", "subtype", "user", "username", "text", "ts", "thread_ts", "reply_count",
            "latest_reply", "edited", "created", "rules", "policy", "field", "rule", "enabled",
            "interval", "validation", "state", "configuration", "label", "sensitive",
        ])
        .prop_map(str::to_string),
        1 => "[a-z_]{1,10}",
    ]
}

/// Any JSON value, biased to the keys and shapes above.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e15f64..1e15).prop_map(|f| json!(f)),
        text().prop_map(Value::String),
        ts().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..7)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// An object built from optional fields: each present with probability ½.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<_> = fields
        .into_iter()
        .map(|(name, value)| prop::option::of(value).prop_map(move |v| (name, v)))
        .collect();
    parts
        .prop_map(|parts| {
            Value::Object(
                parts
                    .into_iter()
                    .filter_map(|(name, v)| v.map(|v| (name.to_string(), v)))
                    .collect(),
            )
        })
        .boxed()
}

fn string(s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Value> {
    s.prop_map(Value::String).boxed()
}

/// A well-typed message with random content (every field optional but `ts`).
fn message() -> BoxedStrategy<Value> {
    let optional = object(vec![
        (
            "type",
            prop_oneof![3 => Just(json!("message")), 1 => string(text())].boxed(),
        ),
        (
            "subtype",
            prop_oneof![
                Just(json!("bot_message")),
                Just(json!("thread_broadcast")),
                Just(json!("channel_join")),
                string(text())
            ]
            .boxed(),
        ),
        ("user", string(slack_id("U"))),
        ("bot_id", string(slack_id("B"))),
        ("username", string(text())),
        ("text", string(text())),
        ("thread_ts", string(ts())),
        ("reply_count", (0u64..40).prop_map(|n| json!(n)).boxed()),
        ("latest_reply", string(ts())),
        (
            "edited",
            object(vec![("ts", string(ts())), ("user", string(slack_id("U")))]),
        ),
        // Issue 19: reactions, files, pins, attachments and blocks (any `text` shape in a
        // block: layouts we do not read never fail a page).
        (
            "reactions",
            prop::collection::vec(
                object(vec![
                    ("name", string(text())),
                    ("count", (0u64..9).prop_map(|n| json!(n)).boxed()),
                    (
                        "users",
                        prop::collection::vec(string(slack_id("U")), 0..4)
                            .prop_map(Value::Array)
                            .boxed(),
                    ),
                ])
                .prop_map(|mut r| {
                    if r.get("name").is_none() {
                        r["name"] = json!("tada");
                    }
                    r
                }),
                0..3,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
        (
            "files",
            prop::collection::vec(
                file().prop_map(|mut f| {
                    if f.get("id").is_none() {
                        f["id"] = json!("F0123");
                    }
                    f
                }),
                0..3,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
        (
            "pinned_to",
            prop::collection::vec(string(slack_id("C")), 0..2)
                .prop_map(Value::Array)
                .boxed(),
        ),
        (
            "attachments",
            prop::collection::vec(
                object(vec![
                    ("fallback", string(text())),
                    ("pretext", string(text())),
                    ("title", string(text())),
                    ("text", string(text())),
                ]),
                0..3,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
        (
            "blocks",
            prop::collection::vec(
                object(vec![
                    (
                        "type",
                        prop_oneof![
                            Just(json!("section")),
                            Just(json!("header")),
                            Just(json!("rich_text")),
                            string(text())
                        ]
                        .boxed(),
                    ),
                    (
                        "text",
                        prop_oneof![
                            object(vec![("type", string(text())), ("text", string(text()))]),
                            json_value()
                        ]
                        .boxed(),
                    ),
                ]),
                0..3,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
    ]);
    (ts(), optional)
        .prop_map(|(ts, mut m)| {
            m["ts"] = json!(ts);
            m
        })
        .boxed()
}

fn user() -> BoxedStrategy<Value> {
    let profile = object(vec![
        ("display_name", string(text())),
        ("display_name_normalized", string(text())),
        ("real_name", string(text())),
        ("real_name_normalized", string(text())),
        ("first_name", string(text())),
        ("last_name", string(text())),
        ("bot_id", string(slack_id("B"))),
    ]);
    let optional = object(vec![
        ("name", string(text())),
        ("real_name", string(text())),
        ("deleted", any::<bool>().prop_map(Value::Bool).boxed()),
        ("is_admin", any::<bool>().prop_map(Value::Bool).boxed()),
        ("is_bot", any::<bool>().prop_map(Value::Bool).boxed()),
        ("updated", any::<i64>().prop_map(|n| json!(n)).boxed()),
        ("profile", profile),
    ]);
    (slack_id("U"), optional)
        .prop_map(|(id, mut u)| {
            u["id"] = json!(id);
            u
        })
        .boxed()
}

fn channel() -> BoxedStrategy<Value> {
    let topic = || {
        object(vec![
            ("value", string(text())),
            ("creator", string(slack_id("U"))),
            ("last_set", any::<i64>().prop_map(|n| json!(n)).boxed()),
        ])
    };
    let optional = object(vec![
        ("name", string(text())),
        ("name_normalized", string(text())),
        ("created", any::<i64>().prop_map(|n| json!(n)).boxed()),
        ("updated", any::<i64>().prop_map(|n| json!(n)).boxed()),
        ("is_member", any::<bool>().prop_map(Value::Bool).boxed()),
        ("is_archived", any::<bool>().prop_map(Value::Bool).boxed()),
        ("is_private", any::<bool>().prop_map(Value::Bool).boxed()),
        ("topic", topic()),
        ("purpose", topic()),
    ]);
    (slack_id("C"), optional)
        .prop_map(|(id, mut c)| {
            c["id"] = json!(id);
            c
        })
        .boxed()
}

/// The list each method's answer carries (the oracle's own table).
fn list_key(method: usize) -> Option<&'static str> {
    match SLACK_METHODS[method] {
        "users.list" => Some("members"),
        "conversations.list" => Some("channels"),
        "conversations.history" | "conversations.replies" => Some("messages"),
        "conversations.members" => Some("members"),
        _ => None,
    }
}

/// A Slack answer for one of [`SLACK_METHODS`]: usually shaped like a good one (random
/// content, fields sometimes missing, null or of another type), sometimes any JSON.
fn answer() -> impl Strategy<Value = (usize, Value)> {
    let shaped = (0..SLACK_METHODS.len()).prop_flat_map(|m| {
        let items = match (SLACK_METHODS[m], list_key(m)) {
            ("conversations.members", _) => prop::collection::vec(
                prop_oneof![8 => string(slack_id("U")), 1 => json_value()],
                0..4,
            )
            .boxed(),
            (_, Some("members")) => prop::collection::vec(user(), 0..4).boxed(),
            (_, Some("channels")) => prop::collection::vec(channel(), 0..4).boxed(),
            _ => prop::collection::vec(message(), 0..6).boxed(),
        };
        let list = prop_oneof![
            8 => items.prop_map(Value::Array),
            1 => json_value(),
        ];
        let envelope = object(vec![
            ("has_more", prop_oneof![3 => any::<bool>().prop_map(Value::Bool), 1 => json_value()].boxed()),
            (
                "response_metadata",
                prop_oneof![
                    3 => object(vec![("next_cursor", prop_oneof![string("[A-Za-z0-9+/=]{0,12}"), json_value()].boxed())]),
                    1 => json_value(),
                ]
                .boxed(),
            ),
            ("url", prop_oneof![string(text()), json_value()].boxed()),
            ("team_id", string(slack_id("T"))),
            ("user_id", string(slack_id("U"))),
            ("channel", prop_oneof![channel(), json_value()].boxed()),
            ("user", prop_oneof![user(), json_value()].boxed()),
            ("error", string(text())),
            ("warning", string(text())),
        ]);
        let ok = prop_oneof![8 => Just(json!(true)), 1 => Just(json!(false)), 1 => json_value()];
        (Just(m), ok, prop::option::weighted(0.9, list), envelope).prop_map(
            |(m, ok, list, mut body)| {
                body["ok"] = ok;
                if let (Some(key), Some(list)) = (list_key(m), list) {
                    body[key] = list;
                }
                (m, body)
            },
        )
    });
    prop_oneof![
        6 => shaped,
        1 => (0..SLACK_METHODS.len(), json_value()),
    ]
}

/// The oracle of strictness: whether a parsed answer carries what `method` promises.
fn keeps_its_promise(method: usize, body: &Value) -> bool {
    let (name, list) = (SLACK_METHODS[method], list_key(method));
    let cursor = body["response_metadata"]["next_cursor"]
        .as_str()
        .is_some_and(|c| !c.is_empty());
    let has_more = body.get("has_more");
    let lists = list.is_none_or(|key| body[key].is_array());
    let paging = match name {
        "conversations.history" | "conversations.replies" => {
            matches!(has_more, Some(Value::Bool(false)))
                || (has_more == Some(&json!(true)) && cursor)
        }
        _ => envelope_pages(body),
    };
    let auth = name != "auth.test"
        || ["url", "team_id", "user_id"]
            .iter()
            .all(|k| body[*k].is_string());
    let join = name != "conversations.join" || body["channel"].is_object();
    let info = name != "users.info" || body["user"].is_object();
    lists && paging && auth && join && info && envelope_typed(body)
}

/// Paging of a method without `has_more` required: `has_more: true` needs a cursor.
fn envelope_pages(body: &Value) -> bool {
    let cursor = body["response_metadata"]["next_cursor"]
        .as_str()
        .is_some_and(|c| !c.is_empty());
    body.get("has_more") != Some(&json!(true)) || cursor
}

/// The envelope's own fields, when present, have their documented types.
fn envelope_typed(body: &Value) -> bool {
    let metadata = match body.get("response_metadata") {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => matches!(
            m.get("next_cursor"),
            None | Some(Value::Null | Value::String(_))
        ),
        Some(_) => false,
    };
    let typed = matches!(
        body.get("has_more"),
        None | Some(Value::Null | Value::Bool(_))
    ) && ["error", "needed", "provided"]
        .iter()
        .all(|k| matches!(body.get(*k), None | Some(Value::Null | Value::String(_))));
    metadata && typed
}

// ---------------------------------------------------------------- Slack decoders

#[test]
fn slack_answers_decode_strictly_and_transform_without_panics() {
    check("slack_answers", 3_000, answer(), |(method, body)| {
        let bytes = serde_json::to_vec(&body).expect("serializes");
        let accepted = slack_answer(SLACK_METHODS[method], &bytes);
        if accepted {
            assert!(
                keeps_its_promise(method, &body),
                "{} accepted a broken answer: {body}",
                SLACK_METHODS[method]
            );
        } else if body["ok"] == json!(true) && keeps_its_promise(method, &body) {
            // A good envelope may still be refused for a bad item; never for nothing.
            let list = list_key(method).map(|k| &body[k]);
            assert!(
                list.is_some_and(|l| l.as_array().is_some_and(|a| !a.is_empty()))
                    || SLACK_METHODS[method] == "conversations.join"
                    || SLACK_METHODS[method] == "users.info"
                    || SLACK_METHODS[method] == "auth.test",
                "{} refused a good answer: {body}",
                SLACK_METHODS[method]
            );
        }
        accepted
    });
}

#[test]
fn slack_decoders_survive_any_bytes() {
    // Good answers with a few bytes changed, inserted or removed, and plain noise.
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6);
    let mutated = (answer(), edits).prop_map(|((method, body), edits)| {
        let mut bytes = serde_json::to_vec(&body).expect("serializes");
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => bytes.push(byte),
            }
        }
        (method, bytes)
    });
    let noise = (
        0..SLACK_METHODS.len(),
        prop::collection::vec(any::<u8>(), 0..200),
    );
    check(
        "slack_bytes",
        3_000,
        prop_oneof![4 => mutated, 1 => noise],
        |(method, bytes)| {
            let accepted = slack_answer(SLACK_METHODS[method], &bytes);
            if accepted {
                // The decoder skips unused fields without checking their `\u` escapes, so
                // an answer it accepts may not parse as a whole; the fields it reads were
                // checked. The oracle judges the ones that parse.
                if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
                    assert!(
                        keeps_its_promise(method, &body),
                        "{}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
            accepted
        },
    );
}

#[test]
fn slack_text_transforms_take_any_text() {
    let inputs = (
        text(),
        text(),
        ts(),
        prop::option::of(ts()),
        any::<i64>(),
        any::<u32>(),
    );
    check(
        "slack_text",
        3_000,
        inputs,
        |(text, url, ts, thread_ts, number, days)| {
            let mut names = Names::default();
            names.add(&User {
                id: "U0123ABC".into(),
                name: Some(text.clone()),
                ..User::default()
            });
            let channels = HashMap::from([("C0123".to_string(), url.clone())]);
            let _ = rewrite_mentions(&text, &names);
            let _ = plain_text(&text, &names, &channels);
            let _ = permalink(&url, "C1", &ts, thread_ts.as_deref());
            let _ = workspace_base(&url);
            if let Some(micros) = ts_micros(&ts) {
                assert!(iso_from_micros(micros).is_some(), "{ts}");
            }
            let _ = iso_from_micros(number);
            let _ = iso_from_epoch(number);
            let _ = window_oldest(number, days);
            ts_micros(&ts).is_some()
        },
    );
}

/// A well-typed Slack file object (issue 19), every field optional (`id` too: the
/// property says when it is required).
fn file() -> BoxedStrategy<Value> {
    let number = |max: u64| (0..max).prop_map(|n| json!(n)).boxed();
    object(vec![
        ("id", string(slack_id("F"))),
        (
            "mode",
            prop_oneof![
                select(vec![
                    "hosted",
                    "external",
                    "snippet",
                    "tombstone",
                    "hidden_by_limit"
                ])
                .prop_map(str::to_string),
                text()
            ]
            .prop_map(Value::String)
            .boxed(),
        ),
        ("name", string(text())),
        ("title", string(text())),
        ("mimetype", string(text())),
        ("filetype", string(text())),
        ("size", number(u64::MAX)),
        ("user", string(slack_id("U"))),
        ("created", number(i64::MAX as u64)),
        ("permalink", string(text())),
        ("url_private", string(text())),
        ("url_private_download", string(text())),
    ])
}

/// The file parser (issue 19): a file object decodes exactly when it has its `id`; a
/// decoded file makes a document (or none when deleted or hidden) without panicking, and
/// the content helpers take any text.
#[test]
fn slack_file_objects_decode_strictly_and_make_documents() {
    use connectors::sources::slack::files::{self, Content, SharedFile};
    let inputs = (file(), text(), prop::option::of(text()));
    check("slack_files", 2_000, inputs, |(file, any_text, mime)| {
        let message = json!({"ts": "1700000000.000100", "thread_ts": "1700000000.000100",
                             "files": [file.clone()]});
        let bytes = serde_json::to_vec(&message).expect("serializes");
        let decoded = serde_json::from_slice::<Message<'_>>(&bytes);
        assert_eq!(decoded.is_ok(), file["id"].is_string(), "{file}");
        let _ = files::html_text(&any_text);
        let _ = files::kind(mime.as_deref(), Some(&any_text));
        let _ = files::trusted(&any_text, "https://slack.com/api");
        let Ok(message) = decoded else {
            return false;
        };
        let shared = SharedFile::of_message(&message, "C1");
        let hidden = matches!(file["mode"].as_str(), Some("tombstone" | "hidden_by_limit"));
        assert_eq!(shared.len(), usize::from(!hidden), "{file}");
        for f in &shared {
            let channels = [String::from("C1")].into();
            let doc = files::file_doc(
                f,
                &channels,
                &Names::default(),
                &HashMap::new(),
                Content::Text(any_text.clone()),
            );
            assert_eq!(doc.id(), file["id"].as_str().unwrap_or_default());
            assert_eq!(doc.fields()["type"], "file");
        }
        true
    });
}

// ---------------------------------------------------------------- workspace answers

/// A string field, or sometimes any JSON.
fn text_or_any() -> BoxedStrategy<Value> {
    prop_oneof![6 => string(text()), 1 => json_value()].boxed()
}

/// An object with its id (mostly a good one, sometimes any JSON, sometimes none) and
/// optional `fields`.
fn with_id(
    prefix: &'static str,
    fields: Vec<(&'static str, BoxedStrategy<Value>)>,
) -> BoxedStrategy<Value> {
    let id = prop_oneof![8 => string(slack_id(prefix)), 1 => json_value()];
    (prop::option::weighted(0.9, id), object(fields))
        .prop_map(|(id, mut object)| {
            if let Some(id) = id {
                object["id"] = id;
            }
            object
        })
        .boxed()
}

/// `team.info`'s `team` (issue 19).
fn team() -> BoxedStrategy<Value> {
    with_id(
        "T",
        vec![
            ("name", text_or_any()),
            ("domain", text_or_any()),
            ("email_domain", text_or_any()),
            ("url", text_or_any()),
            ("icon", json_value().boxed()),
        ],
    )
}

/// One `usergroups.list` group (issue 19).
fn usergroup() -> BoxedStrategy<Value> {
    let users = prop_oneof![
        6 => prop::collection::vec(prop_oneof![8 => string(slack_id("U")), 1 => json_value()], 0..5)
            .prop_map(Value::Array),
        1 => json_value(),
    ];
    let date = prop_oneof![4 => any::<i64>().prop_map(|n| json!(n)), 1 => json_value()];
    with_id(
        "S",
        vec![
            ("name", text_or_any()),
            ("handle", text_or_any()),
            ("description", text_or_any()),
            ("users", users.boxed()),
            ("date_create", date.clone().boxed()),
            ("date_update", date.boxed()),
        ],
    )
}

/// One reaction of a `reactions.get` message (issue 19): each field mostly there and well
/// typed, sometimes missing or any JSON.
fn full_reaction() -> BoxedStrategy<Value> {
    let count = prop_oneof![6 => (0u64..50).prop_map(|n| json!(n)), 1 => json_value()];
    let users = prop_oneof![
        6 => prop::collection::vec(prop_oneof![8 => string(slack_id("U")), 1 => json_value()], 0..5)
            .prop_map(Value::Array),
        1 => json_value(),
    ];
    (
        prop::option::weighted(0.9, text_or_any()),
        prop::option::weighted(0.9, count),
        prop::option::weighted(0.9, users),
    )
        .prop_map(|(name, count, users)| {
            let mut reaction = json!({});
            for (key, value) in [("name", name), ("count", count), ("users", users)] {
                if let Some(value) = value {
                    reaction[key] = value;
                }
            }
            reaction
        })
        .boxed()
}

/// `reactions.get`'s `message` (issue 19): a message whose `reactions`, when there, are
/// usually a list of reactions, sometimes any JSON.
fn reacted_message() -> BoxedStrategy<Value> {
    let reactions = prop_oneof![
        6 => prop::collection::vec(full_reaction(), 0..4).prop_map(Value::Array),
        1 => json_value(),
    ];
    (ts(), prop::option::weighted(0.8, reactions))
        .prop_map(|(ts, reactions)| {
            let mut message = json!({"type": "message", "ts": ts});
            if let Some(reactions) = reactions {
                message["reactions"] = reactions;
            }
            message
        })
        .boxed()
}

/// A `team.info`, `usergroups.list` or `reactions.get` answer: usually shaped like a good
/// one, sometimes any JSON.
fn workspace_answer_body() -> impl Strategy<Value = (usize, Value)> {
    let shaped = (0..WORKSPACE_METHODS.len()).prop_flat_map(|m| {
        let payload = match WORKSPACE_METHODS[m] {
            "team.info" => team(),
            "reactions.get" => reacted_message(),
            _ => prop::collection::vec(usergroup(), 0..4)
                .prop_map(Value::Array)
                .boxed(),
        };
        // `reactions.get`'s item type: mostly `message`, sometimes missing or any JSON.
        let item_type = match WORKSPACE_METHODS[m] {
            "reactions.get" => prop::option::weighted(
                0.9,
                prop_oneof![8 => Just(json!("message")), 1 => json_value()],
            )
            .boxed(),
            _ => Just(None).boxed(),
        };
        let payload = prop_oneof![8 => payload, 1 => json_value()];
        let ok = prop_oneof![8 => Just(json!(true)), 1 => Just(json!(false)), 1 => json_value()];
        let envelope = object(vec![
            ("error", string(text())),
            ("warning", string(text())),
            (
                "has_more",
                prop_oneof![3 => Just(json!(false)), 1 => json_value()].boxed(),
            ),
        ]);
        (
            Just(m),
            ok,
            prop::option::weighted(0.9, payload),
            envelope,
            item_type,
        )
            .prop_map(|(m, ok, payload, mut body, item_type)| {
                body["ok"] = ok;
                if let Some(payload) = payload {
                    body[workspace_key(m)] = payload;
                }
                if let Some(item_type) = item_type {
                    body["type"] = item_type;
                }
                (m, body)
            })
    });
    prop_oneof![
        6 => shaped,
        1 => (0..WORKSPACE_METHODS.len(), json_value()),
    ]
}

/// The key each workspace method's answer carries its data under.
fn workspace_key(method: usize) -> &'static str {
    match WORKSPACE_METHODS[method] {
        "team.info" => "team",
        "reactions.get" => "message",
        _ => "usergroups",
    }
}

/// The oracle: whether an answer carries what the method promises, with the types the
/// source reads (ids strings; names, handles, descriptions, domains strings or null; members
/// a list of ids; dates integers; `reactions.get`: a `message` item whose reactions, when
/// there, each have a string name, a count and a list of user ids).
fn workspace_promise(method: usize, body: &Value) -> bool {
    let text = |v: &Value, k: &str| matches!(v.get(k), None | Some(Value::Null | Value::String(_)));
    let int = |v: &Value, k: &str| {
        matches!(v.get(k), None | Some(Value::Null)) || v[k].as_i64().is_some()
    };
    let payload = &body[workspace_key(method)];
    let data = match WORKSPACE_METHODS[method] {
        "team.info" => {
            payload.is_object()
                && payload["id"].is_string()
                && ["name", "domain", "email_domain", "url"]
                    .iter()
                    .all(|k| text(payload, k))
        }
        "reactions.get" => {
            let reaction = |r: &Value| {
                r.is_object()
                    && r["name"].is_string()
                    && r["count"].is_u64()
                    && r["users"]
                        .as_array()
                        .is_some_and(|users| users.iter().all(Value::is_string))
            };
            body["type"] == json!("message")
                && payload.is_object()
                && match payload.get("reactions") {
                    None => true,
                    Some(Value::Array(reactions)) => reactions.iter().all(reaction),
                    Some(_) => false,
                }
        }
        _ => payload.as_array().is_some_and(|groups| {
            groups.iter().all(|g| {
                g.is_object()
                    && g["id"].is_string()
                    && ["name", "handle", "description"].iter().all(|k| text(g, k))
                    && match g.get("users") {
                        None | Some(Value::Null) => true,
                        Some(Value::Array(users)) => users.iter().all(Value::is_string),
                        Some(_) => false,
                    }
                    && int(g, "date_create")
                    && int(g, "date_update")
            })
        }),
    };
    body["ok"] == json!(true) && data && envelope_pages(body) && envelope_typed(body)
}

/// `team.info`, `usergroups.list` and `reactions.get` (issue 19) decode strictly: an
/// answer is accepted exactly when it carries what the method promises, an accepted
/// `usergroups.list` makes one document per group it lists and an accepted `reactions.get`
/// one reaction entry per reaction, with every user and a name for each (never an empty
/// list for a missing or broken one), and every refusal names the method.
#[test]
fn workspace_answers_decode_strictly_and_name_the_method() {
    check(
        "slack_workspace_answers",
        3_000,
        workspace_answer_body(),
        |(method, body)| {
            let name = WORKSPACE_METHODS[method];
            let bytes = serde_json::to_vec(&body).expect("serializes");
            match workspace_answer(name, &bytes) {
                Ok(documents) => {
                    assert!(
                        workspace_promise(method, &body),
                        "{name} accepted a broken answer: {body}"
                    );
                    let want = match name {
                        "usergroups.list" => body["usergroups"].as_array().map_or(0, Vec::len),
                        "reactions.get" => {
                            body["message"]["reactions"].as_array().map_or(0, Vec::len)
                        }
                        _ => 1,
                    };
                    assert_eq!(documents, want, "{name}: {body}");
                    true
                }
                Err(error) => {
                    assert!(
                        !workspace_promise(method, &body),
                        "{name} refused a good answer ({error}): {body}"
                    );
                    assert!(
                        error.contains(name),
                        "{name}: the error does not name it: {error}"
                    );
                    false
                }
            }
        },
    );
}

/// A `files.remote.list` file: each field absent, well typed, null, or of the wrong type.
fn remote_file() -> BoxedStrategy<Value> {
    let or_wrong = |good: BoxedStrategy<Value>, wrong: Value| {
        prop_oneof![6 => good, 1 => Just(Value::Null), 1 => Just(wrong)].boxed()
    };
    let s = |t: BoxedStrategy<String>| or_wrong(string(t), json!(7));
    let ids = prop::collection::vec(slack_id("C"), 0..3)
        .prop_map(|v| json!(v))
        .boxed();
    object(vec![
        ("id", s(slack_id("F").boxed())),
        ("external_url", s(text().boxed())),
        ("external_id", s(text().boxed())),
        ("title", s(text().boxed())),
        ("name", s(text().boxed())),
        ("filetype", s(text().boxed())),
        ("user", s(slack_id("U").boxed())),
        (
            "created",
            or_wrong(
                any::<i64>().prop_map(|n| json!(n)).boxed(),
                json!("yesterday"),
            ),
        ),
        ("permalink", s(text().boxed())),
        ("channels", or_wrong(ids.clone(), json!("C1"))),
        ("groups", or_wrong(ids.clone(), json!({"G1": true}))),
        ("ims", or_wrong(ids, json!(3))),
    ])
}

/// The remote file parser (issue 19): a `files.remote.list` page decodes exactly when
/// every file has a string `id` and `external_url` and its other fields have their types
/// (or are null or absent); a refused page names the method; a decoded file makes a
/// document of its id, listing only the conversations given.
#[test]
fn slack_remote_files_decode_strictly_and_make_documents() {
    use connectors::sources::slack::answer;
    use connectors::sources::slack::remote_files::{self, RemoteFile};
    let inputs = prop::collection::vec(remote_file(), 0..4);
    check("slack_remote_files", 2_000, inputs, |files| {
        let page = json!({"ok": true, "files": files, "response_metadata": {"next_cursor": ""}});
        let bytes = serde_json::to_vec(&page).expect("serializes");
        let typed = |v: &Value, key: &str, ok: fn(&Value) -> bool| {
            v.get(key).is_none_or(|x| x.is_null() || ok(x))
        };
        let strings = |x: &Value| x.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        let valid = files.iter().all(|f| {
            f["id"].is_string()
                && f["external_url"].is_string()
                && [
                    "external_id",
                    "title",
                    "name",
                    "filetype",
                    "user",
                    "permalink",
                ]
                .iter()
                .all(|k| typed(f, k, Value::is_string))
                && typed(f, "created", Value::is_i64)
                && ["channels", "groups", "ims"]
                    .iter()
                    .all(|k| typed(f, k, strings))
        });
        let decoded = answer::decode::<RemoteFile>(remote_files::METHOD, &bytes);
        match &decoded {
            Ok(_) => assert!(valid, "{page}"),
            Err(e) => {
                assert!(!valid, "{page}: {e}");
                assert!(e.to_string().contains(remote_files::METHOD), "{e}");
            }
        }
        let Ok(decoded) = decoded else {
            return false;
        };
        for file in &decoded.items {
            let shared = file.conversations().take(1).map(String::as_str).collect();
            let doc =
                remote_files::remote_file_doc(file, &shared, &Names::default(), &HashMap::new());
            assert_eq!(doc.id(), file.id);
            let fields = doc.fields();
            assert_eq!(fields["type"], "remote_file");
            assert_eq!(fields["url"], file.external_url.as_str());
            assert!(fields["channel_ids"]
                .as_array()
                .is_some_and(|a| a.len() <= 1));
        }
        true
    });
}

// ---------------------------------------------------------------- config.yml

/// Every key of the defaults tree, dotted (`elasticsearch.bulk.chunk_size`).
fn config_keys() -> Vec<String> {
    fn walk(value: &serde_yaml::Value, at: &str, out: &mut Vec<String>) {
        if let serde_yaml::Value::Mapping(map) = value {
            for (k, v) in map {
                let key = k.as_str().unwrap_or_default();
                let path = if at.is_empty() {
                    key.to_string()
                } else {
                    format!("{at}.{key}")
                };
                walk(v, &path, out);
                out.push(path);
            }
        }
    }
    let mut keys = Vec::new();
    walk(
        &serde_yaml::to_value(Config::default()).expect("defaults"),
        "",
        &mut keys,
    );
    keys.extend([
        "connectors".into(),
        "connector_id".into(),
        "service_type".into(),
    ]);
    keys
}

/// A YAML scalar or small collection, as text.
fn yaml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        select(vec![
            "true",
            "false",
            "null",
            "~",
            ".nan",
            "-.inf",
            "0.5",
            "1",
            "0",
            "-1",
            "1e400",
            "changeme",
            "slack",
            "http://localhost:9200",
            "${ES_HOST}",
            "${PORT:-9200}",
            "${UNSET}",
            "${",
            "[]",
            "{}",
            "[1, two]",
            "{a: 1}",
            "- x",
            "'quoted'",
            "\"x\\ty\"",
            "!!binary aGk=",
            "&anchor 1",
            "*anchor",
            "|",
            ">",
            "%",
            "@",
            "`",
            "127.0.0.1:8090",
            "[{connector_id: a, service_type: slack}]",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}",
    ]
}

fn yaml_text() -> impl Strategy<Value = String> {
    let keys = config_keys();
    let indent = prop_oneof![6 => Just(0usize), 1 => 1usize..3];
    let line = (select(keys), yaml_value(), indent)
        .prop_map(|(key, value, indent)| format!("{}{key}: {value}", "  ".repeat(indent)));
    // Half start with a valid connector list, so many files load and the values are
    // checked past the first problem.
    let structured =
        (any::<bool>(), prop::collection::vec(line, 0..8)).prop_map(|(connector, lines)| {
            let mut text = String::new();
            if connector {
                text.push_str("connectors:\n  - connector_id: abc\n    service_type: slack\n");
            }
            for line in lines {
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
    let soup = prop::collection::vec(
        prop_oneof![
            select(vec![
                ":", " ", "  ", "\n", "- ", "{", "}", "[", "]", ",", "#", "&", "*", "!", "|", ">",
                "'", "\"", "%", "@", "`", "${", "}", "\t", "\u{feff}", "---", "...", "? ", "<<: ",
            ])
            .prop_map(str::to_string),
            "[a-z_.]{1,12}",
            "[0-9.e-]{1,6}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat());
    prop_oneof![3 => structured, 1 => soup, 1 => text()]
}

#[test]
fn config_loader_takes_any_text() {
    check("config_yml", 2_000, yaml_text(), |text| config_yml(&text));
}

#[test]
fn config_errors_never_quote_a_secret() {
    let secret_at = select(vec![
        "elasticsearch.password",
        "elasticsearch.api_key",
        "connectors[0].api_key",
        "notifications.slack.bot_token",
        "notifications.slack.webhook_url",
    ]);
    let shape = select(vec!["{}", "[{}]", "{k: {}}", "{}: 1", "!!str {}", "'{}'"]);
    check(
        "config_secrets",
        500,
        (secret_at, shape, yaml_text()),
        |(at, shape, noise)| {
            let secret = "S3CR3T-VALUE-77";
            let value = shape.replace("{}", secret);
            let text = match at {
                "connectors[0].api_key" => format!(
                    "connectors:\n  - connector_id: abc\n    service_type: slack\n    api_key: {value}\n{noise}"
                ),
                key => format!("{key}: {value}\n{noise}"),
            };
            let env = |_: &str| None;
            match Config::from_yaml_str(&text, Path::new("config.yml"), &env) {
                Ok(_) => true,
                Err(error) => {
                    assert!(
                        !error.to_string().contains(secret),
                        "{at} = {value}: {error}"
                    );
                    false
                }
            }
        },
    );
}

/// `notifications.*` (this service's own section): any values under its keys load or are
/// refused, never a panic; a loaded section has a destination only with a credential set.
#[test]
fn notifications_config_takes_any_values() {
    let keys: Vec<String> = config_keys()
        .into_iter()
        .filter(|k| k.starts_with("notifications"))
        .collect();
    assert!(keys.len() >= 10, "{keys:?}");
    let value = prop_oneof![
        yaml_value(),
        select(vec![
            "xoxb-1",
            "'https://hooks.example/T/B/x'",
            "http://127.0.0.1:9/hook",
            "[C1, '#ops', U2]",
            "'#ops'",
            "https://kibana.example:5601",
        ])
        .prop_map(str::to_string),
    ];
    let line = (select(keys), value).prop_map(|(key, value)| format!("{key}: {value}"));
    check(
        "notifications",
        1_000,
        prop::collection::vec(line, 1..6),
        |lines| {
            let text = format!(
                "connectors:\n  - connector_id: abc\n    service_type: slack\n{}\n",
                lines.join("\n")
            );
            match Config::from_yaml_str(&text, Path::new("config.yml"), &|_| None) {
                Ok(loaded) => {
                    let slack = &loaded.config.notifications.slack;
                    if slack.destination().is_some() {
                        assert!(slack.bot_token.is_some() || slack.webhook_url.is_some());
                    }
                    true
                }
                Err(_) => false,
            }
        },
    );
}

/// The OAuth redirect's query (what a browser, or anyone, sends the install's loopback
/// listener): never a panic, and a code only with this install's exact `state`.
#[test]
fn oauth_callbacks_take_any_query() {
    use connectors::sources::slack::oauth::read_callback;
    let pair = (
        select(vec![
            "code", "state", "error", "x", "state%00", "", "=", "&",
        ]),
        prop_oneof![Just("s3cr3t-state".to_string()), text(), "[ -~]{0,16}"],
    )
        .prop_map(|(k, v)| format!("{k}={}", url_escape(&v)));
    let query = prop_oneof![
        prop::collection::vec(pair, 0..6).prop_map(|pairs| pairs.join("&")),
        text(),
    ];
    check(
        "oauth_callback",
        2_000,
        query,
        |query| match read_callback(&query, "s3cr3t-state") {
            Ok(code) => {
                assert!(query.contains("state=s3cr3t-state"), "{query}");
                assert!(!code.expose().is_empty());
                true
            }
            Err(_) => false,
        },
    );
}

/// Percent-escapes the characters that would split a query pair, half of the time
/// leaving the text raw (both reach the listener).
fn url_escape(text: &str) -> String {
    if text.len() % 2 == 0 {
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
    } else {
        text.to_string()
    }
}

// ---------------------------------------------------------------- connector and job documents

/// A configuration field as Kibana or an old version may have written it.
fn config_field() -> BoxedStrategy<Value> {
    object(vec![
        ("label", prop_oneof![string(text()), json_value()].boxed()),
        ("value", json_value().boxed()),
        ("default_value", json_value().boxed()),
        (
            "type",
            prop_oneof![
                select(vec!["str", "int", "float", "bool", "list", "nope"]).prop_map(|s| json!(s)),
                json_value()
            ]
            .boxed(),
        ),
        ("display", string("[a-z]{0,8}")),
        (
            "order",
            prop_oneof![(0u32..20).prop_map(|n| json!(n)), json_value()].boxed(),
        ),
        (
            "required",
            prop_oneof![any::<bool>().prop_map(Value::Bool), json_value()].boxed(),
        ),
        ("sensitive", any::<bool>().prop_map(Value::Bool).boxed()),
        ("options", json_value().boxed()),
        (
            "validations",
            prop::collection::vec(
                object(vec![
                    (
                        "type",
                        select(vec![
                            "less_than",
                            "greater_than",
                            "list_type",
                            "included_in",
                            "regex",
                            "x",
                        ])
                        .prop_map(|s| json!(s))
                        .boxed(),
                    ),
                    ("constraint", json_value().boxed()),
                ]),
                0..3,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
        (
            "depends_on",
            prop::collection::vec(
                object(vec![
                    ("field", string(text())),
                    ("value", json_value().boxed()),
                ]),
                0..2,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
    ])
}

fn rule() -> BoxedStrategy<Value> {
    object(vec![
        ("id", string("[A-Za-z0-9]{0,6}")),
        (
            "order",
            prop_oneof![any::<i64>().prop_map(|n| json!(n)), json_value()].boxed(),
        ),
        (
            "policy",
            select(vec!["include", "exclude", "x"])
                .prop_map(|s| json!(s))
                .boxed(),
        ),
        (
            "field",
            prop_oneof![
                select(vec!["_", "channel", "text", "type"]).prop_map(|s| json!(s)),
                json_value()
            ]
            .boxed(),
        ),
        (
            "rule",
            select(vec![
                "equals",
                "contains",
                "ends_with",
                "starts_with",
                "regex",
                ">",
                "<",
                "nope",
            ])
            .prop_map(|s| json!(s))
            .boxed(),
        ),
        (
            "value",
            prop_oneof![
                select(vec![
                    ".*",
                    "(",
                    "[a-",
                    "a{1000000}",
                    "\\",
                    "5",
                    "general",
                    "(?i)x+"
                ])
                .prop_map(|s| json!(s)),
                json_value()
            ]
            .boxed(),
        ),
    ])
}

fn cron() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "*/5 * * * * ?",
            "0 0 * * * ?",
            "0 0 12 ? * MON-FRI",
            "0 0 0 L * ?",
            "0 0 0 1W * ?",
            "0 0 0 ? * 6#3",
            "0 0 0 29 2 ? 2100",
            "* * * * * ? 1970",
            "0 0 0 31 11 ?",
            "0 0 0 ? * 8",
            "59 59 23 31 12 ? 2099-2100",
            "",
            "* * *",
        ])
        .prop_map(str::to_string),
        prop::collection::vec(
            prop_oneof![
                "[0-9]{1,2}",
                select(vec![
                    "*", "?", "L", "W", "#", "/", "-", ",", "MON", "JAN", "LW", "5L"
                ])
                .prop_map(str::to_string),
            ],
            0..8,
        )
        .prop_map(|parts| parts.join(" ")),
    ]
}

/// `pipeline` of a connector or job snapshot: well typed, or anything.
fn pipeline() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => object(vec![
            ("name", string("[a-z_-]{0,12}")),
            ("extract_binary_content", any::<bool>().prop_map(Value::Bool).boxed()),
            ("reduce_whitespace", any::<bool>().prop_map(Value::Bool).boxed()),
            ("run_ml_inference", any::<bool>().prop_map(Value::Bool).boxed()),
        ]),
        1 => json_value().boxed(),
    ]
    .boxed()
}

/// One side of a filtering domain (also a job snapshot's `filtering`).
fn filtering_rules() -> BoxedStrategy<Value> {
    object(vec![
        (
            "rules",
            prop::collection::vec(rule(), 0..4)
                .prop_map(Value::Array)
                .boxed(),
        ),
        ("advanced_snippet", json_value().boxed()),
        (
            "validation",
            object(vec![(
                "state",
                select(vec!["valid", "invalid", "edited"])
                    .prop_map(|s| json!(s))
                    .boxed(),
            )]),
        ),
    ])
}

/// A configuration object as Kibana, an old version or anyone may have written it.
fn configuration() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::collection::vec(
            (
                select(vec!["token", "fetch_last_n_days", "auto_join_channels", "sync_users", "x"]),
                prop_oneof![4 => config_field(), 1 => json_value().boxed()],
            ),
            0..5,
        )
        .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        1 => json_value(),
    ]
    .boxed()
}

/// `value` under `key` of `doc` when both are there (a required field: present in most
/// cases, absent or of any type in the rest).
fn with_required(
    doc: BoxedStrategy<Value>,
    key: &'static str,
    value: BoxedStrategy<Value>,
) -> BoxedStrategy<Value> {
    (
        doc,
        prop_oneof![8 => value.prop_map(Some), 1 => json_value().prop_map(Some), 1 => Just(None)],
    )
        .prop_map(move |(mut doc, value)| {
            if let (Value::Object(fields), Some(value)) = (&mut doc, value) {
                fields.insert(key.to_string(), value);
            }
            doc
        })
        .boxed()
}

/// A connector document: known keys with plausible or random values.
fn connector_doc() -> BoxedStrategy<Value> {
    let schedule = || {
        object(vec![
            (
                "enabled",
                prop_oneof![any::<bool>().prop_map(Value::Bool), json_value()].boxed(),
            ),
            (
                "interval",
                prop_oneof![string(cron()), json_value()].boxed(),
            ),
        ])
    };
    let doc = object(vec![
        ("configuration", configuration()),
        (
            "scheduling",
            object(vec![
                ("full", schedule()),
                ("incremental", schedule()),
                ("access_control", schedule()),
            ]),
        ),
        (
            "filtering",
            prop::collection::vec(
                object(vec![
                    ("domain", string(text())),
                    ("active", filtering_rules()),
                    ("draft", filtering_rules()),
                ]),
                0..2,
            )
            .prop_map(Value::Array)
            .boxed(),
        ),
        (
            "features",
            prop_oneof![Just(SlackFactory.features()), json_value()].boxed(),
        ),
        (
            "index_name",
            prop_oneof![string("[a-z-]{0,12}"), json_value()].boxed(),
        ),
        (
            "service_type",
            prop_oneof![Just(json!("slack")), json_value()].boxed(),
        ),
        (
            "last_seen",
            prop_oneof![
                Just(json!("2024-05-01T10:00:00.000000Z")),
                string(text()),
                json_value()
            ]
            .boxed(),
        ),
        ("pipeline", pipeline()),
        ("sync_now", json_value().boxed()),
    ]);
    with_required(
        doc,
        "status",
        select(vec!["created", "configured", "connected", "error"])
            .prop_map(|s| json!(s))
            .boxed(),
    )
}

/// A sync job's `connector`: the snapshot of a connector (`id` required).
fn job_connector() -> BoxedStrategy<Value> {
    let snapshot = object(vec![
        ("configuration", configuration()),
        (
            "filtering",
            prop_oneof![3 => filtering_rules(), 1 => json_value().boxed()].boxed(),
        ),
        (
            "index_name",
            prop_oneof![string("[a-z.-]{0,12}"), json_value()].boxed(),
        ),
        (
            "service_type",
            prop_oneof![Just(json!("slack")), json_value()].boxed(),
        ),
        ("language", json_value().boxed()),
        ("pipeline", pipeline()),
        ("sync_cursor", json_value().boxed()),
    ]);
    with_required(snapshot, "id", string("[A-Za-z0-9_-]{1,12}"))
}

#[test]
fn connector_documents_are_read_without_panics() {
    check(
        "connector_docs",
        1_500,
        (
            prop_oneof![4 => connector_doc(), 1 => json_value().boxed()],
            json_value(),
        ),
        |(doc, probe)| read_connector(&doc, &probe),
    );
}

#[test]
fn sync_job_documents_are_read_without_panics() {
    let job = (
        prop_oneof![4 => job_connector(), 1 => json_value().boxed()],
        prop_oneof![
            select(vec!["full", "incremental", "access_control"]).prop_map(|s| json!(s)),
            json_value()
        ],
        prop_oneof![
            select(vec![
                "pending",
                "in_progress",
                "canceling",
                "suspended",
                "error"
            ])
            .prop_map(|s| json!(s)),
            json_value()
        ],
        json_value(),
    );
    check(
        "sync_job_docs",
        1_500,
        job,
        |(connector, job_type, status, probe)| {
            let job = json!({"connector": connector, "job_type": job_type, "status": status,
                "trigger_method": "scheduled", "last_seen": "2024-05-01T10:00:00.000000Z"});
            sync_job_doc(&job, &probe)
        },
    );
}

/// A channel's part of the Slack cursor: well formed, or anything.
fn channel_cursor() -> BoxedStrategy<Value> {
    let thread = object(vec![
        ("latest_reply", string(ts())),
        ("reply_count", any::<u64>().prop_map(|n| json!(n)).boxed()),
    ]);
    prop_oneof![
        3 => (
            prop::option::of(ts()),
            prop::collection::btree_map(ts(), thread, 0..4)
        )
            .prop_map(|(latest, threads)| json!({"latest": latest, "threads": threads})),
        1 => json_value(),
    ]
    .boxed()
}

/// The connector's `sync_cursor` and a job's `metadata.resume` are read back by a later sync
/// whoever wrote them: read without panics, an unreadable one is empty (every channel then
/// gets a full read; the job starts over), and what the source writes reads back the same;
/// the decisions on a cursor entry never panic.
#[test]
fn sync_cursors_and_resume_points_are_read_without_panics() {
    use connectors::sources::slack::cursor::{
        reread_after, thread_changed, Resume, SlackCursor, ThreadState,
    };
    use connectors::sync::ResumePoint;
    let cursor = (
        prop_oneof![
            3 => prop::collection::btree_map(slack_id("C"), channel_cursor(), 0..4)
                .prop_map(|m| json!(m)),
            1 => json_value(),
        ],
        prop_oneof![string(ts()), json_value().boxed()],
        json_value(),
        (
            any::<i64>(),
            prop::option::of(any::<i64>()),
            ts(),
            ts(),
            any::<u64>(),
        ),
    );
    check(
        "sync_cursors",
        1_000,
        cursor,
        |(channels, since, junk, (lookback, window, parent, latest_reply, count))| {
            let value = json!({"channels": channels, "threads_since": since, "budgets": junk});
            let (read, error) = SlackCursor::read(Some(&value));
            let now = ThreadState {
                latest_reply: Some(latest_reply),
                reply_count: count,
            };
            let lookback = lookback / 4;
            let window = window.map(|w| w / 4);
            for entry in read.channels.values() {
                reread_after(entry, lookback, window);
                thread_changed(entry, read.threads_since, &parent, &now);
            }
            let again = SlackCursor::read(Some(&read.to_value()));
            assert_eq!(
                again,
                (read.clone(), None),
                "the cursor reads back as written"
            );
            let _ = Resume::read(value.as_object().expect("an object"));
            let _ = ResumePoint::from_metadata(&json!({"resume": value}));
            let _ = ResumePoint::from_metadata(
                &json!({"resume": {"marker": 1, "checkpoints": channels}}),
            );
            error.is_none()
        },
    );
}

/// Shrinking works on these strategies (a failure would be reported minimal): a
/// smoke check that the value trees simplify without panicking.
#[test]
fn strategies_shrink() {
    let mut runner = TestRunner::deterministic();
    for _ in 0..20 {
        let mut tree = answer().new_tree(&mut runner).expect("tree");
        for _ in 0..50 {
            if !tree.simplify() {
                break;
            }
        }
    }
}

// ---------------------------------------------------------------- saved rate budgets

/// A rate as a saved cursor might hold it: sane, zero, negative, huge, or not a number.
fn saved_rate() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => (0.001f64..100_000.0).prop_map(|f| json!(f)),
        2 => select(vec![0.0, -1.0, 1e300, f64::MIN_POSITIVE]).prop_map(|f| json!(f)),
        1 => json_value(),
    ]
    .boxed()
}

/// Mostly `good`, now and then anything.
fn mostly(good: Value) -> BoxedStrategy<Value> {
    prop_oneof![4 => Just(good), 1 => json_value()].boxed()
}

/// The `budgets` object of a connector's `sync_cursor`, as another build, a hand edit or a
/// corruption may have left it.
fn saved_budgets() -> BoxedStrategy<Value> {
    let name = prop_oneof![
        6 => select(vec!["conversations.replies", "conversations.history", "users.list"])
            .prop_map(|m| json!(m)),
        1 => json_value()
    ];
    let method = (
        name,
        saved_rate(),
        prop::option::of(saved_rate()),
        any::<bool>(),
    )
        .prop_map(|(method, per_minute, ceiling, restricted)| {
            let mut entry = json!({"method": method, "per_minute": per_minute,
                "restricted": restricted});
            if let Some(ceiling) = ceiling {
                entry["ceiling"] = ceiling;
            }
            entry
        });
    let header = object(vec![
        ("version", mostly(json!(1))),
        ("team_id", mostly(json!("T1"))),
        ("learned_at", mostly(json!(1_700_000_000))),
        ("restricted_cohort", mostly(json!(false))),
    ]);
    prop_oneof![
        4 => (header, prop::collection::vec(method, 0..6)).prop_map(|(mut header, methods)| {
            header["methods"] = Value::Array(methods);
            header
        }),
        1 => json_value(),
    ]
    .boxed()
}

/// A saved cursor's budgets are read or refused, never a panic; what is read holds only
/// finite positive rates, writes back to the same budgets, and seeds a limiter whose rates
/// stay finite and positive.
#[test]
fn saved_rate_budgets_are_read_or_refused() {
    use connectors::sources::slack::budgets::LearnedBudgets;
    use connectors::sources::slack::ratelimit::{BudgetMode, RateLimiter};
    check("saved_rate_budgets", 2_000, saved_budgets(), |saved| {
        let cursor = json!({"budgets": saved, "channels": {}});
        let Ok(Some(budgets)) = LearnedBudgets::from_sync_cursor(&cursor) else {
            return false;
        };
        for rate in budgets.methods.values() {
            assert!(
                rate.per_minute.is_finite() && rate.per_minute > 0.0,
                "{rate:?}"
            );
            assert!(
                rate.ceiling.is_none_or(|c| c.is_finite() && c > 0.0),
                "{rate:?}"
            );
        }
        let again = LearnedBudgets::from_cursor_value(&budgets.to_cursor_value());
        assert_eq!(again.as_ref(), Ok(&budgets));
        let limiter = RateLimiter::new(1.0, BudgetMode::Learned, true);
        limiter.seed(&budgets);
        for budget in limiter.budgets() {
            assert!(
                budget.rate_per_sec.is_finite() && budget.rate_per_sec > 0.0,
                "{budget:?}"
            );
        }
        true
    });
}

// ---------------------------------------------------------------- live events (issue 17)

/// A Slack event: well-typed ones of every kind we translate, with random content, and
/// arbitrary JSON.
fn slack_event() -> BoxedStrategy<Value> {
    let channel_id = || string(slack_id("C"));
    prop_oneof![
        (message(), select(vec!["C1", "C2"])).prop_map(|(mut m, c)| {
            m["type"] = json!("message");
            m["channel"] = json!(c);
            m
        }),
        (
            message(),
            select(vec!["message_changed", "message_deleted"]),
            ts(),
            prop::option::of(ts())
        )
            .prop_map(
                |(m, subtype, deleted, thread)| json!({"type": "message", "subtype": subtype,
                "channel": "C1", "message": m, "deleted_ts": deleted, "event_ts": deleted,
                "previous_message": {"ts": deleted, "thread_ts": thread}})
            ),
        (channel(), select(vec!["channel_created", "channel_rename"]))
            .prop_map(|(c, kind)| json!({"type": kind, "channel": c})),
        (
            channel_id(),
            select(vec![
                "channel_archive",
                "channel_unarchive",
                "channel_deleted"
            ])
        )
            .prop_map(|(c, kind)| json!({"type": kind, "channel": c})),
        (user(), select(vec!["user_change", "team_join"]))
            .prop_map(|(u, kind)| json!({"type": kind, "user": u})),
        json_value(),
    ]
    .boxed()
}

#[test]
fn live_events_translate_without_panics() {
    use connectors::live::LiveOp;
    use connectors::sources::slack::events::{read_delivery, EventContext};
    let mut context = EventContext::default();
    context.channels.insert("C1".into(), "general".into());
    context.channels.insert("C2".into(), "random".into());
    let context = std::sync::Mutex::new(context);
    check("live_events", 2_000, slack_event(), |event| {
        let ops = context.lock().unwrap().ops(&event);
        for op in &ops {
            if let LiveOp::Put { doc, version } = op {
                assert_eq!(doc.check(), Ok(()));
                assert!(*version >= 0 || event["type"] != "message", "{event}");
            }
        }
        // The same event inside any envelope reads or is refused, never panics.
        let body = json!({"type": "event_callback", "event_id": "Ev1", "event": event});
        let read = read_delivery(&Default::default(), body.to_string().as_bytes()).is_ok();
        let _ = read_delivery(&Default::default(), event.to_string().as_bytes());
        read && !ops.is_empty()
    });
}

#[test]
fn socket_mode_envelopes_read_without_panics() {
    use connectors::sources::slack::socket::{read_envelope, Envelope};
    let kinds = select(vec![
        "hello",
        "disconnect",
        "events_api",
        "slash_commands",
        "interactive",
        "",
    ]);
    let envelope = (
        kinds,
        prop::option::of("[a-z0-9-]{0,12}"),
        slack_event(),
        json_value(),
    )
        .prop_map(|(kind, id, event, noise)| {
            let mut value = json!({"type": kind, "retry_attempt": 0,
                "payload": {"type": "event_callback", "event_id": "Ev1", "event": event}});
            if let Some(id) = id {
                value["envelope_id"] = json!(id);
            }
            if kind.is_empty() {
                value["payload"] = noise;
            }
            value
        });
    check("socket_envelopes", 2_000, envelope, |value| {
        let read = read_envelope(&value.to_string());
        // Whatever is read as an event carries the payload's event id; an envelope to
        // acknowledge always has a non-empty id.
        if let Ok(Envelope::Envelope { envelope_id, event }) = &read {
            assert!(!envelope_id.is_empty());
            if let Some(event) = event {
                assert_eq!(event.id, "Ev1");
                assert!(event.retry);
            }
        }
        let _ = read_envelope(&value["payload"].to_string());
        matches!(read, Ok(Envelope::Envelope { event: Some(_), .. }))
    });
}
