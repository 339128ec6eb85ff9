//! One unit — one action, or the works a provider takes in one request (DigiCert's bulk
//! endpoint) — from first send to each work's final state: one path for both, with the
//! interrupt, slot and journal rules in one place, classified answers, retries with backoff,
//! 429 pauses, task polling, and reconciliation of non-idempotent requests whose outcome is
//! unknown (re-observed, never resent blindly).

use tokio::time::{Duration, Instant};

use super::ActionResult;
use super::classify::{Next, classify};
use super::context::{Engine, JobInfo};
use super::events::Event;
use super::poll::poll;
use super::reconcile::reconcile;
use super::share::Refused;
use crate::manifest::model::Work;
use crate::plan::PlanAction;
use crate::providers::{Answer, Idempotency, ProviderError};
use crate::state::State;

/// One action of a unit: its place in the job, the plan action and what it acts on.
pub struct Member {
    pub k: usize,
    pub action: Box<PlanAction>,
    pub work: Work,
}

/// Why a unit's request was not sent, or not acted on: every member ends this way, or only
/// the `lost` ones (by place), when the rest may still be sent without them.
struct Stopped {
    state: State,
    attempts: u32,
    detail: String,
    lost: Vec<usize>,
}

/// Where a unit stands between attempts.
struct Progress {
    started: Instant,
    deadline: Instant,
    /// Requests sent so far.
    attempt: u32,
    /// Attempts that count against `retry.attempts` (a 429 does not).
    used: u32,
}

/// Runs a unit to the end; one result per member, in no particular order.
pub async fn run(
    engine: &Engine,
    job: &JobInfo,
    members: Vec<Member>,
) -> Vec<(usize, ActionResult)> {
    let started = Instant::now();
    let mut progress = Progress {
        started,
        deadline: started + job.policy.retry.deadline,
        attempt: 0,
        used: 0,
    };
    let mut out = Vec::with_capacity(members.len());
    // One operation at a time (VCF): held from the first send until every member has ended,
    // its task polled to the end; every job of the provider waits for it.
    let limiter = engine.limiters[&job.provider].clone();
    let operation = limiter.operation().await;
    let mut pending = members;
    while !pending.is_empty() {
        if operation.is_some()
            && let Some(stopped) = wait_while_busy(engine, job, &pending, progress.attempt).await
        {
            for m in pending.drain(..) {
                out.push(end(engine, job, &m, &stopped, started));
            }
            break;
        }
        progress.attempt += 1;
        let (answers, sent_at) = match send(engine, job, &pending, progress.attempt).await {
            Ok(sent) => sent,
            // Some of a batch went to another runner: those end here, the rest are sent
            // without them (this is not another attempt).
            Err(stopped) if !stopped.lost.is_empty() => {
                let (lost, rest) = pending
                    .into_iter()
                    .partition::<Vec<_>, _>(|m| stopped.lost.contains(&m.k));
                for m in lost {
                    out.push(end(engine, job, &m, &stopped, started));
                }
                pending = rest;
                progress.attempt -= 1;
                continue;
            }
            Err(stopped) => {
                for m in pending.drain(..) {
                    out.push(end(engine, job, &m, &stopped, started));
                }
                break;
            }
        };
        let nexts = classified(engine, job, &pending, answers);
        let mut again = Vec::new();
        let mut looks = Vec::new();
        let mut pause_for = Duration::ZERO;
        let mut counted = false;
        for (member, next) in pending.drain(..).zip(nexts) {
            let next = reconciled(engine, job, &member, next, sent_at).await;
            let look = match &next {
                Next::Retry { look_again, .. } => look_again.clone(),
                _ => None,
            };
            match settle(engine, job, &member, next, &progress).await {
                Ok(result) => out.push((member.k, result)),
                Err((delay, counts)) => {
                    counted |= counts;
                    pause_for = pause_for.max(delay);
                    again.push(member);
                    looks.push(look);
                }
            }
        }
        progress.used += u32::from(counted);
        if !again.is_empty() {
            // An interrupt ends the pause; the next `send` then stops before sending again.
            engine.nap(pause_for).await;
            if !engine.stopping() {
                again = looked_again(engine, job, again, looks, &progress, &mut out).await;
            }
        }
        pending = again;
    }
    out
}

/// Members whose lost answer was observed not to have taken effect are looked at again after
/// the pause, before they are sent again: a request that timed out can still land (a slow
/// server finishing it), and sent again on the first look it would be done twice. Those that
/// landed meanwhile end here; the rest go on to be sent.
async fn looked_again(
    engine: &Engine,
    job: &JobInfo,
    members: Vec<Member>,
    looks: Vec<Option<(String, jiff::Timestamp)>>,
    progress: &Progress,
    out: &mut Vec<(usize, ActionResult)>,
) -> Vec<Member> {
    let mut still = Vec::with_capacity(members.len());
    for (member, look) in members.into_iter().zip(looks) {
        let Some((reason, sent_at)) = look else {
            still.push(member);
            continue;
        };
        let client = &engine.clients[&job.provider];
        match reconcile(client, &member.work, &reason, sent_at).await {
            Next::Retry { .. } => still.push(member),
            next => match settle(engine, job, &member, next, progress).await {
                Ok(result) => out.push((member.k, result)),
                Err(_) => still.push(member),
            },
        }
    }
    still
}

