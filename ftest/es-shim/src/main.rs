//! `es-shim` binary: runs the shim in front of an osmem URL, or starts its own osmem.
//!
//! Prints exactly one JSON line on stdout when ready:
//! `{"url":"http://127.0.0.1:PORT","upstream":"…","pid":N}`.
//! Exits when stdin closes (unless `--no-stdin-watch`), when `--parent-pid` dies, or on
//! SIGTERM/SIGINT; an osmem it started is stopped on exit.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use es_shim::{ShimConfig, ShimHandle, DEFAULT_ES_VERSION};

#[derive(Parser, Debug)]
#[command(name = "es-shim", about = "Elasticsearch API shim over osmem-server")]
struct Args {
    /// Base URL of a running osmem-server.
    #[arg(
        long,
        conflicts_with = "start_osmem",
        required_unless_present = "start_osmem"
    )]
    upstream: Option<String>,
    /// Start a private osmem-server and stop it on exit.
    #[arg(long)]
    start_osmem: bool,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Version reported by `GET /`.
    #[arg(long, default_value = DEFAULT_ES_VERSION)]
    es_version: String,
    /// Exit when this process dies.
    #[arg(long)]
    parent_pid: Option<u32>,
    /// Do not exit when stdin closes.
    #[arg(long)]
    no_stdin_watch: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    // Held until exit: dropping it stops the private osmem.
    let mut own_osmem = None;
    let upstream = match (&args.upstream, args.start_osmem) {
        (Some(u), _) => u.clone(),
        (None, _) => {
            let es = osmem::Osmem::start()
                .map_err(anyhow::Error::msg)
                .context("starting osmem")?;
            let url = es.url().to_string();
            own_osmem = Some(es);
            url
        }
    };
    let shim = ShimHandle::start(ShimConfig {
        upstream: upstream.clone(),
        listen: args.listen.clone(),
        es_version: args.es_version.clone(),
        sink_indices: Vec::new(),
        record: false,
    })?;
    let ready =
        serde_json::json!({"url": shim.url(), "upstream": upstream, "pid": std::process::id()});
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ready}")?;
        out.flush()?;
    }

    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    if !args.no_stdin_watch {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let _ = tx.send("stdin closed");
        });
    }
    if let Some(pid) = args.parent_pid {
        let tx = tx.clone();
        std::thread::spawn(move || loop {
            if !process_alive(pid) {
                let _ = tx.send("parent exited");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        });
    }
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(_) => return,
            };
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => { let _ = tx.send("SIGTERM"); }
                    _ = int.recv() => { let _ = tx.send("SIGINT"); }
                }
            });
        });
    }
    drop(tx);
    let reason = rx.recv().unwrap_or("all watchers ended");
    tracing::info!(reason, "es-shim exiting");
    shim.shutdown();
    drop(own_osmem);
    Ok(())
}

/// Linux-only liveness check without libc: a live (non-zombie) process has `/proc/PID/stat`
/// with a state other than `Z`.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
