//! The connector configuration schema: the field objects stored under `configuration` in a
//! connector document, which Kibana renders as a form (`elastic-connectors-protocol.md` §2.2).
//!
//! Invariants: a field serializes with every property the Python service writes
//! (`DEFAULT_CONFIGURATION` defaults fill what a source leaves out), so Kibana shows the same
//! form; unknown properties written by Kibana are kept on a round trip (`extra`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A connector's configuration: field key → field.
pub type Configuration = BTreeMap<String, ConfigField>;

/// One configuration field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigField {
    /// Null or a default shown in the form.
    #[serde(default)]
    pub default_value: Value,
    /// Fields that must have given values for this one to apply.
    #[serde(default)]
    pub depends_on: Vec<DependsOn>,
    /// Widget: `text`, `textarea`, `numeric`, `toggle`, `dropdown`, …
    #[serde(default = "default_display")]
    pub display: String,
    /// Form label (empty → the key in capitals, as upstream).
    #[serde(default)]
    pub label: String,
    /// Choices for dropdowns.
    #[serde(default)]
    pub options: Vec<Value>,
    /// Position in the form.
    #[serde(default = "default_order")]
    pub order: u32,
    /// Whether an empty value is an error.
    #[serde(default = "default_true")]
    pub required: bool,
    /// Whether the value is a secret (masked in Kibana, never logged).
    #[serde(default)]
    pub sensitive: bool,
    /// Help text.
    #[serde(default)]
    pub tooltip: Option<String>,
    /// `str`, `int`, `float`, `bool` or `list`.
    #[serde(rename = "type", default = "default_type")]
    pub field_type: String,
    /// E.g. `["advanced"]`.
    #[serde(default)]
    pub ui_restrictions: Vec<String>,
    /// Value constraints.
    #[serde(default)]
    pub validations: Vec<Validation>,
    /// The value.
    #[serde(default = "empty_string")]
    pub value: Value,
    /// Properties we do not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependsOn {
    /// The other field's key.
    pub field: String,
    /// The value it must have.
    pub value: Value,
}

/// `validations` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// `less_than`, `greater_than`, `list_type`, `included_in` or `regex`.
    #[serde(rename = "type")]
    pub validation_type: String,
    /// The bound, list or pattern.
    pub constraint: Value,
}

fn default_display() -> String {
    "text".into()
}
fn default_order() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_type() -> String {
    "str".into()
}
fn empty_string() -> Value {
    Value::String(String::new())
}

impl ConfigField {
    /// A field with the framework's defaults (`required: true`, `display: text`, …).
    pub fn new(label: &str, field_type: &str, order: u32) -> ConfigField {
        ConfigField {
            default_value: Value::Null,
            depends_on: Vec::new(),
            display: default_display(),
            label: label.into(),
            options: Vec::new(),
            order,
            required: true,
            sensitive: false,
            tooltip: None,
            field_type: field_type.into(),
            ui_restrictions: Vec::new(),
            validations: Vec::new(),
            value: empty_string(),
            extra: Map::new(),
        }
    }

    /// Builder: display widget.
    pub fn display(mut self, display: &str) -> ConfigField {
        self.display = display.into();
        self
    }

    /// Builder: tooltip.
    pub fn tooltip(mut self, tooltip: &str) -> ConfigField {
        self.tooltip = Some(tooltip.into());
        self
    }

    /// Builder: initial value.
    pub fn value(mut self, value: Value) -> ConfigField {
        self.value = value;
        self
    }

    /// Builder: secret.
    pub fn sensitive(mut self) -> ConfigField {
        self.sensitive = true;
        self
    }

    /// Builder: not required.
    pub fn optional(mut self) -> ConfigField {
        self.required = false;
        self
    }

    /// Builder: add a validation.
    pub fn validation(mut self, validation_type: &str, constraint: Value) -> ConfigField {
        self.validations.push(Validation {
            validation_type: validation_type.into(),
            constraint,
        });
        self
    }

    /// Builder: add a dependency.
    pub fn depends_on(mut self, field: &str, value: Value) -> ConfigField {
        self.depends_on.push(DependsOn {
            field: field.into(),
            value,
        });
        self
    }

    /// Builder: dropdown choices, `(label, value)`.
    pub fn options(mut self, choices: &[(&str, &str)]) -> ConfigField {
        self.options = choices
            .iter()
            .map(|(label, value)| serde_json::json!({"label": label, "value": value}))
            .collect();
        self
    }

    /// Builder: the default the form shows (and a non-required empty field takes).
    pub fn default_value(mut self, value: Value) -> ConfigField {
        self.default_value = value;
        self
    }

    /// Builder: UI restrictions (`advanced`).
    pub fn ui_restrictions(mut self, restrictions: &[&str]) -> ConfigField {
        self.ui_restrictions = restrictions.iter().map(|r| r.to_string()).collect();
        self
    }

    /// The label shown in messages (the key in capitals when empty, as upstream).
    pub fn display_label(&self, key: &str) -> String {
        if self.label.is_empty() {
            key.to_uppercase()
        } else {
            self.label.clone()
        }
    }

