//! VMware Cloud Foundation SDDC Manager (providers.md §3): token pairs with HS256 JWTs, reusable
//! refresh ids, tasks and credentials tasks, and `PATCH /v1/credentials/tasks/{id}` re-running a
//! failed task through PENDING → IN_PROGRESS → SUCCESSFUL or FAILED, one at a time.
//!
//! Inferred (providers.md [INF]): bad credentials on `POST /v1/tokens` are a 400 `Error`; a
//! retry of a task that is not FAILED is a 400 `TASK_NOT_RETRYABLE` (409 on the generic
//! `PATCH /v1/tasks/{id}`); a second credentials operation while one runs is a 400
//! `PASSWORD_MANAGEMENT_OPERATION_IN_PROGRESS`; the retry spec must keep the task's
//! `operationType`; an unknown credentials task is a 400.

mod auth;
mod lists;
mod render;
mod tasks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Kind;
use super::faults::Injector;
use super::host::Host;
use super::inject::inject;
use super::reply::{self, json as answer};
use super::scenario::{
    Outcome, StatusCase, User, VcfError, VcfResource, VcfScenario, VcfTask, VcfTaskGenerator,
};
use crate::rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Status {
    Pending,
    InProgress,
    Successful,
    Failed,
    Cancelled,
}

impl Status {
    fn parse(text: &str) -> Self {
        match text.to_ascii_uppercase().replace(' ', "_").as_str() {
            "PENDING" => Self::Pending,
            "IN_PROGRESS" => Self::InProgress,
            "SUCCESSFUL" | "COMPLETED_WITH_WARNING" => Self::Successful,
            "CANCELLED" | "USER_CANCELLED" => Self::Cancelled,
            _ => Self::Failed,
        }
    }

    fn upper(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InProgress => "IN_PROGRESS",
            Self::Successful => "SUCCESSFUL",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::InProgress => "In Progress",
            Self::Successful => "Successful",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        }
    }

    fn running(self) -> bool {
        matches!(self, Self::Pending | Self::InProgress)
    }
}

pub struct Sim {
    pub host: Arc<Host>,
    seed: u64,
    users: Vec<User>,
    api_keys: Vec<String>,
    token_ttl: Duration,
    token_status: StatusCode,
    status_case: StatusCase,
    pending: Duration,
    running: Duration,
    retry_success: f64,
    secret: [u8; 32],
    state: Mutex<Objects>,
}

/// Everything a request can change; the index is rebuilt on restore.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Objects {
    tasks: Vec<Task>,
    #[serde(skip)]
    by_id: HashMap<String, usize>,
    refresh: HashMap<String, String>,
    issued: u64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Task {
    id: String,
    name: String,
    operation_type: String,
    status: Status,
    retryable: bool,
    resources: Vec<VcfResource>,
    error: VcfError,
    outcome: Option<Outcome>,
    created: jiff::Timestamp,
    completed: Option<jiff::Timestamp>,
    run: Option<Run>,
    attempts: u32,
    /// A re-run that has not failed again: another PATCH is a duplicate.
    retried: bool,
}

#[derive(Clone, Serialize, Deserialize)]
struct Run {
    started: jiff::Timestamp,
    succeeds: bool,
}

fn vcf_error(status: StatusCode, code: &str, message: &str, remediation: Option<&str>) -> Response {
    let mut body = json!({
        "errorCode": code,
        "errorType": "ERROR",
        "arguments": [],
        "context": {},
        "message": message,
        "causes": [],
        "nestedErrors": [],
        "referenceToken": format!("{:06X}", rng::hash(0, &[code.as_bytes(), message.as_bytes()]) & 0xFF_FFFF),
    });
    if let Some(r) = remediation {
        body["remediationMessage"] = json!(r);
    }
    answer(status, &body)
}

pub fn error_response(status: StatusCode) -> Response {
    match status.as_u16() {
        429 => vcf_error(status, "TOO_MANY_REQUESTS", "Too Many Requests", None),
        503 => vcf_error(
            status,
            "SERVICE_UNAVAILABLE",
            "The SDDC Manager service is not available.",
            Some("Retry the request later."),
        ),
        _ => vcf_error(
            status,
            "INTERNAL_SERVER_ERROR",
            "An internal error occurred.",
            None,
        ),
    }
}

fn unauthorized() -> Response {
    vcf_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "The access token is missing, invalid or expired.",
        Some(
            "Request a new access token or refresh it with PATCH /v1/tokens/access-token/refresh.",
        ),
    )
}

impl Objects {
    fn reindex(&mut self) {
        self.by_id = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
    }

    /// Adds a task unless its id is taken (the first listing wins).
    fn add(&mut self, task: Task) {
        if !self.by_id.contains_key(&task.id) {
            self.by_id.insert(task.id.clone(), self.tasks.len());
            self.tasks.push(task);
        }
    }
}

/// The error a seeded failed task reports when the scenario names none.
fn default_error(name: &str) -> VcfError {
    VcfError {
        code: "PASSWORD_ROTATE_FAILED".into(),
        message: format!("Failed to update the password of {name}"),
        remediation: Some("Check the connectivity to the resource, then retry the task.".into()),
    }
}

