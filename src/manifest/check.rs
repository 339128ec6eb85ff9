//! Semantic checks the schema cannot express: references, uniqueness, the `needs` graph,
//! actions against provider types, credentials, and what templates refer to.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::load::Document;
use super::model::{
    ActionKind, DigicertAuth, ForEach, HttpAuth, Manifest, NcloudAuth, OtcAuth, ProviderType,
    VcfAuth, VenafiAuth, When,
};
use super::node::push_pointer;
use super::source::Span;
use super::template::{self, Compiled, TemplateError};
use crate::suggest::did_you_mean;

/// Runs every semantic check, returning all problems found.
#[must_use]
pub fn check(doc: &Document, m: &Manifest) -> Diagnostics {
    let mut out = Diagnostics::default();
    providers(doc, m, &mut out);
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

fn auth_help(kind: ProviderType) -> &'static str {
    match kind {
        ProviderType::VenafiTpp => {
            "`auth: {username: svc-redrive, password: {env: TPP_PASSWORD}}`, or `auth: {access_token: {env: TPP_TOKEN}}`"
        }
        ProviderType::Digicert => "`auth: {api_key: {env: DIGICERT_API_KEY}}`",
        ProviderType::Vcf => {
            "`auth: {username: admin@local, password: {env: VCF_PASSWORD}}`, or `auth: {api_key: {env: VCF_API_KEY}}`"
        }
        ProviderType::OtcWaf => {
            "`auth: {project_id: …, domain: …, username: …, password: {env: OTC_PASSWORD}}`, or `auth: {project_id: …, token: {env: OTC_TOKEN}}`"
        }
        ProviderType::Ncloud => {
            "`auth: {access_key: {env: NCLOUD_ACCESS_KEY}, secret_key: {env: NCLOUD_SECRET_KEY}}`"
        }
        ProviderType::Http => {
            "`auth: {bearer: {env: API_TOKEN}}`, `{basic: {username: …, password: {env: …}}}` or `{header: {name: X-Api-Key, value: {env: …}}}`"
        }
    }
}

