//! `_connector/_sync_job` endpoints, the job state machine and concurrency, against osmem.

mod common;

use common::{assert_error, call, new_connector, new_job, unique};
use serde_json::{json, Value};

async fn job(id: &str) -> Value {
    let (status, j) = call("GET", &format!("/_connector/_sync_job/{id}"), None).await;
    assert_eq!(status, 200, "{j}");
    j
}

async fn put(job: &str, action: &str, body: Option<Value>) -> (u16, Value) {
    call(
        "PUT",
        &format!("/_connector/_sync_job/{job}/{action}"),
        body,
    )
    .await
}

#[tokio::test]
async fn create_snapshots_the_connector() {
    let (cid, index) = new_connector().await;
    call(
        "PUT",
        &format!("/_connector/{cid}/_configuration"),
        Some(json!({"configuration": {"token": {"label": "T", "value": "x"}}})),
    )
    .await;
    let pipeline = json!({"name": "p", "extract_binary_content": true, "reduce_whitespace": true, "run_ml_inference": false});
    call(
        "PUT",
        &format!("/_connector/{cid}/_pipeline"),
        Some(json!({"pipeline": pipeline})),
    )
    .await;
    // A draft that is not active must not reach the job.
    call("PUT", &format!("/_connector/{cid}/_filtering"), Some(json!({"rules": [{"id": "d", "field": "f", "policy": "exclude", "rule": "equals", "value": "v", "order": 0}]}))).await;
    let (_, connector) = call("GET", &format!("/_connector/{cid}"), None).await;

    let id = new_job(&cid, json!({})).await;
    let j = job(&id).await;
    assert_eq!(j["id"], id.as_str());
    assert_eq!(j["status"], "pending");
    assert_eq!(j["job_type"], "full");
    assert_eq!(j["trigger_method"], "on_demand");
    for counter in [
        "deleted_document_count",
        "indexed_document_count",
        "indexed_document_volume",
        "total_document_count",
    ] {
        assert_eq!(j[counter], 0, "{counter}");
    }
    assert_eq!(j["metadata"], json!({}));
    assert_eq!(j["created_at"], j["last_seen"]);
    for absent in [
        "started_at",
        "completed_at",
        "canceled_at",
        "worker_hostname",
        "error",
    ] {
        assert!(j.get(absent).is_none(), "{absent}: {j}");
    }
    let c = &j["connector"];
    assert_eq!(c["id"], cid.as_str());
    assert_eq!(c["index_name"], index.as_str());
    assert_eq!(c["language"], "en");
    assert_eq!(c["service_type"], "slack");
    assert_eq!(c["pipeline"], pipeline);
    assert_eq!(
        c["configuration"],
        json!({"token": {"label": "T", "value": "x"}})
    );
    assert_eq!(c["filtering"], connector["filtering"][0]["active"]);
    assert_eq!(c["filtering"]["rules"][0]["id"], "DEFAULT");

    let acl = new_job(
        &cid,
        json!({"job_type": "access_control", "trigger_method": "scheduled"}),
    )
    .await;
    let j = job(&acl).await;
    assert_eq!(
        j["connector"]["index_name"],
        format!(".search-acl-filter-{index}")
    );
    assert_eq!(
        (j["job_type"].as_str(), j["trigger_method"].as_str()),
        (Some("access_control"), Some("scheduled"))
    );
}

