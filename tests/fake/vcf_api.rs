//! The VCF fake's task state and handlers (`Task`, `CredentialsTask`, the retry PATCH).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::{lock, query_pairs};
use super::vcf::{Operation, Sddc, error};

const PAGE_SIZE_MAX: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    Pending,
    InProgress,
    Successful,
    Failed,
    UserCancelled,
}

impl TaskStatus {
    pub fn upper(self) -> &'static str {
        match self {
            TaskStatus::Pending => "PENDING",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Successful => "SUCCESSFUL",
            TaskStatus::Failed => "FAILED",
            TaskStatus::UserCancelled => "USER_CANCELLED",
        }
    }
    /// The title-case spelling `/v1/tasks` also uses. [INF] USER_CANCELLED → `Cancelled`.
    pub fn title(self) -> &'static str {
        match self {
            TaskStatus::Pending => "Pending",
            TaskStatus::InProgress => "In Progress",
            TaskStatus::Successful => "Successful",
            TaskStatus::Failed => "Failed",
            TaskStatus::UserCancelled => "Cancelled",
        }
    }
    fn running(self) -> bool {
        matches!(self, TaskStatus::Pending | TaskStatus::InProgress)
    }
}

/// A credentials task. `foreign_running` plants one started by someone else.
#[derive(Clone, Debug)]
pub struct CredTask {
    pub id: String,
    pub operation_type: String,
    pub resource_name: String,
    pub resource_type: String,
    pub status: TaskStatus,
    /// What each successive run ends in (the last one repeats); default SUCCESSFUL.
    pub outcomes: Vec<TaskStatus>,
    pub created: String,
    pub completed: Option<String>,
    /// `isRetryable` while FAILED (default true).
    pub retryable: bool,
    run_ends: Option<Instant>,
    planted_for: Option<Duration>,
    runs: usize,
}

impl CredTask {
    /// A FAILED, retryable ROTATE of one ESXi host's credentials.
    pub fn failed(id: &str) -> CredTask {
        CredTask {
            id: id.to_owned(),
            operation_type: "ROTATE".into(),
            resource_name: "sfo01-m01-esx01.sfo.rainpole.io".into(),
            resource_type: "ESXI".into(),
            status: TaskStatus::Failed,
            outcomes: vec![TaskStatus::Successful],
            created: timestamp(),
            completed: Some(timestamp()),
            retryable: true,
            run_ends: None,
            planted_for: None,
            runs: 0,
        }
    }
    /// A task someone else started: IN_PROGRESS for `for_how_long`, then its outcome.
    pub fn foreign_running(id: &str, for_how_long: Duration) -> CredTask {
        let mut t = CredTask::failed(id);
        (t.status, t.completed, t.planted_for) = (TaskStatus::InProgress, None, Some(for_how_long));
        t
    }
    pub fn status(mut self, s: TaskStatus) -> Self {
        self.status = s;
        self
    }
    pub fn resource(mut self, name: &str, resource_type: &str) -> Self {
        (self.resource_name, self.resource_type) = (name.to_owned(), resource_type.to_owned());
        self
    }
    /// FAILED but `isRetryable: false` on `/v1/tasks`.
    pub fn not_retryable(mut self) -> Self {
        self.retryable = false;
        self
    }
    pub fn outcomes(mut self, outcomes: &[TaskStatus]) -> Self {
        self.outcomes = outcomes.to_vec();
        self
    }

    pub(super) fn planted_run(&mut self, now: Instant) -> Option<Operation> {
        let d = self.planted_for?;
        self.run_ends = Some(now + d);
        Some(Operation {
            task_id: self.id.clone(),
            started: now,
            ends: now + d,
            foreign: true,
        })
    }

