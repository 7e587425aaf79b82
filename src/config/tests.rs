use super::*;

fn load(yaml: &str) -> Result<Loaded, ConfigError> {
    load_env(yaml, &[])
}

fn load_env(yaml: &str, vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    Config::from_yaml_str(yaml, Path::new("config.yml"), &lookup)
}

fn problems(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

const MINIMAL: &str = "connectors:\n  - connector_id: abc\n    service_type: slack\n";

#[test]
fn minimal_config_gets_every_default() {
    let loaded = load(MINIMAL).unwrap();
    let c = loaded.config;
    assert!(loaded.warnings.is_empty());
    assert_eq!(c.elasticsearch.host, "http://localhost:9200");
    assert_eq!(c.elasticsearch.username, "elastic");
    assert_eq!(c.elasticsearch.password.expose(), "changeme");
    assert_eq!(c.elasticsearch.request_timeout, 240.0);
    assert_eq!(c.elasticsearch.max_retries, 5);
    assert!(c.elasticsearch.feature_use_connectors_api);
    assert_eq!(c.elasticsearch.bulk.chunk_size, 2000);
    assert_eq!(c.elasticsearch.bulk.chunk_max_mem_size, 5.0);
    assert_eq!(c.elasticsearch.bulk.max_concurrency, 1);
    assert_eq!(
        c.elasticsearch.bulk.error_monitor.max_consecutive_errors,
        10
    );
    assert_eq!(c.service.idling, 30.0);
    assert_eq!(c.service.heartbeat, 300.0);
    assert_eq!(c.service.max_concurrent_content_syncs, 1);
    assert_eq!(c.connectors[0].connector_id, "abc");
    assert_eq!(
        c.sources["slack"],
        "connectors.sources.slack:SlackDataSource"
    );
}

#[test]
fn dotted_and_nested_keys_merge() {
    let yaml = format!(
        "{MINIMAL}elasticsearch.bulk.chunk_size: 10\nelasticsearch:\n  host: http://es:9200\n  bulk:\n    max_concurrency: 2\nservice.idling: 0.5\n"
    );
    let c = load(&yaml).unwrap().config;
    assert_eq!(c.elasticsearch.bulk.chunk_size, 10);
    assert_eq!(c.elasticsearch.bulk.max_concurrency, 2);
    assert_eq!(c.elasticsearch.bulk.queue_max_size, 1024);
    assert_eq!(c.elasticsearch.host, "http://es:9200");
    assert_eq!(c.service.idling, 0.5);
}

#[test]
fn env_interpolation_keeps_types_and_defaults() {
    let yaml = format!(
        "{MINIMAL}elasticsearch:\n  host: http://${{ES_HOST}}:${{ES_PORT:-9200}}\n  request_timeout: ${{TIMEOUT}}\n  api_key: ${{API_KEY}}\n"
    );
    let c = load_env(
        &yaml,
        &[("ES_HOST", "es"), ("TIMEOUT", "30"), ("API_KEY", "a2V5")],
    )
    .unwrap()
    .config;
    assert_eq!(c.elasticsearch.host, "http://es:9200");
    assert_eq!(c.elasticsearch.request_timeout, 30.0);
    assert_eq!(c.elasticsearch.api_key.unwrap().expose(), "a2V5");
}

#[test]
fn missing_env_variable_is_named() {
    let p = problems(&format!(
        "{MINIMAL}elasticsearch.host: ${{NOT_SET_ANYWHERE}}\n"
    ));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("`elasticsearch.host`") && p[0].contains("NOT_SET_ANYWHERE"),
        "{p:?}"
    );
}

#[test]
fn legacy_top_level_connector() {
    let c = load("connector_id: abc\nservice_type: slack\n")
        .unwrap()
        .config;
    assert_eq!(c.connectors.len(), 1);
    assert_eq!(c.connectors[0].service_type, "slack");
}

