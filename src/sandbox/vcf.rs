//! VMware Cloud Foundation SDDC Manager (providers.md §3): token pairs with HS256 JWTs, reusable
//! refresh ids, tasks and credentials tasks, and `PATCH /v1/credentials/tasks/{id}` re-running a
//! failed task through PENDING → IN_PROGRESS → SUCCESSFUL or FAILED, one at a time.
//!
//! Inferred (providers.md [INF]): bad credentials on `POST /v1/tokens` are a 400 `Error`; a
//! retry of a task that is not FAILED is a 400 `TASK_NOT_RETRYABLE` (409 on the generic
//! `PATCH /v1/tasks/{id}`); a second credentials operation while one runs is a 400
//! `PASSWORD_MANAGEMENT_OPERATION_IN_PROGRESS`; the retry spec must keep the task's
//! `operationType`; an unknown credentials task is a 400.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::Kind;
use super::faults::{Injector, inject};
use super::host::Host;
use super::reply::{self, bearer, json as answer, parse_json};
use super::scenario::{Outcome, StatusCase, User, VcfError, VcfResource, VcfScenario};
use crate::rng;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const OPERATION_TYPES: [&str; 4] = ["UPDATE", "ROTATE", "REMEDIATE", "UPDATE_AUTO_ROTATE_POLICY"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Default)]
struct Objects {
    tasks: Vec<Task>,
    by_id: HashMap<String, usize>,
    refresh: HashMap<String, String>,
    issued: u64,
}

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

struct Run {
    started: Instant,
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

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sim {
    pub fn new(cfg: &VcfScenario, seed: u64) -> Arc<Self> {
        let host = Host::new(
            Kind::Vcf,
            Injector::new(cfg.faults.clone(), seed, "vcf"),
            error_response,
        );
        let now = reply::now();
        let started = Instant::now();
        let mut state = Objects::default();
        let default_error = |name: &str| VcfError {
            code: "PASSWORD_ROTATE_FAILED".into(),
            message: format!("Failed to update the password of {name}"),
            remediation: Some(
                "Check the connectivity to the resource, then retry the task.".into(),
            ),
        };
        let mut add = |task: Task| {
            if !state.by_id.contains_key(&task.id) {
                state.by_id.insert(task.id.clone(), state.tasks.len());
                state.tasks.push(task);
            }
        };
        for t in &cfg.tasks {
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
            add(Task {
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
                    started,
                    succeeds: t.outcome != Some(Outcome::Fails),
                }),
                attempts: 0,
                retried: false,
            });
        }
        for (gi, g) in cfg.generate.iter().enumerate() {
            for n in 1..=g.count {
                let id = rng::uuid(seed, &[b"vcf-task", &gi.to_le_bytes(), &n.to_le_bytes()]);
                let resource = VcfResource {
                    name: format!("esx{n:05}.sandbox.rainpole.io"),
                    kind: g.resource_type.clone(),
                    username: "root".into(),
                    credential_type: "SSH".into(),
                };
                let status = Status::parse(&g.status);
                add(Task {
                    error: default_error(&resource.name),
                    name: format!(
                        "Credentials {} of {}",
                        g.operation_type.to_lowercase(),
                        resource.name
                    ),
                    id,
                    operation_type: g.operation_type.clone(),
                    status,
                    retryable: true,
                    resources: vec![resource],
                    outcome: g.outcome,
                    created: now - jiff::SignedDuration::from_hours(30),
                    completed: (!status.running())
                        .then(|| now - jiff::SignedDuration::from_hours(29)),
                    run: None,
                    attempts: 0,
                    retried: false,
                });
            }
        }
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

