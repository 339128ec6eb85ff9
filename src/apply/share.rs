//! The cooperative apply's seam (issue 18, step 2; docs/state.md): several runners given one
//! saved plan share its actions through [`Share`] (implemented on the state side by
//! `state::postgres::share`). A wave here claims chunks of its actions, sends only what it
//! claimed, and ends when every action of the wave is final in the shared state, whoever sent
//! it; the results of actions other runners did are read from the shared journal, so every
//! runner counts the same failures against a rollout's budget and prints the same summary.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::classify::Next;
use super::context::{Engine, JobInfo};
use super::events::Event;
use super::{ActionResult, attempt, poll, reconcile, waves};
use crate::manifest::model::Work;
use crate::plan::{Decision, PlanAction};
use crate::providers::Idempotency;
use crate::state::{Record, State, StateError};

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
}

/// The coordination a cooperative run needs from the shared state. A wave is named by its job
/// and the range of the job's runnable actions it covers (the saved plan's order, the same in
/// every runner).
pub trait Share: Send + Sync {
    /// Up to `max` open actions of the wave, leased to this runner (renewed while it lives).
    fn claim(&self, job: &str, wave: Range<usize>, max: usize) -> Answer<'_, Vec<Claimed>>;
    /// Before their request leaves; `false`: a lease was lost, send nothing.
    fn mark_sent(&self, actions: Vec<String>) -> Answer<'_, bool>;
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
}

/// The engine's view of a cooperative run.
pub struct Cooperation {
    pub share: Arc<dyn Share>,
    /// Actions the saved plan runs but this runner's own plan would not (done, converged or
    /// blocked by now): claimed ones end with that reason instead of a request.
    pub held_back: HashMap<String, Decision>,
}

/// Whether a request must be recorded in the shared state before it leaves: resending it
/// blindly after a crash could do harm.
fn must_mark(idempotency: Idempotency) -> bool {
    idempotency == Idempotency::NonIdempotent
}

/// Marks the unit's actions sent under this runner's leases; how they end instead, if not sent:
/// skipped when another runner has them now (its record stands), failed when it cannot be told.
pub(super) async fn before_send(
    engine: &Engine,
    actions: &[&PlanAction],
) -> Option<(State, String)> {
    let coop = engine.share.as_ref()?;
    if !actions.iter().any(|a| must_mark(a.idempotency)) {
        return None;
    }
    let ids = actions.iter().map(|a| a.id.to_string()).collect();
    match coop.share.mark_sent(ids).await {
        Ok(true) => None,
        Ok(false) => Some((
            State::Skipped,
            "not sent by this runner: its lease went to another runner".to_owned(),
        )),
        Err(e) => Some((
            State::Failed,
            format!("not sent: the shared state cannot record it ({e})"),
        )),
    }
}

/// A claimed action, ready to be started.
enum Start {
    Units(Vec<Vec<usize>>),
    TakeOver(usize, Claimed),
}

