//! Provider blocks: where an API lives, how to authenticate to it, and how hard to push it.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Duration, Limits, Tls};
use super::secret::SecretRef;

/// The APIs redrive speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderType {
    /// Venafi Trust Protection Platform (WebSDK).
    VenafiTpp,
    /// DigiCert CertCentral Automation API.
    Digicert,
    /// VMware Cloud Foundation SDDC Manager.
    Vcf,
    /// Open Telekom Cloud Web Application Firewall.
    OtcWaf,
    /// NAVER Cloud Platform Certificate Manager.
    Ncloud,
    /// Any HTTP API, driven by the generic `http` action.
    Http,
}

impl ProviderType {
    pub const ALL: [Self; 6] = [
        Self::VenafiTpp,
        Self::Digicert,
        Self::Vcf,
        Self::OtcWaf,
        Self::Ncloud,
        Self::Http,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::VenafiTpp => "venafi_tpp",
            Self::Digicert => "digicert",
            Self::Vcf => "vcf",
            Self::OtcWaf => "otc_waf",
            Self::Ncloud => "ncloud",
            Self::Http => "http",
        }
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One API endpoint the runbook talks to. `auth` depends on `type`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    #[serde(rename = "type")]
    pub kind: ProviderType,
    /// Base URL, e.g. `https://tpp.example.com`. Templates may use `vars` and `env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Time limit of one request to this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Extra headers sent with every request (the `http` type only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<indexmap::IndexMap<String, String>>,
}

/// Venafi OAuth: a password grant (`username` + `password`) or a given `access_token`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VenafiAuth {
    /// The API integration's client id (case-sensitive).
    #[serde(default = "default_venafi_client")]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// A bearer token issued beforehand, instead of a password grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretRef>,
    /// Single-use refresh token that goes with `access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretRef>,
    /// OAuth scope; retry needs `certificate:manage`.
    #[serde(default = "default_venafi_scope")]
    pub scope: String,
}

fn default_venafi_client() -> String {
    "redrive".to_owned()
}

fn default_venafi_scope() -> String {
    "certificate:manage".to_owned()
}

/// DigiCert: the CertCentral API key, sent as `X-DC-DEVKEY`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DigicertAuth {
    pub api_key: SecretRef,
}

/// VCF SDDC Manager: `username` + `password`, or an `api_key`, exchanged for a token pair.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VcfAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretRef>,
}

/// OTC IAM: a project-scoped password token, or a given `token`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtcAuth {
    /// IAM endpoint, e.g. `https://iam.eu-de.otc.t-systems.com/v3`; defaults to the provider URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_url: Option<String>,
    /// The project the WAF certificates belong to.
    #[schemars(length(min = 1))]
    pub project_id: String,
    /// Project name for the token scope (on OTC, the region such as `eu-de`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// An IAM token issued beforehand, sent as `X-Auth-Token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRef>,
}

/// NCP API gateway keys; every request is signed with signature v2.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NcloudAuth {
    pub access_key: SecretRef,
    pub secret_key: SecretRef,
}

/// Generic HTTP: a bearer token, basic auth or one secret header.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<SecretHeader>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretRef,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretHeader {
    pub name: String,
    pub value: SecretRef,
}
