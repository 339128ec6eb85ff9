//! What the simulated OTC IAM and WAF hold: users, projects, token lifetime and WAF
//! certificates listed or generated.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DEMO_PASSWORD, Faults, default_waf_name, secs};
use crate::manifest::model::common::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtcScenario {
    pub users: Vec<OtcUser>,
    pub projects: Vec<OtcProject>,
    /// Lifetime of an IAM token.
    pub token_ttl: Duration,
    pub certificates: Vec<WafCertificate>,
    pub generate: Vec<WafGenerator>,
    pub faults: Faults,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtcUser {
    pub name: String,
    pub password: String,
    /// The account (domain) name.
    pub domain: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtcProject {
    pub id: String,
    /// On OTC, the region name (`eu-de`) or `eu-de_<sub-project>`.
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WafCertificate {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// Days from now until it expires; negative for an expired certificate.
    pub expires_in_days: i64,
    /// Host names protected with it.
    #[serde(default)]
    pub bind_hosts: Vec<String>,
    /// The project it belongs to; by default the first one.
    #[serde(default)]
    pub project: Option<String>,
}

/// `count` certificates named `name` (`{n}` is the 1-based index), expiring `expires_in_days`
/// from now plus `n mod spread_days`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WafGenerator {
    pub count: u64,
    #[serde(default = "default_waf_name")]
    pub name: String,
    #[serde(default)]
    pub expires_in_days: i64,
    #[serde(default)]
    pub spread_days: u32,
    /// Bind every generated certificate to one host named after it.
    #[serde(default)]
    pub bound: bool,
}

impl Default for OtcScenario {
    fn default() -> Self {
        Self {
            users: vec![OtcUser {
                name: "svc-redrive-readonly".into(),
                password: DEMO_PASSWORD.into(),
                domain: "OTC-EU-DE-00000000001000045678".into(),
            }],
            projects: vec![OtcProject {
                id: "0a3f9b6c1e2d4f5a8b7c6d5e4f3a2b1c".into(),
                name: "eu-de".into(),
            }],
            token_ttl: secs(24 * 3600),
            certificates: Vec::new(),
            generate: Vec::new(),
            faults: Faults::default(),
        }
    }
}
