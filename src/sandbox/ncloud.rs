//! NAVER Cloud Certificate Manager (providers.md §5): the API gateway's signature v2 checked on
//! every request, gateway errors, service errors at HTTP 200 with a `returnCode`, the v1 and v2
//! certificate lists, and reissue moving a certificate to ONGOING.
//!
//! Inferred (providers.md [INF]): every signature failure is the gateway's 401 code 200; the
//! service's non-zero `returnCode`s for reissue are 1000 (body not JSON), 1001 (a required field
//! missing), 1002 (CSR not PEM), 1003 (bad `validationMethod`), 2200 (no such certificate, from
//! the v1 table), 2201 (bad `dnsName`, from the v1 table), 2301 (already ONGOING) and 2302 (a
//! status that cannot be reissued); `pageSize` of the v2 list defaults to 20.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::Kind;
use super::faults::{Injector, inject};
use super::host::Host;
use super::reply::{self, json as answer, parse_json, url_pairs};
use super::scenario::{NcloudKey, NcloudScenario, Outcome, name_for};
use crate::rng;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

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

#[derive(Default)]
struct Objects {
    certs: Vec<Cert>,
    by_no: HashMap<u64, usize>,
}

struct Cert {
    no: u64,
    name: String,
    common_name: String,
    dns_names: Vec<String>,
    status: i64,
    outcome: Option<Outcome>,
    processing: Option<(Instant, bool)>,
    attempts: u32,
    /// An accepted reissue that has not failed validation: another one is a duplicate.
    reissued: bool,
    issue_type: &'static str,
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
                issue_type: "NEW",
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
                    g.status_code,
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

    /// The gateway's check: headers present, key known, timestamp in the window, signature
    /// equal (in constant time) to the one computed over the request target as received.
    fn verify(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
    ) -> Result<&NcloudKey, Response> {
        let fail = |details: &str| {
            gateway(
                StatusCode::UNAUTHORIZED,
                "200",
                "Authentication Failed",
                details,
            )
        };
        let (Some(timestamp), Some(access_key), Some(signature)) = (
            reply::header(headers, "x-ncp-apigw-timestamp"),
            reply::header(headers, "x-ncp-iam-access-key"),
            reply::header(headers, "x-ncp-apigw-signature-v2"),
        ) else {
            return Err(fail(
                "x-ncp-apigw-timestamp, x-ncp-iam-access-key and x-ncp-apigw-signature-v2 are required",
            ));
        };
        let Ok(ts) = timestamp.trim().parse::<i64>() else {
            return Err(fail(
                "x-ncp-apigw-timestamp is not a number of milliseconds",
            ));
        };
        let now = self.clock_ms.unwrap_or_else(reply::now_ms);
        if (now - ts).abs() > WINDOW_MS {
            return Err(fail(
                "x-ncp-apigw-timestamp is more than 5 minutes away from the gateway's clock",
            ));
        }
        let Some(key) = self.keys.iter().find(|k| k.access_key == access_key) else {
            return Err(fail("unknown x-ncp-iam-access-key"));
        };
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return Err(fail("x-ncp-apigw-signature-v2 is not Base64"));
        };
        let mut mac =
            HmacSha256::new_from_slice(key.secret_key.as_bytes()).expect("any key length works");
        mac.update(format!("{} {target}\n{timestamp}\n{access_key}", method.as_str()).as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| fail("signature mismatch"))?;
        Ok(key)
    }

    fn settle(&self, cert: &mut Cert, now: Instant) {
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
        let now = Instant::now();
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

    fn v2_json(&self, c: &Cert) -> Value {
        json!({
            "certificateNo": c.no,
            "certificateName": c.name,
            "memberNo": self.member_no,
            "commonName": c.common_name,
            "dnsName": c.dns_names,
            "statusCode": c.status,
            "statusName": status_name(c.status),
            "certificateType": "Advanced DV",
            "domainCode": "PUB",
            "updateDate": reply::iso(c.updated),
            "issueType": c.issue_type,
            "validStartDate": reply::iso(c.valid_start),
            "validEndDate": reply::iso(c.valid_end),
        })
    }

    fn v1_json(&self, c: &Cert) -> Value {
        json!({
            "certificateNo": c.no,
            "certificateType": "Advanced DV",
            "certificateName": c.name,
            "memberNo": self.member_no,
            "dnInfo": format!("CN={}", c.common_name),
            "domainAddress": c.common_name,
            "subDomainAddress": c.dns_names.join(";"),
            "regDate": reply::iso(c.valid_start),
            "validStartDate": reply::iso(c.valid_start),
            "validEndDate": reply::iso(c.valid_end),
            "statusCode": c.status,
        })
    }
}

