//! Notifications: sync alerts and reports posted to Slack (Slack as a destination).
//!
//! Job outcomes reach this module through the runner's hook
//! ([`crate::protocol::outcome::JobObserver`]); the check-in watch reads the connectors'
//! `last_seen`. Both feed a bounded queue; one worker task turns events into notices
//! ([`episode::Tracker`]: triggers and deduplication), renders them ([`message`]: Block Kit
//! with a plain-text fallback, the CSV report) and posts them ([`slack`]: paced per channel,
//! 429s through the one retry policy, the external upload for files, incoming webhooks).
//!
//! Invariants:
//! - a notification never blocks or fails a sync: the hook only `try_send`s; a full queue
//!   drops the event, counts it and logs a line; a failed post is logged and counted;
//! - one message per failing episode and one "recovered" ([`episode`]);
//! - the engine and protocol know nothing of Slack: they hand over [`JobOutcome`]s;
//! - secrets (the bot token, the webhook URL, upload URLs) are in no log line or error.
//!
//! Counted in `connectors_notifications_total{outcome}` (`sent`, `failed`, `dropped`) and in
//! [`Notifier::counts`].

pub mod config;
pub mod episode;
pub mod message;
pub mod slack;

pub use config::{Destination, NotificationsConfig, SlackNotifyConfig, TriggersConfig};

use crate::config::Config;
use crate::protocol::connector::parse_time;
use crate::protocol::doc::readable;
use crate::protocol::outcome::{JobObserver, JobOutcome};
use crate::protocol::store::ConnectorStore;
use crate::scheduler::Clock;
use crate::sources::slack::client::{resolve_base_url, BASE_URL_ENV};
use episode::{Notice, Tracker};
use slack::{NotifyError, SenderOptions, SlackSender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long queued notifications may still be sent once the service stops.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A job ended.
    Job(JobOutcome),
    /// A connector's last check-in, as read by the watch.
    CheckIn {
        /// The connector.
        connector_id: String,
        /// Its name.
        name: Option<String>,
        /// Its `last_seen`.
        last_seen: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// Notifications counted since start.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages posted (per target).
    pub sent: u64,
    /// Messages that could not be posted (per target).
    pub failed: u64,
    /// Events dropped because the queue was full or closed.
    pub dropped: u64,
}

/// The sending side: cheap to call from any task.
pub struct Notifier {
    tx: mpsc::Sender<Event>,
    counters: Arc<Counters>,
    stale_after: Option<Duration>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("counts", &self.counts())
            .finish()
    }
}

/// Settings beyond `config.yml` (tests shorten them).
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// How the sender posts.
    pub sender: SenderOptions,
}

impl NotifierOptions {
    /// The defaults for `config`: its API URL (else `SLACK_API_BASE_URL`, else Slack's).
    pub fn for_config(config: &Config) -> NotifierOptions {
        let api_url = config
            .notifications
            .slack
            .api_url
            .clone()
            .unwrap_or_else(|| resolve_base_url(std::env::var(BASE_URL_ENV).ok().as_deref()));
        NotifierOptions {
            sender: SenderOptions {
                api_url,
                retry: slack::NOTIFY_RETRY,
                interval: slack::POST_INTERVAL,
                timeout: Duration::from_secs(30),
            },
        }
    }
}

impl Notifier {
    /// Starts the worker when `config` has a Slack destination; `None` when notifications
    /// are off or the sender cannot be built (logged). The worker stops with `shutdown`,
    /// after sending what is queued for at most a few seconds.
    pub fn start(
        config: &Config,
        options: NotifierOptions,
        shutdown: CancellationToken,
    ) -> Option<(Arc<Notifier>, tokio::task::JoinHandle<()>)> {
        let slack = &config.notifications.slack;
        let sender = match slack.destination()? {
            Destination::Bot { token, targets } => {
                match SlackSender::bot(token, targets, &options.sender) {
                    Ok(sender) => sender,
                    Err(error) => {
                        tracing::error!(%error, "slack notifications are off: the client cannot be built");
                        return None;
                    }
                }
            }
            Destination::Webhook { url } => SlackSender::webhook(url, &options.sender),
        };
        let (tx, rx) = mpsc::channel(slack.queue_size.max(1));
        let counters = Arc::new(Counters::default());
        let stale = slack.triggers.stopped_checking_in;
        let notifier = Arc::new(Notifier {
            tx,
            counters: counters.clone(),
            stale_after: (stale > 0.0).then(|| Duration::from_secs_f64(stale)),
        });
        let worker = Worker {
            tracker: Tracker::new(slack.triggers.clone()),
            sender,
            kibana_url: config.notifications.kibana_url.clone(),
            counters,
        };
        tracing::info!(targets = ?worker.sender.targets(), "slack notifications on");
        let handle = tokio::spawn(worker.run(rx, shutdown));
        Some((notifier, handle))
    }

