//! Fake VCF SDDC Manager (providers.md §3), written from the docs only: token pair auth,
//! credential tasks that run over time, and one credential operation at a time.
//!
//! `POST /v1/tokens`, `PATCH /v1/tokens/access-token/refresh`, `GET /v1/tasks/{id}`,
//! `GET /v1/tasks`, `GET /v1/credentials/tasks`, `GET /v1/credentials/tasks/{id}`,
//! `PATCH /v1/credentials/tasks/{id}` (202 + Task).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::endpoints::{Endpoints, track};
use super::server::{Options, RequestLog, Server, header, lock};
use super::vcf_api::{self, CredTask, TaskStatus};

/// The endpoints, as [`VcfFake::requests`] and [`VcfFake::after_answer`] name them.
pub const TOKENS: &str = "POST /v1/tokens";
pub const REFRESH: &str = "PATCH /v1/tokens/access-token/refresh";
pub const TASKS: &str = "GET /v1/tasks";
pub const TASK: &str = "GET /v1/tasks/{id}";
pub const CREDENTIALS_TASKS: &str = "GET /v1/credentials/tasks";
pub const CREDENTIALS_TASK: &str = "GET /v1/credentials/tasks/{id}";
pub const RETRY: &str = "PATCH /v1/credentials/tasks/{id}";

/// One credential operation as it ran (a PATCH that was accepted, or a planted running task).
#[derive(Clone, Debug)]
pub struct Operation {
    pub task_id: String,
    pub started: Instant,
    pub ends: Instant,
    /// Planted by the test, not started through the API.
    pub foreign: bool,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub username: String,
    pub password: String,
    pub access_ttl: Duration,
    /// Refuse a credential operation while another runs (the documented rule). `false`
    /// accepts it, so a test can see the overlap recorded.
    pub one_at_a_time: bool,
    /// How long a retried task stays IN_PROGRESS.
    pub task_duration: Duration,
    /// `/v1/tasks` statuses in title case (`In Progress`, `Failed`…); both casings occur.
    pub title_case_task_status: bool,
}

pub(super) struct Sddc {
    pub(super) config: Config,
    pub(super) tasks: Mutex<Vec<CredTask>>,
    pub(super) ops: Mutex<Vec<Operation>>,
    pub(super) refused_busy: Mutex<u32>,
    pub(super) retries: Mutex<HashMap<String, u32>>,
    access: Mutex<HashMap<String, Instant>>,
    refresh_ids: Mutex<Vec<String>>,
    serial: Mutex<u64>,
}

pub struct Builder {
    config: Config,
    tasks: Vec<CredTask>,
}

impl Builder {
    pub fn credentials(mut self, username: &str, password: &str) -> Self {
        (self.config.username, self.config.password) = (username.to_owned(), password.to_owned());
        self
    }
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.config.access_ttl = ttl;
        self
    }
    pub fn one_at_a_time(mut self, yes: bool) -> Self {
        self.config.one_at_a_time = yes;
        self
    }
    pub fn task_duration(mut self, d: Duration) -> Self {
        self.config.task_duration = d;
        self
    }
    pub fn title_case_task_status(mut self, yes: bool) -> Self {
        self.config.title_case_task_status = yes;
        self
    }
    pub fn task(mut self, t: CredTask) -> Self {
        self.tasks.push(t);
        self
    }

    fn build(self) -> (Router, Arc<Sddc>, Endpoints) {
        let now = Instant::now();
        let mut tasks = self.tasks;
        let ops = tasks
            .iter_mut()
            .filter_map(|t| t.planted_run(now))
            .collect();
        let sddc = Arc::new(Sddc {
            config: self.config,
            tasks: Mutex::new(tasks),
            ops: Mutex::new(ops),
            refused_busy: Mutex::default(),
            retries: Mutex::default(),
            access: Mutex::default(),
            refresh_ids: Mutex::default(),
            serial: Mutex::default(),
        });
        let api = Router::new()
            .route("/v1/tasks", get(vcf_api::list_tasks))
            .route("/v1/tasks/{id}", get(vcf_api::get_task))
            .route("/v1/credentials/tasks", get(vcf_api::list_credential_tasks))
            .route(
                "/v1/credentials/tasks/{id}",
                get(vcf_api::get_credential_task).patch(vcf_api::retry_credential_task),
            )
            .route_layer(middleware::from_fn_with_state(sddc.clone(), bearer));
        let router = Router::new()
            .route("/v1/tokens", post(tokens))
            .route("/v1/tokens/access-token/refresh", patch(refresh))
            .merge(api)
            .with_state(sddc.clone());
        let endpoints = Endpoints::new(
            &[
                TOKENS,
                REFRESH,
                TASKS,
                TASK,
                CREDENTIALS_TASKS,
                CREDENTIALS_TASK,
                RETRY,
            ]
            .map(|e| e.split_once(' ').unwrap_or(("GET", e))),
        );
        let router = router.layer(middleware::from_fn_with_state(endpoints.clone(), track));
        (router, sddc, endpoints)
    }
    pub fn start(self) -> VcfFake {
        let (router, sddc, endpoints) = self.build();
        VcfFake {
            server: Server::start(router, Options::default()),
            sddc,
            endpoints,
        }
    }
    pub fn spawn_thread(self) -> VcfFake {
        let (router, sddc, endpoints) = self.build();
        VcfFake {
            server: Server::spawn_thread(router, Options::default()),
            sddc,
            endpoints,
        }
    }
}

