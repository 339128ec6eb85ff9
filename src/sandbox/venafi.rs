//! Venafi TPP (providers.md §1): OAuth with single-use refresh tokens, `Config/DnToGuid`,
//! certificate details and search, and `Certificates/Retry` with its documented 400 answers.
//! Paths are matched case-insensitively, as IIS does.
//!
//! Inferred where the docs are silent (providers.md [INF]): 400 bodies are `{"Error": …}`;
//! `/vedauth` errors are OAuth-style `{"error", "error_description"}`; an unknown DN answers
//! "… does not exist or you do not have sufficient rights to the object."; a token without
//! `certificate:manage` gets 403; a `WorkToDoTimeout` shorter than the processing time answers
//! 202 like `Certificates/Request`; an out-of-range `WorkToDoTimeout` is a 400.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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
use super::reply::{self, bearer, json as answer, parse_json, url_pairs};
use super::scenario::{Outcome, User, VenafiClient, VenafiRetryError, VenafiScenario, name_for};
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

#[derive(Default)]
struct Objects {
    certs: Vec<Cert>,
    by_dn: HashMap<String, usize>,
    by_guid: HashMap<String, usize>,
    tokens: HashMap<String, Token>,
    grants: HashMap<String, Grant>,
    issued: u64,
}

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
}

struct Processing {
    until: Instant,
    fixes: bool,
    stage: i64,
    status: String,
}

struct Token {
    client_id: String,
    username: String,
    scope: String,
    issued: jiff::Timestamp,
    expires: jiff::Timestamp,
    grant_issued: jiff::Timestamp,
}

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

fn oauth_error(code: &str, description: &str) -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        &json!({"error": code, "error_description": description}),
    )
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

/// Scope strings look like `certificate:manage,revoke;configuration`.
fn scope_allows(allowed: &str, requested: &str) -> bool {
    let parse = |s: &str| -> HashMap<String, Vec<String>> {
        s.split(';')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let (name, restrictions) = p.split_once(':').unwrap_or((p, ""));
                (
                    name.trim().to_ascii_lowercase(),
                    restrictions
                        .split(',')
                        .map(|r| r.trim().to_ascii_lowercase())
                        .filter(|r| !r.is_empty())
                        .collect(),
                )
            })
            .collect()
    };
    let allowed = parse(allowed);
    parse(requested).iter().all(|(name, wanted)| {
        allowed
            .get(name)
            .is_some_and(|have| wanted.iter().all(|w| have.contains(w)))
    })
}

fn has_scope(scope: &str, name: &str, restriction: &str) -> bool {
    scope_allows(scope, &format!("{name}:{restriction}"))
}