#[test]
fn syntax_error_gives_line_and_column() {
    let err = load("connectors:\n  - connector_id: abc\n   service_type: [slack\n").unwrap_err();
    match &err {
        ConfigError::Syntax { line, column, .. } => {
            assert_eq!(*line, 3, "{err}");
            assert!(*column > 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("line 3, column"), "{err}");
}

#[test]
fn wrong_type_names_key_and_expectation() {
    let p = problems(&format!(
        "{MINIMAL}elasticsearch:\n  request_timeout: soon\n  ssl: maybe\n"
    ));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter()
            .any(|m| m.contains("`elasticsearch.request_timeout`: expected a number")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("`elasticsearch.ssl`: expected true or false")),
        "{p:?}"
    );
}

#[test]
fn unknown_key_gets_did_you_mean() {
    let p = problems(&format!(
        "{MINIMAL}elasticsearch:\n  request_timout: 10\nservise: {{}}\n"
    ));
    assert!(p.iter().any(|m| m.contains("`elasticsearch.request_timout`: unknown key; did you mean `elasticsearch.request_timeout`?")), "{p:?}");
    assert!(
        p.iter()
            .any(|m| m.contains("`servise`: unknown key; did you mean `service`?")),
        "{p:?}"
    );
}

#[test]
fn empty_connectors_is_an_error() {
    for yaml in ["", "connectors: []\n", "connectors:\n"] {
        let p = problems(yaml);
        assert_eq!(p.len(), 1, "{yaml:?}: {p:?}");
        assert!(p[0].starts_with("`connectors`: empty"), "{p:?}");
    }
    // Worker mode needs no list, but needs service types.
    let p = problems("service:\n  worker_mode: true\n");
    assert!(p[0].contains("`service.service_types`: required"), "{p:?}");
    load("service:\n  worker_mode: true\n  service_types: [slack]\n").unwrap();
}

#[test]
fn unknown_service_type_lists_the_known_ones() {
    let p = problems("connectors:\n  - connector_id: abc\n    service_type: slak\n");
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("unknown service type `slak` (did you mean `slack`?): available: slack"),
        "{p:?}"
    );
}

#[test]
fn changeme_placeholders_are_errors() {
    let p = problems("connectors:\n  - connector_id: changeme\n    service_type: changeme\n    api_key: changeme\n");
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p.iter().all(|m| m.contains("placeholder `changeme`")),
        "{p:?}"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let p = problems("elasticsearch:\n  host: not a url\n  max_retries: -1\nconnectors:\n  - connector_id: changeme\n    service_type: slack\n    extra: 1\n");
    // max_retries and the unknown connector key are found before typing, host/changeme after:
    // the first pass stops at type problems, so the user fixes types then sees the rest.
    assert!(p.len() >= 2, "{p:?}");
    assert!(p.iter().any(|m| m.contains("`elasticsearch.max_retries`")));
    assert!(p
        .iter()
        .any(|m| m.contains("`connectors[0].extra`: unknown key")));
}

#[test]
fn semantic_problems_are_reported_together() {
    let p = problems("elasticsearch:\n  host: not a url\nservice:\n  log_level: LOUD\nconnectors:\n  - connector_id: changeme\n    service_type: slack\n");
    assert_eq!(p.len(), 3, "{p:?}");
}

#[test]
fn extraction_service_is_accepted_with_a_warning() {
    let loaded = load(&format!(
        "{MINIMAL}extraction_service:\n  host: http://localhost:8090\n"
    ))
    .unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("not supported"));
}

