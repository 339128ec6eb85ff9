//! What one answer means for the next step: final, retry (and whether it uses up an attempt),
//! reconcile (a non-idempotent request that may have reached the server) or poll.

use std::time::Duration;

use super::context::{Engine, JobInfo};
use super::events::Event;
use crate::providers::{Answer, Idempotency, ProviderError};
use crate::state::State;

/// What to do after one attempt.
#[derive(Debug, Clone)]
pub(super) enum Next {
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
        /// A lost answer observed not to have taken effect (its reason, and when the request
        /// left): looked at again after the pause, and sent only if it still has not.
        look_again: Option<(String, jiff::Timestamp)>,
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

impl Next {
    fn retry(status: Option<u16>, reason: String) -> Self {
        Self::Retry {
            after: None,
            status,
            reason,
            counts: true,
            look_again: None,
        }
    }
}

pub(super) fn classify(
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
            // The limiter learned of it where the answer arrived (the HTTP layer).
            engine.sink.emit(Event::Throttled {
                provider: job.provider.clone(),
            });
            Next::Retry {
                after: retry_after,
                status: Some(status),
                reason: format!("HTTP {status}: rate limited"),
                counts: false,
                look_again: None,
            }
        }
        Ok(Answer::Transient { status, detail }) if unsafe_to_resend => Next::Reconcile {
            status: Some(status),
            reason: format!("HTTP {status}: {detail}"),
        },
        Ok(Answer::Transient { status, detail }) => {
            Next::retry(Some(status), format!("HTTP {status}: {detail}"))
        }
        Err(ProviderError::Call { error, .. }) if !error.maybe_sent() => {
            Next::retry(None, error.to_string())
        }
        Err(ProviderError::Call { error, .. }) if unsafe_to_resend => Next::Reconcile {
            status: None,
            reason: error.to_string(),
        },
        Err(ProviderError::Call { error, .. }) => Next::retry(None, error.to_string()),
        Err(other) => Next::Final {
            state: State::Failed,
            status: None,
            detail: other.to_string(),
        },
    }
}
