//! Semantic checks the schema cannot express: references, uniqueness, the `needs` graph,
//! actions against provider types, credentials, and what templates refer to.

mod auth;
mod files;
mod graph;
mod origins;
mod templates;
mod urls;

use std::collections::HashMap;

use serde_json::Value;

use self::auth::{auth_help, auth_mode};
pub use self::files::file_problem;
use self::graph::needs_graph;
use self::templates::templates;
pub use self::templates::{template_diagnostic, template_span};
pub use self::urls::url_problem;
use super::diagnostic::{Diagnostic, Diagnostics};
use super::load::Document;
use super::model::{ActionKind, Manifest, ProviderType};
use super::node::push_pointer;
use crate::suggest::did_you_mean;

/// Runs every semantic check, returning all problems found.
#[must_use]
pub fn check(doc: &Document, m: &Manifest) -> Diagnostics {
    let mut out = Diagnostics::default();
    providers(doc, m, &mut out);
    files::files(doc, m, &mut out);
    urls::urls(doc, m, &mut out);
    origins::origins(doc, m, &mut out);
    jobs(doc, m, &mut out);
    needs_graph(doc, m, &mut out);
    sources(doc, m, &mut out);
    templates(doc, m, &mut out);
    out
}

fn providers(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    for (name, p) in &m.providers {
        let base = push_pointer("/providers", name);
        let needs_url = matches!(
            p.kind,
            ProviderType::VenafiTpp | ProviderType::Vcf | ProviderType::OtcWaf | ProviderType::Http
        );
        if needs_url && p.url.is_none() {
            out.push(
                Diagnostic::error("missing-url", format!("provider `{name}` ({}) has no `url`", p.kind))
                    .at(&doc.file, doc.key_span(&base), "add `url:` here")
                    .help("set the API's base URL, e.g. `url: https://tpp.example.com`, or `url: \"{{ env.TPP_URL }}\" with `TPP_URL` listed under `env`"),
            );
        }
        if p.headers.is_some() && p.kind != ProviderType::Http {
            let ptr = push_pointer(&base, "headers");
            out.push(
                Diagnostic::error(
                    "unsupported-key",
                    format!(
                        "`headers` only applies to `http` providers; `{name}` is `{}`",
                        p.kind
                    ),
                )
                .at(
                    &doc.file,
                    doc.key_span(&ptr),
                    "not used by this provider type",
                )
                .pointer(ptr),
            );
        }
        let auth_ptr = push_pointer(&base, "auth");
        match &p.auth {
            None if p.kind != ProviderType::Http => out.push(
                Diagnostic::error(
                    "missing-auth",
                    format!("provider `{name}` ({}) has no `auth`", p.kind),
                )
                .at(&doc.file, doc.key_span(&base), "add `auth:` here")
                .help(auth_help(p.kind)),
            ),
            None => {}
            Some(auth) => {
                if let Some(problem) = auth_mode(p.kind, auth) {
                    out.push(
                        Diagnostic::error("auth-mode", format!("provider `{name}`: {problem}"))
                            .at(&doc.file, doc.key_span(&auth_ptr), "incomplete credentials")
                            .pointer(auth_ptr)
                            .help(auth_help(p.kind)),
                    );
                }
            }
        }
    }
}

