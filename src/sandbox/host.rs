//! One simulated host: a loopback listener serving one provider's router through hyper, with the
//! request counting, in-flight tracking and connection aborts that faults need.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::Kind;
use super::abort::Abort;
use super::faults::Injector;
use super::stats::Stats;

/// What every simulated provider has besides its own state.
pub struct Host {
    pub kind: Kind,
    pub stats: Stats,
    pub injector: Injector,
    /// The provider's own error body for an injected status.
    pub error_response: fn(StatusCode) -> axum::response::Response,
    /// IIS-hosted APIs (Venafi) match paths case-insensitively.
    pub case_insensitive_paths: bool,
}

impl Host {
    pub fn new(
        kind: Kind,
        injector: Injector,
        error_response: fn(StatusCode) -> axum::response::Response,
    ) -> Self {
        Self {
            kind,
            stats: Stats::default(),
            injector,
            error_response,
            case_insensitive_paths: false,
        }
    }
}

fn lowercase_path(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    if !path.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut text = path.to_ascii_lowercase();
    if let Some(q) = uri.query() {
        text.push('?');
        text.push_str(q);
    }
    text.parse().ok()
}

async fn handle(
    host: Arc<Host>,
    router: Router,
    request: Request<Incoming>,
) -> Result<Response<Body>, Abort> {
    // Introspection reads are not provider traffic: they must not inflate the peak.
    let _in_flight = (!request.uri().path().starts_with("/_sandbox/")).then(|| host.stats.enter());
    let mut request = request.map(Body::new);
    if host.case_insensitive_paths
        && let Some(uri) = lowercase_path(request.uri())
    {
        *request.uri_mut() = uri;
    }
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.extensions().get::<Abort>().is_some() {
        return Err(Abort);
    }
    Ok(response)
}

/// Serves `router` on `listener` until `shutdown` turns true; open connections are dropped then.
pub async fn serve(
    listener: TcpListener,
    host: Arc<Host>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or a connection reset while queued: breathe and go on.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (host, router) = (host.clone(), router.clone());
                let service = hyper::service::service_fn(move |request| {
                    handle(host.clone(), router.clone(), request)
                });
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

/// Binds a loopback listener on `port` (0 for any free port).
pub async fn bind(ip: std::net::IpAddr, port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(SocketAddr::new(ip, port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
