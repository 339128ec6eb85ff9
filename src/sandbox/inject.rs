//! The fault middleware in front of every simulated route: counts the request, sleeps the drawn
//! latency, then serves the fault or lets the route answer.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::abort::abort;
use super::faults::Fault;
use super::host::Host;

/// The middleware: counts the request, sleeps the latency, then serves the fault or the route.
pub async fn inject(
    State(host): State<Arc<Host>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = format!(
        "{} {}",
        request.method(),
        matched
            .as_ref()
            .map_or_else(|| request.uri().path(), MatchedPath::as_str)
    );
    let arrived = std::time::Instant::now();
    host.stats.request(&endpoint);
    let (latency, fault) = host.injector.decide(&endpoint);
    if !latency.is_zero() {
        super::timer::sleep_until(arrived + latency).await;
    }
    match fault {
        Fault::None => next.run(request).await,
        Fault::Error(status) => {
            host.stats.fault("error");
            (host.error_response)(status)
        }
        Fault::Throttle(after) => {
            host.stats.fault("throttle");
            host.stats.throttled();
            super::reply::with_retry_after(
                (host.error_response)(StatusCode::TOO_MANY_REQUESTS),
                after,
            )
        }
        Fault::Reset => {
            host.stats.fault("reset");
            abort()
        }
        Fault::Stall(hold) => {
            host.stats.fault("stall");
            tokio::time::sleep(hold).await;
            abort()
        }
        Fault::OutcomeAfterTimeout(hold) => {
            host.stats.fault("outcome_after_timeout");
            let _lost = next.run(request).await;
            tokio::time::sleep(hold).await;
            abort()
        }
    }
}
