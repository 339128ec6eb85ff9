//! The typed-parameter check of a rendered `with`: the action's own schema, without the
//! template alternatives the runbook schema allows, then the model types.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::diagnostic::{Diagnostic, quote_value};
use super::load::Document;
use super::model::{
    ActionKind, ActionParams, BulkRetryAutomation, HttpRequest, Job, ReissueCertificate,
    RetryCertificate, RetryCredentialsTask,
};
use super::node::push_pointer;
use super::schema_check::validate_value;

fn short(v: &Value) -> String {
    quote_value(v, 80)
}

struct Strict {
    validator: Validator,
}

fn strict_validators() -> &'static HashMap<ActionKind, Strict> {
    static V: OnceLock<HashMap<ActionKind, Strict>> = OnceLock::new();
    fn one<T: JsonSchema>() -> Strict {
        let schema = SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value();
        Strict {
            validator: jsonschema::draft202012::new(&schema).expect("an action schema compiles"),
        }
    }
    V.get_or_init(|| {
        HashMap::from([
            (ActionKind::RetryCertificate, one::<RetryCertificate>()),
            (
                ActionKind::BulkRetryAutomation,
                one::<BulkRetryAutomation>(),
            ),
            (
                ActionKind::RetryCredentialsTask,
                one::<RetryCredentialsTask>(),
            ),
            (ActionKind::ReissueCertificate, one::<ReissueCertificate>()),
            (ActionKind::Http, one::<HttpRequest>()),
        ])
    })
}

/// Checks a rendered `with` against the action's typed parameters.
pub(super) fn typed(
    doc: &Document,
    job: &Job,
    with_ptr: &str,
    value: Value,
) -> Result<ActionParams, Diagnostic> {
    let strict = &strict_validators()[&job.action];
    if let Some((ptr, message)) = validate_value(&strict.validator, &value).into_iter().next() {
        let raw = raw_pointer(&job.with, &ptr);
        let at = format!("{with_ptr}{raw}");
        let rendered = value
            .pointer(&ptr)
            .map_or_else(String::new, |v| format!(" rendered to {},", short(v)));
        let field = if ptr.is_empty() {
            "`with`".to_owned()
        } else {
            format!("`{}`", ptr.trim_start_matches('/'))
        };
        return Err(Diagnostic::error(
            "rendered-value",
            format!(
                "{field}{rendered} which is not valid for `{}`: {message}",
                job.action
            ),
        )
        .at(&doc.file, doc.value_span(&at), "produced by this value")
        .pointer(at));
    }
    let params = ActionParams::from_value(job.action, value);
    params.map_err(|e| {
        Diagnostic::error(
            "rendered-value",
            format!("the rendered `with` does not fit `{}`: {e}", job.action),
        )
        .at(&doc.file, doc.value_span(with_ptr), "rendered from here")
        .pointer(with_ptr)
    })
}

/// The part of a rendered pointer that exists in the runbook: a template that produced a
/// whole subtree is where its errors point.
fn raw_pointer(raw: &Value, rendered: &str) -> String {
    let mut node = raw;
    let mut out = String::new();
    for token in rendered.split('/').skip(1) {
        let key = token.replace("~1", "/").replace("~0", "~");
        let next = match node {
            Value::Object(m) => m.get(&key),
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(n) => {
                out = push_pointer(&out, &key);
                node = n;
            }
            None => break,
        }
    }
    out
}
