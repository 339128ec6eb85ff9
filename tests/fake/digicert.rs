//! Fake DigiCert CertCentral Automation API (providers.md §2), written from the docs only.
//!
//! Base path `/automationws/v1`. Auth: `X-DC-DEVKEY`. Endpoints: `POST automatedips/list`,
//! `POST automation/viewAutomationDetails`, `POST automation/bulkretryautomationtask`. Every
//! request with a valid key passes a strict rolling-window limiter for that key first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::digicert_api;
use super::endpoints::{Endpoints, track};
use super::limiter::{RollingLimiter, Window, max_in_window};
use super::server::{Options, RequestLog, Server, header, lock};

pub const BASE_PATH: &str = "/automationws/v1";
/// The endpoints, as [`DigicertFake::requests`] and [`DigicertFake::after_answer`] name them
/// (with the base path).
pub const LIST: &str = "POST /automationws/v1/automatedips/list";
pub const DETAILS: &str = "POST /automationws/v1/automation/viewAutomationDetails";
pub const BULK_RETRY: &str = "POST /automationws/v1/automation/bulkretryautomationtask";
/// The documented limits (§2.4): 100 requests / 5 s and 1000 requests / 5 min, per API key.
pub const DOCUMENTED_LIMITS: [Window; 2] = [
    Window::new(100, Duration::from_secs(5)),
    Window::new(1000, Duration::from_secs(300)),
];

/// The automation statuses named in §2.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    ActionRequired,
    SuccessfullyRenewed,
    AutoRenewScheduled,
    AutomationFailed,
    AutomationScheduled,
    Configured,
    InstallValidationFailed,
    InstallFailed,
    Error,
}

impl Status {
    /// The spelling in `automatedips/list` (its example spells SUCCESSFULLY_RENEWED).
    pub fn list_name(self) -> &'static str {
        match self {
            Status::SuccessfullyRenewed => "SUCCESSFULLY_RENEWED",
            other => other.details_name(),
        }
    }

    /// The spelling in `viewAutomationDetails` (that page spells SUCCESFULLY_RENEWED, sic).
    pub fn details_name(self) -> &'static str {
        match self {
            Status::ActionRequired => "ACTION_REQUIRED",
            Status::SuccessfullyRenewed => "SUCCESFULLY_RENEWED",
            Status::AutoRenewScheduled => "AUTO_RENEW_SCHEDULED",
            Status::AutomationFailed => "AUTOMATION_FAILED",
            Status::AutomationScheduled => "AUTOMATION_SCHEDULED",
            Status::Configured => "CONFIGURED",
            Status::InstallValidationFailed => "INSTALL_VALIDATION_FAILED",
            Status::InstallFailed => "INSTALL_FAILED",
            Status::Error => "ERROR",
        }
    }

    /// Accepts either spelling of the renewed status.
    pub fn parse(s: &str) -> Option<Status> {
        ALL.into_iter()
            .find(|st| st.list_name() == s || st.details_name() == s)
    }

    // [INF] "FAILED-type" statuses (§2.3 plan rule) are the retry-eligible ones by default;
    // ACTION_REQUIRED needs a human fix first, so it is not.
    fn failed_type(self) -> bool {
        matches!(
            self,
            Status::AutomationFailed
                | Status::InstallFailed
                | Status::InstallValidationFailed
                | Status::Error
        )
    }
}

const ALL: [Status; 9] = [
    Status::ActionRequired,
    Status::SuccessfullyRenewed,
    Status::AutoRenewScheduled,
    Status::AutomationFailed,
    Status::AutomationScheduled,
    Status::Configured,
    Status::InstallValidationFailed,
    Status::InstallFailed,
    Status::Error,
];