impl Sim {
    pub fn new(cfg: &VenafiScenario, seed: u64) -> Arc<Self> {
        let mut host = Host::new(
            Kind::VenafiTpp,
            Injector::new(cfg.faults.clone(), seed, "venafi_tpp"),
            error_response,
        );
        host.case_insensitive_paths = true;
        let mut state = Objects::default();
        let now = reply::now();
        let mut add = |dn: String,
                       in_error: bool,
                       stage: Option<i64>,
                       status: Option<String>,
                       consumers: Vec<String>,
                       outcome: Option<Outcome>,
                       retry_error: Option<VenafiRetryError>| {
            let k = key(&dn);
            if state.by_dn.contains_key(&k) {
                return;
            }
            let guid = format!("{{{}}}", rng::uuid(seed, &[b"venafi-guid", k.as_bytes()]));
            let days =
                i64::try_from(rng::hash(seed, &[b"venafi-valid", k.as_bytes()]) % 300).unwrap_or(0);
            let index = state.certs.len();
            state.by_guid.insert(bare_guid(&guid), index);
            state.by_dn.insert(k, index);
            state.certs.push(Cert {
                in_error,
                stage: if in_error { stage.unwrap_or(500) } else { 0 },
                status: if in_error {
                    status.unwrap_or_else(|| "Post processing failed".to_owned())
                } else {
                    String::new()
                },
                dn,
                guid,
                consumers,
                outcome,
                retry_error,
                processing: None,
                attempts: 0,
                retried: false,
                created: now - jiff::SignedDuration::from_hours(24 * 400),
                valid_to: now + jiff::SignedDuration::from_hours(24 * (days + 30)),
            });
        };
        for c in &cfg.certificates {
            add(
                c.dn.clone(),
                c.in_error,
                c.stage,
                c.status.clone(),
                c.consumers.clone(),
                c.outcome,
                c.retry_error,
            );
        }
        for g in &cfg.generate {
            for n in 1..=g.count {
                let dn = format!(
                    "{}\\{}",
                    g.parent.trim_end_matches('\\'),
                    name_for(&g.name, n)
                );
                add(dn, g.in_error, None, None, Vec::new(), g.outcome, None);
            }
        }
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

    /// The token behind `Authorization: Bearer`, if it is known and unexpired.
    fn authorize(&self, headers: &HeaderMap) -> Result<(String, String), Response> {
        let token = bearer(headers).ok_or_else(unauthorized)?;
        let state = self.lock();
        match state.tokens.get(token) {
            Some(t) if t.expires > reply::now() => Ok((t.scope.clone(), t.username.clone())),
            _ => Err(unauthorized()),
        }
    }

    fn settle(&self, cert: &mut Cert, now: Instant) {
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

    fn issue(
        &self,
        state: &mut Objects,
        client_id: &str,
        username: &str,
        scope: &str,
        grant_issued: Option<jiff::Timestamp>,
    ) -> Value {
        state.issued += 1;
        let n = state.issued.to_le_bytes();
        let b64 = base64::engine::general_purpose::STANDARD;
        let access = b64.encode(rng::bytes::<16>(self.seed, &[b"venafi-access", &n]));
        let refresh = b64.encode(rng::bytes::<16>(self.seed, &[b"venafi-refresh", &n]));
        let now = reply::now();
        let expires = now + self.token_ttl;
        let grant_issued = grant_issued.unwrap_or(now);
        let refresh_until = grant_issued + self.refresh_ttl;
        state.tokens.insert(
            access.clone(),
            Token {
                client_id: client_id.to_owned(),
                username: username.to_owned(),
                scope: scope.to_owned(),
                issued: now,
                expires,
                grant_issued,
            },
        );
        state.grants.insert(
            refresh.clone(),
            Grant {
                client_id: client_id.to_owned(),
                username: username.to_owned(),
                scope: scope.to_owned(),
                issued: grant_issued,
                refresh_until,
            },
        );
        json!({
            "access_token": access,
            "expires": expires.as_second(),
            "expires_in": self.token_ttl.as_secs(),
            "identity": format!("local:{{{}}}", rng::uuid(self.seed, &[b"venafi-identity", username.as_bytes()])),
            "refresh_token": refresh,
            "refresh_until": refresh_until.as_second(),
            "scope": scope,
            "token_type": "Bearer",
        })
    }

    pub fn state(&self) -> Value {
        let now = Instant::now();
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
        json!({"certificates": certs, "tokens": state.tokens.len(), "grants": state.grants.len()})
    }

    fn certificate_json(c: &Cert) -> Value {
        json!({
            "Approver": [],
            "CertificateAuthorityDN": "\\VED\\Policy\\Administration\\CAs\\Issuing CA",
            "CertificateDetails": {
                "CN": name_of(&c.dn),
                "Serial": format!("{:016X}{:016X}", rng::hash(0, &[b"serial", c.guid.as_bytes()]), rng::hash(1, &[b"serial", c.guid.as_bytes()])),
                "Thumbprint": format!("{:016X}{:016X}{:08X}", rng::hash(0, &[b"thumb", c.guid.as_bytes()]), rng::hash(1, &[b"thumb", c.guid.as_bytes()]), rng::hash(2, &[b"thumb", c.guid.as_bytes()]) & 0xFFFF_FFFF),
                "SubjectAltNameDNS": [name_of(&c.dn)],
                "ValidFrom": reply::iso(c.created),
                "ValidTo": reply::iso(c.valid_to),
            },
            "Consumers": c.consumers,
            "Contact": ["local:{b1c77034-c099-4a5c-9911-9e26007817da}"],
            "CreatedBy": ["Web SDK"],
            "CreatedOn": reply::iso(c.created),
            "CustomFields": [],
            "DN": c.dn,
            "Disabled": false,
            "Guid": c.guid,
            "ManagementType": "Provisioning",
            "Name": name_of(&c.dn),
            "ParentDn": parent_of(&c.dn),
            "ProcessingDetails": {
                "InError": c.in_error,
                "Stage": c.stage,
                "Status": c.status,
            },
            "RenewalDetails": {"Subject": name_of(&c.dn)},
            "SchemaClass": "X509 Server Certificate",
            "ValidationDetails": {"LastValidationStateUpdate": reply::iso(c.created), "ValidationState": "Success"},
        })
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/vedauth/authorize/oauth", post(oauth))
        .route("/vedauth/authorize/token", post(refresh))
        .route("/vedauth/authorize/verify", get(verify))
        .route("/vedauth/revoke/token", get(revoke))
        .route("/vedauth/authorize/isauthserver", get(is_auth_server))
        .route("/vedsdk/config/dntoguid", post(dn_to_guid))
        .route("/vedsdk/certificates", get(search))
        .route("/vedsdk/certificates/", get(search))
        .route("/vedsdk/certificates/retry", post(retry))
        .route("/vedsdk/certificates/{guid}", get(details))
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .with_state(sim)
}

fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

async fn oauth(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return oauth_error("invalid_request", "The request body is not valid JSON.");
    };
    let (Some(client_id), Some(username), Some(password)) = (
        str_field(&body, "client_id"),
        str_field(&body, "username"),
        str_field(&body, "password"),
    ) else {
        return oauth_error(
            "invalid_request",
            "client_id, username and password are required.",
        );
    };
    let scope = str_field(&body, "scope").unwrap_or("certificate");
    // client_id is case-sensitive here.
    let Some(client) = sim.clients.iter().find(|c| c.client_id == client_id) else {
        return oauth_error("invalid_client", "Unknown client_id.");
    };
    if !sim
        .users
        .iter()
        .any(|u| u.username.eq_ignore_ascii_case(username) && u.password == password)
    {
        return oauth_error("invalid_grant", "Username/password combination not valid");
    }
    if !scope_allows(&client.scope, scope) {
        return oauth_error(
            "invalid_scope",
            "The requested scope is not allowed for this API integration.",
        );
    }
    let mut state = sim.lock();
    let mut token = sim.issue(&mut state, client_id, username, scope, None);
    if let Some(s) = body.get("state") {
        token["state"] = s.clone();
    }
    answer(StatusCode::OK, &token)
}

async fn refresh(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return oauth_error("invalid_request", "The request body is not valid JSON.");
    };
    let (Some(client_id), Some(refresh_token)) = (
        str_field(&body, "client_id"),
        str_field(&body, "refresh_token"),
    ) else {
        return oauth_error(
            "invalid_request",
            "client_id and refresh_token are required.",
        );
    };
    let mut state = sim.lock();
    // Single use: the grant is gone whatever happens next.
    let Some(grant) = state.grants.remove(refresh_token) else {
        return oauth_error(
            "invalid_grant",
            "Grant has been revoked, has expired, or the refresh token is invalid",
        );
    };
    if grant.refresh_until <= reply::now() {
        return oauth_error(
            "invalid_grant",
            "Grant has been revoked, has expired, or the refresh token is invalid",
        );
    }
    if grant.client_id != client_id {
        state.grants.insert(refresh_token.to_owned(), grant);
        return oauth_error(
            "invalid_request",
            "The client_id value being requested with the refresh token does not match the client_id of the access token making the call",
        );
    }
    let token = sim.issue(
        &mut state,
        &grant.client_id,
        &grant.username,
        &grant.scope,
        Some(grant.issued),
    );
    answer(StatusCode::OK, &token)
}

async fn verify(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return unauthorized();
    };
    let state = sim.lock();
    let Some(t) = state.tokens.get(token).filter(|t| t.expires > reply::now()) else {
        return unauthorized();
    };
    let valid_for = (t.expires - reply::now()).get_seconds().max(0);
    answer(
        StatusCode::OK,
        &json!({
            "access_issued_on_ISO8601": reply::iso(t.issued),
            "access_issued_on_unix_time": t.issued.as_second(),
            "application": t.client_id,
            "expires_ISO8601": reply::iso(t.expires),
            "expires_unix_time": t.expires.as_second(),
            "grant_issued_on_ISO8601": reply::iso(t.grant_issued),
            "grant_issued_on_unix_time": t.grant_issued.as_second(),
            "identity": format!("local:{{{}}}", rng::uuid(sim.seed, &[b"venafi-identity", t.username.as_bytes()])),
            "scope": t.scope,
            "valid_for": valid_for,
        }),
    )
}

