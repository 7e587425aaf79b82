//! The Slack Web API client: authentication, pacing, retries and the `ok:false` taxonomy.
//!
//! Every call goes through [`SlackClient::call_with`] (or [`SlackClient::call`], its owned
//! form): wait for the method's rate-limit slot,
//! send (GET with a query string, or POST with a form body: reqwest encodes both, so
//! cursors full of `=`/`+`/`/` survive), read the body, and classify the outcome with the
//! pure [`classify`] (Airbyte's taxonomy, `slack-api.md` §1c):
//! - configuration/auth errors fail at once with an actionable message;
//! - throttling, server errors, transport errors, malformed JSON and `ok:true` answers
//!   without the method's fields ([`SlackError::Protocol`]) are retried by the shared policy
//!   ([`crate::retry`]: backoff, a bounded number of times, throttling with its own larger
//!   budget, [`DEFAULT_RETRY`]); `Retry-After` is always honoured and fed back into the
//!   limiter so every other request to that method waits too;
//! - channel-level errors (`not_in_channel`, …) come back as [`SlackError::Api`] with
//!   [`Class::Skip`], for the caller to skip that channel.
//!
//! Invariants: the token is a [`Secret`] sent only in the `Authorization` header (marked
//! sensitive), so it appears in no URL, log line, error or `Debug` output; a call either
//! returns a parsed `ok:true` body carrying every field its method promises
//! ([`answer`](super::answer)) or an error: it never yields an empty page silently. The
//! body is decoded in place by the caller's decoder, so pages can be read with borrowed
//! strings; a decoder error (malformed JSON, a missing or mistyped field, a repeated
//! cursor) is retried like a bad answer, so decoders have no side effects.

use super::answer::{self, ApiResponse, Pager};
use super::metrics::CallMetrics;
use super::ratelimit::{BudgetMode, RateLimiter, Ticket};
use crate::config::Secret;
use crate::retry::{self, RetryKind, RetryParams, Retryable};
use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Slack's public API base URL.
pub const DEFAULT_BASE_URL: &str = "https://slack.com/api";
/// Env variable overriding [`DEFAULT_BASE_URL`] (simulators, proxies).
pub const BASE_URL_ENV: &str = "SLACK_API_BASE_URL";

/// HTTP verb of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Read methods: parameters in the query string.
    Get,
    /// Write methods (`conversations.join`): parameters as a form body.
    PostForm,
}

/// Why a Slack call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SlackError {
    /// `ok:false` with an error code.
    #[error("slack {method} failed: {code}")]
    Api {
        /// The method called.
        method: String,
        /// Slack's error code.
        code: String,
        /// `missing_scope`: the scope needed.
        needed: Option<String>,
        /// `missing_scope`: the scopes the token has.
        provided: Option<String>,
        /// `Retry-After` (for `ratelimited`).
        retry_after: Option<Duration>,
    },
    /// A non-2xx HTTP status.
    #[error("slack {method} answered http {status}")]
    Http {
        /// The method called.
        method: String,
        /// The status code.
        status: u16,
        /// `Retry-After`, if sent.
        retry_after: Option<Duration>,
    },
    /// Connection, timeout or body read failure.
    #[error("slack {method} request failed: {reason}")]
    Transport {
        /// The method called.
        method: String,
        /// What went wrong (never contains the token).
        reason: String,
    },
    /// The request could not be built (bad base URL): retrying cannot help.
    #[error("slack {method} request is invalid: {reason}")]
    Request {
        /// The method called.
        method: String,
        /// What is wrong.
        reason: String,
    },
    /// The body is not the JSON we expect.
    #[error("slack {method} returned malformed json: {reason}")]
    Malformed {
        /// The method called.
        method: String,
        /// The parse error.
        reason: String,
    },
    /// An `ok:true` answer without what the method promises: a required field missing,
    /// `null` or of the wrong type, `has_more` without a cursor, a cursor already used
    /// ([`answer`](super::answer)). Retried like a 5xx: Slack may answer well next time.
    #[error("slack {method} answered ok but `{field}` {problem}")]
    Protocol {
        /// The method called.
        method: String,
        /// The field at fault (`messages`, `response_metadata.next_cursor`, …).
        field: String,
        /// What is wrong with it (`is missing`, `is null`, …).
        problem: String,
    },
    /// The sync was cancelled while waiting.
    #[error("cancelled")]
    Cancelled,
}

