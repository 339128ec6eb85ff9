//! One wave of a job in a cooperative run: start what this runner claimed (the [`Claimer`]
//! feeds it in the background), hand what ended to the [`Finisher`], and end when no action of
//! the wave is open in the shared state; then read the other runners' results.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::feed::{Claimer, Finisher};
use super::{Claimed, Cooperation, Share, must_mark, unsent};
use crate::apply::classify::Next;
use crate::apply::context::{Engine, JobInfo};
use crate::apply::ended::Ended;
use crate::apply::events::Event;
use crate::apply::{ActionResult, attempt, poll, reconcile, waves};
use crate::manifest::model::Work;
use crate::plan::{Decision, PlanAction};
use crate::state::State;

/// A claimed action, ready to be started.
enum Start {
    Units(Vec<Vec<usize>>),
    TakeOver(usize, Claimed),
}

/// One wave of a job in a cooperative run; fills `out` for every action of the wave (its own
/// results and the other runners'), returns how many failed over all runners.
pub(in crate::apply) async fn run_wave(
    engine: &Arc<Engine>,
    coop: &Cooperation,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut Ended,
    wave: &[usize],
    range: Range<usize>,
) -> u64 {
    let share = &coop.share;
    let client = &engine.clients[&info.provider];
    let index: HashMap<String, usize> = wave
        .iter()
        .filter_map(|&k| slots[k].as_ref().map(|a| (a.id.to_string(), k)))
        .collect();
    let batch = waves::batching_of(client, info.kind, slots, wave).map_or(1, |b| b.size.max(1));
    let width = engine
        .limiters
        .get(&info.provider)
        .map_or(1, |l| l.concurrency())
        .max(1);
    let poll_every = share.poll();
    // An idle runner looks this often whether the others are done: the last of them to end
    // is what the whole run waits for.
    let look = poll_every.min(Duration::from_millis(50));
    // Claimed ahead: four times what can be in flight, topped up at half, so a slot that frees
    // up finds work even while a claim (a few ms, more under load) is under way. Twice for a
    // non-idempotent provider: an action whose lease lapses while it waits here is not sent
    // by this runner at all, and the fewer wait, the fewer change hands.
    let marked = wave
        .first()
        .and_then(|&k| slots[k].as_ref())
        .is_some_and(|a| must_mark(a.idempotency));
    let ahead = if marked { 2 } else { 4 } * width * batch;
    let mut claimer = Claimer::start(engine, share, &info.id, range.clone(), ahead);
    let finisher = Finisher::start(engine, share);
    let mut queue: std::collections::VecDeque<Vec<usize>> = std::collections::VecDeque::new();
    let mut members: HashMap<usize, attempt::Member> = HashMap::new();
    let mut tasks = JoinSet::new();
    // Bounded waiting for other runners: as long as one action may take, and a lease more.
    let patience = info.policy.retry.deadline + info.policy.wait.timeout + poll_every * 50;
    let (mut last_open, mut moved) = (u64::MAX, Instant::now());
    let mut claiming = true;
    // Not sent here because another runner has them now: that runner's result is theirs.
    let mut lost = Vec::new();
    loop {
        while let Some(claims) = claimer.ready() {
            let n = claims.len();
            let started = absorb(
                engine,
                coop,
                info,
                slots,
                out,
                &index,
                claims,
                &mut queue,
                &mut members,
                &mut tasks,
                &finisher,
            );
            claimer.took(n - started);
        }
        while tasks.len() < width {
            let Some(unit) = queue.pop_front() else { break };
            let unit: Vec<attempt::Member> =
                unit.iter().filter_map(|k| members.remove(k)).collect();
            if unit.is_empty() {
                continue;
            }
            claimer.took(unit.len());
            let (engine, info) = (engine.clone(), info.clone());
            tasks.spawn(async move { attempt::run(&engine, &info, unit).await });
        }
        if tasks.is_empty() && queue.is_empty() {
            // Done here: the shared state must say so before `open` can.
            finisher.drain().await;
            if engine.stopping() {
                break;
            }
            match share.open(&info.id, range.clone()).await {
                Ok(0) => break,
                Ok(n) if n != last_open => (last_open, moved) = (n, Instant::now()),
                _ => {}
            }
            if moved.elapsed() > patience {
                break;
            }
            tokio::select! {
                claims = claimer.next(), if claiming => match claims {
                    Some(claims) => {
                        let n = claims.len();
                        let started = absorb(engine, coop, info, slots, out, &index, claims, &mut queue, &mut members, &mut tasks, &finisher);
                        claimer.took(n - started);
                    }
                    None => claiming = false,
                },
                awake = engine.nap(look) => if !awake { break },
            }
            continue;
        }
        tokio::select! {
            done = tasks.join_next(), if !tasks.is_empty() => match done {
                Some(Ok(results)) => {
                    let (mut finished, mut released) = (Vec::new(), Vec::new());
                    for (k, result) in results {
                        let unsent = result.state == State::Skipped && result.attempts == 0;
                        // An interrupted runner gives back what it did not send.
                        if engine.stopping() && unsent {
                            released.push(result.id.to_string());
                        } else {
                            finished.push(result.id.to_string());
                        }
                        if unsent && !engine.stopping() {
                            lost.push(k);
                        }
                        out.put(k, result);
                    }
                    finisher.finished(finished);
                    finisher.released(released);
                }
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(Err(e)) => panic!("an action task was cancelled: {e}"),
                None => {}
            },
            // Free slots and nothing queued: the next claim is what they wait for.
            claims = claimer.next(), if claiming && queue.is_empty() && tasks.len() < width => match claims {
                Some(claims) => {
                    let n = claims.len();
                    let started = absorb(engine, coop, info, slots, out, &index, claims, &mut queue, &mut members, &mut tasks, &finisher);
                    claimer.took(n - started);
                }
                None => claiming = false,
            },
        }
    }
    // Claimed but never started (interrupted): back to the pool.
    let mut unstarted = claimer.stop().await;
    unstarted.extend(members.into_values().map(|m| m.action.id.to_string()));
    finisher.released(unstarted);
    finisher.stop().await;
    others(engine, share.as_ref(), info, slots, out, wave).await;
    winners(share.as_ref(), out, &lost).await;
    let failed = wave
        .iter()
        .filter(|&&k| out.get(k).is_some_and(ActionResult::is_failure))
        .count();
    failed as u64
}