async fn revoke(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return unauthorized();
    };
    let mut state = sim.lock();
    match state.tokens.remove(token) {
        Some(t) => {
            // Revoking the access token revokes its grant too.
            state
                .grants
                .retain(|_, g| !(g.username == t.username && g.issued == t.grant_issued));
            reply::empty(StatusCode::OK)
        }
        None => unauthorized(),
    }
}

async fn is_auth_server() -> Response {
    let mut response = Response::new(axum::body::Body::from("Venafi Authentication Server"));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

async fn dn_to_guid(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let Some(body) = parse_json(&body) else {
        return error("The request body is not valid JSON.");
    };
    let dn = str_field(&body, "ObjectDN").unwrap_or_default();
    sim.host.stats.touch(dn);
    let state = sim.lock();
    match state.by_dn.get(&key(dn)).map(|&i| &state.certs[i]) {
        Some(c) => answer(
            StatusCode::OK,
            &json!({
                "ClassName": "X509 Server Certificate",
                "GUID": c.guid,
                "HierarchicalGUID": format!("{{{}}}{}", rng::uuid(sim.seed, &[b"venafi-root"]), c.guid),
                "Revision": 1 + i64::from(c.attempts),
                "Result": 1,
            }),
        ),
        // Config result 400 (ObjectDoesNotExist) at HTTP 200.
        None => answer(StatusCode::OK, &json!({"Result": 400})),
    }
}

async fn details(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let now = Instant::now();
    let mut state = sim.lock();
    let Some(&i) = state.by_guid.get(&bare_guid(&guid)) else {
        return error(format!(
            "Certificate {guid} does not exist or you do not have sufficient rights to the object."
        ));
    };
    let cert = &mut state.certs[i];
    sim.settle(cert, now);
    sim.host.stats.touch(&cert.dn);
    answer(StatusCode::OK, &Sim::certificate_json(cert))
}

async fn search(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    // Query keys are case-insensitive on TPP.
    let params: HashMap<String, String> = query
        .as_deref()
        .map(|q| {
            url_pairs(q)
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect()
        })
        .unwrap_or_default();
    let flag = |name: &str| {
        params
            .get(name)
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"))
    };
    let number = |name: &str| params.get(name).and_then(|v| v.parse::<i64>().ok());
    let limit = number("limit").unwrap_or(100).clamp(0, 100_000);
    let offset = number("offset").unwrap_or(0).max(0);
    let in_error = flag("inerror");
    let parent = params.get("parentdn").map(|p| key(p));
    let recursive = params.get("parentdnrecursive").map(|p| key(p));
    let now = Instant::now();
    let mut state = sim.lock();
    let mut matched = Vec::new();
    for c in &mut state.certs {
        sim.settle(c, now);
        let k = key(&c.dn);
        let keep = in_error.is_none_or(|want| c.in_error == want)
            && parent.as_ref().is_none_or(|p| key(parent_of(&c.dn)) == *p)
            && recursive
                .as_ref()
                .is_none_or(|p| k.starts_with(&format!("{}\\", p.trim_end_matches('\\'))))
            && number("stage").is_none_or(|s| c.stage == s)
            && number("stagegreater").is_none_or(|s| c.stage > s)
            && number("stageless").is_none_or(|s| c.stage < s);
        if keep {
            matched.push(c);
        }
    }
    let total = matched.len();
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
    let end = start
        .saturating_add(usize::try_from(limit).unwrap_or(usize::MAX))
        .min(total);
    let page: Vec<Value> = matched[start..end]
        .iter()
        .map(|c| {
            json!({
                "CreatedOn": reply::iso(c.created),
                "DN": c.dn,
                "Guid": c.guid,
                "Name": name_of(&c.dn),
                "ParentDn": parent_of(&c.dn),
                "SchemaClass": "X509 Server Certificate",
                "_links": [{"Details": format!("/vedsdk/certificates/{}", c.guid)}],
            })
        })
        .collect();
    let mut response = answer(
        StatusCode::OK,
        &json!({
            "Certificates": page,
            "DataRange": format!("Certificates {} to {}", start + 1, end),
            "TotalCount": total,
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        response.headers_mut().insert("x-record-count", v);
    }
    response
}

async fn retry(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let scope = match sim.authorize(&headers) {
        Ok((scope, _)) => scope,
        Err(e) => return e,
    };
    if !has_scope(&scope, "certificate", "manage") {
        return answer(
            StatusCode::FORBIDDEN,
            &json!({"Error": "Certificates/Retry requires a token with the certificate:manage scope."}),
        );
    }
    let Some(body) = parse_json(&body) else {
        return error("The request body is not valid JSON.");
    };
    let dn = str_field(&body, "CertificateDN")
        .unwrap_or_default()
        .to_owned();
    if dn.trim().is_empty() {
        return error(format!(
            "Invalid CertificateDN format. The Certificate DN contained null or white spaces for [{dn}]."
        ));
    }
    let wait = match body.get("WorkToDoTimeout") {
        None | Some(Value::Null) => 0,
        Some(v) => match reply::loose_u64(v).filter(|t| *t <= MAX_WORK_TO_DO_TIMEOUT) {
            Some(t) => t,
            None => {
                return error(format!(
                    "Invalid WorkToDoTimeout [{v}]. It must be between 0 and {MAX_WORK_TO_DO_TIMEOUT} seconds."
                ));
            }
        },
    };
    let now = Instant::now();
    let (guid, remaining) = {
        let mut state = sim.lock();
        let Some(&i) = state.by_dn.get(&key(&dn)) else {
            sim.host.stats.touch(&dn);
            return error(format!(
                "Certificate {dn} does not exist or you do not have sufficient rights to the object."
            ));
        };
        let cert = &mut state.certs[i];
        sim.settle(cert, now);
        let duplicate = cert.retried;
        if let Some(kind) = cert.retry_error {
            sim.host.stats.mutation(&cert.dn, false, duplicate);
            let consumer = cert
                .consumers
                .first()
                .cloned()
                .unwrap_or_else(|| "\\VED\\Policy\\Applications\\default".into());
            return error(match kind {
                VenafiRetryError::AccessDenied => format!(
                    "Access error. Certificates/Retry requires write permissions for certificate [{}].",
                    cert.dn
                ),
                VenafiRetryError::AddWorkFailed => format!(
                    "Failed to add work for certificate [{}]. Retry for this cert and any associate applications will not occur. Failure details: Transaction collision Result Code: 103.",
                    cert.dn
                ),
                VenafiRetryError::ApplicationAddWorkFailed => format!(
                    "Failed to add work for application [{consumer}]. Retry for this application will not occur. Failure details: Transaction collision Result Code: 103."
                ),
            });
        }
        if !cert.in_error {
            sim.host.stats.mutation(&cert.dn, false, duplicate);
            let why = if cert.processing.is_some() {
                "The certificate is already being processed."
            } else {
                "The certificate is not in error."
            };
            return error(format!(
                "Retry canceled. No retry is required for the certificate. {why}"
            ));
        }
        cert.attempts += 1;
        let fixes = match cert.outcome {
            Some(o) => o == Outcome::Succeeds,
            None => {
                rng::unit(rng::hash(
                    sim.seed,
                    &[
                        b"venafi-outcome",
                        key(&cert.dn).as_bytes(),
                        &cert.attempts.to_le_bytes(),
                    ],
                )) < sim.retry_success
            }
        };
        cert.processing = Some(Processing {
            until: now + sim.processing,
            fixes,
            stage: cert.stage,
            status: std::mem::take(&mut cert.status),
        });
        cert.in_error = false;
        cert.status = "Retrying the last failed stage".into();
        cert.retried = true;
        sim.host.stats.mutation(&cert.dn, true, false);
        (cert.guid.clone(), sim.processing)
    };
    if wait > 0 {
        // TPP holds the answer until the work is done or WorkToDoTimeout runs out.
        let budget = Duration::from_secs(wait);
        tokio::time::sleep(remaining.min(budget)).await;
        if remaining > budget {
            return answer(
                StatusCode::ACCEPTED,
                &json!({
                    "CertificateDN": dn,
                    "Error": "Certificate processing took longer than WorkToDoTimeout. Check ProcessingDetails for the outcome.",
                    "Guid": guid,
                }),
            );
        }
    }
    answer(StatusCode::OK, &json!({"Success": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_compare_by_name_and_restriction() {
        let allowed = "certificate:manage,revoke;configuration";
        assert!(scope_allows(allowed, "certificate:manage"));
        assert!(scope_allows(allowed, "Certificate:Manage;configuration"));
        assert!(!scope_allows(allowed, "certificate:delete"));
        assert!(!scope_allows(allowed, "ssh:manage"));
        assert!(has_scope(
            "certificate:manage,revoke",
            "certificate",
            "manage"
        ));
        assert!(!has_scope("certificate", "certificate", "manage"));
    }
}
