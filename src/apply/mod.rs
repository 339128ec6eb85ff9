//! Apply: runs a plan. Jobs form a DAG over `needs`; inside a job actions run concurrently
//! within the global parallelism and their provider's limits, wave by wave when the job rolls
//! out; every outcome is classified and retried, polled or reconciled; every state change is
//! journaled before the next step.

mod attempt;
mod classify;
pub mod context;
pub(crate) mod ended;
pub mod engine;
pub mod events;
mod poll;
mod reconcile;
pub mod share;
pub mod waves;

pub mod retry;

use serde::{Deserialize, Serialize};

pub use crate::state::State;

/// How one action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub id: crate::plan::ActionId,
    // Shared by every result of a job: a run can have 100,000 of them.
    pub job: std::sync::Arc<str>,
    pub target: String,
    pub state: State,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub detail: String,
    /// Where the job that produced it is defined, `file:line:col`.
    pub defined_at: std::sync::Arc<str>,
    pub duration_ms: u64,
}

impl ActionResult {
    /// Whether this outcome makes the apply fail (exit 4).
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(self.state, State::Failed | State::Unknown)
    }
}
