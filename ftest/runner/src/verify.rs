//! The content index (or, with `--es-sink null`, the shim's sink) against the simulator's
//! expected set: exactly the expected ids, their key fields, and (API mode) no field the
//! ingest pipeline removes.

use crate::stack::Stack;
use crate::{INDEX, PIPELINE_FIELDS};
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use slack_sim::ExpectedDoc;
use std::collections::{BTreeMap, BTreeSet};

impl Stack {
    /// Every document of the content index: id → source.
    pub(crate) fn index_docs(&self) -> Result<BTreeMap<String, Value>> {
        self.es("POST", &format!("/{INDEX}/_refresh"), None)?;
        let mut docs = BTreeMap::new();
        let mut page = self.es(
            "POST",
            &format!("/{INDEX}/_search?scroll=2m"),
            Some(json!({"size": 5000, "sort": ["_doc"]})),
        )?;
        loop {
            let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
            if hits.is_empty() {
                break;
            }
            for hit in hits {
                docs.insert(
                    hit["_id"].as_str().unwrap_or("").to_string(),
                    hit["_source"].clone(),
                );
            }
            let scroll_id = page["_scroll_id"].as_str().unwrap_or("").to_string();
            page = self.es(
                "POST",
                "/_search/scroll",
                Some(json!({"scroll": "2m", "scroll_id": scroll_id})),
            )?;
        }
        Ok(docs)
    }

    /// With the null sink: every expected id arrived, and nothing else did.
    pub(crate) fn verify_sink(&self, expected: &[ExpectedDoc]) -> Result<()> {
        let sink = self
            .shim
            .as_ref()
            .ok_or_else(|| anyhow!("the null sink needs the ES shim"))?
            .sink();
        let stats = sink.stats();
        let missing = sink.missing(expected.iter().map(|d| d.id()));
        println!(
            "  verify (null sink): {} distinct ids received ({} writes, {} deletes, {:.1} MiB of bulk bodies), {} expected, {} missing",
            stats.distinct_ids,
            stats.writes,
            stats.deletes,
            stats.bytes as f64 / 1_048_576.0,
            expected.len(),
            missing.len()
        );
        if !missing.is_empty() || stats.distinct_ids != expected.len() as u64 {
            let shown: Vec<&str> = missing.iter().take(10).copied().collect();
            bail!(
                "the sink does not hold the expected documents: {} missing (first: {}), {} received for {} expected",
                missing.len(),
                shown.join(", "),
                stats.distinct_ids,
                expected.len()
            );
        }
        Ok(())
    }

    /// The index must hold exactly the expected ids with the expected key fields.
    pub(crate) fn verify(&self, expected: &[ExpectedDoc], check_pipeline: bool) -> Result<()> {
        let actual = self.index_docs()?;
        let wanted: BTreeMap<&str, &ExpectedDoc> = expected.iter().map(|d| (d.id(), d)).collect();
        let missing: Vec<&str> = wanted
            .keys()
            .filter(|id| !actual.contains_key(**id))
            .copied()
            .collect();
        let unexpected: Vec<&String> = actual
            .keys()
            .filter(|id| !wanted.contains_key(id.as_str()))
            .collect();
        let mut wrong = Vec::new();
        let mut pipeline_left = BTreeSet::new();
        for (id, source) in &actual {
            if let Some(doc) = wanted.get(id.as_str()) {
                for (field, want) in key_fields(doc) {
                    let got = match field {
                        "reactions" => who_reacted(source),
                        _ => source.get(field).cloned().unwrap_or(Value::Null),
                    };
                    if !same(&got, &want) {
                        wrong.push(format!("{id}.{field}: index {got} != expected {want}"));
                    }
                }
            }
            if check_pipeline {
                for field in PIPELINE_FIELDS {
                    if source.get(*field).is_some() {
                        pipeline_left.insert(*field);
                    }
                }
            }
        }
        println!(
            "  verify: {} documents in the index, {} expected, {} missing, {} unexpected, {} wrong fields{}",
            actual.len(),
            wanted.len(),
            missing.len(),
            unexpected.len(),
            wrong.len(),
            if check_pipeline { ", pipeline fields removed" } else { "" }
        );
        if missing.is_empty()
            && unexpected.is_empty()
            && wrong.is_empty()
            && pipeline_left.is_empty()
        {
            return Ok(());
        }
        let show = |items: Vec<String>| {
            items
                .into_iter()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n    ")
        };
        bail!(
            "index differs from the expected set:\n  missing ({}):\n    {}\n  unexpected ({}):\n    {}\n  wrong fields ({}):\n    {}\n  pipeline fields still present: {:?}",
            missing.len(),
            show(missing.iter().map(|s| s.to_string()).collect()),
            unexpected.len(),
            show(unexpected.iter().map(|s| s.to_string()).collect()),
            wrong.len(),
            show(wrong),
            pipeline_left
        )
    }
}

