//! The checked runbook: every stage from file to typed model, collecting all problems.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::load::{self, Document};
use super::model::Manifest;
use super::render::{self, Context, RenderedJob};
use super::{check, inputs, schema_check, secrets};

/// A runbook that passed every check, with the spans of its source.
#[derive(Debug)]
pub struct Runbook {
    pub doc: Document,
    pub manifest: Manifest,
    /// The loaded input files, by name, as templates read them: converted once (a million
    /// lines are not converted again for every context), and not also kept as JSON values.
    pub inputs: minijinja::Value,
}

impl Runbook {
    /// Expands the jobs (all when `only` is empty); jobs reading `sources` are deferred
    /// unless `sources` is given.
    ///
    /// # Errors
    /// Every template and typed-parameter problem found.
    pub fn render(
        &self,
        sources: Option<&IndexMap<String, Value>>,
        only: &[String],
    ) -> Result<Vec<RenderedJob>, Diagnostics> {
        let cx = Context::new(&self.manifest, &self.inputs, sources);
        render::render(&self.doc, &self.manifest, &cx, only).map_err(|mut d| {
            d.sort();
            d
        })
    }

    /// Renders like [`Runbook::render`], handing each action to `sink` as it is rendered (see
    /// [`render::render_each`]); the actions carry no `for_each` item.
    ///
    /// # Errors
    /// As [`Runbook::render`].
    pub fn render_each(
        &self,
        sources: Option<&IndexMap<String, Value>>,
        only: &[String],
        sink: &mut dyn FnMut(usize, render::Rendered<'_>),
    ) -> Result<Vec<RenderedJob>, Diagnostics> {
        let cx = Context::new(&self.manifest, &self.inputs, sources);
        render::render_each(&self.doc, &self.manifest, &cx, only, false, sink).map_err(|mut d| {
            d.sort();
            d
        })
    }
}

impl Runbook {
    /// The template context without sources, for provider URLs.
    #[must_use]
    pub fn context(&self) -> Context {
        Context::new(&self.manifest, &self.inputs, None)
    }

    /// The runbook's folder: relative paths (inputs, secrets, CSRs, CA files) start here.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.doc.file.dir()
    }

    /// The runbook's path as given.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.doc.file.path
    }
}

/// Loads and checks one runbook file: everything but rendering, which needs the sources.
///
/// # Errors
/// Every problem found, in source order.
pub fn load(path: &Path) -> Result<Runbook, Diagnostics> {
    from_document(load::read(path)?)
}

/// Like [`load`], for text already in memory; `path` names it and anchors relative paths.
///
/// # Errors
/// Every problem found, in source order.
pub fn load_text(path: &Path, text: String) -> Result<Runbook, Diagnostics> {
    from_document(load::parse(super::source::SourceFile::new(path, text))?)
}

/// Everything `validate` checks: loading, then rendering every job that can be rendered now.
///
/// # Errors
/// Every problem found, in source order.
pub fn validate(
    rb: Result<Runbook, Diagnostics>,
) -> Result<(Runbook, Vec<RenderedJob>), Diagnostics> {
    let rb = rb?;
    let mut urls = rendered_urls(&rb);
    let jobs = match rb.render(None, &[]) {
        Ok(jobs) if urls.is_empty() => jobs,
        Ok(_) => return Err(urls),
        Err(mut d) => {
            d.0.append(&mut urls.0);
            d.sort();
            return Err(d);
        }
    };
    Ok((rb, jobs))
}

/// Templated provider URLs, rendered now and held to the rule plan applies. One that cannot
/// be rendered yet (an `env` variable set only where plan runs) is left to plan.
fn rendered_urls(rb: &Runbook) -> Diagnostics {
    let cx = rb.context();
    let mut out = Diagnostics::default();
    for (name, p) in &rb.manifest.providers {
        let Some(url) = p.url.as_deref().filter(|u| super::template::is_template(u)) else {
            continue;
        };
        if let Ok(text) = cx.render_text(url) {
            let ptr =
                super::node::push_pointer(&super::node::push_pointer("/providers", name), "url");
            out.0.extend(check::url_problem(&rb.doc, &ptr, &text, p));
        }
    }
    out
}

fn from_document(doc: Document) -> Result<Runbook, Diagnostics> {
    let mut problems = schema_check::check(&doc);
    // Literal credentials are refused whether or not the rest of the runbook is well formed.
    let known: Vec<_> = problems
        .0
        .iter()
        .filter(|d| d.code == "inline-secret")
        .filter_map(|d| d.primary.as_ref().map(|l| l.span))
        .collect();
    problems.0.extend(secrets::find(&doc, &known));
    if problems.has_errors() {
        problems.0.append(&mut check::raw_references(&doc).0);
        problems.sort();
        return Err(problems);
    }
    let manifest: Manifest =
        match serde_json::from_value(doc.value.clone()) {
            Ok(m) => m,
            Err(e) => {
                // The schema and the types agree, so this is a bug; still say where.
                problems.push(
                    Diagnostic::error("model", format!("the runbook does not fit the model: {e}"))
                        .at(&doc.file, doc.value_span(""), "here"),
                );
                return Err(problems);
            }
        };
    let mut problems = check::check(&doc, &manifest);
    let (inputs, mut input_problems) = inputs::load_all(&doc, &manifest.inputs);
    problems.0.append(&mut input_problems.0);
    if problems.has_errors() {
        problems.sort();
        return Err(problems);
    }
    Ok(Runbook {
        doc,
        manifest,
        inputs: super::input_values::inputs_value(inputs),
    })
}
