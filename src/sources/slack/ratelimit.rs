//! Client-side pacing of Slack Web API calls: one budget per method, shared by every task of a
//! workspace, either **learned** from Slack's answers (the default) or held at the
//! **published** tier (`slack-api.md` §3.2–3.3, `beyond-parity.md`).
//!
//! Slack limits "per API method per workspace per app", so parallel channel tasks do not add
//! capacity: they queue on the same budget. Callers *reserve* a slot ([`Bucket::reserve`]) and
//! sleep until it comes up, so waiters are served in order instead of waking together and
//! racing (no thundering herd, no 429 storm).
//!
//! The published tiers are floors ("Tier 3: 50+ per minute", bursts allowed); what a workspace
//! grants is learned (AIMD, [`BudgetMode::Learned`]):
//! - **probing**: a method starts at its published tier with a full minute's budget to burst.
//!   Every answer Slack does not refuse adds one call per minute to the rate, and the minute's
//!   budget grows with it, so while Slack answers 200 the client is never held back;
//! - **the first 429** ends probing: what Slack granted is estimated from the calls it accepted
//!   since probing began, against a budget of one minute's burst plus the rate over the time
//!   spent ([`probe_estimate`]). That estimate becomes the method's *ceiling*, and the rate
//!   drops to [`HEADROOM`] of it, never below the published tier on this first evidence;
//! - **later 429s** cut the rate multiplicatively ([`CUT`]) and set the ceiling to the refused
//!   rate; below the published tier only when Slack refuses there again ("unless Slack says so
//!   by 429s"), never below [`MIN_RATE_SHARE`] of it;
//! - **recovery**: answers raise the rate back by one call per minute each, up to
//!   [`HEADROOM`] of the ceiling; after [`QUIET_MINUTES`] without a 429 at that level, the
//!   ceiling is raised by [`PROBE_STEP`] (Slack's grant may have grown);
//! - **the restricted cohort** (Slack's 2025 limits for commercially distributed
//!   non-Marketplace apps: `conversations.history`/`.replies` at 1 call a minute, 15 items a
//!   page) is recognised by a `Retry-After` of [`RESTRICTED_RETRY_AFTER_SECS`] or more on those
//!   methods: both drop to [`RESTRICTED_PER_MINUTE`] at once instead of halving their way down,
//!   and stay there ([`Cohort`] keeps the evidence, pages capped at 15 included).
//!
//! [`BudgetMode::Published`] never goes above the published tier: a small burst, the tier's
//! rate, halved on a 429 and won back on answers (the behaviour before learned budgets).
//!
//! Invariants:
//! - a `Retry-After` from Slack moves the method's reference time to the end of the wait
//!   ([`Bucket::throttled`]): every request to that method, reserved or not, waits for it;
//! - only the first 429 of a block changes the rate: the others were already in flight (a
//!   429 during the `Retry-After`, or for a slot reserved before the last cut: with a
//!   time-scaled simulator the wait can be shorter than a request's round trip); those of
//!   the block that ended probing only refine its estimate downwards;
//! - rates are kept per real second; "a minute" is a Slack minute, `60 s / scale` of real time
//!   (`SLACK_TIER_SCALE`), so a time-scaled simulator sees the same behaviour, faster;
//! - the arithmetic is pure (times are `Duration`s since the limiter's start), so it is
//!   unit-tested without sleeping; [`RateLimiter::acquire`] is the only place that sleeps, on
//!   tokio's clock (pausable in tests) and racing the cancellation token.

use super::budgets::{LearnedBudgets, LearnedRate};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a method's budget is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BudgetMode {
    /// Start at the published tier and learn what Slack grants from its answers.
    #[default]
    Learned,
    /// Never above the published tier.
    Published,
}

impl BudgetMode {
    /// The configuration value (`learned`, `published`).
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetMode::Learned => "learned",
            BudgetMode::Published => "published",
        }
    }

    /// Parses a configuration value (case-insensitive; empty → the default).
    pub fn parse(value: &str) -> Option<BudgetMode> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "learned" => Some(BudgetMode::Learned),
            "published" => Some(BudgetMode::Published),
            _ => None,
        }
    }
}