fn jobs(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, job) in m.jobs.iter().enumerate() {
        let base = format!("/jobs/{i}");
        let id_ptr = format!("{base}/id");
        if let Some(&first) = seen.get(job.id.as_str()) {
            out.push(
                Diagnostic::error("duplicate-job", format!("duplicate job id `{}`", job.id))
                    .at(&doc.file, doc.value_span(&id_ptr), "used again here")
                    .also(
                        &doc.file,
                        doc.value_span(&format!("/jobs/{first}/id")),
                        "first used here",
                    )
                    .pointer(id_ptr.clone())
                    .help("job ids must be unique; rename one of them"),
            );
        } else {
            seen.insert(&job.id, i);
        }
        let provider_ptr = format!("{base}/provider");
        match m.providers.get(&job.provider) {
            None => out.push(unknown_provider(
                doc,
                &provider_ptr,
                &format!("job `{}`", job.id),
                &job.provider,
                m.providers.keys(),
            )),
            Some(p) if job.action.provider_type() != p.kind => {
                let action_ptr = format!("{base}/action");
                let supported: Vec<&str> = ActionKind::for_provider(p.kind)
                    .map(ActionKind::name)
                    .collect();
                let fitting: Vec<&str> = m
                    .providers
                    .iter()
                    .filter(|(_, q)| q.kind == job.action.provider_type())
                    .map(|(n, _)| n.as_str())
                    .collect();
                let help = if fitting.is_empty() {
                    format!(
                        "`{}` needs a provider of type `{}`; `{}` supports: {}",
                        job.action,
                        job.action.provider_type(),
                        p.kind,
                        supported.join(", ")
                    )
                } else {
                    format!(
                        "`{}` runs on `{}` providers, such as `{}`",
                        job.action,
                        job.action.provider_type(),
                        fitting.join("`, `")
                    )
                };
                out.push(
                    Diagnostic::error(
                        "action-provider",
                        format!(
                            "action `{}` is not available on provider `{}` (type `{}`)",
                            job.action, job.provider, p.kind
                        ),
                    )
                    .at(
                        &doc.file,
                        doc.value_span(&action_ptr),
                        format!("not a `{}` action", p.kind),
                    )
                    .also(
                        &doc.file,
                        doc.value_span(&provider_ptr),
                        "provider chosen here",
                    )
                    .pointer(action_ptr)
                    .help(help),
                );
            }
            Some(_) => {}
        }
        if job.wait.is_some() && job.action != ActionKind::RetryCredentialsTask {
            let ptr = format!("{base}/wait");
            out.push(
                Diagnostic::error(
                    "unsupported-key",
                    format!(
                        "`wait` only applies to asynchronous actions; `{}` answers at once",
                        job.action
                    ),
                )
                .at(&doc.file, doc.key_span(&ptr), "nothing to wait for")
                .pointer(ptr)
                .help("remove `wait`; it applies to `retry_credentials_task`"),
            );
        }
    }
}

fn unknown_provider<'a>(
    doc: &Document,
    ptr: &str,
    who: &str,
    name: &str,
    providers: impl Iterator<Item = &'a String> + Clone,
) -> Diagnostic {
    let help = did_you_mean(name, providers.clone().map(String::as_str))
        .map(|s| format!("did you mean `{s}`?"))
        .unwrap_or_else(|| known("providers", providers));
    Diagnostic::error(
        "unknown-provider",
        format!("{who} uses the unknown provider `{name}`"),
    )
    .at(
        &doc.file,
        doc.value_span(ptr),
        "not defined under `providers`",
    )
    .pointer(ptr)
    .help(help)
}

/// Reference checks that still work on a runbook the schema rejected, so one run reports
/// a misspelt provider name alongside the schema errors.
#[must_use]
pub fn raw_references(doc: &Document) -> Diagnostics {
    let mut out = Diagnostics::default();
    let Some(providers) = doc.value.get("providers").and_then(Value::as_object) else {
        return out;
    };
    let names: Vec<String> = providers.keys().cloned().collect();
    for (i, job) in doc
        .value
        .get("jobs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let (Some(id), Some(provider)) = (
            job.get("id").and_then(Value::as_str),
            job.get("provider").and_then(Value::as_str),
        ) && !providers.contains_key(provider)
        {
            out.push(unknown_provider(
                doc,
                &format!("/jobs/{i}/provider"),
                &format!("job `{id}`"),
                provider,
                names.iter(),
            ));
        }
    }
    out
}

fn known<'a>(what: &str, names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        format!("no {what} are defined")
    } else {
        format!("defined {what}: {}", names.join(", "))
    }
}

fn sources(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    for (name, source) in &m.sources {
        let ptr = push_pointer(&push_pointer("/sources", name), "provider");
        match m.providers.get(&source.provider) {
            None => out.push(unknown_provider(
                doc,
                &ptr,
                &format!("source `{name}`"),
                &source.provider,
                m.providers.keys(),
            )),
            Some(p) if p.kind != source.kind.provider_type() => out.push(
                Diagnostic::error(
                    "source-provider",
                    format!(
                        "source `{name}` of type `{}` needs an `{}` provider, but `{}` is `{}`",
                        source.kind.name(),
                        source.kind.provider_type(),
                        source.provider,
                        p.kind
                    ),
                )
                .at(
                    &doc.file,
                    doc.value_span(&ptr),
                    format!("a `{}` provider", p.kind),
                )
                .pointer(ptr)
                .help(offered(p.kind)),
            ),
            Some(_) => {}
        }
    }
}

/// Which source types a provider type offers, as a hint.
fn offered(kind: crate::manifest::model::ProviderType) -> String {
    let kinds: Vec<String> = crate::manifest::model::SourceKind::offered_by(kind)
        .into_iter()
        .map(|k| format!("`{}`", k.name()))
        .collect();
    if kinds.is_empty() {
        format!("a `{kind}` provider offers no source")
    } else {
        format!("a `{kind}` provider offers: type {}", kinds.join(", "))
    }
}
