//! Explaining a value that matched none of several alternatives (`anyOf`/`oneOf`).

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::words::{expected_types, field_name, type_name};
use super::{SECRET_DEF, TEMPLATE_DEF, explain, unknown_value};
use crate::manifest::diagnostic::{Diagnostic, Diagnostics};
use crate::manifest::load::Document;
use crate::manifest::secrets::inline_secret;

/// Explains a value that matched none of several alternatives (`anyOf`/`oneOf`).
///
/// Templatable fields are `anyOf: [the real schema, TemplateString]` and optional ones add
/// `null`; neither is what the author meant, so the real alternative is explained instead.
pub(super) fn alternatives(
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
        out.push(unknown_value(doc, pointer, instance, &choices).pointer(pointer));
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
