//! What templates refer to: every `vars.`, `inputs.`, `sources.` and `env.` name exists, and
//! `item` is only read where `for_each` binds it. Also where a template problem is underlined.

use std::collections::HashSet;

use serde_json::Value;

use super::known;
use crate::manifest::diagnostic::{Diagnostic, Diagnostics};
use crate::manifest::load::Document;
use crate::manifest::model::{ForEach, Manifest, When};
use crate::manifest::node::push_pointer;
use crate::manifest::source::Span;
use crate::manifest::template::{self, Compiled, TemplateError};
use crate::suggest::did_you_mean;

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

pub(super) fn templates(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
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
