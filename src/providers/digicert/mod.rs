//! DigiCert Automation (providers.md §2): the `X-DC-DEVKEY` key, `automatedips/list` (one list
//! for many targets) + `viewAutomationDetails` to observe an `ip:port`, and the bulk-retry
//! request items.

mod list;
mod seam;

use list::Automations;

use std::collections::HashMap;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::http::{Http, Reply};
use super::secret::Secret;
use super::{
    Answer, Idempotency, Observed, ProviderError, RequestPreview, SecretSource, Verdict, auth_of,
};
use crate::manifest::model::{AutomationTarget, BulkRetryAutomation, DigicertAuth};

#[derive(Debug)]
pub struct Digicert {
    name: String,
    http: Http,
    api_key: SecretSource,
    /// `ip:port[/domain]` → (automationId, automationStatus), per account; read once per run.
    automations: Mutex<HashMap<u64, Automations>>,
    // With the one endpoint every action goes to.
    preview: std::sync::OnceLock<(super::PreviewParts, std::sync::Arc<str>)>,
}

/// The key the results and the list use for a target.
#[must_use]
pub fn target_key(t: &AutomationTarget) -> String {
    match &t.domain_name {
        Some(d) => format!("{}:{}/{}", t.ip, t.port, d.to_ascii_lowercase()),
        None => format!("{}:{}", t.ip, t.port),
    }
}

/// One item of `retryAutomationTaskRequests`, as the documentation's example writes it.
#[must_use]
pub fn request_item(action: &BulkRetryAutomation, t: &AutomationTarget) -> Value {
    let mut item = json!({
        "ip": t.ip,
        "port": t.port,
        "accountId": t.account_id.unwrap_or(action.account_id),
        "divisionId": t.division_id.or(action.division_id),
        "domainName": t.domain_name,
    });
    let optional = [
        ("managementIp", &t.management_ip),
        ("agentLicenseKey", &t.agent_license_key),
        ("virtualServerName", &t.virtual_server_name),
        ("sensorLicenseKey", &t.sensor_license_key),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            item[key] = json!(v);
        }
    }
    item
}

