//! How an action is described in every format: its key parameters (as its provider sums up the
//! request) and its observed facts.

use serde_json::Value;

use super::{Plan, PlanAction, PlanJob};

/// The key parameters of an action, as its provider sums up the request.
#[must_use]
pub fn key_params(plan: &Plan, job: &PlanJob, action: &PlanAction) -> String {
    crate::providers::registry::summary(&job.provider_type, &plan.request(job, action))
}

/// The observed facts as `name=value` pairs.
#[must_use]
pub fn facts(action: &PlanAction) -> String {
    action
        .observed()
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