/// Each member's next step: its own answer classified, or the failure of the whole request,
/// classified once, for every member.
fn classified(
    engine: &Engine,
    job: &JobInfo,
    members: &[Member],
    answers: Result<Vec<Answer>, ProviderError>,
) -> Vec<Next> {
    let idempotency = members[0].action.idempotency;
    match answers {
        Ok(mut all) => {
            // A provider that answered for fewer works than it was given: the rest have no
            // answer, which for a request that reached the server means "unknown until read".
            all.resize(
                members.len(),
                Answer::Transient {
                    status: 0,
                    detail: "no answer for this target".into(),
                },
            );
            all.into_iter()
                .map(|a| classify(engine, job, idempotency, Ok(a)))
                .collect()
        }
        Err(e) => vec![classify(engine, job, idempotency, Err(e)); members.len()],
    }
}

/// Reconciled when the request may have reached the server unanswered.
async fn reconciled(
    engine: &Engine,
    job: &JobInfo,
    member: &Member,
    next: Next,
    sent_at: jiff::Timestamp,
) -> Next {
    match next {
        Next::Reconcile { reason, .. } => {
            let client = &engine.clients[&job.provider];
            reconcile(client, &member.work, &reason, sent_at).await
        }
        other => other,
    }
}

/// Ends the member (its result), or says to send it again after a delay (and whether that
/// used up an attempt).
async fn settle(
    engine: &Engine,
    job: &JobInfo,
    member: &Member,
    next: Next,
    progress: &Progress,
) -> Result<ActionResult, (Duration, bool)> {
    let (attempt, started) = (progress.attempt, progress.started);
    let action = &member.action;
    Ok(match next {
        Next::Final {
            state,
            status,
            detail,
        } => engine.finish(job, action, state, attempt, status, detail, started),
        Next::Poll { task, status } => {
            let client = &engine.clients[&job.provider];
            let (state, detail) = poll(engine, job, action, client, &task).await;
            let status = (status != 0).then_some(status);
            engine.finish(job, action, state, attempt, status, detail, started)
        }
        Next::Reconcile { status, reason } => engine.finish(
            job,
            action,
            State::Unknown,
            attempt,
            status,
            reason,
            started,
        ),
        Next::Retry {
            after,
            status,
            reason,
            counts,
            ..
        } => {
            let delay = pause(engine, job, action, attempt, after, &reason);
            let used = progress.used + u32::from(counts);
            let out_of_attempts = counts && used >= job.policy.retry.attempts;
            if !out_of_attempts && Instant::now() + delay <= progress.deadline {
                return Err((delay, counts));
            }
            let detail = format!("{reason} (gave up after {attempt} attempt(s))");
            engine.finish(job, action, State::Failed, attempt, status, detail, started)
        }
    })
}

