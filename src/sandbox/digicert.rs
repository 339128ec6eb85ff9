//! DigiCert CertCentral Automation API (providers.md §2): `X-DC-DEVKEY`, the per-key rolling rate
//! limits, `bulkretryautomationtask` with per-`ip:port` results, `viewAutomationDetails` and
//! `automatedips/list`.
//!
//! Inferred (providers.md [INF]): a missing key is 401 and a wrong one 403 in CertCentral's
//! `{"errors": [{code, message}]}` envelope; an unknown or ineligible `ip:port` is reported
//! under `failedRetries` with 1028; an SNI item is looked up by `ip:port` and `domainName` but
//! keyed `ip:port` in the answer; a submitted automation is `AUTOMATION_SCHEDULED` until it ends
//! `SUCCESSFULLY_RENEWED` or `AUTOMATION_FAILED`; requests over a limit do not count in the window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use super::Kind;
use super::faults::{Injector, inject};
use super::host::Host;
use super::reply::{self, json as answer, loose_u64, parse_json};
use super::scenario::{DigicertScenario, Outcome, RateWindow};
use crate::rng;

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
    rate_limits: Vec<RateWindow>,
    processing: Duration,
    retry_success: f64,
    state: Mutex<Objects>,
    windows: Mutex<HashMap<String, Vec<VecDeque<Instant>>>>,
}

#[derive(Default)]
struct Objects {
    automations: Vec<Auto>,
    by_address: HashMap<String, usize>,
    by_id: HashMap<u64, usize>,
}

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
    processing: Option<(Instant, bool)>,
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

