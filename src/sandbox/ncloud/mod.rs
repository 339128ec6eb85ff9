//! NAVER Cloud Certificate Manager (providers.md §5): the API gateway's signature v2 checked on
//! every request, gateway errors, service errors at HTTP 200 with a `returnCode`, the v1 and v2
//! certificate lists, and reissue moving a certificate to ONGOING.
//!
//! Inferred (providers.md [INF]): every signature failure is the gateway's 401 code 200; the
//! service's non-zero `returnCode`s for reissue are 1000 (body not JSON), 1001 (a required field
//! missing), 1002 (CSR not PEM), 1003 (bad `validationMethod`), 2200 (no such certificate, from
//! the v1 table), 2201 (bad `dnsName`, from the v1 table), 2301 (already ONGOING) and 2302 (a
//! status that cannot be reissued); `pageSize` of the v2 list defaults to 20.

mod certificates;
mod gateway;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Kind;
use super::faults::Injector;
use super::host::Host;
use super::inject::inject;
use super::reply::{self, json as answer};
use super::scenario::{NcloudKey, NcloudScenario, Outcome, name_for};

/// The gateway accepts timestamps this far from its clock.
const WINDOW_MS: i64 = 5 * 60 * 1000;
const ONGOING: i64 = 0;
const NORMAL: i64 = 1;
const VALIDATION_FAILED: i64 = -3;
/// Statuses a reissue may start from (providers.md §5.3).
const REISSUABLE: [i64; 4] = [1, -2, -3, -4];

pub struct Sim {
    pub host: Arc<Host>,
    seed: u64,
    keys: Vec<NcloudKey>,
    clock_ms: Option<i64>,
    member_no: String,
    processing: Duration,
    retry_success: f64,
    state: Mutex<Objects>,
}

/// Everything a request can change; the index is rebuilt on restore.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Objects {
    certs: Vec<Cert>,
    #[serde(skip)]
    by_no: HashMap<u64, usize>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Cert {
    no: u64,
    name: String,
    common_name: String,
    dns_names: Vec<String>,
    status: i64,
    outcome: Option<Outcome>,
    processing: Option<(jiff::Timestamp, bool)>,
    attempts: u32,
    /// An accepted reissue that has not failed validation: another one is a duplicate.
    reissued: bool,
    issue_type: String,
    updated: jiff::Timestamp,
    valid_start: jiff::Timestamp,
    valid_end: jiff::Timestamp,
}

fn status_name(code: i64) -> &'static str {
    match code {
        0 => "ONGOING",
        1 => "NORMAL",
        2 => "NORMAL_UNREGISTERED_PRIVATE_KEY",
        3 => "NORMAL_GLOBAL_EDGE_DEDICATED",
        -1 | -11 => "FAILED",
        -2 => "EXPIRE",
        -3 => "VALIDATION_FAILED",
        -4 => "VALIDATION_EXPIRE",
        -5 => "REVOKE",
        -6 => "DELETED",
        -7 => "REQUEST_REVOKE",
        _ => "UNKNOWN",
    }
}

/// The API gateway's error format and codes.
fn gateway(status: StatusCode, code: &str, message: &str, details: &str) -> Response {
    answer(
        status,
        &json!({"error": {"errorCode": code, "message": message, "details": details}}),
    )
}

pub fn error_response(status: StatusCode) -> Response {
    let (code, message) = match status.as_u16() {
        400 => ("100", "Bad Request Exception"),
        401 => ("200", "Authentication Failed"),
        403 => ("230", "Forbidden"),
        404 => ("300", "Not Found Exception"),
        413 => ("430", "Request Entity Too Large"),
        429 => ("410", "Throttle Limited"),
        503 => ("500", "Endpoint Error"),
        504 => ("510", "Endpoint Timeout"),
        _ => ("900", "Unexpected Error"),
    };
    gateway(status, code, message, "")
}

/// A service answer: always HTTP 200, success or not.
fn service(code: &str, message: &str) -> Response {
    answer(
        StatusCode::OK,
        &json!({"returnCode": code, "returnMessage": message, "totalRows": 0}),
    )
}

impl Objects {
    fn reindex(&mut self) {
        self.by_no = self
            .certs
            .iter()
            .enumerate()
            .map(|(i, c)| (c.no, i))
            .collect();
    }
}

impl Sim {
    pub fn new(cfg: &NcloudScenario, seed: u64) -> Arc<Self> {
        let host = Host::new(
            Kind::Ncloud,
            Injector::new(cfg.faults.clone(), seed, "ncloud"),
            error_response,
        );
        let now = reply::now();
        let mut state = Objects::default();
        let mut add = |no: u64,
                       name: String,
                       common_name: String,
                       dns_names: Vec<String>,
                       status: i64,
                       outcome| {
            if state.by_no.contains_key(&no) {
                return;
            }
            state.by_no.insert(no, state.certs.len());
            state.certs.push(Cert {
                no,
                name,
                common_name,
                dns_names,
                status,
                outcome,
                processing: None,
                attempts: 0,
                reissued: false,
                issue_type: "NEW".into(),
                updated: now - jiff::SignedDuration::from_hours(72),
                valid_start: now - jiff::SignedDuration::from_hours(24 * 340),
                valid_end: now + jiff::SignedDuration::from_hours(24 * 25),
            });
        };
        for c in &cfg.certificates {
            add(
                c.certificate_no,
                c.name.clone(),
                c.common_name.clone(),
                c.dns_names.clone(),
                c.status_code,
                c.outcome,
            );
        }
        for g in &cfg.generate {
            for n in 1..=g.count {
                let name = name_for(&g.name, n);
                let cn = format!("{name}.example.co.kr");
                add(
                    g.first_no + n - 1,
                    name,
                    cn.clone(),
                    vec![cn],
                    usize::try_from(n - 1)
                        .ok()
                        .and_then(|i| g.status_codes.get(i % g.status_codes.len().max(1)))
                        .copied()
                        .unwrap_or(g.status_code),
                    g.outcome,
                );
            }
        }
        Arc::new(Self {
            host: Arc::new(host),
            seed,
            keys: cfg.keys.clone(),
            clock_ms: cfg.clock_ms.and_then(|c| i64::try_from(c).ok()),
            member_no: cfg.member_no.clone(),
            processing: cfg.processing.0,
            retry_success: cfg.retry_success,
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
    fn settle(&self, cert: &mut Cert, now: jiff::Timestamp) {
        if let Some((_, issued)) = cert.processing.take_if(|(until, _)| now >= *until) {
            cert.updated = reply::now();
            if issued {
                cert.status = NORMAL;
                cert.valid_start = reply::now();
                cert.valid_end = reply::now() + jiff::SignedDuration::from_hours(24 * 365);
            } else {
                cert.status = VALIDATION_FAILED;
                cert.reissued = false;
            }
        }
    }

    pub fn state(&self) -> Value {
        let now = reply::now();
        let mut state = self.lock();
        let certs: Vec<Value> = state
            .certs
            .iter_mut()
            .map(|c| {
                self.settle(c, now);
                json!({"certificateNo": c.no, "certificateName": c.name, "statusCode": c.status,
                       "statusName": status_name(c.status), "reissues_accepted": c.attempts})
            })
            .collect();
        json!({"certificates": certs})
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(
            "/api/v2/certificate/certificates",
            get(certificates::list_v2),
        )
        .route("/api/v1/certificates", get(certificates::list_v1))
        .route(
            "/api/v2/certificate/{certificate_no}/reissue",
            post(certificates::reissue),
        )
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND) })
        .layer(from_fn_with_state(sim.clone(), gateway::gateway_layer))
        .with_state(sim)
}