/// Sends the unit's works as one request: within the global and the provider's limits, after
/// each member's `sent` is queued for the journal (and on disk, for work that must not start
/// twice). One answer per member, and when it left.
async fn send(
    engine: &Engine,
    job: &JobInfo,
    members: &[Member],
    attempt: u32,
) -> Result<(Result<Vec<Answer>, ProviderError>, jiff::Timestamp), Stopped> {
    let interrupted = || Stopped {
        state: if attempt == 1 {
            State::Skipped
        } else {
            State::Failed
        },
        attempts: attempt - 1,
        detail: if attempt == 1 {
            "not sent: apply was interrupted".to_owned()
        } else {
            format!(
                "not sent again: apply was interrupted after attempt {}",
                attempt - 1
            )
        },
        lost: Vec::new(),
    };
    if engine.stopping() {
        return Err(interrupted());
    }
    let _global = engine
        .global
        .clone()
        .acquire_owned()
        .await
        .expect("never closed");
    let _slot = engine.limiters[&job.provider].acquire().await;
    // Waiting for a slot can outlast an interrupt: look again before sending.
    if engine.stopping() {
        return Err(interrupted());
    }
    // A cooperative run records the send under this runner's leases first: a lost lease
    // means another runner has the action now.
    let mark = || async {
        if engine.share.is_none() {
            return Ok(());
        }
        let actions: Vec<&PlanAction> = members.iter().map(|m| &*m.action).collect();
        let (state, detail, lost) = match super::share::before_send(engine, &actions).await {
            Ok(()) => return Ok(()),
            Err(Refused::Failed(detail)) => (State::Failed, detail, Vec::new()),
            Err(Refused::Lost(lost)) => (
                State::Skipped,
                "not sent by this runner: its lease went to another runner".to_owned(),
                // All of them: the unit ends here; some: the rest go without them.
                if lost.len() == members.len() {
                    Vec::new()
                } else {
                    lost.iter().map(|&i| members[i].k).collect()
                },
            ),
        };
        Err(Stopped {
            state,
            attempts: attempt - 1,
            detail,
            lost,
        })
    };
    let mut marked = Instant::now();
    mark().await?;
    // The "planned" intent is already on disk, and records reach the disk in order.
    let non_idempotent = members[0].action.idempotency == Idempotency::NonIdempotent;
    let mut last = None;
    for m in members {
        let queued = if non_idempotent {
            engine
                .submit(job, &m.action, State::Sent, attempt)
                .map(|ticket| last = Some(ticket))
        } else {
            engine.submit_unsynced(job, &m.action, State::Sent, attempt)
        };
        if let Err(e) = queued {
            return Err(Stopped {
                state: State::Failed,
                attempts: attempt - 1,
                detail: format!("not sent: the journal cannot be written: {e}"),
                lost: Vec::new(),
            });
        }
    }
    for m in members {
        engine.sink.emit(Event::Sent {
            job: job.id.to_string(),
            target: m.action.target.clone(),
            attempt,
        });
    }
    let works: Vec<&Work> = members.iter().map(|m| &m.work).collect();
    let client = &engine.clients[&job.provider];
    // A request that starts new work leaves only once its `sent` is on disk (the last ticket
    // covers the unit): killed after it left, the run must leave "maybe sent" behind, never a
    // bare intent that the next apply would send again.
    if let Some(ticket) = last
        && let Err(e) = ticket.wait().await
    {
        return Err(Stopped {
            state: State::Failed,
            attempts: attempt - 1,
            detail: format!("not sent: the journal cannot record the send ({e})"),
            lost: Vec::new(),
        });
    }
    // The request leaves within a third of a lease of its mark, which renewed the lease: a
    // runner that takes the action over knows how long it may still land (`share::wave`).
    // Recording the send can take longer under load; then the lease is confirmed again, a
    // few times at most.
    if let Some(coop) = &engine.share
        && non_idempotent
    {
        let within = coop.share.lease() / 3;
        for _ in 0..3 {
            if marked.elapsed() <= within {
                break;
            }
            marked = Instant::now();
            mark().await?;
        }
        if marked.elapsed() > within {
            return Err(Stopped {
                state: State::Failed,
                attempts: attempt - 1,
                detail: format!(
                    "not sent: the shared state took over {}s to confirm this runner's lease, which another runner could take over while the request is on its way",
                    within.as_secs_f64()
                ),
                lost: Vec::new(),
            });
        }
    }
    // Any other `sent` is written at once but not waited for: sending such a request again
    // does no harm and changes no decision of the next plan (it only notes the unknown
    // outcome), so a power loss that takes the line away costs one harmless resend, where a
    // sync per burst of requests cost a tenth of the run's CPU.
    let sent_at = jiff::Timestamp::now();
    Ok((client.send(&works).await, sent_at))
}

/// Waits while an operation that someone else started runs on the provider (bounded by the
/// job's `wait:`); the members end unsent when it outlasts that, or when the check fails.
async fn wait_while_busy(
    engine: &Engine,
    job: &JobInfo,
    members: &[Member],
    attempt: u32,
) -> Option<Stopped> {
    let client = &engine.clients[&job.provider];
    let deadline = Instant::now() + job.policy.wait.timeout;
    let not_sent = |detail: String| Stopped {
        state: State::Failed,
        attempts: attempt,
        detail,
        lost: Vec::new(),
    };
    loop {
        let running = match client.busy(&members[0].work).await {
            Ok(None) => return None,
            Ok(Some(running)) => running,
            Err(e) => {
                return Some(not_sent(format!(
                    "not sent: cannot tell whether another operation is running ({e})"
                )));
            }
        };
        let now = Instant::now();
        if now >= deadline {
            return Some(not_sent(format!(
                "not sent: blocked while {running}, for longer than the wait of {:?}; apply again once it has ended",
                job.policy.wait.timeout
            )));
        }
        engine.sink.emit(Event::Polled {
            job: job.id.to_string(),
            target: members[0].action.target.clone(),
            status: format!("waiting: {running}"),
        });
        let pause = job.policy.wait.interval.min(deadline - now);
        if !engine.nap(pause).await {
            return Some(not_sent(
                "not sent: apply was interrupted while waiting".into(),
            ));
        }
    }
}

/// Journals and reports a member that ends because its unit stopped.
fn end(
    engine: &Engine,
    job: &JobInfo,
    member: &Member,
    stopped: &Stopped,
    started: Instant,
) -> (usize, ActionResult) {
    let result = engine.finish(
        job,
        &member.action,
        stopped.state,
        stopped.attempts,
        None,
        stopped.detail.clone(),
        started,
    );
    (member.k, result)
}

/// The delay before the next attempt (backoff with jitter, or `Retry-After`), reported.
fn pause(
    engine: &Engine,
    job: &JobInfo,
    action: &PlanAction,
    attempt: u32,
    after: Option<Duration>,
    reason: &str,
) -> Duration {
    let salt = crate::rng::hash(0, &[action.id.to_string().as_bytes()]);
    let delay = job.policy.retry.delay(attempt + 1, after, salt);
    engine.sink.emit(Event::Retrying {
        job: job.id.to_string(),
        target: action.target.clone(),
        attempt: attempt + 1,
        after_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        reason: reason.to_owned(),
    });
    delay
}