/// A published rate tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tier {
    /// Requests per minute Slack publishes for the tier.
    pub per_minute: f64,
    /// Requests sent at once before pacing kicks in, in [`BudgetMode::Published`] (the
    /// learned mode bursts a whole minute's budget).
    pub burst: f64,
}

impl Tier {
    /// Tier 2 (`conversations.list`, `users.list`, `usergroups.list`,
    /// `files.remote.list`): 20/min.
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
            "conversations.list" | "users.list" | "usergroups.list" | "files.remote.list" => {
                Tier::TIER2
            }
            "conversations.members" | "users.info" => Tier::TIER4,
            "auth.test" | "chat.getPermalink" => Tier::SPECIAL,
            _ => Tier::TIER3,
        }
    }

    /// Requests per second once the budget is multiplied by `scale` (`SLACK_TIER_SCALE`).
    pub fn rate_per_sec(&self, scale: f64) -> f64 {
        self.per_minute * valid_scale(scale) / 60.0
    }
}

fn valid_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    }
}

/// The methods Slack's 2025 limits move to 1 call a minute and 15 items a page for
/// commercially distributed non-Marketplace apps.
pub const RESTRICTED_METHODS: [&str; 2] = ["conversations.history", "conversations.replies"];
/// Calls per minute of the restricted cohort's [`RESTRICTED_METHODS`].
pub const RESTRICTED_PER_MINUTE: f64 = 1.0;
/// Items per page of the restricted cohort's [`RESTRICTED_METHODS`].
pub const RESTRICTED_PAGE_SIZE: usize = 15;
/// A `Retry-After` this long (Slack seconds) on a restricted method means the restricted
/// cohort: a Tier 3 budget never asks for more than a couple of seconds.
pub const RESTRICTED_RETRY_AFTER_SECS: f64 = 30.0;

/// The learned rate's share of the ceiling: a margin for clock skew and latency jitter.
pub const HEADROOM: f64 = 0.95;
/// The multiplicative cut of a 429 once the ceiling is known.
pub const CUT: f64 = 0.8;
/// Slack minutes at the learned rate without a 429 before the ceiling is raised.
pub const QUIET_MINUTES: f64 = 10.0;
/// How much the ceiling is raised after [`QUIET_MINUTES`].
pub const PROBE_STEP: f64 = 0.05;
/// Lowest rate after repeated 429s, as a share of the tier's (Tier 3 → about 1/min).
pub const MIN_RATE_SHARE: f64 = 1.0 / 64.0;
/// Rate won back per answer in [`BudgetMode::Published`], as a share of the tier's.
const RECOVERY_SHARE: f64 = 1.0 / 32.0;
/// Highest learned rate kept, per Slack minute (a sanity bound, far above any tier).
pub const MAX_PER_MINUTE: f64 = 1.0e7;

/// What Slack granted during probing, in calls per real second (pure): `accepted` calls went
/// through before the refused one was sent, `elapsed` after probing began; Slack's budget
/// over that time was one minute's burst plus its rate over `elapsed`.
pub fn probe_estimate(accepted: u64, elapsed: Duration, minute: Duration) -> f64 {
    accepted as f64 / (minute + elapsed).as_secs_f64().max(1e-9)
}

/// A reserved slot: the sequence number of the reservation since probing began, and when
/// the request may go out. Handed back with a 429 so that probing knows how many calls Slack
/// accepted before refusing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Reservations made before this one since probing began.
    pub seq: u64,
    /// When the request was allowed out (limiter time).
    pub at: Duration,
}

/// The outcome of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// How long to wait before sending.
    pub wait: Duration,
    /// Whether the wait is our own pacing (the budget ran dry), not a `Retry-After`.
    pub paced: bool,
    /// The slot.
    pub ticket: Ticket,
}