/// What to do with a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Try again (after `Retry-After` if given, else backoff). `throttled` calls count
    /// against a separate, larger budget: they are Slack pacing us, not failures.
    Retry {
        /// Whether Slack asked us to slow down (429 / `ratelimited`).
        throttled: bool,
    },
    /// Skip the channel the call was about (not a fetch failure).
    Skip,
    /// Bad token or permissions: fail the sync and tell the user what to fix.
    Auth,
    /// Anything else: fail the sync.
    Fail,
}

/// Error codes that mean the token or the app's permissions must be fixed.
pub const AUTH_CODES: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "missing_scope",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "no_permission",
    "org_login_required",
    "ekm_access_denied",
    "not_allowed_token_type",
];

/// Error codes that are transient on Slack's side.
pub const RETRY_CODES: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "request_timeout",
    "service_unavailable",
];

/// Error codes that mean "this channel cannot be read": skip it.
pub const SKIP_CODES: &[&str] = &[
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "channel_is_limited_access",
];

/// Classifies a failure (pure).
pub fn classify(error: &SlackError) -> Class {
    match error {
        SlackError::Api { code, .. } => {
            let code = code.as_str();
            if code == "ratelimited" {
                Class::Retry { throttled: true }
            } else if RETRY_CODES.contains(&code) {
                Class::Retry { throttled: false }
            } else if AUTH_CODES.contains(&code) {
                Class::Auth
            } else if SKIP_CODES.contains(&code) {
                Class::Skip
            } else {
                Class::Fail
            }
        }
        SlackError::Http { status: 429, .. } => Class::Retry { throttled: true },
        SlackError::Http { status, .. } if *status >= 500 || *status == 408 => {
            Class::Retry { throttled: false }
        }
        SlackError::Http { status: 401, .. } | SlackError::Http { status: 403, .. } => Class::Auth,
        SlackError::Http { .. } => Class::Fail,
        SlackError::Transport { .. }
        | SlackError::Malformed { .. }
        | SlackError::Protocol { .. } => Class::Retry { throttled: false },
        SlackError::Request { .. } | SlackError::Cancelled => Class::Fail,
    }
}

impl Retryable for SlackError {
    fn retry_kind(&self) -> RetryKind {
        match classify(self) {
            Class::Retry { throttled: true } => RetryKind::Throttled,
            Class::Retry { throttled: false } => RetryKind::Transient,
            Class::Skip | Class::Auth | Class::Fail => RetryKind::Permanent,
        }
    }

    /// The `Retry-After` Slack sent with this error, if any.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            SlackError::Api { retry_after, .. } | SlackError::Http { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

impl SlackError {
    /// The Slack error code (`ok:false`), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            SlackError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A message saying what to fix, for auth/configuration failures.
    pub fn actionable(&self) -> String {
        match self {
            SlackError::Api {
                method,
                code,
                needed,
                provided,
                ..
            } => match code.as_str() {
                "missing_scope" => format!(
                    "the Slack token lacks the scope '{}' needed by {method} (token scopes: {}); add it to the app's bot token scopes and reinstall the app",
                    needed.as_deref().unwrap_or("unknown"),
                    provided.as_deref().filter(|p| !p.is_empty()).unwrap_or("none"),
                ),
                "invalid_auth" | "not_authed" => format!(
                    "slack rejected the token ({code}); check 'Authentication Token' (a bot token starting with xoxb-)"
                ),
                "token_revoked" | "token_expired" => format!(
                    "the Slack token is no longer valid ({code}); generate a new token and update 'Authentication Token'"
                ),
                "account_inactive" => {
                    "the Slack token belongs to a deactivated user or workspace (account_inactive); use a token of an active app".to_string()
                }
                "no_permission" => format!(
                    "the Slack app has no permission to call {method} (no_permission); check the app's scopes and workspace settings"
                ),
                other => format!("slack {method} failed: {other}"),
            },
            SlackError::Http { method, status, .. } if *status == 401 || *status == 403 => {
                format!("slack rejected the token for {method} (http {status}); check 'Authentication Token'")
            }
            other => other.to_string(),
        }
    }
}

/// Retries of one call: transient failures (5xx, transport, malformed, `internal_error`…)
/// a few times; throttled answers (429 / `ratelimited`: Slack pacing us) many more.
pub const DEFAULT_RETRY: RetryParams = RetryParams {
    max_throttled: 50,
    ..RetryParams::exponential(Duration::from_millis(500), Duration::from_secs(30), 6)
};

/// Parses `Retry-After`: integer seconds (Slack) or decimal seconds (the simulator).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Cap absurd values: an hour is longer than any tier window.
    Some(Duration::from_secs_f64(secs.min(3600.0)))
}

