//! The learned rate budgets a sync leaves for the next one, kept in the connector's
//! `sync_cursor` under the key [`CURSOR_KEY`] (`"budgets"`).
//!
//! The wire form ([`LearnedBudgets::to_cursor_value`]):
//!
//! ```json
//! {"version": 1, "team_id": "T0123", "learned_at": 1764590400, "restricted_cohort": false,
//!  "methods": [{"method": "conversations.replies", "per_minute": 475.0, "ceiling": 500.0,
//!               "restricted": false}]}
//! ```
//!
//! - rates are calls per Slack minute (independent of `SLACK_TIER_SCALE`); `ceiling` is the
//!   rate Slack refused at (`null` while no 429 was seen), `restricted` marks a method held at
//!   the restricted cohort's 1 call a minute;
//! - every key is always written, `null` included: Elasticsearch merges a partial update of
//!   `sync_cursor` into the stored object, so a key left out would keep its old value;
//! - `methods` is a list (a list is replaced whole by such a merge, a map would keep methods
//!   a later sync no longer reports, and method names contain dots).
//!
//! Invariants: reading never fails a sync: [`LearnedBudgets::from_cursor_value`] refuses a
//! shape it does not know with a reason (the caller logs it and starts from the published
//! tiers), and drops entries that are not finite positive rates within
//! [`MAX_PER_MINUTE`](super::ratelimit::MAX_PER_MINUTE); budgets of another workspace
//! (`team_id`) or older than [`MAX_AGE_SECS`] are not used ([`LearnedBudgets::usable`]).

use super::ratelimit::MAX_PER_MINUTE;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The key of the learned budgets in the connector's `sync_cursor` object.
pub const CURSOR_KEY: &str = "budgets";
/// The wire version this build writes and reads.
pub const VERSION: u32 = 1;
/// Budgets older than this are not used (a week: Slack's grants and an app's cohort change).
pub const MAX_AGE_SECS: i64 = 7 * 24 * 3600;
/// At most this many methods are read (a sync calls fewer than ten).
const MAX_METHODS: usize = 64;

/// What was learned of one method, in calls per Slack minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnedRate {
    /// The rate reached.
    pub per_minute: f64,
    /// The rate Slack refused at, or its estimated grant (after a 429).
    pub ceiling: Option<f64>,
    /// Held at the restricted cohort's rate.
    pub restricted: bool,
}

/// The learned budgets of one connector's workspace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LearnedBudgets {
    /// The workspace they were learned on (`auth.test`'s `team_id`).
    pub team_id: Option<String>,
    /// When (epoch seconds).
    pub learned_at: Option<i64>,
    /// Per method.
    pub methods: BTreeMap<String, LearnedRate>,
}

/// Why a stored cursor's budgets were not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetsError {
    /// Not the shape of [`LearnedBudgets::to_cursor_value`].
    #[error("the saved rate budgets are malformed ({0}); starting from the published tiers")]
    Malformed(String),
    /// Written by a build with another wire version.
    #[error("the saved rate budgets have version {0}, this build reads {VERSION}; starting from the published tiers")]
    Version(u32),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    version: u32,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    learned_at: Option<i64>,
    #[serde(default)]
    restricted_cohort: bool,
    methods: Vec<WireRate>,
}

#[derive(Serialize, Deserialize)]
struct WireRate {
    method: String,
    per_minute: f64,
    #[serde(default)]
    ceiling: Option<f64>,
    #[serde(default)]
    restricted: bool,
}

fn valid_rate(rate: f64) -> bool {
    rate.is_finite() && rate > 0.0 && rate <= MAX_PER_MINUTE
}

fn valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= 64
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
}

impl LearnedBudgets {
    /// Whether any method is held at the restricted cohort's rate.
    pub fn restricted_cohort(&self) -> bool {
        self.methods.values().any(|rate| rate.restricted)
    }

    /// The cursor value (the object under [`CURSOR_KEY`]).
    pub fn to_cursor_value(&self) -> Value {
        let wire = Wire {
            version: VERSION,
            team_id: self.team_id.clone(),
            learned_at: self.learned_at,
            restricted_cohort: self.restricted_cohort(),
            methods: self
                .methods
                .iter()
                .map(|(method, rate)| WireRate {
                    method: method.clone(),
                    per_minute: rate.per_minute,
                    ceiling: rate.ceiling,
                    restricted: rate.restricted,
                })
                .collect(),
        };
        serde_json::to_value(wire).unwrap_or(Value::Null)
    }

    /// Reads the object under [`CURSOR_KEY`]; entries that are not sane rates are dropped.
    pub fn from_cursor_value(value: &Value) -> Result<LearnedBudgets, BudgetsError> {
        if let Some(version) = value.get("version").and_then(Value::as_u64) {
            if version != u64::from(VERSION) {
                return Err(BudgetsError::Version(
                    u32::try_from(version).unwrap_or(u32::MAX),
                ));
            }
        }
        let wire: Wire = serde_json::from_value(value.clone())
            .map_err(|e| BudgetsError::Malformed(e.to_string()))?;
        let mut methods = BTreeMap::new();
        for rate in wire.methods.into_iter().take(MAX_METHODS) {
            if !valid_method(&rate.method) || !valid_rate(rate.per_minute) {
                continue;
            }
            methods.insert(
                rate.method,
                LearnedRate {
                    per_minute: rate.per_minute,
                    ceiling: rate.ceiling.filter(|c| valid_rate(*c)),
                    restricted: rate.restricted,
                },
            );
        }
        Ok(LearnedBudgets {
            team_id: wire.team_id.filter(|t| !t.is_empty()),
            learned_at: wire.learned_at,
            methods,
        })
    }