/// One method's budget: a token bucket whose reference time may lie in the future (after a
/// `Retry-After`), whose rate is learned or published.
///
/// `tokens` is the count at time `at`; it goes negative while requests are reserved ahead of
/// time, and each unit of deficit is `1 / rate` seconds of waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    mode: BudgetMode,
    /// A Slack minute, in real seconds.
    minute: f64,
    /// The published tier, per real second.
    published: f64,
    /// Capacity in published mode.
    burst: f64,
    /// The current rate, per real second.
    rate: f64,
    /// Learned: the rate Slack refused at (or granted, estimated), per real second.
    ceiling: Option<f64>,
    /// Learned: this method is held at the restricted cohort's rate.
    restricted: bool,
    /// Whether this method is one of [`RESTRICTED_METHODS`].
    restrictable: bool,
    tokens: f64,
    at: Duration,
    /// Bumped by every penalty that moved `at`, so callers who reserved before it can tell
    /// that their slot was forgotten and reserve again.
    epoch: u64,
    /// Reservations since probing began (the bucket's creation).
    sent: u64,
    /// `sent` when the rate was last cut: a 429 for a slot reserved before it was already in
    /// flight when the cut happened, so it says nothing new about the rate.
    cut_seq: u64,
    /// The last cut ended probing: answers to slots reserved before it are still counted
    /// ([`Bucket::granted_slot`]) until the first answer to a later slot settles the estimate.
    probe_block: bool,
    /// Answers Slack accepted for slots reserved while probing.
    probe_accepted: u64,
    /// When the latest of those slots was sent.
    probe_last_sent: Duration,
    probe_start: Duration,
    /// Since when the learned rate has run without a 429 (or since the last ceiling raise).
    calm_since: Duration,
}

impl Bucket {
    /// A full bucket at time `now` for `method` (its tier), `scale` (`SLACK_TIER_SCALE`).
    pub fn new(method: &str, mode: BudgetMode, scale: f64, now: Duration) -> Bucket {
        Bucket::with_tier(Tier::of(method), method, mode, scale, now)
    }

    fn with_tier(tier: Tier, method: &str, mode: BudgetMode, scale: f64, now: Duration) -> Bucket {
        let published = tier.rate_per_sec(scale);
        let mut bucket = Bucket {
            mode,
            minute: 60.0 / valid_scale(scale),
            published,
            burst: tier.burst.max(1.0),
            rate: published,
            ceiling: None,
            restricted: false,
            restrictable: RESTRICTED_METHODS.contains(&method),
            tokens: 0.0,
            at: now,
            epoch: 0,
            sent: 0,
            cut_seq: 0,
            probe_block: false,
            probe_accepted: 0,
            probe_last_sent: now,
            probe_start: now,
            calm_since: now,
        };
        bucket.tokens = bucket.capacity();
        bucket
    }

    /// A full bucket starting from what an earlier sync learned (learned mode).
    pub fn restored(method: &str, learned: &LearnedRate, scale: f64, now: Duration) -> Bucket {
        let mut bucket = Bucket::new(method, BudgetMode::Learned, scale, now);
        let per_sec = |per_minute: f64| per_minute / bucket.minute;
        bucket.rate = per_sec(learned.per_minute)
            .clamp(bucket.published * MIN_RATE_SHARE, per_sec(MAX_PER_MINUTE));
        bucket.ceiling = learned
            .ceiling
            .map(|c| per_sec(c).clamp(bucket.published * MIN_RATE_SHARE, per_sec(MAX_PER_MINUTE)));
        bucket.restricted = learned.restricted && bucket.restrictable;
        if bucket.restricted {
            bucket.restrict();
        }
        bucket.tokens = bucket.capacity();
        bucket
    }

    /// The most requests sent at once: one minute's budget (learned), the tier's burst
    /// (published).
    pub fn capacity(&self) -> f64 {
        match self.mode {
            _ if self.restricted => 1.0,
            BudgetMode::Learned => (self.rate * self.minute).max(1.0),
            BudgetMode::Published => self.burst,
        }
    }

