//! Any JSON as a connector document (first byte even) or as a sync-job document (odd):
//! every reader of the service ends in a value or an error, never a panic
//! ([`connectors::fuzzing::connector_doc`], [`connectors::fuzzing::sync_job_doc`]). The
//! document's `probe` object, if any, is filtered by its own sync rules.
#![no_main]

use connectors::fuzzing::{connector_doc, sync_job_doc};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let Ok(doc) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let probe = doc["probe"].clone();
    if pick % 2 == 0 {
        connector_doc(&doc, &probe);
    } else {
        sync_job_doc(&doc, &probe);
    }
});
