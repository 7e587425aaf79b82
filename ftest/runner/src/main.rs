//! `ftest`: the end-to-end functional test of the connector service, and the local demo.
//!
//! One run starts the whole stack on free loopback ports — osmem-server (the test
//! Elasticsearch), the ES shim in front of it (API mode only), the Slack simulator — then
//! plays Kibana's part with the `connectors` CLI (create, configure, schedule the connector),
//! runs `elastic-ingest`, and checks the index against the simulator's `expected` set:
//! ids and key fields, and (API mode) that the ingest pipeline removed its fields. It then
//! mutates the workspace (deletes, new messages, edits, late replies to old threads, a
//! rename), starts an on-demand sync, and checks again. Any mismatch exits non-zero with a
//! diff. Each round prints a report: documents, seconds, docs/s, the service's peak RSS and
//! CPU seconds, Slack calls per method and 429s served.
//!
//! In API mode the shim records every `_connector` request the service and the CLI send, and
//! the run fails unless each one is allowed by the conformance table
//! (`ftest/es-shim/conformance/`); the report counts them per endpoint. The first sync must
//! come from the schedule, with the connector `connected` and heartbeated.
//!
//! `--serve` is the demo (`make run`): after the first sync it prints the Elasticsearch URL
//! and a `curl` that searches the messages, and keeps everything running until Ctrl-C.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use slack_sim::{
    DataSize, ExpectedDoc, ExpectedQuery, FaultAction, FaultRule, Mutation, SimConfig, SimHandle,
    WorkspaceSpec,
};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONNECTOR_ID: &str = "ftest-slack";
const INDEX: &str = "search-slack";
const PIPELINE: &str = "search-default-ingestion";
/// Fields the default ingest pipeline removes (as upstream's fake Kibana creates it).
const PIPELINE_FIELDS: &[&str] = &[
    "_attachment",
    "_attachment_indexed_chars",
    "_extracted_attachment",
    "_extract_binary_content",
    "_reduce_whitespace",
    "_run_ml_inference",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `_connector` API through the ES shim.
    Api,
    /// Direct index access on plain osmem-server.
    Direct,
    /// Both, one after the other.
    Both,
}

/// Where the content index's bulk writes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EsSink {
    /// osmem-server: real indexing, full verification of ids and fields.
    Osmem,
    /// The ES shim answers content `_bulk` requests and only records ids (benchmarks:
    /// measures the connector instead of osmem's few hundred docs/s). Verification checks
    /// that every expected id arrived; the connector indices stay in osmem.
    Null,
}

#[derive(Debug, Parser)]
#[command(name = "ftest")]
struct Args {
    /// Source to test (only `slack`).
    #[arg(long, default_value = "slack")]
    name: String,
    /// Workspace size.
    #[arg(long, default_value = "small")]
    data_size: String,
    /// Protocol mode.
    #[arg(long, value_enum, default_value = "both")]
    mode: Mode,
    /// Directory holding the `elastic-ingest` and `connectors` binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Per-sync timeout, seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// `fetch_last_n_days` of the connector.
    #[arg(long, default_value_t = 180)]
    fetch_last_n_days: u32,
    /// Slack latency added by the simulator, ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Keep the stack running after the first sync (the `make run` demo).
    #[arg(long)]
    serve: bool,
    /// Where logs and configs go.
    #[arg(long, default_value = "target/ftest")]
    work_dir: PathBuf,
    /// Benchmark workspaces: override the DATA_SIZE counts.
    #[arg(long)]
    users: Option<usize>,
    #[arg(long)]
    channels: Option<usize>,
    #[arg(long)]
    messages_per_channel: Option<usize>,
    #[arg(long)]
    thread_share: Option<f64>,
    #[arg(long)]
    replies_per_thread: Option<usize>,
    /// Slack tier limits on (429 + Retry-After past the budget).
    #[arg(long)]
    rate_limits: bool,
    /// Simulator time scale (60 = a Slack minute lasts one second); the service is told the
    /// same through SLACK_TIER_SCALE.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Only the first sync (benchmarks).
    #[arg(long)]
    no_mutations: bool,
    /// Append the reports to this markdown file.
    #[arg(long)]
    report_file: Option<PathBuf>,
    /// Where content documents go (`null` implies --no-mutations).
    #[arg(long, value_enum, default_value = "osmem")]
    es_sink: EsSink,
    /// The service's `service.idling` (seconds between polls of the connector indices).
    #[arg(long, default_value_t = 0.5)]
    idling: f64,
}

