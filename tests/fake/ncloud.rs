//! Fake NAVER Cloud Certificate Manager (providers.md §5), written from the docs only.
//!
//! Every request must carry a valid API Gateway signature v2 (§5.1). Endpoints:
//! `GET /api/v1/certificates`, `GET /api/v2/certificate/certificates` and
//! `POST /api/v2/certificate/{certificateNo}/reissue`. A fault can perform a reissue and then
//! drop the connection without answering ("the answer is lost after the change happened").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use super::endpoints::{Endpoints, track};
use super::ncloud_api;
use super::server::{Options, RawTarget, RequestLog, Server, header, lock};

/// The endpoints, as [`NcloudFake::requests`] and [`NcloudFake::after_answer`] name them.
pub const LIST_V1: &str = "GET /api/v1/certificates";
pub const LIST_V2: &str = "GET /api/v2/certificate/certificates";
pub const REISSUE: &str = "POST /api/v2/certificate/{certificate_no}/reissue";

/// The documented clock window for `x-ncp-apigw-timestamp` (±5 min).
pub const TIMESTAMP_WINDOW: Duration = Duration::from_secs(300);

/// Base64(HMAC-SHA256(secret, "{METHOD} {URI}\n{TIMESTAMP}\n{ACCESS_KEY}")), as documented.
pub fn sign(method: &str, uri: &str, timestamp: &str, access_key: &str, secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{method} {uri}\n{timestamp}\n{access_key}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The documented `statusName` for a `statusCode` (§5.3).
pub fn status_name(code: i32) -> &'static str {
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
        // [INF] -12 and -20 exist but their names were cut off in the stored docs.
        _ => "UNKNOWN",
    }
}

/// One certificate. Dates are `yyyy-MM-dd HH:mm:ss` UTC strings ([INF] format undocumented).
#[derive(Clone, Debug)]
pub struct Certificate {
    pub certificate_no: u64,
    pub certificate_name: String,
    pub common_name: String,
    pub dns_name: Vec<String>,
    pub status_code: i32,
    pub member_no: String,
    pub certificate_type: String,
    pub domain_code: String,
    pub issue_type: String,
    pub reg_date: String,
    pub valid_start_date: String,
    pub valid_end_date: String,
    pub update_date: String,
    pub(super) ongoing_since: Option<Instant>,
}

