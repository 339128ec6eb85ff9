//! Turns rendered jobs, their items and what the providers said into the immutable [`Plan`]:
//! stable ids, decisions and the summary. Pure: no I/O, no clock (the caller passes the time).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::items::Item;
use super::observe::Checked;
use super::{Decision, FORMAT_VERSION, FileDigest, Plan, PlanAction, PlanJob, Summary};
use crate::manifest::model::Manifest;
use crate::manifest::render::RenderedJob;
use crate::providers::Verdict;

/// What the plan says about where it came from.
#[derive(Debug, Clone)]
pub struct Meta {
    pub created_at: String,
    pub runbook: FileDigest,
    pub inputs: Vec<FileDigest>,
    pub sandbox: bool,
    pub refreshed: bool,
}

/// The stable id of an action: the same provider, action and target give the same id.
#[must_use]
pub fn action_id(provider: &str, action: &str, target: &str) -> String {
    let digest = Sha256::digest(format!("{provider}\0{action}\0{target}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn decide(checked: &Checked) -> Decision {
    match &checked.observed {
        None => Decision::Run,
        Some(Ok(o)) => match &o.verdict {
            Verdict::Run => Decision::Run,
            Verdict::Converged(why) => Decision::Skip(why.clone()),
            Verdict::Blocked(why) => Decision::Blocked(why.clone()),
        },
        Some(Err(e)) => Decision::Blocked(format!("could not read the current state: {e}")),
    }
}

/// Builds the plan. `items` and `checked` are parallel; `jobs` are the rendered jobs the items
/// point into.
#[must_use]
pub fn resolve(
    meta: Meta,
    manifest: &Manifest,
    jobs: &[RenderedJob],
    items: Vec<Item>,
    checked: Vec<Checked>,
) -> Plan {
    let mut plan_jobs: Vec<PlanJob> = jobs
        .iter()
        .map(|j| PlanJob {
            id: j.id.clone(),
            provider: j.provider.clone(),
            provider_type: manifest
                .providers
                .get(&j.provider)
                .map(|p| p.kind.to_string())
                .unwrap_or_default(),
            action: j.action.to_string(),
            defined_at: j.defined_at.clone(),
            needs: manifest
                .jobs
                .iter()
                .find(|m| m.id == j.id)
                .map(|m| m.needs.clone())
                .unwrap_or_default(),
            filtered_by_when: j.skipped_by_when,
            actions: Vec::new(),
        })
        .collect();
    // Exact sizes: a growing vector of 100,000 actions would keep up to twice the room.
    let mut per_job = vec![0usize; plan_jobs.len()];
    for item in &items {
        per_job[item.job] += 1;
    }
    for (job, n) in plan_jobs.iter_mut().zip(per_job) {
        job.actions.reserve_exact(n);
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut summary = Summary::default();
    // The previews and facts move into the plan: no second copy of every request.
    // Both inputs are consumed as the plan grows, so their contents are freed on the way.
    for (item, checked) in items.into_iter().zip(checked) {
        let job = &mut plan_jobs[item.job];
        let id = action_id(&job.provider, &job.action, &item.target);
        let mut decision = decide(&checked);
        // A target listed twice must not be sent twice.
        if let Some(first_job) = seen.get(&id) {
            decision = Decision::Blocked(format!(
                "the same target is already planned (job `{first_job}`, id {id})"
            ));
        } else {
            seen.insert(id.clone(), job.id.clone());
        }
        match decision {
            Decision::Run => summary.run += 1,
            Decision::Skip(_) => summary.unchanged += 1,
            Decision::Blocked(_) => summary.blocked += 1,
        }
        let observed = match checked.observed {
            Some(Ok(o)) if !o.facts.is_empty() => serde_json::value::to_raw_value(&o.facts).ok(),
            _ => None,
        };
        job.actions.push(PlanAction {
            id,
            index: item.index,
            target: item.target.clone(),
            decision,
            idempotency: checked.idempotency,
            request: checked.preview,
            observed,
            params: serde_json::value::to_raw_value(&item.what.params())
                .expect("parameters serialize"),
            previous: None,
        });
    }
    Plan {
        format_version: FORMAT_VERSION,
        tool: format!("redrive {}", env!("CARGO_PKG_VERSION")),
        created_at: meta.created_at,
        name: manifest.name.clone(),
        runbook: meta.runbook,
        inputs: meta.inputs,
        sandbox: meta.sandbox,
        refreshed: meta.refreshed,
        summary,
        jobs: plan_jobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = action_id("tpp", "retry_certificate", "\\VED\\Policy\\a");
        assert_eq!(a, action_id("tpp", "retry_certificate", "\\VED\\Policy\\a"));
        assert_ne!(a, action_id("tpp", "retry_certificate", "\\VED\\Policy\\b"));
        assert_ne!(
            a,
            action_id("tpp2", "retry_certificate", "\\VED\\Policy\\a")
        );
        assert_eq!(a.len(), 16);
    }
}