    pub(super) fn settle(&mut self, now: Instant) {
        if let Some(ends) = self.run_ends
            && now >= ends
        {
            self.run_ends = None;
            let i = self
                .runs
                .saturating_sub(1)
                .min(self.outcomes.len().saturating_sub(1));
            self.status = self
                .outcomes
                .get(i)
                .copied()
                .unwrap_or(TaskStatus::Successful);
            self.completed = Some(timestamp());
        }
    }

    fn resources(&self) -> Value {
        json!([{"resourceId": format!("res-{}", self.id), "fqdn": self.resource_name,
            "type": self.resource_type, "name": self.resource_name}])
    }

    /// The generic `Task` (`GET /v1/tasks/{id}`, the PATCH's 202 body).
    fn task_json(&self, title_case: bool) -> Value {
        let status = if title_case {
            self.status.title()
        } else {
            self.status.upper()
        };
        let failed = self.status == TaskStatus::Failed;
        json!({"id": self.id, "name": format!("Credentials {} operation", self.operation_type),
            "type": format!("CREDENTIALS_{}", self.operation_type), "status": status,
            "creationTimestamp": self.created, "completionTimestamp": self.completed,
            "subTasks": [], "errors": [], "resources": self.resources(),
            "resolutionStatus": if failed { "UNRESOLVED" } else { "RESOLVED" },
            "isCancellable": failed, "isRetryable": failed && self.retryable})
    }

    /// `CredentialsTask`: no `isRetryable` here (§3.3).
    fn credentials_json(&self) -> Value {
        json!({"id": self.id, "name": format!("Credentials {} operation", self.operation_type),
            "type": self.operation_type, "status": self.status.upper(),
            "creationTimestamp": self.created, "completionTimestamp": self.completed,
            "isAutoRotate": false, "errors": [],
            "subTasks": [{"id": format!("{}-1", self.id), "resourceName": self.resource_name,
                "name": "Rotate password", "description": "", "status": self.status.upper(),
                "entityType": self.resource_type, "username": "root", "credentialType": "SSH",
                "errors": []}]})
    }
}

fn timestamp() -> String {
    jiff::Timestamp::now().to_string()
}

fn page(elements: Vec<Value>, page_number: usize, page_size: usize, total: usize) -> Value {
    json!({"elements": elements, "pageMetadata": {"pageNumber": page_number,
        "pageSize": page_size, "totalElements": total,
        "totalPages": total.div_ceil(page_size.max(1))}})
}

fn settled(sddc: &Sddc) -> std::sync::MutexGuard<'_, Vec<CredTask>> {
    let mut tasks = lock(&sddc.tasks);
    let now = Instant::now();
    tasks.iter_mut().for_each(|t| t.settle(now));
    tasks
}

pub(super) async fn get_task(State(sddc): State<Arc<Sddc>>, Path(id): Path<String>) -> Response {
    let tasks = settled(&sddc);
    match tasks.iter().find(|t| t.id == id) {
        Some(t) => axum::Json(t.task_json(sddc.config.title_case_task_status)).into_response(),
        None => error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND", "Task not found"),
    }
}

/// `GET /v1/tasks?taskStatus=&taskType=&pageNumber=&pageSize=` (§3.3; pageSize max 100).
/// [INF] pageNumber is 0-based; pageSize defaults to 100 and must be 1–100; a number that does
/// not parse is a 400 Error; statuses compare case-insensitively with `In Progress` ≡
/// `IN_PROGRESS`; the other documented filters are ignored.
pub(super) async fn list_tasks(State(sddc): State<Arc<Sddc>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let norm = |s: &str| s.trim().to_ascii_uppercase().replace(' ', "_");
    let number = |k: &str, default: usize| get(k).map_or(Some(default), |v| v.parse().ok());
    let (Some(size), Some(number)) = (number("pageSize", PAGE_SIZE_MAX), number("pageNumber", 0))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "pageNumber and pageSize are integers.",
        );
    };
    if !(1..=PAGE_SIZE_MAX).contains(&size) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PAGE_SIZE",
            "pageSize must be between 1 and 100.",
        );
    }
    let (status, kind) = (get("taskStatus"), get("taskType"));
    let title = sddc.config.title_case_task_status;
    let tasks = settled(&sddc);
    let hits: Vec<Value> = tasks
        .iter()
        .filter(|t| {
            status
                .as_deref()
                .is_none_or(|s| norm(s) == norm(t.status.upper()))
        })
        .map(|t| t.task_json(title))
        .filter(|t| kind.as_deref().is_none_or(|k| t["type"] == k))
        .collect();
    let total = hits.len();
    let elements = hits.into_iter().skip(number * size).take(size).collect();
    axum::Json(page(elements, number, size, total)).into_response()
}