/// One wave of a job in a cooperative run; fills `out` for every action of the wave (its own
/// results and the other runners'), returns how many failed over all runners.
// The same pieces as `Engine::run_wave`, plus the range that names the wave to other runners.
#[allow(clippy::too_many_lines)]
pub(super) async fn run_wave(
    engine: &Arc<Engine>,
    coop: &Cooperation,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut [Option<ActionResult>],
    wave: &[usize],
    range: Range<usize>,
) -> u64 {
    let share = &coop.share;
    let client = &engine.clients[&info.provider];
    let index: HashMap<String, usize> = wave
        .iter()
        .filter_map(|&k| slots[k].as_ref().map(|a| (a.id.to_string(), k)))
        .collect();
    let batch = wave
        .first()
        .and_then(|&k| slots[k].as_ref())
        .and_then(|a| Work::from_params(info.kind, a.params_value()).ok())
        .and_then(|w| client.batching(&w))
        .map_or(1, |b| b.size.max(1));
    let width = engine
        .limiters
        .get(&info.provider)
        .map_or(1, |l| l.concurrency())
        .max(1);
    let poll_every = share.poll();
    // Claimed ahead, up to twice what can be in flight: one claim feeds many sends.
    let hold = 2 * width * batch;
    let mut queue: VecDeque<Vec<usize>> = VecDeque::new();
    let mut members: HashMap<usize, attempt::Member> = HashMap::new();
    let mut tasks = JoinSet::new();
    let (mut finished, mut released) = (Vec::new(), Vec::new());
    let mut flushed = Instant::now();
    let mut claim_after = Instant::now();
    let mut cursor = range.start;
    // Bounded waiting for other runners: as long as one action may take, and a lease more.
    let patience = info.policy.retry.deadline + info.policy.wait.timeout + poll_every * 50;
    let (mut last_open, mut moved) = (u64::MAX, Instant::now());
    loop {
        let held = members.len();
        if !engine.stopping() && held < hold / 2 + 1 && Instant::now() >= claim_after {
            // From past the last claim: the rows behind it are leased or done, and scanning
            // them again on every claim would cost more as the run goes on. Only when that
            // finds too few is the whole wave swept (expired leases, released actions).
            let want = hold - held;
            let mut claims = share
                .claim(&info.id, cursor.max(range.start)..range.end, want)
                .await
                .unwrap_or_default();
            if claims.len() < want {
                let more = share
                    .claim(&info.id, range.clone(), want - claims.len())
                    .await
                    .unwrap_or_default();
                if claims.len() + more.len() < want {
                    claim_after = Instant::now() + poll_every;
                }
                claims.extend(more);
            }
            if let Some(last) = claims.iter().map(|c| c.index).max() {
                cursor = cursor.max(last + 1);
            }
            let (start, ended) = sort_claims(engine, coop, info, slots, out, &index, claims);
            // Held back: ended already, their leases end with the rest.
            finished.extend(ended);
            for s in start {
                match s {
                    Start::Units(units) => queue.extend(units),
                    Start::TakeOver(k, claimed) => {
                        let Some(m) = take_member(engine, info, slots, out, k) else {
                            continue;
                        };
                        let (engine, info) = (engine.clone(), info.clone());
                        let share = share.clone();
                        tasks.spawn(async move {
                            take_over(&engine, &info, share.as_ref(), m, claimed).await
                        });
                    }
                }
            }
            for &k in queue.iter().flatten() {
                if let Some(m) = take_member(engine, info, slots, out, k) {
                    members.insert(k, m);
                }
            }
        }
        while tasks.len() < width {
            let Some(unit) = queue.pop_front() else { break };
            let unit: Vec<attempt::Member> =
                unit.iter().filter_map(|k| members.remove(k)).collect();
            if unit.is_empty() {
                continue;
            }
            let (engine, info) = (engine.clone(), info.clone());
            tasks.spawn(async move { attempt::run(&engine, &info, unit).await });
        }
        if tasks.is_empty() && queue.is_empty() {
            flush(engine, share.as_ref(), &mut finished, &mut released).await;
            if engine.stopping() {
                break;
            }
            match share.open(&info.id, range.clone()).await {
                Ok(0) => break,
                Ok(n) if n != last_open => (last_open, moved) = (n, Instant::now()),
                _ => {}
            }
            if moved.elapsed() > patience || !engine.nap(poll_every).await {
                break;
            }
            // Other runners' leases may have expired meanwhile: look for them now.
            claim_after = Instant::now();
            continue;
        }
        tokio::select! {
            done = tasks.join_next(), if !tasks.is_empty() => match done {
                Some(Ok(results)) => {
                    for (k, result) in results {
                        // An interrupted runner gives back what it did not send.
                        if engine.stopping() && result.state == State::Skipped && result.attempts == 0 {
                            released.push(result.id.to_string());
                        } else {
                            finished.push(result.id.to_string());
                        }
                        out[k] = Some(result);
                    }
                }
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(Err(e)) => panic!("an action task was cancelled: {e}"),
                None => {}
            },
            () = tokio::time::sleep(poll_every) => {}
        }
        if finished.len() >= 256 || flushed.elapsed() >= poll_every {
            flush(engine, share.as_ref(), &mut finished, &mut released).await;
            flushed = Instant::now();
        }
    }
    // Claimed but never started (interrupted): back to the pool.
    released.extend(members.into_values().map(|m| m.action.id.to_string()));
    flush(engine, share.as_ref(), &mut finished, &mut released).await;
    others(engine, share.as_ref(), info, slots, out, wave).await;
    let failed = wave
        .iter()
        .filter(|&&k| out[k].as_ref().is_some_and(ActionResult::is_failure))
        .count();
    failed as u64
}

