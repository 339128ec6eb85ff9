//! The read-only queries a `sources:` entry can run at plan time, one per list endpoint, and the
//! typed filters each one takes (providers.md §1.3, §2.3, §3.3, §4.2, §5.3).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::provider::ProviderType;

/// The read-only queries a source can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// OTC WAF `GET /v1/{project_id}/waf/certificate`, every page.
    Certificates,
    /// Venafi TPP `GET /vedsdk/Certificates/` under a policy folder, every page.
    TppCertificates,
    /// DigiCert `POST /automatedips/list`, every page.
    AutomatedIps,
    /// VCF `GET /v1/credentials/tasks`, every page.
    CredentialsTasks,
    /// VCF `GET /v1/tasks`, every page.
    Tasks,
    /// NAVER Cloud `GET /api/v2/certificate/certificates`, every page.
    NcpCertificates,
}

impl SourceKind {
    pub const ALL: [Self; 6] = [
        Self::Certificates,
        Self::TppCertificates,
        Self::AutomatedIps,
        Self::CredentialsTasks,
        Self::Tasks,
        Self::NcpCertificates,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Certificates => "certificates",
            Self::TppCertificates => "tpp_certificates",
            Self::AutomatedIps => "automated_ips",
            Self::CredentialsTasks => "credentials_tasks",
            Self::Tasks => "tasks",
            Self::NcpCertificates => "ncp_certificates",
        }
    }

    #[must_use]
    pub fn provider_type(self) -> ProviderType {
        match self {
            Self::Certificates => ProviderType::OtcWaf,
            Self::TppCertificates => ProviderType::VenafiTpp,
            Self::AutomatedIps => ProviderType::Digicert,
            Self::CredentialsTasks | Self::Tasks => ProviderType::Vcf,
            Self::NcpCertificates => ProviderType::Ncloud,
        }
    }

    /// The sources a provider type offers, for a hint when the type does not fit.
    #[must_use]
    pub fn offered_by(provider: ProviderType) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|k| k.provider_type() == provider)
            .collect()
    }
}

/// Filters of the WAF certificate list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificatesQuery {
    /// 0 valid, 1 expired, 2 expiring within a month.
    #[schemars(range(min = 0, max = 2))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_status: Option<u8>,
    /// Fuzzy match on the certificate name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Ask for `expire_time`, `exp_status` and `bind_host` too (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<bool>,
}

/// Venafi TPP certificate search under a policy folder, with the documented certificate
/// filters. Items: `{dn, guid, name, parent_dn}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TppCertificatesQuery {
    /// The policy folder, e.g. `\VED\Policy\Certificates`.
    #[schemars(regex(pattern = r"^\\VED\\"))]
    pub folder: String,
    /// Every folder below it too (`ParentDnRecursive`, the default) or only the folder itself
    /// (`ParentDn`).
    #[serde(default = "yes")]
    pub recursive: bool,
    /// `InError`: only certificates whose last lifecycle stage failed (or only those not in
    /// error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_error: Option<bool>,
    /// `Stage`: at exactly this processing stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<i64>,
    /// `StageGreater`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_greater: Option<i64>,
    /// `StageLess`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_less: Option<i64>,
    /// `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// `PendingWorkflow`: only certificates waiting for an approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_workflow: Option<bool>,
    /// `ValidToLess`: expiring before this date (ISO 8601, e.g. `2026-12-31T00:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to_less: Option<String>,
    /// `ValidToGreater`: expiring after this date (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to_greater: Option<String>,
}

fn yes() -> bool {
    true
}

/// DigiCert automated IPs of one account (or of each given division) by status and agent.
/// Items: `{automation_id, automation_status, certificate_cn, alias, agent_name,
/// certificate_expires_on, target: {ip, port, account_id, division_id, management_ip,
/// domain_name}}`; `target` fits `bulk_retry_automation`'s `targets` as it is (`domain_name`,
/// the certificate's CN, only where several automations share the `ip:port`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomatedIpsQuery {
    pub account_id: u64,
    /// List each of these divisions (its automations' targets carry it as `division_id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub division_ids: Vec<u64>,
    /// `AUTOMATION_STATUS` EQUALS any of these, e.g. `AUTOMATION_FAILED`, `INSTALL_FAILED`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub automation_status: Vec<String>,
    /// `AGENT_NAME` EQUALS any of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_name: Vec<String>,
}

/// VCF credentials tasks, filtered here by status (the list endpoint takes none). Items:
/// `{id, name, operation_type, status, elements, resources: [{resource_name, resource_type,
/// credential_type, username, status}]}`; `elements` fits `retry_credentials_task` as it is.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsTasksQuery {
    /// Keep tasks with one of these statuses (`FAILED`, `USER_CANCELLED`, `INCONSISTENT`, …);
    /// all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    /// Keep tasks of one of these operation types (`ROTATE`, `UPDATE`, `REMEDIATE`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operation_type: Vec<String>,
}

/// VCF tasks by status and type (`GET /v1/tasks?taskStatus=&taskType=`). Items:
/// `{id, name, type, status, is_retryable, creation_timestamp}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    /// `taskStatus`, e.g. `FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `taskType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    /// Keep only tasks that VCF says can be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
}

/// NAVER Cloud certificates by status. Items: `{certificate_no, certificate_name, common_name,
/// dns_name, status_code, status_name, update_date}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NcpCertificatesQuery {
    /// `certificateName` (the list's own filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_name: Option<String>,
    /// Keep certificates with one of these `statusCode`s (1 NORMAL, -2 EXPIRE,
    /// -3 VALIDATION_FAILED, …); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_code: Vec<i64>,
    /// Keep certificates with one of these `statusName`s (`NORMAL`, `EXPIRE`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_name: Vec<String>,
}
