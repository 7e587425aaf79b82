//! The budget decisions one by one, then a deterministic replay of a sync's calls against a
//! Slack-like limiter (no sleeping: simulated time) for the figures the issue asks of the
//! learned budgets: at least 90 % of what Slack grants, at most one 429 per method after the
//! first minute, no pacing wait when nothing is limited, and the restricted cohort found.

use super::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

const HISTORY: &str = "conversations.history";
const REPLIES: &str = "conversations.replies";

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
fn modes_parse_from_the_configuration() {
    assert_eq!(BudgetMode::parse(""), Some(BudgetMode::Learned));
    assert_eq!(BudgetMode::parse(" Learned "), Some(BudgetMode::Learned));
    assert_eq!(BudgetMode::parse("published"), Some(BudgetMode::Published));
    assert_eq!(BudgetMode::parse("fast"), None);
    assert_eq!(BudgetMode::default().as_str(), "learned");
}

#[test]
fn published_bursts_then_paces_at_the_tier_rate() {
    // Tier 3 at scale 60: 50 requests per second, burst 5.
    let mut b = Bucket::new(HISTORY, BudgetMode::Published, 60.0, Duration::ZERO);
    for _ in 0..5 {
        assert_eq!(b.reserve(Duration::ZERO).wait, Duration::ZERO);
    }
    // The next reservations queue 20 ms apart, and say they were paced.
    let w1 = b.reserve(Duration::ZERO);
    let w2 = b.reserve(Duration::ZERO);
    assert!((w1.wait.as_secs_f64() - 0.02).abs() < 1e-9, "{w1:?}");
    assert!((w2.wait.as_secs_f64() - 0.04).abs() < 1e-9, "{w2:?}");
    assert!(w1.paced && w2.paced);
    // After a second, the queue has drained and 50 more were earned (capped at burst).
    assert_eq!(b.reserve(secs(1.0)).wait, Duration::ZERO);
    // Answers never take the rate above the tier.
    for _ in 0..100 {
        b.granted(secs(1.0));
    }
    assert_eq!(b.rate_per_sec(), 50.0);
}

#[test]
fn published_long_run_rate_never_exceeds_the_budget() {
    // Reserve 1,000 requests at once: the last one waits (1000 - burst) / rate.
    let mut b = Bucket::new("users.list", BudgetMode::Published, 1.0, Duration::ZERO);
    let mut last = Duration::ZERO;
    for _ in 0..1000 {
        last = b.reserve(Duration::ZERO).wait;
    }
    let expected = (1000.0 - Tier::TIER2.burst) / (20.0 / 60.0);
    assert!((last.as_secs_f64() - expected).abs() < 1e-6, "{last:?}");
}

#[test]
fn retry_after_blocks_everyone_and_restarts_at_one_request() {
    // Tier 3, not one of the restricted cohort's methods (30 s would mean that cohort).
    let mut b = Bucket::new(
        "conversations.join",
        BudgetMode::Published,
        1.0,
        Duration::ZERO,
    );
    assert!(b.throttled(secs(10.0), secs(30.0), Some(secs(30.0)), None));
    assert_eq!(b.epoch(), 1);
    // At t=10 a new caller waits until t=40 for the request Slack promised; not pacing.
    let first = b.reserve(secs(10.0));
    assert_eq!(first.wait, secs(30.0));
    assert!(!first.paced);
    // The one after waits another 1/rate, at the halved rate (2.4 s at 25/min).
    let w = b.reserve(secs(10.0)).wait;
    assert!((w.as_secs_f64() - 32.4).abs() < 1e-9, "{w:?}");
    // A shorter Retry-After than the current block changes nothing.
    let mut c = Bucket::new(HISTORY, BudgetMode::Published, 1.0, Duration::ZERO);
    c.throttled(Duration::ZERO, secs(30.0), None, None);
    c.tokens = 0.0;
    assert!(!c.throttled(secs(1.0), secs(2.0), None, None));
    assert_eq!(c.epoch(), 1);
}