    fn refill(&mut self, now: Duration) {
        if now > self.at {
            let gained = (now - self.at).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + gained).min(self.capacity());
            self.at = now;
        }
    }

    /// Reserves one request: how long to wait before sending it, and its ticket.
    pub fn reserve(&mut self, now: Duration) -> Reservation {
        self.refill(now);
        self.tokens -= 1.0;
        let until_reference = self.at.saturating_sub(now);
        let deficit = if self.tokens < 0.0 {
            Duration::from_secs_f64(-self.tokens / self.rate)
        } else {
            Duration::ZERO
        };
        let wait = until_reference + deficit;
        let ticket = Ticket {
            seq: self.sent,
            at: now + wait,
        };
        self.sent += 1;
        Reservation {
            wait,
            paced: !deficit.is_zero(),
            ticket,
        }
    }

    /// Slack answered (anything but a 429): a probing budget grows by one call per minute
    /// (and the minute's budget with it); a learned one recovers towards its ceiling, and
    /// raises the ceiling after a quiet spell; a published one wins back what a 429 took.
    pub fn granted(&mut self, now: Duration) {
        if self.restricted {
            return;
        }
        match self.mode {
            BudgetMode::Published => {
                if self.rate < self.published {
                    self.rate = (self.rate + self.published * RECOVERY_SHARE).min(self.published);
                }
            }
            BudgetMode::Learned => {
                let step = 1.0 / self.minute;
                let max = MAX_PER_MINUTE / self.minute;
                match self.ceiling {
                    None => {
                        self.rate = (self.rate + step).min(max);
                        self.tokens = (self.tokens + 1.0).min(self.capacity());
                    }
                    Some(ceiling) => {
                        let target = ceiling * HEADROOM;
                        if self.rate < target {
                            self.rate = (self.rate + step).min(target);
                        } else if now.saturating_sub(self.calm_since).as_secs_f64()
                            >= QUIET_MINUTES * self.minute
                        {
                            self.ceiling =
                                Some((ceiling * (1.0 + PROBE_STEP)).max(ceiling + step).min(max));
                            self.calm_since = now;
                        }
                    }
                }
            }
        }
    }

    /// Slack said "wait `hold`" (a 429; `retry_after` is its header, if any): nothing is sent
    /// before `now + hold`, and one request is available then (that is what `Retry-After`
    /// means). The first 429 of a block also decides the new rate (see the module doc).
    /// Returns whether the bucket changed (a shorter hold than the current one is moot).
    pub fn throttled(
        &mut self,
        now: Duration,
        hold: Duration,
        retry_after: Option<Duration>,
        ticket: Option<Ticket>,
    ) -> bool {
        let until = now + hold;
        if until <= self.at && self.tokens <= 1.0 {
            return false;
        }
        let in_flight_at_last_cut = ticket.is_some_and(|t| t.seq < self.cut_seq);
        if !in_flight_at_last_cut {
            self.settle_probe();
        }
        if self.at <= now && !in_flight_at_last_cut {
            self.cut(now, retry_after, ticket);
            self.cut_seq = self.sent;
        }
        self.at = self.at.max(until);
        self.tokens = 1.0_f64.min(self.capacity());
        self.epoch += 1;
        true
    }

    /// The rate decision of the first 429 of a block.
    fn cut(&mut self, now: Duration, retry_after: Option<Duration>, ticket: Option<Ticket>) {
        self.calm_since = now;
        let slack_secs = retry_after.map(|ra| ra.as_secs_f64() * 60.0 / self.minute);
        if self.restrictable && slack_secs.is_some_and(|s| s >= RESTRICTED_RETRY_AFTER_SECS) {
            self.restrict();
            return;
        }
        if self.restricted {
            // Already at the cohort's rate: only the wait changes.
            return;
        }
        let floor = self.published * MIN_RATE_SHARE;
        match (self.mode, self.ceiling) {
            (BudgetMode::Published, _) => self.rate = (self.rate / 2.0).max(floor),
            // Probing ends: Slack's grant, estimated from what it accepted.
            (BudgetMode::Learned, None) => {
                let ticket = ticket.unwrap_or(Ticket {
                    seq: self.sent,
                    at: now,
                });
                let estimate = self.probe_grant(ticket);
                self.ceiling = Some(estimate);
                self.rate = (estimate * HEADROOM).max(self.published);
                self.probe_block = true;
            }
            // Refused at the learned rate: that is the ceiling now, and the rate is cut.
            (BudgetMode::Learned, Some(_)) => {
                let refused = self.rate;
                self.ceiling = Some(refused);
                let cut = refused * CUT;
                self.rate = if refused > self.published {
                    cut.max(self.published)
                } else {
                    cut.max(floor)
                };
            }
        }
    }

    /// What Slack granted while probing, judged by the refused slot `ticket`.
    fn probe_grant(&self, ticket: Ticket) -> f64 {
        probe_estimate(
            ticket.seq,
            ticket.at.saturating_sub(self.probe_start),
            Duration::from_secs_f64(self.minute),
        )
    }

    /// Slack answered the request of slot `ticket` (anything but a 429): counted for the
    /// probing estimate, then as [`Bucket::granted`].
    pub fn granted_slot(&mut self, now: Duration, ticket: Ticket) {
        let probing = self.mode == BudgetMode::Learned && !self.restricted;
        if probing && (self.ceiling.is_none() || (self.probe_block && ticket.seq < self.cut_seq)) {
            self.probe_accepted += 1;
            self.probe_last_sent = self.probe_last_sent.max(ticket.at);
        } else {
            self.settle_probe();
        }
        self.granted(now);
    }

    /// The answers to every slot of the probing block are in (the first answer to a later
    /// slot came): what Slack accepted by then, against a minute's burst plus its rate over
    /// the time spent, is a better estimate of its grant than the refused slot's number
    /// (requests overtake each other on the way, and the block's other answers were still
    /// in flight). Never below the published tier on this first evidence.
    fn settle_probe(&mut self) {
        if !self.probe_block {
            return;
        }
        self.probe_block = false;
        if self.probe_accepted == 0 {
            return;
        }
        let estimate = probe_estimate(
            self.probe_accepted,
            self.probe_last_sent.saturating_sub(self.probe_start),
            Duration::from_secs_f64(self.minute),
        );
        self.ceiling = Some(estimate);
        self.rate = (estimate * HEADROOM).max(self.published);
    }

    /// Holds the method just under the restricted cohort's rate (a call exactly every minute
    /// would meet Slack's window edge now and then).
    pub fn restrict(&mut self) {
        let rate = RESTRICTED_PER_MINUTE * HEADROOM / self.minute;
        self.restricted = true;
        self.ceiling = Some(rate);
        self.rate = rate;
        self.tokens = self.tokens.min(self.capacity());
    }

    /// The current rate (requests per real second).
    pub fn rate_per_sec(&self) -> f64 {
        self.rate
    }

    /// The current rate, per Slack minute.
    pub fn per_minute(&self) -> f64 {
        self.rate * self.minute
    }

    /// The published tier, per Slack minute.
    pub fn published_per_minute(&self) -> f64 {
        self.published * self.minute
    }

    /// The ceiling, per Slack minute (learned, after a 429).
    pub fn ceiling_per_minute(&self) -> Option<f64> {
        self.ceiling.map(|c| c * self.minute)
    }

    /// Whether the method is held at the restricted cohort's rate.
    pub fn is_restricted(&self) -> bool {
        self.restricted
    }

    /// The penalty counter (see the field).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// What this bucket learned, for the connector's cursor.
    pub fn learned(&self) -> LearnedRate {
        LearnedRate {
            per_minute: self.per_minute(),
            ceiling: self.ceiling_per_minute(),
            restricted: self.restricted,
        }
    }
}

