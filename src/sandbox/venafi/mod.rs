//! Venafi TPP (providers.md §1): OAuth with single-use refresh tokens, `Config/DnToGuid`,
//! certificate details and search, and `Certificates/Retry` with its documented 400 answers.
//! Paths are matched case-insensitively, as IIS does.
//!
//! Inferred where the docs are silent (providers.md [INF]): 400 bodies are `{"Error": …}`;
//! `/vedauth` errors are OAuth-style `{"error", "error_description"}`; an unknown DN answers
//! "… does not exist or you do not have sufficient rights to the object."; a token without
//! `certificate:manage` gets 403; a `WorkToDoTimeout` shorter than the processing time answers
//! 202 like `Certificates/Request`; an out-of-range `WorkToDoTimeout` is a 400.

mod auth;
mod certificates;
mod search;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Kind;
use super::faults::Injector;
use super::host::Host;
use super::inject::inject;
use super::reply::{self, bearer, json as answer};
use super::scenario::{
    Outcome, User, VenafiCertificate, VenafiClient, VenafiRetryError, VenafiScenario, name_for,
};
use crate::rng;

const MAX_WORK_TO_DO_TIMEOUT: u64 = 120;

pub struct Sim {
    pub host: Arc<Host>,
    seed: u64,
    clients: Vec<VenafiClient>,
    users: Vec<User>,
    token_ttl: Duration,
    refresh_ttl: Duration,
    processing: Duration,
    retry_success: f64,
    state: Mutex<Objects>,
}

/// Everything a request can change; the indexes are rebuilt on restore.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Objects {
    certs: Vec<Cert>,
    #[serde(skip)]
    by_dn: HashMap<String, usize>,
    #[serde(skip)]
    by_guid: HashMap<String, usize>,
    tokens: HashMap<String, Token>,
    grants: HashMap<String, Grant>,
    issued: u64,
    /// Refresh tokens presented again or after their grant ended (`invalid_grant`): what a
    /// client sharing one pair between runners must never cause.
    #[serde(default)]
    refresh_refused: u64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Cert {
    dn: String,
    guid: String,
    in_error: bool,
    stage: i64,
    status: String,
    consumers: Vec<String>,
    outcome: Option<Outcome>,
    retry_error: Option<VenafiRetryError>,
    processing: Option<Processing>,
    attempts: u32,
    /// An accepted retry that has not ended in error again: another retry is a duplicate.
    retried: bool,
    created: jiff::Timestamp,
    valid_to: jiff::Timestamp,
    /// Defaults let a world saved before these fields existed load.
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    pending_workflow: bool,
}

#[derive(Clone, Serialize, Deserialize)]
struct Processing {
    until: jiff::Timestamp,
    fixes: bool,
    stage: i64,
    status: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Token {
    client_id: String,
    username: String,
    scope: String,
    issued: jiff::Timestamp,
    expires: jiff::Timestamp,
    grant_issued: jiff::Timestamp,
}

#[derive(Clone, Serialize, Deserialize)]
struct Grant {
    client_id: String,
    username: String,
    scope: String,
    issued: jiff::Timestamp,
    refresh_until: jiff::Timestamp,
}

fn key(dn: &str) -> String {
    dn.trim().to_lowercase()
}

fn bare_guid(guid: &str) -> String {
    guid.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_lowercase()
}

fn parent_of(dn: &str) -> &str {
    dn.rfind('\\').map_or("", |i| &dn[..i])
}

fn name_of(dn: &str) -> &str {
    dn.rfind('\\').map_or(dn, |i| &dn[i + 1..])
}

fn error(message: impl Into<String>) -> Response {
    answer(StatusCode::BAD_REQUEST, &json!({"Error": message.into()}))
}

fn unauthorized() -> Response {
    let mut response = reply::empty(StatusCode::UNAUTHORIZED);
    response.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Bearer realm=\"Venafi Trust Protection Platform\""),
    );
    response
}

/// The body of an injected error. A 500 is SQL Server's deadlock text, which clients (pytpp)
/// recognise by "rerun the transaction".
pub fn error_response(status: StatusCode) -> Response {
    let message = match status.as_u16() {
        500 => {
            "Transaction (Process ID 87) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction."
        }
        429 => "Too many requests.",
        503 => "The service is unavailable.",
        _ => "The request failed.",
    };
    answer(status, &json!({"Error": message}))
}

impl Objects {
    fn reindex(&mut self) {
        self.by_dn.clear();
        self.by_guid.clear();
        for (i, c) in self.certs.iter().enumerate() {
            self.by_dn.insert(key(&c.dn), i);
            self.by_guid.insert(bare_guid(&c.guid), i);
        }
    }

    /// Adds a certificate unless its DN is taken (the first listing wins).
    fn add(&mut self, cert: Cert) {
        let k = key(&cert.dn);
        if self.by_dn.contains_key(&k) {
            return;
        }
        let index = self.certs.len();
        self.by_guid.insert(bare_guid(&cert.guid), index);
        self.by_dn.insert(k, index);
        self.certs.push(cert);
    }
}