/// New claims into the queue (as units) and the members; take-overs start at once, held-back
/// ones end here. Returns how many of `claims` became queued members (the rest are no longer
/// waiting to start).
#[expect(
    clippy::too_many_arguments,
    reason = "the wave loop's own state, borrowed piecemeal because `slots` and `out` are too"
)]
fn absorb(
    engine: &Arc<Engine>,
    coop: &Cooperation,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut Ended,
    index: &HashMap<String, usize>,
    claims: Vec<Claimed>,
    queue: &mut std::collections::VecDeque<Vec<usize>>,
    members: &mut HashMap<usize, attempt::Member>,
    tasks: &mut JoinSet<Vec<(usize, ActionResult)>>,
    finisher: &Finisher,
) -> usize {
    let (start, ended) = sort_claims(engine, coop, info, slots, out, index, claims);
    // Held back: ended already, their leases end with the rest.
    finisher.finished(ended);
    let mut queued = 0;
    for s in start {
        match s {
            Start::Units(units) => {
                let mut failed = Vec::new();
                for &k in units.iter().flatten() {
                    let id = slots[k].as_ref().map(|a| a.id.to_string());
                    match take_member(engine, info, slots, out, k) {
                        Some(m) => {
                            members.insert(k, m);
                            queued += 1;
                        }
                        // Ended failed (its parameters make no work): final, so done too.
                        None => failed.extend(id),
                    }
                }
                finisher.finished(failed);
                queue.extend(units);
            }
            Start::TakeOver(k, claimed) => {
                let Some(m) = take_member(engine, info, slots, out, k) else {
                    continue;
                };
                let (engine, info) = (engine.clone(), info.clone());
                let share = coop.share.clone();
                // Every provider of the runbook has one, as it has a client.
                let in_flight = coop.in_flight[&info.provider];
                tasks.spawn(async move {
                    take_over(&engine, &info, share.as_ref(), in_flight, m, claimed).await
                });
            }
        }
    }
    queued
}

/// Claims in order: the ones to send as units (batched as the provider takes them), the ones a
/// dead runner had sent to observe first; held-back ones end here (their ids come back).
fn sort_claims(
    engine: &Engine,
    coop: &Cooperation,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut Ended,
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
            // Claimed again by this runner (its lease had lapsed, under load): in flight here,
            // it is finished when it ends; ended here already, its final record stands and the
            // new lease must end too, or it would be renewed, and waited for, for ever.
            if out.has(k) {
                ended.push(c.action);
            }
            continue;
        };
        if let Some(decision) = coop.held_back.get(&c.action) {
            let why = match decision {
                Decision::Skip(why) => format!("unchanged: {why}"),
                Decision::Blocked(why) => format!("blocked: {why}"),
                Decision::Run => continue,
            };
            let action = slots[k].take().expect("checked above");
            out.put(k, engine.skip(info, &action, why));
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
    let units = waves::units(client, info.kind, slots, &plain)
        .unwrap_or_else(|| plain.iter().map(|&k| vec![k]).collect());
    starts.push(Start::Units(units));
    (starts, ended)
}

/// The action at `k` out of its slot, with its work; one whose parameters do not make a work
/// ends failed here.
fn take_member(
    engine: &Engine,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut Ended,
    k: usize,
) -> Option<attempt::Member> {
    let action = slots[k].take()?;
    match Work::from_params(info.kind, action.params.get()) {
        Ok(work) => Some(attempt::Member { k, action, work }),
        Err(e) => {
            let now = Instant::now();
            let detail = format!("in the plan, {e}");
            out.put(
                k,
                engine.finish(info, &action, State::Failed, 0, None, detail, now),
            );
            None
        }
    }
}

