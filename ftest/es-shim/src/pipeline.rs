//! Ingest pipelines: an in-memory store and an interpreter for the processors tests need.
//!
//! Supported processors: `remove` (`field` string or list, `ignore_missing`, `keep`), `set`
//! (`field`, `value` or `copy_from`, `override`, `ignore_empty_value`, `{{field}}` /
//! `{{{field}}}` templates), `rename` (`field`, `target_field`, `ignore_missing`, `override`),
//! `lowercase`/`uppercase`/`trim` (`field`, `target_field`, `ignore_missing`), `drop`, and
//! `pipeline` (`name`). Every processor honours `ignore_failure` and a processor-level
//! `on_failure` list; a pipeline-level `on_failure` list handles any other failure.
//!
//! Invariants:
//! - Processors the shim does not know are accepted at PUT (real pipelines such as
//!   `search-default-ingestion` use many) and skipped when run; `if` conditions (painless) are
//!   not evaluated: the processor always runs. Both are documented deviations.
//! - Failures carry ES's error type and reason, so a bulk item fails exactly as on ES.
//! - Running a pipeline never panics on document content.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde_json::{Map, Value};

use crate::error::ShimError;

/// A stored pipeline definition (the body of `PUT _ingest/pipeline/{id}`).
pub type Definition = Value;

/// All pipelines of one shim. Kept in memory: pipelines are test fixtures, and osmem has no
/// place ES-shaped for them.
#[derive(Default)]
pub struct Pipelines {
    inner: RwLock<BTreeMap<String, Definition>>,
}

/// A processor failure, shaped like ES's.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: String,
    pub reason: String,
}

impl Failure {
    fn illegal(reason: String) -> Self {
        Failure {
            kind: "illegal_argument_exception".into(),
            reason,
        }
    }

    pub fn into_error(self) -> ShimError {
        ShimError::new(axum::http::StatusCode::BAD_REQUEST, &self.kind, self.reason)
    }
}

/// The outcome of running a pipeline on one document.
#[derive(Debug)]
pub enum Outcome {
    /// Index the (possibly changed) document.
    Keep,
    /// A `drop` processor ran: the item is reported as a noop and not indexed.
    Dropped,
}

/// Nested pipelines deeper than this are a loop (ES detects cycles; a depth cap is enough here).
const MAX_PIPELINE_DEPTH: usize = 10;

