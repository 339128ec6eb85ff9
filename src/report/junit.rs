//! The JUnit XML report: a test suite per job, a test case per action; failed and unknown
//! actions are failures with their reason, skipped ones are skipped.

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
    let failures = s.tally.failed + s.tally.unknown;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
        escape(s.name),
        s.results.len(),
        s.duration_ms as f64 / 1000.0
    );
    for job in jobs {
        let cases: Vec<_> = s.results.iter().filter(|r| &*r.job == job).collect();
        let failed = cases
            .iter()
            .filter(|r| matches!(r.state, State::Failed | State::Unknown))
            .count();
        let skipped = cases.iter().filter(|r| r.state == State::Skipped).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\">",
            escape(job),
            cases.len()
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
                    let _ = writeln!(
                        out,
                        ">\n      <failure type=\"{:?}\" message=\"{}\">{} (job defined at {})</failure>\n    </testcase>",
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