/// How long after taking an action over its earlier runner's request may still land. That
/// runner sent it within a third of a lease of its last mark or renewal (`attempt::send`,
/// `Leases::renew`), and the request takes at most `in_flight`; the claim says how long ago
/// that was. One of unknown age renewed the lease, which had to run out before this claim: at
/// least a lease ago. A second more for the schedulers of two busy processes.
fn coop_landing(lease: Duration, in_flight: Duration, marked_ago: Option<Duration>) -> Duration {
    let latest = in_flight + lease / 3 + Duration::from_secs(1);
    latest.saturating_sub(marked_ago.unwrap_or(lease).max(lease))
}

/// An action a runner that died (or stalled past its lease) had sent: observed once its
/// request can no longer be on its way, sent again only when the provider shows the change did
/// not happen, `unknown` when that cannot be told.
async fn take_over(
    engine: &Engine,
    info: &JobInfo,
    share: &dyn Share,
    in_flight: Duration,
    member: attempt::Member,
    claimed: Claimed,
) -> Vec<(usize, ActionResult)> {
    let started = Instant::now();
    let (action, k) = (&member.action, member.k);
    let from = claimed
        .taken_over_from
        .as_deref()
        .unwrap_or("another runner");
    let reason = format!("taken over from {from}, whose lease expired after it had sent this");
    // Its request may still be on its way (its runner stalled rather than died): observed
    // now, it would read as "did not happen" and be sent a second time.
    let landing = coop_landing(share.lease(), in_flight, claimed.marked_ago);
    if !engine.nap(landing).await {
        let why =
            "not observed: apply was interrupted while the request it took over could still land";
        return vec![(k, unsent(info, action, State::Skipped, why))];
    }
    // Without the time it was sent, a change the provider shows cannot be told from an older
    // one; "now" would make a landed request look like one that never arrived.
    let sent_at = match share.sent_at(action.id.to_string()).await {
        Ok(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("`{text}`: {e}")),
        Err(e) => Err(e.to_string()),
    };
    let sent_at = match sent_at {
        Ok(at) => at,
        Err(e) => {
            let detail = format!(
                "{reason}; when it was sent cannot be read from the shared state ({e}), so its outcome cannot be told; not sent again"
            );
            return vec![(
                k,
                engine.finish(info, action, State::Unknown, 1, None, detail, started),
            )];
        }
    };
    let client = &engine.clients[&info.provider];
    let next = reconcile::reconcile(client, &member.work, &reason, sent_at).await;
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

/// The results of the wave's actions this runner did not do, from the shared journal.
async fn others(
    engine: &Engine,
    share: &dyn Share,
    info: &JobInfo,
    slots: &mut [Option<Box<PlanAction>>],
    out: &mut Ended,
    wave: &[usize],
) {
    let missing: Vec<usize> = wave.iter().copied().filter(|&k| !out.has(k)).collect();
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
                State::Unknown,
                "not final in the shared state: another runner still holds it, or it was interrupted; apply the plan again to finish it",
            ),
        };
        engine.sink.emit(Event::Finished {
            job: info.id.to_string(),
            target: action.target.clone(),
            state: result.state,
            detail: result.detail.clone(),
        });
        out.put(k, result);
    }
}

/// The results of actions this runner did not send because their leases went to another
/// runner: that runner's final record, once the wave is over (the summary is everyone's).
async fn winners(share: &dyn Share, out: &mut Ended, lost: &[usize]) {
    let ids: Vec<String> = lost
        .iter()
        .filter_map(|&k| out.get(k).map(|r| r.id.to_string()))
        .collect();
    if ids.is_empty() {
        return;
    }
    let finals = share.finals(ids).await.unwrap_or_default();
    for &k in lost {
        let Some(mine) = out.get_mut(k) else {
            continue;
        };
        if let Some(r) = finals.get(&mine.id.to_string())
            && r.state != State::Skipped
        {
            mine.state = r.state;
            mine.attempts = r.attempt;
            mine.http_status = r.http_status;
            mine.detail.clone_from(&r.detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_over_request_is_waited_for_until_it_can_no_longer_land() {
        let (lease, in_flight) = (Duration::from_secs(3), Duration::from_secs(10));
        // Marked a lease ago (the soonest a claim can follow): sent within a third of a lease
        // of that, it may land for the rest of its ten seconds.
        let soon = coop_landing(lease, in_flight, Some(lease));
        assert_eq!(soon, Duration::from_secs(9));
        // Unknown age: as if marked a lease ago, never sooner.
        assert_eq!(coop_landing(lease, in_flight, None), soon);
        assert_eq!(
            coop_landing(lease, in_flight, Some(Duration::from_secs(1))),
            soon
        );
        // Marked long ago (the next apply after a crash): observed at once.
        let late = coop_landing(lease, in_flight, Some(Duration::from_secs(12)));
        assert_eq!(late, Duration::ZERO);
        assert_eq!(
            coop_landing(lease, in_flight, Some(Duration::from_secs(8))),
            Duration::from_secs(4)
        );
    }
}
