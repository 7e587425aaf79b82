//! Passthrough, ES identity, vendor media types, PIT and stubs, against osmem behind the shim.

mod common;

use common::{assert_error, call, client, raw, unique, url};
use serde_json::{json, Value};

const V8_JSON: &str = "application/vnd.elasticsearch+json; compatible-with=8";
const V8_NDJSON: &str = "application/vnd.elasticsearch+x-ndjson; compatible-with=8";

#[tokio::test]
async fn root_is_elasticsearch_9() {
    let resp = client().get(url()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-elastic-product"], "Elasticsearch");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["version"]["number"], "9.2.0");
    assert_eq!(v["version"]["build_flavor"], "default");
    assert_eq!(v["version"]["build_snapshot"], false);
    assert_eq!(v["tagline"], "You Know, for Search");
    for key in [
        "build_type",
        "build_hash",
        "build_date",
        "lucene_version",
        "minimum_wire_compatibility_version",
        "minimum_index_compatibility_version",
    ] {
        assert!(v["version"][key].is_string(), "{key}");
    }
    assert!(
        v["cluster_uuid"].is_string() && v["name"].is_string() && v["cluster_name"].is_string()
    );
    let head = client().head(url()).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["x-elastic-product"], "Elasticsearch");
}

#[tokio::test]
async fn es_version_flag_is_reported() {
    let shim = es_shim::ShimHandle::start(es_shim::ShimConfig {
        es_version: "8.19.3".into(),
        ..es_shim::ShimConfig::new(osmem::shared().url())
    })
    .unwrap();
    let v: Value = client()
        .get(shim.url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"]["number"], "8.19.3");
    shim.shutdown();
}

#[tokio::test]
async fn passthrough_round_trip_and_errors() {
    let index = unique("pass");
    let (status, created) = call(
        "PUT",
        &format!("/{index}"),
        Some(json!({"settings": {"number_of_replicas": 0}})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (status, doc) = call(
        "PUT",
        &format!("/{index}/_doc/1?refresh=true"),
        Some(json!({"title": "hello world"})),
    )
    .await;
    assert_eq!((status, doc["result"].as_str()), (201, Some("created")));
    let bulk = format!("{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"2\"}}}}\n{{\"title\":\"second\"}}\n{{\"delete\":{{\"_index\":\"{index}\",\"_id\":\"1\"}}}}\n");
    let (status, _, answer) =
        raw("POST", "/_bulk?refresh=true", "application/x-ndjson", &bulk).await;
    assert_eq!(status, 200);
    assert_eq!(answer["errors"], false);
    assert_eq!(answer["items"].as_array().unwrap().len(), 2);
    let (_, found) = call(
        "POST",
        &format!("/{index}/_search"),
        Some(json!({"query": {"match": {"title": "second"}}})),
    )
    .await;
    assert_eq!(found["hits"]["total"]["value"], 1);
    assert_eq!(found["hits"]["hits"][0]["_id"], "2");

    let head = client()
        .head(format!("{}/{index}/_doc/2", url()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let head = client()
        .head(format!("{}/{index}/_doc/nope", url()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404);
    assert_eq!(head.headers()["x-elastic-product"], "Elasticsearch");

    // osmem's errors come through with their status and body.
    let r = call("GET", &format!("/{}/_doc/1", unique("absent")), None).await;
    assert_error(&r, 404, "index_not_found_exception");
    let r = call(
        "PUT",
        &format!("/{index}/_doc/2?if_seq_no=99&if_primary_term=1"),
        Some(json!({"x": 1})),
    )
    .await;
    assert_error(&r, 409, "version_conflict_engine_exception");
    let (status, _, body) = raw(
        "POST",
        &format!("/{index}/_search"),
        "application/json",
        "{not json",
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn vendor_media_types_work() {
    let index = unique("vendor");
    let bulk = format!("{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"a\"}}}}\n{{\"n\":1}}\n");
    let resp = client()
        .post(format!("{}/_bulk?refresh=true", url()))
        .header("content-type", V8_NDJSON)
        .header("accept", V8_JSON)
        .body(bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.elasticsearch+json;compatible-with=8"
    );
    assert_eq!(resp.headers()["x-elastic-product"], "Elasticsearch");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errors"], false, "{v}");

    let resp = client()
        .post(format!("{}/{index}/_search", url()))
        .header(
            "content-type",
            "application/vnd.elasticsearch+json; compatible-with=9",
        )
        .header(
            "accept",
            "application/vnd.elasticsearch+json; compatible-with=9",
        )
        .body(r#"{"query":{"match_all":{}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.elasticsearch+json;compatible-with=9"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["hits"]["total"]["value"], 1);

    // Shim-generated answers get the vendor type too.
    let resp = client()
        .get(url())
        .header("accept", V8_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.elasticsearch+json;compatible-with=8"
    );
    let resp = client()
        .put(format!("{}/_connector/{}", url(), unique("vc")))
        .header("content-type", V8_JSON)
        .header("accept", V8_JSON)
        .body("{\"service_type\":\"slack\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn es_style_point_in_time() {
    let index = unique("pit");
    call(
        "PUT",
        &format!("/{index}/_doc/1?refresh=true"),
        Some(json!({"n": 1})),
    )
    .await;
    let (status, opened) = call("POST", &format!("/{index}/_pit?keep_alive=1m"), None).await;
    assert_eq!(status, 200, "{opened}");
    let id = opened["id"].as_str().unwrap().to_string();
    // A doc added later is not in the snapshot.
    call(
        "PUT",
        &format!("/{index}/_doc/2?refresh=true"),
        Some(json!({"n": 2})),
    )
    .await;
    let (status, page) = call("POST", "/_search", Some(json!({"pit": {"id": id, "keep_alive": "1m"}, "size": 10, "sort": [{"_shard_doc": "asc"}]}))).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["hits"]["hits"].as_array().unwrap().len(), 1);
    assert!(page["pit_id"].is_string(), "ES returns pit_id: {page}");
    assert_eq!(
        call("DELETE", "/_pit", Some(json!({"id": id}))).await,
        (200, json!({"succeeded": true, "num_freed": 1}))
    );
    assert_error(
        &call("POST", &format!("/{index}/_pit"), None).await,
        400,
        "action_request_validation_exception",
    );
    assert_error(
        &call(
            "POST",
            &format!("/{}/_pit?keep_alive=1m", unique("nopit")),
            None,
        )
        .await,
        404,
        "index_not_found_exception",
    );
}

#[tokio::test]
async fn license_and_authenticate_stubs() {
    let (status, lic) = call("GET", "/_license", None).await;
    assert_eq!(status, 200);
    assert_eq!(lic["license"]["status"], "active");
    assert_eq!(lic["license"]["type"], "trial");
    let (status, me) = call("GET", "/_security/_authenticate", None).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "elastic");
}

#[tokio::test]
async fn unknown_connector_paths_are_es_errors() {
    let r = call("PUT", "/_connector/x/_bogus", Some(json!({}))).await;
    assert_eq!(
        assert_error(&r, 400, "illegal_argument_exception"),
        "no handler found for uri [/_connector/x/_bogus] and method [PUT]"
    );
}
