//! Fake Venafi TPP (providers.md §1), written from the docs only: OAuth with single-use,
//! rotating refresh tokens, expiring access tokens, and the WebSDK certificate endpoints.
//!
//! Paths match case-insensitively (TPP runs on IIS). Auth: `POST /vedauth/authorize/oauth`
//! (password grant), `POST /vedauth/authorize/token` (refresh). WebSDK: `Config/DnToGuid`,
//! `GET Certificates/{guid}`, `GET Certificates/?…` (search), `POST Certificates/Retry`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::endpoints::{Endpoints, track};
use super::server::{Options, RawTarget, RequestLog, Server, header, lock};
use super::venafi_api::{self, Cert};
use super::venafi_search;

/// The endpoints, as [`VenafiFake::requests`] and [`VenafiFake::after_answer`] name them.
pub const OAUTH: &str = "POST /vedauth/authorize/oauth";
pub const REFRESH: &str = "POST /vedauth/authorize/token";
pub const DN_TO_GUID: &str = "POST /vedsdk/config/dntoguid";
pub const DETAILS: &str = "GET /vedsdk/certificates/{guid}";
pub const SEARCH: &str = "GET /vedsdk/certificates";
pub const RETRY: &str = "POST /vedsdk/certificates/retry";

/// One use of a refresh token at `/vedauth/authorize/token`.
#[derive(Clone, Debug)]
pub struct RefreshUse {
    pub token: String,
    pub accepted: bool,
    pub at: Instant,
}

/// One WebSDK request (path as sent) and the bearer token it carried (`None`: none).
#[derive(Clone, Debug)]
pub struct AccessUse {
    pub path: String,
    pub token: Option<String>,
    pub accepted: bool,
    pub at: Instant,
}

#[derive(Clone, Debug)]
pub(super) struct Access {
    pub(super) expires_at: Instant,
    pub(super) scope: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub client_id: String,
    pub username: String,
    pub password: String,
    pub access_ttl: Duration,
    /// Hand out refresh tokens at all (some API integrations do not allow refresh).
    pub issue_refresh_tokens: bool,
    /// Also send `expires_in` and `refresh_until` (newer servers; not in the doc example).
    pub newer_token_fields: bool,
}

#[derive(Default)]
pub(super) struct Tokens {
    pub(super) access: HashMap<String, Access>,
    /// refresh token → (consumed, client_id, scope)
    refresh: HashMap<String, (bool, String, String)>,
    serial: u64,
    refresh_uses: Vec<RefreshUse>,
    access_uses: Vec<AccessUse>,
}

pub(super) struct Tpp {
    pub(super) config: Config,
    pub(super) tokens: Mutex<Tokens>,
    pub(super) certs: Mutex<Vec<Cert>>,
    pub(super) retries: Mutex<HashMap<String, (u32, u32)>>,
    pub(super) fail_next_retries: Mutex<u32>,
}

pub struct Builder {
    config: Config,
    certs: Vec<Cert>,
    seeds: Vec<(String, String)>,
}

impl Builder {
    pub fn credentials(mut self, client_id: &str, username: &str, password: &str) -> Self {
        self.config.client_id = client_id.to_owned();
        self.config.username = username.to_owned();
        self.config.password = password.to_owned();
        self
    }
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.config.access_ttl = ttl;
        self
    }
    pub fn issue_refresh_tokens(mut self, yes: bool) -> Self {
        self.config.issue_refresh_tokens = yes;
        self
    }
    pub fn newer_token_fields(mut self, yes: bool) -> Self {
        self.config.newer_token_fields = yes;
        self
    }
    /// A refresh token valid from the start (what a runbook might be seeded with).
    pub fn seed_refresh_token(mut self, token: &str, scope: &str) -> Self {
        self.seeds.push((token.to_owned(), scope.to_owned()));
        self
    }
    pub fn certificate(mut self, cert: Cert) -> Self {
        self.certs.push(cert);
        self
    }

    fn build(self) -> (Router, Arc<Tpp>, Endpoints) {
        let mut tokens = Tokens::default();
        for (token, scope) in self.seeds {
            let entry = (false, self.config.client_id.clone(), scope);
            tokens.refresh.insert(token, entry);
        }
        let tpp = Arc::new(Tpp {
            config: self.config,
            tokens: Mutex::new(tokens),
            certs: Mutex::new(self.certs),
            retries: Mutex::default(),
            fail_next_retries: Mutex::default(),
        });
        let sdk = Router::new()
            .route("/vedsdk/config/dntoguid", post(venafi_api::dn_to_guid))
            .route("/vedsdk/certificates/retry", post(venafi_api::retry))
            .route("/vedsdk/certificates/", get(venafi_search::search))
            .route("/vedsdk/certificates", get(venafi_search::search))
            .route("/vedsdk/certificates/{guid}", get(venafi_api::details))
            .route_layer(middleware::from_fn_with_state(tpp.clone(), bearer));
        let router = Router::new()
            .route("/vedauth/authorize/oauth", post(oauth))
            .route("/vedauth/authorize/token", post(refresh))
            .merge(sdk)
            .with_state(tpp.clone());
        // RETRY before DETAILS: `retry` would also match `{guid}`.
        let endpoints = Endpoints::new(&[
            ("POST", "/vedauth/authorize/oauth"),
            ("POST", "/vedauth/authorize/token"),
            ("POST", "/vedsdk/config/dntoguid"),
            ("POST", "/vedsdk/certificates/retry"),
            ("GET", "/vedsdk/certificates"),
            ("GET", "/vedsdk/certificates/{guid}"),
        ]);
        let router = router.layer(middleware::from_fn_with_state(endpoints.clone(), track));
        (router, tpp, endpoints)
    }
    pub fn start(self) -> VenafiFake {
        let (router, tpp, endpoints) = self.build();
        let options = Options {
            lowercase_paths: true,
        };
        VenafiFake {
            server: Server::start(router, options),
            tpp,
            endpoints,
        }
    }
    pub fn spawn_thread(self) -> VenafiFake {
        let (router, tpp, endpoints) = self.build();
        let options = Options {
            lowercase_paths: true,
        };
        VenafiFake {
            server: Server::spawn_thread(router, options),
            tpp,
            endpoints,
        }
    }
}

