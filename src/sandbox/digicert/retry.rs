//! `bulkretryautomationtask` (providers.md §2.2): per-`ip:port` results in one 200 answer, 1028
//! for what is unknown or not eligible, and nothing changed by a malformed request.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{NOT_ELIGIBLE, Objects, Sim, body_or_400, errors, lookup_key};
use crate::rng;
use crate::sandbox::reply::{self, json as answer, loose_u64};
use crate::sandbox::scenario::Outcome;

/// One item of `retryAutomationTaskRequests`.
struct Wanted {
    ip: String,
    port: u64,
    division: Option<u64>,
    domain: Option<String>,
}

/// Every item, checked before any state is touched: a malformed request changes nothing.
fn wanted(body: &Value) -> Result<Vec<Wanted>, Response> {
    let Some(items) = body
        .get("retryAutomationTaskRequests")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "retryAutomationTaskRequests must be a non-empty list.",
        ));
    };
    let mut wanted = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ip = item.get("ip").and_then(Value::as_str);
        let port = item.get("port").and_then(loose_u64);
        let (Some(ip), Some(port)) = (ip, port) else {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                &format!("retryAutomationTaskRequests[{i}] needs an ip and a port."),
            ));
        };
        wanted.push(Wanted {
            ip: ip.to_owned(),
            port,
            division: item.get("divisionId").and_then(loose_u64),
            domain: item
                .get("domainName")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    Ok(wanted)
}

impl Sim {
    /// Submits one automation for retry; false when it is unknown or not eligible.
    fn submit(&self, state: &mut Objects, w: &Wanted, now: jiff::Timestamp) -> bool {
        let index = state
            .by_address
            .get(&lookup_key(&w.ip, w.port, w.domain.as_deref()))
            .copied()
            .filter(|&i| {
                w.division
                    .is_none_or(|d| state.automations[i].division_id == d)
            });
        let Some(i) = index else {
            self.host.stats.touch(&format!("{}:{}", w.ip, w.port));
            return false;
        };
        let a = &mut state.automations[i];
        Sim::settle(a, now);
        if !a.retry_applicable || a.processing.is_some() {
            self.host.stats.mutation(&a.target(), false, a.retried);
            return false;
        }
        a.attempts += 1;
        let renews = match a.outcome {
            Some(o) => o == Outcome::Succeeds,
            None => {
                rng::unit(rng::hash(
                    self.seed,
                    &[
                        b"digicert-outcome",
                        a.target().as_bytes(),
                        &a.attempts.to_le_bytes(),
                    ],
                )) < self.retry_success
            }
        };
        a.processing = Some((now + self.processing, renews));
        a.status = "AUTOMATION_SCHEDULED".into();
        a.retry_applicable = false;
        a.retried = true;
        self.host.stats.mutation(&a.target(), true, false);
        true
    }
}

pub(super) async fn bulk_retry(
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
    let wanted = match wanted(&body) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let now = reply::now();
    let mut state = sim.lock();
    let mut retried = serde_json::Map::new();
    let mut failed = serde_json::Map::new();
    for w in &wanted {
        let address = format!("{}:{}", w.ip, w.port);
        if sim.submit(&mut state, w, now) {
            retried.insert(address, json!("Successfully initiated retry."));
        } else {
            failed.insert(
                address.clone(),
                json!({
                    "errors": [{"errorCode": "1028", "errorField": address, "errorMessage": NOT_ELIGIBLE}],
                    "status": {},
                }),
            );
        }
    }
    let message = format!(
        "{} of {} automations submitted for retry.",
        retried.len(),
        wanted.len()
    );
    answer(
        StatusCode::OK,
        &json!({
            "error": null,
            "data": {
                "retryMessages": retried,
                "failedRetries": failed,
                "message": message,
                "errors": [],
                "status": {},
            }
        }),
    )
}
