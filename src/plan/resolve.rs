//! Turns rendered jobs, their items and what the providers said into the immutable [`Plan`]:
//! stable ids, decisions and the summary. Pure: no I/O, no clock (the caller passes the time).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::items::Item;
use super::observe::Read;
use super::{Decision, FORMAT_VERSION, FileDigest, Plan, PlanAction, PlanJob, Summary};
use crate::manifest::model::Manifest;
use crate::manifest::render::RenderedJob;
use crate::providers::{Idempotency, RequestPreview, Verdict};

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
    format!("{:016x}", action_digest(provider, action, target))
}

/// The id as a number (the id is its hex): a cheap key for finding duplicates.
fn action_digest(provider: &str, action: &str, target: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(provider)
        .chain_update([0])
        .chain_update(action)
        .chain_update([0])
        .chain_update(target)
        .finalize();
    u64::from_be_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 32 bytes"),
    )
}

fn decide(read: Option<Read>) -> (Decision, Option<Box<serde_json::value::RawValue>>) {
    match read.flatten() {
        None => (Decision::Run, None),
        Some(Ok(seen)) => (
            match seen.verdict {
                Verdict::Run => Decision::Run,
                Verdict::Converged(why) => Decision::Skip(why),
                Verdict::Blocked(why) => Decision::Blocked(why),
            },
            seen.facts,
        ),
        Some(Err(e)) => (
            Decision::Blocked(format!("could not read the current state: {e}")),
            None,
        ),
    }
}

/// Builds the plan. `reads` is parallel to `items`, or empty when the providers' state was not
/// read; `jobs` are the rendered jobs the items point into; `preview` gives the request an
/// item would send.
#[must_use]
pub fn resolve(
    meta: Meta,
    manifest: &Manifest,
    jobs: &[RenderedJob],
    items: Vec<Item>,
    reads: Vec<Read>,
    preview: impl Fn(&Item) -> (RequestPreview, Idempotency),
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
    // Digest to job: a target listed twice must not be sent twice.
    let mut seen: HashMap<u64, usize> = HashMap::with_capacity(items.len());
    let mut summary = Summary::default();
    let mut reads = reads.into_iter();
    // Both inputs are consumed as the plan grows, so what they hold is freed on the way.
    for item in items {
        let (request, idempotency) = preview(&item);
        let (mut decision, observed) = decide(reads.next());
        let Item {
            job: j,
            index,
            target,
            what,
        } = item;
        let job = &mut plan_jobs[j];
        let digest = action_digest(&job.provider, &job.action, &target);
        let id = format!("{digest:016x}");
        match seen.get(&digest) {
            Some(&first) => {
                decision = Decision::Blocked(format!(
                    "the same target is already planned (job `{}`, id {id})",
                    jobs[first].id
                ));
            }
            None => {
                seen.insert(digest, j);
            }
        }
        match decision {
            Decision::Run => summary.run += 1,
            Decision::Skip(_) => summary.unchanged += 1,
            Decision::Blocked(_) => summary.blocked += 1,
        }
        job.actions.push(Box::new(PlanAction {
            id,
            index,
            target,
            decision,
            idempotency,
            request,
            observed,
            params: serde_json::value::to_raw_value(&what.params()).expect("parameters serialize"),
            previous: None,
        }));
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
        // The first 8 bytes of SHA-256("tpp\0retry_certificate\0\\VED\\Policy\\a"): saved
        // plans and journals from earlier versions name actions by this id.
        assert_eq!(a, "c578341ecedd3a63");
    }
}