/// Which credential combinations make sense; the schema only checks each field's shape.
fn auth_mode(kind: ProviderType, auth: &Value) -> Option<String> {
    let parse = |v: &Value| -> Option<String> {
        let r = match kind {
            ProviderType::VenafiTpp => serde_json::from_value::<VenafiAuth>(v.clone()).map(|a| {
                match (
                    a.username.is_some() && a.password.is_some(),
                    a.access_token.is_some(),
                ) {
                    (true, true) => Some(
                        "give either `username` + `password` or `access_token`, not both"
                            .to_owned(),
                    ),
                    (false, false) if a.username.is_some() => {
                        Some("`username` needs a `password`".to_owned())
                    }
                    (false, false) if a.password.is_some() => {
                        Some("`password` needs a `username`".to_owned())
                    }
                    (false, false) => Some(
                        "no credentials: give `username` + `password`, or `access_token`"
                            .to_owned(),
                    ),
                    _ if a.refresh_token.is_some() && a.access_token.is_none() => {
                        Some("`refresh_token` goes with `access_token`".to_owned())
                    }
                    _ => None,
                }
            }),
            ProviderType::Digicert => {
                serde_json::from_value::<DigicertAuth>(v.clone()).map(|_| None)
            }
            ProviderType::Vcf => serde_json::from_value::<VcfAuth>(v.clone()).map(|a| {
                match (
                    a.username.is_some(),
                    a.password.is_some(),
                    a.api_key.is_some(),
                ) {
                    (true, true, false) | (false, false, true) => None,
                    (_, _, true) => Some(
                        "give either `username` + `password` or `api_key`, not both".to_owned(),
                    ),
                    (true, false, _) => Some("`username` needs a `password`".to_owned()),
                    (false, true, _) => Some("`password` needs a `username`".to_owned()),
                    (false, false, false) => Some(
                        "no credentials: give `username` + `password`, or `api_key`".to_owned(),
                    ),
                }
            }),
            ProviderType::OtcWaf => serde_json::from_value::<OtcAuth>(v.clone()).map(|a| {
                let password = a.username.is_some() || a.password.is_some() || a.domain.is_some();
                match (password, a.token.is_some()) {
                    (true, true) => {
                        Some("give either a password login or `token`, not both".to_owned())
                    }
                    (false, false) => Some(
                        "no credentials: give `username`, `password` and `domain`, or `token`"
                            .to_owned(),
                    ),
                    (true, false)
                        if a.username.is_none() || a.password.is_none() || a.domain.is_none() =>
                    {
                        Some(
                            "a password login needs `username`, `password` and `domain`".to_owned(),
                        )
                    }
                    _ => None,
                }
            }),
            ProviderType::Ncloud => serde_json::from_value::<NcloudAuth>(v.clone()).map(|_| None),
            ProviderType::Http => serde_json::from_value::<HttpAuth>(v.clone()).map(|a| {
                let n = [a.bearer.is_some(), a.basic.is_some(), a.header.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count();
                (n > 1).then(|| "give one of `bearer`, `basic` or `header`".to_owned())
            }),
        };
        // A shape error was already reported by the schema check.
        r.ok().flatten()
    };
    parse(auth)
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

fn needs_graph(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    let ids: HashMap<&str, usize> = m
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); m.jobs.len()];
    for (i, job) in m.jobs.iter().enumerate() {
        for (k, need) in job.needs.iter().enumerate() {
            let ptr = format!("/jobs/{i}/needs/{k}");
            if need == &job.id {
                out.push(
                    Diagnostic::error("self-need", format!("job `{}` needs itself", job.id))
                        .at(
                            &doc.file,
                            doc.value_span(&ptr),
                            "a job cannot wait for itself",
                        )
                        .pointer(ptr)
                        .help("remove it from `needs`"),
                );
                continue;
            }
            match ids.get(need.as_str()) {
                Some(&j) => edges[i].push(j),
                None => {
                    let help = did_you_mean(need, m.jobs.iter().map(|j| j.id.as_str()))
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "jobs in this runbook: {}",
                                m.jobs
                                    .iter()
                                    .map(|j| j.id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        });
                    out.push(
                        Diagnostic::error(
                            "unknown-need",
                            format!("job `{}` needs `{need}`, which is not a job", job.id),
                        )
                        .at(&doc.file, doc.value_span(&ptr), "no job has this id")
                        .pointer(ptr)
                        .help(help),
                    );
                }
            }
        }
    }
    // Colour-marking DFS; each cycle is reported once, at the job where it was entered.
    let mut state = vec![0u8; m.jobs.len()];
    let mut stack = Vec::new();
    for start in 0..m.jobs.len() {
        if state[start] == 0 {
            visit(start, &edges, &mut state, &mut stack, &mut |cycle| {
                let names: Vec<&str> = cycle.iter().map(|&i| m.jobs[i].id.as_str()).collect();
                let first = cycle[0];
                let ptr = format!("/jobs/{first}/needs");
                out.push(
                    Diagnostic::error("needs-cycle", format!("the `needs` of these jobs form a cycle: {} → {}", names.join(" → "), names[0]))
                        .at(&doc.file, doc.key_span(&ptr), "part of the cycle")
                        .pointer(ptr)
                        .help("jobs run after the jobs they need, so a cycle can never start; remove one of these `needs`"),
                );
            });
        }
    }
}

fn visit(
    n: usize,
    edges: &[Vec<usize>],
    state: &mut [u8],
    stack: &mut Vec<usize>,
    report: &mut dyn FnMut(Vec<usize>),
) {
    state[n] = 1;
    stack.push(n);
    for &next in &edges[n] {
        match state[next] {
            0 => visit(next, edges, state, stack, report),
            1 => {
                let pos = stack.iter().position(|&s| s == next).unwrap_or(0);
                report(stack[pos..].to_vec());
            }
            _ => {}
        }
    }
    stack.pop();
    state[n] = 2;
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
                .pointer(ptr),
            ),
            Some(_) => {}
        }
    }
}

