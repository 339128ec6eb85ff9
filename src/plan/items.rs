//! Expands rendered jobs into plan items: one per action, and one per target of a DigiCert bulk
//! action (apply batches them again), each with the target text its id is derived from.

use serde_json::Value;

use crate::manifest::model::{ActionParams, AutomationTarget, BulkRetryAutomation};
use crate::manifest::render::RenderedJob;

/// One thing to observe and maybe send.
#[derive(Debug, Clone)]
pub struct Item {
    /// Index of the job in the rendered list.
    pub job: usize,
    pub index: Option<usize>,
    pub target: String,
    // Boxed: the parameters are several times the rest, and planning frees each as it goes.
    pub what: Box<What>,
}

#[derive(Debug, Clone)]
pub enum What {
    Single(ActionParams),
    /// One target of a bulk action.
    Bulk {
        action: BulkRetryAutomation,
        // Boxed: a target is several optional strings, and a plan holds one item per target.
        target: Box<AutomationTarget>,
    },
}

impl What {
    /// What tells this action apart besides its target: an `http` request's body (two
    /// requests to one URL are one action only when they would send the same thing).
    #[must_use]
    pub fn identity(&self) -> Option<String> {
        match self {
            Self::Single(ActionParams::Http(r)) => {
                Some(r.body.as_ref().map_or_else(String::new, |b| {
                    serde_json::to_string(b).unwrap_or_default()
                }))
            }
            _ => None,
        }
    }

    /// The parameters apply needs, as JSON.
    #[must_use]
    pub fn params(&self) -> Value {
        match self {
            Self::Single(p) => serde_json::to_value(p).unwrap_or(Value::Null),
            Self::Bulk { action, target } => {
                let mut v = serde_json::to_value(action).unwrap_or(Value::Null);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert(
                        "targets".into(),
                        Value::Array(vec![serde_json::to_value(target).unwrap_or(Value::Null)]),
                    );
                }
                v
            }
        }
    }
}

fn target_of(params: &ActionParams) -> String {
    match params {
        ActionParams::RetryCertificate(a) => a.certificate_dn.clone(),
        ActionParams::RetryCredentialsTask(a) => a.task_id.clone(),
        ActionParams::ReissueCertificate(a) => format!("certificate {}", a.certificate_no),
        ActionParams::Http(a) => format!(
            "{} {}",
            format!("{:?}", a.method).to_ascii_uppercase(),
            a.url
        ),
        ActionParams::BulkRetryAutomation(a) => format!("{} targets", a.targets.len()),
    }
}

/// The items of every rendered job, in job and item order. The rendered actions move into the
/// items (the jobs keep their metadata), so a large plan is not held twice.
#[must_use]
pub fn expand(jobs: &mut [RenderedJob]) -> Vec<Item> {
    let total = jobs
        .iter()
        .flat_map(|j| &j.actions)
        .map(|a| match &a.with {
            ActionParams::BulkRetryAutomation(b) => b.targets.len(),
            _ => 1,
        })
        .sum();
    let mut items = Vec::with_capacity(total);
    for (j, job) in jobs.iter_mut().enumerate() {
        for action in std::mem::take(&mut job.actions) {
            match action.with {
                ActionParams::BulkRetryAutomation(bulk) => {
                    for (i, t) in bulk.targets.iter().enumerate() {
                        items.push(Item {
                            job: j,
                            index: Some(action.index.map_or(i, |outer| outer * 100_000 + i)),
                            target: crate::providers::digicert::target_key(t),
                            what: Box::new(What::Bulk {
                                action: bulk.clone(),
                                target: Box::new(t.clone()),
                            }),
                        });
                    }
                }
                other => items.push(Item {
                    job: j,
                    index: action.index,
                    target: target_of(&other),
                    what: Box::new(What::Single(other)),
                }),
            }
        }
    }
    items
}
