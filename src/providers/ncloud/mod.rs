//! NAVER Cloud Certificate Manager (providers.md §5): API Gateway signature v2 computed for every
//! request at send time, service errors inside HTTP 200 (`returnCode`), the v2 certificate list
//! to observe (a page of it for many targets at once), and the reissue request.

mod list;
mod seam;

use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{KeyInit, Mac};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::manifest::model::{Csr, NcloudAuth, ReissueCertificate};
use crate::providers::http::{Http, Reply};
use crate::providers::secret::Secret;
use crate::providers::{Answer, Idempotency, ProviderError, RequestPreview, SecretSource, auth_of};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Debug)]
pub struct Ncloud {
    name: String,
    http: Http,
    base: PathBuf,
    access_key: SecretSource,
    secret_key: SecretSource,
    preview: std::sync::OnceLock<crate::providers::PreviewParts>,
}

/// Signature v2: Base64(HMAC-SHA256(secret, "{METHOD} {URI}\n{TIMESTAMP}\n{ACCESS_KEY}")), where
/// URI is the exact request target sent (path, and `?query` only when there is one).
#[must_use]
pub fn signature(
    method: &str,
    target: &str,
    timestamp: &str,
    access_key: &str,
    secret: &str,
) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(method.as_bytes());
    mac.update(b" ");
    mac.update(target.as_bytes());
    mac.update(b"\n");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(access_key.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The request target of `url` as it goes on the wire.
fn target_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

fn status_name(code: i64) -> &'static str {
    match code {
        0 => "ONGOING",
        1 => "NORMAL",
        2 => "NORMAL_UNREGISTERED_PRIVATE_KEY",
        3 => "NORMAL_GLOBAL_EDGE_DEDICATED",
        -1 | -11 => "FAILED",
        -2 => "EXPIRE",
        -3 => "VALIDATION_FAILED",
        -4 => "VALIDATION_EXPIRE",
        -5 => "REVOKE",
        -6 => "DELETED",
        -7 => "REQUEST_REVOKE",
        _ => "UNKNOWN",
    }
}

impl Ncloud {
    /// # Errors
    /// An `auth` block that does not fit.
    pub fn new(
        name: &str,
        http: Http,
        auth: &Value,
        base: &Path,
        demo: Option<&crate::providers::demo::Demo>,
    ) -> Result<Self, ProviderError> {
        let auth: NcloudAuth = auth_of(name, auth)?;
        let (access_key, secret_key) = match demo.and_then(|d| d.ncloud.as_ref()) {
            Some(k) => (
                SecretSource::Value(Secret::new(k.access_key.clone())),
                SecretSource::Value(Secret::new(k.secret_key.clone())),
            ),
            None => (
                SecretSource::reference(&auth.access_key, base),
                SecretSource::reference(&auth.secret_key, base),
            ),
        };
        Ok(Self {
            name: name.to_owned(),
            http,
            base: base.to_owned(),
            access_key,
            secret_key,
            preview: std::sync::OnceLock::new(),
        })
    }

    fn key(&self, source: &SecretSource, what: &'static str) -> Result<Secret, ProviderError> {
        source.get().map_err(|error| ProviderError::Secret {
            provider: self.name.clone(),
            what,
            error,
        })
    }

    /// Sends a signed request; the signature is computed now, for this attempt.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Reply, ProviderError> {
        let access = self.key(&self.access_key, "auth.access_key")?;
        let secret = self.key(&self.secret_key, "auth.secret_key")?;
        let timestamp = jiff::Timestamp::now().as_millisecond().to_string();
        let sig = signature(
            method.as_str(),
            &target_of(&url),
            &timestamp,
            access.expose(),
            secret.expose(),
        );
        crate::providers::redact::register_recent(&sig);
        let mut request = self
            .http
            .request(method, url)
            .header("x-ncp-apigw-timestamp", &timestamp)
            .header("x-ncp-iam-access-key", access.expose())
            .header("x-ncp-apigw-signature-v2", sig)
            // Certificate Manager wants it even on GET.
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply = self
            .http
            .send(request)
            .await
            .map_err(ProviderError::call(&self.name))?;
        if matches!(reply.status, 401 | 403) {
            return Err(ProviderError::refused(&self.name, &reply));
        }
        Ok(reply)
    }

    /// The reissue body; the CSR file is read only when `resolve` is set.
    ///
    /// # Errors
    /// A CSR file that cannot be read (only when resolving).
    pub fn body(&self, action: &ReissueCertificate, resolve: bool) -> Result<Value, ProviderError> {
        let csr = match (&action.csr, resolve) {
            (Csr::Pem(pem), _) => pem.clone(),
            (Csr::File(f), true) => {
                std::fs::read_to_string(self.base.join(&f.file)).map_err(|e| {
                    ProviderError::Config {
                        provider: self.name.clone(),
                        detail: format!("cannot read the CSR {}: {e}", f.file),
                    }
                })?
            }
            (Csr::File(f), false) => format!("(the CSR in {})", f.file),
        };
        let mut body = json!({
            "csr": csr,
            "certificateName": action.certificate_name,
            "commonName": action.common_name,
            "validationMethod": action.validation_method,
        });
        if !action.dns_name.is_empty() {
            body["dnsName"] = json!(action.dns_name);
        }
        Ok(body)
    }

    /// Sends the reissue, signed for this attempt; a non-zero `returnCode` in a 200 is a refusal.
    ///
    /// # Errors
    /// A transport failure, a refused key, or an unreadable CSR or key reference.
    pub async fn execute(&self, action: &ReissueCertificate) -> Result<Answer, ProviderError> {
        let body = self.body(action, true)?;
        let url = self.http.url(&format!(
            "api/v2/certificate/{}/reissue",
            action.certificate_no
        ));
        let reply = self.send(Method::POST, url, Some(&body)).await?;
        let answer = Answer::from_status(&reply);
        let Answer::Done { status, .. } = answer else {
            return Ok(answer);
        };
        let Some(body) = reply.json() else {
            return Ok(Answer::Transient {
                status,
                detail: format!("the answer is not JSON: {}", reply.summary()),
            });
        };
        // Some NCP services wrap it as `responseError`.
        let result = body.get("responseError").unwrap_or(&body);
        let code = match &result["returnCode"] {
            Value::String(c) => c.clone(),
            other => other.to_string(),
        };
        let message = result["returnMessage"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(if code == "0" {
            Answer::Done {
                status,
                detail: message,
                task: None,
            }
        } else {
            Answer::Rejected {
                status,
                detail: format!("returnCode {code}: {message}"),
            }
        })
    }

    #[must_use]
    pub fn preview(&self, action: &ReissueCertificate) -> RequestPreview {
        let parts = self.preview.get_or_init(|| {
            crate::providers::PreviewParts::new(
                "POST",
                &[
                    ("x-ncp-apigw-timestamp", "(the send time, ms)".to_owned()),
                    ("x-ncp-iam-access-key", self.access_key.shown()),
                    (
                        "x-ncp-apigw-signature-v2",
                        format!(
                            "(HMAC-SHA256 with {}, per attempt)",
                            self.secret_key.shown()
                        ),
                    ),
                    ("Content-Type", "application/json".to_owned()),
                ],
            )
        });
        let url = self.http.url(&format!(
            "api/v2/certificate/{}/reissue",
            action.certificate_no
        ));
        parts.preview(
            url.as_str().into(),
            self.body(action, false)
                .ok()
                .map(|b| crate::providers::raw(&b)),
        )
    }

    #[must_use]
    pub fn idempotency() -> Idempotency {
        Idempotency::NonIdempotent
    }
}

