//! Ingest pipelines: storage API, and processors applied in `_bulk` and single-doc writes.

mod common;

use common::{assert_error, call, raw, unique};
use serde_json::{json, Value};

async fn source(index: &str, id: &str) -> Value {
    let (status, doc) = call("GET", &format!("/{index}/_doc/{id}"), None).await;
    assert_eq!(status, 200, "{doc}");
    doc["_source"].clone()
}

async fn put_pipeline(id: &str, body: Value) {
    let r = call("PUT", &format!("/_ingest/pipeline/{id}"), Some(body)).await;
    assert_eq!(r, (200, json!({"acknowledged": true})));
}

fn strip_pipeline() -> Value {
    json!({"description": "like search-default-ingestion's cleanup",
           "processors": [
               {"remove": {"field": ["_extract_binary_content", "_reduce_whitespace", "_run_ml_inference"], "ignore_missing": true}},
               {"set": {"field": "copied", "value": "{{title}}"}},
               {"rename": {"field": "legacy", "target_field": "modern", "ignore_missing": true}}]})
}

#[tokio::test]
async fn pipeline_crud() {
    let id = unique("crud");
    put_pipeline(&id, strip_pipeline()).await;
    let (status, got) = call("GET", &format!("/_ingest/pipeline/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got[&id], strip_pipeline());
    let (status, all) = call("GET", "/_ingest/pipeline", None).await;
    assert_eq!(status, 200);
    assert!(all.get(&id).is_some());
    let (status, wild) = call(
        "GET",
        &format!("/_ingest/pipeline/{}*", &id[..id.len() - 2]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(wild.get(&id).is_some());
    assert_eq!(
        call("DELETE", &format!("/_ingest/pipeline/{id}"), None).await,
        (200, json!({"acknowledged": true}))
    );
    assert_eq!(
        call("GET", &format!("/_ingest/pipeline/{id}"), None).await,
        (404, json!({}))
    );
    assert_error(
        &call("DELETE", &format!("/_ingest/pipeline/{id}"), None).await,
        404,
        "resource_not_found_exception",
    );
    assert_error(
        &call(
            "PUT",
            "/_ingest/pipeline/bad",
            Some(json!({"description": "no processors"})),
        )
        .await,
        400,
        "parse_exception",
    );
    assert_error(
        &call(
            "PUT",
            "/_ingest/pipeline/bad",
            Some(json!({"processors": [{"rename": {"field": "a"}}]})),
        )
        .await,
        400,
        "parse_exception",
    );
}

#[tokio::test]
async fn bulk_applies_processors_per_item() {
    let pipe = unique("strip");
    put_pipeline(&pipe, strip_pipeline()).await;
    let strict = unique("strict");
    put_pipeline(
        &strict,
        json!({"processors": [{"remove": {"field": "must_exist"}}]}),
    )
    .await;
    let index = unique("bulkpipe");
    let missing = unique("missing-pipe");
    let lines = [
        json!({"index": {"_index": index, "_id": "1"}}),
        json!({"title": "one", "_extract_binary_content": true, "_reduce_whitespace": true, "_run_ml_inference": true, "legacy": 1}),
        json!({"index": {"_index": index, "_id": "2", "pipeline": missing}}),
        json!({"title": "two"}),
        json!({"create": {"_index": index, "_id": "3", "pipeline": "_none"}}),
        json!({"title": "three", "_extract_binary_content": true}),
        json!({"delete": {"_index": index, "_id": "nothing"}}),
        json!({"index": {"_index": index, "_id": "4", "pipeline": strict}}),
        json!({"title": "four"}),
        json!({"update": {"_index": index, "_id": "1"}}),
        json!({"doc": {"extra": true}}),
        json!({"index": {"_index": index, "_id": "5", "pipeline": strict}}),
        json!({"title": "five", "must_exist": 1}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let (status, _, answer) = raw(
        "POST",
        &format!("/_bulk?pipeline={pipe}&refresh=true"),
        "application/x-ndjson",
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], true);
    let items = answer["items"].as_array().unwrap();
    let statuses: Vec<i64> = items
        .iter()
        .map(|i| {
            i.as_object().unwrap().values().next().unwrap()["status"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(statuses, [201, 400, 201, 404, 400, 200, 201]);
    let unknown = &items[1]["index"];
    assert_eq!(unknown["_id"], "2");
    assert_eq!(unknown["error"]["type"], "illegal_argument_exception");
    assert_eq!(
        unknown["error"]["reason"],
        format!("pipeline with id [{missing}] does not exist")
    );
    assert_eq!(
        items[4]["index"]["error"]["reason"],
        "field [must_exist] not present as part of path [must_exist]"
    );

    assert_eq!(
        source(&index, "1").await,
        json!({"title": "one", "copied": "one", "modern": 1, "extra": true})
    );
    assert_eq!(
        source(&index, "3").await,
        json!({"title": "three", "_extract_binary_content": true}),
        "_none: untouched"
    );
    assert_eq!(source(&index, "5").await, json!({"title": "five"}));
    assert_eq!(call("GET", &format!("/{index}/_doc/2"), None).await.0, 404);
    assert_eq!(call("GET", &format!("/{index}/_doc/4"), None).await.0, 404);
}

#[tokio::test]
async fn bulk_on_index_path_and_all_items_failing() {
    let index = unique("idxbulk");
    let pipe = unique("setter");
    put_pipeline(
        &pipe,
        json!({"processors": [{"set": {"field": "tag", "value": "x", "override": false}}]}),
    )
    .await;
    let body = "{\"index\":{\"_id\":\"a\"}}\n{\"n\":1}\n{\"index\":{\"_id\":\"b\"}}\n{\"n\":2,\"tag\":\"keep\"}\n";
    let (status, _, answer) = raw(
        "POST",
        &format!("/{index}/_bulk?pipeline={pipe}&refresh=true"),
        "application/json",
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], false);
    assert_eq!(source(&index, "a").await, json!({"n": 1, "tag": "x"}));
    assert_eq!(source(&index, "b").await, json!({"n": 2, "tag": "keep"}));

    let (status, _, answer) = raw(
        "POST",
        &format!("/{index}/_bulk?pipeline=nope-{index}"),
        "application/json",
        body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["errors"], true);
    assert_eq!(answer["items"].as_array().unwrap().len(), 2);
    assert_eq!(answer["items"][1]["index"]["status"], 400);

    // `pipeline=_none` passes through.
    let (status, _, answer) = raw(
        "POST",
        &format!("/{index}/_bulk?pipeline=_none"),
        "application/json",
        "{\"index\":{\"_id\":\"c\"}}\n{\"n\":3}\n",
    )
    .await;
    assert_eq!((status, &answer["errors"]), (200, &json!(false)));
}

#[tokio::test]
async fn single_document_writes() {
    let index = unique("single");
    let pipe = unique("one");
    put_pipeline(&pipe, strip_pipeline()).await;
    let (status, r) = call(
        "PUT",
        &format!("/{index}/_doc/1?pipeline={pipe}&refresh=true"),
        Some(json!({"title": "t", "_run_ml_inference": false})),
    )
    .await;
    assert_eq!(
        (status, r["result"].as_str()),
        (201, Some("created")),
        "{r}"
    );
    assert_eq!(
        source(&index, "1").await,
        json!({"title": "t", "copied": "t"})
    );
    let (status, r) = call(
        "POST",
        &format!("/{index}/_doc?pipeline={pipe}"),
        Some(json!({"title": "auto"})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(
        source(&index, r["_id"].as_str().unwrap()).await["copied"],
        "auto"
    );
    let (status, _) = call(
        "PUT",
        &format!("/{index}/_create/9?pipeline={pipe}"),
        Some(json!({"title": "c"})),
    )
    .await;
    assert_eq!(status, 201);
    let r = call(
        "PUT",
        &format!("/{index}/_doc/2?pipeline=nope-{index}"),
        Some(json!({"title": "t"})),
    )
    .await;
    assert_eq!(
        assert_error(&r, 400, "illegal_argument_exception"),
        format!("pipeline with id [nope-{index}] does not exist")
    );
    let (status, _) = call(
        "PUT",
        &format!("/{index}/_doc/3?pipeline=_none"),
        Some(json!({"_run_ml_inference": true})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        source(&index, "3").await,
        json!({"_run_ml_inference": true})
    );
}

#[tokio::test]
async fn rewritten_bodies_may_grow_or_shrink() {
    let index = unique("sizes");
    let grow = unique("grow");
    let big = "g".repeat(20_000);
    put_pipeline(
        &grow,
        json!({"processors": [{"set": {"field": "big", "value": big}}]}),
    )
    .await;
    let shrink = unique("shrink");
    put_pipeline(
        &shrink,
        json!({"processors": [{"remove": {"field": "blob"}}]}),
    )
    .await;
    let blob = "s".repeat(20_000);
    let body = format!(
        "{{\"index\":{{\"_id\":\"g\",\"pipeline\":\"{grow}\"}}}}\n{{\"n\":1}}\n{{\"index\":{{\"_id\":\"s\",\"pipeline\":\"{shrink}\"}}}}\n{{\"blob\":\"{blob}\"}}\n"
    );
    let (status, _, answer) = raw(
        "POST",
        &format!("/{index}/_bulk?refresh=true"),
        "application/x-ndjson",
        &body,
    )
    .await;
    assert_eq!(
        (status, &answer["errors"]),
        (200, &json!(false)),
        "{answer}"
    );
    assert_eq!(
        source(&index, "g").await["big"].as_str().map(str::len),
        Some(20_000)
    );
    assert_eq!(source(&index, "s").await, json!({}));
    let (status, _) = call(
        "PUT",
        &format!("/{index}/_doc/x?pipeline={shrink}"),
        Some(json!({"blob": blob, "k": 1})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(source(&index, "x").await, json!({"k": 1}));
}
