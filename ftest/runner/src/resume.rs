//! `--interrupt kill|term` (issue 16): a full sync interrupted halfway and resumed.
//!
//! After the first (scheduled) sync, an uninterrupted on-demand full sync gives the baseline
//! count of Slack calls. A second on-demand full sync is interrupted once at least half of
//! the channels are recorded done in its job's `metadata.resume`: `kill` sends SIGKILL (the
//! job stays `in_progress`; the restarted service's cleanup hands it back after
//! `service.job_idle_timeout`), `term` sends SIGTERM (the service must exit 0 and leave the
//! job `suspended`). A new service then resumes the same job: it must complete, the index
//! must equal the expected set exactly, and the interrupted job's Slack calls (before and
//! after the interruption) must be at most 10% more than the baseline's, `auth.test` counted
//! once per run of the job ([`job_calls`]: the service's connector check calls it on every
//! poll, so the rest counts the wall time, such as the idle timeout of a killed job).
//!
//! The test is meant for Slack as the bottleneck (`--rate-limits --time-scale 20`): with
//! Slack's limits off and the test Elasticsearch indexing a few hundred documents a second,
//! the source runs a bulk pipeline (up to `max_concurrency` requests of `queue_max_size`
//! documents) ahead of what is durable, and all of that is fetched again after a SIGKILL.

use crate::cli::Cli;
use crate::report::{append_report, job_calls};
use crate::service::Service;
use crate::stack::Stack;
use crate::{Args, CONNECTOR_ID};
use anyhow::{bail, Result};
use clap::ValueEnum;
use serde_json::Value;
use slack_sim::{ExpectedDoc, ExpectedQuery};
use std::time::{Duration, Instant};

/// How the service is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Interrupt {
    /// SIGKILL: the process dies; the job is orphaned.
    Kill,
    /// SIGTERM: the service suspends the job and exits.
    Term,
}

/// The restarted service's cleanup settings (the orphaned job is handed back after this many
/// seconds without a heartbeat; the job heartbeats every 10 s at most, with its progress
/// every second).
pub(crate) const IDLE_TIMEOUT_SECS: u64 = 15;
pub(crate) const CLEANUP_INTERVAL_SECS: u64 = 2;

/// How to start a service again (the arguments of [`Service::start`]).
pub(crate) struct Restart<'a> {
    pub(crate) args: &'a Args,
    pub(crate) config: &'a std::path::Path,
    pub(crate) dir: &'a std::path::Path,
    pub(crate) mode: crate::Mode,
    pub(crate) tier_scale: f64,
}

impl Stack {
    /// The interrupted-and-resumed round (see the module docs).
    pub(crate) fn interrupted_round(
        &self,
        cli: &Cli,
        service: &mut Service,
        restart: &Restart<'_>,
        query: &ExpectedQuery,
        interrupt: Interrupt,
        label: &str,
    ) -> Result<()> {
        let args = restart.args;
        let check_pipeline = restart.mode == crate::Mode::Api;
        // The baseline: an uninterrupted full re-sync.
        let last = self.wait_idle(args.timeout, service)?;
        self.sim.reset_stats();
        cli.run(&["job", "start", "-i", CONNECTOR_ID, "-t", "full"])?;
        let baseline_job = self.wait_for_job(Some(&last), args.timeout, service)?;
        let baseline = job_calls(&self.sim.stats(), 1);
        let report = self.report("full re-sync (baseline)", &baseline_job, service, args)?;
        println!("{report}");
        append_report(args, label, &report)?;

        // The interrupted one.
        let expected = self.sim.expected(query);
        let channels = expected
            .docs
            .iter()
            .filter(|d| matches!(d, ExpectedDoc::Channel { .. }))
            .count();
        self.sim.reset_stats();
        cli.run(&["job", "start", "-i", CONNECTOR_ID, "-t", "full"])?;
        let job_id = self.wait_for_half(&baseline_job, channels, args.timeout, service)?;
        let calls_before = job_calls(&self.sim.stats(), 1);
        match interrupt {
            Interrupt::Kill => {
                service.kill();
                println!(
                    "  SIGKILL sent to the service halfway ({calls_before} Slack calls so far)"
                );
            }
            Interrupt::Term => {
                service.stop()?;
                let job = self.job(&job_id)?;
                if job["status"] != "suspended" {
                    bail!(
                        "after SIGTERM the job must be suspended, it is {}",
                        job["status"]
                    );
                }
                println!(
                    "  SIGTERM: the service exited 0 and the job is suspended ({} channel(s) recorded, {calls_before} Slack calls so far)",
                    recorded_channels(&job).0
                );
            }
        }
        let old_log = restart.dir.join("elastic-ingest.before-interrupt.log");
        std::fs::rename(&service.log, &old_log)?;
        *service = Service::start(
            &args.bin_dir,
            restart.config,
            restart.dir,
            &self.sim.api_url(),
            restart.mode,
            restart.tier_scale,
            false,
        )?;
        let resumed = Instant::now();
        let job = self.wait_for_job(Some(&baseline_job), args.timeout, service)?;
        if job["id"] != Value::String(job_id.clone()) {
            bail!(
                "a new job ran ({}) instead of the interrupted one ({job_id})",
                job["id"]
            );
        }
        let calls = job_calls(&self.sim.stats(), 2);
        let report = self.report(
            &format!("full sync interrupted ({interrupt:?}) and resumed"),
            &job,
            service,
            args,
        )?;
        self.verify(&expected.docs, check_pipeline)?;
        println!("{report}");
        append_report(args, label, &report)?;
        let extra = calls as f64 / baseline.max(1) as f64 - 1.0;
        println!(
            "resume ({interrupt:?}): the job completed {:.1} s after the restart (orphaned {}); Slack calls (auth.test once per run) {calls} ({calls_before} before the interruption) vs {baseline} uninterrupted: {:+.1}%",
            resumed.elapsed().as_secs_f64(),
            job["metadata"]["orphaned"].as_u64().unwrap_or(0),
            extra * 100.0
        );
        if extra > 0.10 {
            bail!("the resumed job made {calls} Slack calls, more than 10% above {baseline}");
        }
        Ok(())
    }

    /// Waits until the newest job (newer than `after`) has recorded at least half of the
    /// `channels` done; returns its id.
    fn wait_for_half(
        &self,
        after: &Value,
        channels: usize,
        timeout: u64,
        service: &mut Service,
    ) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        loop {
            service.check_alive()?;
            if let Some(job) = self.latest_job()? {
                if job["id"] != after["id"] {
                    let (done, _) = recorded_channels(&job);
                    if job["status"] == "in_progress" && done * 2 >= channels {
                        return Ok(job["id"].as_str().unwrap_or_default().to_string());
                    }
                    if matches!(
                        job["status"].as_str(),
                        Some("completed" | "error" | "canceled")
                    ) {
                        bail!("the job ended {} before it was halfway: slow Slack down with --latency-ms", job["status"]);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("the job did not get halfway within {timeout} s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Channels a job's recorded progress calls done, and started.
fn recorded_channels(job: &Value) -> (usize, usize) {
    let Some(points) = job["metadata"]["resume"]["checkpoints"].as_object() else {
        return (0, 0);
    };
    let done = points.values().filter(|p| p["done"] == true).count();
    let started = points
        .iter()
        .filter(|(key, p)| key.as_str() != "window" && p["done"] != true)
        .count();
    (done, started)
}
