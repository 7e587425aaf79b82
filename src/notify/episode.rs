//! Which events become messages: the deduplication of failing episodes and the triggers
//! (pure; [`Tracker`] holds the state, the worker feeds it).
//!
//! Invariants:
//! - one alert per failing episode (a run of failed jobs of one connector and job family,
//!   content or access control), one escalation when it reaches `consecutive_failures`, and
//!   one "recovered" when a job of that family completes again, only if an alert was sent;
//! - an episode begun before this process saw it (the connector's previous job, run by
//!   another replica or before a restart, already failed) is taken as already alerted, so a
//!   restart never repeats an alert; its "recovered" is still sent;
//! - canceled and suspended jobs change nothing;
//! - a connector that stopped checking in is reported once, and once when it is back.

use super::config::TriggersConfig;
use crate::protocol::job::JobStatus;
use crate::protocol::outcome::JobOutcome;
use crate::sync::JobKind;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// Something worth a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The first failed job of an episode.
    JobFailed(JobOutcome),
    /// The episode reached `consecutive_failures` failed jobs.
    FailingRepeatedly {
        /// The latest failed job.
        outcome: JobOutcome,
        /// Failed jobs in a row (as seen by this process).
        failures: u32,
    },
    /// A job completed after an alerted episode.
    Recovered {
        /// The completed job.
        outcome: JobOutcome,
        /// Failed jobs in the episode, when this process saw them all.
        failures: Option<u32>,
    },
    /// A completed sync (opt-in).
    Summary(JobOutcome),
    /// A completed sync's figures as a CSV file (opt-in).
    Report(JobOutcome),
    /// A connector has not checked in for longer than allowed.
    StoppedCheckingIn {
        /// The connector.
        connector_id: String,
        /// Its name.
        name: Option<String>,
        /// Its last check-in.
        last_seen: DateTime<Utc>,
    },
    /// A connector that had stopped checking in did again.
    CheckingInAgain {
        /// The connector.
        connector_id: String,
        /// Its name.
        name: Option<String>,
    },
}

/// A connector's job family: content (full and incremental) or access control.
fn family(kind: JobKind) -> &'static str {
    match kind {
        JobKind::AccessControl => "access_control",
        JobKind::Full | JobKind::Incremental => "content",
    }
}

/// A run of failed jobs.
#[derive(Debug, Clone, Copy, Default)]
struct Episode {
    /// Failed jobs seen.
    failures: u32,
    /// Whether the episode was alerted (by us, or taken as alerted elsewhere).
    alerted: bool,
    /// Whether the `consecutive_failures` alert went out.
    escalated: bool,
    /// Whether it began before this process saw it.
    inherited: bool,
}

/// The triggers' state.
#[derive(Debug)]
pub struct Tracker {
    triggers: TriggersConfig,
    episodes: HashMap<(String, &'static str), Episode>,
    silent: HashSet<String>,
}

impl Tracker {
    /// No episodes yet.
    pub fn new(triggers: TriggersConfig) -> Tracker {
        Tracker {
            triggers,
            episodes: HashMap::new(),
            silent: HashSet::new(),
        }
    }

