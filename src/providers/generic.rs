//! The generic `http` action for APIs without a built-in provider: a request described in the
//! runbook, credentials from the provider's `auth` (bearer, basic or a header), no observation.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Observed;
use super::http::Http;
use super::provider::{BoxFuture, each};
use super::{Answer, Idempotency, ProviderError, RequestPreview, SecretSource, auth_of};
use crate::manifest::model::Work;
use crate::manifest::model::{HeaderValue, HttpAuth, HttpRequest};

#[derive(Debug)]
pub struct Generic {
    name: String,
    http: Http,
    base: PathBuf,
    auth: Option<HttpAuth>,
}

impl Generic {
    /// # Errors
    /// An `auth` block that does not fit.
    pub fn new(name: &str, http: Http, auth: &Value, base: &Path) -> Result<Self, ProviderError> {
        let auth = if auth.is_null() {
            None
        } else {
            Some(auth_of::<HttpAuth>(name, auth)?)
        };
        Ok(Self {
            name: name.to_owned(),
            http,
            base: base.to_owned(),
            auth,
        })
    }

    /// The absolute URL of a request (relative ones are joined to the provider's `url`).
    #[must_use]
    pub fn url(&self, request: &HttpRequest) -> String {
        if request.url.starts_with("http://") || request.url.starts_with("https://") {
            request.url.clone()
        } else {
            self.http.url(&request.url).to_string()
        }
    }

    #[must_use]
    pub fn preview(&self, request: &HttpRequest) -> RequestPreview {
        let mut headers = indexmap::IndexMap::new();
        if let Some(auth) = &self.auth {
            if let Some(b) = &auth.bearer {
                headers.insert(
                    "Authorization".to_owned(),
                    format!("Bearer {}", SecretSource::reference(b, &self.base).shown()),
                );
            }
            if let Some(b) = &auth.basic {
                headers.insert(
                    "Authorization".to_owned(),
                    format!("Basic ({} / {})", b.username, b.password),
                );
            }
            if let Some(h) = &auth.header {
                headers.insert(h.name.clone(), h.value.to_string());
            }
        }
        for (name, value) in &request.headers {
            let shown = match value {
                HeaderValue::Text(t) => t.clone(),
                HeaderValue::Secret(s) => s.to_string(),
            };
            headers.insert(name.clone(), shown);
        }
        if request.body.is_some() {
            headers
                .entry("Content-Type".to_owned())
                .or_insert_with(|| "application/json".to_owned());
        }
        RequestPreview {
            method: format!("{:?}", request.method).to_ascii_uppercase().into(),
            url: self.url(request).into(),
            headers: std::sync::Arc::new(headers),
            body: request.body.as_ref().map(super::raw),
        }
    }

    fn secret(
        &self,
        reference: &crate::manifest::model::SecretRef,
        what: &'static str,
    ) -> Result<String, ProviderError> {
        SecretSource::reference(reference, &self.base)
            .get()
            .map(|s| s.expose().to_owned())
            .map_err(|error| ProviderError::Secret {
                provider: self.name.clone(),
                what,
                error,
            })
    }

    /// Sends the request and applies its success condition (any 2xx without one).
    ///
    /// # Errors
    /// A transport failure or an unreadable secret.
    pub async fn execute(&self, request: &HttpRequest) -> Result<Answer, ProviderError> {
        let method = reqwest::Method::from_bytes(
            format!("{:?}", request.method)
                .to_ascii_uppercase()
                .as_bytes(),
        )
        .unwrap_or(reqwest::Method::POST);
        let url = reqwest::Url::parse(&self.url(request)).map_err(|e| ProviderError::Config {
            provider: self.name.clone(),
            detail: format!("bad url {}: {e}", request.url),
        })?;
        // Checked on the URL as it will be sent: `HTTPS://…`, `http:host` or a scheme-relative
        // path can all leave the base URL when joined.
        if !self.http.same_origin(&url) {
            return Err(ProviderError::ForeignOrigin {
                provider: self.name.clone(),
                origin: super::http::origin(&url),
                own: self.http.origin(),
            });
        }
        let mut builder = self.http.request(method, url);
        if let Some(auth) = &self.auth {
            if let Some(b) = &auth.bearer {
                builder = builder.bearer_auth(self.secret(b, "auth.bearer")?);
            }
            if let Some(b) = &auth.basic {
                let password = self.secret(&b.password, "auth.basic.password")?;
                // Sent base64-encoded as `user:password`: an echo of the header shows that form.
                super::redact::register_basic(&b.username, &password);
                builder = builder.basic_auth(&b.username, Some(password));
            }
            if let Some(h) = &auth.header {
                builder = builder.header(h.name.as_str(), self.secret(&h.value, "auth.header")?);
            }
        }
        for (name, value) in &request.headers {
            let value = match value {
                HeaderValue::Text(t) => t.clone(),
                HeaderValue::Secret(s) => self.secret(s, "a header")?,
            };
            builder = builder.header(name.as_str(), value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let reply = self
            .http
            .send(builder)
            .await
            .map_err(ProviderError::call(&self.name))?;
        let Some(success) = &request.success else {
            return Ok(Answer::from_status(&reply));
        };
        let status_ok = if success.status.is_empty() {
            reply.is_success()
        } else {
            success.status.iter().any(|s| s.0 == reply.status)
        };
        let json_ok = success.json.as_ref().is_none_or(|check| {
            reply
                .json()
                .as_ref()
                .and_then(|b| b.pointer(&check.pointer))
                == Some(&check.equals)
        });
        Ok(match (status_ok, json_ok, Answer::from_status(&reply)) {
            (true, true, _) => Answer::Done {
                status: reply.status,
                detail: reply.summary(),
                task: None,
            },
            (_, _, a @ (Answer::Throttled { .. } | Answer::Transient { .. })) => a,
            (true, false, _) => Answer::Rejected {
                status: reply.status,
                detail: format!(
                    "the success condition on the body failed: {}",
                    reply.summary()
                ),
            },
            (false, _, _) => Answer::Rejected {
                status: reply.status,
                detail: reply.summary(),
            },
        })
    }

    #[must_use]
    pub fn idempotency(request: &HttpRequest) -> Idempotency {
        if request
            .idempotent
            .unwrap_or_else(|| request.method.is_idempotent())
        {
            Idempotency::Idempotent
        } else {
            Idempotency::NonIdempotent
        }
    }
}

impl super::Provider for Generic {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, work: &Work) -> String {
        work.http()
            .map(|a| {
                format!(
                    "{} {}",
                    format!("{:?}", a.method).to_ascii_uppercase(),
                    a.url
                )
            })
            .unwrap_or_default()
    }

    fn preview(&self, work: &Work) -> (RequestPreview, Idempotency) {
        match work.http() {
            Some(r) => (self.preview(r), Self::idempotency(r)),
            None => (RequestPreview::default(), Idempotency::NonIdempotent),
        }
    }

    fn observe<'a>(
        &'a self,
        _work: &'a Work,
    ) -> BoxFuture<'a, Option<Result<Observed, ProviderError>>> {
        Box::pin(async { None })
    }

    fn send<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> BoxFuture<'a, Result<Vec<Answer>, ProviderError>> {
        Box::pin(each(&self.name, works, Work::http, |a| self.execute(a)))
    }
}
