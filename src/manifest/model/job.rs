//! Jobs and sources: what to do, to which targets, in which order.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::action::ActionKind;
use super::common::{Duration, RetryPolicy, Rollout, Wait};
use super::source::SourceKind;

/// One step of the runbook: an action run once, or once per item of `for_each`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub provider: String,
    pub action: ActionKind,
    #[serde(default = "empty_object")]
    pub with: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEach>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
}

pub(crate) fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// The items a job fans out over.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ForEach {
    /// A template that yields a list, e.g. `{{ inputs.failed_dns }}`.
    Template(String),
    /// A literal list.
    List(Vec<serde_json::Value>),
}

/// A condition, evaluated once per item (`item` is bound) or once for the job.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum When {
    /// An expression such as `item.exp_status == 2`.
    Expression(String),
    Literal(bool),
}

/// A read-only query run at plan time; its items are `sources.<name>` in templates.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub provider: String,
    #[serde(rename = "type")]
    pub kind: SourceKind,
    #[serde(default = "empty_object")]
    pub with: serde_json::Value,
}

/// A data file next to the runbook, exposed as `inputs.<name>`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Path relative to the runbook's folder; it may not leave that folder.
    #[schemars(length(min = 1))]
    pub file: String,
    /// How to read it; by default from the extension (`.csv`, `.json`, `.yaml`/`.yml`, else lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<InputFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// One string per non-empty line; lines starting with `#` are skipped.
    Lines,
    /// A list of objects, one per row, keyed by the header row.
    Csv,
    Json,
    Yaml,
}

impl InputFormat {
    /// The format an extension implies; extensions compare without case, so `TARGETS.CSV`
    /// (as Windows tools like to write them) still reads as CSV.
    #[must_use]
    pub fn from_path(path: &str) -> Self {
        let ext = std::path::Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("");
        let is = |want: &str| ext.eq_ignore_ascii_case(want);
        if is("csv") {
            Self::Csv
        } else if is("json") {
            Self::Json
        } else if is("yaml") || is("yml") {
            Self::Yaml
        } else {
            Self::Lines
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InputFormat;

    #[test]
    fn extensions_ignore_case() {
        assert_eq!(InputFormat::from_path("t/TARGETS.CSV"), InputFormat::Csv);
        assert_eq!(InputFormat::from_path("a.Json"), InputFormat::Json);
        assert_eq!(InputFormat::from_path("a.YML"), InputFormat::Yaml);
        assert_eq!(InputFormat::from_path("a.yaml"), InputFormat::Yaml);
        assert_eq!(InputFormat::from_path("dns.txt"), InputFormat::Lines);
        // A name that merely ends in the letters is not an extension.
        assert_eq!(InputFormat::from_path("notcsv"), InputFormat::Lines);
        assert_eq!(InputFormat::from_path(".csv/list"), InputFormat::Lines);
    }
}
