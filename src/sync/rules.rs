//! Basic sync rules (§3.4): which documents a content sync keeps.
//!
//! Rules come from the job's `connector.filtering.rules`. The rule with id `DEFAULT` (the
//! match-all include the UI always adds) is dropped; the rest are sorted by `order`; the
//! first rule that matches a document decides (`include`/`exclude`); no match includes.
//! A rule on a field the document lacks does not match. The rule's value (a string) is
//! coerced to the type of the document's value: strings compare as strings, booleans accept
//! `true/t/yes/y/on` (anything else is false), numbers compare as floats, and two strings
//! that are both ISO-8601 dates compare as instants for `equals`, `<` and `>`.
//! `regex` matches at the start of the value like Python's `re.match`.
//!
//! [`validate_rules`] checks a draft before it can be activated: required fields, known
//! policies and rule types, compilable regexes, no match-all regex except `DEFAULT`, and no
//! semantic duplicates.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;
use std::cmp::Ordering;

/// The id of the catch-all rule the UI adds.
pub const DEFAULT_RULE_ID: &str = "DEFAULT";

/// Rule types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleType {
    /// `equals`.
    Equals,
    /// `starts_with`.
    StartsWith,
    /// `ends_with`.
    EndsWith,
    /// `contains`.
    Contains,
    /// `regex`, anchored at the start.
    Regex,
    /// `<`.
    LessThan,
    /// `>`.
    GreaterThan,
}

impl RuleType {
    /// Parses the wire name.
    pub fn parse(name: &str) -> Option<RuleType> {
        Some(match name {
            "equals" => RuleType::Equals,
            "starts_with" => RuleType::StartsWith,
            "ends_with" => RuleType::EndsWith,
            "contains" => RuleType::Contains,
            "regex" => RuleType::Regex,
            "<" => RuleType::LessThan,
            ">" => RuleType::GreaterThan,
            _ => return None,
        })
    }
}

/// One active rule, ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule id.
    pub id: String,
    /// `true` = include, `false` = exclude.
    pub include: bool,
    /// The document field.
    pub field: String,
    /// The comparison.
    pub rule: RuleType,
    /// The value, as given.
    pub value: String,
    order: i64,
    regex: Option<Regex>,
}

impl Rule {
    /// Whether `doc` matches this rule.
    pub fn matches(&self, doc: &serde_json::Map<String, Value>) -> bool {
        let Some(value) = lookup(doc, &self.field) else {
            return false;
        };
        if value.is_null() {
            return false;
        }
        match self.rule {
            RuleType::Equals => compare(value, &self.value) == Some(Ordering::Equal),
            RuleType::LessThan => compare(value, &self.value) == Some(Ordering::Less),
            RuleType::GreaterThan => compare(value, &self.value) == Some(Ordering::Greater),
            RuleType::StartsWith => as_text(value).starts_with(&self.value),
            RuleType::EndsWith => as_text(value).ends_with(&self.value),
            RuleType::Contains => as_text(value).contains(&self.value),
            RuleType::Regex => self
                .regex
                .as_ref()
                .is_some_and(|re| re.is_match(&as_text(value))),
        }
    }
}

/// The active basic rules of a job.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// The rules of a job's `connector.filtering` (the active object); `null`, a missing
    /// `rules` array, or only `DEFAULT` → include everything. Rules that cannot be used
    /// (unknown type or policy, bad regex) are skipped with a warning: validation refuses
    /// such drafts, so they only come from hand-edited documents.
    pub fn from_filtering(filtering: &Value) -> Rules {
        // The legacy index path stored a list of filter objects; take the first.
        let filtering = match filtering {
            Value::Array(list) => list.first().unwrap_or(&Value::Null),
            other => other,
        };
        let filtering = filtering.get("active").unwrap_or(filtering);
        let Some(list) = filtering.get("rules").and_then(|r| r.as_array()) else {
            return Rules::default();
        };
        let mut rules = Vec::new();
        for raw in list {
            let id = text_field(raw, "id");
            if id == DEFAULT_RULE_ID {
                continue;
            }
            match parse_rule(raw) {
                Ok(rule) => rules.push(rule),
                Err(problem) => {
                    tracing::warn!(rule_id = %id, %problem, "ignoring an unusable sync rule")
                }
            }
        }
        rules.sort_by_key(|r| r.order);
        Rules { rules }
    }

    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `doc` is kept: the first matching rule decides; no match keeps it.
    pub fn includes(&self, doc: &serde_json::Map<String, Value>) -> bool {
        for rule in &self.rules {
            if rule.matches(doc) {
                return rule.include;
            }
        }
        true
    }
}

fn parse_rule(raw: &Value) -> Result<Rule, String> {
    let id = text_field(raw, "id");
    let include = match text_field(raw, "policy").as_str() {
        "include" => true,
        "exclude" => false,
        other => return Err(format!("unknown policy `{other}` (use include or exclude)")),
    };
    let rule_name = text_field(raw, "rule");
    let rule =
        RuleType::parse(&rule_name).ok_or_else(|| format!("unknown rule type `{rule_name}`"))?;
    let value = text_field(raw, "value");
    let regex = if rule == RuleType::Regex {
        Some(anchored_regex(&value).map_err(|e| format!("invalid regex `{value}`: {e}"))?)
    } else {
        None
    };
    Ok(Rule {
        id,
        include,
        field: text_field(raw, "field"),
        rule,
        value,
        order: raw.get("order").and_then(|o| o.as_i64()).unwrap_or(0),
        regex,
    })
}

