//! DigiCert's read-only checks (providers.md §2.3): `viewAutomationDetails` with
//! `isRetryApplicable`, and the paged, filtered `automatedips/list`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Auto, Sim, body_or_400, errors};
use crate::rng;
use crate::sandbox::reply::{self, json as answer, loose_u64};

fn cause_of(status: &str) -> (&'static str, &'static str, &'static str) {
    match status {
        "AUTOMATION_FAILED" => (
            "FAILED",
            "The certificate request could not be completed: the CA did not respond.",
            "Retry the automation.",
        ),
        "INSTALL_FAILED" | "INSTALL_VALIDATION_FAILED" => (
            "FAILED",
            "The certificate could not be installed on the device.",
            "Check the sensor's connectivity and the device credentials, then configure the automation again.",
        ),
        "AUTOMATION_SCHEDULED" => ("IN_PROGRESS", "", ""),
        _ => ("COMPLETED", "", ""),
    }
}

pub(super) async fn view_details(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = sim.admit(&headers) {
        return e;
    }
    let body = match body_or_400(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if let Err(e) = sim.check_account(&body) {
        return e;
    }
    let Some(id) = body.get("automationId").and_then(loose_u64) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "automationId is required.",
        );
    };
    let now = reply::now();
    let mut state = sim.lock();
    let Some(&i) = state.by_id.get(&id) else {
        return errors(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Automation {id} was not found."),
        );
    };
    let a = &mut state.automations[i];
    Sim::settle(a, now);
    sim.host.stats.touch(&a.target());
    let (progress, cause, solution) = cause_of(&a.status);
    answer(
        StatusCode::OK,
        &json!({
            "error": null,
            "data": {
                "autoStatusResponse": {
                    "automationId": a.id,
                    "automationStatus": a.status,
                    "ip": a.ip,
                    "port": a.port,
                    "domainName": a.domain_name,
                    "commonName": a.common_name,
                    "requestedOn": a.requested_on.to_string(),
                    "lastRunTime": a.last_run.to_string(),
                    "nextRenewalDate": (a.last_run + 86_400_000 * 60).to_string(),
                },
                "autoOrderProgressResponse": {
                    "isRetryApplicable": a.retry_applicable,
                    "orderStatus": if a.status == "SUCCESSFULLY_RENEWED" { "ISSUED" } else { "PENDING" },
                },
                "certInstallResponse": {
                    "certInstallProgress": progress,
                    "causeOfFailure": cause,
                    "solution": solution,
                },
            }
        }),
    )
}

/// One `searchCriteriaList` entry: a documented key (§2.3: `AUTOMATION_STATUS`, `AGENT_NAME`)
/// with `EQUALS` and a list of values, any of which matches.
struct Criterion {
    status: bool,
    values: Vec<String>,
}

/// Reads `searchCriteriaList`. [INF] An undocumented key or operation, or a `value` that is not
/// a list of strings, is a 400: a client relying on criteria the docs do not show (and would
/// silently get everything back for) fails here rather than against the real API.
fn criteria(body: &Value) -> Result<Vec<Criterion>, Response> {
    let Some(list) = body.get("searchCriteriaList").filter(|l| !l.is_null()) else {
        return Ok(Vec::new());
    };
    let bad = |m: String| errors(StatusCode::BAD_REQUEST, "invalid_input", &m);
    let list = list
        .as_array()
        .ok_or_else(|| bad("searchCriteriaList must be a list.".into()))?;
    let mut out = Vec::new();
    for c in list {
        let key = c.get("key").and_then(Value::as_str).unwrap_or_default();
        let operation = c
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let status = match key {
            "AUTOMATION_STATUS" => true,
            "AGENT_NAME" => false,
            _ => return Err(bad(format!("Unsupported search criteria key [{key}]."))),
        };
        if operation != "EQUALS" {
            return Err(bad(format!(
                "Unsupported search criteria operation [{operation}] for {key}."
            )));
        }
        let values = c
            .get("value")
            .and_then(Value::as_array)
            .and_then(|v| v.iter().map(|x| x.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| bad(format!("The value of {key} must be a list of strings.")))?;
        out.push(Criterion { status, values });
    }
    Ok(out)
}

impl Criterion {
    fn matches(&self, a: &Auto) -> bool {
        let field = if self.status {
            &a.status
        } else {
            &a.agent_name
        };
        self.values.iter().any(|v| v.eq_ignore_ascii_case(field))
    }
}

/// One entry of `automatedips/list`: only the fields providers.md §2.3 documents (no domain
/// name: SNI automations on one `ip:port` differ by `certificateCn` and `alias`).
fn list_item(seed: u64, a: &Auto) -> Value {
    json!({
        "automationId": a.id,
        "automatedIp": a.ip,
        "automatedPort": a.port,
        "managementIp": null,
        "agentName": a.agent_name,
        "alias": a.common_name,
        "appInfo": {"name": "sandbox", "version": "1.0"},
        "appPartition": "Common",
        "automationStatus": a.status,
        "certificateCn": a.common_name,
        "certificateId": a.certificate_id,
        "certificateSerialNumber": format!("{:032X}", rng::hash(seed, &[b"serial", &a.id.to_le_bytes()])),
        "certificateExpiresOn": (a.last_run + 86_400_000 * 90).to_string(),
    })
}

/// `pageSize` 0–512 (0 and absent mean the default 50) and the 1-based `startIndex` of the first
/// item (§2.3, as the agent lists page); a value out of range or not a number is a 400 [INF].
fn paging(body: &Value) -> Result<(u64, u64), Response> {
    let bad = |m: &str| errors(StatusCode::BAD_REQUEST, "invalid_input", m);
    let page_size = match body.get("pageSize").filter(|v| !v.is_null()) {
        None => 50,
        Some(v) => match loose_u64(v) {
            Some(0) => 50,
            Some(n) if n <= 512 => n,
            _ => return Err(bad("pageSize must be between 0 and 512.")),
        },
    };
    let start = match body.get("startIndex").filter(|v| !v.is_null()) {
        None => 1,
        Some(v) => loose_u64(v)
            .filter(|s| *s >= 1)
            .ok_or_else(|| bad("startIndex must be 1 or more."))?,
    };
    Ok((page_size, start))
}

pub(super) async fn list(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = sim.admit(&headers) {
        return e;
    }
    let body = match body_or_400(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if let Err(e) = sim.check_account(&body) {
        return e;
    }
    let (page_size, start) = match paging(&body) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let divisions: Option<Vec<u64>> = body
        .get("divisionIds")
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(loose_u64).collect());
    let criteria = match criteria(&body) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let now = reply::now();
    let mut state = sim.lock();
    let mut matched = Vec::new();
    for a in &mut state.automations {
        Sim::settle(a, now);
        if divisions
            .as_ref()
            .is_none_or(|d| d.is_empty() || d.contains(&a.division_id))
            && criteria.iter().all(|c| c.matches(a))
        {
            matched.push(list_item(sim.seed, a));
        }
    }
    let total = matched.len() as u64;
    let from = usize::try_from(start - 1)
        .unwrap_or(usize::MAX)
        .min(matched.len());
    let to = from
        .saturating_add(usize::try_from(page_size).unwrap_or(usize::MAX))
        .min(matched.len());
    let page: Vec<Value> = matched.drain(from..to).collect();
    answer(
        StatusCode::OK,
        &json!({
            "error": null,
            "data": {
                "automatedIps": page,
                "totalCount": total,
                "totalPages": total.div_ceil(page_size),
            }
        }),
    )
}
