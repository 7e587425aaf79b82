//! Ignored-by-default measurement: generates ≥1,000,000 messages and reports
//! generation time, memory and the serving rate of `conversations.history`
//! (limit 999, cursor paging, HTTP on loopback).
//!
//! `cargo test -p slack-sim --release --test perf -- --ignored serving_rate --nocapture`

use slack_sim::{SimConfig, SimHandle, WorkspaceSpec};
use std::time::Instant;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Light client-side parse: the benchmark measures the server, not a DOM.
#[derive(serde::Deserialize)]
struct Page {
    messages: Vec<serde::de::IgnoredAny>,
    response_metadata: Meta,
}

#[derive(serde::Deserialize)]
struct Meta {
    next_cursor: String,
}

async fn page_channel(http: &reqwest::Client, api: &str, channel: &str) -> (usize, usize) {
    let (mut n, mut bytes) = (0, 0);
    let mut cursor = String::new();
    loop {
        let mut q = vec![("channel", channel), ("limit", "999")];
        if !cursor.is_empty() {
            q.push(("cursor", cursor.as_str()));
        }
        let body = http
            .get(format!("{api}/conversations.history"))
            .bearer_auth("xoxb-sim-bot-token")
            .query(&q)
            .send()
            .await
            .expect("send")
            .bytes()
            .await
            .expect("body");
        bytes += body.len();
        let v: Page = serde_json::from_slice(&body).expect("json");
        n += v.messages.len();
        cursor = v.response_metadata.next_cursor;
        if cursor.is_empty() {
            return (n, bytes);
        }
    }
}

#[test]
#[ignore]
fn serving_rate() {
    let spec = WorkspaceSpec {
        users: 500,
        channels: 100,
        private_share: 0.0,
        archived_share: 0.0,
        bot_member_share: 1.0,
        messages_per_channel: 10_000,
        dms: 0,
        group_dms: 0,
        ..WorkspaceSpec::default()
    };
    let rss0 = rss_kb();
    let t = Instant::now();
    let sim = SimHandle::start(SimConfig {
        spec,
        ..SimConfig::default()
    })
    .expect("start");
    let gen = t.elapsed();
    let rss1 = rss_kb();
    let ws = sim.workspace();
    println!(
        "generated {} messages ({} top-level, {} replies) in {:.2?}; RSS +{} MB ({:.0} B/message)",
        ws.messages,
        ws.messages - ws.replies,
        ws.replies,
        gen,
        (rss1 - rss0) / 1024,
        (rss1 - rss0) as f64 * 1024.0 / ws.messages as f64
    );
    assert!(ws.messages >= 1_000_000);
    let t = Instant::now();
    let exp = sim.expected(&Default::default());
    println!(
        "expected(default) = {} docs in {:.2?}",
        exp.total,
        t.elapsed()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let http = reqwest::Client::new();
        let api = sim.api_url();
        let chans: Vec<String> = {
            let v: serde_json::Value = http
                .get(format!("{api}/conversations.list?limit=1000"))
                .bearer_auth("xoxb-sim-bot-token")
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            v["channels"]
                .as_array()
                .expect("channels")
                .iter()
                .map(|c| c["id"].as_str().unwrap_or("").to_string())
                .collect()
        };
        // One client, sequential (how a connector pages one channel at a time).
        let t = Instant::now();
        let (mut n, mut bytes) = (0, 0);
        for c in &chans {
            let (a, b) = page_channel(&http, &api, c).await;
            n += a;
            bytes += b;
        }
        let dt = t.elapsed().as_secs_f64();
        println!(
            "sequential: {n} history messages in {dt:.2} s = {:.0} msg/s, {:.1} MB/s",
            n as f64 / dt,
            bytes as f64 / dt / 1e6
        );
        // Four concurrent pagers.
        let t = Instant::now();
        let mut tasks = Vec::new();
        for chunk in chans.chunks(chans.len().div_ceil(4)) {
            let (http, api, chunk) = (http.clone(), api.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                for c in &chunk {
                    n += page_channel(&http, &api, c).await.0;
                }
                n
            }));
        }
        let mut n4 = 0;
        for t in tasks {
            n4 += t.await.expect("task");
        }
        let dt = t.elapsed().as_secs_f64();
        println!(
            "4 concurrent: {n4} messages in {dt:.2} s = {:.0} msg/s",
            n4 as f64 / dt
        );
    });
}

/// In-process render + serialize cost of history views (no HTTP).
#[test]
#[ignore]
fn render_rate() {
    use slack_sim::model::Workspace;
    use slack_sim::render::{msg_view, View};
    let spec = WorkspaceSpec {
        channels: 10,
        messages_per_channel: 20_000,
        bot_member_share: 1.0,
        ..WorkspaceSpec::default()
    };
    let ws = Workspace::generate(&spec, 1_700_000_000);
    let t = Instant::now();
    let mut n = 0;
    let mut bytes = 0;
    for ch in &ws.channels {
        for page in ch.top.chunks(999) {
            let v: Vec<_> = page
                .iter()
                .map(|m| msg_view(&ws, ch, m, View::History))
                .collect();
            bytes += serde_json::to_vec(&v).expect("json").len();
            n += page.len();
        }
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "render+serialize: {n} messages in {dt:.2} s = {:.0} msg/s, {:.0} B/msg",
        n as f64 / dt,
        bytes as f64 / n as f64
    );
}
