//! Sync engine benchmark: N synthetic Slack-like messages (~500 B each) through
//! `run_sync` into osmem-server (a separate process, so its CPU and memory are not ours).
//!
//! ```sh
//! cargo bench --bench sync_engine                    # 1,000,000 docs
//! cargo bench --bench sync_engine -- --docs 100000   # or SYNC_BENCH_DOCS=100000
//! ```
//! `--null-es` replaces osmem with an in-process stub that acknowledges every bulk item
//! without storing anything (its CPU and memory count against us: an upper bound), to
//! measure the engine alone at sizes osmem cannot hold on a loaded 2-core machine.
//!
//! Prints docs/s, this process's CPU seconds (getrusage, user + system), CPU µs per doc and
//! peak RSS (VmHWM). osmem ingests at roughly 5–6k docs/s on 2 cores, so the wall time is
//! osmem's; our CPU per doc and peak RSS are the figures that matter.

use async_trait::async_trait;
use connectors::config::{BulkConfig, ElasticsearchConfig};
use connectors::es::EsClient;
use connectors::sources::{DataSource, DocSender, SourceError};
use connectors::sync::{run_sync, JobKind, SyncOptions, SyncStats};
use serde_json::{Map, Value};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const WORDS: [&str; 16] = [
    "deploy",
    "the",
    "service",
    "rollback",
    "metrics",
    "looks",
    "good",
    "after",
    "incident",
    "review",
    "tomorrow",
    "please",
    "check",
    "dashboard",
    "latency",
    "errors",
];

/// Slack-like channel messages, generated on the fly (the source holds nothing).
struct SyntheticSlack {
    docs: u64,
}

