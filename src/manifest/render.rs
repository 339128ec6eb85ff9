//! Expanding jobs into actions: `for_each`, `when`, templates, then the typed parameter check.

use std::collections::HashSet;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use super::check::template_diagnostic;
use super::diagnostic::{Diagnostic, Diagnostics, quote_value};
use super::load::Document;
use super::model::{ActionKind, ActionParams, ForEach, Job, Manifest, When};
use super::params::typed;
use super::template::{self, Compiled, TemplateError};

/// At most this many failing items are reported per job; the rest are counted.
const MAX_ITEM_ERRORS: usize = 5;

/// One action, ready for planning.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// Position in `for_each`, when the job has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Value>,
    pub with: ActionParams,
}

/// What [`render_each`] hands on, in order: a job's actions, then the job itself once every
/// one of them is (without its actions).
pub enum Rendered<'j> {
    Action(Action),
    Done(&'j RenderedJob),
}

/// A job after rendering: its actions, or why it can only be rendered at plan time.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedJob {
    pub id: String,
    pub provider: String,
    pub action: ActionKind,
    /// Where the job is defined, `file:line:col`.
    pub defined_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred: Option<String>,
    /// Items `when` filtered out.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_by_when: usize,
    pub actions: Vec<Action>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The values templates can read besides `item`/`index`.
pub struct Context {
    base: minijinja::Value,
    has_sources: bool,
}

impl Context {
    #[must_use]
    pub fn new(
        m: &Manifest,
        inputs: &minijinja::Value,
        sources: Option<&IndexMap<String, Value>>,
    ) -> Self {
        let env: IndexMap<&str, String> = m
            .env
            .iter()
            .filter_map(|name| std::env::var(&name.0).ok().map(|v| (name.0.as_str(), v)))
            .collect();
        let empty = IndexMap::new();
        let base = minijinja::context! {
            vars => template::value(&m.vars),
            inputs => inputs.clone(),
            env => template::value(&env),
            sources => template::value(sources.unwrap_or(&empty)),
        };
        Self {
            base,
            has_sources: sources.is_some(),
        }
    }
}

impl Context {
    /// Renders one template string (a provider's `url`) against `vars`, `inputs` and `env`.
    ///
    /// # Errors
    /// The template's error, e.g. an `env` variable that is not set.
    pub fn render_text(&self, text: &str) -> Result<String, String> {
        if !template::is_template(text) {
            return Ok(text.to_owned());
        }
        template::environment()
            .render_str(text, &self.base)
            .map_err(|e| e.to_string())
    }
}

/// Renders the selected jobs (all when `only` is empty).
///
/// # Errors
/// Every template failure and every rendered value that does not fit its action.
pub fn render(
    doc: &Document,
    m: &Manifest,
    cx: &Context,
    only: &[String],
) -> Result<Vec<RenderedJob>, Diagnostics> {
    let mut actions: Vec<Vec<Action>> = Vec::new();
    let mut jobs = render_each(doc, m, cx, only, true, &mut |j, rendered| {
        if let Rendered::Action(action) = rendered {
            if actions.len() <= j {
                actions.resize_with(j + 1, Vec::new);
            }
            actions[j].push(action);
        }
    })?;
    for (job, actions) in jobs.iter_mut().zip(actions) {
        job.actions = actions;
    }
    Ok(jobs)
}

