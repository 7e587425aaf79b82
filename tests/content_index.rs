//! The content index the service creates (issue 20), against osmem-server and the Slack
//! simulator: a full Slack sync into a missing index creates it with the connectors
//! framework's analysis settings and an explicit mapping for every field the documents
//! carry (nothing mapped dynamically); an existing index keeps its settings and mappings;
//! the CLI's `connector create` creates the same index.

use connectors::es::EsClient;
use connectors::sources::slack::{mapping, SlackSource};
use connectors::sources::DataSource;
use connectors::sync::content_index::{self, text_field};
use connectors::sync::{JobKind, SyncOptions};
use elasticsearch::http::Method;
use serde_json::{json, Value};
use slack_sim::{DataSize, WorkspaceSpec};

mod common;

fn unique(prefix: &str) -> String {
    format!(
        "search-ci-{prefix}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn get(es: &EsClient, path: &str) -> Value {
    es.json(Method::Get, path, &[], None).await.expect(path)
}

/// `GET <index>` → (settings.index, mappings).
async fn index_definition(es: &EsClient, index: &str) -> (Value, Value) {
    let found = get(es, &format!("/{index}")).await;
    let entry = &found[index];
    (
        entry["settings"]["index"].clone(),
        entry["mappings"].clone(),
    )
}

fn slack_source(sim: &slack_sim::SimHandle) -> SlackSource {
    SlackSource::new(common::slack_options(sim, 0, true, true)).expect("source builds")
}

#[tokio::test]
async fn a_missing_index_is_created_with_the_framework_analysis_and_explicit_mappings() {
    let sim = common::start(WorkspaceSpec::for_size(DataSize::Small));
    let source = slack_source(&sim);
    let es = common::osmem_es();
    let index = unique("created");
    let outcome = common::sync_once(&es, &source, SyncOptions::new(&index, JobKind::Full))
        .await
        .expect("sync");
    assert!(outcome.stats.indexed_document_count > 0, "{outcome:?}");

    let (settings, mappings) = index_definition(&es, &index).await;
    // The framework's analysis: every analyzer, the language filters, BM25.
    let expected = content_index::settings("en");
    let analysis = &settings["analysis"];
    for analyzer in [
        "i_prefix",
        "q_prefix",
        "iq_text_base",
        "iq_text_stem",
        "iq_text_delimiter",
        "i_text_bigram",
        "q_text_bigram",
    ] {
        assert_eq!(
            analysis["analyzer"][analyzer]["filter"],
            expected["analysis"]["analyzer"][analyzer]["filter"],
            "{analyzer}"
        );
    }
    assert_eq!(
        analysis["filter"]["en-stem-filter"]["name"],
        "light_english"
    );
    assert_eq!(
        analysis["filter"]["front_ngram"]["max_gram"]
            .to_string()
            .trim_matches('"'),
        "12"
    );
    assert_eq!(settings["similarity"]["default"]["type"], "BM25");

    // Explicit mappings for every Slack field, the engine's fields, and the framework's
    // dynamic template for anything else.
    let properties = mappings["properties"].as_object().expect("properties");
    for (field, mapping) in mapping::properties() {
        match mapping.get("type") {
            Some(kind) => assert_eq!(&properties[&field]["type"], kind, "{field}"),
            None => assert!(properties.contains_key(&field), "{field}"), // an object
        }
    }
    // Names: the framework's text field with every subfield; message text: words and stems.
    for sub in ["stem", "prefix", "delimiter", "joined", "enum"] {
        assert_eq!(
            properties["name"]["fields"][sub]["type"],
            text_field()["fields"][sub]["type"],
            "name.{sub}"
        );
    }
    assert_eq!(properties["text"]["analyzer"], "iq_text_base");
    let text_subfields: Vec<&String> = properties["text"]["fields"]
        .as_object()
        .expect("text subfields")
        .keys()
        .collect();
    assert_eq!(text_subfields, ["stem"]);
    assert_eq!(
        properties["text"]["fields"]["stem"]["analyzer"],
        "iq_text_stem"
    );
    assert_eq!(properties["author"]["type"], "keyword");
    assert_eq!(
        properties["url"]["index"].to_string().trim_matches('"'),
        "false"
    );
    assert_eq!(properties["channel_id"]["type"], "keyword");
    assert_eq!(properties["_sync_marker"]["type"], "long");
    assert_eq!(properties["_timestamp"]["type"], "date");
    assert_eq!(
        mappings["dynamic_templates"][0]["data"]["match_mapping_type"],
        "string"
    );
    // Nothing the sync wrote was mapped dynamically: the mapping holds exactly the declared
    // fields (the source's and the engine's).
    let declared = content_index::mappings(&source.content_mappings());
    let declared = declared["properties"].as_object().unwrap();
    let extra: Vec<&String> = properties
        .keys()
        .filter(|k| !declared.contains_key(*k))
        .collect();
    assert!(extra.is_empty(), "mapped dynamically: {extra:?}");

    // The analysis works: a stemmed and a prefix search find a message.
    es.refresh(&index).await.expect("refresh");
    for query in [
        json!({"exists": {"field": "text.stem"}}),
        json!({"match": {"type": "message"}}),
    ] {
        let count = es
            .count_matching(&index, json!({ "query": query }))
            .await
            .expect("count");
        assert!(count > 0, "{query}");
    }
}

#[tokio::test]
async fn an_existing_index_keeps_its_settings_and_mappings() {
    let sim = common::start(WorkspaceSpec::for_size(DataSize::Small));
    let source = slack_source(&sim);
    let es = common::osmem_es();
    let index = unique("existing");
    // As Kibana (or a user) made it: its own analyzer, `text` as a plain keyword.
    let body = json!({
        "settings": {"number_of_replicas": 0, "analysis": {"analyzer": {"mine": {"tokenizer": "whitespace"}}}},
        "mappings": {"properties": {"text": {"type": "text", "analyzer": "mine"}, "ts": {"type": "text"}}}
    });
    assert!(es.create_index(&index, Some(body)).await.expect("create"));
    let (before_settings, _) = index_definition(&es, &index).await;

    common::sync_once(&es, &source, SyncOptions::new(&index, JobKind::Full))
        .await
        .expect("sync");

    let (settings, mappings) = index_definition(&es, &index).await;
    assert_eq!(settings["analysis"], before_settings["analysis"]);
    assert!(settings["analysis"]["analyzer"]
        .get("iq_text_base")
        .is_none());
    let properties = &mappings["properties"];
    assert_eq!(
        properties["text"],
        json!({"type": "text", "analyzer": "mine"})
    );
    assert_eq!(properties["ts"]["type"], "text");
    // Only the engine's marker was added; the rest is dynamic mapping, as before.
    assert_eq!(properties["_sync_marker"]["type"], "long");
    assert!(mappings.get("dynamic_templates").is_none());
}

#[tokio::test]
async fn create_if_missing_never_touches_an_existing_index() {
    let es = common::osmem_es();
    let index = unique("untouched");
    assert!(es
        .create_index(&index, Some(json!({"settings": {"number_of_replicas": 0}})))
        .await
        .expect("create"));
    let before = get(&es, &format!("/{index}")).await;
    let created = content_index::create_if_missing(&es, &index, Some("de"), &mapping::properties())
        .await
        .expect("create_if_missing");
    assert!(!created);
    assert_eq!(get(&es, &format!("/{index}")).await, before);

    // A missing one is created, in the connector's language.
    let fresh = unique("german");
    assert!(
        content_index::create_if_missing(&es, &fresh, Some("de"), &mapping::properties())
            .await
            .expect("create")
    );
    let (settings, _) = index_definition(&es, &fresh).await;
    assert_eq!(
        settings["analysis"]["filter"]["de-stem-filter"]["name"],
        "light_german"
    );
}
