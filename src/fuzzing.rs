//! Entry points for fuzzing, shared by the property tests (`tests/properties.rs`, in
//! `cargo test`) and the cargo-fuzz targets (`fuzz/`, `make fuzz`), so both drive exactly the
//! code the service runs on input it does not control: Slack answers and the documents made
//! from them, `config.yml`, connector and sync-job documents (read into their typed views,
//! then everything the service decides on a view).
//!
//! Each function ends in `true` (the input made a value), `false` (an error the service
//! reports), or a panic, which is what the fuzzers look for: besides the parsers' own
//! panics, the functions assert the invariants that must hold on every value (documents
//! are valid JSON, an accepted page with `has_more` has a cursor, a cron schedule moves
//! forward). Not used by the service itself.

use crate::config::Config;
use crate::protocol::connector::{
    configuration, heartbeat_due, prepare_patch, validate_configuration, Connector, Filter,
    Pipeline,
};
use crate::protocol::doc::{Doc, View};
use crate::protocol::job::{job_creation_problem, new_job_doc, SyncJob};
use crate::scheduler::cron::CronSchedule;
use crate::sources::slack::access::decode_user_info;
use crate::sources::slack::answer::{decode, ApiResponse};
use crate::sources::slack::client::Head;
use crate::sources::slack::identity;
use crate::sources::slack::reactions::{decode_reactions_get, with_full_reactions};
use crate::sources::slack::transform::{
    channel_doc, message_doc, message_id, user_doc, Channel, Message, MessageContext, Names, User,
};
use crate::sources::slack::workspace::{decode_team_info, team_doc, usergroup_doc, UserGroup};
use crate::sources::slack::{SlackFactory, SlackOptions};
use crate::sources::{Document, SourceFactory};
use crate::sync::rules::{validate_rules, Rules};
use crate::sync::JobKind;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// The Slack methods the source calls.
pub const SLACK_METHODS: [&str; 8] = [
    "auth.test",
    "users.list",
    "conversations.list",
    "conversations.join",
    "conversations.history",
    "conversations.replies",
    "conversations.members",
    "users.info",
];

/// Decodes `body` as an answer of `method` with the source's item type and makes every
/// item into its document; true when an `ok:true` answer was accepted.
pub fn slack_answer(method: &str, body: &[u8]) -> bool {
    let mut names = Names::default();
    let base = Some("https://a.slack.com");
    match method {
        "users.list" => decode::<User>(method, body).is_ok_and(|page| {
            for user in &page.items {
                names.add(user);
                let doc = user_doc(user);
                assert_eq!(doc.id(), user.id);
                checked(&doc);
            }
            page.ok
        }),
        "conversations.list" => decode::<Channel>(method, body).is_ok_and(|page| {
            for channel in &page.items {
                let doc = channel_doc(channel, &names, base);
                assert_eq!(doc.id(), channel.id);
                checked(&doc);
            }
            page.ok
        }),
        "conversations.history" | "conversations.replies" => {
            let Ok(page): Result<ApiResponse<Message<'_>>, _> = decode(method, body) else {
                return false;
            };
            let channels = HashMap::from([("C1".to_string(), "general".to_string())]);
            let ctx = MessageContext {
                channel_id: "C1",
                channel_name: "general",
                names: &names,
                channels: &channels,
                base,
                reaction_users: true,
            };
            for message in &page.items {
                let doc = message_doc(message, &ctx);
                assert_eq!(doc.id(), message_id("C1", &message.ts));
                assert_eq!(checked(&doc)["ts"], json!(message.ts.as_ref()));
            }
            assert!(!(page.ok && page.has_more && page.next_cursor().is_none()));
            page.ok
        }
        // Access-control syncs: member ids, and a member of another workspace made into
        // an identity document.
        "conversations.members" => decode::<String>(method, body).is_ok_and(|page| page.ok),
        "users.info" => {
            let head = Head {
                method,
                scopes: None,
                retry_after: None,
            };
            decode_user_info(body, &head).is_ok_and(|user| {
                let identities = identity::user_identities(&user, "T1", ["C1"]);
                let doc = identity::identity_doc(user.id.clone(), &user, "T1", &identities);
                assert_eq!(doc.id(), user.id);
                checked(&doc);
                true
            })
        }
        _ => decode::<Value>(method, body).is_ok_and(|page| page.ok),
    }
}