    fn settle(&self, task: &mut Task, now: Instant) {
        let Some(run) = &task.run else { return };
        let elapsed = now.duration_since(run.started);
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

    fn jwt(&self, username: &str, n: u64) -> String {
        let now = reply::now().as_second();
        let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({
            "iss": "vcf-auth",
            "aud": "sddc-services",
            "sub": username,
            "user": username,
            "name": username,
            "scope": ["BACKUP_CONFIG_READ", "CREDENTIAL_READ", "CREDENTIAL_WRITE", "TASK_READ", "TASK_WRITE"],
            "iat": now,
            "exp": now + i64::try_from(self.token_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            "jti": rng::uuid(self.seed, &[b"vcf-jti", &n.to_le_bytes()]),
        });
        let payload = b64url(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{payload}");
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length works");
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", b64url(&mac.finalize().into_bytes()))
    }

    /// Checks signature and expiry of the bearer JWT.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        let token = bearer(headers).ok_or_else(unauthorized)?;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unauthorized());
        };
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signature = engine.decode(signature).map_err(|_| unauthorized())?;
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length works");
        mac.update(format!("{header}.{payload}").as_bytes());
        mac.verify_slice(&signature).map_err(|_| unauthorized())?;
        let claims: Value = engine
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or_else(unauthorized)?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp <= reply::now().as_second() {
            return Err(unauthorized());
        }
        Ok(())
    }

    fn task_status(&self, status: Status) -> &'static str {
        match self.status_case {
            StatusCase::Upper => status.upper(),
            StatusCase::Title => status.title(),
            // What the real API mixes: upper case while pending and when failed, title case otherwise.
            StatusCase::Mixed => match status {
                Status::Pending | Status::Failed => status.upper(),
                _ => status.title(),
            },
        }
    }

    fn errors_of(task: &Task) -> Vec<Value> {
        if task.status != Status::Failed {
            return Vec::new();
        }
        vec![json!({
            "errorCode": task.error.code,
            "errorType": "ERROR",
            "arguments": [],
            "context": {},
            "message": task.error.message,
            "remediationMessage": task.error.remediation,
            "causes": [],
            "nestedErrors": [],
            "referenceToken": format!("{:06X}", rng::hash(0, &[task.id.as_bytes()]) & 0xFF_FFFF),
        })]
    }

    /// Index of the resource the failure is about (named in the message), else the first.
    fn failing_resource(task: &Task) -> usize {
        task.resources
            .iter()
            .position(|r| task.error.message.contains(&r.name))
            .unwrap_or(0)
    }

    /// A failed task failed on one resource; the others went through.
    fn resource_status(task: &Task, index: usize, failing: usize) -> Status {
        match task.status {
            Status::Failed if index == failing => Status::Failed,
            Status::Failed => Status::Successful,
            s => s,
        }
    }

    fn completed(task: &Task, body: &mut Value) {
        if let Some(done) = task.completed.filter(|_| !task.status.running()) {
            body["completionTimestamp"] = json!(reply::iso(done));
        }
    }