/// Allowed difference between NAVER's clock and ours when comparing its `updateDate` with the
/// time we sent a request.
const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(2);

/// Whether the observed `updated` fact is at or after `sent_at`: the certificate changed since
/// the request, so the reissue took effect (providers.md §5.5). A date in a shape we cannot
/// read proves nothing.
#[must_use]
pub fn updated_since(facts: Option<&serde_json::value::RawValue>, sent_at: &str) -> bool {
    let Some(facts) = facts else { return false };
    let Ok(facts) = serde_json::from_str::<serde_json::Map<String, Value>>(facts.get()) else {
        return false;
    };
    let (Some(updated), Ok(sent)) = (
        facts
            .get("updated")
            .and_then(Value::as_str)
            .and_then(parse_date),
        sent_at.parse::<jiff::Timestamp>(),
    ) else {
        return false;
    };
    updated >= sent - CLOCK_SKEW
}

/// `updateDate` as RFC 3339, or NAVER's `2026-11-24T10:00:00+0900` shape.
fn parse_date(text: &str) -> Option<jiff::Timestamp> {
    text.parse::<jiff::Timestamp>().ok().or_else(|| {
        jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%z", text)
            .ok()?
            .to_timestamp()
            .ok()
    })
}

/// The key parameters of a previewed request body, for the diff.
#[must_use]
pub fn summary(body: &Value) -> String {
    let sans = body["dnsName"].as_array().map_or(0, Vec::len);
    format!(
        "CN {}, {sans} SAN{}, validation {}",
        body["commonName"].as_str().unwrap_or("?"),
        if sans == 1 { "" } else { "s" },
        body["validationMethod"].as_str().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// providers.md §5.1, vectors A–D.
    #[test]
    fn signature_vectors() {
        let (key, secret, ts) = (
            "EXAMPLEACCESSKEY0001",
            "EXAMPLESECRETKEY000000000000000000000001",
            "1700000000000",
        );
        assert_eq!(
            signature("POST", "/api/v2/certificate/55882/reissue", ts, key, secret),
            "9lWpoarE2tTpLjDPMfURlwW/pg0v7+Na6rnAH45y5pY="
        );
        assert_eq!(
            signature(
                "GET",
                "/api/v1/certificates?certificateNo=55882",
                ts,
                key,
                secret
            ),
            "JmzhEFvAlP5Wg4tfCutwNXyqOYl1MiAMASQRQnLEv/k="
        );
        assert_eq!(
            signature(
                "GET",
                "/api/v2/certificate/certificates?page=1&pageSize=20",
                ts,
                key,
                secret
            ),
            "MqOO0VyUq7L3LAwtPQOUqtjrwNUctPjRLCdWk7kYWvI="
        );
        assert_eq!(
            signature(
                "GET",
                "/vserver/v2/getServerInstanceList?responseFormatType=json",
                "1234567890123",
                "TestAccessKey",
                "TestSecretKey"
            ),
            "FPsYYX8fuMAgi+cue3eACOW0dNtIwu1LYWfg/megA2M="
        );
    }

    #[test]
    fn targets_have_no_bare_question_mark() {
        let url = Url::parse("https://x/api/v2/certificate/1/reissue").expect("url");
        assert_eq!(target_of(&url), "/api/v2/certificate/1/reissue");
        let url = Url::parse("https://x/a?b=1&c=2").expect("url");
        assert_eq!(target_of(&url), "/a?b=1&c=2");
    }
}
