//! What apply writes when it ends: the reports (opened before anything is sent) and the count
//! of 429 answers per provider.

use std::path::Path;
use std::sync::Arc;

use super::Request;
use crate::report::html::Recording;
use crate::report::outputs::{Kind, Outputs};
use crate::report::{self, Summary};

/// 429 answers per provider (only those that had some); providers sharing a limiter are
/// counted once, under the first name.
pub(crate) fn throttled(limiters: &crate::plan::prepare::Limiters) -> Vec<(String, u64)> {
    let mut seen: Vec<&Arc<crate::limits::Limiter>> = Vec::new();
    let mut out = Vec::new();
    for (name, l) in limiters {
        if seen.iter().any(|s| Arc::ptr_eq(s, l)) {
            continue;
        }
        seen.push(l);
        let n = l.throttled_count();
        if n > 0 {
            out.push((name.clone(), n));
        }
    }
    out
}

/// `Rate limited (429): dc 3, tpp 1.` for people, when any provider said so.
pub(crate) fn throttled_line(counts: &[(String, u64)]) -> Option<String> {
    (!counts.is_empty()).then(|| {
        let each: Vec<String> = counts.iter().map(|(p, n)| format!("`{p}` {n}")).collect();
        format!(
            "Rate limited (429 answers, planning included): {}.\n",
            each.join(", ")
        )
    })
}

pub(super) fn open_reports(request: &Request) -> Result<Outputs, report::outputs::OpenError> {
    let reports: Vec<(Kind, &Path)> = [
        (Kind::Json, &request.report_json),
        (Kind::Junit, &request.report_junit),
        (Kind::Markdown, &request.report_markdown),
        (Kind::Html, &request.report_html),
    ]
    .into_iter()
    .filter_map(|(kind, path)| path.as_deref().map(|p| (kind, p)))
    .collect();
    Outputs::open(&reports)
}

pub(super) fn render_report(
    kind: Kind,
    summary: &Summary<'_>,
    recording: Option<&Recording>,
) -> String {
    match (kind, recording) {
        (Kind::Json, _) => report::json::render(summary),
        (Kind::Junit, _) => report::junit::render(summary),
        (Kind::Markdown, _) => report::markdown::render(summary),
        (Kind::Html, Some(recording)) => report::html::render(summary, recording),
        (Kind::Html, None) => unreachable!("a recorder runs whenever an HTML report is asked for"),
    }
}
