//! VCF tasks and credentials tasks (providers.md §3.2, §3.3): reads, cancel, and the re-run of a
//! failed task, one credentials operation at a time (the lists are in `lists.rs`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::{Run, Sim, Status, Task, vcf_error};
use crate::rng;
use crate::sandbox::reply::{self, json as answer, parse_json};
use crate::sandbox::scenario::Outcome;

const OPERATION_TYPES: [&str; 4] = ["UPDATE", "ROTATE", "REMEDIATE", "UPDATE_AUTO_ROTATE_POLICY"];

/// Reads one task, in the tasks API's form or the credentials API's; each API has its own
/// "not found" status.
fn read_task(
    sim: &Sim,
    headers: &HeaderMap,
    id: &str,
    not_found: (StatusCode, &str),
    render: fn(&Sim, &Task) -> Value,
) -> Response {
    if let Err(e) = sim.authorize(headers) {
        return e;
    }
    let now = reply::now();
    let mut state = sim.lock();
    let Some(&i) = state.by_id.get(&id.to_ascii_lowercase()) else {
        let (status, what) = not_found;
        return vcf_error(
            status,
            "TASK_NOT_FOUND",
            &format!("{what} not found: {id}"),
            None,
        );
    };
    let task = &mut state.tasks[i];
    sim.settle(task, now);
    sim.host.stats.touch(&task.id);
    answer(StatusCode::OK, &render(sim, task))
}

pub(super) async fn get_task(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    read_task(
        &sim,
        &headers,
        &id,
        (StatusCode::NOT_FOUND, "Task"),
        Sim::task_json,
    )
}

pub(super) async fn get_credentials_task(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    read_task(
        &sim,
        &headers,
        &id,
        (StatusCode::BAD_REQUEST, "Credentials task"),
        Sim::credentials_task_json,
    )
}

/// Checks a `CredentialsUpdateSpec`; the message names the first problem.
fn check_spec(spec: &Value) -> Result<&str, String> {
    let operation = spec
        .get("operationType")
        .and_then(Value::as_str)
        .ok_or("operationType is required")?;
    if !OPERATION_TYPES.contains(&operation) {
        return Err(format!(
            "operationType {operation} is not one of {}",
            OPERATION_TYPES.join(", ")
        ));
    }
    let elements = spec
        .get("elements")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
        .ok_or("elements must be a non-empty list")?;
    for (i, element) in elements.iter().enumerate() {
        if element
            .get("resourceType")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(format!("elements[{i}].resourceType is required"));
        }
        let credentials = element
            .get("credentials")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("elements[{i}].credentials must be a non-empty list"))?;
        for (j, c) in credentials.iter().enumerate() {
            if c.get("username").and_then(Value::as_str).is_none() {
                return Err(format!(
                    "elements[{i}].credentials[{j}].username is required"
                ));
            }
        }
    }
    if let Some(policy) = spec.get("autoRotatePolicy")
        && policy
            .get("enableAutoRotatePolicy")
            .and_then(Value::as_bool)
            .is_none()
    {
        return Err("autoRotatePolicy.enableAutoRotatePolicy is required".into());
    }
    Ok(operation)
}

pub(super) async fn retry_credentials_task(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let Some(spec) = parse_json(&body) else {
        return vcf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "The request body is not valid JSON.",
            None,
        );
    };
    let operation = match check_spec(&spec) {
        Ok(op) => op.to_owned(),
        Err(message) => {
            return vcf_error(
                StatusCode::BAD_REQUEST,
                "INVALID_CREDENTIALS_UPDATE_SPEC",
                &message,
                None,
            );
        }
    };
    rerun(
        &sim,
        &id,
        Some(&operation),
        StatusCode::ACCEPTED,
        StatusCode::BAD_REQUEST,
    )
}