/// A successful answer plus the headers we use.
#[derive(Debug)]
pub struct Reply<T> {
    /// The parsed body (`ok:true`).
    pub body: ApiResponse<T>,
    /// `x-oauth-scopes`: the token's scopes.
    pub scopes: Option<String>,
}

/// Counters for the job's metadata.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// HTTP requests sent.
    pub requests: AtomicU64,
    /// Retries of transient failures.
    pub retries: AtomicU64,
    /// Throttled answers (429 / `ratelimited`).
    pub throttled: AtomicU64,
    /// Requests held back by our own pacing (the method's budget ran dry), as opposed to a
    /// `Retry-After`: with Slack's limits out of the way, a learned budget makes none.
    pub pacing_waits: AtomicU64,
    /// Requests and throttled answers per method (progress estimates, the job's metadata).
    per_method: Mutex<BTreeMap<String, MethodCalls>>,
}

/// One method's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MethodCalls {
    /// Requests sent.
    pub calls: u64,
    /// Throttled answers.
    pub throttled: u64,
}

impl ClientStats {
    fn count(&self, method: &str, f: impl FnOnce(&mut MethodCalls)) {
        let mut map = self.per_method.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(method) {
            Some(calls) => f(calls),
            None => f(map.entry(method.to_string()).or_default()),
        }
    }

    /// Requests and throttled answers per method, so far.
    pub fn per_method(&self) -> BTreeMap<String, MethodCalls> {
        self.per_method
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API base URL, without a trailing slash.
    pub base_url: String,
    /// Bot or user token.
    pub token: Secret,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Multiplier of every tier budget (`SLACK_TIER_SCALE`).
    pub tier_scale: f64,
    /// Learned or published budgets.
    pub budget: BudgetMode,
    /// Client-side pacing on (off only for tests of the server's limiter).
    pub pace: bool,
    /// Retry limits and backoff.
    pub retry: RetryParams,
}

/// A Slack Web API client for one workspace (token).
#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    /// Parsed once: a sync makes one call per thread, and re-parsing the base URL (host
    /// normalization included) per call showed in profiles.
    base_url: url::Url,
    /// `Bearer <token>`, marked sensitive (Debug shows `Sensitive`); `None` when the token
    /// cannot be a header value (every call then fails as `invalid_auth`).
    auth: Option<HeaderValue>,
    limiter: Arc<RateLimiter>,
    retry: RetryParams,
    stats: Arc<ClientStats>,
    metrics: CallMetrics,
}