impl Certificate {
    pub fn new(certificate_no: u64, name: &str, common_name: &str) -> Certificate {
        Certificate {
            certificate_no,
            certificate_name: name.to_owned(),
            common_name: common_name.to_owned(),
            dns_name: Vec::new(),
            status_code: -4,
            member_no: "2800000".into(),
            certificate_type: "ADVANCED_DV".into(),
            domain_code: "PUB".into(),
            issue_type: "ISSUE".into(),
            reg_date: "2025-01-01 00:00:00".into(),
            valid_start_date: "2025-01-01 00:00:00".into(),
            valid_end_date: "2026-01-01 00:00:00".into(),
            update_date: "2025-01-01 00:00:00".into(),
            ongoing_since: None,
        }
    }
    pub fn status(mut self, code: i32) -> Self {
        self.status_code = code;
        self
    }
    pub fn dns_names(mut self, names: &[&str]) -> Self {
        self.dns_name = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

/// Which performed reissues lose their answer: called with the 1-based count of performed
/// reissues so far (this one included) and the certificate number.
pub type LosePredicate = Arc<dyn Fn(u64, u64) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct Config {
    pub keys: HashMap<String, String>,
    /// How long a reissued certificate stays ONGOING (0 = done by the next read).
    pub issue_delay: Duration,
    /// The status a finished reissuance lands in (1 NORMAL by default).
    pub issue_outcome: i32,
    pub lose_answer: Option<LosePredicate>,
    /// How long after a reissue request arrives its change happens (and it is answered): a
    /// slow server, on which a request that left is not seen yet.
    pub land_after: Duration,
}

pub(super) struct Ncp {
    pub(super) config: Config,
    pub(super) certs: Mutex<Vec<Certificate>>,
    pub(super) performed: Mutex<HashMap<u64, u32>>,
    pub(super) requested: Mutex<HashMap<u64, u32>>,
    pub(super) lost: Mutex<Vec<u64>>,
    auth_failures: Mutex<u64>,
}

pub struct Builder {
    config: Config,
    certs: Vec<Certificate>,
}

impl Builder {
    /// Adds an access key / secret key pair (default: the docs' example keys).
    pub fn key(mut self, access_key: &str, secret_key: &str) -> Self {
        self.config
            .keys
            .insert(access_key.to_owned(), secret_key.to_owned());
        self
    }
    pub fn certificate(mut self, c: Certificate) -> Self {
        self.certs.push(c);
        self
    }
    pub fn issue_delay(mut self, d: Duration) -> Self {
        self.config.issue_delay = d;
        self
    }
    pub fn land_after(mut self, d: Duration) -> Self {
        self.config.land_after = d;
        self
    }
    pub fn issue_outcome(mut self, status_code: i32) -> Self {
        self.config.issue_outcome = status_code;
        self
    }
    /// Every `n`th performed reissue (n, 2n, …) loses its answer.
    pub fn lose_every_nth(self, n: u64) -> Self {
        let n = n.max(1);
        self.lose_answer_when(move |count, _| count % n == 0)
    }
    pub fn lose_answer_when(
        mut self,
        f: impl Fn(u64, u64) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.config.lose_answer = Some(Arc::new(f));
        self
    }

    fn build(self) -> (Router, Arc<Ncp>, Endpoints) {
        let mut config = self.config;
        if config.keys.is_empty() {
            config.keys.insert(
                "EXAMPLEACCESSKEY0001".into(),
                "EXAMPLESECRETKEY000000000000000000000001".into(),
            );
        }
        let ncp = Arc::new(Ncp {
            config,
            certs: Mutex::new(self.certs),
            performed: Mutex::default(),
            requested: Mutex::default(),
            lost: Mutex::default(),
            auth_failures: Mutex::default(),
        });
        let router = Router::new()
            .route("/api/v1/certificates", get(ncloud_api::list_v1))
            .route("/api/v2/certificate/certificates", get(ncloud_api::list_v2))
            .route(
                "/api/v2/certificate/{certificate_no}/reissue",
                post(ncloud_api::reissue),
            )
            .fallback(|| async { gateway(StatusCode::NOT_FOUND, "300", "Not Found Exception") })
            .layer(middleware::from_fn_with_state(ncp.clone(), verify))
            .with_state(ncp.clone());
        // Outside the signature check: refused (401) requests count too.
        let endpoints = Endpoints::new(
            &[LIST_V1, LIST_V2, REISSUE].map(|e| e.split_once(' ').unwrap_or(("GET", e))),
        );
        let router = router.layer(middleware::from_fn_with_state(endpoints.clone(), track));
        (router, ncp, endpoints)
    }
    pub fn start(self) -> NcloudFake {
        let (router, ncp, endpoints) = self.build();
        NcloudFake {
            server: Server::start(router, Options::default()),
            ncp,
            endpoints,
        }
    }
    pub fn spawn_thread(self) -> NcloudFake {
        let (router, ncp, endpoints) = self.build();
        NcloudFake {
            server: Server::spawn_thread(router, Options::default()),
            ncp,
            endpoints,
        }
    }
}

pub struct NcloudFake {
    server: Server,
    ncp: Arc<Ncp>,
    endpoints: Endpoints,
}

impl NcloudFake {
    pub fn builder() -> Builder {
        Builder {
            config: Config {
                keys: HashMap::new(),
                issue_delay: Duration::ZERO,
                issue_outcome: 1,
                lose_answer: None,
                land_after: Duration::ZERO,
            },
            certs: Vec::new(),
        }
    }
    pub fn url(&self) -> String {
        self.server.url()
    }
    /// Same as `url()`: the runbook's `url:` is the host; paths carry `/api/v1` or `/api/v2`.
    pub fn base_url(&self) -> String {
        self.server.url()
    }
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
    /// Reissues actually performed for this certificate (lost answers included).
    pub fn reissues(&self, certificate_no: u64) -> u32 {
        lock(&self.ncp.performed)
            .get(&certificate_no)
            .copied()
            .unwrap_or(0)
    }
    /// Reissue requests that passed the signature check, performed or not.
    pub fn reissue_requests(&self, certificate_no: u64) -> u32 {
        lock(&self.ncp.requested)
            .get(&certificate_no)
            .copied()
            .unwrap_or(0)
    }
    /// Certificates (in order) whose reissue was performed but whose answer was dropped.
    pub fn lost_answers(&self) -> Vec<u64> {
        lock(&self.ncp.lost).clone()
    }
    /// Certificates reissued more than once.
    pub fn reissued_twice(&self) -> Vec<u64> {
        let mut twice: Vec<u64> = lock(&self.ncp.performed)
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(no, _)| *no)
            .collect();
        twice.sort_unstable();
        twice
    }
    pub fn auth_failures(&self) -> u64 {
        *lock(&self.ncp.auth_failures)
    }
    /// Requests that arrived for `endpoint` (one of the consts above, like [`LIST_V2`]), those
    /// refused for their signature included.
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
        change: impl FnOnce(&mut Vec<Certificate>) + Send + 'static,
    ) {
        let ncp = self.ncp.clone();
        self.endpoints
            .after_answer(endpoint, n, move || change(&mut lock(&ncp.certs)));
    }
    /// [`Self::after_answer`] for the v2 list: after serving its page `n` (1-based count of
    /// v2 list answers, whatever `page` they asked for).
    pub fn after_page(
        &self,
        n: usize,
        change: impl FnOnce(&mut Vec<Certificate>) + Send + 'static,
    ) {
        self.after_answer(LIST_V2, n, change);
    }
    /// After v2 list page `n`, certificate `certificate_no` has `status_code`.
    pub fn set_status_after_page(&self, n: usize, certificate_no: u64, status_code: i32) {
        self.after_page(n, move |certs| {
            if let Some(c) = certs
                .iter_mut()
                .find(|c| c.certificate_no == certificate_no)
            {
                c.status_code = status_code;
            }
        });
    }
    /// Planted changes that have not run yet.
    pub fn pending_changes(&self) -> usize {
        self.endpoints.pending_hooks()
    }
    /// The certificate's current `statusCode`.
    pub fn status_code(&self, certificate_no: u64) -> Option<i32> {
        let mut certs = lock(&self.ncp.certs);
        let c = certs
            .iter_mut()
            .find(|c| c.certificate_no == certificate_no)?;
        ncloud_api::settle(c, &self.ncp.config, Instant::now());
        Some(c.status_code)
    }
}

