//! Open Telekom Cloud IAM and WAF (providers.md §4): password tokens in `X-Subject-Token`, and the
//! paged certificate list with its `host=true` gating, filters and `WAF.*` error codes.
//!
//! Inferred (providers.md [INF]): `pagesize` defaults to 10 and `-1` returns everything; an
//! illegal `exp_status` is a 400 `WAF.00011001`; a token scoped to another project gets
//! `WAF.00012002`; IAM errors use Keystone's `{"error": {code, message, title}}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use super::Kind;
use super::faults::{Injector, inject};
use super::host::Host;
use super::reply::{self, json as answer, parse_json, url_pairs};
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

struct WafCert {
    id: String,
    name: String,
    project_id: String,
    expire_time: i64,
    uploaded: i64,
    bind_hosts: Vec<String>,
}

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

fn iam_error(status: StatusCode, message: &str) -> Response {
    answer(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message, "title": status.canonical_reason().unwrap_or("Error")}}),
    )
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
        .route("/v3/auth/tokens", post(iam_tokens))
        .route("/v1/{project_id}/waf/certificate", get(list))
        .route(
            "/v1/{project_id}/waf/certificate/{certificate_id}",
            get(detail),
        )
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .with_state(sim)
}

async fn iam_tokens(
    State(sim): State<Arc<Sim>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(body) = parse_json(&body) else {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        );
    };
    let identity = &body["auth"]["identity"];
    let uses_password = identity["methods"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == "password"));
    let user = &identity["password"]["user"];
    let (Some(name), Some(password), Some(domain)) = (
        user["name"].as_str(),
        user["password"].as_str(),
        user["domain"]["name"].as_str(),
    ) else {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "The request you have made requires authentication: auth.identity.password.user needs name, password and domain.name.",
        );
    };
    if !uses_password {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "auth.identity.methods must contain \"password\".",
        );
    }
    let Some(account) = sim
        .users
        .iter()
        .find(|u| u.name == name && u.password == password && u.domain == domain)
    else {
        return iam_error(
            StatusCode::UNAUTHORIZED,
            "The username or password is wrong.",
        );
    };
    let scope = &body["auth"]["scope"]["project"];
    let project = match (scope["id"].as_str(), scope["name"].as_str()) {
        (Some(id), _) => sim.projects.iter().find(|p| p.id == id),
        (None, Some(n)) => sim.projects.iter().find(|p| p.name == n),
        // WAF is project-scoped: a domain-scoped token cannot call it.
        (None, None) => None,
    };
    let Some(project) = project else {
        return iam_error(
            StatusCode::UNAUTHORIZED,
            "The project in auth.scope.project is unknown or not accessible to this user; WAF needs a project-scoped token.",
        );
    };
    let mut tokens = sim.tokens();
    let n = tokens.len() as u64 + 1;
    // IAM tokens are PKI blobs of several kilobytes starting with MII.
    let blob: Vec<u8> = (0..24u64)
        .flat_map(|i| {
            rng::bytes::<64>(
                sim.seed,
                &[b"iam-token", &n.to_le_bytes(), &i.to_le_bytes()],
            )
        })
        .collect();
    let token = format!(
        "MII{}",
        base64::engine::general_purpose::STANDARD
            .encode(blob)
            .replace('/', "-")
    );
    let issued = reply::now();
    let expires = issued + sim.token_ttl;
    tokens.insert(
        token.clone(),
        Token {
            project_id: project.id.clone(),
            expires,
        },
    );
    drop(tokens);
    let nocatalog = query
        .as_deref()
        .is_some_and(|q| url_pairs(q).any(|(k, v)| k == "nocatalog" && v == "true"));
    let domain_id = format!(
        "{:032x}",
        rng::hash(sim.seed, &[b"iam-domain", account.domain.as_bytes()])
    );
    let mut body = json!({
        "token": {
            "methods": ["password"],
            "expires_at": reply::iso(expires),
            "issued_at": reply::iso(issued),
            "user": {
                "domain": {"id": domain_id, "name": account.domain},
                "id": format!("{:032x}", rng::hash(sim.seed, &[b"iam-user", account.name.as_bytes()])),
                "name": account.name,
                "password_expires_at": "",
            },
            "project": {"id": project.id, "name": project.name, "domain": {"id": domain_id, "name": account.domain}},
            "roles": [{"id": "0", "name": "waf_readonly"}, {"id": "1", "name": "te_agency"}],
        }
    });
    if !nocatalog {
        body["token"]["catalog"] = json!([{
            "endpoints": [{"id": "waf", "interface": "public", "region": project.name, "region_id": project.name, "url": "https://waf.eu-de.otc.t-systems.com"}],
            "id": "waf", "name": "waf", "type": "waf",
        }]);
    }
    let mut response = answer(StatusCode::CREATED, &body);
    if let Ok(v) = HeaderValue::from_str(&token) {
        response.headers_mut().insert("x-subject-token", v);
    }
    response
}

