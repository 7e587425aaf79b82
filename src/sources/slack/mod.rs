//! The Slack data source: parity with Elastic's Slack connector (`slack` service type),
//! without its bugs (`elastic-connectors-protocol.md` §4, `slack-api.md`).
//!
//! Configuration (the Python source's schema, so Kibana renders the same form, plus fields
//! of ours): `token` (sensitive), `fetch_last_n_days` (0 = all history, as Elastic
//! documents), `auto_join_channels`, `sync_users`; document-level security
//! (`use_document_level_security`, the field name Elastic's DLS sources use) and what only
//! DLS may open: `include_private_channels`, `include_direct_messages` (DMs and group DMs);
//! private conversations without DLS are a configuration error
//! ([`source::check_options`]); advanced: `thread_lookback_days` (incremental syncs; default
//! 14) and `rate_budget` (`learned`, the default, or `published`).
//!
//! Incremental syncs are supported (`features.incremental_sync`), and full syncs resume
//! from their recorded progress ([`cursor`]).
//!
//! Layout: [`client`] (HTTP, retries, `ok:false` taxonomy), [`answer`] (strict decoding
//! of each method's answer, the cursor loop guard), [`ratelimit`] (per-method budgets,
//! learned or published, the restricted cohort), [`budgets`] (the learned budgets kept in
//! the connector's `sync_cursor`), [`progress`] (progress and budgets for the log and the
//! job's metadata), [`transform`] (documents), [`identity`] (who may read what: every DLS
//! identity), [`source`] (options and the fetch), [`cursor`] (the incremental cursor,
//! resume points, deletion scopes), [`access`] (the access-control sync), [`oauth`] (the
//! install flow and token rotation), [`metrics`] (its Prometheus metrics, labelled by
//! connector).
//!
//! Environment: `SLACK_API_BASE_URL` replaces `https://slack.com/api` (simulators,
//! proxies); `SLACK_TIER_SCALE` multiplies every tier budget (a time-scaled simulator).
//! Filters ([`filters`], form fields ordered 20–25): `exclude_archived_channels`,
//! `channels_include` / `channels_exclude` (names, ids or `/regex/`),
//! `exclude_bot_messages`, `exclude_channel_event_messages` (join, leave, topic) and
//! `start_date` (the later of it and `fetch_last_n_days` wins). Workspace documents
//! ([`workspace`], orders 30–32): `sync_team`, `sync_user_groups`, `sync_channel_members`. Files ([`files`], orders
//! 33–35): `sync_files`, `max_file_size_mb`, `max_pipeline_file_size_mb`. Remote files
//! ([`remote_files`], order 36): `sync_remote_files`. Who reacted ([`reactions`], order
//! 37): `sync_reaction_users`. Options beyond the schema
//! (page sizes, concurrency) live in [`SlackOptions`] with defaults.
//!
//! The job's `metadata` carries `skipped_channels`, `skipped` (`[{channel, reason}]`),
//! `skipped_threads`, document counts, `api_requests`/`api_retries`/`api_throttled`,
//! `rate_budget` (mode, pacing waits, restricted cohort, each method's rate beside its
//! published tier, calls and 429s) and `progress` (channels done of total, calls, expected
//! seconds left), `files` (with `sync_files`: documents, downloads, skips and failures by
//! reason), `remote_files` (with `sync_remote_files`), `reactions` (with
//! `sync_reaction_users`: lists completed by `reactions.get`, messages that kept the users
//! history listed, by Slack's error), written while the sync runs too (the job's `_stats`
//! updates).

pub mod access;
pub mod answer;
pub mod budgets;
pub mod client;
pub mod cursor;
pub mod events;
pub mod files;
pub mod filters;
pub mod identity;
pub mod live;
pub mod mapping;
pub mod metrics;
pub mod oauth;
pub mod progress;
pub mod ratelimit;
pub mod reactions;
pub mod remote_files;
pub mod socket;
pub mod source;
pub mod transform;
pub mod workspace;

pub use source::{SlackOptions, SlackSource};

use super::{basic_features, ConfigField, Configuration, DataSource, SourceError, SourceFactory};
use serde_json::{json, Value};

/// The `slack` factory.
pub struct SlackFactory;

impl SourceFactory for SlackFactory {
    fn service_type(&self) -> &'static str {
        "slack"
    }

    fn display_name(&self) -> &'static str {
        "Slack"
    }

    fn default_configuration(&self) -> Configuration {
        default_configuration()
    }

    /// Document-level security is available (as Elastic's DLS sources advertise it); the
    /// configuration's `use_document_level_security` turns it on.
    fn features(&self) -> Value {
        let mut features = basic_features();
        features["incremental_sync"] = json!({"enabled": true});
        features["document_level_security"] = json!({"enabled": true});
        features
    }

    fn supports_incremental(&self) -> bool {
        true
    }

    fn supports_access_control(&self) -> bool {
        true
    }

    fn content_mappings(&self) -> serde_json::Map<String, Value> {
        mapping::properties()
    }

    fn upstream_class(&self) -> Option<&'static str> {
        Some("connectors.sources.slack:SlackDataSource")
    }

    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        metrics::register(registry);
    }

    fn renew_credentials<'a>(
        &'a self,
        configuration: &'a Configuration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> futures::future::BoxFuture<'a, Result<Option<Configuration>, SourceError>> {
        Box::pin(oauth::renew(configuration, now, oauth::ACCESS_RETRY))
    }

    fn live_receiver<'a>(
        &'a self,
        connector_id: &'a str,
        configuration: &'a Configuration,
        cancel: &'a tokio_util::sync::CancellationToken,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Option<std::sync::Arc<dyn crate::live::receive::LiveReceiver>>, SourceError>,
    > {
        Box::pin(live::receiver(connector_id, configuration, cancel))
    }

    fn build(
        &self,
        connector_id: &str,
        configuration: &Configuration,
    ) -> Result<Box<dyn DataSource>, SourceError> {
        let mut options = SlackOptions::from_configuration(configuration)?;
        options.connector_id = connector_id.to_string();
        Ok(Box::new(SlackSource::new(options)?))
    }
}

