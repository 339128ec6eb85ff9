//! The JUnit XML report: a test suite per job, a test case per action; failed actions are
//! failures and unknown outcomes errors, with their reason; skipped ones are skipped. Valid
//! against the common `junit-10.xsd` (every suite has `name`, `tests`, `failures` and
//! `errors`; times are plain decimals).

use std::fmt::Write as _;

use super::Summary;
use crate::apply::State;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry other control characters at all.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[must_use]
pub fn render(s: &Summary<'_>) -> String {
    let mut jobs: Vec<&str> = Vec::new();
    for r in s.results {
        if !jobs.contains(&&*r.job) {
            jobs.push(&r.job);
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        escape(s.name),
        s.results.len(),
        s.tally.failed,
        s.tally.unknown,
        s.duration_ms as f64 / 1000.0
    );
    // `YYYY-MM-DDTHH:MM:SS`, as the Ant schema wants it (no zone; it is UTC).
    let timestamp: String = s.started_at.chars().take(19).collect();
    for job in jobs {
        let cases: Vec<_> = s.results.iter().filter(|r| &*r.job == job).collect();
        let failed = cases.iter().filter(|r| r.state == State::Failed).count();
        let errors = cases.iter().filter(|r| r.state == State::Unknown).count();
        let skipped = cases.iter().filter(|r| r.state == State::Skipped).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" errors=\"{errors}\" timestamp=\"{}\">",
            escape(job),
            cases.len(),
            escape(&timestamp)
        );
        for r in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(job),
                escape(&r.target),
                r.duration_ms as f64 / 1000.0
            );
            match r.state {
                State::Failed | State::Unknown => {
                    let element = if r.state == State::Failed {
                        "failure"
                    } else {
                        "error"
                    };
                    let _ = writeln!(
                        out,
                        ">\n      <{element} type=\"{:?}\" message=\"{}\">{} (job defined at {})</{element}>\n    </testcase>",
                        r.state,
                        escape(&r.detail),
                        escape(&r.detail),
                        escape(&r.defined_at)
                    );
                }
                State::Skipped => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(&r.detail)
                    );
                }
                _ => out.push_str("/>\n"),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