fn key_fields(doc: &ExpectedDoc) -> Vec<(&'static str, Value)> {
    let mut fields = type_fields(doc);
    if let Some(readers) = doc.allow_access_control() {
        fields.push(("_allow_access_control", json!(readers)));
    }
    fields
}

fn type_fields(doc: &ExpectedDoc) -> Vec<(&'static str, Value)> {
    match doc {
        ExpectedDoc::User { name, .. } => vec![("type", json!("user")), ("name", json!(name))],
        ExpectedDoc::Channel { name, .. } => {
            vec![("type", json!("channel")), ("name", json!(name))]
        }
        ExpectedDoc::Message {
            channel,
            channel_id,
            ts,
            thread_ts,
            reply_count,
            edited_ts,
            reactions,
            ..
        } => {
            let mut fields = vec![
                ("type", json!("message")),
                ("channel", json!(channel)),
                ("channel_id", json!(channel_id)),
                ("ts", json!(ts)),
                ("thread_ts", json!(thread_ts)),
                ("reply_count", json!(reply_count)),
                ("edited_ts", json!(edited_ts)),
            ];
            if let Some(reactions) = reactions {
                fields.push(("reactions", json!(reactions)));
            }
            fields
        }
        ExpectedDoc::Team { name, .. } => vec![("type", json!("team")), ("name", json!(name))],
        ExpectedDoc::Usergroup { name, users, .. } => vec![
            ("type", json!("usergroup")),
            ("name", json!(name)),
            ("users", json!(users)),
        ],
        ExpectedDoc::ChannelMember {
            channel_id,
            user_id,
            ..
        } => vec![
            ("type", json!("channel_member")),
            ("channel_id", json!(channel_id)),
            ("user_id", json!(user_id)),
        ],
        ExpectedDoc::File {
            name,
            channel_ids,
            content_skipped,
            ..
        } => vec![
            ("type", json!("file")),
            ("name", json!(name)),
            ("channel_ids", json!(channel_ids)),
            ("content_skipped", json!(content_skipped)),
        ],
        ExpectedDoc::RemoteFile {
            title,
            url,
            channel_ids,
            ..
        } => vec![
            ("type", json!("remote_file")),
            ("title", json!(title)),
            ("url", json!(url)),
            ("channel_ids", json!(channel_ids)),
        ],
    }
}

/// A message's `reactions` as `expected` states them (who reacted, issue 19): each
/// reaction's name, count and user ids (`user_names` is the connector's own resolution);
/// no `reactions` field is no reaction.
fn who_reacted(source: &Value) -> Value {
    let reactions = source["reactions"].as_array().cloned().unwrap_or_default();
    let projected: Vec<Value> = reactions
        .iter()
        .map(|r| json!({"name": r["name"], "count": r["count"], "users": r["users"]}))
        .collect();
    Value::Array(projected)
}

/// Equal, with null and absent the same and numbers compared by value.
fn same(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => got == want,
    }
}
