//! The scenario: what the sandbox's five providers hold at start (listed or generated objects,
//! credentials) and how they misbehave (faults). Written in YAML; the schema is generated.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::model::common::Duration;

/// Where the published scenario schema lives.
pub const SCHEMA_ID: &str = "https://redrive.dev/schemas/sandbox-scenario.schema.json";

/// The scenario the sandbox starts with when none is given: the objects
/// `examples/outage-remediation.yaml` works on.
pub const DEFAULT_SCENARIO: &str = include_str!("../../examples/sandbox/default.yaml");

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

// ----- Venafi TPP -------------------------------------------------------------------------------

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

/// `count` certificates named `name` (`{n}` is the 1-based index) under the policy folder `parent`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VenafiGenerator {
    pub count: u64,
    pub parent: String,
    #[serde(default = "default_cert_name")]
    pub name: String,
    #[serde(default = "yes")]
    pub in_error: bool,
    #[serde(default)]
    pub outcome: Option<Outcome>,
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

// ----- DigiCert ---------------------------------------------------------------------------------

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

/// `count` automations on consecutive addresses from `first_ip`, all on `port`.
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

// ----- VCF --------------------------------------------------------------------------------------

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

/// `count` failed credential tasks, each on one resource.
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

// ----- OTC WAF ----------------------------------------------------------------------------------

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

// ----- NCP --------------------------------------------------------------------------------------

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

// ----- Faults -----------------------------------------------------------------------------------

/// Misbehaviour of one provider. Each request draws its fault from the seed and the number of
/// requests the provider saw before it. `endpoints` limits a fault to some routes, written as
/// `METHOD /path` the way `/_sandbox/stats` lists them (e.g. `POST /vedsdk/certificates/retry`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    pub latency: Option<Latency>,
    /// Answer with an error status (in the provider's error format) instead.
    pub errors: Vec<ErrorFault>,
    /// 429 bursts: after every `every` requests, `burst` requests are refused.
    pub throttle: Option<Throttle>,
    /// Close the connection without an answer, before anything happened.
    pub reset: Option<Chance>,
    /// Hold the request for `duration` without doing anything, then close the connection.
    pub stall: Option<Stall>,
    /// Do the work, then hold the answer for `duration` and close the connection: the client
    /// times out although its request took effect.
    pub outcome_after_timeout: Option<Stall>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Latency {
    /// Added to every answer.
    pub fixed: Option<Duration>,
    pub jitter: Option<Jitter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

/// Extra random latency: `uniform` in `[0, amount)`, `exponential` with mean `amount`, or
/// `normal` as the absolute value of a normal draw with standard deviation `amount`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Jitter {
    pub distribution: Distribution,
    pub amount: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    Uniform,
    Exponential,
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorFault {
    pub status: u16,
    /// Share of requests (0 to 1).
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    pub every: u64,
    pub burst: u64,
    /// Sent as `Retry-After` (whole seconds) when set.
    #[serde(default)]
    pub retry_after: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Chance {
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    pub rate: f64,
    /// How long the connection is held before it is closed.
    #[serde(default = "default_stall")]
    pub duration: Duration,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
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
            fail(detail.trim_start_matches("error: ").to_owned())
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

impl Faults {
    fn check(&self) -> Result<(), String> {
        let mut rates: Vec<(String, f64)> = self
            .errors
            .iter()
            .map(|e| (format!("errors (status {})", e.status), e.rate))
            .collect();
        rates.extend(self.reset.iter().map(|c| ("reset".to_owned(), c.rate)));
        rates.extend(self.stall.iter().map(|s| ("stall".to_owned(), s.rate)));
        rates.extend(
            self.outcome_after_timeout
                .iter()
                .map(|s| ("outcome_after_timeout".to_owned(), s.rate)),
        );
        for (what, rate) in &rates {
            if !(0.0..=1.0).contains(rate) {
                return Err(format!("{what}: rate {rate} is not between 0 and 1"));
            }
        }
        let total: f64 = rates.iter().map(|(_, r)| r).sum();
        if total > 1.0 + f64::EPSILON {
            return Err(format!(
                "the fault rates add up to {total}; a request gets at most one fault, keep the sum at or below 1"
            ));
        }
        for e in &self.errors {
            if !(400..=599).contains(&e.status) {
                return Err(format!(
                    "errors: status {} is not an HTTP error status (400-599)",
                    e.status
                ));
            }
        }
        if let Some(t) = &self.throttle
            && (t.every == 0 || t.burst == 0)
        {
            return Err("throttle: `every` and `burst` must both be at least 1".into());
        }
        Ok(())
    }
}

/// The scenario's JSON Schema (draft 2020-12), as committed in `schemas/`.
#[must_use]
pub fn schema_text() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<Scenario>().to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("$id".into(), serde_json::Value::String(SCHEMA_ID.into()));
    }
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
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
