//! The checked runbook: every stage from file to typed model, collecting all problems.

use std::path::Path;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::load::{self, Document};
use super::model::Manifest;
use super::schema_check;

/// A runbook that passed every check, with the spans of its source.
#[derive(Debug)]
pub struct Runbook {
    pub doc: Document,
    pub manifest: Manifest,
}

/// Loads and checks one runbook file.
///
/// # Errors
/// Every problem found, in source order.
pub fn load(path: &Path) -> Result<Runbook, Diagnostics> {
    let doc = load::read(path)?;
    let mut problems = schema_check::check(&doc);
    if problems.has_errors() {
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
    Ok(Runbook { doc, manifest })
}
