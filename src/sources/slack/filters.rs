//! What a sync leaves out, as the connector's form sets it: archived channels, channel
//! include and exclude lists (names, ids or regular expressions), bot messages, join,
//! leave and topic messages, and an absolute start date beside `fetch_last_n_days`.
//!
//! Invariants:
//! - every decision here is a pure function of the options and what Slack listed, so the
//!   simulator's `expected` set can state the same rules (`ftest/slack-sim/src/expected.rs`);
//! - bad input (a regular expression that does not compile, a date that is not a date or
//!   lies in the future) is a configuration error naming the field, never a filter that
//!   quietly matches nothing;
//! - a filtered thread parent leaves its replies in: the people who answered a bot are
//!   not bot noise;
//! - the exclude list wins over the include list.

use crate::sources::{ConfigField, Configuration, ConfigurationExt, SourceError};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

/// Keys and labels of the form's filter fields.
pub const EXCLUDE_ARCHIVED_KEY: &str = "exclude_archived_channels";
pub const EXCLUDE_ARCHIVED_LABEL: &str = "Leave out archived channels";
pub const INCLUDE_KEY: &str = "channels_include";
pub const INCLUDE_LABEL: &str = "Only these channels";
pub const EXCLUDE_KEY: &str = "channels_exclude";
pub const EXCLUDE_LABEL: &str = "Leave out these channels";
pub const BOTS_KEY: &str = "exclude_bot_messages";
pub const BOTS_LABEL: &str = "Leave out bot messages";
pub const EVENTS_KEY: &str = "exclude_channel_event_messages";
pub const EVENTS_LABEL: &str = "Leave out join, leave and topic messages";
pub const START_KEY: &str = "start_date";
pub const START_LABEL: &str = "Index messages from (date)";

/// The message subtypes "join, leave and topic messages" stands for: membership and the
/// channel's own notices (topic, purpose, name), for channels and for the older
/// private-channel (`group_…`) names.
pub const EVENT_SUBTYPES: &[&str] = &[
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "group_join",
    "group_leave",
    "group_topic",
    "group_purpose",
    "group_name",
];

/// Upper bound on a compiled pattern (the regex crate's size limit): a form field must
/// not be able to make the service build a huge automaton.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// One entry of a channel list.
#[derive(Debug, Clone)]
enum Entry {
    /// An id (`C…`) or a name (`general`, `#general`), compared without the `#` and, for
    /// names, without regard to case.
    Exact(String),
    /// `/pattern/`: a regular expression searched in the name and in the id.
    Pattern(regex::Regex),
}

/// A channel include or exclude list, compiled once per sync.
#[derive(Debug, Clone, Default)]
pub struct ChannelList {
    entries: Vec<Entry>,
}

impl ChannelList {
    /// Compiles `items` (pure); `label`/`key` name the field in errors.
    pub fn parse(label: &str, key: &str, items: &[String]) -> Result<ChannelList, SourceError> {
        let mut entries = Vec::new();
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let pattern = item
                .strip_prefix('/')
                .and_then(|rest| rest.strip_suffix('/'));
            let entry = match pattern {
                Some(pattern) => {
                    let regex = regex::RegexBuilder::new(pattern)
                        .size_limit(PATTERN_SIZE_LIMIT)
                        .build()
                        .map_err(|e| {
                            SourceError::Configuration(format!(
                                "'{label}' ({key}): '{item}' is not a valid regular expression: {e}"
                            ))
                        })?;
                    Entry::Pattern(regex)
                }
                None => Entry::Exact(item.trim_start_matches('#').to_string()),
            };
            entries.push(entry);
        }
        Ok(ChannelList { entries })
    }

    /// A list of exact names or ids (tests, code).
    pub fn exact(items: &[&str]) -> ChannelList {
        ChannelList {
            entries: items.iter().map(|i| Entry::Exact(i.to_string())).collect(),
        }
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a conversation (`id`, and `name` when it has one) is on the list (pure).
    pub fn matches(&self, id: &str, name: Option<&str>) -> bool {
        self.entries.iter().any(|entry| match entry {
            Entry::Exact(want) => want == id || name.is_some_and(|n| n.eq_ignore_ascii_case(want)),
            Entry::Pattern(regex) => regex.is_match(id) || name.is_some_and(|n| regex.is_match(n)),
        })
    }
}

