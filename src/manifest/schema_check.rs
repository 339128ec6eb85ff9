//! Checking a loaded runbook against the JSON Schema, with each error mapped back to its span.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::diagnostic::{Diagnostic, Diagnostics, quote_value};
use super::load::Document;
use super::node::push_pointer;
use super::schema;
use crate::suggest::did_you_mean;

struct Compiled {
    schema: Value,
    validator: Validator,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let schema = schema::generate();
        let validator =
            jsonschema::draft202012::new(&schema).expect("the generated schema compiles");
        Compiled { schema, validator }
    })
}

/// Validates `doc` against the runbook schema; an empty result means it conforms.
#[must_use]
pub fn check(doc: &Document) -> Diagnostics {
    let c = compiled();
    let mut out = Diagnostics::default();
    for error in c.validator.iter_errors(&doc.value) {
        explain(doc, &c.schema, &error, None, &mut out);
    }
    out
}

/// Validates a rendered value against a sub-schema (an action's typed parameters).
pub fn validate_value(validator: &Validator, value: &Value) -> Vec<(String, String)> {
    validator
        .iter_errors(value)
        .map(|e| (e.instance_path().as_str().to_owned(), plain_message(&e)))
        .collect()
}

/// The schema at a schema path; jsonschema reports paths from the definition a `$ref` led to.
fn resolve<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = root;
    for token in path.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        node = match node {
            Value::Object(m) => m.get(&token)?,
            Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

const SECRET_DEF: &str = "/$defs/SecretRef/";
const TEMPLATE_DEF: &str = "/$defs/TemplateString/";

/// The schema path without its final keyword: the schema that holds the failed keyword.
fn parent_path(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn type_name(v: &Value) -> &'static str {
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

fn expected_types(kind: &TypeKind) -> String {
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

fn short(v: &Value) -> String {
    quote_value(v, 60)
}

/// The name a reader knows a node by: its key, or `item N of <key>`.
fn field_name(pointer: &str) -> String {
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
fn plain_message(e: &ValidationError<'_>) -> String {
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

fn explain(
    doc: &Document,
    root: &Value,
    error: &ValidationError<'_>,
    inherited: Option<&str>,
    out: &mut Diagnostics,
) {
    let pointer = error.instance_path().as_str().to_owned();
    let schema_path = error.schema_path().as_str().to_owned();
    let holder = resolve(root, parent_path(&schema_path));
    let through_secret = schema_path.contains(SECRET_DEF);
    // Templatable fields keep their description on the `anyOf` wrapper, above the branch.
    let description = holder
        .and_then(|h| h.get("description"))
        .and_then(Value::as_str)
        .or(inherited);
    let file = &doc.file;
    let instance = error.instance();

    if through_secret && instance.is_string() {
        out.push(inline_secret(doc, &pointer));
        return;
    }

    let d = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed: Vec<&str> = holder
                .and_then(|h| h.get("properties"))
                .and_then(Value::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            for key in unexpected {
                let key_pointer = push_pointer(&pointer, key);
                let where_ = if pointer.is_empty() {
                    "at the top level".to_owned()
                } else {
                    format!("in {}", field_name(&pointer))
                };
                let help = did_you_mean(key, allowed.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| {
                        (!allowed.is_empty())
                            .then(|| format!("allowed keys here: {}", allowed.join(", ")))
                    });
                out.push(
                    Diagnostic::error("unknown-key", format!("unknown key `{key}` {where_}"))
                        .at(file, doc.key_span(&key_pointer), "not a known key")
                        .pointer(key_pointer)
                        .help_opt(help),
                );
            }
            return;
        }
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            let what = if pointer.is_empty() {
                "the runbook".to_owned()
            } else {
                field_name(&pointer)
            };
            Diagnostic::error(
                "missing-key",
                format!("{what} is missing the required key `{name}`"),
            )
            .at(
                file,
                doc.key_span(&pointer),
                format!("`{name}` is required here"),
            )
            .help_opt(property_help(holder, &name))
        }
        ValidationErrorKind::Type { kind } => Diagnostic::error(
            "wrong-type",
            format!(
                "{} must be {}, not {}",
                field_name(&pointer),
                expected_types(kind),
                type_name(instance)
            ),
        )
        .at(
            file,
            doc.value_span(&pointer),
            format!("{} here", type_name(instance)),
        )
        .help_opt(description.map(str::to_owned)),
        ValidationErrorKind::Enum { options } => {
            let choices: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let text = instance
                .as_str()
                .map_or_else(|| instance.to_string(), str::to_owned);
            let help = did_you_mean(&text, choices.iter().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("expected one of: {}", choices.join(", ")));
            Diagnostic::error(
                "unknown-value",
                format!("`{text}` is not a valid value for {}", field_name(&pointer)),
            )
            .at(file, doc.value_span(&pointer), "unknown value")
            .help(help)
        }
        ValidationErrorKind::Constant { expected_value } => Diagnostic::error(
            "wrong-value",
            format!(
                "{} must be {}, not {}",
                field_name(&pointer),
                expected_value,
                short(instance)
            ),
        )
        .at(file, doc.value_span(&pointer), "unexpected value"),
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            alternatives(doc, root, error, context, &pointer, description, out);
            return;
        }
        ValidationErrorKind::Pattern { pattern } => {
            let help = description.map_or_else(
                || format!("it must match the pattern `{pattern}`"),
                str::to_owned,
            );
            Diagnostic::error(
                "invalid-value",
                format!(
                    "{} is not valid for {}",
                    short(instance),
                    field_name(&pointer)
                ),
            )
            .at(
                file,
                doc.value_span(&pointer),
                "does not have the expected form",
            )
            .help(help)
        }
        ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. }
        | ValidationErrorKind::MinLength { .. }
        | ValidationErrorKind::MaxLength { .. }
        | ValidationErrorKind::MinItems { .. }
        | ValidationErrorKind::MaxItems { .. }
        | ValidationErrorKind::UniqueItems => Diagnostic::error(
            "out-of-range",
            format!("{}: {}", field_name(&pointer), error),
        )
        .at(file, doc.value_span(&pointer), "out of range")
        .help_opt(description.map(str::to_owned)),
        ValidationErrorKind::PropertyNames { error: inner } => {
            let name = inner.instance().as_str().unwrap_or_default().to_owned();
            let key_pointer = push_pointer(&pointer, &name);
            Diagnostic::error("invalid-name", format!("`{name}` is not a valid name in {}", field_name(&pointer)))
                .at(file, doc.key_span(&key_pointer), "invalid name")
                .help("names start with a letter or `_` and hold only letters, digits and `_`, so templates can use them")
        }
        _ => Diagnostic::error("schema", format!("{}: {error}", field_name(&pointer))).at(
            file,
            doc.value_span(&pointer),
            "here",
        ),
    };
    out.push(d.pointer(pointer));
}

fn property_help(holder: Option<&Value>, name: &str) -> Option<String> {
    holder?
        .get("properties")?
        .get(name)?
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!("`{name}`: {d}"))
}