impl SlackClient {
    /// Builds the client (rustls, timeouts, shared per-workspace limiter).
    pub fn new(config: ClientConfig) -> Result<SlackClient, SlackError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .pool_idle_timeout(Duration::from_secs(30))
            // The Web API answers in place; following redirects cost a URL re-parse per
            // call (a few % of a sync's CPU in profiles), and a 3xx is an error worth seeing.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("elastic-connectors-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SlackError::Transport {
                method: "client".into(),
                reason: e.to_string(),
            })?;
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let parsed = match url::Url::parse(&base_url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && !parsed.cannot_be_a_base() => {
                parsed
            }
            _ => {
                return Err(SlackError::Request {
                    method: "client".into(),
                    reason: format!(
                        "the Slack API base URL '{base_url}' is not an http(s) URL (check {BASE_URL_ENV})"
                    ),
                })
            }
        };
        let auth = HeaderValue::from_str(&format!("Bearer {}", config.token.expose()))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        let key = limiter_key(
            &base_url,
            config.token.expose(),
            config.tier_scale,
            config.budget,
            config.pace,
        );
        Ok(SlackClient {
            http,
            limiter: RateLimiter::shared(key, config.tier_scale, config.budget, config.pace),
            base_url: parsed,
            auth,
            retry: config.retry,
            stats: Arc::new(ClientStats::default()),
            metrics: CallMetrics::default(),
        })
    }

    /// The client, recording its calls in `metrics` (labelled with a connector).
    pub fn with_metrics(mut self, metrics: CallMetrics) -> SlackClient {
        self.metrics = metrics;
        self
    }

    /// The client, authenticating as the app (HTTP Basic with its client id and secret, as
    /// Slack recommends) instead of with a token: `oauth.v2.access`, for the OAuth code
    /// exchange and the token refresh. The header is marked sensitive like the token's.
    pub fn with_client_credentials(
        mut self,
        client_id: &str,
        client_secret: &Secret,
    ) -> SlackClient {
        use base64::Engine as _;
        let pair = format!("{client_id}:{}", client_secret.expose());
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        self.auth = HeaderValue::from_str(&format!("Basic {encoded}"))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        self
    }

    /// The client's counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The workspace's budgets (shared with every client of the same workspace).
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Calls `method` until it succeeds, fails for good, or the retry budget is spent.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        verb: Verb,
        params: &[(&str, &str)],
        cancel: &CancellationToken,
    ) -> Result<Reply<T>, SlackError> {
        self.call_with(method, verb, params, cancel, |bytes, head| {
            Ok(Reply {
                body: head.decode(bytes)?,
                scopes: head.scopes.clone(),
            })
        })
        .await
    }

    /// [`call`](Self::call) for one page of a cursor listing: a next cursor that `pager`
    /// has already used is a protocol error, retried like any other bad answer.
    pub async fn call_page<T: DeserializeOwned>(
        &self,
        method: &str,
        verb: Verb,
        params: &[(&str, &str)],
        pager: &Pager,
        cancel: &CancellationToken,
    ) -> Result<Reply<T>, SlackError> {
        self.call_with(method, verb, params, cancel, |bytes, head| {
            let body = head.decode(bytes)?;
            pager.check(head.method, body.next_cursor())?;
            Ok(Reply {
                body,
                scopes: head.scopes.clone(),
            })
        })
        .await
    }

    /// [`call`](Self::call), with the body handed to `decode` while it is still in the
    /// receive buffer: `decode` can parse borrowed strings ([`Head::decode`] into a type
    /// with `&str` fields) and return what it made of them. An error from `decode`
    /// (`ok:false`, malformed JSON) is classified and retried like any other, so `decode`
    /// may run more than once and must have no side effects.
    pub async fn call_with<R>(
        &self,
        method: &str,
        verb: Verb,
        params: &[(&str, &str)],
        cancel: &CancellationToken,
        decode: impl Fn(&[u8], &Head<'_>) -> Result<R, SlackError>,
    ) -> Result<R, SlackError> {
        let decode = &decode;
        // The slot of the last attempt, for the budget to learn from a 429.
        let refused: Mutex<Option<Ticket>> = Mutex::new(None);
        let refused = &refused;
        retry::retry(
            &self.retry,
            || async move {
                let Some(slot) = self.limiter.acquire(method, cancel).await else {
                    return Err(SlackError::Cancelled);
                };
                if slot.paced {
                    self.stats.pacing_waits.fetch_add(1, Ordering::Relaxed);
                }
                self.stats.count(method, |c| c.calls += 1);
                let result = self.send_once(method, verb, params, decode).await;
                match &result {
                    Err(error) if error.retry_kind() == RetryKind::Throttled => {
                        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                        self.stats.count(method, |c| c.throttled += 1);
                        self.metrics.rate_limited(method);
                        *refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(slot.ticket);
                    }
                    // Any other answer: Slack counted the call and let it through.
                    Ok(_) | Err(SlackError::Api { .. } | SlackError::Protocol { .. }) => {
                        self.limiter.granted(method, slot.ticket)
                    }
                    Err(_) => {}
                }
                result
            },
            |error, _, delay| {
                if error.retry_kind() == RetryKind::Throttled {
                    // Everyone calling this method waits, not just us; the budget learns.
                    let ticket = refused.lock().unwrap_or_else(|e| e.into_inner()).take();
                    self.limiter
                        .throttled(method, delay, error.retry_after(), ticket);
                } else {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                }
                crate::metrics::global().retry("slack");
                tracing::debug!(method, error = %error, delay_ms = delay.as_millis() as u64, "retrying slack call");
            },
            async {
                cancel.cancelled().await;
                SlackError::Cancelled
            },
        )
        .await
    }

    /// `<base>/<method>` (a base with or without a path and trailing slash).
    fn method_url(&self, method: &str) -> url::Url {
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(method);
        }
        url
    }

    async fn send_once<R>(
        &self,
        method: &str,
        verb: Verb,
        params: &[(&str, &str)],
        decode: &impl Fn(&[u8], &Head<'_>) -> Result<R, SlackError>,
    ) -> Result<R, SlackError> {
        let auth = self.auth.clone().ok_or_else(|| SlackError::Api {
            method: method.into(),
            code: "invalid_auth".into(),
            needed: None,
            provided: None,
            retry_after: None,
        })?;
        let url = self.method_url(method);
        let request = match verb {
            Verb::Get => self.http.get(url).query(params),
            Verb::PostForm => self.http.post(url).form(params),
        }
        .header(AUTHORIZATION, auth)
        .header(reqwest::header::ACCEPT, "application/json");
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(method, "slack request");
        let transport = |e: reqwest::Error| {
            if e.is_builder() {
                SlackError::Request {
                    method: method.into(),
                    reason: describe_transport(&e),
                }
            } else {
                SlackError::Transport {
                    method: method.into(),
                    reason: describe_transport(&e),
                }
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                self.metrics.call(method, "error");
                return Err(transport(error));
            }
        };
        let status = response.status();
        self.metrics.call(method, status.as_str());
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let scopes = response
            .headers()
            .get("x-oauth-scopes")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response.bytes().await.map_err(transport)?;
        if status == StatusCode::TOO_MANY_REQUESTS || !status.is_success() {
            return Err(SlackError::Http {
                method: method.into(),
                status: status.as_u16(),
                retry_after,
            });
        }
        decode(
            &bytes,
            &Head {
                method,
                scopes,
                retry_after,
            },
        )
    }
}

