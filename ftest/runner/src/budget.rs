//! The budget lines of a round's report (`make bench`'s budget part): per Slack method, the
//! calls, the 429s (and those after the method's first Slack minute), the rate the service
//! ended at beside the published tier (from the job's `metadata.rate_budget`), and the share
//! of the simulator's granted rate the sync used.
//!
//! The share is what `src/sources/slack/ratelimit/tests.rs` replays: the calls Slack accepted
//! over what it granted between the method's first and last call, one minute's burst plus
//! the granted rate over that time (`slack_sim::state::budget`). Methods with fewer than a
//! minute's burst of calls are left out: a burst proves nothing about a rate.

use serde_json::Value;
use slack_sim::{RateLimitSettings, SimStats};

/// The report lines (empty when the limiter is off and the job says nothing of budgets).
pub(crate) fn lines(stats: &SimStats, settings: &RateLimitSettings, job: &Value) -> String {
    let budget = &job["metadata"]["rate_budget"];
    let mut out = String::new();
    if budget.is_object() {
        out.push_str(&format!(
            "\n    Slack budget mode {}, pacing waits {}, restricted cohort {}",
            budget["mode"].as_str().unwrap_or("?"),
            budget["pacing_waits"],
            budget["restricted_cohort"],
        ));
    }
    if !settings.enabled {
        return out;
    }
    out.push_str(&format!(
        "\n    simulator grants {}x the published tiers{}",
        settings.grant,
        if settings.restricted_cohort {
            " (restricted cohort: history/replies 1/min)"
        } else {
            ""
        }
    ));
    let minute = 60.0 / settings.time_scale.max(1e-9);
    for (method, calls) in &stats.calls {
        let Some((per_minute, burst)) = slack_sim::state::budget(method, settings) else {
            continue;
        };
        let throttled = stats.ratelimited.get(method).copied().unwrap_or(0);
        let late = stats.ratelimited_late.get(method).copied().unwrap_or(0);
        let accepted = calls.saturating_sub(throttled) as f64;
        let share = stats.windows.get(method).and_then(|w| {
            let minutes = (w.last_s - w.first_s).max(0.0) / minute;
            (accepted > burst).then(|| accepted / (burst + per_minute * minutes))
        });
        let learned = budget["methods"]
            .as_array()
            .and_then(|methods| methods.iter().find(|m| m["method"] == method.as_str()));
        let rate = learned
            .map(|m| {
                format!(
                    ", service rate {}/min (published {})",
                    m["per_minute"], m["published_per_minute"]
                )
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "\n    {method}: {calls} calls, {throttled} 429s ({late} after its first minute), granted {per_minute:.0}/min{rate}{}",
            share
                .map(|s| format!(", {:.0}% of the granted rate used", s * 100.0))
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use slack_sim::CallWindow;

    #[test]
    fn lines_give_calls_429s_rates_and_the_share_of_the_grant() {
        let mut stats = SimStats::default();
        // Twice the tiers at 60×: replies granted 100/min, a burst of 100. 298 calls, 8
        // refused, between 0 and 2 s (two Slack minutes): 290 accepted of 100 + 2 × 100.
        stats.calls.insert("conversations.replies".into(), 298);
        stats.ratelimited.insert("conversations.replies".into(), 8);
        stats
            .ratelimited_late
            .insert("conversations.replies".into(), 1);
        stats.windows.insert(
            "conversations.replies".into(),
            CallWindow {
                first_s: 1.0,
                last_s: 3.0,
            },
        );
        stats.calls.insert("users.list".into(), 2);
        let settings = RateLimitSettings {
            enabled: true,
            time_scale: 60.0,
            grant: 2.0,
            restricted_cohort: false,
        };
        let job = json!({"metadata": {"rate_budget": {"mode": "learned", "pacing_waits": 3,
            "restricted_cohort": false, "methods": [{"method": "conversations.replies",
            "per_minute": 95.0, "published_per_minute": 50.0}]}}});
        let text = lines(&stats, &settings, &job);
        assert!(
            text.contains("Slack budget mode learned, pacing waits 3, restricted cohort false"),
            "{text}"
        );
        assert!(text.contains("grants 2x the published tiers"), "{text}");
        assert!(
            text.contains("conversations.replies: 298 calls, 8 429s (1 after its first minute), granted 100/min, service rate 95.0/min (published 50.0), 97% of the granted rate used"),
            "{text}"
        );
        // Fewer calls than a burst: no share.
        assert!(
            text.contains(
                "users.list: 2 calls, 0 429s (0 after its first minute), granted 40/min\n"
            ) || text.ends_with("granted 40/min"),
            "{text}"
        );
        // Limits off: only what the job says.
        let off = RateLimitSettings::default();
        assert_eq!(
            lines(&stats, &off, &job),
            "\n    Slack budget mode learned, pacing waits 3, restricted cohort false"
        );
    }
}
