//! The HTTP layer every provider shares: client construction (timeouts, plain `http://` only to
//! loopback unless allowed; trust, gzip and the direct client in [`super::wire`]), and calls
//! whose failures say whether the request may have reached the server.

use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Url};
use serde_json::Value;

use crate::limits::Limiter;
use crate::manifest::model::{Provider, Tls};

const USER_AGENT: &str = concat!("redrive/", env!("CARGO_PKG_VERSION"));
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a provider cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("`{url}` is not a valid URL: {detail}")]
    BadUrl { url: String, detail: String },
    #[error(
        "`{url}` is plain http to a host that is not loopback; use https, or set `tls: {{allow_http: true}}` on the provider if you really mean it"
    )]
    PlainHttp { url: String },
    #[error("cannot read the CA bundle {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A failed call, classified by whether the server may have seen it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Nothing was sent: resending is always safe.
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    /// The provider's limits did not let it go: nothing was sent.
    #[error("not sent to {url}: {detail}")]
    Unsent { url: String, detail: String },
    /// The request may have arrived; its outcome is unknown.
    #[error("no answer from {url} within {after:?}")]
    Timeout { url: String, after: Duration },
    /// The connection broke after the request was written; its outcome is unknown.
    #[error("the connection to {url} broke: {detail}")]
    Broken { url: String, detail: String },
}

impl CallError {
    /// Whether the request can have reached the server.
    #[must_use]
    pub fn maybe_sent(&self) -> bool {
        !matches!(self, Self::Connect { .. } | Self::Unsent { .. })
    }
}

/// Attempts of one GET before its failure is the caller's.
const READ_ATTEMPTS: u32 = 4;
/// The pause after a failed GET grows by this much each time.
const READ_PAUSE: Duration = Duration::from_millis(100);

/// The most characters of a body a summary keeps.
pub const SUMMARY_CHARS: usize = 300;
/// The characters of a body scanned for secrets before a summary is cut.
const SUMMARY_SCAN: usize = 16 * 1024;

/// A response, read to the end.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    #[must_use]
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body as text, for messages, journals and reports, bounded to
    /// [`SUMMARY_CHARS`] characters: values under keys that name credentials (password, token,
    /// secret, key, …) are masked, and so is every value redrive sent as a secret, wherever it
    /// is echoed ([`super::redact`]).
    ///
    /// A redirect (3xx) is not followed: its summary says where it pointed, by origin only.
    #[must_use]
    pub fn summary(&self) -> String {
        if (300..400).contains(&self.status) {
            return self.redirect_note();
        }
        let text = match serde_json::from_slice::<Value>(&self.body) {
            Ok(mut value) => {
                redact(&mut value);
                value.to_string()
            }
            Err(_) => String::from_utf8_lossy(&self.body).into_owned(),
        };
        // Masked before it is cut, so no secret leaves half-masked; only a bounded prefix is
        // scanned (longer than any credential), so a huge body costs no more than a short one.
        let text = text.trim();
        let scanned: String = text.chars().take(SUMMARY_SCAN).collect();
        let masked = super::redact::mask(&scanned);
        let longer = text.chars().nth(SUMMARY_CHARS).is_some();
        let mut shown: String = masked.chars().take(SUMMARY_CHARS).collect();
        if longer {
            shown.push('…');
        }
        shown
    }

    fn redirect_note(&self) -> String {
        let to = match self.header("location").map(Url::parse) {
            Some(Ok(url)) => origin(&url),
            Some(Err(_)) => "another path of the same server".to_owned(),
            None => "nowhere (no `Location`)".to_owned(),
        };
        format!(
            "the server redirected (HTTP {}) to {to}; redrive does not follow redirects, so credentials stay with the provider's origin",
            self.status
        )
    }

    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}

