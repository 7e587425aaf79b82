//! The Elasticsearch layer: one client over the `elasticsearch` crate's transport.
//!
//! Invariants:
//! - Every call's status is checked: a non-2xx never passes for success (the crate returns
//!   `Ok` for 4xx/5xx), it becomes a typed [`EsError`].
//! - One retry policy ([`crate::retry`]): timeouts (when `retry_on_timeout`), connection
//!   errors and 500/502/503/504 are retried with exponential backoff and jitter up to
//!   `elasticsearch.max_retries`, and so are 429s (throttling: their own count and backoff);
//!   other 4xx are not; 409 is [`EsError::VersionConflict`].
//! - Every request carries our user-agent, `X-elastic-product-origin: connectors` and the
//!   configured extra headers. Credentials are only in the transport and never in messages.
//! - Start-up waits for the cluster (`max_wait_duration`, exponential backoff, the same
//!   retry policy) and checks its version ([`EsClient::wait_for_cluster`], [`check_version`]).

mod error;

pub use error::{from_response, parse_error_body, status_retry_kind, EsError};

use crate::config::{ElasticsearchConfig, Secret};
use crate::retry::{self, RetryKind, RetryParams, Retryable};
use bytes::Bytes;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::CertificateValidation;
use elasticsearch::http::headers::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, Url};
use elasticsearch::Elasticsearch;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The Elasticsearch major version this service speaks (the framework it replaces is 9.x).
pub const COMPATIBLE_MAJOR: u64 = 9;

/// Environment switch that skips the version check (the Python service's name).
pub const ALLOW_VERSION_MISMATCH_ENV: &str = "ALLOW_ES_VERSION_MISMATCH";

/// What we send as user-agent.
pub fn user_agent() -> String {
    format!(
        "elastic-connectors-rust-{}/service",
        env!("CARGO_PKG_VERSION")
    )
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// A JSON document.
    Json(Value),
    /// Newline-delimited JSON (bulk), already serialized, ending with `\n`.
    NdJson(Bytes),
}

/// A successful (2xx) response.
#[derive(Debug, Clone)]
pub struct EsResponse {
    /// HTTP status.
    pub status: u16,
    /// Raw body.
    pub body: Bytes,
}

impl EsResponse {
    /// The body as JSON (`null` when empty).
    pub fn json(&self, path: &str) -> Result<Value, EsError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| EsError::Decode {
            path: path.to_string(),
            message: e.to_string(),
        })
    }
}

/// The Elasticsearch client of the service. Cheap to clone.
#[derive(Clone)]
pub struct EsClient {
    inner: Elasticsearch,
    host: String,
    headers: HeaderMap,
    retry: RetryParams,
    retry_on_timeout: bool,
    config: ElasticsearchConfig,
}

