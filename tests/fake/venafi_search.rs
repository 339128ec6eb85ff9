//! The Venafi fake's certificate search, `GET Certificates/?…` (providers.md §1.3): the filters
//! the doc names (`InError`, `Stage`, `StageGreater`, `StageLess`, `ParentDn`,
//! `ParentDnRecursive`, `Disabled`, `PendingWorkflow`, `ValidToLess`), `Limit`/`Offset`,
//! `TotalCount`, `DataRange` and the `X-Record-Count` header.
//!
//! [INF] where providers.md gives no format: keys match case-insensitively (IIS); booleans are
//! `true`/`false`/`1`/`0`; `ValidToLess` is an ISO 8601 date or date-time (UTC without an
//! offset); a value that does not parse is a 400 `{"Error": …}`; `Limit` defaults to 100;
//! undocumented keys are ignored.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::{lock, query_pairs};
use super::venafi::Tpp;
use super::venafi_api::{Cert, error};

#[derive(Default)]
struct Filter {
    in_error: Option<bool>,
    disabled: Option<bool>,
    pending_workflow: Option<bool>,
    stage: Option<i64>,
    stage_greater: Option<i64>,
    stage_less: Option<i64>,
    parent: Option<String>,
    recursive: Option<String>,
    valid_to_less: Option<jiff::Timestamp>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn refuse(key: &str, value: &str) -> Response {
    error(&format!("The value '{value}' of {key} is not valid."))
}

fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn date(v: &str) -> Option<jiff::Timestamp> {
    let utc = |dt: jiff::civil::DateTime| dt.to_zoned(jiff::tz::TimeZone::UTC).ok();
    v.parse::<jiff::Timestamp>()
        .ok()
        .or_else(|| utc(v.parse().ok()?).map(|z| z.timestamp()))
        .or_else(|| utc(v.parse::<jiff::civil::Date>().ok()?.into()).map(|z| z.timestamp()))
}

impl Filter {
    fn parse(query: Option<&str>) -> Result<Filter, Response> {
        let mut f = Filter::default();
        for (key, value) in query_pairs(query) {
            let v = value.trim();
            let bad = || refuse(&key, &value);
            match key.to_ascii_lowercase().as_str() {
                "inerror" => f.in_error = Some(boolean(v).ok_or_else(bad)?),
                "disabled" => f.disabled = Some(boolean(v).ok_or_else(bad)?),
                "pendingworkflow" => f.pending_workflow = Some(boolean(v).ok_or_else(bad)?),
                "stage" => f.stage = Some(v.parse().map_err(|_| bad())?),
                "stagegreater" => f.stage_greater = Some(v.parse().map_err(|_| bad())?),
                "stageless" => f.stage_less = Some(v.parse().map_err(|_| bad())?),
                "parentdn" => f.parent = Some(value.clone()),
                "parentdnrecursive" => f.recursive = Some(value.clone()),
                "validtoless" => f.valid_to_less = Some(date(v).ok_or_else(bad)?),
                "limit" => f.limit = Some(v.parse().map_err(|_| bad())?),
                "offset" => f.offset = Some(v.parse().map_err(|_| bad())?),
                _ => {}
            }
        }
        Ok(f)
    }

    fn keeps(&self, c: &Cert) -> bool {
        let p = c.parent();
        let below = |r: &String| {
            p.eq_ignore_ascii_case(r)
                || p.to_ascii_lowercase()
                    .starts_with(&format!("{}\\", r.to_ascii_lowercase()))
        };
        self.in_error.is_none_or(|e| c.in_error == e)
            && self.disabled.is_none_or(|d| c.disabled == d)
            && self
                .pending_workflow
                .is_none_or(|w| c.pending_workflow == w)
            && self.stage.is_none_or(|s| c.stage == s)
            && self.stage_greater.is_none_or(|s| c.stage > s)
            && self.stage_less.is_none_or(|s| c.stage < s)
            && self
                .parent
                .as_ref()
                .is_none_or(|x| p.eq_ignore_ascii_case(x))
            && self.recursive.as_ref().is_none_or(below)
            && self.valid_to_less.is_none_or(|t| c.valid_to < t)
    }
}

pub(super) async fn search(State(tpp): State<Arc<Tpp>>, RawQuery(q): RawQuery) -> Response {
    let filter = match Filter::parse(q.as_deref()) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (limit, offset) = (filter.limit.unwrap_or(100), filter.offset.unwrap_or(0));
    let now = Instant::now();
    let mut certs = lock(&tpp.certs);
    certs.iter_mut().for_each(|c| c.settle(now));
    let hits: Vec<&Cert> = certs.iter().filter(|c| filter.keeps(c)).collect();
    let page: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| {
            json!({"DN": c.dn, "Guid": c.guid, "Name": c.name(), "ParentDn": c.parent(),
                "SchemaClass": "X509 Certificate",
                "_links": [{"Details": format!("/vedsdk/certificates/{}", c.guid)}]})
        })
        .collect();
    let range = format!("Certificates {} to {}", offset + 1, offset + page.len());
    let body = json!({"Certificates": page, "TotalCount": hits.len(), "DataRange": range});
    (
        [("x-record-count", hits.len().to_string())],
        axum::Json(body),
    )
        .into_response()
}
