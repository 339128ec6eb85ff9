//! Requests an earlier run left on their way. A run stopped right after a non-idempotent
//! request left (killed, or its machine lost) leaves the action at `sent`, and the server may
//! still be performing it: read at once, it shows "did not happen", and the plan would send it
//! a second time. Planning first waits until such a request can no longer land.

use std::collections::HashMap;
use std::time::Duration;

use super::items::Item;
use crate::providers::Idempotency;
use crate::state::{History, State};

/// What planning waits for: the longest any such request may still take, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landing {
    pub wait: Duration,
    pub requests: usize,
}

/// Per job (by id, of the jobs `items` are of), how long after leaving one of its requests may
/// still land (`window`), for the jobs with a non-idempotent action (`class`): resending any
/// other does no harm, so it is not waited for.
#[must_use]
pub fn windows<'a>(
    jobs: &[&'a str],
    items: &[Item],
    mut class: impl FnMut(&Item) -> Idempotency,
    window: impl Fn(usize) -> Duration,
) -> HashMap<&'a str, Duration> {
    let mut out = HashMap::new();
    for item in items {
        let job = jobs[item.job];
        if !out.contains_key(job) && class(item) == Idempotency::NonIdempotent {
            out.insert(job, window(item.job));
        }
    }
    out
}

/// The requests `history` left at `sent` in the jobs of `in_flight` (job id → how long after
/// leaving one of its requests may still land) that may still land at `now`. A time that
/// cannot be read, or one ahead of `now` (a clock set back), counts as just sent.
#[must_use]
pub fn still_landing(
    history: &History,
    in_flight: &HashMap<&str, Duration>,
    now: jiff::Timestamp,
) -> Option<Landing> {
    let mut landing = Landing {
        wait: Duration::ZERO,
        requests: 0,
    };
    for past in history.actions.values() {
        if past.last.state != State::Sent {
            continue;
        }
        let Some(&window) = in_flight.get(past.last.job.as_str()) else {
            continue;
        };
        let sent = past.sent_at.as_deref().unwrap_or(&past.last.at);
        let since = sent
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|at| Duration::try_from(now.duration_since(at)).ok())
            .unwrap_or(Duration::ZERO);
        if let Some(left) = window.checked_sub(since)
            && !left.is_zero()
        {
            landing.wait = landing.wait.max(left);
            landing.requests += 1;
        }
    }
    (landing.requests > 0).then_some(landing)
}

/// Waits until no request an earlier run left at `sent` in a non-idempotent job can still land,
/// saying so first.
pub(super) async fn wait(
    rb: &crate::manifest::runbook::Runbook,
    heads: &[&crate::manifest::model::Job],
    items: &[Item],
    clients: &indexmap::IndexMap<String, crate::providers::Client>,
    history: &crate::state::History,
    progress: Option<&dyn super::observe::Progress>,
) {
    // Nothing was left at `sent` (the usual case): no job needs to be classified.
    if !history
        .actions
        .values()
        .any(|p| p.last.state == State::Sent)
    {
        return;
    }
    let jobs: Vec<&str> = heads.iter().map(|j| j.id.as_str()).collect();
    let class = super::items::classes(heads.len(), |item| {
        clients[&heads[item.job].provider].preview(&item.what).1
    });
    let window = |j: usize| {
        crate::providers::http::landing_window(&rb.manifest.providers[&heads[j].provider])
    };
    let windows = windows(&jobs, items, class, window);
    let now = jiff::Timestamp::now();
    if let Some(landing) = still_landing(history, &windows, now) {
        if let Some(progress) = progress {
            progress.landing(landing.wait, landing.requests);
        }
        tokio::time::sleep(landing.wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Record;

    fn record(action: &str, job: &str, state: State, at: &str) -> Record {
        Record {
            at: at.to_owned(),
            run: "r1".to_owned(),
            action: action.to_owned(),
            job: job.to_owned(),
            target: action.to_owned(),
            state,
            attempt: 1,
            http_status: None,
            detail: String::new(),
        }
    }

    #[test]
    fn only_recent_sends_of_waiting_jobs_without_an_answer_are_waited_for() {
        let now: jiff::Timestamp = "2026-12-04T10:00:30Z".parse().expect("a time");
        let history = History::of(
            [
                // Sent 10 s ago, no answer: 20 s of its 30 s are left.
                record("a", "reissue", State::Sent, "2026-12-04T10:00:20Z"),
                // Sent 25 s ago: 5 s left.
                record("b", "reissue", State::Sent, "2026-12-04T10:00:05Z"),
                // Answered: nothing on its way.
                record("c", "reissue", State::Sent, "2026-12-04T10:00:29Z"),
                record("c", "reissue", State::Succeeded, "2026-12-04T10:00:29Z"),
                // Long ago.
                record("d", "reissue", State::Sent, "2026-12-04T09:00:00Z"),
                // A job whose resend does no harm: not waited for.
                record("e", "retry", State::Sent, "2026-12-04T10:00:29Z"),
            ],
            Vec::new(),
        );
        let in_flight = HashMap::from([("reissue", Duration::from_secs(30))]);
        assert_eq!(
            still_landing(&history, &in_flight, now),
            Some(Landing {
                wait: Duration::from_secs(20),
                requests: 2
            })
        );
        let later: jiff::Timestamp = "2026-12-04T10:01:00Z".parse().expect("a time");
        assert_eq!(still_landing(&history, &in_flight, later), None);
        // A time that cannot be read, or one ahead of the clock: the whole window.
        let odd = History::of(
            [
                record("f", "reissue", State::Sent, "yesterday"),
                record("g", "reissue", State::Sent, "2026-12-04T11:00:00Z"),
            ],
            Vec::new(),
        );
        assert_eq!(
            still_landing(&odd, &in_flight, now),
            Some(Landing {
                wait: Duration::from_secs(30),
                requests: 2
            })
        );
    }
}
