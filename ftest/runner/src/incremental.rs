//! The incremental round (issue 16): after a full sync, the workspace changes the way a day
//! of Slack does — new messages in three channels, a new reply to a thread about two days
//! old, an edit and a deletion inside the thread look-back, a new channel with messages —
//! then an incremental job runs. The index must equal the simulator's expected set, and the
//! job's Slack calls must be at most channels + changed threads + 5 (`auth.test`,
//! `users.list` and `conversations.list` pages, and slack), `auth.test` counted once
//! ([`job_calls`]).

use crate::cli::Cli;
use crate::report::{append_report, job_calls};
use crate::scenario::Picks;
use crate::service::Service;
use crate::stack::Stack;
use crate::{Args, CONNECTOR_ID};
use anyhow::{bail, Result};
use slack_sim::{ExpectedDoc, ExpectedQuery, Mutation};

/// The name of the channel the round creates.
const NEW_CHANNEL: &str = "ftest-incremental";
const DAY: f64 = 86_400.0;

/// What the round measured.
pub(crate) struct IncrementalCalls {
    /// Slack calls of the incremental job.
    pub(crate) calls: u64,
    /// Its allowance: channels + changed threads + 5.
    pub(crate) bound: u64,
}

impl Stack {
    /// Mutates, runs an incremental job, verifies the index and the call count.
    pub(crate) fn incremental_round(
        &self,
        cli: &Cli,
        service: &mut Service,
        args: &Args,
        query: &ExpectedQuery,
        check_pipeline: bool,
        label: &str,
    ) -> Result<IncrementalCalls> {
        let last = self.wait_idle(args.timeout, service)?;
        let before = self.sim.expected(query);
        let now = self.sim.now() as f64;
        let (mutations, changed_threads) = plan_incremental(&before.docs, now);
        println!(
            "incremental round: {} mutations ({changed_threads} thread(s) with a new reply)",
            mutations.len()
        );
        self.sim.mutate(mutations)?;
        self.sim.reset_stats();
        cli.run(&["job", "start", "-i", CONNECTOR_ID, "-t", "incremental"])?;
        let job = self.wait_for_job(Some(&last), args.timeout, service)?;
        if job["job_type"] != "incremental" {
            bail!("expected an incremental job, got {}", job["job_type"]);
        }
        let expected = self.sim.expected(query);
        let report = self.report("incremental sync (after mutations)", &job, service, args)?;
        self.verify(&expected.docs, check_pipeline)?;
        println!("{report}");
        append_report(args, label, &report)?;
        let channels = expected
            .docs
            .iter()
            .filter(|d| matches!(d, ExpectedDoc::Channel { .. }))
            .count() as u64;
        let stats = self.sim.stats();
        let measured = IncrementalCalls {
            calls: job_calls(&stats, 1),
            bound: channels + changed_threads + 5,
        };
        println!(
            "incremental sync: {} Slack calls, auth.test counted once (allowed: {channels} channels + {changed_threads} changed thread(s) + 5 = {}); {:?}",
            measured.calls, measured.bound, stats.calls
        );
        if measured.calls > measured.bound {
            bail!(
                "the incremental sync made {} Slack calls, more than {}",
                measured.calls,
                measured.bound
            );
        }
        Ok(measured)
    }
}

/// Seconds of a Slack ts.
fn ts_secs(ts: &str) -> f64 {
    ts.parse().unwrap_or(0.0)
}

