//! The one retry policy of the service: Elasticsearch requests, bulk items, Slack calls and
//! the start-up wait for the cluster all retry through this module.
//!
//! - What a failure means for retrying is a property of the error ([`Retryable`]): permanent,
//!   transient, or throttled (the server asked us to slow down: HTTP 429, Slack's
//!   `ratelimited`), with an optional server-given delay (`Retry-After`).
//! - The decision — retry after how long, or give up — is the pure [`decide`]: a function of
//!   that kind, the retries already made of each kind, the time spent and the budget
//!   ([`RetryParams`]). Throttled retries have their own budget and their own backoff: a
//!   server pacing us is not a failure.
//! - The backoff delays come from the `backoff` crate ([`RetryParams::backoff`]): exponential,
//!   capped, each drawn from `[(1 - jitter) * d, d]` of its nominal delay `d`.
//! - [`Retrier`] is one operation's retry state; [`retry`] is the loop for operations whose
//!   errors are [`Retryable`], and stops waiting when the caller cancels.
//!
//! Invariants: a retry always waits what the server asked for, longer or shorter than our own
//! backoff; delays never overflow, whatever the number of retries.

use backoff::backoff::Backoff as _;
use backoff::{ExponentialBackoff, ExponentialBackoffBuilder};
use std::future::Future;
use std::time::Duration;

/// What a failure says about trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// Trying again cannot help.
    Permanent,
    /// Another try may succeed (server errors, timeouts, lost connections, bad answers).
    Transient,
    /// The server asked us to slow down (HTTP 429, Slack's `ratelimited`).
    Throttled,
}

/// What an error says about retrying.
pub trait Retryable {
    /// How trying again may fare.
    fn retry_kind(&self) -> RetryKind;

    /// A server-given delay before the next try (`Retry-After`).
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// Whether trying again may succeed.
    fn is_retryable(&self) -> bool {
        self.retry_kind() != RetryKind::Permanent
    }
}

/// The budget and backoff of one retried operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryParams {
    /// Nominal delay before the first retry.
    pub base_delay: Duration,
    /// Largest nominal delay (a server's `Retry-After` may exceed it).
    pub max_delay: Duration,
    /// Growth of the nominal delay per retry.
    pub multiplier: f64,
    /// Spread of each delay below its nominal value, in [0, 1]: 0.5 draws from [half, full].
    pub jitter: f64,
    /// Retries of transient failures (0 = no retry).
    pub max_retries: u32,
    /// Retries of throttled answers.
    pub max_throttled: u32,
    /// Give up rather than wait past this much time since the first try.
    pub max_elapsed: Option<Duration>,
}

impl RetryParams {
    /// Doubling delays from `base_delay` up to `max_delay`, jittered over [half, full], at
    /// most `max_retries` retries of each kind, no time limit.
    pub const fn exponential(
        base_delay: Duration,
        max_delay: Duration,
        max_retries: u32,
    ) -> RetryParams {
        RetryParams {
            base_delay,
            max_delay,
            multiplier: 2.0,
            jitter: 0.5,
            max_retries,
            max_throttled: max_retries,
            max_elapsed: None,
        }
    }

    /// Fast parameters for tests.
    pub const fn for_test() -> RetryParams {
        RetryParams::exponential(Duration::from_millis(1), Duration::from_millis(10), 3)
    }

    /// The delays of one kind of retry, from the `backoff` crate. It spreads each delay
    /// symmetrically around a centre; a centre of `(1 - jitter / 2) * d` and a spread of
    /// `jitter / 2` of `d` give `[(1 - jitter) * d, d]`.
    pub fn backoff(&self) -> ExponentialBackoff {
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let centre = 1.0 - jitter / 2.0;
        ExponentialBackoffBuilder::new()
            .with_initial_interval(scale(self.base_delay, centre))
            .with_max_interval(scale(self.max_delay, centre))
            .with_multiplier(self.multiplier)
            .with_randomization_factor(jitter / 2.0 / centre)
            .with_max_elapsed_time(None)
            .build()
    }
}

/// `delay * factor` (factor in [0.5, 1]), saturating instead of panicking near `Duration::MAX`.
fn scale(delay: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// Retries already made, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retries {
    /// Retries of transient failures.
    pub transient: u32,
    /// Retries of throttled answers.
    pub throttled: u32,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Stop and return the error.
    GiveUp,
}

/// Decides what to do after a failure of `kind`, given the retries already made, the time
/// spent since the first try, and the next delay of the kind's backoff.
pub fn decide(
    kind: RetryKind,
    retry_after: Option<Duration>,
    done: Retries,
    elapsed: Duration,
    params: &RetryParams,
    backoff_delay: Duration,
) -> RetryDecision {
    let (used, limit) = match kind {
        RetryKind::Permanent => return RetryDecision::GiveUp,
        RetryKind::Transient => (done.transient, params.max_retries),
        RetryKind::Throttled => (done.throttled, params.max_throttled),
    };
    if used >= limit {
        return RetryDecision::GiveUp;
    }
    // The server knows its own budget: its delay wins over ours, shorter or longer.
    let delay = retry_after.unwrap_or(backoff_delay);
    if params
        .max_elapsed
        .is_some_and(|max| elapsed.saturating_add(delay) > max)
    {
        return RetryDecision::GiveUp;
    }
    RetryDecision::Retry(delay)
}