/// Renders the selected jobs like [`render`], but hands each action to `sink` (with the
/// position of its job in the returned list) as soon as it is rendered: a plan of a million
/// actions never holds them all in rendered form. The returned jobs have no actions. With
/// `keep_items` false the actions carry no `for_each` item (only `redrive render` shows it).
///
/// # Errors
/// As [`render`]; `sink` may then have seen actions of jobs that failed.
pub fn render_each(
    doc: &Document,
    m: &Manifest,
    cx: &Context,
    only: &[String],
    keep_items: bool,
    sink: &mut dyn FnMut(usize, Rendered<'_>),
) -> Result<Vec<RenderedJob>, Diagnostics> {
    let env = template::environment();
    let mut out = Vec::new();
    let mut problems = Diagnostics::default();
    for (i, job) in m.jobs.iter().enumerate() {
        if !only.is_empty() && !only.contains(&job.id) {
            continue;
        }
        let position = out.len();
        let mut to_sink = |action: Action| sink(position, Rendered::Action(action));
        match render_job(doc, &env, i, job, cx, keep_items, &mut to_sink) {
            Ok(j) => {
                sink(position, Rendered::Done(&j));
                out.push(j);
            }
            Err(mut d) => problems.0.append(&mut d.0),
        }
    }
    if problems.has_errors() {
        Err(problems)
    } else {
        Ok(out)
    }
}

/// Whether any of these template variable sets reads `sources`.
fn reads_sources<'a>(names: impl IntoIterator<Item = &'a HashSet<String>>) -> bool {
    names
        .into_iter()
        .flatten()
        .any(|n| n.split('.').next() == Some("sources"))
}

/// `file:line:col` of the job at `base` (`/jobs/N`).
fn defined_at(doc: &Document, base: &str) -> String {
    let (line, col) = doc.file.line_col(doc.value_span(base).start);
    format!("{}:{line}:{col}", doc.file.name)
}

/// `file:line:col` of the runbook's `i`th job, known before it is rendered.
#[must_use]
pub fn job_defined_at(doc: &Document, i: usize) -> String {
    defined_at(doc, &format!("/jobs/{i}"))
}

/// A job with no actions yet, knowing where it is defined.
fn unrendered(doc: &Document, job: &Job, base: &str) -> RenderedJob {
    RenderedJob {
        id: job.id.clone(),
        provider: job.provider.clone(),
        action: job.action,
        defined_at: defined_at(doc, base),
        deferred: None,
        skipped_by_when: 0,
        actions: Vec::new(),
    }
}