#[tokio::test]
async fn create_errors() {
    let r = call(
        "POST",
        "/_connector/_sync_job",
        Some(json!({"id": unique("nobody")})),
    )
    .await;
    assert!(assert_error(&r, 404, "resource_not_found_exception").contains("does not exist"));
    // A missing constructor argument is the parser's IllegalArgumentException; an empty one
    // fails the request's validate().
    let r = call("POST", "/_connector/_sync_job", Some(json!({}))).await;
    assert_eq!(
        assert_error(&r, 400, "illegal_argument_exception"),
        "Required [id]"
    );
    let r = call("POST", "/_connector/_sync_job", Some(json!({"id": ""}))).await;
    assert_error(&r, 400, "action_request_validation_exception");
    let r = call(
        "POST",
        "/_connector/_sync_job",
        Some(json!({"id": "x", "job_type": "weekly"})),
    )
    .await;
    assert_error(&r, 400, "illegal_argument_exception");
    let r = call(
        "POST",
        "/_connector/_sync_job",
        Some(json!({"id": "x", "extra": 1})),
    )
    .await;
    assert_error(&r, 400, "x_content_parse_exception");

    let bare = unique("bare");
    call(
        "PUT",
        &format!("/_connector/{bare}"),
        Some(json!({"service_type": "slack"})),
    )
    .await;
    let r = call("POST", "/_connector/_sync_job", Some(json!({"id": bare}))).await;
    assert!(assert_error(&r, 400, "status_exception").contains("with no index attached"));
    let untyped = unique("untyped");
    call(
        "PUT",
        &format!("/_connector/{untyped}"),
        Some(json!({"index_name": unique("search-u")})),
    )
    .await;
    let r = call(
        "POST",
        "/_connector/_sync_job",
        Some(json!({"id": untyped})),
    )
    .await;
    assert!(assert_error(&r, 400, "status_exception").contains("[service_type] not defined"));
}

#[tokio::test]
async fn claim_stats_check_in() {
    let (cid, _) = new_connector().await;
    let id = new_job(&cid, json!({})).await;
    assert_eq!(
        put(
            &id,
            "_claim",
            Some(json!({"worker_hostname": "w1", "sync_cursor": {"ts": "1"}}))
        )
        .await,
        (200, json!({}))
    );
    let j = job(&id).await;
    assert_eq!(j["status"], "in_progress");
    assert_eq!(j["worker_hostname"], "w1");
    assert_eq!(j["connector"]["sync_cursor"], json!({"ts": "1"}));
    assert!(j["started_at"].is_string());
    assert_eq!(
        j["connector"]["id"],
        cid.as_str(),
        "claim keeps the snapshot"
    );
    assert_eq!(
        assert_error(
            &put(&id, "_claim", Some(json!({}))).await,
            400,
            "illegal_argument_exception",
        ),
        "Required [worker_hostname]"
    );

    let stats = json!({"deleted_document_count": 1, "indexed_document_count": 20, "indexed_document_volume": 3,
                       "total_document_count": 40, "metadata": {"k": "v"}});
    assert_eq!(put(&id, "_stats", Some(stats)).await, (200, json!({})));
    let j = job(&id).await;
    assert_eq!(
        (
            j["indexed_document_count"].as_i64(),
            j["total_document_count"].as_i64()
        ),
        (Some(20), Some(40))
    );
    assert_eq!(j["metadata"], json!({"k": "v"}));
    let r = put(&id, "_stats", Some(json!({"indexed_document_count": 1}))).await;
    assert!(assert_error(&r, 400, "illegal_argument_exception")
        .contains("Required [deleted_document_count, indexed_document_volume]"));
    assert_error(&put(&id, "_stats", Some(json!({"deleted_document_count": 0, "indexed_document_count": 0, "indexed_document_volume": 0, "bogus": 1}))).await, 400, "x_content_parse_exception");
    let at = "2030-01-01T00:00:00Z";
    put(&id, "_stats", Some(json!({"deleted_document_count": 0, "indexed_document_count": 0, "indexed_document_volume": 0, "last_seen": at}))).await;
    assert_eq!(job(&id).await["last_seen"], at);

    assert_eq!(put(&id, "_check_in", None).await, (200, json!({})));
    assert_ne!(job(&id).await["last_seen"], at);

    let ghost = unique("ghost");
    let r = put(&ghost, "_check_in", None).await;
    assert_eq!(
        assert_error(&r, 404, "resource_not_found_exception"),
        format!("connector sync job [{ghost}] not found")
    );
    assert_error(
        &call("GET", &format!("/_connector/_sync_job/{ghost}"), None).await,
        404,
        "resource_not_found_exception",
    );
    assert_error(
        &call("DELETE", &format!("/_connector/_sync_job/{ghost}"), None).await,
        404,
        "resource_not_found_exception",
    );
}

