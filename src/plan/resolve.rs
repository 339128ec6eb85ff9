//! Turns rendered jobs, their items and what the providers said into the immutable [`Plan`]:
//! stable ids, decisions and the summary. Pure: no I/O, no clock (the caller passes the time).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::items::Item;
use super::observe::Read;
use super::{ActionId, Decision, FORMAT_VERSION, FileDigest, Plan, PlanAction, PlanJob, Summary};
use crate::manifest::model::{Manifest, Work};
use crate::manifest::render::RenderedJob;
use crate::providers::{Idempotency, RequestPreview, Verdict};
use crate::state::{History, Past, State};

/// What the plan says about where it came from.
#[derive(Debug, Clone)]
pub struct Meta {
    pub created_at: String,
    pub runbook: FileDigest,
    pub inputs: Vec<FileDigest>,
    pub sandbox: bool,
    pub refreshed: bool,
    /// `--target` as given, and the jobs pulled in because the targets need them.
    pub targets: Vec<String>,
    pub pulled_in: Vec<String>,
    /// Vars set on the command line.
    pub vars: indexmap::IndexMap<String, serde_json::Value>,
}

/// What decides an action besides its observation: its history and the user's overrides.
pub struct Rules<'a> {
    pub history: &'a History,
    /// `--replace`: action ids or job ids to plan again whatever their history says.
    pub replace: &'a [String],
    /// Per job: whether its provider's "still needed" after an earlier success proves a new
    /// need (a VCF task that failed again) rather than an old one seen again (a NAVER
    /// certificate that is `NORMAL` again after its reissue).
    pub new_need: &'a dyn Fn(usize) -> bool,
    /// Per job: whether the facts observed now show that a request sent at the given time
    /// (RFC 3339) took effect, for actions whose earlier outcome is unknown.
    pub took_effect: &'a dyn Fn(usize, Option<&RawValue>, &str) -> bool,
    /// Per job: whether its provider can be reached (a rehearsal reaches only what the sandbox
    /// simulates, so generic `http` actions are held back).
    pub simulated: &'a dyn Fn(usize) -> bool,
    /// Applying a saved plan: an action it did not approve is not run, whatever it needs now.
    pub approved: Option<&'a std::collections::HashSet<ActionId>>,
}

/// The stable id of an action: the same provider, action and target give the same id.
#[must_use]
pub fn action_id(provider: &str, action: &str, target: &str) -> String {
    format!("{:016x}", action_digest(provider, action, target))
}

/// The id as a number (the id is its hex): a cheap key for finding duplicates.
fn action_digest(provider: &str, action: &str, target: &str) -> u64 {
    identity_digest(provider, action, target, None)
}

/// `identity` is what besides the target tells two actions apart (an `http` body).
fn identity_digest(provider: &str, action: &str, target: &str, identity: Option<&str>) -> u64 {
    let mut hasher = Sha256::new()
        .chain_update(provider)
        .chain_update([0])
        .chain_update(action)
        .chain_update([0])
        .chain_update(target);
    // Absent for every other action, so their ids stay what earlier journals recorded.
    if let Some(extra) = identity {
        hasher = hasher.chain_update([0]).chain_update(extra);
    }
    let digest = hasher.finalize();
    u64::from_be_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 32 bytes"),
    )
}

/// The decision the read-only check alone gives, its facts, and whether a check was made.
fn decide(read: Option<Read>) -> (Decision, Option<Box<RawValue>>, bool) {
    let read = read.flatten();
    let made = read.is_some();
    let (decision, facts) = match read {
        None => (Decision::Run, None),
        Some(Ok(seen)) => (
            match seen.verdict {
                Verdict::Run => Decision::Run,
                Verdict::Converged(why) => Decision::Skip(why),
                Verdict::Blocked(why) => Decision::Blocked(why),
            },
            seen.facts,
        ),
        // `prepare` refuses to plan when a read failed; kept for callers that plan anyway.
        Some(Err(e)) => (
            Decision::Blocked(format!("could not read the current state: {e}")),
            None,
        ),
    };
    (decision, facts, made)
}

