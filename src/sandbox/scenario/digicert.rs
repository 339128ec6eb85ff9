//! What the simulated DigiCert Automation API holds: API keys, the account, the rolling rate
//! windows per key, and automations listed or generated.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    DEMO_DIGICERT_KEY, Faults, Outcome, default_automation_status, default_first_ip, default_port,
    millis, secs,
};
use crate::manifest::model::common::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DigicertScenario {
    /// Accepted `X-DC-DEVKEY` values.
    pub api_keys: Vec<String>,
    pub account_id: u64,
    /// The division of automations that do not name one.
    pub division_id: u64,
    /// Rolling windows per API key; a request over any of them is answered 429.
    pub rate_limits: Vec<RateWindow>,
    /// How long a resubmitted automation runs before it ends renewed or failed again.
    pub processing: Duration,
    pub retry_success: f64,
    pub automations: Vec<Automation>,
    pub generate: Vec<AutomationGenerator>,
    pub faults: Faults,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateWindow {
    pub requests: u32,
    pub per: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Automation {
    #[serde(default)]
    pub id: Option<u64>,
    pub ip: String,
    pub port: u16,
    /// Set for SNI automations that share an `ip:port`.
    #[serde(default)]
    pub domain_name: Option<String>,
    #[serde(default)]
    pub division_id: Option<u64>,
    /// `automationStatus`, like `AUTOMATION_FAILED`, `INSTALL_FAILED` or `SUCCESSFULLY_RENEWED`.
    #[serde(default = "default_automation_status")]
    pub status: String,
    /// `isRetryApplicable`; by default true for the failed statuses.
    #[serde(default)]
    pub retry_applicable: Option<bool>,
    #[serde(default)]
    pub common_name: Option<String>,
    #[serde(default)]
    pub agent_name: Option<String>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

/// `count` automations on consecutive addresses from `first_ip`, all on `port` (so every one has
/// its own `ip:port`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationGenerator {
    pub count: u64,
    #[serde(default = "default_first_ip")]
    pub first_ip: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_automation_status")]
    pub status: String,
    /// Statuses dealt out in turn (the n-th automation gets `statuses[n % len]`); overrides
    /// `status` when not empty.
    #[serde(default)]
    pub statuses: Vec<String>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

impl Default for DigicertScenario {
    fn default() -> Self {
        Self {
            api_keys: vec![DEMO_DIGICERT_KEY.into()],
            account_id: 5_153_184,
            division_id: 677_793,
            rate_limits: vec![
                RateWindow {
                    requests: 100,
                    per: secs(5),
                },
                RateWindow {
                    requests: 1000,
                    per: secs(300),
                },
            ],
            processing: millis(300),
            retry_success: 1.0,
            automations: Vec::new(),
            generate: Vec::new(),
            faults: Faults::default(),
        }
    }
}
