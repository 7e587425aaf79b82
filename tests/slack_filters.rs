//! The connector form's filters (issue 19), end to end through the Slack source against
//! the simulator: each filter is set in the connector's configuration (the fields Kibana
//! renders), and the documents produced must be exactly the simulator's `expected` set for
//! that filter, which is the unfiltered set minus exactly the filtered documents. Also
//! the message fields of issue 19: `reactions`, `files`, `pinned_to`, and attachment text
//! in `body`.

use connectors::sources::slack::{default_configuration, SlackOptions, SlackSource};
use connectors::sources::{DocOp, SourceError};
use serde_json::{json, Map, Value};
use slack_sim::{DataSize, ExpectedQuery, SimHandle, WorkspaceSpec};
use std::collections::{BTreeMap, BTreeSet};

mod common;

use common::{start, NOW, TOKEN};

/// Options from a configuration with `fields` set, pointed at `sim` like the other tests.
fn options(sim: &SimHandle, fields: &[(&str, Value)]) -> Result<SlackOptions, SourceError> {
    let mut config = default_configuration();
    config.get_mut("token").unwrap().value = json!(TOKEN);
    config.get_mut("fetch_last_n_days").unwrap().value = json!(0);
    for (key, value) in fields {
        config
            .get_mut(*key)
            .unwrap_or_else(|| panic!("the form has no field {key}"))
            .value = value.clone();
    }
    let from_form = SlackOptions::from_configuration(&config)?;
    let test = common::slack_options(sim, from_form.fetch_last_n_days, false, true);
    Ok(SlackOptions {
        base_url: test.base_url,
        now: test.now,
        pace: test.pace,
        request_timeout: test.request_timeout,
        retry: test.retry,
        ..from_form
    })
}

/// A full fetch's documents by id.
async fn docs(options: SlackOptions) -> BTreeMap<String, Map<String, Value>> {
    let source = SlackSource::new(options).expect("source builds");
    let (result, ops) = common::fetch_all(&source).await;
    result.expect("sync succeeds");
    ops.into_iter()
        .map(|op| match op {
            DocOp::Index(doc) => (doc.id().to_string(), doc.fields()),
            other => panic!("a full sync only indexes, got {other:?}"),
        })
        .collect()
}

/// What `options` configures before the filters: all history, users, no auto-join.
fn base() -> ExpectedQuery {
    ExpectedQuery {
        fetch_last_n_days: 0,
        ..ExpectedQuery::default()
    }
}

fn query(q: ExpectedQuery) -> ExpectedQuery {
    ExpectedQuery {
        now: Some(NOW),
        ..q
    }
}

fn ids<'a>(docs: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    docs.into_iter().cloned().collect()
}

/// Runs the filter `fields`, checks the result against `expected` for `q`, and returns the
/// documents of `all` the filter removed (never none: a filter test that filters nothing
/// proves nothing).
async fn filtered(
    sim: &SimHandle,
    all: &BTreeMap<String, Map<String, Value>>,
    fields: &[(&str, Value)],
    q: ExpectedQuery,
) -> Vec<Map<String, Value>> {
    let got = docs(options(sim, fields).unwrap()).await;
    let want: BTreeSet<String> = sim
        .expected(&query(q))
        .docs
        .iter()
        .map(|d| d.id().to_string())
        .collect();
    let got_ids = ids(got.keys());
    assert_eq!(
        got_ids.len(),
        want.len(),
        "{fields:?}: missing {:?}, unexpected {:?}",
        want.difference(&got_ids).take(5).collect::<Vec<_>>(),
        got_ids.difference(&want).take(5).collect::<Vec<_>>()
    );
    assert_eq!(got_ids, want, "{fields:?}");
    assert!(got_ids.is_subset(&ids(all.keys())), "{fields:?}");
    let removed: Vec<_> = all
        .iter()
        .filter(|(id, _)| !got.contains_key(*id))
        .map(|(_, d)| d.clone())
        .collect();
    assert!(!removed.is_empty(), "{fields:?} removed nothing");
    removed
}