/// The decision once history is taken into account, and the `~` note when this is a re-run.
fn with_history(
    decision: Decision,
    observed: bool,
    idempotency: Idempotency,
    past: Option<&Past>,
    new_need: bool,
    took_effect: &dyn Fn(&str) -> bool,
) -> (Decision, Option<String>) {
    let Some(past) = past else {
        return (decision, None);
    };
    let last = &past.last;
    let non_idempotent = idempotency == Idempotency::NonIdempotent;
    match last.state {
        State::Succeeded | State::Converged if non_idempotent && decision == Decision::Run => {
            let at = past.succeeded_at.as_deref().unwrap_or(&last.at);
            if observed && new_need {
                (
                    Decision::Run,
                    Some(format!(
                        "needed again after it succeeded in an earlier run at {at}"
                    )),
                )
            } else {
                (
                    Decision::Skip(format!("done in an earlier run at {at}")),
                    None,
                )
            }
        }
        _ if past.outcome_unknown() => {
            let at = past.sent_at.as_deref().unwrap_or(&last.at);
            if non_idempotent && !observed && decision == Decision::Run {
                return (
                    Decision::Blocked(format!(
                        "an earlier run sent it at {at} and its outcome is unknown; plan with refresh to reconcile it, or pass --replace to send it again"
                    )),
                    None,
                );
            }
            if non_idempotent && decision == Decision::Run && took_effect(at) {
                return (
                    Decision::Skip(format!(
                        "an earlier run sent it at {at} without an answer, and the provider shows it took effect"
                    )),
                    None,
                );
            }
            let note = format!("outcome unknown in an earlier run (sent at {at})");
            (decision, Some(note))
        }
        State::Failed => {
            let note = format!("failed in an earlier run: {}", last.detail);
            (decision, Some(note.trim_end_matches(": ").to_owned()))
        }
        _ => (decision, None),
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
    rules: &Rules<'_>,
    preview: impl Fn(&Item) -> (RequestPreview, Idempotency),
) -> Plan {
    let mut resolver = Resolver::new(
        jobs.iter()
            .map(|j| (j.id.as_str(), j.provider.as_str(), j.action)),
        rules,
        |item: &Item| preview(item).1,
    );
    let mut per_job = vec![0usize; jobs.len()];
    for item in &items {
        per_job[item.job] += 1;
    }
    for (j, n) in per_job.into_iter().enumerate() {
        resolver.reserve(j, n);
    }
    let mut reads = reads.into_iter();
    // The items from the end of a reversed vector, whose buffer (56 bytes an item) then
    // shrinks by halves instead of staying whole until the last action is built.
    let mut items = items;
    items.reverse();
    while let Some(item) = items.pop() {
        super::items::shrink_drained(&mut items);
        resolver.push(item, reads.next());
    }
    resolver.finish(meta, manifest, jobs)
}

/// Resolves actions one at a time as they are rendered (or observed), so that what they were
/// made from is freed on the way: a plan of a million actions holds only its own actions.
pub struct Resolver<'r, F> {
    /// Per job: id, provider and action name, for ids and the duplicate note.
    heads: Vec<(String, String, &'static str)>,
    // Boxed as in `PlanJob::actions`, which these become.
    #[allow(clippy::vec_box)]
    actions: Vec<Vec<Box<PlanAction>>>,
    // Per job, the digests of its actions: a target listed twice must not be sent twice. Sets
    // of bare digests (8 bytes a slot, not 16 for digest and job); a duplicate's first job is
    // found by asking each job's set in turn, and a runbook has few jobs.
    seen: Vec<HashSet<u64, BuildHasherDefault<DigestHasher>>>,
    summary: Summary,
    rules: &'r Rules<'r>,
    idempotency: F,
}

impl<'r, F: FnMut(&Item) -> Idempotency> Resolver<'r, F> {
    /// For jobs given by id, provider and action, in the order of the rendered jobs.
    pub fn new<'j>(
        jobs: impl IntoIterator<Item = (&'j str, &'j str, crate::manifest::model::ActionKind)>,
        rules: &'r Rules<'r>,
        idempotency: F,
    ) -> Self {
        let heads: Vec<_> = jobs
            .into_iter()
            .map(|(id, provider, action)| (id.to_owned(), provider.to_owned(), action.name()))
            .collect();
        Self {
            actions: heads.iter().map(|_| Vec::new()).collect(),
            seen: heads.iter().map(|_| HashSet::default()).collect(),
            heads,
            summary: Summary::default(),
            rules,
            idempotency,
        }
    }

    /// Room for this many more actions of job `j` (exact: a growing vector of a million
    /// actions would keep up to twice the room).
    pub fn reserve(&mut self, j: usize, n: usize) {
        self.actions[j].reserve_exact(n);
        self.seen[j].reserve(n);
    }

    /// Decides one item, with what its read-only check found, and keeps the action.
    pub fn push(&mut self, item: Item, read: Option<Read>) {
        let (j, action, _) = self.next(item, read).finish();
        self.actions[j].push(Box::new(action));
    }

    /// Decides one item and hands it back instead of keeping it (for a caller that writes each
    /// action out as it comes, and may [`Decided::finish`] it on another thread).
    pub fn next(&mut self, item: Item, read: Option<Read>) -> Decided {
        let rules = self.rules;
        let idempotency = (self.idempotency)(&item);
        let (decision, observed, was_read) = decide(read);
        let identity = item.what.identity();
        let Item {
            job: j,
            index,
            target,
            what,
        } = item;
        let (job_id, provider, action) = &self.heads[j];
        let digest = identity_digest(provider, action, &target, identity.as_deref());
        let id = super::ActionId(digest);
        // The text only for the lookups by text (none on a first run without `--replace`);
        // the action keeps the number.
        let lookups = !rules.replace.is_empty() || !rules.history.actions.is_empty();
        let id_text = if lookups {
            id.to_string()
        } else {
            String::new()
        };
        let replaced = rules.replace.iter().any(|r| *r == id_text || r == job_id);
        let (decision, previous) = if replaced {
            (
                decision,
                Some("planned again on request (--replace)".to_owned()),
            )
        } else {
            let facts = observed.as_deref();
            with_history(
                decision,
                was_read,
                idempotency,
                rules.history.get(&id_text),
                (rules.new_need)(j),
                &|at| (rules.took_effect)(j, facts, at),
            )
        };
        let mut decision = overridden(decision, rules, j, id);
        if let Some(first) = self.seen.iter().position(|set| set.contains(&digest)) {
            decision = Decision::Blocked(format!(
                "the same target is already planned (job `{}`, id {id})",
                self.heads[first].0
            ));
        } else {
            self.seen[j].insert(digest);
        }
        match decision {
            Decision::Run => self.summary.run += 1,
            Decision::Skip(_) => self.summary.unchanged += 1,
            Decision::Blocked(_) => self.summary.blocked += 1,
        }
        Decided {
            job: j,
            id,
            index,
            target,
            decision,
            idempotency,
            observed,
            previous,
            what,
        }
    }

    /// The plan, with the rendered jobs' metadata (the ones given to [`Resolver::new`]).
    #[must_use]
    pub fn finish(self, meta: Meta, manifest: &Manifest, jobs: &[RenderedJob]) -> Plan {
        let mut plan_jobs: Vec<PlanJob> = jobs.iter().map(|j| plan_job(manifest, j)).collect();
        for (job, actions) in plan_jobs.iter_mut().zip(self.actions) {
            job.actions = actions;
        }
        Plan {
            summary: self.summary,
            jobs: plan_jobs,
            ..plan_head(meta, manifest)
        }
    }
}