/// What a call's decoder gets besides the body.
#[derive(Debug)]
pub struct Head<'a> {
    /// The method called.
    pub method: &'a str,
    /// `x-oauth-scopes`: the token's scopes.
    pub scopes: Option<String>,
    /// `Retry-After`, for an `ok:false` that asks to wait.
    pub retry_after: Option<Duration>,
}

impl Head<'_> {
    /// Parses the envelope and its items strictly for the method ([`answer::decode`]:
    /// items borrow from `bytes` where `T` does), and turns `ok:false` into
    /// [`SlackError::Api`], bad JSON into [`SlackError::Malformed`] and an `ok:true`
    /// answer without the method's fields into [`SlackError::Protocol`].
    pub fn decode<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
    ) -> Result<ApiResponse<T>, SlackError> {
        let body = answer::decode::<T>(self.method, bytes)?;
        if !body.ok {
            return Err(SlackError::Api {
                method: self.method.into(),
                code: body.error.unwrap_or_else(|| "unknown_error".into()),
                needed: body.needed,
                provided: body.provided.or_else(|| self.scopes.clone()),
                retry_after: self.retry_after,
            });
        }
        Ok(body)
    }
}

/// A transport error's description, without the URL (it carries channel ids and cursors,
/// noisy in logs; the token is never in it either way).
fn describe_transport(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    let mut reason = kind.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    reason
}

/// A stable key for the per-workspace limiter: the token is hashed, never stored.
fn limiter_key(base_url: &str, token: &str, scale: f64, budget: BudgetMode, pace: bool) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    base_url.hash(&mut hasher);
    token.hash(&mut hasher);
    scale.to_bits().hash(&mut hasher);
    budget.hash(&mut hasher);
    pace.hash(&mut hasher);
    hasher.finish()
}