pub struct VenafiFake {
    server: Server,
    tpp: Arc<Tpp>,
    endpoints: Endpoints,
}

impl VenafiFake {
    /// client_id `redrive`, user `svc-redrive` / `sandbox`, access tokens live 1 h.
    pub fn builder() -> Builder {
        Builder {
            config: Config {
                client_id: "redrive".into(),
                username: "svc-redrive".into(),
                password: "sandbox".into(),
                access_ttl: Duration::from_secs(3600),
                issue_refresh_tokens: true,
                newer_token_fields: false,
            },
            certs: Vec::new(),
            seeds: Vec::new(),
        }
    }
    pub fn url(&self) -> String {
        self.server.url()
    }
    /// Same as `url()`: the runbook's `url:` is the TPP host (`/vedsdk`, `/vedauth` follow).
    pub fn base_url(&self) -> String {
        self.server.url()
    }
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
    /// Makes every access token issued so far expired (later WebSDK calls get 401).
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        let mut t = lock(&self.tpp.tokens);
        t.access.values_mut().for_each(|a| a.expires_at = now);
    }
    pub fn refresh_uses(&self) -> Vec<RefreshUse> {
        lock(&self.tpp.tokens).refresh_uses.clone()
    }
    pub fn access_uses(&self) -> Vec<AccessUse> {
        lock(&self.tpp.tokens).access_uses.clone()
    }
    /// Refresh tokens that were presented more than once.
    pub fn refresh_tokens_reused(&self) -> Vec<String> {
        let uses = self.refresh_uses();
        let mut seen: HashMap<&str, u32> = HashMap::new();
        uses.iter()
            .for_each(|u| *seen.entry(&u.token).or_default() += 1);
        let mut out: Vec<String> = seen
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(t, _)| t.to_owned())
            .collect();
        out.sort();
        out
    }
    /// Accepted Retry calls for this DN (answered 200 Success).
    pub fn retries(&self, dn: &str) -> u32 {
        lock(&self.tpp.retries).get(dn).map_or(0, |r| r.0)
    }
    /// Every Retry request naming this DN, whatever the answer.
    pub fn retry_requests(&self, dn: &str) -> u32 {
        lock(&self.tpp.retries).get(dn).map_or(0, |r| r.1)
    }
    /// The next `n` Retry calls answer the documented transient 500 ("rerun the transaction").
    pub fn fail_next_retries(&self, n: u32) {
        *lock(&self.tpp.fail_next_retries) = n;
    }
    /// Requests that arrived for `endpoint` (one of the consts above, like [`SEARCH`]), refused
    /// ones (401) included.
    pub fn requests(&self, endpoint: &str) -> usize {
        self.endpoints.requests(endpoint)
    }
    /// Every endpoint's request count (`"other"`: requests no route matched).
    pub fn all_requests(&self) -> std::collections::BTreeMap<String, usize> {
        self.endpoints.all_requests()
    }
    /// Changes the certificates right after `endpoint`'s `n`-th 2xx answer (1-based) is made,
    /// before it is sent: the client's next request sees the change.
    pub fn after_answer(
        &self,
        endpoint: &str,
        n: usize,
        change: impl FnOnce(&mut Vec<Cert>) + Send + 'static,
    ) {
        let tpp = self.tpp.clone();
        self.endpoints
            .after_answer(endpoint, n, move || change(&mut lock(&tpp.certs)));
    }
    /// [`Self::after_answer`] for the search: after serving its page `n` (1-based count of
    /// search answers, whatever `Offset` they asked for).
    pub fn after_page(&self, n: usize, change: impl FnOnce(&mut Vec<Cert>) + Send + 'static) {
        self.after_answer(SEARCH, n, change);
    }
    /// After search page `n`, certificate `dn` is out of error (healthy, nothing processing).
    pub fn fix_after_page(&self, n: usize, dn: &str) {
        let dn = dn.to_owned();
        self.after_page(n, move |certs| {
            if let Some(c) = certs.iter_mut().find(|c| c.dn.eq_ignore_ascii_case(&dn)) {
                (c.in_error, c.stage, c.status) = (false, 0, String::new());
            }
        });
    }
    /// Planted changes that have not run yet.
    pub fn pending_changes(&self) -> usize {
        self.endpoints.pending_hooks()
    }
    /// `(in_error, stage, status)` now.
    pub fn processing(&self, dn: &str) -> Option<(bool, i64, String)> {
        let mut certs = lock(&self.tpp.certs);
        let c = certs.iter_mut().find(|c| c.dn == dn)?;
        c.settle(Instant::now());
        Some((c.in_error, c.stage, c.status.clone()))
    }
}