    /// The value coerced by `type`, as the Python service does: `""`/null → empty; `int`
    /// from numbers or numeric strings; `bool` from booleans or `true/false/yes/no/1/0`;
    /// `list` from arrays or comma-separated strings. A non-required empty field falls back
    /// to `default_value`. `None` means empty (or not coercible: see [`Self::coerce_error`]).
    pub fn coerced(&self) -> Option<Value> {
        let value = if is_empty(&self.value) && !self.required && !self.default_value.is_null() {
            &self.default_value
        } else {
            &self.value
        };
        if is_empty(value) {
            return None;
        }
        coerce(value, &self.field_type)
    }

    /// Whether the value is empty (after the non-required default).
    pub fn is_empty(&self) -> bool {
        is_empty(&self.value) && (self.required || self.default_value.is_null())
    }

    /// A message when a non-empty value cannot be read as the field's type.
    pub fn coerce_error(&self, key: &str) -> Option<String> {
        if is_empty(&self.value) || coerce(&self.value, &self.field_type).is_some() {
            return None;
        }
        Some(format!(
            "Field '{}' expects a value of type {}, got {}.",
            self.display_label(key),
            self.field_type,
            self.value
        ))
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

fn coerce(value: &Value, field_type: &str) -> Option<Value> {
    match field_type {
        "int" => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(value.clone()),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| Value::from(f as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
            _ => None,
        },
        "float" => match value {
            Value::Number(_) => Some(value.clone()),
            Value::String(s) => s.trim().parse::<f64>().ok().map(Value::from),
            _ => None,
        },
        "bool" => match value {
            Value::Bool(_) => Some(value.clone()),
            Value::String(s) => match s.trim().to_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "on" | "1" => Some(Value::Bool(true)),
                "false" | "f" | "no" | "n" | "off" | "0" => Some(Value::Bool(false)),
                _ => None,
            },
            Value::Number(n) => n.as_i64().map(|i| Value::Bool(i != 0)),
            _ => None,
        },
        "list" => match value {
            Value::Array(_) => Some(value.clone()),
            Value::String(s) => Some(Value::Array(
                s.split(',')
                    .map(|part| part.trim())
                    .filter(|part| !part.is_empty())
                    .map(|part| Value::String(part.to_string()))
                    .collect(),
            )),
            _ => None,
        },
        _ => match value {
            Value::String(_) => Some(value.clone()),
            Value::Number(n) => Some(Value::String(n.to_string())),
            Value::Bool(b) => Some(Value::String(b.to_string())),
            _ => Some(value.clone()),
        },
    }
}

/// Typed read access to a configuration's values.
pub trait ConfigurationExt {
    /// A string value (empty → `None`).
    fn str_value(&self, key: &str) -> Option<String>;
    /// An integer value.
    fn int_value(&self, key: &str) -> Option<i64>;
    /// A boolean value.
    fn bool_value(&self, key: &str) -> Option<bool>;
    /// A list value.
    fn list_value(&self, key: &str) -> Vec<String>;
}

impl ConfigurationExt for Configuration {
    fn str_value(&self, key: &str) -> Option<String> {
        match self.get(key)?.coerced()? {
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }
    fn int_value(&self, key: &str) -> Option<i64> {
        self.get(key)?.coerced()?.as_i64()
    }
    fn bool_value(&self, key: &str) -> Option<bool> {
        self.get(key)?.coerced()?.as_bool()
    }
    fn list_value(&self, key: &str) -> Vec<String> {
        match self.get(key).and_then(|f| f.coerced()) {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_every_default_property() {
        let field = ConfigField::new("Days", "int", 2).display("numeric");
        let value = serde_json::to_value(&field).unwrap();
        for key in [
            "default_value",
            "depends_on",
            "display",
            "label",
            "options",
            "order",
            "required",
            "sensitive",
            "tooltip",
            "type",
            "ui_restrictions",
            "validations",
            "value",
        ] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        assert_eq!(value["value"], json!(""));
        assert_eq!(value["required"], json!(true));
    }

    #[test]
    fn keeps_unknown_properties() {
        let raw = json!({"label":"X","type":"str","value":"v","placeholder":"hint"});
        let field: ConfigField = serde_json::from_value(raw).unwrap();
        assert_eq!(
            serde_json::to_value(&field).unwrap()["placeholder"],
            json!("hint")
        );
    }

    #[test]
    fn coerces_like_the_python_service() {
        let mut config = Configuration::new();
        config.insert(
            "n".into(),
            ConfigField::new("N", "int", 1).value(json!("180")),
        );
        config.insert(
            "b".into(),
            ConfigField::new("B", "bool", 2).value(json!("yes")),
        );
        config.insert(
            "l".into(),
            ConfigField::new("L", "list", 3).value(json!("a, b,,c")),
        );
        config.insert(
            "s".into(),
            ConfigField::new("S", "str", 4).value(json!("  ")),
        );
        let mut optional = ConfigField::new("D", "int", 5).optional();
        optional.default_value = json!(7);
        config.insert("d".into(), optional);
        assert_eq!(config.int_value("n"), Some(180));
        assert_eq!(config.bool_value("b"), Some(true));
        assert_eq!(config.list_value("l"), vec!["a", "b", "c"]);
        assert_eq!(config.str_value("s"), None);
        assert_eq!(config.int_value("d"), Some(7));
        let bad = ConfigField::new("Days", "int", 1).value(json!("many"));
        assert!(bad
            .coerce_error("n")
            .unwrap()
            .contains("expects a value of type int"));
    }
}
