//! The connector protocol: connector and sync-job documents in Elasticsearch, and the two
//! ways of reaching them (`elastic-connectors-protocol.md` §2).
//!
//! - [`indices`]: the connector indices and aliases, created as Elasticsearch creates them
//!   when they are missing (direct-index mode), used as they are when present.

pub mod indices;
