//! Checking a loaded runbook against the JSON Schema, with each error mapped back to its span.

use std::sync::OnceLock;

mod alternatives;
mod words;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use self::alternatives::alternatives;
use self::words::{expected_types, field_name, plain_message, short, type_name};
use super::diagnostic::{Diagnostic, Diagnostics};
use super::load::Document;
use super::node::push_pointer;
use super::schema;
use super::secrets::inline_secret;
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
            unknown_keys(doc, holder, &pointer, unexpected, out);
            return;
        }
        ValidationErrorKind::Required { property } => missing_key(doc, holder, &pointer, property),
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
        ValidationErrorKind::Enum { options } => enum_value(doc, &pointer, instance, options),
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

/// One diagnostic per unexpected key, each with the closest allowed key when there is one.
fn unknown_keys(
    doc: &Document,
    holder: Option<&Value>,
    pointer: &str,
    unexpected: &[String],
    out: &mut Diagnostics,
) {
    let allowed: Vec<&str> = holder
        .and_then(|h| h.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let where_ = if pointer.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in {}", field_name(pointer))
    };
    for key in unexpected {
        let key_pointer = push_pointer(pointer, key);
        let help = did_you_mean(key, allowed.iter().copied()).map_or_else(
            || (!allowed.is_empty()).then(|| format!("allowed keys here: {}", allowed.join(", "))),
            |s| Some(format!("did you mean `{s}`?")),
        );
        out.push(
            Diagnostic::error("unknown-key", format!("unknown key `{key}` {where_}"))
                .at(&doc.file, doc.key_span(&key_pointer), "not a known key")
                .pointer(key_pointer)
                .help_opt(help),
        );
    }
}

fn missing_key(
    doc: &Document,
    holder: Option<&Value>,
    pointer: &str,
    property: &Value,
) -> Diagnostic {
    let name = property
        .as_str()
        .map_or_else(|| property.to_string(), str::to_owned);
    let what = if pointer.is_empty() {
        "the runbook".to_owned()
    } else {
        field_name(pointer)
    };
    Diagnostic::error(
        "missing-key",
        format!("{what} is missing the required key `{name}`"),
    )
    .at(
        &doc.file,
        doc.key_span(pointer),
        format!("`{name}` is required here"),
    )
    .help_opt(property_help(holder, &name))
}

fn enum_value(doc: &Document, pointer: &str, instance: &Value, options: &Value) -> Diagnostic {
    let choices: Vec<String> = options
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    unknown_value(doc, pointer, instance, &choices)
}

/// A value outside a closed set, with the nearest choice or the whole set as the hint.
fn unknown_value(
    doc: &Document,
    pointer: &str,
    instance: &Value,
    choices: &[String],
) -> Diagnostic {
    let text = instance
        .as_str()
        .map_or_else(|| instance.to_string(), str::to_owned);
    let help = did_you_mean(&text, choices.iter().map(String::as_str)).map_or_else(
        || format!("expected one of: {}", choices.join(", ")),
        |s| format!("did you mean `{s}`?"),
    );
    Diagnostic::error(
        "unknown-value",
        format!("`{text}` is not a valid value for {}", field_name(pointer)),
    )
    .at(&doc.file, doc.value_span(pointer), "unknown value")
    .help(help)
}

fn property_help(holder: Option<&Value>, name: &str) -> Option<String> {
    holder?
        .get("properties")?
        .get(name)?
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!("`{name}`: {d}"))
}
