//! VCF's task lists (providers.md §3.3): `GET /v1/tasks` filtered and paged into a `PageOfTask`,
//! and `GET /v1/credentials/tasks`, which takes only `limit`.
//!
//! Parameters, types and the 100 cap are from `vmware/vcf-sdk-go` `specs/swagger.json` 9.0.2.0
//! (`getTasks`, `getCredentialsTasks`). Inferred where the spec is silent [INF]:
//! - `pageNumber` is 0-based, as the spec says for the sibling `GET /v1/credentials` ("starts
//!   with 0"); without `pageSize` a page holds 100 tasks;
//! - `pageSize` outside 1–100, a negative `pageNumber` or `limit`, or a value that is not of
//!   the spec's type is a 400 `Error`, as Spring answers a parameter it cannot bind;
//! - `limit` caps the matching tasks before paging; `taskStatus` compares case-insensitively
//!   with `In Progress` ≡ `IN_PROGRESS`; `taskName` is a case-insensitive "contains";
//! - `pageMetadata.pageSize` is "the number of elements in the current page" (the spec's
//!   words), so it is short on the last page; `totalPages` counts pages of the asked size.
//!
//! The credentials-task list documents no paging: `pageNumber`/`pageSize` there are ignored,
//! like any unknown parameter, and every "page" is the same.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Sim, Task, vcf_error};
use crate::rng;
use crate::sandbox::reply::{self, json as answer, url_pairs};

const MAX_PAGE_SIZE: i64 = 100;

fn invalid(message: &str) -> Response {
    vcf_error(StatusCode::BAD_REQUEST, "INVALID_INPUT", message, None)
}

/// The query as a map (the last repeat wins); Spring's parameter names are case-sensitive.
fn params(query: Option<&str>) -> HashMap<String, String> {
    query.map(|q| url_pairs(q).collect()).unwrap_or_default()
}

fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Response> {
    params
        .get(name)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid(&format!("{name} must be an integer, not '{v}'")))
        })
        .transpose()
}

fn normalized(status: &str) -> String {
    status.trim().to_ascii_uppercase().replace(' ', "_")
}

/// What `GET /v1/tasks` asks for.
struct TaskQuery {
    limit: Option<usize>,
    status: Option<String>,
    kind: Option<String>,
    resource_id: Option<String>,
    resource_type: Option<String>,
    completed_after: Option<i64>,
    name: Option<String>,
    page_number: usize,
    page_size: usize,
    order_by: Option<String>,
    descending: bool,
}

