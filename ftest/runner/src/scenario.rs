//! One mode's run: the stack up, Kibana's part through the CLI (pipeline, connector,
//! configuration, schedule, draft sync rules), then the rounds: the first sync from the
//! schedule, an incremental round ([`crate::incremental`]), mutations and an on-demand
//! sync, a canceled job, a malformed Slack answer; or, with `--interrupt`, the resume
//! round ([`crate::resume`]).

use crate::cli::Cli;
use crate::report::{append_report, audit_connector_api};
use crate::serve::serve;
use crate::service::Service;
use crate::stack::Stack;
use crate::{Args, EsSink, Mode, CONNECTOR_ID, INDEX};
use anyhow::{anyhow, bail, Result};
use serde_json::json;
use slack_sim::{
    DataSize, ExpectedDoc, ExpectedQuery, FaultAction, FaultRule, Mutation, SimConfig, SimHandle,
    WorkspaceSpec,
};
use std::time::{Duration, Instant};

pub(crate) fn run_mode(args: &Args, size: DataSize, mode: Mode) -> Result<()> {
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
        rate_grant: args.rate_grant,
        restricted_cohort: args.restricted_cohort,
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
        job_end: Default::default(),
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
    // The resume round needs the cleanup to hand an orphaned job back within seconds.
    let cleanup = match args.interrupt {
        Some(_) => format!(
            "{}\n  job_idle_timeout: {}",
            crate::resume::CLEANUP_INTERVAL_SECS,
            crate::resume::IDLE_TIMEOUT_SECS
        ),
        None => "30".to_string(),
    };
    // The live round receives Slack's events on the service's listener.
    let live_port = if args.live {
        Some(crate::live::free_port()?)
    } else {
        None
    };
    let listen = live_port
        .map(|port| format!("\n  http:\n    listen: \"127.0.0.1:{port}\""))
        .unwrap_or_default();
    std::fs::write(
        &config_path,
        format!(
            "elasticsearch:\n  host: {}\n  feature_use_connectors_api: {}\n  max_wait_duration: 30\n  retry_interval: 0.5\n\
             service:\n  idling: {}\n  heartbeat: 5\n  job_cleanup_interval: {cleanup}{listen}\n\
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
    let mut settings = vec![
        "connector",
        "config",
        "set",
        "-i",
        CONNECTOR_ID,
        &token,
        &days,
        if args.no_auto_join {
            "auto_join_channels=false"
        } else {
            "auto_join_channels=true"
        },
        "sync_users=true",
    ];
    let budget = args
        .rate_budget
        .as_ref()
        .map(|b| format!("rate_budget={b}"));
    settings.extend(budget.as_deref());
    if args.dls {
        settings.extend(crate::dls::DLS_FIELDS);
    }
    if args.files {
        settings.push("sync_files=true");
    }
    if args.workspace {
        settings.extend(crate::workspace::WORKSPACE_FIELDS);
    }
    let pipeline_cap = args
        .pipeline_file_mb
        .map(|mb| format!("max_pipeline_file_size_mb={mb}"));
    settings.extend(pipeline_cap.as_deref());
    cli.run(&settings)?;
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

    // With the simulator's limits on, the service paces at the simulator's time scale; with
    // them off, at Slack's real tiers (the default): learned budgets grow while Slack
    // answers, so the sync must not wait for them (the report says).
    let tier_scale = if args.rate_limits {
        args.time_scale
    } else {
        1.0
    };
    let mut service = Service::start(
        &args.bin_dir,
        &config_path,
        &dir,
        &stack.sim.api_url(),
        mode,
        tier_scale,
        args.serve,
    )?;
    let query = ExpectedQuery {
        fetch_last_n_days: args.fetch_last_n_days,
        auto_join_channels: !args.no_auto_join,
        sync_users: true,
        now: None,
        sync_files: args.files,
        // The api mode's pipeline extracts binary content; direct mode runs without one.
        extract_binary_content: mode == Mode::Api,
        max_pipeline_file_size: args
            .pipeline_file_mb
            .map_or(ExpectedQuery::default().max_pipeline_file_size, |mb| {
                mb * 1_000_000
            }),
        ..ExpectedQuery::default()
    };
    let query = if args.dls {
        crate::dls::dls_query(query)
    } else {
        query
    };
    let query = if args.workspace {
        crate::workspace::workspace_query(query)
    } else {
        query
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
        } else if args.workspace {
            stack.verify(&expected.docs, false)?;
            crate::workspace::check_reactions(&job)?;
            if mode == Mode::Api {
                stack.check_pipeline_fields()?;
            }
        } else {
            stack.verify(&expected.docs, mode == Mode::Api)?;
        }
        println!("{report}");
        append_report(args, label, &report)?;
        if args.workspace {
            return stack.workspace_rounds(&cli, &mut service, args, &query, mode == Mode::Api);
        }
        if args.files {
            return files_budget(&job, &service);
        }
        if args.serve {
            return serve(&stack, &mut service);
        }
        if args.no_mutations || null_sink {
            return Ok(());
        }
        if let Some(port) = live_port {
            return stack.live_round(&cli, &mut service, args, &query, mode == Mode::Api, port);
        }
        if args.dls {
            return stack.dls_round(&cli, &mut service, args, &query);
        }
        if let Some(interrupt) = args.interrupt {
            let restart = crate::resume::Restart {
                args,
                config: &config_path,
                dir: &dir,
                mode,
                tier_scale,
            };
            return stack.interrupted_round(&cli, &mut service, &restart, &query, interrupt, label);
        }
        let incremental =
            stack.incremental_round(&cli, &mut service, args, &query, mode == Mode::Api, label)?;

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
        println!(
            "Slack calls (auth.test counted once): incremental sync {} (allowed {}), full re-sync {}",
            incremental.calls,
            incremental.bound,
            crate::report::job_calls(&stack.sim.stats(), 1)
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

/// The expected messages and channels a round picks its changes from.
#[derive(Default)]
pub(crate) struct Picks {
    pub(crate) channels: Vec<String>,
    /// Top-level messages outside threads: (channel id, ts).
    pub(crate) plain: Vec<(String, String)>,
    /// Thread parents with replies: (channel id, ts).
    pub(crate) parents: Vec<(String, String)>,
}

impl Picks {
    pub(crate) fn of(docs: &[ExpectedDoc]) -> Picks {
        let mut picks = Picks::default();
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
                        picks.plain.push((channel_id.clone(), ts.clone()));
                    } else if thread_ts.as_deref() == Some(ts.as_str())
                        && reply_count.unwrap_or(0) > 0
                    {
                        picks.parents.push((channel_id.clone(), ts.clone()));
                    }
                }
                ExpectedDoc::Channel { id, .. } => picks.channels.push(id.clone()),
                _ => {}
            }
        }
        picks
    }
}

/// A handful of changes that each sync must notice.
fn plan_mutations(docs: &[ExpectedDoc]) -> Vec<Mutation> {
    let Picks {
        channels,
        plain,
        parents,
    } = Picks::of(docs);
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

/// Peak RSS while the first sync fetched files (and everything else): the budget.
const FILES_RSS_BUDGET_MB: f64 = 25.0;

/// Prints the job's `metadata.files` and the peak RSS against its budget (fails over it).
fn files_budget(job: &serde_json::Value, service: &Service) -> Result<()> {
    let rss = service.peak_rss_kb as f64 / 1024.0;
    println!(
        "  files: metadata.files {}\n    service peak RSS while files were fetched {rss:.1} MB (budget {FILES_RSS_BUDGET_MB} MB)",
        job["metadata"]["files"]
    );
    if job["metadata"]["files"]["documents"].as_u64().unwrap_or(0) == 0 {
        anyhow::bail!("files on, but the job's metadata counts no file document");
    }
    if rss > FILES_RSS_BUDGET_MB {
        anyhow::bail!("peak RSS {rss:.1} MB is over the files budget of {FILES_RSS_BUDGET_MB} MB");
    }
    Ok(())
}
