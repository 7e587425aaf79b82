//! The whole-workspace rounds (issue 19, `--workspace`): the first sync runs with every
//! document type on (users, channels, messages, the team, user groups, channel members,
//! files, remote files) and who reacted to each message (`sync_reaction_users`: every
//! message's reactions with all their users, `reactions.get` completing the lists history
//! cuts short) and is verified like any other against the simulator's `expected` set; then one
//! full sync per filter of the connector's form, each set through the CLI as Kibana would,
//! and verified exactly against `expected` for that filter (ids and key fields). Each round
//! also checks that the documents the filter removes (in the all-on set, not in the
//! filtered one) are absent from the index, that the filter removed some (a filter that
//! drops nothing proves nothing), that it added none, and that the job's sweep deleted
//! exactly what left the index since the previous round. A last round with every filter
//! off must bring the all-on set back.
//!
//! All rounds share one index, as a user's successive filter changes do: each round's full
//! sync rewrites every document it keeps and its sweep deletes the ones the filter drops,
//! and the next round must bring them back (a fresh index per round would cost as much and
//! would not show the sweep deleting exactly the filtered documents). The mass-deletion
//! guard (`service.max_deletion_ratio`, default 0.5) stays at its default: each filter value
//! is chosen to remove some but less than half of the index (a unit test below holds the
//! choice against the medium and small workspaces), so the rounds also show that ordinary
//! filter changes pass the guard. Narrowing an index by more than half is what the guard is
//! for; the README says to raise the ratio for such a change.
//!
//! Pipeline fields (API mode): the documents the source does not date (the team, channel
//! members, user groups without dates) are written with a bulk `update`, whose partial
//! `doc` no ingest pipeline processes, so they keep `_extract_binary_content`,
//! `_reduce_whitespace` and `_run_ml_inference`. The rounds count them and fail on any
//! other document that keeps them ([`UNDATED_TYPES`]); see the issue notes.

use crate::cli::Cli;
use crate::service::Service;
use crate::stack::Stack;
use crate::{Args, CONNECTOR_ID, PIPELINE_FIELDS};
use anyhow::{bail, Result};
use slack_sim::{ExpectedDoc, ExpectedQuery};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// The connector fields `--workspace` sets: every document type of issue 19, and who
/// reacted.
pub(crate) const WORKSPACE_FIELDS: &[&str] = &[
    "sync_team=true",
    "sync_user_groups=true",
    "sync_channel_members=true",
    "sync_files=true",
    "sync_remote_files=true",
    "sync_reaction_users=true",
];

/// The expected query with every document type on, and who reacted.
pub(crate) fn workspace_query(query: ExpectedQuery) -> ExpectedQuery {
    ExpectedQuery {
        sync_team: true,
        sync_user_groups: true,
        sync_channel_members: true,
        sync_files: true,
        sync_remote_files: true,
        sync_reaction_users: true,
        ..query
    }
}

/// The six filters of the form, off (each round sets all six: one on, the others off).
const FILTERS_OFF: &[(&str, &str)] = &[
    ("exclude_archived_channels", "false"),
    ("channels_include", ""),
    ("channels_exclude", ""),
    ("exclude_bot_messages", "false"),
    ("exclude_channel_event_messages", "false"),
    ("start_date", ""),
];

/// Document types the source writes without `_timestamp` (bulk `update`: the ingest
/// pipeline does not remove its fields from them).
pub(crate) const UNDATED_TYPES: &[&str] = &["team", "usergroup", "channel_member"];

/// Conversations named `dev-…`, `ops-…` or `sales…` (patterns never match an id: ids are
/// upper case).
const EXCLUDE_PATTERN: &str = "/^(dev-|ops-|sales)/";
/// Conversations whose name starts with a letter from `a` to `p` (`general`,
/// `engineering`, `marketing`, …; not `random`, `support`, `日本チーム`, …).
const INCLUDE_PATTERN: &str = "/^[a-p]/";
/// The start date's distance from now: later than `fetch_last_n_days` (180), so it wins.
const START_DAYS_BACK: i64 = 120;

/// One filter round: its name, the form values it sets and the query `expected` answers.
pub(crate) struct FilterRound {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) query: ExpectedQuery,
}

impl FilterRound {
    /// `key=value` for the six filters: this round's on, the others off.
    fn settings(&self) -> Vec<String> {
        FILTERS_OFF
            .iter()
            .map(|(key, off)| {
                let value = if *key == self.name { &self.value } else { *off };
                format!("{key}={value}")
            })
            .collect()
    }
}