    fn task_json(&self, task: &Task) -> Value {
        let failing = Self::failing_resource(task);
        let sub_tasks: Vec<Value> = task
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let status = Self::resource_status(task, i, failing);
                json!({
                    "name": format!("{} {} password of {}", task.operation_type, r.credential_type, r.name),
                    "type": format!("CREDENTIALS_{}", task.operation_type),
                    "description": format!("{} the {} password of {} on {}", task.operation_type.to_lowercase(), r.credential_type, r.username, r.name),
                    "status": status.upper(),
                    "creationTimestamp": reply::iso(task.created),
                    "errors": if status == Status::Failed { Self::errors_of(task) } else { Vec::new() },
                    "resources": [{"resourceId": rng::uuid(self.seed, &[b"vcf-resource", r.name.as_bytes()]), "fqdn": r.name, "type": r.kind, "name": r.name}],
                })
            })
            .collect();
        let mut body = json!({
            "id": task.id,
            "name": task.name,
            "localizableDescriptionPack": {
                "component": "CredentialsManager",
                "messageKey": format!("credentials.{}", task.operation_type.to_lowercase()),
                "arguments": [],
                "message": task.name,
            },
            "type": format!("CREDENTIALS_{}", task.operation_type),
            "status": self.task_status(task.status),
            "creationTimestamp": reply::iso(task.created),
            "subTasks": sub_tasks,
            "errors": Self::errors_of(task),
            "resources": task.resources.iter().map(|r| json!({"resourceId": rng::uuid(self.seed, &[b"vcf-resource", r.name.as_bytes()]), "fqdn": r.name, "type": r.kind, "name": r.name})).collect::<Vec<_>>(),
            "resolutionStatus": if task.status == Status::Failed { "UNRESOLVED" } else { "RESOLVED" },
            "isCancellable": task.status.running(),
            "isRetryable": task.status == Status::Failed && task.retryable,
        });
        Self::completed(task, &mut body);
        body
    }

    fn credentials_task_json(&self, task: &Task) -> Value {
        let failing = Self::failing_resource(task);
        let sub_tasks: Vec<Value> = task
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let status = Self::resource_status(task, i, failing);
                json!({
                    "id": rng::uuid(self.seed, &[b"vcf-subtask", task.id.as_bytes(), r.name.as_bytes()]),
                    "resourceName": r.name,
                    "name": format!("{} {}", task.operation_type, r.name),
                    "description": format!("{} the {} password of {}", task.operation_type.to_lowercase(), r.credential_type, r.username),
                    "status": status.upper(),
                    "dependentSubTasks": [],
                    "errors": if status == Status::Failed { Self::errors_of(task) } else { Vec::new() },
                    "entityType": r.kind,
                    "username": r.username,
                    "credentialType": r.credential_type,
                })
            })
            .collect();
        let mut body = json!({
            "id": task.id,
            "name": task.name,
            "type": task.operation_type,
            "status": task.status.upper(),
            "creationTimestamp": reply::iso(task.created),
            "isAutoRotate": false,
            "subTasks": sub_tasks,
            "errors": Self::errors_of(task),
        });
        Self::completed(task, &mut body);
        body
    }

    pub fn state(&self) -> Value {
        let now = Instant::now();
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
        .route("/v1/tokens", post(tokens))
        .route("/v1/tokens/access-token/refresh", patch(refresh))
        .route("/v1/tokens/refresh-token", delete(revoke))
        .route("/v1/tasks/{id}", get(get_task).patch(retry_task))
        .route("/v1/credentials/tasks", get(list_credentials_tasks))
        .route(
            "/v1/credentials/tasks/{id}",
            get(get_credentials_task)
                .patch(retry_credentials_task)
                .delete(cancel_credentials_task),
        )
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .with_state(sim)
}

async fn tokens(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return vcf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "The request body is not valid JSON.",
            None,
        );
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let username = match (field("username"), field("password"), field("apiKey")) {
        (Some(u), Some(p), _)
            if sim
                .users
                .iter()
                .any(|x| x.username.eq_ignore_ascii_case(u) && x.password == p) =>
        {
            u.to_owned()
        }
        (_, _, Some(k)) if sim.api_keys.iter().any(|x| x == k) => "api-key-user".to_owned(),
        _ => {
            return vcf_error(
                StatusCode::BAD_REQUEST,
                "TOKEN_CREATION_FAILED",
                "Invalid username or password.",
                Some("Check the credentials and the user's role (ADMIN, OPERATOR or VIEWER)."),
            );
        }
    };
    let mut state = sim.lock();
    state.issued += 1;
    let n = state.issued;
    let refresh_id = rng::uuid(sim.seed, &[b"vcf-refresh", &n.to_le_bytes()]);
    state.refresh.insert(refresh_id.clone(), username.clone());
    let access = sim.jwt(&username, n);
    answer(
        sim.token_status,
        &json!({"accessToken": access, "refreshToken": {"id": refresh_id}}),
    )
}

/// The refresh id arrives bare (PowerVCF) or as a JSON string (vcf-sdk-go).
fn refresh_id(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    serde_json::from_str::<String>(text).unwrap_or_else(|_| text.trim_matches('"').to_owned())
}

