//! DigiCert CertCentral Automation API (providers.md §2): `X-DC-DEVKEY`, the per-key rolling rate
//! limits, `bulkretryautomationtask` with per-`ip:port` results, `viewAutomationDetails` and
//! `automatedips/list`.
//!
//! Inferred (providers.md [INF]): a missing key is 401 and a wrong one 403 in CertCentral's
//! `{"errors": [{code, message}]}` envelope; an unknown or ineligible `ip:port` is reported
//! under `failedRetries` with 1028; an SNI item is looked up by `ip:port` and `domainName` but
//! keyed `ip:port` in the answer; a submitted automation is `AUTOMATION_SCHEDULED` until it ends
//! `SUCCESSFULLY_RENEWED` or `AUTOMATION_FAILED`; requests over a limit do not count in the window.

mod limits;
mod read;
mod retry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use self::limits::RollingWindows;
use super::Kind;
use super::faults::Injector;
use super::host::Host;
use super::inject::inject;
use super::reply::{self, json as answer, loose_u64, parse_json};
use super::scenario::{Automation, DigicertScenario, Outcome};

const NOT_ELIGIBLE: &str = "Automated IP/Port is not eligible for retry.";
const FAILED_STATUSES: [&str; 5] = [
    "AUTOMATION_FAILED",
    "INSTALL_FAILED",
    "INSTALL_VALIDATION_FAILED",
    "ERROR",
    "ACTION_REQUIRED",
];

pub struct Sim {
    pub host: Arc<Host>,
    seed: u64,
    api_keys: Vec<String>,
    account_id: u64,
    processing: Duration,
    retry_success: f64,
    state: Mutex<Objects>,
    /// Not part of the world: a restarted sandbox starts new windows.
    windows: Mutex<RollingWindows>,
}

/// Everything a request can change; the indexes are rebuilt on restore.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Objects {
    automations: Vec<Auto>,
    #[serde(skip)]
    by_address: HashMap<String, usize>,
    #[serde(skip)]
    by_id: HashMap<u64, usize>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Auto {
    id: u64,
    ip: String,
    port: u16,
    domain_name: Option<String>,
    division_id: u64,
    status: String,
    retry_applicable: bool,
    common_name: String,
    agent_name: String,
    outcome: Option<Outcome>,
    processing: Option<(jiff::Timestamp, bool)>,
    attempts: u32,
    /// A submitted retry that has not failed again: another submission is a duplicate.
    retried: bool,
    requested_on: i64,
    last_run: i64,
    certificate_id: u64,
}

impl Auto {
    fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    fn target(&self) -> String {
        match &self.domain_name {
            Some(d) => format!("{}:{}/{d}", self.ip, self.port),
            None => self.address(),
        }
    }
}

fn lookup_key(ip: &str, port: u64, domain: Option<&str>) -> String {
    match domain {
        Some(d) if !d.is_empty() => format!("{ip}:{port}/{}", d.to_ascii_lowercase()),
        _ => format!("{ip}:{port}"),
    }
}

/// The CertCentral error envelope.
fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    answer(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
    )
}

pub fn error_response(status: StatusCode) -> Response {
    match status.as_u16() {
        429 => errors(
            status,
            "request_limit_exceeded",
            "Service unavailable, please limit request volume",
        ),
        500..=599 => errors(status, "server_error", "An unexpected error occurred."),
        _ => errors(status, "bad_request", "The request failed."),
    }
}

fn next_ip(ip: &str, n: u64) -> String {
    let parsed: std::net::Ipv4Addr = ip.parse().unwrap_or(std::net::Ipv4Addr::new(10, 200, 0, 1));
    let value = u32::from(parsed).wrapping_add(u32::try_from(n).unwrap_or(u32::MAX));
    std::net::Ipv4Addr::from(value).to_string()
}

impl Objects {
    fn reindex(&mut self) {
        self.by_address.clear();
        self.by_id.clear();
        for (i, a) in self.automations.iter().enumerate() {
            let k = lookup_key(&a.ip, u64::from(a.port), a.domain_name.as_deref());
            self.by_address.insert(k, i);
            self.by_id.insert(a.id, i);
        }
    }

    /// Adds an automation unless its address or id is taken (the first listing wins).
    fn add(&mut self, a: Auto) {
        let k = lookup_key(&a.ip, u64::from(a.port), a.domain_name.as_deref());
        if self.by_address.contains_key(&k) || self.by_id.contains_key(&a.id) {
            return;
        }
        self.by_id.insert(a.id, self.automations.len());
        self.by_address.insert(k, self.automations.len());
        self.automations.push(a);
    }
}

impl Auto {
    fn seeded(spec: &Automation, id: u64, division_id: u64, now_ms: i64) -> Self {
        Self {
            retry_applicable: spec
                .retry_applicable
                .unwrap_or_else(|| FAILED_STATUSES.contains(&spec.status.as_str())),
            // An SNI automation's certificate is for its domain unless the scenario says.
            common_name: spec
                .common_name
                .clone()
                .or_else(|| spec.domain_name.clone())
                .unwrap_or_else(|| format!("{}.example.com", spec.ip)),
            agent_name: spec
                .agent_name
                .clone()
                .unwrap_or_else(|| "sandbox-agent".into()),
            division_id: spec.division_id.unwrap_or(division_id),
            certificate_id: 40_000_000 + id,
            id,
            ip: spec.ip.clone(),
            port: spec.port,
            domain_name: spec.domain_name.as_ref().map(|d| d.to_ascii_lowercase()),
            status: spec.status.clone(),
            outcome: spec.outcome,
            processing: None,
            attempts: 0,
            retried: false,
            requested_on: now_ms - 86_400_000 * 3,
            last_run: now_ms - 86_400_000,
        }
    }
}

