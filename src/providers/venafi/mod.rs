//! Venafi TPP (providers.md §1): OAuth tokens with single-use refresh tokens (refreshes are
//! serialized and the new pair kept), `Config/DnToGuid` + `Certificates/{guid}` to observe (or
//! the certificate search for many targets at once), and the `Certificates/Retry` request.

mod auth;
mod seam;
mod search;

use std::path::Path;
use std::sync::Arc;

use reqwest::Method;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::manifest::model::{RetryCertificate, VenafiAuth};
use crate::providers::http::Http;
use crate::providers::secret::Secret;
use crate::providers::{
    Answer, Idempotency, Observed, ProviderError, RequestPreview, SecretSource, Verdict, auth_of,
};
use crate::state::TokenStore;

const RETRY_PATH: &str = "vedsdk/Certificates/Retry";

#[derive(Debug)]
pub struct Venafi {
    name: String,
    http: Http,
    client_id: String,
    username: Option<String>,
    password: Option<SecretSource>,
    scope: String,
    given_access: Option<SecretSource>,
    given_refresh: Option<SecretSource>,
    tokens: Mutex<Option<auth::Tokens>>,
    /// Where rotated pairs are kept between runs: a refresh token works once.
    store: Arc<dyn TokenStore>,
    /// `Certificates/Retry`, joined once: every action of a run goes there.
    retry_url: url::Url,
    // With the one endpoint every action goes to.
    preview: std::sync::OnceLock<(crate::providers::PreviewParts, std::sync::Arc<str>)>,
}

impl Venafi {
    /// # Errors
    /// An `auth` block that does not fit.
    pub fn new(
        name: &str,
        http: Http,
        auth: &Value,
        base: &Path,
        demo: Option<&crate::providers::demo::Demo>,
        store: Arc<dyn TokenStore>,
    ) -> Result<Self, ProviderError> {
        let auth: VenafiAuth = auth_of(name, auth)?;
        let mut me = Self {
            name: name.to_owned(),
            retry_url: http.url(RETRY_PATH),
            http,
            client_id: auth.client_id.clone(),
            username: auth.username.clone(),
            password: auth
                .password
                .as_ref()
                .map(|r| SecretSource::reference(r, base)),
            scope: auth.scope.clone(),
            given_access: auth
                .access_token
                .as_ref()
                .map(|r| SecretSource::reference(r, base)),
            given_refresh: auth
                .refresh_token
                .as_ref()
                .map(|r| SecretSource::reference(r, base)),
            tokens: Mutex::new(None),
            store,
            preview: std::sync::OnceLock::new(),
        };
        if let Some(v) = demo.and_then(|d| d.venafi.as_ref()) {
            if let Some(c) = &v.client_id {
                me.client_id.clone_from(c);
            }
            if let Some(u) = &v.login {
                me.username = Some(u.username.clone());
                me.password = Some(SecretSource::Value(Secret::new(u.password.clone())));
            }
            me.given_access = None;
            me.given_refresh = None;
        }
        Ok(me)
    }

