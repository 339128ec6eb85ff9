//! The actions a job can run and the typed parameters each one takes after rendering.

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::provider::ProviderType;
use super::secret::SecretRef;

/// What a job does to each of its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Venafi TPP `POST /vedsdk/Certificates/Retry`.
    RetryCertificate,
    /// DigiCert `POST /automation/bulkretryautomationtask`.
    BulkRetryAutomation,
    /// VCF `PATCH /v1/credentials/tasks/{id}`.
    RetryCredentialsTask,
    /// NCP `POST /api/v2/certificate/{certificateNo}/reissue`.
    ReissueCertificate,
    /// Any HTTP request.
    Http,
}

impl ActionKind {
    pub const ALL: [Self; 5] = [
        Self::RetryCertificate,
        Self::BulkRetryAutomation,
        Self::RetryCredentialsTask,
        Self::ReissueCertificate,
        Self::Http,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RetryCertificate => "retry_certificate",
            Self::BulkRetryAutomation => "bulk_retry_automation",
            Self::RetryCredentialsTask => "retry_credentials_task",
            Self::ReissueCertificate => "reissue_certificate",
            Self::Http => "http",
        }
    }

    /// The one provider type that serves this action.
    #[must_use]
    pub fn provider_type(self) -> ProviderType {
        match self {
            Self::RetryCertificate => ProviderType::VenafiTpp,
            Self::BulkRetryAutomation => ProviderType::Digicert,
            Self::RetryCredentialsTask => ProviderType::Vcf,
            Self::ReissueCertificate => ProviderType::Ncloud,
            Self::Http => ProviderType::Http,
        }
    }

    /// Actions a provider type accepts, for messages that list the alternatives.
    pub fn for_provider(kind: ProviderType) -> impl Iterator<Item = Self> {
        Self::ALL
            .into_iter()
            .filter(move |a| a.provider_type() == kind)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The rendered parameters of one action.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ActionParams {
    RetryCertificate(RetryCertificate),
    BulkRetryAutomation(BulkRetryAutomation),
    RetryCredentialsTask(RetryCredentialsTask),
    ReissueCertificate(ReissueCertificate),
    // Boxed: by far the largest variant, and plans hold one value per action.
    Http(Box<HttpRequest>),
}

impl ActionParams {
    /// The file the action reads at send time (a CSR), relative to the runbook: saved plans pin
    /// its digest.
    #[must_use]
    pub fn file(&self) -> Option<&str> {
        match self {
            Self::ReissueCertificate(ReissueCertificate {
                csr: Csr::File(f), ..
            }) => Some(&f.file),
            _ => None,
        }
    }

    /// The typed parameters of an action of `kind`, from their JSON form.
    ///
    /// # Errors
    /// The serde message when the value does not fit.
    pub fn from_value(kind: ActionKind, value: serde_json::Value) -> Result<Self, String> {
        Self::deserialize_as(kind, value).map_err(|e| e.to_string())
    }

    /// The typed parameters of an action of `kind`, from their JSON text (a plan's `params`):
    /// straight into the types, without a `Value` tree in between.
    ///
    /// # Errors
    /// The serde message when the text does not fit.
    pub fn from_json(kind: ActionKind, text: &str) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let params = Self::deserialize_as(kind, &mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(params)
    }

    fn deserialize_as<'de, D: serde::Deserializer<'de>>(
        kind: ActionKind,
        de: D,
    ) -> Result<Self, D::Error> {
        Ok(match kind {
            ActionKind::RetryCertificate => Self::RetryCertificate(Deserialize::deserialize(de)?),
            ActionKind::BulkRetryAutomation => {
                Self::BulkRetryAutomation(Deserialize::deserialize(de)?)
            }
            ActionKind::RetryCredentialsTask => {
                Self::RetryCredentialsTask(Deserialize::deserialize(de)?)
            }
            ActionKind::ReissueCertificate => {
                Self::ReissueCertificate(Deserialize::deserialize(de)?)
            }
            ActionKind::Http => Self::Http(Box::new(Deserialize::deserialize(de)?)),
        })
    }
}

/// Venafi: retry the last failed lifecycle stage of one certificate.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryCertificate {
    /// The certificate's DN, e.g. `\VED\Policy\Certificates\web01.example.com`.
    #[schemars(regex(pattern = r"^\\VED\\\S"))]
    pub certificate_dn: String,
    /// Seconds TPP waits for the work to finish before answering (0–120, default 0).
    #[schemars(range(min = 0, max = 120))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_to_do_timeout: Option<u32>,
}

