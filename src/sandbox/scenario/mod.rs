//! The scenario: what the sandbox's five providers hold at start (listed or generated objects,
//! credentials) and how they misbehave (faults). Written in YAML; the schema is generated.

mod digicert;
mod faults;
mod ncloud;
mod otc;
mod vcf;
mod venafi;

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::model::common::Duration;

pub use digicert::{Automation, AutomationGenerator, DigicertScenario, RateWindow};
pub use faults::{Chance, Distribution, ErrorFault, Faults, Jitter, Latency, Stall, Throttle};
pub use ncloud::{NcloudCertificate, NcloudGenerator, NcloudKey, NcloudScenario};
pub use otc::{OtcProject, OtcScenario, OtcUser, WafCertificate, WafGenerator};
pub use vcf::{StatusCase, VcfError, VcfResource, VcfScenario, VcfTask, VcfTaskGenerator};
pub use venafi::{
    VenafiCertificate, VenafiClient, VenafiGenerator, VenafiRetryError, VenafiScenario,
};

/// Where the published scenario schema lives.
pub const SCHEMA_ID: &str = "https://redrive.dev/schemas/sandbox-scenario.schema.json";

/// The scenario the sandbox starts with when none is given: the objects
/// `examples/outage-remediation.yaml` works on.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../examples/sandbox/default.yaml");

/// Generators may not create more objects than this in total, so a typo cannot eat the memory.
const MAX_OBJECTS: u64 = 2_000_000;

/// A scenario that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{origin} is not a valid sandbox scenario: {message}")]
pub struct ScenarioError {
    pub origin: String,
    pub message: String,
}

/// A sandbox scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Seed for every generated id, token, outcome and fault draw.
    pub seed: u64,
    pub venafi_tpp: VenafiScenario,
    pub digicert: DigicertScenario,
    pub vcf: VcfScenario,
    pub otc_waf: OtcScenario,
    pub ncloud: NcloudScenario,
}

/// A user name and password accepted by a provider's token endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    pub password: String,
}

/// How a retry, reissue or re-run ends once processing is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeds,
    Fails,
}

// ----- Demo credentials and defaults ------------------------------------------------------------

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "sandbox";
pub const DEMO_DIGICERT_KEY: &str = "sandbox-digicert-api-key";
pub const DEMO_NCLOUD_ACCESS_KEY: &str = "SANDBOXACCESSKEY0001";
pub const DEMO_NCLOUD_SECRET_KEY: &str = "SANDBOXSECRETKEY000000000000000000000001";

fn yes() -> bool {
    true
}
fn secs(n: u64) -> Duration {
    Duration(std::time::Duration::from_secs(n))
}
fn millis(n: u64) -> Duration {
    Duration(std::time::Duration::from_millis(n))
}
fn default_stall() -> Duration {
    secs(120)
}
fn default_cert_name() -> String {
    "cert-{n}.example.com".into()
}
fn default_automation_status() -> String {
    "AUTOMATION_FAILED".into()
}
fn default_first_ip() -> String {
    "10.200.0.1".into()
}
fn default_port() -> u16 {
    443
}
fn default_operation() -> String {
    "ROTATE".into()
}
fn default_failed() -> String {
    "FAILED".into()
}
fn default_resource_type() -> String {
    "ESXI".into()
}
fn default_username() -> String {
    "root".into()
}
fn default_credential_type() -> String {
    "SSH".into()
}
fn default_waf_name() -> String {
    "cert-{n}".into()
}
fn default_ncloud_status() -> i64 {
    -3
}
fn default_first_no() -> u64 {
    100_000
}
fn default_ncloud_name() -> String {
    "cert-{n}".into()
}

/// Expands a generator's name pattern.
#[must_use]
pub fn name_for(pattern: &str, n: u64) -> String {
    pattern.replace("{n}", &n.to_string())
}

impl Scenario {
    /// The scenario used when none is given.
    ///
    /// # Panics
    /// Never in a released build: a test checks that the embedded file parses.
    #[must_use]
    pub fn builtin() -> Self {
        Self::parse(DEFAULT_SCENARIO, "default scenario").expect("the default scenario is valid")
    }

