//! DigiCert Automation (providers.md §2): the `X-DC-DEVKEY` key, `automatedips/list` +
//! `viewAutomationDetails` to observe each `ip:port`, and the bulk-retry request items.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::http::{Http, Reply};
use super::provider::{Batching, BoxFuture, mismatch};
use super::secret::Secret;
use super::{
    Answer, Idempotency, Observed, ProviderError, RequestPreview, SecretSource, Verdict, auth_of,
};
use crate::manifest::model::Work;
use crate::manifest::model::{AutomationTarget, BulkRetryAutomation, DigicertAuth};

/// The list endpoint's largest page.
const PAGE_SIZE: u64 = 512;
/// Bounds the paging loop whatever the server says its total is.
const MAX_PAGES: u64 = 10_000;

/// `ip:port[/domain]` → (automationId, automationStatus) of one account.
/// The automations of one account by `ip:port`, as the documented list shows them.
type Automations = Arc<HashMap<String, Vec<Listed>>>;

/// One automation in `automatedips/list` (providers.md §2.3: `automationId`, `automatedIp`,
/// `automatedPort`, `certificateCn`, `alias`, … — no domain name).
#[derive(Debug, Clone)]
struct Listed {
    id: u64,
    cn: String,
    alias: String,
}

impl Listed {
    /// Whether this automation serves `domain`: its certificate's CN or its alias names it.
    fn serves(&self, domain: &str) -> bool {
        self.cn.eq_ignore_ascii_case(domain) || self.alias.eq_ignore_ascii_case(domain)
    }
}

/// Which automation of an `ip:port` a target means, by documented fields only: the only one
/// there, or the one whose certificate CN or alias is the target's `domain_name`. Ambiguity is a
/// reason to hold the target back, never a guess.
fn matching<'a>(listed: &'a [Listed], target: &AutomationTarget) -> Result<&'a Listed, String> {
    let at = format!("{}:{}", target.ip, target.port);
    let ids = |all: &[&Listed]| {
        all.iter()
            .map(|l| format!("{} (CN {})", l.id, l.cn))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let candidates: Vec<&Listed> = match &target.domain_name {
        Some(d) => listed.iter().filter(|l| l.serves(d)).collect(),
        None => listed.iter().collect(),
    };
    match (candidates.as_slice(), &target.domain_name) {
        ([one], _) => Ok(one),
        ([], Some(d)) => Err(format!(
            "no automation at {at} has a certificate CN or alias `{d}` (there: {})",
            ids(&listed.iter().collect::<Vec<_>>())
        )),
        ([], None) => Err(format!("no automation at {at}")),
        (many, Some(d)) => Err(format!(
            "several automations at {at} serve `{d}` ({}); the target is ambiguous",
            ids(many)
        )),
        (many, None) => Err(format!(
            "several automations share {at} ({}); name the target's `domain_name` (its certificate CN or alias)",
            ids(many)
        )),
    }
}

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
            return Err(ProviderError::Auth {
                provider: self.name.clone(),
                status: reply.status,
                detail: reply.summary(),
            });
        }
        Ok(reply)
    }

    /// Every automated `ip:port` of the account, paged through once and kept.
    async fn automations(&self, account: u64) -> Result<Automations, ProviderError> {
        let mut cache = self.automations.lock().await;
        if let Some(found) = cache.get(&account) {
            // Shared, not copied: one observation per target must not copy the whole list.
            return Ok(found.clone());
        }
        let mut found: HashMap<String, Vec<Listed>> = HashMap::new();
        let mut start = 1;
        for _ in 0..MAX_PAGES {
            let reply = self
                .post(
                    "automatedips/list",
                    &json!({"accountId": account, "pageSize": PAGE_SIZE, "startIndex": start}),
                )
                .await?;
            let body = reply
                .json()
                .filter(|_| reply.status == 200)
                .ok_or_else(|| {
                    ProviderError::unexpected(&self.name, "automatedips/list", &reply)
                })?;
            let items = body["data"]["automatedIps"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for item in &items {
                let ip = item["automatedIp"].as_str().unwrap_or_default();
                let port = item["automatedPort"].as_u64().unwrap_or_default();
                let text = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
                found
                    .entry(format!("{ip}:{port}"))
                    .or_default()
                    .push(Listed {
                        id: item["automationId"].as_u64().unwrap_or_default(),
                        cn: text("certificateCn"),
                        alias: text("alias"),
                    });
            }
            let total = body["data"]["totalCount"].as_u64().unwrap_or(0);
            start += PAGE_SIZE;
            if items.len() < PAGE_SIZE as usize || (total > 0 && start > total) {
                break;
            }
        }
        let found = Arc::new(found);
        cache.insert(account, found.clone());
        Ok(found)
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
        let all = self.automations(account).await?;
        let listed = all
            .get(&format!("{}:{}", target.ip, target.port))
            .map_or(&[][..], Vec::as_slice);
        let id = match matching(listed, target) {
            Ok(l) => l.id,
            Err(why) => {
                return Ok(Observed::new(Verdict::Blocked(format!(
                    "{why} in account {account}"
                ))));
            }
        };
        let division = target.division_id.or(action.division_id);
        let reply = self
            .post(
                "automation/viewAutomationDetails",
                &json!({"accountId": account, "automationId": id, "divisionId": division}),
            )
            .await?;
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
        let verdict = if applicable {
            Verdict::Run
        } else if status.contains("RENEWED") {
            Verdict::Converged(format!("automation {id} is {status}"))
        } else if status.contains("SCHEDULED") {
            Verdict::Converged(format!("a retry of automation {id} is already scheduled"))
        } else {
            Verdict::Blocked(format!(
                "DigiCert offers no retry for automation {id} ({status}){}",
                if cause.is_empty() {
                    String::new()
                } else {
                    format!(": {cause}")
                }
            ))
        };
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

impl super::Provider for Digicert {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, work: &Work) -> String {
        work.bulk().map(|(_, t)| target_key(t)).unwrap_or_default()
    }

    fn preview(&self, work: &Work) -> (RequestPreview, Idempotency) {
        let preview = work
            .bulk()
            .map(|(action, target)| self.preview(action, target))
            .unwrap_or_default();
        (preview, Self::idempotency())
    }

    fn observe<'a>(
        &'a self,
        work: &'a Work,
    ) -> BoxFuture<'a, Option<Result<Observed, ProviderError>>> {
        Box::pin(async move {
            let (action, target) = work.bulk()?;
            Some(self.observe(action, target).await)
        })
    }

    fn send<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> BoxFuture<'a, Result<Vec<Answer>, ProviderError>> {
        Box::pin(async move {
            let Some((base, _)) = works.first().and_then(|w| w.bulk()) else {
                return Err(mismatch(&self.name));
            };
            let targets = works
                .iter()
                .map(|w| {
                    w.bulk()
                        .map(|(_, t)| t.clone())
                        .ok_or_else(|| mismatch(&self.name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.execute(base, &targets).await
        })
    }

    /// The bulk endpoint takes `batch_size` targets (50 by default) and answers per `ip:port`,
    /// so SNI targets sharing one go in separate requests.
    fn batching(&self, work: &Work) -> Option<Batching> {
        let (action, target) = work.bulk()?;
        Some(Batching {
            size: action
                .batch_size
                .and_then(|s| usize::try_from(s.max(1)).ok())
                .unwrap_or(DEFAULT_BATCH),
            exclusive: format!("{}:{}", target.ip, target.port),
        })
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
const DEFAULT_BATCH: usize = 50;