fn str_of<'a>(doc: &'a Map<String, Value>, key: &str) -> &'a str {
    doc.get(key).and_then(Value::as_str).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_removes_exactly_its_documents() {
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    let all = docs(options(&sim, &[]).unwrap()).await;
    assert_eq!(
        ids(all.keys()),
        sim.expected(&query(base()))
            .docs
            .iter()
            .map(|d| d.id().to_string())
            .collect(),
        "no filter"
    );
    let channels: Vec<(&String, &Map<String, Value>)> = all
        .iter()
        .filter(|(_, d)| str_of(d, "type") == "channel")
        .collect();
    let channel_of = |doc: &Map<String, Value>| -> String {
        match str_of(doc, "type") {
            "channel" => doc
                .get("name")
                .and_then(Value::as_str)
                .map_or(String::new(), str::to_string),
            _ => str_of(doc, "channel").to_string(),
        }
    };

    // Archived channels: their channel documents and their messages, nothing else.
    let archived: BTreeSet<String> = channels
        .iter()
        .filter(|(_, d)| d.get("is_archived") == Some(&json!(true)))
        .map(|(_, d)| channel_of(d))
        .collect();
    let removed = filtered(
        &sim,
        &all,
        &[("exclude_archived_channels", json!(true))],
        ExpectedQuery {
            exclude_archived_channels: true,
            ..base()
        },
    )
    .await;
    assert!(removed.iter().all(|d| archived.contains(&channel_of(d))));

    // Include by name, by id and by pattern; exclude by pattern; exclude wins.
    let names: Vec<String> = channels.iter().map(|(_, d)| channel_of(d)).collect();
    let (first, second) = (&names[0], channels[1].0.clone());
    let prefix = format!("/^{}/", regex_escape(&names[2][..3]));
    let include = json!(format!("#{first}, {second}, {prefix}"));
    let kept = |d: &Map<String, Value>, id: &str| {
        let name = channel_of(d);
        name == *first || id == second || name.starts_with(&names[2][..3])
    };
    let removed = filtered(
        &sim,
        &all,
        &[("channels_include", include)],
        ExpectedQuery {
            channels_include: vec![format!("#{first}"), second.clone(), prefix.clone()],
            ..base()
        },
    )
    .await;
    for d in &removed {
        assert_ne!(str_of(d, "type"), "user", "users are not channel-filtered");
        let cid = match str_of(d, "type") {
            "channel" => channels
                .iter()
                .find(|(_, c)| channel_of(c) == channel_of(d))
                .unwrap()
                .0
                .clone(),
            _ => str_of(d, "channel_id").to_string(),
        };
        assert!(!kept(d, &cid), "{d:?}");
    }
    let removed = filtered(
        &sim,
        &all,
        &[
            ("channels_include", json!([prefix.clone()])),
            ("channels_exclude", json!(prefix.clone())),
        ],
        ExpectedQuery {
            channels_include: vec![prefix.clone()],
            channels_exclude: vec![prefix.clone()],
            ..base()
        },
    )
    .await;
    // Nothing of any channel is left: the exclude list wins.
    let left = all.len() - removed.len();
    let users = all.values().filter(|d| str_of(d, "type") == "user").count();
    assert_eq!(left, users, "only users remain when include = exclude");

    // Bot messages: only `bot_message` documents go; replies in bots' threads stay.
    let removed = filtered(
        &sim,
        &all,
        &[("exclude_bot_messages", json!("yes"))],
        ExpectedQuery {
            exclude_bot_messages: true,
            ..base()
        },
    )
    .await;
    assert!(removed
        .iter()
        .all(|d| str_of(d, "subtype") == "bot_message"));
    let bot_parents: BTreeSet<&str> = removed
        .iter()
        .filter(|d| d.get("reply_count").and_then(Value::as_u64).unwrap_or(0) > 0)
        .map(|d| str_of(d, "ts"))
        .collect();
    let removed_ts: BTreeSet<&str> = removed.iter().map(|d| str_of(d, "ts")).collect();
    let kept_replies = all
        .values()
        .filter(|d| bot_parents.contains(str_of(d, "thread_ts")))
        .filter(|d| !removed_ts.contains(str_of(d, "ts")))
        .count();
    if !bot_parents.is_empty() {
        assert!(kept_replies > 0, "the replies of bots' threads stay");
    }

    // Join, leave and topic notices.
    let removed = filtered(
        &sim,
        &all,
        &[("exclude_channel_event_messages", json!(true))],
        ExpectedQuery {
            exclude_channel_event_messages: true,
            ..base()
        },
    )
    .await;
    assert!(removed
        .iter()
        .all(|d| str_of(d, "subtype") == "channel_join"));

    // A start date 30 days back is the same window as 30 days; with 10 days too, the
    // later bound (10 days) wins.
    let start = NOW - 30 * 86_400;
    let date = chrono::DateTime::from_timestamp(start, 0)
        .unwrap()
        .to_rfc3339();
    let removed = filtered(
        &sim,
        &all,
        &[("start_date", json!(date))],
        ExpectedQuery {
            start_date: Some(start),
            ..base()
        },
    )
    .await;
    assert!(removed.iter().all(|d| str_of(d, "type") == "message"));
    let thirty_days = sim.expected(&query(ExpectedQuery {
        fetch_last_n_days: 30,
        ..base()
    }));
    assert_eq!(all.len() - removed.len(), thirty_days.total);
    let removed = filtered(
        &sim,
        &all,
        &[
            ("start_date", json!(date)),
            ("fetch_last_n_days", json!(10)),
        ],
        ExpectedQuery {
            start_date: Some(start),
            fetch_last_n_days: 10,
            ..base()
        },
    )
    .await;
    let ten_days = sim.expected(&query(ExpectedQuery {
        fetch_last_n_days: 10,
        ..base()
    }));
    assert_eq!(all.len() - removed.len(), ten_days.total);
}

