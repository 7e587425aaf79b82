//! The `elastic-ingest` binary on bad input: each case exits with the documented status and
//! one clear message; and secrets never reach its output at any log level.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ingest(config: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(config.as_bytes()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_elastic-ingest"));
    command
        .arg("-c")
        .arg(file.path())
        .args(args)
        .env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const GOOD_CONNECTORS: &str = "connectors:\n  - connector_id: abc\n    service_type: slack\n";

fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn yaml_syntax_error_gives_line_and_column() {
    let out = ingest(
        "connectors:\n  - connector_id: abc\n    service_type: [slack\n",
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("is not valid YAML at line"), "{err}");
    assert!(err.contains("column"), "{err}");
}

#[test]
fn wrong_type_unknown_key_are_reported_together() {
    let config = format!("{GOOD_CONNECTORS}elasticsearch:\n  request_timeout: soon\n  hots: x\n");
    let out = ingest(&config, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("2 problem(s)"), "{err}");
    assert!(
        err.contains("`elasticsearch.request_timeout`: expected a number"),
        "{err}"
    );
    assert!(
        err.contains("`elasticsearch.hots`: unknown key; did you mean `elasticsearch.host`?"),
        "{err}"
    );
}

#[test]
fn empty_connectors_unknown_type_and_changeme() {
    let out = ingest("connectors: []\n", &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`connectors`: empty"),
        "{}",
        stderr(&out)
    );

    let out = ingest(
        "connectors:\n  - connector_id: abc\n    service_type: jira\n",
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown service type `jira`"),
        "{}",
        stderr(&out)
    );

    let out = ingest(
        "connectors:\n  - connector_id: changeme\n    service_type: slack\n",
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("placeholder `changeme`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_file_is_a_configuration_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_elastic-ingest"))
        .args(["-c", "/nonexistent/config.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read configuration file `/nonexistent/config.yml`"));
}

#[test]
fn unreachable_elasticsearch_names_url_and_budget() {
    let port = unused_port();
    let config = format!(
        "{GOOD_CONNECTORS}elasticsearch:\n  host: http://127.0.0.1:{port}\n  max_wait_duration: 0.5\n  initial_backoff_duration: 0.1\n  max_retries: 0\n  password: pw-should-not-show\n"
    );
    let started = Instant::now();
    let out = ingest(&config, &[], &[]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("http://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("max_wait_duration"), "{err}");
    assert!(!err.contains("pw-should-not-show"), "{err}");
}

#[test]
fn version_flag_list_and_default_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_elastic-ingest"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        connectors::VERSION
    );

    let out = Command::new(env!("CARGO_BIN_EXE_elastic-ingest"))
        .args(["--action", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Slack (slack)"));

    let out = Command::new(env!("CARGO_BIN_EXE_elastic-ingest"))
        .args(["--action", "config", "--service-type", "slack"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["token"]["label"], "Authentication Token");
    assert_eq!(schema["token"]["sensitive"], true);
    assert_eq!(schema["fetch_last_n_days"]["display"], "numeric");
    assert_eq!(schema["auto_join_channels"]["value"], false);
    assert_eq!(schema["sync_users"]["order"], 4);

    let out = Command::new(env!("CARGO_BIN_EXE_elastic-ingest"))
        .args(["--action", "config", "--service-type", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Starts the service against osmem, sends `signal`, and checks it stops cleanly and fast;
/// returns everything it logged.
fn run_and_signal(
    config: &str,
    level: &str,
    format: &str,
    rust_log: Option<&str>,
    signal: &str,
) -> String {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(config.as_bytes()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_elastic-ingest"));
    command
        .arg("-c")
        .arg(file.path())
        .args(["--log-level", level, "--log-format", format])
        .env("ALLOW_ES_VERSION_MISMATCH", "true")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(spec) = rust_log {
        command.env("RUST_LOG", spec);
    }
    let mut child = command.spawn().unwrap();
    // Read the logs as they come; signal once the service says it is running.
    let stderr_pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("service running") {
            break;
        }
    }
    let pid = child.id();
    let sent = Instant::now();
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = reader.join().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "stopped within 5 s"
    );
    assert_eq!(out.status.code(), Some(0), "{logs}");
    format!("{}{logs}", String::from_utf8_lossy(&out.stdout))
}

#[test]
fn starts_connects_and_stops_on_sigint_and_sigterm() {
    let osmem = osmem::shared();
    let config = format!(
        "{GOOD_CONNECTORS}elasticsearch:\n  host: {}\n  feature_use_connectors_api: false\n",
        osmem.url()
    );
    for signal in ["INT", "TERM"] {
        let logs = run_and_signal(&config, "INFO", "text", None, signal);
        assert!(logs.contains("connected to elasticsearch"), "{logs}");
        assert!(logs.contains("service stopped"), "{logs}");
        assert!(
            !logs.contains('\u{1b}'),
            "text logs to a pipe carry no colour codes: {logs:?}"
        );
    }
}

#[test]
fn secrets_appear_in_no_log_line_at_any_level() {
    let osmem = osmem::shared();
    let config = format!(
        "elasticsearch:\n  host: {}\n  feature_use_connectors_api: false\n  api_key: S3CRET-API-KEY\n  password: S3CRET-PASSWORD\nconnectors:\n  - connector_id: abc\n    service_type: slack\n    api_key: S3CRET-CONNECTOR-KEY\n",
        osmem.url()
    );
    for (level, format, rust_log) in [
        ("TRACE", "text", None),
        ("DEBUG", "json", None),
        ("INFO", "text", None),
        ("TRACE", "json", Some("trace")),
    ] {
        let logs = run_and_signal(&config, level, format, rust_log, "TERM");
        assert!(!logs.is_empty());
        assert!(
            !logs.contains("S3CRET"),
            "secret leaked at {level}/{format}/{rust_log:?}:\n{logs}"
        );
    }
}

#[test]
fn health_and_metrics_listener_serves_the_running_service() {
    let osmem = osmem::shared();
    let port = unused_port();
    let config = format!(
        "{GOOD_CONNECTORS}elasticsearch:\n  host: {}\n  feature_use_connectors_api: false\nservice:\n  idling: 0.2\n  http:\n    listen: 127.0.0.1:{port}\n",
        osmem.url()
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(config.as_bytes()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_elastic-ingest"))
        .arg("-c")
        .arg(file.path())
        .env("ALLOW_ES_VERSION_MISMATCH", "true")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str| -> Option<(u16, String)> {
        let response = reqwest::blocking::get(format!("http://127.0.0.1:{port}{path}")).ok()?;
        Some((response.status().as_u16(), response.text().ok()?))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = None;
    while Instant::now() < deadline {
        if let Some((200, body)) = get("/readyz") {
            ready = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ready.as_deref(), Some("ready\n"));
    assert_eq!(get("/healthz").unwrap(), (200, "ok\n".to_string()));
    let (status, metrics) = get("/metrics").unwrap();
    assert_eq!(status, 200);
    for name in [
        "connectors_syncs_total",
        "connectors_syncs_running",
        "connectors_documents_indexed_total",
        "connectors_documents_deleted_total",
        "connectors_bulk_request_duration_seconds",
        "connectors_queue_depth",
        "connectors_slack_calls_total",
        "connectors_slack_rate_limited_total",
        "connectors_retries_total",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{metrics}"
        );
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