fn render_job(
    doc: &Document,
    env: &minijinja::Environment<'static>,
    i: usize,
    job: &Job,
    cx: &Context,
    keep_items: bool,
    sink: &mut dyn FnMut(Action),
) -> Result<RenderedJob, Diagnostics> {
    let base = format!("/jobs/{i}");
    let mut rendered = unrendered(doc, job, &base);
    let mut problems = Diagnostics::default();
    let syntax = |ptr: &str, errors: Vec<TemplateError>| {
        Diagnostics(
            errors
                .iter()
                .map(|e| template_diagnostic(doc, "template-syntax", ptr, e))
                .collect(),
        )
    };
    let with_ptr = format!("{base}/with");
    let with = Compiled::new(env, &job.with, "").map_err(|e| syntax(&with_ptr, e))?;
    let for_each_ptr = format!("{base}/for_each");
    let for_each_source = match &job.for_each {
        Some(ForEach::Template(t)) => Some(Value::String(t.clone())),
        _ => None,
    };
    let for_each = for_each_source
        .as_ref()
        .map(|source| Compiled::new(env, source, ""))
        .transpose()
        .map_err(|e| syntax(&for_each_ptr, e))?;
    let when = match &job.when {
        Some(When::Expression(e)) => Some(template::compile_condition(env, e).map_err(|e| {
            template_diagnostic(doc, "template-syntax", &format!("{base}/when"), &e)
        })?),
        _ => None,
    };
    // Decided from what the templates read, not from the text, so a DN that merely
    // contains the word "sources" still renders now.
    let mut names: Vec<HashSet<String>> = with.variables().into_iter().map(|(_, n)| n).collect();
    names.extend(
        for_each
            .iter()
            .flat_map(|c| c.variables().into_iter().map(|(_, n)| n)),
    );
    names.extend(when.iter().map(|w| w.undeclared_variables(true)));
    if !cx.has_sources && reads_sources(&names) {
        rendered.deferred = Some(
            "reads `sources`, which are queried at plan time; pass `--source NAME=FILE` to render it now".to_owned(),
        );
        return Ok(rendered);
    }
    let items = items(doc, job, for_each.as_ref(), &for_each_ptr, cx)?;
    let literal_false = matches!(job.when, Some(When::Literal(false)));
    let job_value = template::value(&serde_json::json!({ "id": job.id, "provider": job.provider }));
    let mut failures = 0usize;
    let total = items.as_ref().map_or(1, Listed::len);
    let mut items = items;
    for n in 0..total {
        // The item as templates read it, and as JSON when the runbook wrote it literally.
        let (item, literal) = match items.as_mut().and_then(Listed::next) {
            Some((v, json)) => (Some(v), json),
            None => (None, None),
        };
        let ctx = match &item {
            Some(item) => {
                minijinja::context! { item => item.clone(), index => n, job => job_value.clone(), ..cx.base.clone() }
            }
            None => minijinja::context! { job => job_value.clone(), ..cx.base.clone() },
        };
        // As JSON only where it is shown: a diagnostic, or `redrive render`'s output.
        let shown = |item: &Option<minijinja::Value>| {
            literal.clone().or_else(|| {
                item.as_ref()
                    .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
            })
        };
        let keep = match keeps(literal_false, when.as_ref(), &ctx) {
            Ok(keep) => keep,
            Err(e) => {
                failures += 1;
                if failures <= MAX_ITEM_ERRORS {
                    problems.push(with_item(
                        when_failed(doc, &base, &e),
                        n,
                        shown(&item).as_ref(),
                    ));
                }
                continue;
            }
        };
        if !keep {
            rendered.skipped_by_when += 1;
            continue;
        }
        let result = with
            .render(&ctx)
            .map_err(|e| template_diagnostic(doc, "template-render", &with_ptr, &e))
            .and_then(|value| typed(doc, job, &with_ptr, value));
        match result {
            Ok(params) => sink(Action {
                index: item.as_ref().map(|_| n),
                item: if keep_items { shown(&item) } else { None },
                with: params,
            }),
            Err(d) => {
                failures += 1;
                if failures <= MAX_ITEM_ERRORS {
                    problems.push(with_item(d, n, shown(&item).as_ref()));
                }
            }
        }
    }
    if failures > MAX_ITEM_ERRORS {
        problems.push(more_items(doc, job, &base, failures, total));
    }
    if problems.is_empty() {
        Ok(rendered)
    } else {
        Err(problems)
    }
}

/// The items of `for_each`: a literal list as written, or a template's list taken as the
/// value it evaluates to (`{{ inputs.NAME }}` is the input's own list: each item a reference
/// count, not a copy converted to JSON and back).
enum Listed {
    Literal(std::vec::IntoIter<Value>),
    Template(usize, minijinja::value::ValueIter),
}

impl Listed {
    fn len(&self) -> usize {
        match self {
            Self::Literal(list) => list.len(),
            Self::Template(n, _) => *n,
        }
    }

    /// The next item as templates read it, and as written when it was literal.
    fn next(&mut self) -> Option<(minijinja::Value, Option<Value>)> {
        match self {
            Self::Literal(list) => list.next().map(|v| (template::value(&v), Some(v))),
            Self::Template(_, list) => list.next().map(|v| (v, None)),
        }
    }
}

fn items(
    doc: &Document,
    job: &Job,
    compiled: Option<&Compiled<'_, '_>>,
    ptr: &str,
    cx: &Context,
) -> Result<Option<Listed>, Diagnostics> {
    let template = |list: minijinja::Value| {
        let n = list.len().unwrap_or(0);
        list.try_iter().ok().map(|iter| Listed::Template(n, iter))
    };
    Ok(match (&job.for_each, compiled) {
        (None, _) | (Some(ForEach::Template(_)), None) => None,
        (Some(ForEach::List(list)), _) => Some(Listed::Literal(list.clone().into_iter())),
        (Some(ForEach::Template(_)), Some(compiled)) => {
            if let Some(listed) = compiled.evaluate_seq(&cx.base).and_then(template) {
                return Ok(Some(listed));
            }
            match compiled.render(&cx.base) {
                Ok(Value::Array(items)) => Some(Listed::Literal(items.into_iter())),
                Ok(other) => {
                    return Err(Diagnostic::error(
                        "for-each-type",
                        format!(
                            "`for_each` of job `{}` must yield a list, but it yielded {}",
                            job.id,
                            describe(&other)
                        ),
                    )
                    .at(&doc.file, doc.value_span(ptr), "not a list")
                    .pointer(ptr)
                    .help(
                        "write `for_each: \"{{ inputs.NAME }}\"` for an input file, or a YAML list",
                    )
                    .into());
                }
                Err(e) => return Err(template_diagnostic(doc, "template-render", ptr, &e).into()),
            }
        }
    })
}

