//! VMware Cloud Foundation SDDC Manager (providers.md §3): token pairs (201 or 200), access
//! tokens refreshed before they expire, `GET /v1/tasks/{id}` to observe, and the
//! `CredentialsUpdateSpec` of `PATCH /v1/credentials/tasks/{id}`.

mod list;
pub mod operations;
mod paths;
mod seam;

pub use list::normalize_status;

use std::path::{Path, PathBuf};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::manifest::model::{RetryCredentialsTask, VcfAuth};
use crate::providers::http::{Http, Reply};
use crate::providers::secret::Secret;
use crate::providers::{
    Answer, Idempotency, Observed, ProviderError, RequestPreview, SecretSource, TaskState, Verdict,
    auth_of,
};

/// PowerVCF refreshes with two minutes left; so do we.
const EXPIRY_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

#[derive(Debug)]
pub struct Vcf {
    name: String,
    http: Http,
    base: PathBuf,
    username: Option<String>,
    password: Option<SecretSource>,
    api_key: Option<SecretSource>,
    tokens: Mutex<Option<Tokens>>,
    preview: std::sync::OnceLock<crate::providers::PreviewParts>,
}

#[derive(Debug, Clone)]
struct Tokens {
    access: Secret,
    refresh_id: Option<Secret>,
    expires: Option<jiff::Timestamp>,
}

/// The `exp` claim of a JWT, read without checking the signature (the server does that).
fn jwt_expiry(token: &str) -> Option<jiff::Timestamp> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    jiff::Timestamp::from_second(claims["exp"].as_i64()?).ok()
}

/// `message (remediation: …)` of a VCF `Error`.
fn error_text(error: &Value) -> Option<String> {
    let message = error["message"].as_str()?;
    Some(match error["remediationMessage"].as_str() {
        Some(r) if !r.is_empty() => format!("{message} (remediation: {r})"),
        _ => message.to_owned(),
    })
}

impl Vcf {
    /// # Errors
    /// An `auth` block that does not fit.
    pub fn new(
        name: &str,
        http: Http,
        auth: &Value,
        base: &Path,
        demo: Option<&crate::providers::demo::Demo>,
    ) -> Result<Self, ProviderError> {
        let auth: VcfAuth = auth_of(name, auth)?;
        let mut me = Self {
            name: name.to_owned(),
            http,
            base: base.to_owned(),
            username: auth.username.clone(),
            password: auth
                .password
                .as_ref()
                .map(|r| SecretSource::reference(r, base)),
            api_key: auth
                .api_key
                .as_ref()
                .map(|r| SecretSource::reference(r, base)),
            tokens: Mutex::new(None),
            preview: std::sync::OnceLock::new(),
        };
        if let Some(u) = demo.and_then(|d| d.vcf.as_ref()) {
            me.username = Some(u.username.clone());
            me.password = Some(SecretSource::Value(Secret::new(u.password.clone())));
            me.api_key = None;
        }
        Ok(me)
    }

    fn secret(&self, source: &SecretSource, what: &'static str) -> Result<Secret, ProviderError> {
        source.get().map_err(|error| ProviderError::Secret {
            provider: self.name.clone(),
            what,
            error,
        })
    }

    async fn new_pair(&self) -> Result<Tokens, ProviderError> {
        let body = match (&self.username, &self.password, &self.api_key) {
            (Some(u), Some(p), _) => {
                json!({"username": u, "password": self.secret(p, "auth.password")?.expose()})
            }
            (_, _, Some(k)) => json!({"apiKey": self.secret(k, "auth.api_key")?.expose()}),
            _ => {
                return Err(ProviderError::Config {
                    provider: self.name.clone(),
                    detail: "auth needs username and password, or api_key".into(),
                });
            }
        };
        let request = self
            .http
            .request(Method::POST, self.http.url("v1/tokens"))
            .header("Accept", "application/json")
            .json(&body);
        let reply = self
            .http
            .send(request)
            .await
            .map_err(ProviderError::call(&self.name))?;
        // The spec says 201, the documentation's example shows 200.
        if reply.status != 200 && reply.status != 201 {
            return Err(ProviderError::refused(&self.name, &reply));
        }
        let body = reply.json().unwrap_or(Value::Null);
        let access = body["accessToken"]
            .as_str()
            .ok_or_else(|| ProviderError::Auth {
                provider: self.name.clone(),
                status: reply.status,
                detail: "the token answer has no accessToken".into(),
            })?;
        Ok(Tokens {
            expires: jwt_expiry(access),
            access: Secret::registered(access),
            refresh_id: body["refreshToken"]["id"].as_str().map(Secret::registered),
        })
    }