/// `GET /v1/credentials/tasks?limit=`.
pub(super) async fn list_credential_tasks(
    State(sddc): State<Arc<Sddc>>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let limit = pairs
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok());
    let tasks = settled(&sddc);
    let total = tasks.len();
    let limit = limit.unwrap_or(total.max(1));
    let elements = tasks
        .iter()
        .take(limit)
        .map(CredTask::credentials_json)
        .collect();
    axum::Json(page(elements, 0, limit, total)).into_response()
}

pub(super) async fn get_credential_task(
    State(sddc): State<Arc<Sddc>>,
    Path(id): Path<String>,
) -> Response {
    let tasks = settled(&sddc);
    match tasks.iter().find(|t| t.id == id) {
        Some(t) => axum::Json(t.credentials_json()).into_response(),
        // [INF] only 400 and 500 are documented for this endpoint.
        None => error(StatusCode::BAD_REQUEST, "TASK_NOT_FOUND", "Task not found"),
    }
}

fn valid_spec(body: &Bytes) -> bool {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let elements = v.get("elements").and_then(Value::as_array);
    v.get("operationType").is_some_and(Value::is_string)
        && elements.is_some_and(|e| {
            !e.is_empty()
                && e.iter().all(|el| {
                    el.get("resourceType").is_some_and(Value::is_string)
                        && el
                            .get("credentials")
                            .and_then(Value::as_array)
                            .is_some_and(|c| {
                                c.iter()
                                    .all(|c| c.get("username").is_some_and(Value::is_string))
                            })
                })
        })
}

/// `PATCH /v1/credentials/tasks/{id}` → 202 Task. Refused with 400 while another credential
/// operation runs on this SDDC Manager ([INF] errorCode; the docs say such a second
/// operation "fails validation", and this endpoint documents 400), or when not FAILED.
pub(super) async fn retry_credential_task(
    State(sddc): State<Arc<Sddc>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if !valid_spec(&body) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "CredentialsUpdateSpec is invalid.",
        );
    }
    let mut tasks = settled(&sddc);
    let busy = tasks.iter().any(|t| t.id != id && t.status.running());
    let Some(task) = tasks.iter_mut().find(|t| t.id == id) else {
        return error(StatusCode::BAD_REQUEST, "TASK_NOT_FOUND", "Task not found");
    };
    if busy && sddc.config.one_at_a_time {
        *lock(&sddc.refused_busy) += 1;
        return error(
            StatusCode::BAD_REQUEST,
            "PASSWORD_MANAGEMENT_OPERATION_IN_PROGRESS",
            "Another password management operation is in progress.",
        );
    }
    if task.status != TaskStatus::Failed {
        return error(
            StatusCode::BAD_REQUEST,
            "TASK_NOT_RETRYABLE",
            "Only a failed task can be retried.",
        );
    }
    let now = Instant::now();
    let ends = now + sddc.config.task_duration;
    (task.status, task.completed, task.run_ends) = (TaskStatus::InProgress, None, Some(ends));
    task.runs += 1;
    lock(&sddc.ops).push(Operation {
        task_id: id.clone(),
        started: now,
        ends,
        foreign: false,
    });
    *lock(&sddc.retries).entry(id).or_default() += 1;
    let body = task.task_json(sddc.config.title_case_task_status);
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}
