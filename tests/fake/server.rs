//! The listener every fake shares: serves an axum router on 127.0.0.1:0, records each request.
//!
//! A fake is an axum `Router`. This module accepts connections itself (hyper, HTTP/1.1), reads
//! each request body in full, appends the request to a [`RequestLog`], and only then hands it to
//! the router. A handler can ask for the connection to be dropped instead of answered by putting
//! [`DropConnection`] in its response's extensions: the client then sees a transport error, while
//! whatever the handler changed stays changed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// The largest request body a fake reads; larger bodies are cut off (and the request refused).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// The log keeps at most this many requests; later ones are counted but not stored.
const MAX_LOGGED: usize = 100_000;
/// How long a `spawn_thread` server may take to come up or go down.
const THREAD_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path as sent (not decoded, not lower-cased).
    pub path: String,
    /// The raw query (without `?`), if the target had one.
    pub query: Option<String>,
    /// Header names are lower-case; repeated headers appear once per value, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Path plus `?query`, as sent.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// Every request a fake received, in arrival order. Cloning shares the log.
#[derive(Clone, Default, Debug)]
pub struct RequestLog(Arc<Mutex<LogInner>>);

#[derive(Default, Debug)]
struct LogInner {
    entries: Vec<Recorded>,
    total: usize,
}

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, r: Recorded) {
        let mut inner = self.lock();
        inner.total += 1;
        if inner.entries.len() < MAX_LOGGED {
            inner.entries.push(r);
        }
    }

    /// A copy of every stored request.
    pub fn all(&self) -> Vec<Recorded> {
        self.lock().entries.clone()
    }

    /// How many requests arrived (including any past the storage cap).
    pub fn len(&self) -> usize {
        self.lock().total
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored requests with this method whose path equals `path` (ASCII case-insensitive).
    pub fn matching(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.lock()
            .entries
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.eq_ignore_ascii_case(path))
            .cloned()
            .collect()
    }
}

/// Put this in a response's extensions to close the connection instead of answering.
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the fake dropped the connection on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// The request target exactly as received, for handlers that must see it byte for byte (the
/// NAVER signature covers it). Present in every request's extensions.
#[derive(Clone, Debug)]
pub struct RawTarget(pub String);

/// Arrival time of the request, in every request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct Arrival(pub Instant);

/// How the listener treats requests before the router sees them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Lower-case the path before routing (IIS-style case-insensitive paths). The log and
    /// [`RawTarget`] keep the original.
    pub lowercase_paths: bool,
}

enum Stop {
    Task(tokio::task::JoinHandle<()>),
    Thread {
        tx: Option<oneshot::Sender<()>>,
        join: Option<std::thread::JoinHandle<()>>,
    },
}

/// A running fake listener. Dropping it stops the listener and every open connection.
pub struct Server {
    addr: SocketAddr,
    log: RequestLog,
    stop: Stop,
}

impl Server {
    /// Serves `router` on the current tokio runtime. Panics outside a runtime.
    pub fn start(router: Router, options: Options) -> Server {
        let log = RequestLog::default();
        let listener = bind();
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let listener = tokio::net::TcpListener::from_std(listener)
            .expect("start() runs inside a tokio runtime");
        let task = tokio::spawn(accept_loop(listener, router, log.clone(), options, None));
        Server {
            addr,
            log,
            stop: Stop::Task(task),
        }
    }

    /// Serves `router` on its own thread with its own runtime, for sync tests that run the
    /// real binary. Blocks until the listener is bound.
    pub fn spawn_thread(router: Router, options: Options) -> Server {
        let log = RequestLog::default();
        let listener = bind();
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (tx, rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_log = log.clone();
        let join = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the fake");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = ready_tx.send(());
                accept_loop(listener, router, thread_log, options, Some(rx)).await;
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        ready_rx
            .recv_timeout(THREAD_TIMEOUT)
            .expect("the fake's thread comes up");
        Server {
            addr,
            log,
            stop: Stop::Thread {
                tx: Some(tx),
                join: Some(join),
            },
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> &RequestLog {
        &self.log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match &mut self.stop {
            Stop::Task(task) => task.abort(),
            Stop::Thread { tx, join } => {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
                if let Some(join) = join.take() {
                    let deadline = Instant::now() + THREAD_TIMEOUT;
                    while !join.is_finished() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    if join.is_finished() {
                        let _ = join.join();
                    }
                }
            }
        }
    }
}

fn bind() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    listener
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    log: RequestLog,
    options: Options,
    stop: Option<oneshot::Receiver<()>>,
) {
    let mut conns = JoinSet::new();
    let stop = async move {
        match stop {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (router, log) = (router.clone(), log.clone());
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                handle(req, router.clone(), log.clone(), options)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
    conns.abort_all();
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    router: Router,
    log: RequestLog,
    options: Options,
) -> Result<Response<Body>, DropConnection> {
    let at = Instant::now();
    let (mut parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), MAX_BODY)
        .await
        .unwrap_or_default();
    let raw = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    log.push(Recorded {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into(),
                )
            })
            .collect(),
        body: body.to_vec(),
        at,
    });
    if options.lowercase_paths {
        parts.uri = lowercase_path(&parts.uri);
    }
    parts.extensions.insert(RawTarget(raw));
    parts.extensions.insert(Arrival(at));
    let response: Result<Response<Body>, Infallible> = router
        .oneshot(Request::from_parts(parts, Body::from(body)))
        .await;
    let Ok(response) = response;
    if response.extensions().get::<DropConnection>().is_some() {
        return Err(DropConnection);
    }
    Ok(response)
}

fn lowercase_path(uri: &Uri) -> Uri {
    let path = uri.path().to_ascii_lowercase();
    let target = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    target.parse().unwrap_or_else(|_| uri.clone())
}

/// Reads `name` from a header map as text.
pub fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A query string parsed into (key, value) pairs, percent-decoded.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Locks a std mutex, surviving a poisoned lock (a panicking test must not hide the state).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