/// Where a template string lives, and the byte range of a problem inside it when known.
#[must_use]
pub fn template_span(
    doc: &Document,
    pointer: &str,
    range: Option<&std::ops::Range<usize>>,
) -> Span {
    let span = doc.value_span(pointer);
    let Some(range) = range else { return span };
    let Some(Value::String(text)) = doc.value.pointer(pointer) else {
        return span;
    };
    let source = &doc.file.text[span.start..span.end.min(doc.file.text.len())];
    // Plain and quoted scalars without escapes hold the template verbatim; block scalars
    // and escapes move characters around, so those fall back to the whole value.
    let offset = if source == text.as_str() {
        Some(0)
    } else if source.len() >= 2
        && (source.starts_with('\'') || source.starts_with('"'))
        && &source[1..source.len() - 1] == text.as_str()
    {
        Some(1)
    } else {
        None
    };
    match offset {
        Some(o) if range.end <= text.len() => {
            let start = doc.file.clamp(span.start + o + range.start);
            Span::new(
                start,
                doc.file.clamp((span.start + o + range.end).max(start + 1)),
            )
        }
        _ => span,
    }
}

/// A diagnostic for a template problem at `pointer` (absolute in the document).
#[must_use]
pub fn template_diagnostic(
    doc: &Document,
    code: &'static str,
    base: &str,
    e: &TemplateError,
) -> Diagnostic {
    let pointer = format!("{base}{}", e.pointer);
    Diagnostic::error(
        code,
        format!("template error in {}: {}", name_of(&pointer), e.message),
    )
    .at(
        &doc.file,
        template_span(doc, &pointer, e.range.as_ref()),
        "in this template",
    )
    .pointer(pointer)
}

fn name_of(pointer: &str) -> String {
    let last = pointer.rsplit('/').next().unwrap_or("");
    if last.parse::<usize>().is_ok() {
        format!("`{pointer}`")
    } else {
        format!("`{last}`")
    }
}

/// What a template may read, given where it is.
struct Scope<'a> {
    m: &'a Manifest,
    item: bool,
    globals: &'a HashSet<String>,
}

fn templates(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    let env = template::environment();
    let globals: HashSet<String> = env.globals().map(|(n, _)| n.to_owned()).collect();
    let outside = Scope {
        m,
        item: false,
        globals: &globals,
    };
    for (name, p) in &m.providers {
        if let Some(url) = &p.url {
            let ptr = push_pointer(&push_pointer("/providers", name), "url");
            check_value(doc, &env, &Value::String(url.clone()), &ptr, &outside, out);
        }
    }
    for (name, s) in &m.sources {
        let ptr = push_pointer(&push_pointer("/sources", name), "with");
        check_value(doc, &env, &s.with, &ptr, &outside, out);
    }
    for (i, job) in m.jobs.iter().enumerate() {
        let base = format!("/jobs/{i}");
        let inside = Scope {
            m,
            item: job.for_each.is_some(),
            globals: &globals,
        };
        if let Some(ForEach::Template(t)) = &job.for_each {
            let v = Value::String(t.clone());
            check_value(doc, &env, &v, &format!("{base}/for_each"), &outside, out);
        }
        if let Some(When::Expression(expr)) = &job.when {
            let ptr = format!("{base}/when");
            match template::compile_condition(&env, expr) {
                Ok(e) => check_names(doc, &ptr, &e.undeclared_variables(true), &inside, out),
                Err(e) => out.push(template_diagnostic(doc, "template-syntax", &ptr, &e)),
            }
        }
        check_value(doc, &env, &job.with, &format!("{base}/with"), &inside, out);
    }
}