/// The filter rounds, in order, then the round that turns every filter off again.
pub(crate) fn filter_rounds(all_on: &ExpectedQuery, now: i64) -> Vec<FilterRound> {
    let day = 86_400;
    // Midnight UTC, START_DAYS_BACK days ago: `YYYY-MM-DD` is the form's format.
    let start = (now - START_DAYS_BACK * day).div_euclid(day) * day;
    let date = chrono::DateTime::from_timestamp(start, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let round = |name, value: String, query| FilterRound { name, value, query };
    vec![
        round(
            "exclude_archived_channels",
            "true".into(),
            ExpectedQuery {
                exclude_archived_channels: true,
                ..all_on.clone()
            },
        ),
        round(
            "channels_include",
            INCLUDE_PATTERN.into(),
            ExpectedQuery {
                channels_include: vec![INCLUDE_PATTERN.into()],
                ..all_on.clone()
            },
        ),
        round(
            "channels_exclude",
            EXCLUDE_PATTERN.into(),
            ExpectedQuery {
                channels_exclude: vec![EXCLUDE_PATTERN.into()],
                ..all_on.clone()
            },
        ),
        round(
            "exclude_bot_messages",
            "true".into(),
            ExpectedQuery {
                exclude_bot_messages: true,
                ..all_on.clone()
            },
        ),
        round(
            "exclude_channel_event_messages",
            "true".into(),
            ExpectedQuery {
                exclude_channel_event_messages: true,
                ..all_on.clone()
            },
        ),
        round(
            "start_date",
            date,
            ExpectedQuery {
                start_date: Some(start),
                ..all_on.clone()
            },
        ),
        round("every filter off", String::new(), all_on.clone()),
    ]
}

/// Prints the first sync's `metadata.reactions` and fails unless `reactions.get` completed
/// some lists: the simulator cuts popular reactions' users short in history, so a sync
/// that completed none did not fetch who reacted (the verification would then fail on
/// those messages anyway; this says why).
pub(crate) fn check_reactions(job: &serde_json::Value) -> Result<()> {
    let reactions = &job["metadata"]["reactions"];
    println!("  who reacted: metadata.reactions {reactions}");
    if reactions["lists_completed"].as_u64().unwrap_or(0) == 0 {
        bail!("sync_reaction_users on, but no reactions.get completed a list: {reactions}");
    }
    Ok(())
}

/// Documents by type, for the report: `message 412, channel 3`.
fn by_type<'a>(docs: impl IntoIterator<Item = &'a ExpectedDoc>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for doc in docs {
        *counts.entry(doc.doc_type()).or_default() += 1;
    }
    let shown: Vec<String> = counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

impl Stack {
    /// API mode: no document keeps a field the ingest pipeline removes, except the undated
    /// types (see the module docs), which are counted.
    pub(crate) fn check_pipeline_fields(&self) -> Result<usize> {
        let mut undated = 0;
        let mut others = Vec::new();
        for (id, source) in self.index_docs()? {
            if PIPELINE_FIELDS.iter().any(|f| source.get(*f).is_some()) {
                let kind = source["type"].as_str().unwrap_or("");
                if UNDATED_TYPES.contains(&kind) {
                    undated += 1;
                } else {
                    others.push(format!("{id} ({kind})"));
                }
            }
        }
        if !others.is_empty() {
            bail!(
                "{} documents keep fields the ingest pipeline removes: {:?}",
                others.len(),
                others.iter().take(5).collect::<Vec<_>>()
            );
        }
        println!(
            "  pipeline fields removed, except on {undated} undated documents (team, user groups, channel members: bulk update)"
        );
        Ok(undated)
    }

    /// The filter rounds after the all-on first sync (see the module docs).
    pub(crate) fn workspace_rounds(
        &self,
        cli: &Cli,
        service: &mut Service,
        args: &Args,
        all_on: &ExpectedQuery,
        check_pipeline: bool,
    ) -> Result<()> {
        let started = Instant::now();
        let all = self.sim.expected(all_on);
        println!(
            "workspace rounds: all-on set {} documents ({})",
            all.docs.len(),
            by_type(&all.docs)
        );
        let all_ids: BTreeSet<&str> = all.docs.iter().map(ExpectedDoc::id).collect();
        let mut previous: BTreeSet<String> = all_ids.iter().map(|s| s.to_string()).collect();
        let mut summary = Vec::new();
        for round in filter_rounds(all_on, self.sim.now()) {
            let last = self.wait_idle(args.timeout, service)?;
            let settings = round.settings();
            let mut command = vec!["connector", "config", "set", "-i", CONNECTOR_ID];
            command.extend(settings.iter().map(String::as_str));
            cli.run(&command)?;
            let before = Instant::now();
            cli.run(&["job", "start", "-i", CONNECTOR_ID, "-t", "full"])?;
            let job = self.wait_for_job(Some(&last), args.timeout, service)?;
            let seconds = before.elapsed().as_secs_f64();
            let expected = self.sim.expected(&round.query);
            let title = if round.value.is_empty() {
                round.name.to_string()
            } else {
                format!("{}={}", round.name, round.value)
            };
            println!("  round {title}");
            self.verify(&expected.docs, false)?;
            if check_pipeline {
                self.check_pipeline_fields()?;
            }
            let wanted: BTreeSet<&str> = expected.docs.iter().map(ExpectedDoc::id).collect();
            let added: Vec<&&str> = wanted.difference(&all_ids).take(5).collect();
            if !added.is_empty() {
                bail!("{title}: the filter adds documents to the all-on set: {added:?}");
            }
            let removed: Vec<&ExpectedDoc> = all
                .docs
                .iter()
                .filter(|d| !wanted.contains(d.id()))
                .collect();
            let index = self.index_docs()?;
            let present: Vec<&str> = removed
                .iter()
                .map(|d| d.id())
                .filter(|id| index.contains_key(*id))
                .take(5)
                .collect();
            if !present.is_empty() {
                bail!("{title}: documents the filter removes are in the index: {present:?}");
            }
            let filter_on = !round.value.is_empty();
            if filter_on && removed.is_empty() {
                bail!("{title} removed no document of the workspace: pick a value that filters");
            }
            // What the sweep had to delete: in the index after the previous round, not in
            // this round's set.
            let left = previous
                .iter()
                .filter(|id| !wanted.contains(id.as_str()))
                .count() as u64;
            let deleted = job["deleted_document_count"].as_u64().unwrap_or(0);
            if deleted != left {
                bail!("{title}: the job deleted {deleted} documents; {left} left the expected set since the previous round");
            }
            let line = format!(
                "{title}: {} documents absent ({}), job deleted {deleted}, wrote {}, {seconds:.1} s; index = expected ({} documents)",
                removed.len(),
                by_type(removed.iter().copied()),
                job["indexed_document_count"],
                expected.docs.len()
            );
            println!("  {line}");
            summary.push(line);
            previous = wanted.iter().map(|s| s.to_string()).collect();
        }
        service.sample();
        println!(
            "workspace rounds: {} rounds in {:.1} s, every index exact; service peak RSS over the run {:.1} MB",
            summary.len(),
            started.elapsed().as_secs_f64(),
            service.peak_rss_kb as f64 / 1024.0
        );
        for line in summary {
            println!("    {line}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slack_sim::{DataSize, SimConfig, SimHandle, WorkspaceSpec};

    /// Each filter value removes some documents of the workspace and less than half of the
    /// index it starts from (the mass-deletion guard's default would refuse more).
    fn holds_for(size: DataSize) {
        let sim = SimHandle::start(SimConfig {
            spec: WorkspaceSpec::for_size(size),
            ..SimConfig::default()
        })
        .unwrap();
        let all_on = workspace_query(ExpectedQuery {
            auto_join_channels: true,
            sync_users: true,
            ..ExpectedQuery::default()
        });
        let all = sim.expected(&all_on);
        let all_ids: BTreeSet<String> = all.docs.iter().map(|d| d.id().to_string()).collect();
        let mut previous = all_ids.clone();
        for round in filter_rounds(&all_on, sim.now()) {
            let ids: BTreeSet<String> = sim
                .expected(&round.query)
                .docs
                .iter()
                .map(|d| d.id().to_string())
                .collect();
            assert!(ids.is_subset(&all_ids), "{size:?} {}", round.name);
            let removed = all_ids.len() - ids.len();
            if round.value.is_empty() {
                assert_eq!(removed, 0);
            } else {
                assert!(removed > 0, "{size:?} {} removes nothing", round.name);
            }
            let stale = previous.difference(&ids).count();
            let total = previous.union(&ids).count();
            assert!(
                (stale as f64) < 0.5 * total as f64,
                "{size:?} {}: the sweep deletes {stale} of {total}",
                round.name
            );
            previous = ids;
        }
    }

    #[test]
    fn each_filter_value_filters_and_passes_the_guard() {
        holds_for(DataSize::Small);
        holds_for(DataSize::Medium);
    }

    #[test]
    fn a_round_sets_its_filter_and_turns_the_others_off() {
        let rounds = filter_rounds(&ExpectedQuery::default(), 1_780_000_000);
        assert_eq!(rounds.len(), FILTERS_OFF.len() + 1);
        let start = rounds.iter().find(|r| r.name == "start_date").unwrap();
        let settings = start.settings();
        assert_eq!(settings.len(), 6);
        assert!(settings.contains(&"channels_include=".to_string()));
        assert!(settings.iter().any(|s| s.starts_with("start_date=20")));
        let last = rounds.last().unwrap();
        assert_eq!(
            last.settings(),
            FILTERS_OFF
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        );
    }
}
