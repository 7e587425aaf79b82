//! The Slack [`DataSource`]: options from the job's configuration, and the fetch of full,
//! resumed and incremental syncs.
//!
//! Order and shape of a sync (`elastic-connectors-protocol.md` §4, minus its bugs):
//! 1. `auth.test`: token check and the workspace URL (permalinks);
//! 2. every `users.list` page: names for enrichment (always), user docs (if `sync_users`);
//! 3. every `conversations.list` page (paging on while a cursor remains, even after empty
//!    pages): the readable channels, i.e. bot member, or auto-join on and not archived;
//! 4. up to [`SlackOptions::channel_concurrency`] channels at once: join if needed, then
//!    `conversations.history` pages (integer-exact `oldest`, cursor paging) and, per page,
//!    the threads of its parents with `reply_count > 0` (`conversations.replies`, cursor
//!    paging, a few threads at once). Documents go to the sink as each page arrives, so
//!    memory holds one page per channel task, never a channel's history.
//!
//! A full sync marks its progress per channel as it goes (a checkpoint after each thread
//! that completes the run of threads before it, after each page, and when the channel is
//! done; [`super::cursor`]): a resumed sync skips the channels done and reads the others
//! from where they stood, in the same history window. An incremental sync reads the known
//! channels from the cursor's bound, fetches only changed or new threads, declares what it
//! re-read as sweep scopes, and reads new channels in full. Every sync that completes
//! leaves the cursor for the next incremental one ([`DataSource::sync_cursor`]).
//!
//! Invariants:
//! - `get_docs` returns `Ok` only if every page of every readable channel was fetched;
//!   an answer without what its method promises (`answer`: a list missing, `null` or
//!   mistyped, `has_more` without a cursor, a cursor already used) is retried, then fails
//!   the sync, and its error names the method, the field and the channel;
//!   a channel Slack refuses on its first call (`not_in_channel`, `is_archived`, …) is
//!   skipped and reported in [`DataSource::metadata`]; a refusal after some of its pages
//!   were sent fails the sync instead (a partial channel must not drive deletions);
//! - a parent is emitted once (from history), a broadcast reply once (from history), and
//!   every other reply once (from its thread);
//! - cancellation is checked between pages and interrupts rate-limit and retry waits;
//! - a checkpoint claims only what was sent before it; a channel resumed from a position
//!   that Slack now refuses fails the sync (its older messages would not be rewritten).

use super::answer::Pager;
use super::budgets::{LearnedBudgets, CURSOR_KEY};
use super::client::{
    classify, resolve_base_url, resolve_tier_scale, Class, ClientConfig, Head, SlackClient,
    SlackError, Verb, BASE_URL_ENV, DEFAULT_RETRY,
};
use super::cursor::{
    channel_scope, reread_after, thread_changed, thread_scope, ts_string, ChannelCursor,
    ChannelProgress, Resume, SlackCursor, ThreadState, WINDOW_KEY,
};
use super::files::{self, FileOptions, Files, SharedFile};
use super::filters::{self, history_oldest, ChannelList};
use super::identity::{self, Audience};
use super::metrics::CallMetrics;
use super::progress::Progress;
use super::ratelimit::BudgetMode;
use super::transform::{
    channel_doc, message_doc, ts_micros, user_doc, workspace_base, Channel, Message,
    MessageContext, Names, User,
};
use super::workspace::{self, Switches};
use crate::config::Secret;
use crate::sources::{
    AccessControl, Configuration, ConfigurationExt, DataSource, DocOp, DocSender, Document,
    SourceError,
};
use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The least time between two mid-channel resume points of a full sync. Each copies the
/// channel's cursor so far, and the job runner writes the latest one at most every second
/// anyway: without Slack's limits, one per thread made a quadratic cost of a channel's
/// threads; under them, a thread takes longer than this, so nothing changes there.
const CHECKPOINT_SPACING: Duration = Duration::from_millis(200);

/// Env variable multiplying every tier budget (tests and benchmarks against a time-scaled
/// simulator).
pub const TIER_SCALE_ENV: &str = "SLACK_TIER_SCALE";

/// Scopes a bot needs for a sync of public channels (more with the options:
/// [`required_scopes`]).
pub const REQUIRED_SCOPES: &[&str] = &["channels:history", "channels:read", "users:read"];

/// Scopes private channels need.
pub const PRIVATE_CHANNEL_SCOPES: &[&str] = &["groups:history", "groups:read"];

/// Scopes DMs and group DMs need.
pub const DIRECT_MESSAGE_SCOPES: &[&str] = &["im:history", "im:read", "mpim:history", "mpim:read"];

/// Scopes document-level security needs: emails are identities.
pub const DLS_SCOPES: &[&str] = &["users:read.email"];

/// Label of the token field, for messages.
const TOKEN_LABEL: &str = "Authentication Token";
/// Label of the window field, for messages.
const DAYS_LABEL: &str = "Days of message history to fetch";
/// Labels of the DLS fields, for messages.
const DLS_LABEL: &str = "Enable document level security";
const PRIVATE_LABEL: &str = "Index private channels";
const DIRECT_LABEL: &str = "Index direct messages";
/// Default of `fetch_last_n_days` when the field is empty (Elastic's documented default).
const DEFAULT_DAYS: u32 = 180;
/// Label of the budget field, for messages.
const BUDGET_LABEL: &str = "Slack rate budget";
/// Label of the thread look-back field, for messages.
pub const LOOKBACK_LABEL: &str = "Thread look-back of incremental syncs (days)";
/// Default of `thread_lookback_days`.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 14;

/// Everything a Slack source runs with. The first four come from the connector's schema;
/// the rest are internal options with defaults (env for base URL and tier scale), kept
/// ready for future schema fields (private channels, DMs, filters).
#[derive(Debug, Clone)]
pub struct SlackOptions {
    /// The connector the source runs for (labels its metrics; empty outside a service).
    pub connector_id: String,
    /// Bot (`xoxb-`) or user (`xoxp-`) token.
    pub token: Secret,
    /// Days of history; 0 = all history.
    pub fetch_last_n_days: u32,
    /// Join public, non-archived channels the bot is not in.
    pub auto_join_channels: bool,
    /// Index user documents.
    pub sync_users: bool,
    /// Incremental syncs re-read this many days of history for edits, deletions and
    /// thread activity (`thread_lookback_days`).
    pub thread_lookback_days: u32,
    /// API base URL (`SLACK_API_BASE_URL`, default `https://slack.com/api`).
    pub base_url: String,
    /// Tier budget multiplier (`SLACK_TIER_SCALE`, default 1).
    pub tier_scale: f64,
    /// Learned budgets (default) or the published tiers (`rate_budget`).
    pub rate_budget: BudgetMode,
    /// Client-side pacing at the budgets.
    pub pace: bool,
    /// How often a running sync logs its progress.
    pub progress_interval: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Retry limits per call.
    pub retry: crate::retry::RetryParams,
    /// Fixed "now" (epoch seconds) for the window; `None` = the clock.
    pub now: Option<i64>,
    /// `conversations.history` page size (1–999).
    pub history_page_size: u32,
    /// `users.list`, `conversations.list` and `conversations.replies` page size.
    pub page_size: u32,
    /// Channels fetched at once.
    pub channel_concurrency: usize,
    /// Threads fetched at once per channel.
    pub thread_concurrency: usize,
    /// Document-level security: every document carries `_allow_access_control`
    /// ([`super::identity`]) and access-control syncs write the users' identities.
    pub use_document_level_security: bool,
    /// Also index private channels the bot is in (needs `groups:*` scopes and DLS).
    pub include_private_channels: bool,
    /// Also index DMs and group DMs the token is in (needs `im:*`/`mpim:*` scopes and DLS).
    pub include_direct_messages: bool,
    /// Leave archived channels out (`exclude_archived_channels`).
    pub exclude_archived: bool,
    /// Only these channels (names, ids, `/regex/`); empty = all (`channels_include`).
    pub channel_include: ChannelList,
    /// Never these channels (`channels_exclude`; wins over the include list).
    pub channel_exclude: ChannelList,
    /// Leave bot messages out (`exclude_bot_messages`).
    pub skip_bot_messages: bool,
    /// Leave join, leave and topic notices out (`exclude_channel_event_messages`).
    pub skip_channel_events: bool,
    /// No message before this instant (epoch seconds; `start_date`); with
    /// `fetch_last_n_days` the later bound wins.
    pub start_date: Option<i64>,
    /// Team, user group and channel member documents ([`super::workspace`]).
    pub workspace: Switches,
    /// File documents and their content ([`super::files`]).
    pub files: FileOptions,
    /// Remote file documents ([`super::remote_files`]).
    pub remote_files: bool,
    /// Who reacted to each message ([`super::reactions`]).
    pub reaction_users: bool,
}