/// An opaque token shaped like the doc example (Base64 of 16 bytes).
fn mint(t: &mut Tokens, kind: &str) -> String {
    t.serial += 1;
    let digest = Sha256::digest(format!("{kind}-{}-{:?}", t.serial, Instant::now()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..16])
}

fn unix_in(d: Duration) -> u64 {
    let now = jiff::Timestamp::now().as_second();
    u64::try_from(now).unwrap_or(0) + d.as_secs()
}

fn issue(tpp: &Tpp, t: &mut Tokens, scope: &str) -> Value {
    let access = mint(t, "access");
    let expires_at = Instant::now() + tpp.config.access_ttl;
    t.access.insert(
        access.clone(),
        Access {
            expires_at,
            scope: scope.to_owned(),
        },
    );
    let mut body = json!({
        "access_token": access,
        "expires": unix_in(tpp.config.access_ttl),
        "identity": "local:{198c2d48-9e79-4f10-b871-e2f109476032}",
        "scope": scope,
        "token_type": "Bearer",
    });
    if tpp.config.issue_refresh_tokens {
        let refresh = mint(t, "refresh");
        let entry = (false, tpp.config.client_id.clone(), scope.to_owned());
        t.refresh.insert(refresh.clone(), entry);
        body["refresh_token"] = json!(refresh);
    }
    if tpp.config.newer_token_fields {
        body["expires_in"] = json!(tpp.config.access_ttl.as_secs());
        body["refresh_until"] = json!(unix_in(Duration::from_secs(365 * 86400)));
    }
    body
}

/// [INF] the OAuth-style error body; the stored docs only say "Error and a message".
fn grant_error(description: &str) -> Response {
    let body = json!({"error": "invalid_grant", "error_description": description});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

async fn oauth(State(tpp): State<Arc<Tpp>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let c = &tpp.config;
    if field("client_id") != c.client_id
        || field("username") != c.username
        || field("password") != c.password
    {
        return grant_error("Username/password combination not valid");
    }
    let mut t = lock(&tpp.tokens);
    axum::Json(issue(&tpp, &mut t, field("scope"))).into_response()
}

/// Single use: the presented refresh token is consumed whether or not it was still valid.
async fn refresh(State(tpp): State<Arc<Tpp>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let token = v.get("refresh_token").and_then(Value::as_str).unwrap_or("");
    let client_id = v.get("client_id").and_then(Value::as_str).unwrap_or("");
    let mut t = lock(&tpp.tokens);
    let grant = t.refresh.get_mut(token).and_then(|entry| {
        let usable = !entry.0 && entry.1 == client_id;
        entry.0 = true;
        usable.then(|| entry.2.clone())
    });
    t.refresh_uses.push(RefreshUse {
        token: token.to_owned(),
        accepted: grant.is_some(),
        at: Instant::now(),
    });
    match grant {
        Some(scope) => axum::Json(issue(&tpp, &mut t, &scope)).into_response(),
        None => grant_error("Grant has been revoked, has expired, or the refresh token is invalid"),
    }
}

/// WebSDK calls need a live bearer token: 401 with an empty body otherwise (since 20.4 there
/// is no `expired_token` body, §1.1).
async fn bearer(State(tpp): State<Arc<Tpp>>, mut req: Request, next: Next) -> Response {
    let token = header(req.headers(), "authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned);
    let now = Instant::now();
    let access = {
        let mut t = lock(&tpp.tokens);
        let access = token
            .as_ref()
            .and_then(|tok| t.access.get(tok))
            .filter(|a| a.expires_at > now)
            .cloned();
        t.access_uses.push(AccessUse {
            path: req.extensions().get::<RawTarget>().map_or_else(
                || req.uri().path().to_owned(),
                |t| t.0.split('?').next().unwrap_or("").to_owned(),
            ),
            token: token.clone(),
            accepted: access.is_some(),
            at: now,
        });
        access
    };
    let Some(access) = access else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    req.extensions_mut().insert(access);
    next.run(req).await
}
