//! What the Slack source remembers between syncs and inside one: its part of the connector's
//! `sync_cursor` (incremental syncs), the resume points of a full sync, and the pure
//! decisions of an incremental sync.
//!
//! # The cursor
//! `sync_cursor.channels` holds, per channel read, the newest `ts` seen and the thread
//! parents whose last reply falls within the thread look-back window, with their
//! `latest_reply` and `reply_count`, as one JSON string per channel (`cursor_text`: a
//! compact form for documents read on every poll); `sync_cursor.threads_since` is where that window
//! started. Other keys of `sync_cursor` belong to others and are kept (the engine merges).
//!
//! An incremental sync re-reads each known channel's history from [`reread_after`]: the
//! older of the look-back start and the oldest tracked parent (and never before what is
//! new), clamped to the history window. That range shows every new message, every edit
//! or deletion of a top-level message inside it, and the current `latest_reply` and
//! `reply_count` of every tracked thread; replies are fetched only for threads whose
//! state changed or that are new ([`thread_changed`]). Channels not in the cursor get a full
//! read. The trade-off: a reply to a thread older than the look-back (parent and last reply
//! both older than the window start) waits for the next full sync, as do edits of replies
//! (they change no parent) and renames (old messages keep the old channel name).
//!
//! # Deletions
//! What an incremental sync re-read in full is declared as a sweep scope (an Elasticsearch
//! filter on our own message fields): [`channel_scope`] (the history-visible messages after
//! the re-read bound, i.e. not thread-only replies) and [`thread_scope`] (a thread whose
//! replies were fetched again, or that vanished). Scopes are conservative: a bound falls on
//! a whole millisecond after the re-read bound, since Elasticsearch stores `_timestamp` in
//! milliseconds.
//!
//! # Resume points
//! During a full sync each channel's progress is a checkpoint under its id
//! ([`ChannelProgress`]): the `ts` its history resumes before (everything newer, and the
//! threads of those parents, is written) and the cursor entry gathered so far; `done` when
//! the channel is finished. The window's bound is a checkpoint too ([`WINDOW_KEY`]), so a
//! resumed sync reads the same window.

use super::transform::ts_micros;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// `sync_cursor` key of the per-channel state.
pub const CHANNELS_KEY: &str = "channels";
/// `sync_cursor` key of the look-back start of the sync that wrote the cursor.
pub const THREADS_SINCE_KEY: &str = "threads_since";
/// Checkpoint key of a full sync's history window (`oldest`, or null for all history).
pub const WINDOW_KEY: &str = "window";

/// A thread parent's reply state, as history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadState {
    /// The newest reply's ts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_reply: Option<String>,
    /// How many replies.
    #[serde(default)]
    pub reply_count: u64,
}

/// One channel's part of the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCursor {
    /// The newest message ts seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<String>,
    /// Parents whose last reply is within the look-back: ts → state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub threads: BTreeMap<String, ThreadState>,
}

impl ChannelCursor {
    /// Notes a history message: the newest ts, and a parent whose last reply is at or
    /// after `threads_since` (µs).
    pub fn note(&mut self, ts: &str, thread: Option<ThreadState>, threads_since: i64) {
        if newer(Some(ts), self.latest.as_deref()) {
            self.latest = Some(ts.to_string());
        }
        if let Some(state) = thread {
            let recent = state
                .latest_reply
                .as_deref()
                .and_then(ts_micros)
                .is_none_or(|latest| latest >= threads_since);
            if recent {
                self.threads.insert(ts.to_string(), state);
            }
        }
    }
}

/// Whether `a` is a later ts than `b` (a missing or unreadable `b` is older than anything).
fn newer(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.and_then(ts_micros), b.and_then(ts_micros)) {
        (Some(a), Some(b)) => a > b,
        (Some(_), None) => true,
        _ => false,
    }
}

/// A channel's cursor entry as stored: JSON text (see [`cursor_text`]).
#[derive(Deserialize)]
#[serde(transparent)]
struct StoredCursor(#[serde(with = "cursor_text")] ChannelCursor);

/// The Slack part of a connector's `sync_cursor`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackCursor {
    /// Channel id → state.
    pub channels: BTreeMap<String, ChannelCursor>,
    /// The look-back start (µs) of the sync that wrote it.
    pub threads_since: Option<i64>,
}

