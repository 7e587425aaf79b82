//! Client-side pacing of Slack Web API calls: one token bucket per method, at the
//! published tier (`slack-api.md` §3.2–3.3), shared by every task of a workspace.
//!
//! Slack limits "per API method per workspace per app", so parallel channel tasks do not
//! add capacity: they queue on the same bucket. Callers *reserve* a slot ([`Bucket::reserve`])
//! and sleep until it comes up, so waiters are served in order at the tier rate instead of
//! waking together and racing (no thundering herd, no 429 storm).
//!
//! Invariants:
//! - the long-run rate never exceeds `per_minute × scale / 60` per second, and the initial
//!   burst never exceeds [`Tier::burst`] (well under Slack's tolerance);
//! - a `Retry-After` from Slack moves the bucket's reference time to the end of the wait
//!   ([`Bucket::penalize`]): every request to that method, reserved or not, waits for it;
//! - the published tiers are floors Slack may not grant (the 2025 Tier 1 change for
//!   non-Marketplace apps), so the rate adapts: a 429 halves it (once per block, however
//!   many in-flight requests bounce), each success adds back 1/32 of the nominal rate
//!   (AIMD), never above the tier; a client paced right never sees a 429 and keeps the
//!   full rate;
//! - the arithmetic is pure (times are `Duration`s since the limiter's start), so it is
//!   unit-tested without sleeping; [`RateLimiter::acquire`] is the only place that sleeps,
//!   on tokio's clock (pausable in tests) and racing the cancellation token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A published rate tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tier {
    /// Requests per minute Slack publishes for the tier.
    pub per_minute: f64,
    /// Requests we may send at once before pacing kicks in.
    pub burst: f64,
}

impl Tier {
    /// Tier 2 (`conversations.list`, `users.list`, `usergroups.list`): 20/min.
    pub const TIER2: Tier = Tier {
        per_minute: 20.0,
        burst: 2.0,
    };
    /// Tier 3 (`conversations.history`/`replies`/`info`/`join`, `team.info`): 50/min.
    pub const TIER3: Tier = Tier {
        per_minute: 50.0,
        burst: 5.0,
    };
    /// Tier 4 (`conversations.members`): 100/min.
    pub const TIER4: Tier = Tier {
        per_minute: 100.0,
        burst: 10.0,
    };
    /// The special tier of `auth.test` (~600/min).
    pub const SPECIAL: Tier = Tier {
        per_minute: 600.0,
        burst: 20.0,
    };

    /// The tier of a Web API method (unknown methods get Tier 3, the common one).
    pub fn of(method: &str) -> Tier {
        match method {
            "conversations.list" | "users.list" | "usergroups.list" => Tier::TIER2,
            "conversations.members" | "users.info" => Tier::TIER4,
            "auth.test" | "chat.getPermalink" => Tier::SPECIAL,
            _ => Tier::TIER3,
        }
    }

    /// Requests per second once the budget is multiplied by `scale` (`SLACK_TIER_SCALE`).
    pub fn rate_per_sec(&self, scale: f64) -> f64 {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        self.per_minute * scale / 60.0
    }
}

/// Lowest rate after repeated 429s, as a share of the tier's (Tier 3 → about 1/min).
const MIN_RATE_SHARE: f64 = 1.0 / 64.0;
/// Rate won back per successful request, as a share of the tier's.
const RECOVERY_SHARE: f64 = 1.0 / 32.0;

/// A token bucket whose reference time may lie in the future (after a `Retry-After`).
///
/// `tokens` is the count at time `at`; it goes negative while requests are reserved
/// ahead of time, and each unit of deficit is `1 / rate` seconds of waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    nominal_rate: f64,
    rate_per_sec: f64,
    capacity: f64,
    tokens: f64,
    at: Duration,
    /// Bumped by every penalty that moved `at`, so callers who reserved before it can tell
    /// that their slot was forgotten and reserve again.
    epoch: u64,
}

impl Bucket {
    /// A full bucket at time `now`.
    pub fn new(tier: Tier, scale: f64, now: Duration) -> Bucket {
        let capacity = tier.burst.max(1.0);
        Bucket {
            nominal_rate: tier.rate_per_sec(scale),
            rate_per_sec: tier.rate_per_sec(scale),
            capacity,
            tokens: capacity,
            at: now,
            epoch: 0,
        }
    }

    fn refill(&mut self, now: Duration) {
        if now > self.at {
            let gained = (now - self.at).as_secs_f64() * self.rate_per_sec;
            self.tokens = (self.tokens + gained).min(self.capacity);
            self.at = now;
        }
    }