/// The include and exclude lists together: whether a conversation passes (pure).
pub fn channel_wanted(
    include: &ChannelList,
    exclude: &ChannelList,
    id: &str,
    name: Option<&str>,
) -> bool {
    (include.is_empty() || include.matches(id, name)) && !exclude.matches(id, name)
}

/// Whether a message stays (pure): bot messages (`bot_message`, or any message a bot
/// posted: apps posting with their own token leave the subtype out but carry `bot_id`)
/// and join/leave/topic notices go when their filter is on.
pub fn message_wanted(
    subtype: Option<&str>,
    bot_id: Option<&str>,
    exclude_bots: bool,
    exclude_events: bool,
) -> bool {
    if exclude_bots && (subtype == Some("bot_message") || bot_id.is_some_and(|b| !b.is_empty())) {
        return false;
    }
    !(exclude_events && subtype.is_some_and(|s| EVENT_SUBTYPES.contains(&s)))
}

/// `start_date` → epoch seconds of its first instant (pure): `YYYY-MM-DD` (midnight UTC)
/// or an RFC 3339 time; empty = none; a date after `now` is an error (the sync would
/// index no message at all).
pub fn parse_start_date(value: &str, now: i64) -> Result<Option<i64>, SourceError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let secs = if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp())
    } else {
        DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|t| t.with_timezone(&Utc).timestamp())
    };
    let secs = secs.ok_or_else(|| {
        SourceError::Configuration(format!(
            "'{START_LABEL}' ({START_KEY}) must be a date such as 2024-01-31 or a time such as 2024-01-31T09:00:00Z, got '{value}'"
        ))
    })?;
    if secs > now {
        return Err(SourceError::Configuration(format!(
            "'{START_LABEL}' ({START_KEY}) is in the future ({value}): no message would be indexed"
        )));
    }
    Ok(Some(secs.max(0)))
}

/// The history window's `oldest` (exclusive, epoch seconds) from both bounds (pure):
/// `fetch_last_n_days` (0 = no bound) and the start date; the later one wins.
pub fn history_oldest(now: i64, days: u32, start: Option<i64>) -> Option<String> {
    let from_days = (days > 0).then(|| now.saturating_sub(i64::from(days) * 86_400));
    match (from_days, start) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
    .map(|secs| secs.to_string())
}

/// The filters of a configuration, checked.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub exclude_archived: bool,
    pub include: ChannelList,
    pub exclude: ChannelList,
    pub exclude_bots: bool,
    pub exclude_events: bool,
    pub start: Option<i64>,
}

/// Reads the filter fields of a configuration (`now`: epoch seconds, for the start date).
pub fn from_configuration(configuration: &Configuration, now: i64) -> Result<Filters, SourceError> {
    let flag = |key: &str| configuration.bool_value(key).unwrap_or(false);
    check_types(
        configuration,
        &[
            EXCLUDE_ARCHIVED_KEY,
            BOTS_KEY,
            EVENTS_KEY,
            INCLUDE_KEY,
            EXCLUDE_KEY,
        ],
    )?;
    Ok(Filters {
        exclude_archived: flag(EXCLUDE_ARCHIVED_KEY),
        include: ChannelList::parse(
            INCLUDE_LABEL,
            INCLUDE_KEY,
            &configuration.list_value(INCLUDE_KEY),
        )?,
        exclude: ChannelList::parse(
            EXCLUDE_LABEL,
            EXCLUDE_KEY,
            &configuration.list_value(EXCLUDE_KEY),
        )?,
        exclude_bots: flag(BOTS_KEY),
        exclude_events: flag(EVENTS_KEY),
        start: parse_start_date(&configuration.str_value(START_KEY).unwrap_or_default(), now)?,
    })
}

