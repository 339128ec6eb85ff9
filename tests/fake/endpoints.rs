//! Per-endpoint request counters and "between two pages" hooks, shared by the fakes.
//!
//! A fake names its endpoints as `"METHOD /path/{param}"` (the route with a trailing `/`
//! dropped) and wraps its whole router in [`track`], outermost, so every request is counted —
//! also one its auth gate or rate limiter refuses. A test then asks
//! `fake.requests("GET /v1/tasks")` ("at most 5 requests"), and can plant a change to run right
//! after an endpoint's n-th successful (2xx) answer was made and before it is sent, so the
//! client's next page already sees a changed world.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::server::lock;

/// A change to the fake's state, planted by a test.
type Change = Box<dyn FnOnce() + Send>;

struct Hook {
    endpoint: String,
    after: usize,
    change: Change,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<String, usize>,
    answered: BTreeMap<String, usize>,
    hooks: Vec<Hook>,
}

/// The endpoints of one fake, their counters and pending hooks. Cloning shares them.
#[derive(Clone)]
pub struct Endpoints {
    known: Arc<Vec<(String, Vec<String>)>>,
    inner: Arc<Mutex<Inner>>,
}

fn segments(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

impl Endpoints {
    /// `routes`: `(method, path)` with `{name}` for a path parameter, as the router has them.
    pub fn new(routes: &[(&str, &str)]) -> Self {
        let known = routes
            .iter()
            .map(|(m, p)| (m.to_ascii_uppercase(), segments(p)))
            .collect();
        Self {
            known: Arc::new(known),
            inner: Arc::default(),
        }
    }

    /// `"GET /v1/tasks/{id}"` for `GET /v1/tasks/abc`; `"other"` for anything not routed.
    fn classify(&self, method: &str, path: &str) -> String {
        let got = segments(path);
        self.known
            .iter()
            .find(|(m, pattern)| {
                m.eq_ignore_ascii_case(method)
                    && pattern.len() == got.len()
                    && pattern
                        .iter()
                        .zip(&got)
                        .all(|(p, g)| p.starts_with('{') || p.eq_ignore_ascii_case(g))
            })
            .map_or_else(
                || "other".to_owned(),
                |(m, pattern)| format!("{m} {}", pattern.join("/")),
            )
    }

    /// Requests that arrived for `endpoint` (`"GET /vedsdk/certificates"`), whatever the answer.
    pub fn requests(&self, endpoint: &str) -> usize {
        lock(&self.inner)
            .requests
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// 2xx answers given by `endpoint`: the pages a client actually got.
    pub fn answered(&self, endpoint: &str) -> usize {
        lock(&self.inner)
            .answered
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Every endpoint's request count.
    pub fn all_requests(&self) -> BTreeMap<String, usize> {
        lock(&self.inner).requests.clone()
    }

    /// Runs `change` once, right after `endpoint`'s `n`-th 2xx answer (1-based) is made.
    pub fn after_answer(&self, endpoint: &str, n: usize, change: impl FnOnce() + Send + 'static) {
        lock(&self.inner).hooks.push(Hook {
            endpoint: endpoint.to_owned(),
            after: n,
            change: Box::new(change),
        });
    }

    /// Hooks planted but not yet run (a test can assert its change happened).
    pub fn pending_hooks(&self) -> usize {
        lock(&self.inner).hooks.len()
    }
}

/// The outermost layer of a fake: counts the request, lets the fake answer, counts a 2xx
/// answer and runs the hooks due after it.
pub async fn track(State(endpoints): State<Endpoints>, req: Request, next: Next) -> Response {
    let endpoint = endpoints.classify(req.method().as_str(), req.uri().path());
    *lock(&endpoints.inner)
        .requests
        .entry(endpoint.clone())
        .or_default() += 1;
    let response = next.run(req).await;
    if response.status().is_success() {
        let due: Vec<Change> = {
            let mut inner = lock(&endpoints.inner);
            let n = inner.answered.entry(endpoint.clone()).or_default();
            *n += 1;
            let n = *n;
            let (due, keep) = std::mem::take(&mut inner.hooks)
                .into_iter()
                .partition(|h| h.endpoint == endpoint && h.after == n);
            inner.hooks = keep;
            due.into_iter().map(|h: Hook| h.change).collect()
        };
        // Outside the counters' lock: a change locks the fake's own state.
        due.into_iter().for_each(|change| change());
    }
    response
}
