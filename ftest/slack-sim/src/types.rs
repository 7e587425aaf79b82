//! Public types of the control API (`/_sim/...`); their serde form IS the
//! JSON of the HTTP control API, so in-process and HTTP callers share them.
//!
//! Invariant: unknown JSON keys are ignored (forward compatible), and every
//! field with a sensible default has one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the connector is configured with; see `expected::compute` for rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExpectedQuery {
    /// 0 = all history (no lower bound).
    pub fetch_last_n_days: u32,
    pub auto_join_channels: bool,
    pub sync_users: bool,
    /// Epoch seconds; default: the simulator clock (wall clock unless
    /// `SimConfig::now` pinned it).
    pub now: Option<i64>,
    /// Document-level security: documents carry `_allow_access_control`, and the set
    /// has the identity documents of an access-control sync.
    pub use_document_level_security: bool,
    /// Private channels the bot is in (only with DLS).
    pub include_private_channels: bool,
    /// DMs and group DMs the bot is in (only with DLS).
    pub include_direct_messages: bool,
    /// Filters (rule 7 of `expected`): archived channels out.
    pub exclude_archived_channels: bool,
    /// Only these conversations: names, ids or `/regex/` (searched in name and id).
    pub channels_include: Vec<String>,
    /// Never these conversations (wins over the include list).
    pub channels_exclude: Vec<String>,
    /// Bot messages out (their threads' replies stay).
    pub exclude_bot_messages: bool,
    /// Join, leave and topic notices out.
    pub exclude_channel_event_messages: bool,
    /// Epoch seconds: no message at or before it (with `fetch_last_n_days`, the later
    /// bound wins).
    pub start_date: Option<i64>,
    /// Rule 8: the team document.
    pub sync_team: bool,
    /// Rule 8: one document per user group.
    pub sync_user_groups: bool,
    /// Rule 8: one document per member of each readable conversation.
    pub sync_channel_members: bool,
    /// Rule 9: one document per shared file.
    pub sync_files: bool,
    /// Rule 9: the content cap in bytes (the connector's default: 10 MB).
    pub max_file_size: u64,
    /// Rule 9: the pipeline extracts binary content (`_attachment` is sent).
    pub extract_binary_content: bool,
    /// Rule 9: the cap of binary files sent to the pipeline in bytes (the connector's
    /// default: 1 MB).
    pub max_pipeline_file_size: u64,
    /// Rule 10: one document per remote file shared in a readable conversation.
    pub sync_remote_files: bool,
    /// Rule 11: messages carry who reacted (every user of each reaction, as
    /// `reactions.get` with `full` lists them).
    pub sync_reaction_users: bool,
}

impl Default for ExpectedQuery {
    fn default() -> Self {
        ExpectedQuery {
            fetch_last_n_days: 180,
            auto_join_channels: false,
            sync_users: true,
            now: None,
            use_document_level_security: false,
            include_private_channels: false,
            include_direct_messages: false,
            exclude_archived_channels: false,
            channels_include: Vec::new(),
            channels_exclude: Vec::new(),
            exclude_bot_messages: false,
            exclude_channel_event_messages: false,
            start_date: None,
            sync_team: false,
            sync_user_groups: false,
            sync_channel_members: false,
            sync_files: false,
            max_file_size: 10_000_000,
            extract_binary_content: false,
            max_pipeline_file_size: 1_000_000,
            sync_remote_files: false,
            sync_reaction_users: false,
        }
    }
}

/// One identity document an access-control sync writes (DLS on).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpectedIdentity {
    /// The document `_id`: the email when the user has one no one else has, else the id.
    pub id: String,
    pub user_id: String,
    /// `member`, `guest`, `deactivated` or `external`.
    pub status: String,
    /// The query's `params.access_control`, sorted.
    pub access_control: Vec<String>,
}

/// Rule 11: one reaction of a message, with every user who made it (in the order they
/// reacted).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpectedReaction {
    pub name: String,
    pub count: u64,
    pub users: Vec<String>,
}