fn check_value(
    doc: &Document,
    env: &minijinja::Environment<'static>,
    v: &Value,
    base: &str,
    scope: &Scope<'_>,
    out: &mut Diagnostics,
) {
    match Compiled::new(env, v, "") {
        Ok(c) => {
            for (ptr, names) in c.variables() {
                check_names(doc, &format!("{base}{ptr}"), &names, scope, out);
            }
        }
        Err(errors) => {
            for e in &errors {
                out.push(template_diagnostic(doc, "template-syntax", base, e));
            }
        }
    }
}

fn check_names(
    doc: &Document,
    pointer: &str,
    names: &HashSet<String>,
    scope: &Scope<'_>,
    out: &mut Diagnostics,
) {
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    let m = scope.m;
    for name in names {
        let mut parts = name.splitn(3, '.');
        let root = parts.next().unwrap_or("");
        let second = parts.next();
        let problem: Option<(String, Option<String>)> = match (root, second) {
            ("vars", Some(v)) if !m.vars.contains_key(v) => Some((
                format!("`vars.{v}` is not defined"),
                did_you_mean(v, m.vars.keys().map(String::as_str))
                    .map(|s| format!("did you mean `vars.{s}`?"))
                    .or_else(|| Some(known("vars", m.vars.keys()))),
            )),
            ("inputs", Some(v)) if !m.inputs.contains_key(v) => Some((
                format!("unknown input `{v}`"),
                did_you_mean(v, m.inputs.keys().map(String::as_str))
                    .map(|s| format!("did you mean `inputs.{s}`?"))
                    .or_else(|| {
                        Some(format!(
                            "declare it under `inputs:`, e.g. `{v}: {{file: {v}.txt}}`"
                        ))
                    }),
            )),
            ("sources", Some(v)) if !m.sources.contains_key(v) => Some((
                format!("unknown source `{v}`"),
                did_you_mean(v, m.sources.keys().map(String::as_str))
                    .map(|s| format!("did you mean `sources.{s}`?"))
                    .or_else(|| Some(known("sources", m.sources.keys()))),
            )),
            ("env", Some(v)) if !m.env.iter().any(|e| e.0 == v) => Some((
                format!("`env.{v}` is not in the runbook's `env` allow-list"),
                Some(format!(
                    "templates only see the environment variables listed under `env:`; add `{v}` there if this runbook should read it"
                )),
            )),
            ("item" | "index", _) if !scope.item => Some((
                format!("`{root}` is only defined in jobs with `for_each`"),
                Some("add `for_each:` to the job, or use `vars` for a single value".to_owned()),
            )),
            ("vars" | "inputs" | "sources" | "env" | "job" | "item" | "index", _) => None,
            (other, _) if scope.globals.contains(other) => None,
            (other, _) => {
                let roots = ["vars", "inputs", "sources", "env", "job", "item", "index"];
                Some((
                    format!("undefined variable `{other}`"),
                    did_you_mean(other, roots.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some("templates can read `vars`, `inputs`, `sources`, `env`, `job`, and `item`/`index` in `for_each` jobs".to_owned())),
                ))
            }
        };
        if let Some((message, help)) = problem {
            out.push(
                Diagnostic::error("template-reference", message)
                    .at(&doc.file, name_span(doc, pointer, name), "referenced here")
                    .pointer(pointer)
                    .help_opt(help),
            );
        }
    }
}

/// The span of `name` inside the template at `pointer`, falling back to the whole string.
fn name_span(doc: &Document, pointer: &str, name: &str) -> Span {
    let Some(Value::String(text)) = doc.value.pointer(pointer) else {
        return doc.value_span(pointer);
    };
    let root = name.split('.').next().unwrap_or(name);
    let found = text
        .find(name)
        .map(|i| i..i + name.len())
        .or_else(|| text.find(root).map(|i| i..i + root.len()));
    template_span(doc, pointer, found.as_ref())
}
