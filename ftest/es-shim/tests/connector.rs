//! `_connector` endpoints on connector documents against a real osmem behind the shim.

mod common;

use common::{assert_error, call, new_connector, unique};
use serde_json::{json, Value};

#[tokio::test]
async fn put_fills_es_defaults_and_get_adds_id() {
    let (id, index) = new_connector().await;
    let (status, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["id"], id.as_str());
    assert_eq!(c["index_name"], index.as_str());
    assert_eq!(c["name"], "Slack");
    assert_eq!(c["service_type"], "slack");
    assert_eq!(c["language"], "en");
    assert_eq!(c["status"], "created");
    assert_eq!(c["is_native"], false);
    assert_eq!(c["deleted"], false);
    assert_eq!(c["sync_now"], false);
    assert_eq!(c["configuration"], json!({}));
    assert_eq!(c["custom_scheduling"], json!({}));
    for kind in ["full", "incremental", "access_control"] {
        assert_eq!(
            c["scheduling"][kind],
            json!({"enabled": false, "interval": "0 0 0 * * ?"})
        );
    }
    let f = &c["filtering"][0];
    assert_eq!(f["domain"], "DEFAULT");
    for side in ["active", "draft"] {
        let rule = &f[side]["rules"][0];
        assert_eq!(rule["id"], "DEFAULT");
        assert_eq!(rule["policy"], "include");
        assert_eq!(rule["rule"], "regex");
        assert_eq!(rule["value"], ".*");
        assert_eq!(rule["field"], "_");
        assert_eq!(rule["order"], 0);
        assert!(rule["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            f[side]["validation"],
            json!({"errors": [], "state": "valid"})
        );
        assert_eq!(f[side]["advanced_snippet"]["value"], json!({}));
    }
    // ES leaves out what it does not know yet.
    for absent in [
        "pipeline",
        "features",
        "last_seen",
        "last_sync_status",
        "error",
        "description",
    ] {
        assert!(c.get(absent).is_none(), "{absent} should be absent: {c}");
    }
}

#[tokio::test]
async fn put_again_updates_post_generates_id_native_needs_configuration() {
    let (id, index) = new_connector().await;
    let (status, r) = call(
        "PUT",
        &format!("/_connector/{id}"),
        Some(json!({"index_name": index, "service_type": "slack", "description": "d"})),
    )
    .await;
    assert_eq!((status, r), (200, json!({"id": id, "result": "updated"})));
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(c["description"], "d");
    assert_eq!(c["name"], "");

    let (status, r) = call(
        "POST",
        "/_connector",
        Some(
            json!({"index_name": unique("content-x"), "is_native": true, "service_type": "slack"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["result"], "created");
    let gen = r["id"].as_str().unwrap();
    let (_, c) = call("GET", &format!("/_connector/{gen}"), None).await;
    assert_eq!(c["status"], "needs_configuration");
    assert_eq!(c["is_native"], true);
}

#[tokio::test]
async fn create_validation_errors() {
    let id = unique("conn");
    let r = call(
        "PUT",
        &format!("/_connector/{id}"),
        Some(json!({"bogus": 1})),
    )
    .await;
    assert!(assert_error(&r, 400, "x_content_parse_exception").contains("unknown field [bogus]"));
    let r = call(
        "PUT",
        &format!("/_connector/{id}"),
        Some(json!({"index_name": "Upper"})),
    )
    .await;
    assert!(
        assert_error(&r, 400, "action_request_validation_exception").contains("must be lowercase")
    );
    let r = call(
        "PUT",
        &format!("/_connector/{id}"),
        Some(json!({"index_name": "plain", "is_native": true})),
    )
    .await;
    assert!(assert_error(&r, 400, "action_request_validation_exception").contains("content-"));
    let r = call(
        "PUT",
        &format!("/_connector/{id}"),
        Some(json!({"name": 5})),
    )
    .await;
    assert_error(&r, 400, "x_content_parse_exception");
    // An index attached to another connector.
    let (_, index) = new_connector().await;
    let r = call(
        "PUT",
        &format!("/_connector/{id}"),
        Some(json!({"index_name": index})),
    )
    .await;
    assert_eq!(
        assert_error(&r, 400, "status_exception"),
        format!("Index name [{index}] is used by another connector.")
    );
}

#[tokio::test]
async fn missing_connector_is_404_everywhere() {
    let id = unique("missing");
    let want = format!("connector [{id}] not found");
    let r = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(assert_error(&r, 404, "resource_not_found_exception"), want);
    for (path, body) in [
        ("_check_in", Value::Null),
        ("_configuration", json!({"values": {}})),
        ("_scheduling", json!({"scheduling": {}})),
        ("_status", json!({"status": "connected"})),
        ("_error", json!({"error": "x"})),
        ("_name", json!({"name": "x"})),
        ("_filtering/_activate", Value::Null),
    ] {
        let b = if body.is_null() { None } else { Some(body) };
        let r = call("PUT", &format!("/_connector/{id}/{path}"), b).await;
        assert_eq!(
            assert_error(&r, 404, "resource_not_found_exception"),
            want,
            "{path}"
        );
    }
    let r = call("DELETE", &format!("/_connector/{id}"), None).await;
    assert_error(&r, 404, "resource_not_found_exception");
}

#[tokio::test]
async fn check_in_sets_last_seen() {
    let (id, _) = new_connector().await;
    let r = call("PUT", &format!("/_connector/{id}/_check_in"), None).await;
    assert_eq!(r, (200, json!({"result": "updated"})));
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    let seen = c["last_seen"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(seen).is_ok(), "{seen}");
}

#[tokio::test]
async fn configuration_schema_then_values() {
    let (id, _) = new_connector().await;
    let path = format!("/_connector/{id}/_configuration");
    let schema = json!({"token": {"label": "Token", "type": "str", "value": "", "sensitive": true},
                        "channels": {"label": "Channels", "type": "list", "value": "a,b"}});
    let r = call("PUT", &path, Some(json!({"configuration": schema}))).await;
    assert_eq!(r, (200, json!({"result": "updated"})));
    let r = call("PUT", &path, Some(json!({"values": {"token": "xoxb-1"}}))).await;
    assert_eq!(r, (200, json!({"result": "updated"})));
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(c["status"], "configured");
    assert_eq!(c["configuration"]["token"]["value"], "xoxb-1");
    assert_eq!(c["configuration"]["token"]["label"], "Token");
    assert_eq!(c["configuration"]["token"]["sensitive"], true);
    assert_eq!(c["configuration"]["channels"]["value"], "a,b");

    let r = call(
        "PUT",
        &path,
        Some(json!({"values": {"token": "x", "zeta": 1, "alpha": 2}})),
    )
    .await;
    assert_eq!(
        assert_error(&r, 400, "status_exception"),
        "Unknown [configuration] fields in the request payload: [alpha, zeta]. Remove them from request or register their schema first."
    );
    let r = call("PUT", &path, Some(json!({}))).await;
    assert_error(&r, 400, "action_request_validation_exception");
    let r = call("PUT", &path, None).await;
    assert_error(&r, 400, "parse_exception");
    // ES's connector_configuration parser requires a label and refuses array values.
    for field in [json!({"value": 1}), json!({"label": "L", "value": [1]})] {
        let r = call("PUT", &path, Some(json!({"configuration": {"f": field}}))).await;
        assert_eq!(
            assert_error(&r, 400, "x_content_parse_exception"),
            "[1:2] [connector_update_configuration_request] failed to parse field [configuration]"
        );
    }
    // Replacing the schema drops old fields.
    call(
        "PUT",
        &path,
        Some(json!({"configuration": {"only": {"label": "Only", "value": 1}}})),
    )
    .await;
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(
        c["configuration"],
        json!({"only": {"label": "Only", "value": 1}})
    );
}

#[tokio::test]
async fn scheduling_merges_and_noop() {
    let (id, _) = new_connector().await;
    let path = format!("/_connector/{id}/_scheduling");
    let body = json!({"scheduling": {"full": {"enabled": true, "interval": "0 * * * * ?"}}});
    assert_eq!(
        call("PUT", &path, Some(body.clone())).await,
        (200, json!({"result": "updated"}))
    );
    assert_eq!(
        call("PUT", &path, Some(body)).await,
        (200, json!({"result": "noop"}))
    );
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(
        c["scheduling"]["full"],
        json!({"enabled": true, "interval": "0 * * * * ?"})
    );
    assert_eq!(c["scheduling"]["incremental"]["enabled"], false);
    // ES's connector_scheduling parser ignores what it does not know...
    let r = call("PUT", &path, Some(json!({"scheduling": {"weekly": {}}}))).await;
    assert_eq!(r, (200, json!({"result": "noop"})));
    // ...but not wrong types, nor unknown fields of the request itself.
    let bad = json!({"scheduling": {"full": {"enabled": "yes", "interval": "0 * * * * ?"}}});
    let r = call("PUT", &path, Some(bad)).await;
    assert_eq!(
        assert_error(&r, 400, "x_content_parse_exception"),
        "[1:2] [connector_update_scheduling_request] failed to parse field [scheduling]"
    );
    let r = call("PUT", &path, Some(json!({"scheduling": {}, "extra": 1}))).await;
    assert!(assert_error(&r, 400, "x_content_parse_exception")
        .ends_with("[connector_update_scheduling_request] unknown field [extra]"));
}

#[tokio::test]
async fn filtering_draft_validation_activation() {
    let (id, _) = new_connector().await;
    let rules = json!([{"id": "r1", "field": "channel", "policy": "exclude", "rule": "equals", "value": "random", "order": 3}]);
    let r = call(
        "PUT",
        &format!("/_connector/{id}/_filtering"),
        Some(json!({"rules": rules})),
    )
    .await;
    assert_eq!(r, (200, json!({"result": "updated"})));
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    let draft = &c["filtering"][0]["draft"];
    assert_eq!(
        draft["validation"],
        json!({"errors": [], "state": "edited"})
    );
    let ids: Vec<&str> = draft["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r1", "DEFAULT"]);
    assert_eq!(draft["rules"][1]["order"], 4);
    assert_eq!(
        c["filtering"][0]["active"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let r = call(
        "PUT",
        &format!("/_connector/{id}/_filtering/_activate"),
        None,
    )
    .await;
    assert!(assert_error(&r, 400, "status_exception").contains("[edited] is not equal to [valid]"));

    let r = call(
        "PUT",
        &format!("/_connector/{id}/_filtering/_validation"),
        Some(json!({"validation": {"state": "valid", "errors": []}})),
    )
    .await;
    assert_eq!(r, (200, json!({"result": "updated"})));
    let r = call(
        "PUT",
        &format!("/_connector/{id}/_filtering/_activate"),
        None,
    )
    .await;
    assert_eq!(r, (200, json!({"result": "updated"})));
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(c["filtering"][0]["active"], c["filtering"][0]["draft"]);
    assert_eq!(c["filtering"][0]["active"]["rules"][0]["id"], "r1");

    let r = call(
        "PUT",
        &format!("/_connector/{id}/_filtering"),
        Some(json!({})),
    )
    .await;
    assert_error(&r, 400, "action_request_validation_exception");
}

#[tokio::test]
async fn status_and_error_follow_es_rules() {
    let (id, _) = new_connector().await;
    let st = format!("/_connector/{id}/_status");
    let r = call("PUT", &st, Some(json!({"status": "connected"}))).await;
    assert!(assert_error(&r, 400, "status_exception")
        .contains("Invalid transition attempt from [created] to [connected]"));
    let r = call("PUT", &st, Some(json!({"status": "bogus"}))).await;
    assert_error(&r, 400, "illegal_argument_exception");
    assert_eq!(
        call("PUT", &st, Some(json!({"status": "needs_configuration"})))
            .await
            .0,
        200
    );

    let er = format!("/_connector/{id}/_error");
    assert_eq!(
        call("PUT", &er, Some(json!({"error": "boom"}))).await,
        (200, json!({"result": "updated"}))
    );
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(
        (c["status"].as_str(), c["error"].as_str()),
        (Some("error"), Some("boom"))
    );
    assert_eq!(call("PUT", &er, Some(json!({"error": null}))).await.0, 200);
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(c["status"], "connected");
    assert!(c["error"].is_null());
    let r = call("PUT", &er, Some(json!({}))).await;
    assert_eq!(
        assert_error(&r, 400, "illegal_argument_exception"),
        "Required [error]"
    );
}

#[tokio::test]
async fn small_updates() {
    let (id, _) = new_connector().await;
    let put = |p: &'static str, b: Value| {
        let id = id.clone();
        async move { call("PUT", &format!("/_connector/{id}/{p}"), Some(b)).await }
    };
    assert_eq!(
        put("_name", json!({"name": "N", "description": "D"}))
            .await
            .0,
        200
    );
    let pipeline = json!({"name": "my-pipe", "extract_binary_content": false, "reduce_whitespace": true, "run_ml_inference": false});
    assert_eq!(put("_pipeline", json!({"pipeline": pipeline})).await.0, 200);
    assert_error(
        &put("_pipeline", json!({"pipeline": {"name": "x"}})).await,
        400,
        "x_content_parse_exception",
    );
    assert_eq!(
        put(
            "_features",
            json!({"features": {"incremental_sync": {"enabled": true}}})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        put(
            "_api_key_id",
            json!({"api_key_id": "k", "api_key_secret_id": "s"})
        )
        .await
        .0,
        200
    );
    assert_error(
        &put("_api_key_id", json!({})).await,
        400,
        "action_request_validation_exception",
    );
    assert_eq!(put("_last_sync", json!({"last_sync_status": "completed", "last_indexed_document_count": 7, "last_synced": "2026-01-01T00:00:00Z"})).await.0, 200);
    assert_error(
        &put("_last_sync", json!({"last_sync_status": "nope"})).await,
        400,
        "illegal_argument_exception",
    );
    let new_index = unique("search-renamed");
    assert_eq!(
        put("_index_name", json!({"index_name": new_index})).await.0,
        200
    );
    assert_eq!(
        put("_service_type", json!({"service_type": "slack2"}))
            .await
            .0,
        200
    );
    assert_error(
        &put("_native", json!({"is_native": true})).await,
        400,
        "status_exception",
    );
    let (_, c) = call("GET", &format!("/_connector/{id}"), None).await;
    assert_eq!(c["name"], "N");
    assert_eq!(c["description"], "D");
    assert_eq!(c["pipeline"], pipeline);
    assert_eq!(c["features"]["incremental_sync"]["enabled"], true);
    assert_eq!(
        (c["api_key_id"].as_str(), c["api_key_secret_id"].as_str()),
        (Some("k"), Some("s"))
    );
    assert_eq!(c["last_sync_status"], "completed");
    assert_eq!(c["last_indexed_document_count"], 7);
    assert_eq!(c["index_name"], new_index.as_str());
    assert_eq!(c["service_type"], "slack2");
    assert_eq!(c["status"], "created", "service_type keeps created");
}

#[tokio::test]
async fn soft_and_hard_delete() {
    let (id, _) = new_connector().await;
    assert_eq!(
        call("DELETE", &format!("/_connector/{id}"), None).await,
        (200, json!({"acknowledged": true}))
    );
    assert_error(
        &call("GET", &format!("/_connector/{id}"), None).await,
        404,
        "resource_not_found_exception",
    );
    let (status, c) = call(
        "GET",
        &format!("/_connector/{id}?include_deleted=true"),
        None,
    )
    .await;
    assert_eq!((status, &c["deleted"]), (200, &json!(true)));
    assert_error(
        &call("DELETE", &format!("/_connector/{id}"), None).await,
        404,
        "resource_not_found_exception",
    );

    let (id2, _) = new_connector().await;
    let job = common::new_job(&id2, json!({})).await;
    assert_eq!(
        call(
            "DELETE",
            &format!("/_connector/{id2}?hard=true&delete_sync_jobs=true"),
            None
        )
        .await
        .0,
        200
    );
    assert_error(
        &call(
            "GET",
            &format!("/_connector/{id2}?include_deleted=true"),
            None,
        )
        .await,
        404,
        "resource_not_found_exception",
    );
    assert_error(
        &call("GET", &format!("/_connector/_sync_job/{job}"), None).await,
        404,
        "resource_not_found_exception",
    );
}

#[tokio::test]
async fn list_filters() {
    let st = unique("svc");
    let mut ids = Vec::new();
    for (i, name) in ["alpha", "beta", "gamma"].iter().enumerate() {
        let id = unique("list");
        let index = format!("{}-{i}", unique("search-list"));
        call("PUT", &format!("/_connector/{id}"), Some(json!({"index_name": index, "name": name, "service_type": st, "description": format!("about {name}")}))).await;
        ids.push((id, index));
    }
    let (status, all) = call("GET", &format!("/_connector?service_type={st}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(all["count"], 3);
    let names: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"], "sorted by index_name");
    assert!(all["results"][0]["id"].is_string());

    let (_, page) = call(
        "GET",
        &format!("/_connector?service_type={st}&from=1&size=1"),
        None,
    )
    .await;
    assert_eq!(page["count"], 3);
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(page["results"][0]["name"], "beta");

    let (_, by_index) = call(
        "GET",
        &format!("/_connector?index_name={},{}", ids[0].1, ids[2].1),
        None,
    )
    .await;
    assert_eq!(by_index["count"], 2);
    let (_, by_name) = call(
        "GET",
        &format!("/_connector?service_type={st}&connector_name=gamma"),
        None,
    )
    .await;
    assert_eq!(by_name["count"], 1);
    let (_, by_query) = call(
        "GET",
        &format!("/_connector?service_type={st}&query=bet"),
        None,
    )
    .await;
    assert_eq!(by_query["count"], 1);
    assert_eq!(by_query["results"][0]["name"], "beta");

    call("DELETE", &format!("/_connector/{}", ids[1].0), None).await;
    let (_, live) = call("GET", &format!("/_connector?service_type={st}"), None).await;
    assert_eq!(live["count"], 2);
    let (_, with_deleted) = call(
        "GET",
        &format!("/_connector?service_type={st}&include_deleted=true"),
        None,
    )
    .await;
    assert_eq!(with_deleted["count"], 3);
    assert_error(
        &call("GET", "/_connector?from=-1", None).await,
        400,
        "action_request_validation_exception",
    );
}

#[tokio::test]
async fn connector_indices_are_es_shaped() {
    new_connector().await;
    let (_, settings) = call("GET", "/.elastic-connectors-v1/_settings", None).await;
    let s = &settings[".elastic-connectors-v1"]["settings"]["index"];
    assert_eq!(s["hidden"], "true");
    assert_eq!(s["number_of_shards"], "1");
    assert_eq!(s["auto_expand_replicas"], "0-1");
    let (_, mapping) = call("GET", "/.elastic-connectors-sync-jobs-v1/_mapping", None).await;
    let m = &mapping[".elastic-connectors-sync-jobs-v1"]["mappings"];
    assert_eq!(m["dynamic"], "false");
    assert_eq!(
        m["properties"]["connector"]["properties"]["id"]["type"],
        "keyword"
    );
    assert_eq!(m["properties"]["job_type"]["type"], "keyword");
    let (status, _) = call("GET", "/_alias/.elastic-connectors", None).await;
    assert_eq!(status, 200);
    let (status, _) = call("GET", "/_alias/.elastic-connectors-sync-jobs", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn secrets_round_trip() {
    let (status, r) = call(
        "POST",
        "/_connector/_secret",
        Some(json!({"value": "s3cr3t"})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let id = r["id"].as_str().unwrap();
    assert_eq!(
        call("GET", &format!("/_connector/_secret/{id}"), None).await,
        (200, json!({"id": id, "value": "s3cr3t"}))
    );
    assert_error(
        &call("POST", "/_connector/_secret", Some(json!({}))).await,
        400,
        "action_request_validation_exception",
    );
    assert_eq!(
        call("DELETE", &format!("/_connector/_secret/{id}"), None).await,
        (200, json!({"deleted": true}))
    );
    assert_error(
        &call("GET", &format!("/_connector/_secret/{id}"), None).await,
        404,
        "resource_not_found_exception",
    );
}
