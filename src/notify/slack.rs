//! Posting to Slack: `chat.postMessage` with a bot token (through the Slack source's client:
//! its strict decoding and the one retry policy, so a 429's `Retry-After` is always waited
//! out), the three-step external upload for reports, and incoming webhooks.
//!
//! Invariants: messages to one channel are at least [`POST_INTERVAL`] apart (Slack allows
//! about one a second per channel); the bot token travels only in the client's
//! `Authorization` header; the webhook URL and the upload URL are credentials themselves, so
//! no error or log line shows them (transport errors are described without their URL); a
//! failure is returned, never panicked or retried forever (a small retry budget).

use super::message::{Message, Report};
use crate::config::Secret;
use crate::retry::{self, RetryKind, RetryParams, Retryable};
use crate::sources::slack::client::{
    parse_retry_after, ClientConfig, Head, SlackClient, SlackError, Verb,
};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The least time between two messages to one channel.
pub const POST_INTERVAL: Duration = Duration::from_secs(1);

/// Retries of one notification call: a few for server errors, a few more for throttling,
/// never longer than two minutes in all (the queue waits behind it).
pub const NOTIFY_RETRY: RetryParams = RetryParams {
    max_throttled: 8,
    max_elapsed: Some(Duration::from_secs(120)),
    ..RetryParams::exponential(Duration::from_secs(1), Duration::from_secs(30), 3)
};

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A Web API call failed (`invalid_auth`, `channel_not_found`, a 429 past the budget…).
    #[error(transparent)]
    Slack(#[from] SlackError),
    /// The incoming webhook refused the message.
    #[error("the slack incoming webhook answered http {status}: {reason}")]
    Webhook {
        /// HTTP status.
        status: u16,
        /// Slack's short reason (`invalid_payload`, `no_service`, …).
        reason: String,
        /// `Retry-After` of a 429.
        retry_after: Option<Duration>,
    },
    /// The webhook or the file upload could not be reached (no URL in the text).
    #[error("{what} failed: {reason}")]
    Transport {
        /// `the slack incoming webhook`, `the file upload`.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The upload URL refused the file.
    #[error("the file upload answered http {status}")]
    Upload {
        /// HTTP status.
        status: u16,
        /// `Retry-After` of a 429.
        retry_after: Option<Duration>,
    },
    /// The service is stopping.
    #[error("cancelled")]
    Cancelled,
}

impl Retryable for NotifyError {
    fn retry_kind(&self) -> RetryKind {
        let status = match self {
            NotifyError::Slack(error) => return error.retry_kind(),
            NotifyError::Transport { .. } => return RetryKind::Transient,
            NotifyError::Cancelled => return RetryKind::Permanent,
            NotifyError::Webhook { status, .. } | NotifyError::Upload { status, .. } => *status,
        };
        match status {
            429 => RetryKind::Throttled,
            408 | 500..=599 => RetryKind::Transient,
            _ => RetryKind::Permanent,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            NotifyError::Slack(error) => error.retry_after(),
            NotifyError::Webhook { retry_after, .. } | NotifyError::Upload { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// How long to wait before posting to a channel last posted to at `last` (pure).
pub fn pace_delay(last: Option<Instant>, now: Instant, interval: Duration) -> Duration {
    last.map(|last| (last + interval).saturating_duration_since(now))
        .unwrap_or_default()
}

enum Kind {
    Bot {
        // Boxed: the client is ten times the webhook variant's size.
        client: Box<SlackClient>,
        targets: Vec<String>,
    },
    Webhook {
        url: Secret,
    },
}

/// Sends rendered messages to every target, paced per channel.
pub struct SlackSender {
    kind: Kind,
    http: reqwest::Client,
    retry: RetryParams,
    last_post: HashMap<String, Instant>,
    interval: Duration,
}

/// Where and how a [`SlackSender`] posts.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// The Web API base URL.
    pub api_url: String,
    /// Retries of each call.
    pub retry: RetryParams,
    /// Least time between two messages to one channel.
    pub interval: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
}

fn transport(what: &'static str, error: reqwest::Error) -> NotifyError {
    // `without_url`: the webhook and upload URLs are credentials.
    let error = error.without_url();
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    NotifyError::Transport { what, reason }
}

impl SlackSender {
    /// A sender posting with a bot token to `targets`.
    pub fn bot(
        token: Secret,
        targets: Vec<String>,
        options: &SenderOptions,
    ) -> Result<SlackSender, NotifyError> {
        let client = SlackClient::new(ClientConfig {
            base_url: options.api_url.clone(),
            token,
            timeout: options.timeout,
            tier_scale: 1.0,
            // Pacing is per channel here (the client's limiter paces per method).
            budget: crate::sources::slack::ratelimit::BudgetMode::Published,
            pace: false,
            retry: options.retry,
        })?;
        Ok(SlackSender::with_kind(
            Kind::Bot {
                client: Box::new(client),
                targets,
            },
            options,
        ))
    }

    /// A sender posting to an incoming webhook.
    pub fn webhook(url: Secret, options: &SenderOptions) -> SlackSender {
        SlackSender::with_kind(Kind::Webhook { url }, options)
    }

    fn with_kind(kind: Kind, options: &SenderOptions) -> SlackSender {
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("elastic-connectors-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        SlackSender {
            kind,
            http,
            retry: options.retry,
            last_post: HashMap::new(),
            interval: options.interval,
        }
    }

    /// The targets messages go to (`webhook` for an incoming webhook).
    pub fn targets(&self) -> Vec<String> {
        match &self.kind {
            Kind::Bot { targets, .. } => targets.clone(),
            Kind::Webhook { .. } => vec!["webhook".into()],
        }
    }

    /// Waits for the channel's turn, then marks it used.
    async fn pace(&mut self, channel: &str, cancel: &CancellationToken) -> Result<(), NotifyError> {
        let wait = pace_delay(
            self.last_post.get(channel).copied(),
            Instant::now(),
            self.interval,
        );
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => return Err(NotifyError::Cancelled),
            }
        }
        self.last_post.insert(channel.to_string(), Instant::now());
        Ok(())
    }

    /// Delivers `message` to `target` (a target of [`targets`](Self::targets)).
    pub async fn deliver(
        &mut self,
        target: &str,
        message: &Message,
        cancel: &CancellationToken,
    ) -> Result<(), NotifyError> {
        self.pace(target, cancel).await?;
        let blocks = message.blocks.to_string();
        match &self.kind {
            Kind::Webhook { url } => {
                let body = json!({"text": message.text, "blocks": message.blocks});
                post_webhook(&self.http, url, &body, &self.retry, cancel).await
            }
            Kind::Bot { client, .. } => {
                let params = [
                    ("channel", target),
                    ("text", message.text.as_str()),
                    ("blocks", blocks.as_str()),
                    ("unfurl_links", "false"),
                    ("unfurl_media", "false"),
                ];
                let (channel, ts) = client
                    .call_with("chat.postMessage", Verb::PostForm, &params, cancel, ids)
                    .await?;
                let Some(file) = &message.file else {
                    return Ok(());
                };
                // The report goes in the message's thread, in the channel Slack resolved
                // (a name or a user id becomes a channel id).
                let client = client.clone();
                upload(
                    &client,
                    &self.http,
                    &self.retry,
                    file,
                    &channel,
                    &ts,
                    cancel,
                )
                .await
            }
        }
    }
}

/// `chat.postMessage`'s channel id and message ts (required by its answer shape).
fn ids(bytes: &[u8], head: &Head<'_>) -> Result<(String, String), SlackError> {
    let body = head.decode::<serde::de::IgnoredAny>(bytes)?;
    let field = |name| body.text(name).unwrap_or_default().to_string();
    Ok((field("channel"), field("ts")))
}

/// The three-step external upload: `files.getUploadURLExternal` (name and length), the
/// bytes to the URL it gave, then `files.completeUploadExternal` to share it in `channel`,
/// in the thread of `thread_ts`.
async fn upload(
    client: &SlackClient,
    http: &reqwest::Client,
    params: &RetryParams,
    file: &Report,
    channel: &str,
    thread_ts: &str,
    cancel: &CancellationToken,
) -> Result<(), NotifyError> {
    let length = file.content.len().to_string();
    let (upload_url, file_id) = client
        .call_with(
            "files.getUploadURLExternal",
            Verb::PostForm,
            &[("filename", file.filename.as_str()), ("length", &length)],
            cancel,
            |bytes, head| {
                let body = head.decode::<serde::de::IgnoredAny>(bytes)?;
                let field = |name| body.text(name).unwrap_or_default().to_string();
                Ok((Secret::new(field("upload_url")), field("file_id")))
            },
        )
        .await?;
    retry::retry(
        params,
        || async {
            let response = http
                .post(upload_url.expose())
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(file.content.clone())
                .send()
                .await
                .map_err(|e| transport("the file upload", e))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            Err(NotifyError::Upload {
                status: status.as_u16(),
                retry_after: retry_after(&response),
            })
        },
        |error, _, delay| tracing::debug!(%error, delay_ms = delay.as_millis() as u64, "retrying the file upload"),
        async {
            cancel.cancelled().await;
            NotifyError::Cancelled
        },
    )
    .await?;
    let files = json!([{"id": file_id, "title": file.title}]).to_string();
    client
        .call_with(
            "files.completeUploadExternal",
            Verb::PostForm,
            &[
                ("files", files.as_str()),
                ("channel_id", channel),
                ("thread_ts", thread_ts),
                ("initial_comment", "The job's figures, as CSV."),
            ],
            cancel,
            |bytes, head| head.decode::<Value>(bytes).map(|_| ()),
        )
        .await?;
    Ok(())
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// Posts to an incoming webhook: `200 ok`, or an error with Slack's short reason.
async fn post_webhook(
    http: &reqwest::Client,
    url: &Secret,
    body: &Value,
    params: &RetryParams,
    cancel: &CancellationToken,
) -> Result<(), NotifyError> {
    retry::retry(
        params,
        || async {
            let response = http
                .post(url.expose())
                .json(body)
                .send()
                .await
                .map_err(|e| transport("the slack incoming webhook", e))?;
            let status = response.status();
            let retry_after = retry_after(&response);
            let text = response
                .text()
                .await
                .map_err(|e| transport("the slack incoming webhook", e))?;
            if status.is_success() {
                return Ok(());
            }
            // Slack answers a short code (`invalid_payload`, `no_service`, …); keep it short.
            let reason: String = text.trim().chars().take(80).collect();
            Err(NotifyError::Webhook {
                status: status.as_u16(),
                reason,
                retry_after,
            })
        },
        |error, _, delay| tracing::debug!(%error, delay_ms = delay.as_millis() as u64, "retrying the webhook"),
        async {
            cancel.cancelled().await;
            NotifyError::Cancelled
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_to_a_channel_are_a_second_apart() {
        let now = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(pace_delay(None, now, second), Duration::ZERO);
        assert_eq!(pace_delay(Some(now), now, second), second);
        assert_eq!(
            pace_delay(Some(now), now + Duration::from_millis(300), second),
            Duration::from_millis(700)
        );
        assert_eq!(
            pace_delay(Some(now), now + second * 2, second),
            Duration::ZERO
        );
    }

    #[test]
    fn webhook_and_upload_failures_classify() {
        let webhook = |status| NotifyError::Webhook {
            status,
            reason: "x".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(webhook(429).retry_kind(), RetryKind::Throttled);
        assert_eq!(webhook(429).retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(webhook(503).retry_kind(), RetryKind::Transient);
        assert_eq!(webhook(404).retry_kind(), RetryKind::Permanent);
        assert_eq!(webhook(400).retry_kind(), RetryKind::Permanent);
        let upload = NotifyError::Upload {
            status: 500,
            retry_after: None,
        };
        assert_eq!(upload.retry_kind(), RetryKind::Transient);
    }
}
