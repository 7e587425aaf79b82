//! `--serve`: the `make run` demo keeps the stack up until a signal.

use crate::service::Service;
use crate::stack::Stack;
use crate::INDEX;
use anyhow::Result;
use std::time::{Duration, Instant};

/// Keeps the stack up for the demo until Ctrl-C (SIGINT) or SIGTERM, then stops it in order:
/// elastic-ingest first (one SIGTERM: it suspends running jobs while Elasticsearch is still
/// up), the rest when `run_mode` returns. A second signal kills the service at once.
///
/// The service runs in its own process group in this mode, so a terminal's Ctrl-C reaches
/// only us and the service sees exactly one signal (two would mean "exit now" to it).
pub(crate) fn serve(stack: &Stack, service: &mut Service) -> Result<()> {
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
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}