impl SlackOptions {
    /// Options with defaults for everything but the token.
    pub fn new(token: Secret) -> SlackOptions {
        SlackOptions {
            connector_id: String::new(),
            token,
            fetch_last_n_days: DEFAULT_DAYS,
            auto_join_channels: false,
            sync_users: true,
            thread_lookback_days: DEFAULT_LOOKBACK_DAYS,
            base_url: resolve_base_url(std::env::var(BASE_URL_ENV).ok().as_deref()),
            tier_scale: resolve_tier_scale(std::env::var(TIER_SCALE_ENV).ok().as_deref()),
            rate_budget: BudgetMode::Learned,
            pace: true,
            progress_interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: DEFAULT_RETRY,
            now: None,
            history_page_size: 200,
            page_size: 200,
            channel_concurrency: 8,
            thread_concurrency: 4,
            use_document_level_security: false,
            include_private_channels: false,
            include_direct_messages: false,
            exclude_archived: false,
            channel_include: ChannelList::default(),
            channel_exclude: ChannelList::default(),
            skip_bot_messages: false,
            skip_channel_events: false,
            start_date: None,
            workspace: Switches::default(),
            files: FileOptions::default(),
            remote_files: false,
            reaction_users: false,
        }
    }

    /// Reads the §4.1 fields of a configuration (the job's snapshot).
    pub fn from_configuration(configuration: &Configuration) -> Result<SlackOptions, SourceError> {
        let mut options = SlackOptions::new(Secret::new(
            configuration.str_value("token").unwrap_or_default(),
        ));
        options.fetch_last_n_days =
            days_field(configuration, "fetch_last_n_days", DEFAULT_DAYS, days_from)?;
        options.auto_join_channels = configuration
            .bool_value("auto_join_channels")
            .unwrap_or(false);
        options.sync_users = configuration.bool_value("sync_users").unwrap_or(true);
        let flag = |key: &str| configuration.bool_value(key).unwrap_or(false);
        options.use_document_level_security = flag("use_document_level_security");
        options.include_private_channels = flag("include_private_channels");
        options.include_direct_messages = flag("include_direct_messages");
        let budget = configuration.str_value("rate_budget").unwrap_or_default();
        options.rate_budget = BudgetMode::parse(&budget).ok_or_else(|| {
            SourceError::Configuration(format!(
                "'{BUDGET_LABEL}' must be 'learned' or 'published', got '{budget}'"
            ))
        })?;
        options.thread_lookback_days = days_field(
            configuration,
            "thread_lookback_days",
            DEFAULT_LOOKBACK_DAYS,
            lookback_days_from,
        )?;
        let filters = filters::from_configuration(configuration, now_secs())?;
        options.exclude_archived = filters.exclude_archived;
        options.channel_include = filters.include;
        options.channel_exclude = filters.exclude;
        options.skip_bot_messages = filters.exclude_bots;
        options.skip_channel_events = filters.exclude_events;
        options.start_date = filters.start;
        options.workspace = workspace::from_configuration(configuration)?;
        options.files = files::from_configuration(configuration)?;
        options.remote_files = super::remote_files::from_configuration(configuration)?;
        options.reaction_users = super::reactions::from_configuration(configuration)?;
        check_options(&options)?;
        Ok(options)
    }
}

/// Fail closed (pure): private channels, DMs and group DMs only with document-level
/// security, which lets only their members read them; without it they would be readable by
/// anyone who can search the index.
pub fn check_options(options: &SlackOptions) -> Result<(), SourceError> {
    if options.use_document_level_security {
        return Ok(());
    }
    let mut asked = Vec::new();
    if options.include_private_channels {
        asked.push(format!("'{PRIVATE_LABEL}' (include_private_channels)"));
    }
    if options.include_direct_messages {
        asked.push(format!("'{DIRECT_LABEL}' (include_direct_messages)"));
    }
    if asked.is_empty() {
        return Ok(());
    }
    Err(SourceError::Configuration(format!(
        "{} needs document level security: turn on '{DLS_LABEL}' (use_document_level_security) so that only their members can read them, or turn {} off; without it every private message would be readable by anyone who can search the index",
        asked.join(" and "),
        if asked.len() > 1 { "them" } else { "it" }
    )))
}

/// A number-of-days field: a value that is not an integer is an error, an empty one the
/// default, and `check` bounds the rest.
fn days_field(
    configuration: &Configuration,
    key: &str,
    default: u32,
    check: fn(i64) -> Result<u32, SourceError>,
) -> Result<u32, SourceError> {
    if let Some(message) = configuration.get(key).and_then(|f| f.coerce_error(key)) {
        return Err(SourceError::Configuration(message));
    }
    configuration.int_value(key).map_or(Ok(default), check)
}

/// `thread_lookback_days` → days (pure): 0 (only what is new) up to 365.
pub fn lookback_days_from(value: i64) -> Result<u32, SourceError> {
    u32::try_from(value)
        .ok()
        .filter(|d| *d <= 365)
        .ok_or_else(|| {
            SourceError::Configuration(format!(
                "'{LOOKBACK_LABEL}' must be between 0 and 365, got {value}"
            ))
        })
}

/// `fetch_last_n_days` → days (pure): negative or absurd values are configuration errors.
pub fn days_from(value: i64) -> Result<u32, SourceError> {
    if value < 0 {
        return Err(SourceError::Configuration(format!(
            "'{DAYS_LABEL}' must be 0 (all history) or a positive number of days, got {value}"
        )));
    }
    u32::try_from(value)
        .ok()
        .filter(|d| *d <= 365 * 100)
        .ok_or_else(|| {
            SourceError::Configuration(format!(
                "'{DAYS_LABEL}' is too large ({value}); use 0 for all history"
            ))
        })
}

/// Checks the token's shape (pure).
pub fn check_token_shape(token: &str) -> Result<(), SourceError> {
    if token.trim().is_empty() {
        return Err(SourceError::Configuration(format!(
            "'{TOKEN_LABEL}' cannot be empty"
        )));
    }
    // With token rotation Slack's access tokens start `xoxe.xoxb-` / `xoxe.xoxp-`.
    let kind = token.strip_prefix("xoxe.").unwrap_or(token);
    if !(kind.starts_with("xoxb-") || kind.starts_with("xoxp-")) {
        return Err(SourceError::Configuration(format!(
            "'{TOKEN_LABEL}' must be a Slack bot token (xoxb-…) or user token (xoxp-…)"
        )));
    }
    Ok(())
}

/// The scopes a sync with these options needs (pure).
pub fn required_scopes(options: &SlackOptions) -> Vec<&'static str> {
    let mut scopes = REQUIRED_SCOPES.to_vec();
    if options.auto_join_channels {
        scopes.push("channels:join");
    }
    if options.include_private_channels {
        scopes.extend(PRIVATE_CHANNEL_SCOPES);
    }
    if options.include_direct_messages {
        scopes.extend(DIRECT_MESSAGE_SCOPES);
    }
    if options.use_document_level_security {
        scopes.extend(DLS_SCOPES);
    }
    if options.workspace.team {
        scopes.extend(workspace::TEAM_SCOPES);
    }
    if options.workspace.user_groups {
        scopes.extend(workspace::GROUPS_SCOPES);
    }
    if options.files.sync {
        scopes.extend(files::FILES_SCOPES);
    }
    if options.remote_files {
        scopes.extend(super::remote_files::REMOTE_SCOPES);
    }
    if options.reaction_users {
        scopes.extend(super::reactions::REACTIONS_SCOPES);
    }
    scopes
}

/// Scopes a sync with `options` needs that `granted` (the `x-oauth-scopes` header) lacks
/// (pure).
pub fn missing_scopes(granted: &str, options: &SlackOptions) -> Vec<&'static str> {
    let granted: Vec<&str> = granted.split(',').map(str::trim).collect();
    required_scopes(options)
        .into_iter()
        .filter(|scope| !granted.contains(scope))
        .collect()
}

/// Whether a listed channel is read, joined first, or left out (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelPlan {
    /// The bot is a member: read it.
    Read,
    /// Join, then read.
    JoinThenRead,
    /// Not readable (not a member, no auto-join, archived, filtered out).
    Ignore,
}

