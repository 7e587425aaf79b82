//! Entry points for fuzzing, shared by the property tests (`tests/properties.rs`, in
//! `cargo test`) and the cargo-fuzz targets (`fuzz/`, `make fuzz`), so both drive exactly the
//! code the service runs on input it does not control: Slack answers and the documents made
//! from them, `config.yml`, connector and sync-job documents.
//!
//! Each function ends in `true` (the input made a value), `false` (an error the service
//! reports), or a panic, which is what the fuzzers look for: besides the parsers' own
//! panics, the functions assert the invariants that must hold on every value (documents
//! are valid JSON, an accepted page with `has_more` has a cursor, a cron schedule moves
//! forward). Not used by the service itself.

use crate::config::Config;
use crate::protocol::connector::{
    active_filtering, configuration, draft_needs_validation, feature_enabled, heartbeat_due,
    prepare_patch, schedule_interval, sync_rules_enabled, validate_configuration, Doc,
};
use crate::protocol::job::{job_creation_problem, JobStatus};
use crate::scheduler::cron::CronSchedule;
use crate::sources::slack::answer::{decode, ApiResponse};
use crate::sources::slack::transform::{
    channel_doc, message_doc, message_id, user_doc, Channel, Message, MessageContext, Names, User,
};
use crate::sources::slack::{SlackFactory, SlackOptions};
use crate::sources::{Document, SourceFactory};
use crate::sync::rules::{validate_rules, Rules};
use crate::sync::JobKind;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// The Slack methods the source calls.
pub const SLACK_METHODS: [&str; 6] = [
    "auth.test",
    "users.list",
    "conversations.list",
    "conversations.join",
    "conversations.history",
    "conversations.replies",
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
            };
            for message in &page.items {
                let doc = message_doc(message, &ctx);
                assert_eq!(doc.id(), message_id("C1", &message.ts));
                assert_eq!(checked(&doc)["ts"], json!(message.ts.as_ref()));
            }
            assert!(!(page.ok && page.has_more && page.next_cursor().is_none()));
            page.ok
        }
        _ => decode::<Value>(method, body).is_ok_and(|page| page.ok),
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

/// Reads a connector document the way the service does (configuration and Slack options,
/// prepare, schedules, sync rules applied to `probe`, heartbeat, job checks); true when its
/// configuration made a Slack source.
pub fn connector_doc(doc: &Value, probe: &Value) -> bool {
    let hit = json!({"_id": "c1", "_seq_no": 3, "_primary_term": 1, "_source": doc});
    if let Some(read) = Doc::from_hit(&hit) {
        let _ = (read.guard(), read.str("status"));
    }
    let built = configuration(doc).is_ok_and(|configuration| {
        let _ = validate_configuration(&configuration);
        let _ = SlackOptions::from_configuration(&configuration);
        SlackFactory.build("fuzz", &configuration).is_ok()
    });
    let _ = prepare_patch(doc, &SlackFactory, Some("slack"));
    let _ = prepare_patch(doc, &SlackFactory, None);
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a valid instant");
    for kind in [JobKind::Full, JobKind::Incremental, JobKind::AccessControl] {
        let _ = feature_enabled(&doc["features"], kind);
        if let Some(Ok(schedule)) = schedule_interval(doc, kind).map(CronSchedule::parse) {
            if let Some(next) = schedule.next_after(now) {
                assert!(next > now, "{} after {now} gave {next}", schedule.as_str());
            }
        }
    }
    let _ = sync_rules_enabled(&doc["features"]);
    let filtering = active_filtering(doc).unwrap_or_default();
    if let Value::Object(fields) = probe {
        let _ = Rules::from_filtering(&filtering).includes(fields);
    }
    let _ = validate_rules(&filtering["rules"]);
    let _ = draft_needs_validation(doc);
    let _ = heartbeat_due(
        doc["last_seen"].as_str(),
        false,
        now,
        chrono::Duration::seconds(300),
    );
    let _ = job_creation_problem("c1", doc);
    built
}

/// Reads a sync-job document (its type, status and connector snapshot); true when the
/// snapshot's configuration made a Slack source.
pub fn sync_job_doc(job: &Value, probe: &Value) -> bool {
    let hit = json!({"_id": "j1", "_seq_no": 1, "_primary_term": 1, "_source": job});
    let Some(doc) = Doc::from_hit(&hit) else {
        return false;
    };
    let _ = doc.str("job_type").and_then(JobKind::parse);
    let _ = doc.str("status").and_then(JobStatus::parse);
    connector_doc(doc.at("/connector"), probe)
}