    /// The notices of a finished job, in the order to send them.
    pub fn on_job(&mut self, outcome: &JobOutcome) -> Vec<Notice> {
        let key = (outcome.connector_id.clone(), family(outcome.job_kind));
        let alerting = self.triggers.job_error || self.triggers.consecutive_failures > 0;
        let mut notices = Vec::new();
        match outcome.status {
            JobStatus::Error => {
                let begun_elsewhere = outcome.previous_status == Some(JobStatus::Error);
                let episode = self.episodes.entry(key).or_insert(Episode {
                    alerted: begun_elsewhere,
                    inherited: begun_elsewhere,
                    ..Episode::default()
                });
                episode.failures += 1;
                if self.triggers.job_error && !episode.alerted {
                    episode.alerted = true;
                    notices.push(Notice::JobFailed(outcome.clone()));
                }
                let n = self.triggers.consecutive_failures;
                if n > 0 && episode.failures >= n && !episode.escalated {
                    episode.escalated = true;
                    episode.alerted = true;
                    notices.push(Notice::FailingRepeatedly {
                        outcome: outcome.clone(),
                        failures: episode.failures,
                    });
                }
            }
            JobStatus::Completed => {
                match self.episodes.remove(&key) {
                    Some(episode) if episode.alerted && alerting => {
                        notices.push(Notice::Recovered {
                            outcome: outcome.clone(),
                            failures: (!episode.inherited).then_some(episode.failures),
                        })
                    }
                    Some(_) => {}
                    // An episode this process never saw (a restart, another replica).
                    None if outcome.previous_status == Some(JobStatus::Error)
                        && self.triggers.job_error =>
                    {
                        notices.push(Notice::Recovered {
                            outcome: outcome.clone(),
                            failures: None,
                        })
                    }
                    None => {}
                }
                if self.triggers.sync_summary {
                    notices.push(Notice::Summary(outcome.clone()));
                }
                if self.triggers.csv_report {
                    notices.push(Notice::Report(outcome.clone()));
                }
            }
            _ => {}
        }
        notices
    }

