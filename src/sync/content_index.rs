//! The content index as Elastic's connectors framework creates it: its default analysis
//! settings and connector-index mappings, plus the explicit field mappings a source declares
//! ([`crate::sources::DataSource::content_mappings`]) and the engine's own fields.
//!
//! Facts followed (elastic/connectors `connectors/es/settings.py`, described, not copied):
//! - analyzers `i_prefix`, `q_prefix`, `iq_text_base`, `iq_text_stem`,
//!   `iq_text_delimiter`, `i_text_bigram`, `q_text_bigram` over the `standard` tokenizer
//!   (`whitespace` for the delimiter one) with the folding filters `cjk_width`, `lowercase`,
//!   `asciifolding`; filters `front_ngram` (edge n-grams 1..12), `delimiter`
//!   (`word_delimiter_graph`), `bigram_joiner`(`_unigrams`) (shingles joined with no
//!   separator), `bigram_max_size` (length ≤ 16), and the language's stemmer and stop
//!   words (`<lang>-stem-filter`, `<lang>-stop-words-filter`); BM25 similarity;
//! - mappings: `dynamic: true`, a dynamic template `data` mapping every other string as
//!   the framework's text field ([`text_field`]: `text` with `stem`, `prefix`, `delimiter`,
//!   `joined` and `enum` subfields), and `id` (keyword), `_subextracted_as_of` (date),
//!   `_subextracted_version` (keyword).
//!
//! Invariants: an index that exists is never changed here (Kibana usually creates it, and
//! whoever did chose its settings); the body is a pure function of the language and the
//! source's properties, so a test can compare it; explicit fields win over the dynamic
//! template, so the documents of a source that declares every field are mapped exactly as
//! declared.

use crate::es::{EsClient, EsError};
use crate::sources::access_control;
use crate::sources::document::{ACCESS_CONTROL_FIELD, TIMESTAMP_FIELD};
use crate::sync::document::SYNC_MARKER_FIELD;
use serde_json::{json, Map, Value};

/// The language of a connector without one (the framework's default).
pub const DEFAULT_LANGUAGE: &str = "en";

/// Longest value the `enum` keyword subfield keeps (the framework's `ENUM_IGNORE_ABOVE`).
pub const ENUM_IGNORE_ABOVE: u32 = 2048;

/// Language code → (stemmer, stop words) of the framework's language data, for the
/// languages whose analysis is a stemmer and a stop-word set. Codes outside it (and the
/// CJK and Thai ones, whose chains differ) get English analysis, with a warning.
const LANGUAGES: [(&str, &str, &str); 10] = [
    ("da", "danish", "_danish_"),
    ("de", "light_german", "_german_"),
    ("en", "light_english", "_english_"),
    ("es", "light_spanish", "_spanish_"),
    ("fr", "light_french", "_french_"),
    ("it", "light_italian", "_italian_"),
    ("nl", "dutch", "_dutch_"),
    ("pt", "light_portuguese", "_portuguese_"),
    ("pt-br", "brazilian", "_brazilian_"),
    ("ru", "russian", "_russian_"),
];

/// The analysis language for a connector's `language`: the code itself when known, else
/// [`DEFAULT_LANGUAGE`] (with a flag saying the requested one was not available).
pub fn analysis_language(requested: Option<&str>) -> (&'static str, bool) {
    let wanted = requested.map(str::trim).filter(|code| !code.is_empty());
    let code = wanted.unwrap_or(DEFAULT_LANGUAGE).to_ascii_lowercase();
    match LANGUAGES.iter().find(|(known, _, _)| *known == code) {
        Some((known, _, _)) => (known, true),
        None => (DEFAULT_LANGUAGE, false),
    }
}

/// The framework's text field: analysed with `iq_text_base` (term frequencies only), with
/// the `stem`, `prefix`, `delimiter`, `joined` and `enum` subfields relevance tuning uses.
pub fn text_field() -> Value {
    json!({
        "type": "text",
        "analyzer": "iq_text_base",
        "index_options": "freqs",
        "fields": {
            "stem": {"type": "text", "analyzer": "iq_text_stem"},
            "prefix": {
                "type": "text",
                "analyzer": "i_prefix",
                "search_analyzer": "q_prefix",
                "index_options": "docs"
            },
            "delimiter": {
                "type": "text",
                "analyzer": "iq_text_delimiter",
                "index_options": "freqs"
            },
            "joined": {
                "type": "text",
                "analyzer": "i_text_bigram",
                "search_analyzer": "q_text_bigram",
                "index_options": "freqs"
            },
            "enum": {"type": "keyword", "ignore_above": ENUM_IGNORE_ABOVE}
        }
    })
}

