//! The connector protocol: connector and sync-job documents in Elasticsearch, and the two
//! ways of reaching them (`elastic-connectors-protocol.md` §2).
//!
//! - [`indices`]: the connector indices and aliases, created as Elasticsearch creates them
//!   when they are missing (direct-index mode), used as they are when present.
//! - [`doc`]: documents as read, and the one way their `_source` is read (typed views).
//! - [`connector`]: connector documents and the pure decisions on them.
//! - [`job`]: sync-job documents, queries and finalisation writes.
//! - [`store`]: [`store::ConnectorStore`] in API mode or direct-index mode.
//! - [`runner`]: the sync-job runner; [`outcome`]: how a finished job is told to listeners.

pub mod connector;
pub mod doc;
pub mod indices;
pub mod job;
pub mod outcome;
pub mod runner;
pub mod store;

use crate::config::Config;
use serde_json::{json, Value};

/// The connectors this service handles (§2.4 A.1): the configured ids, or in worker mode the
/// non-native connectors of `service.service_types`. Soft-deleted connectors are excluded.
pub fn connectors_query(config: &Config) -> Value {
    let filter = if config.service.worker_mode {
        json!([{"terms": {"service_type": config.service.service_types}},
               {"term": {"is_native": false}}])
    } else {
        let ids: Vec<&str> = config
            .connectors
            .iter()
            .map(|c| c.connector_id.as_str())
            .collect();
        json!([{"terms": {"_id": ids}}])
    };
    json!({"size": 100, "query": {"bool": {"must_not": [{"term": {"deleted": true}}], "filter": filter}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::from_yaml_str(yaml, std::path::Path::new("t.yml"), &|_| None)
            .unwrap()
            .config
    }

    #[test]
    fn connectors_query_by_ids_or_worker_mode() {
        let q = connectors_query(&config(
            "connectors:\n  - {connector_id: a, service_type: slack}\n  - {connector_id: b, service_type: slack}\n",
        ));
        assert_eq!(
            q["query"]["bool"]["filter"][0]["terms"]["_id"],
            json!(["a", "b"])
        );
        assert_eq!(q["query"]["bool"]["must_not"][0]["term"]["deleted"], true);
        let q = connectors_query(&config(
            "service:\n  worker_mode: true\n  service_types: [slack]\n",
        ));
        assert_eq!(
            q["query"]["bool"]["filter"][0]["terms"]["service_type"],
            json!(["slack"])
        );
        assert_eq!(q["query"]["bool"]["filter"][1]["term"]["is_native"], false);
    }
}