#[test]
fn published_halves_on_429_once_per_block_and_recovers() {
    let mut b = Bucket::new(HISTORY, BudgetMode::Published, 60.0, Duration::ZERO);
    assert_eq!(b.rate_per_sec(), 50.0);
    b.throttled(secs(1.0), secs(0.5), None, None);
    assert_eq!(b.rate_per_sec(), 25.0);
    // More 429s from requests already in flight: same block, no further cut.
    b.throttled(secs(1.1), secs(0.5), None, None);
    b.throttled(secs(1.2), secs(0.2), None, None);
    assert_eq!(b.rate_per_sec(), 25.0);
    // A 429 after the block: cut again.
    b.throttled(secs(2.0), secs(0.1), None, None);
    assert_eq!(b.rate_per_sec(), 12.5);
    // Never below 1/64 of the tier.
    for i in 0..20 {
        b.throttled(secs(10.0 + f64::from(i)), secs(0.1), None, None);
    }
    assert!((b.rate_per_sec() - 50.0 / 64.0).abs() < 1e-9);
    for _ in 0..100 {
        b.granted(secs(40.0));
    }
    assert_eq!(b.rate_per_sec(), 50.0);
}

#[test]
fn learned_bursts_a_minute_and_probes_while_slack_answers() {
    // Tier 3 at scale 1: a minute's budget is 50 calls.
    let mut b = Bucket::new(REPLIES, BudgetMode::Learned, 1.0, Duration::ZERO);
    assert_eq!(b.capacity(), 50.0);
    for _ in 0..50 {
        assert_eq!(b.reserve(Duration::ZERO).wait, Duration::ZERO);
    }
    assert!(b.reserve(Duration::ZERO).paced);
    // Each answer adds a call per minute and a call to this minute's budget: a client whose
    // calls are all answered is never held back, however fast it goes.
    let mut b = Bucket::new(REPLIES, BudgetMode::Learned, 1.0, Duration::ZERO);
    for _ in 0..10_000 {
        let r = b.reserve(Duration::ZERO);
        assert!(!r.paced && r.wait.is_zero());
        b.granted(Duration::ZERO);
    }
    assert!(
        (b.per_minute() - 10_050.0).abs() < 1e-6,
        "{}",
        b.per_minute()
    );
    assert_eq!(b.ceiling_per_minute(), None);
}

#[test]
fn first_429_estimates_the_grant_and_sets_the_rate_below_it() {
    // 650 calls accepted in the first 18 s (a minute's burst of 500 + 500/min × 0.3 min):
    // Slack grants 500/min; the rate drops to 95 % of that.
    let minute = secs(60.0);
    assert!((probe_estimate(650, secs(18.0), minute) * 60.0 - 500.0).abs() < 1e-9);
    let mut b = Bucket::new(REPLIES, BudgetMode::Learned, 1.0, Duration::ZERO);
    let ticket = Ticket {
        seq: 650,
        at: secs(18.0),
    };
    assert!(b.throttled(secs(18.1), secs(1.0), Some(secs(1.0)), Some(ticket)));
    assert!((b.ceiling_per_minute().unwrap() - 500.0).abs() < 1e-6);
    assert!((b.per_minute() - 475.0).abs() < 1e-6);
    // Never below the published tier on that first evidence.
    let mut low = Bucket::new(REPLIES, BudgetMode::Learned, 1.0, Duration::ZERO);
    let ticket = Ticket {
        seq: 10,
        at: secs(1.0),
    };
    low.throttled(secs(1.0), secs(2.0), Some(secs(2.0)), Some(ticket));
    assert_eq!(low.per_minute(), 50.0);
    // A later 429 at the tier: Slack says so, the rate goes below it.
    low.throttled(secs(10.0), secs(2.0), Some(secs(2.0)), None);
    assert!(
        (low.per_minute() - 40.0).abs() < 1e-9,
        "{}",
        low.per_minute()
    );
    assert_eq!(low.ceiling_per_minute(), Some(50.0));
}

