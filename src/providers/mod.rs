//! The provider clients: one file per API (auth flow, read-only observation, request building),
//! the shared HTTP layer and secrets. They know nothing of the sandbox; `--sandbox` only changes
//! their URLs and credentials.

pub mod demo;
pub mod digicert;
pub mod generic;
pub mod http;
pub mod ncloud;
pub mod otc_waf;
pub mod provider;
pub mod redact;
pub mod registry;
pub mod secret;
pub mod vcf;
pub mod venafi;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::manifest::model::{ProviderType, SecretRef};
use http::{CallError, Reply, SetupError};
pub use provider::{Batching, BoxFuture, Provider};
pub use registry::build;
use secret::{Secret, SecretError};

/// Where a credential comes from: the runbook's reference, or a value given directly (the
/// sandbox's demo credentials).
#[derive(Debug, Clone)]
pub enum SecretSource {
    Ref { reference: SecretRef, base: PathBuf },
    Value(Secret),
}

impl SecretSource {
    #[must_use]
    pub fn reference(reference: &SecretRef, base: &Path) -> Self {
        Self::Ref {
            reference: reference.clone(),
            base: base.to_owned(),
        }
    }

    /// Reads the secret now (at send time). A value read from the runbook's reference is
    /// registered for redaction ([`redact`]); the sandbox's demo credentials are public (the
    /// sandbox prints them) and are not, so rehearsal output keeps words like `sandbox`.
    ///
    /// # Errors
    /// When the variable or file cannot be read.
    pub fn get(&self) -> Result<Secret, SecretError> {
        match self {
            Self::Ref { reference, base } => secret::resolve(reference, base),
            Self::Value(s) => Ok(s.clone()),
        }
    }

    /// How it is shown in plans: the reference, never the value.
    #[must_use]
    pub fn shown(&self) -> String {
        match self {
            Self::Ref { reference, .. } => reference.to_string(),
            Self::Value(_) => "(sandbox demo credential)".into(),
        }
    }
}

/// What a provider call failed on, with the provider's name.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    // The inner errors are shown in the message, not chained as a `source`, so they are
    // printed once.
    #[error("provider `{provider}`: {error}")]
    Setup { provider: String, error: SetupError },
    #[error("provider `{provider}`: {what}: {error}")]
    Secret {
        provider: String,
        what: &'static str,
        error: SecretError,
    },
    #[error("provider `{provider}`: authentication failed (HTTP {status}): {detail}")]
    Auth {
        provider: String,
        status: u16,
        detail: String,
    },
    #[error("provider `{provider}`: {error}")]
    Call { provider: String, error: CallError },
    #[error("provider `{provider}`: {what} answered HTTP {status}: {detail}")]
    Unexpected {
        provider: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("provider `{provider}`: {detail}")]
    Config { provider: String, detail: String },
    /// A request for another origin than the provider's, refused before anything was sent:
    /// a provider's credentials go to its own scheme, host and port only.
    #[error(
        "provider `{provider}`: refused to send to {origin}: it is not the provider's origin {own}, and the provider's credentials go nowhere else"
    )]
    ForeignOrigin {
        provider: String,
        /// Where the request would have gone (an origin: no path or query).
        origin: String,
        own: String,
    },
}

impl ProviderError {
    /// A failure that may pass if the same read is made again: a broken connection, a 429 or a
    /// 5xx. Authentication and configuration failures are not.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Call { .. } => true,
            Self::Unexpected { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn call(provider: &str) -> impl Fn(CallError) -> Self + '_ {
        move |error| Self::Call {
            provider: provider.to_owned(),
            error,
        }
    }

    /// The provider turned the credentials (or the token made from them) away: `reply` says
    /// how.
    pub(crate) fn refused(provider: &str, reply: &Reply) -> Self {
        Self::Auth {
            provider: provider.to_owned(),
            status: reply.status,
            detail: reply.summary(),
        }
    }

    pub(crate) fn unexpected(provider: &str, what: &str, reply: &Reply) -> Self {
        Self::Unexpected {
            provider: provider.to_owned(),
            what: what.to_owned(),
            status: reply.status,
            detail: reply.summary(),
        }
    }
}

/// Whether sending an action twice is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Idempotency {
    /// Resending changes nothing (GET, PUT, …).
    Idempotent,
    /// A second call answers "already done" (Venafi retry).
    Convergent,
    /// Each call starts new work (VCF re-run, NCP reissue, DigiCert bulk retry).
    NonIdempotent,
}

/// What the read-only check says about an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// Still needed.
    Run,
    /// Already converged: nothing to send.
    Converged(String),
    /// Not eligible: sending would fail or do harm.
    Blocked(String),
}