/// The round's mutations, and how many threads get a new reply (pure).
fn plan_incremental(docs: &[ExpectedDoc], now: f64) -> (Vec<Mutation>, u64) {
    let picks = Picks::of(docs);
    let channels = picks.channels;
    // Plain messages inside the look-back (well inside: a day to ten days old).
    let age = |ts: &str| now - ts_secs(ts);
    let recent_plain: Vec<(String, String)> = picks
        .plain
        .into_iter()
        .filter(|(_, ts)| (DAY..10.0 * DAY).contains(&age(ts)))
        .collect();
    let mut parents: Vec<(String, String, f64)> = picks
        .parents
        .into_iter()
        .map(|(channel, ts)| {
            let age = age(&ts);
            (channel, ts, age)
        })
        .collect();
    let mut ops = Vec::new();
    for channel in channels.iter().take(3) {
        ops.push(Mutation::AddMessage {
            channel: channel.clone(),
            user: None,
            text: "new message from the incremental round".into(),
            thread_ts: None,
            broadcast: false,
        });
    }
    // The thread closest to two days old.
    parents.sort_by(|a, b| (a.2 - 2.0 * DAY).abs().total_cmp(&(b.2 - 2.0 * DAY).abs()));
    let mut changed_threads = 0;
    if let Some((channel, ts, _)) = parents.first() {
        ops.push(Mutation::AddReply {
            channel: channel.clone(),
            thread_ts: ts.clone(),
            user: None,
            text: "a new reply to a recent thread".into(),
            broadcast: false,
        });
        changed_threads += 1;
    }
    if let Some((channel, ts)) = recent_plain.first() {
        ops.push(Mutation::EditMessage {
            channel: channel.clone(),
            ts: ts.clone(),
            text: "edited inside the look-back".into(),
        });
    }
    if let Some((channel, ts)) = recent_plain.get(1) {
        ops.push(Mutation::DeleteMessage {
            channel: channel.clone(),
            ts: ts.clone(),
        });
    }
    ops.push(Mutation::AddChannel {
        name: NEW_CHANNEL.into(),
        private: false,
        bot_member: true,
        archived: false,
    });
    for i in 0..2 {
        ops.push(Mutation::AddMessage {
            channel: NEW_CHANNEL.into(),
            user: None,
            text: format!("message {i} in a new channel"),
            thread_ts: None,
            broadcast: false,
        });
    }
    (ops, changed_threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(channel_id: &str, ts: f64, thread: Option<f64>, replies: u64) -> ExpectedDoc {
        let ts = format!("{ts:.6}");
        ExpectedDoc::Message {
            id: format!("{channel_id}-{ts}"),
            channel: "c".into(),
            channel_id: channel_id.into(),
            thread_ts: thread.map(|t| format!("{t:.6}")),
            ts,
            reply_count: (replies > 0).then_some(replies),
            edited_ts: None,
            reactions: None,
            allow_access_control: None,
        }
    }

    #[test]
    fn the_plan_touches_the_look_back_and_the_thread_closest_to_two_days() {
        let now = 100.0 * DAY;
        let docs = vec![
            ExpectedDoc::Channel {
                id: "C1".into(),
                name: Some("one".into()),
                allow_access_control: None,
            },
            message("C1", now - 3.0 * DAY, None, 0),
            message("C1", now - 4.0 * DAY, None, 0),
            message("C1", now - 50.0 * DAY, None, 0),
            message("C1", now - 30.0 * DAY, Some(now - 30.0 * DAY), 2),
            message("C1", now - 2.5 * DAY, Some(now - 2.5 * DAY), 1),
        ];
        let (ops, changed) = plan_incremental(&docs, now);
        assert_eq!(changed, 1);
        assert!(ops.iter().any(|op| matches!(op,
            Mutation::AddReply { thread_ts, .. } if ts_secs(thread_ts) == now - 2.5 * DAY)));
        assert!(ops.iter().any(|op| matches!(op,
            Mutation::EditMessage { ts, .. } if ts_secs(ts) == now - 3.0 * DAY)));
        assert!(ops.iter().any(|op| matches!(op,
            Mutation::DeleteMessage { ts, .. } if ts_secs(ts) == now - 4.0 * DAY)));
        assert!(ops
            .iter()
            .any(|op| matches!(op, Mutation::AddChannel { name, .. } if name == NEW_CHANNEL)));
    }
}