pub struct VcfFake {
    server: Server,
    sddc: Arc<Sddc>,
    endpoints: Endpoints,
}

impl VcfFake {
    /// `administrator@vsphere.local` / `sandbox`, 1 h tokens, one at a time, 200 ms tasks.
    pub fn builder() -> Builder {
        Builder {
            config: Config {
                username: "administrator@vsphere.local".into(),
                password: "sandbox".into(),
                access_ttl: Duration::from_secs(3600),
                one_at_a_time: true,
                task_duration: Duration::from_millis(200),
                title_case_task_status: false,
            },
            tasks: Vec::new(),
        }
    }
    pub fn url(&self) -> String {
        self.server.url()
    }
    /// Same as `url()`: the runbook's `url:` is the SDDC Manager (paths carry `/v1`).
    pub fn base_url(&self) -> String {
        self.server.url()
    }
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
    /// Makes every access token issued so far expired.
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        lock(&self.sddc.access).values_mut().for_each(|e| *e = now);
    }
    /// Every credential operation that ran (or runs), planted ones included.
    pub fn operations(&self) -> Vec<Operation> {
        lock(&self.sddc.ops).clone()
    }
    /// Pairs of operations whose running times overlapped.
    pub fn overlaps(&self) -> Vec<(Operation, Operation)> {
        let ops = self.operations();
        let mut out = Vec::new();
        for (i, a) in ops.iter().enumerate() {
            for b in &ops[i + 1..] {
                if a.started < b.ends && b.started < a.ends {
                    out.push((a.clone(), b.clone()));
                }
            }
        }
        out
    }
    /// PATCHes refused because another credential operation was running.
    pub fn refused_busy(&self) -> u32 {
        *lock(&self.sddc.refused_busy)
    }
    /// Accepted retries (PATCH → 202) of this task.
    pub fn retries(&self, task_id: &str) -> u32 {
        lock(&self.sddc.retries).get(task_id).copied().unwrap_or(0)
    }
    /// Requests that arrived for `endpoint` (one of the consts above, like [`TASKS`]), refused
    /// ones (401, 400) included.
    pub fn requests(&self, endpoint: &str) -> usize {
        self.endpoints.requests(endpoint)
    }
    /// Every endpoint's request count (`"other"`: requests no route matched).
    pub fn all_requests(&self) -> std::collections::BTreeMap<String, usize> {
        self.endpoints.all_requests()
    }
    /// Changes the tasks right after `endpoint`'s `n`-th 2xx answer (1-based) is made, before
    /// it is sent: the client's next request sees the change.
    pub fn after_answer(
        &self,
        endpoint: &str,
        n: usize,
        change: impl FnOnce(&mut Vec<CredTask>) + Send + 'static,
    ) {
        let sddc = self.sddc.clone();
        self.endpoints
            .after_answer(endpoint, n, move || change(&mut lock(&sddc.tasks)));
    }
    /// [`Self::after_answer`] for `GET /v1/tasks`: after serving its page `n` (1-based count
    /// of list answers, whatever `pageNumber` they asked for).
    pub fn after_page(&self, n: usize, change: impl FnOnce(&mut Vec<CredTask>) + Send + 'static) {
        self.after_answer(TASKS, n, change);
    }
    /// After `/v1/tasks` page `n`, task `id` has `status` (e.g. someone else re-ran it).
    pub fn set_status_after_page(&self, n: usize, id: &str, status: TaskStatus) {
        let id = id.to_owned();
        self.after_page(n, move |tasks| {
            if let Some(t) = tasks.iter_mut().find(|t| t.id == id) {
                t.status = status;
            }
        });
    }
    /// Planted changes that have not run yet.
    pub fn pending_changes(&self) -> usize {
        self.endpoints.pending_hooks()
    }
    /// The credentials-task status now (upper case).
    pub fn status(&self, task_id: &str) -> Option<String> {
        let mut tasks = lock(&self.sddc.tasks);
        let t = tasks.iter_mut().find(|t| t.id == task_id)?;
        t.settle(Instant::now());
        Some(t.status.upper().to_owned())
    }
}

