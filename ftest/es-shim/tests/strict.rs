//! The shim refuses what Elasticsearch refuses, with Elasticsearch's status, error type and
//! text (conformance table, `BaseRestHandler`, the request parsers), before anything changes.

mod common;

use common::{assert_error, call, new_connector, new_job, raw};
use serde_json::{json, Value};

async fn last_seen(connector: &str) -> Value {
    let (_, c) = call("GET", &format!("/_connector/{connector}"), None).await;
    c["last_seen"].clone()
}

#[tokio::test]
async fn empty_object_to_check_in_gets_elasticsearchs_400() {
    let (id, _) = new_connector().await;
    let path = format!("/_connector/{id}/_check_in");
    let r = call("PUT", &path, Some(json!({}))).await;
    assert_eq!(
        r.1,
        json!({"error": {
            "root_cause": [{"type": "illegal_argument_exception",
                            "reason": format!("request [PUT {path}] does not support having a body")}],
            "type": "illegal_argument_exception",
            "reason": format!("request [PUT {path}] does not support having a body")},
            "status": 400})
    );
    assert_eq!(r.0, 400);
    assert!(
        last_seen(&id).await.is_null(),
        "a refused check-in changes nothing"
    );
    // Without a body it is accepted.
    assert_eq!(call("PUT", &path, None).await.0, 200);
    assert!(last_seen(&id).await.is_string());
}

#[tokio::test]
async fn every_body_less_endpoint_refuses_a_body() {
    let (cid, _) = new_connector().await;
    let job = new_job(&cid, json!({})).await;
    for (method, path) in [
        ("PUT", format!("/_connector/{cid}/_filtering/_activate")),
        ("PUT", format!("/_connector/_sync_job/{job}/_cancel")),
        ("PUT", format!("/_connector/_sync_job/{job}/_check_in")),
        ("GET", format!("/_connector/{cid}")),
        ("GET", "/_connector".to_string()),
    ] {
        let r = raw(method, &path, "application/json", "{}").await;
        let reason = assert_error(&(r.0, r.2), 400, "illegal_argument_exception");
        assert_eq!(
            reason,
            format!("request [{method} {path}] does not support having a body")
        );
    }
    let (_, j) = call("GET", &format!("/_connector/_sync_job/{job}"), None).await;
    assert_eq!(j["status"], "pending", "the refused cancel did nothing");
}

