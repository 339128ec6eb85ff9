//! The registry: the one place that knows which module implements each provider type. Adding a
//! provider adds one line here.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::http::Http;
use super::{
    Client, ProviderError, SandboxEndpoints, digicert, generic, ncloud, otc_waf, vcf, venafi,
};
use crate::limits::{Documented, Limiter};
use crate::manifest::model::{Provider, ProviderType};
use crate::state::TokenStore;

/// Builds the client of provider `name`; `url` is its rendered base URL.
///
/// # Errors
/// A bad URL, CA file or auth block.
pub fn build(
    name: &str,
    provider: &Provider,
    url: &str,
    base_dir: &Path,
    sandbox: Option<&SandboxEndpoints>,
    tokens: Arc<dyn TokenStore>,
    limiter: Arc<Limiter>,
) -> Result<Client, ProviderError> {
    let url = match sandbox {
        Some(s) => s
            .urls
            .get(&provider.kind)
            .cloned()
            .unwrap_or_else(|| url.to_owned()),
        None => url.to_owned(),
    };
    let http = Http::new(&url, provider, base_dir)
        .map_err(|error| ProviderError::Setup {
            provider: name.to_owned(),
            error,
        })?
        .limited(limiter);
    let auth = provider.auth.clone().unwrap_or(Value::Null);
    let demo = sandbox.map(|s| &s.demo);
    Ok(match provider.kind {
        ProviderType::VenafiTpp => Box::new(venafi::Venafi::new(
            name, http, &auth, base_dir, demo, tokens,
        )?),
        ProviderType::Digicert => {
            Box::new(digicert::Digicert::new(name, http, &auth, base_dir, demo)?)
        }
        ProviderType::Vcf => Box::new(vcf::Vcf::new(name, http, &auth, base_dir, demo)?),
        ProviderType::OtcWaf => Box::new(otc_waf::OtcWaf::new(
            name, http, &auth, base_dir, demo, provider,
        )?),
        ProviderType::Ncloud => Box::new(ncloud::Ncloud::new(name, http, &auth, base_dir, demo)?),
        ProviderType::Http => Box::new(generic::Generic::new(name, http, &auth, base_dir)?),
    })
}

/// The key parameters of a previewed request, for the diff of a job of `provider_type`.
#[must_use]
pub fn summary(provider_type: &str, request: &super::RequestPreview) -> String {
    // A diff line is made per action: the type is matched by its name, not parsed.
    match ProviderType::ALL
        .into_iter()
        .find(|t| t.name() == provider_type)
    {
        Some(ProviderType::VenafiTpp) => request
            .body
            .as_deref()
            .map_or_else(String::new, venafi::summary),
        Some(ProviderType::Vcf) => vcf::summary(&request.body_value()),
        Some(ProviderType::Ncloud) => ncloud::summary(&request.body_value()),
        Some(ProviderType::Http) => format!("{} {}", request.method, request.url),
        Some(ProviderType::Digicert | ProviderType::OtcWaf) | None => String::new(),
    }
}

/// The limits a provider's documentation sets, for when the runbook sets none.
#[must_use]
pub fn documented_limits(kind: ProviderType) -> Documented {
    match kind {
        ProviderType::Digicert => digicert::documented_limits(),
        ProviderType::Vcf => vcf::operations::documented_limits(),
        ProviderType::VenafiTpp
        | ProviderType::OtcWaf
        | ProviderType::Ncloud
        | ProviderType::Http => Documented::default(),
    }
}