    /// `PATCH /v1/tokens/access-token/refresh` with the bare id (as PowerVCF sends it); the
    /// answer is the new access token, JSON-quoted or bare.
    async fn refresh(&self, id: &Secret) -> Result<Secret, ProviderError> {
        let request = self
            .http
            .request(
                Method::PATCH,
                self.http.url("v1/tokens/access-token/refresh"),
            )
            .header("Content-Type", "application/json")
            .body(id.expose().to_owned());
        let reply = self
            .http
            .send(request)
            .await
            .map_err(ProviderError::call(&self.name))?;
        if reply.status != 200 {
            return Err(ProviderError::refused(&self.name, &reply));
        }
        let text = String::from_utf8_lossy(&reply.body).trim().to_owned();
        let token = serde_json::from_str::<String>(&text).unwrap_or(text);
        Ok(Secret::registered(token))
    }

    /// A valid access token; refreshed with the refresh id when close to expiry.
    ///
    /// # Errors
    /// When no token can be had.
    pub async fn access_token(&self) -> Result<Secret, ProviderError> {
        let mut tokens = self.tokens.lock().await;
        let now = jiff::Timestamp::now();
        if let Some(t) = tokens.as_ref() {
            if t.expires.is_none_or(|e| e - EXPIRY_MARGIN > now) {
                return Ok(t.access.clone());
            }
            if let Some(id) = t.refresh_id.clone()
                && let Ok(access) = self.refresh(&id).await
            {
                let fresh = Tokens {
                    expires: jwt_expiry(access.expose()),
                    access: access.clone(),
                    refresh_id: Some(id),
                };
                *tokens = Some(fresh);
                return Ok(access);
            }
        }
        let fresh = self.new_pair().await?;
        let access = fresh.access.clone();
        *tokens = Some(fresh);
        Ok(access)
    }

    async fn invalidate(&self, used: &Secret) {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.as_mut()
            && &t.access == used
        {
            t.expires = Some(jiff::Timestamp::UNIX_EPOCH);
        }
    }

    async fn get(&self, path: &str) -> Result<Reply, ProviderError> {
        self.authorized(Method::GET, path, None).await
    }

