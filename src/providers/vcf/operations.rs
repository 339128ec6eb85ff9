//! One credential operation at a time per SDDC Manager: the documented limit, and the check for
//! an operation someone else is running.

use super::{Vcf, normalize_status};
use crate::providers::ProviderError;

impl Vcf {
    /// A credential operation running on the SDDC Manager other than `own` (providers.md §3.3
    /// `GET /v1/credentials/tasks`, §3.4: "there must be no failed or running workflows").
    ///
    /// # Errors
    /// A transport or auth failure, or an answer that cannot be read.
    pub async fn running_operation(&self, own: &str) -> Result<Option<String>, ProviderError> {
        let page = self.credentials_task_list().await?;
        let running = page["elements"].as_array().into_iter().flatten().find(|t| {
            let status = normalize_status(t["status"].as_str().unwrap_or_default());
            matches!(status.as_str(), "PENDING" | "IN_PROGRESS") && t["id"].as_str() != Some(own)
        });
        Ok(running.map(|t| {
            format!(
                "credential task {} ({}) is {}",
                t["id"].as_str().unwrap_or("?"),
                t["name"]
                    .as_str()
                    .or_else(|| t["type"].as_str())
                    .unwrap_or("unnamed"),
                t["status"].as_str().unwrap_or("running")
            )
        }))
    }
}

/// providers.md §3.4: credential operations run one at a time per SDDC Manager ("there must
/// be no failed or running workflows"), so one operation at a time, its task polled to the end.
#[must_use]
pub fn documented_limits() -> crate::limits::Documented {
    crate::limits::Documented {
        concurrency: Some(1),
        exclusive: true,
        ..crate::limits::Documented::default()
    }
}