impl Cert {
    /// A certificate as the scenario lists it; ids and validity derive from the seed and the DN.
    fn seeded(spec: &VenafiCertificate, seed: u64, now: jiff::Timestamp) -> Self {
        let k = key(&spec.dn);
        let guid = format!("{{{}}}", rng::uuid(seed, &[b"venafi-guid", k.as_bytes()]));
        let days = spec.valid_days.unwrap_or_else(|| {
            30 + i64::try_from(rng::hash(seed, &[b"venafi-valid", k.as_bytes()]) % 300).unwrap_or(0)
        });
        let in_error = spec.in_error;
        Self {
            in_error,
            stage: if in_error {
                spec.stage.unwrap_or(500)
            } else {
                0
            },
            status: if in_error {
                spec.status
                    .clone()
                    .unwrap_or_else(|| "Post processing failed".to_owned())
            } else {
                String::new()
            },
            dn: spec.dn.clone(),
            guid,
            consumers: spec.consumers.clone(),
            outcome: spec.outcome,
            retry_error: spec.retry_error,
            processing: None,
            attempts: 0,
            retried: false,
            created: now - jiff::SignedDuration::from_hours(24 * 400),
            valid_to: now + jiff::SignedDuration::from_hours(24 * days),
            disabled: spec.disabled,
            pending_workflow: spec.pending_workflow,
        }
    }
}

/// The scenario's listed certificates, then the generated ones.
fn seed_objects(cfg: &VenafiScenario, seed: u64) -> Objects {
    let now = reply::now();
    let mut state = Objects::default();
    for c in &cfg.certificates {
        state.add(Cert::seeded(c, seed, now));
    }
    for g in &cfg.generate {
        for n in 1..=g.count {
            let spec = VenafiCertificate {
                dn: format!(
                    "{}\\{}",
                    g.parent.trim_end_matches('\\'),
                    name_for(&g.name, n)
                ),
                in_error: g.in_error,
                stage: g.stage,
                status: g.status.clone(),
                consumers: Vec::new(),
                outcome: g.outcome,
                retry_error: None,
                disabled: g.disabled,
                pending_workflow: g.pending_workflow,
                valid_days: g.valid_days,
            };
            state.add(Cert::seeded(&spec, seed, now));
        }
    }
    state
}

impl Sim {
    pub fn new(cfg: &VenafiScenario, seed: u64) -> Arc<Self> {
        let mut host = Host::new(
            Kind::VenafiTpp,
            Injector::new(cfg.faults.clone(), seed, "venafi_tpp"),
            error_response,
        );
        host.case_insensitive_paths = true;
        let state = seed_objects(cfg, seed);
        Arc::new(Self {
            host: Arc::new(host),
            seed,
            clients: cfg.clients.clone(),
            users: cfg.users.clone(),
            token_ttl: cfg.token_ttl.0,
            refresh_ttl: cfg.refresh_ttl.0,
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

    /// The token behind `Authorization: Bearer`, if it is known and unexpired.
    fn authorize(&self, headers: &HeaderMap) -> Result<(String, String), Response> {
        let token = bearer(headers).ok_or_else(unauthorized)?;
        let state = self.lock();
        match state.tokens.get(token) {
            Some(t) if t.expires > reply::now() => Ok((t.scope.clone(), t.username.clone())),
            _ => Err(unauthorized()),
        }
    }

    fn settle(&self, cert: &mut Cert, now: jiff::Timestamp) {
        if let Some(p) = cert.processing.take_if(|p| now >= p.until) {
            if p.fixes {
                cert.in_error = false;
                cert.stage = 0;
                cert.status = String::new();
                cert.valid_to = reply::now() + jiff::SignedDuration::from_hours(24 * 365);
            } else {
                cert.in_error = true;
                cert.stage = p.stage;
                cert.status = p.status;
                cert.retried = false;
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
                json!({
                    "dn": c.dn, "guid": c.guid, "in_error": c.in_error, "stage": c.stage,
                    "status": c.status, "processing": c.processing.is_some(),
                    "retries_accepted": c.attempts,
                })
            })
            .collect();
        json!({
            "certificates": certs, "tokens": state.tokens.len(), "grants": state.grants.len(),
            "tokens_issued": state.issued, "refresh_refused": state.refresh_refused,
        })
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/vedauth/authorize/oauth", post(auth::oauth))
        .route("/vedauth/authorize/token", post(auth::refresh))
        .route("/vedauth/authorize/verify", get(auth::verify))
        .route("/vedauth/revoke/token", get(auth::revoke))
        .route("/vedauth/authorize/isauthserver", get(auth::is_auth_server))
        .route("/vedsdk/config/dntoguid", post(certificates::dn_to_guid))
        .route("/vedsdk/certificates", get(search::search))
        .route("/vedsdk/certificates/", get(search::search))
        .route("/vedsdk/certificates/retry", post(certificates::retry))
        .route("/vedsdk/certificates/{guid}", get(certificates::details))
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .with_state(sim)
}

fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}
