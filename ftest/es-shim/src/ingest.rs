//! Applying ingest pipelines to `_bulk` and single-document writes before osmem sees them.
//!
//! Invariants:
//! - A bulk body is walked line by line over the received bytes; only action lines are parsed,
//!   and a source line is parsed only when a pipeline applies to its item. Bodies that need no
//!   change are forwarded as the original bytes (no copy).
//! - Items whose pipeline is unknown or fails are not sent to osmem; their ES-shaped error is
//!   spliced into osmem's `items` at the original position, and `errors` becomes true, exactly
//!   what ES answers. Items dropped by a `drop` processor answer `result: noop`.
//! - The `pipeline` query parameter and per-item `pipeline` keys are removed before forwarding
//!   (osmem would reject them); `_none` means "no pipeline", as in ES.
//! - Anything malformed (bad action line, missing final newline) is forwarded untouched so that
//!   osmem produces ES's own error for it.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::error::{ShimError, ShimResult};
use crate::pipeline::{Outcome, Pipelines};
use crate::proxy::{forward, OutBody};
use crate::upstream::Upstream;

/// Removes one parameter from a raw query string; returns the rebuilt `?query` (or "").
pub fn strip_param(raw_query: Option<&str>, name: &str) -> String {
    let Some(q) = raw_query else {
        return String::new();
    };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some(name))
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

/// The pipeline a request names, `None` for absent or `_none`.
fn effective(name: Option<&str>) -> Option<&str> {
    name.filter(|p| !p.is_empty() && *p != "_none")
}

/// An item that did not go to osmem, with what to answer for it.
struct Skipped {
    position: usize,
    op: String,
    item: Value,
}

/// Handles `_bulk` when a pipeline may be involved.
#[allow(clippy::too_many_arguments)]
pub async fn bulk(
    upstream: &Upstream,
    pipelines: &Pipelines,
    method: Method,
    path: &str,
    raw_query: Option<&str>,
    query_pipeline: Option<&str>,
    default_index: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> ShimResult<Response<Body>> {
    let query_pipeline = effective(query_pipeline);
    let plan = if body.is_empty() || !body.ends_with(b"\n") {
        None
    } else {
        rewrite(&body, pipelines, query_pipeline, default_index)
    };
    let Some(plan) = plan else {
        // Malformed or no pipeline anywhere: let osmem answer (and fail unknown pipelines).
        let pq = format!(
            "{path}{}",
            raw_query.map(|q| format!("?{q}")).unwrap_or_default()
        );
        return forward(upstream, method, &pq, headers, OutBody::Bytes(body)).await;
    };
    let path_and_query = format!("{path}{}", strip_param(raw_query, "pipeline"));
    if plan.kept == 0 {
        // Every item failed or was dropped: ES answers without indexing anything.
        let items = plan
            .skipped
            .into_iter()
            .map(|s| json!({ s.op: s.item }))
            .collect::<Vec<_>>();
        let errors = items.iter().any(|i| {
            i.as_object()
                .and_then(|o| o.values().next())
                .is_some_and(|v| v.get("error").is_some())
        });
        let body = json!({"took": 0, "errors": errors, "items": items});
        return Ok(crate::router::json_response(StatusCode::OK, &body));
    }
    let out = match plan.body {
        Some(b) => Bytes::from(b),
        None => body,
    };
    let resp = forward(
        upstream,
        method,
        &path_and_query,
        headers,
        OutBody::Bytes(out),
    )
    .await?;
    if plan.skipped.is_empty() || !resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .map_err(|e| ShimError::Unreachable(format!("reading bulk answer: {e}")))?;
    let Ok(mut answer) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(crate::router::bytes_response(status, bytes));
    };
    if let Some(items) = answer.get_mut("items").and_then(Value::as_array_mut) {
        let mut any_error = false;
        for s in plan.skipped {
            any_error |= s.item.get("error").is_some();
            let at = s.position.min(items.len());
            items.insert(at, json!({ s.op: s.item }));
        }
        if any_error {
            answer["errors"] = Value::Bool(true);
        }
    }
    Ok(crate::router::json_response(status, &answer))
}

struct Plan {
    /// The rewritten body; `None` when the original bytes can go as they are.
    body: Option<Vec<u8>>,
    kept: usize,
    skipped: Vec<Skipped>,
}