    /// A call with the bearer token, repeated once with a fresh token after a 401/403 (an
    /// unauthorized request was not processed, so repeating it is safe).
    async fn authorized(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ProviderError> {
        for attempt in 0..2 {
            let token = self.access_token().await?;
            let mut request = self
                .http
                .request(method.clone(), self.http.url(path))
                .bearer_auth(token.expose())
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let reply = self
                .http
                .send(request)
                .await
                .map_err(ProviderError::call(&self.name))?;
            // Expiry shows as 401 or 403 (terraform-provider-vcf).
            if (reply.status == 401 || reply.status == 403) && attempt == 0 {
                self.invalidate(&token).await;
                continue;
            }
            return Ok(reply);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Plan check: the task must be FAILED and retryable.
    ///
    /// # Errors
    /// A transport or auth failure, or an answer that cannot be read.
    pub async fn observe(&self, action: &RetryCredentialsTask) -> Result<Observed, ProviderError> {
        let reply = self
            .get(&format!("v1/tasks/{}", self.segment(&action.task_id)?))
            .await?;
        if reply.status == 404 {
            return Ok(Observed::new(Verdict::Blocked(format!(
                "SDDC Manager knows no task {}",
                action.task_id
            ))));
        }
        let task = reply
            .json()
            .filter(|_| reply.status == 200)
            .ok_or_else(|| ProviderError::unexpected(&self.name, "GET /v1/tasks/{id}", &reply))?;
        let status = normalize_status(task["status"].as_str().unwrap_or_default());
        let retryable = task["isRetryable"].as_bool().unwrap_or(false);
        let verdict = match status.as_str() {
            "FAILED" if retryable => Verdict::Run,
            "FAILED" => {
                Verdict::Blocked("the task failed but SDDC Manager says it is not retryable".into())
            }
            "PENDING" | "IN_PROGRESS" => {
                Verdict::Converged(format!("the task is running ({status})"))
            }
            "SUCCESSFUL" | "COMPLETED_WITH_WARNING" => {
                Verdict::Converged(format!("the task is {status}"))
            }
            other => Verdict::Blocked(format!("the task is {other}")),
        };
        let mut observed = Observed::new(verdict)
            .fact("status", task["status"].clone())
            .fact("is_retryable", retryable);
        if let Some(name) = task["name"].as_str() {
            observed = observed.fact("name", name);
        }
        if let Some(e) = task["errors"].as_array().and_then(|e| e.first()) {
            observed = observed.fact("error", e["message"].clone());
            if let Some(r) = e["remediationMessage"].as_str() {
                observed = observed.fact("remediation", r);
            }
        }
        Ok(observed)
    }

    /// The `CredentialsUpdateSpec`; passwords are references unless `resolve` is set.
    ///
    /// # Errors
    /// A password reference that cannot be read (only when resolving).
    pub fn spec(
        &self,
        action: &RetryCredentialsTask,
        resolve: bool,
    ) -> Result<Value, ProviderError> {
        let mut elements = Vec::new();
        for e in &action.elements {
            let mut credentials = Vec::new();
            for c in &e.credentials {
                let mut credential = json!({"username": c.username});
                if let Some(t) = c.credential_type {
                    credential["credentialType"] = json!(t);
                }
                if let Some(t) = c.account_type {
                    credential["accountType"] = json!(t);
                }
                if let Some(p) = &c.password {
                    credential["password"] = if resolve {
                        json!(
                            self.secret(
                                &SecretSource::reference(p, &self.base),
                                "a credential password"
                            )?
                            .expose()
                        )
                    } else {
                        json!(p.to_string())
                    };
                }
                credentials.push(credential);
            }
            let mut element = json!({"resourceType": e.resource_type, "credentials": credentials});
            if let Some(n) = &e.resource_name {
                element["resourceName"] = json!(n);
            }
            if let Some(id) = &e.resource_id {
                element["resourceId"] = json!(id);
            }
            elements.push(element);
        }
        let mut spec = json!({"operationType": action.operation_type, "elements": elements});
        if let Some(p) = &action.auto_rotate_policy {
            spec["autoRotatePolicy"] =
                json!({"enableAutoRotatePolicy": p.enable_auto_rotate_policy});
            if let Some(days) = p.frequency_in_days {
                spec["autoRotatePolicy"]["frequencyInDays"] = json!(days);
            }
        }
        Ok(spec)
    }

    /// Re-runs the failed task; a 202 (or 200) Task is to be polled.
    ///
    /// # Errors
    /// A transport failure, no usable token, or an unreadable password reference.
    pub async fn execute(&self, action: &RetryCredentialsTask) -> Result<Answer, ProviderError> {
        let spec = self.spec(action, true)?;
        let path = format!("v1/credentials/tasks/{}", self.segment(&action.task_id)?);
        let reply = self.authorized(Method::PATCH, &path, Some(&spec)).await?;
        let body = reply.json().unwrap_or(Value::Null);
        Ok(match reply.status {
            200 | 202 => Answer::Done {
                status: reply.status,
                detail: format!(
                    "task {} {}",
                    body["id"].as_str().unwrap_or(&action.task_id),
                    body["status"].as_str().unwrap_or("accepted")
                ),
                task: Some(body["id"].as_str().unwrap_or(&action.task_id).to_owned()),
            },
            400..=499 if reply.status != 429 => Answer::Rejected {
                status: reply.status,
                detail: error_text(&body).unwrap_or_else(|| reply.summary()),
            },
            _ => Answer::from_status(&reply),
        })
    }

    /// Reads the task of an earlier `execute`.
    ///
    /// # Errors
    /// A transport failure or an unreadable answer.
    pub async fn poll(&self, task_id: &str) -> Result<TaskState, ProviderError> {
        let reply = self
            .get(&format!("v1/tasks/{}", self.segment(task_id)?))
            .await?;
        let task = reply
            .json()
            .filter(|_| reply.status == 200)
            .ok_or_else(|| ProviderError::unexpected(&self.name, "GET /v1/tasks/{id}", &reply))?;
        let shown = task["status"].as_str().unwrap_or_default().to_owned();
        Ok(match normalize_status(&shown).as_str() {
            "PENDING" | "IN_PROGRESS" => TaskState::Running { status: shown },
            "SUCCESSFUL" | "COMPLETED_WITH_WARNING" | "SKIPPED" => {
                TaskState::Succeeded { status: shown }
            }
            _ => {
                let mut details: Vec<String> = task["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(error_text)
                    .collect();
                for sub in task["subTasks"].as_array().into_iter().flatten() {
                    details.extend(
                        sub["errors"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(error_text),
                    );
                }
                details.dedup();
                TaskState::Failed {
                    status: shown,
                    detail: details.join("; "),
                }
            }
        })
    }

    #[must_use]
    pub fn preview(&self, action: &RetryCredentialsTask) -> RequestPreview {
        let parts = self.preview.get_or_init(|| {
            let who = self.username.as_deref().unwrap_or("the API key");
            crate::providers::PreviewParts::new(
                "PATCH",
                &[
                    (
                        "Authorization",
                        format!("Bearer (SDDC Manager token of {who})"),
                    ),
                    ("Content-Type", "application/json".to_owned()),
                ],
            )
        });
        let url = self
            .http
            .url(&format!("v1/credentials/tasks/{}", action.task_id));
        parts.preview(
            url.as_str().into(),
            self.spec(action, false)
                .ok()
                .map(|b| crate::providers::raw(&b)),
        )
    }

    #[must_use]
    pub fn idempotency() -> Idempotency {
        Idempotency::NonIdempotent
    }
}

/// The key parameters of a previewed request body, for the diff.
#[must_use]
pub fn summary(body: &Value) -> String {
    let elements = body["elements"].as_array().map_or(0, Vec::len);
    format!(
        "{} of {elements} resource{}",
        body["operationType"].as_str().unwrap_or("?"),
        if elements == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_expiry_is_read_from_the_payload() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1700003600}"#);
        let token = format!("h.{payload}.s");
        assert_eq!(
            jwt_expiry(&token).map(|t| t.as_second()),
            Some(1_700_003_600)
        );
        assert!(jwt_expiry("garbage").is_none());
    }
}