/// Claims in order: the ones to send as units (batched as the provider takes them), the ones a
/// dead runner had sent to observe first; held-back ones end here (their ids come back).
fn sort_claims(
    engine: &Engine,
    coop: &Cooperation,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut [Option<ActionResult>],
    index: &HashMap<String, usize>,
    claims: Vec<Claimed>,
) -> (Vec<Start>, Vec<String>) {
    let mut plain = Vec::new();
    let mut starts = Vec::new();
    let mut ended = Vec::new();
    for c in claims {
        let Some(&k) = index.get(&c.action) else {
            continue;
        };
        let Some(action) = slots[k].as_ref() else {
            continue;
        };
        if let Some(decision) = coop.held_back.get(&c.action) {
            let why = match decision {
                Decision::Skip(why) => format!("unchanged: {why}"),
                Decision::Blocked(why) => format!("blocked: {why}"),
                Decision::Run => continue,
            };
            let action = slots[k].take().expect("checked above");
            out[k] = Some(engine.skip(info, &action, why));
            ended.push(c.action);
            continue;
        }
        if c.sent_before && must_mark(action.idempotency) {
            starts.push(Start::TakeOver(k, c));
        } else {
            plain.push(k);
        }
    }
    if plain.is_empty() {
        return (starts, ended);
    }
    let client = &engine.clients[&info.provider];
    let keys: HashMap<usize, String> = plain
        .iter()
        .filter_map(|&k| {
            let a = slots[k].as_ref()?;
            let w = Work::from_params(info.kind, a.params_value()).ok()?;
            Some((k, client.batching(&w)?.exclusive))
        })
        .collect();
    let units = if keys.is_empty() {
        plain.iter().map(|&k| vec![k]).collect()
    } else {
        let size = plain
            .first()
            .and_then(|&k| slots[k].as_ref())
            .and_then(|a| Work::from_params(info.kind, a.params_value()).ok())
            .and_then(|w| client.batching(&w))
            .map_or(1, |b| b.size);
        waves::batches(&plain, size, |k| keys.get(&k).map_or("", String::as_str))
    };
    starts.push(Start::Units(units));
    (starts, ended)
}

/// The action at `k` out of its slot, with its work; one whose parameters do not make a work
/// ends failed here.
fn take_member(
    engine: &Engine,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut [Option<ActionResult>],
    k: usize,
) -> Option<attempt::Member> {
    let action = slots[k].take()?;
    match Work::from_params(info.kind, action.params_value()) {
        Ok(work) => Some(attempt::Member { k, action, work }),
        Err(e) => {
            let now = Instant::now();
            let detail = format!("in the plan, {e}");
            out[k] = Some(engine.finish(info, &action, State::Failed, 0, None, detail, now));
            None
        }
    }
}