/// One document the connector must index, with its key fields.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExpectedDoc {
    User {
        id: String,
        name: String,
        /// `_allow_access_control`, sorted (DLS on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allow_access_control: Option<Vec<String>>,
    },
    Channel {
        id: String,
        /// `null` for DMs, which have no name.
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allow_access_control: Option<Vec<String>>,
    },
    Message {
        /// `"<channel_id>-<ts>"`.
        id: String,
        /// Channel name.
        channel: String,
        channel_id: String,
        ts: String,
        thread_ts: Option<String>,
        reply_count: Option<u64>,
        edited_ts: Option<String>,
        /// Rule 11 (`sync_reaction_users`): the message's reactions with all their users
        /// (empty when it has none); `None` when the query does not ask.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reactions: Option<Vec<ExpectedReaction>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allow_access_control: Option<Vec<String>>,
    },
    /// Rule 8: `T…`.
    Team {
        id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allow_access_control: Option<Vec<String>>,
    },
    /// Rule 8: `S…`, members by id, sorted.
    Usergroup {
        id: String,
        name: String,
        users: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allow_access_control: Option<Vec<String>>,
    },
    /// Rule 9: `F…`.
    File {
        id: String,
        name: String,
        channel_ids: Vec<String>,
        /// Why there is no content (`too_large`, `binary_without_pipeline`, `not_found`,
        /// `forbidden`, `truncated`), or `None`.
        content_skipped: Option<String>,
        /// What `body` starts with (text files with content).
        text_prefix: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allow_access_control: Option<Vec<String>>,
    },
    /// Rule 10: `F…` (a remote file).
    #[serde(rename = "remote_file")]
    RemoteFile {
        id: String,
        title: String,
        /// `external_url`.
        url: String,
        channel_ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allow_access_control: Option<Vec<String>>,
    },
    /// Rule 8: `<channel>-<user>`.
    ChannelMember {
        id: String,
        channel_id: String,
        user_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allow_access_control: Option<Vec<String>>,
    },
}

