//! The plan as Markdown for a pull-request comment: a summary table per job, non-idempotent
//! actions called out, details folded, and never over GitHub's comment limit.

use std::fmt::Write as _;

use super::text::{facts, key_params};
use super::{Decision, Plan, PlanJob};
use crate::providers::Idempotency;

/// GitHub refuses comments longer than this many characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_535;
/// Room kept for the note that says details were left out.
const MARGIN: usize = 1_000;

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('`', "'")
        .replace('<', "&lt;")
}

fn counts(job: &PlanJob) -> (usize, usize, usize) {
    job.actions
        .iter()
        .fold((0, 0, 0), |(r, u, b), a| match a.decision {
            Decision::Run => (r + 1, u, b),
            Decision::Skip(_) => (r, u + 1, b),
            Decision::Blocked(_) => (r, u, b + 1),
        })
}

fn details(job: &PlanJob) -> String {
    let mut out = format!(
        "<details><summary><code>{}</code>: {} action(s)</summary>\n\n| | target | parameters | why / observed |\n|---|---|---|---|\n",
        escape(&job.id),
        job.actions.len()
    );
    for a in &job.actions {
        let sign = match a.decision {
            Decision::Run => "➕",
            Decision::Skip(_) => "🟰",
            Decision::Blocked(_) => "⛔",
        };
        let why = match &a.decision {
            Decision::Run => facts(a),
            Decision::Skip(w) | Decision::Blocked(w) => {
                let f = facts(a);
                if f.is_empty() {
                    w.clone()
                } else {
                    format!("{w}; {f}")
                }
            }
        };
        let _ = writeln!(
            out,
            "| {sign} | `{}` | {} | {} |",
            escape(&a.target),
            escape(&key_params(job, a)),
            escape(&why)
        );
    }
    out.push_str("\n</details>\n");
    out
}

/// Renders the plan; details that would push it over `limit` are left out with a note.
#[must_use]
pub fn render(plan: &Plan, limit: usize) -> String {
    let mut head = format!(
        "### redrive plan: `{}`\n\n**{}**{}\n\n| job | provider | action | to run | unchanged | blocked |\n|---|---|---|---:|---:|---:|\n",
        escape(&plan.name),
        plan.summary.sentence(),
        if plan.sandbox {
            " (against the sandbox)"
        } else {
            ""
        }
    );
    for job in &plan.jobs {
        let (r, u, b) = counts(job);
        let _ = writeln!(
            head,
            "| `{}` | {} ({}) | {} | {r} | {u} | {b} |",
            escape(&job.id),
            escape(&job.provider),
            job.provider_type,
            job.action
        );
    }
    let risky: Vec<&PlanJob> = plan
        .jobs
        .iter()
        .filter(|j| {
            j.actions
                .iter()
                .any(|a| a.idempotency == Idempotency::NonIdempotent && a.decision == Decision::Run)
        })
        .collect();
    if !risky.is_empty() {
        head.push_str("\n> [!WARNING]\n> Not idempotent: every send starts new work, so these are never resent blindly:\n");
        for j in risky {
            let (r, _, _) = counts(j);
            let _ = writeln!(head, "> - `{}`: {r} × {}", escape(&j.id), j.action);
        }
    }
    head.push('\n');
    let budget = limit.saturating_sub(MARGIN);
    let mut body = String::new();
    let mut left_out = 0;
    for job in &plan.jobs {
        let d = details(job);
        if head.len() + body.len() + d.len() <= budget {
            body.push_str(&d);
        } else {
            left_out += 1;
        }
    }
    let mut out = head;
    out.push_str(&body);
    if left_out > 0 {
        let _ = writeln!(
            out,
            "\n_Details of {left_out} job(s) are left out to stay within GitHub's {GITHUB_COMMENT_LIMIT}-character comment limit; the JSON plan (`redrive plan --format json`) has every action._"
        );
    }
    out
}
