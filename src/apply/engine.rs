//! The scheduler: jobs as a DAG over `needs`, each job wave by wave, each wave's actions (or
//! batches of works one request takes) concurrently within the global parallelism and the
//! provider's limits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::task::JoinSet;

pub use super::context::{Engine, JobInfo, JobPolicy, Ran, WaitPolicy};
use super::ended::Ended;
use super::events::Event;
use super::{ActionResult, attempt, waves};
use crate::manifest::model::Work;
use crate::plan::{Decision, Plan, PlanAction, PlanJob};
use crate::state::{State, StateError};

impl Engine {
    /// Runs the plan; the results come back in plan order, once the journal holds them all (or
    /// with the reason it may not).
    ///
    /// # Errors
    /// When the run's intents cannot be journaled: then nothing is sent.
    pub async fn run(self: Arc<Self>, plan: Plan) -> Result<Ran, StateError> {
        // Each job's actions move into its task and each action into its own, so what has been
        // sent is freed while the rest runs.
        let jobs: Vec<PlanJob> = plan.jobs;
        self.sink.emit(Event::Started {
            jobs: jobs
                .iter()
                .map(|j| {
                    let runnable = j.actions.iter().filter(|a| a.decision == Decision::Run);
                    (j.id.clone(), runnable.count())
                })
                .collect(),
        });
        // Cooperating runners share one journal: the leases say what is not sent yet, and an
        // intent written by a late runner would follow another's `sent`.
        if self.share.is_none() {
            self.journal_intents(&jobs).await?;
        }
        let results = self.clone().schedule(jobs).await;
        // Appended to the first job's results rather than copied into a new vector: with one
        // job of 100,000 actions nothing is copied at all.
        let mut jobs_results = results.into_iter().flatten();
        let mut results = jobs_results.next().unwrap_or_default();
        for more in jobs_results {
            results.extend(more);
        }
        // What was sent was sent: a journal that fails now does not take the results away.
        let journal_error = self.journal.barrier().await.err();
        Ok(Ran {
            results,
            journal_error,
        })
    }

    /// Intent first, in one sync: whatever is sent later, a crash leaves every action of this
    /// run at least "planned", which the next apply reads as not sent.
    async fn journal_intents(&self, jobs: &[PlanJob]) -> Result<(), StateError> {
        let intents = jobs.iter().flat_map(|job| {
            let info = self.job_info(job);
            job.actions
                .iter()
                .filter(|a| a.decision == Decision::Run)
                .map(move |a| self.record_of(&info, a, State::Planned, 0, None, ""))
        });
        self.journal.append_all(intents).await
    }