/// Masks the values of credential-like keys, at any depth.
pub fn redact(value: &mut Value) {
    const SECRET_WORDS: [&str; 7] = [
        "password",
        "secret",
        "token",
        "key",
        "authorization",
        "credential",
        "csr",
    ];
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let lower = k.to_ascii_lowercase();
                if SECRET_WORDS.iter().any(|w| lower.contains(w)) && !v.is_null() {
                    *v = Value::String("*****".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// One provider's client and base URL.
#[derive(Debug, Clone)]
pub struct Http {
    /// Builds every request, and sends the ones a proxy applies to.
    client: reqwest::Client,
    /// Sends the others ([`super::wire`]).
    direct: Option<super::wire::Direct>,
    base: Url,
    timeout: Duration,
    /// The provider's limits: every request passes them (`None`: unlimited).
    limiter: Option<Arc<Limiter>>,
}

/// Installs the process-wide TLS crypto provider (ring) once; every reqwest client needs it.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The longest one request to `provider` may take, answer read included.
#[must_use]
pub fn timeout_of(provider: &Provider) -> Duration {
    provider.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0)
}

/// How long after a request of `provider` was recorded sent it may still land: its token
/// exchange (VCF, Venafi), then the request itself, each within the timeout. Whoever reads
/// the state sooner (a runner taking the action over, the next plan after a kill) could see
/// "did not happen" and send it a second time.
#[must_use]
pub fn landing_window(provider: &Provider) -> Duration {
    timeout_of(provider) * 2
}

/// Parses a base URL and applies the plain-http rule.
///
/// # Errors
/// A malformed URL, or `http://` to a host that is not loopback without `allow_http`.
pub fn base_url(text: &str, tls: Option<&Tls>) -> Result<Url, SetupError> {
    let mut url = Url::parse(text).map_err(|e| SetupError::BadUrl {
        url: text.to_owned(),
        detail: e.to_string(),
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) || tls.is_some_and(|t| t.allow_http) => {}
        "http" => {
            return Err(SetupError::PlainHttp {
                url: text.to_owned(),
            });
        }
        other => {
            return Err(SetupError::BadUrl {
                url: text.to_owned(),
                detail: format!("the scheme `{other}` is not http or https"),
            });
        }
    }
    // Joining relative paths keeps the last segment only when the base ends with a slash.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl Http {
    /// The client for one provider of the runbook; `base_dir` anchors `tls.ca_file`.
    ///
    /// # Errors
    /// A bad URL or CA bundle, or a client that cannot be built.
    pub fn new(url: &str, provider: &Provider, base_dir: &Path) -> Result<Self, SetupError> {
        install_crypto();
        let tls = provider.tls.as_ref();
        let base = base_url(url, tls)?;
        let timeout = timeout_of(provider);
        let connect = CONNECT_TIMEOUT.min(timeout);
        let tls_config = super::wire::tls_config(&super::wire::trust(tls, base_dir)?)?;
        // A loopback endpoint (the sandbox of a rehearsal, a local agent) is never reached
        // through the shell's HTTP_PROXY: the proxy could not reach it, and would see the
        // requests and their credentials. Elsewhere a proxy from the environment applies, and
        // only reqwest knows how to go through one.
        let direct = (is_loopback(&base) || !super::wire::proxy_configured())
            .then(|| super::wire::Direct::new(tls_config.clone(), connect, USER_AGENT));
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(connect)
            // One deadline from connecting to the body's last byte: a stalled body read fails
            // like a stalled answer. (A read timeout of the same length could never fire
            // first, and cost every request a second timer.)
            .timeout(timeout)
            .gzip(true)
            // Credentials are bound to their origin: a 3xx is an answer like any other, never
            // a reason to send the request (and its credentials) somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            // Resending is redrive's decision, made per action from what the provider
            // documents: the client never sends a request again on its own. With no retries
            // allowed it also stops copying every request in case it might.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .pool_max_idle_per_host(256)
            .tls_backend_preconfigured(tls_config);
        if is_loopback(&base) {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(Self {
            client,
            direct,
            base,
            timeout,
            limiter: None,
        })
    }

    /// Whether `url` has the provider's origin (scheme, host and port): the only place its
    /// credentials may go.
    #[must_use]
    pub fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    /// The provider's origin, `scheme://host:port`, for messages.
    #[must_use]
    pub fn origin(&self) -> String {
        origin(&self.base)
    }

    /// `path` relative to the base URL (a leading `/` is relative too).
    #[must_use]
    pub fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone())
    }

    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends a request and reads the whole answer.
    ///
    /// # Errors
    /// A transport failure, classified by whether the request may have been sent.
    pub async fn send(&self, request: RequestBuilder) -> Result<Reply, CallError> {
        let request = request.build().map_err(|e| CallError::Connect {
            url: String::new(),
            detail: e.to_string(),
        })?;
        if request.method() != reqwest::Method::GET {
            return self.send_once(request).await;
        }
        // A GET is a read: safe to repeat. A 429, a 5xx or a broken connection on one page of
        // a list must not fail the whole read.
        for attempt in 1..READ_ATTEMPTS {
            // A GET has no body, so it can always be copied; one that cannot goes once.
            let Some(copy) = request.try_clone() else {
                break;
            };
            let result = self.send_once(copy).await;
            let transient = match &result {
                Ok(reply) => reply.status == 429 || reply.status >= 500,
                Err(_) => true,
            };
            if !transient {
                return result;
            }
            tokio::time::sleep(READ_PAUSE * attempt).await;
        }
        self.send_once(request).await
    }

    /// The same client with its provider's limits: every request passes them.
    #[must_use]
    pub fn limited(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// One request, within the provider's limits; a 429 teaches them.
    async fn send_once(&self, request: reqwest::Request) -> Result<Reply, CallError> {
        let Some(limiter) = &self.limiter else {
            return self.exchange(request).await;
        };
        let started = limiter.admit().await.map_err(|detail| CallError::Unsent {
            url: redact_query(request.url()),
            detail,
        })?;
        let result = self.exchange(request).await;
        started.ended().await;
        match &result {
            Ok(reply) if reply.status == 429 => limiter.throttled(super::retry_after(reply)),
            Ok(_) => limiter.answered(),
            Err(_) => {}
        }
        result
    }

    async fn exchange(&self, request: reqwest::Request) -> Result<Reply, CallError> {
        // Shown only in a failure's message: a success does not pay for the redacted copy.
        let sent_to = request.url().clone();
        if let Some(direct) = &self.direct {
            return direct
                .exchange(request, self.timeout)
                .await
                .map_err(|e| e.at(redact_query(&sent_to), self.timeout));
        }
        let classify = |e: reqwest::Error| {
            let url = redact_query(&sent_to);
            if e.is_connect() {
                CallError::Connect {
                    url,
                    detail: root_cause(&e),
                }
            } else if e.is_timeout() {
                CallError::Timeout {
                    url,
                    after: self.timeout,
                }
            } else {
                CallError::Broken {
                    url,
                    detail: root_cause(&e),
                }
            }
        };
        let mut response = self.client.execute(request).await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        let body = Vec::from(response.bytes().await.map_err(classify)?);
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// The origin of a URL, `scheme://host[:port]`, for messages: no path, query or userinfo.
#[must_use]
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A URL for messages: without a query, which may carry tokens on some APIs.
fn redact_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

pub(super) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(base_url("http://127.0.0.1:7400", None).is_ok());
        assert!(base_url("http://localhost/x", None).is_ok());
        assert!(base_url("http://[::1]:80", None).is_ok());
        let e = base_url("http://tpp.example.com", None).unwrap_err();
        assert!(e.to_string().contains("allow_http"), "{e}");
        let allow = Tls {
            allow_http: true,
            ..Tls::default()
        };
        assert!(base_url("http://tpp.example.com", Some(&allow)).is_ok());
        assert!(base_url("ftp://x", None).is_err());
    }

    #[test]
    fn summaries_mask_credentials() {
        let reply = Reply {
            status: 200,
            headers: HeaderMap::new(),
            body: br#"{"access_token":"abc","data":[{"newPassword":"p4ss","name":"x"}],"ok":true}"#
                .to_vec(),
        };
        let s = reply.summary();
        assert!(!s.contains("abc") && !s.contains("p4ss"), "{s}");
        assert!(s.contains(r#""name":"x""#), "{s}");
    }

    #[test]
    fn joins_keep_the_base_path() {
        let url = base_url("https://caas.digicert.com/automationws/v1", None).expect("url");
        assert_eq!(
            url.join("automation/bulkretryautomationtask")
                .expect("join")
                .as_str(),
            "https://caas.digicert.com/automationws/v1/automation/bulkretryautomationtask"
        );
    }
}