    /// An authorized JSON call, retried once after a 401 with a fresh token.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<crate::providers::http::Reply, ProviderError> {
        self.call_at(method, self.http.url(path), body).await
    }

    async fn call_at<B: serde::Serialize + Sync + ?Sized>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
    ) -> Result<crate::providers::http::Reply, ProviderError> {
        for attempt in 0..2 {
            let token = self.access_token().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let reply = self
                .http
                .send(request)
                .await
                .map_err(ProviderError::call(&self.name))?;
            if reply.status == 401 && attempt == 0 {
                self.invalidate(&token).await;
                continue;
            }
            return Ok(reply);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Plan check: `DnToGuid`, then `ProcessingDetails` of the certificate.
    ///
    /// # Errors
    /// A transport or auth failure, or an answer that cannot be read.
    pub async fn observe(&self, action: &RetryCertificate) -> Result<Observed, ProviderError> {
        let dn = &action.certificate_dn;
        let reply = self
            .call(
                Method::POST,
                "vedsdk/Config/DnToGuid",
                Some(&json!({"ObjectDN": dn})),
            )
            .await?;
        let body = reply
            .json()
            .filter(|_| reply.status == 200)
            .ok_or_else(|| ProviderError::unexpected(&self.name, "Config/DnToGuid", &reply))?;
        match body["Result"].as_i64() {
            Some(1) => {}
            Some(400) => {
                return Ok(Observed::new(Verdict::Blocked(
                    "no such certificate in TPP (DnToGuid: ObjectDoesNotExist)".into(),
                )));
            }
            other => {
                return Ok(Observed::new(Verdict::Blocked(format!(
                    "DnToGuid answered Result {}",
                    other.map_or_else(|| "(none)".to_owned(), |r| r.to_string())
                ))));
            }
        }
        let guid = body["GUID"].as_str().unwrap_or_default();
        let reply = self
            .call(Method::GET, &format!("vedsdk/Certificates/{guid}"), None)
            .await?;
        let cert = reply
            .json()
            .filter(|_| reply.status == 200)
            .ok_or_else(|| ProviderError::unexpected(&self.name, "Certificates/{guid}", &reply))?;
        let details = &cert["ProcessingDetails"];
        let in_error = details["InError"].as_bool().unwrap_or(false);
        let stage = details["Stage"].as_i64().unwrap_or(0);
        let status = details["Status"].as_str().unwrap_or_default().to_owned();
        let verdict = if in_error {
            Verdict::Run
        } else if stage > 0 || !status.is_empty() {
            Verdict::Converged(format!("being processed (stage {stage}: {status})"))
        } else {
            Verdict::Converged("not in error".into())
        };
        Ok(Observed::new(verdict)
            .fact("in_error", in_error)
            .fact("stage", stage)
            .fact("status", status))
    }

    fn body(action: &RetryCertificate) -> RetryBody<'_> {
        RetryBody {
            dn: &action.certificate_dn,
            timeout: action.work_to_do_timeout,
        }
    }

    /// Sends `Certificates/Retry` and classifies the answer: "No retry is required" means
    /// converged, SQL Server's "rerun the transaction" 500 is transient.
    ///
    /// # Errors
    /// A transport failure or no usable token.
    pub async fn execute(&self, action: &RetryCertificate) -> Result<Answer, ProviderError> {
        let reply = self
            .call_at(
                Method::POST,
                self.retry_url.clone(),
                Some(&Self::body(action)),
            )
            .await?;
        let body = reply.json().unwrap_or(Value::Null);
        // 400 bodies are `{"Error": …}`; fall back to the raw text. Made only for an answer
        // that is not a success: a summary masks and cuts the body, which costs a success for
        // nothing.
        let message = || {
            body["Error"]
                .as_str()
                .map_or_else(|| reply.summary(), str::to_owned)
        };
        Ok(match reply.status {
            200 if body["Success"].as_bool() == Some(true) => Answer::Done {
                status: 200,
                detail: "retry started".into(),
                task: None,
            },
            200 => Answer::Rejected {
                status: 200,
                detail: format!("TPP did not confirm the retry: {}", reply.summary()),
            },
            202 => Answer::Done {
                status: 202,
                detail: "accepted; TPP is still processing after WorkToDoTimeout".into(),
                task: None,
            },
            400 => {
                let detail = message();
                if detail.contains("No retry is required") {
                    Answer::Converged { detail }
                } else {
                    Answer::Rejected {
                        status: 400,
                        detail,
                    }
                }
            }
            500 => {
                let detail = message();
                if detail
                    .to_ascii_lowercase()
                    .contains("rerun the transaction")
                {
                    Answer::Transient {
                        status: 500,
                        detail,
                    }
                } else {
                    Answer::from_status(&reply)
                }
            }
            _ => Answer::from_status(&reply),
        })
    }

    #[must_use]
    pub fn preview(&self, action: &RetryCertificate) -> RequestPreview {
        let (parts, url) = self.preview.get_or_init(|| {
            let who = self.username.as_deref().unwrap_or("the given token");
            let parts = crate::providers::PreviewParts::new(
                "POST",
                &[
                    (
                        "Authorization",
                        format!("Bearer (OAuth token of {who}, client {})", self.client_id),
                    ),
                    ("Content-Type", "application/json".to_owned()),
                ],
            );
            (parts, self.retry_url.as_str().into())
        });
        parts.preview(
            url.clone(),
            Some(
                serde_json::value::to_raw_value(&Self::body(action))
                    .expect("a retry body serializes"),
            ),
        )
    }

    #[must_use]
    pub fn idempotency() -> Idempotency {
        Idempotency::Convergent
    }
}

/// The body of `Certificates/Retry`, serialized from the action's own fields: a `Value` would
/// be a map built and dropped twice an action (the preview and the send).
#[derive(serde::Serialize)]
struct RetryBody<'a> {
    #[serde(rename = "CertificateDN")]
    dn: &'a str,
    #[serde(rename = "WorkToDoTimeout", skip_serializing_if = "Option::is_none")]
    timeout: Option<u32>,
}

/// The key parameters of a previewed request body, for the diff.
#[must_use]
pub fn summary(body: &RawValue) -> String {
    // Only the one key is read: a diff line is made per action, and a `Value` of the whole body
    // would be built and dropped each time.
    #[derive(serde::Deserialize)]
    struct Keys<'a> {
        #[serde(rename = "WorkToDoTimeout", borrow)]
        timeout: Option<&'a RawValue>,
    }
    serde_json::from_str::<Keys>(body.get())
        .ok()
        .and_then(|k| k.timeout)
        .map(|t| format!("WorkToDoTimeout {}", t.get()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_body_is_the_documented_object() {
        let mut action = RetryCertificate {
            certificate_dn: "\\VED\\Policy\\Certificates\\\"web01\"".to_owned(),
            work_to_do_timeout: None,
        };
        let body = |a: &RetryCertificate| serde_json::to_value(Venafi::body(a)).expect("JSON");
        assert_eq!(
            body(&action),
            json!({"CertificateDN": "\\VED\\Policy\\Certificates\\\"web01\""})
        );
        action.work_to_do_timeout = Some(30);
        assert_eq!(
            body(&action),
            json!({"CertificateDN": "\\VED\\Policy\\Certificates\\\"web01\"", "WorkToDoTimeout": 30})
        );
        let preview = serde_json::value::to_raw_value(&Venafi::body(&action)).expect("raw");
        assert_eq!(summary(&preview), "WorkToDoTimeout 30");
    }
}
