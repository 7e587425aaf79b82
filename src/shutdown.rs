//! Signals and cancellation.
//!
//! The first SIGINT or SIGTERM cancels the service's [`CancellationToken`]: loops stop
//! taking work, running jobs are suspended and in-flight bulk requests finish. A second
//! signal exits at once with status 1 (nothing more is written; a suspended or running job
//! is picked up again by the next service, or failed by the cleanup after its idle timeout).

pub use tokio_util::sync::CancellationToken;

/// Installs the signal handlers; returns the token cancelled by the first signal.
pub fn install() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            let name = wait_for_signal().await;
            received += 1;
            if received == 1 {
                tracing::info!(signal = name, "shutting down: running syncs are suspended, send the signal again to exit at once");
                cancel.cancel();
            } else {
                tracing::warn!(signal = name, "second signal: exiting now");
                std::process::exit(1);
            }
        }
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}
