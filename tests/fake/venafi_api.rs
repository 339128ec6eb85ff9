//! The Venafi fake's WebSDK handlers and certificate state (`ProcessingDetails`); the search is
//! in `venafi_search.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::server::lock;
use super::venafi::{Access, Tpp};

/// A certificate object. `stage`/`status` are what `ProcessingDetails` shows.
#[derive(Clone, Debug)]
pub struct Cert {
    pub dn: String,
    /// With braces, lower-case: `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`.
    pub guid: String,
    pub in_error: bool,
    pub stage: i64,
    pub status: String,
    pub consumers: Vec<String>,
    /// How long the work a Retry queues takes, and whether it then succeeds.
    pub retry_takes: Duration,
    pub retry_succeeds: bool,
    /// `Disabled` in the details and the search filter.
    pub disabled: bool,
    /// A workflow ticket waits on it (the `PendingWorkflow` search filter).
    pub pending_workflow: bool,
    /// `CertificateDetails.ValidTo` (the `ValidToLess`/`ValidToGreater` filters).
    pub valid_to: jiff::Timestamp,
    processing_since: Option<Instant>,
}

impl Cert {
    /// A certificate in error at stage 500 ([INF] stage/status values are examples).
    pub fn new(dn: &str) -> Cert {
        let h = Sha256::digest(dn.as_bytes());
        let hex: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
        let guid = format!(
            "{{{}-{}-{}-{}-{}}}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        Cert {
            dn: dn.to_owned(),
            guid,
            in_error: true,
            stage: 500,
            status: "Failed to install the certificate.".into(),
            consumers: Vec::new(),
            retry_takes: Duration::ZERO,
            retry_succeeds: true,
            disabled: false,
            pending_workflow: false,
            valid_to: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 90),
            processing_since: None,
        }
    }
    pub fn disabled(mut self) -> Self {
        self.disabled = true;
        self
    }
    pub fn pending_workflow(mut self) -> Self {
        self.pending_workflow = true;
        self
    }
    /// `ValidTo` this many days from now (negative: expired).
    pub fn valid_for_days(mut self, days: i64) -> Self {
        self.valid_to = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days);
        self
    }
    /// Not in error, nothing processing (Stage 0, empty Status).
    pub fn healthy(mut self) -> Self {
        (self.in_error, self.stage, self.status) = (false, 0, String::new());
        self
    }
    pub fn error_at(mut self, stage: i64, status: &str) -> Self {
        (self.in_error, self.stage, self.status) = (true, stage, status.to_owned());
        self
    }
    pub fn consumer(mut self, dn: &str) -> Self {
        self.consumers.push(dn.to_owned());
        self
    }
    pub fn retry_outcome(mut self, takes: Duration, succeeds: bool) -> Self {
        (self.retry_takes, self.retry_succeeds) = (takes, succeeds);
        self
    }

    pub(super) fn name(&self) -> &str {
        self.dn.rsplit('\\').next().unwrap_or(&self.dn)
    }

    pub(super) fn parent(&self) -> &str {
        self.dn.rsplit_once('\\').map_or("", |(p, _)| p)
    }

    /// Finishes queued work once `retry_takes` has passed.
    pub(super) fn settle(&mut self, now: Instant) {
        if let Some(since) = self.processing_since
            && now.duration_since(since) >= self.retry_takes
        {
            self.processing_since = None;
            if self.retry_succeeds {
                (self.stage, self.status) = (0, String::new());
            } else {
                self.in_error = true;
                self.status = "Retry failed.".into();
            }
        }
    }
}

/// `{"Error": "…"}` with 400 ([INF] body shape, from the sibling Certificates/Reset).
pub(super) fn error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"Error": message})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    error(&format!(
        "{what} does not exist or you do not have sufficient rights to the object."
    ))
}