/// Every request passes the gateway first, whether or not a route matches.
async fn gateway_layer(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    let target = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let verified = sim
        .verify(request.method(), &target, request.headers())
        .map(|key| key.sub_account);
    let mut response = match verified {
        Err(e) => e,
        // Certificate Manager 2.0 refuses Sub Account keys.
        Ok(true) if request.uri().path().starts_with("/api/v2/") => gateway(
            StatusCode::FORBIDDEN,
            "230",
            "Forbidden",
            "Certificate Manager 2.0 APIs need a main account key",
        ),
        Ok(_) => next.run(request).await,
    };
    let trace = format!(
        "{:016x}",
        rng::hash(
            sim.seed,
            &[target.as_bytes(), &reply::now_ms().to_le_bytes()]
        )
    );
    if let Ok(v) = HeaderValue::from_str(&trace) {
        response.headers_mut().insert("x-ncp-trace-id", v);
    }
    response
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/api/v2/certificate/certificates", get(list_v2))
        .route("/api/v1/certificates", get(list_v1))
        .route(
            "/api/v2/certificate/{certificate_no}/reissue",
            post(reissue),
        )
        .route_layer(from_fn_with_state(sim.host.clone(), inject))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND) })
        .layer(from_fn_with_state(sim.clone(), gateway_layer))
        .with_state(sim)
}

fn query_params(request_query: Option<&str>) -> HashMap<String, String> {
    request_query
        .map(|q| url_pairs(q).collect())
        .unwrap_or_default()
}

async fn list_v2(State(sim): State<Arc<Sim>>, uri: axum::http::Uri) -> Response {
    let params = query_params(uri.query());
    let page = params
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let page_size = params
        .get("pageSize")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let name = params.get("certificateName").map(|n| n.to_lowercase());
    let now = Instant::now();
    let mut state = sim.lock();
    let mut matched = Vec::new();
    for c in &mut state.certs {
        sim.settle(c, now);
        if name
            .as_ref()
            .is_none_or(|n| c.name.to_lowercase().contains(n.as_str()))
        {
            matched.push(&*c);
        }
    }
    let total = matched.len();
    let start = (page - 1).saturating_mul(page_size).min(total);
    let items: Vec<Value> = matched[start..start.saturating_add(page_size).min(total)]
        .iter()
        .map(|c| {
            sim.host.stats.touch(&c.no.to_string());
            sim.v2_json(c)
        })
        .collect();
    answer(
        StatusCode::OK,
        &json!({"returnCode": "0", "returnMessage": "Success", "totalCount": total, "sslCertificateList": items}),
    )
}

async fn list_v1(State(sim): State<Arc<Sim>>, uri: axum::http::Uri) -> Response {
    let params = query_params(uri.query());
    let no = params.get("certificateNo").filter(|v| !v.is_empty());
    let name = params.get("certificateName").filter(|v| !v.is_empty());
    let now = Instant::now();
    let mut state = sim.lock();
    let mut items = Vec::new();
    for c in &mut state.certs {
        sim.settle(c, now);
        if no.is_none_or(|n| *n == c.no.to_string()) && name.is_none_or(|n| *n == c.name) {
            sim.host.stats.touch(&c.no.to_string());
            items.push(sim.v1_json(c));
        }
    }
    answer(
        StatusCode::OK,
        &json!({"returnCode": "0", "returnMessage": "Success", "totalRows": items.len(), "sslCertificateList": items}),
    )
}