impl SlackCursor {
    /// Reads the cursor an incremental sync starts from. `None`, no `channels` or an
    /// unreadable one: empty (every channel then gets a full read, and nothing is deleted);
    /// the error says why, for the log.
    pub fn read(cursor: Option<&Value>) -> (SlackCursor, Option<String>) {
        let Some(channels) = cursor.and_then(|c| c.get(CHANNELS_KEY)) else {
            return (SlackCursor::default(), None);
        };
        match serde_json::from_value::<BTreeMap<String, StoredCursor>>(channels.clone()) {
            Ok(channels) => {
                let channels = channels.into_iter().map(|(id, c)| (id, c.0)).collect();
                let threads_since = cursor
                    .and_then(|c| c.get(THREADS_SINCE_KEY))
                    .and_then(Value::as_str)
                    .and_then(ts_micros);
                (
                    SlackCursor {
                        channels,
                        threads_since,
                    },
                    None,
                )
            }
            Err(error) => (
                SlackCursor::default(),
                Some(format!(
                    "`sync_cursor.{CHANNELS_KEY}` is unreadable ({error})"
                )),
            ),
        }
    }

    /// The source's keys of `sync_cursor`.
    pub fn to_value(&self) -> Value {
        let mut cursor = Map::new();
        let channels: Map<String, Value> = self
            .channels
            .iter()
            .map(|(id, c)| (id.clone(), json!(cursor_text::to_text(c))))
            .collect();
        cursor.insert(CHANNELS_KEY.into(), Value::Object(channels));
        cursor.insert(
            THREADS_SINCE_KEY.into(),
            self.threads_since
                .map_or(Value::Null, |t| json!(ts_string(t))),
        );
        Value::Object(cursor)
    }
}

/// Microseconds as a Slack ts (`"1700000000.000100"`).
pub fn ts_string(micros: i64) -> String {
    format!(
        "{}.{:06}",
        micros.div_euclid(1_000_000),
        micros.rem_euclid(1_000_000)
    )
}

/// Where an incremental sync re-reads a known channel's history from (exclusive, µs): the
/// look-back start, or earlier to see every tracked parent again, but not before the newest
/// message seen (whatever is newer is new); never before the history window's bound.
pub fn reread_after(prev: &ChannelCursor, lookback_from: i64, window_oldest: Option<i64>) -> i64 {
    let mut after = lookback_from;
    if let Some(latest) = prev.latest.as_deref().and_then(ts_micros) {
        after = after.min(latest);
    }
    for parent in prev.threads.keys().filter_map(|ts| ts_micros(ts)) {
        after = after.min(parent - 1);
    }
    window_oldest.map_or(after, |oldest| after.max(oldest))
}

/// Whether an incremental sync fetches a thread seen in the re-read history: its state
/// changed since the cursor, or it is a parent the previous sync did not see (newer than
/// its newest message) or did not track and that now has a reply it would have tracked.
pub fn thread_changed(
    prev: &ChannelCursor,
    prev_threads_since: Option<i64>,
    parent_ts: &str,
    now: &ThreadState,
) -> bool {
    if let Some(before) = prev.threads.get(parent_ts) {
        return before != now;
    }
    if newer(Some(parent_ts), prev.latest.as_deref()) {
        return true;
    }
    match (
        now.latest_reply.as_deref().and_then(ts_micros),
        prev_threads_since,
    ) {
        (Some(latest_reply), Some(since)) => latest_reply >= since,
        // Without the state to compare with, read it.
        _ => true,
    }
}

/// The first whole millisecond after `after_micros`: a `_timestamp` (stored in ms) at or
/// after it is a ts after `after_micros`.
fn first_ms_after(after_micros: i64) -> i64 {
    after_micros.div_euclid(1000) + 1
}

/// The message documents of `channel_id` that history shows (top-level messages, parents,
/// broadcast replies; not thread-only replies) dated after `after_micros`.
pub fn channel_scope(channel_id: &str, after_micros: i64) -> Value {
    json!({"bool": {
        "filter": [
            {"match_phrase": {"type": "message"}},
            {"match_phrase": {"channel_id": channel_id}},
            {"range": {"_timestamp": {"gte": first_ms_after(after_micros), "format": "epoch_millis"}}}
        ],
        "must_not": [{"bool": {
            "filter": [{"exists": {"field": "thread_ts"}}],
            "must_not": [
                {"exists": {"field": "reply_count"}},
                {"match_phrase": {"subtype": "thread_broadcast"}}
            ]
        }}]
    }})
}

