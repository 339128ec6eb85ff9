//! The results of an apply as people read them: plan order, failures with their job's runbook
//! line, the tally.

use crate::apply::ActionResult;
use crate::report::Summary;
use crate::state::State;

/// Results in plan order (not with `--quiet`), then failures with their job's runbook line, then the tally; written
/// in chunks so that 100,000 results are not held as one string.
pub fn print_results(
    results: &[ActionResult],
    summary: &Summary<'_>,
    color: bool,
    quiet: bool,
    sink: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let paint = |code: &str, s: &str| {
        if color {
            format!("{code}{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut out = String::new();
    if !quiet {
        out.push_str("\nResults:\n");
    }
    let mut job = "";
    // `--quiet`: the failures and the tally only.
    for r in results.iter().filter(|_| !quiet) {
        if &*r.job != job {
            job = &r.job;
            let _ = writeln!(out, "{}", paint("\x1b[1m", job));
        }
        let (mark, code) = match r.state {
            State::Succeeded => ("✓", "\x1b[32m"),
            State::Converged => ("=", "\x1b[2m"),
            State::Skipped => ("-", "\x1b[2m"),
            State::Failed => ("✗", "\x1b[31m"),
            _ => ("?", "\x1b[33m"),
        };
        let _ = writeln!(out, "  {} {}  {}", paint(code, mark), r.target, r.detail);
        if out.len() >= 64 * 1024 {
            sink(&out)?;
            out.clear();
        }
    }
    let failures: Vec<&ActionResult> = results.iter().filter(|r| r.is_failure()).collect();
    if !failures.is_empty() {
        out.push_str("\nFailures:\n");
        for r in failures {
            let _ = writeln!(
                out,
                "  {}: {} {}: {:?}: {}",
                r.defined_at, r.job, r.target, r.state, r.detail
            );
        }
    }
    let _ = writeln!(out, "\n{}", paint("\x1b[1m", &summary.tally.sentence()));
    sink(&out)
}