#[tokio::test]
async fn cancel_paths() {
    let (cid, _) = new_connector().await;
    // pending → canceled at once.
    let pending = new_job(&cid, json!({})).await;
    assert_eq!(
        put(&pending, "_cancel", None).await,
        (200, json!({"result": "updated"}))
    );
    let j = job(&pending).await;
    assert_eq!(j["status"], "canceled");
    for f in ["cancelation_requested_at", "canceled_at", "completed_at"] {
        assert!(j[f].is_string(), "{f}");
    }
    // canceled is terminal.
    let r = put(&pending, "_cancel", None).await;
    assert!(assert_error(&r, 400, "status_exception").contains("from [canceled] to [canceling]"));

    // in_progress → canceling → (framework writes canceled directly).
    let running = new_job(&cid, json!({})).await;
    put(&running, "_claim", Some(json!({"worker_hostname": "w"}))).await;
    assert_eq!(put(&running, "_cancel", None).await.0, 200);
    let j = job(&running).await;
    assert_eq!(j["status"], "canceling");
    assert!(j["cancelation_requested_at"].is_string());
    assert!(j.get("canceled_at").is_none());
    // canceling → error is allowed.
    assert_eq!(
        put(&running, "_error", Some(json!({"error": "stuck"}))).await,
        (200, json!({}))
    );
    let j = job(&running).await;
    assert_eq!(
        (j["status"].as_str(), j["error"].as_str()),
        (Some("error"), Some("stuck"))
    );

    // suspended → canceled (suspended is written directly, as the framework does).
    let suspended = new_job(&cid, json!({})).await;
    let (status, _) = call(
        "POST",
        &format!("/.elastic-connectors-sync-jobs/_update/{suspended}"),
        Some(json!({"doc": {"status": "suspended"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(put(&suspended, "_cancel", None).await.0, 200);
    assert_eq!(job(&suspended).await["status"], "canceled");
}

#[tokio::test]
async fn error_transitions() {
    let (cid, _) = new_connector().await;
    let pending = new_job(&cid, json!({})).await;
    let r = put(&pending, "_error", Some(json!({"error": "x"}))).await;
    assert_eq!(
        assert_error(&r, 400, "status_exception"),
        "Invalid transition attempt from [pending] to [error]. Such a sync job status transition is not supported by the Connector Protocol."
    );
    assert_eq!(
        assert_error(
            &put(&pending, "_error", Some(json!({}))).await,
            400,
            "illegal_argument_exception",
        ),
        "Required [error]"
    );
    put(&pending, "_claim", Some(json!({"worker_hostname": "w"}))).await;
    assert_eq!(
        put(&pending, "_error", Some(json!({"error": "boom"})))
            .await
            .0,
        200
    );
    assert_eq!(job(&pending).await["status"], "error");
    // error is terminal.
    assert_error(
        &put(&pending, "_cancel", None).await,
        400,
        "status_exception",
    );
    assert_error(
        &put(&pending, "_error", Some(json!({"error": "again"}))).await,
        400,
        "status_exception",
    );

    // Completion is a direct write by the framework; completed is terminal for the API.
    let done = new_job(&cid, json!({})).await;
    put(&done, "_claim", Some(json!({"worker_hostname": "w"}))).await;
    call(
        "POST",
        &format!("/.elastic-connectors-sync-jobs/_update/{done}"),
        Some(json!({"doc": {"status": "completed"}})),
    )
    .await;
    assert!(
        assert_error(&put(&done, "_cancel", None).await, 400, "status_exception")
            .contains("from [completed]")
    );
}

#[tokio::test]
async fn list_filters_and_order() {
    let (cid, _) = new_connector().await;
    let a = new_job(&cid, json!({"job_type": "full"})).await;
    let b = new_job(&cid, json!({"job_type": "incremental"})).await;
    let c = new_job(&cid, json!({"job_type": "access_control"})).await;
    put(&b, "_cancel", None).await;
    let (status, all) = call(
        "GET",
        &format!("/_connector/_sync_job?connector_id={cid}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(all["count"], 3);
    let ids: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [c.as_str(), b.as_str(), a.as_str()], "newest first");
    let (_, canceled) = call(
        "GET",
        &format!("/_connector/_sync_job?connector_id={cid}&status=canceled"),
        None,
    )
    .await;
    assert_eq!(canceled["count"], 1);
    assert_eq!(canceled["results"][0]["id"], b.as_str());
    let (_, types) = call(
        "GET",
        &format!("/_connector/_sync_job?connector_id={cid}&job_type=full,access_control"),
        None,
    )
    .await;
    assert_eq!(types["count"], 2);
    let (_, page) = call(
        "GET",
        &format!("/_connector/_sync_job?connector_id={cid}&from=2&size=5"),
        None,
    )
    .await;
    assert_eq!(
        (
            page["count"].as_u64(),
            page["results"].as_array().unwrap().len()
        ),
        (Some(3), 1)
    );
    assert_error(
        &call("GET", "/_connector/_sync_job?status=bogus", None).await,
        400,
        "illegal_argument_exception",
    );
    assert_error(
        &call("GET", "/_connector/_sync_job?job_type=bogus", None).await,
        400,
        "illegal_argument_exception",
    );

    assert_eq!(
        call("DELETE", &format!("/_connector/_sync_job/{a}"), None).await,
        (200, json!({"acknowledged": true}))
    );
    let (_, after) = call(
        "GET",
        &format!("/_connector/_sync_job?connector_id={cid}"),
        None,
    )
    .await;
    assert_eq!(after["count"], 2);
}

#[tokio::test]
async fn concurrent_stats_and_check_in_lose_nothing() {
    let (cid, _) = new_connector().await;
    let id = new_job(&cid, json!({})).await;
    put(&id, "_claim", Some(json!({"worker_hostname": "w"}))).await;
    let mut tasks = Vec::new();
    for i in 0..8i64 {
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let stats = json!({"deleted_document_count": i, "indexed_document_count": 100, "indexed_document_volume": 1,
                               "metadata": {format!("k{i}"): i}});
            let a = put(&id, "_stats", Some(stats)).await;
            let b = put(&id, "_check_in", None).await;
            (a.0, b.0)
        }));
    }
    // Meanwhile, the framework-style direct partial update of another field.
    let (status, _) = call(
        "POST",
        &format!("/.elastic-connectors-sync-jobs/_update/{id}?retry_on_conflict=5"),
        Some(json!({"doc": {"worker_hostname": "w2"}})),
    )
    .await;
    assert_eq!(status, 200);
    for t in tasks {
        assert_eq!(t.await.unwrap(), (200, 200));
    }
    let j = job(&id).await;
    assert_eq!(j["indexed_document_count"], 100);
    assert_eq!(
        j["worker_hostname"], "w2",
        "direct update survived the read-modify-writes"
    );
    assert_eq!(j["status"], "in_progress");
    // ES's partial-document update merges objects, so every caller's metadata key is there.
    assert_eq!(
        j["metadata"].as_object().unwrap().len(),
        8,
        "{}",
        j["metadata"]
    );
}

#[tokio::test]
async fn concurrent_connector_updates_lose_nothing() {
    let (cid, _) = new_connector().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let cid = cid.clone();
        tasks.push(tokio::spawn(async move {
            let path = if i % 2 == 0 { "_check_in" } else { "_name" };
            let body = (i % 2 == 1).then(|| json!({"description": "d"}));
            call("PUT", &format!("/_connector/{cid}/{path}"), body)
                .await
                .0
        }));
    }
    tasks.push(tokio::spawn({
        let cid = cid.clone();
        async move {
            call(
                "PUT",
                &format!("/_connector/{cid}/_scheduling"),
                Some(json!({"scheduling": {"full": {"enabled": true, "interval": "1 * * * * ?"}}})),
            )
            .await
            .0
        }
    }));
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let (_, c) = call("GET", &format!("/_connector/{cid}"), None).await;
    assert!(c["last_seen"].is_string());
    assert_eq!(c["description"], "d");
    assert_eq!(c["scheduling"]["full"]["enabled"], true);
}
