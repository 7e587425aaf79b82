//! Any text as config.yml: a configuration or a list of problems, never a panic.
#![no_main]

use connectors::config::Config;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env = |name: &str| (name == "ES_HOST").then(|| "es:9200".to_string());
    if let Ok(loaded) = Config::from_yaml_str(&text, Path::new("config.yml"), &env) {
        assert!((0.0..=1.0).contains(&loaded.config.service.max_deletion_ratio));
    }
});