/// `POST Config/DnToGuid`: HTTP 200 in both cases; `Result` 1 found, 400 not found.
pub(super) async fn dn_to_guid(State(tpp): State<Arc<Tpp>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let dn = v.get("ObjectDN").and_then(Value::as_str).unwrap_or("");
    let certs = lock(&tpp.certs);
    let answer = match certs.iter().find(|c| c.dn.eq_ignore_ascii_case(dn)) {
        Some(c) => json!({"ClassName": "X509 Certificate", "GUID": c.guid,
            "HierarchicalGUID": format!("{{00000000-0000-0000-0000-000000000000}}{}", c.guid),
            "Revision": 1, "Result": 1}),
        // [INF] only `Result` in the not-found body.
        None => json!({"Result": 400}),
    };
    axum::Json(answer).into_response()
}

/// Accepts `{guid}`, `%7Bguid%7D` (decoded by the router) and a bare guid.
fn same_guid(stored: &str, asked: &str) -> bool {
    let trim = |s: &str| {
        s.trim_matches(|c| c == '{' || c == '}')
            .to_ascii_lowercase()
    };
    trim(stored) == trim(asked)
}

fn processing(c: &Cert) -> Value {
    json!({"InError": c.in_error, "Stage": c.stage, "Status": c.status})
}

/// `GET Certificates/{guid}`: a subset of the documented fields ([INF] values are stand-ins).
pub(super) async fn details(State(tpp): State<Arc<Tpp>>, Path(guid): Path<String>) -> Response {
    let mut certs = lock(&tpp.certs);
    let Some(c) = certs.iter_mut().find(|c| same_guid(&c.guid, &guid)) else {
        return not_found(&format!("Certificate {guid}"));
    };
    c.settle(Instant::now());
    axum::Json(json!({
        "CertificateDetails": {"ValidTo": c.valid_to.to_string()},
        "Consumers": c.consumers,
        "Disabled": c.disabled,
        "DN": c.dn,
        "Guid": c.guid,
        "ManagementType": "Provisioning",
        "Name": c.name(),
        "ParentDN": c.parent(),
        "ProcessingDetails": processing(c),
        "SchemaClass": "X509 Certificate",
    }))
    .into_response()
}

/// `POST Certificates/Retry`: 200 `{"Success":true}` when in error; convergent 400 otherwise.
pub(super) async fn retry(
    State(tpp): State<Arc<Tpp>>,
    Extension(access): Extension<Access>,
    body: Bytes,
) -> Response {
    // [INF] a token without certificate:manage gets 401 (the docs say 401 or 403).
    if !access
        .scope
        .to_ascii_lowercase()
        .contains("certificate:manage")
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let dn = v.get("CertificateDN").and_then(Value::as_str).unwrap_or("");
    if dn.trim().is_empty() {
        return error(&format!(
            "Invalid CertificateDN format. The Certificate DN contained null or white spaces for {dn}."
        ));
    }
    lock(&tpp.retries).entry(dn.to_owned()).or_default().1 += 1;
    {
        let mut fail = lock(&tpp.fail_next_retries);
        if *fail > 0 {
            *fail -= 1;
            let msg = "Transaction (Process ID 55) was deadlocked on lock resources with another \
                       process and has been chosen as the deadlock victim. Rerun the transaction.";
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"Error": msg})),
            )
                .into_response();
        }
    }
    let mut certs = lock(&tpp.certs);
    let Some(c) = certs.iter_mut().find(|c| c.dn.eq_ignore_ascii_case(dn)) else {
        return not_found(&format!("Certificate {dn}"));
    };
    c.settle(Instant::now());
    if !c.in_error {
        return error("Retry canceled. No retry is required for the certificate. ");
    }
    c.in_error = false;
    c.status = "Retrying.".into();
    c.processing_since = Some(Instant::now());
    lock(&tpp.retries).entry(dn.to_owned()).or_default().0 += 1;
    axum::Json(json!({"Success": true})).into_response()
}