/// A `keyword` field.
pub fn keyword_field() -> Value {
    json!({"type": "keyword"})
}

/// Words found by meaning, for long text on nearly every document (a chat message): the
/// framework's base analysis (`iq_text_base`, term frequencies) and its `stem` subfield,
/// without the framework's `prefix` (edge n-grams 1..12 of every word), `delimiter`,
/// `joined` (bigram shingles) and `enum` (a keyword of the whole text) subfields. Those
/// multiply what Elasticsearch analyses per word; on message text they are the largest part
/// of a sync's cluster cost, and phrase queries on the base field cover what `joined` adds.
pub fn stemmed_text_field() -> Value {
    json!({
        "type": "text",
        "analyzer": "iq_text_base",
        "index_options": "freqs",
        "fields": {
            "stem": {"type": "text", "analyzer": "iq_text_stem"}
        }
    })
}

/// A `keyword` kept only in `_source`: not indexed, no doc values. For values nobody
/// searches, filters, sorts or aggregates on (links), which Elasticsearch then only stores.
pub fn stored_keyword_field() -> Value {
    json!({"type": "keyword", "index": false, "doc_values": false})
}

/// The index settings: the framework's analysis for `language` (a code of
/// [`analysis_language`]) and BM25 similarity.
pub fn settings(language: &str) -> Value {
    let (code, stemmer, stop_words) = LANGUAGES
        .iter()
        .find(|(known, _, _)| *known == language)
        .copied()
        .unwrap_or(("en", "light_english", "_english_"));
    let stem = format!("{code}-stem-filter");
    let stop = format!("{code}-stop-words-filter");
    let folding = ["cjk_width", "lowercase", "asciifolding"];
    let chain = |before: &[&str], after: &[&str]| -> Value {
        let filters: Vec<&str> = before
            .iter()
            .chain(folding.iter())
            .chain(after.iter())
            .copied()
            .collect();
        json!(filters)
    };
    json!({
        "analysis": {
            "analyzer": {
                "i_prefix": {"tokenizer": "standard", "filter": chain(&[], &["front_ngram"])},
                "q_prefix": {"tokenizer": "standard", "filter": chain(&[], &[])},
                "iq_text_base": {"tokenizer": "standard", "filter": chain(&[], &[&stop])},
                "iq_text_stem": {"tokenizer": "standard", "filter": chain(&[], &[&stop, &stem])},
                "iq_text_delimiter": {
                    "tokenizer": "whitespace",
                    "filter": chain(&["delimiter"], &[&stop, &stem])
                },
                "i_text_bigram": {
                    "tokenizer": "standard",
                    "filter": chain(&[], &[&stem, "bigram_joiner", "bigram_max_size"])
                },
                "q_text_bigram": {
                    "tokenizer": "standard",
                    "filter": chain(&[], &[&stem, "bigram_joiner_unigrams", "bigram_max_size"])
                }
            },
            "filter": {
                "front_ngram": {"type": "edge_ngram", "min_gram": 1, "max_gram": 12},
                "delimiter": {
                    "type": "word_delimiter_graph",
                    "generate_word_parts": "true",
                    "generate_number_parts": "true",
                    "catenate_words": "true",
                    "catenate_numbers": "true",
                    "catenate_all": "true",
                    "preserve_original": "false",
                    "split_on_case_change": "true",
                    "split_on_numerics": "true",
                    "stem_english_possessive": "true"
                },
                "bigram_joiner": {
                    "type": "shingle",
                    "token_separator": "",
                    "max_shingle_size": 2,
                    "output_unigrams": "false"
                },
                "bigram_joiner_unigrams": {
                    "type": "shingle",
                    "token_separator": "",
                    "max_shingle_size": 2,
                    "output_unigrams": "true"
                },
                "bigram_max_size": {"type": "length", "min": 0, "max": 16},
                stem: {"type": "stemmer", "name": stemmer},
                stop: {"type": "stop", "stopwords": stop_words}
            }
        },
        "index": {"similarity": {"default": {"type": "BM25"}}}
    })
}

/// The mappings: the framework's connector-index mappings, the engine's fields (the sync
/// marker, `_timestamp`, the pipeline flags, `_allow_access_control`), then the source's
/// properties (which win over the engine's defaults for the same name).
pub fn mappings(source_properties: &Map<String, Value>) -> Value {
    let mut properties = Map::new();
    properties.insert("id".into(), keyword_field());
    properties.insert("_subextracted_as_of".into(), json!({"type": "date"}));
    properties.insert("_subextracted_version".into(), keyword_field());
    properties.insert(SYNC_MARKER_FIELD.into(), json!({"type": "long"}));
    properties.insert(TIMESTAMP_FIELD.into(), json!({"type": "date"}));
    for flag in [
        "_extract_binary_content",
        "_reduce_whitespace",
        "_run_ml_inference",
    ] {
        properties.insert(flag.into(), json!({"type": "boolean"}));
    }
    properties.insert(
        ACCESS_CONTROL_FIELD.into(),
        access_control::content_mapping(),
    );
    for (name, mapping) in source_properties {
        properties.insert(name.clone(), mapping.clone());
    }
    json!({
        "dynamic": "true",
        "dynamic_templates": [
            {"data": {"match_mapping_type": "string", "mapping": text_field()}}
        ],
        "properties": properties
    })
}