/// Decides what to do with a listed channel (pure).
pub fn plan_channel(channel: &Channel, options: &SlackOptions) -> ChannelPlan {
    let name = channel.name.as_deref();
    if !filters::channel_wanted(
        &options.channel_include,
        &options.channel_exclude,
        &channel.id,
        name,
    ) {
        return ChannelPlan::Ignore;
    }
    let archived = channel.is_archived.unwrap_or(false);
    if archived && options.exclude_archived {
        return ChannelPlan::Ignore;
    }
    let is_public = identity::audience(channel) == Audience::Workspace;
    // Fail closed: whatever Slack lists, nothing members-only is read without DLS.
    if !is_public && !options.use_document_level_security {
        return ChannelPlan::Ignore;
    }
    match channel.is_member {
        Some(true) => ChannelPlan::Read,
        // DMs have no `is_member`: listed means the token is in them.
        None if channel.id.starts_with('D') => ChannelPlan::Read,
        _ if options.auto_join_channels && is_public && !archived => ChannelPlan::JoinThenRead,
        _ => ChannelPlan::Ignore,
    }
}

/// The `types` of `conversations.list` for the options (pure).
fn conversation_types(options: &SlackOptions) -> String {
    let mut types = vec!["public_channel"];
    if options.include_private_channels {
        types.push("private_channel");
    }
    if options.include_direct_messages {
        types.extend(["im", "mpim"]);
    }
    types.join(",")
}

/// Errors that skip one thread (deleted between history and replies), not the sync.
const THREAD_SKIP_CODES: &[&str] = &["thread_not_found"];

/// A page of messages as documents, the thread parents it names (history pages) with their
/// reply state, the newest and oldest ts it holds, and the next cursor.
struct MessagePage {
    /// Messages in the answer (the restricted cohort's pages stop at 15).
    items: usize,
    docs: Vec<Document>,
    /// Files shared by the page's messages (`sync_files`).
    files: Vec<SharedFile>,
    /// Messages whose reaction lists Slack cut short (`sync_reaction_users`): their index
    /// in `docs` and their `ts`, for `reactions.get` ([`super::reactions`]).
    incomplete: Vec<(usize, String)>,
    parents: Vec<(String, ThreadState)>,
    newest: Option<String>,
    oldest: Option<String>,
    next_cursor: Option<String>,
}

/// A channel left out because Slack refused it.
#[derive(Debug, Clone, PartialEq)]
struct Skipped {
    channel: String,
    reason: String,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    users: AtomicU64,
    channels: AtomicU64,
    messages: AtomicU64,
    threads: AtomicU64,
    skipped_threads: AtomicU64,
    /// Access-control syncs: identity documents made, conversations whose members were
    /// listed, members of other workspaces looked up.
    pub(super) identities: AtomicU64,
    pub(super) member_lists: AtomicU64,
    pub(super) external_users: AtomicU64,
    /// Team, user group and channel member documents.
    pub(super) workspace_docs: AtomicU64,
    /// Readable channels, once listed (`u64::MAX` before).
    channels_total: AtomicU64,
    /// Readable channels read or skipped.
    channels_done: AtomicU64,
    /// Channels a resumed sync found done before its interruption.
    channels_done_before: AtomicU64,
}

/// What `auth.test` told (asked once per job: validation, ping and the fetch share it).
#[derive(Debug, Clone)]
pub(super) struct Auth {
    url: Option<String>,
    scopes: Option<String>,
    pub(super) team_id: Option<String>,
    /// The token's own user (the app's bot user).
    pub(super) user_id: Option<String>,
}

pub(super) struct Inner {
    pub(super) options: SlackOptions,
    pub(super) client: SlackClient,
    skipped: Mutex<Vec<Skipped>>,
    pub(super) counters: Counters,
    /// The budgets the connector's cursor carried ([`DataSource::load_cursor`]).
    saved_budgets: Mutex<Option<LearnedBudgets>>,
    /// The workspace (`auth.test`), for the budgets the sync leaves.
    team_id: Mutex<Option<String>>,
    auth: Mutex<Option<Auth>>,
    /// The cursor this sync leaves, filled as channels finish.
    cursor: Mutex<SlackCursor>,
    /// Whether a sync completed (only then is there a cursor to leave).
    completed: AtomicBool,
    /// File downloads, counts and sightings ([`super::files`]).
    pub(super) files: Files,
    /// Remote file counts ([`super::remote_files`]).
    pub(super) remote: super::remote_files::RemoteCounters,
    /// Who-reacted counts ([`super::reactions`]).
    pub(super) reactions: super::reactions::ReactionCounters,
}

/// How a sync reads its channels.
enum Mode {
    /// A full sync from the start.
    Full,
    /// A full sync carrying on from its recorded points.
    Resume(Resume),
    /// An incremental sync from the connector's cursor.
    Incremental(SlackCursor),
}

/// How one channel is read.
enum ChannelRead {
    /// Everything in the window, from `progress` (where a resumed sync stood); with
    /// `checkpoints`, progress is marked as it goes.
    Full {
        progress: ChannelProgress,
        checkpoints: bool,
    },
    /// An incremental re-read of a channel the cursor knows.
    Since(ChannelCursor),
}

/// The Slack data source.
pub struct SlackSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SlackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSource")
            .field("options", &self.inner.options)
            .finish()
    }
}

impl SlackSource {
    /// A source with these options (refused when they would index private conversations
    /// without document-level security: [`check_options`]).
    pub fn new(options: SlackOptions) -> Result<SlackSource, SourceError> {
        check_options(&options)?;
        let client = SlackClient::new(ClientConfig {
            base_url: options.base_url.clone(),
            token: options.token.clone(),
            timeout: options.request_timeout,
            tier_scale: options.tier_scale,
            budget: options.rate_budget,
            pace: options.pace,
            retry: options.retry,
        })
        .map_err(|e| SourceError::Configuration(e.to_string()))?
        .with_metrics(CallMetrics::for_connector(&options.connector_id));
        let files = Files::new(options.files, options.request_timeout, &options.retry)?;
        Ok(SlackSource {
            inner: Arc::new(Inner {
                options,
                client,
                skipped: Mutex::new(Vec::new()),
                counters: Counters {
                    channels_total: AtomicU64::new(u64::MAX),
                    ..Counters::default()
                },
                saved_budgets: Mutex::new(None),
                team_id: Mutex::new(None),
                auth: Mutex::new(None),
                cursor: Mutex::new(SlackCursor::default()),
                completed: AtomicBool::new(false),
                files,
                remote: Default::default(),
                reactions: Default::default(),
            }),
        })
    }

    /// The options.
    pub fn options(&self) -> &SlackOptions {
        &self.inner.options
    }