/// The retry state of one operation: retries made and a backoff per kind.
#[derive(Debug)]
pub struct Retrier {
    params: RetryParams,
    done: Retries,
    transient: ExponentialBackoff,
    throttled: ExponentialBackoff,
    started: tokio::time::Instant,
}

impl Retrier {
    /// A fresh state; the time budget starts now.
    pub fn new(params: &RetryParams) -> Retrier {
        Retrier {
            params: *params,
            done: Retries::default(),
            transient: params.backoff(),
            throttled: params.backoff(),
            started: tokio::time::Instant::now(),
        }
    }

    /// After a failure of `kind`: how long to wait before the next try, or `None` to give
    /// up ([`decide`]). A granted retry is counted.
    pub fn next_delay(
        &mut self,
        kind: RetryKind,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let backoff = match kind {
            RetryKind::Permanent => return None,
            RetryKind::Transient => &mut self.transient,
            RetryKind::Throttled => &mut self.throttled,
        };
        // Drawn even when the server's delay wins, so that the n-th retry of a kind always
        // backs off from the n-th nominal delay.
        let backoff_delay = backoff.next_backoff().unwrap_or(self.params.max_delay);
        let decision = decide(
            kind,
            retry_after,
            self.done,
            self.started.elapsed(),
            &self.params,
            backoff_delay,
        );
        match decision {
            RetryDecision::GiveUp => None,
            RetryDecision::Retry(delay) => {
                match kind {
                    RetryKind::Throttled => self.done.throttled += 1,
                    _ => self.done.transient += 1,
                }
                Some(delay)
            }
        }
    }

    /// Retries granted so far, of both kinds.
    pub fn retries(&self) -> u32 {
        self.done.transient.saturating_add(self.done.throttled)
    }
}

