//! The `elastic-ingest` process: started with the simulator's URL, sampled from /proc
//! (peak RSS, CPU), stopped with SIGTERM and required to exit 0.

use crate::report::process_cpu_seconds;
use crate::Mode;
use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `elastic-ingest` process, with its resource usage sampled from /proc.
pub(crate) struct Service {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
    pub(crate) peak_rss_kb: u64,
    pub(crate) cpu_seconds: f64,
    /// `cpu_seconds` at the previous report: each report's per-document figure is for the
    /// CPU spent since (the first one includes start-up).
    pub(crate) reported_cpu_seconds: f64,
}

impl Service {
    pub(crate) fn start(
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

    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "elastic-ingest exited early ({status}); log: {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// Reads VmHWM and utime+stime while the process lives.
    pub(crate) fn sample(&mut self) {
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
    pub(crate) fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status must be 0 within 10 s.
    pub(crate) fn stop(&mut self) -> Result<()> {
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
