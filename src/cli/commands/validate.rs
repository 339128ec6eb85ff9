//! `redrive validate FILE…`: every problem in every file, for people or for machines.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::args::DiagnosticFormat;
use crate::exit::ExitStatus;
use crate::manifest::render::RenderedJob;
use crate::manifest::runbook;
use crate::ui::diagnostic::{JsonDiagnostic, render};
use crate::ui::printer::Printer;

/// `--format json`: a versioned document on stdout.
#[derive(Serialize)]
struct Report {
    format_version: u32,
    valid: bool,
    files: Vec<FileReport>,
}

#[derive(Serialize)]
struct FileReport {
    path: String,
    valid: bool,
    diagnostics: Vec<JsonDiagnostic>,
}

pub fn run(
    files: &[PathBuf],
    format: DiagnosticFormat,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let mut report = Report {
        format_version: 1,
        valid: true,
        files: Vec::new(),
    };
    for path in files {
        // Rendering is part of validation: a template may only fail for one item of many.
        let result = runbook::validate(runbook::load(path));
        let valid = result.is_ok();
        report.valid &= valid;
        match (&result, format) {
            (Ok((_, jobs)), DiagnosticFormat::Text) => {
                printer.note(&format!("{}: valid ({})\n", path.display(), summary(jobs)))?;
            }
            (Err(problems), DiagnosticFormat::Text) => {
                for d in &problems.0 {
                    printer.note(&render(d, printer.color()))?;
                }
                let n = problems.0.len();
                printer.note(&format!(
                    "{}: {n} problem{} found\n\n",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                ))?;
            }
            (_, DiagnosticFormat::Json) => {}
        }
        report.files.push(FileReport {
            path: path.display().to_string(),
            valid,
            diagnostics: result
                .err()
                .map(|p| p.0.iter().map(JsonDiagnostic::from).collect())
                .unwrap_or_default(),
        });
    }
    if format == DiagnosticFormat::Json {
        printer.data(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    }
    Ok(if report.valid {
        ExitStatus::Success
    } else {
        ExitStatus::Invalid
    })
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn summary(jobs: &[RenderedJob]) -> String {
    let actions: usize = jobs.iter().map(|j| j.actions.len()).sum();
    let deferred = jobs.iter().filter(|j| j.deferred.is_some()).count();
    let mut text = format!(
        "{}, {}",
        plural(jobs.len(), "job"),
        plural(actions, "action")
    );
    if deferred > 0 {
        text.push_str(&format!(
            ", {} rendered at plan time",
            plural(deferred, "job")
        ));
    }
    text
}