    /// Queues an event; never waits. A full queue drops it (counted and logged).
    pub fn push(&self, event: Event) {
        if let Err(error) = self.tx.try_send(event) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            crate::metrics::global().notification("dropped");
            let reason = match error {
                mpsc::error::TrySendError::Full(_) => {
                    "the queue is full (notifications.slack.queue_size)"
                }
                mpsc::error::TrySendError::Closed(_) => "the notifier has stopped",
            };
            tracing::warn!(reason, "notification dropped");
        }
    }

    /// What was sent, failed and dropped so far.
    pub fn counts(&self) -> Counts {
        Counts {
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }

    /// After how long without a check-in a connector is reported (`None`: the trigger is off).
    pub fn stale_after(&self) -> Option<Duration> {
        self.stale_after
    }
}

impl JobObserver for Notifier {
    fn job_finished(&self, outcome: JobOutcome) {
        self.push(Event::Job(outcome));
    }
}

struct Worker {
    tracker: Tracker,
    sender: SlackSender,
    kibana_url: Option<String>,
    counters: Arc<Counters>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Event>, shutdown: CancellationToken) {
        // Sends go on for a short grace once the service stops, then are cancelled.
        let sends = CancellationToken::new();
        loop {
            let event = tokio::select! {
                event = rx.recv() => event,
                _ = shutdown.cancelled() => None,
            };
            let Some(event) = event else { break };
            self.handle(event, &sends).await;
        }
        rx.close();
        let drain = async {
            while let Some(event) = rx.recv().await {
                self.handle(event, &sends).await;
            }
        };
        if tokio::time::timeout(DRAIN_GRACE, drain).await.is_err() {
            sends.cancel();
            tracing::warn!("notifications still queued at shutdown were not sent");
        }
    }

    async fn handle(&mut self, event: Event, cancel: &CancellationToken) {
        let notices = match event {
            Event::Job(outcome) => self.tracker.on_job(&outcome),
            Event::CheckIn {
                connector_id,
                name,
                last_seen,
            } => self
                .tracker
                .on_check_in(
                    &connector_id,
                    name.as_deref(),
                    last_seen,
                    chrono::Utc::now(),
                )
                .into_iter()
                .collect(),
        };
        for notice in notices {
            self.send(&notice, cancel).await;
        }
    }

    async fn send(&mut self, notice: &Notice, cancel: &CancellationToken) {
        let message = message::render(notice, self.kibana_url.as_deref());
        let kind = kind_of(notice);
        for target in self.sender.targets() {
            match self.sender.deliver(&target, &message, cancel).await {
                Ok(()) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::global().notification("sent");
                    tracing::info!(notice = kind, target = %target, "slack notification sent");
                }
                Err(error) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::global().notification("failed");
                    tracing::warn!(notice = kind, target = %target, error = %describe(&error),
                                   "slack notification not sent");
                }
            }
        }
    }
}

/// A failure with what to fix, for the log.
fn describe(error: &NotifyError) -> String {
    match error {
        NotifyError::Slack(slack) => match slack.code() {
            Some("channel_not_found") => format!(
                "{slack}: check the target (a channel id, #name or user id the app can see)"
            ),
            Some("not_in_channel") => format!(
                "{slack}: invite the app to the channel, or add the chat:write.public scope"
            ),
            Some("missing_scope")
            | Some("invalid_auth")
            | Some("not_authed")
            | Some("token_revoked")
            | Some("token_expired") => {
                format!(
                    "{slack}: {}",
                    slack
                        .actionable()
                        .replace("'Authentication Token'", "`notifications.slack.bot_token`")
                )
            }
            _ => slack.to_string(),
        },
        other => other.to_string(),
    }
}

fn kind_of(notice: &Notice) -> &'static str {
    match notice {
        Notice::JobFailed(_) => "job_failed",
        Notice::FailingRepeatedly { .. } => "failing_repeatedly",
        Notice::Recovered { .. } => "recovered",
        Notice::Summary(_) => "sync_summary",
        Notice::Report(_) => "csv_report",
        Notice::StoppedCheckingIn { .. } => "stopped_checking_in",
        Notice::CheckingInAgain { .. } => "checking_in_again",
    }
}

/// The check-in watch: reads the handled connectors' `last_seen` every so often (a quarter
/// of the allowed silence, between 1 s and 60 s) and hands them to the notifier, until
/// `shutdown`. Errors reading Elasticsearch are logged and the watch goes on.
pub async fn watch_check_ins(
    store: Arc<dyn ConnectorStore>,
    query: serde_json::Value,
    notifier: Arc<Notifier>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let Some(limit) = notifier.stale_after() else {
        return;
    };
    let every = (limit / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    while !shutdown.is_cancelled() {
        match store.search_connectors(query.clone()).await {
            Ok(connectors) => {
                for connector in readable(connectors, "watching check-ins") {
                    notifier.push(Event::CheckIn {
                        connector_id: connector.id.clone(),
                        name: connector.source.name.clone(),
                        last_seen: connector.source.last_seen.as_deref().and_then(parse_time),
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "could not read the connectors' check-ins"),
        }
        tokio::select! {
            _ = clock.sleep(every) => {}
            _ = shutdown.cancelled() => break,
        }
    }
}