/// The verdict plus the facts shown in the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observed {
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "IndexMap::is_empty", default)]
    pub facts: IndexMap<String, Value>,
}

impl Observed {
    #[must_use]
    pub fn new(verdict: Verdict) -> Self {
        Self {
            verdict,
            facts: IndexMap::new(),
        }
    }

    #[must_use]
    pub fn fact(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.facts.insert(name.to_owned(), value.into());
        self
    }
}

/// What would be sent, for review: secrets appear as references.
// Compact on purpose: a plan holds one per action, so the body is kept as JSON text and the
// headers are shared by every action of a provider.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RequestPreview {
    // Shared text: a plan of 100,000 actions to one endpoint holds its method and URL once.
    #[schemars(with = "String")]
    pub method: Arc<str>,
    #[schemars(with = "String")]
    pub url: Arc<str>,
    #[serde(skip_serializing_if = "IndexMap::is_empty", default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub headers: Arc<IndexMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "Option<Value>")]
    pub body: Option<Box<RawValue>>,
}

impl RequestPreview {
    /// The body as a JSON value (for display).
    #[must_use]
    pub fn body_value(&self) -> Value {
        self.body
            .as_ref()
            .and_then(|b| serde_json::from_str(b.get()).ok())
            .unwrap_or(Value::Null)
    }
}

/// A JSON value as compact JSON text.
#[must_use]
pub fn raw(value: &Value) -> Box<RawValue> {
    // Not `RawValue::from_string`, which parses the text it was just given once more: a plan
    // makes one of these per action.
    serde_json::value::to_raw_value(value).expect("a JSON value serializes")
}

/// What every preview of one provider's action has in common, built on first use: each plan
/// holds it once, not once per action.
#[derive(Debug)]
pub struct PreviewParts {
    method: Arc<str>,
    headers: Arc<IndexMap<String, String>>,
}

impl PreviewParts {
    #[must_use]
    pub fn new(method: &str, headers: &[(&str, String)]) -> Self {
        Self {
            method: method.into(),
            headers: Arc::new(
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            ),
        }
    }

    /// A preview of a request to `url`: pass a shared `Arc` when every action of the provider
    /// goes to one endpoint.
    #[must_use]
    pub fn preview(&self, url: Arc<str>, body: Option<Box<RawValue>>) -> RequestPreview {
        RequestPreview {
            method: self.method.clone(),
            url,
            headers: self.headers.clone(),
            body,
        }
    }
}

/// The sandbox's addresses and demo credentials, replacing the runbook's for `--sandbox`.
#[derive(Debug, Clone)]
pub struct SandboxEndpoints {
    pub urls: IndexMap<ProviderType, String>,
    pub demo: demo::Demo,
}

/// One configured provider, behind the seam.
pub type Client = Box<dyn Provider>;

/// Deserializes a provider's `auth` block into its typed form.
pub(crate) fn auth_of<T: serde::de::DeserializeOwned>(
    provider: &str,
    auth: &Value,
) -> Result<T, ProviderError> {
    serde_json::from_value(auth.clone()).map_err(|e| ProviderError::Config {
        provider: provider.to_owned(),
        detail: format!("its `auth` block does not fit the provider type: {e}"),
    })
}

/// How a provider answered one send, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It worked. `task` is an asynchronous result to poll (a VCF task id).
    Done {
        status: u16,
        detail: String,
        task: Option<String>,
    },
    /// Nothing was needed: the target had already converged.
    Converged { detail: String },
    /// A definitive refusal: resending the same request cannot help.
    Rejected { status: u16, detail: String },
    /// Refused for the request rate: not processed, safe to resend after a pause.
    Throttled {
        status: u16,
        retry_after: Option<std::time::Duration>,
    },
    /// A server-side failure. The request reached the server, so for a non-idempotent action
    /// its effect is unknown until observed again.
    Transient { status: u16, detail: String },
}

impl Answer {
    /// The common HTTP classes; providers refine them (errors inside a 200, convergent 400s).
    #[must_use]
    pub fn from_status(reply: &Reply) -> Self {
        let detail = reply.summary();
        match reply.status {
            200..=299 => Self::Done {
                status: reply.status,
                detail,
                task: None,
            },
            429 => Self::Throttled {
                status: 429,
                retry_after: retry_after(reply),
            },
            408 | 500..=599 => Self::Transient {
                status: reply.status,
                detail,
            },
            status => Self::Rejected { status, detail },
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date.
#[must_use]
pub fn retry_after(reply: &Reply) -> Option<std::time::Duration> {
    let value = reply.header("retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = when.duration_since(jiff::Timestamp::now());
    std::time::Duration::try_from(wait).ok()
}

/// The state of an asynchronous result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running { status: String },
    Succeeded { status: String },
    Failed { status: String, detail: String },
}