#[test]
fn secrets_never_reach_messages_or_debug() {
    let yaml = "elasticsearch:\n  api_key: SECRET-API-KEY\n  password: SECRET-PASSWORD\n  request_timeout: SECRET-TIMEOUT\nconnectors:\n  - connector_id: abc\n    service_type: slack\n    api_key: SECRET-CONNECTOR-KEY\n";
    let p = problems(yaml);
    assert!(
        p.iter().any(|m| m.contains("SECRET-TIMEOUT")),
        "non-secrets are quoted"
    );
    let text = p.join("\n");
    assert!(!text.contains("SECRET-API-KEY") && !text.contains("SECRET-PASSWORD"));
    // Mistyped secrets are not quoted either (found by tests/properties.rs).
    let mistyped = "elasticsearch:\n  password: [SECRET-PASSWORD]\n  api_key: {k: SECRET-API-KEY}\nconnectors:\n  - connector_id: abc\n    service_type: slack\n    api_key: [SECRET-CONNECTOR-KEY]\n";
    let p = problems(mistyped);
    assert_eq!(p.len(), 3, "{p:?}");
    let text = p.join("\n");
    assert!(!text.contains("SECRET-"), "{text}");
    assert!(
        text.contains("`elasticsearch.password`: expected a string (quote it), found a list (not shown: the value is a secret)"),
        "{text}"
    );
    let malformed = "elasticsearch:\n  password: SECRET-PASSWORD ${\n  api_key: ${SECRET-API-KEY}\nconnectors:\n  - connector_id: abc\n    service_type: slack\n";
    let text = problems(malformed).join("\n");
    assert!(
        text.contains("`elasticsearch.password`: unterminated"),
        "{text}"
    );
    assert!(!text.contains("SECRET-"), "{text}");
    let ok = yaml.replace("SECRET-TIMEOUT", "10");
    let c = load(&ok).unwrap().config;
    let dump = format!("{c:?}");
    assert!(!dump.contains("SECRET-"), "{dump}");
    let ser = serde_json::to_string(&c).unwrap();
    assert!(!ser.contains("SECRET-"), "{ser}");
}

#[test]
fn example_file_is_valid_and_documents_every_key() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yml.example"))
        .unwrap();
    // The example ships with placeholders: they are the only problems.
    let p = problems(&text);
    assert!(p.iter().all(|m| m.contains("changeme")), "{p:?}");
    let fixed = text
        .replace("connector_id: changeme", "connector_id: abc")
        .replace("service_type: changeme", "service_type: slack");
    load(&fixed).unwrap();
    let defaults = serde_yaml::to_value(Config::default()).unwrap();
    let mut keys = Vec::new();
    collect_keys(&defaults, "", &mut keys);
    for key in keys {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            text.contains(&format!("{leaf}:")),
            "config.yml.example does not document `{key}`"
        );
    }
}

fn collect_keys(value: &Value, at: &str, out: &mut Vec<String>) {
    if let Value::Mapping(map) = value {
        for (k, v) in map {
            let path = join(at, &key_text(k));
            if matches!(v, Value::Mapping(m) if !m.is_empty()) && !is_free_form(&path) {
                collect_keys(v, &path, out);
            } else {
                out.push(path);
            }
        }
    }
}

#[test]
fn did_you_mean_is_conservative() {
    assert_eq!(
        did_you_mean("hots", ["host", "headers"].into_iter()),
        Some("host")
    );
    assert_eq!(
        did_you_mean("zzzzzz", ["host", "headers"].into_iter()),
        None
    );
}

#[test]
fn max_deletion_ratio_defaults_to_half_and_is_range_checked() {
    assert_eq!(
        load(MINIMAL).unwrap().config.service.max_deletion_ratio,
        0.5
    );
    for (value, want) in [("0", 0.0), ("0.3", 0.3), ("1", 1.0)] {
        let yaml = format!("{MINIMAL}service.max_deletion_ratio: {value}\n");
        assert_eq!(load(&yaml).unwrap().config.service.max_deletion_ratio, want);
    }
    for value in ["1.5", "-0.1", ".nan"] {
        let p = problems(&format!("{MINIMAL}service.max_deletion_ratio: {value}\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("`service.max_deletion_ratio`: must be between 0 and 1"),
            "{p:?}"
        );
        assert!(
            p[0].contains("1 turns the mass-deletion guard off"),
            "{p:?}"
        );
    }
    let p = problems(&format!("{MINIMAL}service.max_deletion_ratio: half\n"));
    assert!(
        p[0].starts_with("`service.max_deletion_ratio`: expected a number"),
        "{p:?}"
    );
    let p = problems(&format!("{MINIMAL}service.max_deletion_ration: 1\n"));
    assert!(
        p[0].contains("did you mean `service.max_deletion_ratio`?"),
        "{p:?}"
    );
}
