//! What every task of a run shares: the clients, limits, journal, event sink and the interrupt
//! flag, and the steps every action ends with (journal the final state, report it, build the
//! result). The scheduler (`engine`) and the attempts (`attempt`) both use it; neither uses the
//! other's internals.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::{Semaphore, watch};

use super::ActionResult;
use super::events::{Event, Sink};
use super::retry::Policy;
use crate::limits::Limiter;
use crate::manifest::model::{ActionKind, Rollout};
use crate::plan::PlanAction;
use crate::providers::{Client, redact};
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
    pub limiters: Arc<IndexMap<String, Arc<Limiter>>>,
    /// `--parallelism`: requests in flight over all providers.
    pub global: Arc<Semaphore>,
    pub journal: Journal,
    pub run_id: String,
    pub sink: Arc<dyn Sink>,
    /// Turns true at the first interrupt: nothing new is sent after it.
    pub stop: watch::Receiver<bool>,
    pub policies: HashMap<String, JobPolicy>,
    /// A cooperative run (`share`): the actions are shared with other runners.
    pub share: Option<Arc<super::share::Cooperation>>,
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
    pub journal_error: Option<crate::state::StateError>,
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

    pub(super) fn record_of(
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
            // Without the formatting machinery: three records an action.
            action: action.id.text(),
            job: String::from(&*job.id),
            target: action.target.clone(),
            state,
            attempt,
            http_status,
            // Every record is built here: the one place a value redrive sent as a secret is
            // masked before it reaches the journal (and `status`, which reads it).
            detail: redact::mask(detail).into_owned(),
        }
    }

    /// Queues a state change for the journal; the ticket says when it is on disk.
    pub(super) fn submit(
        &self,
        job: &JobInfo,
        action: &PlanAction,
        state: State,
        attempt: u32,
    ) -> Result<crate::state::Ticket, crate::state::StateError> {
        self.journal
            .submit(&self.record_of(job, action, state, attempt, None, ""))
    }

    /// Queues a state change that nothing waits for: durable with the next sync.
    pub(super) fn submit_unsynced(
        &self,
        job: &JobInfo,
        action: &PlanAction,
        state: State,
        attempt: u32,
    ) -> Result<(), crate::state::StateError> {
        self.journal
            .submit_unsynced(&self.record_of(job, action, state, attempt, None, ""))
    }

    /// Journals the final state, reports it and builds the result.
    // Every argument is a field of the result; a struct for them would only be unpacked here.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish(
        &self,
        job: &JobInfo,
        action: &PlanAction,
        state: State,
        attempts: u32,
        http_status: Option<u16>,
        detail: String,
        started: tokio::time::Instant,
    ) -> ActionResult {
        // Results, events and reports are built from this detail: masked like the record.
        let detail = redact::mask_owned(detail);
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
            id: action.id,
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

    pub(super) fn skip(&self, job: &JobInfo, action: &PlanAction, why: String) -> ActionResult {
        self.finish(
            job,
            action,
            State::Skipped,
            0,
            None,
            why,
            tokio::time::Instant::now(),
        )
    }
}