/// The base URL: `SLACK_API_BASE_URL` when set and non-empty, else Slack's (pure).
pub fn resolve_base_url(env_value: Option<&str>) -> String {
    env_value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_BASE_URL)
        .trim_end_matches('/')
        .to_string()
}

/// The tier scale: `SLACK_TIER_SCALE` when it is a positive number, else 1 (pure).
pub fn resolve_tier_scale(env_value: Option<&str>) -> f64 {
    env_value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::Retrier;

    fn api(code: &str) -> SlackError {
        SlackError::Api {
            method: "conversations.history".into(),
            code: code.into(),
            needed: None,
            provided: None,
            retry_after: None,
        }
    }

    fn http(status: u16, retry_after: Option<Duration>) -> SlackError {
        SlackError::Http {
            method: "conversations.history".into(),
            status,
            retry_after,
        }
    }

    #[test]
    fn classification_follows_the_taxonomy() {
        for code in [
            "invalid_auth",
            "not_authed",
            "missing_scope",
            "token_revoked",
            "token_expired",
            "account_inactive",
            "no_permission",
        ] {
            assert_eq!(classify(&api(code)), Class::Auth, "{code}");
        }
        assert_eq!(
            classify(&api("ratelimited")),
            Class::Retry { throttled: true }
        );
        for code in [
            "internal_error",
            "fatal_error",
            "request_timeout",
            "service_unavailable",
        ] {
            assert_eq!(
                classify(&api(code)),
                Class::Retry { throttled: false },
                "{code}"
            );
        }
        for code in [
            "not_in_channel",
            "channel_not_found",
            "is_archived",
            "channel_is_limited_access",
        ] {
            assert_eq!(classify(&api(code)), Class::Skip, "{code}");
        }
        assert_eq!(classify(&api("invalid_cursor")), Class::Fail);
        assert_eq!(classify(&http(429, None)), Class::Retry { throttled: true });
        assert_eq!(
            classify(&http(503, None)),
            Class::Retry { throttled: false }
        );
        assert_eq!(
            classify(&http(500, None)),
            Class::Retry { throttled: false }
        );
        assert_eq!(classify(&http(401, None)), Class::Auth);
        assert_eq!(classify(&http(404, None)), Class::Fail);
        let transport = SlackError::Transport {
            method: "m".into(),
            reason: "connection reset".into(),
        };
        assert_eq!(classify(&transport), Class::Retry { throttled: false });
        let malformed = SlackError::Malformed {
            method: "m".into(),
            reason: "eof".into(),
        };
        assert_eq!(classify(&malformed), Class::Retry { throttled: false });
    }

    #[test]
    fn retries_are_bounded_and_honour_retry_after() {
        // No jitter, so the shared backoff's nominal delays show (jitter: `crate::retry`).
        let budget = RetryParams {
            jitter: 0.0,
            max_throttled: 5,
            ..RetryParams::exponential(Duration::from_millis(100), Duration::from_secs(1), 3)
        };
        let ms = |delay: Option<Duration>| delay.map(|d| d.as_millis());
        let mut retrier = Retrier::new(&budget);
        let mut next =
            |error: &SlackError| ms(retrier.next_delay(error.retry_kind(), error.retry_after()));
        // Backoff doubles, and transient retries are bounded.
        assert_eq!(next(&http(503, None)), Some(100));
        assert_eq!(next(&http(503, None)), Some(200));
        assert_eq!(next(&http(503, None)), Some(400));
        assert_eq!(next(&http(503, None)), None);
        // Throttling has its own budget and always waits what Slack asked.
        let ra = Some(Duration::from_millis(1500));
        for _ in 0..5 {
            assert_eq!(next(&http(429, ra)), Some(1500));
        }
        assert_eq!(next(&http(429, ra)), None);
        // Permanent errors never retry.
        for error in [api("missing_scope"), api("not_in_channel")] {
            assert_eq!(error.retry_kind(), RetryKind::Permanent);
            assert_eq!(
                Retrier::new(&budget).next_delay(error.retry_kind(), None),
                None
            );
        }
        // Huge retry counts never overflow.
        let mut big = Retrier::new(&RetryParams {
            max_retries: u32::MAX,
            ..budget
        });
        let last = (0..1000).map(|_| big.next_delay(RetryKind::Transient, None));
        assert_eq!(ms(last.last().flatten()), Some(1000));
    }

    #[test]
    fn retry_after_accepts_integers_and_decimals() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after(" 0.125 "),
            Some(Duration::from_millis(125))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("1e9"), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn missing_scope_names_needed_and_provided() {
        let error = SlackError::Api {
            method: "conversations.history".into(),
            code: "missing_scope".into(),
            needed: Some("channels:history".into()),
            provided: Some("channels:read,users:read".into()),
            retry_after: None,
        };
        let message = error.actionable();
        assert!(message.contains("'channels:history'"), "{message}");
        assert!(message.contains("channels:read,users:read"), "{message}");
    }

    #[test]
    fn env_overrides_resolve() {
        assert_eq!(resolve_base_url(None), DEFAULT_BASE_URL);
        assert_eq!(resolve_base_url(Some("  ")), DEFAULT_BASE_URL);
        assert_eq!(
            resolve_base_url(Some("http://127.0.0.1:9/api/")),
            "http://127.0.0.1:9/api"
        );
        assert_eq!(resolve_tier_scale(None), 1.0);
        assert_eq!(resolve_tier_scale(Some("60")), 60.0);
        assert_eq!(resolve_tier_scale(Some("0")), 1.0);
        assert_eq!(resolve_tier_scale(Some("x")), 1.0);
    }

    #[test]
    fn head_decode_maps_failures_and_retries_protocol_errors() {
        let head = Head {
            method: "conversations.history",
            scopes: Some("channels:read".into()),
            retry_after: None,
        };
        let failed = head
            .decode::<serde_json::Value>(br#"{"ok":false,"error":"missing_scope","needed":"x"}"#)
            .unwrap_err();
        assert!(
            matches!(&failed, SlackError::Api { code, provided: Some(p), .. } if code == "missing_scope" && p == "channels:read"),
            "{failed:?}"
        );
        let empty = head
            .decode::<serde_json::Value>(br#"{"ok":true,"has_more":false}"#)
            .unwrap_err();
        assert_eq!(classify(&empty), Class::Retry { throttled: false });
        assert_eq!(
            empty.to_string(),
            "slack conversations.history answered ok but `messages` is missing"
        );
    }

    #[test]
    fn bad_base_urls_are_refused_up_front() {
        let config = |base_url: &str| ClientConfig {
            base_url: base_url.into(),
            token: Secret::new("xoxb-1"),
            timeout: Duration::from_secs(1),
            tier_scale: 1.0,
            budget: BudgetMode::Learned,
            pace: true,
            retry: DEFAULT_RETRY,
        };
        let error = SlackClient::new(config("slack.com/api")).unwrap_err();
        assert_eq!(classify(&error), Class::Fail);
        assert!(error.to_string().contains(BASE_URL_ENV), "{error}");
        assert!(SlackClient::new(config("ftp://x/api")).is_err());
        assert!(SlackClient::new(config("http://127.0.0.1:9/api")).is_ok());
        for (base, want) in [
            (
                "https://slack.com/api",
                "https://slack.com/api/conversations.history",
            ),
            (
                "http://127.0.0.1:9/api/",
                "http://127.0.0.1:9/api/conversations.history",
            ),
            (
                "http://127.0.0.1:9",
                "http://127.0.0.1:9/conversations.history",
            ),
            ("http://h:9/a/b", "http://h:9/a/b/conversations.history"),
        ] {
            let client = SlackClient::new(config(base)).unwrap();
            assert_eq!(client.method_url("conversations.history").as_str(), want);
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let client = SlackClient::new(ClientConfig {
            base_url: "http://127.0.0.1:1".into(),
            token: Secret::new("xoxb-1234-secret"),
            timeout: Duration::from_secs(1),
            tier_scale: 1.0,
            budget: BudgetMode::Learned,
            pace: true,
            retry: DEFAULT_RETRY,
        })
        .unwrap();
        let dump = format!("{client:?}");
        assert!(!dump.contains("xoxb-1234-secret"), "{dump}");
    }
}