/// `DELETE /v1/credentials/tasks/{id}`: cancels a failed credentials task (202 Task).
pub(super) async fn cancel_credentials_task(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let now = reply::now();
    let mut state = sim.lock();
    let Some(&i) = state.by_id.get(&id.to_ascii_lowercase()) else {
        return vcf_error(
            StatusCode::BAD_REQUEST,
            "TASK_NOT_FOUND",
            &format!("Credentials task not found: {id}"),
            None,
        );
    };
    let task = &mut state.tasks[i];
    sim.settle(task, now);
    if task.status != Status::Failed {
        return vcf_error(
            StatusCode::BAD_REQUEST,
            "TASK_NOT_CANCELLABLE",
            &format!(
                "Only a failed credentials task can be cancelled; task {} is {}.",
                task.id,
                task.status.upper()
            ),
            None,
        );
    }
    task.status = Status::Cancelled;
    task.retryable = false;
    task.completed = Some(reply::now());
    answer(StatusCode::ACCEPTED, &sim.task_json(task))
}

/// `PATCH /v1/tasks/{id}`: the generic retry, 409 for a task that is not failed.
pub(super) async fn retry_task(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    rerun(&sim, &id, None, StatusCode::OK, StatusCode::CONFLICT)
}

/// Why a re-run of `tasks[i]` is refused, if it is: the task is not a retryable failure, the
/// spec names another operation, or another credentials operation is running.
fn refusal(
    tasks: &[Task],
    i: usize,
    operation: Option<&str>,
    refused: StatusCode,
) -> Option<Response> {
    let task = &tasks[i];
    let target = &task.id;
    if task.status != Status::Failed || !task.retryable {
        return Some(vcf_error(
            refused,
            "TASK_NOT_RETRYABLE",
            &format!(
                "Only a failed Task can be retried; task {target} is {}.",
                task.status.upper()
            ),
            None,
        ));
    }
    if let Some(op) = operation
        && !op.eq_ignore_ascii_case(&task.operation_type)
    {
        return Some(vcf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_CREDENTIALS_UPDATE_SPEC",
            &format!(
                "Task {target} was a {} operation; retry it with the same spec, not {op}.",
                task.operation_type
            ),
            None,
        ));
    }
    let busy = tasks.iter().find(|t| t.status.running())?;
    Some(vcf_error(
        refused,
        "PASSWORD_MANAGEMENT_OPERATION_IN_PROGRESS",
        &format!(
            "Password management operation {} is in progress; only one credentials operation runs at a time.",
            busy.id
        ),
        Some("Wait for the running operation to finish, then retry."),
    ))
}

fn rerun(
    sim: &Sim,
    id: &str,
    operation: Option<&str>,
    ok: StatusCode,
    refused: StatusCode,
) -> Response {
    let now = reply::now();
    let mut state = sim.lock();
    let Some(&i) = state.by_id.get(&id.to_ascii_lowercase()) else {
        let status = if refused == StatusCode::CONFLICT {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        return vcf_error(
            status,
            "TASK_NOT_FOUND",
            &format!("Task not found: {id}"),
            None,
        );
    };
    for t in &mut state.tasks {
        sim.settle(t, now);
    }
    if let Some(refusal) = refusal(&state.tasks, i, operation, refused) {
        let task = &state.tasks[i];
        sim.host.stats.mutation(&task.id, false, task.retried);
        return refusal;
    }
    let task = &mut state.tasks[i];
    task.attempts += 1;
    let succeeds = match task.outcome {
        Some(o) => o == Outcome::Succeeds,
        None => {
            rng::unit(rng::hash(
                sim.seed,
                &[
                    b"vcf-outcome",
                    task.id.as_bytes(),
                    &task.attempts.to_le_bytes(),
                ],
            )) < sim.retry_success
        }
    };
    task.run = Some(Run {
        started: now,
        succeeds,
    });
    task.status = Status::Pending;
    task.completed = None;
    task.retried = true;
    sim.host.stats.mutation(&task.id, true, false);
    answer(ok, &sim.task_json(task))
}