#[test]
fn learned_cuts_multiplicatively_recovers_and_probes_after_a_quiet_spell() {
    let mut b = Bucket::new(REPLIES, BudgetMode::Learned, 1.0, Duration::ZERO);
    b.throttled(
        secs(1.0),
        secs(1.0),
        Some(secs(1.0)),
        Some(Ticket {
            seq: 200,
            at: secs(0.0),
        }),
    );
    assert!((b.per_minute() - 190.0).abs() < 1e-9);
    // A 429 at 190/min: ceiling 190, rate × 0.8 = 152.
    b.throttled(secs(5.0), secs(1.0), Some(secs(1.0)), None);
    assert_eq!(b.ceiling_per_minute(), Some(190.0));
    assert!((b.per_minute() - 152.0).abs() < 1e-9);
    // In-flight 429s of the same block change nothing.
    b.throttled(secs(5.5), secs(0.2), Some(secs(1.0)), None);
    assert!((b.per_minute() - 152.0).abs() < 1e-9);
    // Answers climb back one call per minute each, to 95 % of the ceiling, no further.
    for i in 0..100 {
        b.granted(secs(7.0 + f64::from(i) * 0.01));
    }
    assert!((b.per_minute() - 180.5).abs() < 1e-9, "{}", b.per_minute());
    // Ten quiet minutes: the ceiling rises 5 %, and the rate follows.
    b.granted(secs(5.0 + 600.0));
    assert!((b.ceiling_per_minute().unwrap() - 199.5).abs() < 1e-9);
    for _ in 0..20 {
        b.granted(secs(606.0));
    }
    assert!((b.per_minute() - 199.5 * HEADROOM).abs() < 1e-9);
    // Never below 1/64 of the tier, however many 429s.
    for i in 0..60 {
        b.throttled(
            secs(1000.0 + f64::from(i) * 10.0),
            secs(1.0),
            Some(secs(1.0)),
            None,
        );
    }
    assert!((b.per_minute() - 50.0 * MIN_RATE_SHARE).abs() < 1e-9);
}

#[test]
fn a_long_retry_after_on_history_means_the_restricted_cohort() {
    let mut b = Bucket::new(HISTORY, BudgetMode::Learned, 1.0, Duration::ZERO);
    b.throttled(secs(1.0), secs(59.0), Some(secs(59.0)), None);
    assert!(b.is_restricted());
    assert!((b.per_minute() - 0.95).abs() < 1e-9);
    assert_eq!(b.capacity(), 1.0);
    // Answers neither raise it nor probe above it.
    for i in 0..100 {
        b.granted(secs(100.0 + f64::from(i) * 60.0));
    }
    assert!((b.per_minute() - 0.95).abs() < 1e-9);
    // The published mode knows the cohort too: it is below the tier, not above.
    let mut published = Bucket::new(REPLIES, BudgetMode::Published, 1.0, Duration::ZERO);
    published.throttled(secs(1.0), secs(60.0), Some(secs(60.0)), None);
    published.granted(secs(70.0));
    assert!(published.is_restricted());
    assert!((published.per_minute() - 0.95).abs() < 1e-9);
    // Other methods do not know that cohort.
    let mut users = Bucket::new("users.list", BudgetMode::Learned, 1.0, Duration::ZERO);
    users.throttled(secs(1.0), secs(59.0), Some(secs(59.0)), None);
    assert!(!users.is_restricted());
    // Time-scaled: 1 real second at scale 60 is a Slack minute.
    let mut scaled = Bucket::new(REPLIES, BudgetMode::Learned, 60.0, Duration::ZERO);
    scaled.throttled(secs(0.1), secs(0.9), Some(secs(0.9)), None);
    assert!(scaled.is_restricted());
    assert!((scaled.rate_per_sec() - 0.95).abs() < 1e-9);
}