    /// Reads and checks a scenario file.
    ///
    /// # Errors
    /// When the file cannot be read, is not a valid scenario, or asks for too many objects.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            origin: path.display().to_string(),
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks scenario text; `origin` names it in messages.
    ///
    /// # Errors
    /// When the text is not a valid scenario.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let fail = |message: String| ScenarioError {
            origin: origin.to_owned(),
            message,
        };
        let scenario: Self = serde_saphyr::from_str(text).map_err(|e| {
            let detail = e.to_string().replace("<input>", origin);
            fail(masked(text, detail.trim_start_matches("error: ")))
        })?;
        scenario.check().map_err(fail)?;
        Ok(scenario)
    }

    fn check(&self) -> Result<(), String> {
        let shares = [
            ("venafi_tpp.retry_success", self.venafi_tpp.retry_success),
            ("digicert.retry_success", self.digicert.retry_success),
            ("vcf.retry_success", self.vcf.retry_success),
            ("ncloud.retry_success", self.ncloud.retry_success),
        ];
        for (what, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{what} is {share}; it is a share between 0 and 1"));
            }
        }
        for (who, faults) in self.faults() {
            faults.check().map_err(|e| format!("{who}.faults: {e}"))?;
        }
        let generated: u64 = self
            .venafi_tpp
            .generate
            .iter()
            .map(|g| g.count)
            .sum::<u64>()
            + self.digicert.generate.iter().map(|g| g.count).sum::<u64>()
            + self.vcf.generate.iter().map(|g| g.count).sum::<u64>()
            + self.otc_waf.generate.iter().map(|g| g.count).sum::<u64>()
            + self.ncloud.generate.iter().map(|g| g.count).sum::<u64>();
        if generated > MAX_OBJECTS {
            return Err(format!(
                "the generators ask for {generated} objects; the sandbox holds at most {MAX_OBJECTS}"
            ));
        }
        if ![200, 201].contains(&self.vcf.token_status) {
            return Err(format!(
                "vcf.token_status is {}; POST /v1/tokens answers 201 (spec) or 200 (docs)",
                self.vcf.token_status
            ));
        }
        if self.otc_waf.projects.is_empty() {
            return Err("otc_waf.projects is empty; WAF certificates belong to a project".into());
        }
        Ok(())
    }

    /// Every provider's faults, by the scenario key that holds them.
    #[must_use]
    pub fn faults(&self) -> [(&'static str, &Faults); 5] {
        [
            ("venafi_tpp", &self.venafi_tpp.faults),
            ("digicert", &self.digicert.faults),
            ("vcf", &self.vcf.faults),
            ("otc_waf", &self.otc_waf.faults),
            ("ncloud", &self.ncloud.faults),
        ]
    }
}

/// The scenario's JSON Schema (draft 2020-12), as committed in `schemas/`.
#[must_use]
pub fn schema_text() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<Scenario>().to_value();
    crate::schema_formats::standardize(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("$id".into(), serde_json::Value::String(SCHEMA_ID.into()));
    }
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

/// `message` with every secret value of `text` (found by key and by shape, as in runbooks)
/// masked: scenarios hold the sandbox's credentials, and a parser error quotes their lines.
fn masked(text: &str, message: &str) -> String {
    let mut out = message.to_owned();
    for span in crate::manifest::secrets::secret_spans(text) {
        let value = text.get(span.start..span.end).unwrap_or_default().trim();
        // Short values (`x`) would mask unrelated text; a quoted snippet shows them whole.
        if value.len() >= 3 {
            out = out.replace(value, &"*".repeat(value.len().min(8)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_parses() {
        let s = Scenario::builtin();
        assert!(!s.venafi_tpp.certificates.is_empty());
    }

    #[test]
    fn bad_shares_and_rates_are_refused() {
        let e = Scenario::parse("venafi_tpp: {retry_success: 2}", "t").unwrap_err();
        assert!(e.to_string().contains("between 0 and 1"), "{e}");
        let e = Scenario::parse(
            "digicert: {faults: {errors: [{status: 500, rate: 0.7}], reset: {rate: 0.5}}}",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("add up to"), "{e}");
        let e = Scenario::parse("vcf: {tokenttl: 1s}", "t").unwrap_err();
        assert!(e.to_string().contains("tokenttl"), "{e}");
    }
}
