//! The shim's own JSON client for osmem, used by the endpoints the shim implements.
//!
//! Invariants:
//! - Any non-2xx answer becomes [`ShimError::Upstream`] carrying osmem's status and body, except
//!   where a caller asks for the raw status (`send` returns it) to map 404/409 itself.
//! - [`Upstream::modify`] is the only read-modify-write path: it reads `_seq_no`/`_primary_term`
//!   and writes with `if_seq_no`/`if_primary_term`, retrying on 409, so concurrent callers (other
//!   shim requests or the daemon writing the index directly) never lose each other's fields.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value};

use crate::error::{ShimError, ShimResult};

/// How many times a conflicting read-modify-write is retried before giving up with 409.
const MAX_CONFLICT_RETRIES: usize = 50;

#[derive(Clone)]
pub struct Upstream {
    base: String,
    client: reqwest::Client,
}

/// A document read with its concurrency-control numbers.
pub struct Doc {
    pub id: String,
    pub source: Map<String, Value>,
    pub seq_no: i64,
    pub primary_term: i64,
}

/// What a read-modify-write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    Updated,
    Noop,
}

impl WriteResult {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteResult::Updated => "updated",
            WriteResult::Noop => "noop",
        }
    }
}

impl Upstream {
    pub fn new(base: &str, client: reqwest::Client) -> Self {
        Upstream {
            base: base.trim_end_matches('/').to_string(),
            client,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a JSON request; returns status and parsed body (Null for empty bodies).
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> ShimResult<(StatusCode, Value)> {
        let url = format!("{}{}", self.base, path_and_query);
        let mut req = self.client.request(method, &url);
        if let Some(b) = body {
            let bytes = serde_json::to_vec(b)
                .map_err(|e| ShimError::Unreachable(format!("cannot encode request: {e}")))?;
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ShimError::Unreachable(format!("{url}: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ShimError::Unreachable(format!("{url}: {e}")))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ShimError::Unreachable(format!("{url}: answer is not JSON ({e}): {status}"))
            })?
        };
        Ok((status, value))
    }

    /// Like [`send`](Self::send) but any non-2xx status is an error relayed verbatim.
    pub async fn ok(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> ShimResult<Value> {
        let (status, value) = self.send(method, path_and_query, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(ShimError::Upstream {
                status,
                body: value,
            })
        }
    }

    /// Reads a document; `None` when the document or the index is missing.
    pub async fn get_doc(&self, index: &str, id: &str) -> ShimResult<Option<Doc>> {
        let path = format!("/{}/_doc/{}", index, encode(id));
        let (status, value) = self.send(Method::GET, &path, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ShimError::Upstream {
                status,
                body: value,
            });
        }
        Ok(Some(doc_from_hit(&value)))
    }

    /// Indexes a whole document (refreshing, as the connector services do). `op_type=create`
    /// when `create` is set. Returns the answer (`_id`, `result`, ...).
    pub async fn index_doc(
        &self,
        index: &str,
        id: Option<&str>,
        source: &Value,
        create: bool,
    ) -> ShimResult<Value> {
        let path = match id {
            Some(id) => {
                let op = if create { "&op_type=create" } else { "" };
                format!("/{}/_doc/{}?refresh=true{}", index, encode(id), op)
            }
            None => format!("/{index}/_doc?refresh=true"),
        };
        let method = if id.is_some() {
            Method::PUT
        } else {
            Method::POST
        };
        self.ok(method, &path, Some(source)).await
    }

    /// Read-modify-write of one document under optimistic concurrency. `f` receives the current
    /// source and edits it in place; it may fail (the failure is returned, nothing is written).
    /// `Ok(None)` when the document does not exist.
    pub async fn modify<F>(
        &self,
        index: &str,
        id: &str,
        mut f: F,
    ) -> ShimResult<Option<WriteResult>>
    where
        F: FnMut(&mut Map<String, Value>) -> ShimResult<()>,
    {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(doc) = self.get_doc(index, id).await? else {
                return Ok(None);
            };
            let mut source = doc.source.clone();
            f(&mut source)?;
            if source == doc.source {
                return Ok(Some(WriteResult::Noop));
            }
            let path = format!(
                "/{}/_doc/{}?refresh=true&if_seq_no={}&if_primary_term={}",
                index,
                encode(id),
                doc.seq_no,
                doc.primary_term
            );
            let (status, body) = self
                .send(Method::PUT, &path, Some(&Value::Object(source)))
                .await?;
            if status == StatusCode::CONFLICT {
                continue;
            }
            if !status.is_success() {
                return Err(ShimError::Upstream { status, body });
            }
            return Ok(Some(WriteResult::Updated));
        }
        Err(ShimError::new(
            StatusCode::CONFLICT,
            "version_conflict_engine_exception",
            format!("[{id}]: too many concurrent updates, gave up after {MAX_CONFLICT_RETRIES} attempts"),
        ))
    }

    /// Runs a search and returns `(total, hits as Doc)`.
    pub async fn search(&self, index: &str, body: &Value) -> ShimResult<Option<(u64, Vec<Doc>)>> {
        let path = format!("/{index}/_search?seq_no_primary_term=true&track_total_hits=true");
        let (status, value) = self.send(Method::POST, &path, Some(body)).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ShimError::Upstream {
                status,
                body: value,
            });
        }
        let total = value
            .pointer("/hits/total/value")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let hits = value
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(doc_from_hit).collect())
            .unwrap_or_default();
        Ok(Some((total, hits)))
    }
}

fn doc_from_hit(hit: &Value) -> Doc {
    Doc {
        id: hit["_id"].as_str().unwrap_or_default().to_string(),
        source: hit["_source"].as_object().cloned().unwrap_or_default(),
        seq_no: hit["_seq_no"].as_i64().unwrap_or(-2),
        primary_term: hit["_primary_term"].as_i64().unwrap_or(0),
    }
}

/// Percent-encodes a path segment (ids may hold any character).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded path segment; invalid escapes are kept literally.
pub fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            // Work on bytes: slicing the &str could split a multi-byte character.
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_round_trip() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(decode("a%20b%2Fc"), "a b/c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }
}