    /// Reserves one request and returns how long to wait before sending it.
    pub fn reserve(&mut self, now: Duration) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        let until_reference = self.at.saturating_sub(now);
        let deficit = if self.tokens < 0.0 {
            Duration::from_secs_f64(-self.tokens / self.rate_per_sec)
        } else {
            Duration::ZERO
        };
        until_reference + deficit
    }

    /// Slack said "wait `retry_after`": nothing is sent before `now + retry_after`, and one
    /// request is available then (that is what Slack's `Retry-After` means).
    /// Returns whether the bucket changed (a shorter penalty than the current one is moot).
    pub fn penalize(&mut self, now: Duration, retry_after: Duration) -> bool {
        let until = now + retry_after;
        if until <= self.at && self.tokens <= 1.0 {
            return false;
        }
        // Only the first 429 of a block slows us down: the others were already in flight.
        if self.at <= now {
            self.rate_per_sec = (self.rate_per_sec / 2.0).max(self.nominal_rate * MIN_RATE_SHARE);
        }
        self.at = self.at.max(until);
        self.tokens = 1.0_f64.min(self.capacity);
        self.epoch += 1;
        true
    }

    /// A request went through: win back some of the rate a 429 took.
    pub fn record_success(&mut self) {
        if self.rate_per_sec < self.nominal_rate {
            self.rate_per_sec =
                (self.rate_per_sec + self.nominal_rate * RECOVERY_SHARE).min(self.nominal_rate);
        }
    }

    /// The current rate (requests per second).
    pub fn rate_per_sec(&self) -> f64 {
        self.rate_per_sec
    }

    /// The penalty counter (see the field).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// The buckets of one workspace (token), keyed by method.