/// The gateway error body `{"error":{"errorCode","message","details"}}`.
pub(super) fn gateway(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"errorCode": code, "message": message, "details": message}});
    (status, axum::Json(body)).into_response()
}

fn now_ms() -> i128 {
    jiff::Timestamp::now().as_millisecond().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Recomputes the signature over the method, the raw request target, the timestamp header
/// and the stored secret. [INF] every failure (missing header, unknown key, bad signature,
/// skewed clock) is 401 code 200 "Authentication Failed"; the docs do not map each case.
async fn verify(State(ncp): State<Arc<Ncp>>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let (ts, key, sig) = (
        header(h, "x-ncp-apigw-timestamp"),
        header(h, "x-ncp-iam-access-key"),
        header(h, "x-ncp-apigw-signature-v2"),
    );
    let target = req.extensions().get::<RawTarget>().map(|t| t.0.clone());
    let ok = match (ts, key, sig, target) {
        (Some(ts), Some(key), Some(sig), Some(target)) => {
            let fresh = ts
                .parse::<i128>()
                .is_ok_and(|t| (now_ms() - t).unsigned_abs() <= TIMESTAMP_WINDOW.as_millis());
            let secret = ncp.config.keys.get(key);
            let good = secret.is_some_and(|secret| {
                let want = sign(req.method().as_str(), &target, ts, key, secret);
                constant_time_eq(want.as_bytes(), sig.as_bytes())
            });
            fresh && good
        }
        _ => false,
    };
    if !ok {
        *lock(&ncp.auth_failures) += 1;
        return gateway(StatusCode::UNAUTHORIZED, "200", "Authentication Failed");
    }
    next.run(req).await
}

/// A fake holding one certificate `no` (named `name`) in error, whose reissue lands
/// `land_after` after it arrives and then stays issuing: ONGOING, read afterwards, says the
/// reissue took effect. For the tests of requests that land late.
pub fn slow_reissue(no: u64, name: &str, land_after: Duration) -> NcloudFake {
    NcloudFake::builder()
        .key(
            "SANDBOXACCESSKEY0001",
            "SANDBOXSECRETKEY000000000000000000000001",
        )
        .certificate(Certificate::new(no, name, &format!("{name}.example.co.kr")).status(-3))
        .issue_delay(Duration::from_secs(600))
        .land_after(land_after)
        .spawn_thread()
}

impl NcloudFake {
    /// A runbook `name` that reissues certificate `no` here, waiting `timeout` for each
    /// answer; `job` is appended to the job (a `retry:` line, say).
    pub fn reissue_runbook(&self, name: &str, no: u64, timeout: &str, job: &str) -> String {
        format!(
            "version: 1\nname: {name}\nproviders:\n  ncp:\n    type: ncloud\n    url: {}\n    auth: {{access_key: {{env: NCP_AK}}, secret_key: {{env: NCP_SK}}}}\n    timeout: {timeout}\njobs:\n  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    for_each: [{no}]\n    with: {{certificate_no: '{{{{ item }}}}', csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: {name}, common_name: {name}.example.co.kr}}\n{job}",
            self.base_url()
        )
    }
}