/// Walks the bulk body. `None` when no rewriting is needed or the body is malformed.
fn rewrite(
    body: &[u8],
    pipelines: &Pipelines,
    query_pipeline: Option<&str>,
    default_index: Option<&str>,
) -> Option<Plan> {
    // Fast path: no pipeline in the query and none named in the body at all.
    if query_pipeline.is_none() && !contains(body, b"\"pipeline\"") {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut skipped = Vec::new();
    let mut kept = 0;
    let mut lines = body.split(|b| *b == b'\n').peekable();
    let mut position = 0;
    while let Some(line) = lines.next() {
        if line.iter().all(u8::is_ascii_whitespace) {
            if lines.peek().is_none() {
                break; // the empty piece after the final newline
            }
            continue;
        }
        let Ok(action) = serde_json::from_slice::<Map<String, Value>>(line) else {
            return None;
        };
        let (op, meta) = action.iter().next()?;
        let op = op.clone();
        let mut meta = meta.as_object()?.clone();
        let has_source = op != "delete";
        let source_line: Option<&[u8]> = if has_source {
            Some(lines.next()?)
        } else {
            None
        };
        let item_pipeline = match meta.get("pipeline") {
            Some(Value::String(p)) => effective(Some(p.as_str())).map(String::from),
            Some(_) => None,
            None => query_pipeline.map(String::from),
        };
        let had_key = meta.remove("pipeline").is_some();
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)
            .unwrap_or_default()
            .to_string();
        let id = meta.get("_id").cloned().unwrap_or(Value::Null);
        let this = position;
        position += 1;

        let applies = matches!(op.as_str(), "index" | "create") && item_pipeline.is_some();
        if !applies {
            if had_key {
                push_json(&mut out, &json!({ op.clone(): meta }));
            } else {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            if let Some(src) = source_line {
                out.extend_from_slice(src);
                out.push(b'\n');
            }
            kept += 1;
            continue;
        }
        let pipeline = item_pipeline.unwrap_or_default();
        let src = source_line.unwrap_or_default();
        let mut doc = match serde_json::from_slice::<Map<String, Value>>(src) {
            Ok(d) => d,
            Err(_) => {
                // Let osmem report the broken source line as ES would.
                push_json(&mut out, &json!({ op.clone(): meta }));
                out.extend_from_slice(src);
                out.push(b'\n');
                kept += 1;
                continue;
            }
        };
        match pipelines.run(&pipeline, &mut doc) {
            Ok(Outcome::Keep) => {
                push_json(&mut out, &json!({ op.clone(): meta }));
                push_json(&mut out, &Value::Object(doc));
                kept += 1;
            }
            Ok(Outcome::Dropped) => skipped.push(Skipped {
                position: this,
                op,
                item: json!({"_index": index, "_id": id, "_version": -3, "result": "noop",
                             "_shards": {"total": 0, "successful": 0, "failed": 0}, "status": 200}),
            }),
            Err(failure) => {
                let err = failure.into_error();
                skipped.push(Skipped {
                    position: this,
                    op,
                    item: json!({"_index": index, "_id": id, "status": 400, "error": err.item_error()}),
                });
            }
        }
    }
    Some(Plan {
        body: Some(out),
        kept,
        skipped,
    })
}

fn push_json(out: &mut Vec<u8>, v: &Value) {
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
    out.push(b'\n');
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Handles `PUT|POST /{index}/_doc[/{id}]` and `/{index}/_create/{id}` with `?pipeline=`.
#[allow(clippy::too_many_arguments)]
pub async fn single(
    upstream: &Upstream,
    pipelines: &Pipelines,
    method: Method,
    path: &str,
    raw_query: Option<&str>,
    pipeline: &str,
    index: &str,
    id: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> ShimResult<Response<Body>> {
    let mut doc: Map<String, Value> = serde_json::from_slice(&body).map_err(|e| {
        ShimError::new(
            StatusCode::BAD_REQUEST,
            "mapper_parsing_exception",
            format!("failed to parse: {e}"),
        )
    })?;
    match pipelines.run(pipeline, &mut doc) {
        Ok(Outcome::Keep) => {}
        Ok(Outcome::Dropped) => {
            let answer = json!({"_index": index, "_id": id, "_version": -3, "result": "noop",
                                "_shards": {"total": 0, "successful": 0, "failed": 0}});
            return Ok(crate::router::json_response(StatusCode::OK, &answer));
        }
        Err(failure) => return Err(failure.into_error()),
    }
    let out = serde_json::to_vec(&doc)
        .map_err(|e| ShimError::Unreachable(format!("cannot encode document: {e}")))?;
    let path_and_query = format!("{path}{}", strip_param(raw_query, "pipeline"));
    forward(
        upstream,
        method,
        &path_and_query,
        headers,
        OutBody::Bytes(Bytes::from(out)),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_the_named_parameter() {
        assert_eq!(
            strip_param(Some("pipeline=x&refresh=true"), "pipeline"),
            "?refresh=true"
        );
        assert_eq!(strip_param(Some("pipeline=x"), "pipeline"), "");
        assert_eq!(strip_param(None, "pipeline"), "");
    }

    #[test]
    fn bulk_rewrite_applies_and_skips() {
        let p = Pipelines::default();
        p.put(
            "strip",
            json!({"processors": [{"remove": {"field": "junk"}}]}),
        )
        .unwrap();
        let body = concat!(
            "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"junk\":1,\"k\":1}\n",
            "{\"delete\":{\"_index\":\"a\",\"_id\":\"2\"}}\n",
            "{\"index\":{\"_index\":\"a\",\"_id\":\"3\"}}\n{\"k\":3}\n",
            "{\"index\":{\"_index\":\"a\",\"_id\":\"4\",\"pipeline\":\"_none\"}}\n{\"junk\":4}\n",
        );
        let plan = rewrite(body.as_bytes(), &p, Some("strip"), None).unwrap();
        let text = String::from_utf8(plan.body.unwrap()).unwrap();
        assert_eq!(plan.kept, 3);
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].position, 2);
        assert!(text.contains("{\"k\":1}\n"));
        assert!(text.contains("{\"junk\":4}\n"));
        assert!(!text.contains("pipeline"));
    }

    #[test]
    fn bulk_without_pipelines_is_untouched() {
        let p = Pipelines::default();
        let body = b"{\"index\":{\"_index\":\"a\"}}\n{\"x\":1}\n";
        assert!(rewrite(body, &p, None, None).is_none());
    }
}
