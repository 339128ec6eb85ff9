//! What the simulated Venafi TPP holds: API integrations, users, token lifetimes, certificates
//! listed or generated, and how retries end.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DEMO_PASSWORD, Faults, Outcome, User, default_cert_name, millis, secs, yes};
use crate::manifest::model::common::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VenafiScenario {
    /// API integrations: the client ids that may ask for tokens, and the scope each allows.
    pub clients: Vec<VenafiClient>,
    pub users: Vec<User>,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// Lifetime of a grant (how long refresh tokens can be redeemed).
    pub refresh_ttl: Duration,
    /// How long a retried certificate stays in processing before it ends fixed or in error again.
    pub processing: Duration,
    /// Share of retries that fix the certificate (0 to 1), for certificates without an `outcome`.
    pub retry_success: f64,
    pub certificates: Vec<VenafiCertificate>,
    pub generate: Vec<VenafiGenerator>,
    pub faults: Faults,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VenafiClient {
    pub client_id: String,
    /// The scope the integration allows, like `certificate:manage,revoke;configuration`.
    pub scope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VenafiCertificate {
    /// The certificate DN, like `\VED\Policy\Web\www.example.com`.
    pub dn: String,
    #[serde(default = "yes")]
    pub in_error: bool,
    /// The processing stage it failed in (shown as `ProcessingDetails.Stage`).
    #[serde(default)]
    pub stage: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub consumers: Vec<String>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Make `Certificates/Retry` answer with one of its documented 400 errors.
    #[serde(default)]
    pub retry_error: Option<VenafiRetryError>,
    /// The certificate object is disabled (`Disabled` in its details and the search filter).
    #[serde(default)]
    pub disabled: bool,
    /// A workflow ticket waits on it (the `PendingWorkflow` search filter).
    #[serde(default)]
    pub pending_workflow: bool,
    /// Days from the sandbox's start until `ValidTo`; negative for an expired certificate.
    /// Unset: a seeded 30 to 329 days.
    #[serde(default)]
    pub valid_days: Option<i64>,
}

/// The documented 400 answers of `Certificates/Retry`, other than "no retry is required".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VenafiRetryError {
    /// `Access error. Certificates/Retry requires write permissions for certificate […]`
    AccessDenied,
    /// `Failed to add work for certificate […]`
    AddWorkFailed,
    /// `Failed to add work for application […]`
    ApplicationAddWorkFailed,
}

/// `count` certificates named `name` (`{n}` is the 1-based index) under the policy folder `parent`;
/// the other keys are as on a listed certificate and apply to every generated one.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VenafiGenerator {
    pub count: u64,
    pub parent: String,
    #[serde(default = "default_cert_name")]
    pub name: String,
    #[serde(default = "yes")]
    pub in_error: bool,
    /// `ProcessingDetails.Stage` of the certificates in error (default 500).
    #[serde(default)]
    pub stage: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub pending_workflow: bool,
    #[serde(default)]
    pub valid_days: Option<i64>,
}

impl Default for VenafiScenario {
    fn default() -> Self {
        Self {
            clients: vec![VenafiClient {
                client_id: "redrive".into(),
                scope: "certificate:manage,revoke;configuration".into(),
            }],
            users: vec![User {
                username: "svc-redrive".into(),
                password: DEMO_PASSWORD.into(),
            }],
            token_ttl: secs(3600),
            refresh_ttl: secs(90 * 24 * 3600),
            processing: millis(300),
            retry_success: 1.0,
            certificates: Vec::new(),
            generate: Vec::new(),
            faults: Faults::default(),
        }
    }
}