/// Issue 19's workspace methods, beside [`SLACK_METHODS`] (kept apart: a content sync calls
/// them only when `sync_team`, `sync_user_groups` or `sync_reaction_users` is on).
pub const WORKSPACE_METHODS: [&str; 3] = ["team.info", "usergroups.list", "reactions.get"];

/// Decodes `body` as an answer of one of [`WORKSPACE_METHODS`] the way the source does and
/// makes its documents: `Ok(n)` when the answer was accepted and made `n` documents (for
/// `reactions.get`, `n` reactions written into a message document, each with as many
/// names as users), or the error's text (which the property tests hold to naming the
/// method).
pub fn workspace_answer(method: &str, body: &[u8]) -> Result<usize, String> {
    let head = Head {
        method,
        scopes: None,
        retry_after: None,
    };
    match method {
        "team.info" => decode_team_info(body, &head)
            .map(|team| {
                let doc = team_doc(&team);
                assert_eq!(doc.id(), team.id);
                assert_eq!(checked(&doc)["type"], "team");
                1
            })
            .map_err(|e| e.to_string()),
        "usergroups.list" => head
            .decode::<UserGroup>(body)
            .map(|page| {
                let names = Names::default();
                for group in &page.items {
                    let doc = usergroup_doc(group, &names);
                    assert_eq!(doc.id(), group.id);
                    let fields = checked(&doc);
                    let users = group.users.as_ref().map_or(0, Vec::len);
                    assert_eq!(fields["user_count"], json!(users));
                }
                page.items.len()
            })
            .map_err(|e| e.to_string()),
        "reactions.get" => decode_reactions_get(body, &head)
            .map(|full| {
                let names = Names::default();
                let message = Document::from_fields(
                    "C1-1.000001".into(),
                    Map::from_iter([("type".to_string(), json!("message"))]),
                );
                let doc = with_full_reactions(&message, &full, &names);
                assert_eq!(doc.id(), message.id());
                let fields = checked(&doc);
                let written = fields.get("reactions").and_then(Value::as_array);
                for (reaction, entry) in full.iter().zip(written.into_iter().flatten()) {
                    assert_eq!(entry["users"], json!(reaction.users));
                    assert_eq!(
                        entry["user_names"].as_array().map(Vec::len),
                        Some(reaction.users.len())
                    );
                }
                written.map_or(0, Vec::len)
            })
            .map_err(|e| e.to_string()),
        other => Err(format!("{other} is not a workspace method")),
    }
}

/// The fields of a document that keeps the engine's contract (a JSON object without the
/// engine's keys, `_timestamp` as typed: [`Document::check`]); panics otherwise.
fn checked(doc: &Document) -> Map<String, Value> {
    if let Err(problem) = doc.check() {
        panic!("{problem}: {}", String::from_utf8_lossy(doc.body()));
    }
    doc.fields()
}

/// Loads `text` as `config.yml` (`ES_HOST` is the only variable set); true when it loads.
pub fn config_yml(text: &str) -> bool {
    let env = |name: &str| (name == "ES_HOST").then(|| "es.example:9200".to_string());
    match Config::from_yaml_str(text, Path::new("config.yml"), &env) {
        Ok(loaded) => {
            let ratio = loaded.config.service.max_deletion_ratio;
            assert!((0.0..=1.0).contains(&ratio), "{ratio}");
            true
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            false
        }
    }
}