/// One automated ip:port (one certificate on it). Several may share an ip:port (SNI); they
/// differ by `certificate_cn`, `alias` and `automation_id`.
#[derive(Clone, Debug)]
pub struct Automation {
    pub automation_id: u64,
    pub division_id: u64,
    pub ip: String,
    pub port: u16,
    pub management_ip: Option<String>,
    pub agent_name: String,
    pub status: Status,
    pub certificate_cn: String,
    pub certificate_id: u64,
    pub certificate_serial_number: String,
    /// [INF] a string as the docs give no type; epoch ms like the other timestamps.
    pub certificate_expires_on: String,
    pub alias: Option<String>,
    pub app_name: String,
    pub app_version: String,
    pub app_partition: Option<String>,
    /// `None`: derived from the status (failed-type statuses are retry-eligible).
    pub is_retry_applicable: Option<bool>,
    pub cause_of_failure: Option<String>,
    pub solution: Option<String>,
    pub(super) scheduled_at: Option<Instant>,
    pub(super) last_run_ms: Option<u64>,
}

impl Automation {
    pub fn new(automation_id: u64, ip: &str, port: u16) -> Automation {
        Automation {
            automation_id,
            division_id: 677793,
            ip: ip.to_owned(),
            port,
            management_ip: None,
            agent_name: "agent-1".into(),
            status: Status::AutomationFailed,
            certificate_cn: format!("cert{automation_id}.example.com"),
            certificate_id: 1_000_000 + automation_id,
            certificate_serial_number: format!("{automation_id:032X}"),
            certificate_expires_on: "1767225600000".into(),
            alias: None,
            app_name: "nginx".into(),
            app_version: "1.24".into(),
            app_partition: None,
            is_retry_applicable: None,
            cause_of_failure: None,
            solution: None,
            scheduled_at: None,
            last_run_ms: None,
        }
    }
    pub fn status(mut self, s: Status) -> Self {
        self.status = s;
        self
    }
    pub fn cn(mut self, cn: &str) -> Self {
        self.certificate_cn = cn.to_owned();
        self
    }
    pub fn alias(mut self, alias: &str) -> Self {
        self.alias = Some(alias.to_owned());
        self
    }
    pub fn division(mut self, id: u64) -> Self {
        self.division_id = id;
        self
    }
    pub fn agent(mut self, name: &str) -> Self {
        self.agent_name = name.to_owned();
        self
    }
    pub fn management_ip(mut self, ip: &str) -> Self {
        self.management_ip = Some(ip.to_owned());
        self
    }
    pub fn retry_applicable(mut self, yes: bool) -> Self {
        self.is_retry_applicable = Some(yes);
        self
    }

    pub(super) fn eligible(&self) -> bool {
        self.is_retry_applicable
            .unwrap_or_else(|| self.status.failed_type())
    }
}

/// What the test configures.
#[derive(Clone, Debug)]
pub struct Config {
    pub api_keys: Vec<String>,
    pub account_id: u64,
    pub limits: Vec<Window>,
    /// `Some(s)`: 429s carry `Retry-After: s` (not documented, so off by default).
    pub retry_after_secs: Option<u64>,
    /// `None`: a retried automation stays AUTOMATION_SCHEDULED. `Some(d)`: it reads as
    /// SUCCESSFULLY_RENEWED once `d` has passed. [INF] the docs give no timing.
    pub renew_after: Option<Duration>,
    /// [INF] `startIndex` is 1-based (§2.3) but the docs do not say whether it counts items or
    /// pages. `false` (default, the literal "index"): the 1-based position of the first item.
    pub start_index_is_page: bool,
}

pub(super) struct Dc {
    pub(super) config: Config,
    pub(super) automations: Mutex<Vec<Automation>>,
    limiter: Mutex<RollingLimiter>,
    admitted: Mutex<Vec<Instant>>,
    limited: Mutex<u64>,
    pub(super) initiated: Mutex<HashMap<u64, u32>>,
    pub(super) items_received: Mutex<HashMap<String, u32>>,
}

/// Builds a [`DigicertFake`].
pub struct Builder {
    config: Config,
    automations: Vec<Automation>,
}

