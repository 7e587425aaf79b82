//! Sync engine against the local test Elasticsearch (osmem-server), with a synthetic
//! data source, and — for item-level 429s, which osmem never produces — a tiny proxy in
//! front of osmem that answers some bulk items with 429 the first time it sees them.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::source::{Shape, TestSource};
use connectors::config::{BulkConfig, ElasticsearchConfig};
use connectors::es::EsClient;
use connectors::retry::RetryParams;
use connectors::sources::{DocOp, Document};
use connectors::sync::{run_sync, JobKind, SyncError, SyncOptions, SyncOutcome, SyncStats};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- helpers

fn client(url: &str) -> EsClient {
    EsClient::new(&ElasticsearchConfig {
        host: url.to_string(),
        request_timeout: 60.0,
        ..ElasticsearchConfig::default()
    })
    .expect("client")
    .with_retry(RetryParams::for_test())
}

fn osmem_client() -> EsClient {
    client(osmem::shared().url())
}

/// A fresh index (name from `prefix`) holding `count` messages from a first full sync.
async fn seeded_index(prefix: &str, count: usize) -> (EsClient, String) {
    let es = osmem_client();
    let index = osmem::unique_name(prefix);
    sync(
        &es,
        &TestSource::messages(count),
        options(&index, JobKind::Full),
    )
    .await
    .expect("first sync");
    (es, index)
}

fn bulk_config() -> BulkConfig {
    BulkConfig {
        retry_interval: 0.005,
        max_retries: 3,
        display_every: 50_000,
        ..BulkConfig::default()
    }
}

fn options(index: &str, kind: JobKind) -> SyncOptions {
    SyncOptions {
        bulk: bulk_config(),
        ..SyncOptions::new(index, kind)
    }
}

async fn sync(
    es: &EsClient,
    source: &dyn connectors::sources::DataSource,
    options: SyncOptions,
) -> Result<SyncOutcome, SyncError> {
    common::sync_once(es, source, options).await
}

async fn count(es: &EsClient, index: &str) -> u64 {
    es.refresh(index).await.expect("refresh");
    es.count(index).await.expect("count")
}