    /// The jobs as a DAG over `needs`: a job starts when every job it needs has ended, and is
    /// skipped with the reason when one of them did not fully succeed. Results by job index.
    async fn schedule(self: Arc<Self>, jobs: Vec<PlanJob>) -> Vec<Option<Vec<ActionResult>>> {
        let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
        let present: HashSet<&str> = ids.iter().map(String::as_str).collect();
        // Needs outside the plan (`--target` pulls them in, so only a saved plan of an older
        // version lacks them) cannot hold a job back.
        let needs_of: Vec<Vec<String>> = jobs
            .iter()
            .map(|j| {
                let inside = j.needs.iter().filter(|n| present.contains(n.as_str()));
                inside.cloned().collect()
            })
            .collect();
        let mut jobs: Vec<Option<PlanJob>> = jobs.into_iter().map(Some).collect();
        // Job id → whether it fell short (a failure, or actions left unsent).
        let mut fell_short: HashMap<String, bool> = HashMap::new();
        let mut results: Vec<Option<Vec<ActionResult>>> = vec![None; jobs.len()];
        let mut running = JoinSet::new();
        loop {
            for i in 0..jobs.len() {
                let needs = &needs_of[i];
                if jobs[i].is_none() || !needs.iter().all(|n| fell_short.contains_key(n)) {
                    continue;
                }
                let job = jobs[i].take().expect("a job starts once");
                let info = self.job_info(&job);
                if let Some(bad) = needs.iter().find(|n| fell_short[n.as_str()]) {
                    let why = format!(
                        "not run: job `{bad}`, which this job needs, did not fully succeed"
                    );
                    let out = job
                        .actions
                        .iter()
                        .map(|a| self.skip(&info, a, why.clone()))
                        .collect();
                    fell_short.insert(job.id.clone(), true);
                    results[i] = Some(out);
                    continue;
                }
                let engine = self.clone();
                running.spawn(async move { (i, engine.run_job(info, job).await) });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (i, (out, complete)) = match done {
                Ok(x) => x,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("a job task was cancelled: {e}"),
            };
            let short = !complete || out.iter().any(ActionResult::is_failure);
            fell_short.insert(ids[i].clone(), short);
            results[i] = Some(out);
        }
        results
    }

    fn job_info(&self, job: &PlanJob) -> JobInfo {
        JobInfo {
            id: job.id.as_str().into(),
            provider: job.provider.clone(),
            kind: job.action,
            defined_at: job.defined_at.as_str().into(),
            policy: self.policies.get(&job.id).cloned().unwrap_or_default(),
        }
    }

    /// A job's actions, wave by wave; `false` when some were left unsent (an interrupt, or a
    /// rollout stopped by its failure budget).
    async fn run_job(self: Arc<Self>, info: JobInfo, job: PlanJob) -> (Vec<ActionResult>, bool) {
        self.sink.emit(Event::JobStarted {
            job: job.id.clone(),
        });
        // Results take memory as their actions end, not for the whole job up front.
        let mut out = Ended::new(job.actions.len());
        // In place (`map` over the same layout): an action is taken out when it is sent.
        let mut slots: Vec<Option<Box<PlanAction>>> = job.actions.into_iter().map(Some).collect();
        let mut runnable = Vec::new();
        for (k, slot) in slots.iter_mut().enumerate() {
            let Some(a) = slot.as_ref() else { continue };
            let why = match &a.decision {
                Decision::Run => {
                    runnable.push(k);
                    continue;
                }
                Decision::Skip(why) => format!("unchanged: {why}"),
                Decision::Blocked(why) => format!("blocked: {why}"),
            };
            let a = slot.take().expect("checked above");
            out.put(k, self.skip(&info, &a, why));
        }
        let total = runnable.len() as u64;
        let waves = waves::wave_ends(info.policy.rollout.as_ref(), runnable.len());
        let budget = info
            .policy
            .rollout
            .as_ref()
            .and_then(|r| r.max_failures)
            .map(|m| m.of(total));
        let mut failures = 0u64;
        let mut from = 0;
        let mut complete = true;
        for (w, end) in waves.iter().copied().enumerate() {
            let wave = &runnable[from..end];
            self.sink.emit(Event::WaveStarted {
                job: job.id.clone(),
                wave: w + 1,
                waves: waves.len(),
                actions: wave.len(),
            });
            failures += match &self.share {
                Some(coop) => {
                    let range = from..end;
                    super::share::run_wave(&self, coop, &info, &mut slots, &mut out, wave, range)
                        .await
                }
                None => {
                    self.clone()
                        .run_wave(&info, &mut slots, &mut out, wave)
                        .await
                }
            };
            from = end;
            let stopped = if self.stopping() {
                Some("not sent: apply was interrupted".to_owned())
            } else {
                budget.filter(|b| failures > *b).map(|b| {
                    format!(
                        "not sent: rollout stopped after wave {} of {}: {failures} failure(s) exceed max_failures ({b})",
                        w + 1,
                        waves.len()
                    )
                })
            };
            if let Some(why) = stopped {
                complete = false;
                for &k in &runnable[from..] {
                    let action = slots[k].take().expect("each action ends once");
                    out.put(
                        k,
                        match &self.share {
                            // Every runner stops at the same wave; other runners may still hold
                            // actions of this one, so nothing is journaled for the rest.
                            Some(_) => super::share::unsent(&info, &action, State::Skipped, &why),
                            None => self.skip(&info, &action, why.clone()),
                        },
                    );
                }
                break;
            }
        }
        self.sink.emit(Event::JobFinished {
            job: job.id.clone(),
        });
        (out.into_plan_order(), complete && !self.stopping())
    }

    /// The actions of one wave, concurrently; works a provider takes in one request go in
    /// batches. No more tasks exist at a time than the provider may have requests in flight, so
    /// memory follows the concurrency, not the size of the wave. Each result goes to its
    /// action's place in `out`; returns how many failed.
    async fn run_wave(
        self: Arc<Self>,
        info: &JobInfo,
        slots: &mut [Option<Box<PlanAction>>],
        out: &mut Ended,
        wave: &[usize],
    ) -> u64 {
        let client = &self.clients[&info.provider];
        let mut failures = 0;
        // Batches are formed before sending, as they group works across the wave; a single
        // action's unit is made when it is sent, not for the whole wave up front.
        let mut units: Box<dyn Iterator<Item = Vec<usize>> + Send + '_> =
            match waves::units(client, info.kind, slots, wave) {
                Some(units) => Box::new(units.into_iter()),
                None => Box::new(wave.iter().map(|&k| vec![k])),
            };
        let width = self
            .limiters
            .get(&info.provider)
            .map_or(1, |l| l.concurrency())
            .max(1);
        let mut tasks = JoinSet::new();
        loop {
            while tasks.len() < width {
                let Some(unit) = units.next() else { break };
                // Taken out only now: an action's memory lives as long as its task.
                let mut members = Vec::with_capacity(unit.len());
                for k in unit {
                    let action = slots[k].take().expect("each action is sent once");
                    match Work::from_params(info.kind, action.params.get()) {
                        Ok(work) => members.push(attempt::Member { k, action, work }),
                        Err(e) => {
                            let detail = format!("in the plan, {e}");
                            let now = tokio::time::Instant::now();
                            let result =
                                self.finish(info, &action, State::Failed, 0, None, detail, now);
                            failures += 1;
                            out.put(k, result);
                        }
                    }
                }
                if members.is_empty() {
                    continue;
                }
                let (engine, info) = (self.clone(), info.clone());
                tasks.spawn(async move { attempt::run(&engine, &info, members).await });
            }
            let Some(done) = tasks.join_next().await else {
                break;
            };
            match done {
                Ok(results) => {
                    for (k, result) in results {
                        failures += u64::from(result.is_failure());
                        out.put(k, result);
                    }
                }
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("an action task was cancelled: {e}"),
            }
        }
        failures
    }
}
