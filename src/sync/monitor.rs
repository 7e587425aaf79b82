//! The per-item bulk error circuit breaker (`elasticsearch.bulk.error_monitor.*`).
//!
//! Every bulk item outcome is tracked. A sync fails when, after an error:
//! - more than `max_consecutive_errors` items failed in a row, or
//! - more than `max_total_errors` items failed in the sync, or
//! - the errors among the last `error_window_size` outcomes exceed `max_error_rate` of the
//!   window (the window starts full of successes, as upstream, so a sync's first few errors do
//!   not trip the rate on their own).
//!
//! The verdict quotes the FIRST error seen (Elasticsearch type, reason and document id):
//! the first error is usually the cause (a mapping conflict, a missing pipeline), the later
//! ones its echoes. The last `error_queue_size` messages are kept for the report.
//! With `enabled: false` errors are still counted but never fail the sync.

use crate::config::ErrorMonitorConfig;
use std::collections::VecDeque;

/// Why the monitor failed the sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{summary}; first error: {first_error}")]
pub struct TooManyErrors {
    /// Which limit was exceeded.
    pub summary: String,
    /// The first item error of the sync.
    pub first_error: String,
    /// The most recent error messages (at most `error_queue_size`).
    pub recent_errors: Vec<String>,
}

/// Tracks item outcomes; see the module docs.
#[derive(Debug)]
pub struct ErrorMonitor {
    config: ErrorMonitorConfig,
    /// Ring of the last `error_window_size` outcomes (`true` = error).
    window: Vec<bool>,
    window_pos: usize,
    window_errors: usize,
    consecutive_errors: u64,
    total_errors: u64,
    total_successes: u64,
    first_error: Option<String>,
    recent: VecDeque<String>,
}

impl ErrorMonitor {
    /// A monitor with the given settings.
    pub fn new(config: &ErrorMonitorConfig) -> ErrorMonitor {
        ErrorMonitor {
            config: config.clone(),
            window: vec![false; config.error_window_size],
            window_pos: 0,
            window_errors: 0,
            consecutive_errors: 0,
            total_errors: 0,
            total_successes: 0,
            first_error: None,
            recent: VecDeque::new(),
        }
    }

    /// Records `count` successful items.
    pub fn track_successes(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        self.consecutive_errors = 0;
        self.total_successes += count;
        // Only the last `window.len()` successes can still be in the window.
        let in_window = count.min(self.window.len() as u64);
        for _ in 0..in_window {
            self.push_window(false);
        }
    }

    /// Records one failed item; `Err` when the sync must stop.
    pub fn track_error(&mut self, message: String) -> Result<(), TooManyErrors> {
        self.total_errors += 1;
        self.consecutive_errors += 1;
        self.push_window(true);
        if self.first_error.is_none() {
            self.first_error = Some(message.clone());
        }
        if self.config.error_queue_size > 0 {
            if self.recent.len() >= self.config.error_queue_size {
                self.recent.pop_front();
            }
            self.recent.push_back(message);
        }
        self.verdict()
    }

    /// Errors seen so far.
    pub fn total_errors(&self) -> u64 {
        self.total_errors
    }

    /// The first error of the sync, if any.
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    fn push_window(&mut self, error: bool) {
        if self.window.is_empty() {
            return;
        }
        let slot = &mut self.window[self.window_pos];
        if *slot {
            self.window_errors -= 1;
        }
        *slot = error;
        if error {
            self.window_errors += 1;
        }
        self.window_pos = (self.window_pos + 1) % self.window.len();
    }

    fn verdict(&self) -> Result<(), TooManyErrors> {
        if !self.config.enabled {
            return Ok(());
        }
        let summary = if self.consecutive_errors > self.config.max_consecutive_errors {
            format!(
                "exceeded the maximum of {} consecutive bulk item errors (saw {} in a row)",
                self.config.max_consecutive_errors, self.consecutive_errors
            )
        } else if self.total_errors > self.config.max_total_errors {
            format!(
                "exceeded the maximum of {} bulk item errors (saw {})",
                self.config.max_total_errors, self.total_errors
            )
        } else if !self.window.is_empty()
            && self.window_errors as f64 / self.window.len() as f64 > self.config.max_error_rate
        {
            format!(
                "exceeded the maximum bulk item error rate of {} ({} errors in the last {} operations)",
                self.config.max_error_rate,
                self.window_errors,
                self.window.len()
            )
        } else {
            return Ok(());
        };
        Err(TooManyErrors {
            summary,
            first_error: self.first_error.clone().unwrap_or_default(),
            recent_errors: self.recent.iter().cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ErrorMonitorConfig {
        ErrorMonitorConfig {
            enabled: true,
            max_total_errors: 5,
            max_consecutive_errors: 3,
            max_error_rate: 0.3,
            error_window_size: 10,
            error_queue_size: 2,
        }
    }

    #[test]
    fn consecutive_errors_trip_after_the_limit() {
        let mut monitor = ErrorMonitor::new(&ErrorMonitorConfig {
            max_error_rate: 1.0,
            ..config()
        });
        for i in 0..3 {
            monitor.track_error(format!("e{i}")).unwrap();
        }
        let err = monitor.track_error("e3".into()).unwrap_err();
        assert!(err.summary.contains("consecutive"), "{err}");
        assert_eq!(err.first_error, "e0");
        assert_eq!(err.recent_errors, vec!["e2".to_string(), "e3".to_string()]);
        assert!(err.to_string().contains("first error: e0"));
    }

    #[test]
    fn successes_reset_the_consecutive_count_but_not_the_total() {
        let mut monitor = ErrorMonitor::new(&ErrorMonitorConfig {
            max_error_rate: 1.0,
            ..config()
        });
        for i in 0..5 {
            monitor.track_error(format!("e{i}")).unwrap();
            monitor.track_successes(1);
        }
        let err = monitor.track_error("e5".into()).unwrap_err();
        assert!(
            err.summary.contains("maximum of 5 bulk item errors"),
            "{err}"
        );
        assert_eq!(monitor.total_errors(), 6);
    }

    #[test]
    fn error_rate_over_the_window() {
        let mut monitor = ErrorMonitor::new(&ErrorMonitorConfig {
            max_total_errors: 100,
            ..config()
        });
        // 3 errors in a window of 10 = 0.3, not above the limit.
        for i in 0..3 {
            monitor.track_successes(2);
            monitor.track_error(format!("e{i}")).unwrap();
        }
        // Old errors slide out: 10 successes clear the window.
        monitor.track_successes(1000);
        for i in 0..3 {
            monitor.track_successes(1);
            monitor.track_error(format!("f{i}")).unwrap();
        }
        monitor.track_successes(1);
        let err = monitor.track_error("f3".into()).unwrap_err();
        assert!(err.summary.contains("error rate"), "{err}");
        assert_eq!(err.first_error, "e0");
    }

    #[test]
    fn disabled_monitor_counts_but_never_fails() {
        let mut monitor = ErrorMonitor::new(&ErrorMonitorConfig {
            enabled: false,
            ..config()
        });
        for i in 0..50 {
            monitor.track_error(format!("e{i}")).unwrap();
        }
        assert_eq!(monitor.total_errors(), 50);
        assert_eq!(monitor.first_error(), Some("e0"));
    }

    #[test]
    fn empty_window_disables_the_rate_check() {
        let mut monitor = ErrorMonitor::new(&ErrorMonitorConfig {
            error_window_size: 0,
            max_consecutive_errors: 100,
            max_total_errors: 100,
            ..config()
        });
        for i in 0..20 {
            monitor.track_error(format!("e{i}")).unwrap();
        }
    }
}
