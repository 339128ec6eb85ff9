//! The DigiCert fake's handlers: list, details and bulk retry, with only documented fields.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::digicert::{Automation, Config, Dc, Status, errors, wrapped};
use super::server::lock;

const PAGE_SIZE_DEFAULT: u64 = 50;
const PAGE_SIZE_MAX: u64 = 512;

fn bad_request(message: &str) -> Response {
    errors(StatusCode::BAD_REQUEST, "bad_request_format", message)
}

/// The doc's tables type ids loosely: accept a number or a numeric string.
fn id(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| bad_request("The request body is not a JSON object."))
}

fn check_account(dc: &Dc, body: &Value) -> Result<(), Response> {
    if id(body.get("accountId")) == Some(dc.config.account_id) {
        return Ok(());
    }
    // [INF] a wrong or missing accountId: the documented `access_denied` code, as 403.
    Err(errors(
        StatusCode::FORBIDDEN,
        "access_denied",
        "You do not have access to this account.",
    ))
}

fn now_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Applies the configured renewal timing to a retried automation.
pub(super) fn settle(a: &mut Automation, config: &Config, now: Instant) {
    if let (Some(at), Some(after)) = (a.scheduled_at, config.renew_after)
        && a.status == Status::AutomationScheduled
        && now.duration_since(at) >= after
    {
        a.status = Status::SuccessfullyRenewed;
    }
}

/// `searchCriteriaList`: only the documented keys and operation. [INF] anything else is
/// refused with 400, so a client relying on undocumented criteria shows up here.
fn criteria_filter(body: &Value) -> Result<Vec<(String, Vec<String>)>, Response> {
    let Some(list) = body.get("searchCriteriaList") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| bad_request("searchCriteriaList"))?;
    let mut out = Vec::new();
    for c in list {
        let key = c.get("key").and_then(Value::as_str).unwrap_or("");
        let op = c.get("operation").and_then(Value::as_str).unwrap_or("");
        if !matches!(key, "AUTOMATION_STATUS" | "AGENT_NAME") || op != "EQUALS" {
            return Err(bad_request(&format!(
                "Unsupported search criteria {key} {op}."
            )));
        }
        let values = c.get("value").and_then(Value::as_array);
        let values = values.ok_or_else(|| bad_request("searchCriteriaList[].value"))?;
        let values = values.iter().filter_map(Value::as_str).map(str::to_owned);
        out.push((key.to_owned(), values.collect()));
    }
    Ok(out)
}

fn matches_criteria(a: &Automation, criteria: &[(String, Vec<String>)]) -> bool {
    criteria.iter().all(|(key, values)| match key.as_str() {
        "AUTOMATION_STATUS" => values.iter().any(|v| Status::parse(v) == Some(a.status)),
        _ => values.contains(&a.agent_name),
    })
}

/// The documented list fields and nothing else: no `domainName` (§2.3).
fn list_item(a: &Automation) -> Value {
    json!({
        "automationId": a.automation_id,
        "automatedIp": a.ip,
        "automatedPort": a.port,
        "managementIp": a.management_ip,
        "agentName": a.agent_name,
        "automationStatus": a.status.list_name(),
        "certificateCn": a.certificate_cn,
        "certificateExpiresOn": a.certificate_expires_on,
        "certificateId": a.certificate_id,
        "certificateSerialNumber": a.certificate_serial_number,
        "alias": a.alias,
        "appInfo": {"name": a.app_name, "version": a.app_version},
        "appPartition": a.app_partition,
    })
}

struct Paging {
    size: u64,
    first: u64,
}

fn paging(dc: &Dc, body: &Value) -> Result<Paging, Response> {
    let size = match body.get("pageSize") {
        None => PAGE_SIZE_DEFAULT,
        // [INF] pageSize 0 (allowed by the documented range 0–512) means the default.
        Some(v) => match id(Some(v)).ok_or_else(|| bad_request("pageSize"))? {
            0 => PAGE_SIZE_DEFAULT,
            n if n > PAGE_SIZE_MAX => return Err(bad_request("pageSize must be 0-512.")),
            n => n,
        },
    };
    let start = match body.get("startIndex") {
        None => 1,
        Some(v) => id(Some(v))
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad_request("startIndex"))?,
    };
    let first = if dc.config.start_index_is_page {
        (start - 1) * size
    } else {
        start - 1
    };
    Ok(Paging { size, first })
}

pub(super) async fn list(State(dc): State<Arc<Dc>>, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_account(&dc, &body) {
        return r;
    }
    let (criteria, page) = match (criteria_filter(&body), paging(&dc, &body)) {
        (Ok(c), Ok(p)) => (c, p),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let divisions: Option<Vec<u64>> = body
        .get("divisionIds")
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(|v| id(Some(v))).collect());
    let sort_desc = body
        .get("sorting")
        .and_then(|s| s.get("commonName"))
        .map(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("DESC")));
    let now = Instant::now();
    let mut all = lock(&dc.automations);
    let mut hits: Vec<&mut Automation> = all
        .iter_mut()
        .filter(|a| {
            divisions
                .as_ref()
                .is_none_or(|d| d.contains(&a.division_id))
        })
        .collect();
    hits.iter_mut().for_each(|a| settle(a, &dc.config, now));
    hits.retain(|a| matches_criteria(a, &criteria));
    if let Some(desc) = sort_desc {
        hits.sort_by(|a, b| a.certificate_cn.cmp(&b.certificate_cn));
        if desc {
            hits.reverse();
        }
    }
    let total = hits.len() as u64;
    let items: Vec<Value> = hits
        .iter()
        .skip(usize::try_from(page.first).unwrap_or(usize::MAX))
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
        .map(|a| list_item(a))
        .collect();
    // [INF] totalCount/totalPages: documented for the agent lists that "page the same way".
    wrapped(json!({
        "automatedIps": items,
        "totalCount": total,
        "totalPages": total.div_ceil(page.size),
    }))
}

