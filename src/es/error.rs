//! `es::Error`: every way an Elasticsearch call fails, typed.
//!
//! The `elasticsearch` crate returns `Ok` for 4xx/5xx responses; [`super::EsClient`] turns
//! every non-2xx into one of these. Retryability is a property of the error
//! ([`crate::retry::Retryable`]): timeouts, connection errors and 500/502/503/504 are
//! transient, 429 is throttling (the cluster pacing us); other statuses and 409 are
//! permanent. Messages never contain credentials: transport errors are described by their
//! root cause, not by the client's own text (which may include the URL).

use crate::retry::{RetryKind, Retryable};

/// An Elasticsearch call failure.
#[derive(Debug, thiserror::Error)]
pub enum EsError {
    /// No response: connection refused, DNS, TLS, reset.
    #[error("cannot reach Elasticsearch at {host}: {message}")]
    Connection {
        /// The node, without credentials.
        host: String,
        /// Root cause.
        message: String,
    },
    /// The request timed out.
    #[error("request to Elasticsearch at {host} timed out ({path})")]
    Timeout {
        /// The node, without credentials.
        host: String,
        /// The request path.
        path: String,
    },
    /// Optimistic concurrency lost (409).
    #[error("version conflict on {path}: {reason}")]
    VersionConflict {
        /// The request path.
        path: String,
        /// Elasticsearch's reason.
        reason: String,
    },
    /// 404 with an Elasticsearch error body (missing index, document, connector).
    #[error("not found: {path}: {error_type}: {reason}")]
    NotFound {
        /// The request path.
        path: String,
        /// Elasticsearch's error type.
        error_type: String,
        /// Elasticsearch's reason.
        reason: String,
    },
    /// Any other non-2xx status.
    #[error("Elasticsearch answered {status} to {method} {path}: {error_type}: {reason}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The request method.
        method: String,
        /// The request path.
        path: String,
        /// Elasticsearch's error type (or `unknown`).
        error_type: String,
        /// Elasticsearch's reason (or the start of the body).
        reason: String,
    },
    /// A 2xx body that is not the JSON we expected.
    #[error("unexpected response from Elasticsearch to {path}: {message}")]
    Decode {
        /// The request path.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The client could not be built from the configuration.
    #[error("cannot configure the Elasticsearch client: {0}")]
    Config(String),
    /// The cluster did not come up in time.
    #[error("Elasticsearch at {host} is not reachable after waiting {waited_secs:.0} s (elasticsearch.max_wait_duration): {last_error}; check elasticsearch.host and that the cluster is running")]
    Unavailable {
        /// The node, without credentials.
        host: String,
        /// Seconds waited.
        waited_secs: f64,
        /// The last failure.
        last_error: String,
    },
    /// The cluster's version is not one this service works with.
    #[error("Elasticsearch {found} is not compatible with this connector service (needs {needed}); upgrade the cluster, or set ALLOW_ES_VERSION_MISMATCH=true to skip this check")]
    VersionMismatch {
        /// Version reported by the cluster.
        found: String,
        /// What we need.
        needed: String,
    },
}

impl EsError {
    /// HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            EsError::VersionConflict { .. } => Some(409),
            EsError::NotFound { .. } => Some(404),
            EsError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for 404s.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EsError::NotFound { .. })
    }

    /// True for 409s.
    pub fn is_version_conflict(&self) -> bool {
        matches!(self, EsError::VersionConflict { .. })
    }

    /// The Elasticsearch error type, when there was one.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            EsError::NotFound { error_type, .. } | EsError::Status { error_type, .. } => {
                Some(error_type)
            }
            EsError::VersionConflict { .. } => Some("version_conflict_engine_exception"),
            _ => None,
        }
    }
}

/// What a response status says about retrying: 429 is the cluster pacing us, 500/502/503/504
/// transient trouble, anything else permanent.
pub fn status_retry_kind(status: u16) -> RetryKind {
    match status {
        429 => RetryKind::Throttled,
        500 | 502 | 503 | 504 => RetryKind::Transient,
        _ => RetryKind::Permanent,
    }
}

impl Retryable for EsError {
    fn retry_kind(&self) -> RetryKind {
        match self {
            EsError::Connection { .. } | EsError::Timeout { .. } => RetryKind::Transient,
            EsError::Status { status, .. } => status_retry_kind(*status),
            _ => RetryKind::Permanent,
        }
    }
}

/// Builds the typed error for a non-2xx response from its status and body.
pub fn from_response(method: &str, path: &str, status: u16, body: &[u8]) -> EsError {
    let (error_type, reason) = parse_error_body(body);
    match status {
        409 => EsError::VersionConflict {
            path: path.to_string(),
            reason,
        },
        404 => EsError::NotFound {
            path: path.to_string(),
            error_type,
            reason,
        },
        _ => EsError::Status {
            status,
            method: method.to_string(),
            path: path.to_string(),
            error_type,
            reason,
        },
    }
}

/// Extracts `error.type` and `error.reason` (or a plain-text body) for messages.
pub fn parse_error_body(body: &[u8]) -> (String, String) {
    let text_start = || {
        let text = String::from_utf8_lossy(body);
        let trimmed: String = text.trim().chars().take(300).collect();
        if trimmed.is_empty() {
            "(empty body)".to_string()
        } else {
            trimmed
        }
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ("unknown".into(), text_start());
    };
    match &value["error"] {
        serde_json::Value::Object(error) => {
            let error_type = error
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("unknown")
                .to_string();
            let mut reason = error
                .get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or("")
                .to_string();
            if let Some(cause) = error.get("caused_by").and_then(|c| c["reason"].as_str()) {
                reason = format!("{reason} (caused by: {cause})");
            }
            (error_type, reason)
        }
        serde_json::Value::String(message) => ("unknown".into(), message.clone()),
        _ if value.get("found") == Some(&serde_json::Value::Bool(false)) => {
            ("not_found".into(), "document not found".into())
        }
        _ if value.get("result").and_then(|r| r.as_str()) == Some("not_found") => {
            ("not_found".into(), "document not found".into())
        }
        _ => ("unknown".into(), text_start()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        let body = br#"{"error":{"type":"version_conflict_engine_exception","reason":"[x]: version conflict"},"status":409}"#;
        let conflict = from_response("POST", "/i/_update/x", 409, body);
        assert!(conflict.is_version_conflict());
        assert!(!conflict.is_retryable());
        assert!(conflict.to_string().contains("version conflict"));
        for status in [429, 500, 502, 503, 504] {
            assert!(
                from_response("POST", "/_bulk", status, b"").is_retryable(),
                "{status}"
            );
        }
        assert_eq!(
            from_response("POST", "/_bulk", 429, b"").retry_kind(),
            RetryKind::Throttled
        );
        for status in [400, 401, 403, 501] {
            assert!(
                !from_response("POST", "/_bulk", status, b"").is_retryable(),
                "{status}"
            );
        }
        let missing = from_response(
            "GET",
            "/i/_doc/x",
            404,
            br#"{"_index":"i","_id":"x","found":false}"#,
        );
        assert!(missing.is_not_found());
    }

    #[test]
    fn error_body_reason_and_cause() {
        let body = br#"{"error":{"type":"mapper_parsing_exception","reason":"failed to parse","caused_by":{"type":"x","reason":"bad number"}}}"#;
        let (t, r) = parse_error_body(body);
        assert_eq!(t, "mapper_parsing_exception");
        assert_eq!(r, "failed to parse (caused by: bad number)");
        assert_eq!(
            parse_error_body(b"<html>gateway</html>").1,
            "<html>gateway</html>"
        );
    }
}