/// The documented `Error` object.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errorCode": code, "errorType": "ERROR", "arguments": [], "context": {},
        "message": message, "remediationMessage": "", "causes": [], "nestedErrors": [],
        "referenceToken": "FAKE01"});
    (status, axum::Json(body)).into_response()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256 JWT with the documented claims (iss, aud, sub, scope, iat, exp).
fn jwt(sddc: &Sddc, user: &str) -> String {
    let mut serial = lock(&sddc.serial);
    *serial += 1;
    let iat = jiff::Timestamp::now().as_second();
    let exp = iat + i64::try_from(sddc.config.access_ttl.as_secs()).unwrap_or(3600);
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss": "vcf-auth", "aud": "sddc-services", "sub": user, "user": user,
        "name": user, "scope": ["CREDENTIAL_READ", "CREDENTIAL_WRITE"], "iat": iat, "exp": exp,
        "jti": format!("fake-{}", *serial)});
    let payload = b64(claims.to_string().as_bytes());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"fake-vcf-signing-key")
        .expect("HMAC takes any key");
    mac.update(format!("{head}.{payload}").as_bytes());
    let token = format!("{head}.{payload}.{}", b64(&mac.finalize().into_bytes()));
    let expires = Instant::now() + sddc.config.access_ttl;
    lock(&sddc.access).insert(token.clone(), expires);
    token
}

/// `POST /v1/tokens` → 201 TokenPair. [INF] bad credentials → 400 Error (only 400 and 500
/// are documented for this endpoint).
async fn tokens(State(sddc): State<Arc<Sddc>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    if field("username") != sddc.config.username || field("password") != sddc.config.password {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_CREDENTIALS",
            "Invalid credentials.",
        );
    }
    let access = jwt(&sddc, field("username"));
    let id = format!(
        "{:08x}-3bf2-480b-9539-8483699ab911",
        lock(&sddc.refresh_ids).len() + 1
    );
    lock(&sddc.refresh_ids).push(id.clone());
    let pair = json!({"accessToken": access, "refreshToken": {"id": id}});
    (StatusCode::CREATED, axum::Json(pair)).into_response()
}

/// Body: the refresh id, raw or JSON-quoted. Reusable. 200 with the new token as a JSON string.
async fn refresh(State(sddc): State<Arc<Sddc>>, body: Bytes) -> Response {
    let raw = String::from_utf8_lossy(&body);
    let id = raw.trim().trim_matches('"');
    if !lock(&sddc.refresh_ids).iter().any(|r| r == id) {
        return error(
            StatusCode::NOT_FOUND,
            "REFRESH_TOKEN_NOT_FOUND",
            "Refresh token not found.",
        );
    }
    let user = sddc.config.username.clone();
    axum::Json(Value::String(jwt(&sddc, &user))).into_response()
}

/// [INF] a missing or expired bearer token → 401 with an Error body.
async fn bearer(State(sddc): State<Arc<Sddc>>, req: Request, next: Next) -> Response {
    let token = header(req.headers(), "authorization").and_then(|h| h.strip_prefix("Bearer "));
    let live = token
        .and_then(|t| lock(&sddc.access).get(t).copied())
        .is_some_and(|exp| exp > Instant::now());
    if !live {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized.");
    }
    next.run(req).await
}