/// The message documents of one thread (parent, replies, broadcasts).
pub fn thread_scope(channel_id: &str, parent_ts: &str) -> Value {
    json!({"bool": {"filter": [
        {"match_phrase": {"type": "message"}},
        {"match_phrase": {"channel_id": channel_id}},
        {"match_phrase": {"thread_ts": parent_ts}}
    ]}})
}

/// A channel's progress in a full sync (its checkpoint value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelProgress {
    /// Every message of the channel was read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
    /// History resumes with the messages older than this ts (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The cursor entry gathered so far, stored as JSON text (see [`cursor_text`]).
    #[serde(default, with = "cursor_text")]
    pub cursor: ChannelCursor,
}

/// A channel's cursor entry stored as one JSON string, in `sync_cursor.channels` and in a
/// full sync's resume points. Both live in Elasticsearch documents that are read back into
/// `serde_json::Value`s (the connector on every poll, the job on every check): as a tree,
/// each thread state costs a map node of about 600 bytes, ten times its text, and in the
/// document each thread's ts would become a field name. Entries written as an object
/// (before this form) are still read.
mod cursor_text {
    use super::ChannelCursor;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// The text of an entry.
    pub fn to_text(cursor: &ChannelCursor) -> String {
        serde_json::to_string(cursor).unwrap_or_default()
    }

    pub fn serialize<S: Serializer>(cursor: &ChannelCursor, s: S) -> Result<S::Ok, S::Error> {
        to_text(cursor).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChannelCursor, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            Object(ChannelCursor),
        }
        match Stored::deserialize(d)? {
            Stored::Text(text) => serde_json::from_str(&text).map_err(serde::de::Error::custom),
            Stored::Object(cursor) => Ok(cursor),
        }
    }
}

impl ChannelProgress {
    /// As a checkpoint value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The recorded points of an interrupted full sync, read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// The window's bound the sync started with (`None` in the outer option: not recorded).
    pub window: Option<Option<String>>,
    /// Channel id → progress.
    pub channels: BTreeMap<String, ChannelProgress>,
}

