//! One action (or one DigiCert batch) from first send to final state: classified answers,
//! retries with backoff, 429 pauses, task polling, and reconciliation of non-idempotent
//! requests whose outcome is unknown — they are re-observed, never resent blindly.

use std::time::Duration;

use tokio::time::Instant;

use super::ActionResult;
use super::engine::{Engine, JobInfo};
use super::events::Event;
use crate::manifest::model::{ActionParams, AutomationTarget, BulkRetryAutomation};
use crate::plan::PlanAction;
use crate::providers::{Answer, Client, Idempotency, ProviderError, TaskState, Verdict};
use crate::state::State;

/// What to do after one attempt.
enum Next {
    Final {
        state: State,
        status: Option<u16>,
        detail: String,
    },
    Retry {
        after: Option<Duration>,
        status: Option<u16>,
        reason: String,
        /// Whether it uses up an attempt: a 429 was not processed, so it does not (only the
        /// deadline bounds it).
        counts: bool,
    },
    /// The request may have reached the server: observe before anything else.
    Reconcile {
        status: Option<u16>,
        reason: String,
    },
    Poll {
        task: String,
        status: u16,
    },
}

fn classify(
    engine: &Engine,
    job: &JobInfo,
    idempotency: Idempotency,
    answer: Result<Answer, ProviderError>,
) -> Next {
    let unsafe_to_resend = idempotency == Idempotency::NonIdempotent;
    match answer {
        Ok(Answer::Done {
            task: Some(task),
            status,
            ..
        }) if job.policy.wait.enabled => Next::Poll { task, status },
        Ok(Answer::Done { status, detail, .. }) => Next::Final {
            state: State::Succeeded,
            status: Some(status),
            detail,
        },
        Ok(Answer::Converged { detail }) => Next::Final {
            state: State::Converged,
            status: None,
            detail,
        },
        Ok(Answer::Rejected { status, detail }) => Next::Final {
            state: State::Failed,
            status: Some(status),
            detail,
        },
        Ok(Answer::Throttled {
            status,
            retry_after,
        }) => {
            engine.limiters[&job.provider].throttled(retry_after);
            engine.sink.emit(Event::Throttled {
                provider: job.provider.clone(),
            });
            Next::Retry {
                after: retry_after,
                status: Some(status),
                reason: format!("HTTP {status}: rate limited"),
                counts: false,
            }
        }
        Ok(Answer::Transient { status, detail }) if unsafe_to_resend => Next::Reconcile {
            status: Some(status),
            reason: format!("HTTP {status}: {detail}"),
        },
        Ok(Answer::Transient { status, detail }) => Next::Retry {
            after: None,
            status: Some(status),
            reason: format!("HTTP {status}: {detail}"),
            counts: true,
        },
        Err(ProviderError::Call { error, .. }) if !error.maybe_sent() => Next::Retry {
            after: None,
            status: None,
            reason: error.to_string(),
            counts: true,
        },
        Err(ProviderError::Call { error, .. }) if unsafe_to_resend => Next::Reconcile {
            status: None,
            reason: error.to_string(),
        },
        Err(ProviderError::Call { error, .. }) => Next::Retry {
            after: None,
            status: None,
            reason: error.to_string(),
            counts: true,
        },
        Err(other) => Next::Final {
            state: State::Failed,
            status: None,
            detail: other.to_string(),
        },
    }
}

async fn send(client: &Client, params: &ActionParams) -> Result<Answer, ProviderError> {
    match (client, params) {
        (Client::Venafi(c), ActionParams::RetryCertificate(a)) => c.execute(a).await,
        (Client::Vcf(c), ActionParams::RetryCredentialsTask(a)) => c.execute(a).await,
        (Client::Ncloud(c), ActionParams::ReissueCertificate(a)) => c.execute(a).await,
        (Client::Http(c), ActionParams::Http(r)) => c.execute(r).await,
        (Client::Digicert(c), ActionParams::BulkRetryAutomation(a)) => {
            c.execute(a, &a.targets).await.map(|mut answers| {
                answers.pop().unwrap_or(Answer::Transient {
                    status: 0,
                    detail: "no answer for the target".into(),
                })
            })
        }
        _ => Err(ProviderError::Config {
            provider: String::new(),
            detail: "the action does not fit its provider".into(),
        }),
    }
}