/// What the client saw of the restricted cohort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cohort {
    /// A restricted method answered a `Retry-After` of [`RESTRICTED_RETRY_AFTER_SECS`] or more.
    pub long_retry_after: bool,
    /// Pages of a restricted method that stopped at [`RESTRICTED_PAGE_SIZE`] items or fewer
    /// with more to come, though more were asked for.
    pub capped_pages: u64,
    /// Pages of a restricted method with more than [`RESTRICTED_PAGE_SIZE`] items.
    pub full_pages: u64,
}

impl Cohort {
    /// Whether the answers say "restricted cohort": the long `Retry-After` at 1 call a
    /// minute, the decisive sign (short pages alone happen on any workspace).
    pub fn recognised(&self) -> bool {
        self.long_retry_after
    }

    /// Whether pages are capped at 15 (corroboration, for the log and the job's metadata).
    pub fn pages_capped(&self) -> bool {
        self.capped_pages >= 2 && self.full_pages == 0
    }

    /// Records one page of `method` (pure).
    pub fn observe_page(&mut self, method: &str, asked: usize, got: usize, has_more: bool) {
        if !RESTRICTED_METHODS.contains(&method) {
            return;
        }
        if got > RESTRICTED_PAGE_SIZE {
            self.full_pages += 1;
        } else if has_more && asked > RESTRICTED_PAGE_SIZE {
            self.capped_pages += 1;
        }
    }
}

