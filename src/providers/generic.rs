//! The generic `http` action for APIs without a built-in provider: a request described in the
//! runbook, credentials from the provider's `auth` (bearer, basic or a header), no observation.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::http::Http;
use super::{Idempotency, ProviderError, RequestPreview, SecretSource, auth_of};
use crate::manifest::model::{HeaderValue, HttpAuth, HttpRequest};

#[derive(Debug)]
pub struct Generic {
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
            method: format!("{:?}", request.method).to_ascii_uppercase(),
            url: self.url(request),
            headers,
            body: request.body.clone(),
        }
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
