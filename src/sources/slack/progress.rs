//! Progress of a Slack sync and the state of its rate budgets, as the log and the job's
//! `metadata` show them: channels done of total, calls made, the rate of each method (learned
//! or published, and the published floor beside it), the expected time left at the current
//! budget, pacing waits and the restricted cohort.
//!
//! Invariants: everything here is pure (figures in, text or JSON out), so it is unit-tested;
//! rates are per Slack minute, as Slack publishes them; the expected time left is `None` until
//! a channel is done (nothing to extrapolate from), and the slowest method decides it, since
//! methods are paced independently.

use super::client::MethodCalls;
use super::ratelimit::{BudgetMode, Cohort, MethodBudget};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Methods a sync calls per channel or thread: their calls so far, scaled to the channels
/// left, make the rest of the sync.
pub const CHANNEL_METHODS: &[&str] = &[
    "conversations.history",
    "conversations.replies",
    "conversations.join",
];

/// A sync's progress at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The budget mode.
    pub mode: BudgetMode,
    /// Channels read or skipped.
    pub channels_done: u64,
    /// Readable channels (`None` until `conversations.list` is done).
    pub channels_total: Option<u64>,
    /// HTTP requests so far.
    pub calls: u64,
    /// Requests held back by our own pacing.
    pub pacing_waits: u64,
    /// Each method's budget.
    pub budgets: Vec<MethodBudget>,
    /// Each method's calls.
    pub per_method: BTreeMap<String, MethodCalls>,
    /// What the client saw of the restricted cohort.
    pub cohort: Cohort,
}

impl Progress {
    /// The expected time left at the current budgets (pure): per channel method, its calls
    /// so far times the channels left over the channels done, at its current rate.
    pub fn eta(&self) -> Option<Duration> {
        let total = self.channels_total?;
        let done = self.channels_done.min(total);
        if done == total {
            return Some(Duration::ZERO);
        }
        if done == 0 {
            return None;
        }
        let left = (total - done) as f64 / done as f64;
        let mut seconds: f64 = 0.0;
        for method in CHANNEL_METHODS {
            let Some(calls) = self.per_method.get(*method) else {
                continue;
            };
            let rate = self
                .budgets
                .iter()
                .find(|b| b.method == *method)
                .map(|b| b.rate_per_sec)
                .filter(|r| *r > 0.0 && r.is_finite());
            if let Some(rate) = rate {
                seconds = seconds.max(calls.calls as f64 * left / rate);
            }
        }
        Duration::try_from_secs_f64(seconds).ok()
    }