/// The configuration schema of §4.1.
pub fn default_configuration() -> Configuration {
    let mut config = Configuration::new();
    config.insert(
        "token".into(),
        ConfigField::new("Authentication Token", "str", 1)
            .sensitive()
            .tooltip("The Slack Authentication Token for the slack application you created. See the docs for details."),
    );
    config.insert(
        "fetch_last_n_days".into(),
        ConfigField::new("Days of message history to fetch", "int", 2)
            .display("numeric")
            .tooltip("How far back in time to request message history from slack. Messages older than this will not be indexed."),
    );
    config.insert(
        "auto_join_channels".into(),
        ConfigField::new("Automatically join channels", "bool", 3)
            .display("toggle")
            .tooltip("The Slack application bot will only be able to read conversation history from channels it has joined. The default requires it to be manually invited to channels. Enabling this allows it to automatically invite itself into all public channels.")
            .value(json!(false)),
    );
    config.insert(
        "sync_users".into(),
        ConfigField::new("Sync users", "bool", 4)
            .display("toggle")
            .tooltip("Whether or not Slack Users should be indexed as documents in Elasticsearch.")
            .value(json!(true)),
    );
    let mut lookback = ConfigField::new(source::LOOKBACK_LABEL, "int", 5)
        .display("numeric")
        .optional()
        .ui_restrictions(&["advanced"])
        .validation("greater_than", json!(-1))
        .validation("less_than", json!(366))
        .tooltip("Incremental syncs read this many days of history again, to apply edits, deletions and new replies in threads. A reply to an older thread waits for the next full sync.")
        .value(json!(source::DEFAULT_LOOKBACK_DAYS));
    lookback.default_value = json!(source::DEFAULT_LOOKBACK_DAYS);
    config.insert("thread_lookback_days".into(), lookback);
    config.insert(
        "use_document_level_security".into(),
        ConfigField::new("Enable document level security", "bool", 6)
            .display("toggle")
            .tooltip("Document level security ensures identities and permissions set in Slack are maintained in Elasticsearch: a public channel is readable by the workspace's full members, a private channel, DM or group DM only by its members. Access control syncs keep the users' identities up to date. Needs the users:read.email scope.")
            .value(json!(false)),
    );
    config.insert(
        "include_private_channels".into(),
        ConfigField::new("Index private channels", "bool", 7)
            .display("toggle")
            .tooltip("Also index the private channels the app is a member of. Requires document level security, so that only their members can read them, and the groups:read and groups:history scopes.")
            .value(json!(false)),
    );
    config.insert(
        "include_direct_messages".into(),
        ConfigField::new("Index direct messages", "bool", 8)
            .display("toggle")
            .tooltip("Also index the direct messages and group direct messages the app is part of. Requires document level security, so that only their participants can read them, and the im:read, im:history, mpim:read and mpim:history scopes.")
            .value(json!(false)),
    );
    config.insert(
        "rate_budget".into(),
        ConfigField::new("Slack rate budget", "str", 10)
            .display("dropdown")
            .options(&[("Learned from Slack's answers", "learned"), ("Published tiers", "published")])
            .tooltip("How fast to call Slack. 'learned' starts at Slack's published rate tiers and learns what the workspace grants from Slack's answers (rate-limit answers lower it, and Retry-After is always honoured); 'published' never goes above the published tiers.")
            .value(json!("learned"))
            .default_value(json!("learned"))
            .optional()
            .validation("included_in", json!(["learned", "published"]))
            .ui_restrictions(&["advanced"]),
    );
    live_fields(&mut config);
    filters::add_fields(&mut config);
    workspace::add_fields(&mut config);
    files::add_fields(&mut config);
    remote_files::add_fields(&mut config);
    reactions::add_fields(&mut config);
    config
}

/// The live-update fields (issue 17): how events reach the connector, and the secrets of
/// each transport.
fn live_fields(config: &mut Configuration) {
    config.insert(
        "live_updates".into(),
        ConfigField::new(live::LIVE_LABEL, "str", 40)
            .display("dropdown")
            .options(&[("Off (syncs only)", "off"), ("Socket Mode", "socket_mode"), ("HTTP Events API", "http")])
            .tooltip("Apply Slack's events to the index within seconds, between syncs. 'http': point the Slack app's Event Subscriptions Request URL at <service.http.listen>/live/<connector id>; needs the signing secret.")
            .value(json!("off"))
            .default_value(json!("off"))
            .optional()
            .validation("included_in", json!(["off", "socket_mode", "http"])),
    );
    config.insert(
        "app_token".into(),
        ConfigField::new("App-level token", "str", 41)
            .sensitive()
            .optional()
            .depends_on("live_updates", json!("socket_mode"))
            .tooltip("The Slack app's app-level token (xapp-…, scope connections:write), for Socket Mode."),
    );
    config.insert(
        "signing_secret".into(),
        ConfigField::new("Signing secret", "str", 42)
            .sensitive()
            .optional()
            .depends_on("live_updates", json!("http"))
            .tooltip("The Slack app's signing secret (Basic Information), which every Events API request is verified with."),
    );
}
