//! Any JSON as a connector document, or (first byte odd) as the `connector` of a sync-job
//! document: every reader of the service ends in a value or an error, never a panic.
#![no_main]

use connectors::protocol::connector::{
    active_filtering, configuration, draft_needs_validation, feature_enabled, heartbeat_due,
    prepare_patch, schedule_interval, sync_rules_enabled, validate_configuration, Doc,
};
use connectors::protocol::job::{job_creation_problem, JobStatus};
use connectors::scheduler::cron::CronSchedule;
use connectors::sources::slack::{SlackFactory, SlackOptions};
use connectors::sources::SourceFactory;
use connectors::sync::rules::{validate_rules, Rules};
use connectors::sync::JobKind;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let source = if pick % 2 == 1 {
        json!({"connector": value, "job_type": "full", "status": "pending"})
    } else {
        value
    };
    let Some(doc) =
        Doc::from_hit(&json!({"_id": "x", "_seq_no": 1, "_primary_term": 1, "_source": source}))
    else {
        return;
    };
    let _ = doc.str("job_type").and_then(JobKind::parse);
    let _ = doc.str("status").and_then(JobStatus::parse);
    let connector = if pick % 2 == 1 {
        doc.at("/connector")
    } else {
        &doc.source
    };
    if let Ok(config) = configuration(connector) {
        let _ = validate_configuration(&config);
        let _ = SlackOptions::from_configuration(&config);
        let _ = SlackFactory.build(&config);
    }
    let _ = prepare_patch(connector, &SlackFactory, None);
    let now = chrono_now();
    for kind in [JobKind::Full, JobKind::Incremental, JobKind::AccessControl] {
        let _ = feature_enabled(&connector["features"], kind);
        if let Some(Ok(schedule)) = schedule_interval(connector, kind).map(CronSchedule::parse) {
            let _ = schedule.next_after(now);
        }
    }
    let _ = sync_rules_enabled(&connector["features"]);
    let filtering = active_filtering(connector).unwrap_or_default();
    let rules = Rules::from_filtering(&filtering);
    if let Some(fields) = connector["probe"].as_object() {
        let _ = rules.includes(fields);
    }
    let _ = validate_rules(&filtering["rules"]);
    let _ = draft_needs_validation(connector);
    let _ = heartbeat_due(
        connector["last_seen"].as_str(),
        false,
        now,
        chrono::Duration::seconds(300),
    );
    let _ = job_creation_problem("x", connector);
});

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a valid instant")
}