/// Attempts of the read-only check after a lost answer: a read is safe to repeat.
const RECHECK_ATTEMPTS: u32 = 5;
/// The pause after a failed re-check grows by this much each time.
const RECHECK_PAUSE: Duration = Duration::from_millis(200);

/// The read-only check again, to learn whether an unanswered request took effect; a 429, a 5xx
/// or a broken connection is retried like any read.
async fn observe(
    client: &Client,
    params: &ActionParams,
) -> Option<Result<crate::providers::Observed, ProviderError>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let read = observe_once(client, params).await;
        match &read {
            Some(Err(e)) if attempt < RECHECK_ATTEMPTS && e.is_transient() => {
                tokio::time::sleep(RECHECK_PAUSE * attempt).await;
            }
            _ => return read,
        }
    }
}

async fn observe_once(
    client: &Client,
    params: &ActionParams,
) -> Option<Result<crate::providers::Observed, ProviderError>> {
    Some(match (client, params) {
        (Client::Venafi(c), ActionParams::RetryCertificate(a)) => c.observe(a).await,
        (Client::Vcf(c), ActionParams::RetryCredentialsTask(a)) => c.observe(a).await,
        (Client::Ncloud(c), ActionParams::ReissueCertificate(a)) => c.observe(a).await,
        (Client::Digicert(c), ActionParams::BulkRetryAutomation(a)) => match a.targets.first() {
            Some(t) => c.observe(a, t).await,
            None => return None,
        },
        _ => return None,
    })
}

/// After a lost answer: `Retry` when the observation says the change did not happen, `Poll`
/// for a VCF task now running, success when it did happen (also when it happened and already
/// completed: the provider's rule, `Client::took_effect_since`), `unknown` when it cannot be
/// told.
async fn reconcile(
    client: &Client,
    params: &ActionParams,
    reason: &str,
    sent_at: jiff::Timestamp,
) -> Next {
    let read = observe(client, params).await.map(|r| {
        r.map(|o| {
            let facts = crate::plan::observe::Seen::from(o);
            let done = client.took_effect_since(facts.facts.as_deref(), &sent_at.to_string());
            (facts.verdict, done)
        })
    });
    match read {
        Some(Ok((Verdict::Run, true))) => Next::Final {
            state: State::Succeeded,
            status: None,
            detail: format!(
                "{reason}; observed afterwards that it took effect: the provider shows a change since it was sent"
            ),
        },
        Some(Ok((Verdict::Run, false))) => Next::Retry {
            after: None,
            status: None,
            reason: format!("{reason}; the change did not take effect, sending again"),
            counts: true,
        },
        Some(Ok((Verdict::Converged(why) | Verdict::Blocked(why), _))) => match params {
            ActionParams::RetryCredentialsTask(a) if why.contains("running") => Next::Poll {
                task: a.task_id.clone(),
                status: 0,
            },
            _ => Next::Final {
                state: State::Succeeded,
                status: None,
                detail: format!("{reason}; observed afterwards that it took effect: {why}"),
            },
        },
        Some(Err(e)) => Next::Final {
            state: State::Unknown,
            status: None,
            detail: format!(
                "{reason}; it may have reached the server and its state cannot be read ({e}); not sent again"
            ),
        },
        None => Next::Final {
            state: State::Unknown,
            status: None,
            detail: format!(
                "{reason}; it may have reached the server and there is no read-only check to tell; not sent again"
            ),
        },
    }
}