    /// `method rate/min (published floor, ceiling)` for the methods called, for the log.
    pub fn rates(&self) -> String {
        let parts: Vec<String> = self
            .budgets
            .iter()
            .filter(|b| self.per_method.get(&b.method).is_some_and(|c| c.calls > 0))
            .map(|b| {
                let mut text = format!(
                    "{} {}/min (published {}",
                    b.method,
                    round(b.per_minute),
                    round(b.published_per_minute)
                );
                if b.restricted {
                    text.push_str(", restricted cohort");
                } else if let Some(ceiling) = b.ceiling_per_minute {
                    text.push_str(&format!(", ceiling {}", round(ceiling)));
                }
                text.push(')');
                text
            })
            .collect();
        if parts.is_empty() {
            "none yet".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// The sentence the end of a sync logs about pacing.
    pub fn pacing_verdict(&self) -> String {
        match self.pacing_waits {
            0 => "no pacing wait: Slack's limits never held this sync back".to_string(),
            1 => "1 request waited for its method's budget".to_string(),
            n => format!("{n} requests waited for their method's budget"),
        }
    }

    /// The job's `metadata.rate_budget`.
    pub fn rate_budget_json(&self) -> Value {
        let methods: Vec<Value> = self
            .budgets
            .iter()
            .map(|b| {
                let calls = self.per_method.get(&b.method).copied().unwrap_or_default();
                json!({
                    "method": b.method,
                    "per_minute": round(b.per_minute),
                    "published_per_minute": round(b.published_per_minute),
                    "ceiling_per_minute": b.ceiling_per_minute.map(round),
                    "restricted": b.restricted,
                    "calls": calls.calls,
                    "throttled": calls.throttled,
                })
            })
            .collect();
        json!({
            "mode": self.mode.as_str(),
            "pacing_waits": self.pacing_waits,
            "restricted_cohort": self.cohort.recognised(),
            "pages_capped_at_15": self.cohort.pages_capped(),
            "methods": methods,
        })
    }

    /// The job's `metadata.progress`.
    pub fn progress_json(&self) -> Value {
        json!({
            "channels_done": self.channels_done,
            "channels_total": self.channels_total,
            "calls": self.calls,
            "eta_seconds": self.eta().map(|d| d.as_secs()),
        })
    }
}

/// One decimal is plenty for a rate per minute.
fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(method: &str, per_minute: f64, rate_per_sec: f64) -> MethodBudget {
        MethodBudget {
            method: method.into(),
            per_minute,
            published_per_minute: 50.0,
            ceiling_per_minute: Some(500.0),
            restricted: false,
            rate_per_sec,
        }
    }

    fn progress(done: u64, total: Option<u64>) -> Progress {
        let mut per_method = BTreeMap::new();
        per_method.insert(
            "conversations.replies".to_string(),
            MethodCalls {
                calls: 100,
                throttled: 2,
            },
        );
        per_method.insert(
            "conversations.history".to_string(),
            MethodCalls {
                calls: 10,
                throttled: 0,
            },
        );
        per_method.insert(
            "users.list".to_string(),
            MethodCalls {
                calls: 5,
                throttled: 0,
            },
        );
        Progress {
            mode: BudgetMode::Learned,
            channels_done: done,
            channels_total: total,
            calls: 115,
            pacing_waits: 0,
            budgets: vec![
                budget("conversations.history", 50.0, 50.0 / 60.0),
                budget("conversations.replies", 475.0, 475.0 / 60.0),
                budget("users.list", 20.0, 0.001),
            ],
            per_method,
            cohort: Cohort::default(),
        }
    }

    #[test]
    fn eta_extrapolates_the_slowest_channel_method() {
        assert_eq!(progress(0, None).eta(), None);
        assert_eq!(progress(0, Some(10)).eta(), None);
        assert_eq!(progress(10, Some(10)).eta(), Some(Duration::ZERO));
        assert_eq!(progress(3, Some(0)).eta(), Some(Duration::ZERO));
        // 2 of 10 done: 4× the calls so far are left. Replies: 400 at 475/min ≈ 50.5 s;
        // history: 40 at 50/min = 48 s; users.list is not a channel method.
        let eta = progress(2, Some(10)).eta().unwrap().as_secs_f64();
        assert!((eta - 400.0 / (475.0 / 60.0)).abs() < 1e-6, "{eta}");
    }

    #[test]
    fn the_log_and_the_metadata_say_what_the_budgets_are() {
        let p = progress(2, Some(10));
        assert_eq!(
            p.rates(),
            "conversations.history 50/min (published 50, ceiling 500), conversations.replies 475/min (published 50, ceiling 500), users.list 20/min (published 50, ceiling 500)"
        );
        assert_eq!(
            p.pacing_verdict(),
            "no pacing wait: Slack's limits never held this sync back"
        );
        let json = p.rate_budget_json();
        assert_eq!(json["mode"], "learned");
        assert_eq!(json["restricted_cohort"], false);
        assert_eq!(json["methods"][1]["method"], "conversations.replies");
        assert_eq!(json["methods"][1]["throttled"], 2);
        assert_eq!(json["methods"][1]["per_minute"], 475.0);
        let progress_json = p.progress_json();
        assert_eq!(progress_json["channels_done"], 2);
        assert_eq!(progress_json["eta_seconds"], 50);
        let mut restricted = progress(0, None);
        restricted.budgets[0].restricted = true;
        restricted.pacing_waits = 3;
        assert!(restricted.rates().contains("restricted cohort"));
        assert_eq!(
            restricted.pacing_verdict(),
            "3 requests waited for their method's budget"
        );
        assert_eq!(restricted.progress_json()["eta_seconds"], Value::Null);
    }
}
