//! One file per subcommand.
pub mod apply;
pub mod completions;
pub mod man;
pub mod plan;
pub mod render;
pub mod sandbox;
pub mod schema;
pub mod status;
pub mod validate;

use std::path::Path;

use crate::exit::ExitStatus;
use crate::manifest::diagnostic::Diagnostics;
use crate::manifest::runbook::{self, Runbook};
use crate::ui::diagnostic::render as render_diagnostic;
use crate::ui::printer::Printer;

/// Prints every diagnostic on stderr.
pub(crate) fn report(problems: &Diagnostics, printer: &mut Printer) -> std::io::Result<()> {
    for d in &problems.0 {
        printer.note(&render_diagnostic(d, printer.color()))?;
    }
    Ok(())
}

/// Loads a runbook, or prints why it cannot be used (`None`: exit 3).
pub(crate) fn load_runbook(path: &Path, printer: &mut Printer) -> std::io::Result<Option<Runbook>> {
    match runbook::load(path) {
        Ok(rb) => Ok(Some(rb)),
        Err(problems) => {
            report(&problems, printer)?;
            Ok(None)
        }
    }
}

/// Checks `--target` names against the runbook's jobs; `Some(Invalid)` after saying which is
/// wrong and what was meant.
pub(crate) fn check_targets(
    rb: &Runbook,
    targets: &[String],
    printer: &mut Printer,
) -> std::io::Result<Option<ExitStatus>> {
    for t in targets {
        if !rb.manifest.jobs.iter().any(|j| &j.id == t) {
            let ids: Vec<&str> = rb.manifest.jobs.iter().map(|j| j.id.as_str()).collect();
            let hint = crate::suggest::did_you_mean(t, ids.iter().copied()).map_or_else(
                || format!("jobs: {}", ids.join(", ")),
                |s| format!("did you mean `{s}`?"),
            );
            printer.note(&format!(
                "error: `--target {t}` is not a job in {}\n\nhelp: {hint}\n",
                rb.path().display()
            ))?;
            return Ok(Some(ExitStatus::Invalid));
        }
    }
    Ok(None)
}
