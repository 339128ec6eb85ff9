//! The NAVER fake's handlers: the v1 and v2 certificate lists and the reissue action.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ncloud::{Certificate, Config, Ncp, gateway, status_name};
use super::server::{DropConnection, lock, query_pairs};

/// [INF] the docs give no code for "already ONGOING"; this one is made up and non-zero.
pub const ONGOING_RETURN_CODE: &str = "9900";
/// [INF] the v2 list's default page size is not documented.
const PAGE_SIZE_DEFAULT: usize = 20;

fn date_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn date_in_a_year() -> String {
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365);
    later.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// A reissued certificate leaves ONGOING once the configured delay has passed.
pub(super) fn settle(c: &mut Certificate, config: &Config, now: Instant) {
    if let Some(since) = c.ongoing_since
        && now.duration_since(since) >= config.issue_delay
    {
        c.ongoing_since = None;
        c.status_code = config.issue_outcome;
        if config.issue_outcome >= 1 {
            c.valid_start_date = date_now();
            c.valid_end_date = date_in_a_year();
        }
        c.update_date = date_now();
    }
}

/// Service answers are HTTP 200 with a `returnCode` (§5.4).
fn service(code: &str, message: &str) -> Response {
    axum::Json(json!({"returnCode": code, "returnMessage": message, "totalRows": 0}))
        .into_response()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// v1 `GET /api/v1/certificates?certificateNo=&certificateName=&instanceNo=`.
/// [INF] `instanceNo` is accepted and ignored: the fake models no server instances.
pub(super) async fn list_v1(State(ncp): State<Arc<Ncp>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let no = param(&pairs, "certificateNo");
    let name = param(&pairs, "certificateName");
    let now = Instant::now();
    let mut certs = lock(&ncp.certs);
    let list: Vec<Value> = certs
        .iter_mut()
        .map(|c| {
            settle(c, &ncp.config, now);
            &*c
        })
        .filter(|c| no.is_none_or(|n| n == c.certificate_no.to_string()))
        .filter(|c| name.is_none_or(|n| n == c.certificate_name))
        .map(|c| {
            json!({
                "certificateNo": c.certificate_no,
                "certificateType": c.certificate_type,
                "certificateName": c.certificate_name,
                "memberNo": c.member_no,
                "dnInfo": format!("CN={}", c.common_name),
                "domainAddress": c.common_name,
                "subDomainAddress": c.dns_name.join(","),
                "regDate": c.reg_date,
                "validStartDate": c.valid_start_date,
                "validEndDate": c.valid_end_date,
            })
        })
        .collect();
    axum::Json(json!({"returnCode": "0", "returnMessage": "success",
        "totalRows": list.len(), "sslCertificateList": list}))
    .into_response()
}

/// v2 `GET /api/v2/certificate/certificates?page=&pageSize=&certificateName=`.
/// [INF] `page` is 1-based; `certificateName` is an exact match; `dnsName` is an array.
pub(super) async fn list_v2(State(ncp): State<Arc<Ncp>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let num = |k: &str, default: usize| match param(&pairs, k) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0),
    };
    let (Some(page), Some(size)) = (num("page", 1), num("pageSize", PAGE_SIZE_DEFAULT)) else {
        return gateway(StatusCode::BAD_REQUEST, "100", "Bad Request Exception");
    };
    let name = param(&pairs, "certificateName");
    let now = Instant::now();
    let mut certs = lock(&ncp.certs);
    certs.iter_mut().for_each(|c| settle(c, &ncp.config, now));
    let hits: Vec<&Certificate> = certs
        .iter()
        .filter(|c| name.is_none_or(|n| n == c.certificate_name))
        .collect();
    let list: Vec<Value> = hits
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|c| {
            json!({
                "certificateNo": c.certificate_no,
                "certificateName": c.certificate_name,
                "memberNo": c.member_no,
                "commonName": c.common_name,
                "dnsName": c.dns_name,
                "statusCode": c.status_code,
                "statusName": status_name(c.status_code),
                "certificateType": c.certificate_type,
                "domainCode": c.domain_code,
                "updateDate": c.update_date,
                "issueType": c.issue_type,
            })
        })
        .collect();
    axum::Json(json!({"returnCode": "0", "returnMessage": "success",
        "totalCount": hits.len(), "sslCertificateList": list}))
    .into_response()
}

/// Checks the documented body; `Err` is the answer to send.
fn check_body(body: &Bytes) -> Result<(), Response> {
    let bad = || gateway(StatusCode::BAD_REQUEST, "100", "Bad Request Exception");
    let v: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    // [INF] a missing required field is a gateway 400 (code 100); not documented.
    for field in ["csr", "certificateName", "commonName", "validationMethod"] {
        if v.get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            return Err(bad());
        }
    }
    if !matches!(v["validationMethod"].as_str(), Some("D" | "E")) {
        return Err(bad());
    }
    if let Some(dns) = v.get("dnsName")
        && !dns
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(service("2201", "Invalid DNS SANs input format."));
    }
    let csr = v["csr"].as_str().unwrap_or("");
    if !csr.contains("-----BEGIN CERTIFICATE REQUEST-----") {
        // [INF] the closest documented code for a CSR that is not PEM.
        return Err(service(
            "1002",
            "Unable to load certificate. Expecting PEM format file.",
        ));
    }
    Ok(())
}

/// `POST /api/v2/certificate/{certificateNo}/reissue`: starts a new issuance every time.
pub(super) async fn reissue(
    State(ncp): State<Arc<Ncp>>,
    Path(no): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(no) = no.parse::<u64>() else {
        return gateway(StatusCode::BAD_REQUEST, "100", "Bad Request Exception");
    };
    *lock(&ncp.requested).entry(no).or_default() += 1;
    if let Err(answer) = check_body(&body) {
        return answer;
    }
    if ncp.config.land_after.is_zero() {
        return perform(&ncp, no);
    }
    // A slow server goes on with a request its client gave up on: the reissue lands whether
    // or not anyone is still waiting for its answer.
    let landing = tokio::spawn(async move {
        tokio::time::sleep(ncp.config.land_after).await;
        perform(&ncp, no)
    });
    landing.await.expect("the reissue landed")
}

/// Performs an accepted reissue and makes its answer.
fn perform(ncp: &Ncp, no: u64) -> Response {
    let mut certs = lock(&ncp.certs);
    // [INF] a DELETED (-6) certificate reads as not found.
    let Some(c) = certs
        .iter_mut()
        .find(|c| c.certificate_no == no && c.status_code != -6)
    else {
        return service("2200", "No certificate was found.");
    };
    settle(c, &ncp.config, Instant::now());
    if c.status_code == 0 {
        return service(ONGOING_RETURN_CODE, "The certificate is being issued.");
    }
    c.status_code = 0;
    c.ongoing_since = Some(Instant::now());
    c.update_date = date_now();
    drop(certs);
    let count = {
        let mut performed = lock(&ncp.performed);
        *performed.entry(no).or_default() += 1;
        performed.values().map(|n| u64::from(*n)).sum::<u64>()
    };
    // The documented success answer (reissue page example).
    let mut answer = service("0", "Certificate reissuance has been completed.");
    if ncp
        .config
        .lose_answer
        .as_ref()
        .is_some_and(|f| f(count, no))
    {
        lock(&ncp.lost).push(no);
        answer.extensions_mut().insert(DropConnection);
    }
    answer
}