/// Polls a VCF task to a terminal status; polls start soon and slow down to the interval.
async fn poll(
    engine: &Engine,
    job: &JobInfo,
    action: &PlanAction,
    client: &Client,
    task: &str,
) -> (State, String) {
    let Client::Vcf(vcf) = client else {
        return (State::Succeeded, format!("task {task} accepted"));
    };
    let wait = job.policy.wait;
    let deadline = Instant::now() + wait.timeout;
    let mut delay = wait.interval.min(Duration::from_secs(1));
    let mut errors = 0;
    let mut last = String::from("accepted");
    loop {
        let now = Instant::now();
        if now >= deadline {
            return (
                State::Unknown,
                format!(
                    "task {task} still {last} after waiting {:?}; not sent again",
                    wait.timeout
                ),
            );
        }
        if !engine.nap(delay.min(deadline - now)).await {
            return (
                State::Unknown,
                format!(
                    "apply was interrupted while task {task} was {last}; it goes on on the server"
                ),
            );
        }
        delay = (delay * 2).min(wait.interval);
        match vcf.poll(task).await {
            Ok(TaskState::Running { status }) => {
                errors = 0;
                engine.sink.emit(Event::Polled {
                    job: job.id.to_string(),
                    target: action.target.clone(),
                    status: status.clone(),
                });
                last = status;
            }
            Ok(TaskState::Succeeded { status }) => {
                return (State::Succeeded, format!("task {task} {status}"));
            }
            Ok(TaskState::Failed { status, detail }) => {
                return (State::Failed, format!("task {task} {status}: {detail}"));
            }
            // Polls are reads: a few failures in a row are tolerated, not retried as sends.
            Err(e) if errors < 3 => {
                errors += 1;
                last = format!("{last} (poll failed: {e})");
            }
            Err(e) => return (State::Unknown, format!("task {task}: polling failed: {e}")),
        }
    }
}

