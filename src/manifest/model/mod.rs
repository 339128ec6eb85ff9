//! The runbook as Rust types: the one source of truth for loading and for the JSON Schema.

mod action;
pub mod common;
mod job;
mod provider;
mod schema_impls;
mod secret;
mod source;
mod state;
mod work;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use action::*;
pub use common::*;
pub use job::*;
pub use provider::*;
pub use schema_impls::TemplateString;
pub use secret::*;
pub use source::*;
pub use state::StateSpec;
pub use work::{ParamsError, Work};

/// A runbook: providers, optional inputs and sources, and the jobs to run against them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "redrive runbook")]
pub struct Manifest {
    /// Runbook format version; `1`.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// A short name, used in reports and the state directory.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Constants for templates, as `vars.<name>`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }))]
    pub vars: IndexMap<String, serde_json::Value>,
    /// Data files next to the runbook, as `inputs.<name>`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }))]
    pub inputs: IndexMap<String, InputSpec>,
    /// Environment variables templates may read as `env.<NAME>`; no others are visible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvName>,
    /// The APIs this runbook talks to, by name.
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$" }))]
    pub providers: IndexMap<String, Provider>,
    /// Read-only queries run at plan time, as `sources.<name>`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }))]
    pub sources: IndexMap<String, Source>,
    /// Where the state lives: a shared PostgreSQL database instead of `.redrive/` beside the
    /// runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSpec>,
    #[serde(default)]
    pub defaults: Defaults,
    #[schemars(length(min = 1))]
    pub jobs: Vec<Job>,
}

/// The name of an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct EnvName(#[schemars(regex(pattern = "^[A-Za-z_][A-Za-z0-9_]*$"))] pub String);
