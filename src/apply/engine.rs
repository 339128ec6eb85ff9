//! The scheduler: jobs as a DAG over `needs`, each job wave by wave, each wave's actions (or
//! DigiCert batches) concurrently within the global parallelism and the provider's limits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::events::{Event, Sink};
use super::retry::Policy;
use super::{ActionResult, attempt, waves};
use crate::limits::Limiter;
use crate::manifest::model::{ActionKind, Rollout, Work};
use crate::plan::{Decision, Plan, PlanAction, PlanJob};
use crate::providers::Client;
use crate::state::{Journal, Record, State};

/// Polling of asynchronous results, with defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    pub enabled: bool,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// How one job is run.
#[derive(Debug, Clone, Default)]
pub struct JobPolicy {
    pub retry: Policy,
    pub wait: WaitPolicy,
    pub rollout: Option<Rollout>,
}

/// Everything a run needs; shared by the job and action tasks.
pub struct Engine {
    pub clients: Arc<IndexMap<String, Client>>,
    pub limiters: Arc<IndexMap<String, Limiter>>,
    /// `--parallelism`: requests in flight over all providers.
    pub global: Arc<Semaphore>,
    pub journal: Journal,
    pub run_id: String,
    pub sink: Arc<dyn Sink>,
    /// Turns true at the first interrupt: nothing new is sent after it.
    pub stop: watch::Receiver<bool>,
    pub policies: HashMap<String, JobPolicy>,
}

/// The parts of a plan job an action task needs.
#[derive(Debug, Clone)]
pub struct JobInfo {
    pub id: Arc<str>,
    pub provider: String,
    pub kind: ActionKind,
    pub defined_at: Arc<str>,
    pub policy: JobPolicy,
}

/// What a run did.
#[derive(Debug)]
pub struct Ran {
    /// In plan order.
    pub results: Vec<ActionResult>,
    /// Set when the journal failed after sending began: it may lack some of these results, and
    /// actions after the failure were not sent.
    pub journal_error: Option<String>,
}