impl TaskQuery {
    fn parse(query: Option<&str>) -> Result<Self, Response> {
        let p = params(query);
        let non_negative = |name: &str| -> Result<Option<usize>, Response> {
            number(&p, name)?
                .map(|n| {
                    usize::try_from(n).map_err(|_| invalid(&format!("{name} must not be negative")))
                })
                .transpose()
        };
        let page_size = number(&p, "pageSize")?.unwrap_or(MAX_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(invalid(&format!(
                "pageSize is {page_size}; the page size must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        if let Some(v) = p.get("doLiveRefresh")
            && !matches!(v.to_ascii_lowercase().as_str(), "true" | "false")
        {
            return Err(invalid(&format!(
                "doLiveRefresh must be true or false, not '{v}'"
            )));
        }
        let descending = match p.get("orderDirection").map(|d| d.to_ascii_uppercase()) {
            None => false,
            Some(d) if d == "ASC" => false,
            Some(d) if d == "DESC" => true,
            Some(d) => {
                return Err(invalid(&format!(
                    "orderDirection must be ASC or DESC, not '{d}'"
                )));
            }
        };
        let order_by = p.get("orderBy").cloned();
        if let Some(o) = &order_by
            && ![
                "creationTimestamp",
                "completionTimestamp",
                "name",
                "status",
                "type",
            ]
            .contains(&o.as_str())
        {
            return Err(invalid(&format!("orderBy '{o}' is not a task field")));
        }
        Ok(Self {
            limit: non_negative("limit")?,
            status: p.get("taskStatus").map(|s| normalized(s)),
            kind: p.get("taskType").map(|t| t.to_ascii_uppercase()),
            resource_id: p.get("resourceId").map(|r| r.to_ascii_lowercase()),
            resource_type: p.get("resourceType").map(|r| r.to_ascii_uppercase()),
            completed_after: number(&p, "completedAfter")?,
            name: p.get("taskName").map(|n| n.to_lowercase()),
            page_number: non_negative("pageNumber")?.unwrap_or(0),
            page_size: usize::try_from(page_size).unwrap_or(100),
            order_by,
            descending,
        })
    }

    fn keeps(&self, sim: &Sim, t: &Task) -> bool {
        let resource_id =
            |r: &super::VcfResource| rng::uuid(sim.seed, &[b"vcf-resource", r.name.as_bytes()]);
        self.status.as_ref().is_none_or(|s| *s == t.status.upper())
            && self.kind.as_ref().is_none_or(|k| {
                *k == format!("CREDENTIALS_{}", t.operation_type.to_ascii_uppercase())
            })
            && self
                .resource_id
                .as_ref()
                .is_none_or(|id| t.resources.iter().any(|r| resource_id(r) == *id))
            && self
                .resource_type
                .as_ref()
                .is_none_or(|k| t.resources.iter().any(|r| r.kind.eq_ignore_ascii_case(k)))
            && self.completed_after.is_none_or(|after| {
                !t.status.running() && t.completed.is_some_and(|c| c.as_millisecond() > after)
            })
            && self
                .name
                .as_ref()
                .is_none_or(|n| t.name.to_lowercase().contains(n))
    }
}

fn sort(tasks: &mut [&Task], order_by: Option<&str>, descending: bool) {
    match order_by {
        Some("creationTimestamp") => tasks.sort_by_key(|t| t.created),
        Some("completionTimestamp") => tasks.sort_by_key(|t| t.completed),
        Some("name") => tasks.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("status") => tasks.sort_by_key(|t| t.status.upper()),
        Some("type") => tasks.sort_by(|a, b| a.operation_type.cmp(&b.operation_type)),
        _ => {}
    }
    if descending {
        tasks.reverse();
    }
}

fn page_metadata(number: usize, size: usize, on_page: usize, total: usize) -> Value {
    json!({
        "pageNumber": number,
        "pageSize": on_page,
        "totalElements": total,
        "totalPages": total.div_ceil(size.max(1)),
    })
}

pub(super) async fn list_tasks(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let q = match TaskQuery::parse(query.as_deref()) {
        Ok(q) => q,
        Err(e) => return e,
    };
    let now = reply::now();
    let mut state = sim.lock();
    for t in &mut state.tasks {
        sim.settle(t, now);
    }
    let mut matched: Vec<&Task> = state.tasks.iter().filter(|t| q.keeps(&sim, t)).collect();
    sort(&mut matched, q.order_by.as_deref(), q.descending);
    if let Some(limit) = q.limit {
        matched.truncate(limit);
    }
    let total = matched.len();
    let elements: Vec<Value> = matched
        .iter()
        .skip(q.page_number.saturating_mul(q.page_size))
        .take(q.page_size)
        .map(|t| sim.task_json(t))
        .collect();
    let meta = page_metadata(q.page_number, q.page_size, elements.len(), total);
    answer(
        StatusCode::OK,
        &json!({"elements": elements, "pageMetadata": meta}),
    )
}

pub(super) async fn list_credentials_tasks(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let p = params(query.as_deref());
    let limit = match number(&p, "limit") {
        Ok(None) => usize::MAX,
        Ok(Some(n)) => match usize::try_from(n) {
            Ok(n) => n,
            Err(_) => return invalid("limit must not be negative"),
        },
        Err(e) => return e,
    };
    let now = reply::now();
    let mut state = sim.lock();
    let total = state.tasks.len();
    let mut elements = Vec::new();
    for t in state.tasks.iter_mut().take(limit) {
        sim.settle(t, now);
        elements.push(sim.credentials_task_json(t));
    }
    // One page holding everything returned (as before paging was looked at: the spec has none).
    let size = elements.len();
    answer(
        StatusCode::OK,
        &json!({
            "elements": elements,
            "pageMetadata": {"pageNumber": 0, "pageSize": size, "totalElements": total, "totalPages": 1},
        }),
    )
}
