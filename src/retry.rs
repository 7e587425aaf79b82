//! Retry decisions shared by the Elasticsearch and Slack clients.
//!
//! The decision is a pure function of the error, the attempt number and the parameters
//! ([`decide`]), so it is unit-tested without sleeping; [`retry`] is the only loop, and
//! sleeps with `tokio::time::sleep` so tests run it under a paused clock.
//!
//! Invariant: a retry always waits at least what the server asked for (`Retry-After`), and
//! delays never overflow, whatever the attempt number.

use std::future::Future;
use std::time::Duration;

/// What an error says about retrying.
pub trait Retryable {
    /// Whether trying again may succeed.
    fn is_retryable(&self) -> bool {
        false
    }
    /// A server-suggested delay before the next try.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryParams {
    /// Delay before the first retry (before jitter).
    pub base_delay: Duration,
    /// Upper bound of any computed delay (a server's `Retry-After` may exceed it).
    pub max_delay: Duration,
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
}

impl RetryParams {
    /// Fast parameters for tests.
    pub fn for_test() -> RetryParams {
        RetryParams {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
            max_retries: 3,
        }
    }

    /// Delay before retry number `retry` (1-based): `base * 2^(retry-1)`, capped, with the
    /// jitter `fraction` in [0, 1] mapping onto [half, full] of that delay.
    pub fn compute_delay(&self, retry: u32, fraction: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let fraction = fraction.clamp(0.0, 1.0);
        full.mul_f64(0.5 + 0.5 * fraction)
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Stop and return the error.
    GiveUp,
}

/// Decides what to do after attempt number `attempt` (1-based) failed with `error`.
pub fn decide(
    error: &impl Retryable,
    attempt: u32,
    params: &RetryParams,
    jitter_fraction: f64,
) -> RetryDecision {
    if !error.is_retryable() || attempt > params.max_retries {
        return RetryDecision::GiveUp;
    }
    // The server knows its own budget: its delay wins over ours, shorter or longer.
    let delay = error
        .retry_after()
        .unwrap_or_else(|| params.compute_delay(attempt, jitter_fraction));
    RetryDecision::Retry(delay)
}

/// Runs `operation` until it succeeds, fails for good, or runs out of retries.
/// `on_retry` sees each retried error and the delay (for logs and metrics).
pub async fn retry<T, E, F, Fut>(
    params: &RetryParams,
    mut operation: F,
    mut on_retry: impl FnMut(&E, u32, Duration),
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match operation(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) => match decide(&error, attempt, params, rand::random::<f64>()) {
                RetryDecision::GiveUp => return Err(error),
                RetryDecision::Retry(delay) => {
                    on_retry(&error, attempt, delay);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct E {
        retryable: bool,
        after: Option<Duration>,
    }

    impl Retryable for E {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
        fn retry_after(&self) -> Option<Duration> {
            self.after
        }
    }

    fn params() -> RetryParams {
        RetryParams {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retries: 5,
        }
    }

    #[test]
    fn delays_double_with_jitter_and_cap() {
        let p = params();
        assert_eq!(p.compute_delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.compute_delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.compute_delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(p.compute_delay(10, 1.0), Duration::from_secs(30));
        for retry in [0, 1, 31, 64, u32::MAX] {
            assert!(p.compute_delay(retry, 0.7) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn gives_up_on_permanent_errors_and_after_max_retries() {
        let p = params();
        let permanent = E {
            retryable: false,
            after: None,
        };
        assert_eq!(decide(&permanent, 1, &p, 0.5), RetryDecision::GiveUp);
        let transient = E {
            retryable: true,
            after: None,
        };
        assert!(matches!(
            decide(&transient, 5, &p, 0.5),
            RetryDecision::Retry(_)
        ));
        assert_eq!(decide(&transient, 6, &p, 0.5), RetryDecision::GiveUp);
    }

    #[test]
    fn retry_after_is_always_honoured() {
        let p = params();
        let asked = E {
            retryable: true,
            after: Some(Duration::from_secs(120)),
        };
        assert_eq!(
            decide(&asked, 1, &p, 0.0),
            RetryDecision::Retry(Duration::from_secs(120))
        );
        let short = E {
            retryable: true,
            after: Some(Duration::from_millis(10)),
        };
        assert_eq!(
            decide(&short, 1, &p, 0.0),
            RetryDecision::Retry(Duration::from_millis(10))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_loop_stops_on_success() {
        let mut calls = 0;
        let result: Result<u32, E> = retry(
            &RetryParams::for_test(),
            |attempt| {
                calls += 1;
                async move {
                    if attempt < 3 {
                        Err(E {
                            retryable: true,
                            after: None,
                        })
                    } else {
                        Ok(attempt)
                    }
                }
            },
            |_, _, _| {},
        )
        .await;
        assert_eq!(result.ok(), Some(3));
        assert_eq!(calls, 3);
    }
}