/// The scenario's listed automations, then the generated ones; ids without a number count up
/// from 1,000,001 in that order.
fn seed_objects(cfg: &DigicertScenario) -> Objects {
    let mut state = Objects::default();
    let now = reply::now_ms();
    let mut next_id = 1_000_000;
    for a in &cfg.automations {
        let id = a.id.unwrap_or_else(|| {
            next_id += 1;
            next_id
        });
        state.add(Auto::seeded(a, id, cfg.division_id, now));
    }
    for g in &cfg.generate {
        for n in 0..g.count {
            next_id += 1;
            let spec = Automation {
                id: None,
                ip: next_ip(&g.first_ip, n),
                port: g.port,
                domain_name: None,
                division_id: None,
                status: usize::try_from(n)
                    .ok()
                    .and_then(|n| g.statuses.get(n % g.statuses.len().max(1)))
                    .unwrap_or(&g.status)
                    .clone(),
                retry_applicable: None,
                common_name: None,
                agent_name: None,
                outcome: g.outcome,
            };
            state.add(Auto::seeded(&spec, next_id, cfg.division_id, now));
        }
    }
    state
}

impl Sim {
    pub fn new(cfg: &DigicertScenario, seed: u64) -> Arc<Self> {
        let host = Host::new(
            Kind::Digicert,
            Injector::new(cfg.faults.clone(), seed, "digicert"),
            error_response,
        );
        let state = seed_objects(cfg);
        Arc::new(Self {
            host: Arc::new(host),
            seed,
            api_keys: cfg.api_keys.clone(),
            account_id: cfg.account_id,
            processing: cfg.processing.0,
            retry_success: cfg.retry_success,
            state: Mutex::new(state),
            windows: Mutex::new(RollingWindows::new(&cfg.rate_limits)),
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

    /// The API key check and the rolling per-key windows (requests over a limit are not counted).
    fn admit(&self, headers: &HeaderMap) -> Result<(), Response> {
        let Some(key) = reply::header(headers, "x-dc-devkey") else {
            return Err(errors(
                StatusCode::UNAUTHORIZED,
                "access_denied",
                "Missing X-DC-DEVKEY header.",
            ));
        };
        if !self.api_keys.iter().any(|k| k == key) {
            return Err(errors(
                StatusCode::FORBIDDEN,
                "access_denied",
                "Invalid API key.",
            ));
        }
        let admitted = self
            .windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(key, Instant::now());
        if !admitted {
            // Documented without Retry-After (providers.md §2.4).
            self.host.stats.throttled();
            return Err(error_response(StatusCode::TOO_MANY_REQUESTS));
        }
        Ok(())
    }

    fn settle(a: &mut Auto, now: jiff::Timestamp) {
        if let Some((_, renewed)) = a.processing.take_if(|(until, _)| now >= *until) {
            a.last_run = reply::now_ms();
            if renewed {
                a.status = "SUCCESSFULLY_RENEWED".into();
                a.retry_applicable = false;
            } else {
                a.status = "AUTOMATION_FAILED".into();
                a.retry_applicable = true;
                a.retried = false;
            }
        }
    }

    fn check_account(&self, body: &Value) -> Result<(), Response> {
        match body.get("accountId").and_then(loose_u64) {
            Some(id) if id == self.account_id => Ok(()),
            Some(id) => Err(errors(
                StatusCode::FORBIDDEN,
                "access_denied",
                &format!("You do not have access to account {id}."),
            )),
            None => Err(errors(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "accountId is required.",
            )),
        }
    }

    pub fn state(&self) -> Value {
        let now = reply::now();
        let mut state = self.lock();
        let items: Vec<Value> = state
            .automations
            .iter_mut()
            .map(|a| {
                Self::settle(a, now);
                json!({
                    "automationId": a.id, "address": a.address(), "domainName": a.domain_name,
                    "divisionId": a.division_id, "automationStatus": a.status,
                    "isRetryApplicable": a.retry_applicable, "processing": a.processing.is_some(),
                    "retries_accepted": a.attempts,
                })
            })
            .collect();
        json!({"automations": items})
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(
            "/automationws/v1/automation/bulkretryautomationtask",
            post(retry::bulk_retry),
        )
        .route(
            "/automationws/v1/automation/viewAutomationDetails",
            post(read::view_details),
        )
        .route("/automationws/v1/automatedips/list", post(read::list))
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .with_state(sim)
}

fn body_or_400(body: &[u8]) -> Result<Value, Response> {
    parse_json(body).filter(Value::is_object).ok_or_else(|| {
        errors(
            StatusCode::BAD_REQUEST,
            "bad_request_format",
            "The request body is not a JSON object.",
        )
    })
}