#[tokio::test]
async fn unrecognized_query_parameters_are_refused() {
    let (cid, _) = new_connector().await;
    let r = call("PUT", &format!("/_connector/{cid}/_check_in?foo=1"), None).await;
    assert_eq!(
        assert_error(&r, 400, "illegal_argument_exception"),
        format!("request [/_connector/{cid}/_check_in] contains unrecognized parameter: [foo]")
    );
    let r = call("GET", "/_connector?sizee=2", None).await;
    assert_eq!(
        assert_error(&r, 400, "illegal_argument_exception"),
        "request [/_connector] contains unrecognized parameter: [sizee] -> did you mean [size]?"
    );
    let r = call(
        "POST",
        "/_connector/_sync_job?refresh=true",
        Some(json!({"id": cid})),
    )
    .await;
    assert!(assert_error(&r, 400, "illegal_argument_exception")
        .contains("contains unrecognized parameter: [refresh]"));
    // Declared and common parameters are fine.
    assert_eq!(call("GET", "/_connector?size=1&pretty", None).await.0, 200);
    assert_eq!(
        call(
            "GET",
            &format!("/_connector/{cid}?include_deleted=false&error_trace=true"),
            None
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn strict_bodies_refuse_unknown_fields() {
    let (cid, _) = new_connector().await;
    let job = new_job(&cid, json!({})).await;
    let r = call(
        "PUT",
        &format!("/_connector/_sync_job/{job}/_claim"),
        Some(json!({"worker_hostname": "w", "sync_cursor": {}, "zzz": 1})),
    )
    .await;
    assert!(assert_error(&r, 400, "x_content_parse_exception")
        .ends_with("[claim_connector_sync_job] unknown field [zzz]"));
    let stats = json!({"deleted_document_count": 0, "indexed_document_count": 0,
                       "indexed_document_volume": 0, "indexed_document_volumes": 1});
    let r = call(
        "PUT",
        &format!("/_connector/_sync_job/{job}/_stats"),
        Some(stats),
    )
    .await;
    assert!(assert_error(&r, 400, "x_content_parse_exception").contains(
        "[connector_sync_job_update_ingestion_stats] unknown field [indexed_document_volumes] did you mean any of [indexed_document_volume, "
    ));
    let r = call(
        "PUT",
        &format!("/_connector/{cid}"),
        Some(json!({"index_name": "x", "enabled": true})),
    )
    .await;
    assert!(assert_error(&r, 400, "x_content_parse_exception")
        .ends_with("[connector_put_request] unknown field [enabled]"));
    let (_, j) = call("GET", &format!("/_connector/_sync_job/{job}"), None).await;
    assert_eq!(j["status"], "pending", "nothing was claimed");
}

#[tokio::test]
async fn wrong_types_are_refused() {
    let (cid, _) = new_connector().await;
    let job = new_job(&cid, json!({})).await;
    let r = call(
        "PUT",
        &format!("/_connector/_sync_job/{job}/_claim"),
        Some(json!({"worker_hostname": ["w"]})),
    )
    .await;
    assert!(assert_error(&r, 400, "x_content_parse_exception").ends_with(
        "[claim_connector_sync_job] worker_hostname doesn't support values of type: START_ARRAY"
    ));
    let r = call(
        "PUT",
        &format!("/_connector/_sync_job/{job}/_claim"),
        Some(json!({"worker_hostname": "w", "sync_cursor": "abc"})),
    )
    .await;
    assert!(assert_error(&r, 400, "x_content_parse_exception")
        .ends_with("sync_cursor doesn't support values of type: VALUE_STRING"));
    let stats = json!({"deleted_document_count": 0, "indexed_document_count": true,
                       "indexed_document_volume": 0});
    let r = call(
        "PUT",
        &format!("/_connector/_sync_job/{job}/_stats"),
        Some(stats),
    )
    .await;
    assert!(assert_error(&r, 400, "x_content_parse_exception")
        .ends_with("indexed_document_count doesn't support values of type: VALUE_BOOLEAN"));
    let r = call(
        "PUT",
        &format!("/_connector/{cid}/_filtering/_validation"),
        Some(json!({"validation": {"state": "valid", "errors": [{"ids": "a"}]}})),
    )
    .await;
    assert!(assert_error(&r, 400, "x_content_parse_exception")
        .ends_with("[connector_update_filtering_validation] failed to parse field [validation]"));
    let r = call("PUT", &format!("/_connector/{cid}/_pipeline"), None).await;
    assert_eq!(
        assert_error(&r, 400, "parse_exception"),
        "request body is required"
    );
    let r = raw(
        "PUT",
        &format!("/_connector/{cid}/_scheduling"),
        "application/json",
        "[1]",
    )
    .await;
    assert!(
        assert_error(&(r.0, r.2), 400, "x_content_parse_exception").ends_with(
            "[connector_update_scheduling_request] Expected START_OBJECT but was: START_ARRAY"
        )
    );
}

#[tokio::test]
async fn a_recording_shim_keeps_connector_requests_and_counts_the_rest() {
    let shim = es_shim::ShimHandle::start(es_shim::ShimConfig {
        record: true,
        ..es_shim::ShimConfig::new(osmem::shared().url())
    })
    .unwrap();
    let client = common::client();
    let url = shim.url();
    client
        .put(format!("{url}/_connector/rec-1/_check_in?foo=1"))
        .body("{}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    client.get(format!("{url}/")).send().await.unwrap();
    let recorded = shim.recorder().connector_requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, "/_connector/rec-1/_check_in");
    assert_eq!(
        recorded[0].query,
        vec![("foo".to_string(), "1".to_string())]
    );
    assert_eq!(&recorded[0].body[..], b"{}");
    assert_eq!(shim.recorder().other_counts()["GET /"], 1);
    let audit = es_shim::conformance::audit(es_shim::conformance::table(), &recorded);
    assert_eq!(audit.counts["PUT /_connector/{connector_id}/_check_in"], 1);
    assert_eq!(audit.violations.len(), 1, "{:?}", audit.violations);
    assert!(audit.violations[0].contains("unrecognized parameter: [foo]"));
}