/// One method's figures, for the job's metadata and the progress log.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodBudget {
    /// The method.
    pub method: String,
    /// The current rate, calls per Slack minute.
    pub per_minute: f64,
    /// The published tier, calls per Slack minute.
    pub published_per_minute: f64,
    /// The learned ceiling, calls per Slack minute.
    pub ceiling_per_minute: Option<f64>,
    /// Held at the restricted cohort's rate.
    pub restricted: bool,
    /// The current rate per real second (ETAs).
    pub rate_per_sec: f64,
}

/// The budgets of one workspace (token), keyed by method.
#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    scale: f64,
    mode: BudgetMode,
    enabled: bool,
    buckets: Mutex<HashMap<String, Bucket>>,
    cohort: Mutex<Cohort>,
}

impl RateLimiter {
    /// A limiter with every tier budget multiplied by `scale`; `enabled = false` never waits
    /// (except for `Retry-After`, which is always honoured).
    pub fn new(scale: f64, mode: BudgetMode, enabled: bool) -> RateLimiter {
        RateLimiter {
            start: Instant::now(),
            scale,
            mode,
            enabled,
            buckets: Mutex::new(HashMap::new()),
            cohort: Mutex::new(Cohort::default()),
        }
    }

    /// The limiter shared by every source of the same workspace (`key`: base URL + token
    /// fingerprint + scale + mode), so two syncs of one workspace do not double its rate.
    pub fn shared(key: u64, scale: f64, mode: BudgetMode, enabled: bool) -> Arc<RateLimiter> {
        static SHARED: OnceLock<Mutex<HashMap<u64, Weak<RateLimiter>>>> = OnceLock::new();
        let registry = SHARED.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = registry.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = map.get(&key).and_then(Weak::upgrade) {
            return existing;
        }
        let limiter = Arc::new(RateLimiter::new(scale, mode, enabled));
        map.insert(key, Arc::downgrade(&limiter));
        limiter
    }