/// The plan without jobs and with an empty summary.
#[must_use]
pub fn plan_head(meta: Meta, manifest: &Manifest) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        tool: format!("redrive {}", env!("CARGO_PKG_VERSION")),
        created_at: meta.created_at,
        name: manifest.name.clone(),
        runbook: meta.runbook,
        inputs: meta.inputs,
        sandbox: meta.sandbox,
        refreshed: meta.refreshed,
        targets: meta.targets,
        pulled_in: meta.pulled_in,
        vars: meta.vars,
        summary: Summary::default(),
        jobs: Vec::new(),
        previews: super::Previews::default(),
    }
}

/// A decided action whose parameters' text is not made yet: serializing them is a good part of
/// an action's cost, and a plan written as it is made does it on its writer's thread.
pub struct Decided {
    job: usize,
    id: ActionId,
    index: Option<usize>,
    target: String,
    decision: Decision,
    idempotency: Idempotency,
    observed: Option<Box<RawValue>>,
    previous: Option<String>,
    what: Box<Work>,
}

impl Decided {
    /// The action, with its job and what it was rendered from.
    #[must_use]
    pub fn finish(self) -> (usize, PlanAction, Box<Work>) {
        let action = PlanAction {
            id: self.id,
            index: self.index,
            target: self.target,
            decision: self.decision,
            idempotency: self.idempotency,
            request: None,
            observed: self.observed,
            params: self.what.params_raw(),
            previous: self.previous,
        };
        (self.job, action, self.what)
    }
}

