//! The `connectors` binary end to end, in both protocol modes: exit codes (0, 1 for unknown
//! ids, 2 for usage errors), table and JSON output, secrets never printed, index commands.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Direct,
    Api,
}

struct Env {
    _osmem: osmem::Osmem,
    _shim: Option<es_shim::ShimHandle>,
    _dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new(mode: Mode) -> Env {
        let osmem = osmem::Osmem::start().expect("osmem-server");
        let (shim, url) = match mode {
            Mode::Direct => (None, osmem.url().to_string()),
            Mode::Api => {
                // Recording: what the CLI sends is audited against the conformance table.
                let shim = es_shim::ShimHandle::start(es_shim::ShimConfig {
                    record: true,
                    ..es_shim::ShimConfig::new(osmem.url())
                })
                .expect("es-shim");
                let url = shim.url();
                (Some(shim), url)
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        // A service file without connectors: the CLI only needs elasticsearch.*.
        std::fs::write(
            &config,
            format!(
                "elasticsearch:\n  host: {url}\n  feature_use_connectors_api: {}\n  max_retries: 1\n",
                mode == Mode::Api
            ),
        )
        .unwrap();
        Env {
            _osmem: osmem,
            _shim: shim,
            _dir: dir,
            config,
        }
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        run_bin(&self.config, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "connectors {args:?}: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(self.ok(&all).trim()).unwrap()
    }
}

impl Drop for Env {
    /// Fails an API-mode test in which the CLI sent a request the conformance table does not
    /// allow (`ftest/es-shim/conformance/`).
    fn drop(&mut self) {
        let (Some(shim), false) = (&self._shim, std::thread::panicking()) else {
            return;
        };
        let recorded = shim.recorder().connector_requests();
        let audit = es_shim::conformance::audit(es_shim::conformance::table(), &recorded);
        assert!(
            audit.violations.is_empty(),
            "requests outside the conformance table:\n{}",
            audit.violations.join("\n")
        );
    }
}

fn run_bin(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_connectors"))
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("run connectors");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn cli_end_to_end(mode: Mode) {
    let env = Env::new(mode);
    let file = env.config.with_file_name("values.json");
    std::fs::write(
        &file,
        r#"{"token": "xoxb-top-secret", "fetch_last_n_days": 14, "sync_users": {"value": false}}"#,
    )
    .unwrap();
    let created = env.json(&[
        "connector",
        "create",
        "--service-type",
        "slack",
        "--index-name",
        "search-cli",
        "--connector-id",
        "cli-1",
        "--name",
        "CLI",
        "--from-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(created["id"], "cli-1");
    assert!(!created.to_string().contains("top-secret"), "{created}");

    let list = env.json(&["connector", "list"]);
    let c = &list[0];
    assert_eq!(c["id"], "cli-1");
    assert_eq!(c["status"], "configured");
    assert_eq!(
        c["configuration"]["token"]["value"], "******",
        "secrets redacted"
    );
    assert_eq!(c["configuration"]["fetch_last_n_days"]["value"], 14);
    assert_eq!(c["configuration"]["sync_users"]["value"], false);
    assert_eq!(c["configuration"]["sync_users"]["label"], "Sync users");
    let table = env.ok(&["connector", "list"]);
    assert!(
        table.starts_with("ID") && table.contains("cli-1") && table.contains("configured"),
        "{table}"
    );
    assert!(!table.contains("top-secret"));

    let out = env.ok(&[
        "connector",
        "config",
        "set",
        "-i",
        "cli-1",
        "token=xoxb-other-secret",
    ]);
    assert!(
        !out.contains("other-secret") && out.contains("token=******"),
        "{out}"
    );
    let out = env.ok(&[
        "connector",
        "schedule",
        "set",
        "-i",
        "cli-1",
        "--full",
        "0 */5 * * * ?",
        "--incremental",
        "0 0 * * * ?",
    ]);
    assert!(out.contains("full every"), "{out}");
    let out = env.ok(&[
        "connector",
        "schedule",
        "set",
        "-i",
        "cli-1",
        "--disable",
        "incremental",
    ]);
    assert!(out.contains("incremental disabled"), "{out}");

    let job = env.json(&["job", "start", "-i", "cli-1", "-t", "full"]);
    let job_id = job["id"].as_str().unwrap().to_string();
    let jobs = env.json(&["job", "list", "cli-1"]);
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["status"], "pending");
    assert_eq!(jobs[0]["trigger_method"], "on_demand");
    let view = env.json(&["job", "view", &job_id]);
    assert_eq!(view["connector"]["id"], "cli-1");
    assert_eq!(
        view["connector"]["configuration"]["token"]["value"],
        "******"
    );
    let table = env.ok(&["job", "view", &job_id]);
    assert!(table.contains("pending"), "{table}");
    let canceled = env.json(&["job", "cancel", &job_id]);
    assert_eq!(
        canceled["status"], "canceled",
        "a pending job is canceled at once"
    );

    let indices = env.json(&["index", "list"]);
    assert!(
        indices
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["index"] == "search-cli"),
        "{indices}"
    );
    assert!(env
        .ok(&["index", "clean", "search-cli"])
        .contains("deleted 0 documents"));
    assert!(env
        .ok(&["index", "delete", "search-cli"])
        .contains("deleted"));

    // Without --connector-id the id is generated (`POST _connector` in API mode).
    let generated = env.json(&[
        "connector",
        "create",
        "--service-type",
        "slack",
        "--index-name",
        "search-cli-generated",
    ]);
    let generated = generated["id"].as_str().unwrap_or_default();
    assert!(!generated.is_empty() && generated != "cli-1", "{generated}");

    // Unknown ids: exit 1 with a message naming the id.
    for args in [
        vec!["job", "start", "-i", "nope", "-t", "full"],
        vec!["connector", "config", "set", "-i", "nope", "token=x"],
        vec!["job", "view", "missing-job"],
        vec!["job", "list", "nope"],
        vec!["index", "delete", "no-such-index"],
    ] {
        let (code, _, err) = env.run(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("not found"), "{args:?}: {err}");
    }
    let (code, _, err) = env.run(&["connector", "config", "set", "-i", "cli-1", "nokey=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown configuration field 'nokey'"), "{err}");
    // Usage errors: exit 2.
    for args in [
        vec!["job", "start", "-i", "cli-1", "-t", "weekly"],
        vec!["connector", "schedule", "set", "-i", "cli-1"],
        vec!["connector", "create", "--index-name", "x"],
        vec!["frobnicate"],
    ] {
        let (code, _, err) = env.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn direct_mode() {
    cli_end_to_end(Mode::Direct);
}

#[test]
fn api_mode() {
    cli_end_to_end(Mode::Api);
}

#[test]
fn missing_config_file_exits_1() {
    let (code, _, err) = run_bin(Path::new("/nonexistent/config.yml"), &["connector", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read configuration file"), "{err}");
}
