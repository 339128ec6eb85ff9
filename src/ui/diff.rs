//! The plan as a terminal diff: `+` run, `=` unchanged, `!` blocked, grouped by job, ending with
//! the summary sentence.

use std::fmt::Write as _;

use crate::plan::describe::facts;
use crate::plan::{Decision, Plan, PlanAction, PlanJob};
use crate::providers::{Idempotency, RequestPreview};

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// The sign and color of a decision.
#[must_use]
pub fn sign(decision: &Decision) -> (&'static str, &'static str) {
    match decision {
        Decision::Run => ("+", GREEN),
        Decision::Skip(_) => ("=", DIM),
        Decision::Blocked(_) => ("!", RED),
    }
}

/// The whole diff as one string.
#[must_use]
pub fn render(plan: &Plan, color: bool) -> String {
    let mut all = String::new();
    let _ = render_to(plan, color, &mut |chunk| {
        all.push_str(chunk);
        Ok(())
    });
    all
}

/// `text` in `code`'s colour when there is colour.
fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("{code}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

/// One action's line: its sign, target, key parameters (from `request`, the request it would
/// send), reason and facts.
pub fn action_line(
    out: &mut String,
    job: &PlanJob,
    action: &PlanAction,
    request: &RequestPreview,
    color: bool,
) {
    let paint = |code: &str, text: &str| paint(color, code, text);
    let (mark, code) = match (&action.decision, &action.previous) {
        (Decision::Run, Some(_)) => ("~", YELLOW),
        (d, _) => sign(d),
    };
    let _ = write!(out, "  {} {}", paint(code, mark), action.target);
    let params = crate::providers::registry::summary(&job.provider_type, request);
    if !params.is_empty() {
        let _ = write!(out, "  {params}");
    }
    match &action.decision {
        Decision::Run => {}
        Decision::Skip(why) | Decision::Blocked(why) => {
            let _ = write!(out, "  {}", paint(code, &format!("— {why}")));
        }
    }
    if let (Decision::Run, Some(previous)) = (&action.decision, &action.previous) {
        let _ = write!(out, "  {}", paint(YELLOW, &format!("— re-run: {previous}")));
    }
    let facts = facts(action);
    if !facts.is_empty() {
        let _ = write!(out, "  {}", paint(DIM, &format!("[{facts}]")));
    }
    out.push('\n');
}

/// About this much text is handed to the sink at a time.
pub const CHUNK: usize = 64 * 1024;

/// Each job's action lines for [`render_with`]: the plan's own actions, or lines written
/// ahead of the summary (`plan` spools them at a million actions).
pub trait JobLines {
    /// Whether job `j` has any actions, and whether any of them is not idempotent.
    fn shape(&self, j: usize) -> (bool, bool);
    /// Appends job `j`'s lines to `out`, handing `out` to `sink` (and clearing it) whenever it
    /// passes [`CHUNK`].
    ///
    /// # Errors
    /// The sink's, and reading lines written ahead.
    fn write(
        &mut self,
        j: usize,
        out: &mut String,
        sink: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> std::io::Result<()>;
}

/// The lines of a plan's own actions.
struct Held<'p> {
    plan: &'p Plan,
    color: bool,
}

impl JobLines for Held<'_> {
    fn shape(&self, j: usize) -> (bool, bool) {
        let actions = &self.plan.jobs[j].actions;
        let non_idempotent = actions
            .iter()
            .any(|a| a.idempotency == Idempotency::NonIdempotent);
        (!actions.is_empty(), non_idempotent)
    }

    fn write(
        &mut self,
        j: usize,
        out: &mut String,
        sink: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let job = &self.plan.jobs[j];
        for action in &job.actions {
            action_line(
                out,
                job,
                action,
                &self.plan.request(job, action),
                self.color,
            );
            if out.len() >= CHUNK {
                sink(out)?;
                out.clear();
            }
        }
        Ok(())
    }
}

/// Writes the diff to `sink` in chunks of about 64 KiB: a plan of 100,000 actions is printed
/// without being held as one string.
///
/// # Errors
/// The sink's.
pub fn render_to(
    plan: &Plan,
    color: bool,
    sink: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<()> {
    render_with(plan, color, sink, &mut Held { plan, color })
}

/// The diff of [`render_to`] with each job's action lines from `lines`.
///
/// # Errors
/// The sink's, and `lines`'.
pub fn render_with(
    plan: &Plan,
    color: bool,
    sink: &mut dyn FnMut(&str) -> std::io::Result<()>,
    lines: &mut dyn JobLines,
) -> std::io::Result<()> {
    let paint = |code: &str, text: &str| paint(color, code, text);
    let mut out = String::new();
    let against = if plan.sandbox {
        "against the sandbox"
    } else {
        "against the runbook's endpoints"
    };
    let _ = writeln!(
        out,
        "{} {} ({}) {against}{}",
        paint(BOLD, "Plan for"),
        plan.name,
        plan.runbook.path,
        if plan.refreshed {
            ""
        } else {
            ", without reading the providers' state"
        }
    );
    if !plan.vars.is_empty() {
        let shown: Vec<String> = plan.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "vars set on the command line: {}", shown.join(", "));
    }
    if !plan.pulled_in.is_empty() {
        let _ = writeln!(
            out,
            "--target {} also plans {}: needed by the targets",
            plan.targets.join(", "),
            plan.pulled_in
                .iter()
                .map(|j| format!("`{j}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (j, job) in plan.jobs.iter().enumerate() {
        let (any, non_idempotent) = lines.shape(j);
        let _ = write!(
            out,
            "\n{} · {} ({}) {} · {}",
            paint(BOLD, &job.id),
            job.provider,
            job.provider_type,
            job.action,
            job.defined_at
        );
        if non_idempotent {
            let _ = write!(
                out,
                " {}",
                paint(YELLOW, "[not idempotent: each send starts new work]")
            );
        }
        out.push('\n');
        if !job.needs.is_empty() {
            let _ = writeln!(
                out,
                "  {}",
                paint(DIM, &format!("after: {}", job.needs.join(", ")))
            );
        }
        if !any {
            let _ = writeln!(out, "  {}", paint(DIM, "(no actions)"));
        }
        lines.write(j, &mut out, sink)?;
        if job.filtered_by_when > 0 {
            let _ = writeln!(
                out,
                "  {}",
                paint(
                    DIM,
                    &format!("({} item(s) filtered out by `when`)", job.filtered_by_when)
                )
            );
        }
    }
    let _ = writeln!(out, "\n{}", paint(BOLD, &plan.summary.sentence()));
    sink(&out)
}