/// An optional toggle of the form, off by default (filters and workspace switches).
pub(super) fn toggle(label: &str, order: u32, tooltip: &str) -> ConfigField {
    ConfigField::new(label, "bool", order)
        .display("toggle")
        .optional()
        .tooltip(tooltip)
        .value(json!(false))
        .default_value(json!(false))
}

/// A configuration error for the first of `keys` whose value does not coerce to its
/// field's type (the message names the field).
pub(super) fn check_types(configuration: &Configuration, keys: &[&str]) -> Result<(), SourceError> {
    for key in keys {
        if let Some(message) = configuration.get(*key).and_then(|f| f.coerce_error(key)) {
            return Err(SourceError::Configuration(message));
        }
    }
    Ok(())
}

/// Adds the filter fields to the form (orders 20–25, after the fields of §4.1 and DLS).
pub fn add_fields(config: &mut Configuration) {
    let list = |label: &str, order: u32, tooltip: &str| {
        ConfigField::new(label, "list", order)
            .display("textarea")
            .optional()
            .tooltip(tooltip)
            .value(json!(""))
    };
    config.insert(
        EXCLUDE_ARCHIVED_KEY.into(),
        toggle(EXCLUDE_ARCHIVED_LABEL, 20, "Archived channels are not indexed (and their documents leave the index at the next full sync)."),
    );
    config.insert(
        INCLUDE_KEY.into(),
        list(INCLUDE_LABEL, 21, "Comma-separated channels to index, and no others: names (general or #general), ids (C0123ABCD) or regular expressions between slashes (/^eng-/), searched in the name and the id. Empty: every readable channel."),
    );
    config.insert(
        EXCLUDE_KEY.into(),
        list(EXCLUDE_LABEL, 22, "Comma-separated channels never to index: names, ids or regular expressions between slashes (/-social$/). Wins over the include list."),
    );
    config.insert(
        BOTS_KEY.into(),
        toggle(BOTS_LABEL, 23, "Messages posted by bots and apps are not indexed. Replies people wrote in a bot's thread still are."),
    );
    config.insert(
        EVENTS_KEY.into(),
        toggle(EVENTS_LABEL, 24, "The notices Slack posts when someone joins or leaves a channel, or its topic, purpose or name changes, are not indexed."),
    );
    config.insert(
        START_KEY.into(),
        ConfigField::new(START_LABEL, "str", 25)
            .optional()
            .tooltip("Messages before this date (YYYY-MM-DD, midnight UTC, or an RFC 3339 time) are not indexed. With 'Days of message history to fetch' as well, the later of the two bounds wins; set the days to 0 to use only the date.")
            .value(json!("")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Result<ChannelList, SourceError> {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        ChannelList::parse(INCLUDE_LABEL, INCLUDE_KEY, &items)
    }

    #[test]
    fn channel_lists_match_names_ids_and_patterns() {
        let l = list(&["#General", "C0ABC", "/^eng-/", " "]).unwrap();
        assert!(l.matches("C1", Some("general")));
        assert!(l.matches("C0ABC", Some("random")));
        assert!(l.matches("C2", Some("eng-backend")));
        assert!(!l.matches("C3", Some("backend-eng")));
        assert!(!l.matches("C0ABCD", None));
        // A pattern can name ids too.
        assert!(list(&["/^D/"]).unwrap().matches("D1", None));
        assert!(list(&[]).unwrap().is_empty());
    }

    #[test]
    fn exclude_wins_and_empty_include_means_all() {
        let none = ChannelList::default();
        let inc = list(&["/eng/"]).unwrap();
        let exc = list(&["eng-secret"]).unwrap();
        assert!(channel_wanted(&none, &none, "C1", Some("x")));
        assert!(channel_wanted(&inc, &exc, "C1", Some("eng-a")));
        assert!(!channel_wanted(&inc, &exc, "C2", Some("eng-secret")));
        assert!(!channel_wanted(&inc, &none, "C3", Some("random")));
    }

    #[test]
    fn bad_patterns_name_the_field() {
        let e = list(&["/([/"]).unwrap_err().to_string();
        assert!(
            e.contains(INCLUDE_LABEL) && e.contains(INCLUDE_KEY) && e.contains("/([/"),
            "{e}"
        );
    }

    #[test]
    fn messages_kept_or_left_out() {
        assert!(message_wanted(Some("bot_message"), Some("B1"), false, true));
        assert!(!message_wanted(Some("bot_message"), None, true, false));
        assert!(!message_wanted(None, Some("B1"), true, false));
        assert!(message_wanted(None, Some(""), true, false));
        assert!(!message_wanted(Some("channel_join"), None, false, true));
        assert!(!message_wanted(Some("group_topic"), None, false, true));
        assert!(message_wanted(Some("thread_broadcast"), None, true, true));
        assert!(message_wanted(Some("channel_join"), None, true, false));
    }

    #[test]
    fn start_dates() {
        let now = 1_700_000_000;
        assert_eq!(parse_start_date("", now).unwrap(), None);
        assert_eq!(
            parse_start_date("2023-01-01", now).unwrap(),
            Some(1_672_531_200)
        );
        assert_eq!(
            parse_start_date("2023-01-01T01:00:00+01:00", now).unwrap(),
            Some(1_672_531_200)
        );
        for bad in ["yesterday", "2023-13-01", "01/02/2023"] {
            let e = parse_start_date(bad, now).unwrap_err().to_string();
            assert!(
                e.contains(START_LABEL) && e.contains(START_KEY) && e.contains(bad),
                "{e}"
            );
        }
        let e = parse_start_date("2099-01-01", now).unwrap_err().to_string();
        assert!(e.contains("future"), "{e}");
    }

    #[test]
    fn the_later_bound_wins() {
        let now = 1_000_000;
        assert_eq!(history_oldest(now, 0, None), None);
        assert_eq!(history_oldest(now, 1, None).as_deref(), Some("913600"));
        assert_eq!(history_oldest(now, 0, Some(5)).as_deref(), Some("5"));
        assert_eq!(history_oldest(now, 1, Some(5)).as_deref(), Some("913600"));
        assert_eq!(
            history_oldest(now, 1, Some(950_000)).as_deref(),
            Some("950000")
        );
    }

    #[test]
    fn fields_are_read_and_checked() {
        let mut config = Configuration::new();
        add_fields(&mut config);
        let defaults = from_configuration(&config, 1_700_000_000).unwrap();
        assert!(!defaults.exclude_archived && !defaults.exclude_bots && !defaults.exclude_events);
        assert!(defaults.include.is_empty() && defaults.exclude.is_empty());
        assert_eq!(defaults.start, None);
        for key in [EXCLUDE_ARCHIVED_KEY, BOTS_KEY, EVENTS_KEY] {
            config.get_mut(key).unwrap().value = json!(true);
        }
        config.get_mut(INCLUDE_KEY).unwrap().value = json!("general, /^eng-/");
        config.get_mut(EXCLUDE_KEY).unwrap().value = json!(["C9"]);
        config.get_mut(START_KEY).unwrap().value = json!("2023-01-01");
        let on = from_configuration(&config, 1_700_000_000).unwrap();
        assert!(on.exclude_archived && on.exclude_bots && on.exclude_events);
        assert!(on.include.matches("C5", Some("eng-x")) && on.exclude.matches("C9", None));
        assert_eq!(on.start, Some(1_672_531_200));
        config.get_mut(BOTS_KEY).unwrap().value = json!("maybe");
        let e = from_configuration(&config, 1_700_000_000)
            .unwrap_err()
            .to_string();
        assert!(e.contains(BOTS_LABEL), "{e}");
        config.get_mut(BOTS_KEY).unwrap().value = json!(true);
        config.get_mut(START_KEY).unwrap().value = json!("soon");
        let e = from_configuration(&config, 1_700_000_000)
            .unwrap_err()
            .to_string();
        assert!(e.contains(START_KEY), "{e}");
    }
}
