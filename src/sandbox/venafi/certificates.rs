//! Venafi's certificate objects (providers.md §1.2, §1.3): `Config/DnToGuid`, details, and
//! `Certificates/Retry` with its documented 400 answers (the search is in `search.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::has_scope;
use super::{
    Cert, MAX_WORK_TO_DO_TIMEOUT, Processing, Sim, bare_guid, error, key, name_of, parent_of,
    str_field,
};
use crate::rng;
use crate::sandbox::reply::{self, json as answer, parse_json};
use crate::sandbox::scenario::{Outcome, VenafiRetryError};

impl Sim {
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
            "Disabled": c.disabled,
            "Guid": c.guid,
            "ManagementType": "Provisioning",
            "Name": name_of(&c.dn),
            // `ParentDN` here, `ParentDn` in the search results: pytpp's two models (§1.3).
            "ParentDN": parent_of(&c.dn),
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

pub(super) async fn dn_to_guid(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

pub(super) async fn details(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(guid): Path<String>,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let now = reply::now();
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

/// What a `Certificates/Retry` body asks for.
struct RetryRequest {
    dn: String,
    /// `WorkToDoTimeout` in seconds; 0 answers at once.
    wait: u64,
}

fn retry_request(body: &[u8]) -> Result<RetryRequest, Response> {
    let Some(body) = parse_json(body) else {
        return Err(error("The request body is not valid JSON."));
    };
    let dn = str_field(&body, "CertificateDN")
        .unwrap_or_default()
        .to_owned();
    if dn.trim().is_empty() {
        return Err(error(format!(
            "Invalid CertificateDN format. The Certificate DN contained null or white spaces for [{dn}]."
        )));
    }
    let wait = match body.get("WorkToDoTimeout") {
        None | Some(Value::Null) => 0,
        Some(v) => reply::loose_u64(v)
            .filter(|t| *t <= MAX_WORK_TO_DO_TIMEOUT)
            .ok_or_else(|| {
                error(format!(
                    "Invalid WorkToDoTimeout [{v}]. It must be between 0 and {MAX_WORK_TO_DO_TIMEOUT} seconds."
                ))
            })?,
    };
    Ok(RetryRequest { dn, wait })
}

/// The documented 400 a certificate configured with `retry_error` answers.
fn retry_error_message(cert: &Cert, kind: VenafiRetryError) -> String {
    let consumer = cert
        .consumers
        .first()
        .cloned()
        .unwrap_or_else(|| "\\VED\\Policy\\Applications\\default".into());
    match kind {
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
    }
}

impl Sim {
    /// Accepts or refuses a retry of `dn`; on acceptance, the certificate's GUID.
    fn accept_retry(&self, dn: &str, now: jiff::Timestamp) -> Result<String, Response> {
        let mut state = self.lock();
        let Some(&i) = state.by_dn.get(&key(dn)) else {
            self.host.stats.touch(dn);
            return Err(error(format!(
                "Certificate {dn} does not exist or you do not have sufficient rights to the object."
            )));
        };
        let cert = &mut state.certs[i];
        self.settle(cert, now);
        let duplicate = cert.retried;
        if let Some(kind) = cert.retry_error {
            self.host.stats.mutation(&cert.dn, false, duplicate);
            return Err(error(retry_error_message(cert, kind)));
        }
        if !cert.in_error {
            self.host.stats.mutation(&cert.dn, false, duplicate);
            let why = if cert.processing.is_some() {
                "The certificate is already being processed."
            } else {
                "The certificate is not in error."
            };
            return Err(error(format!(
                "Retry canceled. No retry is required for the certificate. {why}"
            )));
        }
        cert.attempts += 1;
        let fixes = match cert.outcome {
            Some(o) => o == Outcome::Succeeds,
            None => {
                rng::unit(rng::hash(
                    self.seed,
                    &[
                        b"venafi-outcome",
                        key(&cert.dn).as_bytes(),
                        &cert.attempts.to_le_bytes(),
                    ],
                )) < self.retry_success
            }
        };
        cert.processing = Some(Processing {
            until: now + self.processing,
            fixes,
            stage: cert.stage,
            status: std::mem::take(&mut cert.status),
        });
        cert.in_error = false;
        cert.status = "Retrying the last failed stage".into();
        cert.retried = true;
        self.host.stats.mutation(&cert.dn, true, false);
        Ok(cert.guid.clone())
    }
}

pub(super) async fn retry(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    let request = match retry_request(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let guid = match sim.accept_retry(&request.dn, reply::now()) {
        Ok(guid) => guid,
        Err(e) => return e,
    };
    let remaining = sim.processing;
    if request.wait > 0 {
        // TPP holds the answer until the work is done or WorkToDoTimeout runs out.
        let budget = Duration::from_secs(request.wait);
        tokio::time::sleep(remaining.min(budget)).await;
        if remaining > budget {
            return answer(
                StatusCode::ACCEPTED,
                &json!({
                    "CertificateDN": request.dn,
                    "Error": "Certificate processing took longer than WorkToDoTimeout. Check ProcessingDetails for the outcome.",
                    "Guid": guid,
                }),
            );
        }
    }
    answer(StatusCode::OK, &json!({"Success": true}))
}