impl Builder {
    pub fn api_key(mut self, key: &str) -> Self {
        self.config.api_keys.push(key.to_owned());
        self
    }
    pub fn account_id(mut self, id: u64) -> Self {
        self.config.account_id = id;
        self
    }
    pub fn automation(mut self, a: Automation) -> Self {
        self.automations.push(a);
        self
    }
    /// Replaces the limits (default: [`DOCUMENTED_LIMITS`]). `&[]` turns limiting off.
    pub fn limits(mut self, windows: &[Window]) -> Self {
        self.config.limits = windows.to_vec();
        self
    }
    pub fn retry_after(mut self, secs: Option<u64>) -> Self {
        self.config.retry_after_secs = secs;
        self
    }
    pub fn renew_after(mut self, d: Option<Duration>) -> Self {
        self.config.renew_after = d;
        self
    }
    pub fn start_index_is_page(mut self, yes: bool) -> Self {
        self.config.start_index_is_page = yes;
        self
    }

    fn build(self) -> (Router, Arc<Dc>, Endpoints) {
        let mut config = self.config;
        if config.api_keys.is_empty() {
            config.api_keys.push("test-devkey".into());
        }
        let dc = Arc::new(Dc {
            limiter: Mutex::new(RollingLimiter::new(config.limits.clone())),
            config,
            automations: Mutex::new(self.automations),
            admitted: Mutex::default(),
            limited: Mutex::default(),
            initiated: Mutex::default(),
            items_received: Mutex::default(),
        });
        let api = Router::new()
            .route("/automatedips/list", post(digicert_api::list))
            .route(
                "/automation/viewAutomationDetails",
                post(digicert_api::details),
            )
            .route(
                "/automation/bulkretryautomationtask",
                post(digicert_api::bulk_retry),
            );
        let router = Router::new()
            .nest(BASE_PATH, api)
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(dc.clone(), gate))
            .with_state(dc.clone());
        // Outside the gate: refused (401) and limited (429) requests count too.
        let endpoints = Endpoints::new(
            &[LIST, DETAILS, BULK_RETRY].map(|e| e.split_once(' ').unwrap_or(("POST", e))),
        );
        let router = router.layer(middleware::from_fn_with_state(endpoints.clone(), track));
        (router, dc, endpoints)
    }

    /// Serves on the current tokio runtime.
    pub fn start(self) -> DigicertFake {
        let (router, dc, endpoints) = self.build();
        DigicertFake {
            server: Server::start(router, Options::default()),
            dc,
            endpoints,
        }
    }

    /// Serves on its own thread (for sync tests that run the binary).
    pub fn spawn_thread(self) -> DigicertFake {
        let (router, dc, endpoints) = self.build();
        DigicertFake {
            server: Server::spawn_thread(router, Options::default()),
            dc,
            endpoints,
        }
    }
}

/// A running fake. Dropping it stops it.
pub struct DigicertFake {
    server: Server,
    dc: Arc<Dc>,
    endpoints: Endpoints,
}