async fn exists(es: &EsClient, index: &str, id: &str) -> bool {
    es.get_doc(index, id).await.expect("get").is_some()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_of_100k_then_a_resync_without_1k_deletes_exactly_those() {
    let es = osmem_client();
    let index = osmem::unique_name("sync-100k");
    let started = Instant::now();
    let mut source = TestSource::messages(100_000);
    source.shape = Shape::Lean;
    let first = sync(&es, &source, options(&index, JobKind::Full))
        .await
        .expect("first sync");
    let first_secs = started.elapsed().as_secs_f64();
    assert_eq!(first.stats.indexed_document_count, 100_000);
    assert_eq!(first.stats.deleted_document_count, 0);
    assert_eq!(first.stats.failed_document_count, 0);
    assert!(first.stats.indexed_document_volume_bytes > 100_000 * 100);
    assert_eq!(count(&es, &index).await, 100_000);

    // The second full sync no longer sees 1,000 messages.
    let mut second_source = TestSource::messages(100_000);
    second_source.shape = Shape::Lean;
    second_source.skip = (0..100_000).step_by(100).collect();
    let second = sync(&es, &second_source, options(&index, JobKind::Full))
        .await
        .expect("second sync");
    assert_eq!(second.stats.indexed_document_count, 99_000);
    assert_eq!(second.stats.deleted_document_count, 1_000);
    assert_eq!(count(&es, &index).await, 99_000);
    assert!(!exists(&es, &index, "M0").await);
    assert!(!exists(&es, &index, "M99900").await);
    assert!(exists(&es, &index, "M1").await);
    eprintln!(
        "100k full sync: {first_secs:.1} s ({:.0} docs/s); both syncs: {:.1} s",
        100_000.0 / first_secs,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_halfway_ends_in_error_and_deletes_nothing() {
    let (es, index) = seeded_index("sync-fail", 2_000).await;
    assert_eq!(count(&es, &index).await, 2_000);

    // A later sync that would drop half the docs fails after 500 of them.
    let mut failing = TestSource::messages(2_000);
    failing.skip = (1_000..2_000).collect();
    failing.fail_after = Some(500);
    let stats = SyncStats::new();
    let error = run_sync(
        &es,
        &failing,
        options(&index, JobKind::Full),
        stats.clone(),
        CancellationToken::new(),
    )
    .await
    .expect_err("the sync must fail");
    assert!(matches!(error, SyncError::Source(_)), "{error:?}");
    assert!(error.to_string().contains("simulated outage"), "{error}");
    // What was fetched was indexed, nothing was deleted, docs it never reached survive.
    assert_eq!(stats.snapshot().indexed_document_count, 500);
    assert_eq!(stats.snapshot().deleted_document_count, 0);
    assert_eq!(count(&es, &index).await, 2_000);
    assert!(exists(&es, &index, "M1999").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mass_deletion_guard_keeps_the_index_when_a_sync_sees_too_little() {
    let (es, index) = seeded_index("sync-guard", 1_000).await;

    // A source that yields nothing after a good sync: never all of a non-empty index.
    let stats = SyncStats::new();
    let error = run_sync(
        &es,
        &TestSource::messages(0),
        options(&index, JobKind::Full),
        stats.clone(),
        CancellationToken::new(),
    )
    .await
    .expect_err("the guard refuses the sweep");
    assert!(matches!(error, SyncError::DeletionRefused(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("would delete all 1000 documents"), "{text}");
    assert!(
        text.contains("`service.max_deletion_ratio` (0.5)"),
        "{text}"
    );
    assert_eq!(stats.snapshot().deleted_document_count, 0);
    assert_eq!(count(&es, &index).await, 1_000);

    // A source that yields 30% of the index: 70% would go, more than half.
    let mut partial = TestSource::messages(1_000);
    partial.skip = (300..1_000).collect();
    let error = sync(&es, &partial, options(&index, JobKind::Full))
        .await
        .expect_err("the guard refuses the sweep");
    let text = error.to_string();
    assert!(
        text.contains("would delete 700 of the 1000 documents of the index (70.0%)"),
        "{text}"
    );
    assert!(text.contains("every document was kept"), "{text}");
    assert_eq!(count(&es, &index).await, 1_000);
    assert!(exists(&es, &index, "M999").await);

    // The operator says the loss is real: the sweep runs.
    let mut allowed = options(&index, JobKind::Full);
    allowed.max_deletion_ratio = 1.0;
    let outcome = sync(&es, &partial, allowed)
        .await
        .expect("the sweep is allowed");
    assert_eq!(outcome.stats.deleted_document_count, 700);
    assert_eq!(count(&es, &index).await, 300);
    assert!(!exists(&es, &index, "M999").await);
    assert!(exists(&es, &index, "M299").await);
}

/// A proxy in front of osmem that answers every item whose id ends in `3` or `7` with
/// 429 the first time it sees it, and forwards everything else.
struct RejectingProxy {
    upstream: String,
    http: reqwest::Client,
    seen: Mutex<HashSet<String>>,
    rejected: AtomicU64,
    bulk_requests: AtomicU64,
}

async fn proxy(
    State(proxy): State<Arc<RejectingProxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    if uri.path() == "/_bulk" {
        return proxy_bulk(&proxy, &path_and_query, body).await;
    }
    let mut request = proxy
        .http
        .request(method, format!("{}{}", proxy.upstream, path_and_query))
        .body(body);
    if let Some(content_type) = headers.get("content-type") {
        request = request.header("content-type", content_type.as_bytes());
    }
    forward(request).await
}

async fn forward(request: reqwest::RequestBuilder) -> Response {
    match request.send().await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = response.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/json")], body).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn proxy_bulk(proxy: &RejectingProxy, path_and_query: &str, body: Bytes) -> Response {
    proxy.bulk_requests.fetch_add(1, Ordering::Relaxed);
    let text = String::from_utf8_lossy(&body).to_string();
    let mut lines = text.lines();
    // Per item: Some(forwarded) or None (answered 429 here).
    let mut plan: Vec<bool> = Vec::new();
    let mut forwarded = String::new();
    while let Some(action) = lines.next() {
        let parsed: Value = serde_json::from_str(action).unwrap_or(Value::Null);
        let (op, meta) = parsed
            .as_object()
            .and_then(|o| o.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_default();
        let source = if op == "delete" { None } else { lines.next() };
        let id = meta["_id"].as_str().unwrap_or_default().to_string();
        let reject = (id.ends_with('3') || id.ends_with('7'))
            && proxy.seen.lock().unwrap().insert(id.clone());
        if reject {
            proxy.rejected.fetch_add(1, Ordering::Relaxed);
            plan.push(false);
            continue;
        }
        plan.push(true);
        forwarded.push_str(action);
        forwarded.push('\n');
        if let Some(source) = source {
            forwarded.push_str(source);
            forwarded.push('\n');
        }
    }
    let mut upstream_items = Vec::new();
    if plan.iter().any(|&f| f) {
        let response = proxy
            .http
            .post(format!("{}{}", proxy.upstream, path_and_query))
            .header("content-type", "application/x-ndjson")
            .body(forwarded)
            .send()
            .await;
        let Ok(response) = response else {
            return (StatusCode::BAD_GATEWAY, "upstream failed").into_response();
        };
        let value: Value = response.json().await.unwrap_or(Value::Null);
        upstream_items = value["items"].as_array().cloned().unwrap_or_default();
    }
    let mut upstream = upstream_items.into_iter();
    let items: Vec<Value> = plan
        .iter()
        .map(|&f| {
            if f {
                upstream.next().unwrap_or(Value::Null)
            } else {
                json!({"index": {"status": 429, "error": {
                    "type": "es_rejected_execution_exception",
                    "reason": "rejected execution (test proxy)"}}})
            }
        })
        .collect();
    axum::Json(json!({"errors": true, "items": items})).into_response()
}

async fn start_proxy(upstream: &str) -> (String, Arc<RejectingProxy>) {
    let state = Arc::new(RejectingProxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        http: reqwest::Client::new(),
        seen: Mutex::new(HashSet::new()),
        rejected: AtomicU64::new(0),
        bulk_requests: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .fallback(proxy)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_items_answered_429_are_retried_and_land() {
    let (url, state) = start_proxy(osmem::shared().url()).await;
    let es = client(&url);
    let index = osmem::unique_name("sync-429");
    // Batches of 250 documents (500 lines), whatever the default: twelve batches, each
    // with rejected items to resend.
    let mut opts = options(&index, JobKind::Full);
    opts.bulk.chunk_size = 500;
    let outcome = sync(&es, &TestSource::messages(3_000), opts)
        .await
        .expect("sync");
    let rejected = state.rejected.load(Ordering::Relaxed);
    assert_eq!(rejected, 600, "ids ending in 3 or 7 were rejected once");
    assert_eq!(outcome.stats.indexed_document_count, 3_000);
    assert_eq!(outcome.stats.failed_document_count, 0);
    // 3,000 docs in batches of 250 = 12 requests, plus one resend of the rejected items each.
    assert_eq!(state.bulk_requests.load(Ordering::Relaxed), 24);
    let direct = osmem_client();
    assert_eq!(count(&direct, &index).await, 3_000);
    assert!(exists(&direct, &index, "M2993").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_documents_fail_the_sync_quoting_the_first_reason_and_delete_nothing() {
    let (es, index) = seeded_index("sync-reject", 300).await;
    // `n` is a long now; a string that is not a number is rejected per item.
    let mut bad = TestSource::messages(300);
    bad.skip = (0..100).collect();
    bad.extra
        .insert("n".into(), Value::String("not a number".into()));
    let stats = SyncStats::new();
    let error = run_sync(
        &es,
        &bad,
        options(&index, JobKind::Full),
        stats.clone(),
        CancellationToken::new(),
    )
    .await
    .expect_err("too many errors");
    let text = error.to_string();
    assert!(
        matches!(error, SyncError::TooManyErrors { .. }),
        "{error:?}"
    );
    assert!(text.contains("consecutive"), "{text}");
    assert!(text.contains("mapper_parsing_exception"), "{text}");
    assert!(
        text.contains("document id M100"),
        "the first error is quoted: {text}"
    );
    assert!(stats.snapshot().failed_document_count >= 11);
    assert_eq!(count(&es, &index).await, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_failures_below_the_monitor_limits_complete_but_skip_deletion() {
    let (es, index) = seeded_index("sync-partial", 200).await;
    // One bad document among 150; the other 50 docs are no longer produced.
    let mut one_bad = TestSource::messages(150);
    one_bad.patched.insert(
        7,
        json!({"n": "seven"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let outcome = run_sync(
        &es,
        &one_bad,
        options(&index, JobKind::Full),
        SyncStats::new(),
        CancellationToken::new(),
    )
    .await
    .expect("one error is tolerated");
    assert_eq!(outcome.stats.failed_document_count, 1);
    assert_eq!(outcome.stats.indexed_document_count, 149);
    assert_eq!(outcome.stats.deleted_document_count, 0);
    assert_eq!(count(&es, &index).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_rules_filter_documents_and_a_full_sync_deletes_the_excluded() {
    let (es, index) = seeded_index("sync-rules", 500).await;
    let mut opts = options(&index, JobKind::Full);
    opts.filtering = json!({
        "rules": [
            {"id": "DEFAULT", "order": 0, "policy": "include", "field": "_", "rule": "regex", "value": ".*"},
            {"id": "no-c1", "order": 1, "policy": "exclude", "field": "channel", "rule": "equals", "value": "C0001"}
        ],
        "advanced_snippet": {"value": {}},
        "validation": {"state": "valid", "errors": []}
    });
    let outcome = sync(&es, &TestSource::messages(500), opts)
        .await
        .expect("filtered sync");
    assert_eq!(outcome.stats.docs_filtered, 10);
    assert_eq!(outcome.stats.indexed_document_count, 490);
    assert_eq!(outcome.stats.deleted_document_count, 10);
    assert_eq!(count(&es, &index).await, 490);
    assert!(!exists(&es, &index, "M1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_are_set_on_create_and_kept_on_resync() {
    let es = osmem_client();
    let index = osmem::unique_name("sync-ts");
    let mut source = TestSource::messages(20);
    source.with_timestamp = false;
    let mut opts = options(&index, JobKind::Full);
    opts.pipeline.reduce_whitespace = true;
    sync(&es, &source, opts.clone()).await.expect("first");
    let first = es.get_doc(&index, "M3").await.unwrap().unwrap();
    let ts = first["_source"]["_timestamp"].as_str().unwrap().to_string();
    assert!(ts.ends_with("+00:00"), "{ts}");
    assert_eq!(first["_source"]["id"], "M3");
    assert_eq!(first["_source"]["_reduce_whitespace"], true);
    assert_eq!(first["_source"]["_extract_binary_content"], false);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let outcome = sync(&es, &source, opts).await.expect("second");
    assert_eq!(outcome.stats.indexed_document_count, 20);
    assert_eq!(outcome.stats.deleted_document_count, 0);
    let second = es.get_doc(&index, "M3").await.unwrap().unwrap();
    assert_eq!(second["_source"]["_timestamp"], ts.as_str(), "kept");
    assert_ne!(
        second["_source"]["_sync_marker"], first["_source"]["_sync_marker"],
        "re-marked by the new sync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_ids_are_hashed_and_oversized_documents_dropped() {
    let es = osmem_client();
    let index = osmem::unique_name("sync-sizes");
    let body = |text: String| {
        json!({"_timestamp": "2024-01-01T00:00:00+00:00", "text": text})
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    let odd = TestSource::listed(vec![
        ("L".repeat(600), body("long id".into())),
        ("big".into(), body("x".repeat(2 * 1024 * 1024))),
        ("ok".into(), body("fine".into())),
    ]);
    let mut opts = options(&index, JobKind::Full);
    opts.bulk.max_text_document_size = 1.0;
    let outcome = run_sync(&es, &odd, opts, SyncStats::new(), CancellationToken::new())
        .await
        .expect("sync");
    assert_eq!(outcome.stats.docs_dropped, 1);
    assert_eq!(outcome.stats.indexed_document_count, 2);
    assert_eq!(count(&es, &index).await, 2);
    let hashed = connectors::sync::document::normalize_id("L".repeat(600));
    let doc = es
        .get_doc(&index, &hashed)
        .await
        .unwrap()
        .expect("hashed id");
    assert_eq!(doc["_source"]["id"], hashed.as_str());
    assert!(!exists(&es, &index, "big").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_sync_applies_ops_and_returns_the_cursor_without_a_sweep() {
    let es = osmem_client();
    let index = osmem::unique_name("sync-incr");
    sync(
        &es,
        &TestSource::messages(10),
        options(&index, JobKind::Full),
    )
    .await
    .expect("full");
    let doc = |id: &str, body: Value| {
        Document::from_fields(id.into(), body.as_object().cloned().unwrap_or_default())
    };
    let source = TestSource {
        incremental: vec![
            DocOp::Index(doc(
                "NEW",
                json!({"_timestamp": "2024-01-01T00:00:00+00:00", "text": "new"}),
            )),
            DocOp::Update(doc("M1", json!({"text": "edited"}))),
            DocOp::Update(doc("UPSERTED", json!({"text": "upserted"}))),
            DocOp::Delete("M2".into()),
            DocOp::Delete("NEVER-EXISTED".into()),
        ],
        cursor: Some(json!({"channels": {"C1": "1700000000.000100"}})),
        ..TestSource::default()
    };
    let outcome = sync(&es, &source, options(&index, JobKind::Incremental))
        .await
        .expect("incremental");
    assert_eq!(outcome.stats.indexed_document_count, 3);
    assert_eq!(outcome.stats.deleted_document_count, 1);
    assert_eq!(outcome.stats.failed_document_count, 0);
    assert_eq!(
        outcome.sync_cursor,
        Some(json!({"channels": {"C1": "1700000000.000100"}}))
    );
    // 10 + NEW + UPSERTED - M2, and no sweep of the 8 untouched docs.
    assert_eq!(count(&es, &index).await, 11);
    let edited = es.get_doc(&index, "M1").await.unwrap().unwrap();
    assert_eq!(edited["_source"]["text"], "edited");
    assert_eq!(edited["_source"]["channel"], "C0001", "update merges");
    let upserted = es.get_doc(&index, "UPSERTED").await.unwrap().unwrap();
    assert!(upserted["_source"]["_timestamp"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_returns_promptly_and_deletes_nothing() {
    let (es, index) = seeded_index("sync-cancel", 300).await;
    let mut source = TestSource::messages(10_000);
    source.skip = (0..300).collect();
    source.park_after = Some(1_000);
    let parked = source.parked.clone();
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        async move {
            parked.notified().await;
            cancel.cancel();
            Instant::now()
        }
    };
    let (result, cancelled_at) = tokio::join!(
        run_sync(
            &es,
            &source,
            options(&index, JobKind::Full),
            SyncStats::new(),
            cancel.clone()
        ),
        canceller
    );
    assert!(matches!(result, Err(SyncError::Cancelled)), "{result:?}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(2));
    // Nothing deleted: the 300 docs of the first sync are all still there.
    es.refresh(&index).await.unwrap();
    for id in ["M0", "M150", "M299"] {
        assert!(exists(&es, &index, id).await, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_marker_mapping_is_a_clear_error() {
    let es = osmem_client();
    let index = osmem::unique_name("sync-mapping");
    es.create_index(
        &index,
        Some(json!({"mappings": {"properties": {"_sync_marker": {"type": "keyword"}}}})),
    )
    .await
    .unwrap();
    let error = sync(
        &es,
        &TestSource::messages(5),
        options(&index, JobKind::Full),
    )
    .await
    .expect_err("conflict");
    let text = error.to_string();
    assert!(text.contains("_sync_marker"), "{text}");
    assert!(text.contains(&index), "{text}");
    assert_eq!(count(&es, &index).await, 0);
}

// ---------------------------------------------------------------- resume points, scoped sweeps

/// A source of `R0..R<count>` (+ `extra`) marking a checkpoint `part` = docs sent so far after
/// every 10th document; fails after `fail_after` documents (an interruption); resumes from its
/// checkpoint and says where it started. Incremental: re-sends `incremental` and declares
/// `scope` re-read.
#[derive(Default)]
struct Resumable {
    count: usize,
    extra: Vec<String>,
    fail_after: Option<usize>,
    resumed_from: Mutex<Option<u64>>,
    incremental: Vec<(String, &'static str)>,
    scope: Option<Value>,
}

impl Resumable {
    fn body(channel: &str) -> serde_json::Map<String, Value> {
        json!({"_timestamp": "2024-01-01T00:00:00+00:00", "type": "message", "channel_id": channel})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    async fn send_from(
        &self,
        start: usize,
        sink: &connectors::sources::DocSender,
    ) -> Result<(), connectors::sources::SourceError> {
        for i in start..self.count {
            if self.fail_after == Some(i) {
                return Err(connectors::sources::SourceError::Fetch(
                    "simulated interruption".into(),
                ));
            }
            sink.index(format!("R{i}"), Self::body("C1")).await?;
            if (i + 1) % 10 == 0 {
                sink.checkpoint("part", json!(i + 1)).await?;
            }
        }
        for id in &self.extra {
            sink.index(id.clone(), Self::body("C1")).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl connectors::sources::DataSource for Resumable {
    async fn ping(&self) -> Result<(), connectors::sources::SourceError> {
        Ok(())
    }

    async fn get_docs(
        &self,
        sink: &connectors::sources::DocSender,
        _cancel: &CancellationToken,
    ) -> Result<(), connectors::sources::SourceError> {
        self.send_from(0, sink).await
    }

    async fn resume_docs(
        &self,
        checkpoints: &serde_json::Map<String, Value>,
        sink: &connectors::sources::DocSender,
        _cancel: &CancellationToken,
    ) -> Result<(), connectors::sources::SourceError> {
        let start = checkpoints.get("part").and_then(Value::as_u64).unwrap_or(0);
        *self.resumed_from.lock().unwrap() = Some(start);
        self.send_from(start as usize, sink).await
    }

    async fn get_docs_incrementally(
        &self,
        _cursor: Option<&Value>,
        sink: &connectors::sources::DocSender,
        _cancel: &CancellationToken,
    ) -> Result<(), connectors::sources::SourceError> {
        for (id, channel) in &self.incremental {
            sink.index(id.clone(), Self::body(channel)).await?;
        }
        if let Some(scope) = &self.scope {
            sink.sweep(scope.clone()).await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_full_sync_resumes_and_its_sweep_covers_both_runs() {
    let es = osmem_client();
    let index = osmem::unique_name("sync-resume");
    let first = Resumable {
        count: 100,
        extra: vec!["STALE".into()],
        ..Resumable::default()
    };
    sync(&es, &first, options(&index, JobKind::Full))
        .await
        .expect("first sync");

    // Interrupted after 55 documents: nothing deleted, a durable point recorded.
    let interrupted = Resumable {
        count: 100,
        fail_after: Some(55),
        ..Resumable::default()
    };
    let stats = SyncStats::new();
    let result = run_sync(
        &es,
        &interrupted,
        options(&index, JobKind::Full),
        stats.clone(),
        CancellationToken::new(),
    )
    .await;
    assert!(result.is_err());
    assert!(
        exists(&es, &index, "STALE").await,
        "an interrupted sync deletes nothing"
    );
    let (_, point) = stats.progress().current().expect("a point was started");
    let part = point.checkpoints.get("part").and_then(Value::as_u64);
    // Only what was written is claimed: at most the 50 documents before the last checkpoint.
    assert!(part.is_some_and(|p| p <= 50 && p % 10 == 0), "{point:?}");

    // Resumed: from the point, with the same marker; the sweep removes STALE and keeps the
    // documents only the interrupted run wrote.
    let resumed = Resumable {
        count: 100,
        ..Resumable::default()
    };
    let mut resume_options = options(&index, JobKind::Full);
    resume_options.resume = Some(point.clone());
    let outcome = sync(&es, &resumed, resume_options)
        .await
        .expect("resumed sync");
    assert_eq!(*resumed.resumed_from.lock().unwrap(), part);
    assert_eq!(outcome.stats.deleted_document_count, 1);
    assert!(!exists(&es, &index, "STALE").await);
    assert_eq!(count(&es, &index).await, 100);
    let early = es.get_doc(&index, "R0").await.unwrap().expect("R0 kept");
    assert_eq!(early["_source"]["_sync_marker"], point.marker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_sync_sweeps_only_the_scopes_it_declared() {
    let es = osmem_client();
    let index = osmem::unique_name("sync-scope");
    let first = Resumable {
        incremental: vec![("A1", "C1"), ("A2", "C1"), ("B1", "C2")]
            .into_iter()
            .map(|(id, c)| (id.to_string(), c))
            .collect(),
        ..Resumable::default()
    };
    // Seed through an incremental sync without a scope (nothing swept).
    sync(&es, &first, options(&index, JobKind::Incremental))
        .await
        .expect("seed");
    assert_eq!(count(&es, &index).await, 3);
    let next = Resumable {
        incremental: vec![("A1".to_string(), "C1")],
        scope: Some(json!({"match_phrase": {"channel_id": "C1"}})),
        ..Resumable::default()
    };
    let outcome = sync(&es, &next, options(&index, JobKind::Incremental))
        .await
        .expect("incremental");
    // A2 was in the re-read scope and not seen again: deleted. B1 is outside: kept.
    assert_eq!(outcome.stats.deleted_document_count, 1);
    assert!(!exists(&es, &index, "A2").await);
    assert!(exists(&es, &index, "A1").await);
    assert!(exists(&es, &index, "B1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dls_on_an_unprotected_document_fails_the_sync_and_nothing_is_deleted() {
    // A first sync without DLS, then the same source with DLS required: its documents carry
    // no `_allow_access_control`, which Elastic's DLS query would show to everyone.
    let (es, index) = seeded_index("dls-unprotected", 50).await;
    let options = SyncOptions {
        require_access_control: true,
        ..options(&index, JobKind::Full)
    };
    let error = sync(&es, &TestSource::messages(10), options)
        .await
        .unwrap_err();
    assert!(matches!(error, SyncError::Unprotected { .. }), "{error:?}");
    assert!(
        error.to_string().contains("_allow_access_control"),
        "{error}"
    );
    assert_eq!(count(&es, &index).await, 50, "nothing deleted");
    // The content index got the field's mapping, with the subfield the DLS query matches.
    let mapping = es
        .json(
            elasticsearch::http::Method::Get,
            &format!("/{index}/_mapping/field/_allow_access_control"),
            &[],
            None,
        )
        .await
        .expect("mapping");
    let text = mapping.to_string();
    assert!(text.contains("\"enum\""), "{text}");
}
