//! Launches osmem-server, the in-memory Elasticsearch-compatible server every test of this
//! workspace runs against (see `../shared/reference/es-test-server.md`).
//!
//! Invariants:
//! - The binary is found through `OSMEM_SERVER_BIN`, else under the workspace's git-ignored
//!   `.tools/osmem/` (installed by `make tools`). A missing binary is a clear error naming both.
//! - The server listens on `127.0.0.1:0` (a free port) and dies with its parent: stdin is piped
//!   and held by the [`Osmem`] value, and `-parent-pid` is passed, so a test binary that exits or
//!   crashes never leaves a server behind.
//! - [`shared`] starts one server per test binary; tests isolate themselves by index name
//!   ([`unique_name`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The pinned osmem-server release (the Makefile installs exactly this one).
pub const OSMEM_VERSION: &str = "0.1.6";

/// A running osmem-server. Dropping it stops the server.
pub struct Osmem {
    url: String,
    child: Child,
    // Held so the server's stdin stays open; closing it stops the server.
    _stdin: Option<ChildStdin>,
}

impl Osmem {
    /// Starts a server on a free loopback port and waits until `_cluster/health` answers.
    pub fn start() -> Result<Osmem, String> {
        let bin = binary_path()?;
        // Own process group: a terminal's Ctrl-C goes to the owner, which stops its clients
        // first and this server last (it still exits with its parent, see `-parent-pid`).
        let mut child = Command::new(&bin)
            .process_group(0)
            .args(["-addr", "127.0.0.1:0", "-no-ja", "-parent-pid"])
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("osmem-server stdout not captured")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("cannot read osmem-server's ready line: {e}"))?;
        let ready: serde_json::Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("osmem-server printed an unexpected ready line {line:?}: {e}"))?;
        let url = ready["url"]
            .as_str()
            .ok_or_else(|| format!("osmem-server ready line has no url: {line}"))?
            .to_string();
        let stdin = child.stdin.take();
        let server = Osmem {
            url,
            child,
            _stdin: stdin,
        };
        server.wait_healthy(Duration::from_secs(10))?;
        Ok(server)
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Process id of the server (for RSS and CPU reports).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_healthy(&self, budget: Duration) -> Result<(), String> {
        let deadline = Instant::now() + budget;
        loop {
            if let Ok(status) = http_get_status(&self.url, "/_cluster/health") {
                if status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "osmem-server at {} not healthy after {budget:?}",
                    self.url
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Osmem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The osmem-server binary: `OSMEM_SERVER_BIN`, else `<workspace>/.tools/osmem/...`.
pub fn binary_path() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("OSMEM_SERVER_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(format!("OSMEM_SERVER_BIN={} is not a file", path.display()));
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = workspace.join(".tools/osmem/osmem_server/bin/osmem-server");
    if path.is_file() {
        return Ok(path);
    }
    Err(format!(
        "osmem-server {OSMEM_VERSION} not found at {} and OSMEM_SERVER_BIN is unset: run `make tools` \
         (pip install --target .tools/osmem osmem-server=={OSMEM_VERSION})",
        path.display()
    ))
}

/// One server per test binary, started on first use.
pub fn shared() -> &'static Osmem {
    static SERVER: OnceLock<Osmem> = OnceLock::new();
    SERVER.get_or_init(|| Osmem::start().unwrap_or_else(|e| panic!("test Elasticsearch: {e}")))
}

/// A lowercase name unique within this process, for test isolation by index name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{}-{n}", prefix.to_lowercase(), std::process::id())
}

/// Minimal blocking GET used only for the readiness probe (no HTTP client dependency).
fn http_get_status(base: &str, path: &str) -> Result<u16, String> {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {response:?}"))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_answers() {
        let server = shared();
        assert!(server.url().starts_with("http://127.0.0.1:"));
        assert_eq!(http_get_status(server.url(), "/").unwrap(), 200);
        assert_ne!(unique_name("A"), unique_name("A"));
    }
}
