//! Hand-written schemas for the discriminated blocks (`type`, `action`), and the transform
//! that lets every templatable parameter also take a template string.
//!
//! Discriminated blocks use `allOf` + `if`/`then` rather than `oneOf`, so editors complete the
//! parameters of the chosen action and a validator reports the one branch that applies.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use super::action::{
    ActionKind, BulkRetryAutomation, HttpRequest, ReissueCertificate, RetryCertificate,
    RetryCredentialsTask,
};
use super::common::{Duration, Limits, RetryPolicy, Rollout, Tls, Wait};
use super::job::{ForEach, Job, Source, When};
use super::provider::{
    DigicertAuth, HttpAuth, NcloudAuth, OtcAuth, Provider, ProviderType, VcfAuth, VenafiAuth,
};
use super::secret::{SECRET_REF, SecretRef};
use super::source::{
    AutomatedIpsQuery, CertificatesQuery, CredentialsTasksQuery, NcpCertificatesQuery, SourceKind,
    TasksQuery, TppCertificatesQuery,
};

/// A string holding `{{ … }}` or `{% … %}`, rendered before the value is checked.
pub struct TemplateString;

impl JsonSchema for TemplateString {
    fn schema_name() -> Cow<'static, str> {
        "TemplateString".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A minijinja template, e.g. `{{ item.port }}`; a string that is one `{{ expression }}` keeps the expression's type.",
            "type": "string",
            "pattern": r"\{\{|\{%"
        })
    }
}

/// The schema of `T` with every value position also accepting a template string.
pub fn templated_schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    let template = generator.subschema_for::<TemplateString>().to_value();
    let secret = generator.subschema_for::<SecretRef>().to_value();
    let mut inline = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut schema = inline.root_schema_for::<T>().to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    let cx = Refs { template, secret };
    visit(&mut schema, &cx);
    schema
}

struct Refs {
    template: Value,
    secret: Value,
}

fn is_secret(v: &Value) -> bool {
    v.get("title").and_then(Value::as_str) == Some(SECRET_REF)
        || v.get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with("A reference to a secret"))
}

fn visit(v: &mut Value, cx: &Refs) {
    if is_secret(v) {
        *v = cx.secret.clone();
        return;
    }
    children(v, cx);
    if needs_wrap(v) {
        let mut inner = std::mem::take(v);
        let mut outer = Map::new();
        if let Some(d) = inner.as_object_mut().and_then(|o| o.remove("description")) {
            outer.insert("description".into(), d);
        }
        if let Some(d) = inner.as_object_mut().and_then(|o| o.remove("default")) {
            outer.insert("default".into(), d);
        }
        outer.insert("anyOf".into(), json!([inner, cx.template.clone()]));
        *v = Value::Object(outer);
    }
}

fn children(v: &mut Value, cx: &Refs) {
    let Some(obj) = v.as_object_mut() else { return };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for p in props.values_mut() {
            visit(p, cx);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child @ Value::Object(_)) = obj.get_mut(key) {
            visit(child, cx);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(members)) = obj.get_mut(key) {
            for m in members {
                if is_secret(m) {
                    *m = cx.secret.clone();
                } else {
                    children(m, cx);
                }
            }
        }
    }
}

/// A position that already takes any string takes a template too; anything else is widened.
fn needs_wrap(v: &Value) -> bool {
    let Some(obj) = v.as_object() else {
        return false;
    };
    if obj.is_empty() || obj.get("$ref") == Some(&Value::String(String::new())) {
        return false;
    }
    !accepts_any_string(v)
}

fn accepts_any_string(v: &Value) -> bool {
    let Some(obj) = v.as_object() else {
        return v == &Value::Bool(true);
    };
    if obj.is_empty() {
        return true;
    }
    let constrained = ["enum", "const", "pattern", "format"]
        .iter()
        .any(|k| obj.contains_key(*k));
    let typed_string = match obj.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
        None => false,
        _ => false,
    };
    if typed_string && !constrained {
        return true;
    }
    ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| obj.get(*k).and_then(Value::as_array))
        .any(|members| members.iter().any(accepts_any_string))
}