impl Resume {
    /// Reads checkpoints; an unreadable channel entry is left out (that channel is read
    /// again from its start, which is always safe).
    pub fn read(checkpoints: &Map<String, Value>) -> Resume {
        let mut resume = Resume::default();
        for (key, value) in checkpoints {
            if key == WINDOW_KEY {
                resume.window = Some(value.as_str().map(str::to_string));
                continue;
            }
            if let Ok(progress) = serde_json::from_value::<ChannelProgress>(value.clone()) {
                resume.channels.insert(key.clone(), progress);
            }
        }
        resume
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(latest_reply: &str, reply_count: u64) -> ThreadState {
        ThreadState {
            latest_reply: Some(latest_reply.into()),
            reply_count,
        }
    }

    const S: i64 = 1_000_000;

    #[test]
    fn the_cursor_tracks_the_newest_ts_and_recent_threads() {
        let mut c = ChannelCursor::default();
        c.note("100.000002", None, 150 * S);
        c.note("100.000001", Some(state("160.0", 3)), 150 * S);
        c.note("90.0", Some(state("140.0", 1)), 150 * S);
        assert_eq!(c.latest.as_deref(), Some("100.000002"));
        assert_eq!(c.threads.len(), 1);
        assert_eq!(c.threads["100.000001"], state("160.0", 3));
        let cursor = SlackCursor {
            channels: BTreeMap::from([("C1".to_string(), c)]),
            threads_since: Some(150 * S),
        };
        let value = cursor.to_value();
        assert_eq!(value["threads_since"], "150.000000");
        assert!(value["channels"]["C1"].is_string(), "{value}");
        assert_eq!(SlackCursor::read(Some(&value)), (cursor.clone(), None));
        // The object form of earlier cursors still reads.
        let objects = json!({
            "channels": {"C1": serde_json::to_value(&cursor.channels["C1"]).unwrap()},
            "threads_since": "150.000000"
        });
        assert_eq!(SlackCursor::read(Some(&objects)), (cursor, None));
    }

    #[test]
    fn unreadable_or_missing_cursors_read_as_empty() {
        assert_eq!(SlackCursor::read(None), (SlackCursor::default(), None));
        assert_eq!(
            SlackCursor::read(Some(&json!({"budgets": {}}))),
            (SlackCursor::default(), None)
        );
        let (cursor, error) = SlackCursor::read(Some(&json!({"channels": [1]})));
        assert_eq!(cursor, SlackCursor::default());
        assert!(error.unwrap().contains("sync_cursor.channels"));
    }

    #[test]
    fn the_reread_covers_the_lookback_and_every_tracked_parent() {
        let mut prev = ChannelCursor {
            latest: Some("500.0".into()),
            ..Default::default()
        };
        assert_eq!(reread_after(&prev, 400 * S, None), 400 * S);
        // A quiet channel: only what is newer than its newest message.
        assert_eq!(reread_after(&prev, 600 * S, None), 500 * S);
        prev.threads.insert("300.000010".into(), state("450.0", 2));
        assert_eq!(reread_after(&prev, 400 * S, None), 300 * S + 9);
        // Never before the history window.
        assert_eq!(reread_after(&prev, 400 * S, Some(350 * S)), 350 * S);
        assert_eq!(
            reread_after(&ChannelCursor::default(), 400 * S, None),
            400 * S
        );
    }

    #[test]
    fn threads_are_fetched_only_when_they_changed_or_are_new() {
        let prev = ChannelCursor {
            latest: Some("500.0".into()),
            threads: BTreeMap::from([("300.0".to_string(), state("450.0", 2))]),
        };
        let since = Some(400 * S);
        assert!(!thread_changed(&prev, since, "300.0", &state("450.0", 2)));
        assert!(thread_changed(&prev, since, "300.0", &state("520.0", 3)));
        assert!(thread_changed(&prev, since, "300.0", &state("450.0", 1)));
        // A new parent.
        assert!(thread_changed(&prev, since, "510.0", &state("511.0", 1)));
        // Seen before, untracked because its last reply was older than the look-back.
        assert!(!thread_changed(&prev, since, "200.0", &state("350.0", 4)));
        // … and now with a newer reply.
        assert!(thread_changed(&prev, since, "200.0", &state("520.0", 5)));
        assert!(thread_changed(&prev, None, "200.0", &state("350.0", 4)));
    }

    #[test]
    fn scopes_start_at_the_first_whole_millisecond_after_the_bound() {
        assert_eq!(first_ms_after(5_000), 6);
        assert_eq!(first_ms_after(5_999), 6);
        assert_eq!(first_ms_after(6_000), 7);
        let scope = channel_scope("C1", 1_700_000_000_000_100);
        assert_eq!(
            scope["bool"]["filter"][2]["range"]["_timestamp"]["gte"],
            1_700_000_000_001i64
        );
        assert_eq!(
            thread_scope("C1", "1.5")["bool"]["filter"][2],
            json!({"match_phrase": {"thread_ts": "1.5"}})
        );
    }

    #[test]
    fn resume_points_read_back() {
        let progress = ChannelProgress {
            done: false,
            before: Some("100.0".into()),
            cursor: ChannelCursor {
                latest: Some("200.0".into()),
                ..Default::default()
            },
        };
        let mut checkpoints = Map::new();
        checkpoints.insert(WINDOW_KEY.into(), json!("50"));
        checkpoints.insert("C1".into(), progress.to_value());
        checkpoints.insert("C2".into(), json!({"done": true}));
        checkpoints.insert("C3".into(), json!("garbage"));
        // The cursor is stored as text; the object form of earlier points still reads.
        assert!(progress.to_value()["cursor"].is_string());
        checkpoints.insert(
            "C4".into(),
            json!({"before": "9.0", "cursor": {"latest": "10.0"}}),
        );
        checkpoints.insert("C5".into(), json!({"cursor": "{not json"}));
        let resume = Resume::read(&checkpoints);
        assert_eq!(resume.window, Some(Some("50".to_string())));
        assert_eq!(resume.channels["C1"], progress);
        assert!(resume.channels["C2"].done);
        assert!(!resume.channels.contains_key("C3"));
        assert_eq!(resume.channels["C4"].cursor.latest.as_deref(), Some("10.0"));
        assert!(!resume.channels.contains_key("C5"));
        assert_eq!(ts_string(1_700_000_000_000_100), "1700000000.000100");
        assert_eq!(
            Resume::read(&Map::from_iter([(WINDOW_KEY.to_string(), Value::Null)])).window,
            Some(None)
        );
    }
}
