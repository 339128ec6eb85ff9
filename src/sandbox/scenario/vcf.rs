//! What the simulated SDDC Manager holds: users and API keys, token lifetime, status casing,
//! how long a re-run takes, and credentials tasks listed or generated.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    DEMO_PASSWORD, Faults, Outcome, User, default_credential_type, default_failed,
    default_operation, default_resource_type, default_username, millis, secs, yes,
};
use crate::manifest::model::common::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VcfScenario {
    pub users: Vec<User>,
    /// Accepted `apiKey` values for `POST /v1/tokens`.
    pub api_keys: Vec<String>,
    /// Lifetime of an access token (the JWT's `exp - iat`).
    pub token_ttl: Duration,
    /// The status `POST /v1/tokens` answers with: 201 as the spec says, or 200 as the docs show.
    pub token_status: u16,
    /// How `GET /v1/tasks/{id}` spells statuses: `upper` (`IN_PROGRESS`), `title` (`In Progress`)
    /// or `mixed` (title case on the tasks API, upper case on the credentials API).
    pub status_case: StatusCase,
    /// How long a re-run task stays PENDING, then IN_PROGRESS.
    pub pending: Duration,
    pub running: Duration,
    pub retry_success: f64,
    pub tasks: Vec<VcfTask>,
    pub generate: Vec<VcfTaskGenerator>,
    pub faults: Faults,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusCase {
    Upper,
    Title,
    Mixed,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VcfTask {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_operation")]
    pub operation_type: String,
    /// PENDING, IN_PROGRESS, SUCCESSFUL or FAILED.
    #[serde(default = "default_failed")]
    pub status: String,
    #[serde(default = "yes")]
    pub retryable: bool,
    #[serde(default)]
    pub resources: Vec<VcfResource>,
    /// The error a failed run reports (and a re-run that fails again).
    #[serde(default)]
    pub error: Option<VcfError>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VcfResource {
    pub name: String,
    #[serde(rename = "type", default = "default_resource_type")]
    pub kind: String,
    #[serde(default = "default_username")]
    pub username: String,
    #[serde(default = "default_credential_type")]
    pub credential_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VcfError {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub remediation: Option<String>,
}

/// `count` credential tasks (failed unless `status` says otherwise), each on one resource.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VcfTaskGenerator {
    pub count: u64,
    #[serde(default = "default_failed")]
    pub status: String,
    #[serde(default = "default_operation")]
    pub operation_type: String,
    #[serde(default = "default_resource_type")]
    pub resource_type: String,
    /// `isRetryable` of the failed ones on `GET /v1/tasks`.
    #[serde(default = "yes")]
    pub retryable: bool,
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

impl Default for VcfScenario {
    fn default() -> Self {
        Self {
            users: vec![User {
                username: "administrator@vsphere.local".into(),
                password: DEMO_PASSWORD.into(),
            }],
            api_keys: Vec::new(),
            token_ttl: secs(3600),
            token_status: 201,
            status_case: StatusCase::Mixed,
            pending: millis(200),
            running: millis(800),
            retry_success: 1.0,
            tasks: Vec::new(),
            generate: Vec::new(),
            faults: Faults::default(),
        }
    }
}