/// An object schema whose `field` takes a different schema for each value of `tag`.
fn discriminated(
    mut base: Value,
    tag: &str,
    field: &str,
    cases: Vec<(&'static str, Value)>,
) -> Schema {
    let all_of: Vec<Value> = cases
        .into_iter()
        .map(|(name, schema)| {
            json!({
                "if": { "properties": { tag: { "const": name } }, "required": [tag] },
                "then": { "properties": { field: schema } }
            })
        })
        .collect();
    base.as_object_mut()
        .expect("an object schema")
        .insert("allOf".into(), Value::Array(all_of));
    Schema::try_from(base).expect("an object schema")
}

fn sub<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

fn described(mut v: Value, description: &str) -> Value {
    if let Some(obj) = v.as_object_mut() {
        obj.insert("description".into(), Value::String(description.into()));
        v
    } else {
        json!({ "description": description, "allOf": [v] })
    }
}

impl JsonSchema for Provider {
    fn schema_name() -> Cow<'static, str> {
        "Provider".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let base = json!({
            "description": "An API endpoint. The fields of `auth` depend on `type`.",
            "type": "object",
            "properties": {
                "type": sub::<ProviderType>(generator),
                "url": { "type": "string", "minLength": 1, "description": "Base URL, e.g. `https://tpp.example.com`; templates may use `vars` and `env`. Optional with `--sandbox`." },
                "auth": { "description": "Credentials; their shape depends on `type`." },
                "limits": sub::<Limits>(generator),
                "tls": sub::<Tls>(generator),
                "timeout": described(sub::<Duration>(generator), "Time limit of one request to this provider."),
                "headers": {
                    "type": "object",
                    "additionalProperties": { "type": "string" },
                    "description": "Extra headers sent with every request (the `http` type only; secrets go in `auth`)."
                }
            },
            "required": ["type"],
            "additionalProperties": false
        });
        let cases = vec![
            ("venafi_tpp", sub::<VenafiAuth>(generator)),
            ("digicert", sub::<DigicertAuth>(generator)),
            ("vcf", sub::<VcfAuth>(generator)),
            ("otc_waf", sub::<OtcAuth>(generator)),
            ("ncloud", sub::<NcloudAuth>(generator)),
            ("http", sub::<HttpAuth>(generator)),
        ];
        debug_assert_eq!(cases.len(), ProviderType::ALL.len());
        discriminated(base, "type", "auth", cases)
    }
}

impl JsonSchema for Job {
    fn schema_name() -> Cow<'static, str> {
        "Job".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let base = json!({
            "description": "One step: an action run once, or once per item of `for_each`. The fields of `with` depend on `action`.",
            "type": "object",
            "properties": {
                "id": { "type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", "description": "Unique job id, used by `needs`, `--target` and reports." },
                "description": { "type": "string" },
                "provider": { "type": "string", "minLength": 1, "description": "Name of an entry under `providers`." },
                "action": sub::<ActionKind>(generator),
                "with": { "description": "The action's parameters; string values may be templates." },
                "for_each": described(sub::<ForEach>(generator), "Run the action once per item; `item` and `index` are bound in templates."),
                "when": described(sub::<When>(generator), "Keep only the items (or the job) for which this expression is true."),
                "needs": { "type": "array", "items": { "type": "string" }, "uniqueItems": true, "description": "Jobs that must succeed before this one starts." },
                "rollout": sub::<Rollout>(generator),
                "retry": sub::<RetryPolicy>(generator),
                "timeout": described(sub::<Duration>(generator), "Time limit of one request of this job."),
                "wait": sub::<Wait>(generator)
            },
            "required": ["id", "provider", "action", "with"],
            "additionalProperties": false
        });
        let cases = vec![
            (
                "retry_certificate",
                templated_schema::<RetryCertificate>(generator),
            ),
            (
                "bulk_retry_automation",
                templated_schema::<BulkRetryAutomation>(generator),
            ),
            (
                "retry_credentials_task",
                templated_schema::<RetryCredentialsTask>(generator),
            ),
            (
                "reissue_certificate",
                templated_schema::<ReissueCertificate>(generator),
            ),
            ("http", templated_schema::<HttpRequest>(generator)),
        ];
        debug_assert_eq!(cases.len(), ActionKind::ALL.len());
        discriminated(base, "action", "with", cases)
    }
}

impl JsonSchema for Source {
    fn schema_name() -> Cow<'static, str> {
        "Source".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let base = json!({
            "description": "A read-only query run at plan time; its items are `sources.<name>` in templates.",
            "type": "object",
            "properties": {
                "provider": { "type": "string", "minLength": 1, "description": "Name of an entry under `providers`." },
                "type": sub::<SourceKind>(generator),
                "with": { "description": "The query's filters." }
            },
            "required": ["provider", "type"],
            "additionalProperties": false
        });
        let cases = vec![
            (
                "certificates",
                templated_schema::<CertificatesQuery>(generator),
            ),
            (
                "tpp_certificates",
                templated_schema::<TppCertificatesQuery>(generator),
            ),
            (
                "automated_ips",
                templated_schema::<AutomatedIpsQuery>(generator),
            ),
            (
                "credentials_tasks",
                templated_schema::<CredentialsTasksQuery>(generator),
            ),
            ("tasks", templated_schema::<TasksQuery>(generator)),
            (
                "ncp_certificates",
                templated_schema::<NcpCertificatesQuery>(generator),
            ),
        ];
        debug_assert_eq!(cases.len(), SourceKind::ALL.len());
        discriminated(base, "type", "with", cases)
    }
}
