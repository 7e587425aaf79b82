//! The `connectors` CLI, as Kibana's stand-in: runs it, fails with its output, never
//! prints a token.

use crate::Mode;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

pub(crate) struct Cli {
    pub(crate) bin: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) mode: Mode,
}

impl Cli {
    pub(crate) fn run(&self, args: &[&str]) -> Result<String> {
        let mut command = Command::new(&self.bin);
        command.arg("-c").arg(&self.config).args(args);
        if self.mode == Mode::Direct {
            command.env("ALLOW_ES_VERSION_MISMATCH", "true");
        }
        let output = command
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let shown: Vec<&str> = args
            .iter()
            .map(|a| {
                if a.starts_with("token=") {
                    "token=…"
                } else {
                    a
                }
            })
            .collect();
        if !output.status.success() {
            bail!(
                "`connectors {}` failed ({}): {}{}",
                shown.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        println!("  connectors {}: ok", shown.join(" "));
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
