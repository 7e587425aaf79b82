//! `slack-sim` binary: starts the simulator, prints one JSON line
//! (`{"url","api_url","pid","documents"}`) on stdout when ready, and runs until
//! stdin closes (unless `--no-stdin-watch`), the `--parent-pid` process dies,
//! or SIGTERM/SIGINT arrives.

use anyhow::Result;
use clap::Parser;
use slack_sim::{DataSize, ExpectedQuery, SimConfig, SimHandle, WorkspaceSpec};
use std::io::{Read, Write};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "slack-sim", about = "Slack Web API simulator")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long, default_value = "small")]
    size: DataSize,
    #[arg(long)]
    seed: Option<u64>,
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
    #[arg(long)]
    private_share: Option<f64>,
    #[arg(long)]
    archived_share: Option<f64>,
    #[arg(long)]
    bot_member_share: Option<f64>,
    #[arg(long)]
    history_days: Option<u32>,
    /// Epoch seconds to generate data relative to (default: now).
    #[arg(long)]
    now: Option<i64>,
    #[arg(long)]
    rate_limits: bool,
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// What the workspace grants, as a multiple of the published tiers.
    #[arg(long, default_value_t = 1.0)]
    rate_grant: f64,
    /// Emulate Slack's restricted cohort (history/replies: 1/min, 15 a page).
    #[arg(long)]
    restricted_cohort: bool,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long, default_value = "xoxb-sim-bot-token")]
    token: String,
    #[arg(long)]
    parent_pid: Option<u32>,
    #[arg(long)]
    no_stdin_watch: bool,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let a = Args::parse();
    let mut spec = WorkspaceSpec::for_size(a.size);
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { spec.$f = v; } )* };
    }
    set!(
        seed,
        users,
        channels,
        messages_per_channel,
        thread_share,
        replies_per_thread,
        private_share,
        archived_share,
        bot_member_share,
        history_days
    );
    let handle = SimHandle::start(SimConfig {
        spec,
        now: a.now,
        rate_limits: a.rate_limits,
        time_scale: a.time_scale,
        rate_grant: a.rate_grant,
        restricted_cohort: a.restricted_cohort,
        latency_ms: a.latency_ms,
        bot_token: a.token.clone(),
        listen: a.listen.clone(),
    })?;
    let documents = handle.expected(&ExpectedQuery::default()).total;
    let line = serde_json::json!({
        "url": handle.base_url(),
        "api_url": handle.api_url(),
        "pid": std::process::id(),
        "documents": documents,
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    if !a.no_stdin_watch {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            let mut stdin = std::io::stdin();
            // Any input is ignored; EOF (parent closed the pipe) stops us.
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = tx.send("stdin closed");
        });
    }
    if let Some(pid) = a.parent_pid {
        let tx = tx.clone();
        std::thread::spawn(move || loop {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = tx.send("parent exited");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        });
    }
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            });
            let _ = tx.send("signal");
        });
    }
    let why = rx.recv().unwrap_or("channel closed");
    tracing::info!("slack-sim stopping: {why}");
    handle.shutdown();
    Ok(())
}
