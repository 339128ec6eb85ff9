//! The WAF certificate list and detail (providers.md §4.2): paging with `-1` for everything,
//! `host=true` gating of expiry and bindings, filters and `WAF.*` errors.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Sim, WafCert, waf_error};
use crate::sandbox::reply::{self, json as answer, url_pairs};

fn illegal_page() -> Response {
    waf_error(
        StatusCode::BAD_REQUEST,
        "WAF.00011011",
        "pageOrPageSize.illegal",
    )
}

/// The list's query: page, page size (`-1` for all), `host=true`, and the filters.
struct ListQuery {
    page: i64,
    page_size: i64,
    host: bool,
    exp_status: Option<i64>,
    name: Option<String>,
}

fn list_query(query: Option<&str>) -> Result<ListQuery, Response> {
    let params: HashMap<String, String> = query.map(|q| url_pairs(q).collect()).unwrap_or_default();
    let int = |name: &str, default: i64| -> Result<i64, ()> {
        params
            .get(name)
            .map_or(Ok(default), |v| v.trim().parse().map_err(|_| ()))
    };
    let (Ok(page), Ok(page_size)) = (int("page", 1), int("pagesize", DEFAULT_PAGE_SIZE)) else {
        return Err(illegal_page());
    };
    if page < 1 || !(page_size == -1 || (1..=MAX_PAGE_SIZE).contains(&page_size)) {
        return Err(illegal_page());
    }
    let exp_status = match params.get("exp_status") {
        None => None,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(s @ 0..=2) => Some(s),
            _ => {
                return Err(waf_error(
                    StatusCode::BAD_REQUEST,
                    "WAF.00011001",
                    "exp_status.illegal",
                ));
            }
        },
    };
    Ok(ListQuery {
        page,
        page_size,
        host: params
            .get("host")
            .is_some_and(|h| h.eq_ignore_ascii_case("true")),
        exp_status,
        name: params.get("name").map(|n| n.to_lowercase()),
    })
}

fn list_item(sim: &Sim, c: &WafCert, host: bool, now: i64) -> Value {
    let mut item = json!({
        "id": c.id,
        "name": c.name,
        // Verbatim from the docs: the redundant fields end in a comma.
        "certificateid": format!("{},", c.id),
        "certificatename": format!("{},", c.name),
        "timestamp": c.uploaded,
    });
    if host {
        item["expire_time"] = json!(c.expire_time);
        item["exp_status"] = json!(sim.exp_status(c, now));
        item["bind_host"] = json!(sim.bind_host(c));
    }
    item
}

pub(super) async fn list(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let token_project = match sim.authorize(&headers) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if token_project != project_id {
        return waf_error(StatusCode::BAD_REQUEST, "WAF.00012002", "invalid.project");
    }
    let q = match list_query(query.as_deref()) {
        Ok(q) => q,
        Err(e) => return e,
    };
    let now = reply::now_ms();
    let matched: Vec<&WafCert> = sim
        .certificates
        .iter()
        .filter(|c| c.project_id == project_id)
        .filter(|c| {
            q.name
                .as_ref()
                .is_none_or(|n| c.name.to_lowercase().contains(n.as_str()))
        })
        .filter(|c| q.exp_status.is_none_or(|s| sim.exp_status(c, now) == s))
        .collect();
    let total = matched.len();
    let page_items: &[&WafCert] = if q.page_size == -1 {
        &matched
    } else {
        let size = usize::try_from(q.page_size).unwrap_or(usize::MAX);
        let start = usize::try_from(q.page - 1)
            .unwrap_or(usize::MAX)
            .saturating_mul(size)
            .min(total);
        &matched[start..start.saturating_add(size).min(total)]
    };
    let items: Vec<Value> = page_items
        .iter()
        .map(|c| {
            sim.host.stats.touch(&c.id);
            list_item(&sim, c, q.host, now)
        })
        .collect();
    answer(StatusCode::OK, &json!({"total": total, "items": items}))
}

pub(super) async fn detail(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((project_id, certificate_id)): Path<(String, String)>,
) -> Response {
    let token_project = match sim.authorize(&headers) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if token_project != project_id {
        return waf_error(StatusCode::BAD_REQUEST, "WAF.00012002", "invalid.project");
    }
    let Some(c) = sim
        .certificates
        .iter()
        .find(|c| c.id == certificate_id && c.project_id == project_id)
    else {
        return waf_error(StatusCode::NOT_FOUND, "WAF.00022001", "resource.not.found");
    };
    sim.host.stats.touch(&c.id);
    answer(
        StatusCode::OK,
        &json!({
            "id": c.id,
            "name": c.name,
            "content": format!("-----BEGIN CERTIFICATE-----\nMIIsandbox{}\n-----END CERTIFICATE-----\n", c.id),
            // The detail call returns the private key: clients must redact it.
            "key": "-----BEGIN PRIVATE KEY-----\nMIIsandbox-not-a-real-key\n-----END PRIVATE KEY-----\n",
            "expire_time": c.expire_time,
            "timestamp": c.uploaded,
            "bind_host": sim.bind_host(c),
        }),
    )
}