/// Escapes a channel-name prefix for a pattern (names are `[a-z0-9_-]`, but be safe).
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = !c.is_ascii_alphanumeric() && c != '_';
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

#[test]
fn bad_filter_input_names_the_field() {
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    for (key, value, needle) in [
        ("channels_include", json!("/([/"), "Only these channels"),
        (
            "channels_exclude",
            json!(["ok", "/a{2,1}/"]),
            "Leave out these channels",
        ),
        ("start_date", json!("31/01/2024"), "start_date"),
        ("start_date", json!("2999-01-01"), "future"),
        (
            "exclude_bot_messages",
            json!("sometimes"),
            "Leave out bot messages",
        ),
        (
            "exclude_archived_channels",
            json!([1]),
            "Leave out archived channels",
        ),
    ] {
        let error = options(&sim, &[(key, value.clone())]).unwrap_err();
        assert!(
            matches!(&error, SourceError::Configuration(m) if m.contains(needle)),
            "{key}={value}: {error}"
        );
    }
    // Every filter field has a tooltip and a default the form shows.
    let config = default_configuration();
    for key in [
        "exclude_archived_channels",
        "channels_include",
        "channels_exclude",
        "exclude_bot_messages",
        "exclude_channel_event_messages",
        "start_date",
    ] {
        let field = &config[key];
        assert!(
            field.tooltip.as_deref().is_some_and(|t| t.len() > 40),
            "{key}"
        );
        assert!(!field.required, "{key} is optional");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_reactions_files_pins_and_attachment_text() {
    let sim = start(WorkspaceSpec::for_size(DataSize::Small));
    let all = docs(options(&sim, &[]).unwrap()).await;
    let messages: Vec<&Map<String, Value>> = all
        .values()
        .filter(|d| str_of(d, "type") == "message")
        .collect();
    let with = |key: &str| messages.iter().filter(|d| d.contains_key(key)).count();
    let (reactions, files, pins) = (with("reactions"), with("files"), with("pinned_to"));
    println!(
        "{} messages: {reactions} with reactions, {files} with files, {pins} pinned",
        messages.len()
    );
    assert!(reactions > 0 && files > 0 && pins > 0);
    for d in &messages {
        if let Some(list) = d.get("reactions") {
            for r in list.as_array().unwrap() {
                assert!(!str_of(r.as_object().unwrap(), "name").is_empty(), "{d:?}");
                assert!(r["count"].as_u64().unwrap() >= 1, "{d:?}");
                assert_eq!(r.as_object().unwrap().len(), 2, "name and count only");
            }
        }
        if str_of(d, "subtype") == "file_share" {
            let ids = d["files"].as_array().expect("a file share has files");
            assert!(
                ids.iter().all(|i| i.as_str().unwrap().starts_with('F')),
                "{d:?}"
            );
        }
        if let Some(pins) = d.get("pinned_to") {
            assert_eq!(pins, &json!([str_of(d, "channel_id")]));
        }
        if str_of(d, "subtype") == "bot_message" {
            // The simulator's bots post an attachment ("Build #n finished: ...").
            assert!(str_of(d, "body").contains("Build #"), "{d:?}");
        }
    }
}