impl Pipelines {
    /// Validates and stores a pipeline. Errors are ES's `parse_exception`s.
    pub fn put(&self, id: &str, def: Value) -> Result<(), ShimError> {
        validate(&def)?;
        if let Ok(mut map) = self.inner.write() {
            map.insert(id.to_string(), def);
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Definition> {
        self.inner.read().ok().and_then(|m| m.get(id).cloned())
    }

    /// Pipelines whose id matches any of the comma-separated patterns (`*` wildcards).
    pub fn matching(&self, patterns: Option<&str>) -> BTreeMap<String, Definition> {
        let Ok(map) = self.inner.read() else {
            return BTreeMap::new();
        };
        match patterns {
            None => map.clone(),
            Some(p) => map
                .iter()
                .filter(|(id, _)| p.split(',').any(|pat| wildcard_match(pat.trim(), id)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Removes matching pipelines; returns how many were removed.
    pub fn delete(&self, patterns: &str) -> usize {
        let Ok(mut map) = self.inner.write() else {
            return 0;
        };
        let before = map.len();
        map.retain(|id, _| {
            !patterns
                .split(',')
                .any(|pat| wildcard_match(pat.trim(), id))
        });
        before - map.len()
    }

    /// Runs pipeline `id` on `doc`. `Err` when the pipeline is missing or a processor fails
    /// without a failure handler.
    pub fn run(&self, id: &str, doc: &mut Map<String, Value>) -> Result<Outcome, Failure> {
        self.run_depth(id, doc, 0)
    }

    fn run_depth(
        &self,
        id: &str,
        doc: &mut Map<String, Value>,
        depth: usize,
    ) -> Result<Outcome, Failure> {
        if depth > MAX_PIPELINE_DEPTH {
            return Err(Failure::illegal(format!(
                "Cycle detected for pipeline: {id}"
            )));
        }
        let def = self
            .get(id)
            .ok_or_else(|| Failure::illegal(format!("pipeline with id [{id}] does not exist")))?;
        let processors = def["processors"].as_array().cloned().unwrap_or_default();
        match self.run_list(&processors, doc, depth) {
            Ok(o) => Ok(o),
            Err(failure) => match def.get("on_failure").and_then(Value::as_array) {
                Some(handlers) if !handlers.is_empty() => {
                    set_failure_metadata(doc, &failure);
                    let outcome = self.run_list(handlers, doc, depth);
                    doc.remove("_ingest");
                    outcome
                }
                _ => Err(failure),
            },
        }
    }

    fn run_list(
        &self,
        processors: &[Value],
        doc: &mut Map<String, Value>,
        depth: usize,
    ) -> Result<Outcome, Failure> {
        for entry in processors {
            let Some((kind, config)) = entry.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            let config = config.as_object().cloned().unwrap_or_default();
            let result = self.apply(kind, &config, doc, depth);
            match result {
                Ok(Outcome::Keep) => {}
                Ok(Outcome::Dropped) => return Ok(Outcome::Dropped),
                Err(failure) => {
                    if let Some(handlers) = config.get("on_failure").and_then(Value::as_array) {
                        set_failure_metadata(doc, &failure);
                        let outcome = self.run_list(handlers, doc, depth);
                        doc.remove("_ingest");
                        if let Outcome::Dropped = outcome? {
                            return Ok(Outcome::Dropped);
                        }
                    } else if !bool_opt(&config, "ignore_failure") {
                        return Err(failure);
                    }
                }
            }
        }
        Ok(Outcome::Keep)
    }

    fn apply(
        &self,
        kind: &str,
        config: &Map<String, Value>,
        doc: &mut Map<String, Value>,
        depth: usize,
    ) -> Result<Outcome, Failure> {
        let ignore_missing = bool_opt(config, "ignore_missing");
        match kind {
            "remove" => {
                if let Some(keep) = config.get("keep") {
                    let keep: Vec<String> = string_list(keep);
                    doc.retain(|k, _| {
                        keep.iter()
                            .any(|f| f == k || f.starts_with(&format!("{k}.")))
                    });
                    return Ok(Outcome::Keep);
                }
                for field in string_list(config.get("field").unwrap_or(&Value::Null)) {
                    if remove_path(doc, &field).is_none() && !ignore_missing {
                        return Err(Failure::illegal(format!(
                            "field [{}] not present as part of path [{}]",
                            field.rsplit('.').next().unwrap_or(&field),
                            field
                        )));
                    }
                }
                Ok(Outcome::Keep)
            }
            "set" => {
                let field = render(&str_opt(config, "field"), doc);
                let value = if let Some(from) = config.get("copy_from").and_then(Value::as_str) {
                    get_path(doc, from).cloned().ok_or_else(|| {
                        Failure::illegal(format!(
                            "field [{from}] not present as part of path [{from}]"
                        ))
                    })?
                } else {
                    match config.get("value") {
                        Some(Value::String(s)) => Value::String(render(s, doc)),
                        Some(v) => render_value(v, doc),
                        None => {
                            return Err(Failure {
                                kind: "parse_exception".into(),
                                reason: "[value] required property is missing".into(),
                            })
                        }
                    }
                };
                let overwrite = config
                    .get("override")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if !overwrite && get_path(doc, &field).is_some_and(|v| !v.is_null()) {
                    return Ok(Outcome::Keep);
                }
                if bool_opt(config, "ignore_empty_value")
                    && (value.is_null() || value.as_str() == Some(""))
                {
                    return Ok(Outcome::Keep);
                }
                set_path(doc, &field, value)?;
                Ok(Outcome::Keep)
            }
            "rename" => {
                let field = str_opt(config, "field");
                let target = str_opt(config, "target_field");
                let Some(value) = get_path(doc, &field).cloned() else {
                    if ignore_missing {
                        return Ok(Outcome::Keep);
                    }
                    return Err(Failure::illegal(format!("field [{field}] doesn't exist")));
                };
                if get_path(doc, &target).is_some() && !bool_opt(config, "override") {
                    return Err(Failure::illegal(format!("field [{target}] already exists")));
                }
                remove_path(doc, &field);
                set_path(doc, &target, value)?;
                Ok(Outcome::Keep)
            }
            "lowercase" | "uppercase" | "trim" => {
                let field = str_opt(config, "field");
                let target = config
                    .get("target_field")
                    .and_then(Value::as_str)
                    .unwrap_or(&field)
                    .to_string();
                let Some(value) = get_path(doc, &field).cloned() else {
                    if ignore_missing {
                        return Ok(Outcome::Keep);
                    }
                    return Err(Failure::illegal(format!(
                        "field [{field}] not present as part of path [{field}]"
                    )));
                };
                let Some(s) = value.as_str() else {
                    return Err(Failure::illegal(format!(
                        "field [{field}] of type [{}] cannot be cast to [java.lang.String]",
                        json_type(&value)
                    )));
                };
                let out = match kind {
                    "lowercase" => s.to_lowercase(),
                    "uppercase" => s.to_uppercase(),
                    _ => s.trim().to_string(),
                };
                set_path(doc, &target, Value::String(out))?;
                Ok(Outcome::Keep)
            }
            "drop" => Ok(Outcome::Dropped),
            "pipeline" => {
                let name = render(&str_opt(config, "name"), doc);
                match self.run_depth(&name, doc, depth + 1) {
                    Err(f) if ignore_missing_pipeline(config, &f, &name) => Ok(Outcome::Keep),
                    other => other,
                }
            }
            "fail" => Err(Failure {
                kind: "fail_processor_exception".into(),
                reason: render(&str_opt(config, "message"), doc),
            }),
            other => {
                tracing::debug!(processor = other, "ingest processor not emulated; skipped");
                Ok(Outcome::Keep)
            }
        }
    }
}

fn ignore_missing_pipeline(config: &Map<String, Value>, f: &Failure, name: &str) -> bool {
    bool_opt(config, "ignore_missing_pipeline")
        && f.reason == format!("pipeline with id [{name}] does not exist")
}

/// ES puts the failure into `_ingest.on_failure_*` for handlers to read.
fn set_failure_metadata(doc: &mut Map<String, Value>, failure: &Failure) {
    let mut meta = Map::new();
    meta.insert(
        "on_failure_message".into(),
        Value::String(failure.reason.clone()),
    );
    doc.insert("_ingest".into(), Value::Object(meta));
}

/// Checks the shape ES checks at PUT time.
fn validate(def: &Value) -> Result<(), ShimError> {
    let parse_err = |reason: &str| {
        ShimError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "parse_exception",
            reason,
        )
    };
    let Some(obj) = def.as_object() else {
        return Err(parse_err("request body is required"));
    };
    let Some(processors) = obj.get("processors") else {
        return Err(parse_err("[processors] required property is missing"));
    };
    let Some(list) = processors.as_array() else {
        return Err(parse_err(
            "[processors] property isn't a list, but of type [object]",
        ));
    };
    for p in list.iter().chain(
        obj.get("on_failure")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    ) {
        let Some(map) = p.as_object().filter(|m| m.len() == 1) else {
            return Err(parse_err(
                "processor must be an object with exactly one key",
            ));
        };
        for (kind, config) in map {
            let Some(config) = config.as_object() else {
                return Err(parse_err(&format!(
                    "[{kind}] processor config must be an object"
                )));
            };
            let needs: &[&str] = match kind.as_str() {
                "set" => &["field"],
                "rename" => &["field", "target_field"],
                "lowercase" | "uppercase" | "trim" => &["field"],
                "pipeline" => &["name"],
                "remove" if !config.contains_key("keep") => &["field"],
                _ => &[],
            };
            for key in needs {
                if !config.contains_key(*key) {
                    return Err(ShimError::new(
                        axum::http::StatusCode::BAD_REQUEST,
                        "parse_exception",
                        format!("[{key}] required property is missing"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn bool_opt(config: &Map<String, Value>, key: &str) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn str_opt(config: &Map<String, Value>, key: &str) -> String {
    config
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Number(_) => "java.lang.Number",
        Value::String(_) => "java.lang.String",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.HashMap",
    }
}

/// `a.b.c` lookup through nested objects. A literal dotted key wins over nesting, as in ES.
pub fn get_path<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn remove_path(doc: &mut Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(v) = doc.remove(path) {
        return Some(v);
    }
    let (parent, last) = path.rsplit_once('.')?;
    let mut cur = doc;
    for p in parent.split('.') {
        cur = cur.get_mut(p)?.as_object_mut()?;
    }
    cur.remove(last)
}

fn set_path(doc: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), Failure> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop().filter(|l| !l.is_empty()) else {
        return Err(Failure::illegal("path cannot be null nor empty".into()));
    };
    let mut cur = doc;
    for p in parts {
        let slot = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else {
            return Err(Failure::illegal(format!(
                "cannot set [{last}] with parent object of type [{}] as part of path [{path}]",
                json_type(slot)
            )));
        };
        cur = next;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// Mustache-lite: `{{field}}` and `{{{field}}}` become the field's value (strings raw, other
/// values as JSON); missing fields render empty, as in ES.
fn render(template: &str, doc: &Map<String, Value>) -> String {
    if !template.contains("{{") {
        return template.to_string();
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let (open, close) = if after.starts_with("{{{") {
            (3, "}}}")
        } else {
            (2, "}}")
        };
        let Some(end) = after[open..].find(close) else {
            out.push_str(after);
            return out;
        };
        let name = after[open..open + end].trim();
        match get_path(doc, name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => {}
            Some(v) => out.push_str(&v.to_string()),
        }
        rest = &after[open + end + close.len()..];
    }
    out.push_str(rest);
    out
}

fn render_value(v: &Value, doc: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => Value::String(render(s, doc)),
        Value::Array(a) => Value::Array(a.iter().map(|x| render_value(x, doc)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), render_value(x, doc)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Glob matching with `*` only, as ES uses for pipeline ids.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            if !text.starts_with(part) {
                return false;
            }
            pos = part.len();
        } else if i == parts.len() - 1 {
            return text.len() >= pos + part.len() && text[pos..].ends_with(part);
        } else {
            match text[pos..].find(part) {
                Some(at) => pos += at + part.len(),
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn remove_set_rename() {
        let p = Pipelines::default();
        p.put(
            "p",
            json!({"processors": [
                {"remove": {"field": ["_extract_binary_content", "gone"], "ignore_missing": true}},
                {"set": {"field": "meta.by", "value": "{{user}}-x"}},
                {"rename": {"field": "old", "target_field": "new"}},
            ]}),
        )
        .unwrap();
        let mut doc = obj(json!({"_extract_binary_content": true, "user": "u1", "old": 3}));
        assert!(matches!(p.run("p", &mut doc), Ok(Outcome::Keep)));
        assert_eq!(
            Value::Object(doc),
            json!({"user": "u1", "meta": {"by": "u1-x"}, "new": 3})
        );
    }

    #[test]
    fn failures_and_handlers() {
        let p = Pipelines::default();
        p.put(
            "strict",
            json!({"processors": [{"remove": {"field": "nope"}}]}),
        )
        .unwrap();
        let err = p.run("strict", &mut obj(json!({}))).unwrap_err();
        assert_eq!(
            err.reason,
            "field [nope] not present as part of path [nope]"
        );
        p.put(
            "lenient",
            json!({"processors": [{"remove": {"field": "nope", "ignore_failure": true}},
                                   {"set": {"field": "a", "value": 1}}]}),
        )
        .unwrap();
        let mut doc = obj(json!({}));
        assert!(p.run("lenient", &mut doc).is_ok());
        assert_eq!(doc["a"], json!(1));
        p.put(
            "handled",
            json!({"processors": [{"rename": {"field": "x", "target_field": "y"}}],
                   "on_failure": [{"set": {"field": "err", "value": "{{_ingest.on_failure_message}}"}}]}),
        )
        .unwrap();
        let mut doc = obj(json!({}));
        assert!(p.run("handled", &mut doc).is_ok());
        assert_eq!(doc["err"], json!("field [x] doesn't exist"));
        assert!(p.run("missing", &mut obj(json!({}))).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("search-*", "search-default-ingestion"));
        assert!(wildcard_match("*", "x"));
        assert!(wildcard_match("a*c", "abc"));
        assert!(!wildcard_match("a*c", "abd"));
    }
}