/// Runs `operation` until it succeeds, fails for good, or runs out of budget; returns the
/// last error then. `on_retry` sees each retried error, the retry number and the delay (logs,
/// metrics). When `cancelled` completes during a wait, its output is returned at once
/// (`std::future::pending()` for an operation that is only ever stopped by being dropped).
pub async fn retry<T, E, F, Fut>(
    params: &RetryParams,
    mut operation: F,
    mut on_retry: impl FnMut(&E, u32, Duration),
    cancelled: impl Future<Output = E>,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut retrier = Retrier::new(params);
    tokio::pin!(cancelled);
    loop {
        let error = match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(delay) = retrier.next_delay(error.retry_kind(), error.retry_after()) else {
            return Err(error);
        };
        on_retry(&error, retrier.retries(), delay);
        tokio::select! {
            biased;
            error = &mut cancelled => return Err(error),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct E {
        kind: RetryKind,
        after: Option<Duration>,
    }

    impl Retryable for E {
        fn retry_kind(&self) -> RetryKind {
            self.kind
        }
        fn retry_after(&self) -> Option<Duration> {
            self.after
        }
    }

    const TRANSIENT: E = E {
        kind: RetryKind::Transient,
        after: None,
    };

    fn params() -> RetryParams {
        RetryParams::exponential(Duration::from_secs(1), Duration::from_secs(30), 5)
    }

    fn retries(transient: u32, throttled: u32) -> Retries {
        Retries {
            transient,
            throttled,
        }
    }

    /// The first `n` delays of `params`' backoff, in microseconds (the crate computes in
    /// floating-point nanoseconds).
    fn delays_us(params: &RetryParams, n: usize) -> Vec<u128> {
        let mut backoff = params.backoff();
        (0..n)
            .map(|_| backoff.next_backoff().unwrap().as_micros())
            .collect()
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let exact = RetryParams {
            jitter: 0.0,
            ..params()
        };
        let s = 1_000_000;
        assert_eq!(
            delays_us(&exact, 7),
            [s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s]
        );
        let slack_like = RetryParams {
            jitter: 0.0,
            ..RetryParams::exponential(Duration::from_millis(100), Duration::from_secs(1), 3)
        };
        let ms = 1000;
        assert_eq!(
            delays_us(&slack_like, 6),
            [100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 1000 * ms]
        );
    }

    #[test]
    fn jitter_spreads_each_delay_over_half_to_full() {
        let p = params();
        for _ in 0..200 {
            let delays = delays_us(&p, 8);
            for (n, delay) in delays.into_iter().enumerate() {
                let full = (1_000_000u128 << n).min(30_000_000);
                assert!(
                    delay + 1 >= full / 2 && delay <= full + 1,
                    "retry {n}: {delay} µs"
                );
            }
        }
    }

    #[test]
    fn delays_never_overflow() {
        let mut retrier = Retrier::new(&RetryParams {
            max_retries: u32::MAX,
            ..params()
        });
        for _ in 0..1000 {
            let delay = retrier.next_delay(RetryKind::Transient, None).unwrap();
            assert!(delay <= Duration::from_secs(30), "{delay:?}");
        }
        for jitter in [0.0, 0.5, 1.0] {
            let huge = RetryParams {
                jitter,
                ..RetryParams::exponential(Duration::MAX, Duration::MAX, 3)
            };
            let mut backoff = huge.backoff();
            assert!(backoff.next_backoff().is_some());
            assert!(backoff.next_backoff().is_some());
        }
    }

    #[test]
    fn gives_up_on_permanent_errors_and_after_max_retries() {
        let p = params();
        let d = Duration::from_secs(1);
        let zero = Duration::ZERO;
        assert_eq!(
            decide(RetryKind::Permanent, None, retries(0, 0), zero, &p, d),
            RetryDecision::GiveUp
        );
        assert!(matches!(
            decide(RetryKind::Transient, None, retries(4, 0), zero, &p, d),
            RetryDecision::Retry(_)
        ));
        assert_eq!(
            decide(RetryKind::Transient, None, retries(5, 0), zero, &p, d),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn retry_after_is_always_honoured() {
        let p = params();
        let zero = Duration::ZERO;
        let backoff = Duration::from_secs(1);
        assert_eq!(
            decide(
                RetryKind::Transient,
                Some(Duration::from_secs(120)),
                retries(0, 0),
                zero,
                &p,
                backoff
            ),
            RetryDecision::Retry(Duration::from_secs(120))
        );
        assert_eq!(
            decide(
                RetryKind::Throttled,
                Some(Duration::from_millis(10)),
                retries(0, 0),
                zero,
                &p,
                backoff
            ),
            RetryDecision::Retry(Duration::from_millis(10))
        );
    }

    #[test]
    fn throttling_has_its_own_budget() {
        let p = RetryParams {
            max_throttled: 5,
            ..RetryParams::exponential(Duration::from_millis(100), Duration::from_secs(1), 3)
        };
        let zero = Duration::ZERO;
        let asked = Some(Duration::from_millis(1500));
        let backoff = Duration::from_millis(100);
        assert_eq!(
            decide(
                RetryKind::Throttled,
                asked,
                retries(3, 4),
                zero,
                &p,
                backoff
            ),
            RetryDecision::Retry(Duration::from_millis(1500))
        );
        assert_eq!(
            decide(
                RetryKind::Throttled,
                asked,
                retries(0, 5),
                zero,
                &p,
                backoff
            ),
            RetryDecision::GiveUp
        );
        assert_eq!(
            decide(RetryKind::Transient, None, retries(3, 0), zero, &p, backoff),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn a_time_budget_stops_retries_that_would_wait_past_it() {
        let p = RetryParams {
            max_elapsed: Some(Duration::from_secs(1)),
            ..RetryParams::exponential(Duration::from_millis(100), Duration::from_secs(1), u32::MAX)
        };
        // Half the budget spent: a 400 ms wait fits, a 600 ms one does not.
        let spent = Duration::from_millis(500);
        let after = |backoff| {
            decide(
                RetryKind::Transient,
                None,
                retries(0, 0),
                spent,
                &p,
                backoff,
            )
        };
        let fits = Duration::from_millis(400);
        assert_eq!(after(fits), RetryDecision::Retry(fits));
        assert_eq!(after(Duration::from_millis(600)), RetryDecision::GiveUp);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_loop_stops_on_success() {
        let mut calls = 0;
        let result: Result<u32, E> = retry(
            &RetryParams::for_test(),
            || {
                calls += 1;
                let attempt = calls;
                async move {
                    if attempt < 3 {
                        Err(TRANSIENT)
                    } else {
                        Ok(attempt)
                    }
                }
            },
            |_, _, _| {},
            std::future::pending(),
        )
        .await;
        assert_eq!(result.ok(), Some(3));
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_the_wait() {
        let cancel = tokio_util::sync::CancellationToken::new();
        cancel.cancel();
        let mut calls = 0;
        let result: Result<(), E> = retry(
            &RetryParams::exponential(Duration::from_secs(3600), Duration::from_secs(3600), 5),
            || {
                calls += 1;
                async { Err(TRANSIENT) }
            },
            |_, _, _| {},
            async {
                cancel.cancelled().await;
                E {
                    kind: RetryKind::Permanent,
                    after: None,
                }
            },
        )
        .await;
        assert_eq!(result.unwrap_err().kind, RetryKind::Permanent);
        assert_eq!(calls, 1);
    }
}
