//! Component tests of the Elasticsearch layer against an HTTP fake (wiremock) and against
//! the local test server (osmem-server).

use connectors::config::{ElasticsearchConfig, Secret};
use connectors::es::{EsClient, EsError};
use connectors::retry::RetryParams;
use elasticsearch::http::Method;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config(host: &str) -> ElasticsearchConfig {
    ElasticsearchConfig {
        host: host.to_string(),
        request_timeout: 0.5,
        ..ElasticsearchConfig::default()
    }
}

fn client(host: &str) -> EsClient {
    EsClient::new(&config(host))
        .unwrap()
        .with_retry(RetryParams::for_test())
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/idx/_doc/1"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/idx/_doc/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"found": true})))
        .expect(1)
        .mount(&server)
        .await;
    let doc = client(&server.uri()).get_doc("idx", "1").await.unwrap();
    assert_eq!(doc.unwrap()["found"], true);
}

#[tokio::test]
async fn does_not_retry_400() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/idx/_search"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": {"type": "parsing_exception", "reason": "unknown query [bogus]"}, "status": 400
        })))
        .expect(1)
        .mount(&server)
        .await;
    let error = client(&server.uri())
        .search("idx", serde_json::json!({"query": {"bogus": {}}}))
        .await
        .unwrap_err();
    match &error {
        EsError::Status {
            status,
            error_type,
            reason,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(error_type, "parsing_exception");
            assert!(reason.contains("bogus"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn conflict_is_a_typed_version_conflict() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/idx/_update/1"))
        .respond_with(ResponseTemplate::new(409).set_body_json(serde_json::json!({
            "error": {"type": "version_conflict_engine_exception", "reason": "[1]: version conflict, required seqNo [3]"},
            "status": 409
        })))
        .expect(1)
        .mount(&server)
        .await;
    let error = client(&server.uri())
        .update_doc("idx", "1", serde_json::json!({"a": 1}), Some((3, 1)), false)
        .await
        .unwrap_err();
    assert!(error.is_version_conflict(), "{error:?}");
}

#[tokio::test]
async fn timeouts_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"version": {"number": "9.2.0"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let body = client(&server.uri())
        .json(Method::Get, "/", &[], None)
        .await
        .unwrap();
    assert_eq!(body["version"]["number"], "9.2.0");
}

#[tokio::test]
async fn sends_our_headers_and_api_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .and(header("x-elastic-product-origin", "connectors"))
        .and(header("authorization", "ApiKey c2VjcmV0"))
        .and(header("x-custom", "yes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri());
    cfg.api_key = Some(Secret::new("c2VjcmV0"));
    cfg.headers.insert("X-Custom".into(), "yes".into());
    let es = EsClient::new(&cfg).unwrap();
    es.json(Method::Get, "/", &[], None).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let agent = requests[0]
        .headers
        .get("user-agent")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(agent.starts_with("elastic-connectors-rust-"), "{agent}");
    assert!(!format!("{es:?}").contains("c2VjcmV0"));
}

#[tokio::test]
async fn unreachable_cluster_names_url_and_budget() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut cfg = config(&format!("http://127.0.0.1:{port}"));
    cfg.max_wait_duration = 0.3;
    cfg.initial_backoff_duration = 0.05;
    cfg.password = Secret::new("hunter2-password");
    let es = EsClient::new(&cfg).unwrap().with_retry(RetryParams {
        max_retries: 0,
        ..RetryParams::for_test()
    });
    let error = es.wait_for_cluster().await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    assert!(text.contains("max_wait_duration"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn against_osmem_documents_and_concurrency() {
    let osmem = osmem::shared();
    let es = client(osmem.url());
    let index = osmem::unique_name("es-client");
    assert!(es.create_index(&index, None).await.unwrap());
    assert!(
        !es.create_index(&index, None).await.unwrap(),
        "existing index is fine"
    );
    let created = es
        .index_doc(&index, Some("a"), serde_json::json!({"n": 1}), None, true)
        .await
        .unwrap();
    let seq_no = created["_seq_no"].as_u64().unwrap();
    let term = created["_primary_term"].as_u64().unwrap();
    es.update_doc(
        &index,
        "a",
        serde_json::json!({"n": 2}),
        Some((seq_no, term)),
        false,
    )
    .await
    .unwrap();
    let stale = es
        .update_doc(
            &index,
            "a",
            serde_json::json!({"n": 3}),
            Some((seq_no, term)),
            false,
        )
        .await
        .unwrap_err();
    assert!(stale.is_version_conflict(), "{stale:?}");
    assert_eq!(
        es.get_doc(&index, "a").await.unwrap().unwrap()["_source"]["n"],
        2
    );
    assert!(es.get_doc(&index, "missing").await.unwrap().is_none());
    es.refresh(&index).await.unwrap();
    assert_eq!(es.count(&index).await.unwrap(), 1);
    assert_eq!(es.count("no-such-index-anywhere").await.unwrap(), 0);
    es.delete_index(&index).await.unwrap();
    es.delete_index(&index).await.unwrap();
    // osmem says it is OpenSearch: the version check refuses it with the fix in the message.
    let info = es.info().await.unwrap();
    let mismatch = connectors::es::check_version(&info).unwrap_err();
    assert!(mismatch.to_string().contains("ALLOW_ES_VERSION_MISMATCH"));
}

#[tokio::test]
async fn connector_indices_are_created_as_elasticsearch_does() {
    let osmem = osmem::Osmem::start().unwrap();
    let es = client(osmem.url());
    let created = connectors::protocol::indices::ensure_connector_indices(&es)
        .await
        .unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(es.index_exists(".elastic-connectors").await.unwrap());
    assert!(es
        .index_exists(".elastic-connectors-sync-jobs")
        .await
        .unwrap());
    let settings = es
        .json(
            Method::Get,
            "/.elastic-connectors-sync-jobs-v1/_settings",
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        settings[".elastic-connectors-sync-jobs-v1"]["settings"]["index"]["hidden"],
        "true"
    );
    let mapping = es
        .json(
            Method::Get,
            "/.elastic-connectors-sync-jobs-v1/_mapping",
            &[],
            None,
        )
        .await
        .unwrap();
    let props = &mapping[".elastic-connectors-sync-jobs-v1"]["mappings"]["properties"];
    assert_eq!(props["status"]["type"], "keyword");
    assert_eq!(props["connector"]["properties"]["id"]["type"], "keyword");
    // Second run: everything exists and is used as it is.
    assert!(connectors::protocol::indices::ensure_connector_indices(&es)
        .await
        .unwrap()
        .is_empty());
}

/// Where Elasticsearch's `ConnectorTemplateRegistry` installed its templates, the connector
/// indices are created with no body (as the Python service's preflight does) and get the
/// templates' mappings and alias; the alias is added if a template brings none.
#[tokio::test]
async fn connector_indices_come_from_elasticsearchs_templates_when_present() {
    let osmem = osmem::Osmem::start().unwrap();
    let es = client(osmem.url());
    for (name, index, alias) in [
        (
            "elastic-connectors",
            ".elastic-connectors-v1",
            Some(".elastic-connectors"),
        ),
        (
            "elastic-connectors-sync-jobs",
            ".elastic-connectors-sync-jobs-v1",
            None,
        ),
    ] {
        let mut template = serde_json::json!({
            "index_patterns": [index],
            "template": {"settings": {"index": {"hidden": true, "number_of_replicas": 0}},
                         "mappings": {"_meta": {"version": 1, "from": "template"},
                                      "properties": {"marker": {"type": "keyword"}}}}});
        if let Some(alias) = alias {
            template["template"]["aliases"] = serde_json::json!({alias: {"is_hidden": true}});
        }
        es.json(
            Method::Put,
            &format!("/_index_template/{name}"),
            &[],
            Some(template),
        )
        .await
        .unwrap();
    }
    let created = connectors::protocol::indices::ensure_connector_indices(&es)
        .await
        .unwrap();
    assert_eq!(
        created,
        [
            ".elastic-connectors-v1",
            ".elastic-connectors-sync-jobs-v1",
            ".elastic-connectors-sync-jobs"
        ],
        "the jobs template brings no alias: it is added"
    );
    for index in [".elastic-connectors-v1", ".elastic-connectors-sync-jobs-v1"] {
        let mapping = es
            .json(Method::Get, &format!("/{index}/_mapping"), &[], None)
            .await
            .unwrap();
        let mappings = &mapping[index]["mappings"];
        assert_eq!(mappings["_meta"]["from"], "template", "{mappings}");
        assert!(
            mappings["properties"].get("status").is_none(),
            "our mappings were not sent: {mappings}"
        );
    }
    assert!(es.index_exists(".elastic-connectors").await.unwrap());
    assert!(es
        .index_exists(".elastic-connectors-sync-jobs")
        .await
        .unwrap());
}

/// The exact requests: `HEAD _index_template/<name>`, then `PUT <index>` with no body.
#[tokio::test]
async fn connector_index_creation_sends_no_body_when_the_template_exists() {
    let server = MockServer::start().await;
    for alias in [".elastic-connectors", ".elastic-connectors-sync-jobs"] {
        Mock::given(method("HEAD"))
            .and(path(format!("/{alias}")))
            .respond_with(ResponseTemplate::new(404))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("HEAD"))
            .and(path(format!("/{alias}")))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        Mock::given(method("HEAD"))
            .and(path(format!("/{alias}-v1")))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path(format!("/{alias}-v1")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"acknowledged": true})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    for template in ["elastic-connectors", "elastic-connectors-sync-jobs"] {
        Mock::given(method("HEAD"))
            .and(path(format!("/_index_template/{template}")))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
    }
    let es = client(&server.uri());
    connectors::protocol::indices::ensure_connector_indices(&es)
        .await
        .unwrap();
    let puts: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .collect();
    assert_eq!(puts.len(), 2);
    for put in puts {
        assert!(put.body.is_empty(), "{} sent a body", put.url);
    }
}
