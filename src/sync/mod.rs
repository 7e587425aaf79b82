//! The sync engine: a source's document stream to Elasticsearch bulk requests, with safe
//! deletions, sync rules and stats.
