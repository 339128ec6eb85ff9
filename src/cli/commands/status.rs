//! `redrive status FILE`: the journal's view of a runbook — per job, how many actions are in
//! each state, and the failures with their reasons and the runbook line of their job.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::apply::journal::{self, Record, State};
use crate::exit::ExitStatus;
use crate::ui::printer::Printer;

pub fn run(
    file: &Path,
    state_dir: Option<&Path>,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Some(rb) = super::load_runbook(file, printer)? else {
        return Ok(ExitStatus::Invalid);
    };
    let dir: PathBuf = state_dir.map_or_else(|| rb.dir().join(".redrive"), Path::to_owned);
    let path = journal::path_for(&dir, &rb.manifest.name);
    let records = journal::replay(&path)?;
    if records.is_empty() {
        printer.note(&format!(
            "No journal yet for `{}` ({}): nothing was applied.\n",
            rb.manifest.name,
            path.display()
        ))?;
        return Ok(ExitStatus::Success);
    }
    let last = journal::last_states(&records);
    let defined_at = |job: &str| -> String {
        rb.manifest
            .jobs
            .iter()
            .position(|j| j.id == job)
            .map(|i| {
                let (line, col) = rb
                    .doc
                    .file
                    .line_col(rb.doc.value_span(&format!("/jobs/{i}")).start);
                format!("{}:{line}:{col}", rb.doc.file.name)
            })
            .unwrap_or_default()
    };
    // Jobs in runbook order, then any the runbook no longer has.
    let mut order: Vec<String> = rb.manifest.jobs.iter().map(|j| j.id.clone()).collect();
    for r in last.values() {
        if !order.contains(&r.job) {
            order.push(r.job.clone());
        }
    }
    let mut out = format!(
        "Journal of `{}` ({}): {} action(s), last run {}\n\n",
        rb.manifest.name,
        path.display(),
        last.len(),
        records.last().map_or("", |r| r.at.as_str())
    );
    let mut failures: Vec<&Record> = Vec::new();
    for job in &order {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in last.values().filter(|r| &r.job == job) {
            // A journal that ends at "sent" lost its answer: unknown until reconciled.
            let state = match r.state {
                State::Sent | State::Planned => "unknown",
                State::Succeeded => "succeeded",
                State::Converged => "converged",
                State::Failed => "failed",
                State::Unknown => "unknown",
                State::Skipped => "skipped",
            };
            *counts.entry(state).or_default() += 1;
            if matches!(
                r.state,
                State::Failed | State::Unknown | State::Sent | State::Planned
            ) {
                failures.push(r);
            }
        }
        if counts.is_empty() {
            continue;
        }
        let shown: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let _ = writeln!(out, "  {job:<24} {}", shown.join(", "));
    }
    if !failures.is_empty() {
        out.push_str("\nNot done:\n");
        failures.sort_by(|a, b| a.job.cmp(&b.job).then(a.target.cmp(&b.target)));
        for r in &failures {
            let why = if matches!(r.state, State::Sent | State::Planned) {
                "sent, no answer recorded (interrupted)".to_owned()
            } else {
                r.detail.clone()
            };
            let _ = writeln!(
                out,
                "  {}: {} {}: {why}",
                defined_at(&r.job),
                r.job,
                r.target
            );
        }
        out.push_str("\nApply again to re-run what failed and reconcile what is unknown.\n");
    }
    printer.data(&out)?;
    Ok(if failures.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::ActionsFailed
    })
}
