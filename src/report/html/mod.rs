//! The HTML report: one self-contained file (inline CSS, script and SVG; a Content Security
//! Policy that allows no network access) with the summary, results by job and by reason, and
//! charts over time drawn by its script from the recorded events: actions in flight,
//! throughput, latency percentiles, retries and 429s per provider, and the waves.

mod recorder;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use recorder::{Recorder, Recording};

use super::{Summary, Tally};
use crate::apply::State;

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside `<script>`: no `</script>`, no HTML comment, no line separators.
fn script_json(value: &serde_json::Value) -> String {
    serde_json::to_string(value)
        .expect("report data serializes")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Succeeded => "succeeded",
        State::Converged => "converged",
        State::Failed => "failed",
        State::Unknown => "unknown",
        _ => "skipped",
    }
}

/// A reason without what differs between targets: the target itself, numbers, ids.
fn reason(target: &str, detail: &str) -> String {
    let detail = if target.len() < 4 {
        detail.to_owned()
    } else {
        detail.replace(target, "…")
    };
    let mut out = String::new();
    let mut in_number = false;
    for word in detail.split_inclusive(' ') {
        // Hex ids (task UUIDs) are one target's, not a reason.
        let bare = word.trim_end();
        if bare.len() >= 8 && bare.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            out.push('…');
            out.push_str(&word[bare.len()..]);
            continue;
        }
        for c in word.chars() {
            if c.is_ascii_digit() {
                if !in_number {
                    out.push('N');
                }
                in_number = true;
            } else {
                in_number = false;
                out.push(c);
            }
        }
    }
    let mut out: String = out.chars().take(160).collect();
    if out.is_empty() {
        out.push('—');
    }
    out
}

fn tally_cells(t: &Tally) -> String {
    format!(
        "<td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class='n{}'>{}</td><td class='n{}'>{}</td>",
        t.succeeded,
        t.converged,
        t.skipped,
        if t.failed > 0 { " bad" } else { "" },
        t.failed,
        if t.unknown > 0 { " bad" } else { "" },
        t.unknown
    )
}

/// The rows of the "results by job" table.
fn job_rows(s: &Summary<'_>, recording: &Recording) -> String {
    let mut jobs: Vec<&str> = Vec::new();
    for r in s.results {
        if !jobs.contains(&&*r.job) {
            jobs.push(&r.job);
        }
    }
    let mut by_job = String::new();
    for job in &jobs {
        let results: Vec<_> = s
            .results
            .iter()
            .filter(|r| &*r.job == *job)
            .cloned()
            .collect();
        let provider = recording.provider_of(job).unwrap_or_default();
        let _ = writeln!(
            by_job,
            "<tr><td><code>{}</code></td><td>{}</td><td class=n>{}</td>{}</tr>",
            escape(job),
            escape(provider),
            results.len(),
            tally_cells(&Tally::of(&results))
        );
    }
    by_job
}

/// The rows of the "results by reason" table: every state but success, grouped.
fn reason_rows(s: &Summary<'_>) -> String {
    let mut reasons: BTreeMap<(u8, &'static str, String), (usize, Vec<&str>)> = BTreeMap::new();
    for r in s.results.iter().filter(|r| r.state != State::Succeeded) {
        let rank = match r.state {
            State::Failed => 0,
            State::Unknown => 1,
            State::Skipped => 3,
            _ => 2,
        };
        let entry = reasons
            .entry((rank, state_name(r.state), reason(&r.target, &r.detail)))
            .or_default();
        entry.0 += 1;
        if !entry.1.contains(&&*r.job) {
            entry.1.push(&r.job);
        }
    }
    let mut by_reason = String::new();
    for ((_, state, why), (count, jobs)) in &reasons {
        let _ = writeln!(
            by_reason,
            "<tr><td><span class='tag {state}'>{state}</span></td><td class=n>{count}</td><td>{}</td><td>{}</td></tr>",
            escape(why),
            jobs.iter()
                .map(|j| format!("<code>{}</code>", escape(j)))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if by_reason.is_empty() {
        by_reason.push_str("<tr><td colspan=4>Every action succeeded.</td></tr>\n");
    }
    by_reason
}

/// The whole report.
#[must_use]
pub fn render(s: &Summary<'_>, recording: &Recording) -> String {
    let by_job = job_rows(s, recording);
    let by_reason = reason_rows(s);
    let t = &s.tally;
    let cards = [
        ("succeeded", t.succeeded),
        ("converged", t.converged),
        ("skipped", t.skipped),
        ("failed", t.failed),
        ("unknown", t.unknown),
    ]
    .iter()
    .map(|(name, n)| format!("<div class='card {name}'><b>{n}</b><span>{name}</span></div>"))
    .collect::<String>();
    let data = recording.data(s);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>redrive apply: {name}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>redrive apply: <code>{name}</code></h1>
<p class=meta>{runbook} · run {run} · started {started} · {duration:.1} s{interrupted}</p>
<p class=sentence>{sentence}</p>
<div class=cards>{cards}</div>
</header>
<main>
<section><h2>Over time</h2><div id=charts><p class=nojs>The charts are drawn by the report's script.</p></div></section>
<section><h2>Results by job</h2>
<table><thead><tr><th>job</th><th>provider</th><th>actions</th><th>succeeded</th><th>converged</th><th>skipped</th><th>failed</th><th>unknown</th></tr></thead>
<tbody>
{by_job}</tbody></table></section>
<section><h2>Results by reason</h2>
<table><thead><tr><th>state</th><th>actions</th><th>reason</th><th>jobs</th></tr></thead>
<tbody>
{by_reason}</tbody></table></section>
</main>
<footer>{tool}</footer>
<script type="application/json" id="data">{data}</script>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        name = escape(s.name),
        runbook = escape(s.runbook),
        run = escape(s.run),
        started = escape(s.started_at),
        duration = s.duration_ms as f64 / 1000.0,
        interrupted = if s.interrupted { " · interrupted" } else { "" },
        sentence = escape(&t.sentence()),
        tool = escape(&format!("redrive {}", env!("CARGO_PKG_VERSION"))),
        data = script_json(&data),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_group_what_differs_between_targets() {
        assert_eq!(
            reason(
                "a.example.com",
                "HTTP 503 after 4 attempts for a.example.com"
            ),
            "HTTP N after N attempts for …"
        );
        assert_eq!(
            reason("t", "task 5a1f4a2e-7c3b-4f0e-9d6a-2b8e41c7f903 Successful"),
            "task … Successful"
        );
    }

    #[test]
    fn data_cannot_end_the_script() {
        let v = serde_json::json!({"x": "</script><!-- \u{2028}"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('\u{2028}'), "{s}");
    }
}