impl ExpectedDoc {
    pub fn id(&self) -> &str {
        match self {
            ExpectedDoc::User { id, .. }
            | ExpectedDoc::Channel { id, .. }
            | ExpectedDoc::Message { id, .. }
            | ExpectedDoc::Team { id, .. }
            | ExpectedDoc::Usergroup { id, .. }
            | ExpectedDoc::ChannelMember { id, .. }
            | ExpectedDoc::File { id, .. }
            | ExpectedDoc::RemoteFile { id, .. } => id,
        }
    }
    /// `_allow_access_control` (DLS on).
    pub fn allow_access_control(&self) -> Option<&[String]> {
        match self {
            ExpectedDoc::User {
                allow_access_control,
                ..
            }
            | ExpectedDoc::Channel {
                allow_access_control,
                ..
            }
            | ExpectedDoc::Message {
                allow_access_control,
                ..
            }
            | ExpectedDoc::Team {
                allow_access_control,
                ..
            }
            | ExpectedDoc::Usergroup {
                allow_access_control,
                ..
            }
            | ExpectedDoc::ChannelMember {
                allow_access_control,
                ..
            }
            | ExpectedDoc::File {
                allow_access_control,
                ..
            }
            | ExpectedDoc::RemoteFile {
                allow_access_control,
                ..
            } => allow_access_control.as_deref(),
        }
    }
    pub fn doc_type(&self) -> &'static str {
        match self {
            ExpectedDoc::User { .. } => "user",
            ExpectedDoc::Channel { .. } => "channel",
            ExpectedDoc::Message { .. } => "message",
            ExpectedDoc::Team { .. } => "team",
            ExpectedDoc::Usergroup { .. } => "usergroup",
            ExpectedDoc::ChannelMember { .. } => "channel_member",
            ExpectedDoc::File { .. } => "file",
            ExpectedDoc::RemoteFile { .. } => "remote_file",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpectedSet {
    /// Sorted by id.
    pub docs: Vec<ExpectedDoc>,
    /// Per type ("user", "channel", "message").
    pub counts: BTreeMap<String, usize>,
    pub total: usize,
    /// The `now` and lower bound (`oldest`, exclusive; null = none) used.
    pub now: i64,
    pub oldest: Option<i64>,
    /// With DLS: the identity documents of an access-control sync, sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<ExpectedIdentity>,
}

/// Call counters (reset with `POST /_sim/stats/reset`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimStats {
    pub total_calls: u64,
    /// Calls per Slack method (unknown method names included).
    pub calls: BTreeMap<String, u64>,
    /// Per method: HTTP status ("200", "429", "503", "dropped") → count.
    pub status: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per method: `ok:false` error code → count.
    pub errors: BTreeMap<String, BTreeMap<String, u64>>,
    /// HTTP 429s from the tier limiter, per method, and their total.
    pub ratelimited: BTreeMap<String, u64>,
    pub ratelimited_total: u64,
    /// HTTP 429s from the tier limiter more than one Slack minute (`60 s / time_scale`)
    /// after the method's first call, per method.
    #[serde(default)]
    pub ratelimited_late: BTreeMap<String, u64>,
    /// Per method: when its first and last calls arrived (real seconds since the
    /// simulator started), for the share of the budget a client used.
    #[serde(default)]
    pub windows: BTreeMap<String, CallWindow>,
    /// Faults injected, per method.
    pub faults: BTreeMap<String, u64>,
}

/// A workspace change (`POST /_sim/mutate` takes a JSON list of these).
/// Channels and users may be given by id or by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Mutation {
    /// A new message (ts = simulator clock); with `thread_ts`, a reply that
    /// updates the parent's reply_count/latest_reply/reply_users.
    AddMessage {
        channel: String,
        #[serde(default)]
        user: Option<String>,
        text: String,
        #[serde(default)]
        thread_ts: Option<String>,
        /// Reply also shown in the channel (`thread_broadcast`).
        #[serde(default)]
        broadcast: bool,
    },
    /// Same as `AddMessage` with a `thread_ts` (for old threads).
    AddReply {
        channel: String,
        thread_ts: String,
        #[serde(default)]
        user: Option<String>,
        text: String,
        #[serde(default)]
        broadcast: bool,
    },
    /// Sets text and `edited {user, ts=now}`.
    EditMessage {
        channel: String,
        ts: String,
        text: String,
    },
    /// Removes a message; deleting a parent removes its thread.
    DeleteMessage {
        channel: String,
        ts: String,
    },
    RenameChannel {
        channel: String,
        name: String,
    },
    ArchiveChannel {
        channel: String,
    },
    UnarchiveChannel {
        channel: String,
    },
    DeactivateUser {
        user: String,
    },
    /// Bot (default) or `user` joins (`member:true`) or leaves a channel.
    SetMembership {
        channel: String,
        member: bool,
        #[serde(default)]
        user: Option<String>,
    },
    AddChannel {
        name: String,
        #[serde(default)]
        private: bool,
        #[serde(default = "yes")]
        bot_member: bool,
        #[serde(default)]
        archived: bool,
    },
    AddUser {
        name: String,
        #[serde(default)]
        real_name: Option<String>,
        #[serde(default)]
        is_bot: bool,
    },
}

fn yes() -> bool {
    true
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// An HTTP error status with a short text body (and `Retry-After` when
    /// given, e.g. to fake a 429 outside the limiter).
    HttpStatus {
        status: u16,
        #[serde(default)]
        retry_after: Option<String>,
    },
    /// HTTP 200 `{"ok":false,"error":<error>}`.
    Error { error: String },
    /// HTTP 200 with a truncated, unparsable JSON body.
    MalformedJson,
    /// Extra delay, then the normal answer.
    Latency { ms: u64 },
    /// Close the connection without any response.
    DropConnection,
    /// HTTP 200 with the method's real answer (the call takes effect) minus `field`;
    /// `field` defaults to the method's data ([`crate::reshape::main_field`]: `members`,
    /// `channels`, `messages`, `channel`, `url`, …).
    MissingField {
        #[serde(default)]
        field: Option<String>,
    },
    /// The real answer with `field` (default: the method's data) set to `null`.
    NullField {
        #[serde(default)]
        field: Option<String>,
    },
    /// The real answer with `field` (default: the method's data) of the wrong type: a
    /// string in place of a list, object, number or boolean; a number in place of a string.
    WrongType {
        #[serde(default)]
        field: Option<String>,
    },
    /// The real answer with `has_more: true` and an empty `response_metadata.next_cursor`.
    HasMoreWithoutCursor,
    /// The real answer with `response_metadata.next_cursor` set to the request's own
    /// cursor (on a first page: a cursor to the first page), so a client that follows it
    /// loops. Paged methods only; others answer unchanged.
    RepeatCursor,
}

