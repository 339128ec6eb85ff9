//! The Markdown summary, for `$GITHUB_STEP_SUMMARY`: the tally, a table per job, failures with
//! the runbook line of their job.

use std::fmt::Write as _;

use super::Summary;
use crate::apply::State;
use crate::plan::markdown::{code, code_span, text};

#[must_use]
pub fn render(s: &Summary<'_>) -> String {
    let mut out = format!(
        "### redrive apply: {}\n\n**{}**{}\n\n| job | succeeded | converged | skipped | failed | unknown |\n|---|---:|---:|---:|---:|---:|\n",
        code_span(s.name, false),
        s.tally.sentence(),
        if s.interrupted { " (interrupted)" } else { "" }
    );
    let mut jobs: Vec<&str> = Vec::new();
    for r in s.results {
        if !jobs.contains(&&*r.job) {
            jobs.push(&r.job);
        }
    }
    for job in &jobs {
        let t = super::Tally::of(
            &s.results
                .iter()
                .filter(|r| &*r.job == *job)
                .cloned()
                .collect::<Vec<_>>(),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            code(job),
            t.succeeded,
            t.converged,
            t.skipped,
            t.failed,
            t.unknown
        );
    }
    let failures: Vec<_> = s
        .results
        .iter()
        .filter(|r| matches!(r.state, State::Failed | State::Unknown))
        .collect();
    if !failures.is_empty() {
        out.push_str("\n#### Failures\n\n| job | target | state | reason | defined at |\n|---|---|---|---|---|\n");
        for r in failures {
            let _ = writeln!(
                out,
                "| {} | {} | {:?} | {} | {} |",
                code(&r.job),
                code(&r.target),
                r.state,
                text(&r.detail),
                code(&r.defined_at)
            );
        }
    }
    out
}