async fn reissue(State(sim): State<Arc<Sim>>, Path(no): Path<String>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body).filter(Value::is_object) else {
        return service("1000", "The request body is not a JSON object.");
    };
    for field in ["csr", "certificateName", "commonName", "validationMethod"] {
        if body
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return service("1001", &format!("{field} is required."));
        }
    }
    let csr = body["csr"].as_str().unwrap_or_default();
    if !csr.contains("-----BEGIN CERTIFICATE REQUEST-----") {
        return service("1002", "Unable to load the CSR. Expecting PEM format.");
    }
    if !matches!(body["validationMethod"].as_str(), Some("D" | "E")) {
        return service(
            "1003",
            "validationMethod must be D (DNS CNAME) or E (email).",
        );
    }
    if let Some(dns) = body.get("dnsName")
        && !(dns.is_null()
            || dns
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)))
    {
        return service("2201", "Invalid DNS SANs input format.");
    }
    let Ok(no) = no.parse::<u64>() else {
        return service("2200", "No certificate was found.");
    };
    let now = Instant::now();
    let mut state = sim.lock();
    let Some(&i) = state.by_no.get(&no) else {
        sim.host.stats.touch(&no.to_string());
        return service("2200", "No certificate was found.");
    };
    let cert = &mut state.certs[i];
    sim.settle(cert, now);
    let duplicate = cert.reissued;
    let target = cert.no.to_string();
    if cert.status == ONGOING {
        sim.host.stats.mutation(&target, false, duplicate);
        return service(
            "2301",
            "The certificate is already being issued; wait until the issuance ends.",
        );
    }
    if !REISSUABLE.contains(&cert.status) {
        sim.host.stats.mutation(&target, false, duplicate);
        return service(
            "2302",
            &format!(
                "A certificate in status {} cannot be reissued.",
                status_name(cert.status)
            ),
        );
    }
    cert.attempts += 1;
    let issued = match cert.outcome {
        Some(o) => o == Outcome::Succeeds,
        None => {
            rng::unit(rng::hash(
                sim.seed,
                &[
                    b"ncloud-outcome",
                    target.as_bytes(),
                    &cert.attempts.to_le_bytes(),
                ],
            )) < sim.retry_success
        }
    };
    cert.processing = Some((now + sim.processing, issued));
    cert.status = ONGOING;
    cert.issue_type = "REISSUE";
    cert.updated = reply::now();
    cert.reissued = true;
    sim.host.stats.mutation(&target, true, duplicate);
    service("0", "Certificate reissuance has been completed.")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{METHOD} {URI}\n{TIMESTAMP}\n{ACCESS_KEY}` signed with HMAC-SHA256, Base64 with padding.
    fn signature(
        method: &str,
        uri: &str,
        timestamp: &str,
        access_key: &str,
        secret: &str,
    ) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length works");
        mac.update(format!("{method} {uri}\n{timestamp}\n{access_key}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The worked examples of providers.md §5.1.
    #[test]
    fn documented_signature_vectors() {
        let secret = "EXAMPLESECRETKEY000000000000000000000001";
        let key = "EXAMPLEACCESSKEY0001";
        let ts = "1700000000000";
        assert_eq!(
            signature("POST", "/api/v2/certificate/55882/reissue", ts, key, secret),
            "9lWpoarE2tTpLjDPMfURlwW/pg0v7+Na6rnAH45y5pY="
        );
        assert_eq!(
            signature(
                "GET",
                "/api/v1/certificates?certificateNo=55882",
                ts,
                key,
                secret
            ),
            "JmzhEFvAlP5Wg4tfCutwNXyqOYl1MiAMASQRQnLEv/k="
        );
        assert_eq!(
            signature(
                "GET",
                "/api/v2/certificate/certificates?page=1&pageSize=20",
                ts,
                key,
                secret
            ),
            "MqOO0VyUq7L3LAwtPQOUqtjrwNUctPjRLCdWk7kYWvI="
        );
        assert_eq!(
            signature(
                "GET",
                "/vserver/v2/getServerInstanceList?responseFormatType=json",
                "1234567890123",
                "TestAccessKey",
                "TestSecretKey"
            ),
            "FPsYYX8fuMAgi+cue3eACOW0dNtIwu1LYWfg/megA2M="
        );
    }
}