/// Hashes an action digest as itself: it is already the start of a SHA-256, as evenly spread
/// as any hash of it would be, and a million of them need not be hashed again.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here; anything else is folded in, still correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// What the run's circumstances say over the decision: a rehearsal holds back what the sandbox
/// does not simulate, and a saved plan runs only what it approved.
fn overridden(decision: Decision, rules: &Rules<'_>, job: usize, id: ActionId) -> Decision {
    if decision == Decision::Run && !(rules.simulated)(job) {
        // A generic request would go to the real endpoint from a rehearsal.
        return Decision::Blocked(
            "the sandbox does not simulate this provider; not sent in a rehearsal".into(),
        );
    }
    let Some(approved) = rules.approved else {
        return decision;
    };
    match decision {
        Decision::Run if !approved.contains(&id) => {
            Decision::Skip("not run in the reviewed plan; plan again to include it".into())
        }
        Decision::Skip(why) if approved.contains(&id) => {
            Decision::Skip(format!("changed since the plan: {why}"))
        }
        Decision::Blocked(why) if approved.contains(&id) => {
            Decision::Blocked(format!("changed since the plan: {why}"))
        }
        other => other,
    }
}

/// A rendered job as the plan shows it, without its actions yet.
#[must_use]
pub fn plan_job(manifest: &Manifest, j: &RenderedJob) -> PlanJob {
    PlanJob {
        defined_at: j.defined_at.clone(),
        filtered_by_when: j.skipped_by_when,
        ..job_head(manifest, &j.id, &j.provider, j.action)
    }
}

/// A job of the plan as the runbook declares it, before it is rendered: no actions, no
/// `defined_at` and nothing filtered out yet.
#[must_use]
pub fn job_head(
    manifest: &Manifest,
    id: &str,
    provider: &str,
    action: crate::manifest::model::ActionKind,
) -> PlanJob {
    PlanJob {
        id: id.to_owned(),
        provider: provider.to_owned(),
        provider_type: manifest
            .providers
            .get(provider)
            .map(|p| p.kind.to_string())
            .unwrap_or_default(),
        action,
        defined_at: String::new(),
        needs: manifest
            .jobs
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.needs.clone())
            .unwrap_or_default(),
        filtered_by_when: 0,
        actions: Vec::new(),
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
