//! Workspace shape: how many users, channels, messages, threads… to generate.
//!
//! Invariant: a `WorkspaceSpec` plus a `now` fully determines the generated
//! workspace (same seed ⇒ same ids, names, texts, and ts offsets from `now`).

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Preset sizes (documents the connector indexes with its default config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSize {
    Small,
    Medium,
    Large,
}

impl FromStr for DataSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "small" => Ok(DataSize::Small),
            "medium" => Ok(DataSize::Medium),
            "large" => Ok(DataSize::Large),
            other => Err(format!("unknown data size {other:?} (small|medium|large)")),
        }
    }
}

/// All counts explicit. `channels` counts public + private channels (DMs and
/// group DMs come on top); shares are fractions in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceSpec {
    pub seed: u64,
    /// Human (non-bot, non-deleted) users, besides USLACKBOT and the app's bot user.
    pub users: usize,
    /// Other bot users (integrations), besides the app's own bot user.
    pub bots: usize,
    pub deleted_users: usize,
    pub channels: usize,
    pub private_share: f64,
    pub archived_share: f64,
    /// Share of public and private channels the app's bot is a member of.
    pub bot_member_share: f64,
    /// Top-level messages per public/private channel (replies come on top).
    pub messages_per_channel: usize,
    /// Share of eligible top-level messages that start a thread.
    pub thread_share: f64,
    /// Mean replies per thread (actual counts vary in 1..=2*mean-1).
    pub replies_per_thread: usize,
    pub history_days: u32,
    pub dms: usize,
    pub group_dms: usize,
    /// Multi-channel guests (`is_restricted`), in 1–3 channels the app's bot is in.
    pub guests: usize,
    /// Single-channel guests (`is_ultra_restricted`).
    pub ultra_guests: usize,
    /// Members of another workspace (Slack Connect) in 1–2 channels the bot is in, which
    /// become shared: not in `users.list`, answered by `users.info`.
    pub external_users: usize,
}

impl Default for WorkspaceSpec {
    fn default() -> Self {
        WorkspaceSpec::for_size(DataSize::Small)
    }
}

impl WorkspaceSpec {
    /// Presets tuned so the default connector config (fetch_last_n_days=180,
    /// no auto-join, sync users) indexes ≈700 / ≈13,000 / ≈130,000 documents.
    pub fn for_size(size: DataSize) -> Self {
        let base = WorkspaceSpec {
            seed: 42,
            users: 20,
            bots: 3,
            deleted_users: 2,
            channels: 12,
            private_share: 0.25,
            archived_share: 0.15,
            bot_member_share: 0.7,
            messages_per_channel: 160,
            thread_share: 0.1,
            replies_per_thread: 4,
            history_days: 365,
            dms: 4,
            group_dms: 2,
            guests: 2,
            ultra_guests: 1,
            external_users: 2,
        };
        match size {
            DataSize::Small => base,
            DataSize::Medium => WorkspaceSpec {
                users: 200,
                bots: 6,
                deleted_users: 15,
                channels: 60,
                messages_per_channel: 575,
                dms: 20,
                group_dms: 6,
                guests: 10,
                ultra_guests: 4,
                external_users: 8,
                ..base
            },
            DataSize::Large => WorkspaceSpec {
                users: 1000,
                bots: 12,
                deleted_users: 60,
                channels: 200,
                messages_per_channel: 1730,
                dms: 60,
                group_dms: 20,
                guests: 40,
                ultra_guests: 10,
                external_users: 20,
                ..base
            },
        }
    }
}