impl std::fmt::Debug for EsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsClient")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl EsClient {
    /// Builds a client from `elasticsearch.*` (no IO).
    pub fn new(config: &ElasticsearchConfig) -> Result<EsClient, EsError> {
        EsClient::build(config, None)
    }

    /// The same cluster with another API key (a connector's own `api_key` for its sync jobs).
    pub fn with_api_key(&self, api_key: &Secret) -> Result<EsClient, EsError> {
        EsClient::build(&self.config, Some(api_key))
    }

    fn build(config: &ElasticsearchConfig, api_key: Option<&Secret>) -> Result<EsClient, EsError> {
        let url = Url::parse(&config.host)
            .map_err(|e| EsError::Config(format!("elasticsearch.host is not a URL: {e}")))?;
        let host = display_host(&url);
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
            .timeout(Duration::from_secs_f64(config.request_timeout))
            .enable_meta_header(false)
            .disable_proxy();
        let credentials = match api_key.or(config.api_key.as_ref()) {
            Some(key) if !key.is_empty() => {
                Some(Credentials::EncodedApiKey(key.expose().to_string()))
            }
            _ if !url.username().is_empty() => None, // credentials in the URL are used as given
            _ if !config.username.is_empty() => Some(Credentials::Basic(
                config.username.clone(),
                config.password.expose().to_string(),
            )),
            _ => None,
        };
        if let Some(credentials) = credentials {
            builder = builder.auth(credentials);
        }
        if url.scheme() == "https" && config.ssl {
            let validation = if !config.verify_certs {
                CertificateValidation::None
            } else if let Some(path) = &config.ca_certs {
                let pem = std::fs::read(path).map_err(|e| {
                    EsError::Config(format!("cannot read elasticsearch.ca_certs `{path}`: {e}"))
                })?;
                let cert = elasticsearch::cert::Certificate::from_pem(&pem).map_err(|e| {
                    EsError::Config(format!(
                        "elasticsearch.ca_certs `{path}` is not a PEM certificate: {e}"
                    ))
                })?;
                CertificateValidation::Full(cert)
            } else {
                CertificateValidation::Default
            };
            builder = builder.cert_validation(validation);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&user_agent()).expect("ascii user agent"),
        );
        headers.insert(
            HeaderName::from_static("x-elastic-product-origin"),
            HeaderValue::from_static("connectors"),
        );
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                EsError::Config(format!(
                    "elasticsearch.headers: `{name}` is not a valid header name"
                ))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                EsError::Config(format!(
                    "elasticsearch.headers.{name}: the value is not a valid header value"
                ))
            })?;
            headers.insert(name, value);
        }
        let transport = builder
            .build()
            .map_err(|e| EsError::Config(e.to_string()))?;
        let retry_interval = Duration::from_secs_f64(config.retry_interval.max(0.0));
        Ok(EsClient {
            inner: Elasticsearch::new(transport),
            host,
            headers,
            retry: RetryParams::exponential(
                retry_interval,
                retry_interval.saturating_mul(8),
                config.max_retries,
            ),
            retry_on_timeout: config.retry_on_timeout,
            config: config.clone(),
        })
    }

    /// The node URL without credentials, for messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Overrides the retry parameters (tests, and callers with their own budget).
    pub fn with_retry(mut self, retry: RetryParams) -> EsClient {
        self.retry = retry;
        self
    }

    /// The retry parameters in force.
    pub fn retry_params(&self) -> RetryParams {
        self.retry
    }

    /// One request with the retry policy; any non-2xx is an error.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body>,
    ) -> Result<EsResponse, EsError> {
        retry::retry(
            &self.retry,
            || self.request_once(method, path, query, body.clone()),
            |error, attempt, delay| {
                crate::metrics::global().retry("elasticsearch");
                tracing::warn!(%error, attempt, delay_ms = delay.as_millis() as u64, "elasticsearch request failed, retrying");
            },
            // Callers stop a request by dropping it.
            std::future::pending(),
        )
        .await
    }

    /// One request without retries; any non-2xx is an error.
    pub async fn request_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body>,
    ) -> Result<EsResponse, EsError> {
        let mut headers = self.headers.clone();
        let payload: Option<Bytes> = match body {
            None => None,
            Some(Body::Json(value)) => Some(Bytes::from(
                serde_json::to_vec(&value).expect("json values serialize"),
            )),
            Some(Body::NdJson(bytes)) => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                Some(bytes)
            }
        };
        let query = if query.is_empty() { None } else { Some(query) };
        let started = Instant::now();
        let sent = self
            .inner
            .send(method, path, headers, query, payload, None)
            .await;
        let method_name = format!("{method:?}").to_uppercase();
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Err(self.transport_error(&error, path)),
        };
        let status = response.status_code().as_u16();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return Err(self.transport_error(&error, path)),
        };
        tracing::trace!(method = %method_name, path, status, elapsed_ms = started.elapsed().as_millis() as u64, "elasticsearch request");
        if (200..300).contains(&status) {
            Ok(EsResponse { status, body })
        } else {
            Err(from_response(&method_name, path, status, &body))
        }
    }

    fn transport_error(&self, error: &elasticsearch::Error, path: &str) -> EsError {
        if error.is_timeout() {
            if self.retry_on_timeout {
                return EsError::Timeout {
                    host: self.host.clone(),
                    path: path.to_string(),
                };
            }
            // Not retried when the user turned retry_on_timeout off.
            return EsError::Status {
                status: 408,
                method: String::new(),
                path: path.to_string(),
                error_type: "timeout".into(),
                reason: "request timed out (elasticsearch.retry_on_timeout is false)".into(),
            };
        }
        EsError::Connection {
            host: self.host.clone(),
            message: root_cause(error),
        }
    }

    /// `request` then parse the body as JSON.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, EsError> {
        let response = self
            .request(method, path, query, body.map(Body::Json))
            .await?;
        response.json(path)
    }

    /// `GET /`.
    pub async fn info(&self) -> Result<Value, EsError> {
        let response = self.request_once(Method::Get, "/", &[], None).await?;
        response.json("/")
    }

    /// Waits until `GET /` answers (exponential backoff within `max_wait_duration`), then
    /// checks the version unless `ALLOW_ES_VERSION_MISMATCH=true`. Returns the info body.
    pub async fn wait_for_cluster(&self) -> Result<Value, EsError> {
        let budget = Duration::from_secs_f64(self.config.max_wait_duration);
        let initial = Duration::from_secs_f64(self.config.initial_backoff_duration.max(0.01));
        let params = RetryParams {
            multiplier: self.config.backoff_multiplier.max(1.0),
            // Close to the configured delays: they are the user's, not a crowd's.
            jitter: 0.2,
            max_elapsed: Some(budget),
            ..RetryParams::exponential(initial, Duration::from_secs(30), u32::MAX)
        };
        let answered = retry::retry(
            &params,
            || async { self.info().await.map_err(Starting) },
            |Starting(error), _, delay| {
                tracing::info!(host = %self.host, %error, retry_in_ms = delay.as_millis() as u64, "waiting for elasticsearch");
            },
            std::future::pending(),
        )
        .await;
        let info = match answered {
            Ok(info) => info,
            // Wrong credentials never fix themselves: say so now.
            Err(Starting(
                error @ EsError::Status {
                    status: 401 | 403, ..
                },
            )) => return Err(error),
            Err(Starting(error)) => {
                return Err(EsError::Unavailable {
                    host: self.host.clone(),
                    waited_secs: budget.as_secs_f64(),
                    last_error: error.to_string(),
                })
            }
        };
        let allow = std::env::var(ALLOW_VERSION_MISMATCH_ENV)
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        match check_version(&info) {
            Ok(()) => {}
            Err(error) if allow => {
                tracing::warn!(%error, "version check skipped (ALLOW_ES_VERSION_MISMATCH=true)")
            }
            Err(error) => return Err(error),
        }
        Ok(info)
    }

    /// `GET <index>/_doc/<id>` → `None` when the document or index is missing.
    pub async fn get_doc(&self, index: &str, id: &str) -> Result<Option<Value>, EsError> {
        let path = format!("/{}/_doc/{}", encode(index), encode(id));
        match self.json(Method::Get, &path, &[], None).await {
            Ok(doc) => Ok(Some(doc)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `POST <index>/_update/<id>` with a partial document, optionally guarded by
    /// `if_seq_no`/`if_primary_term`.
    pub async fn update_doc(
        &self,
        index: &str,
        id: &str,
        doc: Value,
        guard: Option<(u64, u64)>,
        refresh: bool,
    ) -> Result<Value, EsError> {
        let path = format!("/{}/_update/{}", encode(index), encode(id));
        let query = write_query(guard, refresh);
        self.json(
            Method::Post,
            &path,
            &query,
            Some(serde_json::json!({ "doc": doc })),
        )
        .await
    }

    /// `PUT <index>/_doc/<id>` (or `POST <index>/_doc` without id), optionally guarded.
    pub async fn index_doc(
        &self,
        index: &str,
        id: Option<&str>,
        doc: Value,
        guard: Option<(u64, u64)>,
        refresh: bool,
    ) -> Result<Value, EsError> {
        let (method, path) = match id {
            Some(id) => (
                Method::Put,
                format!("/{}/_doc/{}", encode(index), encode(id)),
            ),
            None => (Method::Post, format!("/{}/_doc", encode(index))),
        };
        let query = write_query(guard, refresh);
        self.json(method, &path, &query, Some(doc)).await
    }

    /// `POST <index>/_search` (hidden indices included).
    pub async fn search(&self, index: &str, body: Value) -> Result<Value, EsError> {
        let path = format!("/{}/_search", encode(index));
        self.json(
            Method::Post,
            &path,
            &[
                ("expand_wildcards", "all".to_string()),
                ("seq_no_primary_term", "true".to_string()),
            ],
            Some(body),
        )
        .await
    }

    /// `HEAD <index>`: whether an index or alias exists.
    pub async fn index_exists(&self, index: &str) -> Result<bool, EsError> {
        self.head_exists(&format!("/{}", encode(index))).await
    }

    /// `HEAD _index_template/<name>`: whether a composable index template exists.
    pub async fn index_template_exists(&self, name: &str) -> Result<bool, EsError> {
        self.head_exists(&format!("/_index_template/{}", encode(name)))
            .await
    }

    /// A `HEAD` request: 2xx is `true`, 404 is `false`, anything else an error.
    async fn head_exists(&self, path: &str) -> Result<bool, EsError> {
        match self.request(Method::Head, path, &[], None).await {
            Ok(_) => Ok(true),
            Err(EsError::NotFound { .. }) => Ok(false),
            Err(EsError::Status { status: 404, .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// `PUT <index>` with a body (settings, mappings, aliases); an existing index is fine.
    pub async fn create_index(&self, index: &str, body: Option<Value>) -> Result<bool, EsError> {
        let path = format!("/{}", encode(index));
        match self.json(Method::Put, &path, &[], body).await {
            Ok(_) => Ok(true),
            Err(EsError::Status { error_type, .. })
                if error_type == "resource_already_exists_exception" =>
            {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// `DELETE <index>`; a missing index is fine.
    pub async fn delete_index(&self, index: &str) -> Result<(), EsError> {
        let path = format!("/{}", encode(index));
        match self.json(Method::Delete, &path, &[], None).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `POST <index>/_refresh`.
    pub async fn refresh(&self, index: &str) -> Result<(), EsError> {
        let path = format!("/{}/_refresh", encode(index));
        self.json(
            Method::Post,
            &path,
            &[("ignore_unavailable", "true".into())],
            None,
        )
        .await
        .map(|_| ())
    }

    /// `GET <index>/_count` (0 for a missing index).
    pub async fn count(&self, index: &str) -> Result<u64, EsError> {
        let path = format!("/{}/_count", encode(index));
        let body = self
            .json(
                Method::Get,
                &path,
                &[("ignore_unavailable", "true".into())],
                None,
            )
            .await?;
        Ok(body["count"].as_u64().unwrap_or(0))
    }

    /// `POST <index>/_count` with a query body (`{"query": …}`): documents matching it.
    pub async fn count_matching(&self, index: &str, query: Value) -> Result<u64, EsError> {
        let path = format!("/{}/_count", encode(index));
        let body = self.json(Method::Post, &path, &[], Some(query)).await?;
        body["count"].as_u64().ok_or_else(|| EsError::Decode {
            path,
            message: "no `count` in the answer".into(),
        })
    }
}

/// Checks a `GET /` body: the major version must be [`COMPATIBLE_MAJOR`]; serverless passes.
pub fn check_version(info: &Value) -> Result<(), EsError> {
    let version = &info["version"];
    if version["build_flavor"].as_str() == Some("serverless") {
        return Ok(());
    }
    let number = version["number"].as_str().unwrap_or("unknown");
    let distribution = version["distribution"].as_str().unwrap_or("elasticsearch");
    let major = number.split('.').next().and_then(|m| m.parse::<u64>().ok());
    if distribution == "elasticsearch" && major == Some(COMPATIBLE_MAJOR) {
        return Ok(());
    }
    Err(EsError::VersionMismatch {
        found: if distribution == "elasticsearch" {
            number.to_string()
        } else {
            format!("{distribution} {number}")
        },
        needed: format!("Elasticsearch {COMPATIBLE_MAJOR}.x"),
    })
}

/// A failure while waiting for the cluster at start-up: anything may clear up within
/// `max_wait_duration` (a cluster starting, a proxy not yet routing), except rejected
/// credentials.
struct Starting(EsError);

impl Retryable for Starting {
    fn retry_kind(&self) -> RetryKind {
        match self.0 {
            EsError::Status {
                status: 401 | 403, ..
            } => RetryKind::Permanent,
            _ => RetryKind::Transient,
        }
    }
}

/// Query of a document write: optimistic-concurrency guard and refresh.
fn write_query(guard: Option<(u64, u64)>, refresh: bool) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some((seq_no, primary_term)) = guard {
        query.push(("if_seq_no", seq_no.to_string()));
        query.push(("if_primary_term", primary_term.to_string()));
    }
    if refresh {
        query.push(("refresh", "true".to_string()));
    }
    query
}

/// Percent-encodes one path segment.
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The URL without user info, for messages.
fn display_host(url: &Url) -> String {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.as_str().trim_end_matches('/').to_string()
}

/// The innermost cause of a transport error (connection refused, DNS failure, …): it names
/// what went wrong without echoing the URL.
fn root_cause(error: &elasticsearch::Error) -> String {
    let mut current: &dyn std::error::Error = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_check() {
        assert!(
            check_version(&json!({"version":{"number":"9.2.0","build_flavor":"default"}})).is_ok()
        );
        assert!(check_version(&json!({"version":{"number":"8.19.0"}})).is_err());
        assert!(
            check_version(&json!({"version":{"number":"0.0.0","build_flavor":"serverless"}}))
                .is_ok()
        );
        let osmem =
            check_version(&json!({"version":{"number":"3.8.0","distribution":"opensearch"}}))
                .unwrap_err();
        assert!(osmem.to_string().contains("opensearch 3.8.0"), "{osmem}");
        assert!(osmem.to_string().contains("ALLOW_ES_VERSION_MISMATCH=true"));
    }

    #[test]
    fn host_without_credentials() {
        let url = Url::parse("https://user:pa55@es.example:9243/").unwrap();
        assert_eq!(display_host(&url), "https://es.example:9243");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode(".elastic-connectors"), ".elastic-connectors");
    }
}