fn illegal_page() -> Response {
    waf_error(
        StatusCode::BAD_REQUEST,
        "WAF.00011011",
        "pageOrPageSize.illegal",
    )
}

async fn list(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let token_project = match sim.authorize(&headers) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if token_project != project_id {
        return waf_error(StatusCode::BAD_REQUEST, "WAF.00012002", "invalid.project");
    }
    let params: HashMap<String, String> = query
        .as_deref()
        .map(|q| url_pairs(q).collect())
        .unwrap_or_default();
    let int = |name: &str, default: i64| -> Result<i64, ()> {
        params
            .get(name)
            .map_or(Ok(default), |v| v.trim().parse().map_err(|_| ()))
    };
    let (Ok(page), Ok(page_size)) = (int("page", 1), int("pagesize", DEFAULT_PAGE_SIZE)) else {
        return illegal_page();
    };
    if page < 1 || !(page_size == -1 || (1..=MAX_PAGE_SIZE).contains(&page_size)) {
        return illegal_page();
    }
    let host = params
        .get("host")
        .is_some_and(|h| h.eq_ignore_ascii_case("true"));
    let exp_filter = match params.get("exp_status") {
        None => None,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(s @ 0..=2) => Some(s),
            _ => {
                return waf_error(
                    StatusCode::BAD_REQUEST,
                    "WAF.00011001",
                    "exp_status.illegal",
                );
            }
        },
    };
    let name = params.get("name").map(|n| n.to_lowercase());
    let now = reply::now_ms();
    let matched: Vec<&WafCert> = sim
        .certificates
        .iter()
        .filter(|c| c.project_id == project_id)
        .filter(|c| {
            name.as_ref()
                .is_none_or(|n| c.name.to_lowercase().contains(n.as_str()))
        })
        .filter(|c| exp_filter.is_none_or(|s| sim.exp_status(c, now) == s))
        .collect();
    let total = matched.len();
    let page_items: &[&WafCert] = if page_size == -1 {
        &matched
    } else {
        let size = usize::try_from(page_size).unwrap_or(usize::MAX);
        let start = usize::try_from(page - 1)
            .unwrap_or(usize::MAX)
            .saturating_mul(size)
            .min(total);
        &matched[start..start.saturating_add(size).min(total)]
    };
    let items: Vec<Value> = page_items
        .iter()
        .map(|c| {
            sim.host.stats.touch(&c.id);
            let mut item = json!({
                "id": c.id,
                "name": c.name,
                // Verbatim from the docs: the redundant fields end in a comma.
                "certificateid": format!("{},", c.id),
                "certificatename": format!("{},", c.name),
                "timestamp": c.uploaded,
            });
            if host {
                item["expire_time"] = json!(c.expire_time);
                item["exp_status"] = json!(sim.exp_status(c, now));
                item["bind_host"] = json!(sim.bind_host(c));
            }
            item
        })
        .collect();
    answer(StatusCode::OK, &json!({"total": total, "items": items}))
}

async fn detail(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((project_id, certificate_id)): Path<(String, String)>,
) -> Response {
    let token_project = match sim.authorize(&headers) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if token_project != project_id {
        return waf_error(StatusCode::BAD_REQUEST, "WAF.00012002", "invalid.project");
    }
    let Some(c) = sim
        .certificates
        .iter()
        .find(|c| c.id == certificate_id && c.project_id == project_id)
    else {
        return waf_error(StatusCode::NOT_FOUND, "WAF.00022001", "resource.not.found");
    };
    sim.host.stats.touch(&c.id);
    answer(
        StatusCode::OK,
        &json!({
            "id": c.id,
            "name": c.name,
            "content": format!("-----BEGIN CERTIFICATE-----\nMIIsandbox{}\n-----END CERTIFICATE-----\n", c.id),
            // The detail call returns the private key: clients must redact it.
            "key": "-----BEGIN PRIVATE KEY-----\nMIIsandbox-not-a-real-key\n-----END PRIVATE KEY-----\n",
            "expire_time": c.expire_time,
            "timestamp": c.uploaded,
            "bind_host": sim.bind_host(c),
        }),
    )
}
