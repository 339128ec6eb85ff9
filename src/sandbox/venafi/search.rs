//! Venafi's certificate search, `GET /vedsdk/Certificates/?…` (providers.md §1.3): the documented
//! certificate filters, `Limit`/`Offset` paging, `TotalCount`, `DataRange` and `X-Record-Count`.
//!
//! Filter names are pytpp's (`enums/certificate.py` `CertificateStatus`/`CertificateAttributes`,
//! `models/certificate.py` `CertificateFilter`); the subset here is the one a remediation run
//! needs. Keys match case-insensitively (IIS). Values: booleans as pytpp's `features` layer
//! sends them (`1`/`0`) or as `true`/`false`; stages as integers; dates as Python's
//! `isoformat()` (with or without an offset, which then means UTC) or a plain date. A value
//! that does not parse is a 400 `{"Error": …}` [INF: TPP's wording is not in the stored docs].
//! Filters the sandbox does not know are ignored, as an unknown query key is on a web server.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Cert, Sim, error, key, name_of, parent_of};
use crate::sandbox::reply::{self, json as answer, url_pairs};

/// The page size when `Limit` is not given [INF: not in the stored docs].
const DEFAULT_LIMIT: usize = 100;
/// The largest `Limit` honoured; a larger one is cut to it.
const MAX_LIMIT: usize = 100_000;

/// What one search asks for; `None` means "not filtered on".
#[derive(Default)]
struct Filter {
    in_error: Option<bool>,
    disabled: Option<bool>,
    pending_workflow: Option<bool>,
    stage: Option<i64>,
    stage_greater: Option<i64>,
    stage_less: Option<i64>,
    parent: Option<String>,
    parent_recursive: Option<String>,
    valid_to_less: Option<jiff::Timestamp>,
    valid_to_greater: Option<jiff::Timestamp>,
    limit: usize,
    offset: usize,
}

fn bad(name: &str, value: &str, expected: &str) -> Response {
    error(format!(
        "Invalid value [{value}] for the {name} filter; expected {expected}."
    ))
}

fn boolean(name: &str, value: &str) -> Result<bool, Response> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(bad(name, value, "1, 0, true or false")),
    }
}

fn integer(name: &str, value: &str) -> Result<i64, Response> {
    value
        .trim()
        .parse()
        .map_err(|_| bad(name, value, "an integer"))
}

fn count(name: &str, value: &str) -> Result<usize, Response> {
    value
        .trim()
        .parse()
        .map_err(|_| bad(name, value, "a whole number of certificates"))
}

/// `2026-01-31T12:00:00+00:00`, `2026-01-31T12:00:00.123` (UTC) or `2026-01-31` (midnight UTC).
fn date(name: &str, value: &str) -> Result<jiff::Timestamp, Response> {
    let text = value.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>()
        && let Ok(zoned) = dt.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(zoned.timestamp());
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>()
        && let Ok(zoned) = d.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(zoned.timestamp());
    }
    Err(bad(name, value, "an ISO 8601 date or date and time"))
}

impl Filter {
    fn parse(query: Option<&str>) -> Result<Self, Response> {
        // Later repeats of a key win, as ASP.NET binds a scalar parameter.
        let params: HashMap<String, (String, String)> = query
            .map(|q| {
                url_pairs(q)
                    .map(|(k, v)| (k.to_ascii_lowercase(), (k, v)))
                    .collect()
            })
            .unwrap_or_default();
        let mut f = Filter {
            limit: DEFAULT_LIMIT,
            ..Filter::default()
        };
        for (lower, (name, value)) in &params {
            match lower.as_str() {
                "inerror" => f.in_error = Some(boolean(name, value)?),
                "disabled" => f.disabled = Some(boolean(name, value)?),
                "pendingworkflow" => f.pending_workflow = Some(boolean(name, value)?),
                "stage" => f.stage = Some(integer(name, value)?),
                "stagegreater" => f.stage_greater = Some(integer(name, value)?),
                "stageless" => f.stage_less = Some(integer(name, value)?),
                "parentdn" => f.parent = Some(key(value)),
                "parentdnrecursive" => f.parent_recursive = Some(key(value)),
                "validtoless" => f.valid_to_less = Some(date(name, value)?),
                "validtogreater" => f.valid_to_greater = Some(date(name, value)?),
                "limit" => f.limit = count(name, value)?.min(MAX_LIMIT),
                "offset" => f.offset = count(name, value)?,
                _ => {}
            }
        }
        Ok(f)
    }

    fn keeps(&self, c: &Cert) -> bool {
        let dn = key(&c.dn);
        let folder = key(parent_of(&c.dn));
        // Recursive: the folder itself and every folder below it.
        let below = |p: &String| {
            let p = p.trim_end_matches('\\');
            folder == p || dn.starts_with(&format!("{p}\\"))
        };
        self.in_error.is_none_or(|want| c.in_error == want)
            && self.disabled.is_none_or(|want| c.disabled == want)
            && self
                .pending_workflow
                .is_none_or(|want| c.pending_workflow == want)
            && self.stage.is_none_or(|s| c.stage == s)
            && self.stage_greater.is_none_or(|s| c.stage > s)
            && self.stage_less.is_none_or(|s| c.stage < s)
            && self
                .parent
                .as_ref()
                .is_none_or(|p| folder == p.trim_end_matches('\\'))
            && self.parent_recursive.as_ref().is_none_or(below)
            && self.valid_to_less.is_none_or(|t| c.valid_to < t)
            && self.valid_to_greater.is_none_or(|t| c.valid_to > t)
    }
}

/// One search result: the fields of pytpp's `Certificate` model that the sandbox has.
fn item(c: &Cert) -> Value {
    json!({
        "CreatedOn": reply::iso(c.created),
        "DN": c.dn,
        "Guid": c.guid,
        "Name": name_of(&c.dn),
        "ParentDn": parent_of(&c.dn),
        "SchemaClass": "X509 Server Certificate",
        "_links": [{"Details": format!("/vedsdk/certificates/{}", c.guid)}],
    })
}

pub(super) async fn search(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(e) = sim.authorize(&headers) {
        return e;
    }
    let filter = match Filter::parse(query.as_deref()) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let now = reply::now();
    let mut state = sim.lock();
    let mut total = 0;
    let mut page = Vec::new();
    for c in &mut state.certs {
        // Processing that ended since the last read shows in the filters.
        sim.settle(c, now);
        if filter.keeps(c) {
            if total >= filter.offset && page.len() < filter.limit {
                page.push(item(c));
            }
            total += 1;
        }
    }
    let first = filter.offset.min(total);
    let body = json!({
        "Certificates": page,
        "DataRange": format!("Certificates {} to {}", first + 1, first + page.len()),
        "TotalCount": total,
    });
    let mut response = answer(StatusCode::OK, &body);
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        response.headers_mut().insert("x-record-count", v);
    }
    response
}
