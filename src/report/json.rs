//! The JSON report: versioned, one entry per action in plan order.

use serde_json::json;

use super::Summary;

pub const FORMAT_VERSION: u32 = 1;

#[must_use]
pub fn render(s: &Summary<'_>) -> String {
    let mut text = serde_json::to_string_pretty(&json!({
        "format_version": FORMAT_VERSION,
        "tool": format!("redrive {}", env!("CARGO_PKG_VERSION")),
        "runbook": s.runbook,
        "name": s.name,
        "run": s.run,
        "started_at": s.started_at,
        "duration_ms": s.duration_ms,
        "interrupted": s.interrupted,
        "summary": s.tally,
        "throttled": s.throttled.iter().map(|(p, n)| (p.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "actions": s.results,
    }))
    .expect("reports serialize");
    text.push('\n');
    text
}