    /// The budget mode.
    pub fn mode(&self) -> BudgetMode {
        self.mode
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    fn new_bucket(&self, method: &str, now: Duration) -> Bucket {
        if self.enabled {
            Bucket::new(method, self.mode, self.scale, now)
        } else {
            // Unpaced: a bucket so large it never runs dry, kept for Retry-After.
            let unpaced = Tier {
                per_minute: 6.0e9,
                burst: 1.0e9,
            };
            Bucket::with_tier(unpaced, method, BudgetMode::Published, self.scale, now)
        }
    }

    fn with_bucket<T>(&self, method: &str, f: impl FnOnce(&mut Bucket, Duration) -> T) -> T {
        let now = self.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(method) {
            let mut bucket = self.new_bucket(method, now);
            if self.cohort().recognised() && bucket.restrictable && self.enabled {
                bucket.restrict();
            }
            buckets.insert(method.to_string(), bucket);
        }
        let bucket = buckets.get_mut(method).expect("inserted above");
        f(bucket, now)
    }

    /// Waits until a request to `method` may be sent; `None` when cancelled.
    pub async fn acquire(&self, method: &str, cancel: &CancellationToken) -> Option<Reservation> {
        let mut paced = false;
        loop {
            let (reservation, epoch) =
                self.with_bucket(method, |b, now| (b.reserve(now), b.epoch()));
            paced |= reservation.paced;
            if reservation.wait.is_zero() {
                return Some(Reservation {
                    paced,
                    ..reservation
                });
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(reservation.wait) => {}
            }
            // A Retry-After arrived while we slept: our slot is void, queue again.
            if self.with_bucket(method, |b, _| b.epoch()) == epoch {
                return Some(Reservation {
                    paced,
                    ..reservation
                });
            }
        }
    }

    /// Slack answered a request to `method` (slot `ticket`) without refusing it.
    pub fn granted(&self, method: &str, ticket: Ticket) {
        self.with_bucket(method, |b, now| b.granted_slot(now, ticket));
    }

    /// Slack refused a request to `method` (429): every caller of `method` waits `hold`, and
    /// the budget learns from it (`retry_after`: the header; `ticket`: the refused slot).
    /// A long `Retry-After` on a restricted method puts both restricted methods at the
    /// cohort's rate.
    pub fn throttled(
        &self,
        method: &str,
        hold: Duration,
        retry_after: Option<Duration>,
        ticket: Option<Ticket>,
    ) {
        let long = self.enabled
            && RESTRICTED_METHODS.contains(&method)
            && retry_after.is_some_and(|ra| {
                ra.as_secs_f64() * valid_scale(self.scale) >= RESTRICTED_RETRY_AFTER_SECS
            });
        self.with_bucket(method, |b, now| b.throttled(now, hold, retry_after, ticket));
        if long && !self.cohort().long_retry_after {
            // Said at once (the sync's end says it again, with the pages seen): at 1 call a
            // minute, the next progress line may be long in coming.
            tracing::warn!(
                method,
                retry_after_s = retry_after.map(|ra| ra.as_secs_f64() * valid_scale(self.scale)),
                "slack restricted cohort recognised: conversations.history and conversations.replies are now paced at 1 call a minute"
            );
            self.lock_cohort().long_retry_after = true;
            for other in RESTRICTED_METHODS {
                self.with_bucket(other, |b, _| {
                    if !b.is_restricted() {
                        b.restrict()
                    }
                });
            }
        }
    }

    /// Records a page of `method`: `got` items of `asked`, more to come or not.
    pub fn observe_page(&self, method: &str, asked: usize, got: usize, has_more: bool) {
        self.lock_cohort()
            .observe_page(method, asked, got, has_more);
    }

    fn lock_cohort(&self) -> std::sync::MutexGuard<'_, Cohort> {
        self.cohort.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the client saw of the restricted cohort.
    pub fn cohort(&self) -> Cohort {
        *self.lock_cohort()
    }

    /// Starts the methods that have no budget yet from what an earlier sync learned
    /// (learned mode, paced); returns how many were restored.
    pub fn seed(&self, learned: &LearnedBudgets) -> usize {
        if self.mode != BudgetMode::Learned || !self.enabled {
            return 0;
        }
        let now = self.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut restored = 0;
        for (method, rate) in &learned.methods {
            if buckets.contains_key(method) {
                continue;
            }
            let bucket = Bucket::restored(method, rate, self.scale, now);
            buckets.insert(method.clone(), bucket);
            restored += 1;
        }
        drop(buckets);
        if learned.restricted_cohort() {
            self.lock_cohort().long_retry_after = true;
        }
        restored
    }

    /// What the learned budgets are now, per method (learned mode; empty otherwise).
    pub fn learned(&self) -> BTreeMap<String, LearnedRate> {
        if self.mode != BudgetMode::Learned || !self.enabled {
            return BTreeMap::new();
        }
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .iter()
            .map(|(method, bucket)| (method.clone(), bucket.learned()))
            .collect()
    }

    /// Every method's figures, sorted by method.
    pub fn budgets(&self) -> Vec<MethodBudget> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<MethodBudget> = buckets
            .iter()
            .map(|(method, b)| MethodBudget {
                method: method.clone(),
                per_minute: b.per_minute(),
                published_per_minute: b.published_per_minute(),
                ceiling_per_minute: b.ceiling_per_minute(),
                restricted: b.is_restricted(),
                rate_per_sec: b.rate_per_sec(),
            })
            .collect();
        all.sort_by(|a, b| a.method.cmp(&b.method));
        all
    }

    /// Whether requests are paced at all (off only in tests of the server's limiter).
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

#[cfg(test)]
mod tests;