async fn pause(
    engine: &Engine,
    job: &JobInfo,
    action: &PlanAction,
    attempt: u32,
    after: Option<Duration>,
    reason: &str,
) -> Duration {
    let salt = crate::rng::hash(0, &[action.id.as_bytes()]);
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

/// Runs one action to its final state.
pub async fn single(
    engine: &Engine,
    job: &JobInfo,
    action: &PlanAction,
    params: &ActionParams,
) -> ActionResult {
    let started = Instant::now();
    let deadline = started + job.policy.retry.deadline;
    let client = &engine.clients[&job.provider];
    let mut attempt = 0;
    // Attempts that count against `retry.attempts` (a 429 does not).
    let mut used = 0;
    let mut sent_at: jiff::Timestamp;
    loop {
        if engine.stopping() {
            let detail = if attempt == 0 {
                "not sent: apply was interrupted".to_owned()
            } else {
                format!("not sent again: apply was interrupted after attempt {attempt}")
            };
            let state = if attempt == 0 {
                State::Skipped
            } else {
                State::Failed
            };
            return engine
                .finish(job, action, state, attempt, None, detail, started)
                .await;
        }
        attempt += 1;
        let answer = {
            let _global = engine
                .global
                .clone()
                .acquire_owned()
                .await
                .expect("never closed");
            let _slot = engine.limiters[&job.provider].acquire().await;
            // Waiting for a slot can outlast an interrupt: look again before sending.
            if engine.stopping() {
                let (state, detail) = if attempt == 1 {
                    (State::Skipped, "not sent: apply was interrupted".to_owned())
                } else {
                    (
                        State::Failed,
                        format!(
                            "not sent again: apply was interrupted after attempt {}",
                            attempt - 1
                        ),
                    )
                };
                return engine
                    .finish(job, action, state, attempt - 1, None, detail, started)
                    .await;
            }
            // The "planned" intent is already on disk; "sent" is synced while the request is on
            // the wire and before its answer is acted on.
            let ticket = match engine.submit(job, action, State::Sent, attempt) {
                Ok(t) => t,
                Err(e) => {
                    let detail = format!("not sent: the journal cannot be written: {e}");
                    return engine
                        .finish(
                            job,
                            action,
                            State::Failed,
                            attempt - 1,
                            None,
                            detail,
                            started,
                        )
                        .await;
                }
            };
            sent_at = jiff::Timestamp::now();
            let (answer, synced) = tokio::join!(send(client, params), ticket.wait());
            if let Err(e) = synced {
                let detail = format!(
                    "sent, but the journal cannot record it ({e}); its outcome is not acted on"
                );
                return engine
                    .finish(job, action, State::Unknown, attempt, None, detail, started)
                    .await;
            }
            answer
        };
        let mut next = classify(engine, job, action.idempotency, answer);
        if let Next::Reconcile { reason, .. } = &next {
            next = reconcile(client, params, reason, sent_at).await;
        }
        match next {
            Next::Final {
                state,
                status,
                detail,
            } => {
                return engine
                    .finish(job, action, state, attempt, status, detail, started)
                    .await;
            }
            Next::Poll { task, status } => {
                let (state, detail) = poll(engine, job, action, client, &task).await;
                return engine
                    .finish(
                        job,
                        action,
                        state,
                        attempt,
                        (status != 0).then_some(status),
                        detail,
                        started,
                    )
                    .await;
            }
            Next::Retry {
                after,
                status,
                reason,
                counts,
            } => {
                used += u32::from(counts);
                let delay = pause(engine, job, action, attempt, after, &reason).await;
                if used >= job.policy.retry.attempts || Instant::now() + delay > deadline {
                    let detail = format!("{reason} (gave up after {attempt} attempt(s))");
                    return engine
                        .finish(job, action, State::Failed, attempt, status, detail, started)
                        .await;
                }
                // An interrupt ends the pause; the loop then stops before sending again.
                engine.nap(delay).await;
            }
            Next::Reconcile { status, reason } => {
                return engine
                    .finish(
                        job,
                        action,
                        State::Unknown,
                        attempt,
                        status,
                        reason,
                        started,
                    )
                    .await;
            }
        }
    }
}

/// Runs one batch of DigiCert targets: one bulk request per attempt, the answer split per
/// `ip:port`, only the targets that need it in the next attempt.
pub async fn batch(
    engine: &Engine,
    job: &JobInfo,
    members: Vec<(usize, Box<PlanAction>)>,
) -> Vec<(usize, ActionResult)> {
    let started = Instant::now();
    let deadline = started + job.policy.retry.deadline;
    let client = &engine.clients[&job.provider];
    let mut out = Vec::with_capacity(members.len());
    // The batch owns its actions; they are looked up by their index in the job.
    let actions: std::collections::HashMap<usize, Box<PlanAction>> = members.into_iter().collect();
    let mut order: Vec<usize> = actions.keys().copied().collect();
    order.sort_unstable();
    let mut parsed: Vec<(usize, BulkRetryAutomation, AutomationTarget)> = Vec::new();
    for &k in &order {
        let action = &actions[&k];
        match serde_json::from_str::<BulkRetryAutomation>(action.params.get()) {
            Ok(bulk) if bulk.targets.len() == 1 => {
                let target = bulk.targets[0].clone();
                parsed.push((k, bulk, target));
            }
            _ => {
                out.push((
                    k,
                    engine
                        .finish(
                            job,
                            action,
                            State::Failed,
                            0,
                            None,
                            "the plan's parameters are not one DigiCert target".into(),
                            started,
                        )
                        .await,
                ));
            }
        }
    }
    let Some(base) = parsed.first().map(|(_, bulk, _)| bulk.clone()) else {
        return out;
    };
    let Client::Digicert(digicert) = client else {
        for (k, _, _) in parsed {
            let a = &actions[&k];
            out.push((
                k,
                engine
                    .finish(
                        job,
                        a,
                        State::Failed,
                        0,
                        None,
                        "the provider is not DigiCert".into(),
                        started,
                    )
                    .await,
            ));
        }
        return out;
    };
    let mut pending = parsed;
    let mut attempt = 0;
    // Attempts refused with 429: they do not count against `retry.attempts`.
    let mut throttled = 0;
    let mut sent_at = jiff::Timestamp::now();
    while !pending.is_empty() {
        if engine.stopping() {
            for (k, _, _) in pending.drain(..) {
                let a = &actions[&k];
                let (state, detail) = if attempt == 0 {
                    (State::Skipped, "not sent: apply was interrupted".to_owned())
                } else {
                    (
                        State::Failed,
                        format!("not sent again: apply was interrupted after attempt {attempt}"),
                    )
                };
                out.push((
                    k,
                    engine
                        .finish(job, a, state, attempt, None, detail, started)
                        .await,
                ));
            }
            break;
        }
        attempt += 1;
        let targets: Vec<AutomationTarget> = pending.iter().map(|(_, _, t)| t.clone()).collect();
        let answers = {
            let _global = engine
                .global
                .clone()
                .acquire_owned()
                .await
                .expect("never closed");
            let _slot = engine.limiters[&job.provider].acquire().await;
            if engine.stopping() {
                attempt -= 1;
                continue;
            }
            let mut tickets = Vec::with_capacity(pending.len());
            for (k, _, _) in &pending {
                tickets.push(engine.submit(job, &actions[k], State::Sent, attempt));
            }
            // Records reach the disk in order: the last ticket covers the whole batch. As for a
            // single action: nothing is sent that the journal cannot hold, and no answer is
            // acted on before its `sent` is on disk.
            let sent = match tickets.into_iter().collect::<Result<Vec<_>, _>>() {
                Err(e) => Err((
                    State::Failed,
                    attempt - 1,
                    format!("not sent: the journal cannot be written: {e}"),
                )),
                Ok(mut tickets) => {
                    let ticket = tickets.pop().expect("a batch is never empty");
                    sent_at = jiff::Timestamp::now();
                    let (answers, synced) =
                        tokio::join!(digicert.execute(&base, &targets), ticket.wait());
                    synced.map(|()| answers).map_err(|e| {
                        (
                            State::Unknown,
                            attempt,
                            format!(
                                "sent, but the journal cannot record it ({e}); its outcome is not acted on"
                            ),
                        )
                    })
                }
            };
            let answers = match sent {
                Ok(answers) => answers,
                Err((state, attempts, detail)) => {
                    for (k, _, _) in pending.drain(..) {
                        let result = engine
                            .finish(
                                job,
                                &actions[&k],
                                state,
                                attempts,
                                None,
                                detail.clone(),
                                started,
                            )
                            .await;
                        out.push((k, result));
                    }
                    break;
                }
            };
            match answers {
                Ok(answers) => answers.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => {
                    let text = e.to_string();
                    let maybe_sent =
                        matches!(&e, ProviderError::Call { error, .. } if error.maybe_sent());
                    let first = Err(e);
                    let mut all = vec![first];
                    for _ in 1..targets.len() {
                        all.push(Err(if maybe_sent {
                            ProviderError::Call {
                                provider: job.provider.clone(),
                                error: crate::providers::http::CallError::Broken {
                                    url: String::new(),
                                    detail: text.clone(),
                                },
                            }
                        } else {
                            ProviderError::Config {
                                provider: job.provider.clone(),
                                detail: text.clone(),
                            }
                        }));
                    }
                    all
                }
            }
        };
        let mut again = Vec::new();
        let mut pause_for: Option<(Option<Duration>, String)> = None;
        let mut was_throttled = false;
        for ((k, bulk, target), answer) in pending.drain(..).zip(answers) {
            let action = &actions[&k];
            let mut next = classify(engine, job, Idempotency::NonIdempotent, answer);
            if let Next::Reconcile { reason, .. } = &next {
                let one = ActionParams::BulkRetryAutomation(BulkRetryAutomation {
                    targets: vec![target.clone()],
                    ..bulk.clone()
                });
                next = reconcile(client, &one, reason, sent_at).await;
            }
            match next {
                Next::Final {
                    state,
                    status,
                    detail,
                } => {
                    out.push((
                        k,
                        engine
                            .finish(job, action, state, attempt, status, detail, started)
                            .await,
                    ));
                }
                Next::Poll { .. } => {
                    out.push((
                        k,
                        engine
                            .finish(
                                job,
                                action,
                                State::Succeeded,
                                attempt,
                                None,
                                "accepted".into(),
                                started,
                            )
                            .await,
                    ));
                }
                Next::Retry {
                    after,
                    status,
                    reason,
                    counts,
                } => {
                    // One bulk request per attempt; a 429 refused the whole batch unprocessed.
                    let used = attempt - throttled;
                    if (counts && used >= job.policy.retry.attempts) || Instant::now() > deadline {
                        let detail = format!("{reason} (gave up after {attempt} attempt(s))");
                        out.push((
                            k,
                            engine
                                .finish(
                                    job,
                                    action,
                                    State::Failed,
                                    attempt,
                                    status,
                                    detail,
                                    started,
                                )
                                .await,
                        ));
                    } else {
                        was_throttled |= !counts;
                        pause_for = Some((after, reason));
                        again.push((k, bulk, target));
                    }
                }
                Next::Reconcile { status, reason } => {
                    out.push((
                        k,
                        engine
                            .finish(
                                job,
                                action,
                                State::Unknown,
                                attempt,
                                status,
                                reason,
                                started,
                            )
                            .await,
                    ));
                }
            }
        }
        if let (Some((after, reason)), Some((k, _, _))) = (pause_for, again.first()) {
            let delay = pause(engine, job, &actions[k], attempt, after, &reason).await;
            engine.nap(delay).await;
        }
        throttled += u32::from(was_throttled);
        pending = again;
    }
    out
}
