//! `redrive status --format json`: the journal's view of a runbook for machines.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

/// Bumped on any incompatible change of `status --format json`.
pub const FORMAT_VERSION: u32 = 1;

/// `redrive status --format json`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "redrive status --format json")]
pub struct StatusJson {
    pub format_version: u32,
    /// The runbook's `name`.
    pub name: String,
    pub runbook: String,
    pub journal: String,
    /// When the journal last changed (RFC 3339); absent without a journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change: Option<String>,
    /// Journal lines that could not be read and were skipped.
    pub damaged_lines: usize,
    /// Per job in runbook order: how many actions are in each state.
    pub jobs: Vec<JobStatus>,
    /// The actions not done, with why.
    pub not_done: Vec<NotDone>,
    /// The exit code: 0 when everything is done, 4 otherwise.
    pub exit_code: u8,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JobStatus {
    pub job: String,
    /// `file:line:col` of the job; empty when the runbook no longer has it.
    pub defined_at: String,
    /// Actions per journal state (`planned`, `sent`, `succeeded`, `converged`, `failed`,
    /// `unknown`, `skipped`).
    pub states: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NotDone {
    pub job: String,
    pub target: String,
    /// The journal state.
    pub state: String,
    pub defined_at: String,
    pub why: String,
}

/// The schema of `status --format json`, as committed in `schemas/status.schema.json`.
#[must_use]
pub fn schema_text() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<StatusJson>().to_value();
    crate::schema_formats::standardize(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://redrive.dev/schemas/status.schema.json".into(),
        );
    }
    super::schema_text(schema)
}
