//! Document-level security as Elastic's connectors framework defines it, for every source:
//! the content field, the DLS query an identity document carries, and the mappings.
//!
//! How it fits (Elastic's "How DLS works" and the framework's `access_control` module):
//! - every protected content document lists the identities that may read it in
//!   `_allow_access_control` ([`ACCESS_CONTROL_FIELD`]);
//! - an access-control sync writes one identity document per user into
//!   `.search-acl-filter-<content index>`, whose `query.template` is the DLS query
//!   ([`DLS_QUERY`]) with the user's identities as `params.access_control`
//!   ([`access_control_query`]);
//! - a search API key whose role descriptor carries that query sees exactly the documents
//!   whose `_allow_access_control` holds one of the user's identities, **and every document
//!   without the field** (the query's `must_not exists` clause). So an unprotected document
//!   is public: while DLS is on the engine writes none (`sync`), and a source must protect
//!   everything it writes.
//!
//! The query matches the keyword subfield `_allow_access_control.enum`
//! ([`QUERY_FIELD`]), as Elastic's DLS documentation and its framework's identity documents
//! up to 2026 do. That subfield came from the framework's old dynamic template; content
//! indices created without it (Elasticsearch's default dynamic mapping gives `.keyword`
//! instead) hid every protected document, which is why Elastic's newest framework matches
//! `.keyword`. [`content_mapping`] maps the field explicitly with both subfields, so either
//! query finds the documents, and the engine puts it on the content index before the first
//! protected document is written.

pub use super::document::ACCESS_CONTROL_FIELD;
use serde_json::{json, Value};

/// The keyword subfield of [`ACCESS_CONTROL_FIELD`] the DLS query matches.
pub const QUERY_SUBFIELD: &str = "enum";

/// The field the DLS query's `terms` clause matches: `_allow_access_control.enum`.
pub const QUERY_FIELD: &str = "_allow_access_control.enum";

/// The mustache source of the DLS query (Elastic's, as its documentation shows it):
/// documents whose `_allow_access_control.enum` holds one of `access_control`, or that
/// have no `_allow_access_control` at all.
pub const DLS_QUERY: &str = r#"{
  "bool": {
    "should": [
      {"bool": {"must_not": {"exists": {"field": "_allow_access_control"}}}},
      {"terms": {"_allow_access_control.enum": {{#toJson}}access_control{{/toJson}}}}
    ]
  }
}"#;

/// `prefix:identity` (`user:U1`, `email:a@b.c`, `channel:C1`): identities of different
/// kinds never collide.
pub fn prefix_identity(prefix: &str, identity: &str) -> String {
    format!("{prefix}:{identity}")
}

/// The `query` of an identity document: `{"template": {"params": {"access_control":
/// identities}, "source": DLS_QUERY}}`, ready for a role descriptor.
pub fn access_control_query(identities: &[String]) -> Value {
    json!({
        "template": {
            "params": {"access_control": identities},
            "source": DLS_QUERY,
        }
    })
}

/// The mapping of [`ACCESS_CONTROL_FIELD`] on a content index: a keyword (exact identities;
/// `exists` works on it) with the `enum` subfield the DLS query matches and the `keyword`
/// subfield Elastic's newest framework matches.
pub fn content_mapping() -> Value {
    json!({
        "type": "keyword",
        "fields": {
            QUERY_SUBFIELD: {"type": "keyword"},
            "keyword": {"type": "keyword"}
        }
    })
}

/// Whether a field mapping (as `GET <index>/_mapping/field/_allow_access_control` shows it)
/// has the subfield the DLS query matches, as a keyword (pure).
pub fn mapping_has_query_field(mapping: &Value) -> bool {
    mapping["fields"][QUERY_SUBFIELD]["type"] == "keyword"
}

/// The name of the access-control index of a content index (Elastic's
/// `ACCESS_CONTROL_INDEX_PREFIX`).
pub fn access_control_index(content_index: &str) -> String {
    format!(".search-acl-filter-{content_index}")
}

/// The body that creates an access-control index where Elasticsearch's `search-acl-filter`
/// index template is missing (Elasticsearch-compatible servers), modelled on that template:
/// hidden, one shard, no dynamic mappings, `created_at` a date. (`auto_expand_replicas`
/// rather than the template's one replica, so a single-node test cluster stays green.)
pub fn access_control_index_body() -> Value {
    json!({
        "settings": {"index": {"hidden": true, "number_of_shards": 1, "auto_expand_replicas": "0-1"}},
        "mappings": {"dynamic": "false", "properties": {"created_at": {"type": "date"}}}
    })
}

/// Elasticsearch's index template for access-control indices.
pub const ACCESS_CONTROL_TEMPLATE: &str = "search-acl-filter";

/// The DLS query of `identities` rendered as the search query Elasticsearch runs for a key
/// carrying the identity document's template: what the mustache `{{#toJson}}` produces.
/// For tests and tools (Elasticsearch renders the template itself).
pub fn render_query(identities: &[String]) -> Value {
    let rendered = DLS_QUERY.replace(
        "{{#toJson}}access_control{{/toJson}}",
        &Value::from(identities.to_vec()).to_string(),
    );
    // The template is valid JSON once its one placeholder is filled.
    serde_json::from_str(&rendered).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_matches_protected_documents_by_identity_and_unprotected_ones() {
        let identities = vec!["user:U1".to_string(), "channel:C1".to_string()];
        assert_eq!(
            render_query(&identities),
            json!({"bool": {"should": [
                {"bool": {"must_not": {"exists": {"field": ACCESS_CONTROL_FIELD}}}},
                {"terms": {QUERY_FIELD: ["user:U1", "channel:C1"]}}
            ]}})
        );
        let query = access_control_query(&identities);
        assert_eq!(
            query["template"]["params"]["access_control"],
            json!(identities)
        );
        assert_eq!(query["template"]["source"], DLS_QUERY);
        // No identity: only unprotected documents, which a DLS sync never writes.
        assert_eq!(
            render_query(&[])["bool"]["should"][1]["terms"][QUERY_FIELD],
            json!([])
        );
    }

    #[test]
    fn names_and_mappings() {
        assert_eq!(prefix_identity("email", "a@b.c"), "email:a@b.c");
        assert_eq!(
            access_control_index("search-slack"),
            ".search-acl-filter-search-slack"
        );
        assert_eq!(
            QUERY_FIELD,
            format!("{ACCESS_CONTROL_FIELD}.{QUERY_SUBFIELD}")
        );
        assert!(mapping_has_query_field(&content_mapping()));
        // Elasticsearch's default dynamic mapping of a string list: no `enum`.
        let dynamic = json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}});
        assert!(!mapping_has_query_field(&dynamic));
        // The framework's old dynamic template: text with a keyword `enum`.
        let old =
            json!({"type": "text", "fields": {"enum": {"type": "keyword", "ignore_above": 2048}}});
        assert!(mapping_has_query_field(&old));
    }
}