    /// The token's own user (`auth.test`, asked once per source).
    pub async fn own_user(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, SourceError> {
        Ok(self.inner.auth_test(cancel).await?.user_id)
    }

    /// The user and bot names, every listed channel with its plan, and the permalink base:
    /// what live updates translate events with (`auth.test`, `users.list`,
    /// `conversations.list`; no documents).
    pub async fn directory(
        &self,
        cancel: &CancellationToken,
    ) -> Result<(Names, Vec<(Channel, ChannelPlan)>, Option<String>), SourceError> {
        let auth = self.inner.auth_test(cancel).await?;
        let base = auth.url.as_deref().and_then(workspace_base);
        let team_id = auth.team_id.clone().unwrap_or_default();
        let names = self.inner.fetch_users(&team_id, None, None, cancel).await?;
        let channels = self.inner.list_channels(cancel).await?;
        Ok((names, channels, base))
    }
}

/// Maps a failed call to the source's error (`context` says what was being fetched).
pub(super) fn source_error(error: SlackError, context: &str) -> SourceError {
    match classify(&error) {
        _ if matches!(error, SlackError::Cancelled) => SourceError::Cancelled,
        Class::Auth => SourceError::Auth(error.actionable()),
        Class::Retry { .. } => {
            SourceError::Fetch(format!("{context}: {error} (still failing after retries)"))
        }
        Class::Skip | Class::Fail => SourceError::Fetch(format!("{context}: {error}")),
    }
}

pub(super) fn check_cancel(cancel: &CancellationToken) -> Result<(), SourceError> {
    if cancel.is_cancelled() {
        Err(SourceError::Cancelled)
    } else {
        Ok(())
    }
}

/// Says that Slack treats the app as the restricted cohort, and what that means.
fn warn_restricted(progress: &Progress) {
    tracing::warn!(
        pages_capped_at_15 = progress.cohort.pages_capped(),
        eta_s = progress.eta().map(|d| d.as_secs()),
        "slack restricted cohort: conversations.history and conversations.replies answer 1 call a minute (Retry-After of a minute) and at most 15 messages a page, Slack's 2025 limits for commercially distributed apps outside the Marketplace; they are paced at 1 call a minute (install the connector as an internal app of the workspace to keep Tier 3)"
    );
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What every channel task shares.
struct Shared {
    names: Names,
    channel_names: HashMap<String, String>,
    base: Option<String>,
    /// The history window's bound (`oldest`, exclusive).
    oldest: Option<String>,
    /// Threads whose last reply is at or after this (µs) go into the cursor.
    threads_since: i64,
    /// The previous cursor's `threads_since` (incremental syncs).
    prev_threads_since: Option<i64>,
    /// The workspace (`auth.test`), for the DLS readers.
    team_id: String,
}

/// `doc`, protected by `readers` when document-level security is on.
fn protect(doc: Document, readers: Option<&AccessControl>) -> Document {
    match readers {
        Some(readers) => doc.with_access_control(readers),
        None => doc,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// `auth.test`, once per source: the answer is the same for the job's validation, ping
    /// and fetch.
    pub(super) async fn auth_test(&self, cancel: &CancellationToken) -> Result<Auth, SourceError> {
        if let Some(auth) = lock(&self.auth).clone() {
            return Ok(auth);
        }
        let reply = self
            .client
            .call::<Value>("auth.test", Verb::Get, &[], cancel)
            .await
            .map_err(|e| source_error(e, "checking the token (auth.test)"))?;
        let auth = Auth {
            url: reply.body.url,
            scopes: reply.scopes,
            team_id: reply.body.team_id,
            user_id: reply.body.user_id,
        };
        *lock(&self.auth) = Some(auth.clone());
        Ok(auth)
    }

    /// Every `users.list` page: the names (always); user documents into `sink` when given
    /// (protected when DLS is on); the users themselves into `keep` when given.
    pub(super) async fn fetch_users(
        &self,
        team_id: &str,
        sink: Option<&DocSender>,
        mut keep: Option<&mut Vec<User>>,
        cancel: &CancellationToken,
    ) -> Result<Names, SourceError> {
        let dls = self.options.use_document_level_security;
        let mut names = Names::default();
        let limit = self.options.page_size.to_string();
        let mut pager = Pager::new();
        loop {
            check_cancel(cancel)?;
            let mut params = vec![("limit", limit.as_str())];
            if let Some(c) = pager.cursor() {
                params.push(("cursor", c));
            }
            let reply = self
                .client
                .call_page::<User>("users.list", Verb::Get, &params, &pager, cancel)
                .await
                .map_err(|e| source_error(e, "listing users"))?;
            for user in &reply.body.items {
                names.add(user);
                if let Some(sink) = sink {
                    let readers = dls.then(|| identity::user_doc_readers(user, team_id));
                    let doc = protect(user_doc(user), readers.as_ref());
                    sink.send(DocOp::Index(doc)).await?;
                    self.counters.users.fetch_add(1, Ordering::Relaxed);
                }
            }
            let more = pager.advance(reply.body.next_cursor());
            if let Some(keep) = keep.as_deref_mut() {
                keep.extend(reply.body.items);
            }
            if !more {
                return Ok(names);
            }
        }
    }

    pub(super) async fn list_channels(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Vec<(Channel, ChannelPlan)>, SourceError> {
        let mut channels = Vec::new();
        let limit = self.options.page_size.to_string();
        let types = conversation_types(&self.options);
        let mut pager = Pager::new();
        loop {
            check_cancel(cancel)?;
            let mut params = vec![("limit", limit.as_str()), ("types", types.as_str())];
            if self.options.exclude_archived {
                params.push(("exclude_archived", "true"));
            }
            if let Some(c) = pager.cursor() {
                params.push(("cursor", c));
            }
            let reply = self
                .client
                .call_page::<Channel>("conversations.list", Verb::Get, &params, &pager, cancel)
                .await
                .map_err(|e| source_error(e, "listing channels"))?;
            // Slack filters after cutting the page: an empty page with a cursor is not the end.
            let more = pager.advance(reply.body.next_cursor());
            for channel in reply.body.items {
                let plan = plan_channel(&channel, &self.options);
                channels.push((channel, plan));
            }
            if !more {
                return Ok(channels);
            }
        }
    }

    pub(super) fn skip(&self, channel: &str, reason: &str) {
        tracing::warn!(channel_id = channel, reason, "skipping slack channel");
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Skipped {
                channel: channel.to_string(),
                reason: reason.to_string(),
            });
    }

    /// Reads one channel (see [`ChannelRead`]); leaves its cursor entry in `self.cursor`
    /// when it completes.
    async fn fetch_channel(
        &self,
        channel: &Channel,
        plan: ChannelPlan,
        read: ChannelRead,
        shared: &Shared,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let id = channel.id.as_str();
        if plan == ChannelPlan::JoinThenRead {
            let joined = self
                .client
                .call::<Value>(
                    "conversations.join",
                    Verb::PostForm,
                    &[("channel", id)],
                    cancel,
                )
                .await;
            if let Err(error) = joined {
                if classify(&error) == Class::Skip {
                    self.skip(id, error.code().unwrap_or("join_failed"));
                    return Ok(());
                }
                return Err(source_error(error, &format!("joining channel {id}")));
            }
        }
        let channel_name = channel.name.as_deref().unwrap_or(id);
        let readers = self
            .options
            .use_document_level_security
            .then(|| identity::conversation_readers(channel, &shared.team_id));
        let readers = readers.as_ref();
        let ctx = MessageContext {
            channel_id: id,
            channel_name,
            names: &shared.names,
            channels: &shared.channel_names,
            base: shared.base.as_deref(),
            reaction_users: self.options.reaction_users,
        };
        // Where the history is read from, and what the channel's cursor starts with.
        let (oldest, latest, mut cursor, prev, checkpoints) = match read {
            ChannelRead::Full {
                progress,
                checkpoints,
            } => (
                shared.oldest.clone(),
                progress.before,
                progress.cursor,
                None,
                checkpoints,
            ),
            ChannelRead::Since(prev) => {
                let window = shared.oldest.as_deref().and_then(ts_micros);
                let after = reread_after(&prev, shared.threads_since, window);
                let cursor = ChannelCursor {
                    latest: prev.latest.clone(),
                    ..ChannelCursor::default()
                };
                (
                    Some(ts_string(after)),
                    None,
                    cursor,
                    Some((prev, after)),
                    false,
                )
            }
        };
        // A channel read from a position has documents written already: a refusal now must
        // fail the sync, not skip the channel.
        let resumed = latest.is_some();
        // Mid-channel checkpoints at most every CHECKPOINT_SPACING (each copies the
        // channel's cursor so far).
        let mut last_checkpoint = std::time::Instant::now();
        let mut seen_parents = HashSet::new();
        let limit = self.options.history_page_size.clamp(1, 999).to_string();
        let mut pager = Pager::new();
        let mut first_page = true;
        loop {
            check_cancel(cancel)?;
            let mut params = vec![("channel", id), ("limit", limit.as_str())];
            if let Some(oldest) = oldest.as_deref() {
                params.push(("oldest", oldest));
            }
            if let Some(latest) = latest.as_deref() {
                params.push(("latest", latest));
            }
            if let Some(c) = pager.cursor() {
                params.push(("cursor", c));
            }
            let page = self
                .client
                .call_with(
                    "conversations.history",
                    Verb::Get,
                    &params,
                    cancel,
                    |bytes, head| self.message_page(bytes, head, &ctx, None, &pager),
                )
                .await;
            let mut page = match page {
                Ok(page) => page,
                Err(error) if first_page && !resumed && classify(&error) == Class::Skip => {
                    self.skip(id, error.code().unwrap_or("unreadable"));
                    return Ok(());
                }
                Err(error) => {
                    return Err(source_error(
                        error,
                        &format!("reading channel {id} history"),
                    ))
                }
            };
            self.observe_page("conversations.history", &limit, &page);
            if first_page {
                first_page = false;
                let doc = channel_doc(channel, &shared.names, shared.base.as_deref());
                sink.send(DocOp::Index(protect(doc, readers))).await?;
                self.counters.channels.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(newest) = page.newest.as_deref() {
                cursor.note(newest, None, shared.threads_since);
            }
            for (ts, state) in &page.parents {
                cursor.note(ts, Some(state.clone()), shared.threads_since);
            }
            self.complete_reactions(id, &mut page.docs, &page.incomplete, ctx.names, cancel)
                .await?;
            self.send_page(page.docs, readers, sink).await?;
            self.send_files(page.files, &ctx, readers, sink, cancel)
                .await?;
            // Full syncs read every thread; incremental ones the changed and new.
            let parents: Vec<&String> = match &prev {
                None => page.parents.iter().map(|(ts, _)| ts).collect(),
                Some((prev, _)) => page
                    .parents
                    .iter()
                    .filter(|(ts, state)| {
                        seen_parents.insert(ts.clone());
                        thread_changed(prev, shared.prev_threads_since, ts, state)
                    })
                    .map(|(ts, _)| ts)
                    .collect(),
            };
            // A few threads at once; the rate limiter paces them. Each thread that completes
            // the run of threads before it is a resume point: history resumes just before
            // its parent. (A manual loop rather than `buffer_unordered` with a closure:
            // async_trait futures must be `Send` for every lifetime, which closures over
            // borrowed data cannot express.)
            let mut pending = parents.iter().enumerate();
            let mut threads = FuturesUnordered::new();
            let mut finished = vec![false; parents.len()];
            let mut run = 0;
            loop {
                while threads.len() < self.options.thread_concurrency.max(1) {
                    let Some((i, parent)) = pending.next() else {
                        break;
                    };
                    threads.push(
                        self.fetch_thread(id, parent, &ctx, readers, sink, cancel)
                            .map(move |result| (i, result)),
                    );
                }
                let Some((i, result)) = threads.next().await else {
                    break;
                };
                result?;
                if prev.is_some() {
                    sink.sweep(thread_scope(id, parents[i])).await?;
                }
                finished[i] = true;
                let before = run;
                while finished.get(run) == Some(&true) {
                    run += 1;
                }
                if checkpoints
                    && run > before
                    && run < parents.len()
                    && last_checkpoint.elapsed() >= CHECKPOINT_SPACING
                {
                    last_checkpoint = std::time::Instant::now();
                    let progress = ChannelProgress {
                        done: false,
                        before: Some(parents[run - 1].clone()),
                        cursor: cursor.clone(),
                    };
                    sink.checkpoint(id, progress.to_value()).await?;
                }
            }
            if !pager.advance(page.next_cursor.as_deref()) {
                break;
            }
            if checkpoints && last_checkpoint.elapsed() >= CHECKPOINT_SPACING {
                last_checkpoint = std::time::Instant::now();
                let progress = ChannelProgress {
                    done: false,
                    before: page.oldest.clone(),
                    cursor: cursor.clone(),
                };
                sink.checkpoint(id, progress.to_value()).await?;
            }
        }
        if let Some((prev, after)) = &prev {
            // Tracked threads the re-read did not show as parents are gone (or have no
            // replies left); parents before the re-read (out of the window now) are not.
            for parent in prev.threads.keys() {
                let reread = ts_micros(parent).is_some_and(|ts| ts > *after);
                if reread && !seen_parents.contains(parent) {
                    sink.sweep(thread_scope(id, parent)).await?;
                }
            }
            sink.sweep(channel_scope(id, *after)).await?;
        }
        if checkpoints {
            let progress = ChannelProgress {
                done: true,
                before: None,
                cursor: cursor.clone(),
            };
            sink.checkpoint(id, progress.to_value()).await?;
        }
        lock(&self.cursor).channels.insert(id.to_string(), cursor);
        Ok(())
    }

    /// A history or replies page made into documents while its body is still in the
    /// receive buffer (messages borrow their strings from it). History pages also list
    /// the thread parents to fetch; a replies page (`thread` = the parent's ts) leaves out
    /// the parent and broadcasts, which history already gave.
    fn message_page(
        &self,
        bytes: &[u8],
        head: &Head<'_>,
        ctx: &MessageContext<'_>,
        thread: Option<&str>,
        pager: &Pager,
    ) -> Result<MessagePage, SlackError> {
        let body = head.decode::<Message<'_>>(bytes)?;
        pager.check(head.method, body.next_cursor())?;
        let mut page = MessagePage {
            items: body.items.len(),
            docs: Vec::with_capacity(body.items.len()),
            files: Vec::new(),
            incomplete: Vec::new(),
            parents: Vec::new(),
            newest: body.items.first().map(|m| m.ts.to_string()),
            oldest: body.items.last().map(|m| m.ts.to_string()),
            next_cursor: body.next_cursor().map(str::to_string),
        };
        for message in &body.items {
            if message.ts.is_empty() || message.kind.as_deref().is_some_and(|k| k != "message") {
                continue;
            }
            // A filtered parent still brings its thread: the replies are people's.
            let wanted = self.keep(message);
            match thread {
                Some(parent_ts) => {
                    let is_parent = message.ts == parent_ts;
                    let is_broadcast = message.subtype.as_deref() == Some("thread_broadcast");
                    if is_parent || is_broadcast {
                        continue;
                    }
                }
                None => {
                    let is_parent = message.reply_count.unwrap_or(0) > 0
                        && message.thread_ts.as_deref().is_none_or(|t| t == message.ts);
                    if is_parent {
                        let state = ThreadState {
                            latest_reply: message.latest_reply.as_deref().map(str::to_string),
                            reply_count: message.reply_count.unwrap_or(0),
                        };
                        page.parents.push((message.ts.to_string(), state));
                    }
                }
            }
            if wanted {
                let cut_short = self.options.reaction_users
                    && message
                        .reactions
                        .as_deref()
                        .is_some_and(super::reactions::cut_short);
                if cut_short {
                    page.incomplete
                        .push((page.docs.len(), message.ts.to_string()));
                }
                page.docs.push(message_doc(message, ctx));
                if self.options.files.sync && message.files.is_some() {
                    page.files
                        .extend(SharedFile::of_message(message, ctx.channel_id));
                }
            }
        }
        Ok(page)
    }

    async fn send_page(
        &self,
        docs: Vec<Document>,
        readers: Option<&AccessControl>,
        sink: &DocSender,
    ) -> Result<(), SourceError> {
        for doc in docs {
            sink.send(DocOp::Index(protect(doc, readers))).await?;
            self.counters.messages.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The documents of a page's files, after its messages (see [`super::files`]: a file
    /// is written again only when seen in another conversation).
    async fn send_files(
        &self,
        shared: Vec<SharedFile>,
        ctx: &MessageContext<'_>,
        readers: Option<&AccessControl>,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        for file in shared {
            let Some((channels, readers)) =
                self.files.seen.note(&file.id, &file.channel_id, readers)
            else {
                continue;
            };
            let content = self
                .files
                .content(&file, &self.options.base_url, &self.options.token, cancel)
                .await;
            let doc = files::file_doc(&file, &channels, ctx.names, ctx.channels, content);
            sink.send(DocOp::Index(protect(doc, readers.as_ref())))
                .await?;
            self.files.written();
        }
        Ok(())
    }

    /// Whether the filters keep a message ([`filters::message_wanted`]).
    fn keep(&self, message: &Message<'_>) -> bool {
        filters::message_wanted(
            message.subtype.as_deref(),
            message.bot_id.as_deref(),
            self.options.skip_bot_messages,
            self.options.skip_channel_events,
        )
    }

    async fn fetch_thread(
        &self,
        channel_id: &str,
        parent_ts: &str,
        ctx: &MessageContext<'_>,
        readers: Option<&AccessControl>,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let limit = self.options.page_size.clamp(1, 999).to_string();
        let mut pager = Pager::new();
        self.counters.threads.fetch_add(1, Ordering::Relaxed);
        loop {
            check_cancel(cancel)?;
            let mut params = vec![
                ("channel", channel_id),
                ("ts", parent_ts),
                ("limit", limit.as_str()),
            ];
            if let Some(c) = pager.cursor() {
                params.push(("cursor", c));
            }
            let page = self
                .client
                .call_with(
                    "conversations.replies",
                    Verb::Get,
                    &params,
                    cancel,
                    |bytes, head| self.message_page(bytes, head, ctx, Some(parent_ts), &pager),
                )
                .await;
            let mut page = match page {
                Ok(page) => page,
                Err(error) if error.code().is_some_and(|c| THREAD_SKIP_CODES.contains(&c)) => {
                    tracing::warn!(
                        channel_id,
                        thread_ts = parent_ts,
                        "slack thread vanished during the sync"
                    );
                    self.counters
                        .skipped_threads
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(error) => {
                    return Err(source_error(
                        error,
                        &format!("reading thread {parent_ts} of channel {channel_id}"),
                    ))
                }
            };
            self.observe_page("conversations.replies", &limit, &page);
            let incomplete = &page.incomplete;
            self.complete_reactions(channel_id, &mut page.docs, incomplete, ctx.names, cancel)
                .await?;
            self.send_page(page.docs, readers, sink).await?;
            self.send_files(page.files, ctx, readers, sink, cancel)
                .await?;
            if !pager.advance(page.next_cursor.as_deref()) {
                return Ok(());
            }
        }
    }

    /// Tells the budgets how full a page was (the restricted cohort's stop at 15).
    fn observe_page(&self, method: &str, limit: &str, page: &MessagePage) {
        let asked = limit.parse().unwrap_or(0);
        self.client
            .limiter()
            .observe_page(method, asked, page.items, page.next_cursor.is_some());
    }

    /// Starts the budgets from what the last sync learned, if they fit this workspace.
    fn restore_budgets(&self, team_id: Option<&str>) {
        *self.team_id.lock().unwrap_or_else(|e| e.into_inner()) = team_id.map(str::to_string);
        let saved = self
            .saved_budgets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(saved) = saved else { return };
        if self.options.rate_budget != BudgetMode::Learned || !self.options.pace {
            return;
        }
        match saved.usable(team_id, now_secs()) {
            Ok(()) => {
                let restored = self.client.limiter().seed(&saved);
                tracing::info!(
                    methods = restored,
                    restricted_cohort = saved.restricted_cohort(),
                    "slack rate budgets start from the last sync's"
                );
            }
            Err(reason) => tracing::info!(
                reason,
                "slack rate budgets start from the published tiers: the saved ones are not used"
            ),
        }
    }

    /// The budgets to leave in the connector's cursor: what this sync learned over what the
    /// last one left (learned mode); the saved ones unchanged otherwise.
    fn budgets_cursor(&self) -> Option<Value> {
        let saved = self
            .saved_budgets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        let learned = self.client.limiter().learned();
        if learned.is_empty() {
            return (!saved.methods.is_empty()).then(|| saved.to_cursor_value());
        }
        let budgets = LearnedBudgets {
            team_id: self
                .team_id
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .or(saved.team_id.clone()),
            learned_at: Some(now_secs()),
            methods: saved.merged(learned),
        };
        Some(budgets.to_cursor_value())
    }

    /// The sync's progress now.
    fn progress(&self) -> Progress {
        let stats = self.client.stats();
        let limiter = self.client.limiter();
        let total = self.counters.channels_total.load(Ordering::Relaxed);
        Progress {
            mode: limiter.mode(),
            channels_done: self.counters.channels_done.load(Ordering::Relaxed),
            channels_total: (total != u64::MAX).then_some(total),
            calls: stats.requests.load(Ordering::Relaxed),
            pacing_waits: stats.pacing_waits.load(Ordering::Relaxed),
            budgets: limiter.budgets(),
            per_method: stats.per_method(),
            cohort: limiter.cohort(),
        }
    }

    /// A sync, logging its progress every [`SlackOptions::progress_interval`].
    async fn sync_with_progress(
        &self,
        mode: Mode,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let fetch = self.sync(mode, sink, cancel);
        tokio::pin!(fetch);
        let every = self
            .options
            .progress_interval
            .max(Duration::from_millis(10));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                result = &mut fetch => return result,
                _ = tick.tick() => {
                    let progress = self.progress();
                    tracing::info!(
                        channels_done = progress.channels_done,
                        channels_total = progress.channels_total,
                        calls = progress.calls,
                        eta_s = progress.eta().map(|d| d.as_secs()),
                        rates = %progress.rates(),
                        "slack sync progress"
                    );
                }
            }
        }
    }

    /// One sync: users, channels, then the channels to read as `mode` says.
    async fn sync(
        &self,
        mode: Mode,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let auth = self.auth_test(cancel).await?;
        self.restore_budgets(auth.team_id.as_deref());
        let base = auth.url.as_deref().and_then(workspace_base);
        // `team_id` is required in an `auth.test` answer (`answer::shape`).
        let team_id = auth.team_id.clone().unwrap_or_default();
        let user_docs = self.options.sync_users.then_some(sink);
        let names = self.fetch_users(&team_id, user_docs, None, cancel).await?;
        tracing::debug!(users = names.len(), "slack users fetched");
        self.fetch_workspace(&team_id, &names, sink, cancel).await?;
        let channels = self.list_channels(cancel).await?;
        let dls = self.options.use_document_level_security;
        let member_channels: Vec<_> = channels
            .iter()
            .filter(|(_, plan)| {
                self.options.workspace.channel_members && *plan != ChannelPlan::Ignore
            })
            .map(|(c, _)| {
                (
                    c.clone(),
                    dls.then(|| identity::conversation_readers(c, &team_id)),
                )
            })
            .collect();
        // The conversations read, with their readers: where remote files may be indexed.
        let remote_channels: HashMap<String, Option<AccessControl>> = channels
            .iter()
            .filter(|(_, plan)| self.options.remote_files && *plan != ChannelPlan::Ignore)
            .map(|(c, _)| {
                let readers = dls.then(|| identity::conversation_readers(c, &team_id));
                (c.id.clone(), readers)
            })
            .collect();
        let channel_names: HashMap<String, String> = channels
            .iter()
            .filter_map(|(c, _)| c.name.clone().map(|n| (c.id.clone(), n)))
            .collect();
        let now = self.options.now.unwrap_or_else(now_secs);
        let threads_since =
            now.saturating_sub(i64::from(self.options.thread_lookback_days) * 86_400) * 1_000_000;
        let window = history_oldest(now, self.options.fetch_last_n_days, self.options.start_date);
        let (oldest, prev_threads_since) = match &mode {
            // A resumed sync reads the window it started with.
            Mode::Resume(resume) => (resume.window.clone().unwrap_or(window), None),
            Mode::Incremental(cursor) => (window, cursor.threads_since),
            Mode::Full => (window, None),
        };
        lock(&self.cursor).threads_since = Some(threads_since);
        if !matches!(mode, Mode::Incremental(_)) {
            sink.checkpoint(WINDOW_KEY, json!(oldest)).await?;
        }
        let mut reads = Vec::new();
        for (channel, plan) in channels {
            if plan == ChannelPlan::Ignore {
                continue;
            }
            let fresh = || ChannelRead::Full {
                progress: ChannelProgress::default(),
                checkpoints: !matches!(mode, Mode::Incremental(_)),
            };
            let read = match &mode {
                Mode::Full => fresh(),
                Mode::Resume(resume) => match resume.channels.get(&channel.id) {
                    Some(progress) if progress.done => {
                        self.counters
                            .channels_done_before
                            .fetch_add(1, Ordering::Relaxed);
                        self.counters.channels_done.fetch_add(1, Ordering::Relaxed);
                        lock(&self.cursor)
                            .channels
                            .insert(channel.id.clone(), progress.cursor.clone());
                        continue;
                    }
                    Some(progress) => ChannelRead::Full {
                        progress: progress.clone(),
                        checkpoints: true,
                    },
                    None => fresh(),
                },
                // New channels get a full read.
                Mode::Incremental(cursor) => match cursor.channels.get(&channel.id) {
                    Some(prev) => ChannelRead::Since(prev.clone()),
                    None => fresh(),
                },
            };
            reads.push((channel, plan, read));
        }
        tracing::debug!(channels = reads.len(), "slack channels to read");
        // Progress counts the channels a resumed sync found done among the done and the total.
        self.counters.channels_total.store(
            reads.len() as u64 + self.counters.channels_done_before.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let shared = Shared {
            names,
            channel_names,
            base,
            oldest,
            threads_since,
            prev_threads_since,
            team_id,
        };
        let shared = &shared;
        let mut reads = reads.into_iter();
        let mut tasks = FuturesUnordered::new();
        loop {
            while tasks.len() < self.options.channel_concurrency.max(1) {
                let Some((channel, plan, read)) = reads.next() else {
                    break;
                };
                let span = tracing::debug_span!("slack_channel", channel_id = %channel.id);
                tasks.push(
                    async move {
                        self.fetch_channel(&channel, plan, read, shared, sink, cancel)
                            .await
                    }
                    .instrument(span),
                );
            }
            match tasks.next().await {
                // The first failure ends the sync; dropping `tasks` stops the other channels.
                Some(result) => {
                    result?;
                    self.counters.channels_done.fetch_add(1, Ordering::Relaxed);
                }
                None => break,
            }
        }
        // After the reads: auto-join has made the bot a member where it may read.
        self.fetch_channel_members(&member_channels, &shared.names, sink, cancel)
            .await?;
        if self.options.remote_files {
            let (names, channel_names) = (&shared.names, &shared.channel_names);
            self.fetch_remote_files(&remote_channels, names, channel_names, sink, cancel)
                .await?;
        }
        self.completed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Runs a sync and logs what it fetched.
    async fn sync_logged(
        &self,
        mode: Mode,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let started = std::time::Instant::now();
        let result = self.sync_with_progress(mode, sink, cancel).await;
        let counters = &self.counters;
        tracing::info!(
            ok = result.is_ok(),
            users = counters.users.load(Ordering::Relaxed),
            channels = counters.channels.load(Ordering::Relaxed),
            channels_done_before = counters.channels_done_before.load(Ordering::Relaxed),
            messages = counters.messages.load(Ordering::Relaxed),
            threads = counters.threads.load(Ordering::Relaxed),
            requests = self.client.stats().requests.load(Ordering::Relaxed),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "slack fetch finished"
        );
        let progress = self.progress();
        if progress.cohort.recognised() {
            warn_restricted(&progress);
        }
        tracing::info!(
            mode = progress.mode.as_str(),
            pacing_waits = progress.pacing_waits,
            rates = %progress.rates(),
            "slack rate budget: {}",
            progress.pacing_verdict()
        );
        result
    }
}

#[async_trait]
impl DataSource for SlackSource {
    async fn ping(&self) -> Result<(), SourceError> {
        self.inner
            .auth_test(&CancellationToken::new())
            .await
            .map(|_| ())
    }

    async fn validate(&self) -> Result<(), SourceError> {
        check_token_shape(self.inner.options.token.expose())?;
        let auth = self.inner.auth_test(&CancellationToken::new()).await?;
        if let Some(granted) = auth.scopes.as_deref() {
            let missing = missing_scopes(granted, &self.inner.options);
            if !missing.is_empty() {
                return Err(SourceError::Auth(format!(
                    "the Slack token lacks the scopes {} (token scopes: {}); add them to the app's bot token scopes and reinstall the app",
                    missing.join(", "),
                    if granted.is_empty() { "none" } else { granted }
                )));
            }
        }
        Ok(())
    }

    async fn get_docs(
        &self,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        self.inner.sync_logged(Mode::Full, sink, cancel).await
    }

    async fn resume_docs(
        &self,
        checkpoints: &Map<String, Value>,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let resume = Resume::read(checkpoints);
        tracing::info!(
            channels_done = resume.channels.values().filter(|c| c.done).count(),
            channels_started = resume.channels.values().filter(|c| !c.done).count(),
            "resuming the slack fetch"
        );
        self.inner
            .sync_logged(Mode::Resume(resume), sink, cancel)
            .await
    }

    async fn get_docs_incrementally(
        &self,
        cursor: Option<&Value>,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let (cursor, problem) = SlackCursor::read(cursor);
        if let Some(problem) = problem {
            tracing::warn!(%problem, "every channel gets a full read, and nothing is deleted");
        }
        tracing::info!(
            known_channels = cursor.channels.len(),
            lookback_days = self.inner.options.thread_lookback_days,
            "incremental slack fetch"
        );
        self.inner
            .sync_logged(Mode::Incremental(cursor), sink, cancel)
            .await
    }

    fn load_cursor(&self, cursor: &Value) {
        match LearnedBudgets::from_sync_cursor(cursor) {
            Ok(budgets) => {
                *self
                    .inner
                    .saved_budgets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = budgets
            }
            Err(error) => tracing::warn!(%error, "slack rate budgets not restored"),
        }
    }

    /// One object: the incremental state (channels, `threads_since`) once a sync completed,
    /// and the learned budgets under [`CURSOR_KEY`].
    fn sync_cursor(&self) -> Option<Value> {
        let mut cursor = match self
            .inner
            .completed
            .load(Ordering::Relaxed)
            .then(|| lock(&self.inner.cursor).to_value())
        {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        if let Some(budgets) = self.inner.budgets_cursor() {
            cursor.insert(CURSOR_KEY.to_string(), budgets);
        }
        (!cursor.is_empty()).then_some(Value::Object(cursor))
    }

    fn document_level_security(&self) -> bool {
        self.inner.options.use_document_level_security
    }

    async fn get_access_control(
        &self,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let started = std::time::Instant::now();
        let result = self.inner.get_access_control(sink, cancel).await;
        let counters = &self.inner.counters;
        tracing::info!(
            ok = result.is_ok(),
            identities = counters.identities.load(Ordering::Relaxed),
            conversations = counters.member_lists.load(Ordering::Relaxed),
            external_users = counters.external_users.load(Ordering::Relaxed),
            requests = self.inner.client.stats().requests.load(Ordering::Relaxed),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "slack access control fetch finished"
        );
        result
    }

    fn content_mappings(&self) -> Map<String, Value> {
        super::mapping::properties()
    }

    fn metadata(&self) -> Value {
        let skipped = lock(&self.inner.skipped).clone();
        let stats = self.inner.client.stats();
        let counters = &self.inner.counters;
        let progress = self.inner.progress();
        let mut metadata = json!({
            "skipped_channels": skipped.len(),
            "skipped": skipped
                .iter()
                .map(|s| json!({"channel": s.channel, "reason": s.reason}))
                .collect::<Vec<_>>(),
            "users": counters.users.load(Ordering::Relaxed),
            "channels": counters.channels.load(Ordering::Relaxed),
            "messages": counters.messages.load(Ordering::Relaxed),
            "threads": counters.threads.load(Ordering::Relaxed),
            "skipped_threads": counters.skipped_threads.load(Ordering::Relaxed),
            "identities": counters.identities.load(Ordering::Relaxed),
            "member_lists": counters.member_lists.load(Ordering::Relaxed),
            "external_users": counters.external_users.load(Ordering::Relaxed),
            "workspace_documents": counters.workspace_docs.load(Ordering::Relaxed),
            "channels_done_before": counters.channels_done_before.load(Ordering::Relaxed),
            "api_requests": stats.requests.load(Ordering::Relaxed),
            "api_retries": stats.retries.load(Ordering::Relaxed),
            "api_throttled": stats.throttled.load(Ordering::Relaxed),
            "rate_budget": progress.rate_budget_json(),
            "progress": progress.progress_json(),
        });
        if self.inner.options.files.sync {
            metadata["files"] = self.inner.files.counters.to_value();
        }
        if self.inner.options.remote_files {
            metadata["remote_files"] = self.inner.remote.to_value();
        }
        if self.inner.options.reaction_users {
            metadata["reactions"] = self.inner.reactions.to_value();
        }
        metadata
    }

    /// Binary files go to the pipeline (`_attachment`) only when it extracts them.
    fn use_pipeline(&self, settings: &crate::sync::PipelineSettings) {
        let extracts = settings.extract_binary_content && settings.query_name().is_some();
        self.inner
            .files
            .pipeline_extracts
            .store(extracts, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ConfigField;

    fn config(days: Value) -> Configuration {
        let mut c = super::super::default_configuration();
        c.get_mut("token").unwrap().value = json!("xoxb-1");
        c.get_mut("fetch_last_n_days").unwrap().value = days;
        c
    }

    #[test]
    fn options_from_the_schema() {
        let options = SlackOptions::from_configuration(&config(json!(30))).unwrap();
        assert_eq!(options.fetch_last_n_days, 30);
        assert!(!options.auto_join_channels);
        assert!(options.sync_users);
        assert_eq!(options.token.expose(), "xoxb-1");
        let zero = SlackOptions::from_configuration(&config(json!("0"))).unwrap();
        assert_eq!(zero.fetch_last_n_days, 0);
        let empty = SlackOptions::from_configuration(&config(json!(""))).unwrap();
        assert_eq!(empty.fetch_last_n_days, DEFAULT_DAYS);
        let negative = SlackOptions::from_configuration(&config(json!(-1))).unwrap_err();
        assert!(matches!(negative, SourceError::Configuration(ref m) if m.contains(DAYS_LABEL)));
        let garbage = SlackOptions::from_configuration(&config(json!("many"))).unwrap_err();
        assert!(matches!(garbage, SourceError::Configuration(_)));
        let mut toggles = config(json!(1));
        toggles.insert(
            "auto_join_channels".into(),
            ConfigField::new("x", "bool", 3).value(json!("true")),
        );
        toggles.get_mut("sync_users").unwrap().value = json!(false);
        let options = SlackOptions::from_configuration(&toggles).unwrap();
        assert!(options.auto_join_channels);
        assert!(!options.sync_users);
        // rate_budget: learned when absent or empty, published when asked, else an error
        // naming the field.
        assert_eq!(options.rate_budget, BudgetMode::Learned);
        let mut budget = config(json!(1));
        budget.insert(
            "rate_budget".into(),
            ConfigField::new("x", "str", 10).value(json!("Published")),
        );
        let options = SlackOptions::from_configuration(&budget).unwrap();
        assert_eq!(options.rate_budget, BudgetMode::Published);
        budget.get_mut("rate_budget").unwrap().value = json!("");
        let options = SlackOptions::from_configuration(&budget).unwrap();
        assert_eq!(options.rate_budget, BudgetMode::Learned);
        budget.get_mut("rate_budget").unwrap().value = json!("fast");
        let error = SlackOptions::from_configuration(&budget).unwrap_err();
        assert!(
            matches!(error, SourceError::Configuration(ref m) if m.contains(BUDGET_LABEL) && m.contains("fast")),
            "{error}"
        );
    }

    #[test]
    fn token_shape_and_scopes() {
        let empty = check_token_shape("").unwrap_err().to_string();
        assert_eq!(empty, "'Authentication Token' cannot be empty");
        assert!(check_token_shape("abc")
            .unwrap_err()
            .to_string()
            .contains("xoxb-"));
        assert!(check_token_shape("xoxb-1").is_ok());
        assert!(check_token_shape("xoxp-1").is_ok());
        assert!(
            check_token_shape("xoxe.xoxb-1-abc").is_ok(),
            "a rotating token"
        );
        assert!(check_token_shape("xoxe-1-abc").is_err(), "a refresh token");
        let options = SlackOptions::new(Secret::new("xoxb-1"));
        let join = SlackOptions {
            auto_join_channels: true,
            ..options.clone()
        };
        assert_eq!(
            missing_scopes("channels:read,users:read", &join),
            vec!["channels:history", "channels:join"]
        );
        assert!(missing_scopes("channels:history,channels:read,users:read", &options).is_empty());
        // What is switched on adds its scopes, and only then.
        let everything = SlackOptions {
            use_document_level_security: true,
            include_private_channels: true,
            include_direct_messages: true,
            ..options.clone()
        };
        assert_eq!(
            missing_scopes("channels:history,channels:read,users:read", &everything),
            vec![
                "groups:history",
                "groups:read",
                "im:history",
                "im:read",
                "mpim:history",
                "mpim:read",
                "users:read.email"
            ]
        );
        let private_only = SlackOptions {
            use_document_level_security: true,
            include_private_channels: true,
            ..options.clone()
        };
        assert_eq!(
            missing_scopes(
                "channels:history,channels:read,users:read,users:read.email,groups:read",
                &private_only
            ),
            vec!["groups:history"]
        );
        // Who reacted needs `reactions:read`, and only when on.
        let reacting = SlackOptions {
            reaction_users: true,
            ..options.clone()
        };
        let base = "channels:history,channels:read,users:read";
        assert_eq!(missing_scopes(base, &reacting), vec!["reactions:read"]);
        assert!(!required_scopes(&options).contains(&"reactions:read"));
        let mut on = config(json!(30));
        on.get_mut("sync_reaction_users").unwrap().value = json!(true);
        let configured = SlackOptions::from_configuration(&on).unwrap();
        assert!(configured.reaction_users);
    }

    #[test]
    fn private_conversations_need_document_level_security() {
        let mut config = config(json!(30));
        for (key, value) in [
            ("include_private_channels", true),
            ("include_direct_messages", true),
        ] {
            config.get_mut(key).unwrap().value = json!(value);
        }
        let error = SlackOptions::from_configuration(&config).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, SourceError::Configuration(_)), "{error:?}");
        assert!(text.contains("'Index private channels' (include_private_channels) and 'Index direct messages' (include_direct_messages) needs document level security"), "{text}");
        assert!(
            text.contains("turn on 'Enable document level security' (use_document_level_security)"),
            "{text}"
        );
        config.get_mut("include_direct_messages").unwrap().value = json!(false);
        let text = SlackOptions::from_configuration(&config)
            .unwrap_err()
            .to_string();
        assert!(text.contains("or turn it off"), "{text}");
        config.get_mut("use_document_level_security").unwrap().value = json!(true);
        let options = SlackOptions::from_configuration(&config).unwrap();
        assert!(options.use_document_level_security && options.include_private_channels);
        // Options set in code are checked too.
        let unsafe_options = SlackOptions {
            use_document_level_security: false,
            ..options
        };
        assert!(SlackSource::new(unsafe_options).is_err());
        // The default configuration indexes public channels only, without DLS.
        let defaults = SlackOptions::from_configuration(&self::config(json!(1))).unwrap();
        assert!(!defaults.use_document_level_security);
        assert!(!defaults.include_private_channels && !defaults.include_direct_messages);
    }

    #[test]
    fn channel_plans() {
        let options = SlackOptions::new(Secret::new("xoxb-1"));
        let channel = |member: bool, archived: bool| Channel {
            id: "C1".into(),
            name: Some("general".into()),
            is_member: Some(member),
            is_archived: Some(archived),
            is_private: Some(false),
            ..Channel::default()
        };
        assert_eq!(
            plan_channel(&channel(true, false), &options),
            ChannelPlan::Read
        );
        assert_eq!(
            plan_channel(&channel(true, true), &options),
            ChannelPlan::Read
        );
        assert_eq!(
            plan_channel(&channel(false, false), &options),
            ChannelPlan::Ignore
        );
        let mut join = options.clone();
        join.auto_join_channels = true;
        assert_eq!(
            plan_channel(&channel(false, false), &join),
            ChannelPlan::JoinThenRead
        );
        assert_eq!(
            plan_channel(&channel(false, true), &join),
            ChannelPlan::Ignore
        );
        let mut filtered = options.clone();
        filtered.channel_exclude = ChannelList::exact(&["general"]);
        assert_eq!(
            plan_channel(&channel(true, false), &filtered),
            ChannelPlan::Ignore
        );
        filtered.channel_exclude = ChannelList::default();
        filtered.channel_include = ChannelList::exact(&["C2"]);
        assert_eq!(
            plan_channel(&channel(true, false), &filtered),
            ChannelPlan::Ignore
        );
        filtered.channel_include = ChannelList::exact(&["C1"]);
        filtered.exclude_archived = true;
        assert_eq!(
            plan_channel(&channel(true, true), &filtered),
            ChannelPlan::Ignore
        );
        assert_eq!(conversation_types(&options), "public_channel");
        // Fail closed: without DLS nothing members-only is read, whatever Slack lists.
        let private = Channel {
            is_private: Some(true),
            ..channel(true, false)
        };
        let dm = Channel {
            id: "D1".into(),
            is_im: Some(true),
            is_member: None,
            is_private: None,
            ..channel(true, false)
        };
        let unclear = Channel {
            is_private: None,
            ..channel(true, false)
        };
        for conversation in [&private, &dm, &unclear] {
            assert_eq!(plan_channel(conversation, &options), ChannelPlan::Ignore);
        }
        let dls = SlackOptions {
            use_document_level_security: true,
            include_private_channels: true,
            include_direct_messages: true,
            ..options.clone()
        };
        for conversation in [&private, &dm, &unclear] {
            assert_eq!(plan_channel(conversation, &dls), ChannelPlan::Read);
        }
        // Never joined: only public channels can be.
        let outside = Channel {
            is_member: Some(false),
            ..private.clone()
        };
        let join_dls = SlackOptions {
            auto_join_channels: true,
            ..dls.clone()
        };
        assert_eq!(plan_channel(&outside, &join_dls), ChannelPlan::Ignore);
        assert_eq!(
            conversation_types(&dls),
            "public_channel,private_channel,im,mpim"
        );
    }
}
