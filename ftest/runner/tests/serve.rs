//! `make run` is `ftest --serve`: it must start the whole stack, sync, and on one SIGINT
//! (a terminal's Ctrl-C) or SIGTERM stop everything it started, cleanly, within 5 seconds.
//!
//! Needs the `elastic-ingest` and `connectors` binaries next to `ftest` (target/debug):
//! `cargo test --workspace` builds them before it runs any test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin_dir() -> PathBuf {
    let ftest = Path::new(env!("CARGO_BIN_EXE_ftest"));
    let dir = ftest.parent().expect("ftest has a directory").to_path_buf();
    for name in ["elastic-ingest", "connectors"] {
        assert!(
            dir.join(name).is_file(),
            "{} is missing: build it first (`cargo build -p connectors`, or run `cargo test --workspace`)",
            dir.join(name).display()
        );
    }
    dir
}

/// Processes whose command line mentions `needle` (our work directory or our pid).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if line.contains(needle) {
                found.push(format!("{pid}: {line}"));
            }
        }
    }
    found
}

/// A failing test must not leave the stack running: SIGTERM lets ftest stop what it started.
/// The child is owned here and only reaped here, so its pid cannot have been reused.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn stops_on(signal: &str, mode: &str) {
    let work = tempfile::tempdir().unwrap();
    let mut serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_ftest"))
            .args([
                "--serve",
                "--mode",
                mode,
                "--data-size",
                "small",
                "--bin-dir",
            ])
            .arg(bin_dir())
            .arg("--work-dir")
            .arg(work.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let child = &mut serve.0;
    let pid = child.id();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no 'Press Ctrl-C' line within 300 s; output: {seen:#?}"));
        let ready = line.contains("Press Ctrl-C");
        seen.push(line);
        if ready {
            break;
        }
    }
    let service = format!("elastic-ingest -c {}", work.path().display());
    let parent = format!("-parent-pid {pid}");
    assert_eq!(
        processes_mentioning(&service).len(),
        1,
        "elastic-ingest runs"
    );
    assert_eq!(processes_mentioning(&parent).len(), 1, "osmem-server runs");

    let sent = Instant::now();
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "ftest --serve still running 5 s after SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    seen.extend(lines.try_iter());
    assert!(status.success(), "exit {status}; output: {seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.contains("elastic-ingest exited (exit status: 0)")),
        "the service stopped gracefully; output: {seen:#?}"
    );
    assert!(
        processes_mentioning(&service).is_empty(),
        "elastic-ingest left running"
    );
    assert!(
        processes_mentioning(&parent).is_empty(),
        "osmem-server left running"
    );
    eprintln!("SIG{signal}: everything stopped in {took:?}");
}

#[test]
fn make_run_stops_cleanly_on_sigint() {
    stops_on("INT", "api");
}

#[test]
fn make_run_stops_cleanly_on_sigterm() {
    stops_on("TERM", "direct");
}