/// Explains a value that matched none of several alternatives (`anyOf`/`oneOf`).
///
/// Templatable fields are `anyOf: [the real schema, TemplateString]` and optional ones add
/// `null`; neither is what the author meant, so the real alternative is explained instead.
fn alternatives(
    doc: &Document,
    root: &Value,
    error: &ValidationError<'_>,
    context: &[Vec<ValidationError<'static>>],
    pointer: &str,
    description: Option<&str>,
    out: &mut Diagnostics,
) {
    let instance = error.instance();
    let paths = |b: &[ValidationError<'static>]| {
        b.iter()
            .map(|e| e.schema_path().as_str().to_owned())
            .collect::<Vec<_>>()
    };
    if context
        .iter()
        .any(|b| paths(b).iter().any(|p| p.contains(SECRET_DEF)))
        && !instance.is_object()
    {
        out.push(inline_secret(doc, pointer));
        return;
    }
    // An enumeration whose variants are documented: one `const` per branch.
    let consts: Option<Vec<String>> = context
        .iter()
        .map(|b| match b.as_slice() {
            [e] => match e.kind() {
                ValidationErrorKind::Constant { expected_value } => {
                    expected_value.as_str().map(str::to_owned)
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    if let Some(choices) = consts.filter(|c| !c.is_empty()) {
        let text = instance
            .as_str()
            .map_or_else(|| instance.to_string(), str::to_owned);
        let help = did_you_mean(&text, choices.iter().map(String::as_str)).map_or_else(
            || format!("expected one of: {}", choices.join(", ")),
            |s| format!("did you mean `{s}`?"),
        );
        out.push(
            Diagnostic::error(
                "unknown-value",
                format!("`{text}` is not a valid value for {}", field_name(pointer)),
            )
            .at(&doc.file, doc.value_span(pointer), "unknown value")
            .pointer(pointer)
            .help(help),
        );
        return;
    }
    let is_template = |b: &[ValidationError<'static>]| {
        !b.is_empty() && paths(b).iter().all(|p| p.contains(TEMPLATE_DEF))
    };
    let is_null = |b: &[ValidationError<'static>]| matches!(b, [e] if matches!(e.kind(), ValidationErrorKind::Type { kind: TypeKind::Single(t) } if t.to_string() == "null"));
    let wrong_type_here = |b: &[ValidationError<'static>]| {
        b.iter().any(|e| {
            e.instance_path().as_str() == pointer
                && matches!(e.kind(), ValidationErrorKind::Type { .. })
        })
    };
    let templatable = context.iter().any(|b| is_template(b));
    let candidates: Vec<&[ValidationError<'static>]> = context
        .iter()
        .map(Vec::as_slice)
        .filter(|b| !is_template(b) && !is_null(b))
        .collect();
    if let Some(branch) = candidates
        .iter()
        .find(|b| !b.is_empty() && !wrong_type_here(b))
    {
        for e in *branch {
            explain(doc, root, e, description, out);
        }
        return;
    }
    let expected: Vec<String> = candidates
        .iter()
        .flat_map(|b| b.iter())
        .filter_map(|e| match e.kind() {
            ValidationErrorKind::Type { kind } if e.instance_path().as_str() == pointer => {
                Some(expected_types(kind))
            }
            _ => None,
        })
        .collect();
    let mut expected = expected.join(" or ");
    if expected.is_empty() {
        expected = "a different kind of value".to_owned();
    }
    if templatable {
        expected.push_str(" (or a `{{ template }}`)");
    }
    out.push(
        Diagnostic::error(
            "wrong-type",
            format!(
                "{} must be {expected}, not {}",
                field_name(pointer),
                type_name(instance)
            ),
        )
        .at(
            &doc.file,
            doc.value_span(pointer),
            format!("{} here", type_name(instance)),
        )
        .pointer(pointer)
        .help_opt(description.map(str::to_owned)),
    );
}

/// The environment variable a secret at `pointer` would naturally live in.
fn suggested_env(pointer: &str) -> String {
    let parts: Vec<&str> = pointer
        .split('/')
        .filter(|p| !p.is_empty() && p.parse::<usize>().is_err())
        .collect();
    let pick: Vec<&str> = match parts.as_slice() {
        ["providers", name, .., last] => vec![name, last],
        [.., last] => vec![last],
        [] => vec!["SECRET"],
    };
    pick.iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_")
}

fn inline_secret(doc: &Document, pointer: &str) -> Diagnostic {
    let span = doc.value_span(pointer);
    let key = pointer.rsplit('/').next().unwrap_or("secret");
    let env = suggested_env(pointer);
    let mut d = Diagnostic::error("inline-secret", format!("inline secret in `{key}`: secrets must be references"))
        .at(&doc.file, span, "secret written into the runbook")
        .pointer(pointer)
        .help(format!("write `{key}: {{env: {env}}}` (an environment variable) or `{key}: {{file: secrets/{}}}`, and rotate this secret if the file was ever committed", key.replace('_', "-")));
    d.mask.push(span);
    d
}