impl Engine {
    pub(super) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps, but wakes at the first interrupt; `false` when interrupted.
    pub(super) async fn nap(&self, how_long: Duration) -> bool {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(how_long) => true,
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    fn record_of(
        &self,
        job: &JobInfo,
        action: &PlanAction,
        state: State,
        attempt: u32,
        http_status: Option<u16>,
        detail: &str,
    ) -> Record {
        Record {
            at: jiff::Timestamp::now().to_string(),
            run: self.run_id.clone(),
            action: action.id.clone(),
            job: job.id.to_string(),
            target: action.target.clone(),
            state,
            attempt,
            http_status,
            detail: detail.to_owned(),
        }
    }

    /// Queues a state change for the journal; the ticket says when it is on disk.
    pub(super) fn submit(
        &self,
        job: &JobInfo,
        action: &PlanAction,
        state: State,
        attempt: u32,
    ) -> Result<crate::state::Ticket, String> {
        self.journal
            .submit(&self.record_of(job, action, state, attempt, None, ""))
            .map_err(|e| e.to_string())
    }

    /// Journals the final state, reports it and builds the result.
    // Every argument is a field of the result; a struct for them would only be unpacked here.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish(
        &self,
        job: &JobInfo,
        action: &PlanAction,
        state: State,
        attempts: u32,
        http_status: Option<u16>,
        detail: String,
        started: tokio::time::Instant,
    ) -> ActionResult {
        // Final states need not hold up the next action, nor a sync of their own: they reach
        // the disk with the next `sent` or at the barrier that ends `run`, and one lost in a
        // machine crash only costs a re-check on the next apply.
        let record = self.record_of(job, action, state, attempts, http_status, &detail);
        let detail = match self.journal.submit_unsynced(&record) {
            Ok(()) => detail,
            Err(e) => format!("{detail} (and the journal could not be written: {e})"),
        };
        self.sink.emit(Event::Finished {
            job: job.id.to_string(),
            target: action.target.clone(),
            state,
            detail: detail.clone(),
        });
        ActionResult {
            id: action.id.clone(),
            job: job.id.clone(),
            target: action.target.clone(),
            state,
            attempts,
            http_status,
            detail,
            defined_at: job.defined_at.clone(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    async fn skip(&self, job: &JobInfo, action: &PlanAction, why: String) -> ActionResult {
        self.finish(
            job,
            action,
            State::Skipped,
            0,
            None,
            why,
            tokio::time::Instant::now(),
        )
        .await
    }

    /// Runs the plan; the results come back in plan order, once the journal holds them all (or
    /// with the reason it may not).
    ///
    /// # Errors
    /// When the run's intents cannot be journaled: then nothing is sent.
    pub async fn run(self: Arc<Self>, plan: Plan) -> Result<Ran, String> {
        // Each job's actions move into its task and each action into its own, so what has been
        // sent is freed while the rest runs.
        let mut jobs: Vec<Option<PlanJob>> = plan.jobs.into_iter().map(Some).collect();
        let ids: Vec<String> = jobs.iter().flatten().map(|j| j.id.clone()).collect();
        self.sink.emit(Event::Started {
            jobs: jobs
                .iter()
                .flatten()
                .map(|j| {
                    let runnable = j
                        .actions
                        .iter()
                        .filter(|a| a.decision == Decision::Run)
                        .count();
                    (j.id.clone(), runnable)
                })
                .collect(),
        });
        // Intent first, in one sync: whatever is sent later, a crash leaves every action of
        // this run at least "planned", which the next apply treats as possibly sent.
        let me: &Self = &self;
        let intents = jobs.iter().flatten().flat_map(move |job| {
            let info = me.job_info(job);
            job.actions
                .iter()
                .filter(|a| a.decision == Decision::Run)
                .map(move |a| me.record_of(&info, a, State::Planned, 0, None, ""))
        });
        self.journal
            .append_all(intents)
            .await
            .map_err(|e| e.to_string())?;
        let present: HashSet<String> = ids.iter().cloned().collect();
        let needs_of: Vec<Vec<String>> = jobs
            .iter()
            .flatten()
            .map(|j| {
                j.needs
                    .iter()
                    .filter(|n| present.contains(*n))
                    .cloned()
                    .collect()
            })
            .collect();
        let mut failed_jobs: HashMap<String, bool> = HashMap::new();
        let mut results: Vec<Option<Vec<ActionResult>>> = vec![None; jobs.len()];
        let mut started = vec![false; jobs.len()];
        let mut running = JoinSet::new();
        loop {
            for i in 0..jobs.len() {
                if started[i] {
                    continue;
                }
                // Needs outside the plan (`--target`) were chosen away by the user.
                let needs = &needs_of[i];
                if !needs.iter().all(|n| failed_jobs.contains_key(n.as_str())) {
                    continue;
                }
                started[i] = true;
                let job = jobs[i].take().expect("a job starts once");
                let info = self.job_info(&job);
                if let Some(bad) = needs.iter().find(|n| failed_jobs[n.as_str()]) {
                    let mut out = Vec::with_capacity(job.actions.len());
                    for a in &job.actions {
                        out.push(
                            self.skip(
                                &info,
                                a,
                                format!("not run: job `{bad}`, which this job needs, did not fully succeed"),
                            )
                            .await,
                        );
                    }
                    failed_jobs.insert(job.id.clone(), true);
                    results[i] = Some(out);
                    continue;
                }
                let engine = self.clone();
                running.spawn(async move { (i, engine.run_job(info, job).await) });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (i, out) = match done {
                Ok(x) => x,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("a job task was cancelled: {e}"),
            };
            let bad = out.iter().any(|r| {
                r.is_failure() || (r.state == State::Skipped && r.detail.starts_with("not sent"))
            });
            failed_jobs.insert(ids[i].clone(), bad);
            results[i] = Some(out);
        }
        // Appended to the first job's results rather than copied into a new vector: with one
        // job of 100,000 actions nothing is copied at all.
        let mut jobs_results = results.into_iter().flatten();
        let mut results = jobs_results.next().unwrap_or_default();
        for more in jobs_results {
            results.extend(more);
        }
        // What was sent was sent: a journal that fails now does not take the results away.
        let journal_error = self.journal.barrier().await.err().map(|e| e.to_string());
        Ok(Ran {
            results,
            journal_error,
        })
    }

    fn job_info(&self, job: &PlanJob) -> JobInfo {
        JobInfo {
            id: job.id.as_str().into(),
            provider: job.provider.clone(),
            kind: serde_json::from_value(serde_json::Value::String(job.action.clone()))
                .unwrap_or(ActionKind::Http),
            defined_at: job.defined_at.as_str().into(),
            policy: self.policies.get(&job.id).cloned().unwrap_or_default(),
        }
    }

    async fn run_job(self: Arc<Self>, info: JobInfo, job: PlanJob) -> Vec<ActionResult> {
        self.sink.emit(Event::JobStarted {
            job: job.id.clone(),
        });
        let mut out: Vec<Option<ActionResult>> = vec![None; job.actions.len()];
        // In place (`map` over the same layout): an action is taken out when it is sent.
        let mut slots: Vec<Option<Box<PlanAction>>> = job.actions.into_iter().map(Some).collect();
        let mut runnable = Vec::new();
        for k in 0..slots.len() {
            let Some(a) = slots[k].as_ref() else { continue };
            let why = match &a.decision {
                Decision::Run => {
                    runnable.push(k);
                    continue;
                }
                Decision::Skip(why) => format!("unchanged: {why}"),
                Decision::Blocked(why) => format!("blocked: {why}"),
            };
            let a = slots[k].take().expect("checked above");
            out[k] = Some(self.skip(&info, &a, why).await);
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
        for (w, end) in waves.iter().copied().enumerate() {
            let wave = &runnable[from..end];
            from = end;
            failures += self
                .clone()
                .run_wave(&info, &mut slots, &mut out, wave)
                .await;
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
                for &k in &runnable[from..] {
                    let action = slots[k].take().expect("each action ends once");
                    out[k] = Some(self.skip(&info, &action, why.clone()).await);
                }
                break;
            }
        }
        self.sink.emit(Event::JobFinished {
            job: job.id.clone(),
        });
        // Every slot is filled by now; `map` lets the vector be reused in place.
        out.into_iter()
            .map(|r| r.expect("every action of a job ends with a result"))
            .collect()
    }

    /// The actions of one wave, concurrently; works a provider takes in one request go in
    /// batches. No more tasks exist at a time than the provider may have requests in flight, so
    /// memory follows the concurrency, not the size of the wave. Each result goes to its
    /// action's place in `out`; returns how many failed.
    async fn run_wave(
        self: Arc<Self>,
        info: &JobInfo,
        slots: &mut [Option<Box<PlanAction>>],
        out: &mut [Option<ActionResult>],
        wave: &[usize],
    ) -> u64 {
        let client = &self.clients[&info.provider];
        let batching = wave
            .first()
            .and_then(|&k| slots[k].as_ref())
            .and_then(|a| Work::from_params(info.kind, a.params_value()).ok())
            .and_then(|w| client.batching(&w));
        let mut failures = 0;
        // Batches are formed before sending, as they group works across the wave; a single
        // action's unit is made when it is sent, not for the whole wave up front.
        let mut units: Box<dyn Iterator<Item = Vec<usize>> + Send + '_> = match &batching {
            Some(b) => {
                let keys: HashMap<usize, String> = wave
                    .iter()
                    .filter_map(|&k| {
                        let a = slots[k].as_ref()?;
                        let w = Work::from_params(info.kind, a.params_value()).ok()?;
                        Some((k, client.batching(&w)?.exclusive))
                    })
                    .collect();
                Box::new(
                    waves::batches(wave, b.size, |k| keys.get(&k).map_or("", String::as_str))
                        .into_iter(),
                )
            }
            None => Box::new(wave.iter().map(|&k| vec![k])),
        };
        let width = self
            .limiters
            .get(&info.provider)
            .map_or(1, Limiter::concurrency)
            .max(1);
        let mut tasks = JoinSet::new();
        loop {
            while tasks.len() < width {
                let Some(unit) = units.next() else { break };
                // Taken out only now: an action's memory lives as long as its task.
                let mut members = Vec::with_capacity(unit.len());
                for k in unit {
                    let action = slots[k].take().expect("each action is sent once");
                    match Work::from_params(info.kind, action.params_value()) {
                        Ok(work) => members.push(attempt::Member { k, action, work }),
                        Err(e) => {
                            let detail =
                                format!("the plan's parameters do not fit `{}`: {e}", info.kind);
                            let now = tokio::time::Instant::now();
                            let result = self
                                .finish(info, &action, State::Failed, 0, None, detail, now)
                                .await;
                            failures += 1;
                            out[k] = Some(result);
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
                        out[k] = Some(result);
                    }
                }
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("an action task was cancelled: {e}"),
            }
        }
        failures
    }
}
