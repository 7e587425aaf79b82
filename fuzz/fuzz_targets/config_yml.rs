//! Any text as config.yml: a configuration or a list of problems, never a panic
//! ([`connectors::fuzzing::config_yml`]).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    connectors::fuzzing::config_yml(&String::from_utf8_lossy(data));
});