#[test]
fn cohort_signals() {
    let mut cohort = Cohort::default();
    cohort.observe_page(HISTORY, 200, 15, true);
    assert!(!cohort.pages_capped());
    cohort.observe_page(REPLIES, 200, 15, true);
    assert!(cohort.pages_capped());
    assert!(!cohort.recognised());
    cohort.observe_page("users.list", 200, 15, true);
    assert_eq!(cohort.capped_pages, 2);
    cohort.observe_page(HISTORY, 200, 200, true);
    assert!(!cohort.pages_capped());
    // The last page of a channel (no more to come) says nothing.
    let mut last = Cohort::default();
    last.observe_page(HISTORY, 200, 3, false);
    last.observe_page(HISTORY, 200, 3, false);
    assert!(!last.pages_capped());
}

#[test]
fn restored_budgets_start_where_the_last_sync_ended() {
    let rate = LearnedRate {
        per_minute: 475.0,
        ceiling: Some(500.0),
        restricted: false,
    };
    let b = Bucket::restored(REPLIES, &rate, 60.0, Duration::ZERO);
    assert!((b.per_minute() - 475.0).abs() < 1e-9);
    assert!((b.capacity() - 475.0).abs() < 1e-9);
    assert_eq!(b.learned(), rate);
    // Absurd values are clamped to sane ones.
    let wild = LearnedRate {
        per_minute: 1e-9,
        ceiling: Some(1e300),
        restricted: true,
    };
    let b = Bucket::restored("users.list", &wild, 1.0, Duration::ZERO);
    assert!(!b.is_restricted());
    assert!((b.per_minute() - 20.0 * MIN_RATE_SHARE).abs() < 1e-9);
    assert_eq!(b.ceiling_per_minute(), Some(MAX_PER_MINUTE));
    let restricted = LearnedRate {
        per_minute: 1.0,
        ceiling: Some(1.0),
        restricted: true,
    };
    assert!(Bucket::restored(HISTORY, &restricted, 1.0, Duration::ZERO).is_restricted());
}

#[tokio::test(start_paused = true)]
async fn acquire_paces_on_the_tokio_clock_and_honours_penalties() {
    let limiter = RateLimiter::new(60.0, BudgetMode::Published, true);
    let cancel = CancellationToken::new();
    let start = Instant::now();
    for _ in 0..55 {
        assert!(limiter.acquire(HISTORY, &cancel).await.is_some());
    }
    // 5 free, then 50 at 50/s: one second.
    let elapsed = start.elapsed().as_secs_f64();
    assert!((elapsed - 1.0).abs() < 0.01, "{elapsed}");
    limiter.throttled(HISTORY, Duration::from_secs(3), None, None);
    let before = Instant::now();
    let slot = limiter.acquire(HISTORY, &cancel).await.unwrap();
    assert!(before.elapsed() >= Duration::from_secs(3));
    assert!(!slot.paced, "a Retry-After is not pacing");
    // Other methods are not held back.
    let before = Instant::now();
    assert!(limiter.acquire("users.list", &cancel).await.is_some());
    assert_eq!(before.elapsed(), Duration::ZERO);
    cancel.cancel();
    limiter.throttled("users.list", Duration::from_secs(600), None, None);
    assert!(limiter.acquire("users.list", &cancel).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn the_limiter_restricts_both_methods_and_round_trips_what_it_learned() {
    let limiter = RateLimiter::new(1.0, BudgetMode::Learned, true);
    let cancel = CancellationToken::new();
    let slot = limiter.acquire(REPLIES, &cancel).await.unwrap();
    limiter.granted(REPLIES, slot.ticket);
    limiter.observe_page(HISTORY, 200, 15, true);
    limiter.throttled(
        HISTORY,
        Duration::from_secs(60),
        Some(Duration::from_secs(60)),
        Some(slot.ticket),
    );
    assert!(limiter.cohort().recognised());
    let learned = limiter.learned();
    assert!(learned[HISTORY].restricted && learned[REPLIES].restricted);
    assert!((learned[REPLIES].per_minute - 0.95).abs() < 1e-9);
    // A new limiter seeded with it starts restricted; published limiters ignore seeds.
    let budgets = LearnedBudgets {
        team_id: None,
        learned_at: None,
        methods: learned,
    };
    let next = RateLimiter::new(1.0, BudgetMode::Learned, true);
    assert_eq!(next.seed(&budgets), 2);
    assert!(next.cohort().recognised());
    assert!(next.budgets().iter().all(|m| m.restricted));
    assert_eq!(
        RateLimiter::new(1.0, BudgetMode::Published, true).seed(&budgets),
        0
    );
}

// ---- A sync's calls replayed against a Slack-like limiter, in simulated time. ----

/// Slack's side: a bucket of one minute's grant, refilled at the grant; `Retry-After` in
/// whole seconds, at least 1, as Slack sends it.
struct Slack {
    per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: f64,
}

impl Slack {
    fn new(per_minute: f64) -> Slack {
        Slack {
            per_sec: per_minute / 60.0,
            capacity: per_minute.max(1.0),
            tokens: per_minute.max(1.0),
            last: 0.0,
        }
    }

    fn take(&mut self, t: f64) -> Result<(), f64> {
        self.tokens = (self.tokens + (t - self.last) * self.per_sec).min(self.capacity);
        self.last = t;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / self.per_sec).ceil().max(1.0))
        }
    }
}