impl Task {
    fn listed(t: &VcfTask, now: jiff::Timestamp) -> Self {
        let status = Status::parse(&t.status);
        let name = t.name.clone().unwrap_or_else(|| {
            format!(
                "Credentials {} of {} resources",
                t.operation_type.to_lowercase(),
                t.resources.len()
            )
        });
        let first = t
            .resources
            .first()
            .map_or("the resource", |r| r.name.as_str());
        Self {
            id: t.id.to_ascii_lowercase(),
            error: t.error.clone().unwrap_or_else(|| default_error(first)),
            name,
            operation_type: t.operation_type.clone(),
            status,
            retryable: t.retryable,
            resources: t.resources.clone(),
            outcome: t.outcome,
            created: now - jiff::SignedDuration::from_hours(30),
            completed: (!status.running()).then(|| now - jiff::SignedDuration::from_hours(29)),
            // A task seeded as running finishes like a re-run started when the sandbox did.
            run: status.running().then(|| Run {
                started: now,
                succeeds: t.outcome != Some(Outcome::Fails),
            }),
            attempts: 0,
            retried: false,
        }
    }

    fn generated(g: &VcfTaskGenerator, id: String, n: u64, now: jiff::Timestamp) -> Self {
        let resource = VcfResource {
            name: format!("esx{n:05}.sandbox.rainpole.io"),
            kind: g.resource_type.clone(),
            username: "root".into(),
            credential_type: "SSH".into(),
        };
        let status = Status::parse(&g.status);
        Self {
            error: default_error(&resource.name),
            name: format!(
                "Credentials {} of {}",
                g.operation_type.to_lowercase(),
                resource.name
            ),
            id,
            operation_type: g.operation_type.clone(),
            status,
            retryable: g.retryable,
            resources: vec![resource],
            outcome: g.outcome,
            created: now - jiff::SignedDuration::from_hours(30),
            completed: (!status.running()).then(|| now - jiff::SignedDuration::from_hours(29)),
            run: None,
            attempts: 0,
            retried: false,
        }
    }
}

/// The scenario's listed tasks, then the generated ones.
fn seed_objects(cfg: &VcfScenario, seed: u64) -> Objects {
    let now = reply::now();
    let mut state = Objects::default();
    for t in &cfg.tasks {
        state.add(Task::listed(t, now));
    }
    for (gi, g) in cfg.generate.iter().enumerate() {
        for n in 1..=g.count {
            let id = rng::uuid(seed, &[b"vcf-task", &gi.to_le_bytes(), &n.to_le_bytes()]);
            state.add(Task::generated(g, id, n, now));
        }
    }
    state
}

impl Sim {
    pub fn new(cfg: &VcfScenario, seed: u64) -> Arc<Self> {
        let host = Host::new(
            Kind::Vcf,
            Injector::new(cfg.faults.clone(), seed, "vcf"),
            error_response,
        );
        let state = seed_objects(cfg, seed);
        Arc::new(Self {
            host: Arc::new(host),
            seed,
            users: cfg.users.clone(),
            api_keys: cfg.api_keys.clone(),
            token_ttl: cfg.token_ttl.0,
            token_status: StatusCode::from_u16(cfg.token_status).unwrap_or(StatusCode::CREATED),
            status_case: cfg.status_case,
            pending: cfg.pending.0,
            running: cfg.running.0,
            retry_success: cfg.retry_success,
            secret: rng::bytes(seed, &[b"vcf-jwt-secret"]),
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Objects> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the objects for a world file; taken under the lock, serialized outside it.
    pub fn saved(&self) -> Objects {
        self.lock().clone()
    }

    /// Replaces the objects with a restored world's.
    pub fn restore(&self, mut objects: Objects) {
        objects.reindex();
        *self.lock() = objects;
    }

    fn settle(&self, task: &mut Task, now: jiff::Timestamp) {
        let Some(run) = &task.run else { return };
        // A clock that went back counts as no time passed.
        let elapsed = Duration::try_from(now.duration_since(run.started)).unwrap_or(Duration::ZERO);
        if elapsed < self.pending {
            task.status = Status::Pending;
        } else if elapsed < self.pending + self.running {
            task.status = Status::InProgress;
        } else {
            let succeeds = run.succeeds;
            task.run = None;
            task.completed = Some(reply::now());
            if succeeds {
                task.status = Status::Successful;
            } else {
                task.status = Status::Failed;
                task.retryable = true;
                task.retried = false;
            }
        }
    }

    pub fn state(&self) -> Value {
        let now = reply::now();
        let mut state = self.lock();
        let tasks: Vec<Value> = state
            .tasks
            .iter_mut()
            .map(|t| {
                self.settle(t, now);
                json!({"id": t.id, "operationType": t.operation_type, "status": t.status.upper(),
                       "isRetryable": t.status == Status::Failed && t.retryable, "retries_accepted": t.attempts})
            })
            .collect();
        json!({"tasks": tasks, "refresh_tokens": state.refresh.len()})
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/v1/tokens", post(auth::tokens))
        .route("/v1/tokens/access-token/refresh", patch(auth::refresh))
        .route("/v1/tokens/refresh-token", delete(auth::revoke))
        .route("/v1/tasks", get(lists::list_tasks))
        .route(
            "/v1/tasks/{id}",
            get(tasks::get_task).patch(tasks::retry_task),
        )
        .route("/v1/credentials/tasks", get(lists::list_credentials_tasks))
        .route(
            "/v1/credentials/tasks/{id}",
            get(tasks::get_credentials_task)
                .patch(tasks::retry_credentials_task)
                .delete(tasks::cancel_credentials_task),
        )
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .with_state(sim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_in_both_casings() {
        assert_eq!(Status::parse("In Progress"), Status::InProgress);
        assert_eq!(Status::parse("IN_PROGRESS"), Status::InProgress);
        assert_eq!(Status::parse("Successful"), Status::Successful);
        assert_eq!(Status::parse("FAILED"), Status::Failed);
    }
}
