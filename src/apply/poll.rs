//! Polling an asynchronous result (a VCF task) to its terminal status: polls start soon and
//! slow down to the interval; they are reads, not retries, and end at the wait's timeout or at
//! an interrupt (the task goes on on the server).

use std::time::Duration;

use tokio::time::Instant;

use super::context::{Engine, JobInfo};
use super::events::Event;
use crate::plan::PlanAction;
use crate::providers::{Client, TaskState};
use crate::state::State;

/// Failed polls in a row that are tolerated before the outcome is unknown.
const POLL_ERRORS: u32 = 3;

pub(super) async fn poll(
    engine: &Engine,
    job: &JobInfo,
    action: &PlanAction,
    client: &Client,
    task: &str,
) -> (State, String) {
    let wait = job.policy.wait;
    let deadline = Instant::now() + wait.timeout;
    let mut delay = wait.interval.min(Duration::from_secs(1));
    let mut errors = 0;
    let mut last = String::from("accepted");
    loop {
        let now = Instant::now();
        if now >= deadline {
            let detail = format!(
                "task {task} still {last} after waiting {:?}; not sent again",
                wait.timeout
            );
            return (State::Unknown, detail);
        }
        if !engine.nap(delay.min(deadline - now)).await {
            let detail = format!(
                "apply was interrupted while task {task} was {last}; it goes on on the server"
            );
            return (State::Unknown, detail);
        }
        delay = (delay * 2).min(wait.interval);
        match client.poll(task).await {
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
            Err(e) if errors < POLL_ERRORS => {
                errors += 1;
                last = format!("{last} (poll failed: {e})");
            }
            Err(e) => return (State::Unknown, format!("task {task}: polling failed: {e}")),
        }
    }
}
