//! Hostile servers: one echoes the whole request back (headers and body) in the answer, one
//! redirects to another origin whose listener records every header that reaches it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::{Options, RawTarget, RequestLog, Server, lock};

/// Header names that carry credentials for the five providers (and cookies).
pub const CREDENTIAL_HEADERS: [&str; 9] = [
    "authorization",
    "x-dc-devkey",
    "x-ncp-iam-access-key",
    "x-ncp-apigw-signature-v2",
    "x-auth-token",
    "x-venafi-api-key",
    "cookie",
    "proxy-authorization",
    "x-subject-token",
];

/// How the echo is put in the answer.
#[derive(Clone, Debug)]
pub enum EchoMode {
    /// `text/plain`: the echo itself.
    Text,
    /// `{"message": "<echo>"}`.
    JsonMessage,
    /// Any JSON; every string equal to `{{echo}}` is replaced by the echo (e.g.
    /// `{"error":{"errorCode":"200","message":"{{echo}}"}}` or `{"Error":"{{echo}}"}`).
    Template(Value),
}

struct EchoState {
    answer: Mutex<(u16, EchoMode)>,
}

/// Serves every path and method with the configured status and the request echoed back.
pub struct EchoFake {
    server: Server,
    state: Arc<EchoState>,
}

impl EchoFake {
    fn router(status: u16, mode: EchoMode) -> (Router, Arc<EchoState>) {
        let state = Arc::new(EchoState {
            answer: Mutex::new((status, mode)),
        });
        let router = Router::new().fallback(echo).with_state(state.clone());
        (router, state)
    }
    pub fn start(status: u16, mode: EchoMode) -> EchoFake {
        let (router, state) = EchoFake::router(status, mode);
        EchoFake {
            server: Server::start(router, Options::default()),
            state,
        }
    }
    pub fn spawn_thread(status: u16, mode: EchoMode) -> EchoFake {
        let (router, state) = EchoFake::router(status, mode);
        EchoFake {
            server: Server::spawn_thread(router, Options::default()),
            state,
        }
    }
    /// Changes the answer for later requests.
    pub fn set(&self, status: u16, mode: EchoMode) {
        *lock(&self.state.answer) = (status, mode);
    }
    pub fn url(&self) -> String {
        self.server.url()
    }
    pub fn base_url(&self) -> String {
        self.server.url()
    }
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }
}

/// `METHOD target`, then `name: value` lines, a blank line and the body.
fn echo_text(req: &Request, body: &[u8]) -> String {
    let target = req
        .extensions()
        .get::<RawTarget>()
        .map_or_else(|| req.uri().to_string(), |t| t.0.clone());
    let mut out = format!("{} {target}\n", req.method());
    for (name, value) in req.headers() {
        out.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    out.push('\n');
    out.push_str(&String::from_utf8_lossy(body));
    out
}

fn fill(template: &Value, echo: &str) -> Value {
    match template {
        Value::String(s) if s == "{{echo}}" => Value::String(echo.to_owned()),
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, echo)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), fill(v, echo))).collect())
        }
        other => other.clone(),
    }
}

async fn echo(State(state): State<Arc<EchoState>>, req: Request) -> Response {
    let (status, mode) = lock(&state.answer).clone();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let text = echo_text(
        &Request::from_parts(parts, axum::body::Body::empty()),
        &body,
    );
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match mode {
        EchoMode::Text => (status, text).into_response(),
        EchoMode::JsonMessage => (status, axum::Json(json!({"message": text}))).into_response(),
        EchoMode::Template(t) => (status, axum::Json(fill(&t, &text))).into_response(),
    }
}

/// A redirector (`url()`) answering `status` with `Location` on a second listener (another
/// port, so another origin) that records what arrives and answers 200 with `target_body`.
pub struct RedirectFake {
    redirector: Server,
    target: Server,
}

#[derive(Clone, Debug)]
struct RedirectState {
    status: u16,
    /// `None`: the target listener's URL plus the same path and query.
    location: Option<String>,
    target_url: String,
}

impl RedirectFake {
    fn wire(status: u16, location: Option<String>, body: Value, threaded: bool) -> RedirectFake {
        let target_router = Router::new().fallback(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        });
        let start = |r: Router| {
            if threaded {
                Server::spawn_thread(r, Options::default())
            } else {
                Server::start(r, Options::default())
            }
        };
        let target = start(target_router);
        let state = RedirectState {
            status,
            location,
            target_url: target.url(),
        };
        let redirector = start(Router::new().fallback(redirect).with_state(state));
        RedirectFake { redirector, target }
    }
    /// Redirects with `status` (301/302/307/308) to the same target on the other origin.
    pub fn start(status: u16) -> RedirectFake {
        RedirectFake::wire(status, None, json!({}), false)
    }
    pub fn spawn_thread(status: u16) -> RedirectFake {
        RedirectFake::wire(status, None, json!({}), true)
    }
    /// Full control: a fixed `Location` (e.g. an `http://` URL) and the target's answer body.
    pub fn start_with(
        status: u16,
        location: Option<&str>,
        target_body: Value,
        threaded: bool,
    ) -> RedirectFake {
        RedirectFake::wire(status, location.map(str::to_owned), target_body, threaded)
    }
    /// The redirector, where a runbook's `url:` points.
    pub fn url(&self) -> String {
        self.redirector.url()
    }
    pub fn base_url(&self) -> String {
        self.redirector.url()
    }
    /// The other origin.
    pub fn target_url(&self) -> String {
        self.target.url()
    }
    pub fn redirector_log(&self) -> &RequestLog {
        self.redirector.log()
    }
    pub fn target_log(&self) -> &RequestLog {
        self.target.log()
    }
    /// `(header, value)` pairs that reached the other origin and carry a credential: any
    /// header in [`CREDENTIAL_HEADERS`] or `extra_headers`, and any header whose value contains
    /// one of `secrets`. Bodies containing a secret are reported as `("<body>", path)`.
    pub fn leaked(&self, extra_headers: &[&str], secrets: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for r in self.target.log().all() {
            for (name, value) in &r.headers {
                let named = CREDENTIAL_HEADERS.contains(&name.as_str())
                    || extra_headers.iter().any(|h| h.eq_ignore_ascii_case(name));
                let carries = secrets.iter().any(|s| !s.is_empty() && value.contains(s));
                if named || carries {
                    out.push((name.clone(), value.clone()));
                }
            }
            let body = r.body_text();
            if secrets.iter().any(|s| !s.is_empty() && body.contains(s)) {
                out.push(("<body>".into(), r.path.clone()));
            }
        }
        out
    }
}

async fn redirect(State(state): State<RedirectState>, req: Request) -> Response {
    let target = req
        .extensions()
        .get::<RawTarget>()
        .map_or_else(|| "/".to_owned(), |t| t.0.clone());
    let location = state
        .location
        .clone()
        .unwrap_or_else(|| format!("{}{target}", state.target_url));
    let status = StatusCode::from_u16(state.status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    let mut resp = (status, "").into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert("location", v);
    }
    resp
}
