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
    let mut failures = results.iter().filter(|r| r.is_failure()).peekable();
    if failures.peek().is_some() {
        out.push_str("\nFailures:\n");
    }
    // In chunks too: a CA outage can fail every one of a million actions.
    for r in failures {
        let _ = writeln!(
            out,
            "  {}: {} {}: {:?}: {}",
            r.defined_at, r.job, r.target, r.state, r.detail
        );
        if out.len() >= 64 * 1024 {
            sink(&out)?;
            out.clear();
        }
    }
    let _ = writeln!(out, "\n{}", paint("\x1b[1m", &summary.tally.sentence()));
    sink(&out)
}

#[cfg(test)]
mod tests {
    use super::print_results;
    use crate::apply::ActionResult;
    use crate::report::{Summary, Tally};
    use crate::state::State;

    /// Every one of many failures is printed, and never as one string: each chunk handed on
    /// stays near 64 KiB.
    #[test]
    fn many_failures_go_out_in_chunks() {
        let job: std::sync::Arc<str> = "retry".into();
        let at: std::sync::Arc<str> = "r.yaml:3:5".into();
        let results: Vec<ActionResult> = (0..20_000u64)
            .map(|n| ActionResult {
                id: crate::plan::ActionId(n),
                job: job.clone(),
                target: format!("\\VED\\Policy\\c{n}"),
                state: State::Failed,
                attempts: 1,
                http_status: Some(503),
                detail: "503 Service Unavailable".into(),
                defined_at: at.clone(),
                duration_ms: 1,
            })
            .collect();
        let summary = Summary {
            runbook: "r.yaml",
            name: "r",
            run: "1",
            started_at: "now",
            duration_ms: 1,
            interrupted: false,
            tally: Tally::of(&results),
            results: &results,
            throttled: &[],
        };
        for quiet in [false, true] {
            let (mut chunks, mut lines, mut largest) = (0, 0, 0);
            print_results(&results, &summary, false, quiet, &mut |chunk| {
                chunks += 1;
                largest = largest.max(chunk.len());
                lines += chunk
                    .lines()
                    .filter(|l| l.contains(": Failed: 503"))
                    .count();
                Ok(())
            })
            .expect("printed");
            assert_eq!(lines, 20_000, "quiet={quiet}");
            assert!(chunks > 10, "quiet={quiet}: {chunks} chunk(s)");
            assert!(
                largest < 64 * 1024 + 200,
                "quiet={quiet}: a chunk of {largest} bytes"
            );
        }
    }
}
