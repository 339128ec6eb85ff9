//! `redrive status FILE`: the journal's view of a runbook — per job, how far each action got
//! (planned, sent, answered) and the unfinished ones with their reasons and the runbook line of
//! their job. Exits 4 while anything is unfinished.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::cli::args::DiagnosticFormat;
use crate::exit::ExitStatus;
use crate::report::status::{FORMAT_VERSION, JobStatus, NotDone, StatusJson};
use crate::state::{Past, State};
use crate::ui::printer::Printer;

fn label(state: State) -> &'static str {
    match state {
        State::Planned => "planned, not sent",
        State::Sent => "sent, no answer",
        State::Succeeded => "succeeded",
        State::Converged => "converged",
        State::Failed => "failed",
        State::Unknown => "unknown",
        State::Skipped => "skipped",
    }
}

fn unfinished(state: State) -> bool {
    matches!(
        state,
        State::Planned | State::Sent | State::Failed | State::Unknown
    )
}

fn state_name(state: State) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Where a job is defined, `file:line:col` (empty for a job the runbook no longer has).
fn location(rb: &crate::manifest::runbook::Runbook, job: &str) -> String {
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
}

/// How many of a job's actions ended in each state (`None` for a job with no history).
fn job_status(
    job: &str,
    pasts: &[&Past],
    rb: &crate::manifest::runbook::Runbook,
) -> Option<JobStatus> {
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for p in pasts.iter().filter(|p| p.last.job == job) {
        *states.entry(state_name(p.last.state)).or_default() += 1;
    }
    (!states.is_empty()).then(|| JobStatus {
        job: job.to_owned(),
        defined_at: location(rb, job),
        states,
    })
}

/// The state a journal name stands for.
fn state_of(name: &str) -> State {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).unwrap_or(State::Unknown)
}

/// Every action's past by job and target, and the jobs in runbook order, then any the runbook no
/// longer has.
fn ordered<'a>(
    history: &'a crate::state::History,
    rb: &'a crate::manifest::runbook::Runbook,
) -> (Vec<&'a Past>, Vec<&'a str>) {
    let mut pasts: Vec<&Past> = history.actions.values().collect();
    pasts.sort_by(|a, b| {
        a.last
            .job
            .cmp(&b.last.job)
            .then(a.last.target.cmp(&b.last.target))
    });
    let mut order: Vec<&str> = rb.manifest.jobs.iter().map(|j| j.id.as_str()).collect();
    for p in &pasts {
        if !order.contains(&p.last.job.as_str()) {
            order.push(&p.last.job);
        }
    }
    (pasts, order)
}

/// An unfinished action, as both formats show it.
fn not_done(p: &Past, rb: &crate::manifest::runbook::Runbook) -> NotDone {
    let r = &p.last;
    NotDone {
        job: r.job.clone(),
        target: r.target.clone(),
        state: state_name(r.state),
        defined_at: location(rb, &r.job),
        why: reason(p),
    }
}

/// Why an unfinished action is not done.
fn reason(p: &Past) -> String {
    let r = &p.last;
    match r.state {
        State::Planned => "planned, never sent (the apply stopped first)".to_owned(),
        State::Sent => format!(
            "sent at {}, no answer recorded (the apply stopped first)",
            p.sent_at.as_deref().unwrap_or(&r.at)
        ),
        _ => r.detail.clone(),
    }
}

pub fn run(
    file: &Path,
    wanted: &super::state::Where<'_>,
    sandbox: bool,
    format: DiagnosticFormat,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Some(rb) = super::load_runbook(file, printer)? else {
        return Ok(ExitStatus::Invalid);
    };
    let store = super::state::choose(&rb, *wanted, sandbox, printer)?;
    let history = store.store().history()?;
    let path = store.journal();
    let json = format == DiagnosticFormat::Json;
    let mut doc = StatusJson {
        format_version: FORMAT_VERSION,
        name: rb.manifest.name.clone(),
        runbook: rb.path().display().to_string(),
        journal: path.clone(),
        last_change: None,
        damaged_lines: history.damaged.len(),
        jobs: Vec::new(),
        not_done: Vec::new(),
        exit_code: 0,
    };
    if history.actions.is_empty() && history.damaged.is_empty() {
        if json {
            printer.data(&to_line(&doc))?;
            return Ok(ExitStatus::Success);
        }
        printer.note(&format!(
            "No journal yet for `{}` ({}): nothing was applied.\n",
            rb.manifest.name, path
        ))?;
        return Ok(ExitStatus::Success);
    }
    let (pasts, order) = ordered(&history, &rb);
    let last_at = pasts.iter().map(|p| p.last.at.as_str()).max().unwrap_or("");
    let mut out = format!(
        "Journal of `{}` ({}): {} action(s), last change {last_at}\n",
        rb.manifest.name,
        path,
        pasts.len(),
    );
    if !history.damaged.is_empty() {
        let _ = writeln!(
            out,
            "{} damaged line(s) skipped (first: line {})",
            history.damaged.len(),
            history.damaged[0]
        );
    }
    out.push('\n');
    for job in &order {
        if let Some(status) = job_status(job, &pasts, &rb) {
            let shown: Vec<String> = status
                .states
                .iter()
                .map(|(s, n)| format!("{n} {}", label(state_of(s))))
                .collect();
            let _ = writeln!(out, "  {job:<24} {}", shown.join(", "));
            doc.jobs.push(status);
        }
    }
    let open: Vec<&&Past> = pasts.iter().filter(|p| unfinished(p.last.state)).collect();
    if !open.is_empty() {
        out.push_str("\nNot done:\n");
        for p in &open {
            let item = not_done(p, &rb);
            let _ = writeln!(
                out,
                "  {}: {} {}: {}: {}",
                item.defined_at,
                item.job,
                item.target,
                label(p.last.state),
                item.why
            );
            doc.not_done.push(item);
        }
        out.push_str(
            "\nApply again to run what was not sent or failed, and to reconcile what is unknown.\n",
        );
    }
    let status = if open.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::ActionsFailed
    };
    if json {
        doc.last_change = Some(last_at.to_owned());
        doc.exit_code = status.code();
        printer.data(&to_line(&doc))?;
    } else {
        printer.data(&out)?;
    }
    Ok(status)
}

fn to_line(doc: &StatusJson) -> String {
    let mut text = serde_json::to_string_pretty(doc).expect("status serializes");
    text.push('\n');
    text
}