impl Digicert {
    /// # Errors
    /// An `auth` block that does not fit.
    pub fn new(
        name: &str,
        http: Http,
        auth: &Value,
        base: &Path,
        demo: Option<&super::demo::Demo>,
    ) -> Result<Self, ProviderError> {
        let auth: DigicertAuth = auth_of(name, auth)?;
        let api_key = match demo.and_then(|d| d.digicert_api_key.as_ref()) {
            Some(k) => SecretSource::Value(Secret::new(k.clone())),
            None => SecretSource::reference(&auth.api_key, base),
        };
        Ok(Self {
            name: name.to_owned(),
            http,
            api_key,
            automations: Mutex::new(HashMap::new()),
            preview: std::sync::OnceLock::new(),
        })
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Reply, ProviderError> {
        let key = self.api_key.get().map_err(|error| ProviderError::Secret {
            provider: self.name.clone(),
            what: "auth.api_key",
            error,
        })?;
        let request = self
            .http
            .request(Method::POST, self.http.url(path))
            .header("X-DC-DEVKEY", key.expose())
            .json(body);
        let reply = self
            .http
            .send(request)
            .await
            .map_err(ProviderError::call(&self.name))?;
        if reply.status == 401 || reply.status == 403 {
            return Err(ProviderError::refused(&self.name, &reply));
        }
        Ok(reply)
    }

    /// Plan check for one target: is there an automation, and does DigiCert offer a retry?
    ///
    /// # Errors
    /// A transport or auth failure, or an answer that cannot be read.
    pub async fn observe(
        &self,
        action: &BulkRetryAutomation,
        target: &AutomationTarget,
    ) -> Result<Observed, ProviderError> {
        let account = target.account_id.unwrap_or(action.account_id);
        let all = self.automations(account, false).await?;
        let id = match list::located(&all, target, account) {
            Ok(l) => l.id,
            Err(blocked) => return Ok(blocked),
        };
        let division = target.division_id.or(action.division_id);
        let reply = self
            .post(
                "automation/viewAutomationDetails",
                &json!({"accountId": account, "automationId": id, "divisionId": division}),
            )
            .await?;
        // Listed a moment ago and gone now (CertCentral's `404 not_found`, providers.md §2.4):
        // there is nothing left to retry.
        if reply.status == 404 {
            return Ok(Observed::new(Verdict::Blocked(format!(
                "automation {id} is no longer there (404 since the list showed it)"
            ))));
        }
        let body = reply
            .json()
            .filter(|_| reply.status == 200)
            .ok_or_else(|| {
                ProviderError::unexpected(&self.name, "viewAutomationDetails", &reply)
            })?;
        let data = &body["data"];
        let status = data["autoStatusResponse"]["automationStatus"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let applicable = data["autoOrderProgressResponse"]["isRetryApplicable"]
            .as_bool()
            .unwrap_or(false);
        let cause = data["certInstallResponse"]["causeOfFailure"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let verdict = list::decide(id, &status, Some(applicable), &cause)
            .unwrap_or_else(|| unreachable!("decided with `isRetryApplicable` known"));
        Ok(Observed::new(verdict)
            .fact("automation_id", id)
            .fact("automation_status", status)
            .fact("is_retry_applicable", applicable))
    }

    /// Sends one batch to the bulk endpoint; the answer of each target, in order. Results are
    /// keyed `ip:port`, so SNI targets sharing one get the same answer.
    ///
    /// # Errors
    /// A transport failure or a refused key.
    pub async fn execute(
        &self,
        action: &BulkRetryAutomation,
        targets: &[AutomationTarget],
    ) -> Result<Vec<Answer>, ProviderError> {
        let body = json!({
            "retryAutomationTaskRequests": targets.iter().map(|t| request_item(action, t)).collect::<Vec<_>>(),
            "accountId": action.account_id,
        });
        let reply = self
            .post("automation/bulkretryautomationtask", &body)
            .await?;
        let answer = Answer::from_status(&reply);
        let data = match (&answer, reply.json()) {
            (Answer::Done { .. }, Some(body)) => body["data"].clone(),
            (Answer::Done { .. }, None) => {
                let a = Answer::Transient {
                    status: reply.status,
                    detail: format!("the answer is not JSON: {}", reply.summary()),
                };
                return Ok(vec![a; targets.len()]);
            }
            _ => return Ok(vec![answer; targets.len()]),
        };
        Ok(targets
            .iter()
            .map(|t| {
                let key = format!("{}:{}", t.ip, t.port);
                if let Some(message) = data["retryMessages"][&key].as_str() {
                    Answer::Done {
                        status: 200,
                        detail: message.to_owned(),
                        task: None,
                    }
                } else if let Some(failed) = data["failedRetries"].get(&key) {
                    let error = &failed["errors"][0];
                    Answer::Rejected {
                        status: 200,
                        detail: format!(
                            "{} {}",
                            error["errorCode"].as_str().unwrap_or("?"),
                            error["errorMessage"].as_str().unwrap_or("failed")
                        ),
                    }
                } else {
                    Answer::Transient {
                        status: 200,
                        detail: format!("the answer has no result for {key}"),
                    }
                }
            })
            .collect())
    }

    #[must_use]
    pub fn preview(
        &self,
        action: &BulkRetryAutomation,
        target: &AutomationTarget,
    ) -> RequestPreview {
        let (parts, url) = self.preview.get_or_init(|| {
            let parts = super::PreviewParts::new(
                "POST",
                &[
                    ("X-DC-DEVKEY", self.api_key.shown()),
                    ("Content-Type", "application/json".to_owned()),
                ],
            );
            let url = self.http.url("automation/bulkretryautomationtask");
            (parts, url.as_str().into())
        });
        let body = json!({
            "retryAutomationTaskRequests": [request_item(action, target)],
            "accountId": action.account_id,
        });
        parts.preview(url.clone(), Some(super::raw(&body)))
    }

    #[must_use]
    pub fn idempotency() -> Idempotency {
        Idempotency::NonIdempotent
    }
}

/// providers.md §2.4: 100 requests / 5 s and 1000 / 5 min, rolling windows per API key; every
/// request counts, reads included.
#[must_use]
pub fn documented_limits() -> crate::limits::Documented {
    use crate::manifest::model::Rate;
    crate::limits::Documented {
        rates: vec![
            Rate {
                count: 100,
                per: std::time::Duration::from_secs(5),
            },
            Rate {
                count: 1000,
                per: std::time::Duration::from_secs(300),
            },
        ],
        ..crate::limits::Documented::default()
    }
}

/// Targets per bulk request when the runbook does not say.
pub(super) const DEFAULT_BATCH: usize = 50;