/// DigiCert: retry failed automations, sent in batches to the bulk endpoint.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRetryAutomation {
    /// CertCentral account id.
    #[schemars(range(min = 1))]
    pub account_id: u64,
    /// Division (container) id applied to targets that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_id: Option<u64>,
    /// The automated IP/port pairs to retry.
    #[schemars(length(min = 1))]
    pub targets: Vec<AutomationTarget>,
    /// Targets per request to the bulk endpoint (default 50).
    #[schemars(range(min = 1, max = 500))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
}

/// One automated IP/port; results come back keyed `ip:port`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationTarget {
    #[schemars(length(min = 1))]
    pub ip: String,
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_id: Option<u64>,
    /// Only for SNI: several certificates on one ip:port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// ACME agent flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_license_key: Option<String>,
    /// Agentless sensor flow (not for AWS load balancers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_server_name: Option<String>,
    /// Agentless sensor flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor_license_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_ip: Option<String>,
}

/// VCF: re-run a failed credentials task with its `CredentialsUpdateSpec`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryCredentialsTask {
    /// Id of the failed credentials task.
    #[schemars(length(min = 1))]
    pub task_id: String,
    pub operation_type: OperationType,
    #[schemars(length(min = 1))]
    pub elements: Vec<CredentialElement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_rotate_policy: Option<AutoRotatePolicy>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationType {
    Update,
    Rotate,
    Remediate,
    UpdateAutoRotatePolicy,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialElement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub resource_type: ResourceType,
    #[schemars(length(min = 1))]
    pub credentials: Vec<CredentialSpec>,
}

/// Resource types of VCF 9.x, plus those older releases list.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceType {
    Esxi,
    Vcenter,
    Psc,
    NsxtManager,
    NsxtEdge,
    NsxAlb,
    Backup,
    NsxManager,
    NsxController,
    NsxEdge,
    Vrli,
    Vrops,
    Vra,
    Wsa,
    Vrslcm,
    VxrailManager,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<CredentialType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_type: Option<AccountType>,
    #[schemars(length(min = 1))]
    pub username: String,
    /// For UPDATE: where the new password is read from at send time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CredentialType {
    Sso,
    Ssh,
    Api,
    Ftp,
    Audit,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AccountType {
    User,
    System,
    Service,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoRotatePolicy {
    #[schemars(range(min = 1, max = 9999))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_in_days: Option<u32>,
    pub enable_auto_rotate_policy: bool,
}

/// NCP: start a new issuance of an Advanced DV/OV certificate. Not idempotent.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReissueCertificate {
    #[schemars(range(min = 1))]
    pub certificate_no: u64,
    /// The PEM CSR inline, or `{file: path}` relative to the runbook.
    pub csr: Csr,
    #[schemars(length(min = 1))]
    pub certificate_name: String,
    #[schemars(length(min = 1))]
    pub common_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_name: Vec<String>,
    /// `D`: DNS CNAME validation (default); `E`: e-mail approval.
    #[serde(default)]
    pub validation_method: ValidationMethod,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Csr {
    /// `-----BEGIN CERTIFICATE REQUEST-----` …
    Pem(#[schemars(regex(pattern = r"-----BEGIN (NEW )?CERTIFICATE REQUEST-----"))] String),
    File(CsrFile),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrFile {
    #[schemars(length(min = 1))]
    pub file: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
pub enum ValidationMethod {
    #[default]
    D,
    E,
}

/// A generic HTTP request for APIs without a built-in provider.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    #[serde(default)]
    pub method: HttpMethod,
    /// Absolute, or relative to the provider's `url`.
    #[schemars(length(min = 1))]
    pub url: String,
    /// Header values are text, or secret references for credentials.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, HeaderValue>,
    /// JSON body (any value), sent with `Content-Type: application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<SuccessCondition>,
    /// Whether resending is harmless; defaults to true for GET, HEAD, PUT and DELETE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl HttpMethod {
    #[must_use]
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Self::Post | Self::Patch)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HeaderValue {
    Text(String),
    Secret(SecretRef),
}

/// When a response counts as success. Without it: any 2xx status.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuccessCondition {
    /// Accepted status codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<StatusCode>,
    /// A JSON pointer into the response body and the value it must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonCheck>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct StatusCode(#[schemars(range(min = 100, max = 599))] pub u16);

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonCheck {
    /// RFC 6901 pointer such as `/Success`.
    #[schemars(regex(pattern = "^(/.*)?$"))]
    pub pointer: String,
    pub equals: serde_json::Value,
}