fn main() {
    let args = Args::parse();
    if let Err(error) = run(&args) {
        eprintln!("ftest: FAILED: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    if args.name != "slack" {
        bail!(
            "unknown NAME `{}`: this project has one source, slack",
            args.name
        );
    }
    let size: DataSize = args.data_size.parse().map_err(|_| {
        anyhow!(
            "unknown DATA_SIZE `{}`: use small, medium or large",
            args.data_size
        )
    })?;
    for bin in ["elastic-ingest", "connectors"] {
        let path = args.bin_dir.join(bin);
        if !path.is_file() {
            bail!(
                "{} not found: build it first (cargo build --release)",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(&args.work_dir)?;
    let modes: Vec<Mode> = match (args.serve, args.mode) {
        (true, Mode::Both) => vec![Mode::Api],
        (_, Mode::Both) => vec![Mode::Api, Mode::Direct],
        (_, mode) => vec![mode],
    };
    for mode in modes {
        run_mode(args, size, mode)?;
    }
    Ok(())
}

struct Stack {
    osmem: osmem::Osmem,
    shim: Option<es_shim::ShimHandle>,
    sim: SimHandle,
    es_url: String,
    http: reqwest::blocking::Client,
}

fn run_mode(args: &Args, size: DataSize, mode: Mode) -> Result<()> {
    let label = match mode {
        Mode::Api => "api",
        _ => "direct",
    };
    println!("== ftest slack, DATA_SIZE={}, mode={label}", args.data_size);
    let started = Instant::now();
    let osmem = osmem::Osmem::start().map_err(|e| anyhow!(e))?;
    let null_sink = args.es_sink == EsSink::Null;
    let shim = if mode == Mode::Api || null_sink {
        Some(es_shim::ShimHandle::start(es_shim::ShimConfig {
            sink_indices: if null_sink {
                vec![INDEX.to_string()]
            } else {
                Vec::new()
            },
            record: mode == Mode::Api,
            ..es_shim::ShimConfig::new(osmem.url())
        })?)
    } else {
        None
    };
    let es_url = shim
        .as_ref()
        .map(|s| s.url())
        .unwrap_or_else(|| osmem.url().to_string());
    let mut spec = WorkspaceSpec::for_size(size);
    if let Some(users) = args.users {
        spec.users = users;
    }
    if let Some(channels) = args.channels {
        spec.channels = channels;
    }
    if let Some(messages) = args.messages_per_channel {
        spec.messages_per_channel = messages;
    }
    if let Some(share) = args.thread_share {
        spec.thread_share = share;
    }
    if let Some(replies) = args.replies_per_thread {
        spec.replies_per_thread = replies;
    }
    let sim = SimHandle::start(SimConfig {
        spec,
        latency_ms: args.latency_ms,
        rate_limits: args.rate_limits,
        time_scale: args.time_scale,
        ..SimConfig::default()
    })?;
    let stack = Stack {
        osmem,
        shim,
        sim,
        es_url,
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
    };
    println!(
        "stack up in {:.2} s: elasticsearch {} , slack {}",
        started.elapsed().as_secs_f64(),
        stack.es_url,
        stack.sim.api_url()
    );

    let dir = args.work_dir.join(label);
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("config.yml");
    std::fs::write(
        &config_path,
        format!(
            "elasticsearch:\n  host: {}\n  feature_use_connectors_api: {}\n  max_wait_duration: 30\n  retry_interval: 0.5\n\
             service:\n  idling: {}\n  heartbeat: 5\n  job_cleanup_interval: 30\n\
             connectors:\n  - connector_id: {CONNECTOR_ID}\n    service_type: slack\n",
            stack.es_url,
            mode == Mode::Api,
            args.idling
        ),
    )?;
    let cli = Cli {
        bin: args.bin_dir.join("connectors"),
        config: config_path.clone(),
        mode,
    };

    // Kibana's part: pipeline, connector, configuration, schedule.
    if mode == Mode::Api {
        stack.put_pipeline()?;
    }
    cli.run(&[
        "connector",
        "create",
        "--service-type",
        "slack",
        "--index-name",
        INDEX,
        "--connector-id",
        CONNECTOR_ID,
        "--name",
        "slack-functional-test",
    ])?;
    let token = format!("token={}", SimConfig::default().bot_token);
    let days = format!("fetch_last_n_days={}", args.fetch_last_n_days);
    cli.run(&[
        "connector",
        "config",
        "set",
        "-i",
        CONNECTOR_ID,
        &token,
        &days,
        "auto_join_channels=true",
        "sync_users=true",
    ])?;
    if mode == Mode::Direct {
        // Plain osmem has no ingest pipelines: run without one there.
        stack.es(
            "POST",
            "/.elastic-connectors/_update/ftest-slack?refresh=true",
            Some(json!({"doc": {"pipeline": {"name": "_none", "extract_binary_content": true, "reduce_whitespace": true, "run_ml_inference": true}}})),
        )?;
    }
    // First sync on a schedule: every 5 seconds.
    cli.run(&[
        "connector",
        "schedule",
        "set",
        "-i",
        CONNECTOR_ID,
        "--full",
        "*/5 * * * * ?",
    ])?;
    // Kibana's sync-rules editor: a draft waiting for the service's validation.
    stack.edit_draft_rules()?;

    let mut service = Service::start(
        &args.bin_dir,
        &config_path,
        &dir,
        &stack.sim.api_url(),
        mode,
        // With the simulator's limits off, the service must not pace itself at real Slack
        // rates either (a medium workspace would take an hour); with them on, it paces at
        // the simulator's time scale.
        if args.rate_limits {
            args.time_scale
        } else {
            10_000.0
        },
        args.serve,
    )?;
    let query = ExpectedQuery {
        fetch_last_n_days: args.fetch_last_n_days,
        auto_join_channels: true,
        sync_users: true,
        now: None,
    };
    let result = (|| -> Result<()> {
        let job = stack.wait_for_job(None, args.timeout, &mut service)?;
        stack.check_scheduled_and_connected(&job)?;
        cli.run(&[
            "connector",
            "schedule",
            "set",
            "-i",
            CONNECTOR_ID,
            "--disable",
        ])?;
        let expected = stack.sim.expected(&query);
        let report = stack.report("first sync (scheduled)", &job, &mut service, args)?;
        if null_sink {
            stack.verify_sink(&expected.docs)?;
        } else {
            stack.verify(&expected.docs, mode == Mode::Api)?;
        }
        println!("{report}");
        append_report(args, label, &report)?;
        if args.serve {
            return serve(&stack, &mut service);
        }
        if args.no_mutations || null_sink {
            return Ok(());
        }

        // Let a scheduled job that was already due finish, then mutate and sync on demand.
        let last = stack.wait_idle(args.timeout, &mut service)?;
        let mutations = plan_mutations(&expected.docs);
        stack.sim.mutate(mutations)?;
        stack.sim.reset_stats();
        let before = Instant::now();
        cli.run(&["job", "start", "-i", CONNECTOR_ID, "-t", "full"])?;
        let job = stack.wait_for_job(Some(&last), args.timeout, &mut service)?;
        let expected = stack.sim.expected(&query);
        let report = stack.report(
            "second sync (on demand, after mutations)",
            &job,
            &mut service,
            args,
        )?;
        stack.verify(&expected.docs, mode == Mode::Api)?;
        println!("{report}");
        append_report(args, label, &report)?;
        println!(
            "mutation round trip: {:.2} s",
            before.elapsed().as_secs_f64()
        );
        stack.cancel_a_job(&cli, &job, args.timeout, &mut service)?;

        // Slack answers conversations.list with ok:true but no `channels` (the answer that
        // once emptied an index): the job must end in error naming the method and the
        // field, after the client's retries, and the index must keep every document.
        let last = stack.wait_idle(args.timeout, &mut service)?;
        stack.sim.set_faults(vec![FaultRule {
            method: "conversations.list".into(),
            channel: None,
            after: 0,
            times: None,
            action: FaultAction::MissingField { field: None },
        }]);
        let before = Instant::now();
        cli.run(&["job", "start", "-i", CONNECTOR_ID, "-t", "full"])?;
        let job = stack.wait_for_job_end(Some(&last), args.timeout, &mut service)?;
        stack.sim.set_faults(Vec::new());
        let error = job["error"].as_str().unwrap_or("");
        if job["status"] != "error"
            || !error.contains("slack conversations.list answered ok but `channels` is missing")
        {
            bail!("a conversations.list answer without `channels` must fail the sync; the job ended {} ({error})", job["status"]);
        }
        stack.verify(&expected.docs, mode == Mode::Api)?;
        println!(
            "malformed answer round: job error after {:.1} s ({error}); every document kept",
            before.elapsed().as_secs_f64()
        );
        Ok(())
    })();
    let stopped = service.stop();
    // Everything the service and the CLI sent is in: hold it against the table (also after a
    // failure, whose cause it may name).
    let audited = match (&stack.shim, mode) {
        (Some(shim), Mode::Api) => audit_connector_api(shim),
        _ => Ok(()),
    };
    let result = result.and(audited);
    match (&result, stopped) {
        (Ok(()), Ok(())) => {
            println!(
                "== ftest slack mode={label}: PASSED in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        (Ok(()), Err(error)) => Err(error),
        (Err(_), _) => {
            eprintln!("service log: {}", service.log.display());
            result
        }
    }
}

/// The recorded `_connector` requests against the conformance table: prints the count per
/// endpoint, fails on any request the table does not allow (whatever the shim answered: the
/// service only logs a refused heartbeat).
fn audit_connector_api(shim: &es_shim::ShimHandle) -> Result<()> {
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
fn process_cpu_seconds(pid: u32) -> f64 {
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
fn append_report(args: &Args, mode: &str, report: &str) -> Result<()> {
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

/// Keeps the stack up for the demo until Ctrl-C (SIGINT) or SIGTERM, then stops it in order:
/// elastic-ingest first (one SIGTERM: it suspends running jobs while Elasticsearch is still
/// up), the rest when `run_mode` returns. A second signal kills the service at once.
///
/// The service runs in its own process group in this mode, so a terminal's Ctrl-C reaches
/// only us and the service sees exactly one signal (two would mean "exit now" to it).
fn serve(stack: &Stack, service: &mut Service) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Listen before saying so: a signal right after the ready line must find the handlers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = {
        let _context = runtime.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    println!();
    println!("The connector service is running against a simulated Slack workspace.");
    println!("Elasticsearch: {}", stack.es_url);
    println!("Search the messages:");
    println!(
        "  curl -s '{}/{INDEX}/_search?q=type:message&size=3&pretty'",
        stack.es_url
    );
    println!("Press Ctrl-C to stop everything.");
    runtime.block_on(async {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        say(format_args!(
            "{name}: stopping elastic-ingest, then the test servers (again to stop at once)"
        ));
        service.terminate();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = service.child.try_wait()? {
                say(format_args!("elastic-ingest exited ({status})"));
                break;
            }
            if Instant::now() > deadline {
                say(format_args!(
                    "elastic-ingest did not stop within 10 s: killed"
                ));
                service.kill();
                break;
            }
            tokio::select! {
                _ = term.recv() => { service.kill(); break; }
                _ = int.recv() => { service.kill(); break; }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    say(format_args!("Stopped."));
    Ok(())
}

/// A line on stdout that may fail: whoever read our output may be gone by the time we stop
/// (`println!` would panic, and the service would be killed instead of stopped).
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// A handful of changes that each sync must notice.
fn plan_mutations(docs: &[ExpectedDoc]) -> Vec<Mutation> {
    let mut plain = Vec::new();
    let mut parents = Vec::new();
    let mut channels = Vec::new();
    for doc in docs {
        match doc {
            ExpectedDoc::Message {
                channel_id,
                ts,
                thread_ts,
                reply_count,
                ..
            } => {
                if thread_ts.is_none() {
                    plain.push((channel_id.clone(), ts.clone()));
                } else if thread_ts.as_deref() == Some(ts.as_str()) && reply_count.unwrap_or(0) > 0
                {
                    parents.push((channel_id.clone(), ts.clone()));
                }
            }
            ExpectedDoc::Channel { id, .. } => channels.push(id.clone()),
            ExpectedDoc::User { .. } => {}
        }
    }
    let mut ops = Vec::new();
    for (channel, ts) in plain.iter().take(3) {
        ops.push(Mutation::DeleteMessage {
            channel: channel.clone(),
            ts: ts.clone(),
        });
    }
    for (channel, ts) in plain.iter().skip(3).take(2) {
        ops.push(Mutation::EditMessage {
            channel: channel.clone(),
            ts: ts.clone(),
            text: "edited by ftest".into(),
        });
    }
    if let Some(channel) = channels.first() {
        for i in 0..3 {
            ops.push(Mutation::AddMessage {
                channel: channel.clone(),
                user: None,
                text: format!("new message {i} from ftest"),
                thread_ts: None,
                broadcast: false,
            });
        }
    }
    for (channel, ts) in parents.iter().take(2) {
        ops.push(Mutation::AddReply {
            channel: channel.clone(),
            thread_ts: ts.clone(),
            user: None,
            text: "late reply from ftest".into(),
            broadcast: false,
        });
    }
    if let Some(channel) = channels.get(1) {
        ops.push(Mutation::RenameChannel {
            channel: channel.clone(),
            name: "renamed-by-ftest".into(),
        });
    }
    ops
}

impl Stack {
    fn es(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.es_url);
        let request = match method {
            "GET" => self.http.get(&url),
            "PUT" => self.http.put(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url),
        };
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text()?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn put_pipeline(&self) -> Result<()> {
        let processors: Vec<Value> =
            vec![json!({"remove": {"field": PIPELINE_FIELDS, "ignore_missing": true}})];
        self.es(
            "PUT",
            &format!("/_ingest/pipeline/{PIPELINE}"),
            Some(json!({
                "description": "Default ingest pipeline for search indices (ftest)",
                "processors": processors
            })),
        )?;
        Ok(())
    }

    /// The first sync came from the schedule, so the scheduler's round went through: the
    /// heartbeat reached the connector, it was validated and shown `connected`, and a job was
    /// scheduled.
    fn check_scheduled_and_connected(&self, job: &Value) -> Result<()> {
        let connector = self.es(
            "GET",
            &format!("/.elastic-connectors/_doc/{CONNECTOR_ID}"),
            None,
        )?;
        let c = &connector["_source"];
        println!(
            "  connector: status {}, last_seen {}, last_sync_scheduled_at {}; first job {}",
            c["status"], c["last_seen"], c["last_sync_scheduled_at"], job["trigger_method"]
        );
        if job["trigger_method"] != "scheduled" || c["last_sync_scheduled_at"].is_null() {
            bail!("the first job was not created by the schedule: {job}");
        }
        if c["status"] != "connected" || !c["error"].is_null() {
            bail!("the connector is not connected: {c}");
        }
        if !c["last_seen"].is_string() {
            bail!(
                "no heartbeat reached the connector (last_seen is {})",
                c["last_seen"]
            );
        }
        Ok(())
    }

    /// Marks the draft sync rules `edited`, as Kibana's editor leaves them; the scheduler must
    /// validate them and, valid, activate them before it creates the first job.
    fn edit_draft_rules(&self) -> Result<()> {
        let path = format!("/.elastic-connectors/_doc/{CONNECTOR_ID}");
        let mut filtering = self.es("GET", &path, None)?["_source"]["filtering"].clone();
        filtering[0]["draft"]["validation"] = json!({"state": "edited", "errors": []});
        self.es(
            "POST",
            &format!("/.elastic-connectors/_update/{CONNECTOR_ID}?refresh=true"),
            Some(json!({"doc": {"filtering": filtering}})),
        )?;
        Ok(())
    }

    /// A job canceled right after it is started (`connectors job cancel`): it must end
    /// `canceled`, unless the service finished it before the cancel arrived.
    fn cancel_a_job(
        &self,
        cli: &Cli,
        previous: &Value,
        timeout: u64,
        service: &mut Service,
    ) -> Result<()> {
        let started = cli.run(&[
            "-o",
            "json",
            "job",
            "start",
            "-i",
            CONNECTOR_ID,
            "-t",
            "full",
        ])?;
        let id: Value = serde_json::from_str(started.trim())?;
        let id = id["id"].as_str().unwrap_or_default().to_string();
        if let Err(error) = cli.run(&["job", "cancel", &id]) {
            let job = self.job(&id)?;
            if job["status"] != "completed" {
                return Err(error);
            }
            println!("  job {id} completed before the cancel arrived");
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(timeout);
        loop {
            service.sample();
            service.check_alive()?;
            let job = self.job(&id)?;
            match job["status"].as_str() {
                Some("canceled") => {
                    println!("  job {id} canceled");
                    return Ok(());
                }
                Some("pending" | "in_progress" | "canceling") => {}
                other => bail!(
                    "canceled job {id} ended {other:?} (previous job {})",
                    previous["id"]
                ),
            }
            if Instant::now() > deadline {
                bail!("job {id} not canceled within {timeout} s");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn job(&self, id: &str) -> Result<Value> {
        let found = self.es(
            "GET",
            &format!("/.elastic-connectors-sync-jobs/_doc/{id}"),
            None,
        )?;
        Ok(found["_source"].clone())
    }

    /// The newest job of the connector.
    fn latest_job(&self) -> Result<Option<Value>> {
        let body = json!({
            "size": 1,
            "query": {"term": {"connector.id": CONNECTOR_ID}},
            "sort": [{"created_at": {"order": "desc"}}]
        });
        let found = match self.es(
            "POST",
            "/.elastic-connectors-sync-jobs/_search?expand_wildcards=all",
            Some(body),
        ) {
            Ok(found) => found,
            Err(error) if error.to_string().contains("index_not_found") => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok(found["hits"]["hits"].get(0).map(|hit| {
            let mut job = hit["_source"].clone();
            job["id"] = hit["_id"].clone();
            job
        }))
    }

    /// Waits for a job newer than `after` to end; fails on error/canceled or timeout.
    fn wait_for_job(
        &self,
        after: Option<&Value>,
        timeout: u64,
        service: &mut Service,
    ) -> Result<Value> {
        let job = self.wait_for_job_end(after, timeout, service)?;
        match job["status"].as_str() {
            Some("completed") => Ok(job),
            status => bail!(
                "sync job {} ended {}: {}",
                job["id"],
                status.unwrap_or("?"),
                job["error"].as_str().unwrap_or("no error text")
            ),
        }
    }

    /// Waits for a job newer than `after` to end (completed, error or canceled); fails on
    /// timeout.
    fn wait_for_job_end(
        &self,
        after: Option<&Value>,
        timeout: u64,
        service: &mut Service,
    ) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        let after_id = after.map(|job| job["id"].clone());
        let mut last_status = String::new();
        loop {
            service.sample();
            service.check_alive()?;
            if let Some(job) = self.latest_job()? {
                let status = job["status"].as_str().unwrap_or("").to_string();
                if Some(&job["id"]) != after_id.as_ref() {
                    if status != last_status {
                        println!("  job {} {}", job["id"].as_str().unwrap_or("?"), status);
                        last_status = status.clone();
                    }
                    if matches!(status.as_str(), "completed" | "error" | "canceled") {
                        return Ok(job);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("no sync job completed within {timeout} s (last status `{last_status}`)");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until no job of the connector is pending or running; returns the newest job.
    fn wait_idle(&self, timeout: u64, service: &mut Service) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        loop {
            service.sample();
            let job = self.latest_job()?.ok_or_else(|| anyhow!("no job"))?;
            if matches!(
                job["status"].as_str(),
                Some("completed" | "error" | "canceled")
            ) {
                return Ok(job);
            }
            if Instant::now() > deadline {
                bail!("jobs still running after {timeout} s");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every document of the content index: id → source.
    fn index_docs(&self) -> Result<BTreeMap<String, Value>> {
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
    fn verify_sink(&self, expected: &[ExpectedDoc]) -> Result<()> {
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
    fn verify(&self, expected: &[ExpectedDoc], check_pipeline: bool) -> Result<()> {
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
                    let got = source.get(field).cloned().unwrap_or(Value::Null);
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

    fn report(
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
        let stats = self.sim.stats();
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
        let osmem_cpu = process_cpu_seconds(self.osmem.pid());
        let since_last = service.cpu_seconds - service.reported_cpu_seconds;
        service.reported_cpu_seconds = service.cpu_seconds;
        let budget = if args.rate_limits {
            format!("\n    Slack budget used: {}", budget.join(", "))
        } else {
            String::new()
        };
        Ok(format!(
            "  report: {title}\n    documents indexed {docs}, deleted {}, total in index {}\n    elapsed {seconds:.2} s, {:.0} docs/s\n    service peak RSS {:.1} MB, CPU {:.2} s (whole life so far; {:.2} s since the last report, {:.1} µs/doc; idling {} s); test Elasticsearch CPU {osmem_cpu:.1} s\n    Slack calls {} ({}), 429s served {}{budget}",
            job["deleted_document_count"].as_u64().unwrap_or(0),
            job["total_document_count"].as_u64().unwrap_or(0),
            docs as f64 / seconds.max(0.001),
            service.peak_rss_kb as f64 / 1024.0,
            service.cpu_seconds,
            since_last,
            since_last * 1e6 / docs.max(1) as f64,
            args.idling,
            stats.total_calls,
            calls.join(", "),
            stats.ratelimited_total
        ))
    }
}

fn parse_time(value: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(value.as_str()?).ok()
}

fn key_fields(doc: &ExpectedDoc) -> Vec<(&'static str, Value)> {
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
            ..
        } => vec![
            ("type", json!("message")),
            ("channel", json!(channel)),
            ("channel_id", json!(channel_id)),
            ("ts", json!(ts)),
            ("thread_ts", json!(thread_ts)),
            ("reply_count", json!(reply_count)),
            ("edited_ts", json!(edited_ts)),
        ],
    }
}

/// Equal, with null and absent the same and numbers compared by value.
fn same(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => got == want,
    }
}

struct Cli {
    bin: PathBuf,
    config: PathBuf,
    mode: Mode,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Result<String> {
        let mut command = Command::new(&self.bin);
        command.arg("-c").arg(&self.config).args(args);
        if self.mode == Mode::Direct {
            command.env("ALLOW_ES_VERSION_MISMATCH", "true");
        }
        let output = command
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let shown: Vec<&str> = args
            .iter()
            .map(|a| {
                if a.starts_with("token=") {
                    "token=…"
                } else {
                    a
                }
            })
            .collect();
        if !output.status.success() {
            bail!(
                "`connectors {}` failed ({}): {}{}",
                shown.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        println!("  connectors {}: ok", shown.join(" "));
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// The `elastic-ingest` process, with its resource usage sampled from /proc.
struct Service {
    child: Child,
    log: PathBuf,
    peak_rss_kb: u64,
    cpu_seconds: f64,
    /// `cpu_seconds` at the previous report: each report's per-document figure is for the
    /// CPU spent since (the first one includes start-up).
    reported_cpu_seconds: f64,
}

impl Service {
    fn start(
        bin_dir: &Path,
        config: &Path,
        dir: &Path,
        slack_url: &str,
        mode: Mode,
        tier_scale: f64,
        own_process_group: bool,
    ) -> Result<Service> {
        let log = dir.join("elastic-ingest.log");
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(bin_dir.join("elastic-ingest"));
        command
            .arg("-c")
            .arg(config)
            .env("SLACK_API_BASE_URL", slack_url)
            .env("SLACK_TIER_SCALE", tier_scale.to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        if mode == Mode::Direct {
            command.env("ALLOW_ES_VERSION_MISMATCH", "true");
        }
        if own_process_group {
            command.process_group(0);
        }
        // If we die before stopping it (a signal during the first sync, a panic, SIGKILL),
        // the kernel sends it the SIGTERM we could not: no orphaned service.
        // SAFETY: prctl is async-signal-safe and touches only the child being set up.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().context("starting elastic-ingest")?;
        Ok(Service {
            child,
            log,
            peak_rss_kb: 0,
            cpu_seconds: 0.0,
            reported_cpu_seconds: 0.0,
        })
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "elastic-ingest exited early ({status}); log: {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// Reads VmHWM and utime+stime while the process lives.
    fn sample(&mut self) {
        let pid = self.child.id();
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(rest) = line.strip_prefix("VmHWM:") {
                    let kb: u64 = rest
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse()
                        .unwrap_or(0);
                    self.peak_rss_kb = self.peak_rss_kb.max(kb);
                }
            }
        }
        let cpu = process_cpu_seconds(pid);
        if cpu > 0.0 {
            self.cpu_seconds = cpu;
        }
    }

    /// SIGTERM, unless it has already exited (and been reaped: its pid may be reused).
    fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status must be 0 within 10 s.
    fn stop(&mut self) -> Result<()> {
        self.sample();
        self.terminate();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                bail!(
                    "elastic-ingest exited with {status} after SIGTERM; log: {}",
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("elastic-ingest did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}