impl DigicertFake {
    /// Key `test-devkey` (unless `api_key` is called), account 5153184, documented limits.
    pub fn builder() -> Builder {
        Builder {
            config: Config {
                api_keys: Vec::new(),
                account_id: 5153184,
                limits: DOCUMENTED_LIMITS.to_vec(),
                retry_after_secs: None,
                renew_after: None,
                start_index_is_page: false,
            },
            automations: Vec::new(),
        }
    }
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }
    /// `http://127.0.0.1:PORT/automationws/v1`: what a runbook's `url:` should be.
    pub fn base_url(&self) -> String {
        format!("{}{BASE_PATH}", self.server.url())
    }
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
    /// How many 429s were answered.
    pub fn rate_limited(&self) -> u64 {
        *lock(&self.dc.limited)
    }
    /// Arrival times of the requests the limiter admitted (any key).
    pub fn admitted_times(&self) -> Vec<Instant> {
        lock(&self.dc.admitted).clone()
    }
    /// The most admitted requests seen in any rolling `period`.
    pub fn max_admitted_in(&self, period: Duration) -> usize {
        max_in_window(&self.admitted_times(), period)
    }
    /// How many times a retry was actually initiated for this automation.
    pub fn retries_initiated(&self, automation_id: u64) -> u32 {
        lock(&self.dc.initiated)
            .get(&automation_id)
            .copied()
            .unwrap_or(0)
    }
    /// How many bulk-retry items named `ip:port` (eligible or not).
    pub fn retry_items_received(&self, ip: &str, port: u16) -> u32 {
        lock(&self.dc.items_received)
            .get(&format!("{ip}:{port}"))
            .copied()
            .unwrap_or(0)
    }
    /// Requests that arrived for `endpoint` (one of the consts above, like [`LIST`]), refused
    /// (401) and rate-limited (429) ones included.
    pub fn requests(&self, endpoint: &str) -> usize {
        self.endpoints.requests(endpoint)
    }
    /// Every endpoint's request count (`"other"`: requests no route matched).
    pub fn all_requests(&self) -> std::collections::BTreeMap<String, usize> {
        self.endpoints.all_requests()
    }
    /// Changes the automations right after `endpoint`'s `n`-th 2xx answer (1-based) is made,
    /// before it is sent: the client's next request sees the change.
    pub fn after_answer(
        &self,
        endpoint: &str,
        n: usize,
        change: impl FnOnce(&mut Vec<Automation>) + Send + 'static,
    ) {
        let dc = self.dc.clone();
        self.endpoints
            .after_answer(endpoint, n, move || change(&mut lock(&dc.automations)));
    }
    /// [`Self::after_answer`] for `automatedips/list`: after serving its page `n` (1-based
    /// count of list answers, whatever `startIndex` they asked for).
    pub fn after_page(&self, n: usize, change: impl FnOnce(&mut Vec<Automation>) + Send + 'static) {
        self.after_answer(LIST, n, change);
    }
    /// After list page `n`, automation `automation_id` has `status` (and the eligibility that
    /// status implies unless the test set one).
    pub fn set_status_after_page(&self, n: usize, automation_id: u64, status: Status) {
        self.after_page(n, move |all| {
            if let Some(a) = all.iter_mut().find(|a| a.automation_id == automation_id) {
                a.status = status;
            }
        });
    }
    /// Planted changes that have not run yet.
    pub fn pending_changes(&self) -> usize {
        self.endpoints.pending_hooks()
    }
    /// The current status of an automation (after any renewal timing).
    pub fn status(&self, automation_id: u64) -> Option<Status> {
        let now = Instant::now();
        let mut all = lock(&self.dc.automations);
        let a = all.iter_mut().find(|a| a.automation_id == automation_id)?;
        digicert_api::settle(a, &self.dc.config, now);
        Some(a.status)
    }
}

/// Auth first, then the per-key limiter. Every route (unknown ones too) passes through here.
async fn gate(State(dc): State<Arc<Dc>>, req: Request, next: Next) -> Response {
    let key = header(req.headers(), "x-dc-devkey").map(str::to_owned);
    let Some(key) = key.filter(|k| dc.config.api_keys.contains(k)) else {
        // [INF] status and code: the docs show the CertCentral envelope and `access_denied`,
        // but not what a missing or wrong key returns on the Automation API.
        return errors(
            StatusCode::UNAUTHORIZED,
            "access_denied",
            "Invalid API key.",
        );
    };
    let now = Instant::now();
    if !lock(&dc.limiter).admit(&key, now) {
        *lock(&dc.limited) += 1;
        let mut resp = errors(
            StatusCode::TOO_MANY_REQUESTS,
            "request_limit_exceeded",
            "Service unavailable, please limit request volume",
        );
        if let Some(secs) = dc.config.retry_after_secs {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        return resp;
    }
    lock(&dc.admitted).push(now);
    next.run(req).await
}

async fn not_found() -> Response {
    errors(StatusCode::NOT_FOUND, "not_found|route", "Route not found.")
}

/// The CertCentral error envelope `{"errors":[{"code","message"}]}`.
pub(super) fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message}]});
    (status, axum::Json(body)).into_response()
}

/// `{"error": null, "data": …}`, the Automation wrapper.
pub(super) fn wrapped(data: Value) -> Response {
    axum::Json(json!({"error": null, "data": data})).into_response()
}