/// Reads `source` (a document with id `id`) into its view `T` as the store does; `None`
/// when it is no document or does not read (the error must name the document). A view keeps
/// every field of the document that is not null.
fn read_view<T: View + serde::Serialize>(id: &str, source: &Value) -> Option<T> {
    let hit = json!({"_id": id, "_seq_no": 3, "_primary_term": 1, "_source": source});
    let read = match Doc::from_hit(&hit)?.read::<T>() {
        Ok(read) => read,
        Err(error) => {
            assert!(error.to_string().contains(&format!("[{id}]")), "{error}");
            return None;
        }
    };
    assert_eq!(read.guard(), Some((3, 1)));
    let kept = serde_json::to_value(&read.source).expect("a view serializes");
    for (key, value) in source.as_object().into_iter().flatten() {
        assert!(
            value.is_null() || kept.get(key).is_some(),
            "the view lost `{key}`: {source} read as {kept}"
        );
    }
    Some(read.source)
}

/// Builds a Slack source from a stored configuration; true when it could be.
fn slack_source_from(stored: &Value) -> bool {
    configuration(stored).is_ok_and(|configuration| {
        let _ = validate_configuration(&configuration);
        let _ = SlackOptions::from_configuration(&configuration);
        SlackFactory.build("fuzz", &configuration).is_ok()
    })
}

/// Applies a filter's rules to `probe` (an object), as a sync does.
fn apply_rules(filter: Option<&Filter>, probe: &Value) {
    let filtering = filter.map(Filter::to_value).unwrap_or_default();
    if let Value::Object(fields) = probe {
        let _ = Rules::from_filtering(&filtering).includes(fields);
    }
    let _ = validate_rules(filter.map_or(&Value::Null, |f| &f.rules));
}

/// Reads a connector document the way the service does (its view, then configuration and
/// Slack options, prepare, schedules, sync rules applied to `probe`, heartbeat, the job it
/// would start, which must read back as a job); true when its configuration made a Slack
/// source.
pub fn connector_doc(doc: &Value, probe: &Value) -> bool {
    let Some(connector) = read_view::<Connector>("c1", doc) else {
        return false;
    };
    let built = slack_source_from(&connector.configuration);
    let _ = prepare_patch(&connector, &SlackFactory, Some("slack"));
    let _ = prepare_patch(&connector, &SlackFactory, None);
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a valid instant");
    for kind in [JobKind::Full, JobKind::Incremental, JobKind::AccessControl] {
        let _ = (
            connector.feature_enabled(kind),
            connector.scheduled_at(kind),
        );
        if let Some(Ok(schedule)) = connector.schedule_interval(kind).map(CronSchedule::parse) {
            if let Some(next) = schedule.next_after(now) {
                assert!(next > now, "{} after {now} gave {next}", schedule.as_str());
            }
        }
        match new_job_doc("c1", &connector, kind, "scheduled", "2024-05-01T10:00:00Z") {
            Ok(job) => assert!(
                read_view::<SyncJob>("j1", &job).is_some(),
                "a job we write must read: {job}"
            ),
            Err(problem) => assert_eq!(job_creation_problem("c1", &connector), Some(problem)),
        }
    }
    let _ = connector.sync_rules_enabled();
    apply_rules(connector.active_filtering(), probe);
    if let Some(draft) = connector.draft_needs_validation() {
        let _ = validate_rules(&draft.rules);
    }
    let _ = heartbeat_due(
        connector.last_seen.as_deref(),
        false,
        now,
        chrono::Duration::seconds(300),
    );
    built
}

/// Reads a sync-job document the way the runner does (its view: type, status and the
/// connector snapshot's configuration, sync rules applied to `probe`, pipeline); true when
/// the snapshot's configuration made a Slack source.
pub fn sync_job_doc(job: &Value, probe: &Value) -> bool {
    let Some(job) = read_view::<SyncJob>("j1", job) else {
        return false;
    };
    let _ = (job.job_type.as_str(), job.status.is_runnable());
    let snapshot = &job.connector;
    apply_rules(snapshot.filtering.as_ref(), probe);
    let _ = snapshot.pipeline.as_ref().map(Pipeline::settings);
    slack_source_from(&snapshot.configuration)
}
