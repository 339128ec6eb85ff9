//! What the simulated NCP Certificate Manager holds: API keys (main or Sub Account), the gateway
//! clock, and certificates listed or generated.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    DEMO_NCLOUD_ACCESS_KEY, DEMO_NCLOUD_SECRET_KEY, Faults, Outcome, default_first_no,
    default_ncloud_name, default_ncloud_status, millis,
};
use crate::manifest::model::common::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NcloudScenario {
    pub keys: Vec<NcloudKey>,
    /// A fixed gateway clock in epoch milliseconds, for replaying signed requests from the docs.
    pub clock_ms: Option<u64>,
    pub member_no: String,
    /// How long a reissue stays ONGOING before it ends issued or failed validation.
    pub processing: Duration,
    pub retry_success: f64,
    pub certificates: Vec<NcloudCertificate>,
    pub generate: Vec<NcloudGenerator>,
    pub faults: Faults,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NcloudKey {
    pub access_key: String,
    pub secret_key: String,
    /// A Sub Account key: Certificate Manager 2.0 refuses it with 403.
    #[serde(default)]
    pub sub_account: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NcloudCertificate {
    pub certificate_no: u64,
    pub name: String,
    pub common_name: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// `statusCode`: 0 ONGOING, 1 NORMAL, -2 EXPIRE, -3 VALIDATION_FAILED, -4 VALIDATION_EXPIRE, …
    #[serde(default = "default_ncloud_status")]
    pub status_code: i64,
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

/// `count` certificates numbered from `first_no`, named `name` (`{n}` is the 1-based index).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NcloudGenerator {
    pub count: u64,
    #[serde(default = "default_first_no")]
    pub first_no: u64,
    #[serde(default = "default_ncloud_name")]
    pub name: String,
    #[serde(default = "default_ncloud_status")]
    pub status_code: i64,
    /// Status codes dealt out in turn (the n-th certificate, from 1, gets
    /// `status_codes[(n - 1) % len]`); overrides `status_code` when not empty.
    #[serde(default)]
    pub status_codes: Vec<i64>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

impl Default for NcloudScenario {
    fn default() -> Self {
        Self {
            keys: vec![NcloudKey {
                access_key: DEMO_NCLOUD_ACCESS_KEY.into(),
                secret_key: DEMO_NCLOUD_SECRET_KEY.into(),
                sub_account: false,
            }],
            clock_ms: None,
            member_no: "2718281".into(),
            processing: millis(500),
            retry_success: 1.0,
            certificates: Vec::new(),
            generate: Vec::new(),
            faults: Faults::default(),
        }
    }
}