/// Whether `when` keeps this item; a literal `false` keeps none without evaluating anything.
fn keeps(
    literal_false: bool,
    when: Option<&minijinja::Expression<'_, '_>>,
    ctx: &minijinja::Value,
) -> Result<bool, minijinja::Error> {
    match when {
        _ if literal_false => Ok(false),
        Some(cond) => cond.eval(ctx.clone()).map(|v| v.is_true()),
        None => Ok(true),
    }
}

/// A `when` that could not be evaluated for one item.
fn when_failed(doc: &Document, base: &str, e: &minijinja::Error) -> Diagnostic {
    let err = TemplateError {
        message: e
            .detail()
            .unwrap_or("cannot evaluate the condition")
            .to_owned(),
        range: None,
        pointer: String::new(),
    };
    template_diagnostic(doc, "template-render", &format!("{base}/when"), &err)
}

/// The count of failing items past the ones reported one by one.
fn more_items(doc: &Document, job: &Job, base: &str, failures: usize, total: usize) -> Diagnostic {
    Diagnostic::error(
        "more-items",
        format!(
            "job `{}`: {} more item(s) failed ({failures} of {total})",
            job.id,
            failures - MAX_ITEM_ERRORS
        ),
    )
    .at(
        &doc.file,
        doc.key_span(&format!("{base}/for_each")),
        "items from here",
    )
}

fn with_item(d: Diagnostic, n: usize, item: Option<&Value>) -> Diagnostic {
    match item {
        Some(v) => d.note(format!(
            "while rendering item {n} of `for_each`: {}",
            short(v)
        )),
        None => d,
    }
}

fn short(v: &Value) -> String {
    quote_value(v, 80)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
        other => format!(
            "{} ({})",
            short(other),
            if other.is_string() {
                "a string"
            } else {
                "a scalar"
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::runbook;

    const RUNBOOK: &str = "version: 1\nname: t\nproviders:\n  tpp: {type: venafi_tpp, url: 'https://tpp.example.com', auth: {access_token: {env: T}}}\n  waf: {type: otc_waf, url: 'https://waf.example.com', auth: {project_id: p, token: {env: W}}}\nsources:\n  expiring: {provider: waf, type: certificates}\njobs:\n";

    fn render(jobs: &str) -> Vec<super::RenderedJob> {
        let rb =
            runbook::load_text(Path::new("t.yaml"), format!("{RUNBOOK}{jobs}")).expect("valid");
        rb.render(None, &[]).expect("renders")
    }

    #[test]
    fn the_word_sources_in_a_value_does_not_defer_a_job() {
        let jobs = render(
            "  - {id: a, provider: tpp, action: retry_certificate, with: {certificate_dn: '\\VED\\Policy\\sources\\x'}}\n",
        );
        assert!(jobs[0].deferred.is_none());
        assert_eq!(jobs[0].actions.len(), 1);
    }

    #[test]
    fn reading_a_source_defers_a_job() {
        let jobs = render(
            "  - {id: a, provider: tpp, action: retry_certificate, for_each: '{{ sources.expiring }}', with: {certificate_dn: '\\VED\\{{ item.name }}'}}\n  - {id: b, provider: tpp, action: retry_certificate, for_each: [x], when: 'sources.expiring | length > 0', with: {certificate_dn: '\\VED\\{{ item }}'}}\n",
        );
        assert!(jobs.iter().all(|j| j.deferred.is_some()), "{jobs:?}");
    }
}
