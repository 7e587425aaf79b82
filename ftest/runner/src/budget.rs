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