#[derive(Debug, Default)]
struct Replay {
    accepted: u64,
    throttled: u64,
    /// 429s more than a minute after the first call.
    late_throttled: u64,
    paced: u64,
    first: f64,
    last: f64,
    final_per_minute: f64,
    restricted: bool,
}

impl Replay {
    /// Accepted calls against what Slack granted over the method's calls: one minute's burst
    /// plus the rate over the time between the first and the last call.
    fn share(&self, per_minute: f64) -> f64 {
        let minutes = (self.last - self.first) / 60.0;
        self.accepted as f64 / (per_minute + per_minute * minutes)
    }
}

#[derive(Debug, PartialEq)]
struct At(f64);
impl Eq for At {}
impl PartialOrd for At {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for At {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

enum Step {
    Reserve,
    Recheck(u64, Ticket),
    Send(Ticket),
    Answer(Result<(), f64>, Ticket),
}

/// `calls` requests of `method` by `workers` concurrent tasks, `latency` seconds each,
/// against `slack` (`None`: no limit), with the retry policy's wait of `Retry-After`.
fn replay(
    mode: BudgetMode,
    mut slack: Option<Slack>,
    calls: u64,
    workers: usize,
    latency: f64,
) -> Replay {
    let mut bucket = Bucket::new(REPLIES, mode, 1.0, Duration::ZERO);
    let mut events: BinaryHeap<Reverse<(At, usize)>> = BinaryHeap::new();
    let mut steps: Vec<Option<Step>> = (0..workers).map(|_| Some(Step::Reserve)).collect();
    for worker in 0..workers {
        events.push(Reverse((At(0.0), worker)));
    }
    let mut started = 0u64;
    let mut out = Replay {
        first: f64::MAX,
        ..Replay::default()
    };
    while let Some(Reverse((At(t), worker))) = events.pop() {
        let now = secs(t);
        let next = match steps[worker].take() {
            None => continue,
            Some(Step::Reserve) => {
                if started >= calls {
                    continue;
                }
                started += 1;
                let r = bucket.reserve(now);
                out.paced += u64::from(r.paced);
                Some((
                    t + r.wait.as_secs_f64(),
                    Step::Recheck(bucket.epoch(), r.ticket),
                ))
            }
            Some(Step::Recheck(epoch, ticket)) => {
                if epoch == bucket.epoch() {
                    Some((t, Step::Send(ticket)))
                } else {
                    let r = bucket.reserve(now);
                    out.paced += u64::from(r.paced);
                    Some((
                        t + r.wait.as_secs_f64(),
                        Step::Recheck(bucket.epoch(), r.ticket),
                    ))
                }
            }
            Some(Step::Send(ticket)) => {
                out.first = out.first.min(t);
                let arrives = t + latency / 2.0;
                let answer = match slack.as_mut() {
                    Some(slack) => slack.take(arrives),
                    None => Ok(()),
                };
                Some((t + latency, Step::Answer(answer, ticket)))
            }
            Some(Step::Answer(Ok(()), ticket)) => {
                bucket.granted_slot(now, ticket);
                out.accepted += 1;
                out.last = t;
                Some((t, Step::Reserve))
            }
            Some(Step::Answer(Err(retry_after), ticket)) => {
                out.throttled += 1;
                if t - out.first > 60.0 {
                    out.late_throttled += 1;
                }
                let hold = secs(retry_after);
                bucket.throttled(now, hold, Some(hold), Some(ticket));
                // The retry policy sleeps Retry-After, then reserves again (the same call).
                started -= 1;
                Some((t + retry_after, Step::Reserve))
            }
        };
        if let Some((at, step)) = next {
            steps[worker] = Some(step);
            events.push(Reverse((At(at), worker)));
        }
    }
    out.final_per_minute = bucket.per_minute();
    out.restricted = bucket.is_restricted();
    out
}

#[test]
fn replay_at_the_published_grant_uses_90_percent_with_one_late_429_at_most() {
    // A medium sync's replies (1,200 calls, 32 in flight, 50 ms each) against a Slack that
    // grants exactly Tier 3.
    let run = replay(BudgetMode::Learned, Some(Slack::new(50.0)), 1200, 32, 0.05);
    let share = run.share(50.0);
    println!("published grant, learned: {run:?}, share {share:.3}");
    assert_eq!(run.accepted, 1200);
    assert!(share >= 0.9, "share {share}");
    assert!(run.late_throttled <= 1, "{run:?}");
    assert!(run.paced > 0, "a limited sync paces itself");
}

#[test]
fn replay_at_ten_times_the_tier_uses_90_percent_of_it() {
    let run = replay(BudgetMode::Learned, Some(Slack::new(500.0)), 1200, 32, 0.05);
    let share = run.share(500.0);
    println!("10x grant, learned: {run:?}, share {share:.3}");
    assert!(share >= 0.9, "share {share}");
    assert!(run.final_per_minute >= 50.0 * 9.0, "{run:?}");
    // The published floor's figure, for comparison: a tenth of it.
    let floor = replay(
        BudgetMode::Published,
        Some(Slack::new(500.0)),
        1200,
        32,
        0.05,
    );
    let floor_share = floor.share(500.0);
    println!("10x grant, published: {floor:?}, share {floor_share:.3}");
    assert!(floor_share < 0.15, "{floor_share}");
    assert_eq!(floor.throttled, 0);
}

#[test]
fn replay_without_limits_never_waits() {
    let run = replay(BudgetMode::Learned, None, 100_000, 32, 0.001);
    assert_eq!(run.paced, 0);
    assert_eq!(run.throttled, 0);
    assert!(run.last < 5.0, "{run:?}");
}

#[test]
fn replay_of_the_restricted_cohort_settles_at_one_call_a_minute() {
    let run = replay(BudgetMode::Learned, Some(Slack::new(1.0)), 30, 8, 0.05);
    println!("restricted cohort: {run:?}");
    assert!(run.restricted);
    assert_eq!(run.accepted, 30);
    assert!(run.late_throttled <= 1, "{run:?}");
    // 30 calls at one a minute: about half an hour, not hours of halving.
    assert!(run.last < 31.0 * 60.0, "{run:?}");
}

#[test]
fn replay_of_an_overestimated_published_tier_adapts_without_a_storm() {
    // Slack grants half the tier: the published mode halves and recovers, with few 429s.
    let run = replay(BudgetMode::Published, Some(Slack::new(25.0)), 300, 32, 0.05);
    println!("half grant, published: {run:?}");
    assert_eq!(run.accepted, 300);
    assert!(run.throttled * 5 <= 300, "{run:?}");
}