/// An action a runner that died had sent: observed first, sent again only when the provider
/// shows the change did not happen, `unknown` when that cannot be told.
async fn take_over(
    engine: &Engine,
    info: &JobInfo,
    share: &dyn Share,
    member: attempt::Member,
    claimed: Claimed,
) -> Vec<(usize, ActionResult)> {
    let started = Instant::now();
    let sent_at = share
        .sent_at(member.action.id.to_string())
        .await
        .ok()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .unwrap_or_else(jiff::Timestamp::now);
    let from = claimed
        .taken_over_from
        .as_deref()
        .unwrap_or("another runner");
    let reason = format!("taken over from {from}, whose lease expired after it had sent this");
    let client = &engine.clients[&info.provider];
    let next = reconcile::reconcile(client, &member.work, &reason, sent_at).await;
    let (action, k) = (&member.action, member.k);
    let result = match next {
        Next::Retry { .. } => return attempt::run(engine, info, vec![member]).await,
        Next::Final {
            state,
            status,
            detail,
        } => engine.finish(info, action, state, 1, status, detail, started),
        Next::Poll { task, status } => {
            let (state, detail) = poll::poll(engine, info, action, client, &task).await;
            let status = (status != 0).then_some(status);
            engine.finish(info, action, state, 1, status, detail, started)
        }
        Next::Reconcile { status, reason } => {
            engine.finish(info, action, State::Unknown, 1, status, reason, started)
        }
    };
    vec![(k, result)]
}

/// Journal first, then the leases: an action is final in the shared state only once its final
/// record is durable, so a runner that dies in between leaves it to be taken over, not lost.
async fn flush(
    engine: &Engine,
    share: &dyn Share,
    finished: &mut Vec<String>,
    released: &mut Vec<String>,
) {
    if finished.is_empty() && released.is_empty() {
        return;
    }
    if engine.journal.barrier().await.is_err() {
        // The leases run out instead, and whoever takes them over reconciles them.
        return;
    }
    if !finished.is_empty() {
        let _ = share.finish(std::mem::take(finished)).await;
    }
    if !released.is_empty() {
        let _ = share.release(std::mem::take(released)).await;
    }
}

/// The results of the wave's actions this runner did not do, from the shared journal.
async fn others(
    engine: &Engine,
    share: &dyn Share,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut [Option<ActionResult>],
    wave: &[usize],
) {
    let missing: Vec<usize> = wave.iter().copied().filter(|&k| out[k].is_none()).collect();
    if missing.is_empty() {
        return;
    }
    let ids = missing
        .iter()
        .filter_map(|&k| slots[k].as_ref().map(|a| a.id.to_string()))
        .collect();
    let finals = share.finals(ids).await.unwrap_or_default();
    for k in missing {
        let Some(action) = slots[k].take() else {
            continue;
        };
        let result = match finals.get(&action.id.to_string()) {
            Some(r) => ActionResult {
                id: action.id,
                job: info.id.clone(),
                target: r.target.clone(),
                state: r.state,
                attempts: r.attempt,
                http_status: r.http_status,
                detail: r.detail.clone(),
                defined_at: info.defined_at.clone(),
                duration_ms: 0,
            },
            None => unsent(
                info,
                &action,
                "not final in the shared state: another runner still holds it, or it was interrupted; apply the plan again to finish it",
            ),
        };
        engine.sink.emit(Event::Finished {
            job: info.id.to_string(),
            target: action.target.clone(),
            state: result.state,
            detail: result.detail.clone(),
        });
        out[k] = Some(result);
    }
}

/// A result for an action this runner leaves to others, not journaled: the journal is shared,
/// and a record here would stand for another runner's work.
pub(super) fn unsent(info: &JobInfo, action: &PlanAction, why: &str) -> ActionResult {
    ActionResult {
        id: action.id,
        job: info.id.clone(),
        target: action.target.clone(),
        state: State::Unknown,
        attempts: 0,
        http_status: None,
        detail: why.to_owned(),
        defined_at: info.defined_at.clone(),
        duration_ms: 0,
    }
}
