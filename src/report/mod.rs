//! Reports of an apply: JSON (versioned), JUnit XML (one test case per action) and a Markdown
//! summary for `$GITHUB_STEP_SUMMARY`.

pub mod events;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod outputs;
pub mod status;

use serde::Serialize;

use crate::apply::{ActionResult, State};

/// Counts of final states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub succeeded: usize,
    pub converged: usize,
    pub skipped: usize,
    pub failed: usize,
    pub unknown: usize,
}

impl Tally {
    #[must_use]
    pub fn of(results: &[ActionResult]) -> Self {
        let mut t = Self::default();
        for r in results {
            match r.state {
                State::Succeeded => t.succeeded += 1,
                State::Converged => t.converged += 1,
                State::Failed => t.failed += 1,
                State::Unknown => t.unknown += 1,
                _ => t.skipped += 1,
            }
        }
        t
    }

    /// `Apply: 18 succeeded, 1 converged, 2 skipped, 1 failed, 0 unknown.`
    #[must_use]
    pub fn sentence(&self) -> String {
        format!(
            "Apply: {} succeeded, {} converged, {} skipped, {} failed, {} unknown.",
            self.succeeded, self.converged, self.skipped, self.failed, self.unknown
        )
    }
}

/// What every report describes.
#[derive(Debug, Clone, Serialize)]
pub struct Summary<'a> {
    pub runbook: &'a str,
    pub name: &'a str,
    pub run: &'a str,
    pub started_at: &'a str,
    pub duration_ms: u64,
    pub interrupted: bool,
    pub tally: Tally,
    pub results: &'a [ActionResult],
    /// 429 answers per provider over the whole run, reads during planning included.
    pub throttled: &'a [(String, u64)],
}

/// A generated schema as committed: pretty JSON with a final newline.
#[must_use]
pub fn schema_text(schema: serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
