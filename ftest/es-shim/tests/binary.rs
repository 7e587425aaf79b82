//! The `es-shim` binary: ready line, own osmem, and the three ways it exits.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn spawn(args: &[&str], stdin: Stdio) -> (Child, Value) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_es-shim"))
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn es-shim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value =
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "slow start: {:?}",
        started.elapsed()
    );
    (child, ready)
}

fn get(url: &str) -> Option<u16> {
    let host = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).ok()?;
    use std::io::{Read, Write};
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1)?.parse().ok()
}

fn wait_exit(child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("es-shim did not exit within {within:?}");
}

#[test]
fn start_osmem_and_exit_on_stdin_close() {
    let (mut child, ready) = spawn(&["--start-osmem"], Stdio::piped());
    let url = ready["url"].as_str().unwrap().to_string();
    let upstream = ready["upstream"].as_str().unwrap().to_string();
    assert_eq!(ready["pid"].as_u64(), Some(child.id() as u64));
    assert_eq!(get(&url), Some(200));
    assert_eq!(get(&upstream), Some(200));
    drop(child.stdin.take());
    wait_exit(&mut child, Duration::from_secs(5));
    // Its private osmem is gone with it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while get(&upstream).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(&upstream), None, "osmem still answers");
}

#[test]
fn exits_on_sigterm_and_parent_death() {
    let upstream = osmem::shared().url().to_string();
    let (mut child, ready) = spawn(
        &[
            "--upstream",
            &upstream,
            "--no-stdin-watch",
            "--es-version",
            "8.19.0",
        ],
        Stdio::null(),
    );
    assert_eq!(get(ready["url"].as_str().unwrap()), Some(200));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    wait_exit(&mut child, Duration::from_secs(5));

    let mut parent = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = parent.id().to_string();
    let (mut child, _) = spawn(
        &[
            "--upstream",
            &upstream,
            "--no-stdin-watch",
            "--parent-pid",
            &pid,
        ],
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited while the parent lives"
    );
    parent.kill().unwrap();
    parent.wait().unwrap();
    wait_exit(&mut child, Duration::from_secs(3));
}