impl Sim {
    pub fn new(cfg: &DigicertScenario, seed: u64) -> Arc<Self> {
        let host = Host::new(
            Kind::Digicert,
            Injector::new(cfg.faults.clone(), seed, "digicert"),
            error_response,
        );
        let mut state = Objects::default();
        let now = reply::now_ms();
        let mut next_id = 1_000_000;
        let mut add = |a: Auto| {
            let k = lookup_key(&a.ip, u64::from(a.port), a.domain_name.as_deref());
            if state.by_address.contains_key(&k) || state.by_id.contains_key(&a.id) {
                return;
            }
            state.by_id.insert(a.id, state.automations.len());
            state.by_address.insert(k, state.automations.len());
            state.automations.push(a);
        };
        let make = |id: u64,
                    ip: String,
                    port: u16,
                    domain_name: Option<String>,
                    division_id: Option<u64>,
                    status: String,
                    retry_applicable: Option<bool>,
                    common_name: Option<String>,
                    agent_name: Option<String>,
                    outcome: Option<Outcome>| Auto {
            retry_applicable: retry_applicable
                .unwrap_or_else(|| FAILED_STATUSES.contains(&status.as_str())),
            common_name: common_name.unwrap_or_else(|| format!("{ip}.example.com")),
            agent_name: agent_name.unwrap_or_else(|| "sandbox-agent".into()),
            division_id: division_id.unwrap_or(cfg.division_id),
            certificate_id: 40_000_000 + id,
            id,
            ip,
            port,
            domain_name: domain_name.map(|d| d.to_ascii_lowercase()),
            status,
            outcome,
            processing: None,
            attempts: 0,
            retried: false,
            requested_on: now - 86_400_000 * 3,
            last_run: now - 86_400_000,
        };
        for a in &cfg.automations {
            let id = a.id.unwrap_or_else(|| {
                next_id += 1;
                next_id
            });
            add(make(
                id,
                a.ip.clone(),
                a.port,
                a.domain_name.clone(),
                a.division_id,
                a.status.clone(),
                a.retry_applicable,
                a.common_name.clone(),
                a.agent_name.clone(),
                a.outcome,
            ));
        }
        for g in &cfg.generate {
            for n in 0..g.count {
                next_id += 1;
                add(make(
                    next_id,
                    next_ip(&g.first_ip, n),
                    g.port,
                    None,
                    None,
                    g.status.clone(),
                    None,
                    None,
                    None,
                    g.outcome,
                ));
            }
        }
        Arc::new(Self {
            host: Arc::new(host),
            seed,
            api_keys: cfg.api_keys.clone(),
            account_id: cfg.account_id,
            rate_limits: cfg.rate_limits.clone(),
            processing: cfg.processing.0,
            retry_success: cfg.retry_success,
            state: Mutex::new(state),
            windows: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Objects> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let queues = windows
            .entry(key.to_owned())
            .or_insert_with(|| vec![VecDeque::new(); self.rate_limits.len()]);
        let mut over = false;
        for (queue, limit) in queues.iter_mut().zip(&self.rate_limits) {
            while queue
                .front()
                .is_some_and(|t| now.duration_since(*t) >= limit.per.0)
            {
                queue.pop_front();
            }
            over |= queue.len() >= limit.requests as usize;
        }
        if over {
            self.host.stats.throttled();
            return Err(error_response(StatusCode::TOO_MANY_REQUESTS));
        }
        for queue in queues.iter_mut() {
            queue.push_back(now);
        }
        Ok(())
    }

    fn settle(a: &mut Auto, now: Instant) {
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
        let now = Instant::now();
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
            post(bulk_retry),
        )
        .route(
            "/automationws/v1/automation/viewAutomationDetails",
            post(view_details),
        )
        .route("/automationws/v1/automatedips/list", post(list))
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

async fn bulk_retry(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = sim.admit(&headers) {
        return e;
    }
    let body = match body_or_400(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if let Err(e) = sim.check_account(&body) {
        return e;
    }
    let Some(items) = body
        .get("retryAutomationTaskRequests")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return errors(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "retryAutomationTaskRequests must be a non-empty list.",
        );
    };
    // Validate every item before touching any state: a malformed request changes nothing.
    let mut wanted = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ip = item.get("ip").and_then(Value::as_str);
        let port = item.get("port").and_then(loose_u64);
        let (Some(ip), Some(port)) = (ip, port) else {
            return errors(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                &format!("retryAutomationTaskRequests[{i}] needs an ip and a port."),
            );
        };
        let division = item.get("divisionId").and_then(loose_u64);
        let domain = item.get("domainName").and_then(Value::as_str);
        wanted.push((ip.to_owned(), port, division, domain.map(str::to_owned)));
    }
    let now = Instant::now();
    let mut state = sim.lock();
    let mut retried = serde_json::Map::new();
    let mut failed = serde_json::Map::new();
    for (ip, port, division, domain) in &wanted {
        let address = format!("{ip}:{port}");
        let index = state
            .by_address
            .get(&lookup_key(ip, *port, domain.as_deref()))
            .copied()
            .filter(|&i| division.is_none_or(|d| state.automations[i].division_id == d));
        let outcome = match index {
            Some(i) => {
                let a = &mut state.automations[i];
                Sim::settle(a, now);
                let duplicate = a.retried;
                if a.retry_applicable && a.processing.is_none() {
                    a.attempts += 1;
                    let renews = match a.outcome {
                        Some(o) => o == Outcome::Succeeds,
                        None => {
                            rng::unit(rng::hash(
                                sim.seed,
                                &[
                                    b"digicert-outcome",
                                    a.target().as_bytes(),
                                    &a.attempts.to_le_bytes(),
                                ],
                            )) < sim.retry_success
                        }
                    };
                    a.processing = Some((now + sim.processing, renews));
                    a.status = "AUTOMATION_SCHEDULED".into();
                    a.retry_applicable = false;
                    a.retried = true;
                    sim.host.stats.mutation(&a.target(), true, false);
                    true
                } else {
                    sim.host.stats.mutation(&a.target(), false, duplicate);
                    false
                }
            }
            None => {
                sim.host.stats.touch(&address);
                false
            }
        };
        if outcome {
            retried.insert(address, json!("Successfully initiated retry."));
        } else {
            failed.insert(
                address.clone(),
                json!({
                    "errors": [{"errorCode": "1028", "errorField": address, "errorMessage": NOT_ELIGIBLE}],
                    "status": {},
                }),
            );
        }
    }
    let message = format!(
        "{} of {} automations submitted for retry.",
        retried.len(),
        wanted.len()
    );
    answer(
        StatusCode::OK,
        &json!({
            "error": null,
            "data": {
                "retryMessages": retried,
                "failedRetries": failed,
                "message": message,
                "errors": [],
                "status": {},
            }
        }),
    )
}

fn cause_of(status: &str) -> (&'static str, &'static str, &'static str) {
    match status {
        "AUTOMATION_FAILED" => (
            "FAILED",
            "The certificate request could not be completed: the CA did not respond.",
            "Retry the automation.",
        ),
        "INSTALL_FAILED" | "INSTALL_VALIDATION_FAILED" => (
            "FAILED",
            "The certificate could not be installed on the device.",
            "Check the sensor's connectivity and the device credentials, then configure the automation again.",
        ),
        "AUTOMATION_SCHEDULED" => ("IN_PROGRESS", "", ""),
        _ => ("COMPLETED", "", ""),
    }
}

async fn view_details(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = sim.admit(&headers) {
        return e;
    }
    let body = match body_or_400(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if let Err(e) = sim.check_account(&body) {
        return e;
    }
    let Some(id) = body.get("automationId").and_then(loose_u64) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "automationId is required.",
        );
    };
    let now = Instant::now();
    let mut state = sim.lock();
    let Some(&i) = state.by_id.get(&id) else {
        return errors(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Automation {id} was not found."),
        );
    };
    let a = &mut state.automations[i];
    Sim::settle(a, now);
    sim.host.stats.touch(&a.target());
    let (progress, cause, solution) = cause_of(&a.status);
    answer(
        StatusCode::OK,
        &json!({
            "error": null,
            "data": {
                "autoStatusResponse": {
                    "automationId": a.id,
                    "automationStatus": a.status,
                    "ip": a.ip,
                    "port": a.port,
                    "domainName": a.domain_name,
                    "commonName": a.common_name,
                    "requestedOn": a.requested_on.to_string(),
                    "lastRunTime": a.last_run.to_string(),
                    "nextRenewalDate": (a.last_run + 86_400_000 * 60).to_string(),
                },
                "autoOrderProgressResponse": {
                    "isRetryApplicable": a.retry_applicable,
                    "orderStatus": if a.status == "SUCCESSFULLY_RENEWED" { "ISSUED" } else { "PENDING" },
                },
                "certInstallResponse": {
                    "certInstallProgress": progress,
                    "causeOfFailure": cause,
                    "solution": solution,
                },
            }
        }),
    )
}

fn criterion_matches(a: &Auto, criterion: &Value) -> bool {
    let key = criterion.get("key").and_then(Value::as_str).unwrap_or("");
    let values: Vec<String> = match criterion.get("value") {
        Some(Value::Array(v)) => v
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(other) => vec![other.to_string()],
        None => Vec::new(),
    };
    let field = match key {
        "AUTOMATION_STATUS" => a.status.clone(),
        "AGENT_NAME" => a.agent_name.clone(),
        "IP_ADDRESS" => a.ip.clone(),
        "PORT" => a.port.to_string(),
        "COMMON_NAME" => a.common_name.clone(),
        _ => return true,
    };
    values.iter().any(|v| v.eq_ignore_ascii_case(&field))
}

async fn list(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = sim.admit(&headers) {
        return e;
    }
    let body = match body_or_400(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if let Err(e) = sim.check_account(&body) {
        return e;
    }
    let page_size = body.get("pageSize").and_then(loose_u64).unwrap_or(50);
    if page_size > 512 {
        return errors(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "pageSize must be between 0 and 512.",
        );
    }
    let page_size = if page_size == 0 { 50 } else { page_size };
    let start = body
        .get("startIndex")
        .and_then(loose_u64)
        .unwrap_or(1)
        .max(1);
    let divisions: Option<Vec<u64>> = body
        .get("divisionIds")
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(loose_u64).collect());
    let criteria: Vec<Value> = body
        .get("searchCriteriaList")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now = Instant::now();
    let mut state = sim.lock();
    let mut matched = Vec::new();
    for a in &mut state.automations {
        Sim::settle(a, now);
        if divisions
            .as_ref()
            .is_none_or(|d| d.is_empty() || d.contains(&a.division_id))
            && criteria.iter().all(|c| criterion_matches(a, c))
        {
            matched.push(json!({
                "automationId": a.id,
                "automatedIp": a.ip,
                "automatedPort": a.port,
                "domainName": a.domain_name,
                "divisionId": a.division_id,
                "managementIp": null,
                "agentName": a.agent_name,
                "alias": a.common_name,
                "appInfo": {"name": "sandbox", "version": "1.0"},
                "appPartition": "Common",
                "automationStatus": a.status,
                "certificateCn": a.common_name,
                "certificateId": a.certificate_id,
                "certificateSerialNumber": format!("{:032X}", rng::hash(sim.seed, &[b"serial", &a.id.to_le_bytes()])),
                "certificateExpiresOn": (a.last_run + 86_400_000 * 90).to_string(),
            }));
        }
    }
    let total = matched.len() as u64;
    let from = usize::try_from(start - 1)
        .unwrap_or(usize::MAX)
        .min(matched.len());
    let to = from
        .saturating_add(usize::try_from(page_size).unwrap_or(usize::MAX))
        .min(matched.len());
    let page: Vec<Value> = matched.drain(from..to).collect();
    answer(
        StatusCode::OK,
        &json!({
            "error": null,
            "data": {
                "automatedIps": page,
                "totalCount": total,
                "totalPages": total.div_ceil(page_size),
                "startIndex": start,
                "pageSize": page_size,
            }
        }),
    )
}
