//! Shared helpers of the es-shim integration tests: one shim per test binary in front of the
//! shared osmem, and a tiny JSON client.
#![allow(dead_code)]

use serde_json::Value;

pub fn url() -> String {
    es_shim::shared().url()
}

/// A unique lowercase name (connector ids, index names) for test isolation.
pub fn unique(prefix: &str) -> String {
    osmem::unique_name(prefix)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Sends a JSON request to the shim; returns status and parsed body (Null if empty).
pub async fn call(method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client().request(method, format!("{}{}", url(), path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
    };
    (status, value)
}

/// Sends a raw body with a content type.
pub async fn raw(
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let resp = client()
        .request(method, format!("{}{}", url(), path))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

/// Asserts an ES error answer of the given status and type; returns the reason.
#[track_caller]
pub fn assert_error(answer: &(u16, Value), status: u16, kind: &str) -> String {
    assert_eq!(answer.0, status, "unexpected answer {}", answer.1);
    assert_eq!(answer.1["status"], status, "{}", answer.1);
    assert_eq!(answer.1["error"]["type"], kind, "{}", answer.1);
    assert_eq!(
        answer.1["error"]["root_cause"][0]["type"], kind,
        "{}",
        answer.1
    );
    answer.1["error"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Creates a connector with a unique id and index name; returns (id, index_name).
pub async fn new_connector() -> (String, String) {
    let id = unique("conn");
    let index = unique("search-idx");
    let (status, body) = call(
        "PUT",
        &format!("/_connector/{id}"),
        Some(serde_json::json!({"index_name": index, "name": "Slack", "service_type": "slack", "language": "en"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (id, index)
}

/// Creates a job for a connector; returns its id.
pub async fn new_job(connector: &str, body: Value) -> String {
    let mut b = body;
    b["id"] = Value::String(connector.to_string());
    let (status, answer) = call("POST", "/_connector/_sync_job", Some(b)).await;
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().expect("job id").to_string()
}