impl FaultAction {
    /// Whether the fault rewrites the method's real answer (rather than replacing it).
    pub fn reshapes(&self) -> bool {
        matches!(
            self,
            FaultAction::MissingField { .. }
                | FaultAction::NullField { .. }
                | FaultAction::WrongType { .. }
                | FaultAction::HasMoreWithoutCursor
                | FaultAction::RepeatCursor
        )
    }
}

/// Fault injection rule: among calls of `method` ("*" = any) [on `channel`],
/// skip the first `after` matches, then fire `times` times (null = forever).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub method: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub after: u64,
    #[serde(default)]
    pub times: Option<u64>,
    #[serde(flatten)]
    pub action: FaultAction,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    #[default]
    Bot,
    User,
}

/// A token the simulator accepts. `user` (user tokens only; id or name)
/// defaults to the primary owner; bot tokens act as the app's bot user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenSpec {
    pub token: String,
    #[serde(default)]
    pub kind: TokenKind,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub user: Option<String>,
}

/// Scopes of the default bot token: every read scope plus join and write.
pub const DEFAULT_BOT_SCOPES: &[&str] = &[
    "channels:history",
    "channels:read",
    "groups:history",
    "groups:read",
    "im:history",
    "im:read",
    "mpim:history",
    "mpim:read",
    "users:read",
    "users:read.email",
    "team:read",
    "usergroups:read",
    "files:read",
    "remote_files:read",
    "reactions:read",
    "channels:join",
    "chat:write",
];

/// `GET /_sim/workspace`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceSummary {
    pub team_id: String,
    pub bot_user_id: String,
    /// Users `users.list` lists (members of other workspaces are not).
    pub users: usize,
    pub deleted_users: usize,
    /// Guests (`is_restricted`, single-channel ones included).
    pub guests: usize,
    /// Members of another workspace (Slack Connect).
    pub external_users: usize,
    pub bots: usize,
    pub public_channels: usize,
    pub private_channels: usize,
    pub archived_channels: usize,
    pub bot_member_channels: usize,
    pub dms: usize,
    pub group_dms: usize,
    pub messages: usize,
    pub threads: usize,
    pub replies: usize,
    pub now: i64,
}

/// First and last call of a method (real seconds since the simulator started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallWindow {
    pub first_s: f64,
    pub last_s: f64,
}

/// `POST /_sim/rate_limits` (`GET` answers the current settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimitSettings {
    /// The tier limiter answers 429 + `Retry-After` past the budget.
    pub enabled: bool,
    /// 1.0 = real Slack minutes; 60.0 = a Slack minute lasts 1 s.
    #[serde(default = "one")]
    pub time_scale: f64,
    /// What the workspace grants, as a multiple of the published tiers (Slack publishes
    /// floors, "50+ per minute"): budgets and bursts are this many times the tier's.
    #[serde(default = "one")]
    pub grant: f64,
    /// The app is in Slack's restricted cohort (2025: commercially distributed outside the
    /// Marketplace): `conversations.history`/`.replies` at 1 call a minute (when limits are
    /// on) and at most 15 items a page, 15 by default (always).
    #[serde(default)]
    pub restricted_cohort: bool,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: false,
            time_scale: 1.0,
            grant: 1.0,
            restricted_cohort: false,
        }
    }
}

fn one() -> f64 {
    1.0
}