/// `re.match` semantics: anchored at the start, not at the end.
fn anchored_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!(r"\A(?:{pattern})"))
}

/// A string field of a rule object; numbers and booleans are stringified.
fn text_field(raw: &Value, key: &str) -> String {
    match raw.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The value of `field`: a top-level key, else a dotted path into objects.
fn lookup<'a>(doc: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a Value> {
    if let Some(value) = doc.get(field) {
        return Some(value);
    }
    let mut parts = field.split('.');
    let mut current = doc.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// The document value as text (Python's `str()`, close enough for strings and numbers).
fn as_text(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string().into(),
    }
}

/// Compares the document value with the rule value coerced to its type; `None` when the
/// rule value cannot be read as that type.
fn compare(doc_value: &Value, rule_value: &str) -> Option<Ordering> {
    match doc_value {
        Value::String(s) => match (parse_date(s), parse_date(rule_value)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(s.as_str().cmp(rule_value)),
        },
        Value::Bool(b) => Some(b.cmp(&to_bool(rule_value))),
        Value::Number(n) => {
            let a = n.as_f64()?;
            let b = rule_value.trim().parse::<f64>().ok()?;
            a.partial_cmp(&b)
        }
        other => Some(other.to_string().as_str().cmp(rule_value)),
    }
}

fn to_bool(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "t" | "yes" | "y" | "on"
    )
}

/// ISO-8601 date or date-time (with or without offset; naive ones are UTC).
fn parse_date(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    // Cheap reject: dates start with 4 digits and a dash.
    let bytes = text.as_bytes();
    if bytes.len() < 10 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt);
    }
    let utc = FixedOffset::east_opt(0)?;
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc().with_timezone(&utc));
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().with_timezone(&utc))
}

/// One validation problem: which rules, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    /// The rule ids concerned.
    pub ids: Vec<String>,
    /// What to fix.
    pub messages: Vec<String>,
}

/// The result of validating a draft: `{state, errors}` as written to `filtering.*.validation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilteringValidation {
    /// `valid` or `invalid`.
    pub state: String,
    /// Problems (empty when valid).
    pub errors: Vec<ValidationError>,
}

/// Validates an array of rule objects (a draft's `rules`).
pub fn validate_rules(rules: &Value) -> FilteringValidation {
    let mut errors = Vec::new();
    let Some(list) = rules.as_array() else {
        return FilteringValidation {
            state: "invalid".into(),
            errors: vec![ValidationError {
                ids: vec![],
                messages: vec!["rules must be an array of rule objects".into()],
            }],
        };
    };
    // Semantic key → first rule id with it.
    let mut seen: Vec<((String, String, String), String)> = Vec::new();
    for raw in list {
        let id = text_field(raw, "id");
        let mut messages = Vec::new();
        for key in ["id", "policy", "field", "rule", "value"] {
            if text_field(raw, key).trim().is_empty() {
                messages.push(format!("`{key}` must not be empty"));
            }
        }
        let policy = text_field(raw, "policy");
        if !policy.is_empty() && policy != "include" && policy != "exclude" {
            messages.push(format!("policy `{policy}` is not one of include, exclude"));
        }
        let rule = text_field(raw, "rule");
        let value = text_field(raw, "value");
        match RuleType::parse(&rule) {
            None if !rule.is_empty() => messages.push(format!(
                "rule `{rule}` is not one of equals, starts_with, ends_with, contains, regex, <, >"
            )),
            Some(RuleType::Regex) => {
                if let Err(e) = anchored_regex(&value) {
                    messages.push(format!("value `{value}` is not a valid regex: {e}"));
                } else if id != DEFAULT_RULE_ID && is_match_all(&value) {
                    messages.push(format!(
                        "regex `{value}` matches everything; only the DEFAULT rule may do that"
                    ));
                }
            }
            _ => {}
        }
        if !messages.is_empty() {
            errors.push(ValidationError {
                ids: vec![id],
                messages,
            });
            continue;
        }
        let key = (text_field(raw, "field"), rule, value);
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            errors.push(ValidationError {
                ids: vec![first.clone(), id.clone()],
                messages: vec![format!(
                    "rules `{first}` and `{id}` have the same field, rule and value"
                )],
            });
        } else {
            seen.push((key, id));
        }
    }
    FilteringValidation {
        state: if errors.is_empty() {
            "valid"
        } else {
            "invalid"
        }
        .into(),
        errors,
    }
}