async fn refresh(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let id = refresh_id(&body);
    let mut state = sim.lock();
    let Some(username) = state.refresh.get(id.as_str()).cloned() else {
        return vcf_error(
            StatusCode::NOT_FOUND,
            "REFRESH_TOKEN_NOT_FOUND",
            "The refresh token is unknown, expired or revoked.",
            Some("Create a new token pair with POST /v1/tokens."),
        );
    };
    state.issued += 1;
    let access = sim.jwt(&username, state.issued);
    answer(StatusCode::OK, &Value::String(access))
}

async fn revoke(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let id = refresh_id(&body);
    if sim.lock().refresh.remove(id.as_str()).is_some() {
        reply::empty(StatusCode::NO_CONTENT)
    } else {
        vcf_error(
            StatusCode::NOT_FOUND,
            "REFRESH_TOKEN_NOT_FOUND",
            "The refresh token is unknown.",
            None,
        )
    }
}

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
    let now = Instant::now();
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

async fn get_task(
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

async fn get_credentials_task(
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

async fn list_credentials_tasks(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let now = Instant::now();
    let mut state = sim.lock();
    let total = state.tasks.len();
    let mut elements = Vec::new();
    for t in state.tasks.iter_mut().take(limit) {
        sim.settle(t, now);
        elements.push(sim.credentials_task_json(t));
    }
    let size = elements.len();
    answer(
        StatusCode::OK,
        &json!({
            "elements": elements,
            "pageMetadata": {"pageNumber": 0, "pageSize": size, "totalElements": total, "totalPages": 1},
        }),
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

async fn retry_credentials_task(
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
async fn cancel_credentials_task(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let now = Instant::now();
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
async fn retry_task(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    rerun(&sim, &id, None, StatusCode::OK, StatusCode::CONFLICT)
}

fn rerun(
    sim: &Sim,
    id: &str,
    operation: Option<&str>,
    ok: StatusCode,
    refused: StatusCode,
) -> Response {
    let now = Instant::now();
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
    let task = &state.tasks[i];
    let duplicate = task.retried;
    let target = task.id.clone();
    if task.status != Status::Failed || !task.retryable {
        sim.host.stats.mutation(&target, false, duplicate);
        return vcf_error(
            refused,
            "TASK_NOT_RETRYABLE",
            &format!(
                "Only a failed Task can be retried; task {target} is {}.",
                task.status.upper()
            ),
            None,
        );
    }
    if let Some(op) = operation
        && !op.eq_ignore_ascii_case(&task.operation_type)
    {
        sim.host.stats.mutation(&target, false, duplicate);
        return vcf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_CREDENTIALS_UPDATE_SPEC",
            &format!(
                "Task {target} was a {} operation; retry it with the same spec, not {op}.",
                task.operation_type
            ),
            None,
        );
    }
    if let Some(busy) = state.tasks.iter().find(|t| t.status.running()) {
        let message = format!(
            "Password management operation {} is in progress; only one credentials operation runs at a time.",
            busy.id
        );
        sim.host.stats.mutation(&target, false, duplicate);
        return vcf_error(
            refused,
            "PASSWORD_MANAGEMENT_OPERATION_IN_PROGRESS",
            &message,
            Some("Wait for the running operation to finish, then retry."),
        );
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
    sim.host.stats.mutation(&target, true, false);
    answer(ok, &sim.task_json(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_ids_arrive_bare_or_quoted() {
        assert_eq!(refresh_id(b"3c6b3c30-3bf2"), "3c6b3c30-3bf2");
        assert_eq!(refresh_id(b"\"3c6b3c30-3bf2\"\n"), "3c6b3c30-3bf2");
    }

    #[test]
    fn statuses_parse_in_both_casings() {
        assert_eq!(Status::parse("In Progress"), Status::InProgress);
        assert_eq!(Status::parse("IN_PROGRESS"), Status::InProgress);
        assert_eq!(Status::parse("Successful"), Status::Successful);
        assert_eq!(Status::parse("FAILED"), Status::Failed);
    }
}
