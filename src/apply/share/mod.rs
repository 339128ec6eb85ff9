//! The cooperative apply's seam (issue 18, step 2; docs/state.md): several runners given one
//! saved plan share its actions through [`Share`] (implemented on the state side by
//! `state::postgres::share`). A wave here claims chunks of its actions, sends only what it
//! claimed, and ends when every action of the wave is final in the shared state, whoever sent
//! it; the results of actions other runners did are read from the shared journal, so every
//! runner counts the same failures against a rollout's budget and prints the same summary.
//! [`wave`] is that loop; [`feed`] does its claims and finishes in the background, so that no
//! free slot waits on the database.

mod feed;
mod wave;

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::ActionResult;
use super::context::{Engine, JobInfo};
use crate::plan::{Decision, PlanAction};
use crate::providers::Idempotency;
use crate::state::{Record, State, StateError};

pub(super) use wave::run_wave;

/// What a call to the shared state answers, later.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// An action this runner now holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub action: String,
    /// Its place among the job's runnable actions (the wave ranges' unit).
    pub index: usize,
    /// The runner whose expired lease this claim took over.
    pub taken_over_from: Option<String>,
    /// A request for it had been sent under an earlier lease: observe before sending.
    pub sent_before: bool,
    /// How long before the claim it was last marked sent (the shared state's clock).
    pub marked_ago: Option<Duration>,
}

/// The coordination a cooperative run needs from the shared state. A wave is named by its job
/// and the range of the job's runnable actions it covers (the saved plan's order, the same in
/// every runner).
pub trait Share: Send + Sync {
    /// Up to `max` open actions of the wave, leased to this runner (renewed while it lives).
    fn claim(&self, job: &str, wave: Range<usize>, max: usize) -> Answer<'_, Vec<Claimed>>;
    /// Before their request leaves: marks those still this runner's and returns the others
    /// (their leases were lost: not to be sent by this runner).
    fn mark_sent(&self, actions: Vec<String>) -> Answer<'_, Vec<String>>;
    /// Their final states are in the journal: no runner works on them again.
    fn finish(&self, actions: Vec<String>) -> Answer<'_, ()>;
    /// Given back unsent (an interrupted runner), for another runner to claim.
    fn release(&self, actions: Vec<String>) -> Answer<'_, ()>;
    /// How many actions of the wave are not final yet.
    fn open(&self, job: &str, wave: Range<usize>) -> Answer<'_, u64>;
    /// The final journal record of each of `actions` in this run, whoever wrote it.
    fn finals(&self, actions: Vec<String>) -> Answer<'_, HashMap<String, Record>>;
    /// When a request for `action` was last sent in this run (RFC 3339), or else when the run
    /// began: a change the provider shows since then is this run's.
    fn sent_at(&self, action: String) -> Answer<'_, String>;
    /// How long to wait before looking again while other runners hold the rest of a wave.
    fn poll(&self) -> Duration;
    /// How long a claim or a `sent` mark holds an action for this runner without renewal.
    fn lease(&self) -> Duration;
}

/// The engine's view of a cooperative run.
pub struct Cooperation {
    pub share: Arc<dyn Share>,
    /// Actions the saved plan runs but this runner's own plan would not (done, converged or
    /// blocked by now): claimed ones end with that reason instead of a request.
    pub held_back: HashMap<String, Decision>,
    /// Per provider: how long after its last `sent` mark a request may still land (its auth
    /// exchange and its own, each within the provider's timeout). An action taken over from
    /// a runner that had sent it is observed only once that has passed since the lease could
    /// have lapsed; observed sooner, a request still on its way reads as "did not happen",
    /// and the action would be sent twice.
    pub in_flight: HashMap<String, Duration>,
}

/// Whether a request must be recorded in the shared state before it leaves: resending it
/// blindly after a crash could do harm.
fn must_mark(idempotency: Idempotency) -> bool {
    idempotency == Idempotency::NonIdempotent
}

/// Why a unit's request may not leave as it is.
pub(super) enum Refused {
    /// These of its actions (by their place in `actions`) went to another runner, whose
    /// record stands: they end skipped here, and the rest may be sent without them.
    Lost(Vec<usize>),
    /// The shared state cannot record the send: nothing is sent.
    Failed(String),
}

/// Marks the unit's actions sent under this runner's leases, or says why not.
pub(super) async fn before_send(engine: &Engine, actions: &[&PlanAction]) -> Result<(), Refused> {
    let Some(coop) = engine.share.as_ref() else {
        return Ok(());
    };
    if !actions.iter().any(|a| must_mark(a.idempotency)) {
        return Ok(());
    }
    let ids = actions.iter().map(|a| a.id.to_string()).collect();
    match coop.share.mark_sent(ids).await {
        Ok(lost) if lost.is_empty() => Ok(()),
        Ok(lost) => Err(Refused::Lost(
            (0..actions.len())
                .filter(|&i| lost.contains(&actions[i].id.to_string()))
                .collect(),
        )),
        Err(e) => Err(Refused::Failed(format!(
            "not sent: the shared state cannot record it ({e})"
        ))),
    }
}

/// A result for an action this runner leaves to others, not journaled: the journal is shared,
/// and a record here would stand for another runner's work.
pub(super) fn unsent(info: &JobInfo, action: &PlanAction, state: State, why: &str) -> ActionResult {
    ActionResult {
        id: action.id,
        job: info.id.clone(),
        target: action.target.clone(),
        state,
        attempts: 0,
        http_status: None,
        detail: why.to_owned(),
        defined_at: info.defined_at.clone(),
        duration_ms: 0,
    }
}