fn is_match_all(pattern: &str) -> bool {
    matches!(
        pattern.trim(),
        ".*" | "(.*)" | "^.*" | "^.*$" | ".*$" | "^(.*)$"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn rule(id: &str, order: i64, policy: &str, field: &str, rule: &str, value: &str) -> Value {
        json!({"id": id, "order": order, "policy": policy, "field": field, "rule": rule, "value": value})
    }

    #[test]
    fn first_matching_rule_decides_in_order_and_default_is_dropped() {
        let filtering = json!({"rules": [
            rule("DEFAULT", 0, "exclude", "_", "regex", ".*"),
            rule("b", 2, "include", "channel", "equals", "general"),
            rule("a", 1, "exclude", "text", "contains", "secret"),
        ], "advanced_snippet": {}, "validation": {"state": "valid", "errors": []}});
        let rules = Rules::from_filtering(&filtering);
        assert!(!rules.is_empty());
        // "a" (order 1) wins over "b" for a secret in general.
        assert!(!rules.includes(&doc(json!({"channel": "general", "text": "a secret"}))));
        assert!(rules.includes(&doc(json!({"channel": "general", "text": "hello"}))));
        // No match → included (DEFAULT exclude was dropped).
        assert!(rules.includes(&doc(json!({"channel": "random"}))));
        assert!(Rules::from_filtering(&Value::Null).is_empty());
    }

    #[test]
    fn rule_types_and_coercion() {
        let r = |rule_type: &str, value: &str| {
            Rules::from_filtering(
                &json!({"rules": [rule("x", 0, "exclude", "f", rule_type, value)]}),
            )
        };
        let d = |v: Value| doc(json!({ "f": v }));
        assert!(!r("equals", "abc").includes(&d(json!("abc"))));
        assert!(r("equals", "abc").includes(&d(json!("abcd"))));
        assert!(!r("starts_with", "ab").includes(&d(json!("abc"))));
        assert!(!r("ends_with", "bc").includes(&d(json!("abc"))));
        assert!(!r("contains", "b").includes(&d(json!("abc"))));
        // regex: anchored at the start only, like re.match.
        assert!(!r("regex", "a.c").includes(&d(json!("abcdef"))));
        assert!(r("regex", "b.d").includes(&d(json!("abcdef"))));
        // numbers compare as floats.
        assert!(!r("<", "10").includes(&d(json!(9.5))));
        assert!(r("<", "10").includes(&d(json!(10))));
        assert!(!r(">", "10").includes(&d(json!(11))));
        assert!(!r("equals", "3").includes(&d(json!(3))));
        assert!(r("<", "not a number").includes(&d(json!(3))));
        // booleans.
        assert!(!r("equals", "yes").includes(&d(json!(true))));
        assert!(!r("equals", "off").includes(&d(json!(false))));
        assert!(r("equals", "on").includes(&d(json!(false))));
        // dates compare as instants, whatever the offset.
        assert!(!r("<", "2024-01-01").includes(&d(json!("2023-12-31T23:00:00+00:00"))));
        assert!(!r("<", "2024-01-01").includes(&d(json!("2024-01-01T00:30:00+01:00"))));
        assert!(!r(">", "2024-01-01T00:00:00Z").includes(&d(json!("2024-01-02"))));
        // a missing field never matches.
        assert!(r("equals", "abc").includes(&doc(json!({"g": "abc"}))));
        // dotted paths reach into objects.
        let nested = Rules::from_filtering(
            &json!({"rules": [rule("x", 0, "exclude", "a.b", "equals", "1")]}),
        );
        assert!(!nested.includes(&doc(json!({"a": {"b": 1}}))));
    }

    #[test]
    fn validation_reports_each_problem_by_rule_id() {
        let valid = validate_rules(&json!([
            rule("DEFAULT", 0, "include", "_", "regex", ".*"),
            rule("a", 1, "exclude", "text", "contains", "x"),
        ]));
        assert_eq!(valid.state, "valid");
        assert!(valid.errors.is_empty());

        let invalid = validate_rules(&json!([
            rule("e", 1, "include", "", "equals", "x"),
            rule("r", 2, "include", "f", "regex", "(unclosed"),
            rule("m", 3, "include", "f", "regex", "(.*)"),
            rule("p", 4, "maybe", "f", "equals", "x"),
            rule("t", 5, "include", "f", "like", "x"),
            rule("d1", 6, "include", "f", "equals", "same"),
            rule("d2", 7, "exclude", "f", "equals", "same"),
        ]));
        assert_eq!(invalid.state, "invalid");
        let by_id = |id: &str| {
            invalid
                .errors
                .iter()
                .find(|e| e.ids.contains(&id.to_string()))
                .unwrap_or_else(|| panic!("no error for {id}: {invalid:?}"))
                .messages
                .join("; ")
        };
        assert!(by_id("e").contains("`field` must not be empty"));
        assert!(by_id("r").contains("not a valid regex"));
        assert!(by_id("m").contains("matches everything"));
        assert!(by_id("p").contains("policy `maybe`"));
        assert!(by_id("t").contains("rule `like`"));
        assert!(by_id("d2").contains("same field, rule and value"));
        assert_eq!(invalid.errors.len(), 6);
        let json = serde_json::to_value(&invalid).unwrap();
        assert_eq!(json["state"], "invalid");
        assert!(json["errors"][0]["ids"].is_array());
        assert_eq!(validate_rules(&json!({})).state, "invalid");
    }
}
