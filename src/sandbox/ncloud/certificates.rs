//! NCP Certificate Manager's service (providers.md §5.2, §5.3): the v1 and v2 lists, and reissue
//! moving a certificate to ONGOING, with service errors at HTTP 200.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Cert, ONGOING, REISSUABLE, Sim, service, status_name};
use crate::rng;
use crate::sandbox::reply::{self, json as answer, parse_json, url_pairs};
use crate::sandbox::scenario::Outcome;

impl Sim {
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

fn query_params(request_query: Option<&str>) -> HashMap<String, String> {
    request_query
        .map(|q| url_pairs(q).collect())
        .unwrap_or_default()
}

pub(super) async fn list_v2(State(sim): State<Arc<Sim>>, uri: axum::http::Uri) -> Response {
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
    let now = reply::now();
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

pub(super) async fn list_v1(State(sim): State<Arc<Sim>>, uri: axum::http::Uri) -> Response {
    let params = query_params(uri.query());
    let no = params.get("certificateNo").filter(|v| !v.is_empty());
    let name = params.get("certificateName").filter(|v| !v.is_empty());
    let now = reply::now();
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

/// The service's checks of a reissue body, in the order it reports them.
fn check_reissue(body: &[u8]) -> Result<(), Response> {
    let Some(body) = parse_json(body).filter(Value::is_object) else {
        return Err(service("1000", "The request body is not a JSON object."));
    };
    for field in ["csr", "certificateName", "commonName", "validationMethod"] {
        if body
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(service("1001", &format!("{field} is required.")));
        }
    }
    let csr = body["csr"].as_str().unwrap_or_default();
    if !csr.contains("-----BEGIN CERTIFICATE REQUEST-----") {
        return Err(service(
            "1002",
            "Unable to load the CSR. Expecting PEM format.",
        ));
    }
    if !matches!(body["validationMethod"].as_str(), Some("D" | "E")) {
        return Err(service(
            "1003",
            "validationMethod must be D (DNS CNAME) or E (email).",
        ));
    }
    if let Some(dns) = body.get("dnsName")
        && !(dns.is_null()
            || dns
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)))
    {
        return Err(service("2201", "Invalid DNS SANs input format."));
    }
    Ok(())
}

pub(super) async fn reissue(
    State(sim): State<Arc<Sim>>,
    Path(no): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(e) = check_reissue(&body) {
        return e;
    }
    let Ok(no) = no.parse::<u64>() else {
        return service("2200", "No certificate was found.");
    };
    let now = reply::now();
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
    cert.issue_type = "REISSUE".into();
    cert.updated = reply::now();
    cert.reissued = true;
    sim.host.stats.mutation(&target, true, duplicate);
    service("0", "Certificate reissuance has been completed.")
}
