//! What a run prints and keeps: the per-round report (documents, seconds, the service's
//! peak RSS and CPU, the test Elasticsearch's CPU, Slack calls and budget), `--report-file`,
//! and the conformance audit of the recorded `_connector` requests.

use crate::service::Service;
use crate::stack::Stack;
use crate::Args;
use anyhow::{bail, Result};
use serde_json::Value;

impl Stack {
    pub(crate) fn report(
        &self,
        title: &str,
        job: &Value,
        service: &mut Service,
        args: &Args,
    ) -> Result<String> {
        service.sample();
        let started = parse_time(&job["started_at"]);
        let completed = parse_time(&job["completed_at"]);
        let seconds = match (started, completed) {
            (Some(s), Some(c)) => (c - s).num_milliseconds() as f64 / 1000.0,
            _ => f64::NAN,
        };
        let docs = job["indexed_document_count"].as_u64().unwrap_or(0);
        // The figures at the job's end when they were sampled then (a later job may be
        // running by now), else now.
        let end = self
            .job_end
            .borrow_mut()
            .take()
            .filter(|end| end.job_id == job["id"]);
        let service_cpu = end.as_ref().map_or(service.cpu_seconds, |e| e.service_cpu);
        let osmem_cpu = end
            .as_ref()
            .map_or_else(|| process_cpu_seconds(self.osmem.pid()), |e| e.osmem_cpu);
        let stats = end.map_or_else(|| self.sim.stats(), |e| e.stats);
        let calls: Vec<String> = stats
            .calls
            .iter()
            .map(|(m, n)| format!("{m}={n}"))
            .collect();
        // Share of the Slack budget: calls per (scaled) minute against the tier, per method;
        // the busiest method bounds the sync.
        let minutes = seconds.max(0.001) / 60.0 * args.time_scale;
        let mut budget = Vec::new();
        for (method, calls) in &stats.calls {
            if let Some((per_minute, _burst)) = slack_sim::state::tier(method) {
                let share = *calls as f64 / minutes / per_minute;
                if *calls >= 10 {
                    budget.push(format!("{method} {:.0}%", share * 100.0));
                }
            }
        }
        // The job's `indexed_document_volume` (MiB of document sources the service sent).
        let volume_mib = job["indexed_document_volume"].as_u64().unwrap_or(0);
        let since_last = service_cpu - service.reported_cpu_seconds;
        service.reported_cpu_seconds = service_cpu;
        let mut budget = if args.rate_limits {
            format!("\n    Slack budget used: {}", budget.join(", "))
        } else {
            String::new()
        };
        budget.push_str(&crate::budget::lines(
            &stats,
            &self.sim.rate_settings(),
            job,
        ));
        Ok(format!(
            "  report: {title}\n    documents indexed {docs}, deleted {}, total in index {}\n    elapsed {seconds:.2} s, {:.0} docs/s\n    service peak RSS {:.1} MB, CPU {:.2} s (whole life to the job's end; {:.2} s since the last report, {:.1} µs/doc; idling {} s); test Elasticsearch CPU {osmem_cpu:.1} s\n    bulk volume {volume_mib} MiB ({:.0} B/doc)\n    Slack calls {} ({}), 429s served {}{budget}",
            job["deleted_document_count"].as_u64().unwrap_or(0),
            job["total_document_count"].as_u64().unwrap_or(0),
            docs as f64 / seconds.max(0.001),
            service.peak_rss_kb as f64 / 1024.0,
            service_cpu,
            since_last,
            since_last * 1e6 / docs.max(1) as f64,
            args.idling,
            volume_mib as f64 * 1_048_576.0 / docs.max(1) as f64,
            stats.total_calls,
            calls.join(", "),
            stats.ratelimited_total
        ))
    }
}

fn parse_time(value: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(value.as_str()?).ok()
}

/// The recorded `_connector` requests against the conformance table: prints the count per
/// endpoint, fails on any request the table does not allow (whatever the shim answered: the
/// service only logs a refused heartbeat).
pub(crate) fn audit_connector_api(shim: &es_shim::ShimHandle) -> Result<()> {
    let recorded = shim.recorder().connector_requests();
    let audit = es_shim::conformance::audit(es_shim::conformance::table(), &recorded);
    println!(
        "  conformance: {} _connector requests from the service and the CLI, {} outside the table",
        recorded.len(),
        audit.violations.len()
    );
    for (endpoint, count) in &audit.counts {
        println!("    {count:>5}  {endpoint}");
    }
    let others: Vec<String> = shim
        .recorder()
        .other_counts()
        .iter()
        .map(|(shape, n)| format!("{shape} {n}"))
        .collect();
    println!("  other requests: {}", others.join(", "));
    if audit.violations.is_empty() {
        return Ok(());
    }
    for violation in &audit.violations {
        println!("  NOT ALLOWED: {violation}");
    }
    bail!(
        "{} request(s) the conformance table does not allow (ftest/es-shim/conformance/)",
        audit.violations.len()
    )
}

/// utime + stime of a process, seconds (0 when it is gone).
pub(crate) fn process_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

/// Appends a report to `--report-file` with the date, machine and command.
pub(crate) fn append_report(args: &Args, mode: &str, report: &str) -> Result<()> {
    let Some(path) = &args.report_file else {
        return Ok(());
    };
    let command: Vec<String> = std::env::args().collect();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024 / 1024)
        .unwrap_or(0);
    let text = format!(
        "\n### {} — ftest mode={mode}\n\nMachine: {cores} cores, {memory} GiB. Command: `{}`\n\n```\n{report}\n```\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        command.join(" ")
    );
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// A job's Slack calls in the simulator's counters since their reset, with `auth.test`
/// counted once per run of the job: each run asks it once (validation, ping and fetch share
/// the answer); the others are the service's connector check, made on every poll whether or
/// not a job runs (as the Python service's ping), so they measure wall time, not work.
pub(crate) fn job_calls(stats: &slack_sim::SimStats, runs: u64) -> u64 {
    let auth = stats.calls.get("auth.test").copied().unwrap_or(0);
    stats.total_calls - auth + auth.min(runs)
}