impl SyntheticSlack {
    fn message(i: u64) -> (String, Map<String, Value>) {
        let channel = format!("C{:08}", i % 200);
        let ts = format!("{}.{:06}", 1_700_000_000 + i, i % 1_000_000);
        let mut text = String::with_capacity(260);
        let mut x = i.wrapping_mul(2_654_435_761);
        while text.len() < 240 {
            text.push_str(WORDS[(x % 16) as usize]);
            text.push(' ');
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        let mut body = Map::new();
        body.insert("type".into(), Value::from("message"));
        body.insert(
            "channel".into(),
            Value::from(format!("general-{}", i % 200)),
        );
        body.insert(
            "author".into(),
            Value::from(format!("User Number {}", i % 5000)),
        );
        body.insert("text".into(), Value::from(text));
        body.insert("ts".into(), Value::from(ts.clone()));
        body.insert("thread_ts".into(), Value::Null);
        body.insert("edited_ts".into(), Value::Null);
        body.insert("reply_count".into(), Value::from(i % 3));
        body.insert(
            "url".into(),
            Value::from(format!(
                "https://bench.slack.com/archives/{channel}/p{}",
                ts.replace('.', "")
            )),
        );
        body.insert(
            "_timestamp".into(),
            Value::from("2024-05-01T10:00:00+00:00"),
        );
        (format!("{channel}-{ts}"), body)
    }
}

#[async_trait]
impl DataSource for SyntheticSlack {
    async fn ping(&self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn get_docs(
        &self,
        sink: &DocSender,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        for i in 0..self.docs {
            if i % 1024 == 0 && cancel.is_cancelled() {
                return Err(SourceError::Cancelled);
            }
            let (id, body) = SyntheticSlack::message(i);
            sink.index(id, body).await?;
        }
        Ok(())
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn parse_docs() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--docs") {
        if let Some(n) = args
            .get(pos + 1)
            .and_then(|v| v.replace('_', "").parse().ok())
        {
            return n;
        }
    }
    std::env::var("SYNC_BENCH_DOCS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// A stand-in Elasticsearch that acknowledges everything and stores nothing.
async fn null_es() -> String {
    use axum::body::Bytes;
    use axum::http::{Method, Uri};
    async fn answer(method: Method, uri: Uri, body: Bytes) -> axum::response::Response {
        use axum::response::IntoResponse;
        let path = uri.path();
        let json = |v: Value| axum::Json(v).into_response();
        if path == "/_bulk" {
            // Kept cheap (no JSON trees): its CPU is counted against the engine.
            let mut out = String::with_capacity(32 + body.len() / 16);
            out.push_str("{\"errors\":false,\"items\":[");
            let mut first = true;
            for line in body.split(|&b| b == b'\n') {
                let op = if line.starts_with(b"{\"index\":{\"_index\"") {
                    "index"
                } else if line.starts_with(b"{\"update\":{\"_index\"") {
                    "update"
                } else if line.starts_with(b"{\"delete\":{\"_index\"") {
                    "delete"
                } else {
                    continue;
                };
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str("{\"");
                out.push_str(op);
                out.push_str("\":{\"status\":201}}");
            }
            out.push_str("]}");
            return ([("content-type", "application/json")], out).into_response();
        }
        if path.ends_with("/_search") {
            return json(serde_json::json!({"aggregations": {"max_marker": {"value": null}}}));
        }
        if path.ends_with("/_delete_by_query") {
            return json(serde_json::json!({"deleted": 0, "failures": []}));
        }
        if path.ends_with("/_count") {
            // Nothing is stored, so the mass-deletion guard sees an empty index.
            return json(serde_json::json!({"count": 0}));
        }
        if method == Method::HEAD {
            return axum::http::StatusCode::OK.into_response();
        }
        json(serde_json::json!({"acknowledged": true}))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(answer)).await;
    });
    url
}

fn main() {
    let docs = parse_docs();
    let use_null_es = std::env::args().any(|a| a == "--null-es");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = if use_null_es {
        None
    } else {
        Some(osmem::Osmem::start().expect("osmem-server (see ftest/osmem)"))
    };
    let url = match &server {
        Some(server) => server.url().to_string(),
        None => runtime.block_on(null_es()),
    };
    let (sample_id, sample_body) = SyntheticSlack::message(12_345);
    let sample_len = serde_json::to_vec(&sample_body).map_or(0, |v| v.len());
    println!(
        "sync_engine bench: {docs} docs (~{sample_len} B each, e.g. {sample_id}) into {} at {url}",
        if use_null_es {
            "a null Elasticsearch stub"
        } else {
            "osmem"
        }
    );
    // Calibration: what generating the synthetic documents alone costs (not the engine).
    let calibration_docs = docs.min(200_000);
    let cpu_at = cpu_seconds();
    for i in 0..calibration_docs {
        std::hint::black_box(SyntheticSlack::message(i));
    }
    let source_us_per_doc = (cpu_seconds() - cpu_at) * 1e6 / calibration_docs.max(1) as f64;
    let rss_before_kib = status_kib("VmRSS:");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        let es = EsClient::new(&ElasticsearchConfig {
            host: url.clone(),
            ..ElasticsearchConfig::default()
        })
        .expect("client");
        let options = SyncOptions {
            job_id: "bench".into(),
            bulk: BulkConfig {
                display_every: 1_000_000_000,
                ..BulkConfig::default()
            },
            ..SyncOptions::new("bench-sync-engine", JobKind::Full)
        };
        run_sync(
            &es,
            &SyntheticSlack { docs },
            options,
            SyncStats::new(),
            CancellationToken::new(),
        )
        .await
    });
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let outcome = outcome.expect("sync");
    let indexed = outcome.stats.indexed_document_count;
    assert_eq!(indexed, docs, "every document indexed");
    println!(
        "indexed:        {indexed} docs, {} MiB of NDJSON",
        outcome.stats.indexed_document_volume_mib()
    );
    println!("wall:           {wall:.1} s");
    println!("throughput:     {:.0} docs/s", indexed as f64 / wall);
    println!("cpu (process):  {cpu:.2} s (user+sys, getrusage)");
    let per_doc = cpu * 1e6 / indexed.max(1) as f64;
    let parts = if use_null_es {
        "synthetic source, engine, client, null-ES stub"
    } else {
        "synthetic source, engine, client"
    };
    println!("cpu per doc:    {per_doc:.2} µs (whole process: {parts})");
    println!(
        "  of which generating the synthetic docs: {source_us_per_doc:.2} µs; the rest: {:.2} µs",
        per_doc - source_us_per_doc
    );
    println!(
        "rss:            {:.1} MB at start, peak {:.1} MB (VmHWM)",
        rss_before_kib as f64 / 1024.0,
        status_kib("VmHWM:") as f64 / 1024.0
    );
}