#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    scale: f64,
    enabled: bool,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter with every tier budget multiplied by `scale`; `enabled = false` never waits
    /// (except for `Retry-After`, which is always honoured).
    pub fn new(scale: f64, enabled: bool) -> RateLimiter {
        RateLimiter {
            start: Instant::now(),
            scale,
            enabled,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limiter shared by every source of the same workspace (`key`: base URL + token
    /// fingerprint + scale), so two syncs of one workspace do not double its rate.
    pub fn shared(key: u64, scale: f64, enabled: bool) -> Arc<RateLimiter> {
        static SHARED: OnceLock<Mutex<HashMap<u64, Weak<RateLimiter>>>> = OnceLock::new();
        let registry = SHARED.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = registry.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = map.get(&key).and_then(Weak::upgrade) {
            return existing;
        }
        let limiter = Arc::new(RateLimiter::new(scale, enabled));
        map.insert(key, Arc::downgrade(&limiter));
        limiter
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    fn with_bucket<T>(&self, method: &str, f: impl FnOnce(&mut Bucket, Duration) -> T) -> T {
        let now = self.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let tier = if self.enabled {
            Tier::of(method)
        } else {
            // Unpaced: a bucket so large it never runs dry, kept for Retry-After.
            Tier {
                per_minute: 6.0e9,
                burst: 1.0e9,
            }
        };
        let bucket = buckets
            .entry(method.to_string())
            .or_insert_with(|| Bucket::new(tier, self.scale, now));
        f(bucket, now)
    }

    /// Waits until a request to `method` may be sent. Returns `false` when cancelled.
    pub async fn acquire(&self, method: &str, cancel: &CancellationToken) -> bool {
        loop {
            let (wait, epoch) = self.with_bucket(method, |b, now| (b.reserve(now), b.epoch()));
            if wait.is_zero() {
                return true;
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
            // A Retry-After arrived while we slept: our slot is void, queue again.
            if self.with_bucket(method, |b, _| b.epoch()) == epoch {
                return true;
            }
        }
    }

    /// Reports a successful request (rate recovery after 429s).
    pub fn record_success(&self, method: &str) {
        self.with_bucket(method, |b, _| b.record_success());
    }

    /// Feeds a `Retry-After` back so that every caller of `method` waits for it.
    pub fn penalize(&self, method: &str, retry_after: Duration) {
        self.with_bucket(method, |b, now| b.penalize(now, retry_after));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn tiers_match_the_published_table() {
        assert_eq!(Tier::of("conversations.history").per_minute, 50.0);
        assert_eq!(Tier::of("conversations.replies").per_minute, 50.0);
        assert_eq!(Tier::of("conversations.join").per_minute, 50.0);
        assert_eq!(Tier::of("team.info").per_minute, 50.0);
        assert_eq!(Tier::of("conversations.list").per_minute, 20.0);
        assert_eq!(Tier::of("users.list").per_minute, 20.0);
        assert_eq!(Tier::of("usergroups.list").per_minute, 20.0);
        assert_eq!(Tier::of("conversations.members").per_minute, 100.0);
        assert_eq!(Tier::of("auth.test").per_minute, 600.0);
        assert!((Tier::TIER3.rate_per_sec(60.0) - 50.0).abs() < 1e-9);
        assert!((Tier::TIER3.rate_per_sec(-1.0) - 50.0 / 60.0).abs() < 1e-9);
        assert!((Tier::TIER3.rate_per_sec(f64::NAN) - 50.0 / 60.0).abs() < 1e-9);
    }

    #[test]
    fn burst_then_paced_at_the_tier_rate() {
        // Tier 3 at scale 60: 50 requests per second, burst 5.
        let mut b = Bucket::new(Tier::TIER3, 60.0, Duration::ZERO);
        for _ in 0..5 {
            assert_eq!(b.reserve(Duration::ZERO), Duration::ZERO);
        }
        // The next reservations queue 20 ms apart.
        let w1 = b.reserve(Duration::ZERO);
        let w2 = b.reserve(Duration::ZERO);
        assert!((w1.as_secs_f64() - 0.02).abs() < 1e-9, "{w1:?}");
        assert!((w2.as_secs_f64() - 0.04).abs() < 1e-9, "{w2:?}");
        // After a second, the queue has drained and 50 more were earned (capped at burst).
        let w = b.reserve(secs(1.0));
        assert_eq!(w, Duration::ZERO);
    }

    #[test]
    fn long_run_rate_never_exceeds_the_budget() {
        // Reserve 1,000 requests at once: the last one waits (1000 - burst) / rate.
        let mut b = Bucket::new(Tier::TIER2, 1.0, Duration::ZERO);
        let mut last = Duration::ZERO;
        for _ in 0..1000 {
            last = b.reserve(Duration::ZERO);
        }
        let expected = (1000.0 - Tier::TIER2.burst) / (20.0 / 60.0);
        assert!((last.as_secs_f64() - expected).abs() < 1e-6, "{last:?}");
    }

    #[test]
    fn retry_after_blocks_everyone_and_restarts_at_one_request() {
        let mut b = Bucket::new(Tier::TIER3, 1.0, Duration::ZERO);
        assert!(b.penalize(secs(10.0), secs(30.0)));
        assert_eq!(b.epoch(), 1);
        // At t=10 a new caller waits until t=40 for the request Slack promised.
        assert_eq!(b.reserve(secs(10.0)), secs(30.0));
        // The one after waits another 1/rate, at the halved rate (2.4 s at 25/min).
        let w = b.reserve(secs(10.0));
        assert!((w.as_secs_f64() - 32.4).abs() < 1e-9, "{w:?}");
        // A shorter Retry-After than the current block changes nothing.
        let mut c = Bucket::new(Tier::TIER3, 1.0, Duration::ZERO);
        c.penalize(Duration::ZERO, secs(30.0));
        c.tokens = 0.0;
        assert!(!c.penalize(secs(1.0), secs(2.0)));
        assert_eq!(c.epoch(), 1);
    }

    #[test]
    fn rate_halves_on_429_once_per_block_and_recovers_on_success() {
        let mut b = Bucket::new(Tier::TIER3, 60.0, Duration::ZERO);
        assert_eq!(b.rate_per_sec(), 50.0);
        b.penalize(secs(1.0), secs(0.5));
        assert_eq!(b.rate_per_sec(), 25.0);
        // More 429s from requests already in flight: same block, no further cut.
        b.penalize(secs(1.1), secs(0.5));
        b.penalize(secs(1.2), secs(0.2));
        assert_eq!(b.rate_per_sec(), 25.0);
        // A 429 after the block: cut again.
        b.penalize(secs(2.0), secs(0.1));
        assert_eq!(b.rate_per_sec(), 12.5);
        // Never below 1/64 of the tier.
        for i in 0..20 {
            b.penalize(secs(10.0 + f64::from(i)), secs(0.1));
        }
        assert!((b.rate_per_sec() - 50.0 / 64.0).abs() < 1e-9);
        // Successes climb back, capped at the tier.
        for _ in 0..100 {
            b.record_success();
        }
        assert_eq!(b.rate_per_sec(), 50.0);
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let mut b = Bucket::new(Tier::TIER3, 1.0, Duration::ZERO);
        for _ in 0..5 {
            b.reserve(Duration::ZERO);
        }
        // An hour idle earns only `burst` requests.
        for _ in 0..5 {
            assert_eq!(b.reserve(secs(3600.0)), Duration::ZERO);
        }
        assert!(b.reserve(secs(3600.0)) > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_paces_on_the_tokio_clock_and_honours_penalties() {
        let limiter = RateLimiter::new(60.0, true);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        for _ in 0..55 {
            assert!(limiter.acquire("conversations.history", &cancel).await);
        }
        // 5 free, then 50 at 50/s: one second.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((elapsed - 1.0).abs() < 0.01, "{elapsed}");
        limiter.penalize("conversations.history", Duration::from_secs(3));
        let before = Instant::now();
        assert!(limiter.acquire("conversations.history", &cancel).await);
        assert!(before.elapsed() >= Duration::from_secs(3));
        // Other methods are not held back.
        let before = Instant::now();
        assert!(limiter.acquire("users.list", &cancel).await);
        assert_eq!(before.elapsed(), Duration::ZERO);
        cancel.cancel();
        limiter.penalize("users.list", Duration::from_secs(600));
        assert!(!limiter.acquire("users.list", &cancel).await);
    }
}