    /// The budgets in a connector's whole `sync_cursor`, if it has any (`Ok(None)`: none
    /// saved).
    pub fn from_sync_cursor(cursor: &Value) -> Result<Option<LearnedBudgets>, BudgetsError> {
        match cursor.get(CURSOR_KEY) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => LearnedBudgets::from_cursor_value(value).map(Some),
        }
    }

    /// Whether the budgets may start a sync of workspace `team_id` at `now` (epoch seconds):
    /// `Err` says why not (another workspace, too old).
    pub fn usable(&self, team_id: Option<&str>, now: i64) -> Result<(), &'static str> {
        if let (Some(saved), Some(current)) = (self.team_id.as_deref(), team_id) {
            if saved != current {
                return Err("they were learned on another workspace");
            }
        }
        match self.learned_at {
            Some(at) if now.saturating_sub(at) > MAX_AGE_SECS => {
                Err("they are more than a week old")
            }
            _ => Ok(()),
        }
    }

    /// `self` updated with `newer`'s methods (methods this sync did not call keep what an
    /// earlier one learned).
    pub fn merged(&self, newer: BTreeMap<String, LearnedRate>) -> BTreeMap<String, LearnedRate> {
        let mut methods = self.methods.clone();
        methods.extend(newer);
        methods
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> LearnedBudgets {
        let mut methods = BTreeMap::new();
        methods.insert(
            "conversations.replies".to_string(),
            LearnedRate {
                per_minute: 475.0,
                ceiling: Some(500.0),
                restricted: false,
            },
        );
        methods.insert(
            "users.list".to_string(),
            LearnedRate {
                per_minute: 21.0,
                ceiling: None,
                restricted: false,
            },
        );
        LearnedBudgets {
            team_id: Some("T1".into()),
            learned_at: Some(1_700_000_000),
            methods,
        }
    }

    #[test]
    fn round_trips_and_writes_every_key() {
        let budgets = sample();
        let value = budgets.to_cursor_value();
        assert_eq!(value["version"], 1);
        assert_eq!(value["restricted_cohort"], false);
        assert_eq!(value["methods"][1]["method"], "users.list");
        // `null` written, not left out: a partial update must clear an old ceiling.
        assert!(value["methods"][1]
            .as_object()
            .unwrap()
            .contains_key("ceiling"));
        assert_eq!(value["methods"][1]["ceiling"], Value::Null);
        assert_eq!(LearnedBudgets::from_cursor_value(&value).unwrap(), budgets);
        let cursor = json!({"budgets": value, "channels": {"C1": {}}});
        assert_eq!(
            LearnedBudgets::from_sync_cursor(&cursor).unwrap(),
            Some(budgets)
        );
        assert_eq!(LearnedBudgets::from_sync_cursor(&json!({})).unwrap(), None);
        assert_eq!(
            LearnedBudgets::from_sync_cursor(&Value::Null).unwrap(),
            None
        );
    }

    #[test]
    fn bad_shapes_are_refused_and_bad_entries_dropped() {
        let error = LearnedBudgets::from_cursor_value(&json!({"version": 1})).unwrap_err();
        assert!(matches!(error, BudgetsError::Malformed(_)), "{error}");
        assert!(error.to_string().contains("published tiers"));
        assert_eq!(
            LearnedBudgets::from_cursor_value(&json!({"version": 2, "methods": []})),
            Err(BudgetsError::Version(2))
        );
        assert!(LearnedBudgets::from_cursor_value(&json!("x")).is_err());
        let read = LearnedBudgets::from_cursor_value(&json!({"version": 1, "methods": [
            {"method": "conversations.history", "per_minute": 60.0, "ceiling": -1.0},
            {"method": "users.list", "per_minute": 0.0},
            {"method": "bad method", "per_minute": 5.0},
            {"method": "auth.test", "per_minute": 1e12},
        ]}))
        .unwrap();
        assert_eq!(read.methods.len(), 1);
        assert_eq!(read.methods["conversations.history"].ceiling, None);
    }

    #[test]
    fn usable_only_on_the_same_workspace_and_fresh() {
        let budgets = sample();
        let now = 1_700_000_000;
        assert!(budgets.usable(Some("T1"), now + 3600).is_ok());
        assert!(budgets.usable(None, now).is_ok());
        assert!(budgets.usable(Some("T2"), now).is_err());
        assert!(budgets.usable(Some("T1"), now + MAX_AGE_SECS + 1).is_err());
    }

    #[test]
    fn merged_keeps_methods_not_called_again() {
        let budgets = sample();
        let mut newer = BTreeMap::new();
        newer.insert(
            "users.list".to_string(),
            LearnedRate {
                per_minute: 30.0,
                ceiling: Some(31.0),
                restricted: false,
            },
        );
        let merged = budgets.merged(newer);
        assert_eq!(merged["users.list"].per_minute, 30.0);
        assert_eq!(merged["conversations.replies"].per_minute, 475.0);
    }
}
