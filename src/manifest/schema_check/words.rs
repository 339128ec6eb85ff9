//! How schema errors are worded: type names a reader knows, the name of a field from its
//! pointer, and jsonschema's message without its instance dump.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use crate::manifest::diagnostic::quote_value;

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

pub(super) fn expected_types(kind: &TypeKind) -> String {
    let name = |t: &str| match t {
        "object" => "a mapping".to_owned(),
        "array" => "a list".to_owned(),
        "integer" => "an integer".to_owned(),
        "null" => "nothing".to_owned(),
        other => format!("a {other}"),
    };
    match kind {
        TypeKind::Single(t) => name(&t.to_string()),
        TypeKind::Multiple(set) => {
            let names: Vec<String> = set
                .iter()
                .map(|t| t.to_string())
                .filter(|t| t != "null")
                .map(|t| name(&t))
                .collect();
            names.join(" or ")
        }
    }
}

pub(super) fn short(v: &Value) -> String {
    quote_value(v, 60)
}

/// The name a reader knows a node by: its key, or `item N of <key>`.
pub(super) fn field_name(pointer: &str) -> String {
    let mut tokens = pointer.rsplit('/');
    let last = tokens.next().unwrap_or("");
    if last.is_empty() {
        return "the runbook".to_owned();
    }
    let last = last.replace("~1", "/").replace("~0", "~");
    if last.parse::<usize>().is_ok() {
        let parent = tokens
            .next()
            .unwrap_or("")
            .replace("~1", "/")
            .replace("~0", "~");
        format!("item {last} of `{parent}`")
    } else {
        format!("`{last}`")
    }
}

/// jsonschema's own message without the instance dump, for messages inside rendered values.
pub(super) fn plain_message(e: &ValidationError<'_>) -> String {
    match e.kind() {
        ValidationErrorKind::Type { kind } => {
            format!(
                "expected {}, found {}",
                expected_types(kind),
                type_name(e.instance())
            )
        }
        ValidationErrorKind::Required { property } => format!("missing required key {property}"),
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!(
                "unknown key{} {}",
                if unexpected.len() == 1 { "" } else { "s" },
                quoted(unexpected)
            )
        }
        ValidationErrorKind::Enum { options } => {
            format!("{} is not one of {}", short(e.instance()), short(options))
        }
        _ => e.to_string(),
    }
}

fn quoted(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