pub(super) async fn details(State(dc): State<Arc<Dc>>, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_account(&dc, &body) {
        return r;
    }
    let Some(automation_id) = id(body.get("automationId")) else {
        return bad_request("automationId is required.");
    };
    let mut all = lock(&dc.automations);
    let Some(a) = all.iter_mut().find(|a| a.automation_id == automation_id) else {
        // [INF] the not-found answer is not documented for this endpoint.
        return errors(StatusCode::NOT_FOUND, "not_found", "Automation not found.");
    };
    settle(a, &dc.config, Instant::now());
    let last_run = a.last_run_ms.map(|ms| ms.to_string());
    // [INF] certInstallProgress values are not documented; these three are stand-ins.
    let progress = match a.status {
        Status::SuccessfullyRenewed => "COMPLETED",
        Status::AutomationScheduled | Status::AutoRenewScheduled => "IN_PROGRESS",
        _ => "FAILED",
    };
    wrapped(json!({
        "autoStatusResponse": {
            "automationStatus": a.status.details_name(),
            "requestedOn": "1700000000000",
            "lastRunTime": last_run,
            "nextRenewalDate": null,
        },
        "autoOrderProgressResponse": {"isRetryApplicable": a.eligible()},
        "certInstallResponse": {
            "certInstallProgress": progress,
            "causeOfFailure": a.cause_of_failure,
            "solution": a.solution,
        },
    }))
}

/// Finds the one automation an item names. `domainName` (SNI) is matched against the
/// certificate CN. [INF] an ip:port with several automations and no `domainName` is
/// ambiguous and reported as not eligible (1028) rather than retrying all of them.
fn target<'a>(all: &'a mut [Automation], item: &Value) -> Option<&'a mut Automation> {
    let ip = item.get("ip").and_then(Value::as_str)?;
    let port = id(item.get("port"))?;
    let domain = item.get("domainName").and_then(Value::as_str);
    let mut hits: Vec<&mut Automation> = all
        .iter_mut()
        .filter(|a| a.ip == ip && u64::from(a.port) == port)
        .filter(|a| domain.is_none_or(|d| a.certificate_cn.eq_ignore_ascii_case(d)))
        .collect();
    if hits.len() == 1 { hits.pop() } else { None }
}

pub(super) async fn bulk_retry(State(dc): State<Arc<Dc>>, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_account(&dc, &body) {
        return r;
    }
    let Some(items) = body
        .get("retryAutomationTaskRequests")
        .and_then(Value::as_array)
    else {
        return bad_request("retryAutomationTaskRequests is required.");
    };
    let mut keys = Vec::with_capacity(items.len());
    for item in items {
        let ip = item.get("ip").and_then(Value::as_str);
        match (ip, id(item.get("port")), id(item.get("divisionId"))) {
            (Some(ip), Some(port), Some(_)) => keys.push(format!("{ip}:{port}")),
            _ => return bad_request("ip, port and divisionId are required."),
        }
    }
    let now = Instant::now();
    let mut all = lock(&dc.automations);
    let (mut ok, mut failed) = (Map::new(), Map::new());
    let mut submitted = 0;
    for (item, key) in items.iter().zip(keys) {
        *lock(&dc.items_received).entry(key.clone()).or_default() += 1;
        let hit = target(&mut all, item).and_then(|a| {
            settle(a, &dc.config, now);
            a.eligible().then_some(a)
        });
        // [INF] SNI items sharing an ip:port share one key: a later item's result replaces an
        // earlier one's (the docs key results by "ip:port" only, §2.2).
        ok.remove(&key);
        failed.remove(&key);
        let Some(a) = hit else {
            let err = json!({"errorCode": "1028", "errorField": key,
                "errorMessage": "Automated IP/Port is not eligible for retry."});
            failed.insert(key, json!({"errors": [err], "status": {}}));
            continue;
        };
        a.status = Status::AutomationScheduled;
        a.is_retry_applicable = Some(false);
        a.scheduled_at = Some(now);
        a.last_run_ms = Some(now_ms());
        *lock(&dc.initiated).entry(a.automation_id).or_default() += 1;
        submitted += 1;
        ok.insert(key, json!("Successfully initiated retry."));
    }
    wrapped(json!({
        "retryMessages": ok,
        "failedRetries": failed,
        "message": format!("{submitted} of {} automations submitted for retry.", items.len()),
        "errors": [],
        "status": {},
    }))
}
