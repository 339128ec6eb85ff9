//! A saved plan is an approval, not a program: apply renders the runbook again and refuses the
//! saved plan unless every action in it is exactly what the runbook renders to now — same id,
//! target, parameters, request and idempotency — so an edited plan file cannot send anything
//! the runbook does not say.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::{ActionId, Plan, PlanAction, PlanJob};
use crate::providers::RequestPreview;

/// One way the saved plan and the runbook disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Two actions of the saved plan share an id.
    DuplicateId { id: String },
    /// The saved plan has an action the runbook does not render.
    Unknown { id: String, target: String },
    /// The runbook renders an action the saved plan does not have.
    Missing { id: String, target: String },
    /// The same id with another value of `field`.
    Changed {
        id: String,
        target: String,
        field: &'static str,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DuplicateId { id } => write!(f, "action {id} appears more than once"),
            Self::Unknown { id, target } => {
                write!(f, "action {id} ({target}) is not one the runbook renders")
            }
            Self::Missing { id, target } => {
                write!(
                    f,
                    "the runbook now renders action {id} ({target}), which the plan lacks"
                )
            }
            Self::Changed { id, target, field } => {
                write!(
                    f,
                    "action {id} ({target}): its {field} differs from what the runbook renders"
                )
            }
        }
    }
}

/// A URL without its scheme and authority: a rehearsal's sandbox listens on new ports each run.
fn path_of(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url)
}

/// An action with its request, as its plan shows it.
struct Shown<'a> {
    action: &'a PlanAction,
    request: std::borrow::Cow<'a, RequestPreview>,
}

fn fields(saved: &Shown<'_>, fresh: &Shown<'_>, rehearsal: bool) -> Option<&'static str> {
    let (a, b) = (&*saved.request, &*fresh.request);
    let (saved, fresh) = (saved.action, fresh.action);
    if saved.target != fresh.target {
        return Some("target");
    }
    if saved.params.get() != fresh.params.get() {
        return Some("parameters");
    }
    if saved.idempotency != fresh.idempotency {
        return Some("idempotency");
    }
    let same_url = if rehearsal {
        path_of(&a.url) == path_of(&b.url)
    } else {
        a.url == b.url
    };
    if a.method != b.method || !same_url {
        return Some("request line");
    }
    if a.headers != b.headers {
        return Some("request headers");
    }
    if a.body.as_ref().map(|b| b.get()) != b.body.as_ref().map(|b| b.get()) {
        return Some("request body");
    }
    None
}

/// Every difference between a saved plan and the plan rendered now (empty: they agree).
#[must_use]
pub fn differences(saved: &Plan, fresh: &Plan) -> Vec<Difference> {
    let mut out = Vec::new();
    let fresh_actions: HashMap<ActionId, (&PlanJob, &PlanAction)> = fresh
        .jobs
        .iter()
        .flat_map(|j| j.actions.iter().map(move |a| (a.id, (j, &**a))))
        .collect();
    let mut seen: HashMap<ActionId, ()> = HashMap::new();
    let saved_actions = saved
        .jobs
        .iter()
        .flat_map(|j| j.actions.iter().map(move |a| (j, &**a)));
    for (job, a) in saved_actions {
        if seen.insert(a.id, ()).is_some() {
            out.push(Difference::DuplicateId {
                id: a.id.to_string(),
            });
            continue;
        }
        match fresh_actions.get(&a.id) {
            None => out.push(Difference::Unknown {
                id: a.id.to_string(),
                target: a.target.clone(),
            }),
            Some(&(fresh_job, f)) => {
                let mine = Shown {
                    action: a,
                    request: saved.request(job, a),
                };
                let theirs = Shown {
                    action: f,
                    request: fresh.request(fresh_job, f),
                };
                if let Some(field) = fields(&mine, &theirs, saved.sandbox && fresh.sandbox) {
                    out.push(Difference::Changed {
                        id: a.id.to_string(),
                        target: f.target.clone(),
                        field,
                    });
                }
            }
        }
    }
    for (id, (_, f)) in &fresh_actions {
        if !seen.contains_key(id) {
            out.push(Difference::Missing {
                id: id.to_string(),
                target: f.target.clone(),
            });
        }
    }
    out
}

/// The message for a refused saved plan.
#[must_use]
pub fn refusal(path: &Path, differences: &[Difference]) -> String {
    let mut out = format!(
        "error: the saved plan {} is not what its runbook renders now, so nothing was sent:\n",
        path.display()
    );
    for d in differences.iter().take(20) {
        let _ = writeln!(out, "  - {d}");
    }
    if differences.len() > 20 {
        let _ = writeln!(out, "  … and {} more", differences.len() - 20);
    }
    out.push_str("hint: the plan file was edited, or an environment value it was rendered from changed; plan again and review the new plan\n");
    out
}
