//! Open Telekom Cloud IAM and WAF (providers.md §4): password tokens in `X-Subject-Token`, and the
//! paged certificate list with its `host=true` gating, filters and `WAF.*` error codes.
//!
//! Inferred (providers.md [INF]): `pagesize` defaults to 10 and `-1` returns everything; an
//! illegal `exp_status` is a 400 `WAF.00011001`; a token scoped to another project gets
//! `WAF.00012002`; IAM errors use Keystone's `{"error": {code, message, title}}`.

mod iam;
mod waf;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
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
use super::scenario::{OtcProject, OtcScenario, OtcUser, name_for};
use crate::rng;

const MAX_PAGE_SIZE: i64 = 100;
const DEFAULT_PAGE_SIZE: i64 = 10;
const MONTH_MS: i64 = 30 * 86_400_000;

pub struct Sim {
    pub host: Arc<Host>,
    seed: u64,
    users: Vec<OtcUser>,
    projects: Vec<OtcProject>,
    token_ttl: Duration,
    certificates: Vec<WafCert>,
    tokens: Mutex<HashMap<String, Token>>,
}

/// What a world file keeps of this provider.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Objects {
    tokens: HashMap<String, Token>,
}

struct WafCert {
    id: String,
    name: String,
    project_id: String,
    expire_time: i64,
    uploaded: i64,
    bind_hosts: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Token {
    project_id: String,
    expires: jiff::Timestamp,
}

/// WAF's own error format.
fn waf_error(status: StatusCode, code: &str, message: &str) -> Response {
    answer(status, &json!({"error_code": code, "error_msg": message}))
}

/// The API gateway's format (it adds a request id).
fn gateway_error(status: StatusCode, code: &str, message: &str, seed: u64) -> Response {
    answer(
        status,
        &json!({
            "error_code": code,
            "error_msg": message,
            "request_id": format!("{:032x}", rng::hash(seed, &[code.as_bytes(), message.as_bytes()])),
        }),
    )
}

pub fn error_response(status: StatusCode) -> Response {
    match status.as_u16() {
        429 => gateway_error(
            status,
            "APIG.0308",
            "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 minute",
            0,
        ),
        503 => waf_error(status, "WAF.00010002", "system.busy"),
        _ => waf_error(status, "WAF.00010001", "internal.error"),
    }
}

impl Sim {
    pub fn new(cfg: &OtcScenario, seed: u64) -> Arc<Self> {
        let host = Host::new(
            Kind::OtcWaf,
            Injector::new(cfg.faults.clone(), seed, "otc_waf"),
            error_response,
        );
        let now = reply::now_ms();
        let default_project = cfg
            .projects
            .first()
            .map(|p| p.id.clone())
            .unwrap_or_default();
        let project_of = |p: &Option<String>| {
            p.as_ref()
                .and_then(|p| cfg.projects.iter().find(|x| &x.id == p || &x.name == p))
                .map_or_else(|| default_project.clone(), |x| x.id.clone())
        };
        let hex_id = |name: &str| {
            format!(
                "{:016x}{:016x}",
                rng::hash(seed, &[b"waf-id", name.as_bytes()]),
                rng::hash(seed, &[b"waf-id2", name.as_bytes()])
            )
        };
        let mut certificates: Vec<WafCert> = cfg
            .certificates
            .iter()
            .map(|c| WafCert {
                id: c.id.clone().unwrap_or_else(|| hex_id(&c.name)),
                name: c.name.clone(),
                project_id: project_of(&c.project),
                expire_time: now + c.expires_in_days * 86_400_000,
                uploaded: now - 200 * 86_400_000,
                bind_hosts: c.bind_hosts.clone(),
            })
            .collect();
        for g in &cfg.generate {
            for n in 1..=g.count {
                let name = name_for(&g.name, n);
                let spread = if g.spread_days == 0 {
                    0
                } else {
                    i64::try_from(n % u64::from(g.spread_days)).unwrap_or(0)
                };
                certificates.push(WafCert {
                    id: hex_id(&name),
                    bind_hosts: if g.bound {
                        vec![format!("{name}.example.com")]
                    } else {
                        Vec::new()
                    },
                    name,
                    project_id: default_project.clone(),
                    expire_time: now + (g.expires_in_days + spread) * 86_400_000,
                    uploaded: now - 200 * 86_400_000,
                });
            }
        }
        Arc::new(Self {
            host: Arc::new(host),
            seed,
            users: cfg.users.clone(),
            projects: cfg.projects.clone(),
            token_ttl: cfg.token_ttl.0,
            certificates,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<String, Token>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The issued tokens, the only thing a request changes here (certificates are read-only).
    pub fn saved(&self) -> Objects {
        Objects {
            tokens: self.tokens().clone(),
        }
    }

    pub fn restore(&self, objects: Objects) {
        *self.tokens() = objects.tokens;
    }

    /// The token's project, or the gateway's 401.
    fn authorize(&self, headers: &HeaderMap) -> Result<String, Response> {
        let fail = |message: String| {
            gateway_error(
                StatusCode::UNAUTHORIZED,
                "APIG.0301",
                &format!("Incorrect IAM authentication information: {message}"),
                self.seed,
            )
        };
        let Some(token) = reply::header(headers, "x-auth-token") else {
            return Err(fail("x-auth-token not found".into()));
        };
        let tokens = self.tokens();
        match tokens.get(token) {
            None => Err(fail("decrypt token fail".into())),
            Some(t) if t.expires <= reply::now() => Err(fail(format!(
                "token expires, expires_at: {}",
                reply::iso(t.expires)
            ))),
            Some(t) => Ok(t.project_id.clone()),
        }
    }

    fn exp_status(&self, c: &WafCert, now: i64) -> i64 {
        if c.expire_time <= now {
            1
        } else if c.expire_time - now <= MONTH_MS {
            2
        } else {
            0
        }
    }

    pub fn state(&self) -> Value {
        let now = reply::now_ms();
        let certs: Vec<Value> = self
            .certificates
            .iter()
            .map(|c| json!({"id": c.id, "name": c.name, "project_id": c.project_id, "expire_time": c.expire_time, "exp_status": self.exp_status(c, now), "bind_host": c.bind_hosts}))
            .collect();
        json!({"certificates": certs, "tokens": self.tokens().len()})
    }

    fn bind_host(&self, c: &WafCert) -> Vec<Value> {
        c.bind_hosts
            .iter()
            .map(|h| json!({"id": format!("{:032x}", rng::hash(self.seed, &[b"waf-host", h.as_bytes()])), "hostname": h, "waf_type": "premium", "mode": "elb"}))
            .collect()
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/v3/auth/tokens", post(iam::iam_tokens))
        .route("/v1/{project_id}/waf/certificate", get(waf::list))
        .route(
            "/v1/{project_id}/waf/certificate/{certificate_id}",
            get(waf::detail),
        )
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .with_state(sim)
}
