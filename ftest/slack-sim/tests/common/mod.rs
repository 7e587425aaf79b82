//! Shared helpers for the simulator's integration tests: a started simulator
//! with a pinned clock and a thin reqwest client returning status, headers
//! and parsed JSON.
#![allow(dead_code)]

use reqwest::header::HeaderMap;
use serde_json::Value;
use slack_sim::{SimConfig, SimHandle, WorkspaceSpec};

/// Pinned `now` so data is identical across runs.
pub const NOW: i64 = 1_700_000_000;
pub const TOKEN: &str = "xoxb-sim-bot-token";

pub fn start() -> SimHandle {
    start_with(WorkspaceSpec::default())
}

pub fn start_with(spec: WorkspaceSpec) -> SimHandle {
    SimHandle::start(SimConfig {
        spec,
        now: Some(NOW),
        ..SimConfig::default()
    })
    .expect("simulator starts")
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn ok(&self) -> bool {
        self.json["ok"] == Value::Bool(true)
    }
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }
    pub fn next_cursor(&self) -> String {
        self.json["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub api: String,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    pub fn new(sim: &SimHandle) -> Client {
        Client {
            http: reqwest::Client::new(),
            api: sim.api_url(),
            base: sim.base_url(),
            token: Some(TOKEN.to_string()),
        }
    }

    pub fn with_token(sim: &SimHandle, token: Option<&str>) -> Client {
        Client {
            token: token.map(str::to_string),
            ..Client::new(sim)
        }
    }

    async fn finish(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    /// GET with properly encoded query parameters.
    pub async fn get(&self, method: &str, params: &[(&str, &str)]) -> Resp {
        let mut rb = self
            .http
            .get(format!("{}/{method}", self.api))
            .query(params);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        Self::finish(rb.send().await.expect("request")).await
    }

    /// GET with a raw, hand-built query string (as the Python connector does).
    pub async fn get_raw(&self, method: &str, query: &str) -> Resp {
        let mut rb = self.http.get(format!("{}/{method}?{query}", self.api));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        Self::finish(rb.send().await.expect("request")).await
    }

    pub async fn post_form(&self, method: &str, params: &[(&str, &str)]) -> Resp {
        let mut rb = self
            .http
            .post(format!("{}/{method}", self.api))
            .form(params);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        Self::finish(rb.send().await.expect("request")).await
    }

    pub async fn post_json(&self, method: &str, body: &Value) -> Resp {
        let mut rb = self.http.post(format!("{}/{method}", self.api)).json(body);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        Self::finish(rb.send().await.expect("request")).await
    }

    /// Control API call (`/_sim/...`).
    pub async fn sim(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        let mut rb = self
            .http
            .request(method, format!("{}/_sim/{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("control request");
        assert!(r.status().is_success(), "control {path}: {}", r.status());
        r.json().await.expect("control json")
    }

    /// All items of a cursor-paginated list method.
    pub async fn all(&self, method: &str, key: &str, params: &[(&str, &str)]) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut p: Vec<(&str, &str)> = params.to_vec();
            if !cursor.is_empty() {
                p.push(("cursor", &cursor));
            }
            let r = self.get(method, &p).await;
            assert!(r.ok(), "{method}: {}", r.text);
            out.extend(r.json[key].as_array().cloned().unwrap_or_default());
            cursor = r.next_cursor();
            if cursor.is_empty() {
                return out;
            }
        }
    }

    /// Public channels as the bot sees them.
    pub async fn channels(&self) -> Vec<Value> {
        self.all("conversations.list", "channels", &[("limit", "200")])
            .await
    }

    /// Every history message of a channel (cursor paging), newest first.
    pub async fn history(&self, channel: &str) -> Vec<Value> {
        self.all(
            "conversations.history",
            "messages",
            &[("channel", channel), ("limit", "999")],
        )
        .await
    }
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}
