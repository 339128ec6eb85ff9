//! The typed-parameter check of a rendered `with`: the action's own schema, without the
//! template alternatives the runbook schema allows, then the model types.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::check::file_problem;
use super::diagnostic::{Diagnostic, quote_value};
use super::load::Document;
use super::model::{
    ActionKind, ActionParams, BulkRetryAutomation, Csr, HeaderValue, HttpRequest, Job,
    ReissueCertificate, RetryCertificate, RetryCredentialsTask, SecretRef,
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
    let params = ActionParams::from_value(job.action, value).map_err(|e| {
        Diagnostic::error(
            "rendered-value",
            format!("the rendered `with` does not fit `{}`: {e}", job.action),
        )
        .at(&doc.file, doc.value_span(with_ptr), "rendered from here")
        .pointer(with_ptr)
    })?;
    let at = |rendered: &str| format!("{with_ptr}{}", raw_pointer(&job.with, rendered));
    if let Some(d) = path_segments(doc, &params, &at).or_else(|| files(doc, &params, &at)) {
        return Err(d);
    }
    Ok(params)
}

/// Values placed into a request path must have their documented shape, so a rendered
/// `X/../../v1/tokens` cannot steer a request to another endpoint.
fn path_segments(
    doc: &Document,
    params: &ActionParams,
    at: &dyn Fn(&str) -> String,
) -> Option<Diagnostic> {
    let ActionParams::RetryCredentialsTask(p) = params else {
        // NCP's `certificate_no` is typed as an integer, so it is digits by construction;
        // the other built-in actions put their targets into the body, not the path.
        return None;
    };
    if is_path_segment(&p.task_id) {
        return None;
    }
    let ptr = at("/task_id");
    Some(
        Diagnostic::error(
            "path-value",
            format!(
                "`task_id` rendered to {}, which is not a VCF task id",
                short(&Value::String(p.task_id.clone()))
            ),
        )
        .at(&doc.file, doc.value_span(&ptr), "produced by this value")
        .pointer(ptr)
        .help("VCF task ids are UUIDs such as `3c6b3c30-3bf2-480b-9539-8483699ab911`; the id is placed into the request path `PATCH /v1/credentials/tasks/{id}`, so it may hold only letters, digits, `-`, `_` and `.`"),
    )
}

/// One path segment that cannot leave its place: letters, digits, `-`, `_` and `.`, and not
/// `.` or `..`. The documented shape is a UUID, but the sandbox and rehearsal runbooks use
/// short ids (`t1`), and what matters for safety is that the value stays one segment.
fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Files a rendered action reads (a CSR, secret files) stay in the runbook's folder.
fn files(doc: &Document, params: &ActionParams, at: &dyn Fn(&str) -> String) -> Option<Diagnostic> {
    let mut named: Vec<(String, &str, &str, bool)> = Vec::new();
    match params {
        ActionParams::ReissueCertificate(p) => {
            if let Csr::File(f) = &p.csr {
                named.push(("/csr/file".to_owned(), "CSR file", &f.file, true));
            }
        }
        ActionParams::RetryCredentialsTask(p) => {
            for (i, e) in p.elements.iter().enumerate() {
                for (k, c) in e.credentials.iter().enumerate() {
                    if let Some(SecretRef::File(f)) = &c.password {
                        let ptr = format!("/elements/{i}/credentials/{k}/password/file");
                        named.push((ptr, "secret file", f, false));
                    }
                }
            }
        }
        ActionParams::Http(p) => {
            for (name, v) in &p.headers {
                if let HeaderValue::Secret(SecretRef::File(f)) = v {
                    let ptr = push_pointer(&push_pointer("/headers", name), "file");
                    named.push((ptr, "secret file", f, false));
                }
            }
        }
        ActionParams::RetryCertificate(_) | ActionParams::BulkRetryAutomation(_) => {}
    }
    named.into_iter().find_map(|(ptr, what, file, must_exist)| {
        file_problem(doc, &at(&ptr), what, file, must_exist)
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