/// The `PUT <index>` body: [`settings`] and [`mappings`].
pub fn create_body(language: &str, source_properties: &Map<String, Value>) -> Value {
    json!({
        "settings": settings(language),
        "mappings": mappings(source_properties)
    })
}

/// Creates the content index with [`create_body`] unless it exists; `true` when this call
/// created it. An existing index (or one created meanwhile by someone else) is left as it is.
pub async fn create_if_missing(
    es: &EsClient,
    index: &str,
    language: Option<&str>,
    source_properties: &Map<String, Value>,
) -> Result<bool, EsError> {
    if es.index_exists(index).await? {
        return Ok(false);
    }
    let (code, known) = analysis_language(language);
    if !known {
        tracing::warn!(
            language = language.unwrap_or_default(),
            "no analysis for this index language; the content index gets English analysis"
        );
    }
    let created = es
        .create_index(index, Some(create_body(code, source_properties)))
        .await?;
    if created {
        tracing::info!(
            language = code,
            fields = source_properties.len(),
            "created the content index with the connectors framework's analysis and mappings"
        );
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_fall_back_to_english() {
        assert_eq!(analysis_language(None), ("en", true));
        assert_eq!(analysis_language(Some("")), ("en", true));
        assert_eq!(analysis_language(Some("DE")), ("de", true));
        assert_eq!(analysis_language(Some("pt-br")), ("pt-br", true));
        assert_eq!(analysis_language(Some("ja")), ("en", false));
        assert_eq!(analysis_language(Some("xx")), ("en", false));
    }

    #[test]
    fn every_analyzer_names_filters_that_are_defined() {
        for (code, _, _) in LANGUAGES {
            let settings = settings(code);
            let filters = settings["analysis"]["filter"].as_object().unwrap();
            let builtin = ["cjk_width", "lowercase", "asciifolding"];
            for (name, analyzer) in settings["analysis"]["analyzer"].as_object().unwrap() {
                for filter in analyzer["filter"].as_array().unwrap() {
                    let filter = filter.as_str().unwrap();
                    assert!(
                        builtin.contains(&filter) || filters.contains_key(filter),
                        "{code}: {name} uses undefined {filter}"
                    );
                }
            }
            assert!(filters.contains_key(&format!("{code}-stem-filter")));
        }
        let en = settings("en");
        assert_eq!(
            en["analysis"]["filter"]["en-stem-filter"]["name"],
            "light_english"
        );
        assert_eq!(
            en["analysis"]["analyzer"]["iq_text_stem"]["filter"],
            json!([
                "cjk_width",
                "lowercase",
                "asciifolding",
                "en-stop-words-filter",
                "en-stem-filter"
            ])
        );
    }

    #[test]
    fn every_analyzer_a_mapping_names_is_defined() {
        let settings = settings("en");
        let analyzers = settings["analysis"]["analyzer"].as_object().unwrap();
        let text = text_field();
        let mut names = vec![text["analyzer"].as_str().unwrap()];
        for sub in text["fields"].as_object().unwrap().values() {
            for key in ["analyzer", "search_analyzer"] {
                if let Some(name) = sub[key].as_str() {
                    names.push(name);
                }
            }
        }
        for name in names {
            assert!(analyzers.contains_key(name), "{name}");
        }
    }

    #[test]
    fn source_properties_win_and_engine_fields_are_mapped() {
        let mut source = Map::new();
        source.insert("text".into(), text_field());
        source.insert("id".into(), json!({"type": "keyword", "store": true}));
        let mappings = mappings(&source);
        let properties = &mappings["properties"];
        assert_eq!(properties["text"], text_field());
        assert_eq!(properties["id"]["store"], true);
        assert_eq!(properties["_sync_marker"]["type"], "long");
        assert_eq!(properties["_timestamp"]["type"], "date");
        assert_eq!(properties["_subextracted_as_of"]["type"], "date");
        assert!(access_control::mapping_has_query_field(
            &properties[ACCESS_CONTROL_FIELD]
        ));
        assert_eq!(
            mappings["dynamic_templates"][0]["data"]["mapping"],
            text_field()
        );
    }
}