    /// The notice (if any) of a connector's check-in state: silent for longer than
    /// `stopped_checking_in` seconds, or back. A connector never seen is not silent.
    pub fn on_check_in(
        &mut self,
        connector_id: &str,
        name: Option<&str>,
        last_seen: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<Notice> {
        let limit = self.triggers.stopped_checking_in;
        if limit <= 0.0 {
            return None;
        }
        let last_seen = last_seen?;
        let silent_ms = (now - last_seen).num_milliseconds();
        let silent = silent_ms as f64 > limit * 1000.0;
        let name = name.map(str::to_string);
        if silent && self.silent.insert(connector_id.to_string()) {
            return Some(Notice::StoppedCheckingIn {
                connector_id: connector_id.to_string(),
                name,
                last_seen,
            });
        }
        if !silent && self.silent.remove(connector_id) {
            return Some(Notice::CheckingInAgain {
                connector_id: connector_id.to_string(),
                name,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::StatsSnapshot;

    fn job(status: JobStatus, previous: Option<JobStatus>) -> JobOutcome {
        JobOutcome {
            connector_id: "c1".into(),
            connector_name: None,
            service_type: Some("slack".into()),
            index_name: Some("search-c1".into()),
            job_id: "j".into(),
            job_kind: JobKind::Full,
            status,
            previous_status: previous,
            error: (status == JobStatus::Error).then(|| "boom".into()),
            stats: StatsSnapshot::default(),
            total_document_count: 0,
            started_at: None,
            completed_at: Utc::now(),
        }
    }

    fn kinds(notices: &[Notice]) -> Vec<&'static str> {
        notices
            .iter()
            .map(|n| match n {
                Notice::JobFailed(_) => "failed",
                Notice::FailingRepeatedly { .. } => "repeated",
                Notice::Recovered { .. } => "recovered",
                Notice::Summary(_) => "summary",
                Notice::Report(_) => "report",
                Notice::StoppedCheckingIn { .. } => "silent",
                Notice::CheckingInAgain { .. } => "back",
            })
            .collect()
    }

    use JobStatus::{Canceled, Completed, Error};

    #[test]
    fn one_alert_per_episode_then_one_recovered() {
        let mut t = Tracker::new(TriggersConfig {
            consecutive_failures: 0,
            ..TriggersConfig::default()
        });
        assert_eq!(kinds(&t.on_job(&job(Completed, None))), Vec::<&str>::new());
        assert_eq!(kinds(&t.on_job(&job(Error, Some(Completed)))), ["failed"]);
        assert!(t.on_job(&job(Error, Some(Error))).is_empty());
        assert!(t.on_job(&job(Canceled, Some(Error))).is_empty());
        let back = t.on_job(&job(Completed, Some(Error)));
        assert_eq!(kinds(&back), ["recovered"]);
        assert!(matches!(
            back[0],
            Notice::Recovered {
                failures: Some(2),
                ..
            }
        ));
        assert!(t.on_job(&job(Completed, Some(Completed))).is_empty());
        // A new episode alerts again.
        assert_eq!(kinds(&t.on_job(&job(Error, Some(Completed)))), ["failed"]);
    }

    #[test]
    fn consecutive_failures_escalate_once() {
        let mut t = Tracker::new(TriggersConfig {
            job_error: false,
            consecutive_failures: 3,
            ..TriggersConfig::default()
        });
        assert!(t.on_job(&job(Error, None)).is_empty());
        assert!(t.on_job(&job(Error, Some(Error))).is_empty());
        assert_eq!(kinds(&t.on_job(&job(Error, Some(Error)))), ["repeated"]);
        assert!(t.on_job(&job(Error, Some(Error))).is_empty());
        assert_eq!(
            kinds(&t.on_job(&job(Completed, Some(Error)))),
            ["recovered"]
        );
        // Two failures then a success: nothing was alerted, nothing recovers.
        assert!(t.on_job(&job(Error, None)).is_empty());
        assert!(t.on_job(&job(Error, Some(Error))).is_empty());
        assert!(t.on_job(&job(Completed, Some(Error))).is_empty());
    }

    #[test]
    fn an_episode_begun_elsewhere_is_not_alerted_again() {
        let mut t = Tracker::new(TriggersConfig::default());
        assert!(t.on_job(&job(Error, Some(Error))).is_empty());
        let back = t.on_job(&job(Completed, Some(Error)));
        assert!(matches!(
            back[..],
            [Notice::Recovered { failures: None, .. }]
        ));
        // Restarted after the failure: the first success still says recovered.
        let mut t = Tracker::new(TriggersConfig::default());
        assert_eq!(
            kinds(&t.on_job(&job(Completed, Some(Error)))),
            ["recovered"]
        );
    }

    #[test]
    fn summaries_and_reports_follow_completed_syncs() {
        let mut t = Tracker::new(TriggersConfig {
            sync_summary: true,
            csv_report: true,
            ..TriggersConfig::default()
        });
        assert_eq!(
            kinds(&t.on_job(&job(Completed, None))),
            ["summary", "report"]
        );
        t.on_job(&job(Error, None));
        assert_eq!(
            kinds(&t.on_job(&job(Completed, Some(Error)))),
            ["recovered", "summary", "report"]
        );
    }

    #[test]
    fn families_are_separate_episodes() {
        let mut t = Tracker::new(TriggersConfig::default());
        let mut acl = job(Error, None);
        acl.job_kind = JobKind::AccessControl;
        assert_eq!(kinds(&t.on_job(&job(Error, None))), ["failed"]);
        assert_eq!(kinds(&t.on_job(&acl)), ["failed"]);
        let mut incremental = job(Completed, Some(Error));
        incremental.job_kind = JobKind::Incremental;
        assert_eq!(kinds(&t.on_job(&incremental)), ["recovered"]);
    }

    #[test]
    fn check_ins_alert_once_and_on_return() {
        let mut t = Tracker::new(TriggersConfig {
            stopped_checking_in: 60.0,
            ..TriggersConfig::default()
        });
        let now = Utc::now();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        assert_eq!(t.on_check_in("c", None, None, now), None);
        assert_eq!(t.on_check_in("c", None, ago(30), now), None);
        assert!(matches!(
            t.on_check_in("c", Some("n"), ago(61), now),
            Some(Notice::StoppedCheckingIn { .. })
        ));
        assert_eq!(t.on_check_in("c", None, ago(120), now), None);
        assert!(matches!(
            t.on_check_in("c", None, ago(1), now),
            Some(Notice::CheckingInAgain { .. })
        ));
        let mut off = Tracker::new(TriggersConfig {
            stopped_checking_in: 0.0,
            ..TriggersConfig::default()
        });
        assert_eq!(off.on_check_in("c", None, ago(99_999), now), None);
    }
}
